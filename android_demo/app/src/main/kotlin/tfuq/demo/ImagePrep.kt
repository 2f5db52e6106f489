package tfuq.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.ImageDecoder
import android.media.ExifInterface
import android.net.Uri
import java.io.IOException
import java.nio.ByteBuffer
import tfuq.uqcore.ArgbRows
import tfuq.uqcore.ModelConfig
import tfuq.uqcore.PhotoRule
import tfuq.uqcore.Pixels

/** A photo made ready for the model: what the screen shows and what the model takes. */
class PreparedImage(
    /** What the model sees (the centre crop, or the stretched photo), at display size, made by the same rule. */
    val preview: Bitmap,
    /** RGB bytes `(height, width, 3)` at the model's input size, raw 0-255. */
    val pixels: ByteArray
)

/**
 * Photo -> model input by the photo rule the model names ([ModelConfig.photoRule]:
 * `center-crop-bilinear` v2 or v1, or the whole photo stretched for a model without
 * `photo_rule`), as `tfuq predict` does on a Pi: the platform decodes (EXIF orientation applied
 * by [ImageDecoder] itself; colour profile ignored; full resolution), and uqcore's [PhotoRule]
 * does the rest in integers (alpha over white, v2's reduction by s, the rule's centre crop if
 * any, Pillow's bilinear), bit for bit as Python.
 * Under v2 a JPEG is decoded at 1/s instead (step 0: `inSampleSize`, libjpeg's scaled IDCT,
 * as Pillow's `draft` on a Pi) when the decoder gives exactly the rule's reduced size; those
 * pixels differ from the full decode's reduction by decoder rounding, as any two JPEG decoders'.
 * Android's own bitmap scaling is not used: it filters differently, so the same photo would
 * give other pixels, and other decisions, than on a Pi.
 */
object ImagePrep {
    /** Longest side of the preview the screen shows. */
    private const val PREVIEW_SIZE = 720

    fun prepare(resolver: ContentResolver, uri: Uri, config: ModelConfig): PreparedImage {
        val input = config.input
        // The preview goes through the same rule at screen size: what you see is what the
        // model saw, only larger.
        val previewWidth = if (input.width >= input.height) PREVIEW_SIZE else maxOf(1, PREVIEW_SIZE * input.width / input.height)
        val previewHeight = if (input.width >= input.height) maxOf(1, PREVIEW_SIZE * input.height / input.width) else PREVIEW_SIZE
        val scaled = if (config.photoRule.reduces) decodeJpegAtScale(resolver, uri, input.width, input.height) else null
        if (scaled != null) {
            // Already reduced by s: steps 1, 2 and 3 only (the preview from the same pixels).
            val rows = object : ArgbRows {
                override fun row(y: Int, into: IntArray) = System.arraycopy(scaled.argb, y * scaled.width, into, 0, scaled.width)
            }
            val pixels = PhotoRule.prepareDecodedAtScale(rows, scaled.width, scaled.height, input.width, input.height, config.photoRule)
            val shown = PhotoRule.prepareDecodedAtScale(rows, scaled.width, scaled.height, previewWidth, previewHeight, config.photoRule)
            return PreparedImage(toBitmap(shown, previewWidth, previewHeight), pixels)
        }
        val decoded = decode(resolver, uri)
        val rows = rowsOf(decoded)
        val pixels = PhotoRule.forModel(rows, decoded.width, decoded.height, config)
        val shown = PhotoRule.prepare(rows, decoded.width, decoded.height, previewWidth, previewHeight, config.photoRule)
        decoded.recycle()
        return PreparedImage(toBitmap(shown, previewWidth, previewHeight), pixels)
    }

    /** Upright packed ARGB pixels, row-major. */
    private class Upright(val argb: IntArray, val width: Int, val height: Int)

    /**
     * v2's step 0 for a JPEG: decoded at 1/s with s = [PhotoRule.reductionFactor] of its upright
     * size, then turned upright. Null (decode in full; uqcore reduces) when the photo is not a
     * JPEG, s is 1, or the decoder's size is not the rule's `ceil(W/s) x ceil(H/s)`.
     */
    private fun decodeJpegAtScale(resolver: ContentResolver, uri: Uri, targetWidth: Int, targetHeight: Int): Upright? {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        // With inJustDecodeBounds decodeStream returns null and fills in bounds' out fields.
        (resolver.openInputStream(uri) ?: return null).use { BitmapFactory.decodeStream(it, null, bounds) }
        val storedWidth = bounds.outWidth
        val storedHeight = bounds.outHeight
        if (bounds.outMimeType != "image/jpeg" || storedWidth < 1 || storedHeight < 1) return null
        if (storedWidth.toLong() * storedHeight > PhotoRule.MAX_PIXELS) return null  // decode() refuses it
        // BitmapFactory does not apply the EXIF orientation: s is chosen on the upright size,
        // inSampleSize applies to the stored one (the same s on both sides either way).
        val orientation = try {
            resolver.openInputStream(uri)?.use {
                ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
            } ?: return null
        } catch (e: IOException) {
            return null
        }
        val swapped = Pixels.swapsSides(orientation)
        val width = if (swapped) storedHeight else storedWidth
        val height = if (swapped) storedWidth else storedHeight
        val s = PhotoRule.reductionFactor(width, height, targetWidth, targetHeight)
        if (s == 1) return null
        // s is 2, 4 or 8, powers of two as inSampleSize wants; a JPEG then decodes by libjpeg's
        // scaled IDCT to ceil(W/s) x ceil(H/s), which is checked, not assumed. No
        // inPreferredColorSpace: the stored values, as decode() takes them.
        val options = BitmapFactory.Options().apply {
            inSampleSize = s
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        val bitmap = resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) } ?: return null
        try {
            if (bitmap.config != Bitmap.Config.ARGB_8888 ||
                bitmap.width != PhotoRule.reducedSize(storedWidth, s) || bitmap.height != PhotoRule.reducedSize(storedHeight, s)
            ) return null
            val rows = rowsOf(bitmap)
            val stored = IntArray(bitmap.width * bitmap.height)
            val line = IntArray(bitmap.width)
            for (y in 0 until bitmap.height) {
                rows.row(y, line)
                System.arraycopy(line, 0, stored, y * bitmap.width, bitmap.width)
            }
            val upright = Pixels.orient(stored, bitmap.width, bitmap.height, orientation)
            val uprightWidth = if (swapped) bitmap.height else bitmap.width
            return Upright(upright, uprightWidth, upright.size / uprightWidth)
        } finally {
            bitmap.recycle()
        }
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
