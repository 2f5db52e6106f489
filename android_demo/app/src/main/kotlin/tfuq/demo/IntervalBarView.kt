package tfuq.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import androidx.core.content.ContextCompat

/**
 * One class's mean probability as a bar on [0, 1], with its interval `mean ± Z·std` drawn as a
 * whisker across it. Interval ends outside [0, 1] are drawn at the edge.
 */
class IntervalBarView @JvmOverloads constructor(
    context: Context,
    attrs: AttributeSet? = null
) : View(context, attrs) {
    private val density = resources.displayMetrics.density
    private val track = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = ContextCompat.getColor(context, R.color.bar_track) }
    private val bar = Paint(Paint.ANTI_ALIAS_FLAG)
    private val whisker = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = ContextCompat.getColor(context, R.color.whisker)
        strokeWidth = 2 * density
        strokeCap = Paint.Cap.ROUND
    }
    private var mean = 0.0
    private var lower = 0.0
    private var upper = 0.0

    fun set(mean: Double, lower: Double, upper: Double, highlighted: Boolean) {
        this.mean = mean
        this.lower = lower
        this.upper = upper
        bar.color = ContextCompat.getColor(context, if (highlighted) R.color.bar_predicted else R.color.bar_other)
        contentDescription = null
        invalidate()
    }

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val height = resolveSize((14 * density).toInt(), heightMeasureSpec)
        setMeasuredDimension(getDefaultSize(suggestedMinimumWidth, widthMeasureSpec), height)
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val left = paddingLeft.toFloat()
        val right = (width - paddingRight).toFloat()
        val span = right - left
        val middle = height / 2f
        val thickness = height * 0.45f
        val radius = thickness / 2
        canvas.drawRoundRect(left, middle - thickness / 2, right, middle + thickness / 2, radius, radius, track)
        canvas.drawRoundRect(left, middle - thickness / 2, left + span * clamp(mean), middle + thickness / 2, radius, radius, bar)
        val from = left + span * clamp(lower)
        val to = left + span * clamp(upper)
        canvas.drawLine(from, middle, to, middle, whisker)
        canvas.drawLine(from, middle - thickness, from, middle + thickness, whisker)
        canvas.drawLine(to, middle - thickness, to, middle + thickness, whisker)
    }

    private fun clamp(value: Double): Float = value.coerceIn(0.0, 1.0).toFloat()
}
