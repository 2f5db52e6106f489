package tfuq.demo

import android.content.pm.PackageManager
import android.os.Bundle
import android.view.LayoutInflater
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts.PickVisualMedia
import androidx.activity.viewModels
import androidx.appcompat.app.AlertDialog
import androidx.appcompat.app.AppCompatActivity
import androidx.core.content.ContextCompat
import androidx.core.view.isVisible
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.lifecycleScope
import androidx.lifecycle.repeatOnLifecycle
import kotlinx.coroutines.launch
import tfuq.demo.databinding.ActivityMainBinding
import tfuq.demo.databinding.ItemClassRowBinding
import tfuq.uqcore.Classification
import tfuq.uqcore.DecisionRule
import tfuq.uqcore.Labels
import tfuq.uqcore.UInt64
import java.util.Locale

/**
 * The result screen: pick or take a photo; see the top classes with their mean probability and
 * interval, the uncertainty scores, the decision (a label, or "Not sure" and why) and the
 * invoke latency. The settings sheet changes passes, seed and rule.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding
    private val viewModel: MainViewModel by viewModels()

    private val pickPhoto = registerForActivityResult(PickVisualMedia()) { uri ->
        if (uri != null) viewModel.onImage(uri)
    }

    private val takePhoto = registerForActivityResult(CameraActivity.TakePhoto()) { uri ->
        if (uri != null) viewModel.onImage(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)

        binding.pick.setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(PickVisualMedia.ImageOnly))
        }
        binding.take.setOnClickListener { takePhoto.launch(Unit) }
        // No camera at all: picking from the gallery is the way in.
        binding.take.isVisible = packageManager.hasSystemFeature(PackageManager.FEATURE_CAMERA_ANY)
        binding.toolbar.setOnMenuItemClickListener { item ->
            when (item.itemId) {
                R.id.action_settings -> {
                    SettingsSheet().show(supportFragmentManager, SettingsSheet.TAG)
                    true
                }
                R.id.action_classes -> {
                    showAllClasses()
                    true
                }
                else -> false
            }
        }

        lifecycleScope.launch {
            repeatOnLifecycle(Lifecycle.State.STARTED) {
                viewModel.state.collect(::render)
            }
        }
    }

    private fun render(state: UiState) {
        val ready = state.model as? ModelState.Ready
        binding.pick.isEnabled = ready != null && !state.busy
        binding.take.isEnabled = ready != null && !state.busy
        binding.toolbar.menu.findItem(R.id.action_settings)?.isEnabled = ready != null
        // A model with many classes: the subtitle names the first few, the whole list on request.
        binding.toolbar.menu.findItem(R.id.action_classes)?.isVisible = ready != null && Labels.truncated(ready.classes)
        binding.progress.isVisible = state.busy || state.model is ModelState.Loading

        binding.toolbar.subtitle = when (val model = state.model) {
            is ModelState.Ready -> getString(
                R.string.model_subtitle, model.source, model.config.passes,
                Labels.summary(model.config.labels, model.classes), describe(model.config.decision)
            )
            else -> null
        }
        binding.message.text = when (val model = state.model) {
            ModelState.Loading -> getString(R.string.loading_model)
            ModelState.Missing -> getString(R.string.no_model)
            is ModelState.Failed -> getString(R.string.bad_model, model.message)
            is ModelState.Ready -> state.error ?: if (state.preview == null) getString(R.string.choose_photo) else ""
        }
        binding.message.isVisible = binding.message.text.isNotEmpty()

        binding.photo.isVisible = state.preview != null
        state.preview?.let { binding.photo.setImageBitmap(it) }

        val result = state.result
        binding.resultGroup.isVisible = result != null
        if (result != null && ready != null) showResult(result, ready.config.input.width, ready.config.input.height)
    }

    private fun showResult(result: Classification, width: Int, height: Int) {
        val accept = result.decision.accept
        binding.decision.text = result.headline
        binding.decision.setTextColor(ContextCompat.getColor(this, if (accept) R.color.accept else R.color.abstain))
        binding.decisionCard.setCardBackgroundColor(
            ContextCompat.getColor(this, if (accept) R.color.accept_background else R.color.abstain_background)
        )
        binding.explanation.text = result.explanation

        val s = result.summary
        binding.scores.text = getString(
            R.string.scores,
            fmt(s.maxProbability), fmt(s.predictiveEntropy), fmt(s.mutualInformation), fmt(s.variationRatio)
        ) + result.scores.entries.joinToString("") { getString(R.string.model_score, it.key, fmt(it.value)) }
        binding.rule.text = getString(R.string.rule_line, describe(result.settings.rule))

        binding.classes.removeAllViews()
        val inflater = LayoutInflater.from(this)
        for (score in result.top) {
            val row = ItemClassRowBinding.inflate(inflater, binding.classes, true)
            row.label.text = score.label
            row.mean.text = percent(score.mean)
            row.interval.text = getString(R.string.interval, percent(score.lower), percent(score.upper))
            row.bar.set(score.mean, score.lower, score.upper, highlighted = score.index == result.decision.predicted)
            row.root.contentDescription = getString(
                R.string.class_row_description, score.fullLabel, percent(score.mean), percent(score.lower), percent(score.upper)
            )
        }

        binding.footer.text = getString(
            R.string.footer,
            result.summary.passes,
            UInt64.toString(result.settings.seed),
            result.invokeNanos / 1e6,
            result.maskNanos / 1e6,
            width,
            height
        )
    }

    /** Every class of the model, as it carries them (synonyms and all), in a scrolling dialog. */
    private fun showAllClasses() {
        val ready = viewModel.state.value.model as? ModelState.Ready ?: return
        val names = Array(ready.classes) { ready.config.label(it) }
        AlertDialog.Builder(this)
            .setTitle(getString(R.string.all_classes_title, ready.classes))
            .setItems(names, null)
            .setPositiveButton(android.R.string.ok, null)
            .show()
    }

    private fun fmt(value: Double) = String.format(Locale.ROOT, "%.3f", value)

    // Interval ends may leave [0, 1] (mean - Z std < 0); shown as they are, not clamped.
    private fun percent(value: Double) = String.format(Locale.ROOT, "%.1f%%", 100 * value)

    private fun describe(rule: DecisionRule): String = when (rule) {
        is DecisionRule.All -> rule.parts.joinToString(" and ") { describe(it) }
        is DecisionRule.Interval -> getString(R.string.rule_interval, String.format(Locale.ROOT, "%.2f", rule.confFactor))
        is DecisionRule.Threshold -> getString(
            R.string.rule_threshold,
            rule.score.title,
            if (rule.score.higherMeansConfident) "≥" else "≤",
            String.format(Locale.ROOT, "%.3f", rule.threshold)
        )
        // A score of the passes by its title and on its own side ("Predictive entropy ≤"); a model score as named.
        is DecisionRule.Ood -> getString(
            R.string.rule_ood,
            rule.aggregate?.title ?: rule.score,
            if (rule.higherMeansInDistribution) "≥" else "≤",
            String.format(Locale.ROOT, "%.3f", rule.threshold)
        )
    }
}
