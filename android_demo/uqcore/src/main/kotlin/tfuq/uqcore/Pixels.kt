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

    /** EXIF orientations 5-8 (transpose, rotate 90, transverse, rotate 270) swap width and height. */
    fun swapsSides(exifOrientation: Int): Boolean = exifOrientation in 5..8

    /**
     * The pixels of a [width] x [height] image as stored (row-major packed ints) turned upright
     * by its EXIF [exifOrientation] (1-8), as Pillow's `ImageOps.exif_transpose` turns them:
     * 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose, 6 rotate 90
     * clockwise, 7 transverse, 8 rotate 90 counter-clockwise. Any other value (0, undefined,
     * or 1) leaves them as they are. The result is `height x width` when [swapsSides].
     */
    fun orient(pixels: IntArray, width: Int, height: Int, exifOrientation: Int): IntArray {
        if (pixels.size.toLong() != width.toLong() * height) {
            throw IllegalArgumentException("${pixels.size} pixels for a ${width}x$height image")
        }
        if (exifOrientation !in 2..8) return pixels
        val outWidth = if (swapsSides(exifOrientation)) height else width
        val outHeight = if (swapsSides(exifOrientation)) width else height
        val out = IntArray(pixels.size)
        for (y in 0 until outHeight) {
            for (x in 0 until outWidth) {
                // The stored pixel (column, row) that lands at (x, y).
                val at = when (exifOrientation) {
                    2 -> y * width + (width - 1 - x)
                    3 -> (height - 1 - y) * width + (width - 1 - x)
                    4 -> (height - 1 - y) * width + x
                    5 -> x * width + y
                    6 -> (height - 1 - x) * width + y
                    7 -> (height - 1 - x) * width + (width - 1 - y)
                    else -> x * width + (width - 1 - y)  // 8
                }
                out[y * outWidth + x] = pixels[at]
            }
        }
        return out
    }
}
