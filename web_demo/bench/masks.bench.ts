// What the masks cost: `npm run bench`. The demo model draws 30 x (32 + 16) = 1,440 mask elements
// per run; a wider head, 30 x (512 + 256) = 23,040; ImageNet Lite0, 30 x 1280 = 38,400. The page
// uses the 32-bit form, and draws only when the seed changes (MaskCache).
import { bench, describe } from "vitest";
import { layerMask, layerMaskBigInt, passSeeds } from "../src/core";

const SEEDS = passSeeds(18446744073709551615n, 30);
for (const [name, widths] of [
  ["demo model: T=30, layers 32 + 16 (1,440 elements)", [32, 16]],
  ["wider head: T=30, layers 512 + 256 (23,040 elements)", [512, 256]],
  ["ImageNet Lite0: T=30, layer 1280 (38,400 elements)", [1280]],
] as const) {
  describe(name, () => {
    bench("32-bit halves (layerMask)", () => {
      widths.forEach((width, layer) => layerMask(SEEDS, layer, [width], 0.5));
    });
    bench("BigInt (layerMaskBigInt)", () => {
      widths.forEach((width, layer) => layerMaskBigInt(SEEDS, layer, [width], 0.5));
    });
  });
}
