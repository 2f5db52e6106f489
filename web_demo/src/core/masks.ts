/**
 * Seeded dropout masks, scheme `splitmix64-counter` v1, bit for bit as `tfuq/runtime/masks.py`.
 *
 * Unsigned 64-bit arithmetic modulo 2^64 on BigInt (`BigInt.asUintN(64, ...)` after every
 * multiply and add). A model's masks are a few thousand elements, so BigInt's cost is
 * negligible beside the invoke (measured in README.md).
 *
 * - `mix(z)` is the SplitMix64 finalizer.
 * - `stream(key)[i] = mix(key + (i + 1) * 0x9E3779B97F4A7C15)`.
 * - Pass `p` of run seed `s` has pass seed `stream(s)[p]`; layer `l` in pass seed `ps` draws
 *   from the key `stream(ps)[l]`; element `i` is kept when `stream(key)[i] >> 40 >= round(rate * 2^24)`.
 */

export const SCHEME = "splitmix64-counter";
export const SCHEME_VERSION = 1;
export const KEEP_BITS = 24;

const MASK64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const MUL1 = 0xbf58476d1ce4e5b9n;
const MUL2 = 0x94d049bb133111ebn;

/** SplitMix64 finalizer on an unsigned 64-bit value. */
export function mix(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * MUL1) & MASK64;
  z = ((z ^ (z >> 27n)) * MUL2) & MASK64;
  return z ^ (z >> 31n);
}

/** Element `index` of the SplitMix64 stream started at `key`. */
export function streamAt(key: bigint, index: number): bigint {
  return mix((key + BigInt(index + 1) * GAMMA) & MASK64);
}

/** Parse and check a run seed: an integer in [0, 2^64), as a decimal string, number or bigint. */
export function checkSeed(seed: bigint | number | string): bigint {
  let value: bigint;
  if (typeof seed === "bigint") value = seed;
  else if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    value = BigInt(seed);
  } else {
    const text = seed.trim();
    if (!/^[0-9]+$/.test(text)) throw new RangeError(`seed must be a decimal integer in [0, 2^64), got "${seed}"`);
    value = BigInt(text);
  }
  if (value < 0n || value > MASK64) throw new RangeError(`seed must be in [0, 2^64), got ${value}`);
  return value;
}

/** The per-pass seeds that run seed `seed` gives. */
export function passSeeds(seed: bigint | number | string, passes: number): bigint[] {
  const s = checkSeed(seed);
  if (!Number.isInteger(passes) || passes < 1) throw new RangeError(`passes must be at least 1, got ${passes}`);
  return Array.from({ length: passes }, (_, p) => streamAt(s, p));
}

/** The 24-bit integer threshold below which an element is dropped (Python's round: half to even). */
export function dropThreshold(rate: number): number {
  if (!(rate > 0 && rate < 1)) throw new RangeError(`dropout rate must be in (0, 1), got ${rate}`);
  return roundHalfEven(rate * 2 ** KEEP_BITS);
}

/** Round to the nearest integer, ties to even, as Python's `round` and NumPy's `np.round`. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** One MC-dropout layer: the mask shape of one pass and its dropout rate. */
export interface MaskLayer {
  shape: readonly number[];
  rate: number;
}

/** Keep bits (0 or 1) of layer `layer` for each pass seed: row-major `(passes, *shape)`. */
export function layerMask(seeds: readonly bigint[], layer: number, shape: readonly number[], rate: number): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) throw new RangeError(`mask shape must be positive, got [${shape}]`);
  const threshold = BigInt(dropThreshold(rate));
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(seeds.length * size);
  const shift = BigInt(64 - KEEP_BITS);
  seeds.forEach((passSeed, p) => {
    const key = streamAt(passSeed, layer);
    for (let i = 0; i < size; i++) {
      out[p * size + i] = streamAt(key, i) >> shift >= threshold ? 1 : 0;
    }
  });
  return out;
}

/** Masks of every MC-dropout layer of one run, each row-major `(passes, *shape)`. */
export function masksFor(seed: bigint | number | string, passes: number, layers: readonly MaskLayer[]): Uint8Array[] {
  const seeds = passSeeds(seed, passes);
  return layers.map((layer, index) => layerMask(seeds, index, layer.shape, layer.rate));
}
