package tfuq.uqcore

import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.ByteBuffer
import java.util.Random
import java.util.zip.ZipEntry

/**
 * A seeded, bounded mutation fuzzer over the model-file reader: the kinds of damaged files the
 * Python fuzzer tries, through [ModelFile] and [ModelConfig].
 *
 * Every case must end in a [ModelConfig] or a [ModelFileException] (the documented error),
 * never another exception and never a hang; a configuration that is accepted must also give
 * its masks, so "accepted" means usable. Cases are drawn from a fixed seed, so a failure
 * names the case that reproduces it. `-Dtfuq.fuzz.cases=N` and `-Dtfuq.fuzz.seed=S` widen or
 * move the search; failures it finds are kept as plain tests in [ModelConfigTest] and
 * [ModelFileTest].
 */
class ModelFileFuzzTest {
    private val cases = Integer.getInteger("tfuq.fuzz.cases", 4000)
    private val seed = java.lang.Long.getLong("tfuq.fuzz.seed", 20261130L)

    /** Valid model files to mutate: the JDK's zip (deflated, stored, commented) and Python's layout. */
    private val seeds: List<ByteArray> by lazy {
        val text = ModelFixtures.config
        val files = mutableListOf(
            ModelFixtures.jdkModelFile(text),
            ModelFixtures.jdkModelFile(text, ZipEntry.STORED),
            ModelFixtures.jdkModelFile(text, ZipEntry.DEFLATED, comment = "a comment"),
            ModelFixtures.absoluteOffsetsModelFile(text)
        )
        val packed = System.getProperty("tfuq.packedModel")
        if (packed != null && packed.length > 0 && File(packed).isFile) files.add(File(packed).readBytes())
        files
    }

    private class Outcome(var accepted: Int = 0, var refused: Int = 0, val failures: MutableList<String> = ArrayList())

    /** Runs one case; anything but a result or a [ModelFileException] is a failure. */
    private fun check(outcome: Outcome, label: String, bytes: ByteArray, asBuffer: Boolean) {
        try {
            val config = if (asBuffer) {
                val buffer = ByteBuffer.allocateDirect(bytes.size)
                for (i in bytes.indices) buffer.put(i, bytes[i])
                ModelFile.readConfig(buffer, "fuzz")
            } else {
                ModelFile.readConfig(bytes, "fuzz")
            }
            // Accepted means usable: the masks of a masked model, the rule, the labels.
            if (config.mode == ModelConfig.Mode.MASKED) {
                val masks = config.masks(7L)
                if (masks.size != config.mcDropout.size) outcome.failures.add("$label: ${masks.size} masks for ${config.mcDropout.size} layers")
            }
            if (config.mode != ModelConfig.Mode.IN_GRAPH) ModelInputs(config).names
            config.decision.toJson()
            config.label(0)
            outcome.accepted++
        } catch (expected: ModelFileException) {
            if (expected.message.isNullOrEmpty()) outcome.failures.add("$label: ModelFileException without a message")
            outcome.refused++
        } catch (other: Throwable) {
            outcome.failures.add("$label: ${other.javaClass.name}: ${other.message}")
        }
    }

    @Test(timeout = 300_000)
    fun damagedFilesEndInAConfigOrTheDocumentedError() {
        // Mutations of a file the reader refuses anyway would test little.
        for ((index, file) in seeds.withIndex()) {
            val config = ModelFile.readConfig(file, "seed file $index")
            assertTrue("seed file $index reads as the fixture", config.passes == 4 || index == 4)
        }
        val random = Random(seed)
        val outcome = Outcome()
        for (case in 0 until cases) {
            val base = seeds[random.nextInt(seeds.size)]
            val kind = random.nextInt(6)
            val (what, bytes) = when (kind) {
                0 -> truncate(base, random)
                1 -> flipBytes(base, random)
                2 -> corruptDirectory(base, random)
                3 -> spliceBytes(base, random)
                4 -> withMutatedConfig(random)
                else -> withDamagedConfigText(random)
            }
            check(outcome, "case $case (seed $seed, $what)", bytes, asBuffer = case % 4 == 3)
        }
        report("files", outcome)
    }

    private fun report(name: String, outcome: Outcome) {
        println("uqcore fuzz ($name): $cases cases from seed $seed, ${outcome.accepted} accepted, ${outcome.refused} refused, ${outcome.failures.size} failed")
        if (outcome.failures.isNotEmpty()) {
            throw AssertionError("${outcome.failures.size} cases ended in neither a config nor ModelFileException:\n" +
                outcome.failures.take(20).joinToString("\n"))
        }
        // A mutator that breaks every file, or none, tests nothing of the other outcome.
        assertTrue("no case was accepted", outcome.accepted > 0)
        assertTrue("no case was refused", outcome.refused > 0)
    }

    private fun truncate(base: ByteArray, random: Random): Pair<String, ByteArray> {
        val length = random.nextInt(base.size + 1)
        return "truncated to $length" to base.copyOfRange(0, length)
    }

    private fun flipBytes(base: ByteArray, random: Random): Pair<String, ByteArray> {
        val bytes = base.copyOf()
        val count = 1 + random.nextInt(8)
        val at = IntArray(count) { random.nextInt(bytes.size) }
        for (i in at) {
            bytes[i] = if (random.nextBoolean()) (bytes[i].toInt() xor (1 shl random.nextInt(8))).toByte() else random.nextInt(256).toByte()
        }
        return "bytes changed at ${at.toList()}" to bytes
    }

    /** Overwrites one field of the end record, the central directory or the local header with a boundary value. */
    private fun corruptDirectory(base: ByteArray, random: Random): Pair<String, ByteArray> {
        val bytes = base.copyOf()
        val eocd = ModelFixtures.lastIndexOf(bytes, 0x06054b50)
        val directory = ModelFixtures.lastIndexOf(bytes, 0x02014b50)
        val local = ModelFixtures.lastIndexOf(bytes, 0x04034b50)
        // (record start, offset within it, width) of every field a reader trusts.
        val fields = listOf(
            Triple(eocd, 8, 2), Triple(eocd, 10, 2), Triple(eocd, 12, 4), Triple(eocd, 16, 4), Triple(eocd, 20, 2),
            Triple(directory, 0, 4), Triple(directory, 10, 2), Triple(directory, 16, 4), Triple(directory, 20, 4),
            Triple(directory, 24, 4), Triple(directory, 28, 2), Triple(directory, 30, 2), Triple(directory, 32, 2),
            Triple(directory, 42, 4),
            Triple(local, 0, 4), Triple(local, 8, 2), Triple(local, 18, 4), Triple(local, 22, 4), Triple(local, 26, 2),
            Triple(local, 28, 2)
        )
        val (start, offset, width) = fields[random.nextInt(fields.size)]
        val original = if (width == 2) ModelFixtures.u16(bytes, start + offset).toLong() else ModelFixtures.u32(bytes, start + offset)
        val max = if (width == 2) 0xFFFFL else 0xFFFFFFFFL
        val candidates = longArrayOf(0, 1, max, max - 1, original + 1, original - 1, original * 2, bytes.size.toLong(),
            bytes.size.toLong() - 1, 0x7FFFFFFFL, 0x80000000L, random.nextInt(1 shl 16).toLong())
        val value = candidates[random.nextInt(candidates.size)] and max
        if (width == 2) ModelFixtures.put16(bytes, start + offset, value.toInt()) else ModelFixtures.put32(bytes, start + offset, value)
        return "zip field at ${start + offset} (${width}B) $original -> $value" to bytes
    }

    /** Deletes, duplicates or inserts a run of bytes, shifting everything after it. */
    private fun spliceBytes(base: ByteArray, random: Random): Pair<String, ByteArray> {
        val at = random.nextInt(base.size)
        val length = 1 + random.nextInt(64)
        return when (random.nextInt(3)) {
            0 -> "deleted $length at $at" to base.copyOfRange(0, at) + base.copyOfRange(Math.min(base.size, at + length), base.size)
            1 -> "duplicated $length at $at" to base.copyOfRange(0, at) + base.copyOfRange(at, Math.min(base.size, at + length)) + base.copyOfRange(at, base.size)
            else -> "inserted $length random at $at" to base.copyOfRange(0, at) + ByteArray(length) { random.nextInt(256).toByte() } + base.copyOfRange(at, base.size)
        }
    }

    /** A valid file around a configuration with one value removed, retyped or pushed out of range. */
    private fun withMutatedConfig(random: Random): Pair<String, ByteArray> {
        val root = JSONObject(ModelFixtures.config)
        val edits = 1 + random.nextInt(3)
        val done = ArrayList<String>()
        repeat(edits) { done.add(mutateSomewhere(root, "tfuq.json", random)) }
        val text = root.toString()
        val bytes = if (random.nextBoolean()) ModelFixtures.jdkModelFile(text) else ModelFixtures.absoluteOffsetsModelFile(text)
        return "config ${done.joinToString("; ")}" to bytes
    }

    private fun mutateSomewhere(container: Any, path: String, random: Random): String {
        val keys: List<Any> = when (container) {
            is JSONObject -> ModelFixtures.keysOf(container)
            is JSONArray -> List(container.length()) { it }
            else -> emptyList()
        }
        if (keys.isEmpty()) return "nothing at $path"
        val key = keys[random.nextInt(keys.size)]
        val child = if (container is JSONObject) container.opt(key as String) else (container as JSONArray).opt(key as Int)
        val childPath = if (key is Int) "$path[$key]" else "$path.$key"
        // Descend into containers half the time, so deep values are reached too.
        if ((child is JSONObject || child is JSONArray) && random.nextBoolean()) return mutateSomewhere(child, childPath, random)
        val replacement: Any? = when (random.nextInt(12)) {
            0 -> null // remove
            1 -> JSONObject.NULL
            2 -> "text"
            3 -> (child?.toString() ?: "")
            4 -> -1
            5 -> 0
            6 -> Int.MAX_VALUE
            7 -> 1e300
            8 -> 0.5
            9 -> JSONArray().put(1).put(2)
            10 -> JSONObject().put("x", 1)
            else -> when (child) {
                is Int -> child + (if (random.nextBoolean()) 1 else -1)
                is Double -> -child
                is Boolean -> !child
                else -> true
            }
        }
        if (container is JSONObject) {
            if (replacement == null) container.remove(key as String) else container.put(key as String, replacement)
        } else {
            (container as JSONArray).put(key as Int, replacement ?: JSONObject.NULL)
        }
        return "$childPath -> ${replacement ?: "removed"}"
    }

    /** A valid zip around configuration text cut short or with characters changed: not JSON, or other JSON. */
    private fun withDamagedConfigText(random: Random): Pair<String, ByteArray> {
        val text = ModelFixtures.config
        val damaged = when (random.nextInt(4)) {
            0 -> text.substring(0, random.nextInt(text.length))
            1 -> {
                val chars = text.toCharArray()
                val at = random.nextInt(chars.size)
                val replacements = "{}[]\",:0-.eE \\\u0000\u00e9"
                chars[at] = replacements[random.nextInt(replacements.length)]
                String(chars)
            }
            2 -> "[".repeat(random.nextInt(1 shl 16)) + text
            else -> text + "{}[],x".substring(random.nextInt(6))
        }
        return "config text damaged (${damaged.length} chars)" to ModelFixtures.jdkModelFile(damaged, if (random.nextBoolean()) ZipEntry.STORED else ZipEntry.DEFLATED)
    }
}
