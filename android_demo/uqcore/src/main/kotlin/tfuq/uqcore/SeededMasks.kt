package tfuq.uqcore

/**
 * Dropout keep-masks for one run: shape `(passes, *features)`, row-major, each value 0 or 1.
 *
 * Masks hold 0 or 1 only; the exported model applies the `1 / (1 - rate)` scale itself.
 */
class Mask(shape: IntArray, bits: ByteArray) {
    private val dims: IntArray = shape.copyOf()
    private val values: ByteArray = bits.copyOf()

    init {
        if (dims.size < 2) throw IllegalArgumentException("a mask has shape (passes, *features), got ${shapeText(dims)}")
        for (d in dims) {
            if (d < 1) throw IllegalArgumentException("mask shape must be positive, got ${shapeText(dims)}")
        }
        val expected = elementCount(dims)
        if (values.size.toLong() != expected) {
            throw IllegalArgumentException("mask of shape ${shapeText(dims)} needs $expected values, got ${values.size}")
        }
        for (i in values.indices) {
            if (values[i] != ZERO && values[i] != ONE) {
                throw IllegalArgumentException("mask values must be 0 or 1, found ${values[i]} at index $i")
            }
        }
    }

    /** `(passes, *features)`; a copy, so the mask stays immutable. */
    val shape: IntArray get() = dims.copyOf()
    val passes: Int get() = dims[0]
    val size: Int get() = values.size

    /** Value at row-major index [index]: 0 or 1. */
    operator fun get(index: Int): Int = values[index].toInt()

    /** The 0/1 values, row-major over `(passes, *features)`; a copy. */
    fun toByteArray(): ByteArray = values.copyOf()

    /** `"0110..."`, the form tests/vectors/masks.json uses. */
    fun toBitString(): String {
        val out = StringBuilder(values.size)
        for (v in values) out.append(if (v == ONE) '1' else '0')
        return out.toString()
    }

    override fun toString(): String = "Mask${shapeText(dims)}"

    companion object {
        private const val ZERO: Byte = 0
        private const val ONE: Byte = 1

        internal fun elementCount(shape: IntArray): Long {
            var count = 1L
            for (d in shape) count *= d.toLong()
            return count
        }

        internal fun shapeText(shape: IntArray): String = shape.joinToString(", ", "(", if (shape.size == 1) ",)" else ")")
    }
}

/** One MC-dropout layer as the mask generator needs it: the shape of one pass's mask and the rate. */
class MaskLayer(featureShape: IntArray, val rate: Double) {
    private val dims = featureShape.copyOf()
    val featureShape: IntArray get() = dims.copyOf()
}

/**
 * The seeded mask generator, scheme `splitmix64-counter` version 1, bit-identical to
 * `tfuq/runtime/masks.py`. Everything is 64-bit arithmetic modulo 2^64 on Long bit patterns.
 *
 * - `mix` is the SplitMix64 finalizer.
 * - `stream(key)[i] = mix(key + (i + 1) * 0x9E3779B97F4A7C15)`: element i is computable
 *   directly from its index, so there is no generator state to keep in step with Python.
 * - Pass p of run seed s has pass seed `stream(s)[p]`; layer l of that pass draws from
 *   `stream(passSeed)[l]`; element i is kept when `stream(key)[i] >>> 40 >= round(rate * 2^24)`.
 *
 * Because the pass seeds form a stream, the first k passes of a T-pass run are exactly the
 * masks of a k-pass run with the same seed.
 */
object SeededMasks {
    const val SCHEME = "splitmix64-counter"
    const val VERSION = 1
    const val KEEP_BITS = 24

    // 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9 and 0x94D049BB133111EB do not fit a signed Long
    // literal; these negative literals are the same 64-bit patterns.
    private const val GAMMA = -0x61C8864680B583EBL
    private const val MUL1 = -0x40A7B892E31B1A47L
    private const val MUL2 = -0x6B2FB644ECCEEE15L

    /** The SplitMix64 finalizer. */
    fun mix(value: Long): Long {
        var z = value
        z = (z xor (z ushr 30)) * MUL1
        z = (z xor (z ushr 27)) * MUL2
        return z xor (z ushr 31)
    }

    /** Element [index] (0-based, unsigned) of the SplitMix64 stream started at [key]. */
    fun stream(key: Long, index: Long): Long = mix(key + (index + 1) * GAMMA)

    /** The per-pass seeds that run seed [seed] (unsigned bits) gives. */
    fun passSeeds(seed: Long, passes: Int): LongArray {
        if (passes < 1) throw IllegalArgumentException("passes must be at least 1, got $passes")
        return LongArray(passes) { stream(seed, it.toLong()) }
    }

    /** The 24-bit integer threshold below which an element is dropped: round(rate * 2^24). */
    fun dropThreshold(rate: Double): Int {
        if (!(rate > 0.0 && rate < 1.0)) throw IllegalArgumentException("dropout rate must be in (0, 1), got $rate")
        // rate * 2^24 is exact in binary; Math.rint rounds half to even like Python's round.
        return Math.rint(rate * (1 shl KEEP_BITS)).toInt()
    }

    /**
     * Keep bits for MC-dropout layer [layer] (0-based, in the order the model's configuration
     * lists them) in every pass: a [Mask] of shape `(passSeeds.size, *featureShape)`.
     */
    fun layerMask(passSeeds: LongArray, layer: Int, featureShape: IntArray, rate: Double): Mask {
        if (passSeeds.isEmpty()) throw IllegalArgumentException("need at least one pass seed")
        if (layer < 0) throw IllegalArgumentException("layer index must be non-negative, got $layer")
        if (featureShape.isEmpty()) throw IllegalArgumentException("a layer's mask shape needs at least one dimension")
        for (d in featureShape) {
            if (d < 1) throw IllegalArgumentException("mask shape must be positive, got ${Mask.shapeText(featureShape)}")
        }
        val threshold = dropThreshold(rate).toLong()
        val perPass = Mask.elementCount(featureShape)
        val total = perPass * passSeeds.size
        if (total > Int.MAX_VALUE) throw IllegalArgumentException("mask of ${passSeeds.size} x ${Mask.shapeText(featureShape)} is too large")
        val bits = ByteArray(total.toInt())
        var offset = 0
        for (passSeed in passSeeds) {
            // stream(key, i) = mix(key + (i + 1) * GAMMA): the counter advances by GAMMA.
            var state = stream(passSeed, layer.toLong())
            for (i in 0 until perPass.toInt()) {
                state += GAMMA
                var z = (state xor (state ushr 30)) * MUL1
                z = (z xor (z ushr 27)) * MUL2
                // mix ends with z xor (z ushr 31), which leaves the top 33 bits as they are: the
                // top 24 bits of mix are z's, compared with the rate as a 24-bit threshold.
                bits[offset + i] = if ((z ushr (64 - KEEP_BITS)) >= threshold) 1 else 0
            }
            offset += perPass.toInt()
        }
        val shape = IntArray(featureShape.size + 1)
        shape[0] = passSeeds.size
        System.arraycopy(featureShape, 0, shape, 1, featureShape.size)
        return Mask(shape, bits)
    }

    /** Masks for every MC-dropout layer of one run with run seed [seed] (unsigned bits). */
    fun masksFor(seed: Long, passes: Int, layers: List<MaskLayer>): List<Mask> {
        val seeds = passSeeds(seed, passes)
        return layers.mapIndexed { index, layer -> layerMask(seeds, index, layer.featureShape, layer.rate) }
    }
}
