// The core's own cases beyond the shared vectors: the model file reader (on files packed by
// tfuq's Python modelfile.py, an independent writer), seeds, quantization and the sentences.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_RULE,
  ModelFileError,
  type OodRule,
  type Rule,
  SCORES,
  type TensorInfo,
  checkRule,
  checkSeed,
  classSummary,
  decide,
  dequantize,
  describeRule,
  explain,
  layerMask,
  layerMaskBigInt,
  MaskCache,
  masksFor,
  mix,
  quantize,
  refusedAsOutOfDistribution,
  roundHalfEven,
  ruleScores,
  shortLabel,
  splitModelFile,
} from "../src/core";
import { REPO, python } from "./python";

const CONFIG = {
  mode: "masked",
  passes: 2,
  labels: ["cat", "dog"],
  input: { name: "image", height: 4, width: 4, channels: 3, pixel_format: "RGB", dtype: "uint8" },
  output: { name: "output_0" },
  mc_dropout: [{ layer: "mc_dropout", input: "mask_0", shape: [2, 8], rate: 0.5 }],
  seed_scheme: { name: "splitmix64-counter", version: 1, keep_bits: 24 },
  decision: { rule: "threshold", score: "max_probability", threshold: 0.8 },
};
const FLATBUFFER = Buffer.concat([Buffer.from([16, 0, 0, 0]), Buffer.from("TFL3"), Buffer.alloc(24, 7)]);

/**
 * A model file written by tfuq's own modelfile.pack (stored), or by Python's zipfile (deflated).
 * pack refuses a configuration its schema refuses; such a file (as another tool could write
 * it) is then appended by zipfile, stored, so the reader's own checks are what is tested.
 */
function packed(config: object, compression = "ZIP_STORED"): Uint8Array {
  const out = join(mkdtempSync(join(tmpdir(), "tfuq-pack-")), "model.tflite");
  const script = `
import io, json, sys, zipfile
from tfuq.runtime import modelfile
flatbuffer = bytes.fromhex(sys.argv[1]); config = json.loads(sys.argv[2])
def appended(method):
    buffer = io.BytesIO(); buffer.write(flatbuffer)
    with zipfile.ZipFile(buffer, "a", compression=method) as archive:
        archive.writestr("tfuq.json", json.dumps({"format": "tfuq-model", "format_version": 1, **config}))
    return buffer.getvalue()
if sys.argv[4] == "ZIP_STORED":
    try:
        data = modelfile.pack(flatbuffer, config)
    except modelfile.ModelFileError:
        data = appended(zipfile.ZIP_STORED)
else:
    data = appended(zipfile.ZIP_DEFLATED)
open(sys.argv[3], "wb").write(data)
`;
  execFileSync(python(), ["-c", script, FLATBUFFER.toString("hex"), JSON.stringify(config), out, compression], { cwd: REPO });
  return new Uint8Array(readFileSync(out));
}

describe("model file", () => {
  it("splits a file packed by tfuq: the flatbuffer before the zip, the configuration in it", () => {
    const file = splitModelFile(packed(CONFIG), "m.tflite");
    expect(Buffer.from(file.flatbuffer).equals(FLATBUFFER)).toBe(true);
    expect(file.config.labels).toEqual(["cat", "dog"]);
    expect(file.config.mcDropout).toEqual([{ layer: "mc_dropout", input: "mask_0", shape: [2, 8], rate: 0.5 }]);
    expect(file.config.decision).toEqual({ rule: "threshold", score: "max_probability", threshold: 0.8 });
  });
  it("reads a deflated entry too", () => {
    const file = splitModelFile(packed(CONFIG, "ZIP_DEFLATED"), "m.tflite");
    expect(Buffer.from(file.flatbuffer).equals(FLATBUFFER)).toBe(true);
    expect(file.config.passes).toBe(2);
  });
  it("reads the photo rule's version: 1 and 2 taken, none taken as 1, others refused in one line", () => {
    const withRule = (photoRule: unknown) => ({ ...CONFIG, input: { ...CONFIG.input, photo_rule: photoRule } });
    expect(splitModelFile(packed(withRule({ name: "center-crop-bilinear", version: 1 })), "m").config.photoRule).toBe(1);
    expect(splitModelFile(packed(withRule({ name: "center-crop-bilinear", version: 2 })), "m").config.photoRule).toBe(2);
    expect(splitModelFile(packed(CONFIG), "m").config.photoRule).toBe(1);
    expect(splitModelFile(packed(withRule(null)), "m").config.photoRule).toBe(1);
    expect(() => splitModelFile(packed(withRule({ name: "center-crop-bilinear", version: 3 })), "m")).toThrow(
      new ModelFileError('m: unknown photo rule "center-crop-bilinear" v3; this page knows center-crop-bilinear v1, v2'),
    );
    expect(() => splitModelFile(packed(withRule({ name: "letterbox", version: 1 })), "m")).toThrow('m: unknown photo rule "letterbox" v1;');
    expect(() => splitModelFile(packed(withRule("center-crop-bilinear")), "m")).toThrow('m: input.photo_rule must be an object, got "center-crop-bilinear"');
  });
  it("refuses a truncated file in one line", () => {
    const data = packed(CONFIG);
    expect(() => splitModelFile(data.subarray(0, data.length - 10), "m.tflite")).toThrow(
      new ModelFileError("m.tflite carries no tfuq configuration (truncated, or not made by `tfuq convert`)"),
    );
  });
  it("refuses a file that is not a flatbuffer", () => {
    expect(() => splitModelFile(new TextEncoder().encode("<html>not found</html>"), "x")).toThrow("x is not a TFLite flatbuffer (no TFL3 identifier)");
  });
  it("refuses a plain TFLite file without configuration", () => {
    expect(() => splitModelFile(new Uint8Array(FLATBUFFER), "plain.tflite")).toThrow("plain.tflite carries no tfuq configuration");
  });
  it("refuses another seed scheme, naming both", () => {
    const data = packed({ ...CONFIG, seed_scheme: { name: "philox", version: 1, keep_bits: 24 } });
    expect(() => splitModelFile(data, "m")).toThrow("m: seed scheme philox v1 (24 bits) is not the one this page implements (splitmix64-counter v1, 24 bits)");
  });
  it("refuses masks whose first axis is not the passes", () => {
    const data = packed({ ...CONFIG, mc_dropout: [{ layer: "d", input: "mask_0", shape: [3, 8], rate: 0.5 }] });
    expect(() => splitModelFile(data, "m")).toThrow("m: mc_dropout[0].shape is [3,8]; a masked model's mask is (passes=2, *features)");
  });
  it("reads the combined rule tfuq convert writes (abstain.DEFAULT_RULE, as Python prints it)", () => {
    const script = "import json; from tfuq.runtime import abstain; print(json.dumps(abstain.DEFAULT_RULE))";
    const written = JSON.parse(execFileSync(python(), ["-c", script], { cwd: REPO, encoding: "utf8" }));
    expect(DEFAULT_RULE).toEqual(written);
    const file = splitModelFile(packed({ ...CONFIG, decision: written }), "m");
    expect(file.config.decision).toEqual({
      rule: "all",
      rules: [{ rule: "interval", conf_factor: 1 }, { rule: "threshold", score: "max_probability", threshold: 0.5 }],
    });
  });
  it("refuses an all rule with a bad part, naming the part", () => {
    const decision = { rule: "all", rules: [{ rule: "interval", conf_factor: 1 }, { rule: "threshold", score: "max_probability" }] };
    expect(() => splitModelFile(packed({ ...CONFIG, decision }), "m")).toThrow(
      'm: decision: all rule part 1: threshold rule needs "threshold": {"rule":"threshold","score":"max_probability"}',
    );
  });
  it("reads the scores a converted model outputs, and a guard that reads one of them", () => {
    const scores = [{ name: "energy", output: "score_energy", layout: "(1, 1)", larger_means: "more like the training data" }];
    const guard = { rule: "ood", score: "energy", threshold: 3.25, calibration: { alpha: 0.05, delta: 0.1 } };
    const decision = { rule: "all", rules: [guard, { rule: "threshold", score: "max_probability", threshold: 0.5 }] };
    const file = splitModelFile(packed({ ...CONFIG, output: { name: "probabilities" }, scores, decision }), "m");
    expect(file.config.scores).toEqual([{ name: "energy", output: "score_energy" }]);
    expect(file.config.decision).toEqual(decision);
    expect(splitModelFile(packed(CONFIG), "m").config.scores).toEqual([]); // files from before scores
  });
  it.each([
    [{ decision: { rule: "ood", score: "energy", threshold: 1 } }, 'm: decision: the OOD guard reads score "energy", which the model does not output'],
    [{ scores: [{ name: "energy", output: "output_0" }] }, 'm: scores[0].output "output_0" names an input or another output'],
    [{ scores: [{ name: "energy", output: "mask_0" }] }, 'm: scores[0].output "mask_0" names an input or another output'],
    [{ scores: [{ name: "energy", output: "s" }, { name: "energy", output: "t" }] }, "m: scores must have distinct names"],
    [{ scores: [{ name: "an energy", output: "s" }] }, 'm: scores[0].name must be an identifier, got "an energy"'],
    [{ scores: [{ name: "energy" }] }, "m: scores[0].output must be a string, got undefined"],
    [{ scores: { name: "energy" } }, 'm: tfuq.json.scores must be an array, got {"name":"energy"}'],
  ])("refuses scores that do not fit: %j", (change, message) => {
    expect(() => splitModelFile(packed({ ...CONFIG, ...change }), "m")).toThrow(message);
  });
  it("refuses a bad rule", () => {
    const data = packed({ ...CONFIG, decision: { rule: "threshold", score: "margin", threshold: 1 } });
    expect(() => splitModelFile(data, "m")).toThrow('m: decision: threshold rule score must be one of max_probability, predictive_entropy, mutual_information, variation_ratio, got "margin"');
  });
});

describe("class names for the header and the rows (many-class models)", () => {
  const config = (labels: string[]) => ({ labels }) as any;
  it("keeps the first ImageNet synonym", () => {
    const imagenet = config(["tench, Tinca tinca", "great white shark, white shark, man-eater", " , odd", "plain"]);
    expect([0, 1, 2, 3, 4].map((i) => shortLabel(imagenet, i))).toEqual(["tench", "great white shark", " , odd", "plain", "class_4"]);
  });
  it("lists few classes whole and many as the first five and an ellipsis", () => {
    expect(classSummary(config(["red", "orange", "yellow", "green"]), 4)).toEqual({ text: "4 classes: red, orange, yellow, green", truncated: false });
    expect(classSummary(config(["a", "b", "c", "d", "e"]), 5)).toEqual({ text: "5 classes: a, b, c, d, e", truncated: false });
    const names = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark", "tiger shark", "hammerhead", "electric ray"];
    const many = classSummary(config(names), 1000);
    expect(many).toEqual({ text: "1000 classes: tench, goldfish, great white shark, tiger shark, hammerhead, …", truncated: true });
    expect(classSummary(config(names), 1000, 2).text).toBe("1000 classes: tench, goldfish, …");
    expect(() => classSummary(config(names), 10, 0)).toThrow(RangeError);
  });
});

describe("seeds", () => {
  it("takes every unsigned 64-bit value, as text", () => {
    expect(checkSeed("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(checkSeed(" 42 ")).toBe(42n);
  });
  it.each(["-1", "18446744073709551616", "1.5", "abc", ""])("refuses %j", (seed) => {
    expect(() => checkSeed(seed)).toThrow(RangeError);
  });
});

describe("quantization as tfuq/runtime/interpreter.py", () => {
  const uint8 = (scale: number, zeroPoint = 0): TensorInfo => ({ name: "x", type: "uint8", shape: [], scale, zeroPoint });
  it("rounds half to even like np.round", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999].map((x) => roundHalfEven(x) + 0)).toEqual([0, 2, 2, 0, -2, 2]);
    expect(Array.from(quantize([0.5, 1.5, 2.5, 300, -4], uint8(1)))).toEqual([0, 2, 2, 255, 0]);
  });
  it("feeds a 0/1 mask at the masks' scale 1/255 (as float32) as 0 and 255", () => {
    expect(Array.from(quantize([0, 1], uint8(Math.fround(1 / 255))))).toEqual([0, 255]);
  });
  it("reads int8 probabilities with scale 1/256 and zero point -128", () => {
    const info: TensorInfo = { name: "y", type: "int8", shape: [], scale: 1 / 256, zeroPoint: -128 };
    const bytes = new Uint8Array(new Int8Array([-128, 0, 127]).buffer);
    expect(Array.from(dequantize(bytes, info))).toEqual([0, 0.5, 255 / 256]);
  });
});

describe("the sentence under the headline (the Android app's)", () => {
  const name = (i: number) => ["cat", "dog", "fox"][i];
  it("interval, clear", () => {
    const rule = { rule: "interval", conf_factor: 1 } as const;
    const d = decide([[0.75, 0.25, 0], [0.75, 0.25, 0]], rule);
    expect(explain(d, rule, name)).toBe("The interval of cat (lower 0.750) is clear of every other class (highest upper 0.250, dog).");
  });
  it("interval, overlapping: mean 0.5/0.5 std 0.25", () => {
    const rule = { rule: "interval", conf_factor: 1 } as const;
    const d = decide([[0.75, 0.25, 0], [0.25, 0.75, 0]], rule);
    expect(d.accept).toBe(false);
    expect(explain(d, rule, name)).toBe("The intervals of cat (lower 0.250) and dog (upper 0.750) overlap.");
  });
  it("calibrated threshold", () => {
    const rule = { rule: "threshold", score: "mutual_information", threshold: 0.05, calibration: { method: "sgr" } } as const;
    const d = decide([[1, 0, 0], [0, 1, 0]], rule);
    expect(explain(d, rule, name)).toBe("Mutual information 0.693 is above the calibrated threshold 0.050.");
  });
});

describe("the all rule's sentences (the Android app's: the refusing part's, else every part's)", () => {
  const name = (i: number) => ["cat", "dog", "fox"][i];
  it("the floor refuses: intervals clear, top class 0.4", () => {
    const d = decide([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]], DEFAULT_RULE);
    expect([d.accept, d.failedPart]).toEqual([false, 1]);
    expect(explain(d, DEFAULT_RULE, name)).toBe("Max probability 0.400 is below the threshold 0.500.");
  });
  it("the interval refuses first, the floor (0.5 >= 0.5) would accept", () => {
    const d = decide([[0.75, 0.25, 0], [0.25, 0.75, 0]], DEFAULT_RULE);
    expect([d.accept, d.failedPart, d.parts?.[1].accept]).toEqual([false, 0, true]);
    expect(explain(d, DEFAULT_RULE, name)).toBe("The intervals of cat (lower 0.250) and dog (upper 0.750) overlap.");
  });
  it("both accept: both sentences", () => {
    const d = decide([[0.75, 0.25, 0], [0.75, 0.25, 0]], DEFAULT_RULE);
    expect([d.accept, d.failedPart]).toEqual([true, -1]);
    expect(explain(d, DEFAULT_RULE, name)).toBe(
      "The interval of cat (lower 0.750) is clear of every other class (highest upper 0.250, dog). Max probability 0.750 is at or above the threshold 0.500.",
    );
  });
});

describe("the all rule: checks as abstain.check_rule's", () => {
  const interval = { rule: "interval", conf_factor: 1 };
  it.each([
    [{ rule: "all" }, 'all rule needs "rules", a list of rules, got undefined'],
    [{ rule: "all", rules: interval }, 'all rule needs "rules", a list of rules, got {"rule":"interval","conf_factor":1}'],
    [{ rule: "all", rules: [] }, "all rule needs 1 to 8 rules, got 0"],
    [{ rule: "all", rules: Array(9).fill(interval) }, "all rule needs 1 to 8 rules, got 9"],
    [{ rule: "all", rules: [interval, { rule: "all", rules: [interval] }] }, 'all rule part 1: "all" cannot be a part; choose one of interval, threshold, ood (no nesting)'],
    [{ rule: "all", rules: [{ rule: "margin" }] }, 'all rule part 0: "margin" cannot be a part; choose one of interval, threshold, ood (no nesting)'],
    [{ rule: "all", rules: [3] }, "all rule part 0: a decision rule is an object, got 3"],
    [{ rule: "all", rules: [{ rule: "interval", conf_factor: -1 }] }, "all rule part 0: conf_factor must be non-negative, got -1"],
    [{ rule: "any", rules: [interval] }, 'unknown decision rule "any"; choose one of interval, threshold, ood, all'],
  ])("refuses %j", (rule, message) => {
    expect(() => checkRule(rule)).toThrow(message);
  });
  it("takes 1 and 8 parts, keeps other keys", () => {
    expect(checkRule({ rule: "all", rules: [interval] })).toEqual({ rule: "all", rules: [interval] });
    const eight = { rule: "all", rules: Array(8).fill(interval), calibration: { method: "sgr" } };
    expect(checkRule(eight)).toEqual(eight);
  });
  it("decides each interval part at its own Z: mean 0.7/0.3, std 0.1/0.1", () => {
    // Z = 1: lower 0.6 > upper 0.4 accepts; Z = 3: lower 0.4 < upper 0.6 refuses.
    const rule: Rule = { rule: "all", rules: [{ rule: "interval", conf_factor: 1 }, { rule: "interval", conf_factor: 3 }] };
    const d = decide([[0.6, 0.4], [0.8, 0.2]], rule);
    expect([d.accept, d.failedPart, d.parts?.map((p) => p.accept)]).toEqual([false, 1, [true, false]]);
    expect(d.aggregate.confFactor).toBe(1); // the first interval part's Z, as abstain.rule_conf_factor
  });
});

describe("the ood guard (abstain.py's ood rule)", () => {
  const guard: Rule = { rule: "ood", score: "energy", threshold: 3.25 };
  const passes = [[0.75, 0.25], [0.65, 0.35]];
  it("accepts at or above its threshold, refuses below it and NaN", () => {
    expect([4, 3.25, Math.fround(3.25) - 2 ** -20, Number.NaN].map((energy) => decide(passes, guard, { energy }).accept)).toEqual([true, true, false, false]);
  });
  it("needs the score it reads", () => {
    expect(() => decide(passes, guard, { knn: 9 })).toThrow('the rule\'s OOD guard needs the model score "energy", which was not given');
    expect(() => checkRule({ rule: "ood", score: "1 energy", threshold: 1 })).toThrow('ood rule score must be the name of a model score, got "1 energy"');
    expect(() => checkRule({ rule: "ood", score: "energy" })).toThrow('ood rule needs "threshold"');
  });
  it("a refusal by the guard says the photo looks unlike the training data, with the score", () => {
    const rule: Rule = { rule: "all", rules: [guard, { rule: "interval", conf_factor: 1 }] };
    const name = (i: number) => ["cat", "dog"][i];
    const outside = decide(passes, rule, { energy: 1.23 });
    expect([outside.accept, outside.failedPart, refusedAsOutOfDistribution(outside, rule)]).toEqual([false, 0, true]);
    expect(explain(outside, rule, name)).toBe("Looks unlike anything it was trained on: energy 1.230 is below the OOD guard's 3.250.");
    const inside = decide(passes, rule, { energy: 4.5 });
    expect([inside.accept, refusedAsOutOfDistribution(inside, rule)]).toEqual([true, false]);
    expect(explain(inside, rule, name)).toBe(
      "Looks like what it was trained on: energy 4.500 is at or above the OOD guard's 3.250. The interval of cat (lower 0.650) is clear of every other class (highest upper 0.350, dog).",
    );
    // Refused by the interval part, not by the guard.
    const unsure = decide([[0.2, 0.8], [0.8, 0.2]], rule, { energy: 4.5 });
    expect([unsure.accept, unsure.failedPart, refusedAsOutOfDistribution(unsure, rule)]).toEqual([false, 1, false]);
  });
});

describe("the ood guard on a score of the passes", () => {
  // Two passes that disagree: mean (1/2, 1/2), predictive entropy and mutual information ln 2,
  // variation ratio 1/2. Two equal passes: max probability 3/4, predictive entropy 0.562, 0, 0.
  const disagree = [[1, 0], [0, 1]];
  const unanimous = [[0.75, 0.25], [0.75, 0.25]];
  const guard = (score: string, threshold: number): OodRule => ({ rule: "ood", score, threshold });
  it("computes it here and compares it on the threshold rule's side, equality accepting", () => {
    expect([0.5, 0.5 + 2 ** -52].map((t) => decide(disagree, guard("max_probability", t)).accept)).toEqual([true, false]);
    expect([0.6, 0.7].map((t) => decide(disagree, guard("predictive_entropy", t)).accept)).toEqual([false, true]);
    expect(decide(unanimous, guard("predictive_entropy", 0.6)).accept).toBe(true);
    expect([decide(disagree, guard("mutual_information", 0.1)).accept, decide(unanimous, guard("mutual_information", 0.1)).accept]).toEqual([false, true]);
    expect([0.5, 0.5 - 2 ** -53].map((t) => decide(disagree, guard("variation_ratio", t)).accept)).toEqual([true, false]);
    expect(decide(disagree, guard("predictive_entropy", 1)).score).toBeCloseTo(Math.LN2, 15);
  });
  it("reads no model score, not even one of the same name, and a model file needs none for it", () => {
    expect(decide(disagree, guard("predictive_entropy", 0.6), { predictive_entropy: 0 }).accept).toBe(false);
    const rule: Rule = { rule: "all", rules: [guard("predictive_entropy", 0.6), guard("energy", 1)] };
    expect(ruleScores(rule)).toEqual(["energy"]);
    expect(describeRule(rule)).toBe("ood guard: predictive_entropy <= 0.6 and ood guard: energy >= 1");
    for (const score of SCORES) {
      const decision = { rule: "all", rules: [{ rule: "ood", score, threshold: 0.25 }, { rule: "interval", conf_factor: 1 }] };
      expect(splitModelFile(packed({ ...CONFIG, decision }), "m").config.decision).toEqual(decision);
    }
    expect(() => splitModelFile(packed({ ...CONFIG, decision: guard("expected_entropy", 0.25) }), "m")).toThrow(
      'm: decision: the OOD guard reads score "expected_entropy", which the model does not output',
    );
  });
  it("a refusal says which side of the guard the score is on, in words", () => {
    const rule: Rule = { rule: "all", rules: [guard("predictive_entropy", 0.6), { rule: "interval", conf_factor: 1 }] };
    const name = (i: number) => ["cat", "dog"][i];
    const outside = decide(disagree, rule);
    expect([outside.accept, outside.failedPart, refusedAsOutOfDistribution(outside, rule)]).toEqual([false, 0, true]);
    expect(explain(outside, rule, name)).toBe("Looks unlike anything it was trained on: predictive entropy 0.693 is above the OOD guard's 0.600.");
    expect(explain(decide(unanimous, rule), rule, name)).toMatch(
      /^Looks like what it was trained on: predictive entropy 0\.562 is at or below the OOD guard's 0\.600\. The interval of cat/,
    );
    const floor = guard("max_probability", 0.6);
    expect(explain(decide(disagree, floor), floor, name)).toBe("Looks unlike anything it was trained on: max probability 0.500 is below the OOD guard's 0.600.");
  });
});

describe("masks: the 32-bit element loop against the BigInt form", () => {
  it("agrees on keys across the whole 64-bit range, all rates' ends", () => {
    // Keys that exercise carries between the halves: 0, all ones, just below 2^32 and 2^64, and pseudo-random ones.
    const keys = [0n, 2n ** 64n - 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 0x9e3779b97f4a7c15n];
    let x = 0x1234567890abcdefn;
    for (let i = 0; i < 40; i++) {
      x = mix(x + 0x9e3779b97f4a7c15n) & (2n ** 64n - 1n);
      keys.push(x);
    }
    for (const rate of [2 ** -24, 0.01, 0.3, 0.5, 0.99]) {
      const fast = layerMask(keys, 2, [7, 19], rate);
      const plain = layerMaskBigInt(keys, 2, [7, 19], rate);
      expect(Buffer.from(fast).equals(Buffer.from(plain)), `rate ${rate}`).toBe(true);
    }
  });
});

describe("the mask cache: the last run's masks, kept", () => {
  const layers = [
    { shape: [12], rate: 0.5 },
    { shape: [2, 3], rate: 0.2 },
  ];
  it("gives masksFor's masks, drawing again only when the seed, passes or layers change", () => {
    const cache = new MaskCache();
    const first = cache.get("7", 5, layers);
    expect(first.cached).toBe(false);
    expect(first.masks).toEqual(masksFor(7n, 5, layers));
    const again = cache.get(7, 5, layers); // the same seed written another way
    expect(again.cached).toBe(true);
    expect(again.masks).toBe(first.masks);
    for (const [seed, passes, other] of [[8, 5, layers], [7, 4, layers], [7, 5, [layers[0]]], [7, 5, [{ shape: [12], rate: 0.4 }, layers[1]]]] as const) {
      const next = cache.get(seed, passes, other);
      expect(next.cached, `${seed} ${passes} ${JSON.stringify(other)}`).toBe(false);
      expect(next.masks).toEqual(masksFor(BigInt(seed), passes, other));
    }
    expect(() => cache.get(-1, 5, layers)).toThrow(RangeError);
    expect(cache.get(7, 5, layers).cached).toBe(false); // only the last run is kept
  });
});

describe("quantizing bytes by table, as by the formula", () => {
  it("gives the formula's bytes for pixels and masks of every integer type", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (const info of [
      { name: "m", type: "uint8", shape: [], scale: Math.fround(1 / 255), zeroPoint: 0 },
      { name: "x", type: "int8", shape: [], scale: 1, zeroPoint: -128 },
      { name: "y", type: "int8", shape: [], scale: 0.7, zeroPoint: 3 },
      { name: "z", type: "int32", shape: [], scale: 0.5, zeroPoint: -7 },
      { name: "r", type: "uint8", shape: [], scale: 0, zeroPoint: 0 },
    ] as TensorInfo[]) {
      expect(Array.from(quantize(bytes, info)), info.name).toEqual(Array.from(quantize(Array.from(bytes), info)));
    }
    // by hand: scale 0.7, zero point 3 puts 7 at round(10) + 3 = 13 and clips 255 (367) to 127
    const y = new Int8Array(quantize(Uint8Array.of(7, 255), { name: "y", type: "int8", shape: [], scale: 0.7, zeroPoint: 3 }).buffer);
    expect(Array.from(y)).toEqual([13, 127]);
  });
});
