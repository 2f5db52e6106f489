package tfuq.uqcore

/**
 * A source of decoded pixels, one row at a time, so a 12-megapixel photo need not sit in one
 * `IntArray`: on Android, rows of a software `Bitmap`.
 */
interface ArgbRows {
    /** Writes row [y] (`0 <= y < height`) of the image into [into] as `width` packed,
     *  non-premultiplied ARGB ints (`Bitmap.getPixels` order). */
    fun row(y: Int, into: IntArray)
}

/**
 * The photo rules a model file may name in `input.photo_rule`, read as
 * `tfuq/runtime/photo.py`'s `rule_of` reads them ([of]).
 */
enum class PhotoRuleSpec(
    /** The name `tfuq.json` carries (for [STRETCH], a description: it carries none). */
    val ruleName: String,
    val version: Int,
    /** Step 2 (centre crop) is done; without it the whole photo is stretched to the input. */
    val crop: Boolean
) {
    /** `{"name": "center-crop-bilinear", "version": 1}`, what `tfuq convert` writes. */
    CENTER_CROP_BILINEAR_V1("center-crop-bilinear", 1, crop = true),

    /** No `photo_rule` (models converted before it existed): steps 1 and 3 on the whole photo. */
    STRETCH("stretch (no photo_rule in the model)", 0, crop = false);

    override fun toString(): String = "$ruleName v$version"

    companion object {
        /**
         * The rule an `input` object names: [STRETCH] when `photo_rule` is missing or null;
         * a `photo_rule` that is not `{"name": string, "version": integer}` (other keys are
         * ignored), or names a rule or version this reader does not know, is refused.
         */
        fun of(input: JsonObject): PhotoRuleSpec {
            val spec = input.objOrNull("photo_rule") ?: return STRETCH
            val name = spec.string("name")
            val version = spec.int("version")
            return values().firstOrNull { it.crop && it.ruleName == name && it.version == version }
                ?: throw IllegalArgumentException(
                    "${spec.path}: unknown photo rule $name v$version; this reader knows " +
                        "${values().filter { it.crop }.joinToString(", ")} (update the app)"
                )
        }
    }
}

/**
 * The photo rules' steps 1-3, bit for bit as `tfuq/runtime/photo.py` (Pillow) computes them;
 * `center-crop-bilinear` v1 is checked on `tests/vectors/photos.json`.
 *
 * From 8-bit RGBA pixels (decoded, EXIF orientation applied, colour profile ignored) to the
 * model's RGB bytes `(targetHeight, targetWidth, 3)`:
 * 1. alpha over white: `c' = (c * a + 255 * (255 - a) + 127) / 255`;
 * 2. centre crop to the model's aspect ratio ([cropRect]); [PhotoRuleSpec.STRETCH] skips it
 *    and takes the whole photo;
 * 3. Pillow's 8-bit BILINEAR resize (`libImaging/Resample.c`): a triangle filter whose
 *    support grows with the downscale factor, weights normalised and rounded to 22-bit fixed
 *    point, a horizontal pass rounded to 0..255, then a vertical pass.
 *
 * Pure Kotlin with integer and IEEE double arithmetic only (the JVM and ART compute doubles
 * exactly as C does), so it runs the same in the JVM tests and on a phone.
 */
object PhotoRule {
    const val NAME = "center-crop-bilinear"
    const val VERSION = 1

    /** Photos above this many pixels are refused from their header (as in Python). */
    const val MAX_PIXELS = 1L shl 26

    private const val PRECISION_BITS = 22
    private const val HALF = 1 shl (PRECISION_BITS - 1)

    /** Step 2: the centred crop of a [sourceWidth] x [sourceHeight] image with the aspect
     *  ratio of a [targetWidth] x [targetHeight] input. */
    fun cropRect(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int): CropRect {
        if (sourceWidth < 1 || sourceHeight < 1 || targetWidth < 1 || targetHeight < 1) {
            throw IllegalArgumentException("sizes must be positive: ${sourceWidth}x$sourceHeight to ${targetWidth}x$targetHeight")
        }
        val w = sourceWidth.toLong()
        val h = sourceHeight.toLong()
        return if (w * targetHeight > h * targetWidth) {
            val cropWidth = Math.max(1L, (h * targetWidth + targetHeight / 2) / targetHeight).toInt()
            CropRect((sourceWidth - cropWidth) / 2, 0, cropWidth, sourceHeight)
        } else {
            val cropHeight = Math.max(1L, (w * targetHeight + targetWidth / 2) / targetWidth).toInt()
            CropRect(0, (sourceHeight - cropHeight) / 2, sourceWidth, cropHeight)
        }
    }

    /** The model's input for a photo: [config]'s rule at its input size (steps 1-3). */
    fun forModel(rows: ArgbRows, width: Int, height: Int, config: ModelConfig): ByteArray =
        prepare(rows, width, height, config.input.width, config.input.height, config.photoRule)

    /** The region of a [sourceWidth] x [sourceHeight] image that [rule] resizes: the centred
     *  crop ([cropRect]), or for [PhotoRuleSpec.STRETCH] the whole image. */
    fun regionOf(rule: PhotoRuleSpec, sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int): CropRect {
        val crop = cropRect(sourceWidth, sourceHeight, targetWidth, targetHeight)  // checks the sizes
        return if (rule.crop) crop else CropRect(0, 0, sourceWidth, sourceHeight)
    }

    /** Step 1 for one channel value [c] under alpha [a] (both 0..255). */
    fun overWhite(c: Int, a: Int): Int = (c * a + 255 * (255 - a) + 127) / 255

    /** Steps 1-3 on a whole image given as packed ARGB ints, row-major. */
    fun prepare(
        argb: IntArray, width: Int, height: Int, targetWidth: Int, targetHeight: Int,
        rule: PhotoRuleSpec = PhotoRuleSpec.CENTER_CROP_BILINEAR_V1
    ): ByteArray {
        if (argb.size.toLong() != width.toLong() * height) {
            throw IllegalArgumentException("${argb.size} pixels for a ${width}x$height image")
        }
        return prepare(object : ArgbRows {
            override fun row(y: Int, into: IntArray) = System.arraycopy(argb, y * width, into, 0, width)
        }, width, height, targetWidth, targetHeight, rule)
    }

    /** Steps 1-3 on RGBA bytes (R, G, B, A per pixel, row-major), the vectors' format. */
    fun prepareRgba(
        rgba: ByteArray, width: Int, height: Int, targetWidth: Int, targetHeight: Int,
        rule: PhotoRuleSpec = PhotoRuleSpec.CENTER_CROP_BILINEAR_V1
    ): ByteArray {
        if (rgba.size.toLong() != width.toLong() * height * 4) {
            throw IllegalArgumentException("${rgba.size} bytes for a ${width}x$height RGBA image")
        }
        val argb = IntArray(width * height) { i ->
            val r = rgba[4 * i].toInt() and 0xFF
            val g = rgba[4 * i + 1].toInt() and 0xFF
            val b = rgba[4 * i + 2].toInt() and 0xFF
            val a = rgba[4 * i + 3].toInt() and 0xFF
            (a shl 24) or (r shl 16) or (g shl 8) or b
        }
        return prepare(argb, width, height, targetWidth, targetHeight, rule)
    }

    /**
     * Steps 1-3 of [rule], reading only the rows of its region ([regionOf]) from [rows]: RGB
     * bytes `(targetHeight, targetWidth, 3)`, raw 0-255, the way a tfuq model takes them.
     */
    fun prepare(
        rows: ArgbRows, width: Int, height: Int, targetWidth: Int, targetHeight: Int,
        rule: PhotoRuleSpec = PhotoRuleSpec.CENTER_CROP_BILINEAR_V1
    ): ByteArray {
        val crop = regionOf(rule, width, height, targetWidth, targetHeight)
        val across = Coefficients.of(crop.width, targetWidth)
        val row = IntArray(width)
        // The horizontal pass, row by row of the crop: resampled across straight from the
        // packed pixels; a row with any transparency is composited over white first (over
        // white an opaque pixel is itself, so a JPEG's rows are never touched).
        val wide = IntArray(crop.height * targetWidth * 3)
        val left = crop.left
        for (y in 0 until crop.height) {
            rows.row(crop.top + y, row)
            var all = -1
            for (x in left until left + crop.width) all = all and row[x]
            if ((all ushr 24) != 255) {
                for (x in left until left + crop.width) {
                    val p = row[x]
                    val a = (p ushr 24) and 0xFF
                    row[x] = (0xFF shl 24) or (overWhite((p shr 16) and 0xFF, a) shl 16) or
                        (overWhite((p shr 8) and 0xFF, a) shl 8) or overWhite(p and 0xFF, a)
                }
            }
            val base = y * targetWidth * 3
            if (crop.width == targetWidth) {
                for (x in 0 until targetWidth) {
                    val p = row[left + x]
                    wide[base + 3 * x] = (p shr 16) and 0xFF
                    wide[base + 3 * x + 1] = (p shr 8) and 0xFF
                    wide[base + 3 * x + 2] = p and 0xFF
                }
            } else {
                val weights = across.weights
                for (xx in 0 until targetWidth) {
                    var at = left + across.start[xx]
                    var w = xx * across.size
                    val end = w + across.count[xx]
                    var s0 = HALF
                    var s1 = HALF
                    var s2 = HALF
                    while (w < end) {
                        val weight = weights[w]
                        val p = row[at]
                        s0 += ((p shr 16) and 0xFF) * weight
                        s1 += ((p shr 8) and 0xFF) * weight
                        s2 += (p and 0xFF) * weight
                        at++
                        w++
                    }
                    wide[base + 3 * xx] = clip8(s0)
                    wide[base + 3 * xx + 1] = clip8(s1)
                    wide[base + 3 * xx + 2] = clip8(s2)
                }
            }
        }
        val out = ByteArray(targetHeight * targetWidth * 3)
        if (crop.height == targetHeight) {
            for (i in wide.indices) out[i] = wide[i].toByte()
            return out
        }
        // The vertical pass, output row by output row: each tap one sweep along a whole row.
        val down = Coefficients.of(crop.height, targetHeight)
        val stride = targetWidth * 3
        val sums = IntArray(stride)
        for (yy in 0 until targetHeight) {
            java.util.Arrays.fill(sums, HALF)
            for (k in 0 until down.count[yy]) {
                val weight = down.weights[yy * down.size + k]
                val from = (down.start[yy] + k) * stride
                for (i in 0 until stride) sums[i] += wide[from + i] * weight
            }
            val at = yy * stride
            for (i in 0 until stride) out[at + i] = clip8(sums[i]).toByte()
        }
        return out
    }

    private fun clip8(sum: Int): Int {
        val value = sum shr PRECISION_BITS
        return if (value < 0) 0 else if (value > 255) 255 else value
    }

    /** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for BILINEAR, in its order. */
    internal class Coefficients(val size: Int, val start: IntArray, val count: IntArray, val weights: IntArray) {
        companion object {
            // Photos of one camera come in one size: their weights are computed once per
            // (input, output) size, the last few kept.
            private val known = object : java.util.LinkedHashMap<Long, Coefficients>(16, 0.75f, true) {
                override fun removeEldestEntry(eldest: MutableMap.MutableEntry<Long, Coefficients>?): Boolean = size > 8
            }

            fun of(inSize: Int, outSize: Int): Coefficients {
                val key = (inSize.toLong() shl 32) or outSize.toLong()
                synchronized(known) { known[key]?.let { return it } }
                val made = compute(inSize, outSize)
                synchronized(known) { known[key] = made }
                return made
            }

            private fun compute(inSize: Int, outSize: Int): Coefficients {
                val scale = inSize.toDouble() / outSize
                val filterScale = if (scale < 1.0) 1.0 else scale
                val support = 1.0 * filterScale
                val size = Math.ceil(support).toInt() * 2 + 1
                val start = IntArray(outSize)
                val count = IntArray(outSize)
                val weights = IntArray(outSize * size)
                val exact = DoubleArray(size)
                for (xx in 0 until outSize) {
                    val center = 0.0 + (xx + 0.5) * scale
                    val ss = 1.0 / filterScale
                    // Double.toInt() truncates toward zero, as C's (int) cast does.
                    var xmin = (center - support + 0.5).toInt()
                    if (xmin < 0) xmin = 0
                    var xmax = (center + support + 0.5).toInt()
                    if (xmax > inSize) xmax = inSize
                    xmax -= xmin
                    var total = 0.0
                    for (x in 0 until xmax) {
                        val w = triangle((x + xmin - center + 0.5) * ss)
                        exact[x] = w
                        total += w
                    }
                    for (x in 0 until xmax) {
                        val w = if (total != 0.0) exact[x] / total else exact[x]
                        weights[xx * size + x] = if (w < 0) (-0.5 + w * (1 shl PRECISION_BITS)).toInt()
                        else (0.5 + w * (1 shl PRECISION_BITS)).toInt()
                    }
                    start[xx] = xmin
                    count[xx] = xmax
                }
                return Coefficients(size, start, count, weights)
            }

            private fun triangle(t: Double): Double {
                val x = if (t < 0.0) -t else t
                return if (x < 1.0) 1.0 - x else 0.0
            }
        }
    }
}
