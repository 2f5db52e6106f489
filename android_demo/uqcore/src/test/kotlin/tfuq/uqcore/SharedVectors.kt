package tfuq.uqcore

import java.io.File

/**
 * The language-neutral vectors in `tests/vectors`, shared with the Python tests and written
 * only by `tests/vectors/make_vectors.py`. Never copied here: the whole point is that both
 * languages read the same bytes.
 *
 * Found from the system property `tfuq.vectors` when set (run_tests.sh and Gradle set it),
 * otherwise by walking up from the working directory to the repository's `tests/vectors`.
 */
object SharedVectors {
    const val PROPERTY = "tfuq.vectors"

    val directory: File by lazy { locate() }

    private fun locate(): File {
        val configured = System.getProperty(PROPERTY)
        if (configured != null && configured.length > 0) {
            val dir = File(configured)
            if (!File(dir, "README.md").isFile) throw IllegalStateException("-D$PROPERTY=$configured is not the tests/vectors folder (no README.md)")
            return dir
        }
        var dir: File? = File(System.getProperty("user.dir")).absoluteFile
        while (dir != null) {
            val candidate = File(dir, "tests/vectors")
            if (File(candidate, "README.md").isFile) return candidate
            dir = dir.parentFile
        }
        throw IllegalStateException("cannot find tests/vectors above ${System.getProperty("user.dir")}; pass -D$PROPERTY=/path/to/tests/vectors")
    }

    /** A vector file as JSON; a missing file fails the test that needs it, loudly. */
    fun load(name: String): JsonObject {
        val file = File(directory, name)
        if (!file.isFile) {
            throw AssertionError("${file.path} is missing; regenerate the shared vectors with `python tests/vectors/make_vectors.py`")
        }
        return Json.parseObject(String(file.readBytes(), Charsets.UTF_8), name)
    }

    /** `[pass][image][class]` nested arrays into the (passes, batch, classes) tensor. */
    fun probabilities(array: JsonArray): McProbabilities =
        McProbabilities.fromNested(List(array.size) { t ->
            val images = array.array(t)
            List(images.size) { b -> images.array(b).doubles().toList() }
        })

    /** A non-empty list of cases: an empty file must not pass as "all cases agree". */
    fun cases(json: JsonObject): List<JsonObject> {
        val cases = json.array("cases").objects()
        if (cases.isEmpty()) throw AssertionError("${json.path} has no cases")
        return cases
    }
}

/** Collects every disagreement of a vector file, so one run reports them all by case and field. */
class Mismatches(private val file: String, private val tolerance: Double = TOLERANCE) {
    private val found = ArrayList<String>()
    var checked = 0
        private set

    fun exact(case: String, field: String, expected: Any?, actual: Any?) {
        checked++
        if (expected != actual) found.add("$file case \"$case\" $field: expected $expected, got $actual")
    }

    fun close(case: String, field: String, expected: Double, actual: Double) {
        checked++
        if (!(Math.abs(expected - actual) <= tolerance)) {
            found.add("$file case \"$case\" $field: expected $expected, got $actual (|diff| ${Math.abs(expected - actual)} > $tolerance)")
        }
    }

    fun assertNone() {
        if (checked == 0) throw AssertionError("$file: nothing was compared")
        if (found.isNotEmpty()) {
            throw AssertionError("${found.size} of $checked values disagree with $file:\n" + found.joinToString("\n"))
        }
    }

    companion object {
        /** The loosest bound allowed for floating values shared with Python. */
        const val TOLERANCE = 1e-6

        /** A file's own `tolerance` when it states one, never looser than [TOLERANCE]. */
        fun toleranceOf(json: JsonObject): Double =
            if (json.has("tolerance")) Math.min(json.double("tolerance"), TOLERANCE) else TOLERANCE
    }
}
