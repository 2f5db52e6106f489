package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Test

/** tests/vectors/masks.json: the Kotlin generator must reproduce Python's masks bit for bit. */
class MaskVectorsTest {
    private val vectors = SharedVectors.load("masks.json")

    @Test
    fun schemeIsTheOneImplemented() {
        assertEquals(SeededMasks.SCHEME, vectors.string("scheme"))
        assertEquals(SeededMasks.VERSION, vectors.int("version"))
    }

    @Test
    fun mixMatchesPython() {
        val check = Mismatches("masks.json")
        val items = vectors.array("mix").objects()
        if (items.isEmpty()) throw AssertionError("masks.json has no mix values")
        for (item in items) {
            val input = item.string("input")
            val actual = UInt64.toString(SeededMasks.mix(UInt64.parse(input)))
            check.exact("mix($input)", "output", item.string("output"), actual)
        }
        check.assertNone()
    }

    @Test
    fun passSeedsMatchPython() {
        val check = Mismatches("masks.json")
        for (case in SharedVectors.cases(vectors)) {
            val name = case.string("name")
            val seeds = SeededMasks.passSeeds(UInt64.parse(case.string("seed")), case.int("passes"))
            val expected = case.array("pass_seeds").strings()
            check.exact(name, "pass_seeds count", expected.size, seeds.size)
            for (p in expected.indices) {
                if (p < seeds.size) check.exact(name, "pass_seeds[$p]", expected[p], UInt64.toString(seeds[p]))
            }
        }
        check.assertNone()
    }

    @Test
    fun masksMatchPythonBitForBit() {
        val check = Mismatches("masks.json")
        for (case in SharedVectors.cases(vectors)) {
            val name = case.string("name")
            val layers = case.array("layers").objects().map { MaskLayer(it.array("shape").ints(), it.double("rate")) }
            val masks = SeededMasks.masksFor(UInt64.parse(case.string("seed")), case.int("passes"), layers)
            val expected = case.array("masks").strings()
            check.exact(name, "number of layers", expected.size, masks.size)
            for (l in expected.indices) {
                if (l >= masks.size) continue
                val bits = masks[l].toBitString()
                check.exact(name, "masks[$l] length", expected[l].length, bits.length)
                if (bits != expected[l]) {
                    var first = 0
                    while (first < bits.length && first < expected[l].length && bits[first] == expected[l][first]) first++
                    check.exact(name, "masks[$l] (first difference at element $first)", expected[l], bits)
                } else {
                    check.exact(name, "masks[$l]", expected[l], bits)
                }
            }
        }
        check.assertNone()
    }
}
