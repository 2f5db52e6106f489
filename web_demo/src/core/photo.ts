/**
 * The photo rule `center-crop-bilinear`, versions 1 and 2: decoded RGBA pixels (after EXIF
 * orientation) to the model's uint8 RGB input, the same bytes in Python, Kotlin and here.
 *
 * 1. Alpha over white, in integers: `c' = (c*a + 255*(255 - a) + 127) // 255`.
 * 1b. (Version 2 only.) Reduce by `s`, the largest of 8, 4, 2, 1 for which the centre crop (step
 *    2) of the reduced size `ceil(W/s) x ceil(H/s)` is at least the model input on both axes
 *    (`reductionFactor`): output pixel `(x, y)`, each channel, averages the block of columns
 *    `[x*s, min((x+1)*s, W))` and rows `[y*s, min((y+1)*s, H))` (smaller blocks at the right and
 *    bottom edges) as `((sum + n//2) * m(n)) >> 24`, `n` the block's pixels,
 *    `m(n) = trunc(float32(2**32) / float32(256*n))`: the bytes of Pillow's `Image.reduce(s)`.
 *    For a full block (`n = s*s`, a power of two) that is `(sum + n/2) >> log2(n)`. A model's
 *    JPEG may be decoded at scale 1/s instead (libjpeg's scaled IDCT); this page has no such
 *    decode: it decodes at full size and applies 1b.
 * 2. Centre crop to the model's aspect ratio (`h_m x w_m`): when `W*h_m > H*w_m` the crop is
 *    `ch = H`, `cw = max(1, (H*w_m + h_m//2) // h_m)`, `x0 = (W - cw)//2`, `y0 = 0`; otherwise
 *    `cw = W`, `ch = max(1, (W*h_m + w_m//2) // w_m)`, `y0 = (H - ch)//2`, `x0 = 0` (a crop is
 *    never empty: a 1-pixel strip keeps 1 pixel). In version 2, of the reduced image.
 * 3. Resize the crop to `h_m x w_m` as Pillow's `Image.resize((w_m, h_m), Image.BILINEAR)` does
 *    for 8-bit RGB (`libImaging/Resample.c`): a triangle filter whose support grows with the
 *    downscale factor, coefficients in 22-bit fixed point, the horizontal pass first (rounded to
 *    uint8), then the vertical pass. Canvas scaling is not used: browsers differ in it.
 *
 * The passes (and 1b's full blocks) run as WebAssembly SIMD (`resample.wat`, four channels per
 * instruction) where the browser has it, else as the same arithmetic in JavaScript; both give
 * every byte Pillow does.
 */
import { RESAMPLE_WASM } from "./resample_wasm";

export const PHOTO_RULE_NAME = "center-crop-bilinear";
/** The versions of the rule this core implements (a model's `input.photo_rule.version`). */
export const PHOTO_RULE_VERSIONS = [1, 2] as const;
export type PhotoRuleVersion = (typeof PHOTO_RULE_VERSIONS)[number];

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

/**
 * Step 1b's `s` for a `width x height` photo and a `targetHeight x targetWidth` input: the largest
 * of 8, 4, 2, 1 whose reduced size `ceil(width/s) x ceil(height/s)` still has a centre crop at
 * least the input's size on both axes.
 */
export function reductionFactor(width: number, height: number, targetHeight: number, targetWidth: number): number {
  for (const s of [8, 4, 2]) {
    const crop = centerCrop(Math.ceil(width / s), Math.ceil(height / s), targetHeight, targetWidth);
    if (crop.width >= targetWidth && crop.height >= targetHeight) return s;
  }
  return 1;
}

/** Step 1b's `m(n)`: `trunc(float32(2**32) / float32(256*n))`, the division in single precision. */
function reciprocal(n: number): number {
  // Both operands are float32 values and a double quotient rounded to float32 is the float32
  // quotient (53 >= 2*24 + 2 bits), so this is the single-precision division.
  return Math.trunc(Math.fround(Math.fround(2 ** 32) / Math.fround(256 * n)));
}

/** A block's channel sum over its `n` pixels to the reduced value, `((sum + n//2) * m(n)) >> 24` (exact in doubles: < 2**32). */
function blockMean(sum: number, n: number, m: number): number {
  return Math.floor(((sum + (n >> 1)) * m) / 16777216);
}

/**
 * One pass's filter: output pixel `i` weighs the `taps` inputs from `starts[i]` by
 * `weights[i*taps ...]`. Pillow's kernels vary in length; here each is zero-padded to the
 * longest, its start moved left where it would run past the end (a zero weight changes no sum).
 */
interface Kernel {
  starts: Int32Array;
  weights: Int32Array;
  taps: number;
}

/** Pillow's `precompute_coeffs` with the bilinear filter, then `normalize_coeffs_8bpc`, padded to one length. */
function bilinearKernel(inSize: number, outSize: number): Kernel {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale;
  const ss = 1.0 / filterScale;
  const firsts: number[] = [];
  const rows: number[][] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k: number[] = [];
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1.0 ? 1.0 - t : 0.0;
      k.push(w);
      total += w;
    }
    rows.push(k.map((value) => {
      const w = total !== 0 ? value / total : value;
      const fixed = w * (1 << PRECISION_BITS);
      return Math.trunc(w < 0 ? -0.5 + fixed : 0.5 + fixed);
    }));
    firsts.push(xmin);
  }
  const taps = Math.max(...rows.map((row) => row.length));
  const starts = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  for (let xx = 0; xx < outSize; xx++) {
    starts[xx] = Math.min(firsts[xx], inSize - taps);
    weights.set(rows[xx], xx * taps + firsts[xx] - starts[xx]);
  }
  return { starts, weights, taps };
}

/** A pass Pillow skips (the size does not change) as a kernel: each output is its input, exactly. */
function identityKernel(size: number): Kernel {
  return { starts: Int32Array.from({ length: size }, (_, i) => i), weights: new Int32Array(size).fill(1 << PRECISION_BITS), taps: 1 };
}

/**
 * A kernel as the WebAssembly passes read it (see resample.wat): the zero weights at
 * either end of each output pixel's taps dropped, the rest taken in pairs. `spans`: per output
 * pixel, its first input and its number of pairs; `weights`: per output pixel, `stride` pairs of
 * two i16x8 vectors, `[hi0 hi1] x 4` and `[lo0 lo1] x 4` where `w = hi*2048 + lo` (an odd
 * count's last pair weighs one more pixel by 0).
 */
interface PairKernel {
  spans: Int32Array;
  weights: Int16Array;
  stride: number;
}

function pairKernel({ starts, weights, taps }: Kernel): PairKernel {
  const outSize = starts.length;
  const stride = Math.ceil(taps / 2);
  const spans = new Int32Array(outSize * 2);
  const pairs = new Int16Array(outSize * stride * 16);
  for (let i = 0; i < outSize; i++) {
    const own = weights.subarray(i * taps, (i + 1) * taps);
    let first = 0;
    let last = taps - 1;
    while (first < last && own[first] === 0) first++;
    while (last > first && own[last] === 0) last--;
    spans[i * 2] = starts[i] + first;
    spans[i * 2 + 1] = Math.ceil((last - first + 1) / 2);
    for (let t = first; t <= last; t++) {
      const at = (i * stride + ((t - first) >> 1)) * 16 + ((t - first) & 1);
      for (let lane = 0; lane < 8; lane += 2) {
        pairs[at + lane] = own[t] >> 11;
        pairs[at + 8 + lane] = own[t] & 2047;
      }
    }
  }
  return { spans, weights: pairs, stride };
}

/** What one (photo size, model input size) needs: the crop, the crop rows the vertical pass reads, both kernels. */
interface Plan {
  crop: Crop;
  /** The first crop row the vertical pass reads and how many (all of them, but for an upscale's edges). */
  firstRow: number;
  rows: number;
  horizontal: Kernel;
  /** Its starts count from `firstRow`. */
  vertical: Kernel;
  /** The two kernels as the WebAssembly passes read them. */
  horizontalPairs: PairKernel;
  verticalPairs: PairKernel;
}

// Photos of one camera come in one size: their plan is computed once per size.
const plans = new Map<string, Plan>();
const PLAN_CACHE_SIZE = 8;

function planFor(width: number, height: number, targetHeight: number, targetWidth: number): Plan {
  const key = `${width}x${height}>${targetWidth}x${targetHeight}`;
  const known = plans.get(key);
  if (known) return known;
  const crop = centerCrop(width, height, targetHeight, targetWidth);
  const horizontal = crop.width !== targetWidth ? bilinearKernel(crop.width, targetWidth) : identityKernel(targetWidth);
  const vertical = crop.height !== targetHeight ? bilinearKernel(crop.height, targetHeight) : identityKernel(targetHeight);
  const firstRow = Math.min(...vertical.starts);
  const rows = Math.max(...vertical.starts) + vertical.taps - firstRow;
  const fromFirstRow = { ...vertical, starts: vertical.starts.map((s) => s - firstRow) };
  const plan = { crop, firstRow, rows, horizontal, vertical: fromFirstRow, horizontalPairs: pairKernel(horizontal), verticalPairs: pairKernel(fromFirstRow) };
  if (plans.size >= PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value as string);
  plans.set(key, plan);
  return plan;
}

/**
 * The two passes over one heap of bytes (addresses are byte offsets, 4-aligned; pixels are 4
 * bytes, RGBA, the 4th lane carried along and ignored).
 */
interface Kernels {
  /** The heap, at least `bytes` long (growing it may replace the buffer). */
  heap(bytes: number): ArrayBuffer;
  /**
   * Which form of the kernels the passes read: a Kernel's `starts`, `weights` and `taps`, or
   * with `pairs` a PairKernel's `spans`, `weights` and `stride`.
   */
  pairs: boolean;
  /**
   * `rows` rows of pixels from `src` (`srcStride` bytes apart) to `outWidth` pixels a row at
   * `dst`. The WebAssembly pass takes rows in fours: for a count not a multiple of 4 it reads
   * up to 3 rows after the last and writes as many output rows after the last. Returns the AND of every pixel word it
   * read (its top byte is 255 when all of them are opaque).
   */
  horizontal(src: number, srcStride: number, rows: number, starts: number, weights: number, taps: number, outWidth: number, dst: number, dstStride: number): number;
  /**
   * `outHeight` rows of packed RGB (`dstRowBytes` bytes) at `dst`, each from `taps` rows of
   * `src` (`stride` bytes apart, a multiple of 16) from its start row. The pairs may read a
   * row past the last and a pixel past a row's end (weighing them by 0), and write up to 16
   * bytes past the output.
   */
  vertical(src: number, stride: number, starts: number, weights: number, taps: number, outHeight: number, dst: number, dstRowBytes: number): void;
  /**
   * Step 1b on full `s x s` blocks (`s` 2, 4 or 8): `rows` rows of `cols` RGBA pixels at `dst`
   * (`dstStride` bytes apart), output row `y` from the `s` source rows from `src + y*s*srcStride`.
   * The WebAssembly kernel takes outputs in fours: it may read up to `3*s` pixels past a row's
   * last block and write up to 3 pixels past an output row. Returns the AND of every pixel word
   * it read, as `horizontal` does.
   */
  reduce(s: number, src: number, srcStride: number, rows: number, cols: number, dst: number, dstStride: number): number;
}

/** The kernels of `resample.wat`, or null where the browser has no WebAssembly SIMD. */
function wasmKernels(): Kernels | null {
  const bytes = Uint8Array.from(atob(RESAMPLE_WASM), (c) => c.charCodeAt(0));
  if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
  // Small enough (< 4 KB) to compile synchronously on a page's main thread.
  type Reduce = (src: number, srcStride: number, rows: number, cols: number, dst: number, dstStride: number) => number;
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Omit<Kernels, "heap" | "reduce"> & {
    memory: WebAssembly.Memory;
    reduce2: Reduce;
    reduce4: Reduce;
    reduce8: Reduce;
  };
  const memory = exports.memory;
  const reducers = new Map<number, Reduce>([[2, exports.reduce2], [4, exports.reduce4], [8, exports.reduce8]]);
  return {
    heap(size) {
      const missing = size - memory.buffer.byteLength;
      if (missing > 0) memory.grow(Math.ceil(missing / 65536));
      return memory.buffer;
    },
    pairs: true,
    horizontal: exports.horizontal,
    vertical: exports.vertical,
    reduce: (s, ...rest) => reducers.get(s)!(...rest),
  };
}

/** The same kernels in JavaScript (int32 fixed point with Math.imul; the clamped array is Pillow's clip8). */
function jsKernels(): Kernels {
  let buffer = new ArrayBuffer(0);
  let words = new Int32Array(buffer);
  let bytes = new Uint8ClampedArray(buffer);
  return {
    heap(size) {
      if (buffer.byteLength < size) {
        buffer = new ArrayBuffer(size);
        words = new Int32Array(buffer);
        bytes = new Uint8ClampedArray(buffer);
      }
      return buffer;
    },
    pairs: false,
    horizontal(src, srcStride, rows, starts, weights, taps, outWidth, dst, dstStride) {
      let all = -1;
      for (let y = 0; y < rows; y++, src += srcStride, dst += dstStride) {
        for (let x = 0, k = weights >> 2, out = dst; x < outWidth; x++, out += 4) {
          let r = HALF;
          let g = HALF;
          let b = HALF;
          for (let at = (src >> 2) + words[(starts >> 2) + x], end = at + taps; at < end; at++, k++) {
            const p = words[at];
            const w = words[k];
            all &= p;
            r = (r + Math.imul(p & 255, w)) | 0;
            g = (g + Math.imul((p >>> 8) & 255, w)) | 0;
            b = (b + Math.imul((p >>> 16) & 255, w)) | 0;
          }
          bytes[out] = r >> PRECISION_BITS;
          bytes[out + 1] = g >> PRECISION_BITS;
          bytes[out + 2] = b >> PRECISION_BITS;
        }
      }
      return all;
    },
    vertical(src, stride, starts, weights, taps, outHeight, dst, dstRowBytes) {
      for (let y = 0; y < outHeight; y++, dst += dstRowBytes) {
        const top = src + words[(starts >> 2) + y] * stride;
        const k = (weights >> 2) + y * taps;
        for (let i = 0, out = dst; out < dst + dstRowBytes; i++) {
          if ((i & 3) === 3) continue; // the 4th lane
          let sum = HALF;
          for (let t = 0, at = top + i; t < taps; t++, at += stride) sum = (sum + Math.imul(bytes[at], words[k + t])) | 0;
          bytes[out++] = sum >> PRECISION_BITS;
        }
      }
    },
    // The rule's formula with m(n) itself (not the shift the WebAssembly kernel uses for n = s*s).
    reduce(s, src, srcStride, rows, cols, dst, dstStride) {
      const n = s * s;
      const m = reciprocal(n);
      let all = -1;
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < cols; x++) {
          let r = 0;
          let g = 0;
          let b = 0;
          for (let dy = 0; dy < s; dy++) {
            for (let at = (src + (y * s + dy) * srcStride + x * s * 4) >> 2, end = at + s; at < end; at++) {
              const p = words[at];
              all &= p;
              r += p & 255;
              g += (p >>> 8) & 255;
              b += (p >>> 16) & 255;
            }
          }
          words[(dst + y * dstStride + x * 4) >> 2] = blockMean(r, n, m) | (blockMean(g, n, m) << 8) | (blockMean(b, n, m) << 16) | (255 << 24);
        }
      }
      return all;
    },
  };
}

/** One channel over white: `(c*a + 255*(255 - a) + 127) // 255`. */
function overWhite(c: number, a: number): number {
  return Math.floor((c * a + 255 * (255 - a) + 127) / 255);
}

/** `count` RGBA words from word `at` composited over white, in place (opaque pixels are themselves). */
function compositeOverWhite(words: Int32Array, at: number, count: number): void {
  for (let i = at; i < at + count; i++) {
    const p = words[i];
    const a = p >>> 24;
    if (a === 255) continue;
    words[i] = overWhite(p & 255, a) | (overWhite((p >>> 8) & 255, a) << 8) | (overWhite((p >>> 16) & 255, a) << 16) | (255 << 24);
  }
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;
/** Rows after the last that the passes may read (and write): the horizontal pass takes rows in fours. */
const SPARE_ROWS = 3;
/** About how many bytes of photo rows the horizontal pass takes at a time (a strip stays in the cache). */
const STRIP_BYTES = 64 * 1024;
// Whose kernels each heap holds at its start: photos of one size need them written once.
const tablesWritten = new Map<Kernels, { plan: Plan; heap: ArrayBuffer }>();
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The kernels photoToInput uses: "wasm" where the browser has WebAssembly SIMD, else "js". */
export type PhotoEngine = "wasm" | "js";
const engines = new Map<PhotoEngine, Kernels | null>();
function kernelsOf(engine: PhotoEngine): Kernels | null {
  if (!engines.has(engine)) engines.set(engine, engine === "wasm" ? (LITTLE_ENDIAN ? wasmKernels() : null) : jsKernels());
  return engines.get(engine) ?? null;
}
/** "wasm" when WebAssembly SIMD runs here, else "js". */
export function photoEngine(): PhotoEngine {
  return kernelsOf("wasm") ? "wasm" : "js";
}

/** Where a plan's two kernels go at the start of the heap, in the form the kernels read. */
interface Tables {
  tables: readonly (Int32Array | Int16Array)[];
  hStarts: number;
  hWeights: number;
  hTaps: number;
  vStarts: number;
  vWeights: number;
  vTaps: number;
  /** The first byte after them. */
  end: number;
}

function tablesOf(kernels: Kernels, plan: Plan): Tables {
  const forms = (kernel: Kernel, pairs: PairKernel) =>
    kernels.pairs ? ([pairs.spans, pairs.weights, pairs.stride] as const) : ([kernel.starts, kernel.weights, kernel.taps] as const);
  const [hStartTable, hWeightTable, hTaps] = forms(plan.horizontal, plan.horizontalPairs);
  const [vStartTable, vWeightTable, vTaps] = forms(plan.vertical, plan.verticalPairs);
  const tables = [hStartTable, hWeightTable, vStartTable, vWeightTable];
  const addresses: number[] = [];
  let end = 0;
  for (const table of tables) {
    addresses.push(end);
    end = align16(end + table.byteLength);
  }
  const [hStarts, hWeights, vStarts, vWeights] = addresses;
  return { tables, hStarts, hWeights, hTaps, vStarts, vWeights, vTaps, end };
}

/** The tables into the heap, unless this plan's are there already. */
function writeTables(kernels: Kernels, plan: Plan, heap: ArrayBuffer, { tables, hStarts, hWeights, vStarts, vWeights }: Tables): void {
  const written = tablesWritten.get(kernels);
  if (written?.plan === plan && written.heap === heap) return;
  const heapBytes = new Uint8Array(heap);
  const addresses = [hStarts, hWeights, vStarts, vWeights];
  tables.forEach((table, i) => heapBytes.set(new Uint8Array(table.buffer, table.byteOffset, table.byteLength), addresses[i]));
  tablesWritten.set(kernels, { plan, heap });
}

/**
 * The whole rule: decoded RGBA `(height, width, 4)` to the model's RGB `(targetHeight, targetWidth, 3)`,
 * by `version` 1 or 2 of `center-crop-bilinear` (2 is 1 for a photo whose `reductionFactor` is 1).
 * Only the crop rows the resize reads are copied (into the kernels' heap), a strip of rows at a
 * time to one place. The horizontal pass runs on a strip as it is; only if some pixel it read is
 * not opaque (a JPEG's never are) is the strip composited over white and the pass run again.
 */
export function photoToInput(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  targetHeight: number,
  targetWidth: number,
  engine: PhotoEngine = photoEngine(),
  version: PhotoRuleVersion = 1,
): Uint8Array {
  if (width < 1 || height < 1) throw new RangeError(`the photo is ${width}x${height}, not an image`);
  if (rgba.length !== width * height * 4) throw new RangeError(`expected ${width * height * 4} RGBA bytes, got ${rgba.length}`);
  if (!PHOTO_RULE_VERSIONS.includes(version)) throw new RangeError(`photo rule ${PHOTO_RULE_NAME} v${version} is not one this page implements`);
  const kernels = kernelsOf(engine);
  if (!kernels) throw new Error(`the ${engine} photo engine does not run here`);
  if (version === 2) {
    const s = reductionFactor(width, height, targetHeight, targetWidth);
    if (s > 1) return reducedToInput(kernels, rgba, width, height, targetHeight, targetWidth, s);
  }
  const plan = planFor(width, height, targetHeight, targetWidth);
  const { crop, firstRow, rows } = plan;
  // The heap: both kernels, the crop's rows, the rows after the horizontal pass, the output.
  const stride = align16(targetWidth * 4);
  const layout = tablesOf(kernels, plan);
  const { hStarts, hWeights, hTaps, vStarts, vWeights, vTaps, end } = layout;
  // The rows the resize reads, whole: one copy (the columns cropped away go along, unread).
  const rowBytes = width * 4;
  // The rows go through the horizontal pass a strip at a time, each strip copied to one place
  // (which stays in the cache) and followed by spare rows: the pass's last four (and 8 bytes: a
  // last pair's pixel past a row's end).
  const strip = Math.min(rows, Math.max(4, Math.floor(STRIP_BYTES / rowBytes / 4) * 4));
  const source = end;
  const between = align16(source + (strip + SPARE_ROWS) * rowBytes + 8);
  const out = between + (rows + SPARE_ROWS) * stride; // and the vertical pass's last pair
  const rgbBytes = targetHeight * targetWidth * 3;
  const heap = kernels.heap(align16(out + rgbBytes + 16));
  const heapBytes = new Uint8Array(heap);
  writeTables(kernels, plan, heap, layout);
  for (let done = 0; done < rows; done += strip) {
    const count = Math.min(strip, rows - done);
    const from = (crop.y0 + firstRow + done) * rowBytes;
    heapBytes.set(rgba.subarray(from, from + count * rowBytes), source);
    // The spare rows opaque, so that they alone never make the horizontal pass run twice.
    if (done === 0 || count < strip) heapBytes.fill(255, source + count * rowBytes, source + (count + SPARE_ROWS) * rowBytes + 8);
    const horizontalPass = () =>
      kernels.horizontal(source + crop.x0 * 4, rowBytes, count, hStarts, hWeights, hTaps, targetWidth, between + done * stride, stride);
    if (horizontalPass() >>> 24 !== 255) {
      compositeOverWhite(new Int32Array(heap), source >> 2, count * width);
      horizontalPass();
    }
  }
  kernels.vertical(between, stride, vStarts, vWeights, vTaps, targetHeight, out, targetWidth * 3);
  return heapBytes.slice(out, out + rgbBytes);
}

/**
 * Step 1b's edge block with columns `[x0, x1)` and rows `[y0, y1)` of the `rowPixels`-wide
 * source rows from word `at`, each pixel over white first: its RGBA word (alpha 255).
 */
function edgeBlock(words: Int32Array, at: number, rowPixels: number, x0: number, x1: number, y0: number, y1: number): number {
  let r = 0;
  let g = 0;
  let b = 0;
  for (let y = y0; y < y1; y++) {
    for (let i = at + y * rowPixels + x0, end = at + y * rowPixels + x1; i < end; i++) {
      const p = words[i];
      const a = p >>> 24;
      if (a === 255) {
        r += p & 255;
        g += (p >>> 8) & 255;
        b += (p >>> 16) & 255;
      } else {
        r += overWhite(p & 255, a);
        g += overWhite((p >>> 8) & 255, a);
        b += overWhite((p >>> 16) & 255, a);
      }
    }
  }
  const n = (x1 - x0) * (y1 - y0);
  const m = reciprocal(n);
  return blockMean(r, n, m) | (blockMean(g, n, m) << 8) | (blockMean(b, n, m) << 16) | (255 << 24);
}

/** Bytes after a strip of source rows for the reduction's reads past a row's last block (3*s pixels, s <= 8). */
const REDUCE_SPARE_BYTES = 3 * 8 * 4 + 16;

/**
 * Version 2 with `s > 1`: the v1 passes on the reduced photo's crop, each strip of reduced rows
 * computed (step 1b) from its source rows just before the horizontal pass reads it. Only the
 * reduced pixels the resize reads are computed: the crop's rows, and the columns its horizontal
 * kernel reads; each depends on its own block alone, so they are those of the whole reduction.
 */
function reducedToInput(
  kernels: Kernels,
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  targetHeight: number,
  targetWidth: number,
  s: number,
): Uint8Array {
  const reducedWidth = Math.ceil(width / s);
  const reducedHeight = Math.ceil(height / s);
  const plan = planFor(reducedWidth, reducedHeight, targetHeight, targetWidth);
  const { crop, firstRow, rows, horizontal } = plan;
  // The reduced columns [c0, c1) the horizontal kernel reads; the full blocks among them, and the
  // source columns [sx0, sx1) under them.
  const c0 = crop.x0 + Math.min(...horizontal.starts);
  const c1 = crop.x0 + Math.max(...horizontal.starts) + horizontal.taps;
  const cols = c1 - c0;
  const fullCols = Math.min(c1, Math.floor(width / s)) - c0;
  const sx0 = c0 * s;
  const sx1 = Math.min(c1 * s, width);
  const rowPixels = sx1 - sx0;
  const srcRowBytes = rowPixels * 4;
  const stride = align16(targetWidth * 4);
  const layout = tablesOf(kernels, plan);
  const { hStarts, hWeights, hTaps, vStarts, vWeights, vTaps, end } = layout;
  // A strip: `strip` reduced rows from `strip*s` source rows (the needed columns only, packed),
  // about STRIP_BYTES of them; then its reduced rows, with room for the reduction's 3 pixels past
  // a row, the horizontal pass's pixel past it, and its 3 spare rows.
  const strip = Math.min(rows, Math.max(4, Math.floor(STRIP_BYTES / (srcRowBytes * s) / 4) * 4));
  const reducedStride = align16(cols * 4 + 12 + 8);
  const source = end;
  const reduced = align16(source + strip * s * srcRowBytes + REDUCE_SPARE_BYTES);
  const between = align16(reduced + (strip + SPARE_ROWS) * reducedStride);
  const out = between + (rows + SPARE_ROWS) * stride;
  const rgbBytes = targetHeight * targetWidth * 3;
  const heap = kernels.heap(align16(out + rgbBytes + 16));
  const heapBytes = new Uint8Array(heap);
  const words = new Int32Array(heap);
  writeTables(kernels, plan, heap, layout);
  const rowBytes = width * 4;
  for (let done = 0; done < rows; done += strip) {
    const count = Math.min(strip, rows - done);
    const firstReduced = crop.y0 + firstRow + done;
    const sy0 = firstReduced * s;
    const sy1 = Math.min((firstReduced + count) * s, height);
    if (rowPixels === width) heapBytes.set(rgba.subarray(sy0 * rowBytes, sy1 * rowBytes), source);
    else for (let y = sy0; y < sy1; y++) heapBytes.set(rgba.subarray(y * rowBytes + sx0 * 4, y * rowBytes + sx1 * 4), source + (y - sy0) * srcRowBytes);
    // Opaque, so that reads past the last row alone never make the reduction run twice.
    heapBytes.fill(255, source + (sy1 - sy0) * srcRowBytes, source + (sy1 - sy0) * srcRowBytes + REDUCE_SPARE_BYTES);
    // The bottom edge's blocks (fewer than s rows) are not full.
    const fullRows = (firstReduced + count) * s > height ? count - 1 : count;
    const reduce = () => kernels.reduce(s, source, srcRowBytes, fullRows, fullCols, reduced, reducedStride);
    if (fullRows > 0 && fullCols > 0 && reduce() >>> 24 !== 255) {
      compositeOverWhite(words, source >> 2, (sy1 - sy0) * rowPixels);
      reduce();
    }
    // Edge blocks, in scalar code (n is not a power of two): the right column, then the bottom row.
    const base = source >> 2;
    if (fullCols < cols) {
      for (let y = 0; y < fullRows; y++) {
        words[(reduced + y * reducedStride + fullCols * 4) >> 2] = edgeBlock(words, base, rowPixels, fullCols * s, rowPixels, y * s, (y + 1) * s);
      }
    }
    if (fullRows < count) {
      for (let x = 0; x < cols; x++) {
        words[(reduced + fullRows * reducedStride + x * 4) >> 2] = edgeBlock(words, base, rowPixels, x * s, Math.min((x + 1) * s, rowPixels), fullRows * s, sy1 - sy0);
      }
    }
    // Every reduced pixel is opaque: the horizontal pass's AND has nothing to say here.
    kernels.horizontal(reduced + (crop.x0 - c0) * 4, reducedStride, count, hStarts, hWeights, hTaps, targetWidth, between + done * stride, stride);
  }
  kernels.vertical(between, stride, vStarts, vWeights, vTaps, targetHeight, out, targetWidth * 3);
  return heapBytes.slice(out, out + rgbBytes);
}
