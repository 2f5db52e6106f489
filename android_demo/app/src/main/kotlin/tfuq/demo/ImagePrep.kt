package tfuq.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.ColorSpace
import android.graphics.ImageDecoder
import android.net.Uri
import tfuq.uqcore.InputSpec
import tfuq.uqcore.Pixels

/** A photo made ready for the model: what the screen shows and what the model takes. */
class PreparedImage(
    /** The centre crop the model sees, at display size. */
    val preview: Bitmap,
    /** RGB bytes `(height, width, 3)` at the model's input size, raw 0-255. */
    val pixels: ByteArray
)

/**
 * Photo -> model input: decode (EXIF rotation applied, sRGB), centre-crop to the input's aspect
 * ratio (the geometry lives in uqcore's [Pixels], tested on the JVM), downscale, pack RGB.
 */
object ImagePrep {
    /** Longest side of the preview the screen shows. */
    private const val PREVIEW_SIZE = 720

    fun prepare(resolver: ContentResolver, uri: Uri, input: InputSpec): PreparedImage {
        val wanted = maxOf(input.width, input.height, PREVIEW_SIZE)
        val decoded = ImageDecoder.decodeBitmap(ImageDecoder.createSource(resolver, uri)) { decoder, info, _ ->
            // Software pixels, because getPixels cannot read a hardware bitmap; sRGB, because
            // that is what the training images were.
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
            decoder.setTargetColorSpace(ColorSpace.get(ColorSpace.Named.SRGB))
            // A 12-megapixel photo need not be decoded whole to make a 224-pixel input.
            val shorter = minOf(info.size.width, info.size.height)
            decoder.setTargetSampleSize(maxOf(1, shorter / wanted))
        }
        val crop = Pixels.centerCrop(decoded.width, decoded.height, input.width, input.height)
        val cropped = Bitmap.createBitmap(decoded, crop.left, crop.top, crop.width, crop.height)
        val preview = scaleDown(cropped, PREVIEW_SIZE, PREVIEW_SIZE * crop.height / crop.width)
        val modelInput = toArgb8888(scaleDown(cropped, input.width, input.height))
        val argb = IntArray(input.width * input.height)
        modelInput.getPixels(argb, 0, input.width, 0, 0, input.width, input.height)
        return PreparedImage(preview, Pixels.argbToRgb(argb))
    }

    /**
     * Scales to exactly [width] x [height]. Large reductions go by halvings first: one bilinear
     * step from 3000 to 32 pixels would sample a few source pixels and alias; halving averages
     * them.
     */
    private fun scaleDown(source: Bitmap, width: Int, height: Int): Bitmap {
        var current = source
        while (current.width >= 2 * width && current.height >= 2 * height) {
            current = Bitmap.createScaledBitmap(current, current.width / 2, current.height / 2, true)
        }
        return if (current.width == width && current.height == height) current
        else Bitmap.createScaledBitmap(current, width, height, true)
    }

    private fun toArgb8888(bitmap: Bitmap): Bitmap =
        if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
}
