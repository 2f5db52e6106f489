package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * `center-crop-bilinear` v2 (RULE2.md: v1 with step 1b, a reduction by s before the crop):
 * tests/vectors/photos_v2.json byte for byte, and hand-computed cases.
 */
class PhotoRuleV2Test {
    private val v2 = PhotoRuleSpec.CENTER_CROP_BILINEAR_V2
    private val vectors by lazy { SharedVectors.load("photos_v2.json") }

    @Test
    fun vectorsAreVersion2() {
        val rule = vectors.obj("rule")
        assertEquals(PhotoRule.NAME, rule.string("name"))
        assertEquals(2, rule.int("version"))
    }

    @Test
    fun everyVectorMatchesPythonByteForByte() = PhotoCase.checkAll("photos_v2.json", vectors, v2, least = 8)

    @Test
    fun everyFactorOfTheVectorsIsChosen() {
        val check = Mismatches("photos_v2.json")
        val factors = vectors.array("factors").objects()
        if (factors.isEmpty()) throw AssertionError("photos_v2.json lists no factors")
        for (f in factors) {
            val (w, h) = Pair(f.int("width"), f.int("height"))
            val (tw, th) = Pair(f.int("target_width"), f.int("target_height"))
            check.exact("${w}x$h to ${tw}x$th", "s", f.int("s"), PhotoRule.reductionFactor(w, h, tw, th))
        }
        check.assertNone()
    }

    @Test
    fun factorsByHand() {
        // RULE2.md's examples for a 224x224 input.
        assertEquals(2, PhotoRule.reductionFactor(640, 480, 224, 224))    // 320x240, crop 240x240
        assertEquals(1, PhotoRule.reductionFactor(451, 300, 224, 224))    // 226x150 would crop to 150
        assertEquals(4, PhotoRule.reductionFactor(2000, 1500, 224, 224))  // 500x375; 8 gives 250x188
        assertEquals(8, PhotoRule.reductionFactor(4000, 3000, 224, 224))  // 500x375
        assertEquals(2, PhotoRule.reductionFactor(4000, 600, 224, 224))   // 2000x300; 4 gives 1000x150
        assertEquals(2, PhotoRule.reductionFactor(600, 4000, 224, 224))
        // The boundary: the reduced crop exactly the input, sizes rounded up.
        assertEquals(2, PhotoRule.reductionFactor(448, 448, 224, 224))
        assertEquals(2, PhotoRule.reductionFactor(447, 447, 224, 224))    // ceil(447 / 2) = 224
        assertEquals(1, PhotoRule.reductionFactor(446, 446, 224, 224))    // 223
        assertEquals(8, PhotoRule.reductionFactor(1785, 1785, 224, 224))  // ceil(1785 / 8) = 224
        assertEquals(4, PhotoRule.reductionFactor(1784, 1784, 224, 224))  // 223 at 8; 446 at 4
        // A wide input: the crop's width and height both count. 1000x100 to 200x20: 8 gives
        // 125x13 (crop 125x13), 4 gives 250x25 (crop 250x25), which holds 200x20.
        assertEquals(4, PhotoRule.reductionFactor(1000, 100, 200, 20))
        // Never more than 8, never below 1; v1 and stretch do not reduce.
        assertEquals(8, PhotoRule.reductionFactor(8000, 8000, 1, 1))
        assertEquals(1, PhotoRule.reductionFactor(10, 10, 224, 224))
        assertEquals(1, PhotoRule.reductionFor(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, 4000, 3000, 224, 224))
        assertEquals(1, PhotoRule.reductionFor(PhotoRuleSpec.STRETCH, 4000, 3000, 224, 224))
        assertEquals(8, PhotoRule.reductionFor(v2, 4000, 3000, 224, 224))
        assertThrows(IllegalArgumentException::class.java) { PhotoRule.reductionFactor(0, 10, 1, 1) }
    }

    @Test
    fun blockMeansByHand() {
        // m(n) = trunc(float32(2^32) / float32(256 n)): m(1) = 2^24, m(3) = 5592405, m(12) = 1398101.
        for (value in listOf(0, 1, 128, 255)) assertEquals(value, PhotoRule.blockMean(value, 1))
        // Powers of two: (sum + n/2) >> log2(n).
        assertEquals((3 + 1) shr 1, PhotoRule.blockMean(3, 2))
        assertEquals((1000 + 8) shr 4, PhotoRule.blockMean(1000, 16))
        assertEquals((16319 + 32) shr 6, PhotoRule.blockMean(16319, 64))
        assertEquals(255, PhotoRule.blockMean(255 * 64, 64))
        assertEquals(255, PhotoRule.blockMean(255 * 3, 3))     // 766 * 5592405 = 4283782230 = 255.3 * 2^24
        // The truncated multiplier rounds some thirds down, as Pillow does: 2 / 3 -> 0
        // ((2 + 1) * 5592405 = 16777215 < 2^24) and 5 / 3 -> 1 (6 * 5592405 = 2^25 - 2).
        assertEquals(0, PhotoRule.blockMean(2, 3))
        assertEquals(1, PhotoRule.blockMean(5, 3))
        assertEquals(2, PhotoRule.blockMean(7, 3))             // 8 * 5592405 = 44739240 = 2.67 * 2^24
        assertEquals(20, PhotoRule.blockMean(240, 12))         // 246 * 1398101 = 343932846 = 20.4999 * 2^24
    }

    @Test
    fun aFourByFourBlockByHand() {
        // 4x4 to 1x1: s = 8 (ceil(4/8) = 1), one edge block of all 16 pixels; no crop, no resize.
        // R = x + 4y: sum 120, (120 + 8) >> 4 = 8. G = 255 but 0 at (3, 3): sum 3825,
        // 3833 >> 4 = 239. B = 8 at (0, 0), else 0: (8 + 8) >> 4 = 1.
        val argb = IntArray(16) { i ->
            val x = i % 4
            val y = i / 4
            val g = if (x == 3 && y == 3) 0 else 255
            val b = if (i == 0) 8 else 0
            (0xFF shl 24) or ((x + 4 * y) shl 16) or (g shl 8) or b
        }
        assertArrayEquals(bytes(8, 239, 1), PhotoRule.prepare(argb, 4, 4, 1, 1, v2))
    }

    @Test
    fun edgeBlocksOfTwelveAndThreePixelsByHand() {
        // 7x5 to 2x2: s = 4 (8 gives 1x1), reduced 2x2, crop 2x2 = the input: the output is the
        // four block means. R = x + 10y, G = 255 - R, B = (x + 1) % 2.
        //   (0,0) cols 0-3, rows 0-3, n = 16: R 264 -> 272 >> 4 = 17; G 3816 -> 239; B 8 -> 1.
        //   (1,0) cols 4-6, rows 0-3, n = 12, m = 1398101: R 240 -> 246 m >> 24 = 20;
        //         G 2820 -> 2826 m = 3951033426 -> 235; B 8 -> 14 m = 19573414 -> 1.
        //   (0,1) cols 0-3, row 4, n = 4: R 166 -> 168 >> 2 = 42; G 854 -> 214; B 2 -> 1.
        //   (1,1) cols 4-6, row 4, n = 3, m = 5592405: R 135 -> 136 m = 760567080 -> 45;
        //         G 630 -> 631 m = 3528807555 -> 210; B 2 -> 3 m = 16777215 -> 0.
        // (Pillow's Image.reduce(4) of this image gives the same bytes.)
        val argb = IntArray(7 * 5) { i ->
            val x = i % 7
            val y = i / 7
            val r = x + 10 * y
            (0xFF shl 24) or (r shl 16) or ((255 - r) shl 8) or ((x + 1) % 2)
        }
        assertEquals(4, PhotoRule.reductionFactor(7, 5, 2, 2))
        assertArrayEquals(bytes(17, 239, 1, 20, 235, 1, 42, 214, 1, 45, 210, 0), PhotoRule.prepare(argb, 7, 5, 2, 2, v2))
    }

    @Test
    fun alphaIsCompositedOverWhiteBeforeTheReduction() {
        // 2x1 to 1x1, s = 8, n = 2 (m = 2^23): a transparent black pixel is white (255), so the
        // mean of 255 and 100 is (355 + 1) >> 1 = 178. Compositing after the reduction would
        // give colour 50 under alpha 128: overWhite(50, 128) = 38912 / 255 = 152.
        val argb = intArrayOf(0x00000000, (0xFF shl 24) or 0x646464)
        assertArrayEquals(bytes(178, 178, 178), PhotoRule.prepare(argb, 2, 1, 1, 1, v2))
        // Half-transparent: overWhite(0, 128) = 127, so (127 + 100 + 1) >> 1 = 114.
        val half = intArrayOf(128 shl 24, (0xFF shl 24) or 0x646464)
        assertArrayEquals(bytes(114, 114, 114), PhotoRule.prepare(half, 2, 1, 1, 1, v2))
    }

    /**
     * v2 on a photo is v1 on the photo reduced by a plain loop: each block's channels over
     * white summed and divided with floor(2^24 / n), which equals the single-precision m(n) for
     * every n <= 64 (checked with numpy, 2026-12-05): a route independent of the rule's.
     */
    @Test
    fun version2IsVersion1OnThePlainlyReducedPhoto() {
        val random = java.util.Random(23)
        val sizes = listOf(
            intArrayOf(99, 63, 12, 12), intArrayOf(63, 99, 12, 12), intArrayOf(50, 50, 6, 6),
            intArrayOf(203, 37, 9, 7), intArrayOf(37, 203, 7, 9), intArrayOf(130, 131, 16, 8),
            intArrayOf(17, 300, 2, 30), intArrayOf(45, 45, 45, 45), intArrayOf(100, 80, 40, 40),
            intArrayOf(41, 201, 20, 20)
        )
        for (size in sizes) {
            val (w, h, tw, th) = size.toList()
            for (transparent in listOf(false, true)) {
                val argb = IntArray(w * h) {
                    val alpha = if (transparent && random.nextInt(3) == 0) random.nextInt(256) else 255
                    (alpha shl 24) or (random.nextInt(1 shl 24))
                }
                val s = PhotoRule.reductionFactor(w, h, tw, th)
                val reduced = plainReduction(argb, w, h, s)
                val expected = PhotoRule.prepare(reduced, (w + s - 1) / s, (h + s - 1) / s, tw, th, PhotoRuleSpec.CENTER_CROP_BILINEAR_V1)
                val label = "${w}x$h to ${tw}x$th, s = $s, transparent $transparent"
                assertArrayEquals(label, expected, PhotoRule.prepare(argb, w, h, tw, th, v2))
                // A decoder that already reduced the photo (step 0 at 1/s): no second reduction.
                assertArrayEquals(label, expected, PhotoRule.prepareDecodedAtScale(rowsOf(reduced, (w + s - 1) / s), (w + s - 1) / s, (h + s - 1) / s, tw, th, v2))
            }
        }
        // The sizes above take every factor.
        assertEquals(setOf(1, 2, 4, 8), sizes.map { PhotoRule.reductionFactor(it[0], it[1], it[2], it[3]) }.toSet())
    }

    @Test
    fun readsOnlyTheSourceRowsOfTheCropsBlocks() {
        // 60x400 to 15x15: s = 4 (8 gives 8x50, too narrow), reduced 15x100, crop rows 42-56,
        // source rows 168-227.
        val argb = IntArray(60 * 400) { (0xFF shl 24) or ((it * 40503) and 0xFFFFFF) }
        val read = ArrayList<Int>()
        val rows = object : ArgbRows {
            override fun row(y: Int, into: IntArray) {
                read.add(y)
                System.arraycopy(argb, y * 60, into, 0, 60)
            }
        }
        assertEquals(4, PhotoRule.reductionFactor(60, 400, 15, 15))
        assertEquals(CropRect(0, 42, 15, 15), PhotoRule.cropRect(15, 100, 15, 15))
        val got = PhotoRule.prepare(rows, 60, 400, 15, 15, v2)
        assertEquals((168 until 228).toList(), read)
        assertArrayEquals(PhotoRule.prepare(argb, 60, 400, 15, 15, v2), got)
        assertTrue(!got.contentEquals(PhotoRule.prepare(argb, 60, 400, 15, 15, PhotoRuleSpec.CENTER_CROP_BILINEAR_V1)))
    }

    @Test
    fun aModelNamingVersion2GetsIt() {
        val v1 = "\"photo_rule\": {\"name\": \"center-crop-bilinear\", \"version\": 1}"
        val config = ModelConfig.parse(ModelFixtures.config.replace(v1, v1.replace("1}", "2}")), "m.tflite")
        assertEquals(v2, config.photoRule)
        // The fixture's input is 24 wide and 32 high: a 200x128 photo is reduced by 4 (50x32).
        val argb = IntArray(200 * 128) { i -> (0xFF shl 24) or ((i % 200) shl 16) or ((i / 200) shl 8) or (i % 7) }
        val rows = object : ArgbRows {
            override fun row(y: Int, into: IntArray) = System.arraycopy(argb, y * 200, into, 0, 200)
        }
        assertEquals(4, PhotoRule.reductionFactor(200, 128, 24, 32))
        assertArrayEquals(PhotoRule.prepare(argb, 200, 128, 24, 32, v2), PhotoRule.forModel(rows, 200, 128, config))
    }

    private fun bytes(vararg values: Int) = ByteArray(values.size) { values[it].toByte() }

    private fun rowsOf(argb: IntArray, width: Int) = object : ArgbRows {
        override fun row(y: Int, into: IntArray) = System.arraycopy(argb, y * width, into, 0, width)
    }

    private fun plainReduction(argb: IntArray, width: Int, height: Int, s: Int): IntArray {
        val outWidth = (width + s - 1) / s
        val outHeight = (height + s - 1) / s
        return IntArray(outWidth * outHeight) { i ->
            val bx = i % outWidth
            val by = i / outWidth
            val sums = LongArray(3)
            var n = 0
            for (y in by * s until minOf((by + 1) * s, height)) for (x in bx * s until minOf((bx + 1) * s, width)) {
                val p = argb[y * width + x]
                val a = p ushr 24
                sums[0] += PhotoRule.overWhite((p shr 16) and 0xFF, a).toLong()
                sums[1] += PhotoRule.overWhite((p shr 8) and 0xFF, a).toLong()
                sums[2] += PhotoRule.overWhite(p and 0xFF, a).toLong()
                n++
            }
            val mean = { sum: Long -> (((sum + n / 2) * ((1L shl 24) / n)) shr 24).toInt() }
            (0xFF shl 24) or (mean(sums[0]) shl 16) or (mean(sums[1]) shl 8) or mean(sums[2])
        }
    }
}
