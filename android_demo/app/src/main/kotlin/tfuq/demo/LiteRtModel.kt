package tfuq.demo

import android.content.Context
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import tfuq.uqcore.Invocation
import tfuq.uqcore.Mask
import tfuq.uqcore.MaskedModelRunner
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.ModelFile
import tfuq.uqcore.ModelFileException
import tfuq.uqcore.ModelInputs
import tfuq.uqcore.TensorQuantization
import tfuq.uqcore.TensorType
import tfuq.uqcore.Tensors
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel

/**
 * A tfuq model run by LiteRT: one invoke through the model's signature runs every MC pass
 * (or the single pass of a deterministic model, the baseline).
 *
 * Which input takes what, and the checks of the tensors against the configuration, are
 * uqcore's [ModelInputs] (tested on the JVM); this class only asks LiteRT for its tensors and
 * runs the buffers. A mismatched file fails at load with a message instead of giving wrong
 * numbers later. Not thread-safe, like the interpreter: use it from one thread at a time.
 */
class LiteRtModel private constructor(
    val config: ModelConfig,
    private val interpreter: Interpreter,
    private val signature: String,
    private val inputs: ModelInputs,
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
        val feeds: Map<String, Any> = inputs.feed(pixels, masks) { name -> tensors.inputs.getValue(name) }
        val output = Tensors.output(config.passes * tensors.classes, tensors.output.type)
        val outputs = HashMap<String, Any>()
        outputs[config.outputName] = output
        // The out-of-distribution scores come out of the same invoke, one (1, 1) output each.
        val scoreBuffers = config.scores.associateWith { Tensors.output(1, tensors.scores.getValue(it.output).type) }
        for ((score, buffer) in scoreBuffers) outputs[score.output] = buffer
        val start = System.nanoTime()
        interpreter.runSignature(feeds, outputs, signature)
        val invokeNanos = System.nanoTime() - start
        val scores = scoreBuffers.entries.associate { (score, buffer) -> score.name to Tensors.score(buffer, tensors.scores.getValue(score.output)) }
        return Invocation(Tensors.probabilities(output, config.passes, tensors.classes, tensors.output), invokeNanos, scores)
    }

    override fun close() = interpreter.close()

    /** What the model's tensors hold, read once at load. */
    private class TensorLayout(
        /** By input name: the image's and every mask's. */
        val inputs: Map<String, TensorQuantization>,
        val output: TensorQuantization,
        val classes: Int,
        /** By output name: each out-of-distribution score's. */
        val scores: Map<String, TensorQuantization>
    )

    companion object {
        const val ASSET = "model.tflite"

        /**
         * Maps [asset] from the APK (stored uncompressed, see app/build.gradle.kts), reads the
         * configuration it carries and builds the interpreter on the same mapping.
         *
         * Throws [java.io.FileNotFoundException] when the APK has no such asset,
         * [ModelFileException] for a file that is not a usable tfuq model or cannot be read
         * (an [IOException] while mapping it is reported so), and [UnsatisfiedLinkError] when
         * LiteRT's native library is missing for this device's ABI.
         */
        fun fromAsset(context: Context, asset: String = ASSET): LiteRtModel {
            val buffer = context.assets.openFd(asset).use { descriptor ->
                try {
                    FileInputStream(descriptor.fileDescriptor).use { stream ->
                        stream.channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
                    }
                } catch (error: IOException) {
                    throw ModelFileException("cannot map $asset: ${error.message}", error)
                }
            }
            val model = load(buffer, ModelFile.readConfig(buffer, asset))
            model.source = asset
            return model
        }

        private fun load(buffer: ByteBuffer, config: ModelConfig): LiteRtModel {
            val inputs = ModelInputs(config)
            val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
            val interpreter = Interpreter(buffer, Interpreter.Options().setNumThreads(threads))
            try {
                val keys = interpreter.signatureKeys
                if (keys.isEmpty()) throw ModelFileException("the model has no signature; make it with `tfuq convert`")
                val signature = keys[0]
                return LiteRtModel(config, interpreter, signature, inputs, inspect(interpreter, signature, inputs), buffer)
            } catch (error: Throwable) {
                interpreter.close() // a model that fails its checks must not keep native memory
                throw error
            }
        }

        private fun inspect(interpreter: Interpreter, signature: String, inputs: ModelInputs): TensorLayout {
            val config = inputs.config
            inputs.checkInputNames(interpreter.getSignatureInputs(signature).toList())
            val image = interpreter.getInputTensorFromSignature(config.input.name, signature)
            inputs.checkImageShape(image.shape())
            val quantizations = LinkedHashMap<String, TensorQuantization>()
            quantizations[config.input.name] = quantizationOf(image, config.input.name)
            for (layer in inputs.maskLayers) {
                val name = layer.input!!
                val tensor = interpreter.getInputTensorFromSignature(name, signature)
                inputs.checkMaskShape(name, tensor.shape())
                quantizations[name] = quantizationOf(tensor, name)
            }
            if (config.outputName !in interpreter.getSignatureOutputs(signature)) {
                throw ModelFileException("the model has no output named ${config.outputName}")
            }
            val output = interpreter.getOutputTensorFromSignature(config.outputName, signature)
            val classes = inputs.classesOf(output.shape())
            val scores = LinkedHashMap<String, TensorQuantization>()
            for (score in config.scores) {
                if (score.output !in interpreter.getSignatureOutputs(signature)) {
                    throw ModelFileException("the model has no output named ${score.output} for its score ${score.name}")
                }
                val tensor = interpreter.getOutputTensorFromSignature(score.output, signature)
                inputs.checkScoreShape(score.output, tensor.shape())
                scores[score.output] = quantizationOf(tensor, score.output)
            }
            return TensorLayout(quantizations, quantizationOf(output, config.outputName), classes, scores)
        }

        private fun quantizationOf(tensor: Tensor, name: String): TensorQuantization {
            val type = TensorType.of(tensor.dataType().name, name)
            val params = tensor.quantizationParams()
            return TensorQuantization.of(type, params.scale.toDouble(), params.zeroPoint)
        }
    }
}
