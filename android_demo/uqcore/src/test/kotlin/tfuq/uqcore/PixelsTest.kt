package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Test

class PixelsTest {
    @Test
    fun packsArgbIntoRawRgbBytes() {
        val argb = intArrayOf(0xFF102030.toInt(), 0x80FF8001.toInt(), 0x00000000)
        val rgb = Pixels.argbToRgb(argb)
        val unsigned = IntArray(rgb.size) { rgb[it].toInt() and 0xFF }
        assertArrayEquals(intArrayOf(0x10, 0x20, 0x30, 0xFF, 0x80, 0x01, 0, 0, 0), unsigned)
    }
}
