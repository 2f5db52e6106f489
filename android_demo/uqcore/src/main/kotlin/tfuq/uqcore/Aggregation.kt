package tfuq.uqcore

/**
 * MC-dropout outputs in the one layout tfuq uses: `(passes, batch, classes)`, row-major.
 *
 * Construction validates: positive dimensions, the right number of values, and every value a
 * probability (finite, within [0, 1] up to [ABOVE_ONE_TOLERANCE]). A NaN is refused rather
 * than allowed to poison every mean and entropy downstream. Values are used as given, not
 * renormalized: an int8 softmax sums to 1 only within its quantization step.
 */
class McProbabilities(val passes: Int, val batch: Int, val classes: Int, values: DoubleArray) {
    private val data: DoubleArray = values.copyOf()

    init {
        if (passes < 1 || batch < 1 || classes < 1) {
            throw IllegalArgumentException("probabilities need (passes, batch, classes) all at least 1, got ($passes, $batch, $classes)")
        }
        val expected = passes.toLong() * batch * classes
        if (data.size.toLong() != expected) {
            throw IllegalArgumentException("probabilities of shape ($passes, $batch, $classes) need $expected values, got ${data.size}")
        }
        for (i in data.indices) {
            val p = data[i]
            if (p.isNaN() || p.isInfinite() || p < 0.0 || p > 1.0 + ABOVE_ONE_TOLERANCE) {
                val pass = i / (batch * classes)
                val image = (i / classes) % batch
                val cls = i % classes
                val what = when {
                    p.isNaN() -> "NaN"
                    p.isInfinite() -> "infinite"
                    p < 0.0 -> "negative"
                    else -> "above 1 (logits instead of softmax?)"
                }
                throw IllegalArgumentException("probability at (pass $pass, image $image, class $cls) is $what: $p")
            }
        }
    }

    /** p[pass, image, cls]. */
    operator fun get(pass: Int, image: Int, cls: Int): Double = data[(pass * batch + image) * classes + cls]

    /** The values, row-major over `(passes, batch, classes)`; a copy. */
    fun toDoubleArray(): DoubleArray = data.copyOf()

    /**
     * The first [count] passes. With counter-based seeds these are exactly the outputs a run
     * with [count] passes and the same seed gives, which lets a model built for T passes
     * serve any smaller number without a second conversion.
     */
    fun firstPasses(count: Int): McProbabilities {
        if (count < 1 || count > passes) throw IllegalArgumentException("can take 1 to $passes passes, asked for $count")
        return McProbabilities(count, batch, classes, data.copyOfRange(0, count * batch * classes))
    }

    companion object {
        /**
         * A float32 softmax can exceed 1 by a rounding step, and so can an int8 grid point
         * (scale 1/255 in float32); beyond this it is not a probability. `tfuq/runtime/aggregate.py`
         * allows the same, and neither side renormalizes.
         */
        const val ABOVE_ONE_TOLERANCE = 1e-6

        /** One image's outputs, layout `(passes, classes)`, as the phone gets them from one invoke. */
        fun singleImage(passes: Int, classes: Int, values: DoubleArray): McProbabilities =
            McProbabilities(passes, 1, classes, values)

        /** From nested lists `[pass][image][class]`, as tests/vectors writes them; ragged input is refused. */
        fun fromNested(nested: List<List<List<Double>>>): McProbabilities {
            if (nested.isEmpty() || nested[0].isEmpty() || nested[0][0].isEmpty()) {
                throw IllegalArgumentException("probabilities must be a non-empty (passes, batch, classes) array")
            }
            val batch = nested[0].size
            val classes = nested[0][0].size
            val values = DoubleArray(nested.size * batch * classes)
            var offset = 0
            for ((pass, images) in nested.withIndex()) {
                if (images.size != batch) {
                    throw IllegalArgumentException("probabilities are ragged: pass $pass has ${images.size} images, pass 0 has $batch")
                }
                for ((image, row) in images.withIndex()) {
                    if (row.size != classes) {
                        throw IllegalArgumentException("probabilities are ragged: pass $pass image $image has ${row.size} classes, expected $classes")
                    }
                    for (p in row) values[offset++] = p
                }
            }
            return McProbabilities(nested.size, batch, classes, values)
        }
    }
}

/**
 * What the MC passes say about one image. Definitions are those of tests/vectors/README.md:
 * natural logarithms, `0 * ln 0 = 0`, ties to the lowest class index, population standard
 * deviation (one pass gives 0), interval `mean ± confFactor * std`.
 */
class ImageSummary internal constructor(
    val passes: Int,
    val confFactor: Double,
    mean: DoubleArray,
    std: DoubleArray,
    /** argmax of [mean]. */
    val predicted: Int,
    /** max of [mean]. */
    val maxProbability: Double,
    /** -sum_c mean[c] ln mean[c]. */
    val predictiveEntropy: Double,
    /** mean over passes of -sum_c p[t, c] ln p[t, c]. */
    val expectedEntropy: Double,
    /** Share of passes whose argmax is not the most frequent per-pass argmax. */
    val variationRatio: Double
) {
    private val meanValues = mean.copyOf()
    private val stdValues = std.copyOf()

    val classes: Int get() = meanValues.size

    /** predictiveEntropy - expectedEntropy (the BALD score). */
    val mutualInformation: Double get() = predictiveEntropy - expectedEntropy

    fun mean(): DoubleArray = meanValues.copyOf()
    fun std(): DoubleArray = stdValues.copyOf()
    fun mean(cls: Int): Double = meanValues[cls]
    fun std(cls: Int): Double = stdValues[cls]

    /** mean - factor * std; with the default factor, the summary's own. */
    fun lower(cls: Int, factor: Double = confFactor): Double = meanValues[cls] - factor * stdValues[cls]
    fun upper(cls: Int, factor: Double = confFactor): Double = meanValues[cls] + factor * stdValues[cls]
    fun lower(): DoubleArray = DoubleArray(classes) { lower(it) }
    fun upper(): DoubleArray = DoubleArray(classes) { upper(it) }

    /** Class indices by decreasing mean probability; equal means keep the lower index first. */
    fun ranking(): IntArray {
        val order = (0 until classes).sortedWith(Comparator { a, b ->
            val byMean = meanValues[b].compareTo(meanValues[a])
            if (byMean != 0) byMean else a.compareTo(b)
        })
        return order.toIntArray()
    }
}

/** Aggregation of MC passes into per-image summaries. */
object Aggregation {
    /** Default interval width when no rule sets one, as in `tfuq/conversion/convert.py`'s default decision. */
    const val DEFAULT_CONF_FACTOR = 1.0

    /**
     * Summarize each image of [probabilities], layout `(passes, batch, classes)`.
     *
     * Sums run over passes in order, then divide by T, so results match a straightforward
     * NumPy reduction to far better than the 1e-6 the shared vectors demand.
     */
    fun summarize(probabilities: McProbabilities, confFactor: Double = DEFAULT_CONF_FACTOR): List<ImageSummary> {
        checkConfFactor(confFactor)
        return List(probabilities.batch) { image -> summarizeImage(probabilities, image, confFactor) }
    }

    internal fun checkConfFactor(confFactor: Double) {
        if (confFactor.isNaN() || confFactor.isInfinite() || confFactor < 0.0) {
            throw IllegalArgumentException("conf_factor must be a finite number >= 0, got $confFactor")
        }
    }

    private fun summarizeImage(p: McProbabilities, image: Int, confFactor: Double): ImageSummary {
        val passes = p.passes
        val classes = p.classes
        val mean = DoubleArray(classes)
        for (t in 0 until passes) for (c in 0 until classes) mean[c] += p[t, image, c]
        for (c in 0 until classes) mean[c] /= passes.toDouble()

        val std = DoubleArray(classes)
        for (t in 0 until passes) for (c in 0 until classes) {
            val d = p[t, image, c] - mean[c]
            std[c] += d * d
        }
        for (c in 0 until classes) std[c] = Math.sqrt(std[c] / passes)

        val predicted = argmax(mean)
        var expectedEntropy = 0.0
        val votes = IntArray(classes)
        for (t in 0 until passes) {
            var entropy = 0.0
            var best = 0
            for (c in 0 until classes) {
                entropy -= xLogX(p[t, image, c])
                if (p[t, image, c] > p[t, image, best]) best = c
            }
            expectedEntropy += entropy
            votes[best]++
        }
        expectedEntropy /= passes.toDouble()
        var predictiveEntropy = 0.0
        for (c in 0 until classes) predictiveEntropy -= xLogX(mean[c])
        var modeVotes = 0
        for (v in votes) if (v > modeVotes) modeVotes = v

        return ImageSummary(
            passes = passes,
            confFactor = confFactor,
            mean = mean,
            std = std,
            predicted = predicted,
            maxProbability = mean[predicted],
            predictiveEntropy = predictiveEntropy,
            expectedEntropy = expectedEntropy,
            variationRatio = 1.0 - modeVotes.toDouble() / passes
        )
    }

    /** Index of the largest value; the lowest index wins a tie. */
    internal fun argmax(values: DoubleArray): Int {
        var best = 0
        for (i in 1 until values.size) if (values[i] > values[best]) best = i
        return best
    }

    private fun xLogX(p: Double): Double = if (p > 0.0) p * Math.log(p) else 0.0
}
