// The photo rule's two engines: the WebAssembly SIMD kernels (resample.wat) and the plain
// JavaScript ones. vectors.test.ts checks both against Pillow's bytes on the shared cases; here
// they are checked against each other on many more sizes, crops and alpha patterns (the two
// compute each sum by different routes: 16-bit pair products split by weight halves, and int32
// products one tap at a time), and the shipped bytes against their source.
import { describe, expect, it } from "vitest";
import { photoToInput } from "../src/core";
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

  it("WebAssembly and JavaScript give the same bytes on 300 random photos", () => {
    let state = 2026;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) | 0;
      return (state >>> 8) % n;
    };
    const alphas = ["opaque", "random", "one transparent pixel", "0 or 255"] as const;
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
      const wasm = photoToInput(rgba, width, height, targetHeight, targetWidth, "wasm");
      const js = photoToInput(rgba, width, height, targetHeight, targetWidth, "js");
      // The same size again: the kernels' tables are already in the heap.
      const again = photoToInput(rgba, width, height, targetHeight, targetWidth, "wasm");
      expect(again.every((v, i) => v === wasm[i]), "the second call of a size").toBe(true);
      const differ = wasm.reduce((n, v, i) => n + (v !== js[i] ? 1 : 0), 0);
      expect(differ, `${width}x${height} to ${targetWidth}x${targetHeight}, alpha ${alpha}`).toBe(0);
      expect(wasm.length).toBe(targetHeight * targetWidth * 3);
    }
  });
});
