package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class DecisionTest {
    private fun rule(json: String) = DecisionRule.fromJson(Json.parseObject(json, "decision"))

    // Class 0 over three passes 0.2/0.5/0.8 (mean 0.5, std 0.2449), class 1 the complement.
    private val spread = McProbabilities.fromNested(listOf(
        listOf(listOf(0.2, 0.8)), listOf(listOf(0.5, 0.5)), listOf(listOf(0.8, 0.2))
    ))

    // Mean (0.7, 0.3), std 0.05 each.
    private val confident = McProbabilities.fromNested(listOf(listOf(listOf(0.75, 0.25)), listOf(listOf(0.65, 0.35))))

    @Test
    fun intervalRuleAcceptsOnlyClearSeparation() {
        // lower(0) = 0.7 - z*0.05, upper(1) = 0.3 + z*0.05: clear while z < 4.
        assertTrue(Decisions.decide(confident, rule("""{"rule": "interval", "conf_factor": 3.9}"""))[0].accept)
        assertFalse(Decisions.decide(confident, rule("""{"rule": "interval", "conf_factor": 4.1}"""))[0].accept)
        val d = Decisions.decide(spread, rule("""{"rule": "interval", "conf_factor": 0.5}"""))[0]
        assertFalse(d.accept)
        assertTrue((d.reason as Reason.Intervals).overlap)
    }

    @Test
    fun intervalRuleIsStrict() {
        // Equal means, zero spread: lower(0) == upper(1), which is not "strictly greater".
        val tie = McProbabilities(1, 1, 2, doubleArrayOf(0.5, 0.5))
        assertFalse(Decisions.decide(tie, DecisionRule.Interval(0.0))[0].accept)
    }

    @Test
    fun intervalRuleAlwaysAcceptsOneClass() {
        val d = Decisions.decide(McProbabilities(2, 1, 1, doubleArrayOf(1.0, 1.0)), DecisionRule.Interval(5.0))[0]
        assertTrue(d.accept)
        assertEquals("cat is the only class.", d.explain(listOf("cat")))
    }

    @Test
    fun thresholdRulesCompareInTheRightDirection() {
        // Mean (0.7, 0.3): max probability 0.7 exactly at the threshold is accepted.
        assertTrue(Decisions.decide(confident, rule("""{"rule":"threshold","score":"max_probability","threshold":0.7}"""))[0].accept)
        assertFalse(Decisions.decide(confident, rule("""{"rule":"threshold","score":"max_probability","threshold":0.71}"""))[0].accept)
        // Variation ratio of `spread` is 1/3 (argmaxes 1, 0, 0).
        assertTrue(Decisions.decide(spread, rule("""{"rule":"threshold","score":"variation_ratio","threshold":0.34}"""))[0].accept)
        assertFalse(Decisions.decide(spread, rule("""{"rule":"threshold","score":"variation_ratio","threshold":0.33}"""))[0].accept)
        val certain = McProbabilities(2, 1, 2, doubleArrayOf(1.0, 0.0, 0.0, 1.0))
        // Mutual information ln 2 = 0.693...
        assertTrue(Decisions.decide(certain, rule("""{"rule":"threshold","score":"mutual_information","threshold":0.7}"""))[0].accept)
        assertFalse(Decisions.decide(certain, rule("""{"rule":"threshold","score":"mutual_information","threshold":0.69}"""))[0].accept)
        assertFalse(Decisions.decide(certain, rule("""{"rule":"threshold","score":"predictive_entropy","threshold":0.69}"""))[0].accept)
    }

    @Test
    fun explanationsSayWhy() {
        val labels = listOf("cat", "dog")
        val overlap = Decisions.decide(spread, DecisionRule.Interval(1.0))[0]
        assertEquals("The intervals of cat (lower 0.255) and dog (upper 0.745) overlap.", overlap.explain(labels))
        val clear = Decisions.decide(confident, DecisionRule.Interval(1.0))[0]
        assertEquals("The interval of cat (lower 0.650) is clear of every other class (highest upper 0.350, dog).", clear.explain(labels))
        // Mutual information of `spread`: ln 2 - mean(H(0.2, 0.8), ln 2, H(0.8, 0.2)) = 0.128.
        val above = Decisions.decide(spread, DecisionRule.Threshold(Score.MUTUAL_INFORMATION, 0.01))[0]
        assertEquals("Mutual information 0.128 is above the threshold 0.010.", above.explain(labels))
        val calibrated = rule("""{"rule": "threshold", "score": "max_probability", "threshold": 0.9, "calibration": {"method": "sgr"}}""")
        val low = Decisions.decide(confident, calibrated)[0]
        assertEquals("Max probability 0.700 is below the calibrated threshold 0.900.", low.explain(labels))
        val ok = Decisions.decide(confident, DecisionRule.Threshold(Score.VARIATION_RATIO, 0.0))[0]
        assertEquals("Variation ratio 0.000 is at or below the threshold 0.000.", ok.explain(labels))
        val unnamed = Decisions.decide(McProbabilities(1, 1, 2, doubleArrayOf(0.1, 0.9)), DecisionRule.Interval(0.0))[0]
        assertTrue(unnamed.explain(emptyList()), unnamed.explain(emptyList()).startsWith("The interval of class_1 "))
    }

    @Test
    fun rulesReadFromJsonAndRejectNonsense() {
        assertEquals(DecisionRule.Interval(2.0), rule("""{"rule": "interval", "conf_factor": 2}"""))
        val t = rule("""{"rule": "threshold", "score": "predictive_entropy", "threshold": 0.5, "note": "ignored"}""")
        assertEquals(DecisionRule.Threshold(Score.PREDICTIVE_ENTROPY, 0.5), t)
        val c = rule("""{"rule": "threshold", "score": "predictive_entropy", "threshold": 0.5, "calibration": {"n": 2000}}""")
        assertTrue((c as DecisionRule.Threshold).calibrated)
        val unknownRule = assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "vote"}""") }
        assertEquals("decision: unknown rule \"vote\"; one of interval, threshold, ood, all", unknownRule.message)
        val unknownScore = assertThrows(IllegalArgumentException::class.java) {
            rule("""{"rule": "threshold", "score": "margin", "threshold": 1}""")
        }
        assertTrue(unknownScore.message!!, unknownScore.message!!.contains("unknown score \"margin\""))
        assertThrows(JsonException::class.java) { rule("""{"rule": "interval"}""") }
        assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "interval", "conf_factor": -1}""") }
        assertThrows(JsonException::class.java) { rule("""{"rule": "threshold", "score": "max_probability", "threshold": "high"}""") }
    }

    @Test
    fun rulesWriteBackTheirJson() {
        for (r in listOf(DecisionRule.Interval(1.5), DecisionRule.Threshold(Score.VARIATION_RATIO, 0.25))) {
            assertEquals(r, rule(r.toJson()))
        }
    }

    // Four classes, passes constant: mean (0.25, 0.25, 0.25, 0.25) is a tie; (0.4, 0.2, 0.2, 0.2)
    // has std 0, so its intervals are points and the interval rule accepts a 40% prediction.
    private val improbable = McProbabilities.fromNested(listOf(
        listOf(listOf(0.4, 0.2, 0.2, 0.2)), listOf(listOf(0.4, 0.2, 0.2, 0.2))
    ))

    @Test
    fun allRuleRefusesWhatTheIntervalRuleAcceptsOnImprobableClasses() {
        assertTrue(Decisions.decide(improbable, DecisionRule.Interval(1.0))[0].accept)
        val d = Decisions.decide(improbable, DecisionRule.DEFAULT)[0]
        assertFalse(d.accept)
        assertEquals(1, (d.reason as Reason.AllOf).failedPart)
        assertEquals("Max probability 0.400 is below the threshold 0.500.", d.explain(listOf()))
        // Mean (0.7, 0.3), std 0.05: 0.65 > 0.35 and 0.7 >= 0.5, both parts accept.
        val ok = Decisions.decide(confident, DecisionRule.DEFAULT)[0]
        assertTrue(ok.accept)
        assertEquals(-1, (ok.reason as Reason.AllOf).failedPart)
    }

    @Test
    fun allRuleReadsAndRefusesBadForms() {
        val r = rule("""{"rule": "all", "rules": [{"rule": "interval", "conf_factor": 2}, {"rule": "threshold", "score": "max_probability", "threshold": 0.5}]}""")
        assertEquals(DecisionRule.All(listOf(DecisionRule.Interval(2.0), DecisionRule.Threshold(Score.MAX_PROBABILITY, 0.5))), r)
        assertEquals(2.0, r.confFactor, 0.0)
        assertEquals(r, rule(r.toJson()))
        val nested = assertThrows(IllegalArgumentException::class.java) {
            rule("""{"rule": "all", "rules": [{"rule": "all", "rules": []}]}""")
        }
        assertEquals("decision: all rule part 0: \"all\" cannot be a part; one of interval, threshold, ood (no nesting)", nested.message)
        val empty = assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "all", "rules": []}""") }
        assertEquals("decision: all rule needs 1 to 8 rules, got 0", empty.message)
        assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "all", "rules": {"rule": "interval"}}""") }
    }

    @Test
    fun oodGuardAcceptsAtOrAboveItsThresholdAndRefusesNaN() {
        val guard = rule("""{"rule": "ood", "score": "energy", "threshold": 3.25, "calibration": {"alpha": 0.05}}""")
        assertEquals(DecisionRule.Ood("energy", 3.25, calibrated = true), guard)
        assertEquals(listOf("energy"), guard.scoresRead)
        val oneImage = Aggregation.summarize(confident, guard.confFactor)[0]
        fun accepts(value: Double) = Decisions.decide(oneImage, guard, mapOf("energy" to value)).accept
        assertTrue(accepts(3.25))
        assertTrue(accepts(10.0))
        assertFalse(accepts(Math.nextDown(3.25)))
        assertFalse(accepts(Double.NaN))
        val missing = assertThrows(IllegalArgumentException::class.java) { Decisions.decide(oneImage, guard, mapOf("knn" to 9.0)) }
        assertEquals("the rule's OOD guard needs the model score \"energy\", which was not given", missing.message)
        val badName = assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "ood", "score": "1 energy", "threshold": 1}""") }
        assertEquals("decision: ood rule score must be the name of a model score, got \"1 energy\"", badName.message)
        assertThrows(IllegalArgumentException::class.java) { rule("""{"rule": "ood", "score": "energy"}""") }
    }

    @Test
    fun aRefusalByTheGuardSaysTheImageLooksUnlikeTheTrainingData() {
        // The default rule behind a guard, as tfuq calibrate writes it: the guard is part 0.
        val guarded = rule("""{"rule": "all", "rules": [{"rule": "ood", "score": "energy", "threshold": 3.2},
            {"rule": "interval", "conf_factor": 1}, {"rule": "threshold", "score": "max_probability", "threshold": 0.5}]}""")
        assertEquals(listOf("energy"), guarded.scoresRead)
        val labels = listOf("cat", "dog")
        val outside = Decisions.decide(confident, guarded, mapOf("energy" to doubleArrayOf(1.23)))[0]
        assertFalse(outside.accept)
        assertEquals(0, (outside.reason as Reason.AllOf).failedPart)
        assertTrue(outside.refusedAsOutOfDistribution)
        assertEquals("Looks unlike anything it was trained on: energy 1.230 is below the OOD guard's 3.200.", outside.explain(labels))
        val inside = Decisions.decide(confident, guarded, mapOf("energy" to doubleArrayOf(4.5)))[0]
        assertTrue(inside.accept)
        assertFalse(inside.refusedAsOutOfDistribution)
        assertTrue(inside.explain(labels), inside.explain(labels).startsWith("Looks like what it was trained on: energy 4.500 is at or above the OOD guard's 3.200. The interval of cat"))
        // Refused by another part: not an out-of-distribution refusal.
        val unsure = Decisions.decide(spread, guarded, mapOf("energy" to doubleArrayOf(4.5)))[0]
        assertFalse(unsure.accept)
        assertFalse(unsure.refusedAsOutOfDistribution)
        assertEquals(guarded, rule(guarded.toJson()))
        assertEquals("ood guard: energy >= 3.2 and interval (conf_factor 1.0) and max_probability >= 0.5", guarded.toString())
        val batch = assertThrows(IllegalArgumentException::class.java) { Decisions.decide(confident, guarded, mapOf("energy" to doubleArrayOf(1.0, 2.0))) }
        assertEquals("score \"energy\" has 2 values for a batch of 1", batch.message)
    }
}
