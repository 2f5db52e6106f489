package tfuq.bench

import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.io.File
import javax.imageio.ImageIO
import tfuq.uqcore.Aggregation
import tfuq.uqcore.Classifier
import tfuq.uqcore.Decisions
import tfuq.uqcore.Invocation
import tfuq.uqcore.MaskedModelRunner
import tfuq.uqcore.McProbabilities
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.PhotoRule
import tfuq.uqcore.PhotoRuleSpec
import tfuq.uqcore.RunSettings

/**
 * The Kotlin core's host work per photo on the JVM, for EfficientNet-Lite0's shapes (T = 30,
 * 224 x 224; 1000 classes with one mask of 1280, and the 100-class head 1280 -> 512 -> 100 with
 * masks of 1280 and 512): masks drawn for a new seed and kept for a repeated one (Classifier),
 * the photo rule against java.awt's own bilinear scaling of the same crop, and aggregation plus
 * the decision. The median thread CPU time of interleaved repeats, after a warm-up for the JIT.
 * The photo rule in both versions: v1, and v2 from the full-size pixels (step 1b's reduction
 * by s, then the crop and the bilinear passes: the JVM has no JPEG decode at a reduced DCT
 * scale, so the reduction is timed in Kotlin), and v2's steps 1-3 alone on pixels already
 * reduced by s (what is left after a phone's `inSampleSize` decode).
 *
 *   benchmarks/end_to_end_kotlin.sh PHOTO_DIR [REPEATS]
 */
fun main(args: Array<String>) {
    val photos = (File(args[0]).listFiles { f -> f.name.matches(Regex(".*\\.(png|jpe?g)$", RegexOption.IGNORE_CASE)) }
        ?: throw IllegalArgumentException("${args[0]}: not a folder")).sortedBy { it.name }
    val repeats = if (args.size > 1) args[1].toInt() else 20
    println("| shapes | masks drawn (new seed) | masks kept (same seed) | aggregate + decide |")
    println("| --- | --- | --- | --- |")
    for ((name, masks, classes) in listOf(
        Triple("Lite0, 1000 classes, mask 30 x 1280", listOf(1280), 1000),
        Triple("Lite0, 100 classes, masks 30 x 1280 + 30 x 512", listOf(1280, 512), 100)
    )) {
        val config = config(masks, classes)
        val runner = object : MaskedModelRunner {
            override fun invoke(pixels: ByteArray, masks: List<tfuq.uqcore.Mask>): Invocation = throw IllegalStateException("not invoked")
        }
        val drawing = Classifier(config, runner)
        val keeping = Classifier(config, runner)
        val random = java.util.Random(0)
        val values = DoubleArray(30 * classes)
        for (t in 0 until 30) {  // softmax-like rows: positive, summing to 1
            var total = 0.0
            for (c in 0 until classes) { values[t * classes + c] = Math.exp(4 * random.nextGaussian()); total += values[t * classes + c] }
            for (c in 0 until classes) values[t * classes + c] /= total
        }
        val probabilities = McProbabilities.singleImage(30, classes, values)
        var seed = 1L
        val times = interleaved(repeats, linkedMapOf(
            "drawn" to { drawing.masksOf(seed++); Unit },
            "kept" to { keeping.masksOf(0L); Unit },
            "decide" to { Decisions.decide(Aggregation.summarize(probabilities, 1.0)[0], config.decision); Unit }
        ))
        println("| $name | ${ms(times["drawn"]!!)} | ${ms(times["kept"]!!)} | ${ms(times["decide"]!!)} |")
    }
    println()
    // The resampler's loops compiled before any photo is timed (the first would pay for it).
    val warm = IntArray(640 * 480) { it * 2654435761L.toInt() or (0xFF shl 24) }
    for (round in 0 until 200) {
        PhotoRule.prepare(warm, 640, 480, 224, 224)
        PhotoRule.prepare(warm, 640, 480, 224, 224, PhotoRuleSpec.CENTER_CROP_BILINEAR_V2)
    }
    println("| photo | pixels | read (ImageIO) | photo rule v1 (uqcore) | java.awt bilinear drawImage of the crop | v1 / awt " +
        "| v2: s | v2 from full-size pixels (reduce + crop + bilinear) | v2 / v1 | v2 after a decode at 1/s (crop + bilinear) |")
    println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (photo in photos) {
        var image: BufferedImage? = null
        val read = interleaved(5, linkedMapOf("read" to { image = ImageIO.read(photo); Unit }))["read"]!!
        val source = image!!
        val width = source.width
        val height = source.height
        val argb = source.getRGB(0, 0, width, height, null, 0, width)
        val crop = PhotoRule.cropRect(width, height, 224, 224)
        val s = PhotoRule.reductionFactor(width, height, 224, 224)
        // What a decode at 1/s hands over; the full-size reduction stands in for the decoder's.
        val reducedWidth = PhotoRule.reducedSize(width, s)
        val reducedHeight = PhotoRule.reducedSize(height, s)
        val reduced = reduce(argb, width, height, s)
        val times = interleaved(repeats, linkedMapOf(
            "rule" to { PhotoRule.prepare(argb, width, height, 224, 224); Unit },
            "v2" to { PhotoRule.prepare(argb, width, height, 224, 224, PhotoRuleSpec.CENTER_CROP_BILINEAR_V2); Unit },
            "v2 scaled" to {
                PhotoRule.prepareDecodedAtScale(rowsOf(reduced, reducedWidth), reducedWidth, reducedHeight, 224, 224,
                    PhotoRuleSpec.CENTER_CROP_BILINEAR_V2)
                Unit
            },
            "awt" to {
                val out = BufferedImage(224, 224, BufferedImage.TYPE_INT_RGB)
                val g = out.createGraphics()
                g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR)
                g.drawImage(source, 0, 0, 224, 224, crop.left, crop.top, crop.left + crop.width, crop.top + crop.height, null)
                g.dispose()
                out.getRGB(0, 0, 224, 224, null, 0, 224)
                Unit
            }
        ))
        println("| ${photo.name} | ${width}x$height | ${ms(read)} | ${ms(times["rule"]!!)} | ${ms(times["awt"]!!)} | " +
            "${"%.2f".format(times["rule"]!! / times["awt"]!!)}x | $s | ${ms(times["v2"]!!)} | " +
            "${"%.2f".format(times["v2"]!! / times["rule"]!!)}x | ${ms(times["v2 scaled"]!!)} |")
    }
}

private fun rowsOf(argb: IntArray, width: Int) = object : tfuq.uqcore.ArgbRows {
    override fun row(y: Int, into: IntArray) = System.arraycopy(argb, y * width, into, 0, width)
}

/** The photo reduced by [s] with v2's step 1b: v2 at its own reduced size is exactly that. */
private fun reduce(argb: IntArray, width: Int, height: Int, s: Int): IntArray {
    if (s == 1) return argb
    val reducedWidth = PhotoRule.reducedSize(width, s)
    val reducedHeight = PhotoRule.reducedSize(height, s)
    // At the reduced size as the input, the crop is the whole reduced image and no pass runs;
    // s is recomputed for that input, so it is asserted.
    check(PhotoRule.reductionFactor(width, height, reducedWidth, reducedHeight) == s)
    val rgb = PhotoRule.prepare(argb, width, height, reducedWidth, reducedHeight, PhotoRuleSpec.CENTER_CROP_BILINEAR_V2)
    return IntArray(reducedWidth * reducedHeight) { i ->
        (0xFF shl 24) or ((rgb[3 * i].toInt() and 0xFF) shl 16) or ((rgb[3 * i + 1].toInt() and 0xFF) shl 8) or (rgb[3 * i + 2].toInt() and 0xFF)
    }
}

private fun ms(nanos: Double) = "%.3f ms".format(nanos / 1e6)

// CPU time of this thread, as benchmarks/end_to_end.py --clock cpu takes its process's: what
// the work costs, which waiting for a busy core does not inflate.
private val cpu = java.lang.management.ManagementFactory.getThreadMXBean()

private fun interleaved(repeats: Int, calls: Map<String, () -> Unit>): Map<String, Double> {
    for (round in 0 until 10) for (call in calls.values) call()  // the JIT compiles the hot loops
    val times = calls.keys.associateWith { ArrayList<Long>() }
    for (round in 0 until repeats) {
        for ((name, call) in calls) {
            val start = cpu.currentThreadCpuTime
            call()
            times[name]!!.add(cpu.currentThreadCpuTime - start)
        }
    }
    return times.mapValues { (_, v) -> v.sorted()[v.size / 2].toDouble() }  // the median
}

private fun config(masks: List<Int>, classes: Int): ModelConfig {
    val layers = masks.mapIndexed { i, width ->
        """{"layer": "d$i", "input": "mask_$i", "shape": [30, $width], "rate": 0.2}"""
    }.joinToString(", ")
    return ModelConfig.parse("""
        {"format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 30, "labels": [],
         "input": {"name": "image", "height": 224, "width": 224, "channels": 3, "pixel_format": "RGB", "dtype": "uint8",
                   "photo_rule": {"name": "center-crop-bilinear", "version": 1}},
         "output": {"name": "output_0"}, "mc_dropout": [$layers],
         "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24},
         "decision": {"rule": "interval", "conf_factor": 1.0}}
    """.trimIndent(), "bench ($classes classes)")
}
