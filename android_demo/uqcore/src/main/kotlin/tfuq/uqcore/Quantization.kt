package tfuq.uqcore

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Element types of the tensors a tfuq model exposes. */
enum class TensorType(val bytes: Int, val min: Int, val max: Int) {
    UINT8(1, 0, 255),
    INT8(1, -128, 127),
    FLOAT32(4, 0, 0);

    val isQuantized: Boolean get() = this != FLOAT32

    companion object {
        /** The type an interpreter names [typeName] (LiteRT's `DataType` names), for tensor [tensor]. */
        fun of(typeName: String, tensor: String): TensorType = values().firstOrNull { it.name == typeName }
            ?: throw ModelFileException("tensor $tensor is $typeName; tfuq models use uint8, int8 or float32")
    }
}

/**
 * Affine quantization of one tensor, `real = scale * (q - zeroPoint)`, as the interpreter
 * reports it. A scale of 0 means "not quantized" (TFLite's convention), which only a
 * FLOAT32 tensor may have.
 */
class TensorQuantization(val type: TensorType, val scale: Double, val zeroPoint: Int) {
    init {
        if (type.isQuantized) {
            if (!(scale > 0.0) || scale.isInfinite()) throw IllegalArgumentException("a quantized $type tensor needs a positive finite scale, got $scale")
            if (zeroPoint < type.min || zeroPoint > type.max) throw IllegalArgumentException("zero point $zeroPoint is outside the $type range")
        }
    }

    /** real -> stored integer, rounding half to even and clamping as `tfuq/runtime/interpreter.py` does. */
    fun quantize(real: Double): Int {
        val q = Math.rint(real / scale) + zeroPoint
        return if (q < type.min) type.min else if (q > type.max) type.max else q.toInt()
    }

    fun dequantize(stored: Int): Double = scale * (stored - zeroPoint)

    override fun toString(): String = "$type(scale=$scale, zero_point=$zeroPoint)"

    companion object {
        fun float32(): TensorQuantization = TensorQuantization(TensorType.FLOAT32, 0.0, 0)

        /** As an interpreter reports a tensor: a float tensor's scale and zero point are ignored. */
        fun of(type: TensorType, scale: Double, zeroPoint: Int): TensorQuantization =
            if (type.isQuantized) TensorQuantization(type, scale, zeroPoint) else float32()
    }
}

/**
 * The bytes one invoke takes and gives, in the byte order of the device (what LiteRT expects
 * for direct buffers). Absolute get/put only: the relative ByteBuffer methods changed return
 * types across Java versions, which breaks on older Android runtimes.
 */
object Tensors {
    /**
     * The image input: [pixels] are RGB bytes, row-major `(height, width, 3)`, values 0-255 as
     * unsigned bytes. Models from `tfuq convert` take raw pixels (uint8, scale 1, zero point 0),
     * but the quantization is applied in general so any input scale is honored.
     */
    fun imageInput(pixels: ByteArray, spec: InputSpec, quantization: TensorQuantization): ByteBuffer {
        val expected = spec.height * spec.width * spec.channels
        if (pixels.size != expected) {
            throw IllegalArgumentException("image must be ${spec.height}x${spec.width}x${spec.channels} = $expected bytes, got ${pixels.size}; resize to the model input first")
        }
        val buffer = allocate(expected, quantization.type)
        for (i in 0 until expected) put(buffer, i, (pixels[i].toInt() and 0xFF).toDouble(), quantization)
        return buffer
    }

    /** A mask input: checks that [mask] has exactly the shape [spec] declares, passes included. */
    fun maskInput(mask: Mask, spec: MaskSpec, quantization: TensorQuantization): ByteBuffer {
        val shape = spec.shape ?: throw IllegalArgumentException("layer ${spec.layer} takes no mask input (in-graph model)")
        if (!mask.shape.contentEquals(shape)) {
            throw IllegalArgumentException("mask for ${spec.input} has shape ${Mask.shapeText(mask.shape)}, the model expects ${Mask.shapeText(shape)}")
        }
        val buffer = allocate(mask.size, quantization.type)
        for (i in 0 until mask.size) put(buffer, i, mask[i].toDouble(), quantization)
        return buffer
    }

    /** A buffer for an output of [count] elements. */
    fun output(count: Int, type: TensorType): ByteBuffer = allocate(count, type)

    /** Dequantize an output of [passes] x [classes] values into [McProbabilities] for one image. */
    fun probabilities(buffer: ByteBuffer, passes: Int, classes: Int, quantization: TensorQuantization): McProbabilities {
        val count = passes * classes
        if (buffer.capacity() < count * quantization.type.bytes) {
            throw IllegalArgumentException("output holds ${buffer.capacity()} bytes, need $count ${quantization.type} values for ($passes, $classes)")
        }
        // Used as given, like tfuq/runtime/interpreter.py: McProbabilities refuses NaN and values beyond 1.
        val values = DoubleArray(count) { get(buffer, it, quantization) }
        return McProbabilities.singleImage(passes, classes, values)
    }

    /**
     * Dequantize a score output, shape `(1, 1)`: one value, in float32 arithmetic as
     * `tfuq/runtime/interpreter.py` computes it. An int8 score takes one of 256 values, and a
     * calibrated OOD threshold is one of them, so ties are common: a double product would differ
     * from Python's float32 one in the last bits and could refuse the very image Python accepts.
     */
    fun score(buffer: ByteBuffer, quantization: TensorQuantization): Double {
        if (buffer.capacity() < quantization.type.bytes) {
            throw IllegalArgumentException("score output holds ${buffer.capacity()} bytes, need one ${quantization.type} value")
        }
        val stored = when (quantization.type) {
            TensorType.FLOAT32 -> return buffer.getFloat(0).toDouble()
            TensorType.UINT8 -> buffer.get(0).toInt() and 0xFF
            TensorType.INT8 -> buffer.get(0).toInt()
        }
        return ((stored - quantization.zeroPoint).toFloat() * quantization.scale.toFloat()).toDouble()
    }

    private fun allocate(count: Int, type: TensorType): ByteBuffer =
        ByteBuffer.allocateDirect(count * type.bytes).order(ByteOrder.nativeOrder())

    private fun put(buffer: ByteBuffer, index: Int, real: Double, q: TensorQuantization) {
        when (q.type) {
            TensorType.FLOAT32 -> buffer.putFloat(index * 4, real.toFloat())
            else -> buffer.put(index, q.quantize(real).toByte())
        }
    }

    private fun get(buffer: ByteBuffer, index: Int, q: TensorQuantization): Double = when (q.type) {
        TensorType.FLOAT32 -> buffer.getFloat(index * 4).toDouble()
        TensorType.UINT8 -> q.dequantize(buffer.get(index).toInt() and 0xFF)
        TensorType.INT8 -> q.dequantize(buffer.get(index).toInt())
    }
}
