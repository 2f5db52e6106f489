// What BigInt costs for the masks: `npm run bench`. The demo model draws 30 x (32 + 16) = 1,440
// mask elements per run; a wider model, 30 x (512 + 256) = 23,040.
import { bench, describe } from "vitest";
import { masksFor } from "../src/core";

const SEED = 18446744073709551615n;
describe("masksFor (BigInt, splitmix64-counter v1)", () => {
  bench("demo model: T=30, layers 32 + 16 (1,440 elements)", () => {
    masksFor(SEED, 30, [{ shape: [32], rate: 0.2 }, { shape: [16], rate: 0.3 }]);
  });
  bench("wider model: T=30, layers 512 + 256 (23,040 elements)", () => {
    masksFor(SEED, 30, [{ shape: [512], rate: 0.5 }, { shape: [256], rate: 0.5 }]);
  });
});
