// The page on a real network: tfuq's 1000-class ImageNet EfficientNet-Lite0, made in the test by
// `tfuq pretrained` and `tfuq convert` (tools/make_pretrained_model.py; 64x64 by default, so it takes
// about half a minute), served by `tfuq serve-demo` to headless Chromium. The page's decision on
// real photos must be Python's (`tfuq.load(model).run(image, seed)` and `abstain.decide`), and its
// header must summarise the 1000 classes instead of listing them.
//
// TFUQ_PRETRAINED_SIZE=224 runs the real Lite0 (5 MB) and prints the page's invoke, mask and
// photo-rule times; with TFUQ_UPDATE_SCREENSHOT=1 it also rewrites docs/result_screen_imagenet.png.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { type BrowserContext, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, python } from "./python";

const HERE = resolve(__dirname, "..");
const QUIET = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", ABSL_MIN_LOG_LEVEL: "3" };
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SIZE = Number(process.env.TFUQ_PRETRAINED_SIZE ?? "64");
const MODEL = join(HERE, ".cache", `pretrained-${SIZE}`);
const PHOTOS = ["chelsea.png", "coffee.png"];
const SEEDS = ["0", "7"];
// The int8 output's step (scale 1/256) bounds how far the page's probabilities may be from Python's.
const TOLERANCE = 1 / 256;
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

interface Reference {
  photo: string;
  seed: string;
  input_base64: string;
  probabilities: number[][];
  decisions: { model: { accept: boolean; predicted: number; failed_part: number | null } };
}

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPED the pretrained-model browser test: no Chromium at ${CHROMIUM}`);

describe.skipIf(!haveChromium)(`the page with the 1000-class ImageNet Lite0 at ${SIZE}x${SIZE}`, () => {
  let server: ChildProcess;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let references: Reference[];
  let profile: string;
  const times: { invoke: number[]; masks: number[]; photo: number[] } = { invoke: [], masks: [], photo: [] };

  beforeAll(async () => {
    execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: HERE, stdio: "inherit" });
    execFileSync(python(), [join(HERE, "tools", "make_pretrained_model.py"), "--size", String(SIZE), "--out", MODEL], { cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"] });
    const out = join(mkdtempSync(join(tmpdir(), "tfuq-pretrained-")), "reference.json");
    execFileSync(python(), [join(HERE, "tools", "e2e_reference.py"), join(MODEL, "model.tflite"), out, ...PHOTOS.map((p) => join(MODEL, p)), "--seeds", ...SEEDS], {
      cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"],
    });
    references = JSON.parse(readFileSync(out, "utf8")).results;
    server = spawn(python(), ["-m", "tfuq.cli.main", "serve-demo", "--model", join(MODEL, "model.tflite"), "--port", "0", "--json"], {
      cwd: REPO, stdio: ["ignore", "pipe", "inherit"],
    });
    url = JSON.parse(await new Promise<string>((done, fail) => {
      createInterface({ input: server.stdout! }).once("line", done);
      server.once("exit", (code) => fail(new Error(`tfuq serve-demo exited with ${code}`)));
    })).url;
    profile = mkdtempSync(join(tmpdir(), "tfuq-chromium-"));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 760 } });
    page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 120_000 });
    expect(await page.evaluate(() => (window as any).tfuq.error)).toBeNull();
  });

  afterAll(async () => {
    await context?.close();
    server?.kill();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (times.invoke.length) {
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)].toFixed(2);
      console.log(`Lite0 ${SIZE}x${SIZE}, 1000 classes, 30 passes, ${times.invoke.length} runs: invoke ${median(times.invoke)} ms, ` +
        `masks ${median(times.masks)} ms, photo rule ${median(times.photo)} ms (medians; invoke ${Math.min(...times.invoke).toFixed(2)} to ${Math.max(...times.invoke).toFixed(2)})`);
    }
  });

  async function classify(photo: string, seed: string) {
    await page.fill("#seed", seed);
    await page.dispatchEvent("#seed", "change");
    await page.setInputFiles("#photo-file", join(MODEL, photo));
    await page.waitForFunction(([p, s]) => {
      const t = (window as any).tfuq;
      return t.state === "error" || (t.state === "done" && t.result?.photo === p && t.result?.seed === s);
    }, [photo, seed], { timeout: 60_000 });
    return page.evaluate(() => (window as any).tfuq);
  }

  it("summarises the 1000 classes in the header, the whole list behind 'show all'", async () => {
    const line = await page.textContent("#model-line");
    expect(line).toContain("1000 classes: tench, goldfish, great white shark, tiger shark, hammerhead, …");
    expect(line).not.toContain("Tinca tinca");
    expect(await page.isVisible("#all-classes")).toBe(true);
    expect(await page.isVisible("#all-classes-list")).toBe(false);
    const header = await page.$eval("header", (element) => element.getBoundingClientRect().height);
    expect(header, "the header stays a few lines tall").toBeLessThan(200);
    await page.click("#all-classes summary");
    const all = await page.textContent("#all-classes-list");
    expect(all?.split(" · ").length).toBe(1000);
    expect(all).toContain("toilet tissue, toilet paper, bathroom tissue");
    await page.click("#all-classes summary");
  });

  for (const photo of PHOTOS) {
    for (const seed of SEEDS) {
      it(`${photo}, seed ${seed}: the same model input, probabilities and decision as Python`, async () => {
        const reference = references.find((r) => r.photo === photo && r.seed === seed)!;
        const state = await classify(photo, seed);
        expect(state.error).toBeNull();
        const result = state.result;
        expect(Buffer.from(result.input).toString("base64"), "model input (photo rule)").toBe(reference.input_base64);
        let largest = 0;
        result.probabilities.forEach((row: number[], p: number) => row.forEach((value, c) => {
          largest = Math.max(largest, Math.abs(value - reference.probabilities[p][c]));
        }));
        expect(largest).toBeLessThanOrEqual(TOLERANCE);
        const python = reference.decisions.model;
        expect([result.accept, result.predicted, result.failedPart]).toEqual([python.accept, python.predicted, python.failed_part]);
        // The top five with their intervals, under their short names (the synonyms on hover).
        const rows = await page.$$eval("#classes .cls", (items) => items.map((item) => [
          item.querySelector(".name")!.textContent, item.querySelector(".name")!.getAttribute("title"), item.querySelector(".numbers")!.textContent]));
        expect(rows.length).toBe(5);
        for (const [name, title, numbers] of rows) {
          expect(title!.startsWith(name!)).toBe(true);
          expect(name).not.toContain(",");
          expect(numbers).toMatch(/^\d+\.\d % \[-?\d+\.\d %, \d+\.\d %\]$/);
        }
        times.invoke.push(result.invokeMs);
        times.masks.push(result.masksMs);
        times.photo.push(result.photoMs);
      }, 60_000);
    }
  }

  it("keeps a screenshot of the page with the 1000-class model", async () => {
    const state = await classify("chelsea.png", "0");
    expect(state.error).toBeNull();
    const target = process.env.TFUQ_UPDATE_SCREENSHOT && SIZE === 224 ? join(HERE, "docs") : mkdtempSync(join(tmpdir(), "tfuq-shot-"));
    mkdirSync(target, { recursive: true });
    await page.screenshot({ path: join(target, "result_screen_imagenet.png"), fullPage: true });
    expect(existsSync(join(target, "result_screen_imagenet.png"))).toBe(true);
  }, 60_000);
});
