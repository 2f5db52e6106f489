/**
 * Seeded dropout masks, scheme `splitmix64-counter` v1, bit for bit as `tfuq/runtime/masks.py`.
 *
 * Unsigned 64-bit arithmetic modulo 2^64. The few seeds and keys of a run use BigInt (`mix`,
 * `streamAt`: plain and easy to check); the mask elements, thousands per run, use pairs of
 * 32-bit halves with `Math.imul` (`keepBits`), several times faster than BigInt (measured in
 * README.md) and tested against the BigInt form as well as the shared vectors. `MaskCache`
 * keeps the last run's masks.
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

// -- the element loop on 32-bit halves ----------------------------------------------------
const TWO32 = 2 ** 32;
const GAMMA_HI = 0x9e3779b9;
const GAMMA_LO = 0x7f4a7c15;
const MUL1_HI = 0xbf58476d;
const MUL1_LO = 0x1ce4e5b9;
const MUL2_HI = 0x94d049bb;
const MUL2_LO = 0x133111eb;

/**
 * The high 32 bits of the unsigned product `a * (bHi16 << 16 | bLo16)`, from 16-bit limbs:
 * every partial product and sum stays below 2^53, so the doubles are exact.
 */
function mulHigh(a: number, bHi16: number, bLo16: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const low = a0 * bLo16;
  const middle1 = a1 * bLo16;
  const middle2 = a0 * bHi16;
  const carry = ((low >>> 16) + (middle1 & 0xffff) + (middle2 & 0xffff)) >>> 16;
  return a1 * bHi16 + Math.floor(middle1 / 65536) + Math.floor(middle2 / 65536) + carry;
}

const MUL1_LO_HI16 = MUL1_LO >>> 16;
const MUL1_LO_LO16 = MUL1_LO & 0xffff;
const MUL2_LO_HI16 = MUL2_LO >>> 16;
const MUL2_LO_LO16 = MUL2_LO & 0xffff;

/**
 * Keep bits of elements `0..count-1` of the stream at `key` into `out[offset..]`: element `i`
 * is kept when the top 24 bits of `mix(key + (i + 1) * GAMMA)` reach `threshold`.
 *
 * Only the high half of the second product is formed: `mix` ends with `z ^ (z >>> 31)`,
 * which leaves the top 33 bits of `z` as they are, so the top 24 bits of `mix` are those of
 * `z`, the high 32 bits of that product shifted right by 8.
 */
export function keepBits(key: bigint, count: number, threshold: number, out: Uint8Array, offset = 0): void {
  let stateHi = Number(key >> 32n);
  let stateLo = Number(key & 0xffffffffn);
  for (let i = 0; i < count; i++) {
    // state += GAMMA (the counter), with the carry between halves.
    const lo = stateLo + GAMMA_LO;
    stateHi = (stateHi + GAMMA_HI + (lo >= TWO32 ? 1 : 0)) >>> 0;
    stateLo = lo >>> 0;
    // z ^= z >> 30; z *= MUL1 (both halves: the next step needs them)
    const xHi = (stateHi ^ (stateHi >>> 30)) >>> 0;
    const xLo = (stateLo ^ ((stateLo >>> 30) | (stateHi << 2))) >>> 0;
    const pLo = Math.imul(xLo, MUL1_LO) >>> 0;
    const pHi = (mulHigh(xLo, MUL1_LO_HI16, MUL1_LO_LO16) + Math.imul(xHi, MUL1_LO) + Math.imul(xLo, MUL1_HI)) >>> 0;
    // z ^= z >> 27; z *= MUL2 (the high half only)
    const yHi = (pHi ^ (pHi >>> 27)) >>> 0;
    const yLo = (pLo ^ ((pLo >>> 27) | (pHi << 5))) >>> 0;
    const qHi = (mulHigh(yLo, MUL2_LO_HI16, MUL2_LO_LO16) + Math.imul(yHi, MUL2_LO) + Math.imul(yLo, MUL2_HI)) >>> 0;
    out[offset + i] = qHi >>> (32 - KEEP_BITS) >= threshold ? 1 : 0;
  }
}

/** Keep bits (0 or 1) of layer `layer` for each pass seed: row-major `(passes, *shape)`. */
export function layerMask(seeds: readonly bigint[], layer: number, shape: readonly number[], rate: number): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) throw new RangeError(`mask shape must be positive, got [${shape}]`);
  const threshold = dropThreshold(rate);
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(seeds.length * size);
  seeds.forEach((passSeed, p) => keepBits(streamAt(passSeed, layer), size, threshold, out, p * size));
  return out;
}

/** `layerMask` on BigInt throughout: the plain form, kept to test `keepBits` against. */
export function layerMaskBigInt(seeds: readonly bigint[], layer: number, shape: readonly number[], rate: number): Uint8Array {
  const threshold = BigInt(dropThreshold(rate));
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(seeds.length * size);
  const shift = BigInt(64 - KEEP_BITS);
  seeds.forEach((passSeed, p) => {
    const key = streamAt(passSeed, layer);
    for (let i = 0; i < size; i++) out[p * size + i] = streamAt(key, i) >> shift >= threshold ? 1 : 0;
  });
  return out;
}

/**
 * The masks of the last run, kept: they are a pure function of the run seed, the number of
 * passes and the layers, so a page classifying photo after photo with one seed draws them once.
 */
export class MaskCache {
  private key: string | null = null;
  private masks: Uint8Array[] = [];

  /** `masksFor(seed, passes, layers)`, and whether it came from the last call (not to be modified). */
  get(seed: bigint | number | string, passes: number, layers: readonly MaskLayer[]): { masks: Uint8Array[]; cached: boolean } {
    const key = `${checkSeed(seed)}/${passes}/${JSON.stringify(layers.map((l) => [l.shape, l.rate]))}`;
    if (key === this.key) return { masks: this.masks, cached: true };
    this.key = null; // a failed draw keeps nothing
    this.masks = masksFor(seed, passes, layers);
    this.key = key;
    return { masks: this.masks, cached: false };
  }
}

/** Masks of every MC-dropout layer of one run, each row-major `(passes, *shape)`. */
export function masksFor(seed: bigint | number | string, passes: number, layers: readonly MaskLayer[]): Uint8Array[] {
  const seeds = passSeeds(seed, passes);
  return layers.map((layer, index) => layerMask(seeds, index, layer.shape, layer.rate));
}
