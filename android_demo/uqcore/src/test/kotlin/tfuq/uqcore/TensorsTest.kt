package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class TensorsTest {
    private val image = InputSpec("image", 2, 2, 3, "RGB", "uint8")
    private val maskSpec = MaskSpec("mc_dropout", "mask_0", intArrayOf(3, 4), 0.5)

    @Test
    fun rawPixelsPassThroughAUnitScaleInput() {
        val pixels = ByteArray(12) { (it * 23).toByte() } // 0..253, some above 127
        val buffer = Tensors.imageInput(pixels, image, TensorQuantization(TensorType.UINT8, 1.0, 0))
        for (i in 0 until 12) assertEquals(i * 23, buffer.get(i).toInt() and 0xFF)
    }

    @Test
    fun quantizationRoundsHalfToEvenAndClamps() {
        val q = TensorQuantization(TensorType.INT8, 0.5, -10)
        assertEquals(-10, q.quantize(0.0))
        // 0.25 / 0.5 = 0.5 rounds to 0 and 1.5 rounds to 2 (half to even, as NumPy's round).
        assertEquals(-10, q.quantize(0.25))
        assertEquals(-8, q.quantize(0.75))
        assertEquals(127, q.quantize(1000.0))
        assertEquals(-128, q.quantize(-1000.0))
        assertEquals(2.5, q.dequantize(-5), 0.0)
    }

    @Test
    fun aScoreOutputIsOneDequantizedValue() {
        val q = TensorQuantization(TensorType.INT8, 0.0625, -20)
        val buffer = Tensors.output(1, TensorType.INT8)
        buffer.put(0, (-120).toByte())
        assertEquals(0.0625 * (-120 + 20), Tensors.score(buffer, q), 0.0)
        val floats = Tensors.output(1, TensorType.FLOAT32)
        floats.putFloat(0, 3.5f)
        assertEquals(3.5, Tensors.score(floats, TensorQuantization.float32()), 0.0)
        assertThrows(IllegalArgumentException::class.java) { Tensors.score(Tensors.output(0, TensorType.INT8), q) }
        // float32 arithmetic, as NumPy's on the interpreter's float32 output: 0.1f * 37 rounds to
        // the float32 3.7f (3.700000047...), where the double product 0.1f * 37.0 is 3.7000000551...
        val tenth = TensorQuantization(TensorType.INT8, 0.1f.toDouble(), 0)
        buffer.put(0, 37.toByte())
        assertEquals(3.7f.toDouble(), Tensors.score(buffer, tenth), 0.0)
        assertTrue(0.1f.toDouble() * 37 != 3.7f.toDouble())
    }

    @Test
    fun masksBecomeTheInputsQuantizedValues() {
        val mask = SeededMasks.layerMask(SeededMasks.passSeeds(3L, 3), 0, intArrayOf(4), 0.5)
        // A 0/1 uint8 input calibrated to [0, 1]: scale 1/255, zero point 0.
        val buffer = Tensors.maskInput(mask, maskSpec, TensorQuantization(TensorType.UINT8, 1.0 / 255, 0))
        for (i in 0 until mask.size) assertEquals(if (mask[i] == 1) 255 else 0, buffer.get(i).toInt() and 0xFF)
        val floats = Tensors.maskInput(mask, maskSpec, TensorQuantization.float32())
        for (i in 0 until mask.size) assertEquals(mask[i].toFloat(), floats.getFloat(4 * i), 0f)
    }

    @Test
    fun refusesMasksOfTheWrongShape() {
        val fewerPasses = SeededMasks.layerMask(SeededMasks.passSeeds(3L, 2), 0, intArrayOf(4), 0.5)
        val error = assertThrows(IllegalArgumentException::class.java) {
            Tensors.maskInput(fewerPasses, maskSpec, TensorQuantization.float32())
        }
        assertEquals("mask for mask_0 has shape (2, 4), the model expects (3, 4)", error.message)
        val otherFeatures = SeededMasks.layerMask(SeededMasks.passSeeds(3L, 3), 0, intArrayOf(2, 2), 0.5)
        assertThrows(IllegalArgumentException::class.java) { Tensors.maskInput(otherFeatures, maskSpec, TensorQuantization.float32()) }
    }

    @Test
    fun refusesAnImageOfTheWrongSize() {
        val error = assertThrows(IllegalArgumentException::class.java) {
            Tensors.imageInput(ByteArray(11), image, TensorQuantization(TensorType.UINT8, 1.0, 0))
        }
        assertEquals("image must be 2x2x3 = 12 bytes, got 11; resize to the model input first", error.message)
    }

    @Test
    fun int8SoftmaxOutputsDequantizeToProbabilities() {
        // TFLite's int8 softmax output: scale 1/256, zero point -128.
        val q = TensorQuantization(TensorType.INT8, 1.0 / 256, -128)
        val buffer = Tensors.output(4, TensorType.INT8)
        val stored = intArrayOf(-128, 127, 0, -1)
        for (i in stored.indices) buffer.put(i, stored[i].toByte())
        val p = Tensors.probabilities(buffer, 2, 2, q)
        assertArrayEquals(doubleArrayOf(0.0, 255.0 / 256, 0.5, 127.0 / 256), p.toDoubleArray(), 0.0)
        assertEquals(2, p.passes)
        assertEquals(1, p.batch)
    }

    @Test
    fun aGridPointJustAboveOneIsAProbabilityButFloatNaNIsNot() {
        // scale 1/255 held in float32 puts 255 a hair above 1.0.
        val q = TensorQuantization(TensorType.UINT8, (1f / 255).toDouble(), 0)
        val buffer = Tensors.output(1, TensorType.UINT8)
        buffer.put(0, 255.toByte())
        assertEquals(1.0, Tensors.probabilities(buffer, 1, 1, q)[0, 0, 0], 1e-7)
        val floats = Tensors.output(2, TensorType.FLOAT32)
        floats.putFloat(0, Float.NaN)
        floats.putFloat(4, 1f)
        val nan = assertThrows(IllegalArgumentException::class.java) { Tensors.probabilities(floats, 2, 1, TensorQuantization.float32()) }
        assertEquals("probability at (pass 0, image 0, class 0) is NaN: NaN", nan.message)
    }

    @Test
    fun refusesImpossibleQuantization() {
        assertThrows(IllegalArgumentException::class.java) { TensorQuantization(TensorType.INT8, 0.0, 0) }
        assertThrows(IllegalArgumentException::class.java) { TensorQuantization(TensorType.UINT8, 0.1, -1) }
    }
}
