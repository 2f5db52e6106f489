package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

/** Cases with answers worked out by hand, independent of the shared vectors. */
class AggregationTest {
    private fun one(vararg passes: DoubleArray): ImageSummary =
        Aggregation.summarize(McProbabilities.fromNested(passes.map { listOf(it.toList()) }), 1.0)[0]

    @Test
    fun twoDisagreeingCertainPassesGiveLn2() {
        val s = one(doubleArrayOf(1.0, 0.0), doubleArrayOf(0.0, 1.0))
        assertEquals(Math.log(2.0), s.predictiveEntropy, 1e-15)
        assertEquals(0.0, s.expectedEntropy, 0.0)
        assertEquals(Math.log(2.0), s.mutualInformation, 1e-15)
        assertArrayEquals(doubleArrayOf(0.5, 0.5), s.std(), 0.0)
        assertEquals(0, s.predicted) // a tie goes to the lowest index
        assertEquals(0.5, s.variationRatio, 0.0)
    }

    @Test
    fun identicalPassesGiveNoMutualInformationAndNoSpread() {
        val s = one(doubleArrayOf(0.2, 0.7, 0.1), doubleArrayOf(0.2, 0.7, 0.1), doubleArrayOf(0.2, 0.7, 0.1))
        assertEquals(0.0, s.mutualInformation, 1e-15)
        assertArrayEquals(doubleArrayOf(0.0, 0.0, 0.0), s.std(), 1e-15)
        assertEquals(1, s.predicted)
        assertEquals(0.7, s.maxProbability, 1e-15)
        assertEquals(0.0, s.variationRatio, 0.0)
        val h = -(0.2 * Math.log(0.2) + 0.7 * Math.log(0.7) + 0.1 * Math.log(0.1))
        assertEquals(h, s.predictiveEntropy, 1e-15)
    }

    @Test
    fun meanStdAndIntervalByHand() {
        // Class 0 over three passes: 0.2, 0.5, 0.8 -> mean 0.5, population variance 0.06.
        val s = Aggregation.summarize(McProbabilities.fromNested(listOf(
            listOf(listOf(0.2, 0.8)), listOf(listOf(0.5, 0.5)), listOf(listOf(0.8, 0.2))
        )), 2.0)[0]
        assertEquals(0.5, s.mean(0), 1e-15)
        assertEquals(Math.sqrt(0.06), s.std(0), 1e-15)
        assertEquals(0.5 - 2 * Math.sqrt(0.06), s.lower(0), 1e-15)
        assertEquals(0.5 + 2 * Math.sqrt(0.06), s.upper(1), 1e-15)
        // Argmaxes 1, 0, 0 (the 0.5/0.5 tie goes to class 0): mode 0 with 2 of 3 votes.
        assertEquals(1.0 / 3.0, s.variationRatio, 1e-15)
    }

    @Test
    fun onePassHasZeroSpread() {
        val s = one(doubleArrayOf(0.25, 0.25, 0.5))
        assertArrayEquals(doubleArrayOf(0.0, 0.0, 0.0), s.std(), 0.0)
        assertEquals(2, s.predicted)
        assertEquals(0.0, s.mutualInformation, 1e-15)
    }

    @Test
    fun zeroTimesLogZeroIsZero() {
        val s = one(doubleArrayOf(0.0, 1.0), doubleArrayOf(0.0, 1.0))
        assertEquals(0.0, s.predictiveEntropy, 0.0)
        assertEquals(0.0, s.expectedEntropy, 0.0)
    }

    @Test
    fun batchImagesAreIndependent() {
        val p = McProbabilities(2, 2, 2, doubleArrayOf(0.9, 0.1, 0.3, 0.7, 0.8, 0.2, 0.4, 0.6))
        val s = Aggregation.summarize(p)
        assertEquals(0.85, s[0].mean(0), 1e-15)
        assertEquals(0.65, s[1].mean(1), 1e-15)
        assertEquals(0, s[0].predicted)
        assertEquals(1, s[1].predicted)
        assertEquals(1.0, s[0].confFactor, 0.0)
    }

    @Test
    fun rankingIsByMeanThenIndex() {
        val s = one(doubleArrayOf(0.3, 0.1, 0.3, 0.3))
        assertArrayEquals(intArrayOf(0, 2, 3, 1), s.ranking())
    }

    @Test
    fun firstPassesKeepsThePassPrefix() {
        val p = McProbabilities(3, 1, 2, doubleArrayOf(0.1, 0.9, 0.2, 0.8, 0.3, 0.7))
        assertArrayEquals(doubleArrayOf(0.1, 0.9, 0.2, 0.8), p.firstPasses(2).toDoubleArray(), 0.0)
        assertThrows(IllegalArgumentException::class.java) { p.firstPasses(4) }
        assertThrows(IllegalArgumentException::class.java) { p.firstPasses(0) }
    }

    @Test
    fun refusesNaNInfinityAndNonProbabilities() {
        val nan = assertThrows(IllegalArgumentException::class.java) {
            McProbabilities(2, 1, 2, doubleArrayOf(0.5, 0.5, Double.NaN, 0.5))
        }
        assertEquals("probability at (pass 1, image 0, class 0) is NaN: NaN", nan.message)
        val inf = assertThrows(IllegalArgumentException::class.java) {
            McProbabilities(1, 2, 1, doubleArrayOf(1.0, Double.POSITIVE_INFINITY))
        }
        assertEquals("probability at (pass 0, image 1, class 0) is infinite: Infinity", inf.message)
        val negative = assertThrows(IllegalArgumentException::class.java) { McProbabilities(1, 1, 2, doubleArrayOf(-0.1, 1.0)) }
        assertEquals("probability at (pass 0, image 0, class 0) is negative: -0.1", negative.message)
        val logits = assertThrows(IllegalArgumentException::class.java) { McProbabilities(1, 1, 2, doubleArrayOf(0.0, 1.00001)) }
        assertEquals("probability at (pass 0, image 0, class 1) is above 1 (logits instead of softmax?): 1.00001", logits.message)
        // A float32 rounding step above 1 is still a probability, as on the Python side.
        McProbabilities(1, 1, 2, doubleArrayOf(0.0, 1.0000001))
    }

    @Test
    fun refusesWrongShapes() {
        val count = assertThrows(IllegalArgumentException::class.java) { McProbabilities(2, 1, 3, DoubleArray(5)) }
        assertEquals("probabilities of shape (2, 1, 3) need 6 values, got 5", count.message)
        assertThrows(IllegalArgumentException::class.java) { McProbabilities(0, 1, 1, DoubleArray(0)) }
        val ragged = assertThrows(IllegalArgumentException::class.java) {
            McProbabilities.fromNested(listOf(listOf(listOf(0.5, 0.5)), listOf(listOf(1.0))))
        }
        assertEquals("probabilities are ragged: pass 1 image 0 has 1 classes, expected 2", ragged.message)
        assertThrows(IllegalArgumentException::class.java) {
            McProbabilities.fromNested(listOf(listOf(listOf(1.0)), listOf()))
        }
        assertThrows(IllegalArgumentException::class.java) { McProbabilities.fromNested(listOf()) }
    }

    @Test
    fun refusesABadConfFactor() {
        val p = McProbabilities(1, 1, 1, doubleArrayOf(1.0))
        for (z in listOf(-1.0, Double.NaN, Double.POSITIVE_INFINITY)) {
            assertThrows(IllegalArgumentException::class.java) { Aggregation.summarize(p, z) }
        }
    }
}
