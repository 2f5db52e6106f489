package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.util.Base64

/** A case of tests/vectors/photos.json or photos_v2.json (one format). */
internal class PhotoCase(
    val name: String, val width: Int, val height: Int, val rgba: ByteArray,
    val targetWidth: Int, val targetHeight: Int, val expected: ByteArray
) {
    companion object {
        // The only place that reads the JSON, so a change of JSON library touches these lines alone.
        fun all(vectors: JsonObject): List<PhotoCase> = SharedVectors.cases(vectors).map { case ->
            val decoder = Base64.getDecoder()
            PhotoCase(
                case.string("name"), case.int("source_width"), case.int("source_height"),
                decoder.decode(case.string("source_rgba_base64")), case.int("target_width"),
                case.int("target_height"), decoder.decode(case.string("expected_rgb_base64"))
            )
        }

        /** Every case of [file] through [rule], byte for byte; at least [least] cases. */
        fun checkAll(file: String, vectors: JsonObject, rule: PhotoRuleSpec, least: Int) {
            val check = Mismatches(file)
            val all = all(vectors)
            if (all.size < least) throw AssertionError("$file has only ${all.size} cases")
            for (case in all) {
                check.exact(case.name, "source bytes", case.width * case.height * 4, case.rgba.size)
                val got = PhotoRule.prepareRgba(case.rgba, case.width, case.height, case.targetWidth, case.targetHeight, rule)
                check.exact(case.name, "length", case.expected.size, got.size)
                val differing = case.expected.indices.filter { it < got.size && got[it] != case.expected[it] }
                check.exact(case.name, "differing bytes", "none",
                    if (differing.isEmpty()) "none" else "${differing.size}, first at ${differing[0]}")
            }
            check.assertNone()
        }
    }
}

/** tests/vectors/photos.json: the Kotlin photo rule must give Python's (Pillow's) bytes exactly. */
class PhotoRuleTest {
    private val vectors = SharedVectors.load("photos.json")

    private fun cases(): List<PhotoCase> = PhotoCase.all(vectors)

    @Test
    fun ruleIsTheOneImplemented() {
        val rule = vectors.obj("rule")
        assertEquals(PhotoRule.NAME, rule.string("name"))
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1.version, rule.int("version"))
    }

    @Test
    fun everyVectorMatchesPythonByteForByte() =
        PhotoCase.checkAll("photos.json", vectors, PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, least = 10)

    @Test
    fun rowsFromASourceGiveTheSameBytesAsAWholeArray() {
        val case = cases().first { it.rgba.size > 64 }
        val argb = IntArray(case.width * case.height) { i ->
            val b = { k: Int -> case.rgba[4 * i + k].toInt() and 0xFF }
            (b(3) shl 24) or (b(0) shl 16) or (b(1) shl 8) or b(2)
        }
        val read = ArrayList<Int>()
        val rows = object : ArgbRows {
            override fun row(y: Int, into: IntArray) {
                read.add(y)
                System.arraycopy(argb, y * case.width, into, 0, case.width)
            }
        }
        val crop = PhotoRule.cropRect(case.width, case.height, case.targetWidth, case.targetHeight)
        assertArrayEquals(case.expected, PhotoRule.prepare(rows, case.width, case.height, case.targetWidth, case.targetHeight))
        assertEquals((crop.top until crop.top + crop.height).toList(), read)  // only the crop's rows
    }

    @Test
    fun alphaOverWhiteByHand() {
        assertEquals(255, PhotoRule.overWhite(10, 0))
        assertEquals(10, PhotoRule.overWhite(10, 255))
        assertEquals(127, PhotoRule.overWhite(0, 128))    // (255 * 127 + 127) / 255 = 32512 / 255
        assertEquals(177, PhotoRule.overWhite(100, 128))  // 45312 / 255
    }

    @Test
    fun cropsByHand() {
        assertEquals(CropRect(50, 0, 300, 300), PhotoRule.cropRect(400, 300, 224, 224))
        assertEquals(CropRect(0, 50, 300, 300), PhotoRule.cropRect(300, 400, 224, 224))
        assertEquals(CropRect(0, 0, 400, 300), PhotoRule.cropRect(400, 300, 40, 30))
        assertEquals(CropRect(2, 0, 1, 1), PhotoRule.cropRect(5, 1, 1, 3))  // rounds to 0, kept at 1
        assertEquals(CropRect(2, 0, 5, 7), PhotoRule.cropRect(10, 7, 2, 3))
        // 100000 x 100000 overflows Int products: Long arithmetic keeps the crop right.
        assertEquals(CropRect(0, 0, 100000, 100000), PhotoRule.cropRect(100000, 100000, 50000, 50000))
        assertThrows(IllegalArgumentException::class.java) { PhotoRule.cropRect(0, 10, 1, 1) }
    }

    /**
     * Stretch (a model without photo_rule): the whole photo resized, no crop. Two photos.json
     * sources, expected bytes printed once (2026-11-30) by
     * `base64(photo.prepare(rgba, (h, w), photo.STRETCH))` and checked equal to
     * make_vectors.py's plain-Python `reference_resize` of the whole image over white.
     */
    @Test
    fun stretchMatchesPythonOnTwoVectorSources() {
        val expected = mapOf(
            "wider than the model: columns cropped, downscale by 7/3" to "MyoZeig7ziVZL4QsfX5M13xmKdorctRQ1ddn",
            "semi-transparent, cropped and upscaled" to
                "5Nnfj19zqHqOpVd/1YWo53afxMzJt6KqoHuJu4B85aCd+Jqp1d3VqbOYvLar3b2u88/F/5WD3/Dgr8eardWc1d+/5ei5+rSOt/" +
                "fHw+y1ldOFvOWl0+yJ9vW9Z/+Lk/+O6v7k4/6p8f+x/v+f"
        )
        for ((name, bytes) in expected) {
            val case = cases().first { it.name == name }
            val got = PhotoRule.prepareRgba(case.rgba, case.width, case.height, case.targetWidth, case.targetHeight, PhotoRuleSpec.STRETCH)
            assertArrayEquals(name, Base64.getDecoder().decode(bytes), got)
            // These sources are cropped by v1, so the two rules must give different bytes.
            assertTrue(name, !got.contentEquals(case.expected))
        }
    }

    @Test
    fun stretchKeepsTheColumnsACropDropsByHand() {
        // 4x2, black with a white last column, to 1x1. v1 crops the middle 2x2 (black): 0.
        // Stretch: across, scale 4, weights 0.625, 0.875, 0.875, 0.625 over 3, so the white
        // column weighs round(2^22 * 0.625 / 3) = 873813 and (255 * 873813 + 2^21) >> 22 = 53;
        // down, two equal rows of 53 stay 53.
        val white = 0xFFFFFFFF.toInt()
        val black = 0xFF000000.toInt()
        val argb = intArrayOf(black, black, black, white, black, black, black, white)
        assertArrayEquals(ByteArray(3) { 53 }, PhotoRule.prepare(argb, 4, 2, 1, 1, PhotoRuleSpec.STRETCH))
        assertArrayEquals(ByteArray(3), PhotoRule.prepare(argb, 4, 2, 1, 1, PhotoRuleSpec.CENTER_CROP_BILINEAR_V1))
        assertEquals(CropRect(0, 0, 4, 2), PhotoRule.regionOf(PhotoRuleSpec.STRETCH, 4, 2, 1, 1))
        assertEquals(CropRect(1, 0, 2, 2), PhotoRule.regionOf(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, 4, 2, 1, 1))
    }

    @Test
    fun forModelAppliesTheRuleItsConfigurationNames() {
        // The fixture's input is 24 wide and 32 high; a 48x32 photo is cropped to 24x32 by v1.
        val rule = "\"photo_rule\": {\"name\": \"center-crop-bilinear\", \"version\": 1}"
        val cropping = ModelConfig.parse(ModelFixtures.config, "m.tflite")
        val stretching = ModelConfig.parse(ModelFixtures.config.replace(rule, "\"photo_rule\": null"), "m.tflite")
        assertEquals(PhotoRuleSpec.STRETCH, stretching.photoRule)
        val argb = IntArray(48 * 32) { i -> (0xFF shl 24) or ((i % 48) * 5 shl 16) or ((i / 48) * 7 shl 8) or (i % 13) }
        val rows = object : ArgbRows {
            override fun row(y: Int, into: IntArray) = System.arraycopy(argb, y * 48, into, 0, 48)
        }
        for (config in listOf(cropping, stretching)) {
            assertArrayEquals(config.photoRule.toString(), PhotoRule.prepare(argb, 48, 32, 24, 32, config.photoRule),
                PhotoRule.forModel(rows, 48, 32, config))
        }
        assertTrue(!PhotoRule.forModel(rows, 48, 32, cropping).contentEquals(PhotoRule.forModel(rows, 48, 32, stretching)))
    }

    @Test
    fun halvingTwoByTwoByHand() {
        // Both weights are 2^21: pairs average as (p + q + 1) / 2; rows 0|255 -> 128 and 255|255.
        val white = 0xFFFFFFFF.toInt()
        val argb = intArrayOf(0xFF000000.toInt(), white, white, white)
        val got = PhotoRule.prepare(argb, 2, 2, 1, 1)
        assertArrayEquals(byteArrayOf(192.toByte(), 192.toByte(), 192.toByte()), got)
    }
}
