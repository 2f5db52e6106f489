package tfuq.uqcore

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import org.json.JSONTokener

/**
 * Text that is not JSON, or JSON that does not have the shape a reader expects.
 * The message names where: a character offset for syntax, a path such as `input.height` for
 * shape.
 */
class JsonException(message: String, cause: Throwable? = null) : IllegalArgumentException(message, cause)

/**
 * JSON through `org.json`, the parser Android ships in its framework (on the JVM, the same
 * implementation: Debian's libandroid-json-java, or its Maven copy for Gradle), with typed
 * getters that are strict where org.json coerces.
 *
 * org.json's own `getInt("height")` turns `"224"` into 224 and `2.5` into 2, and `getString`
 * turns a number into text; a model file that says either is wrong, and is refused here with
 * the path of the bad value. What org.json tolerates beyond RFC 8259 (single quotes,
 * comments, a trailing comma read as null) is left to it; text after the document is
 * refused, as Python's `json.loads` does, and so is nesting too deep for its recursive
 * descent. Duplicate keys keep the last value, as in Python.
 */
object Json {
    /** Parse a document whose top level must be an object; [name] is used in messages. */
    fun parseObject(text: String, name: String): JsonObject {
        val tokener = JSONTokener(text)
        val value = try {
            val value = tokener.nextValue()
            if (tokener.nextClean() != '\u0000') throw JsonException("$name: unexpected text after the JSON value")
            value
        } catch (error: JSONException) {
            throw JsonException("$name: JSON syntax error: ${shorten(error.message)}", error)
        } catch (error: StackOverflowError) {
            // org.json recurses once per level; a hostile file can nest a million levels.
            throw JsonException("$name: JSON nested too deeply to read")
        }
        if (value !is JSONObject) throw JsonException("$name: expected a JSON object at the top level, got ${describe(value)}")
        return JsonObject(name, value)
    }

    // org.json appends the whole input to its messages ("... at character 6 of {not json...").
    private fun shorten(message: String?): String {
        val text = message ?: "unreadable"
        val at = text.indexOf(" of ", text.indexOf(" at character ").let { if (it < 0) text.length else it })
        val cut = if (at < 0) text else text.substring(0, at)
        return if (cut.length <= 120) cut else cut.substring(0, 120) + "..."
    }

    internal fun describe(value: Any?): String = when (value) {
        null, JSONObject.NULL -> "null"
        is String -> if (value.length <= 40) "\"$value\"" else "a string"
        is JSONObject -> "an object"
        is JSONArray -> "an array"
        else -> value.toString()
    }
}

/** A JSON object with typed getters whose errors name the path of the bad value. */
class JsonObject(val path: String, private val json: JSONObject) {
    val keys: Set<String>
        get() {
            val out = LinkedHashSet<String>()
            val names = json.keys()
            while (names.hasNext()) out.add(names.next())
            return out
        }

    fun has(key: String): Boolean = json.has(key)

    /** The value as org.json holds it, or null when missing or JSON null. */
    fun raw(key: String): Any? = json.opt(key).let { if (it == JSONObject.NULL) null else it }

    private fun where(key: String) = if (path.length == 0) key else "$path.$key"

    private fun required(key: String): Any? {
        if (!json.has(key)) throw JsonException("${where(key)} is missing")
        return json.opt(key)
    }

    fun string(key: String): String = JsonValues.string(required(key), where(key))

    fun int(key: String): Int = JsonValues.int(required(key), where(key))

    fun double(key: String): Double = JsonValues.double(required(key), where(key))

    fun boolean(key: String): Boolean = JsonValues.boolean(required(key), where(key))

    fun obj(key: String): JsonObject = JsonValues.obj(required(key), where(key))

    fun array(key: String): JsonArray = JsonValues.array(required(key), where(key))

    fun stringOrNull(key: String): String? = if (raw(key) == null) null else string(key)

    fun objOrNull(key: String): JsonObject? = if (raw(key) == null) null else obj(key)

    fun arrayOrNull(key: String): JsonArray? = if (raw(key) == null) null else array(key)
}

/** A JSON array with typed getters whose errors name the path of the bad element. */
class JsonArray(val path: String, private val json: JSONArray) {
    val size: Int get() = json.length()

    private fun where(index: Int) = "$path[$index]"

    private fun at(index: Int): Any? {
        if (index < 0 || index >= size) throw JsonException("$path has $size elements, no index $index")
        return json.opt(index)
    }

    /** True when element [index] is JSON null. */
    fun isNull(index: Int): Boolean = at(index).let { it == null || it == JSONObject.NULL }

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

    // org.json reads integers as Integer, or Long beyond Int's range; fractions as Double.
    fun int(value: Any?, where: String): Int = when {
        value is Int -> value
        value is Long && value >= Int.MIN_VALUE && value <= Int.MAX_VALUE -> value.toInt()
        else -> throw JsonException("$where: expected an integer, got ${Json.describe(value)}")
    }

    // Integers are numbers too: a conf_factor written as `2` is the double 2.0.
    fun double(value: Any?, where: String): Double = when (value) {
        is Double -> if (value.isNaN() || value.isInfinite()) throw JsonException("$where: expected a finite number, got $value") else value
        is Int -> value.toDouble()
        is Long -> value.toDouble()
        else -> throw JsonException("$where: expected a number, got ${Json.describe(value)}")
    }

    fun boolean(value: Any?, where: String): Boolean =
        value as? Boolean ?: throw JsonException("$where: expected true or false, got ${Json.describe(value)}")

    fun obj(value: Any?, where: String): JsonObject {
        if (value !is JSONObject) throw JsonException("$where: expected an object, got ${Json.describe(value)}")
        return JsonObject(where, value)
    }

    fun array(value: Any?, where: String): JsonArray {
        if (value !is JSONArray) throw JsonException("$where: expected an array, got ${Json.describe(value)}")
        return JsonArray(where, value)
    }
}
