// End to end in headless Chromium: the built page, served by `tfuq serve-demo` on 127.0.0.1, loads
// the demo model and photos; its model input, probabilities and decision for each seed are
// compared with tfuq's Python runtime (`tfuq.load(model).run(image, seed)`) on the same file.
//
// Needs Chromium (CHROMIUM, else /usr/bin/chromium) and a Python with the repository's tfuq and
// TensorFlow (see ./python.ts); skips with a message when Chromium is missing.
// TFUQ_UPDATE_SCREENSHOT=1 rewrites docs/result_screen*.png.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { type BrowserContext, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, python } from "./python";

const HERE = resolve(__dirname, "..");
// The Python children's TensorFlow start-up chatter is not the test's output.
const QUIET = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", ABSL_MIN_LOG_LEVEL: "3" };
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const DEMO = join(HERE, ".cache", "demo");
const PHOTOS = ["red.png", "orange.png", "yellow-wide.png", "rotated.jpg"];
const SEEDS = ["0", "12345", "18446744073709551615"];
// One step of the model's int8 output (scale 1/256): the most the probabilities may differ by.
// Measured here: 0 (bit-identical) over 4 photos x 3 seeds; README.md records it.
const TOLERANCE = 1 / 256;
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // A synthetic webcam, granted without a prompt, for the webcam test.
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
];

// Besides the model's own rule (tfuq convert's default: interval Z = 1 and max probability >= 0.5),
// the two the rule setting makes: the paper's interval rule, and the combined rule with a floor of
// 0.95, which the top probabilities of the photos other than orange (0.89 to 0.98) straddle: its
// floor refuses 4 of the 12 runs.
const FLOOR = 0.95;
const RULES = {
  interval: { rule: "interval", conf_factor: 1 },
  floor: { rule: "all", rules: [{ rule: "interval", conf_factor: 1 }, { rule: "threshold", score: "max_probability", threshold: FLOOR }] },
};

interface PythonDecision {
  accept: boolean;
  predicted: number;
  failed_part: number | null;
}

interface Reference {
  photo: string;
  photo_size: [number, number];
  seed: string;
  input_base64: string;
  probabilities: number[][];
  /** The model's out-of-distribution scores by name (energy), from the same invoke; none unless
   * converted with `--scores energy`, as the demo models are not. */
  scores: Record<string, number>;
  /** The scores of the passes by name (max_probability, predictive_entropy, ...), as tfuq aggregates them. */
  pass_scores: Record<string, number>;
  decisions: Record<"model" | keyof typeof RULES, PythonDecision>;
}

/** e2e_reference.py's output: the model's own rule, and per photo and seed what Python says. */
interface References {
  decision: { rule: string; rules: { rule: string; score?: string; threshold?: number }[] };
  results: Reference[];
}

/** tools/e2e_reference.py on `model` with the photos, seeds and rules of this test. */
function pythonReferences(model: string): References {
  const out = join(mkdtempSync(join(tmpdir(), "tfuq-e2e-")), "reference.json");
  execFileSync(python(), [join(HERE, "tools", "e2e_reference.py"), model, out, ...PHOTOS.map((p) => join(DEMO, p)), "--seeds", ...SEEDS,
    ...Object.entries(RULES).flatMap(([name, rule]) => ["--rule", `${name}=${JSON.stringify(rule)}`])], {
    cwd: REPO,
    env: QUIET,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return JSON.parse(readFileSync(out, "utf8"));
}

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPED the browser test: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);

describe.skipIf(!haveChromium)("the page in headless Chromium against tfuq's Python runtime", () => {
  let server: ChildProcess;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let references: Reference[];
  let guarded: References;
  let profile: string;
  const measured: number[] = [];
  const invokeMs: number[] = [];

  beforeAll(async () => {
    execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: HERE, stdio: "inherit" });
    execFileSync(python(), [join(HERE, "tools", "make_demo_model.py"), "--out", DEMO], { cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"] });
    references = pythonReferences(join(DEMO, "model.tflite")).results;
    guarded = pythonReferences(join(DEMO, "guarded.tflite"));

    server = spawn(python(), ["-m", "tfuq.cli.main", "serve-demo", "--model", join(DEMO, "model.tflite"), "--port", "0", "--json"], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const firstLine = await new Promise<string>((done, fail) => {
      const lines = createInterface({ input: server.stdout! });
      lines.once("line", done);
      server.once("exit", (code) => fail(new Error(`tfuq serve-demo exited with ${code}`)));
    });
    url = JSON.parse(firstLine).url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    profile = mkdtempSync(join(tmpdir(), "tfuq-chromium-"));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 640 } });
    page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 60_000 });
    expect(await page.evaluate(() => (window as any).tfuq.error)).toBeNull();
  });

  afterAll(async () => {
    await context?.close();
    server?.kill();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (measured.length) {
      const sorted = [...invokeMs].sort((a, b) => a - b);
      console.log(
        `largest |page - Python| probability difference: ${Math.max(...measured)} over ${measured.length} runs; ` +
          `invoke ${sorted[Math.floor(sorted.length / 2)].toFixed(3)} ms median (${sorted[0].toFixed(3)} to ${sorted.at(-1)!.toFixed(3)})`,
      );
    }
  });

  /** Classify `photo` with `seed` under the rule setting as it stands; `rule`: the JSON the run must have used. */
  async function classify(photo: string, seed: string, rule: object | null = null, on: Page = page) {
    await on.fill("#seed", seed);
    await on.dispatchEvent("#seed", "change");
    await on.setInputFiles("#photo-file", photo.startsWith("/") ? photo : join(DEMO, photo));
    await on.waitForFunction(
      ([p, s, r]) => {
        const t = (window as any).tfuq;
        const ruleMatches = r === null || JSON.stringify(t.result?.rule) === r;
        return t.state === "error" || (t.state === "done" && t.result?.photo === p && t.result?.seed === s && ruleMatches);
      },
      [photo.split("/").pop(), seed, rule === null ? null : JSON.stringify(rule)],
      { timeout: 30_000 },
    );
    return on.evaluate(() => (window as any).tfuq);
  }

  /** The page's decision against Python's, and its list of parts (an all rule) marking the refusing one. */
  async function expectDecision(result: { accept: boolean; predicted: number; failedPart: number | null }, python: PythonDecision) {
    expect([result.accept, result.predicted, result.failedPart]).toEqual([python.accept, python.predicted, python.failed_part]);
    const parts = await page.$$eval("#parts li", (items) => items.map((item) => item.className));
    if (python.failed_part === null) {
      expect(await page.isHidden("#parts")).toBe(true);
    } else {
      expect(parts.length).toBe(2);
      expect(parts.indexOf("refused"), "the part marked as refusing").toBe(python.failed_part);
    }
  }

  for (const photo of PHOTOS) {
    for (const seed of SEEDS) {
      it(`${photo}, seed ${seed}: same input bytes, probabilities and decision as Python`, async () => {
        const reference = references.find((r) => r.photo === photo && r.seed === seed)!;
        const state = await classify(photo, seed);
        expect(state.error).toBeNull();
        const result = state.result;
        expect([state.ranIn, result.ranIn], "decoded, resized, masked, invoked and decided in the page's worker").toEqual(["worker", "worker"]);
        expect(result.photoSize, "decoded size, EXIF orientation applied").toEqual(reference.photo_size);
        expect(Buffer.from(result.input).toString("base64"), "model input (photo rule)").toBe(reference.input_base64);
        expect(result.probabilities.length).toBe(reference.probabilities.length);
        let largest = 0;
        result.probabilities.forEach((row: number[], p: number) =>
          row.forEach((value, c) => {
            largest = Math.max(largest, Math.abs(value - reference.probabilities[p][c]));
          }),
        );
        measured.push(largest);
        invokeMs.push(result.invokeMs);
        expect(largest).toBeLessThanOrEqual(TOLERANCE);
        await expectDecision(result, reference.decisions.model);
        const headline = await page.textContent("#headline");
        expect(headline).toBe(reference.decisions.model.accept ? result.label : "Not sure");
      });
    }
  }

  it(`the rule setting: the interval rule alone, and interval with a floor of ${FLOOR}, decide as Python`, async () => {
    expect(references.map((r) => r.decisions.floor.failed_part), "the floor refuses some photos here").toContain(1);
    for (const [choice, name] of [["interval", "interval"], ["all", "floor"]] as const) {
      await page.selectOption("#rule", choice);
      if (choice === "all") {
        expect(await page.inputValue("#floor"), "the floor starts at the model's").toBe("0.5");
        await page.fill("#floor", String(FLOOR));
        await page.dispatchEvent("#floor", "change");
      }
      for (const reference of references) {
        const state = await classify(reference.photo, reference.seed, RULES[name]);
        expect(state.error).toBeNull();
        expect(state.result.probabilities).toEqual(reference.probabilities);
        await expectDecision(state.result, reference.decisions[name]);
      }
    }
    await page.selectOption("#rule", "model");
  });

  it("with 2 XNNPACK threads (the threaded build, cross-origin isolated): the same probabilities", async () => {
    expect(await page.evaluate(() => crossOriginIsolated), "tfuq serve-demo's headers").toBe(true);
    expect(await page.$$eval("#threads option", (options) => options.length)).toBe(await page.evaluate(() => navigator.hardwareConcurrency));
    if ((await page.evaluate(() => navigator.hardwareConcurrency)) < 2) return; // one core: nothing more to choose
    await page.selectOption("#threads", "2");
    const reference = references.find((r) => r.photo === "orange.png" && r.seed === "12345")!;
    const state = await classify("orange.png", "12345");
    expect(state.result.threads).toBe(2);
    expect(state.result.probabilities).toEqual(reference.probabilities);
    await page.selectOption("#threads", "1");
  });

  /** Wait until the page has opened model file `name` (it then classifies the photo it shows). */
  async function modelLoaded(name: string) {
    await page.waitForFunction((n) => (window as any).tfuq.modelName === n && ["ready", "done", "error"].includes((window as any).tfuq.state), name, { timeout: 30_000 });
    expect(await page.evaluate(() => (window as any).tfuq.error)).toBeNull();
  }

  it("a model whose rule has a calibrated OOD guard on predictive entropy: decides as Python, and a refusal by the guard says so with the score", async () => {
    const [guard, ...others] = guarded.decision.rules;
    expect([guarded.decision.rule, guard.rule, guard.score, others.length], "tfuq calibrate's rule: the guard first").toEqual(["all", "ood", "predictive_entropy", 1]);
    const threshold = guard.threshold!.toFixed(3);
    await page.setInputFiles("#model-file", join(DEMO, "guarded.tflite"));
    await modelLoaded("guarded.tflite");
    expect(await page.textContent("#model-line")).toContain(`OOD guard: predictive entropy ≤ ${threshold} (calibrated) and max probability ≥`);
    let refusedByGuard = 0;
    for (const reference of guarded.results) {
      const state = await classify(reference.photo, reference.seed);
      expect(state.error).toBeNull();
      expect(state.result.rule).toEqual(guarded.decision);
      expect(state.result.probabilities).toEqual(reference.probabilities);
      expect(state.result.scores, "no model score: the guard reads one of the passes").toEqual({});
      expect(reference.scores).toEqual({});
      await expectDecision(state.result, reference.decisions.model);
      const byGuard = reference.decisions.model.failed_part === 0;
      expect(state.result.outOfDistribution).toBe(byGuard);
      // The guard's number is Python's predictive entropy of the same passes.
      const entropy = reference.pass_scores.predictive_entropy.toFixed(3);
      expect(await page.textContent("#scores")).toContain(`predictive entropy (nats)${entropy}`);
      const reason = await page.textContent("#reason");
      if (byGuard) {
        refusedByGuard++;
        expect(await page.textContent("#headline")).toBe("Not sure");
        expect(reason).toBe(`Looks unlike anything it was trained on: predictive entropy ${entropy} is above the OOD guard's ${threshold}.`);
        expect(await page.textContent("#parts li.refused")).toContain("OOD guard: predictive entropy ≤");
      } else if (reference.decisions.model.accept) {
        expect(reason).toContain(`Looks like what it was trained on: predictive entropy ${entropy} is at or below the OOD guard's ${threshold}.`);
      }
    }
    // orange lies between the model's red and yellow: its passes spread over both, entropy above the guard's.
    expect(guarded.results.filter((r) => r.decisions.model.failed_part === 0).map((r) => r.photo)).toContain("orange.png");
    expect(refusedByGuard).toBeGreaterThan(0);
    await page.setInputFiles("#model-file", join(DEMO, "model.tflite"));
    await modelLoaded("model.tflite");
  }, 90_000);

  it("a model naming photo rule v2: the page reduces the photos (s = 4 and 8 here) to Python's input bytes and probabilities", async () => {
    // The demo model with input.photo_rule set to v2 by tfuq's modelfile.update_config; the
    // reference's input is Pillow's Image.reduce(s), crop and resize (photo_vectors.py).
    const v2 = join(mkdtempSync(join(tmpdir(), "tfuq-rule2-")), "rule2.tflite");
    copyFileSync(join(DEMO, "model.tflite"), v2);
    const update = `
import sys
from tfuq.runtime import modelfile
spec = modelfile.read_config(sys.argv[1]).to_dict()["input"]
modelfile.update_config(sys.argv[1], {"input": {**spec, "photo_rule": {"name": "center-crop-bilinear", "version": 2}}})
`;
    execFileSync(python(), ["-c", update, v2], { cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"] });
    const reduced = pythonReferences(v2).results.filter((r) => r.seed === "0");
    expect(reduced.map((r) => r.photo)).toEqual(PHOTOS);
    await page.setInputFiles("#model-file", v2);
    await modelLoaded("rule2.tflite");
    for (const reference of reduced) {
      const state = await classify(reference.photo, reference.seed);
      expect(state.error).toBeNull();
      expect(state.result.photoRule).toBe(2);
      expect(await page.textContent("#footer")).toContain("center-crop-bilinear v2");
      expect(Buffer.from(state.result.input).toString("base64"), `${reference.photo}: model input (photo rule v2)`).toBe(reference.input_base64);
      expect(state.result.probabilities).toEqual(reference.probabilities);
      // The demo photos (80-480 pixels a side, the input 16x16) all take s = 4 or 8.
      expect(Math.min(...reference.photo_size), reference.photo).toBeGreaterThanOrEqual(4 * 16);
    }
    await page.setInputFiles("#model-file", join(DEMO, "model.tflite"));
    await modelLoaded("model.tflite");
  }, 90_000);

  it("a new seed draws the masks; the next photo with that seed keeps them, and the footer says so", async () => {
    await classify("red.png", "0");
    await page.fill("#seed", "4242");
    await page.dispatchEvent("#seed", "change"); // the shown photo again, under a new seed
    await page.waitForFunction(() => (window as any).tfuq.state === "done" && (window as any).tfuq.result?.seed === "4242", null, { timeout: 30_000 });
    const drawn = await page.evaluate(() => (window as any).tfuq.result);
    expect(drawn.masksCached).toBe(false);
    expect(await page.textContent("#footer")).not.toContain("kept from the last photo");
    const kept = (await classify("orange.png", "4242")).result;
    expect(kept.masksCached).toBe(true);
    expect(await page.textContent("#footer")).toContain(`masks ${kept.masksMs.toFixed(2)} ms (kept from the last photo)`);
  });

  /**
   * Classify `photo` on `on` while a timer on the page's thread ticks as often as it may (setTimeout 0);
   * the longest the page went without a tick, from before the photo was handed over to the result shown.
   */
  async function longestGap(on: Page, photo: string) {
    await on.evaluate(() => {
      const w = window as any;
      w.ticks = [];
      w.ticking = true;
      const tick = () => {
        w.ticks.push(performance.now());
        if (w.ticking) setTimeout(tick, 0);
      };
      tick();
    });
    const state = await classify(photo, "0", null, on);
    const ticks: number[] = await on.evaluate(() => {
      const w = window as any;
      w.ticking = false;
      return [...w.ticks, performance.now()];
    });
    return { state, gap: Math.max(...ticks.slice(1).map((t, i) => t - ticks[i])) };
  }

  it("the page stays responsive while the worker decodes and resizes a 24-megapixel photo; on its own thread (?worker=0) it blocks, with the same results", async () => {
    // A smooth 6000 x 4000 JPEG: decoding it to pixels and the photo rule take tens to hundreds of ms.
    const big = join(mkdtempSync(join(tmpdir(), "tfuq-big-")), "big.jpg");
    const make = `
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[0:4000, 0:6000]
rgb = np.stack([x * 255 // 5999, y * 255 // 3999, (x + y) % 256], axis=-1).astype(np.uint8)
Image.fromarray(rgb).save(sys.argv[1], quality=90)
`;
    execFileSync(python(), ["-c", make, big], { cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"] });

    const fallback = await context.newPage();
    try {
      await fallback.goto(`${url}?worker=0`);
      await fallback.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 60_000 });
      expect(await fallback.evaluate(() => (window as any).tfuq.error)).toBeNull();
      expect(await fallback.evaluate(() => (window as any).tfuq.ranIn)).toBe("main thread");
      // The page's own thread gives Python's results too (two photos; the worker's are checked above).
      for (const reference of references.filter((r) => r.seed === "12345" && ["orange.png", "rotated.jpg"].includes(r.photo))) {
        const state = await classify(reference.photo, reference.seed, null, fallback);
        expect(state.result.ranIn).toBe("main thread");
        expect(Buffer.from(state.result.input).toString("base64"), `${reference.photo} on the page's thread`).toBe(reference.input_base64);
        expect(state.result.probabilities).toEqual(reference.probabilities);
      }

      // Warm both (compiled, masks drawn), then time the big photo on each.
      await classify("red.png", "0");
      await classify("red.png", "0", null, fallback);
      const inWorker = await longestGap(page, big);
      const onPage = await longestGap(fallback, big);
      for (const { state } of [inWorker, onPage]) {
        expect(state.error).toBeNull();
        expect(state.result.photoSize).toEqual([4000, 6000]);
      }
      expect(inWorker.state.result.input, "the same input bytes from either thread").toEqual(onPage.state.result.input);
      expect(inWorker.state.result.probabilities).toEqual(onPage.state.result.probabilities);
      const work = (r: { decodeMs: number; photoMs: number; masksMs: number; invokeMs: number }) => r.decodeMs + r.photoMs + r.masksMs + r.invokeMs;
      console.log(
        `24 MP photo: the page's longest gap between timer ticks ${inWorker.gap.toFixed(1)} ms with the worker (its work ${work(inWorker.state.result).toFixed(1)} ms: ` +
          `decode ${inWorker.state.result.decodeMs.toFixed(1)}, photo rule ${inWorker.state.result.photoMs.toFixed(1)}); ` +
          `${onPage.gap.toFixed(1)} ms on the page's thread (decode ${onPage.state.result.decodeMs.toFixed(1)}, photo rule ${onPage.state.result.photoMs.toFixed(1)})`,
      );
      // On its own thread the page cannot tick while the photo rule runs; with the worker it ticks throughout.
      expect(onPage.gap).toBeGreaterThanOrEqual(onPage.state.result.photoMs);
      expect(work(inWorker.state.result), "enough work to see a block").toBeGreaterThan(50);
      expect(inWorker.gap).toBeLessThan(work(inWorker.state.result) / 2);
    } finally {
      await fallback.close();
    }
  }, 120_000);

  it("a damaged model file gets a one-line message, not a result", async () => {
    const bad = join(mkdtempSync(join(tmpdir(), "tfuq-bad-")), "bad.tflite");
    const data = readFileSync(join(DEMO, "model.tflite"));
    writeFileSync(bad, data.subarray(0, data.length - 30));
    await page.setInputFiles("#model-file", bad);
    await page.waitForFunction(() => (window as any).tfuq.state === "error", null, { timeout: 30_000 });
    expect(await page.textContent("#error")).toBe("bad.tflite carries no tfuq configuration (truncated, or not made by `tfuq convert`)");
  });

  it("classifies a webcam frame (Chromium's synthetic camera)", async () => {
    await page.click("#camera");
    await page.waitForSelector("#snap", { state: "visible", timeout: 30_000 });
    await page.waitForFunction(() => (document.getElementById("video") as HTMLVideoElement).videoWidth > 0, null, { timeout: 30_000 });
    await page.click("#snap");
    await page.waitForFunction(() => (window as any).tfuq.state === "done" && (window as any).tfuq.result?.photo === "webcam frame", null, { timeout: 30_000 });
    const state = await page.evaluate(() => (window as any).tfuq);
    expect(state.result.input.length).toBe(16 * 16 * 3);
    expect(state.result.probabilities.length).toBe(30);
    expect(await page.textContent("#headline")).toBe(state.result.headline);
  });

  it("keeps a screenshot of the result screen", async () => {
    await page.goto(url);
    await page.waitForFunction(() => (window as any).tfuq.state === "ready", null, { timeout: 60_000 });
    const target = process.env.TFUQ_UPDATE_SCREENSHOT ? join(HERE, "docs") : mkdtempSync(join(tmpdir(), "tfuq-shot-"));
    mkdirSync(target, { recursive: true });
    for (const [photo, name] of [["orange.png", "result_screen.png"], ["red.png", "result_screen_red.png"]]) {
      const state = await classify(photo, "0");
      expect(state.result.headline).toBe(photo === "orange.png" ? "Not sure" : "red");
      await page.screenshot({ path: join(target, name) });
      expect(existsSync(join(target, name))).toBe(true);
    }
  });
});
