package tfuq.uqcore

/**
 * Text that is not JSON, or JSON that does not have the shape a reader expects.
 * The message names where: a character offset for syntax, a path such as `input.height` for
 * shape.
 */
class JsonException(message: String) : IllegalArgumentException(message)

/**
 * A strict JSON (RFC 8259) reader, small enough to audit.
 *
 * The core carries its own reader instead of using org.json: Android ships org.json inside
 * the platform (so a Maven copy would clash with it, and lint rejects that), while this
 * module must also compile and run with nothing but kotlinc and a JDK. One reader means the
 * tests exercise exactly the code the phone runs.
 *
 * Values come back as `null`, [Boolean], [String], [Long] (integers without fraction or
 * exponent that fit), [Double] (every other number), `List<Any?>` and `Map<String, Any?>`
 * (key order kept). NaN and Infinity are not JSON and are refused, as are duplicate keys,
 * which Python's `json.dumps` never writes and which would otherwise be resolved silently.
 */
object Json {
    /** Nesting deeper than this is refused rather than risking a stack overflow. */
    const val MAX_DEPTH = 256

    /** Parse one JSON document; surrounding whitespace is allowed, anything else is not. */
    fun parse(text: String): Any? = Parser(text).document()

    /** Parse a document whose top level must be an object; [name] is used in messages. */
    fun parseObject(text: String, name: String): JsonObject {
        val value = parse(text)
        if (value !is Map<*, *>) throw JsonException("$name: expected a JSON object at the top level, got ${describe(value)}")
        @Suppress("UNCHECKED_CAST")
        return JsonObject(name, value as Map<String, Any?>)
    }

    internal fun describe(value: Any?): String = when (value) {
        null -> "null"
        is String -> if (value.length <= 40) "\"$value\"" else "a string"
        is Map<*, *> -> "an object"
        is List<*> -> "an array"
        else -> value.toString()
    }
}

private class Parser(private val text: String) {
    private var pos = 0

    fun document(): Any? {
        skipWhitespace()
        val value = value(0)
        skipWhitespace()
        if (pos != text.length) fail("unexpected text after the JSON value")
        return value
    }

    private fun fail(message: String): Nothing = throw JsonException("JSON syntax error at offset $pos: $message")

    private fun skipWhitespace() {
        while (pos < text.length) {
            val c = text[pos]
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') pos++ else return
        }
    }

    private fun value(depth: Int): Any? {
        if (depth > Json.MAX_DEPTH) fail("nested deeper than ${Json.MAX_DEPTH} levels")
        if (pos >= text.length) fail("unexpected end of input")
        return when (text[pos]) {
            '{' -> obj(depth)
            '[' -> array(depth)
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> number()
        }
    }

    private fun literal(word: String, result: Any?): Any? {
        if (!text.startsWith(word, pos)) fail("unexpected character '${text[pos]}'")
        pos += word.length
        return result
    }

    private fun obj(depth: Int): Map<String, Any?> {
        pos++ // '{'
        val result = LinkedHashMap<String, Any?>()
        skipWhitespace()
        if (pos < text.length && text[pos] == '}') {
            pos++
            return result
        }
        while (true) {
            skipWhitespace()
            if (pos >= text.length || text[pos] != '"') fail("expected a string key")
            val keyAt = pos
            val key = string()
            if (result.containsKey(key)) {
                pos = keyAt
                fail("duplicate key \"$key\"")
            }
            skipWhitespace()
            if (pos >= text.length || text[pos] != ':') fail("expected ':' after a key")
            pos++
            skipWhitespace()
            result[key] = value(depth + 1)
            skipWhitespace()
            if (pos >= text.length) fail("unterminated object")
            when (text[pos]) {
                ',' -> pos++
                '}' -> {
                    pos++
                    return result
                }
                else -> fail("expected ',' or '}' in an object")
            }
        }
    }

    private fun array(depth: Int): List<Any?> {
        pos++ // '['
        val result = ArrayList<Any?>()
        skipWhitespace()
        if (pos < text.length && text[pos] == ']') {
            pos++
            return result
        }
        while (true) {
            skipWhitespace()
            result.add(value(depth + 1))
            skipWhitespace()
            if (pos >= text.length) fail("unterminated array")
            when (text[pos]) {
                ',' -> pos++
                ']' -> {
                    pos++
                    return result
                }
                else -> fail("expected ',' or ']' in an array")
            }
        }
    }

    private fun string(): String {
        pos++ // opening quote
        val out = StringBuilder()
        while (true) {
            if (pos >= text.length) fail("unterminated string")
            val c = text[pos]
            when {
                c == '"' -> {
                    pos++
                    return out.toString()
                }
                c == '\\' -> {
                    if (pos + 1 >= text.length) fail("unterminated escape")
                    val escaped = text[pos + 1]
                    pos += 2
                    when (escaped) {
                        '"' -> out.append('"')
                        '\\' -> out.append('\\')
                        '/' -> out.append('/')
                        'b' -> out.append('\b')
                        'f' -> out.append('\u000C')
                        'n' -> out.append('\n')
                        'r' -> out.append('\r')
                        't' -> out.append('\t')
                        'u' -> out.append(unicodeEscape())
                        else -> {
                            pos -= 2
                            fail("invalid escape '\\$escaped'")
                        }
                    }
                }
                c < ' ' -> fail("control character in a string (escape it)")
                else -> {
                    out.append(c)
                    pos++
                }
            }
        }
    }

    // Surrogate pairs arrive as two escapes; appending both UTF-16 units rebuilds the pair.
    private fun unicodeEscape(): Char {
        if (pos + 4 > text.length) fail("truncated \\u escape")
        var code = 0
        for (i in 0 until 4) {
            val digit = Character.digit(text[pos + i], 16)
            if (digit < 0) fail("invalid hex digit in \\u escape")
            code = code * 16 + digit
        }
        pos += 4
        return code.toChar()
    }

    private fun number(): Any {
        val start = pos
        if (text[pos] == '-') pos++
        if (pos >= text.length) fail("a number needs digits")
        if (text[pos] == '0') {
            pos++
        } else if (text[pos] in '1'..'9') {
            while (pos < text.length && text[pos] in '0'..'9') pos++
        } else {
            fail("unexpected character '${text[pos]}'")
        }
        var integral = true
        if (pos < text.length && text[pos] == '.') {
            integral = false
            pos++
            if (pos >= text.length || text[pos] !in '0'..'9') fail("a fraction needs digits")
            while (pos < text.length && text[pos] in '0'..'9') pos++
        }
        if (pos < text.length && (text[pos] == 'e' || text[pos] == 'E')) {
            integral = false
            pos++
            if (pos < text.length && (text[pos] == '+' || text[pos] == '-')) pos++
            if (pos >= text.length || text[pos] !in '0'..'9') fail("an exponent needs digits")
            while (pos < text.length && text[pos] in '0'..'9') pos++
        }
        val lexeme = text.substring(start, pos)
        if (integral) {
            val asLong = lexeme.toLongOrNull()
            if (asLong != null) return asLong
        }
        // Java's parseDouble rounds correctly, so a double printed by Python's repr comes
        // back as the very same double.
        val value = lexeme.toDouble()
        if (value.isInfinite()) {
            pos = start
            fail("number $lexeme is out of the range of a double")
        }
        return value
    }
}

/** A JSON object with typed getters whose errors name the path of the bad value. */
class JsonObject(val path: String, val map: Map<String, Any?>) {
    val keys: Set<String> get() = map.keys

    fun has(key: String): Boolean = map.containsKey(key)

    private fun where(key: String) = if (path.length == 0) key else "$path.$key"

    private fun required(key: String): Any? {
        if (!map.containsKey(key)) throw JsonException("${where(key)} is missing")
        return map[key]
    }

    fun string(key: String): String = JsonValues.string(required(key), where(key))

    fun int(key: String): Int = JsonValues.int(required(key), where(key))

    fun double(key: String): Double = JsonValues.double(required(key), where(key))

    fun boolean(key: String): Boolean = JsonValues.boolean(required(key), where(key))

    fun obj(key: String): JsonObject = JsonValues.obj(required(key), where(key))

    fun array(key: String): JsonArray = JsonValues.array(required(key), where(key))

    fun stringOrNull(key: String): String? = if (map[key] == null) null else string(key)

    fun objOrNull(key: String): JsonObject? = if (map[key] == null) null else obj(key)

    fun arrayOrNull(key: String): JsonArray? = if (map[key] == null) null else array(key)
}

/** A JSON array with typed getters whose errors name the path of the bad element. */
class JsonArray(val path: String, val list: List<Any?>) {
    val size: Int get() = list.size

    private fun where(index: Int) = "$path[$index]"

    private fun at(index: Int): Any? {
        if (index < 0 || index >= list.size) throw JsonException("$path has ${list.size} elements, no index $index")
        return list[index]
    }

    fun string(index: Int): String = JsonValues.string(at(index), where(index))

    fun int(index: Int): Int = JsonValues.int(at(index), where(index))

    fun double(index: Int): Double = JsonValues.double(at(index), where(index))

    fun boolean(index: Int): Boolean = JsonValues.boolean(at(index), where(index))

    fun obj(index: Int): JsonObject = JsonValues.obj(at(index), where(index))

    fun array(index: Int): JsonArray = JsonValues.array(at(index), where(index))

    fun objects(): List<JsonObject> = List(size) { obj(it) }

    fun strings(): List<String> = List(size) { string(it) }

    fun ints(): IntArray = IntArray(size) { int(it) }

    fun doubles(): DoubleArray = DoubleArray(size) { double(it) }

    fun booleans(): BooleanArray = BooleanArray(size) { boolean(it) }
}

internal object JsonValues {
    fun string(value: Any?, where: String): String =
        value as? String ?: throw JsonException("$where: expected a string, got ${Json.describe(value)}")

    fun int(value: Any?, where: String): Int {
        if (value is Long && value >= Int.MIN_VALUE && value <= Int.MAX_VALUE) return value.toInt()
        throw JsonException("$where: expected an integer, got ${Json.describe(value)}")
    }

    // Integers are numbers too: a conf_factor written as `2` is the double 2.0.
    fun double(value: Any?, where: String): Double = when (value) {
        is Double -> value
        is Long -> value.toDouble()
        else -> throw JsonException("$where: expected a number, got ${Json.describe(value)}")
    }

    fun boolean(value: Any?, where: String): Boolean =
        value as? Boolean ?: throw JsonException("$where: expected true or false, got ${Json.describe(value)}")

    @Suppress("UNCHECKED_CAST")
    fun obj(value: Any?, where: String): JsonObject {
        if (value !is Map<*, *>) throw JsonException("$where: expected an object, got ${Json.describe(value)}")
        return JsonObject(where, value as Map<String, Any?>)
    }

    fun array(value: Any?, where: String): JsonArray {
        if (value !is List<*>) throw JsonException("$where: expected an array, got ${Json.describe(value)}")
        return JsonArray(where, value)
    }
}
