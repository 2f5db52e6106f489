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
    val crop: Boolean,
    /** Step 1b (reduce by [PhotoRule.reductionFactor]) is done, or replaced by a JPEG decode at 1/s. */
    val reduces: Boolean = false
) {
    /** `{"name": "center-crop-bilinear", "version": 1}`: models converted before version 2. */
    CENTER_CROP_BILINEAR_V1("center-crop-bilinear", 1, crop = true),

    /** `{"name": "center-crop-bilinear", "version": 2}`, what `tfuq convert` writes: version 1
     *  with step 1b, a box reduction by s in {1, 2, 4, 8} before the crop. */
    CENTER_CROP_BILINEAR_V2("center-crop-bilinear", 2, crop = true, reduces = true),

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
 * `center-crop-bilinear` v1 is checked on `tests/vectors/photos.json`, v2 on `photos_v2.json`.
 *
 * From 8-bit RGBA pixels (decoded, EXIF orientation applied, colour profile ignored) to the
 * model's RGB bytes `(targetHeight, targetWidth, 3)`:
 * 1. alpha over white: `c' = (c * a + 255 * (255 - a) + 127) / 255`;
 * 1b. v2 only: reduce by s ([reductionFactor]) to `ceil(W/s) x ceil(H/s)`, each channel the
 *    rounded mean of an s x s block (smaller at the right and bottom edges), in Pillow's
 *    `Image.reduce` integers ([blockMean]); a JPEG decoded at 1/s replaces it
 *    ([prepareDecodedAtScale]);
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

    /**
     * Step 1b's s for a [sourceWidth] x [sourceHeight] photo (EXIF-oriented) and a
     * [targetWidth] x [targetHeight] input: the largest of 8, 4, 2, 1 whose reduced size
     * `ceil(W/s) x ceil(H/s)` still has a centre crop ([cropRect]) at least as wide and as high
     * as the input. What an app passes to a JPEG decoder as its sample size.
     */
    fun reductionFactor(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int): Int {
        cropRect(sourceWidth, sourceHeight, targetWidth, targetHeight)  // checks the sizes
        for (factor in intArrayOf(8, 4, 2)) {
            val crop = cropRect(reducedSize(sourceWidth, factor), reducedSize(sourceHeight, factor), targetWidth, targetHeight)
            if (crop.width >= targetWidth && crop.height >= targetHeight) return factor
        }
        return 1
    }

    /** [reductionFactor] when [rule] reduces (v2), otherwise 1. */
    fun reductionFor(rule: PhotoRuleSpec, sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int): Int =
        if (rule.reduces) reductionFactor(sourceWidth, sourceHeight, targetWidth, targetHeight) else 1

    /** One side reduced by [factor]: `ceil(size / factor)`. */
    fun reducedSize(size: Int, factor: Int): Int = (size + factor - 1) / factor

    /**
     * Step 1b for one channel: the mean of a block of [count] pixels (1..64) whose values sum
     * to [sum], as Pillow's `Image.reduce` rounds it: `((sum + count / 2) * m) >> 24` with
     * `m = trunc(float32(2^32) / float32(256 * count))`, the product in 64 bits.
     */
    fun blockMean(sum: Int, count: Int): Int = (((sum + count / 2).toLong() * MULTIPLIERS[count]) ushr 24).toInt()

    // m(n) for n = 0..64 (0 unused): the division in single precision, truncated.
    private val MULTIPLIERS = LongArray(65) { n -> if (n == 0) 0L else (4294967296.0f / (256 * n).toFloat()).toLong() }

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
     * Steps 1-3 of [rule] (with 1b for v2), reading only the rows of its region ([regionOf];
     * under v2 the source rows of the crop's blocks) from [rows]: RGB bytes
     * `(targetHeight, targetWidth, 3)`, raw 0-255, the way a tfuq model takes them.
     */
    fun prepare(
        rows: ArgbRows, width: Int, height: Int, targetWidth: Int, targetHeight: Int,
        rule: PhotoRuleSpec = PhotoRuleSpec.CENTER_CROP_BILINEAR_V1
    ): ByteArray {
        val factor = reductionFor(rule, width, height, targetWidth, targetHeight)
        if (factor == 1) return prepareDecodedAtScale(rows, width, height, targetWidth, targetHeight, rule)
        val reducedWidth = reducedSize(width, factor)
        val reducedHeight = reducedSize(height, factor)
        // Only the columns of the crop are reduced; prepareDecodedAtScale reads only its rows.
        val crop = regionOf(rule, reducedWidth, reducedHeight, targetWidth, targetHeight)
        val reduced = Reduction(rows, width, height, factor, crop.left, crop.left + crop.width)
        return prepareDecodedAtScale(reduced, reducedWidth, reducedHeight, targetWidth, targetHeight, rule)
    }

    /**
     * Steps 1, 2 and 3 of [rule] without step 1b: for a photo a JPEG decoder already reduced
     * by [reductionFactor] (v2's step 0 with `inSampleSize = s`, whose size must then be
     * `ceil(W/s) x ceil(H/s)`), and for every photo under a rule that does not reduce.
     */
    fun prepareDecodedAtScale(
        rows: ArgbRows, width: Int, height: Int, targetWidth: Int, targetHeight: Int, rule: PhotoRuleSpec
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

    /**
     * Step 1b as rows: row y of the `ceil(W/s) x ceil(H/s)` reduction of [source] over white,
     * filled in columns [from, to) only (the crop's; the rest of the row is left as it was).
     * Reads source rows `y*s until min((y+1)*s, H)`, each once per call.
     */
    private class Reduction(
        private val source: ArgbRows, private val width: Int, private val height: Int,
        private val factor: Int, private val from: Int, private val to: Int
    ) : ArgbRows {
        private val line = IntArray(width)
        private val sums = IntArray(3 * (to - from))

        override fun row(y: Int, into: IntArray) {
            java.util.Arrays.fill(sums, 0)
            val top = y * factor
            val bottom = Math.min(top + factor, height)
            val first = from * factor
            val last = Math.min(to * factor, width)
            for (sourceY in top until bottom) {
                source.row(sourceY, line)
                // Step 1 before the reduction. An opaque row (every JPEG row) is itself over
                // white; a row with transparency is taken back out, composited, added again.
                if ((add(line, first, last, 1) ushr 24) != 255) {
                    add(line, first, last, -1)
                    for (x in first until last) {
                        val p = line[x]
                        val a = (p ushr 24) and 0xFF
                        line[x] = (0xFF shl 24) or (overWhite((p shr 16) and 0xFF, a) shl 16) or
                            (overWhite((p shr 8) and 0xFF, a) shl 8) or overWhite(p and 0xFF, a)
                    }
                    add(line, first, last, 1)
                }
            }
            val rowsInBlock = bottom - top
            for (xx in from until to) {
                val k = 3 * (xx - from)
                val count = rowsInBlock * (Math.min((xx + 1) * factor, width) - xx * factor)
                into[xx] = (0xFF shl 24) or (blockMean(sums[k], count) shl 16) or
                    (blockMean(sums[k + 1], count) shl 8) or blockMean(sums[k + 2], count)
            }
        }

        /** Adds [sign] times the channels of [line]'s columns [first, last) to their blocks'
         *  sums; the AND of those pixels (its top byte is 255 when all are opaque). */
        private fun add(line: IntArray, first: Int, last: Int, sign: Int): Int {
            var all = -1
            var x = first
            var k = 0
            while (x < last) {
                val end = Math.min(x + factor, last)
                var s0 = 0
                var s1 = 0
                var s2 = 0
                while (x < end) {
                    val p = line[x]
                    all = all and p
                    s0 += (p shr 16) and 0xFF
                    s1 += (p shr 8) and 0xFF
                    s2 += p and 0xFF
                    x++
                }
                sums[k] += sign * s0
                sums[k + 1] += sign * s1
                sums[k + 2] += sign * s2
                k += 3
            }
            return all
        }
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
