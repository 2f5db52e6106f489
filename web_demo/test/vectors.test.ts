// The shared vectors in tests/vectors/ (the files pytest and the Kotlin tests read, never a copy):
// masks bit-identical, aggregates within the file's tolerance, decisions equal, photo bytes equal.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { type Rule, SCORES, aggregate, decide, dropThreshold, isPassScore, masksFor, mix, passSeeds, PHOTO_RULE_VERSIONS, type PhotoRuleVersion, photoEngine, photoToInput, reductionFactor } from "../src/core";
import { python } from "./python";

const VECTORS = resolve(process.env.TFUQ_VECTORS ?? join(__dirname, "..", "..", "tests", "vectors"));
const load = (name: string) => JSON.parse(readFileSync(join(VECTORS, name), "utf8"));

type Nested = number[][][];
/** `(passes, batch, classes)` to one `(passes, classes)` list per image. */
const perImage = (p: Nested) => p[0].map((_, b) => p.map((pass) => pass[b]));

describe("masks.json", () => {
  const vectors = load("masks.json");
  it("names the scheme this core implements", () => {
    expect([vectors.scheme, vectors.version]).toEqual(["splitmix64-counter", 1]);
  });
  it.each(vectors.mix as { input: string; output: string }[])("mix($input)", ({ input, output }) => {
    expect(mix(BigInt(input)).toString()).toBe(output);
  });
  for (const c of vectors.cases) {
    it(`${c.name}: pass seeds, thresholds and every mask bit`, () => {
      expect(passSeeds(c.seed, c.passes).map(String)).toEqual(c.pass_seeds);
      for (const layer of c.layers) expect(dropThreshold(layer.rate)).toBe(layer.threshold);
      const masks = masksFor(c.seed, c.passes, c.layers);
      expect(masks.map((m) => m.join(""))).toEqual(c.masks);
    });
  }
});

describe("aggregate.json", () => {
  const vectors = load("aggregate.json");
  const tolerance: number = vectors.tolerance;
  for (const c of vectors.cases) {
    it(c.name, () => {
      perImage(c.probabilities).forEach((image, b) => {
        const got = aggregate(image, c.conf_factor);
        const e = c.expected;
        expect(got.predicted).toBe(e.predicted[b]);
        for (const key of ["max_probability", "predictive_entropy", "expected_entropy", "mutual_information", "variation_ratio"] as const) {
          expect(Math.abs(got[key] - e[key][b]), key).toBeLessThanOrEqual(tolerance);
        }
        for (const key of ["mean", "std", "lower", "upper"] as const) {
          got[key].forEach((value, k) => expect(Math.abs(value - e[key][b][k]), `${key}[${k}]`).toBeLessThanOrEqual(tolerance));
        }
      });
    });
  }
});

describe("decisions.json", () => {
  const vectors = load("decisions.json");
  for (const c of vectors.cases) {
    it(c.name, () => {
      // A case whose rule has an ood part carries the model's per-image scores; null is NaN.
      const scores = Object.entries((c.scores ?? {}) as Record<string, (number | null)[]>);
      const got = perImage(c.probabilities).map((image, b) =>
        decide(image, c.rule as Rule, Object.fromEntries(scores.map(([name, values]) => [name, values[b] ?? Number.NaN]))),
      );
      expect(got.map((d) => d.accept)).toEqual(c.expected.accept);
      expect(got.map((d) => d.predicted)).toEqual(c.expected.predicted);
      // An all rule's cases name the first part that refused (-1: every part accepted).
      if (c.expected.failed_part !== undefined) expect(got.map((d) => d.failedPart)).toEqual(c.expected.failed_part);
      else expect(got.map((d) => d.failedPart)).toEqual(got.map(() => null));
    });
  }
  const partsOf = (rule: Rule) => (rule.rule === "all" ? rule.rules : [rule]);
  it("has cases of the ood guard on a model score: alone, refusing as an all rule's part, a NaN score", () => {
    const guarded = vectors.cases.filter((c: { rule: Rule }) => partsOf(c.rule).some((p) => p.rule === "ood" && !isPassScore(p.score)));
    expect(guarded.some((c: { rule: Rule }) => c.rule.rule === "ood")).toBe(true);
    expect(guarded.every((c: { scores?: object }) => c.scores !== undefined)).toBe(true);
    expect(guarded.flatMap((c: { scores: Record<string, unknown[]> }) => Object.values(c.scores).flat())).toContain(null);
    const refusedAt = guarded.flatMap((c: { rule: Rule; expected: { failed_part?: number[] } }) =>
      c.rule.rule === "all" ? (c.expected.failed_part ?? []).filter((f) => f >= 0 && c.rule.rule === "all" && c.rule.rules[f].rule === "ood") : [],
    );
    expect(new Set(refusedAt)).toEqual(new Set([0, 1, 2]));
  });
  it("has cases of the ood guard on each score of the passes, alone and refusing as each part of an all rule", () => {
    type Case = { rule: Rule; expected: { failed_part?: number[] }; scores?: object };
    const guards = vectors.cases.flatMap((c: Case) =>
      partsOf(c.rule).flatMap((p, index) => (p.rule === "ood" && isPassScore(p.score) ? [{ c, index, score: p.score }] : [])),
    );
    expect(new Set(guards.filter(({ c }: { c: Case }) => c.rule.rule === "ood").map(({ score }: { score: string }) => score))).toEqual(new Set(SCORES));
    const refusedAt = guards.flatMap(({ c, index }: { c: Case; index: number }) => (c.expected.failed_part ?? []).filter((f) => f === index));
    expect(new Set(refusedAt)).toEqual(new Set([0, 1, 2]));
    expect(guards.some(({ c }: { c: Case }) => c.scores === undefined)).toBe(true);
  });
});

interface PhotoCase {
  name: string;
  source_height: number;
  source_width: number;
  source_rgba_base64: string;
  target_height: number;
  target_width: number;
  expected_rgb_base64: string;
}

interface Factor {
  width: number;
  height: number;
  target_width: number;
  target_height: number;
  s: number;
}

interface PhotoVectors {
  rule: { name: string; version: number };
  cases: PhotoCase[];
  factors?: Factor[];
}

/** `photos.json` (v1) or `photos_v2.json` (v2) from tests/vectors; until it lands, the same format from Pillow. */
function photoVectors(version: PhotoRuleVersion): { source: string; vectors: PhotoVectors } {
  const file = version === 1 ? "photos.json" : `photos_v${version}.json`;
  const shared = join(VECTORS, file);
  if (existsSync(shared)) return { source: shared, vectors: checkedRule(load(file), version) };
  // Until the shared file lands: the same format from Pillow, written by a test-only helper.
  const out = join(mkdtempSync(join(tmpdir(), "tfuq-photos-")), file);
  execFileSync(python(), [join(__dirname, "..", "tools", "photo_vectors.py"), out, ...(version === 1 ? [] : ["--version", String(version)])]);
  return { source: `tools/photo_vectors.py (Pillow), not ${file}`, vectors: checkedRule(JSON.parse(readFileSync(out, "utf8")), version) };
}

function checkedRule(vectors: PhotoVectors, version: number): PhotoVectors {
  expect(vectors.rule).toEqual({ name: "center-crop-bilinear", version });
  return vectors;
}

for (const version of PHOTO_RULE_VERSIONS) {
  describe(`photo rule center-crop-bilinear v${version}`, () => {
    let source = "";
    let vectors: PhotoVectors = { rule: { name: "", version: 0 }, cases: [] };
    let problem: Error | null = null;
    try {
      ({ source, vectors } = photoVectors(version));
    } catch (error) {
      problem = error as Error;
    }
    it(`has cases (${source || "none"})`, () => {
      if (problem) throw new Error(`no photo cases: ${problem.message.split("\n")[0]} (set TFUQ_PYTHON to a Python with Pillow)`);
      expect(vectors.cases.length).toBeGreaterThan(0);
    });
    it("runs as WebAssembly SIMD here (Node has it, as every current browser)", () => {
      expect(photoEngine()).toBe("wasm");
    });
    for (const c of vectors.cases) for (const engine of ["wasm", "js"] as const) {
      it(`${c.name} (${engine}): every byte equals Pillow's`, () => {
        const rgba = Buffer.from(c.source_rgba_base64, "base64");
        const got = photoToInput(new Uint8Array(rgba), c.source_width, c.source_height, c.target_height, c.target_width, engine, version);
        const expected = new Uint8Array(Buffer.from(c.expected_rgb_base64, "base64"));
        expect(got.length).toBe(expected.length);
        const wrong = got.reduce((n, v, i) => n + (v !== expected[i] ? 1 : 0), 0);
        expect(wrong, "bytes that differ").toBe(0);
      });
    }
    if (vectors.factors !== undefined) {
      it(`step 1b's s on the file's ${vectors.factors.length} sizes`, () => {
        expect(vectors.factors!.length).toBeGreaterThan(0);
        for (const f of vectors.factors!) {
          expect(reductionFactor(f.width, f.height, f.target_height, f.target_width), `${f.width}x${f.height} to ${f.target_width}x${f.target_height}`).toBe(f.s);
        }
      });
    }
  });
}
