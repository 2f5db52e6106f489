package tfuq.uqcore

import java.io.ByteArrayOutputStream
import java.util.zip.CRC32
import java.util.zip.ZipEntry
import java.util.zip.ZipOutputStream

/** A valid configuration and the ways the tests pack it into model files. */
object ModelFixtures {
    /** What `tfuq convert` writes (tfuq/conversion/convert.py) for a small 2-class masked model. */
    val config = """
        {"format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 4,
         "labels": ["cat", "dog"],
         "input": {"name": "image", "height": 32, "width": 24, "channels": 3, "pixel_format": "RGB",
                   "dtype": "uint8", "preprocessing": "inside the model: feed raw pixels 0-255",
                   "photo_rule": {"name": "center-crop-bilinear", "version": 1}},
         "output": {"name": "output_0", "kind": "probabilities", "layout": "(passes, classes)"},
         "mc_dropout": [{"layer": "mc_dropout", "input": "mask_0", "shape": [4, 16], "rate": 0.25},
                        {"layer": "mc_dropout_1", "input": "mask_1", "shape": [4, 2, 3], "rate": 0.5}],
         "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                         "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
         "decision": {"rule": "threshold", "score": "mutual_information", "threshold": 0.125,
                      "calibration": {"target_risk": 0.1, "samples": 200}},
         "source": {"keras_model": "tiny", "calibration_samples": 8}}
    """.trimIndent()

    /** Enough of a flatbuffer for the reader: 4 bytes of root offset, then the TFL3 identifier. */
    val flatbuffer: ByteArray = byteArrayOf(0x1C, 0, 0, 0) + "TFL3".toByteArray(Charsets.US_ASCII) + ByteArray(120) { (it * 7).toByte() }

    /** The JDK's way: ZipOutputStream appended after the flatbuffer (archive-relative offsets). */
    fun jdkModelFile(text: String, method: Int = ZipEntry.DEFLATED, comment: String? = null): ByteArray {
        val zip = ByteArrayOutputStream()
        ZipOutputStream(zip).use { out ->
            out.setMethod(method)
            if (comment != null) out.setComment(comment)
            val bytes = text.toByteArray(Charsets.UTF_8)
            val entry = ZipEntry(ModelFile.CONFIG_NAME)
            if (method == ZipEntry.STORED) {
                val crc = CRC32()
                crc.update(bytes, 0, bytes.size)
                entry.size = bytes.size.toLong()
                entry.crc = crc.value
            }
            out.putNextEntry(entry)
            out.write(bytes)
            out.closeEntry()
        }
        return flatbuffer + zip.toByteArray()
    }

    /**
     * Python's way (tfuq/runtime/modelfile.py): a stored entry whose offsets count from the
     * start of the whole file. Made from the JDK's stored archive by adding the flatbuffer's
     * length to the two offsets, the local header's in the directory and the directory's own.
     */
    fun absoluteOffsetsModelFile(text: String): ByteArray {
        val bytes = jdkModelFile(text, ZipEntry.STORED)
        val shift = flatbuffer.size
        val eocd = lastIndexOf(bytes, 0x06054b50)
        val directory = u32(bytes, eocd + 16).toInt() + shift
        put32(bytes, eocd + 16, directory.toLong())
        put32(bytes, directory + 42, u32(bytes, directory + 42) + shift)
        return bytes
    }

    /** An org.json object's keys, through the iterator every Android version has. */
    fun keysOf(json: org.json.JSONObject): List<String> {
        val out = ArrayList<String>()
        val names = json.keys()
        while (names.hasNext()) out.add(names.next())
        return out
    }

    fun lastIndexOf(bytes: ByteArray, signature: Int): Int {
        var i = bytes.size - 4
        while (i >= 0) {
            if (u32(bytes, i) == signature.toLong()) return i
            i--
        }
        return -1
    }

    fun u16(bytes: ByteArray, at: Int): Int = (bytes[at].toInt() and 0xFF) or ((bytes[at + 1].toInt() and 0xFF) shl 8)

    fun u32(bytes: ByteArray, at: Int): Long = u16(bytes, at).toLong() or (u16(bytes, at + 2).toLong() shl 16)

    fun put16(bytes: ByteArray, at: Int, value: Int) {
        bytes[at] = value.toByte()
        bytes[at + 1] = (value shr 8).toByte()
    }

    fun put32(bytes: ByteArray, at: Int, value: Long) {
        for (k in 0 until 4) bytes[at + k] = (value shr (8 * k)).toByte()
    }
}
