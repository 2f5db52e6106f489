package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class ClassifierTest {
    private val configText = """
        {"format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 8,
         "labels": ["red", "green", "blue"],
         "input": {"name": "image", "height": 2, "width": 3, "channels": 3, "pixel_format": "RGB", "dtype": "uint8"},
         "output": {"name": "output_0"},
         "mc_dropout": [{"layer": "d0", "input": "mask_0", "shape": [8, 10], "rate": 0.5},
                        {"layer": "d1", "input": "mask_1", "shape": [8, 2, 2], "rate": 0.25}],
         "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24},
         "decision": {"rule": "interval", "conf_factor": 1.0}}
    """.trimIndent()
    private val config = ModelConfig.parse(configText, "test")
    private val pixels = ByteArray(2 * 3 * 3) { it.toByte() }

    /**
     * A stand-in model whose pass t depends on the masks it is given: class 0 gets the kept
     * share of mask_0's row t, so the wrong masks, or masks in the wrong order, show up in the
     * numbers. Records what it received.
     */
    private inner class StandIn(private val classes: Int = 3) : MaskedModelRunner {
        var received: List<Mask>? = null
        var receivedPixels: ByteArray? = null

        override fun invoke(pixels: ByteArray, masks: List<Mask>): Invocation {
            received = masks
            receivedPixels = pixels
            val passes = masks[0].passes
            val perPass = masks[0].size / passes
            val values = DoubleArray(passes * classes)
            for (t in 0 until passes) {
                var kept = 0
                for (i in 0 until perPass) kept += masks[0][t * perPass + i]
                val share = kept.toDouble() / perPass
                values[t * classes] = share
                values[t * classes + 1] = 1.0 - share
            }
            return Invocation(McProbabilities.singleImage(passes, classes, values), 1234L)
        }
    }

    private fun shareOfRow(mask: Mask, row: Int): Double {
        val perPass = mask.size / mask.passes
        var kept = 0
        for (i in 0 until perPass) kept += mask[row * perPass + i]
        return kept.toDouble() / perPass
    }

    @Test
    fun feedsTheSeededMasksOfEveryLayerAndThePixels() {
        val model = StandIn()
        val seed = UInt64.parse("12345678901234567890")
        Classifier(config, model).classify(pixels, RunSettings(8, seed, config.decision))
        val masks = model.received!!
        assertEquals(2, masks.size)
        assertArrayEquals(intArrayOf(8, 10), masks[0].shape)
        assertArrayEquals(intArrayOf(8, 2, 2), masks[1].shape)
        val expected = SeededMasks.masksFor(seed, 8, listOf(MaskLayer(intArrayOf(10), 0.5), MaskLayer(intArrayOf(2, 2), 0.25)))
        assertEquals(expected.map { it.toBitString() }, masks.map { it.toBitString() })
        assertArrayEquals(pixels, model.receivedPixels)
    }

    @Test
    fun fewerPassesUseThePrefixOfTheModelsRows() {
        val model = StandIn()
        val result = Classifier(config, model).classify(pixels, RunSettings(3, 7L, config.decision))
        val mask = model.received!![0]
        val mean0 = (shareOfRow(mask, 0) + shareOfRow(mask, 1) + shareOfRow(mask, 2)) / 3
        assertEquals(mean0, result.summary.mean(0), 1e-15)
        assertEquals(3, result.summary.passes)
        assertEquals(1234L, result.invokeNanos)
    }

    @Test
    fun decidesWithTheChosenRuleAndRanksClasses() {
        val strict = Classifier(config, StandIn()).classify(pixels, RunSettings(8, 7L, DecisionRule.Interval(50.0)))
        assertFalse(strict.decision.accept)
        assertEquals(Classification.NOT_SURE, strict.headline)
        assertTrue(strict.explanation, strict.explanation.startsWith("The intervals of"))
        val lenient = Classifier(config, StandIn()).classify(pixels, RunSettings(8, 7L, DecisionRule.Threshold(Score.MAX_PROBABILITY, 0.0)))
        assertTrue(lenient.decision.accept)
        assertEquals(lenient.predictedLabel, lenient.headline)
        assertEquals(listOf(lenient.decision.predicted), listOf(lenient.top[0].index))
        assertEquals(3, lenient.top.size)
        assertEquals("blue", lenient.top[2].label) // class 2 is always 0: last
        assertTrue(lenient.top[0].mean >= lenient.top[1].mean)
        assertEquals(lenient.summary.lower(lenient.top[0].index), lenient.top[0].lower, 0.0)
        assertEquals(2, Classifier(config, StandIn()).classify(pixels, RunSettings(8, 7L, config.decision), topK = 2).top.size)
    }

    @Test
    fun namesClassesByTheirFirstSynonymAndKeepsTheFullLabel() {
        val imagenet = ModelConfig.parse(configText.replace("\"red\", \"green\", \"blue\"",
            "\"tench, Tinca tinca\", \"goldfish, Carassius auratus\", \"great white shark, white shark\""), "test")
        val result = Classifier(imagenet, StandIn()).classify(pixels, RunSettings(8, 7L, DecisionRule.Threshold(Score.MAX_PROBABILITY, 0.0)))
        assertEquals(listOf("tench", "goldfish", "great white shark"), result.top.sortedBy { it.index }.map { it.label })
        assertEquals("great white shark, white shark", result.top.first { it.index == 2 }.fullLabel)
        assertEquals(Labels.short(imagenet.label(result.decision.predicted)), result.headline)
        assertFalse(result.explanation, result.explanation.contains("Tinca"))
    }

    @Test
    fun theSameSeedGivesTheSameResultAndAnotherSeedMovesIt() {
        val a = Classifier(config, StandIn()).classify(pixels, RunSettings(8, 1L, config.decision))
        val b = Classifier(config, StandIn()).classify(pixels, RunSettings(8, 1L, config.decision))
        val c = Classifier(config, StandIn()).classify(pixels, RunSettings(8, 2L, config.decision))
        assertArrayEquals(a.summary.mean(), b.summary.mean(), 0.0)
        assertTrue(a.summary.mean(0) != c.summary.mean(0) || a.summary.std(0) != c.summary.std(0))
    }

    @Test
    fun refusesBadRequestsAndBadModelOutputs() {
        val classifier = Classifier(config, StandIn())
        assertThrows(IllegalArgumentException::class.java) { classifier.classify(ByteArray(5), RunSettings.defaults(config)) }
        val tooMany = assertThrows(IllegalArgumentException::class.java) { classifier.classify(pixels, RunSettings(9, 0L, config.decision)) }
        assertEquals("the model computes 8 passes; asked for 9", tooMany.message)
        assertThrows(IllegalArgumentException::class.java) { RunSettings(0, 0L, config.decision) }
        assertThrows(IllegalArgumentException::class.java) { classifier.classify(pixels, RunSettings.defaults(config), topK = 0) }
        val wrongClasses = Classifier(config, StandIn(classes = 4))
        val error = assertThrows(IllegalStateException::class.java) { wrongClasses.classify(pixels, RunSettings.defaults(config)) }
        assertEquals("the model returned 4 classes for 3 labels", error.message)
    }

    @Test
    fun refusesInGraphModels() {
        val inGraph = ModelConfig.parse(
            configText.replace("\"mode\": \"masked\"", "\"mode\": \"in-graph\""), "test"
        )
        val error = assertThrows(IllegalArgumentException::class.java) { Classifier(inGraph, StandIn()) }
        assertTrue(error.message!!, error.message!!.contains("convert with --mode masked"))
    }

    @Test
    fun deterministicModelsTakeNoMasksAndGiveOnePass() {
        val deterministic = ModelConfig.parse(
            configText.replace("\"mode\": \"masked\"", "\"mode\": \"deterministic\"")
                .replace("\"passes\": 8", "\"passes\": 1")
                .replace(Regex("\"mc_dropout\": \\[.*?}]", RegexOption.DOT_MATCHES_ALL), "\"mc_dropout\": [{\"layer\": \"d0\", \"rate\": 0.5}]"),
            "test"
        )
        assertEquals(0, deterministic.json.array("mc_dropout").obj(0).keys.count { it == "input" })
        var received: List<Mask>? = null
        val baseline = object : MaskedModelRunner {
            override fun invoke(pixels: ByteArray, masks: List<Mask>): Invocation {
                received = masks
                return Invocation(McProbabilities.singleImage(1, 3, doubleArrayOf(0.2, 0.7, 0.1)), 5L)
            }
        }
        val result = Classifier(deterministic, baseline).classify(pixels, RunSettings.defaults(deterministic))
        assertEquals(emptyList<Mask>(), received)
        assertEquals(1, result.summary.passes)
        assertEquals(0.0, result.summary.std(1), 0.0)
        assertTrue(result.decision.accept) // zero spread: the interval rule compares means
        assertEquals("green", result.headline)
    }

    @Test
    fun theOodGuardReadsTheInvokesScoreAndItsRefusalSaysSo() {
        val guarded = ModelConfig.parse(configText
            .replace("\"output\": {\"name\": \"output_0\"},",
                "\"output\": {\"name\": \"probabilities\"}, \"scores\": [{\"name\": \"energy\", \"output\": \"score_energy\"}],")
            .replace("\"decision\": {\"rule\": \"interval\", \"conf_factor\": 1.0}",
                "\"decision\": {\"rule\": \"all\", \"rules\": [{\"rule\": \"ood\", \"score\": \"energy\", \"threshold\": 2.5}, " +
                    "{\"rule\": \"threshold\", \"score\": \"max_probability\", \"threshold\": 0.0}]}"), "test")
        // The stand-in's probabilities, with an energy that does not depend on them.
        fun scoring(energy: Double?) = object : MaskedModelRunner {
            override fun invoke(pixels: ByteArray, masks: List<Mask>): Invocation {
                val inner = StandIn().invoke(pixels, masks)
                return Invocation(inner.probabilities, inner.invokeNanos, if (energy == null) emptyMap() else mapOf("energy" to energy))
            }
        }
        val outside = Classifier(guarded, scoring(2.0)).classify(pixels, RunSettings.defaults(guarded))
        assertFalse(outside.decision.accept)
        assertTrue(outside.outOfDistribution)
        assertEquals(Classification.NOT_SURE, outside.headline)
        assertEquals("Looks unlike anything it was trained on: energy 2.000 is below the OOD guard's 2.500.", outside.explanation)
        assertEquals(mapOf("energy" to 2.0), outside.scores)
        val inside = Classifier(guarded, scoring(2.5)).classify(pixels, RunSettings.defaults(guarded))
        assertTrue(inside.decision.accept)
        assertFalse(inside.outOfDistribution)
        // The model's score is read even under a rule without a guard, and kept for the screen.
        val interval = Classifier(guarded, scoring(2.0)).classify(pixels, RunSettings(8, 0L, DecisionRule.Threshold(Score.MAX_PROBABILITY, 0.0)))
        assertTrue(interval.decision.accept)
        assertEquals(mapOf("energy" to 2.0), interval.scores)
        val noScore = assertThrows(IllegalStateException::class.java) { Classifier(guarded, scoring(null)).classify(pixels, RunSettings.defaults(guarded)) }
        assertEquals("the model returned no value for its score energy (output score_energy)", noScore.message)
    }

    @Test
    fun defaultsAreTheModelsOwn() {
        val d = RunSettings.defaults(config)
        assertEquals(8, d.passes)
        assertEquals(0L, d.seed)
        assertEquals(config.decision, d.rule)
        assertEquals("8 passes, seed 18446744073709551615, rule interval (conf_factor 1.0)", d.withSeed(-1L).toString())
    }

    @Test
    fun keepsTheLastSeedsMasksAndDrawsAgainForAnotherSeed() {
        val model = StandIn()
        val classifier = Classifier(config, model)
        val settings = RunSettings.defaults(config).withSeed(7L)
        classifier.classify(pixels, settings)
        val first = model.received!!
        classifier.classify(pixels, settings)
        assertTrue("the same seed: the kept masks, the same objects", first === model.received)
        classifier.classify(pixels, settings.withSeed(8L))
        val other = model.received!!
        assertTrue("another seed draws", first !== other)
        assertEquals(config.masks(8L).map { it.toBitString() }, other.map { it.toBitString() })
        classifier.classify(pixels, settings)
        assertEquals(config.masks(7L).map { it.toBitString() }, model.received!!.map { it.toBitString() })
        assertTrue("only the last seed is kept", first !== model.received)
    }
}
