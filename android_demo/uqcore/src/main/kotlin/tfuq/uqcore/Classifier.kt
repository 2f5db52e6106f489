package tfuq.uqcore

/** One invoke of a masked model, as the runtime (LiteRT on the phone) reports it. */
class Invocation(
    /** The image's MC outputs, layout `(passes, classes)` held as `(passes, 1, classes)`. */
    val probabilities: McProbabilities,
    /** Wall time of the interpreter's invoke alone, in nanoseconds. */
    val invokeNanos: Long,
    /**
     * The model's out-of-distribution scores by name (`scores` in `tfuq.json`), dequantized from
     * their `score_<name>` outputs of the same invoke; computed over all of the model's passes.
     */
    val scores: Map<String, Double> = emptyMap()
)

/**
 * What the core needs from a runtime: run the masked model once on one image.
 *
 * [pixels] are RGB bytes `(height, width, 3)` at the model's input size; [masks] hold one
 * [Mask] per `mc_dropout` entry of the configuration, in its order, each of the shape that
 * entry declares (the model's full pass count first), and are empty for a deterministic
 * model. Implementations map them to the model's inputs by name.
 */
interface MaskedModelRunner {
    fun invoke(pixels: ByteArray, masks: List<Mask>): Invocation
}

/**
 * The knobs of one classification. [passes] may be fewer than the model's: the model still
 * computes all of its rows and the first [passes] are used, which with counter-based seeds
 * is exactly what a [passes]-pass run with the same [seed] gives.
 */
class RunSettings(val passes: Int, val seed: Long, val rule: DecisionRule) {
    init {
        if (passes < 1) throw IllegalArgumentException("passes must be at least 1, got $passes")
    }

    fun withPasses(passes: Int) = RunSettings(passes, seed, rule)
    fun withSeed(seed: Long) = RunSettings(passes, seed, rule)
    fun withRule(rule: DecisionRule) = RunSettings(passes, seed, rule)

    override fun toString(): String = "$passes passes, seed ${UInt64.toString(seed)}, rule $rule"

    companion object {
        /** The model's own choices: all its passes, seed 0, the rule its file carries. */
        fun defaults(config: ModelConfig) = RunSettings(config.passes, 0L, config.decision)
    }
}

/**
 * A class with its mean probability and interval, for the screen's list. [label] is the short
 * name ([Labels.short]); [fullLabel] the label as the model carries it, synonyms and all.
 */
class ClassScore(
    val index: Int,
    val label: String,
    val mean: Double,
    val lower: Double,
    val upper: Double,
    val fullLabel: String = label
)

/** Everything the result screen shows for one image. */
class Classification(
    val settings: RunSettings,
    val summary: ImageSummary,
    val decision: Decision,
    /** Classes by decreasing mean probability, at most the number asked for. */
    val top: List<ClassScore>,
    val invokeNanos: Long,
    val maskNanos: Long,
    private val labels: List<String>,
    /** The model's out-of-distribution scores for this image by name, empty when it carries none. */
    val scores: Map<String, Double> = emptyMap()
) {
    /** The predicted class's name, accepted or not. */
    val predictedLabel: String
        get() = if (decision.predicted in labels.indices) labels[decision.predicted] else "class_${decision.predicted}"

    /** What the screen says first: the predicted label when accepted, otherwise "Not sure". */
    val headline: String get() = if (decision.accept) predictedLabel else NOT_SURE

    /** True when the OOD guard refused the image: it looks unlike the training data. */
    val outOfDistribution: Boolean get() = decision.refusedAsOutOfDistribution

    /** Why, in one sentence (see [Decision.explain]). */
    val explanation: String get() = decision.explain(labels)

    companion object {
        const val NOT_SURE = "Not sure"
    }
}

/**
 * Seeded masks -> one invoke -> aggregation -> decision, for a masked tfuq model (or a
 * deterministic one: no masks, one pass, the baseline). The runtime is behind
 * [MaskedModelRunner], so the whole path is tested on the JVM with a stand-in model.
 */
class Classifier(val config: ModelConfig, private val runner: MaskedModelRunner) {
    init {
        if (config.mode == ModelConfig.Mode.IN_GRAPH) {
            throw IllegalArgumentException(
                "this model was converted with --mode in-graph (one invoke per pass, seeds patched into " +
                    "the flatbuffer); the demo runs all passes in one invoke: convert with --mode masked"
            )
        }
    }

    private val pixelCount = config.input.height * config.input.width * config.input.channels

    // What the headline and the sentence under it name: "tiger cat", not its synonyms.
    private val shortLabels = config.labels.map { Labels.short(it) }

    // The last seed's masks: a pure function of the seed and the model's mask shapes, so a
    // stream of photos with one seed (the camera, the gallery) draws them once. Masks are immutable.
    private var keptSeed = 0L
    private var keptMasks: List<Mask>? = null

    /** The masks of run seed [seed] (unsigned bits), drawn when the seed differs from the last one. */
    @Synchronized
    fun masksOf(seed: Long): List<Mask> {
        val kept = keptMasks
        if (kept != null && keptSeed == seed) return kept
        val drawn = config.masks(seed)
        keptMasks = drawn
        keptSeed = seed
        return drawn
    }

    fun classify(pixels: ByteArray, settings: RunSettings, topK: Int = 5): Classification {
        if (pixels.size != pixelCount) {
            throw IllegalArgumentException(
                "image must be ${config.input.height}x${config.input.width}x${config.input.channels} = $pixelCount bytes, got ${pixels.size}"
            )
        }
        if (settings.passes > config.passes) {
            throw IllegalArgumentException("the model computes ${config.passes} passes; asked for ${settings.passes}")
        }
        if (topK < 1) throw IllegalArgumentException("topK must be at least 1, got $topK")

        val maskStart = System.nanoTime()
        val masks = masksOf(settings.seed)
        val maskNanos = System.nanoTime() - maskStart

        val invocation = runner.invoke(pixels, masks)
        val all = invocation.probabilities
        if (all.passes != config.passes || all.batch != 1) {
            throw IllegalStateException("the model returned (${all.passes}, ${all.batch}, ${all.classes}); expected (${config.passes}, 1, classes)")
        }
        if (config.labels.isNotEmpty() && all.classes != config.labels.size) {
            throw IllegalStateException("the model returned ${all.classes} classes for ${config.labels.size} labels")
        }
        for (score in config.scores) {
            if (score.name !in invocation.scores) throw IllegalStateException("the model returned no value for its score ${score.name} (output ${score.output})")
        }
        val used = all.firstPasses(settings.passes)
        val summary = Aggregation.summarize(used, settings.rule.confFactor)[0]
        val decision = Decisions.decide(summary, settings.rule, invocation.scores)
        val ranking = summary.ranking()
        val top = List(Math.min(topK, ranking.size)) {
            val c = ranking[it]
            ClassScore(c, Labels.short(config.label(c)), summary.mean(c), summary.lower(c), summary.upper(c), config.label(c))
        }
        return Classification(settings, summary, decision, top, invocation.invokeNanos, maskNanos, shortLabels, invocation.scores)
    }
}
