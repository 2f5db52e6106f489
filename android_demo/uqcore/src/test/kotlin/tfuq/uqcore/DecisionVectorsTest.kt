package tfuq.uqcore

import org.junit.Test

/** tests/vectors/decisions.json: accept/abstain and the predicted class must agree exactly. */
class DecisionVectorsTest {
    private val vectors = SharedVectors.load("decisions.json")

    @Test
    fun decisionsMatchPython() {
        val check = Mismatches("decisions.json")
        for (case in SharedVectors.cases(vectors)) {
            val name = case.string("name")
            val rule = DecisionRule.fromJson(case.obj("rule"))
            val decisions = Decisions.decide(SharedVectors.probabilities(case.array("probabilities")), rule, scoresOf(case))
            val expected = case.obj("expected")
            val accept = expected.array("accept").booleans()
            val predicted = expected.array("predicted").ints()
            check.exact(name, "batch size", accept.size, decisions.size)
            for ((b, decision) in decisions.withIndex()) {
                if (b >= accept.size) break
                check.exact(name, "accept[$b] ($rule)", accept[b], decision.accept)
                check.exact(name, "predicted[$b]", predicted[b], decision.predicted)
            }
            val failed = expected.arrayOrNull("failed_part")?.ints()
            if (failed != null) {
                for ((b, decision) in decisions.withIndex()) {
                    if (b >= failed.size) break
                    val reason = decision.reason as? Reason.AllOf
                    check.exact(name, "failed_part[$b]", failed[b], reason?.failedPart ?: -2)
                }
            }
        }
        check.assertNone()
    }

    /** A case's model scores by name, `(batch,)` each; null in the file stands for NaN. */
    private fun scoresOf(case: JsonObject): Map<String, DoubleArray> {
        val scores = case.objOrNull("scores") ?: return emptyMap()
        return scores.keys.associateWith { name ->
            val values = scores.array(name)
            DoubleArray(values.size) { if (values.isNull(it)) Double.NaN else values.double(it) }
        }
    }

    @Test
    fun theOodGuardIsCoveredAtEveryPositionAndWithNaN() {
        var nan = false
        val refusedAt = HashSet<Int>()
        for (case in SharedVectors.cases(vectors)) {
            val rule = DecisionRule.fromJson(case.obj("rule"))
            val parts = if (rule is DecisionRule.All) rule.parts else listOf(rule)
            if (parts.none { it is DecisionRule.Ood }) continue
            if (scoresOf(case).values.any { values -> values.any { it.isNaN() } }) nan = true
            val failed = case.obj("expected").arrayOrNull("failed_part")?.ints() ?: continue
            for (f in failed) if (f >= 0 && parts[f] is DecisionRule.Ood) refusedAt.add(if (f == parts.size - 1) -1 else f)
        }
        if (!nan) throw AssertionError("decisions.json has no NaN score")
        // First, middle and last part of an all rule.
        if (!refusedAt.containsAll(listOf(0, 1, -1))) throw AssertionError("the ood guard refuses only as parts $refusedAt")
    }

    @Test
    fun everyRuleOfThePythonSideIsCovered() {
        // A vector file that silently stopped covering a rule would let that rule drift.
        val seen = HashSet<String>()
        for (case in SharedVectors.cases(vectors)) {
            val rule = case.obj("rule")
            seen.add(if (rule.string("rule") == DecisionRule.THRESHOLD) rule.string("score") else rule.string("rule"))
        }
        val wanted = listOf(DecisionRule.INTERVAL, DecisionRule.OOD, DecisionRule.ALL) + Score.values().map { it.key }
        val missing = wanted.filter { it !in seen }
        if (missing.isNotEmpty()) throw AssertionError("decisions.json has no case for: ${missing.joinToString(", ")}")
    }
}
