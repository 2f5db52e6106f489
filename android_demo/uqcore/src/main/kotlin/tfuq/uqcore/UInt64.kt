package tfuq.uqcore

/**
 * Unsigned 64-bit integers held in the bit pattern of a [Long].
 *
 * Seeds are unsigned 64-bit values on the Python side. Kotlin's ULong is still experimental
 * in the Kotlin 1.3 compiler this core must build with, and `java.lang.Long`'s unsigned
 * helpers need Android API 26, so the few operations needed live here. Addition and
 * multiplication of Longs already wrap modulo 2^64 exactly as uint64 does; only parsing,
 * printing and comparison differ from signed arithmetic.
 */
object UInt64 {
    /** 2^64 - 1, the largest unsigned 64-bit value. */
    const val MAX: Long = -1L

    // floor((2^64 - 1) / 10): a value above it cannot take another decimal digit.
    private const val MAX_BEFORE_DIGIT = 1844674407370955161L

    /** Parse a decimal string in [0, 2^64); JSON carries seeds this way (README of tests/vectors). */
    fun parse(text: String): Long {
        if (text.length == 0) throw NumberFormatException("an unsigned 64-bit integer needs digits, got an empty string")
        var value = 0L
        for (c in text) {
            if (c !in '0'..'9') throw NumberFormatException("not an unsigned decimal integer: \"$text\"")
            if (compare(value, MAX_BEFORE_DIGIT) > 0) throw NumberFormatException("$text is not below 2^64")
            val shifted = value * 10
            val next = shifted + (c - '0')
            // Adding one digit to a value no bigger than MAX_BEFORE_DIGIT * 10 overflows only
            // by wrapping past 2^64, which makes the result smaller than what we added to.
            if (compare(next, shifted) < 0) throw NumberFormatException("$text is not below 2^64")
            value = next
        }
        return value
    }

    /** The decimal form of the unsigned value whose bits [value] holds. */
    fun toString(value: Long): String {
        if (value >= 0) return value.toString()
        // Halve first so the division is of a non-negative Long; then put the last digit back.
        val quotient = (value ushr 1) / 5
        val remainder = value - quotient * 10
        return quotient.toString() + remainder.toString()
    }

    /** Unsigned comparison: negative, zero or positive as [a] is below, equal to or above [b]. */
    fun compare(a: Long, b: Long): Int {
        val x = a xor Long.MIN_VALUE
        val y = b xor Long.MIN_VALUE
        return if (x < y) -1 else if (x == y) 0 else 1
    }
}
