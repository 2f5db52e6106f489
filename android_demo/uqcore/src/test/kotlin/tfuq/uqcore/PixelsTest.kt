package tfuq.uqcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class PixelsTest {
    @Test
    fun packsArgbIntoRawRgbBytes() {
        val argb = intArrayOf(0xFF102030.toInt(), 0x80FF8001.toInt(), 0x00000000)
        val rgb = Pixels.argbToRgb(argb)
        val unsigned = IntArray(rgb.size) { rgb[it].toInt() and 0xFF }
        assertArrayEquals(intArrayOf(0x10, 0x20, 0x30, 0xFF, 0x80, 0x01, 0, 0, 0), unsigned)
    }

    /**
     * A 3x2 image stored as 0 1 2 / 3 4 5, turned upright for each EXIF orientation; the rows
     * drawn by hand and the same as Pillow's `ImageOps.exif_transpose` gives (checked 2026-12-05).
     */
    @Test
    fun orientsAsExifSays() {
        val stored = intArrayOf(0, 1, 2, 3, 4, 5)
        val upright = mapOf(
            1 to intArrayOf(0, 1, 2, 3, 4, 5),
            2 to intArrayOf(2, 1, 0, 5, 4, 3),     // mirrored left-right
            3 to intArrayOf(5, 4, 3, 2, 1, 0),     // rotated 180
            4 to intArrayOf(3, 4, 5, 0, 1, 2),     // mirrored top-bottom
            5 to intArrayOf(0, 3, 1, 4, 2, 5),     // transposed: 2 wide, 3 high from here on
            6 to intArrayOf(3, 0, 4, 1, 5, 2),     // rotated 90 clockwise: the bottom-left first
            7 to intArrayOf(5, 2, 4, 1, 3, 0),     // transverse
            8 to intArrayOf(2, 5, 1, 4, 0, 3)      // rotated 90 counter-clockwise
        )
        for ((orientation, expected) in upright) {
            assertArrayEquals("orientation $orientation", expected, Pixels.orient(stored, 3, 2, orientation))
            assertEquals(orientation >= 5, Pixels.swapsSides(orientation))
        }
        // Undefined (0) or out of range: as stored.
        assertArrayEquals(stored, Pixels.orient(stored, 3, 2, 0))
        assertArrayEquals(stored, Pixels.orient(stored, 3, 2, 9))
        assertThrows(IllegalArgumentException::class.java) { Pixels.orient(stored, 2, 2, 6) }
    }
}
