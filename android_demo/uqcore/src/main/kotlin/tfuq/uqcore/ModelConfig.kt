package tfuq.uqcore

/** What the model's image input takes. `tfuq convert` writes RGB, uint8, raw pixels 0-255. */
class InputSpec(val name: String, val height: Int, val width: Int, val channels: Int, val pixelFormat: String, val dtype: String)

/**
 * One MC-dropout layer. In a `masked` model, [input] names the model input that takes its
 * mask and [shape] is that input's shape `(passes, *features)`; an `in-graph` model draws its
 * masks inside the graph and a `deterministic` one has dropout off, so both are null there.
 */
class MaskSpec(val layer: String, val input: String?, shape: IntArray?, val rate: Double) {
    private val dims = shape?.copyOf()
    val shape: IntArray? get() = dims?.copyOf()

    /** The shape of one pass's mask: [shape] without the passes axis. */
    val featureShape: IntArray?
        get() = dims?.copyOfRange(1, dims.size)
}

/**
 * An out-of-distribution score the model outputs beside its probabilities (`scores` in
 * `tfuq.json`): [name] (e.g. `energy`, what a rule's `ood` part names) and the (1, 1) output
 * tensor [output] (`score_<name>`) that holds it. Larger means more like the training data.
 */
class ModelScore(val name: String, val output: String, val definition: String?)

/** The seed scheme a model's masks were defined with; the core implements one. */
class SeedScheme(val name: String, val version: Int, val keepBits: Int)

/**
 * The configuration a tfuq model file carries in `tfuq.json`, as `tfuq/conversion/convert.py` writes it.
 *
 * Only what running and deciding need is modelled; [json] keeps everything, such as the
 * `source` block, for display.
 */
class ModelConfig(
    val formatVersion: Int,
    val mode: Mode,
    val passes: Int,
    val labels: List<String>,
    val input: InputSpec,
    /** How a photo becomes [input]: `input.photo_rule`, [PhotoRuleSpec.STRETCH] when absent. */
    val photoRule: PhotoRuleSpec,
    val outputName: String,
    /** The out-of-distribution scores the model outputs (none in files converted before they existed). */
    val scores: List<ModelScore>,
    val mcDropout: List<MaskSpec>,
    val seedScheme: SeedScheme,
    val decision: DecisionRule,
    val json: JsonObject
) {
    enum class Mode(val key: String) {
        /** Masks are model inputs; all passes run in one invoke. */
        MASKED("masked"),
        /** The graph draws its own masks with RANDOM_UNIFORM; one invoke per pass. */
        IN_GRAPH("in-graph"),
        /** MC dropout off: one ordinary pass, the baseline to compare against. */
        DETERMINISTIC("deterministic")
    }

    /** The name of class [cls]: its label, or `class_i` as `tfuq convert` names unlabelled classes. */
    fun label(cls: Int): String = if (cls in labels.indices) labels[cls] else "class_$cls"

    /**
     * The masks run seed [seed] (unsigned bits) feeds, one per MC-dropout layer in order;
     * none for a deterministic model, which takes the image alone. [passes] defaults to the
     * model's: a masked model's inputs have that many rows.
     */
    fun masks(seed: Long, passes: Int = this.passes): List<Mask> = when (mode) {
        Mode.MASKED -> SeededMasks.masksFor(seed, passes, mcDropout.map { MaskLayer(it.featureShape!!, it.rate) })
        Mode.DETERMINISTIC -> emptyList()
        Mode.IN_GRAPH -> throw IllegalStateException("an in-graph model draws its own masks")
    }

    companion object {
        const val FORMAT = "tfuq-model"
        const val FORMAT_VERSION = 1

        /** The most elements a mask (or an image's pixels) may have: a bound on what one invoke allocates. */
        const val MAX_ELEMENTS = 1L shl 28

        /** At most this many scores, as `tfuq/runtime/modelfile.py` allows. */
        const val MAX_SCORES = 8

        // Stops once past the bound, so a shape of huge dimensions cannot overflow a Long.
        private fun boundedCount(shape: IntArray): Long {
            var count = 1L
            for (d in shape) {
                count *= d.toLong()
                if (count > MAX_ELEMENTS) return count
            }
            return count
        }

        /** Parse and validate `tfuq.json` text; [name] (the file) prefixes every message. */
        fun parse(text: String, name: String): ModelConfig {
            val json = try {
                Json.parseObject(text, ModelFile.CONFIG_NAME)
            } catch (error: JsonException) {
                throw ModelFileException("$name: ${error.message}", error)
            }
            return try {
                fromJson(json, name)
            } catch (error: ModelFileException) {
                throw error
            } catch (error: IllegalArgumentException) {
                throw ModelFileException("$name: ${error.message}", error)
            }
        }

        private fun fromJson(json: JsonObject, name: String): ModelConfig {
            if (json.raw("format") != FORMAT) {
                throw ModelFileException("$name: ${ModelFile.CONFIG_NAME} is not a tfuq model configuration (format is not \"$FORMAT\")")
            }
            val version = if (json.has("format_version")) json.int("format_version") else 0
            if (version > FORMAT_VERSION) {
                throw ModelFileException(
                    "$name: configuration version $version is newer than this reader understands ($FORMAT_VERSION); update the app"
                )
            }
            val modeKey = if (json.has("mode")) json.string("mode") else Mode.MASKED.key
            val mode = Mode.values().firstOrNull { it.key == modeKey }
                ?: throw IllegalArgumentException("mode \"$modeKey\" is not one of ${Mode.values().joinToString(", ") { it.key }}")
            val passes = json.int("passes")
            if (passes < 1) throw IllegalArgumentException("passes must be at least 1, got $passes")
            val labels = json.arrayOrNull("labels")?.strings() ?: emptyList()

            val inputJson = json.obj("input")
            val input = InputSpec(
                name = inputJson.string("name"),
                height = inputJson.int("height"),
                width = inputJson.int("width"),
                channels = inputJson.int("channels"),
                pixelFormat = inputJson.string("pixel_format"),
                dtype = inputJson.string("dtype")
            )
            // The bound keeps height * width * 3 bytes, and every buffer sized from it, within an Int.
            if (input.height < 1 || input.width < 1 || input.height.toLong() * input.width > MAX_ELEMENTS / 4) {
                throw IllegalArgumentException("input is ${input.height}x${input.width}, not an image size")
            }
            // The app feeds RGB bytes; another layout would run but silently classify garbage.
            if (input.channels != 3 || input.pixelFormat != "RGB" || input.dtype != "uint8") {
                throw IllegalArgumentException(
                    "input takes ${input.channels}-channel ${input.pixelFormat} ${input.dtype}; this reader handles 3-channel RGB uint8"
                )
            }

            // A rule this reader does not know is refused: its pixels would not be the model's.
            val photoRule = PhotoRuleSpec.of(inputJson)

            val mcDropout = json.array("mc_dropout").objects().map { layer ->
                val rate = layer.double("rate")
                if (!(rate > 0.0 && rate < 1.0)) throw IllegalArgumentException("${layer.path}.rate must be in (0, 1), got $rate")
                if (mode == Mode.MASKED) {
                    val shape = layer.array("shape").ints()
                    if (shape.size < 2 || shape[0] != passes || shape.any { it < 1 }) {
                        throw IllegalArgumentException(
                            "${layer.path}.shape is ${Mask.shapeText(shape)}; a masked model's mask is (passes=$passes, *features)"
                        )
                    }
                    if (boundedCount(shape) > MAX_ELEMENTS) {
                        throw IllegalArgumentException("${layer.path}.shape ${Mask.shapeText(shape)} has more than $MAX_ELEMENTS elements")
                    }
                    MaskSpec(layer.string("layer"), layer.string("input"), shape, rate)
                } else {
                    MaskSpec(layer.string("layer"), null, null, rate)
                }
            }
            if (mode == Mode.MASKED && mcDropout.isEmpty()) throw IllegalArgumentException("mc_dropout lists no layer")
            // One tensor per name: a mask fed twice, or over the image, would leave an input unfed.
            val taken = HashSet<String>()
            taken.add(input.name)
            for (layer in mcDropout) {
                val maskInput = layer.input ?: continue
                if (!taken.add(maskInput)) throw IllegalArgumentException("mc_dropout names input \"$maskInput\" twice, or as the image input")
            }

            val outputName = json.obj("output").string("name")
            taken.add(outputName)
            val scoresJson = json.arrayOrNull("scores")?.objects() ?: emptyList()
            if (scoresJson.size > MAX_SCORES) throw IllegalArgumentException("scores: at most $MAX_SCORES out-of-distribution scores, got ${scoresJson.size}")
            val scores = scoresJson.map { score ->
                val scoreName = score.string("name")
                if (!DecisionRule.isScoreName(scoreName)) throw IllegalArgumentException("${score.path}.name must be an identifier, got \"${scoreName.take(60)}\"")
                val output = score.string("output")
                if (!taken.add(output)) throw IllegalArgumentException("${score.path}.output \"$output\" names an input or another output")
                ModelScore(scoreName, output, score.stringOrNull("definition"))
            }
            if (scores.map { it.name }.toSet().size != scores.size) throw IllegalArgumentException("scores must have distinct names")

            val schemeJson = json.obj("seed_scheme")
            val scheme = SeedScheme(schemeJson.string("name"), schemeJson.int("version"), schemeJson.int("keep_bits"))
            // Masks from another scheme would be valid-looking but different from Python's.
            if (scheme.name != SeededMasks.SCHEME || scheme.version != SeededMasks.VERSION || scheme.keepBits != SeededMasks.KEEP_BITS) {
                throw IllegalArgumentException(
                    "seed scheme ${scheme.name} v${scheme.version} (${scheme.keepBits} bits) is not the one this reader implements " +
                        "(${SeededMasks.SCHEME} v${SeededMasks.VERSION}, ${SeededMasks.KEEP_BITS} bits)"
                )
            }
            val decision = DecisionRule.fromJson(json.obj("decision"))
            val missing = decision.scoresRead.firstOrNull { read -> scores.none { it.name == read } }
            if (missing != null) throw IllegalArgumentException("decision: the OOD guard reads score \"$missing\", which the model does not output")
            return ModelConfig(
                formatVersion = version,
                mode = mode,
                passes = passes,
                labels = labels,
                input = input,
                photoRule = photoRule,
                outputName = outputName,
                scores = scores,
                mcDropout = mcDropout,
                seedScheme = scheme,
                decision = decision,
                json = json
            )
        }
    }
}
