package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class PixelsTest {
    @Test
    fun cropsAPhotoToTheModelsAspectRatio() {
        assertEquals(CropRect(500, 0, 3000, 3000), Pixels.centerCrop(4000, 3000, 224, 224))
        assertEquals(CropRect(0, 500, 3000, 3000), Pixels.centerCrop(3000, 4000, 32, 32))
        assertEquals(CropRect(0, 0, 640, 480), Pixels.centerCrop(640, 480, 320, 240))
        // A 2:1 input from a square photo keeps the full width.
        assertEquals(CropRect(0, 25, 100, 50), Pixels.centerCrop(100, 100, 64, 32))
        assertEquals(CropRect(0, 0, 1, 1), Pixels.centerCrop(1, 1, 224, 224))
        assertThrows(IllegalArgumentException::class.java) { Pixels.centerCrop(0, 10, 1, 1) }
    }

    @Test
    fun packsArgbIntoRawRgbBytes() {
        val argb = intArrayOf(0xFF102030.toInt(), 0x80FF8001.toInt(), 0x00000000)
        val rgb = Pixels.argbToRgb(argb)
        val unsigned = IntArray(rgb.size) { rgb[it].toInt() and 0xFF }
        assertArrayEquals(intArrayOf(0x10, 0x20, 0x30, 0xFF, 0x80, 0x01, 0, 0, 0), unsigned)
    }
}
