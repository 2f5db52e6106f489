/**
 * Feeding and reading a quantized model exactly as `tfuq/runtime/interpreter.py` does:
 * `q = clip(round_half_even(real / scale) + zero_point)` in doubles on the way in, and
 * `real = float32((q - zero_point) * scale)` on the way out (NumPy computes that in float32;
 * the product of a small integer and a float32 is exact in a double, so one `Math.fround`
 * gives the same float32).
 */

import { roundHalfEven } from "./masks";
import type { TensorInfo } from "./tflite";

const RANGES = { uint8: [0, 255], int8: [-128, 127], int32: [-(2 ** 31), 2 ** 31 - 1] } as const;

// Bytes (pixels, 0/1 masks) take 256 values: one table per tensor, the same numbers by lookup.
const byteTables = new WeakMap<TensorInfo, Int32Array>();

function byteTable(info: TensorInfo): Int32Array {
  let table = byteTables.get(info);
  if (!table) {
    const [min, max] = RANGES[info.type as keyof typeof RANGES];
    table = new Int32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.min(max, Math.max(min, info.scale === 0 ? v : roundHalfEven(v / info.scale) + info.zeroPoint));
    byteTables.set(info, table);
  }
  return table;
}

/** Real values to the bytes a tensor of `info`'s type and quantization holds. */
export function quantize(values: ArrayLike<number>, info: TensorInfo): Uint8Array {
  if (info.type !== "float32" && (values instanceof Uint8Array || values instanceof Uint8ClampedArray)) {
    const table = byteTable(info);
    const out = info.type === "uint8" ? new Uint8Array(values.length) : info.type === "int8" ? new Int8Array(values.length) : new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = table[values[i]];
    return new Uint8Array(out.buffer);
  }
  if (info.type === "float32") {
    const out = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = values[i];
    return new Uint8Array(out.buffer);
  }
  const [min, max] = RANGES[info.type];
  const out = info.type === "uint8" ? new Uint8Array(values.length) : info.type === "int8" ? new Int8Array(values.length) : new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = info.scale === 0 ? Math.trunc(values[i]) : roundHalfEven(values[i] / info.scale) + info.zeroPoint;
    out[i] = Math.min(max, Math.max(min, q));
  }
  return new Uint8Array(out.buffer);
}

/** A tensor's bytes to float32 real values (as numbers). */
export function dequantize(bytes: Uint8Array, info: TensorInfo): Float32Array {
  const copy = bytes.slice();
  if (info.type === "float32") return new Float32Array(copy.buffer);
  const stored = info.type === "uint8" ? copy : info.type === "int8" ? new Int8Array(copy.buffer) : new Int32Array(copy.buffer);
  const out = new Float32Array(stored.length);
  for (let i = 0; i < stored.length; i++) {
    out[i] = info.scale === 0 ? stored[i] : Math.fround((stored[i] - info.zeroPoint) * info.scale);
  }
  return out;
}
