"""From a photo to the model's input: one rule, the same in Python, Kotlin and the web demo.

Rule ``center-crop-bilinear`` version 2 (what ``tfuq convert`` writes), carried in ``tfuq.json``
as ``input.photo_rule = {"name": "center-crop-bilinear", "version": 2}``; version 1, which
models converted before issue 23 carry, is the same without step 1b and the reduced decode:

0. **Decode** (Pillow here; first frame of an animation). Files above :data:`MAX_PIXELS`
   (2**26 = 67,108,864 pixels, e.g. 8192x8192) are refused from their header, before any
   pixel is decoded. EXIF orientation is applied (``ImageOps.exif_transpose``). Every pixel
   mode becomes 8-bit RGBA: palette expanded (with its transparency), grey (``L``, ``LA``,
   ``1``) replicated to R, G and B, 16-bit samples reduced to their high byte (``>> 8``; mode
   ``I`` is clipped to 0..65535 first; Pillow itself keeps the high byte of 16-bit RGB(A)
   PNGs), CMYK and other colour modes converted as Pillow's ``convert("RGB")`` does, opaque.
   32-bit float images (mode ``F``) are refused. **Colour profiles are ignored**: the stored
   values are taken as sRGB, as training pipelines (``tf.io.decode_image``, CIFAR) take them.
   *Version 2:* a JPEG (or MPO) is decoded at scale 1/s (step 1b's s; libjpeg's scaled IDCT
   through ``Image.draft``, asked in the stored orientation) when the decoder then yields
   exactly ``ceil(W/s) x ceil(H/s)``; that replaces step 1b. Like any JPEG decode it is
   decoder-dependent: against a full decode followed by step 1b, the 224x224 input differs by a
   mean absolute 0.16-0.33 of 255 (at most 0.45 on one photo; one pixel value at most 24 off)
   on 424 JPEGs (quality 90) of scikit-image's photos and their crops at 0.3, 3 and 12 MP
   (``benchmarks/end_to_end.py agreement``). With a mirroring EXIF orientation the smaller edge
   blocks of the stored image end up on the left or top of the upright one: the same kind of
   difference.
1. **Alpha over white**, in integers: ``c' = (c * a + 255 * (255 - a) + 127) // 255``.
1b. *Version 2:* **reduce by s**, the largest of 8, 4, 2, 1 for which step 2's crop of the
   reduced size ``W_s x H_s = ceil(W/s) x ceil(H/s)`` is at least ``w_m`` wide and ``h_m`` high
   (:func:`reduction_factor`). Output pixel ``(x, y)``, each channel, averages the block of
   columns ``[x*s, min((x+1)*s, W))`` and rows ``[y*s, min((y+1)*s, H))`` (smaller blocks at the
   right and bottom edges): with ``n`` pixels and channel sum ``sum``,
   ``v = ((sum + n // 2) * m(n)) >> 24``, ``m(n) = trunc(float32(2**32) / float32(256 * n))``:
   Pillow's ``Image.reduce(s)`` (libImaging/Reduce.c), which this module calls, on the crop's
   blocks only (the same bytes). s = 1 changes nothing.
2. **Centre crop** (of the reduced image in version 2) to the model's aspect ratio
   ``w_m : h_m``, for a ``W x H`` image: if ``W * h_m > H * w_m`` (wider), ``ch = H``, ``cw = max(1, (H * w_m + h_m // 2) // h_m)``,
   ``x0 = (W - cw) // 2``, ``y0 = 0``; else ``cw = W``,
   ``ch = max(1, (W * h_m + w_m // 2) // w_m)``, ``y0 = (H - ch) // 2``, ``x0 = 0``.
3. **Resize** the crop to ``(h_m, w_m)`` with Pillow's 8-bit ``BILINEAR`` filter
   (libImaging/Resample.c): a triangle filter whose support grows with the downscale factor
   (antialiased), coefficients normalised and rounded to 22-bit fixed point, a horizontal pass
   rounded to uint8, then a vertical one, always in that order (what one
   ``Image.resize((w_m, h_m), Image.BILINEAR)`` call does up to Pillow 12). No pass along an
   axis whose size already matches.

**Memory.** Decoding and steps 1-3 hold at most 16 bytes per pixel of the photo at once, so
the largest photo allowed needs at most 1 GiB: Pillow's decoded image, a numpy copy of it
taken in strips of rows, and the RGB result (step 1 works in strips with uint16
temporaries; the RGBA copy is freed before the resize). Peaks measured at 8192x8192: PNG
RGBA 11 bytes per pixel, 16-bit PNG 9, TIFF mode ``I`` 11, GIF 9, WebP 16 (Pillow's WebP
decoder alone holds 12-16). ``tests/runtime/test_memory_limits.py`` checks the bound under
``RLIMIT_AS``. Version 2 lowers the peak for JPEGs: decoded at 1/s, a photo holds 1/s**2 of
its pixels (a 12 MP JPEG for a 224x224 input decodes to 500x375: ``photo.read`` raised the
process's peak RSS by 80 MB under version 1, by under 1 MB under version 2), and for other
formats the RGB taken into step 1b is the crop's blocks only. A ``MemoryError`` while decoding or
preparing one photo is a :class:`PhotoError` for that photo.

Steps 1-3 are integer arithmetic on 8-bit RGBA (:func:`prepare`), so a language that has the
pixels gets the same bytes: ``tests/vectors/photos.json`` (version 1) and ``photos_v2.json``
(version 2) hold cases, and the Kotlin core (``android_demo/uqcore``, ``PhotoRule.kt``), the
web core and the pytest suite check them. Decoding (step 0) is where platforms may differ:
lossy formats (JPEG) are not decoded bit-exactly alike by every decoder.

Models converted before the rule existed carry no ``photo_rule``; :func:`rule_of` reads them
as :data:`STRETCH`, what ``tfuq predict`` did then: steps 0, 1 and 3 on the whole image,
stretched to the input size.

Needs numpy; Pillow is imported when a photo is decoded or resized.

    >>> from tfuq.runtime import photo
    >>> pixels = photo.read("cat.jpg", (224, 224))        # doctest: +SKIP
    >>> pixels.shape, pixels.dtype                         # doctest: +SKIP
    ((224, 224, 3), dtype('uint8'))
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np

from tfuq._files import file_kind

MAX_PIXELS = 2**26
#: The file suffixes (lower case) taken for photos wherever a folder or glob is read: ``tfuq
#: predict``, ``folder:`` data specs, the Beam pipelines.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}
)


class PhotoError(ValueError):
    """A photo that cannot become a model input (unreadable, too large, unknown rule)."""


@dataclass(frozen=True)
class PhotoRule:
    """How a photo becomes the model's input; ``crop`` is False for the pre-rule stretch,
    ``reduce`` True for version 2's step 1b (block averaging by :func:`reduction_factor`)."""

    name: str
    version: int
    crop: bool
    reduce: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version}

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


#: Version 1: steps 0-3 without step 1b (models converted before version 2 keep it).
CENTER_CROP = PhotoRule("center-crop-bilinear", 1, crop=True)
#: Version 2: version 1 with step 1b, the reduction by 8, 4 or 2 of photos much larger than
#: the input.
CENTER_CROP_V2 = PhotoRule("center-crop-bilinear", 2, crop=True, reduce=True)
#: Models without ``input.photo_rule`` (converted before it existed): the whole image stretched.
STRETCH = PhotoRule("stretch (no photo_rule in the model)", 0, crop=False)
#: The rule ``tfuq convert`` writes into new models, and the default of :func:`read`.
RULE = CENTER_CROP_V2
_KNOWN = {(rule.name, rule.version): rule for rule in (CENTER_CROP, CENTER_CROP_V2)}


def rule_of(config) -> PhotoRule:
    """The photo rule a model configuration (a :class:`tfuq.runtime.config.ModelConfig`)
    names in ``input.photo_rule``; its form was checked when the configuration was read.

    No ``input.photo_rule`` gives :data:`STRETCH`; a rule this tfuq does not know raises.

    Raises:
        PhotoError: ``photo_rule`` names an unknown rule or version.
    """
    from tfuq.runtime.config import quote

    spec = config.input.photo_rule
    if spec is None:
        return STRETCH
    rule = _KNOWN.get((spec.name, spec.version))
    if rule is None:
        known = ", ".join(str(r) for r in _KNOWN.values())
        raise PhotoError(f"unknown photo rule {quote(spec.name)} v{spec.version}; this tfuq "
                         f"knows {known} (upgrade tfuq)")
    return rule


# -- geometry and pixels (steps 1-3) ---------------------------------------------------------
def crop_box(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)``: the centred crop of step 2.

    Example:
        >>> crop_box(300, 400, 224, 224)  # a 4:3 photo for a square input
        (0, 50, 300, 300)
    """
    if width * target_height > height * target_width:
        crop_width = max(1, (height * target_width + target_height // 2) // target_height)
        return 0, (width - crop_width) // 2, height, crop_width
    crop_height = max(1, (width * target_height + target_width // 2) // target_width)
    return (height - crop_height) // 2, 0, crop_height, width


REDUCTION_FACTORS = (8, 4, 2)


def reduction_factor(height: int, width: int, target_height: int, target_width: int) -> int:
    """Step 1b's ``s``: the largest of 8, 4, 2, 1 whose reduced image ``ceil(W/s) x ceil(H/s)``
    still has a centre crop (step 2) at least ``target_width`` wide and ``target_height`` high.

    Example:
        >>> reduction_factor(480, 640, 224, 224), reduction_factor(300, 451, 224, 224)
        (2, 1)
        >>> reduction_factor(3000, 4000, 224, 224), reduction_factor(600, 4000, 224, 224)
        (8, 2)
    """
    for factor in REDUCTION_FACTORS:
        _, _, crop_height, crop_width = crop_box(
            -(-height // factor), -(-width // factor), target_height, target_width)
        if crop_height >= target_height and crop_width >= target_width:
            return factor
    return 1


def _reduction(rule: PhotoRule, reduced: bool, height: int, width: int,
               size: tuple[int, int]) -> tuple[int, tuple[int, int, int, int]] | None:
    """Step 1b for an upright ``height x width`` image: ``(s, the source box of the crop's
    blocks)`` when it reduces, ``None`` when the rule has no step 1b, the decoder did it
    (``reduced``), or s = 1."""
    if not rule.reduce or reduced:
        return None
    factor = reduction_factor(height, width, *size)
    if factor == 1:
        return None
    return factor, _reduced_crop_source(height, width, *size, factor)


def _reduced_crop_source(height: int, width: int, target_height: int, target_width: int,
                         factor: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the source blocks that step 1b reduces into step 2's
    crop of the reduced image: reducing only them gives the crop's pixels (the blocks start at
    multiples of ``factor``; the right and bottom ones may be the image's smaller edge blocks)."""
    top, left, crop_height, crop_width = crop_box(
        -(-height // factor), -(-width // factor), target_height, target_width)
    return (left * factor, top * factor, min((left + crop_width) * factor, width),
            min((top + crop_height) * factor, height))


# Pixels per strip (of rows) in the alpha step and the copies out of Pillow: the temporaries
# stay near 6 bytes x this many pixels (1.5 MB) whatever the photo's size.
_STRIP_PIXELS = 1 << 18


def over_white(pixels: np.ndarray) -> np.ndarray:
    """Step 1: uint8 RGBA ``(H, W, 4)`` composited over white, uint8 RGB ``(H, W, 3)``.

    RGB input is returned as is (opaque); ``(c * 255 + 127) // 255 == c``, so opaque
    pixels keep their values either way. Works in strips of rows with uint16 arithmetic
    (``c * a + 255 * (255 - a) + 127 <= 65152``), so beyond the 3-byte result it holds about
    6 MB whatever the image's size.
    """
    if pixels.shape[-1] == 3:
        return pixels
    alpha = pixels[..., 3:]
    if alpha.size == 0 or int(alpha.min()) == 255:
        return np.ascontiguousarray(pixels[..., :3])
    out = np.empty(pixels.shape[:-1] + (3,), dtype=np.uint8)
    if pixels.ndim < 2:
        rows, step = [pixels], 1
    else:
        step = max(1, _STRIP_PIXELS // max(1, int(np.prod(pixels.shape[1:-1]))))
        rows = (pixels[top : top + step] for top in range(0, len(pixels), step))
    for index, block in enumerate(rows):
        alpha = block[..., 3:].astype(np.uint16)
        colour = block[..., :3].astype(np.uint16)
        colour *= alpha
        alpha = 255 - alpha
        alpha *= 255
        colour += alpha
        colour += 127
        colour //= 255
        if pixels.ndim < 2:
            out[...] = colour
        else:
            out[index * step : index * step + len(block)] = colour
    return out


def prepare(rgba: np.ndarray, size: tuple[int, int], rule: PhotoRule = RULE) -> np.ndarray:
    """Steps 1-3 of the rule: uint8 RGBA (or opaque RGB) ``(H, W, 4|3)`` to uint8 RGB
    ``(height, width, 3)`` for ``size = (height, width)``.

    Raises:
        PhotoError: not a uint8 ``(H, W, 3 or 4)`` array of at least one pixel, a bad size,
            or no Pillow to resize with.
    """
    return _prepare([rgba], size, rule)


def _prepare(box: list, size: tuple[int, int], rule: PhotoRule, reduced: bool = False) -> np.ndarray:
    """:func:`prepare` of the array taken out of ``box``: when the caller holds no other
    reference to it, the full-size RGBA is freed before the resize, not held through it.
    ``reduced``: the decoder already did step 1b (a JPEG decoded at a reduced scale)."""
    pixels = np.asarray(box.pop())
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise PhotoError(f"pixels must be uint8 (H, W, 4) RGBA or (H, W, 3) RGB, got "
                         f"{pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    if height < 1 or width < 1:
        raise PhotoError(f"the image is empty ({width}x{height} pixels)")
    size = _check_size(size)
    target_height, target_width = size
    reduction = _reduction(rule, reduced, height, width, size)
    if reduction is not None:
        # Only the blocks that end up in the crop are composited and reduced: the same bytes.
        factor, (left, top, right, bottom) = reduction
        rgb = np.ascontiguousarray(over_white(pixels[top:bottom, left:right]))
        del pixels
        image = _pil().Image.fromarray(rgb).reduce(factor)
        del rgb
        return np.asarray(_resize_image(image, target_height, target_width), dtype=np.uint8)
    if rule.crop:
        top, left, crop_height, crop_width = crop_box(height, width, target_height, target_width)
        pixels = pixels[top : top + crop_height, left : left + crop_width]
    # Compositing is per pixel, so doing it after the crop gives the same bytes, sooner.
    rgb = np.ascontiguousarray(over_white(pixels))
    shares = np.may_share_memory(rgb, pixels)
    del pixels
    if rgb.shape[:2] == (target_height, target_width):
        return rgb.copy() if shares else rgb
    return _resize(rgb, target_height, target_width)


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 3 with Pillow, one axis per call, so the horizontal pass always comes first.

    One ``resize`` call would be the same on Pillow up to 12, but Pillow 13 does the vertical
    pass first when the height shrinks much more than the width (python-pillow/Pillow#9549),
    and the intermediate rounding to uint8 then differs. A call that changes only one axis
    runs only that pass, in any version.
    """
    return np.asarray(_resize_image(_pil().Image.fromarray(rgb), height, width), dtype=np.uint8)


def _resize_image(image, height: int, width: int):
    pil = _pil().Image
    if image.width != width:
        image = image.resize((width, image.height), pil.Resampling.BILINEAR)
    if image.height != height:
        image = image.resize((width, height), pil.Resampling.BILINEAR)
    return image


def _check_size(size) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise PhotoError(f"size must be (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise PhotoError(f"size must be positive, got {size!r}")
    return height, width


# -- decoding (step 0) -----------------------------------------------------------------------
def _pil():
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        raise PhotoError("reading photos needs Pillow: pip install pillow "
                         "(or pip install 'tfuq[pi]')") from None
    return PIL


_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# Modes Pillow's convert("RGBA") expands as the rule says: grey replicated, palette (and its
# transparency) looked up, alpha kept.
_TO_RGBA = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX"})


def _array(image) -> np.ndarray:
    """``np.asarray(image)``, copied in strips of rows: ``asarray`` goes through
    ``tobytes()``, which holds the image twice more (its chunks and their join)."""
    step = max(1, _STRIP_PIXELS // max(1, image.width))
    out = None
    for top in range(0, image.height, step):
        strip = np.asarray(image.crop((0, top, image.width, min(top + step, image.height))))
        if out is None:
            out = np.empty((image.height, *strip.shape[1:]), dtype=strip.dtype)
        out[top : top + len(strip)] = strip
    return out


def to_rgba(image) -> np.ndarray:
    """A decoded, upright PIL image as uint8 ``(H, W, 4)`` RGBA (or ``(H, W, 3)`` for plain
    RGB, which is opaque), by the rule's step 0."""
    mode = image.mode
    if mode == "RGB":
        return _array(image)
    if mode in _SIXTEEN_BIT:  # in strips: no full-size int32 copy or int64 temporaries
        rgba = np.full((image.height, image.width, 4), 255, dtype=np.uint8)
        step = max(1, _STRIP_PIXELS // max(1, image.width))
        for top in range(0, image.height, step):
            values = np.asarray(image.crop((0, top, image.width, min(top + step, image.height))))
            rgba[top : top + len(values), :, :3] = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)[..., None]
        return rgba
    if mode == "RGBA":
        return _array(image)  # convert("RGBA") would copy it first
    if mode == "F":
        raise PhotoError("32-bit float pixels (mode F) are not a photo")
    if mode in _TO_RGBA:
        return _array(image.convert("RGBA"))
    try:  # CMYK, YCbCr, LAB, HSV: Pillow's own conversion, opaque
        return _array(image.convert("RGB"))
    except ValueError:
        raise PhotoError(f"pixel mode {mode} cannot be converted to RGB") from None


def decode(source: str | os.PathLike | bytes) -> np.ndarray:
    """Step 0: a photo file (path or bytes) as uint8 RGBA ``(H, W, 4)`` or opaque RGB
    ``(H, W, 3)``, upright.

    Raises:
        PhotoError: no such file, not an image, truncated or corrupt, more than
            :data:`MAX_PIXELS` pixels, zero-size, or a pixel mode the rule refuses.
    """
    return _decode(source, None, RULE)


class _DraftMissed(Exception):
    """The JPEG decoder's reduced scale is not the rule's: decode the photo again in full."""


def _decode(source, size: tuple[int, int] | None, rule: PhotoRule, draft: bool = True) -> np.ndarray:
    """:func:`decode`, or with ``size`` the whole rule. An RGB photo (most JPEGs: opaque,
    so step 1 changes nothing) is cropped and resized by Pillow on its own pixels, without a
    copy into numpy of the full-size image: the same bytes, about twice as fast for 12 MP.
    With a rule that reduces (version 2), a JPEG is decoded at the reduced scale (step 0)."""
    try:
        return _decode_once(source, size, rule, draft)
    except _DraftMissed:
        return _decode_once(source, size, rule, False)


def _decode_once(source, size: tuple[int, int] | None, rule: PhotoRule, draft: bool) -> np.ndarray:
    pil = _pil()
    opened = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    kind = None if opened is not source else file_kind(source)
    if kind is not None and kind != "a folder":  # a FIFO would block, /dev/zero never ends
        raise PhotoError(f"is {kind}, not an image file")
    try:
        with warnings.catch_warnings():
            # EXIF or metadata Pillow cannot parse is skipped (with a warning nobody reads);
            # a decompression bomb is an error at any size Pillow would warn about.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", pil.Image.DecompressionBombWarning)
            with pil.Image.open(opened) as image:
                width, height = image.size
                _check_pixels(width, height)
                reduced = draft and size is not None and rule.reduce and _draft(image, size)
                upright = _upright(image)
                if size is not None and upright.mode == "RGB":
                    return _prepare_rgb_image(upright, size, rule, reduced)
                pixels = to_rgba(upright)
    except (PhotoError, _DraftMissed):
        raise
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except IsADirectoryError:
        raise PhotoError("is a directory, not an image") from None
    except pil.UnidentifiedImageError:
        raise PhotoError("not an image Pillow can read") from None
    except (pil.Image.DecompressionBombError, pil.Image.DecompressionBombWarning):
        # Pillow's own limits (89 and 179 million pixels by default) are above ours.
        raise PhotoError(f"too many pixels, more than the {MAX_PIXELS:,} a photo may have") from None
    except MemoryError:
        raise PhotoError("not enough memory to decode it") from None
    except Exception as error:  # noqa: BLE001  Pillow raises many types on corrupt files
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise PhotoError(f"cannot decode: {reason}") from None
    _check_pixels(pixels.shape[1], pixels.shape[0])
    if size is None:
        return pixels
    box = [pixels]
    del pixels  # _prepare frees it before the resize
    try:
        return _prepare(box, size, rule, reduced)
    except MemoryError:
        raise PhotoError("not enough memory to prepare it") from None


def _prepare_rgb_image(image, size: tuple[int, int], rule: PhotoRule, reduced: bool) -> np.ndarray:
    target_height, target_width = size
    reduction = _reduction(rule, reduced, image.height, image.width, size)
    if reduction is not None:  # steps 1b and 2 at once: Pillow reduces only the crop's blocks
        factor, box = reduction
        image = image.reduce(factor, box=box)
    elif rule.crop:
        top, left, height, width = crop_box(image.height, image.width, target_height, target_width)
        if (height, width) != (image.height, image.width):  # crop copies even the whole image
            image = image.crop((left, top, left + width, top + height))
    return np.asarray(_resize_image(image, target_height, target_width), dtype=np.uint8)


# JPEG, and MPO: a JPEG with more pictures after the first (phones write it), decoded alike.
_SCALABLE = frozenset({"JPEG", "MPO"})


def _draft(image, size: tuple[int, int]) -> bool:
    """Step 0's reduced decode: True when ``image`` (not loaded yet) is a JPEG that will now
    decode at 1/s of its size, ``ceil(W/s) x ceil(H/s)``, for step 1b's s (so step 1b is done).

    The scale is asked for in the stored orientation (libjpeg's scaled IDCT works on the
    stored 8x8 blocks); s is chosen on the upright size, as step 1b says.

    Raises:
        _DraftMissed: the decoder took another scale than s (decode again without draft).
    """
    if image.format not in _SCALABLE:
        return False
    width, height = image.size
    turned = _orientation(image) in (5, 6, 7, 8)
    upright_height, upright_width = (width, height) if turned else (height, width)
    factor = reduction_factor(upright_height, upright_width, *size)
    if factor == 1 or width < factor or height < factor:
        return False
    image.draft("RGB", (width // factor, height // factor))
    if image.size == (width, height):  # the decoder cannot scale this file: step 1b reduces
        return False
    if image.size != (-(-width // factor), -(-height // factor)):
        raise _DraftMissed
    return True


def _orientation(image) -> int:
    """The EXIF orientation tag (1, upright, when absent)."""
    return image.getexif().get(0x0112, 1)


def _upright(image):
    """The image turned by its EXIF orientation (exif_transpose copies even when upright)."""
    if _orientation(image) in (2, 3, 4, 5, 6, 7, 8):
        return _pil().ImageOps.exif_transpose(image)
    return image


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise PhotoError(f"the image is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise PhotoError(f"{width}x{height} is {width * height:,} pixels, more than the "
                         f"{MAX_PIXELS:,} a photo may have")


def read(
    source: str | os.PathLike | bytes, size: tuple[int, int] | None, rule: PhotoRule = RULE
) -> np.ndarray:
    """A photo file as the model's input: uint8 RGB ``(height, width, 3)`` for
    ``size = (height, width)``, by ``rule`` (default: :data:`RULE`, ``center-crop-bilinear`` v2).

    ``size=None`` gives the whole upright photo over white at its own size (steps 0-1).

    Raises:
        PhotoError: the file cannot be decoded (see :func:`decode`), or a bad size.
    """
    if size is None:
        return np.ascontiguousarray(over_white(decode(source)))
    return _decode(source, _check_size(size), rule)
