package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * tfuq.json as org.json reads it and ModelConfig checks it: the types, ranges and
 * cross-field consistency a model file must have, each refused with the path of the bad value.
 */
class ModelConfigTest {
    private val config = ModelFixtures.config

    private fun refused(text: String): String =
        assertThrows(ModelFileException::class.java) { ModelConfig.parse(text, "m.tflite") }.message!!

    private fun edit(old: String, new: String): String {
        assertTrue("the fixture contains $old", config.contains(old))
        return config.replace(old, new)
    }

    @Test
    fun readsTheFixture() {
        val c = ModelConfig.parse(config, "m.tflite")
        assertEquals(4, c.passes)
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, c.photoRule)
        assertEquals(DecisionRule.Threshold(Score.MUTUAL_INFORMATION, 0.125, calibrated = true), c.decision)
        assertEquals("tiny", c.json.obj("source").string("keras_model"))
        assertEquals(setOf("keras_model", "calibration_samples"), c.json.obj("source").keys)
    }

    @Test
    fun scoresAreReadAndAGuardMustReadOneOfThem() {
        assertEquals(emptyList<ModelScore>(), ModelConfig.parse(config, "m.tflite").scores) // files from before scores
        val scores = "\"scores\": [{\"name\": \"energy\", \"output\": \"score_energy\", \"layout\": \"(1, 1)\", " +
            "\"larger_means\": \"more like the training data\", \"definition\": \"logsumexp of the MC-mean logits\"}], "
        val guard = "\"decision\": {\"rule\": \"all\", \"rules\": [{\"rule\": \"ood\", \"score\": \"energy\", \"threshold\": 3.2, " +
            "\"calibration\": {\"alpha\": 0.05, \"delta\": 0.1}}, {\"rule\": \"interval\", \"conf_factor\": 1.0}]}, \"ignored\": "
        val c = ModelConfig.parse(edit("\"decision\": ", scores + guard), "m.tflite")
        assertEquals(listOf("energy"), c.scores.map { it.name })
        assertEquals("score_energy", c.scores[0].output)
        assertEquals("logsumexp of the MC-mean logits", c.scores[0].definition)
        assertEquals(DecisionRule.All(listOf(DecisionRule.Ood("energy", 3.2, calibrated = true), DecisionRule.Interval(1.0))), c.decision)
        assertEquals("m.tflite: decision: the OOD guard reads score \"energy\", which the model does not output",
            refused(edit("\"decision\": ", guard)))
        assertEquals("m.tflite: decision: the OOD guard reads score \"energy\", which the model does not output",
            refused(edit("\"decision\": ", scores.replace("\"energy\", \"output", "\"knn\", \"output") + guard)))
        assertEquals("m.tflite: tfuq.json.scores[0].output \"output_0\" names an input or another output",
            refused(edit("\"decision\": ", scores.replace("score_energy", "output_0") + "\"decision\": ")))
        assertEquals("m.tflite: tfuq.json.scores[1].output \"score_energy\" names an input or another output",
            refused(edit("\"decision\": ", scores.replace("}], ", "}, {\"name\": \"knn\", \"output\": \"score_energy\"}], ") + "\"decision\": ")))
        assertEquals("m.tflite: scores must have distinct names",
            refused(edit("\"decision\": ", scores.replace("}], ", "}, {\"name\": \"energy\", \"output\": \"score_other\"}], ") + "\"decision\": ")))
        assertEquals("m.tflite: tfuq.json.scores[0].name must be an identifier, got \"an energy\"",
            refused(edit("\"decision\": ", scores.replace("\"energy\", \"output", "\"an energy\", \"output") + "\"decision\": ")))
        assertEquals("m.tflite: tfuq.json.scores[0].output is missing",
            refused(edit("\"decision\": ", "\"scores\": [{\"name\": \"energy\"}], \"decision\": ")))
    }

    @Test
    fun aGuardOnAScoreOfThePassesNeedsNoModelScore() {
        for (name in listOf("max_probability", "predictive_entropy", "mutual_information", "variation_ratio")) {
            val guard = "\"decision\": {\"rule\": \"all\", \"rules\": [{\"rule\": \"ood\", \"score\": \"$name\", \"threshold\": 0.25}, " +
                "{\"rule\": \"interval\", \"conf_factor\": 1.0}]}, \"ignored\": "
            val c = ModelConfig.parse(edit("\"decision\": ", guard), "m.tflite")
            assertEquals(emptyList<ModelScore>(), c.scores)
            assertEquals(DecisionRule.All(listOf(DecisionRule.Ood(name, 0.25), DecisionRule.Interval(1.0))), c.decision)
        }
        // Any other name is a model score, which the model must output.
        val other = "\"decision\": {\"rule\": \"ood\", \"score\": \"expected_entropy\", \"threshold\": 0.25}, \"ignored\": "
        assertEquals("m.tflite: decision: the OOD guard reads score \"expected_entropy\", which the model does not output",
            refused(edit("\"decision\": ", other)))
    }

    @Test
    fun theFuzzersAbsoluteOffsetFileHasPythonsLayout() {
        val bytes = ModelFixtures.absoluteOffsetsModelFile(config)
        val eocd = ModelFixtures.lastIndexOf(bytes, 0x06054b50)
        val directory = ModelFixtures.lastIndexOf(bytes, 0x02014b50)
        // Offsets from the start of the whole file: the directory is where the end record says,
        // and the entry's local header where the directory says.
        assertEquals(directory.toLong(), ModelFixtures.u32(bytes, eocd + 16))
        assertEquals(ModelFixtures.flatbuffer.size.toLong(), ModelFixtures.u32(bytes, directory + 42))
        assertEquals(0x04034b50L, ModelFixtures.u32(bytes, ModelFixtures.flatbuffer.size))
        assertEquals(4, ModelFile.readConfig(bytes, "absolute").passes)
    }

    @Test
    fun valuesOfTheWrongTypeAreNotCoerced() {
        // org.json's getInt would read "32" as 32 and 32.5 as 32; a model file saying either is wrong.
        assertEquals("m.tflite: tfuq.json.input.height: expected an integer, got \"32\"", refused(edit("\"height\": 32", "\"height\": \"32\"")))
        assertEquals("m.tflite: tfuq.json.input.height: expected an integer, got 32.5", refused(edit("\"height\": 32", "\"height\": 32.5")))
        assertEquals("m.tflite: tfuq.json.passes: expected an integer, got 4.0", refused(edit("\"passes\": 4", "\"passes\": 4.0")))
        assertEquals("m.tflite: tfuq.json.input.name: expected a string, got 7", refused(edit("\"name\": \"image\"", "\"name\": 7")))
        assertEquals("m.tflite: tfuq.json.mc_dropout[1].shape[2]: expected an integer, got \"3\"", refused(edit("[4, 2, 3]", "[4, 2, \"3\"]")))
        assertEquals("m.tflite: tfuq.json.labels[1]: expected a string, got null", refused(edit("\"dog\"", "null")))
        assertEquals("m.tflite: tfuq.json.mc_dropout: expected an array, got an object", refused(edit("\"mc_dropout\": [", "\"mc_dropout\": {\"x\": [").replace("\"rate\": 0.5}],", "\"rate\": 0.5}]},")))
        assertEquals("m.tflite: tfuq.json.input.height is missing", refused(edit("\"height\": 32, ", "")))
        assertEquals("m.tflite: tfuq.json.input: expected an object, got null", refused(edit("\"input\": {", "\"input\": null, \"was_input\": {")))
        // A number too large for an int is not wrapped round.
        assertEquals("m.tflite: tfuq.json.passes: expected an integer, got 4294967300", refused(edit("\"passes\": 4", "\"passes\": 4294967300")))
    }

    @Test
    fun rangesAndCrossFieldConsistency() {
        assertTrue(refused(edit("\"rate\": 0.25", "\"rate\": 0")).contains("mc_dropout[0].rate must be in (0, 1), got 0.0"))
        assertTrue(refused(edit("\"rate\": 0.25", "\"rate\": 1")).contains("mc_dropout[0].rate must be in (0, 1), got 1.0"))
        assertEquals("m.tflite: passes must be at least 1, got 0", refused(edit("\"passes\": 4", "\"passes\": 0")))
        // passes and the masks' first axis disagree.
        assertEquals("m.tflite: tfuq.json.mc_dropout[0].shape is (4, 16); a masked model's mask is (passes=5, *features)",
            refused(edit("\"passes\": 4", "\"passes\": 5")))
        assertTrue(refused(edit("[4, 16]", "[4, 0]")).contains("mc_dropout[0].shape is (4, 0)"))
        assertTrue(refused(edit("[4, 16]", "[4]")).contains("mc_dropout[0].shape is (4,)"))
        assertEquals("m.tflite: input is 0x24, not an image size", refused(edit("\"height\": 32", "\"height\": 0")))
        assertEquals("m.tflite: input is 65536x65536, not an image size",
            refused(edit("\"height\": 32", "\"height\": 65536").replace("\"width\": 24", "\"width\": 65536")))
        // Dimensions whose product overflows a Long if multiplied out blindly.
        assertEquals("m.tflite: tfuq.json.mc_dropout[0].shape (4, 2147483647, 2147483647, 2147483647) has more than 268435456 elements",
            refused(edit("[4, 16]", "[4, 2147483647, 2147483647, 2147483647]")))
        assertEquals("m.tflite: mc_dropout names input \"mask_0\" twice, or as the image input",
            refused(edit("\"input\": \"mask_1\"", "\"input\": \"mask_0\"")))
        assertEquals("m.tflite: mc_dropout names input \"image\" twice, or as the image input",
            refused(edit("\"input\": \"mask_1\"", "\"input\": \"image\"")))
        assertEquals("m.tflite: mc_dropout lists no layer",
            refused(config.replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL), "\"mc_dropout\": []")))
        assertEquals("m.tflite: tfuq.json.decision.threshold: expected a number, got \"high\"",
            refused(edit("\"threshold\": 0.125", "\"threshold\": \"high\"")))
        // org.json refuses NaN as an object's value but keeps it inside an array.
        assertEquals("m.tflite: tfuq.json.mc_dropout[0].shape[1]: expected an integer, got NaN", refused(edit("[4, 16]", "[4, NaN]")))
    }

    /**
     * input.photo_rule, accepted and refused as tfuq/runtime/photo.py's rule_of does: outcomes
     * written from its code, and each also run through Python's rule_of (2026-11-30).
     */
    @Test
    fun photoRuleIsReadAsPythonsRuleOfReadsIt() {
        val rule = "\"photo_rule\": {\"name\": \"center-crop-bilinear\", \"version\": 1}"
        val read = { text: String -> ModelConfig.parse(text, "m.tflite").photoRule }
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1, read(config))
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V2, read(edit(rule, rule.replace("1}", "2}"))))
        // Keys beyond name and version are ignored, as Python ignores them.
        assertEquals(PhotoRuleSpec.CENTER_CROP_BILINEAR_V1,
            read(edit(rule, "\"photo_rule\": {\"version\": 1, \"note\": \"x\", \"name\": \"center-crop-bilinear\"}")))
        // Models converted before the rule existed: absent or null is the whole photo stretched.
        val absent = config.replace(Regex(",\\s*\"photo_rule\": \\{[^}]*}"), "")
        assertTrue(absent, !absent.contains("photo_rule") && absent.contains("\"preprocessing\""))
        assertEquals(PhotoRuleSpec.STRETCH, read(absent))
        assertEquals(PhotoRuleSpec.STRETCH, read(edit(rule, "\"photo_rule\": null")))

        val unknown = "m.tflite: tfuq.json.input.photo_rule: unknown photo rule"
        val knows = "this reader knows center-crop-bilinear v1, center-crop-bilinear v2 (update the app)"
        assertEquals("$unknown letterbox v1; $knows", refused(edit("\"center-crop-bilinear\"", "\"letterbox\"")))
        assertEquals("$unknown center-crop-bilinear v3; $knows", refused(edit(rule, rule.replace("1}", "3}"))))
        assertEquals("$unknown center-crop-bilinear v0; $knows", refused(edit(rule, rule.replace("1}", "0}"))))
        // STRETCH is what a missing rule means, not a rule a file may name.
        assertEquals("$unknown stretch (no photo_rule in the model) v0; $knows",
            refused(edit(rule, "\"photo_rule\": {\"name\": \"stretch (no photo_rule in the model)\", \"version\": 0}")))

        val path = "m.tflite: tfuq.json.input.photo_rule"
        assertEquals("$path.version: expected an integer, got 1.0", refused(edit(rule, rule.replace("1}", "1.0}"))))
        assertEquals("$path.version: expected an integer, got \"1\"", refused(edit(rule, rule.replace("1}", "\"1\"}"))))
        assertEquals("$path.version: expected an integer, got true", refused(edit(rule, rule.replace("1}", "true}"))))
        assertEquals("$path.version: expected an integer, got null", refused(edit(rule, rule.replace("1}", "null}"))))
        assertEquals("$path.version is missing", refused(edit(rule, "\"photo_rule\": {\"name\": \"center-crop-bilinear\"}")))
        assertEquals("$path.name: expected a string, got 7", refused(edit("\"center-crop-bilinear\"", "7")))
        assertEquals("$path.name is missing", refused(edit(rule, "\"photo_rule\": {}")))
        assertEquals("$path: expected an object, got \"center-crop-bilinear\"",
            refused(edit(rule, "\"photo_rule\": \"center-crop-bilinear\"")))
        assertEquals("$path: expected an object, got an array", refused(edit(rule, "\"photo_rule\": []")))
        assertEquals("$path: expected an object, got false", refused(edit(rule, "\"photo_rule\": false")))
    }

    @Test
    fun whatIsNotJsonIsRefusedWithoutQuotingTheWholeFile() {
        val syntax = refused("{\"format\": \"tfuq-model\", \"passes\": ")
        assertTrue(syntax, syntax.startsWith("m.tflite: tfuq.json: JSON syntax error: "))
        assertTrue(syntax, !syntax.contains("tfuq-model"))
        assertEquals("m.tflite: tfuq.json: expected a JSON object at the top level, got an array", refused("[1, 2]"))
        assertEquals("m.tflite: tfuq.json: unexpected text after the JSON value", refused("$config {}"))
        assertTrue(refused("").startsWith("m.tflite: tfuq.json: JSON syntax error: End of input"))
        assertTrue(refused(edit("\"threshold\": 0.125", "\"threshold\": NaN")).startsWith("m.tflite: tfuq.json: JSON syntax error: "))
    }

    @Test
    fun nestingTooDeepForTheParserIsAnErrorNotACrash() {
        // A megabyte of brackets fits under the reader's size cap; org.json recurses per level.
        val deep = "{\"a\": " + "[".repeat(1 shl 20) + "]".repeat(1 shl 20) + "}"
        assertEquals("m.tflite: tfuq.json: JSON nested too deeply to read", refused(deep))
    }

    @Test
    fun duplicateKeysKeepTheLastValueAsPythonDoes() {
        val c = ModelConfig.parse(edit("\"passes\": 4,", "\"passes\": 9, \"passes\": 4,"), "m.tflite")
        assertEquals(4, c.passes)
    }

    @Test
    fun aFormatOfAnotherTypeIsNotATfuqConfiguration() {
        assertEquals("m.tflite: tfuq.json is not a tfuq model configuration (format is not \"tfuq-model\")",
            refused(edit("\"format\": \"tfuq-model\"", "\"format\": 1")))
        assertEquals("m.tflite: tfuq.json is not a tfuq model configuration (format is not \"tfuq-model\")",
            refused(edit("\"format\": \"tfuq-model\", ", "")))
    }
}
