// What the photo rule costs: `npm run bench`. `center-crop-bilinear` v1 (Pillow's BILINEAR after
// the centre crop) and v2 (the same after step 1b's reduction by s = 2, 4, 8 for these sizes; the
// cat's s is 1) to 224 x 224 on opaque photos of the sizes benchmarks/end_to_end.py writes, and
// one with transparency; the WebAssembly SIMD kernels the page uses and the JavaScript ones it
// falls back to. The page's own timing of it is web_demo/bench/end_to_end.mjs.
import { bench, describe } from "vitest";
import { photoToInput } from "../src/core";

function photo(width: number, height: number, opaque: boolean): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(width * height * 4);
  let state = 12345;
  for (let i = 0; i < rgba.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) | 0;
    rgba[i] = (i & 3) === 3 && opaque ? 255 : (state >>> 16) & 255;
  }
  return rgba;
}

for (const [name, width, height, opaque] of [
  ["the cat, 451x300", 451, 300, true],
  ["0.3 MP, 640x480", 640, 480, true],
  ["0.3 MP with transparency", 640, 480, false],
  ["3 MP, 2000x1500", 2000, 1500, true],
  ["12 MP, 4000x3000", 4000, 3000, true],
] as const) {
  const rgba = photo(width, height, opaque);
  describe(`${name} to 224x224`, () => {
    for (const version of [1, 2] as const) {
      bench(`v${version}, WebAssembly SIMD`, () => {
        photoToInput(rgba, width, height, 224, 224, "wasm", version);
      });
      bench(`v${version}, JavaScript`, () => {
        photoToInput(rgba, width, height, 224, 224, "js", version);
      });
    }
  });
}
