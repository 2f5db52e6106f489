package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.ByteArrayOutputStream
import java.io.File
import java.nio.ByteBuffer
import java.util.zip.ZipEntry
import java.util.zip.ZipFile
import java.util.zip.ZipOutputStream

class ModelFileTest {
    // What `tfuq convert` writes (tfuq/conversion/convert.py), for a 2-class 32x32 model with 4 passes.
    private val config = """
        {"format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 4,
         "labels": ["cat", "dog"],
         "input": {"name": "image", "height": 32, "width": 24, "channels": 3, "pixel_format": "RGB",
                   "dtype": "uint8", "preprocessing": "inside the model: feed raw pixels 0-255"},
         "output": {"name": "output_0", "kind": "probabilities", "layout": "(passes, classes)"},
         "mc_dropout": [{"layer": "mc_dropout", "input": "mask_0", "shape": [4, 16], "rate": 0.25},
                        {"layer": "mc_dropout_1", "input": "mask_1", "shape": [4, 2, 3], "rate": 0.5}],
         "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                         "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
         "decision": {"rule": "threshold", "score": "mutual_information", "threshold": 0.125},
         "source": {"keras_model": "tiny", "calibration_samples": 8}}
    """.trimIndent()

    // Enough of a flatbuffer for the reader: 4 bytes of root offset, then the TFL3 identifier.
    private val flatbuffer = byteArrayOf(0x1C, 0, 0, 0) + "TFL3".toByteArray(Charsets.US_ASCII) + ByteArray(120) { (it * 7).toByte() }

    /**
     * A model file the way the JDK would write one: ZipOutputStream appended after the
     * flatbuffer, which records offsets relative to the archive's own start.
     */
    private fun jdkModelFile(entries: Map<String, String>, method: Int = ZipEntry.DEFLATED): ByteArray {
        val zip = ByteArrayOutputStream()
        ZipOutputStream(zip).use { out ->
            out.setMethod(method)
            for ((name, text) in entries) {
                val bytes = text.toByteArray(Charsets.UTF_8)
                val entry = ZipEntry(name)
                if (method == ZipEntry.STORED) {
                    val crc = java.util.zip.CRC32()
                    crc.update(bytes, 0, bytes.size)
                    entry.size = bytes.size.toLong()
                    entry.crc = crc.value
                }
                out.putNextEntry(entry)
                out.write(bytes)
                out.closeEntry()
            }
        }
        return flatbuffer + zip.toByteArray()
    }

    private fun checkTheConfig(c: ModelConfig) {
        assertEquals(ModelConfig.Mode.MASKED, c.mode)
        assertEquals(4, c.passes)
        assertEquals(listOf("cat", "dog"), c.labels)
        assertEquals("image", c.input.name)
        assertEquals(32, c.input.height)
        assertEquals(24, c.input.width)
        assertEquals("output_0", c.outputName)
        assertEquals(2, c.mcDropout.size)
        assertEquals("mask_1", c.mcDropout[1].input)
        assertArrayEquals(intArrayOf(4, 2, 3), c.mcDropout[1].shape)
        assertArrayEquals(intArrayOf(2, 3), c.mcDropout[1].featureShape)
        assertEquals(0.25, c.mcDropout[0].rate, 0.0)
        assertEquals(DecisionRule.Threshold(Score.MUTUAL_INFORMATION, 0.125), c.decision)
        assertEquals("tiny", c.json.obj("source").string("keras_model"))
        assertEquals("class_7", c.label(7))
    }

    @Test
    fun readsAConfigurationFromBytesBuffersAndFiles() {
        val bytes = jdkModelFile(mapOf("readme.txt" to "not this one", ModelFile.CONFIG_NAME to config))
        checkTheConfig(ModelFile.readConfig(bytes))
        val mapped = ByteBuffer.allocateDirect(bytes.size)
        for (i in bytes.indices) mapped.put(i, bytes[i])
        checkTheConfig(ModelFile.readConfig(mapped, "asset"))
        assertEquals(0, mapped.position())
        val file = File.createTempFile("tfuq", ".tflite")
        try {
            file.writeBytes(bytes)
            checkTheConfig(ModelFile.readConfig(file))
            // The JDK's own reader agrees that this is the file's tfuq.json.
            ZipFile(file).use { zip ->
                val text = String(zip.getInputStream(zip.getEntry(ModelFile.CONFIG_NAME)).readBytes(), Charsets.UTF_8)
                assertEquals(text, ModelFile.readConfigText(file))
            }
        } finally {
            file.delete()
        }
    }

    @Test
    fun readsStoredEntriesAndArchiveComments() {
        val stored = jdkModelFile(mapOf(ModelFile.CONFIG_NAME to config), ZipEntry.STORED)
        checkTheConfig(ModelFile.readConfig(stored))
        // A zip comment moves the end record away from the end of the file.
        val zip = ByteArrayOutputStream()
        ZipOutputStream(zip).use { out ->
            out.setComment("made by a test")
            out.putNextEntry(ZipEntry(ModelFile.CONFIG_NAME))
            out.write(config.toByteArray(Charsets.UTF_8))
            out.closeEntry()
        }
        checkTheConfig(ModelFile.readConfig(flatbuffer + zip.toByteArray()))
    }

    /**
     * A file packed by the Python side (`tfuq.modelfile.pack`, absolute offsets, stored entry).
     * run_tests.sh makes one with the repository's own Python code when python3 is available.
     */
    @Test
    fun readsAFilePackedByPython() {
        val path = System.getProperty("tfuq.packedModel")
        assumeTrue("no -Dtfuq.packedModel (python3 unavailable to run_tests.sh)", path != null && path.length > 0)
        val model = File(path!!)
        val expected = Json.parseObject(String(File("$path.json").readBytes(), Charsets.UTF_8), "expected")
        val c = ModelFile.readConfig(model)
        assertEquals(expected.int("passes"), c.passes)
        assertEquals(expected.array("labels").strings(), c.labels)
        assertEquals(expected.obj("input").string("name"), c.input.name)
        assertEquals(expected.obj("input").int("height"), c.input.height)
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, c.photoRule)
        assertEquals(expected.obj("output").string("name"), c.outputName)
        assertArrayEquals(expected.array("mc_dropout").obj(0).array("shape").ints(), c.mcDropout[0].shape)
        assertEquals(DecisionRule.fromJson(expected.obj("decision")), c.decision)
        assertEquals(ModelConfig.FORMAT_VERSION, c.formatVersion)
        ZipFile(model).use { zip -> assertTrue(zip.getEntry(ModelFile.CONFIG_NAME) != null) }
    }

    /** A real `tfuq convert` output, when one is passed with -Dtfuq.model (needs TensorFlow to make). */
    @Test
    fun readsARealConvertedModel() {
        val path = System.getProperty("tfuq.model")
        assumeTrue("no -Dtfuq.model given", path != null && path.length > 0)
        val c = ModelFile.readConfig(File(path!!))
        assertTrue(c.passes >= 1)
        assertEquals(c.passes, c.mcDropout[0].shape!![0])
        val masks = c.masks(0L)
        assertEquals(c.mcDropout.size, masks.size)
        // Its out-of-distribution scores (tfuq convert writes energy by default), as the JSON lists them.
        val listed = c.json.arrayOrNull("scores")?.objects() ?: emptyList()
        assertEquals(listed.map { it.string("name") to it.string("output") }, c.scores.map { it.name to it.output })
        for (score in c.scores) assertEquals("score_${score.name}", score.output)
        assertTrue(c.scores.map { it.name }.containsAll(c.decision.scoresRead))
        System.out.println("uqcore: the real model carries scores ${c.scores.map { it.name }}; rule ${c.decision}")
    }

    private fun refused(bytes: ByteArray): String =
        assertThrows(ModelFileException::class.java) { ModelFile.readConfig(bytes, "m.tflite") }.message!!

    @Test
    fun refusesFilesWithoutTfuqConfiguration() {
        assertEquals("m.tflite carries no tfuq configuration (no zip archive at its end; truncated, or not made by `tfuq convert`)", refused(flatbuffer))
        assertEquals("m.tflite carries no tfuq configuration (its zip archive holds no tfuq.json; truncated, or not made by `tfuq convert`)",
            refused(jdkModelFile(mapOf("metadata.json" to "{}"))))
        assertEquals("m.tflite is not a TFLite flatbuffer (no TFL3 identifier)", refused("PK\u0003\u0004 not a model".toByteArray(Charsets.ISO_8859_1)))
        assertEquals("m.tflite is not a TFLite flatbuffer (no TFL3 identifier)", refused(ByteArray(3)))
        val whole = jdkModelFile(mapOf(ModelFile.CONFIG_NAME to config))
        assertTrue(refused(whole.copyOfRange(0, whole.size - 5)).startsWith("m.tflite carries no tfuq configuration"))
        val missing = assertThrows(ModelFileException::class.java) { ModelFile.readConfig(File("/nonexistent/m.tflite")) }
        assertTrue(missing.message!!, missing.message!!.startsWith("cannot read model file /nonexistent/m.tflite"))
    }

    @Test
    fun refusesDamagedEntries() {
        val whole = jdkModelFile(mapOf(ModelFile.CONFIG_NAME to config), ZipEntry.STORED)
        // Flip one byte inside the stored JSON text: the CRC must catch it.
        val at = String(whole, Charsets.ISO_8859_1).indexOf("\"cat\"")
        val damaged = whole.copyOf()
        damaged[at + 1] = 'b'.toByte()
        assertEquals("m.tflite: tfuq.json fails its CRC check (the file is damaged)", refused(damaged))
    }

    @Test
    fun refusesConfigurationsThatAreNotTfuqs() {
        fun withConfig(text: String) = refused(jdkModelFile(mapOf(ModelFile.CONFIG_NAME to text)))
        val syntax = withConfig("{not json")
        assertTrue(syntax, syntax.startsWith("m.tflite: tfuq.json: JSON syntax error: "))
        assertTrue("org.json's message quotes the input; cut: $syntax", !syntax.contains("{not json"))
        assertEquals("m.tflite: tfuq.json is not a tfuq model configuration (format is not \"tfuq-model\")",
            withConfig(config.replace("\"tfuq-model\"", "\"other\"")))
        assertEquals("m.tflite: configuration version 2 is newer than this reader understands (1); update the app",
            withConfig(config.replace("\"format_version\": 1", "\"format_version\": 2")))
        assertEquals("m.tflite: tfuq.json.passes is missing", withConfig(config.replace("\"passes\": 4,", "")))
        assertEquals("m.tflite: tfuq.json.mc_dropout[0].shape is (3, 16); a masked model's mask is (passes=4, *features)",
            withConfig(config.replace("[4, 16]", "[3, 16]")))
        assertTrue(withConfig(config.replace("\"version\": 1,", "\"version\": 2,")).contains("seed scheme splitmix64-counter v2"))
        assertTrue(withConfig(config.replace("\"RGB\"", "\"BGR\"")).contains("this reader handles 3-channel RGB uint8"))
        assertTrue(withConfig(config.replace("\"rate\": 0.5", "\"rate\": 1.5")).contains("mc_dropout[1].rate must be in (0, 1)"))
        assertTrue(withConfig(config.replace("\"mode\": \"masked\"", "\"mode\": \"magic\"")).contains("mode \"magic\""))
        assertEquals("m.tflite: tfuq.json.decision: unknown rule \"vote\"; one of interval, threshold, ood, all",
            withConfig(config.replace("\"rule\": \"threshold\"", "\"rule\": \"vote\"")))
    }

    @Test
    fun inGraphModelsHaveNoMaskInputs() {
        val inGraph = config.replace("\"mode\": \"masked\"", "\"mode\": \"in-graph\"")
            .replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL),
                "\"mc_dropout\": [{\"layer\": \"mc_dropout\", \"rate\": 0.25}]")
        assertTrue("the edit took: $inGraph", !inGraph.contains("mask_0"))
        val c = ModelFile.readConfig(jdkModelFile(mapOf(ModelFile.CONFIG_NAME to inGraph)))
        assertEquals(ModelConfig.Mode.IN_GRAPH, c.mode)
        assertNull(c.mcDropout[0].input)
        assertThrows(IllegalStateException::class.java) { c.masks(0L) }
    }

    @Test
    fun deterministicModelsAreReadToo() {
        val text = config.replace("\"mode\": \"masked\"", "\"mode\": \"deterministic\"")
            .replace("\"passes\": 4", "\"passes\": 1")
            .replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL),
                "\"mc_dropout\": [{\"layer\": \"mc_dropout\", \"rate\": 0.25}]")
        assertTrue("the edit took: $text", !text.contains("mask_0"))
        val c = ModelFile.readConfig(jdkModelFile(mapOf(ModelFile.CONFIG_NAME to text)))
        assertEquals(ModelConfig.Mode.DETERMINISTIC, c.mode)
        assertEquals(1, c.passes)
        assertEquals(emptyList<Mask>(), c.masks(0L))
    }

    @Test
    fun configMasksMatchTheGenerator() {
        val c = ModelFile.readConfig(jdkModelFile(mapOf(ModelFile.CONFIG_NAME to config)))
        val masks = c.masks(UInt64.parse("18446744073709551615"))
        val direct = SeededMasks.masksFor(-1L, 4, listOf(MaskLayer(intArrayOf(16), 0.25), MaskLayer(intArrayOf(2, 3), 0.5)))
        assertEquals(direct.map { it.toBitString() }, masks.map { it.toBitString() })
        assertArrayEquals(intArrayOf(4, 2, 3), masks[1].shape)
    }
}
