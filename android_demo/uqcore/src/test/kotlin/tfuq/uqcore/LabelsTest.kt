package tfuq.uqcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/** The class names of many-class models, as the web page's core shows them (core.test.ts has the same cases). */
class LabelsTest {
    @Test
    fun keepsTheFirstImageNetSynonym() {
        assertEquals("tench", Labels.short("tench, Tinca tinca"))
        assertEquals("great white shark", Labels.short("great white shark, white shark, man-eater"))
        assertEquals(" , odd", Labels.short(" , odd"))
        assertEquals("plain", Labels.short("plain"))
    }

    @Test
    fun listsFewClassesWholeAndManyAsTheFirstFewAndAnEllipsis() {
        assertEquals("4 classes: red, orange, yellow, green", Labels.summary(listOf("red", "orange", "yellow", "green"), 4, 5))
        assertFalse(Labels.truncated(4, 5))
        val names = listOf("tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark", "tiger shark", "hammerhead")
        assertEquals("1000 classes: tench, goldfish, great white shark, tiger shark, hammerhead, …", Labels.summary(names, 1000, 5))
        assertEquals("1000 classes: tench, goldfish, great white shark, …", Labels.summary(names, 1000))
        assertTrue(Labels.truncated(1000))
        assertEquals("2 classes: class_0, class_1", Labels.summary(emptyList(), 2))
        assertThrows(IllegalArgumentException::class.java) { Labels.summary(names, 10, 0) }
    }
}
