package tfuq.uqcore

import org.junit.Test

/**
 * tests/vectors/aggregate.json: every summary value within the file's stated tolerance (at
 * most 1e-6) of Python's, classes exactly.
 */
class AggregateVectorsTest {
    private val vectors = SharedVectors.load("aggregate.json")

    @Test
    fun summariesMatchPython() {
        val check = Mismatches("aggregate.json", Mismatches.toleranceOf(vectors))
        for (case in SharedVectors.cases(vectors)) {
            val name = case.string("name")
            val probabilities = SharedVectors.probabilities(case.array("probabilities"))
            val summaries = Aggregation.summarize(probabilities, case.double("conf_factor"))
            val expected = case.obj("expected")
            val perImage = mapOf<String, (ImageSummary) -> Double>(
                "max_probability" to { s -> s.maxProbability },
                "predictive_entropy" to { s -> s.predictiveEntropy },
                "expected_entropy" to { s -> s.expectedEntropy },
                "mutual_information" to { s -> s.mutualInformation },
                "variation_ratio" to { s -> s.variationRatio }
            )
            val perClass = mapOf<String, (ImageSummary) -> DoubleArray>(
                "mean" to { s -> s.mean() },
                "std" to { s -> s.std() },
                "lower" to { s -> s.lower() },
                "upper" to { s -> s.upper() }
            )
            val predicted = expected.array("predicted")
            check.exact(name, "batch size", predicted.size, summaries.size)
            for ((b, summary) in summaries.withIndex()) {
                if (b >= predicted.size) break
                check.exact(name, "predicted[$b]", predicted.int(b), summary.predicted)
                for ((field, value) in perImage) {
                    check.close(name, "$field[$b]", expected.array(field).double(b), value(summary))
                }
                for ((field, values) in perClass) {
                    val row = expected.array(field).array(b).doubles()
                    val actual = values(summary)
                    check.exact(name, "$field[$b] length", row.size, actual.size)
                    for (c in row.indices) if (c < actual.size) check.close(name, "$field[$b][$c]", row[c], actual[c])
                }
            }
        }
        check.assertNone()
    }
}
