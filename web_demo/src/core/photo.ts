/**
 * The one photo rule, `center-crop-bilinear` v1: decoded RGBA pixels (after EXIF orientation)
 * to the model's uint8 RGB input, the same bytes in Python, Kotlin and here.
 *
 * 1. Alpha over white, in integers: `c' = (c*a + 255*(255 - a) + 127) // 255`.
 * 2. Centre crop to the model's aspect ratio (`h_m x w_m`): when `W*h_m > H*w_m` the crop is
 *    `ch = H`, `cw = max(1, (H*w_m + h_m//2) // h_m)`, `x0 = (W - cw)//2`, `y0 = 0`; otherwise
 *    `cw = W`, `ch = max(1, (W*h_m + w_m//2) // w_m)`, `y0 = (H - ch)//2`, `x0 = 0` (a crop is
 *    never empty: a 1-pixel strip keeps 1 pixel).
 * 3. Resize the crop to `h_m x w_m` as Pillow's `Image.resize((w_m, h_m), Image.BILINEAR)` does
 *    for 8-bit RGB (`libImaging/Resample.c`): a triangle filter whose support grows with the
 *    downscale factor, coefficients in 22-bit fixed point, the horizontal pass first (rounded to
 *    uint8), then the vertical pass. Canvas scaling is not used: browsers differ in it.
 */

export const PHOTO_RULE = { name: "center-crop-bilinear", version: 1 } as const;

const PRECISION_BITS = 32 - 8 - 2;

export interface Crop {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/** The centre crop of a `width x height` picture with the model input's aspect ratio. */
export function centerCrop(width: number, height: number, targetHeight: number, targetWidth: number): Crop {
  if (width * targetHeight > height * targetWidth) {
    const cw = Math.max(1, Math.floor((height * targetWidth + Math.floor(targetHeight / 2)) / targetHeight));
    return { x0: Math.floor((width - cw) / 2), y0: 0, width: cw, height };
  }
  const ch = Math.max(1, Math.floor((width * targetHeight + Math.floor(targetWidth / 2)) / targetWidth));
  return { x0: 0, y0: Math.floor((height - ch) / 2), width, height: ch };
}

interface Coefficients {
  /** Per output pixel: first input index and how many inputs it weighs. */
  bounds: Int32Array;
  /** Per output pixel, `size` fixed-point weights. */
  weights: Int32Array;
  size: number;
}

// Photos of one camera come in one size: their weights are computed once per (input, output) size.
const coefficientCache = new Map<string, Coefficients>();
const COEFFICIENT_CACHE_SIZE = 8;

/** Pillow's `precompute_coeffs` with the bilinear filter, then `normalize_coeffs_8bpc`. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const key = `${inSize}>${outSize}`;
  const known = coefficientCache.get(key);
  if (known) return known;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * size);
  const k = new Float64Array(size);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterScale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = total !== 0 ? k[x] / total : k[x];
      const fixed = w * (1 << PRECISION_BITS);
      weights[xx * size + x] = Math.trunc(w < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const result = { bounds, weights, size };
  if (coefficientCache.size >= COEFFICIENT_CACHE_SIZE) coefficientCache.delete(coefficientCache.keys().next().value as string);
  coefficientCache.set(key, result);
  return result;
}

function clip8(value: number): number {
  if (value >= 1 << (PRECISION_BITS + 8)) return 255;
  if (value <= 0) return 0;
  return value >> PRECISION_BITS;
}

/** Where the rows of the picture to resize come from: RGB bytes, or RGBA composited over white. */
interface RowSource {
  /** The picture's size (the crop's, for a crop). */
  width: number;
  height: number;
  /** Row `y`'s pixels: the array, the index of its first pixel, and the bytes per pixel (3 or 4, RGB first). */
  row(y: number): [Uint8Array | Uint8ClampedArray, number, number];
}

/**
 * Pillow's BILINEAR resize of the rows `source` gives, to `(outHeight, outWidth, 3)`: the
 * horizontal pass row by row (only the rows the vertical pass reads, as Pillow), rounded to
 * uint8, then the vertical pass output row by output row, each tap a sweep over a whole row of
 * integers. A pass whose size does not change is skipped, as in Pillow.
 */
function resample(source: RowSource, outWidth: number, outHeight: number): Uint8Array {
  const { width, height } = source;
  const half = 1 << (PRECISION_BITS - 1);
  const vertical = outHeight !== height ? coefficients(height, outHeight) : null;
  const firstRow = vertical ? vertical.bounds[0] : 0;
  const lastRow = vertical ? vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1] : height;
  const horizontal = outWidth !== width ? coefficients(width, outWidth) : null;
  const rowBytes = outWidth * 3;
  const temp = new Uint8Array((lastRow - firstRow) * rowBytes);
  for (let y = firstRow; y < lastRow; y++) {
    const [pixels, start, stride] = source.row(y);
    let out = (y - firstRow) * rowBytes;
    if (!horizontal) {
      for (let x = 0, at = start; x < width; x++, at += stride) {
        temp[out++] = pixels[at];
        temp[out++] = pixels[at + 1];
        temp[out++] = pixels[at + 2];
      }
      continue;
    }
    const { bounds, weights, size } = horizontal;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const base = xx * size;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let x = 0, at = start + xmin * stride; x < xmax; x++, at += stride) {
        const w = weights[base + x];
        s0 += pixels[at] * w;
        s1 += pixels[at + 1] * w;
        s2 += pixels[at + 2] * w;
      }
      temp[out++] = clip8(s0);
      temp[out++] = clip8(s1);
      temp[out++] = clip8(s2);
    }
  }
  if (!vertical) return temp;
  const out = new Uint8Array(outHeight * rowBytes);
  const sums = new Int32Array(rowBytes);
  const { bounds, weights, size } = vertical;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2] - firstRow;
    const ymax = bounds[yy * 2 + 1];
    sums.fill(half);
    for (let y = 0; y < ymax; y++) {
      const w = weights[yy * size + y];
      const row = (y + ymin) * rowBytes;
      for (let i = 0; i < rowBytes; i++) sums[i] += temp[row + i] * w;
    }
    const at = yy * rowBytes;
    for (let i = 0; i < rowBytes; i++) out[at + i] = clip8(sums[i]);
  }
  return out;
}

/**
 * Resize RGB `(height, width, 3)` bytes to `(outHeight, outWidth, 3)` as Pillow's BILINEAR.
 * Like Pillow, a pass whose size does not change is skipped.
 */
export function resizeBilinear(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const source: RowSource = { width, height, row: (y) => [rgb, y * width * 3, 3] };
  return resample(source, outWidth, outHeight);
}

/** One channel over white: `(c*a + 255*(255 - a) + 127) // 255`. */
function overWhite(c: number, a: number): number {
  return Math.floor((c * a + 255 * (255 - a) + 127) / 255);
}

/** RGBA bytes to RGB with the alpha composited over white, in integers. */
export function compositeOverWhite(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, crop?: Crop): Uint8Array {
  if (rgba.length !== width * height * 4) throw new RangeError(`expected ${width * height * 4} RGBA bytes, got ${rgba.length}`);
  const region = crop ?? { x0: 0, y0: 0, width, height };
  const out = new Uint8Array(region.width * region.height * 3);
  let o = 0;
  for (let y = region.y0; y < region.y0 + region.height; y++) {
    for (let x = region.x0; x < region.x0 + region.width; x++) {
      const i = (y * width + x) * 4;
      const a = rgba[i + 3];
      for (let c = 0; c < 3; c++) out[o++] = overWhite(rgba[i + c], a);
    }
  }
  return out;
}

/**
 * The rows of a crop of RGBA pixels over white: an opaque row is read where it lies (over
 * white it is itself), a row with any transparency is composited into a scratch row first.
 */
function croppedRows(rgba: Uint8Array | Uint8ClampedArray, width: number, crop: Crop): RowSource {
  const scratch = new Uint8Array(crop.width * 4);
  return {
    width: crop.width,
    height: crop.height,
    row(y: number) {
      const start = ((crop.y0 + y) * width + crop.x0) * 4;
      const end = start + crop.width * 4;
      let opaque = true;
      for (let i = start + 3; i < end; i += 4) {
        if (rgba[i] !== 255) {
          opaque = false;
          break;
        }
      }
      if (opaque) return [rgba, start, 4];
      for (let i = start, o = 0; i < end; i += 4, o += 4) {
        const a = rgba[i + 3];
        scratch[o] = overWhite(rgba[i], a);
        scratch[o + 1] = overWhite(rgba[i + 1], a);
        scratch[o + 2] = overWhite(rgba[i + 2], a);
      }
      return [scratch, 0, 4];
    },
  };
}

/**
 * The whole rule: decoded RGBA `(height, width, 4)` to the model's RGB `(targetHeight, targetWidth, 3)`.
 * Steps 1-3 in one sweep over the crop's rows, with no copy of the crop.
 */
export function photoToInput(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  targetHeight: number,
  targetWidth: number,
): Uint8Array {
  if (width < 1 || height < 1) throw new RangeError(`the photo is ${width}x${height}, not an image`);
  if (rgba.length !== width * height * 4) throw new RangeError(`expected ${width * height * 4} RGBA bytes, got ${rgba.length}`);
  const crop = centerCrop(width, height, targetHeight, targetWidth);
  return resample(croppedRows(rgba, width, crop), targetWidth, targetHeight);
}
