// The photo rule's two engines: the WebAssembly SIMD kernels (resample.wat) and the plain
// JavaScript ones. vectors.test.ts checks both against Pillow's bytes on the shared cases; here
// they are checked against each other on many more sizes, crops and alpha patterns (the two
// compute each sum by different routes: 16-bit pair products split by weight halves, and int32
// products one tap at a time; version 2's full blocks by a shift of 16-bit sums, and by the
// rule's m(n) formula), and the shipped bytes against their source; version 2's step 1b on
// cases worked out by hand.
import { describe, expect, it } from "vitest";
import { photoToInput, reductionFactor } from "../src/core";
// @ts-expect-error: a plain .mjs tool without types
import { assemble } from "../tools/build_wasm.mjs";
import { RESAMPLE_WASM } from "../src/core/resample_wasm";
import { readFileSync } from "node:fs";
import { join } from "node:path";

describe("photo rule engines", () => {
  it("resample_wasm.ts is what resample.wat assembles to (npm run wasm)", async () => {
    expect(await assemble()).toBe(readFileSync(join(__dirname, "..", "src", "core", "resample_wasm.ts"), "utf8"));
    expect(RESAMPLE_WASM.length).toBeGreaterThan(0);
  });

  for (const version of [1, 2] as const) it(`v${version}: WebAssembly and JavaScript give the same bytes on 300 random photos`, () => {
    let state = 2026;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) | 0;
      return (state >>> 8) % n;
    };
    const alphas = ["opaque", "random", "one transparent pixel", "0 or 255"] as const;
    const factors = new Set<number>();
    for (let trial = 0; trial < 300; trial++) {
      const big = trial % 5 === 0;
      const width = 1 + random(big ? 900 : 64);
      const height = 1 + random(big ? 900 : 64);
      const targetHeight = 1 + random(trial % 3 === 0 ? 300 : 40);
      const targetWidth = 1 + random(trial % 3 === 0 ? 300 : 40);
      const alpha = alphas[trial % 4];
      const rgba = new Uint8ClampedArray(width * height * 4);
      for (let i = 0; i < rgba.length; i++) {
        if ((i & 3) !== 3) rgba[i] = random(256);
        else rgba[i] = alpha === "random" ? random(256) : alpha === "0 or 255" ? 255 * random(2) : 255;
      }
      if (alpha === "one transparent pixel") rgba[4 * random(width * height) + 3] = random(255);
      const wasm = photoToInput(rgba, width, height, targetHeight, targetWidth, "wasm", version);
      const js = photoToInput(rgba, width, height, targetHeight, targetWidth, "js", version);
      // The same size again: the kernels' tables are already in the heap.
      const again = photoToInput(rgba, width, height, targetHeight, targetWidth, "wasm", version);
      factors.add(reductionFactor(width, height, targetHeight, targetWidth));
      expect(again.every((v, i) => v === wasm[i]), "the second call of a size").toBe(true);
      const differ = wasm.reduce((n, v, i) => n + (v !== js[i] ? 1 : 0), 0);
      expect(differ, `${width}x${height} to ${targetWidth}x${targetHeight}, alpha ${alpha}`).toBe(0);
      expect(wasm.length).toBe(targetHeight * targetWidth * 3);
    }
    expect([...factors].sort(), "the photos' reduction factors").toEqual([1, 2, 4, 8]);
  });
});

describe("photo rule v2, step 1b, by hand", () => {
  it("s for RULE2.md's examples and the boundary where the reduced crop is exactly the input", () => {
    expect(reductionFactor(640, 480, 224, 224)).toBe(2); // 320x240, crop 240x240
    expect(reductionFactor(451, 300, 224, 224)).toBe(1); // 226x150 is too low
    expect(reductionFactor(2000, 1500, 224, 224)).toBe(4); // 500x375
    expect(reductionFactor(4000, 3000, 224, 224)).toBe(8); // 500x375
    expect(reductionFactor(4000, 600, 224, 224)).toBe(2); // 2000x300, crop 300x300
    expect(reductionFactor(448, 448, 224, 224)).toBe(2); // crop 224x224, exactly
    expect(reductionFactor(447, 447, 224, 224)).toBe(2); // ceil(447/2) = 224
    expect(reductionFactor(446, 446, 224, 224)).toBe(1); // 223
    expect(reductionFactor(1, 1, 1, 1)).toBe(8); // ceil(1/8) = 1: one pixel stays one pixel
  });

  for (const engine of ["wasm", "js"] as const) {
    it(`${engine}: an edge block of 3 pixels rounds by m(3) = 5592405, not to nearest`, () => {
      // 3x1 to 1x1: s = 8, one block of n = 3. Red 2+2+1 = 5: (5 + 1) * 5592405 = 33554430 < 2^25,
      // so >> 24 gives 1 (5/3 to nearest would be 2); green 0+0+3: 4 * 5592405 >> 24 = 1; blue 255.
      const rgba = new Uint8Array([2, 0, 255, 255, 2, 0, 255, 255, 1, 3, 255, 255]);
      expect([...photoToInput(rgba, 3, 1, 1, 1, engine, 2)]).toEqual([1, 1, 255]);
      expect([...photoToInput(rgba, 3, 1, 1, 1, engine, 1)]).toEqual([2, 0, 255]); // v1: the middle pixel
    });

    it(`${engine}: alpha goes over white before the reduction`, () => {
      // 2x2 to 1x1: one block of n = 4: three opaque black pixels and a transparent one (white
      // over white): sum 255, (255 + 2) >> 2 = 64.
      const rgba = new Uint8Array([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 0]);
      expect([...photoToInput(rgba, 2, 2, 1, 1, engine, 2)]).toEqual([64, 64, 64]);
    });

    for (const s of [2, 4, 8]) {
      it(`${engine}: full ${s}x${s} blocks of a ${2 * s}x${2 * s} photo to 2x2 (no resize after)`, () => {
        // red = x + 2s*y, green = 255 - red, blue = 7. A block's mean red is that of its middle,
        // m = (s-1)/2 * (1 + 2s) + s*bx + 2s*s*by, a half-integer: (sum + n/2) >> log2(n) rounds it up.
        const side = 2 * s;
        const rgba = new Uint8Array(side * side * 4);
        for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) rgba.set([x + side * y, 255 - x - side * y, 7, 255], (y * side + x) * 4);
        expect(reductionFactor(side, side, 2, 2)).toBe(s);
        const expected: number[] = [];
        for (const [bx, by] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
          const red = ((s - 1) / 2) * (1 + side) + s * bx + side * s * by;
          expected.push(red + 0.5, 255 - red + 0.5, 7);
        }
        expect([...photoToInput(rgba, side, side, 2, 2, engine, 2)]).toEqual(expected);
      });
    }
  }
});
