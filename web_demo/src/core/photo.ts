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

function clip8(value: number): number {
  if (value >= 1 << (PRECISION_BITS + 8)) return 255;
  if (value <= 0) return 0;
  return value >> PRECISION_BITS;
}

/**
 * Resize RGB `(height, width, 3)` bytes to `(outHeight, outWidth, 3)` as Pillow's BILINEAR.
 * Like Pillow, a pass whose size does not change is skipped.
 */
export function resizeBilinear(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const half = 1 << (PRECISION_BITS - 1);
  const vertical = coefficients(height, outHeight);
  // Only the rows the vertical pass reads are resampled horizontally, as Pillow does.
  const firstRow = vertical.bounds[0];
  const lastRow = vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1];
  let source = rgb;
  let rowOffset = 0;
  let sourceWidth = width;
  if (outWidth !== width) {
    const horizontal = coefficients(width, outWidth);
    const rows = lastRow - firstRow;
    const temp = new Uint8Array(rows * outWidth * 3);
    for (let y = 0; y < rows; y++) {
      const inRow = (y + firstRow) * width * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = horizontal.bounds[xx * 2];
        const xmax = horizontal.bounds[xx * 2 + 1];
        const base = xx * horizontal.size;
        let s0 = half;
        let s1 = half;
        let s2 = half;
        for (let x = 0; x < xmax; x++) {
          const w = horizontal.weights[base + x];
          const at = inRow + (x + xmin) * 3;
          s0 += rgb[at] * w;
          s1 += rgb[at + 1] * w;
          s2 += rgb[at + 2] * w;
        }
        const out = (y * outWidth + xx) * 3;
        temp[out] = clip8(s0);
        temp[out + 1] = clip8(s1);
        temp[out + 2] = clip8(s2);
      }
    }
    source = temp;
    rowOffset = firstRow;
    sourceWidth = outWidth;
  }
  if (outHeight === height) return source === rgb ? rgb.slice() : source;
  const out = new Uint8Array(outHeight * outWidth * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = vertical.bounds[yy * 2] - rowOffset;
    const ymax = vertical.bounds[yy * 2 + 1];
    const base = yy * vertical.size;
    for (let xx = 0; xx < sourceWidth; xx++) {
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let y = 0; y < ymax; y++) {
        const w = vertical.weights[base + y];
        const at = ((y + ymin) * sourceWidth + xx) * 3;
        s0 += source[at] * w;
        s1 += source[at + 1] * w;
        s2 += source[at + 2] * w;
      }
      const at = (yy * outWidth + xx) * 3;
      out[at] = clip8(s0);
      out[at + 1] = clip8(s1);
      out[at + 2] = clip8(s2);
    }
  }
  return out;
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
      for (let c = 0; c < 3; c++) out[o++] = Math.floor((rgba[i + c] * a + 255 * (255 - a) + 127) / 255);
    }
  }
  return out;
}

/** The whole rule: decoded RGBA `(height, width, 4)` to the model's RGB `(targetHeight, targetWidth, 3)`. */
export function photoToInput(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  targetHeight: number,
  targetWidth: number,
): Uint8Array {
  if (width < 1 || height < 1) throw new RangeError(`the photo is ${width}x${height}, not an image`);
  const crop = centerCrop(width, height, targetHeight, targetWidth);
  const rgb = compositeOverWhite(rgba, width, height, crop);
  return resizeBilinear(rgb, crop.width, crop.height, targetWidth, targetHeight);
}
