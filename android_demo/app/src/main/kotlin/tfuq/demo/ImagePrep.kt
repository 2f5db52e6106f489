package tfuq.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.net.Uri
import java.io.IOException
import java.nio.ByteBuffer
import tfuq.uqcore.ArgbRows
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.PhotoRule

/** A photo made ready for the model: what the screen shows and what the model takes. */
class PreparedImage(
    /** What the model sees (the centre crop, or the stretched photo), at display size, made by the same rule. */
    val preview: Bitmap,
    /** RGB bytes `(height, width, 3)` at the model's input size, raw 0-255. */
    val pixels: ByteArray
)

/**
 * Photo -> model input by the photo rule the model names ([ModelConfig.photoRule]:
 * `center-crop-bilinear` v1, or the whole photo stretched for a model without `photo_rule`),
 * as `tfuq predict` does on a Pi: the platform decodes (EXIF orientation applied by
 * [ImageDecoder] itself, so no ExifInterface; colour profile ignored; full resolution), and
 * uqcore's [PhotoRule] does the rest in integers (alpha over white, the rule's centre crop if
 * any, Pillow's bilinear), bit for bit as Python.
 * Android's own bitmap scaling is not used: it filters differently, so the same photo would
 * give other pixels, and other decisions, than on a Pi.
 */
object ImagePrep {
    /** Longest side of the preview the screen shows. */
    private const val PREVIEW_SIZE = 720

    fun prepare(resolver: ContentResolver, uri: Uri, config: ModelConfig): PreparedImage {
        val input = config.input
        val decoded = decode(resolver, uri)
        val rows = rowsOf(decoded)
        val pixels = PhotoRule.forModel(rows, decoded.width, decoded.height, config)
        // The preview goes through the same rule at screen size: what you see is what the
        // model saw, only larger.
        val previewWidth = if (input.width >= input.height) PREVIEW_SIZE else maxOf(1, PREVIEW_SIZE * input.width / input.height)
        val previewHeight = if (input.width >= input.height) maxOf(1, PREVIEW_SIZE * input.height / input.width) else PREVIEW_SIZE
        val shown = PhotoRule.prepare(rows, decoded.width, decoded.height, previewWidth, previewHeight, config.photoRule)
        decoded.recycle()
        return PreparedImage(toBitmap(shown, previewWidth, previewHeight), pixels)
    }

    private fun decode(resolver: ContentResolver, uri: Uri): Bitmap {
        val decoded = ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
            val width = info.size.width.toLong()
            val height = info.size.height.toLong()
            if (width * height > PhotoRule.MAX_PIXELS) {
                throw IOException("${width}x$height is more than the ${PhotoRule.MAX_PIXELS} pixels a photo may have")
            }
            // Software pixels, readable by copyPixelsToBuffer; unpremultiplied, so alpha is
            // composited by the rule's integers, not rounded by premultiplication first. No
            // target colour space: the stored values are taken as they are (the rule ignores
            // colour profiles, as Pillow does).
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
            decoder.isUnpremultipliedRequired = true
        }
        // 16-bit images decode to RGBA_F16; the platform converts them to 8 bits (rounding,
        // where Pillow keeps the high byte: such photos may differ by one level).
        return if (decoded.config == Bitmap.Config.ARGB_8888) decoded else decoded.copy(Bitmap.Config.ARGB_8888, false)
    }

    /**
     * The bitmap's stored bytes, row by row. copyPixelsToBuffer copies them as they are (R, G,
     * B, A per pixel for ARGB_8888), where getPixels would convert a non-sRGB bitmap to sRGB.
     */
    private fun rowsOf(bitmap: Bitmap): ArgbRows {
        val buffer = ByteBuffer.allocateDirect(bitmap.rowBytes * bitmap.height)
        bitmap.copyPixelsToBuffer(buffer)
        val stride = bitmap.rowBytes
        return object : ArgbRows {
            override fun row(y: Int, into: IntArray) {
                var at = y * stride
                for (x in 0 until bitmap.width) {
                    val r = buffer.get(at).toInt() and 0xFF
                    val g = buffer.get(at + 1).toInt() and 0xFF
                    val b = buffer.get(at + 2).toInt() and 0xFF
                    val a = buffer.get(at + 3).toInt() and 0xFF
                    into[x] = (a shl 24) or (r shl 16) or (g shl 8) or b
                    at += 4
                }
            }
        }
    }

    private fun toBitmap(rgb: ByteArray, width: Int, height: Int): Bitmap {
        val argb = IntArray(width * height) { i ->
            val r = rgb[3 * i].toInt() and 0xFF
            val g = rgb[3 * i + 1].toInt() and 0xFF
            val b = rgb[3 * i + 2].toInt() and 0xFF
            (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        return Bitmap.createBitmap(argb, width, height, Bitmap.Config.ARGB_8888)
    }
}
