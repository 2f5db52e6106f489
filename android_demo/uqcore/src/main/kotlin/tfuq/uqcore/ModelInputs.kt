package tfuq.uqcore

import java.nio.ByteBuffer

/**
 * Which model input takes what, for one invoke of a masked (or deterministic) tfuq model, and
 * the checks of the interpreter's tensors against the configuration, as
 * `tfuq/runtime/interpreter.py` makes them. The runtime (LiteRT in the app) only reports the
 * names, shapes and quantization of its tensors and runs the buffers built here.
 *
 * The image goes to `input.name`; the mask of `mc_dropout[i]` to `mc_dropout[i].input`, in the
 * configuration's order, whatever order the interpreter lists its inputs in. A deterministic
 * model takes the image alone.
 */
class ModelInputs(val config: ModelConfig) {
    init {
        if (config.mode == ModelConfig.Mode.IN_GRAPH) {
            throw ModelFileException(
                "this model was converted with --mode in-graph (one invoke per pass); the demo runs " +
                    "all passes in one invoke: convert with --mode masked"
            )
        }
    }

    /** The layers that take a mask input: all of a masked model's, none of a deterministic one's. */
    val maskLayers: List<MaskSpec> = if (config.mode == ModelConfig.Mode.MASKED) config.mcDropout else emptyList()

    /** Every input the model must have: the image, then the mask inputs in configuration order. */
    val names: List<String> = listOf(config.input.name) + maskLayers.map { it.input!! }

    /** The image input's shape, a batch of one: `(1, height, width, channels)`. */
    val imageShape: IntArray get() = intArrayOf(1, config.input.height, config.input.width, config.input.channels)

    /** Refuses a model whose signature inputs are not exactly [names]. */
    fun checkInputNames(signatureInputs: Collection<String>) {
        val have = signatureInputs.toSortedSet()
        val want = names.toSortedSet()
        if (have != want || signatureInputs.size != names.size) {
            throw ModelFileException("the model takes inputs ${have.toList()}, its configuration lists ${want.toList()}")
        }
    }

    /** Refuses an image tensor of another shape than [imageShape]. */
    fun checkImageShape(shape: IntArray) {
        if (!shape.contentEquals(imageShape)) {
            throw ModelFileException("image input is ${shape.toList()}, the configuration says ${imageShape.toList()}")
        }
    }

    /** Refuses a mask tensor [name] of another shape than its layer's `(passes, *features)`. */
    fun checkMaskShape(name: String, shape: IntArray) {
        val spec = maskLayers.firstOrNull { it.input == name } ?: throw ModelFileException("no mask input named $name in the configuration")
        if (!shape.contentEquals(spec.shape!!)) {
            throw ModelFileException("mask input $name is ${shape.toList()}, the configuration says ${spec.shape!!.toList()}")
        }
    }

    /** The number of classes of an output tensor of [shape], which must be `(passes, classes)`. */
    fun classesOf(shape: IntArray): Int {
        if (shape.size != 2 || shape[0] != config.passes || shape[1] < 1) {
            throw ModelFileException("output is ${shape.toList()}; a tfuq model gives (passes=${config.passes}, classes)")
        }
        val classes = shape[1]
        if (config.labels.isNotEmpty() && config.labels.size != classes) {
            throw ModelFileException("${config.labels.size} labels for $classes classes")
        }
        return classes
    }

    /** Refuses a score output [name] whose shape is not `(1, 1)`, or that the configuration does not list. */
    fun checkScoreShape(name: String, shape: IntArray) {
        val score = config.scores.firstOrNull { it.output == name } ?: throw ModelFileException("no score output named $name in the configuration")
        if (!shape.contentEquals(intArrayOf(1, 1))) {
            throw ModelFileException("score ${score.name} needs a (1, 1) output named $name; it is ${shape.toList()}")
        }
    }

    /**
     * The buffers of one invoke, by input name: [pixels] (RGB bytes at the input size) and one
     * mask per [maskLayers] entry in its order, each quantized with the tensor's own
     * parameters from [quantization] (by input name).
     */
    fun feed(pixels: ByteArray, masks: List<Mask>, quantization: (String) -> TensorQuantization): Map<String, ByteBuffer> {
        if (masks.size != maskLayers.size) {
            throw IllegalArgumentException("${masks.size} masks for ${maskLayers.size} mask inputs")
        }
        val inputs = LinkedHashMap<String, ByteBuffer>()
        inputs[config.input.name] = Tensors.imageInput(pixels, config.input, quantization(config.input.name))
        for ((index, spec) in maskLayers.withIndex()) {
            val name = spec.input!!
            inputs[name] = Tensors.maskInput(masks[index], spec, quantization(name))
        }
        return inputs
    }
}
