package tfuq.demo

import android.content.Context
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import tfuq.uqcore.Invocation
import tfuq.uqcore.Mask
import tfuq.uqcore.MaskedModelRunner
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.ModelFile
import tfuq.uqcore.ModelFileException
import tfuq.uqcore.TensorQuantization
import tfuq.uqcore.TensorType
import tfuq.uqcore.Tensors
import java.io.Closeable
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.channels.FileChannel

/**
 * A tfuq model run by LiteRT: one invoke through the model's signature runs every MC pass
 * (or the single pass of a deterministic model, the baseline).
 *
 * Inputs and outputs are addressed by the names the model's configuration carries, never by
 * tensor index, and checked against it when the model loads (as `tfuq/runtime/interpreter.py` does), so a
 * mismatched file fails at load with a message instead of giving wrong numbers later.
 * Not thread-safe, like the interpreter: use it from one thread at a time.
 */
class LiteRtModel private constructor(
    val config: ModelConfig,
    private val interpreter: Interpreter,
    private val signature: String,
    private val tensors: TensorLayout,
    /** Referenced for as long as the interpreter runs from this mapping. */
    @Suppress("unused") private val modelBuffer: ByteBuffer
) : MaskedModelRunner, Closeable {

    /** Number of classes the model outputs. */
    val classes: Int get() = tensors.classes

    /** Name of the asset or file the model came from, for the screen. */
    var source: String = ""
        private set

    override fun invoke(pixels: ByteArray, masks: List<Mask>): Invocation {
        val specs = maskSpecs(config)
        if (masks.size != specs.size) {
            throw IllegalArgumentException("${masks.size} masks for ${specs.size} mask inputs")
        }
        val inputs = HashMap<String, Any>()
        inputs[config.input.name] = Tensors.imageInput(pixels, config.input, tensors.image)
        specs.forEachIndexed { index, spec ->
            val name = spec.input!!
            inputs[name] = Tensors.maskInput(masks[index], spec, tensors.masks.getValue(name))
        }
        val output = Tensors.output(config.passes * tensors.classes, tensors.output.type)
        val outputs = HashMap<String, Any>()
        outputs[config.outputName] = output
        val start = System.nanoTime()
        interpreter.runSignature(inputs, outputs, signature)
        val invokeNanos = System.nanoTime() - start
        return Invocation(Tensors.probabilities(output, config.passes, tensors.classes, tensors.output), invokeNanos)
    }

    override fun close() = interpreter.close()

    /** What the model's tensors hold, read once at load. */
    private class TensorLayout(
        val image: TensorQuantization,
        val masks: Map<String, TensorQuantization>,
        val output: TensorQuantization,
        val classes: Int
    )

    companion object {
        const val ASSET = "model.tflite"

        /**
         * Maps [asset] from the APK (stored uncompressed, see app/build.gradle.kts), reads the
         * configuration it carries and builds the interpreter on the same mapping.
         */
        fun fromAsset(context: Context, asset: String = ASSET): LiteRtModel {
            val buffer = context.assets.openFd(asset).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
                }
            }
            val model = load(buffer, ModelFile.readConfig(buffer, asset))
            model.source = asset
            return model
        }

        private fun load(buffer: ByteBuffer, config: ModelConfig): LiteRtModel {
            if (config.mode == ModelConfig.Mode.IN_GRAPH) {
                throw ModelFileException(
                    "this model was converted with --mode in-graph (one invoke per pass); the demo runs " +
                        "all passes in one invoke: convert with --mode masked"
                )
            }
            val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
            val interpreter = Interpreter(buffer, Interpreter.Options().setNumThreads(threads))
            try {
                val keys = interpreter.signatureKeys
                if (keys.isEmpty()) throw ModelFileException("the model has no signature; make it with `tfuq convert`")
                val signature = keys[0]
                return LiteRtModel(config, interpreter, signature, inspect(interpreter, signature, config), buffer)
            } catch (error: Throwable) {
                interpreter.close() // a model that fails its checks must not keep native memory
                throw error
            }
        }

        private fun inspect(interpreter: Interpreter, signature: String, config: ModelConfig): TensorLayout {
            val inputNames = interpreter.getSignatureInputs(signature).toSet()
            val expectedInputs = setOf(config.input.name) + maskSpecs(config).map { it.input!! }
            if (inputNames != expectedInputs) {
                throw ModelFileException("the model takes inputs ${inputNames.sorted()}, its configuration lists ${expectedInputs.sorted()}")
            }
            val image = interpreter.getInputTensorFromSignature(config.input.name, signature)
            val imageShape = intArrayOf(1, config.input.height, config.input.width, config.input.channels)
            if (!image.shape().contentEquals(imageShape)) {
                throw ModelFileException("image input is ${image.shape().toList()}, the configuration says ${imageShape.toList()}")
            }
            val masks = maskSpecs(config).associate { spec ->
                val name = spec.input!!
                val expected = spec.shape!!
                val tensor = interpreter.getInputTensorFromSignature(name, signature)
                if (!tensor.shape().contentEquals(expected)) {
                    throw ModelFileException("mask input $name is ${tensor.shape().toList()}, the configuration says ${expected.toList()}")
                }
                name to quantizationOf(tensor, name)
            }
            if (config.outputName !in interpreter.getSignatureOutputs(signature)) {
                throw ModelFileException("the model has no output named ${config.outputName}")
            }
            val output = interpreter.getOutputTensorFromSignature(config.outputName, signature)
            val outputShape = output.shape()
            if (outputShape.size != 2 || outputShape[0] != config.passes) {
                throw ModelFileException("output is ${outputShape.toList()}; a masked tfuq model gives (passes=${config.passes}, classes)")
            }
            val classes = outputShape[1]
            if (config.labels.isNotEmpty() && config.labels.size != classes) {
                throw ModelFileException("${config.labels.size} labels for $classes classes")
            }
            return TensorLayout(quantizationOf(image, config.input.name), masks, quantizationOf(output, config.outputName), classes)
        }

        private fun quantizationOf(tensor: Tensor, name: String): TensorQuantization {
            val type = when (tensor.dataType()) {
                DataType.UINT8 -> TensorType.UINT8
                DataType.INT8 -> TensorType.INT8
                DataType.FLOAT32 -> TensorType.FLOAT32
                else -> throw ModelFileException("tensor $name is ${tensor.dataType()}; tfuq models use uint8, int8 or float32")
            }
            if (!type.isQuantized) return TensorQuantization.float32()
            val params = tensor.quantizationParams()
            return TensorQuantization(type, params.scale.toDouble(), params.zeroPoint)
        }

        /** The layers that take a mask input: all of a masked model's, none of a deterministic one's. */
        private fun maskSpecs(config: ModelConfig) =
            if (config.mode == ModelConfig.Mode.MASKED) config.mcDropout else emptyList()
    }
}
