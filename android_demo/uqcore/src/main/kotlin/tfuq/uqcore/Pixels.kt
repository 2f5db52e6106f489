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
