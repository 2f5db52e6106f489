package tfuq.uqcore

/** A rectangle in pixels: left, top, width, height. */
class CropRect(val left: Int, val top: Int, val width: Int, val height: Int) {
    override fun equals(other: Any?): Boolean =
        other is CropRect && other.left == left && other.top == top && other.width == width && other.height == height
    override fun hashCode(): Int = ((left * 31 + top) * 31 + width) * 31 + height
    override fun toString(): String = "CropRect($left, $top, ${width}x$height)"
}

/** Image geometry and pixel packing the app needs before an invoke; pure, so tested here. */
object Pixels {
    /**
     * The largest centered rectangle of a [sourceWidth] x [sourceHeight] image that has the
     * aspect ratio of the model's [targetWidth] x [targetHeight] input. Scaling that crop
     * avoids stretching a 4:3 photo into a square input; the screen shows the same crop, so
     * what you see is what the model saw.
     */
    fun centerCrop(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int): CropRect {
        if (sourceWidth < 1 || sourceHeight < 1 || targetWidth < 1 || targetHeight < 1) {
            throw IllegalArgumentException("sizes must be positive: ${sourceWidth}x$sourceHeight to ${targetWidth}x$targetHeight")
        }
        // Compare sourceWidth / sourceHeight with targetWidth / targetHeight in integers.
        val wide = sourceWidth.toLong() * targetHeight > sourceHeight.toLong() * targetWidth
        val width: Int
        val height: Int
        if (wide) {
            height = sourceHeight
            width = Math.max(1, Math.round(sourceHeight.toDouble() * targetWidth / targetHeight).toInt())
        } else {
            width = sourceWidth
            height = Math.max(1, Math.round(sourceWidth.toDouble() * targetHeight / targetWidth).toInt())
        }
        return CropRect((sourceWidth - width) / 2, (sourceHeight - height) / 2, width, height)
    }

    /**
     * Packed ARGB ints (Android's `Bitmap.getPixels` order, row-major) to RGB bytes
     * `(height, width, 3)`, the raw 0-255 pixels a tfuq model takes. Alpha is dropped.
     */
    fun argbToRgb(argb: IntArray): ByteArray {
        val rgb = ByteArray(argb.size * 3)
        for (i in argb.indices) {
            val p = argb[i]
            rgb[3 * i] = (p shr 16).toByte()
            rgb[3 * i + 1] = (p shr 8).toByte()
            rgb[3 * i + 2] = p.toByte()
        }
        return rgb
    }
}
