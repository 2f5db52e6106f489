package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class JsonTest {
    @Test
    fun parsesEveryKindOfValue() {
        val value = Json.parse(""" {"a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d"}, "e": -0} """)
        val map = value as Map<*, *>
        assertEquals(listOf(1L, -2.5, 300.0, true, false, null), map["a"])
        assertEquals(mapOf("c" to "d"), map["b"])
        assertEquals(0L, map["e"])
        assertEquals(listOf("a", "b", "e"), map.keys.toList())
    }

    @Test
    fun integersBeyondLongBecomeDoubles() {
        assertEquals(9223372036854775807L, Json.parse("9223372036854775807"))
        assertEquals(1.8446744073709552E19, Json.parse("18446744073709551615"))
    }

    @Test
    fun decodesEscapesIncludingSurrogatePairs() {
        assertEquals("q\"\\/\b\u000C\n\r\t\u00e9\uD83D\uDE00", Json.parse("\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\""))
    }

    @Test
    fun doublesRoundTripPythonRepr() {
        // Python's repr(0.1 + 0.2) and a subnormal; both must come back as the same double.
        assertEquals(0.1 + 0.2, Json.parse("0.30000000000000004") as Double, 0.0)
        assertEquals(java.lang.Double.MIN_VALUE, Json.parse("5e-324") as Double, 0.0)
    }

    @Test
    fun refusesWhatIsNotJson() {
        val bad = listOf(
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "NaN", "Infinity", "-", "1e",
            "'a'", "\"a", "\"\\x\"", "\"\\u12g4\"", "tru", "[1 2]", "{\"a\" 1}", "{1: 2}", "1 2",
            "\"tab\there\"", "1e400"
        )
        for (text in bad) {
            val error = assertThrows("should refuse: $text", JsonException::class.java) { Json.parse(text) }
            assertTrue("message names the offset: ${error.message}", error.message!!.contains("offset"))
        }
    }

    @Test
    fun refusesDuplicateKeys() {
        val error = assertThrows(JsonException::class.java) { Json.parse("{\"a\": 1, \"a\": 2}") }
        assertTrue(error.message!!.contains("duplicate key \"a\""))
    }

    @Test
    fun refusesDeepNestingWithoutOverflowingTheStack() {
        val deep = "[".repeat(10000) + "]".repeat(10000)
        assertThrows(JsonException::class.java) { Json.parse(deep) }
    }

    @Test
    fun typedGettersNameThePathOfABadValue() {
        val obj = Json.parseObject("""{"input": {"height": "224", "sizes": [1, 2.5]}, "x": null}""", "tfuq.json")
        val height = assertThrows(JsonException::class.java) { obj.obj("input").int("height") }
        assertEquals("tfuq.json.input.height: expected an integer, got \"224\"", height.message)
        val size = assertThrows(JsonException::class.java) { obj.obj("input").array("sizes").ints() }
        assertEquals("tfuq.json.input.sizes[1]: expected an integer, got 2.5", size.message)
        val missing = assertThrows(JsonException::class.java) { obj.string("mode") }
        assertEquals("tfuq.json.mode is missing", missing.message)
        assertNull(obj.objOrNull("x"))
        assertEquals(2.0, Json.parseObject("{\"z\": 2}", "r").double("z"), 0.0)
    }

    @Test
    fun topLevelMustBeAnObjectWhenAskedFor() {
        val error = assertThrows(JsonException::class.java) { Json.parseObject("[1]", "masks.json") }
        assertEquals("masks.json: expected a JSON object at the top level, got an array", error.message)
    }
}
