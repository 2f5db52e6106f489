package tfuq.uqcore

import java.io.File
import java.io.IOException
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.util.zip.CRC32
import java.util.zip.DataFormatException
import java.util.zip.Inflater

/** A file that is not a usable tfuq model: not TFLite, truncated, or without tfuq configuration. */
class ModelFileException(message: String, cause: Throwable? = null) : IllegalArgumentException(message, cause)

/**
 * Reads the configuration a tfuq `.tflite` carries: a TFLite flatbuffer followed by a zip
 * archive holding `tfuq.json` (see `tfuq/runtime/modelfile.py`).
 *
 * The archive is located from its end-of-central-directory record, as every zip reader does.
 * `java.util.zip.ZipFile` would do that too, but needs a [File], and on a phone the model is an
 * asset read as bytes or a memory-mapped buffer; `ZipInputStream` needs to be started at the
 * archive's first entry, which again takes the central directory to find. So the directory is
 * read here and the entry decoded with `java.util.zip`'s [Inflater] and [CRC32].
 *
 * `tfuq` writes entry offsets absolute from the start of the file. Offsets relative to the
 * archive's own start (what appending a `ZipOutputStream` gives) are accepted too: the
 * difference between where the directory says it is and where it is found is added to every
 * offset, as Python's `zipfile` and Info-ZIP do.
 */
object ModelFile {
    const val CONFIG_NAME = "tfuq.json"

    // A configuration is a few kilobytes; a larger entry means a corrupt or hostile file.
    private const val MAX_CONFIG_BYTES = 1 shl 20
    private const val EOCD_SIZE = 22
    private const val MAX_COMMENT = 0xFFFF
    private const val EOCD_SIGNATURE = 0x06054b50
    private const val CENTRAL_SIGNATURE = 0x02014b50
    private const val LOCAL_SIGNATURE = 0x04034b50
    private const val CENTRAL_HEADER_SIZE = 46
    private const val LOCAL_HEADER_SIZE = 30

    fun readConfig(file: File): ModelConfig = ModelConfig.parse(readConfigText(file), file.path)

    fun readConfig(bytes: ByteArray, name: String = "model"): ModelConfig = ModelConfig.parse(readConfigText(bytes, name), name)

    /** From a buffer, e.g. the memory-mapped asset the interpreter also runs from; its position is not moved. */
    fun readConfig(buffer: ByteBuffer, name: String = "model"): ModelConfig = ModelConfig.parse(readConfigText(buffer, name), name)

    fun readConfigText(file: File): String {
        val source = try {
            RandomAccessFile(file, "r")
        } catch (error: IOException) {
            throw ModelFileException("cannot read model file ${file.path}: ${error.message}", error)
        }
        return source.use { raf ->
            read(object : Source {
                override val size: Long = raf.length()
                override fun read(position: Long, length: Int): ByteArray {
                    val out = ByteArray(length)
                    raf.seek(position)
                    raf.readFully(out)
                    return out
                }
            }, file.path)
        }
    }

    fun readConfigText(bytes: ByteArray, name: String = "model"): String = read(object : Source {
        override val size: Long = bytes.size.toLong()
        override fun read(position: Long, length: Int): ByteArray = bytes.copyOfRange(position.toInt(), position.toInt() + length)
    }, name)

    fun readConfigText(buffer: ByteBuffer, name: String = "model"): String = read(object : Source {
        override val size: Long = buffer.limit().toLong()
        override fun read(position: Long, length: Int): ByteArray = ByteArray(length) { buffer.get(position.toInt() + it) }
    }, name)

    private interface Source {
        val size: Long
        /** Exactly [length] bytes from [position]; callers check bounds first. */
        fun read(position: Long, length: Int): ByteArray
    }

    private fun read(source: Source, name: String): String {
        try {
            return readEntry(source, name)
        } catch (error: IOException) {
            throw ModelFileException("cannot read $name: ${error.message}", error)
        }
    }

    private fun noConfig(name: String, why: String): ModelFileException =
        ModelFileException("$name carries no tfuq configuration ($why; truncated, or not made by `tfuq convert`)")

    private fun readEntry(source: Source, name: String): String {
        val size = source.size
        if (size < 8 || String(source.read(4, 4), Charsets.ISO_8859_1) != "TFL3") {
            throw ModelFileException("$name is not a TFLite flatbuffer (no TFL3 identifier)")
        }
        // The end-of-central-directory record sits in the last 22 + up to 65535 (comment) bytes.
        val tailLength = Math.min(size, (EOCD_SIZE + MAX_COMMENT).toLong()).toInt()
        val tailStart = size - tailLength
        val tail = source.read(tailStart, tailLength)
        var eocd = -1
        var i = tailLength - EOCD_SIZE
        while (i >= 0) {
            // A real record's comment length brings us exactly to the end of the file.
            if (u32(tail, i) == EOCD_SIGNATURE.toLong() && i + EOCD_SIZE + u16(tail, i + 20) == tailLength) {
                eocd = i
                break
            }
            i--
        }
        if (eocd < 0) throw noConfig(name, "no zip archive at its end")
        val entries = u16(tail, eocd + 10)
        val directorySize = u32(tail, eocd + 12)
        val directoryOffset = u32(tail, eocd + 16)
        if (entries == 0xFFFF || directorySize == 0xFFFFFFFFL || directoryOffset == 0xFFFFFFFFL) {
            throw noConfig(name, "a zip64 archive, which tfuq never writes")
        }
        val directoryStart = tailStart + eocd - directorySize
        if (directoryStart < 0) throw noConfig(name, "the zip directory runs past the start of the file")
        // 0 for tfuq's absolute offsets; the length of the prefix for archive-relative ones.
        val shift = directoryStart - directoryOffset
        if (shift < 0) throw noConfig(name, "the zip directory points past its own position")
        val directory = source.read(directoryStart, directorySize.toInt())

        var at = 0
        for (entry in 0 until entries) {
            if (at + CENTRAL_HEADER_SIZE > directory.size || u32(directory, at) != CENTRAL_SIGNATURE.toLong()) {
                throw noConfig(name, "a damaged zip directory")
            }
            val method = u16(directory, at + 10)
            val crc = u32(directory, at + 16)
            val compressedSize = u32(directory, at + 20)
            val uncompressedSize = u32(directory, at + 24)
            val nameLength = u16(directory, at + 28)
            val extraLength = u16(directory, at + 30)
            val commentLength = u16(directory, at + 32)
            val localOffset = u32(directory, at + 42)
            if (at + CENTRAL_HEADER_SIZE + nameLength > directory.size) throw noConfig(name, "a damaged zip directory")
            val entryName = String(directory, at + CENTRAL_HEADER_SIZE, nameLength, Charsets.UTF_8)
            if (entryName == CONFIG_NAME) {
                if (uncompressedSize > MAX_CONFIG_BYTES || compressedSize > MAX_CONFIG_BYTES) {
                    throw ModelFileException("$name: $CONFIG_NAME is implausibly large ($uncompressedSize bytes)")
                }
                val data = entryData(source, name, localOffset + shift, compressedSize.toInt())
                val content = when (method) {
                    0 -> data
                    8 -> inflate(data, uncompressedSize.toInt(), name)
                    else -> throw ModelFileException("$name: $CONFIG_NAME uses zip compression method $method; tfuq writes stored or deflated entries")
                }
                if (content.size.toLong() != uncompressedSize) throw ModelFileException("$name: $CONFIG_NAME is truncated")
                val check = CRC32()
                check.update(content, 0, content.size)
                if (check.value != crc) throw ModelFileException("$name: $CONFIG_NAME fails its CRC check (the file is damaged)")
                return decodeUtf8(content, name)
            }
            at += CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength
        }
        throw noConfig(name, "its zip archive holds no $CONFIG_NAME")
    }

    private fun entryData(source: Source, name: String, localHeader: Long, length: Int): ByteArray {
        if (localHeader < 0 || localHeader + LOCAL_HEADER_SIZE > source.size) throw noConfig(name, "a zip entry outside the file")
        val header = source.read(localHeader, LOCAL_HEADER_SIZE)
        if (u32(header, 0) != LOCAL_SIGNATURE.toLong()) throw noConfig(name, "a zip entry header missing where the directory points")
        // The local header's own name and extra lengths can differ from the directory's.
        val dataStart = localHeader + LOCAL_HEADER_SIZE + u16(header, 26) + u16(header, 28)
        if (dataStart + length > source.size) throw ModelFileException("$name: $CONFIG_NAME is truncated")
        return source.read(dataStart, length)
    }

    private fun inflate(data: ByteArray, expected: Int, name: String): ByteArray {
        // nowrap: zip entries are raw deflate streams without zlib headers.
        val inflater = Inflater(true)
        try {
            inflater.setInput(data)
            val out = ByteArray(expected)
            var filled = 0
            while (filled < expected) {
                val n = inflater.inflate(out, filled, expected - filled)
                if (n == 0) break // finished, or starved of input: either way no more bytes will come
                filled += n
            }
            if (filled != expected) throw ModelFileException("$name: $CONFIG_NAME is truncated")
            return out
        } catch (error: DataFormatException) {
            throw ModelFileException("$name: $CONFIG_NAME is not valid deflate data", error)
        } finally {
            inflater.end()
        }
    }

    private fun decodeUtf8(bytes: ByteArray, name: String): String {
        val decoder = Charsets.UTF_8.newDecoder()
        return try {
            decoder.decode(ByteBuffer.wrap(bytes)).toString()
        } catch (error: java.nio.charset.CharacterCodingException) {
            throw ModelFileException("$name: $CONFIG_NAME is not UTF-8 text", error)
        }
    }

    private fun u16(bytes: ByteArray, at: Int): Int = (bytes[at].toInt() and 0xFF) or ((bytes[at + 1].toInt() and 0xFF) shl 8)

    private fun u32(bytes: ByteArray, at: Int): Long = (u16(bytes, at).toLong() or (u16(bytes, at + 2).toLong() shl 16))
}
