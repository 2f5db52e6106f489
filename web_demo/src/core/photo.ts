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
const HALF = 1 << (PRECISION_BITS - 1);

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
  /** Per output pixel: the first input index and how many inputs it weighs. */
  bounds: Int32Array;
  /** Per output pixel, `size` fixed-point weights. */
  weights: Int32Array;
  size: number;
}

/** Pillow's `precompute_coeffs` with the bilinear filter, then `normalize_coeffs_8bpc`. */
function coefficients(inSize: number, outSize: number): Coefficients {
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
  return { bounds, weights, size };
}

/** What one (photo size, model input size) needs: the crop, each pass's coefficients (null: the pass is skipped, as in Pillow). */
interface Plan {
  crop: Crop;
  horizontal: Coefficients | null;
  vertical: Coefficients | null;
  /** The crop rows the vertical pass reads (all of them, but for an upscale's edges). */
  firstRow: number;
  lastRow: number;
}

// Photos of one camera come in one size: their plan is computed once per size.
const plans = new Map<string, Plan>();
const PLAN_CACHE_SIZE = 8;

function planFor(width: number, height: number, targetHeight: number, targetWidth: number): Plan {
  const key = `${width}x${height}>${targetWidth}x${targetHeight}`;
  const known = plans.get(key);
  if (known) return known;
  const crop = centerCrop(width, height, targetHeight, targetWidth);
  const horizontal = crop.width !== targetWidth ? coefficients(crop.width, targetWidth) : null;
  const vertical = crop.height !== targetHeight ? coefficients(crop.height, targetHeight) : null;
  const firstRow = vertical ? vertical.bounds[0] : 0;
  const lastRow = vertical ? vertical.bounds[targetHeight * 2 - 2] + vertical.bounds[targetHeight * 2 - 1] : crop.height;
  const plan = { crop, horizontal, vertical, firstRow, lastRow };
  if (plans.size >= PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value as string);
  plans.set(key, plan);
  return plan;
}

// Scratch reused across photos (the page classifies one photo at a time): the horizontal pass's
// rows, and one row composited over white.
let between = new Uint8ClampedArray(0);
let compositedRow = new Int32Array(0);

/** The pixels as little-endian 32-bit words, red in the low byte: a view when it can be, else a copy. */
function pixelWords(rgba: Uint8Array | Uint8ClampedArray): Int32Array {
  if (LITTLE_ENDIAN && rgba.byteOffset % 4 === 0) return new Int32Array(rgba.buffer, rgba.byteOffset, rgba.length / 4);
  const bytes = new DataView(rgba.buffer, rgba.byteOffset, rgba.length);
  const words = new Int32Array(rgba.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = bytes.getInt32(i * 4, true);
  return words;
}
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One channel over white: `(c*a + 255*(255 - a) + 127) // 255`. */
function overWhite(c: number, a: number): number {
  return Math.floor((c * a + 255 * (255 - a) + 127) / 255);
}

/** Whether `count` pixels from `start` are all opaque (then over white they are themselves). */
function opaqueRow(pixels: Int32Array, start: number, count: number): boolean {
  let all = -1;
  for (let i = start, end = start + count; i < end; i++) all &= pixels[i];
  return all >>> 24 === 255;
}

/** `count` pixels from `start` composited over white into `compositedRow`. */
function compositeRow(pixels: Int32Array, start: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const p = pixels[start + i];
    const a = p >>> 24;
    const r = overWhite(p & 255, a);
    const g = overWhite((p >>> 8) & 255, a);
    const b = overWhite((p >>> 16) & 255, a);
    compositedRow[i] = r | (g << 8) | (b << 16) | (255 << 24);
  }
}

/**
 * Pillow's horizontal pass on one row of packed pixels (`count` from `start`) into `rowBytes`
 * RGB bytes of `between` at `out`: per output pixel a weighted sum of its inputs, each channel
 * in int32 fixed point, rounded down to uint8 (the clamped array is Pillow's `clip8`).
 */
function horizontalRow(pixels: Int32Array, start: number, coefficients: Coefficients | null, outWidth: number, out: number): void {
  if (!coefficients) {
    for (let x = 0; x < outWidth; x++, out += 3) {
      const p = pixels[start + x];
      between[out] = p & 255;
      between[out + 1] = (p >>> 8) & 255;
      between[out + 2] = (p >>> 16) & 255;
    }
    return;
  }
  const { bounds, weights, size } = coefficients;
  for (let xx = 0; xx < outWidth; xx++, out += 3) {
    let at = start + bounds[xx * 2];
    const end = at + bounds[xx * 2 + 1];
    let k = xx * size;
    let r = HALF;
    let g = HALF;
    let b = HALF;
    for (; at < end; at++, k++) {
      const p = pixels[at];
      const w = weights[k];
      r = (r + Math.imul(p & 255, w)) | 0;
      g = (g + Math.imul((p >>> 8) & 255, w)) | 0;
      b = (b + Math.imul((p >>> 16) & 255, w)) | 0;
    }
    between[out] = r >> PRECISION_BITS;
    between[out + 1] = g >> PRECISION_BITS;
    between[out + 2] = b >> PRECISION_BITS;
  }
}

/** Pillow's vertical pass over the rows of `between` (from the plan's first row) to `(outHeight, rowBytes)`. */
function verticalPass(coefficients: Coefficients, firstRow: number, rowBytes: number, outHeight: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(outHeight * rowBytes);
  const { bounds, weights, size } = coefficients;
  for (let yy = 0, o = 0; yy < outHeight; yy++) {
    const top = (bounds[yy * 2] - firstRow) * rowBytes;
    const taps = bounds[yy * 2 + 1];
    const k = yy * size;
    for (let i = 0; i < rowBytes; i++, o++) {
      let sum = HALF;
      for (let t = 0, at = top + i; t < taps; t++, at += rowBytes) sum = (sum + Math.imul(between[at], weights[k + t])) | 0;
      out[o] = sum >> PRECISION_BITS;
    }
  }
  return out;
}

/**
 * The whole rule: decoded RGBA `(height, width, 4)` to the model's RGB `(targetHeight, targetWidth, 3)`.
 * Steps 1-3 in one sweep over the crop's rows (only those the vertical pass reads), with no copy
 * of the crop: the horizontal pass reads each row where it lies unless it has transparency.
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
  const { crop, horizontal, vertical, firstRow, lastRow } = planFor(width, height, targetHeight, targetWidth);
  const pixels = pixelWords(rgba);
  const rowBytes = targetWidth * 3;
  const needed = (lastRow - firstRow) * rowBytes;
  if (between.length < needed) between = new Uint8ClampedArray(needed);
  if (compositedRow.length < crop.width) compositedRow = new Int32Array(crop.width);
  for (let y = firstRow; y < lastRow; y++) {
    const start = (crop.y0 + y) * width + crop.x0;
    const out = (y - firstRow) * rowBytes;
    if (opaqueRow(pixels, start, crop.width)) horizontalRow(pixels, start, horizontal, targetWidth, out);
    else {
      compositeRow(pixels, start, crop.width);
      horizontalRow(compositedRow, 0, horizontal, targetWidth, out);
    }
  }
  const result = vertical ? verticalPass(vertical, firstRow, rowBytes, targetHeight) : between.slice(0, needed);
  return new Uint8Array(result.buffer, result.byteOffset, result.length);
}
