package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.math.BigInteger

class UInt64Test {
    private val twoTo64 = BigInteger.ONE.shiftLeft(64)

    // BigInteger is the independent route: it knows nothing of Long bit patterns.
    private fun bits(decimal: String): Long = BigInteger(decimal).toLong()

    @Test
    fun parsesAndPrintsTheWholeRange() {
        val values = listOf("0", "1", "9223372036854775807", "9223372036854775808", "18446744073709551615",
            "18446744073709551606", "10000000000000000000", "12345678901234567890")
        for (text in values) {
            assertEquals(text, bits(text), UInt64.parse(text))
            assertEquals(text, UInt64.toString(bits(text)))
        }
        assertEquals(7L, UInt64.parse("007"))
    }

    @Test
    fun printsEveryNegativeLongAsItsUnsignedValue() {
        val random = java.util.Random(7)
        repeat(1000) {
            val v = random.nextLong()
            val expected = BigInteger.valueOf(v).let { if (it.signum() < 0) it.add(twoTo64) else it }.toString()
            assertEquals(expected, UInt64.toString(v))
            assertEquals(v, UInt64.parse(expected))
        }
    }

    @Test
    fun refusesValuesOutsideTheRange() {
        for (text in listOf("18446744073709551616", "18446744073709551620", "99999999999999999999", "-1", "+1", "", "1.0", " 1", "0x10")) {
            val error = assertThrows("should refuse \"$text\"", NumberFormatException::class.java) { UInt64.parse(text) }
            assertTrue(error.message!!.length > 0)
        }
    }

    @Test
    fun comparesUnsigned() {
        assertTrue(UInt64.compare(-1L, 0L) > 0)
        assertTrue(UInt64.compare(Long.MIN_VALUE, Long.MAX_VALUE) > 0)
        assertTrue(UInt64.compare(3L, 5L) < 0)
        assertEquals(0, UInt64.compare(-5L, -5L))
    }
}
