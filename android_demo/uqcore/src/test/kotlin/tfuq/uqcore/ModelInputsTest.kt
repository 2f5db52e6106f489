package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

/** The input mapping and quantization LiteRtModel runs, on hand-computed cases. */
class ModelInputsTest {
    // The configuration lists mask_1 before mask_0: the mapping follows mc_dropout's order.
    private val text = """
        {"format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 2,
         "labels": ["a", "b", "c"],
         "input": {"name": "image", "height": 1, "width": 2, "channels": 3, "pixel_format": "RGB", "dtype": "uint8"},
         "output": {"name": "output_0"},
         "mc_dropout": [{"layer": "head", "input": "mask_1", "shape": [2, 3], "rate": 0.5},
                        {"layer": "body", "input": "mask_0", "shape": [2, 2, 2], "rate": 0.25}],
         "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24},
         "decision": {"rule": "interval", "conf_factor": 1.0}}
    """.trimIndent()
    private val config = ModelConfig.parse(text, "m")
    private val inputs = ModelInputs(config)

    private fun mask(shape: IntArray, bits: String) = Mask(shape, ByteArray(bits.length) { (bits[it] - '0').toByte() })

    private val head = mask(intArrayOf(2, 3), "101011")
    private val body = mask(intArrayOf(2, 2, 2), "01100111")
    private val pixels = byteArrayOf(0, 1, 127, 128.toByte(), 200.toByte(), 255.toByte())

    private val uint8Unit = TensorQuantization(TensorType.UINT8, 1.0, 0)

    @Test
    fun eachMaskGoesToTheInputItsLayerNames() {
        assertEquals(listOf("image", "mask_1", "mask_0"), inputs.names)
        val fed = inputs.feed(pixels, listOf(head, body)) { TensorQuantization.float32() }
        assertEquals(listOf("image", "mask_1", "mask_0"), fed.keys.toList())
        // float32: the 0/1 values themselves, in row-major order.
        val m1 = fed.getValue("mask_1")
        assertEquals(listOf(1f, 0f, 1f, 0f, 1f, 1f), List(6) { m1.getFloat(4 * it) })
        val m0 = fed.getValue("mask_0")
        assertEquals(listOf(0f, 1f, 1f, 0f, 0f, 1f, 1f, 1f), List(8) { m0.getFloat(4 * it) })
        val image = fed.getValue("image")
        assertEquals(listOf(0f, 1f, 127f, 128f, 200f, 255f), List(6) { image.getFloat(4 * it) })
    }

    @Test
    fun masksInTheWrongOrderOrNumberAreRefused() {
        // body's (2, 2, 2) mask offered for head's (2, 3) input.
        val swapped = assertThrows(IllegalArgumentException::class.java) {
            inputs.feed(pixels, listOf(body, head)) { TensorQuantization.float32() }
        }
        assertEquals("mask for mask_1 has shape (2, 2, 2), the model expects (2, 3)", swapped.message)
        val missing = assertThrows(IllegalArgumentException::class.java) {
            inputs.feed(pixels, listOf(head)) { TensorQuantization.float32() }
        }
        assertEquals("1 masks for 2 mask inputs", missing.message)
    }

    @Test
    fun int8MasksUseTheTensorsScaleAndZeroPoint() {
        // A 0/1 input calibrated to [0, 1] in int8: scale 1/255, zero point -128, so
        // 0 -> 0/s - 128 = -128 and 1 -> 255 - 128 = 127.
        val calibrated = TensorQuantization(TensorType.INT8, 1.0 / 255, -128)
        // Another grid: scale 0.5, zero point 3, so 0 -> 3 and 1 -> 1/0.5 + 3 = 5.
        val coarse = TensorQuantization(TensorType.INT8, 0.5, 3)
        val byName = mapOf("image" to uint8Unit, "mask_1" to calibrated, "mask_0" to coarse)
        val fed = inputs.feed(pixels, listOf(head, body)) { byName.getValue(it) }
        val m1 = fed.getValue("mask_1")
        assertEquals(listOf(127, -128, 127, -128, 127, 127), List(6) { m1.get(it).toInt() })
        val m0 = fed.getValue("mask_0")
        assertEquals(listOf(3, 5, 5, 3, 3, 5, 5, 5), List(8) { m0.get(it).toInt() })
    }

    @Test
    fun float32ScaleOfOneOver255StillMapsOneTo127() {
        // The interpreter reports the scale as a float32: 1/255 becomes 0.0039215688593685627,
        // 1 / that = 254.99999..., which rounds to 255: still 127 after the zero point.
        val reported = TensorQuantization.of(TensorType.INT8, (1f / 255).toDouble(), -128)
        assertEquals(127, reported.quantize(1.0))
        assertEquals(-128, reported.quantize(0.0))
    }

    @Test
    fun aMaskGridThatCannotHoldOneClampsAsPythonDoes() {
        // scale 0.001: 1 -> 1000, clamped to 127 (np.clip in tfuq/runtime/interpreter.py).
        val fine = TensorQuantization(TensorType.INT8, 0.001, 0)
        val fed = inputs.feed(pixels, listOf(head, body)) { if (it == "image") uint8Unit else fine }
        assertEquals(listOf(127, 0, 127, 0, 127, 127), List(6) { fed.getValue("mask_1").get(it).toInt() })
    }

    @Test
    fun pixelsIntoAnInt8ImageInputShiftByTheZeroPoint() {
        // scale 1, zero point -128: pixel p -> p - 128.
        val shifted = TensorQuantization(TensorType.INT8, 1.0, -128)
        val fed = inputs.feed(pixels, listOf(head, body)) { if (it == "image") shifted else TensorQuantization.float32() }
        assertEquals(listOf(-128, -127, -1, 0, 72, 127), List(6) { fed.getValue("image").get(it).toInt() })
    }

    @Test
    fun aDeterministicModelTakesTheImageAlone() {
        val deterministic = ModelConfig.parse(
            text.replace("\"masked\"", "\"deterministic\"").replace("\"passes\": 2", "\"passes\": 1")
                .replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL), "\"mc_dropout\": [{\"layer\": \"head\", \"rate\": 0.5}]"),
            "d"
        )
        val plain = ModelInputs(deterministic)
        assertEquals(listOf("image"), plain.names)
        assertEquals(emptyList<MaskSpec>(), plain.maskLayers)
        assertEquals(listOf("image"), plain.feed(pixels, emptyList()) { uint8Unit }.keys.toList())
        plain.checkInputNames(listOf("image"))
    }

    @Test
    fun anInGraphModelIsRefused() {
        val inGraph = ModelConfig.parse(
            text.replace("\"masked\"", "\"in-graph\"")
                .replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL), "\"mc_dropout\": [{\"layer\": \"head\", \"rate\": 0.5}]"),
            "g"
        )
        val error = assertThrows(ModelFileException::class.java) { ModelInputs(inGraph) }
        assertEquals(true, error.message!!.contains("--mode in-graph"))
    }

    @Test
    fun theInterpretersTensorsAreCheckedAgainstTheConfiguration() {
        inputs.checkInputNames(listOf("mask_0", "image", "mask_1")) // any order
        val missing = assertThrows(ModelFileException::class.java) { inputs.checkInputNames(listOf("image", "mask_0")) }
        assertEquals("the model takes inputs [image, mask_0], its configuration lists [image, mask_0, mask_1]", missing.message)
        assertThrows(ModelFileException::class.java) { inputs.checkInputNames(listOf("image", "mask_0", "mask_1", "extra")) }
        assertThrows(ModelFileException::class.java) { inputs.checkInputNames(listOf("image", "mask_0", "mask_1", "mask_1")) }

        inputs.checkImageShape(intArrayOf(1, 1, 2, 3))
        val image = assertThrows(ModelFileException::class.java) { inputs.checkImageShape(intArrayOf(1, 2, 1, 3)) }
        assertEquals("image input is [1, 2, 1, 3], the configuration says [1, 1, 2, 3]", image.message)

        inputs.checkMaskShape("mask_0", intArrayOf(2, 2, 2))
        val maskShape = assertThrows(ModelFileException::class.java) { inputs.checkMaskShape("mask_0", intArrayOf(2, 3)) }
        assertEquals("mask input mask_0 is [2, 3], the configuration says [2, 2, 2]", maskShape.message)
        assertThrows(ModelFileException::class.java) { inputs.checkMaskShape("image", intArrayOf(1, 1, 2, 3)) }

        assertEquals(3, inputs.classesOf(intArrayOf(2, 3)))
        assertEquals("output is [4, 3]; a tfuq model gives (passes=2, classes)",
            assertThrows(ModelFileException::class.java) { inputs.classesOf(intArrayOf(4, 3)) }.message)
        assertEquals("3 labels for 4 classes", assertThrows(ModelFileException::class.java) { inputs.classesOf(intArrayOf(2, 4)) }.message)
        assertThrows(ModelFileException::class.java) { inputs.classesOf(intArrayOf(1, 2, 3)) }
    }

    @Test
    fun scoreOutputsAreOneByOneAndListedInTheConfiguration() {
        val scored = ModelInputs(ModelConfig.parse(text.replace("\"output\": {\"name\": \"output_0\"},",
            "\"output\": {\"name\": \"probabilities\"}, \"scores\": [{\"name\": \"energy\", \"output\": \"score_energy\", \"layout\": \"(1, 1)\"}],"), "m"))
        scored.checkScoreShape("score_energy", intArrayOf(1, 1))
        assertEquals("score energy needs a (1, 1) output named score_energy; it is [2, 1]",
            assertThrows(ModelFileException::class.java) { scored.checkScoreShape("score_energy", intArrayOf(2, 1)) }.message)
        assertEquals("no score output named score_knn in the configuration",
            assertThrows(ModelFileException::class.java) { scored.checkScoreShape("score_knn", intArrayOf(1, 1)) }.message)
    }

    @Test
    fun tensorTypesByTheInterpretersNames() {
        assertEquals(TensorType.INT8, TensorType.of("INT8", "mask_0"))
        assertEquals(TensorType.UINT8, TensorType.of("UINT8", "image"))
        assertEquals(TensorType.FLOAT32, TensorType.of("FLOAT32", "output_0"))
        assertEquals("tensor mask_0 is INT16; tfuq models use uint8, int8 or float32",
            assertThrows(ModelFileException::class.java) { TensorType.of("INT16", "mask_0") }.message)
        // A float tensor reports scale 0 and zero point 0: not a quantization to check.
        val float = TensorQuantization.of(TensorType.FLOAT32, 0.0, 0)
        assertEquals(TensorType.FLOAT32, float.type)
        assertThrows(IllegalArgumentException::class.java) { TensorQuantization.of(TensorType.INT8, 0.0, 0) }
    }
}
