package tfuq.uqcore

/** An uncertainty score that a threshold rule compares: its name in `tfuq.json`, and for people. */
enum class Score(val key: String, val title: String, val higherMeansConfident: Boolean) {
    MAX_PROBABILITY("max_probability", "Max probability", true),
    PREDICTIVE_ENTROPY("predictive_entropy", "Predictive entropy", false),
    MUTUAL_INFORMATION("mutual_information", "Mutual information", false),
    VARIATION_RATIO("variation_ratio", "Variation ratio", false);

    fun of(summary: ImageSummary): Double = when (this) {
        MAX_PROBABILITY -> summary.maxProbability
        PREDICTIVE_ENTROPY -> summary.predictiveEntropy
        MUTUAL_INFORMATION -> summary.mutualInformation
        VARIATION_RATIO -> summary.variationRatio
    }

    companion object {
        fun fromKey(key: String): Score {
            for (score in values()) if (score.key == key) return score
            throw IllegalArgumentException("unknown score \"$key\"; one of ${values().joinToString(", ") { it.key }}")
        }
    }
}

/**
 * An abstention rule, as the model's carried configuration writes it under `decision`.
 *
 * - `{"rule": "interval", "conf_factor": z}`: accept when `lower[predicted]` is strictly
 *   greater than `upper[c]` of every other class (always accept with one class).
 * - `{"rule": "threshold", "score": S, "threshold": t}`: accept when S >= t for
 *   `max_probability`, when S <= t for the other scores.
 * - `{"rule": "ood", "score": S, "threshold": t}`: the out-of-distribution guard. S names a
 *   score the model outputs beside its probabilities (`scores` in `tfuq.json`, e.g. `energy`,
 *   larger = more like the training data); accept when the image's score is >= t (a NaN score
 *   refuses). `tfuq calibrate` sets t so the guard alone refuses at most alpha of
 *   in-distribution images with probability 1 - delta.
 * - `{"rule": "all", "rules": [part, ...]}`: accept only when every part (1 to 8 interval,
 *   threshold or ood rules, no nesting) accepts; the first part that refuses is the reason. tfuq
 *   convert's default is `interval (Z = 1)` and `max_probability >= 0.5`.
 */
sealed class DecisionRule {
    /** The interval width the screen shows: the rule's own for [Interval]. */
    abstract val confFactor: Double

    abstract fun toJson(): String

    class Interval(override val confFactor: Double) : DecisionRule() {
        init {
            Aggregation.checkConfFactor(confFactor)
        }

        override fun toJson(): String = "{\"rule\": \"interval\", \"conf_factor\": $confFactor}"
        override fun equals(other: Any?): Boolean = other is Interval && other.confFactor == confFactor
        override fun hashCode(): Int = confFactor.hashCode()
        override fun toString(): String = "interval (conf_factor $confFactor)"
    }

    class Threshold(
        val score: Score,
        val threshold: Double,
        override val confFactor: Double = Aggregation.DEFAULT_CONF_FACTOR,
        /** True when the threshold came from calibration (the rule carries a `calibration` block). */
        val calibrated: Boolean = false
    ) : DecisionRule() {
        init {
            if (threshold.isNaN() || threshold.isInfinite()) throw IllegalArgumentException("threshold must be a finite number, got $threshold")
            Aggregation.checkConfFactor(confFactor)
        }

        fun accepts(value: Double): Boolean = if (score.higherMeansConfident) value >= threshold else value <= threshold

        override fun toJson(): String =
            "{\"rule\": \"threshold\", \"score\": \"${score.key}\", \"threshold\": $threshold}"
        override fun equals(other: Any?): Boolean =
            other is Threshold && other.score == score && other.threshold == threshold &&
                other.confFactor == confFactor && other.calibrated == calibrated
        override fun hashCode(): Int = score.hashCode() * 31 + threshold.hashCode()
        override fun toString(): String = "${score.key} ${if (score.higherMeansConfident) ">=" else "<="} $threshold"
    }

    /** The OOD guard: accept when the model's score [score] (larger = more like the training data) is >= [threshold]. */
    class Ood(
        val score: String,
        val threshold: Double,
        /** True when the threshold came from calibration (the rule carries a `calibration` block). */
        val calibrated: Boolean = false
    ) : DecisionRule() {
        init {
            if (!isScoreName(score)) throw IllegalArgumentException("ood rule score must be the name of a model score, got \"${score.take(60)}\"")
            if (threshold.isNaN() || threshold.isInfinite()) throw IllegalArgumentException("threshold must be a finite number, got $threshold")
        }

        override val confFactor: Double get() = Aggregation.DEFAULT_CONF_FACTOR

        /** A NaN score compares false: what cannot be scored is refused. */
        fun accepts(value: Double): Boolean = value >= threshold

        override fun toJson(): String = "{\"rule\": \"ood\", \"score\": \"$score\", \"threshold\": $threshold}"
        override fun equals(other: Any?): Boolean =
            other is Ood && other.score == score && other.threshold == threshold && other.calibrated == calibrated
        override fun hashCode(): Int = score.hashCode() * 31 + threshold.hashCode()
        override fun toString(): String = "ood guard: $score >= $threshold"
    }

    /** Accept when every one of [parts] accepts. Its interval width is its first interval part's. */
    class All(val parts: List<DecisionRule>, val calibrated: Boolean = false) : DecisionRule() {
        init {
            if (parts.isEmpty() || parts.size > MAX_PARTS) throw IllegalArgumentException("all rule needs 1 to $MAX_PARTS rules, got ${parts.size}")
            for (part in parts) if (part is All) throw IllegalArgumentException("an all rule cannot hold another all rule")
        }

        override val confFactor: Double
            get() = parts.firstOrNull { it is Interval }?.confFactor ?: Aggregation.DEFAULT_CONF_FACTOR

        override fun toJson(): String = "{\"rule\": \"all\", \"rules\": [${parts.joinToString(", ") { it.toJson() }}]}"
        override fun equals(other: Any?): Boolean = other is All && other.parts == parts && other.calibrated == calibrated
        override fun hashCode(): Int = parts.hashCode()
        override fun toString(): String = parts.joinToString(" and ")
    }

    /** The model scores (outputs beside the probabilities) this rule reads, in part order. */
    val scoresRead: List<String>
        get() = when (this) {
            is All -> parts.mapNotNull { (it as? Ood)?.score }
            is Ood -> listOf(score)
            else -> emptyList()
        }

    companion object {
        const val INTERVAL = "interval"
        const val THRESHOLD = "threshold"
        const val OOD = "ood"
        const val ALL = "all"
        const val MAX_PARTS = 8

        /** A score name as `tfuq/runtime/abstain.py` accepts it: an identifier of 1 to 64 characters. */
        fun isScoreName(name: String): Boolean =
            name.length in 1..64 && (name[0] == '_' || Character.isLetter(name[0])) &&
                name.all { it == '_' || Character.isLetterOrDigit(it) }

        /** tfuq convert's default: the paper's interval rule and a floor on the top probability. */
        val DEFAULT: DecisionRule = All(listOf(Interval(1.0), Threshold(Score.MAX_PROBABILITY, 0.5)))

        /** Read a rule from its JSON object; keys other than the rule's own are ignored. */
        fun fromJson(json: JsonObject): DecisionRule {
            val where = if (json.path.length == 0) "decision" else json.path
            return try {
                when (val rule = json.string("rule")) {
                    ALL -> {
                        val parts = json.array("rules")
                        if (parts.size < 1 || parts.size > MAX_PARTS) throw IllegalArgumentException("all rule needs 1 to $MAX_PARTS rules, got ${parts.size}")
                        All(List(parts.size) { index ->
                            val part = parts.obj(index)
                            val kind = part.string("rule")
                            if (kind != INTERVAL && kind != THRESHOLD && kind != OOD) {
                                throw IllegalArgumentException("all rule part $index: \"$kind\" cannot be a part; one of $INTERVAL, $THRESHOLD, $OOD (no nesting)")
                            }
                            fromJson(part)
                        }, calibrated = json.objOrNull("calibration") != null)
                    }
                    INTERVAL -> Interval(json.double("conf_factor"))
                    THRESHOLD -> Threshold(
                        Score.fromKey(json.string("score")),
                        json.double("threshold"),
                        if (json.has("conf_factor")) json.double("conf_factor") else Aggregation.DEFAULT_CONF_FACTOR,
                        // tfuq's calibrate() adds this block; the decision itself ignores it.
                        calibrated = json.objOrNull("calibration") != null
                    )
                    OOD -> Ood(json.string("score"), json.double("threshold"), calibrated = json.objOrNull("calibration") != null)
                    else -> throw IllegalArgumentException("unknown rule \"$rule\"; one of $INTERVAL, $THRESHOLD, $OOD, $ALL")
                }
            } catch (error: JsonException) {
                throw error
            } catch (error: IllegalArgumentException) {
                throw IllegalArgumentException("$where: ${error.message}", error)
            }
        }
    }
}

/** Why a decision came out as it did, in numbers the screen can show. */
sealed class Reason {
    /** Interval rule. [rival] is the other class with the highest upper bound (-1 with one class). */
    class Intervals(val predictedLower: Double, val rival: Int, val rivalUpper: Double) : Reason() {
        val overlap: Boolean get() = rival >= 0 && !(predictedLower > rivalUpper)
    }

    /** Threshold rule: the score's value and the threshold it was held against. */
    class ScoreVersusThreshold(val score: Score, val value: Double, val threshold: Double, val calibrated: Boolean) : Reason()

    /** OOD guard: the model's score [value] (NaN when it could not be computed) and the guard's threshold. */
    class OodScore(val score: String, val value: Double, val threshold: Double, val calibrated: Boolean) : Reason()

    /** All rule: each part's reason, and the index of the first part that refused (-1: none did). */
    class AllOf(val parts: List<Decision>, val failedPart: Int) : Reason()
}

/** Accept (show [predicted]) or abstain ("Not sure"), for one image. */
class Decision(val accept: Boolean, val predicted: Int, val rule: DecisionRule, val reason: Reason) {
    /**
     * Why, in one sentence for the screen under the headline (the label, or "Not sure").
     * [labels] name the classes; missing names fall back to `class_i`, as `tfuq convert` names
     * unlabelled classes.
     */
    fun explain(labels: List<String>): String {
        fun name(cls: Int) = if (cls in labels.indices) labels[cls] else "class_$cls"
        return when (reason) {
            // Abstaining names the part that refused; accepting, every part had its say.
            is Reason.AllOf ->
                if (reason.failedPart >= 0) reason.parts[reason.failedPart].explain(labels)
                else reason.parts.joinToString(" ") { it.explain(labels) }
            is Reason.Intervals ->
                if (reason.rival < 0) {
                    "${name(predicted)} is the only class."
                } else if (accept) {
                    "The interval of ${name(predicted)} (lower ${fmt(reason.predictedLower)}) is clear of every other " +
                        "class (highest upper ${fmt(reason.rivalUpper)}, ${name(reason.rival)})."
                } else {
                    "The intervals of ${name(predicted)} (lower ${fmt(reason.predictedLower)}) and " +
                        "${name(reason.rival)} (upper ${fmt(reason.rivalUpper)}) overlap."
                }
            is Reason.ScoreVersusThreshold -> {
                val side = if (reason.score.higherMeansConfident) {
                    if (accept) "at or above" else "below"
                } else {
                    if (accept) "at or below" else "above"
                }
                val which = if (reason.calibrated) "the calibrated threshold" else "the threshold"
                "${reason.score.title} ${fmt(reason.value)} is $side $which ${fmt(reason.threshold)}."
            }
            is Reason.OodScore ->
                if (accept) "Looks like what it was trained on: ${reason.score} ${fmt(reason.value)} is at or above the OOD guard's ${fmt(reason.threshold)}."
                else "$OUT_OF_DISTRIBUTION: ${reason.score} ${fmt(reason.value)} is below the OOD guard's ${fmt(reason.threshold)}."
        }
    }

    /** True when the OOD guard is what refused (alone, or as the first refusing part of an all rule). */
    val refusedAsOutOfDistribution: Boolean
        get() = when (reason) {
            is Reason.OodScore -> !accept
            is Reason.AllOf -> reason.failedPart >= 0 && reason.parts[reason.failedPart].refusedAsOutOfDistribution
            else -> false
        }

    companion object {
        /** What a refusal by the OOD guard says first, after "Not sure". */
        const val OUT_OF_DISTRIBUTION = "Looks unlike anything it was trained on"
    }

    private fun fmt(value: Double): String = String.format(java.util.Locale.ROOT, "%.3f", value)
}

/** Applies a [DecisionRule] to aggregated MC passes. */
object Decisions {
    /**
     * Decide one image. [scores] are the model's out-of-distribution scores for it by name
     * (`scores` in `tfuq.json`, read from the `score_<name>` outputs), needed when [rule] has an
     * `ood` part.
     */
    fun decide(summary: ImageSummary, rule: DecisionRule, scores: Map<String, Double> = emptyMap()): Decision {
        val predicted = summary.predicted
        return when (rule) {
            is DecisionRule.All -> {
                val parts = rule.parts.map { decide(summary, it, scores) }
                val failed = parts.indexOfFirst { !it.accept }
                Decision(failed < 0, predicted, rule, Reason.AllOf(parts, failed))
            }
            is DecisionRule.Interval -> {
                // Bounds use the rule's conf_factor, whatever width the summary was made with.
                val lower = summary.lower(predicted, rule.confFactor)
                var rival = -1
                var rivalUpper = Double.NEGATIVE_INFINITY
                var clear = true
                for (c in 0 until summary.classes) {
                    if (c == predicted) continue
                    val upper = summary.upper(c, rule.confFactor)
                    if (!(lower > upper)) clear = false
                    if (rival < 0 || upper > rivalUpper) {
                        rival = c
                        rivalUpper = upper
                    }
                }
                Decision(clear, predicted, rule, Reason.Intervals(lower, rival, rivalUpper))
            }
            is DecisionRule.Threshold -> {
                val value = rule.score.of(summary)
                Decision(rule.accepts(value), predicted, rule, Reason.ScoreVersusThreshold(rule.score, value, rule.threshold, rule.calibrated))
            }
            is DecisionRule.Ood -> {
                val value = scores[rule.score]
                    ?: throw IllegalArgumentException("the rule's OOD guard needs the model score \"${rule.score}\", which was not given")
                Decision(rule.accepts(value), predicted, rule, Reason.OodScore(rule.score, value, rule.threshold, rule.calibrated))
            }
        }
    }

    /**
     * Summarize [probabilities], layout `(passes, batch, classes)`, and decide each image;
     * [scores] hold each model score's `(batch,)` values by name.
     */
    fun decide(probabilities: McProbabilities, rule: DecisionRule, scores: Map<String, DoubleArray> = emptyMap()): List<Decision> {
        for ((name, values) in scores) {
            if (values.size != probabilities.batch) throw IllegalArgumentException("score \"$name\" has ${values.size} values for a batch of ${probabilities.batch}")
        }
        return Aggregation.summarize(probabilities, rule.confFactor).mapIndexed { b, summary ->
            decide(summary, rule, scores.mapValues { it.value[b] })
        }
    }
}
