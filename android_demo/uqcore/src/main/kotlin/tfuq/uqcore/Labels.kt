package tfuq.uqcore

/**
 * Class names as a phone screen shows them, for models with many classes: the 1000-class
 * ImageNet EfficientNet-Lite0 of `tfuq pretrained` carries labels such as
 * "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias".
 * The same rules as the web page's `shortLabel` and `classSummary` (web_demo/src/core/modelfile.ts).
 */
object Labels {
    /** The first of comma-separated synonyms ("tench, Tinca tinca" is "tench"); the whole label when that part is blank. */
    fun short(label: String): String {
        val first = label.substringBefore(',').trim()
        return if (first.length == 0) label else first
    }

    /**
     * The classes in one line: "4 classes: red, orange, yellow, green" when there are at most
     * [shown], else the first [shown] and an ellipsis: "1000 classes: tench, goldfish, great white shark, …".
     * Names past the labels the model carries are `class_i`, as [ModelConfig.label] gives them.
     */
    fun summary(labels: List<String>, classes: Int, shown: Int = 3): String {
        if (shown < 1) throw IllegalArgumentException("shown must be at least 1, got $shown")
        val count = Math.min(classes, shown)
        val names = (0 until count).map { short(if (it in labels.indices) labels[it] else "class_$it") }
        val noun = if (classes == 1) "class" else "classes"
        return "$classes $noun: ${names.joinToString(", ")}" + if (classes > count) ", …" else ""
    }

    /** Whether [summary] leaves classes out (the screen then offers the whole list). */
    fun truncated(classes: Int, shown: Int = 3): Boolean = classes > shown
}
