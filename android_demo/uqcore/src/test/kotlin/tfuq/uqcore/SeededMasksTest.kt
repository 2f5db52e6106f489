package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.math.BigInteger

/** Properties of the generator that hold whatever the vectors say; the vectors pin the bits. */
class SeededMasksTest {
    private val mask64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE)

    private fun u(value: Long) = BigInteger.valueOf(value).and(mask64)

    // The SplitMix64 finalizer in BigInteger arithmetic with the published constants, an
    // independent route to the Long version with its negative literals.
    private fun mixReference(value: BigInteger): BigInteger {
        var z = value
        z = z.xor(z.shiftRight(30)).multiply(BigInteger("BF58476D1CE4E5B9", 16)).and(mask64)
        z = z.xor(z.shiftRight(27)).multiply(BigInteger("94D049BB133111EB", 16)).and(mask64)
        return z.xor(z.shiftRight(31))
    }

    @Test
    fun mixAgreesWithTheBigIntegerDefinition() {
        assertEquals(0L, SeededMasks.mix(0L))
        val random = java.util.Random(11)
        repeat(2000) {
            val v = random.nextLong()
            assertEquals(mixReference(u(v)), u(SeededMasks.mix(v)))
        }
    }

    @Test
    fun streamUsesTheGoldenGammaCounter() {
        val gamma = BigInteger("9E3779B97F4A7C15", 16)
        val key = UInt64.parse("18446744073709551615")
        for (i in 0L until 5L) {
            val state = u(key).add(gamma.multiply(BigInteger.valueOf(i + 1))).and(mask64)
            assertEquals(mixReference(state), u(SeededMasks.stream(key, i)))
        }
    }

    @Test
    fun dropThresholdRoundsHalfToEvenOn24Bits() {
        assertEquals(8388608, SeededMasks.dropThreshold(0.5))
        assertEquals(1677722, SeededMasks.dropThreshold(0.1)) // 1677721.6
        // 2.5 / 2^24 sits exactly halfway: Python's round() gives 2, so must we.
        assertEquals(2, SeededMasks.dropThreshold(2.5 / 16777216.0))
        assertEquals(4, SeededMasks.dropThreshold(3.5 / 16777216.0))
        for (rate in listOf(0.0, 1.0, -0.1, Double.NaN)) {
            assertThrows(IllegalArgumentException::class.java) { SeededMasks.dropThreshold(rate) }
        }
    }

    @Test
    fun keptShareMatchesTheRate() {
        for (rate in listOf(0.1, 0.5, 0.9)) {
            val mask = SeededMasks.layerMask(SeededMasks.passSeeds(42L, 4), 0, intArrayOf(50000), rate)
            var kept = 0
            for (i in 0 until mask.size) kept += mask[i]
            val share = kept.toDouble() / mask.size
            // 200000 Bernoulli draws: 5 standard deviations is at most 0.0056.
            assertEquals("kept share at rate $rate", 1 - rate, share, 0.0056)
        }
    }

    @Test
    fun firstPassesOfALongRunAreTheShortRun() {
        val layers = listOf(MaskLayer(intArrayOf(3, 4), 0.3), MaskLayer(intArrayOf(10), 0.6))
        val long = SeededMasks.masksFor(99L, 8, layers)
        val short = SeededMasks.masksFor(99L, 3, layers)
        for (l in layers.indices) {
            assertEquals(long[l].toBitString().substring(0, short[l].size), short[l].toBitString())
        }
    }

    @Test
    fun passesAndLayersDrawDifferently() {
        val masks = SeededMasks.masksFor(5L, 2, listOf(MaskLayer(intArrayOf(64), 0.5), MaskLayer(intArrayOf(64), 0.5)))
        val first = masks[0].toBitString()
        assertNotEquals("two passes", first.substring(0, 64), first.substring(64))
        assertNotEquals("two layers", first, masks[1].toBitString())
        assertEquals(first, SeededMasks.masksFor(5L, 2, listOf(MaskLayer(intArrayOf(64), 0.5)))[0].toBitString())
    }

    @Test
    fun masksHaveThePassesAxisFirst() {
        val mask = SeededMasks.layerMask(SeededMasks.passSeeds(1L, 3), 2, intArrayOf(2, 5), 0.5)
        assertArrayEquals(intArrayOf(3, 2, 5), mask.shape)
        assertEquals(30, mask.size)
    }

    @Test
    fun maskRefusesWrongShapesAndValues() {
        val size = assertThrows(IllegalArgumentException::class.java) { Mask(intArrayOf(2, 3), ByteArray(5)) }
        assertEquals("mask of shape (2, 3) needs 6 values, got 5", size.message)
        val value = assertThrows(IllegalArgumentException::class.java) { Mask(intArrayOf(1, 2), byteArrayOf(1, 2)) }
        assertEquals("mask values must be 0 or 1, found 2 at index 1", value.message)
        assertThrows(IllegalArgumentException::class.java) { Mask(intArrayOf(4), ByteArray(4)) }
        assertThrows(IllegalArgumentException::class.java) { Mask(intArrayOf(2, 0), ByteArray(0)) }
        assertThrows(IllegalArgumentException::class.java) { SeededMasks.passSeeds(0L, 0) }
        assertThrows(IllegalArgumentException::class.java) { SeededMasks.layerMask(longArrayOf(1L), 0, intArrayOf(0), 0.5) }
    }

    @Test
    fun maskIsImmutable() {
        val bits = byteArrayOf(0, 1)
        val mask = Mask(intArrayOf(1, 2), bits)
        bits[0] = 1
        mask.toByteArray()[1] = 0
        mask.shape[0] = 9
        assertEquals("01", mask.toBitString())
        assertArrayEquals(intArrayOf(1, 2), mask.shape)
        assertTrue(mask.toString().contains("(1, 2)"))
    }
}
