// The page's own timings in headless Chromium over a fixed set of photos, as ratios to one
// deterministic invoke measured in the same run; and the photo rule against the browser's own
// scaling (canvas drawImage) on the same photos.
//
//   node bench/end_to_end.mjs --masked lite0.tflite --deterministic lite0_det.tflite \
//       --photos ../.bench_models/photos --threads 1 2 --rounds 8 [--photo-rule 2] [--main-thread] [--json out.json] [--no-build]
//
// --photo-rule N runs photo rule version N (1 or 2): the page uses the rule the model file names,
// so both files are copied to a temporary folder with `input.photo_rule` set to
// center-crop-bilinear vN (tfuq's modelfile.update_config); without it, the files' own rule.
// The page runs the work in its Web Worker; --main-thread opens it with ?worker=0 (the fallback:
// the same engine on the page's thread, as before the worker), for a comparison.
//
// The page is built (vite build) and served by `tfuq serve-demo` (the Python in TFUQ_PYTHON, else
// the repository's .venv, else python3); the photos are those `benchmarks/end_to_end.py photos`
// writes. Per thread count: the masked model, two warm-up photos, then `rounds` rounds over the
// photos with one seed (the masks kept from the second photo on), one round with a new seed per
// photo (the masks drawn), then the deterministic model over the same rounds. Medians.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = resolve(fileURLToPath(import.meta.url), "..", "..");
const REPO = resolve(HERE, "..");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"];

function python() {
  if (process.env.TFUQ_PYTHON) return process.env.TFUQ_PYTHON;
  const venv = join(REPO, ".venv", "bin", "python");
  try {
    readFileSync(venv);
    return venv;
  } catch {
    return "python3";
  }
}

function parse(argv) {
  const args = { threads: [1, 2], rounds: 8, build: true, json: null, photoRule: null, mainThread: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--masked") args.masked = resolve(argv[++i]);
    else if (flag === "--deterministic") args.deterministic = resolve(argv[++i]);
    else if (flag === "--photos") args.photos = resolve(argv[++i]);
    else if (flag === "--rounds") args.rounds = Number(argv[++i]);
    else if (flag === "--json") args.json = resolve(argv[++i]);
    else if (flag === "--photo-rule") {
      args.photoRule = Number(argv[++i]);
      if (![1, 2].includes(args.photoRule)) throw new Error(`--photo-rule must be 1 or 2, got ${argv[i]}`);
    }
    else if (flag === "--no-build") args.build = false;
    else if (flag === "--main-thread") args.mainThread = true;
    else if (flag === "--threads") {
      args.threads = [];
      while (argv[i + 1] && !argv[i + 1].startsWith("--")) args.threads.push(Number(argv[++i]));
    } else throw new Error(`unknown argument ${flag}`);
  }
  for (const need of ["masked", "deterministic", "photos"]) if (!args[need]) throw new Error(`--${need} is required`);
  return args;
}

/** A copy of model file `path` in `folder` whose tfuq.json names photo rule center-crop-bilinear v`version`. */
function withPhotoRule(path, version, folder) {
  const out = join(folder, basename(path));
  copyFileSync(path, out);
  const script = `
import sys
from tfuq.runtime import modelfile
path, version = sys.argv[1], int(sys.argv[2])
spec = modelfile.read_config(path).to_dict()["input"]
modelfile.update_config(path, {"input": {**spec, "photo_rule": {"name": "center-crop-bilinear", "version": version}}})
`;
  execFileSync(python(), ["-c", script, out, String(version)], { cwd: REPO, stdio: ["ignore", "inherit", "inherit"] });
  return out;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
};

async function main() {
  if (process.argv[2] === "--summarize") {
    // Print the table again from a saved --json, by the fastest run (or --median).
    const result = JSON.parse(readFileSync(process.argv[3], "utf8"));
    result.statistic = process.argv[4] === "--median" ? "median" : "fastest";
    summarize(result);
    return;
  }
  const args = parse(process.argv.slice(2));
  const copies = args.photoRule === null ? null : mkdtempSync(join(tmpdir(), "tfuq-bench-models-"));
  if (copies) {
    args.masked = withPhotoRule(args.masked, args.photoRule, copies);
    args.deterministic = withPhotoRule(args.deterministic, args.photoRule, copies);
  }
  const photos = readdirSync(args.photos).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(args.photos, f));
  if (args.build) execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: HERE, stdio: "inherit" });
  const server = spawn(python(), ["-m", "tfuq.cli.main", "serve-demo", "--model", args.masked, "--port", "0", "--json"], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = JSON.parse(await new Promise((done) => createInterface({ input: server.stdout }).once("line", done))).url;
  const profile = mkdtempSync(join(tmpdir(), "tfuq-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  const load = loadavg();
  const started = new Date();
  const result = {
    statistic: "fastest",
    date: started.toISOString().slice(0, 16),
    loadAverageAtStart: load,
    cpus: cpus().length,
    photoRule: args.photoRule === null ? "the model's" : `center-crop-bilinear v${args.photoRule}`,
    photos: photos.map((p) => basename(p)),
    runs: [],
  };
  try {
    const page = await context.newPage();
    console.error(`page at ${url}: loading the model`);
    await page.goto(args.mainThread ? `${url}?worker=0` : url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state ?? ""), null, { timeout: 120_000 });
    result.ranIn = await page.evaluate(() => window.tfuq.ranIn);

    /** Wait until the page is idle (ready, done or error) twice, half a second apart. */
    async function settle() {
      for (let idle = 0; idle < 2; ) {
        await page.waitForTimeout(500);
        const state = await page.evaluate(() => window.tfuq.state);
        if (state === "error") throw new Error(await page.evaluate(() => window.tfuq.error));
        idle = ["ready", "done"].includes(state) ? idle + 1 : 0;
      }
    }
    /** Wait for the run an action starts (its photo and seed); the page's timings for it. */
    async function run(action, photo, seed) {
      await page.evaluate(() => {
        window.__previous = window.tfuq.result;
      });
      await action();
      await page.waitForFunction(([photo, seed]) => {
        const t = window.tfuq;
        return t.state === "error" || (t.state === "done" && t.result !== window.__previous && t.result.photo === photo && t.result.seed === seed);
      }, [photo, seed], { timeout: 300_000 });
      const state = await page.evaluate(() => window.tfuq);
      if (state.error) throw new Error(state.error);
      const r = state.result;
      return { photo: r.photo, invokeMs: r.invokeMs, masksMs: r.masksMs, masksCached: r.masksCached, photoMs: r.photoMs, photoRule: r.photoRule, threads: r.threads, ranIn: r.ranIn };
    }
    let currentSeed = "0";
    const classify = (photo) => run(async () => {
      // The same file again would fire no change event: the input is emptied first.
      await page.evaluate(() => {
        document.getElementById("photo-file").value = "";
      });
      await page.setInputFiles("#photo-file", photo);
    }, basename(photo), currentSeed);
    const setSeed = (seed, photo) => {
      currentSeed = String(seed);
      return run(async () => {
        await page.fill("#seed", currentSeed);
        await page.dispatchEvent("#seed", "change");
      }, basename(photo), currentSeed);
    };
    async function openModel(path) {
      await page.setInputFiles("#model-file", path);
      await settle();
    }

    let seed = 1;
    for (const threads of args.threads) {
      const available = await page.$$eval("#threads option", (options) => options.length);
      if (threads > available) {
        console.error(`skipping ${threads} threads: the page offers ${available}`);
        continue;
      }
      console.error(`${threads} thread(s): compiling`);
      await page.selectOption("#threads", String(threads));
      await settle();
      const row = { threads, masked: [], newSeed: [], deterministic: [], first: null };
      await openModel(args.masked);
      row.first = await classify(photos[0]); // the first photo after compiling (cold)
      await classify(photos[1]);
      console.error(`${threads} thread(s): the masked model, ${args.rounds} rounds`);
      for (let r = 0; r < args.rounds; r++) for (const photo of photos) row.masked.push(await classify(photo));
      for (const photo of photos) {
        await classify(photo);
        row.newSeed.push(await setSeed(++seed, photo)); // the same photo again, masks drawn for the new seed
      }
      console.error(`${threads} thread(s): the deterministic model`);
      await openModel(args.deterministic);
      await classify(photos[0]);
      for (let r = 0; r < args.rounds; r++) for (const photo of photos) row.deterministic.push(await classify(photo));
      result.runs.push(row);
    }

    // The browser's own scaling of the same crop to 224 x 224, and its decode, on the page.
    console.error("the browser's own scaling");
    result.native = [];
    for (const photo of photos) {
      const base64 = readFileSync(photo).toString("base64");
      const times = await page.evaluate(async ({ base64, rounds }) => {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const blob = new Blob([bytes]);
        const out = { decode: [], drawImageLow: [], drawImageHigh: [], bitmapResize: [] };
        for (let r = 0; r < rounds + 1; r++) {
          let start = performance.now();
          const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
          const full = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", { willReadFrequently: true });
          full.drawImage(bitmap, 0, 0);
          full.getImageData(0, 0, bitmap.width, bitmap.height);
          const decode = performance.now() - start;
          const side = Math.min(bitmap.width, bitmap.height);
          const x0 = Math.floor((bitmap.width - side) / 2);
          const y0 = Math.floor((bitmap.height - side) / 2);
          const scaled = {};
          for (const quality of ["low", "high"]) {
            start = performance.now();
            const context = new OffscreenCanvas(224, 224).getContext("2d", { willReadFrequently: true });
            context.imageSmoothingQuality = quality;
            context.drawImage(bitmap, x0, y0, side, side, 0, 0, 224, 224);
            context.getImageData(0, 0, 224, 224);
            scaled[quality] = performance.now() - start;
          }
          start = performance.now();
          const small = await createImageBitmap(bitmap, x0, y0, side, side, { resizeWidth: 224, resizeHeight: 224, resizeQuality: "medium" });
          const context = new OffscreenCanvas(224, 224).getContext("2d", { willReadFrequently: true });
          context.drawImage(small, 0, 0);
          context.getImageData(0, 0, 224, 224);
          const resize = performance.now() - start;
          if (r > 0) {
            out.decode.push(decode);
            out.drawImageLow.push(scaled.low);
            out.drawImageHigh.push(scaled.high);
            out.bitmapResize.push(resize);
          }
          bitmap.close();
        }
        return out;
      }, { base64, rounds: args.rounds });
      result.native.push({ photo: basename(photo), ...times });
    }
  } finally {
    await context.close();
    server.kill();
    rmSync(profile, { recursive: true, force: true });
    if (copies) rmSync(copies, { recursive: true, force: true });
  }
  result.loadAverageAtEnd = loadavg();

  summarize(result);
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
}

/** The table: per thread count and photo, ratios to the deterministic invoke of the same run. */
function summarize(result) {
  // On a loaded machine the fastest of the runs is the closest to the work itself.
  const pick = result.statistic === "median" ? median : (values) => Math.min(...values);
  const pickNumber = (value) => (Array.isArray(value) ? pick(value) : value); // older files kept medians
  const lines = [
    "| threads | photo | deterministic invoke | MC invoke (all photos) | masks kept, 2nd photo on (all photos) | masks drawn, new seed (all photos) | photo rule | masks kept + photo rule | canvas drawImage to 224 (low / high quality) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  result.summary = [];
  for (const row of result.runs) {
    // The invokes and the mask draws do not depend on the photo: pooled over all photos.
    const invoke = pick(row.deterministic.map((r) => r.invokeMs));
    const mcInvoke = pick(row.masked.map((r) => r.invokeMs)) / invoke;
    const masksKept = pick(row.masked.map((r) => r.masksMs)) / invoke;
    const masksDrawn = pick(row.newSeed.map((r) => r.masksMs)) / invoke;
    for (const name of result.photos) {
      const masked = row.masked.filter((r) => basename(r.photo) === name);
      const native = result.native.find((n) => n.photo === name);
      const s = {
        threads: row.threads,
        photo: name,
        deterministicInvokeMs: invoke,
        mcInvoke,
        masksKept,
        masksKeptShare: masked.filter((r) => r.masksCached).length / masked.length,
        masksDrawn,
        photoRule: pick(masked.map((r) => r.photoMs)) / invoke,
        photoRuleMs: pick(masked.map((r) => r.photoMs)),
        drawImageLowMs: pickNumber(native.drawImageLow),
        drawImageHighMs: pickNumber(native.drawImageHigh),
        decodeMs: pickNumber(native.decode),
      };
      s.hostWork = s.masksKept + s.photoRule;
      result.summary.push(s);
      lines.push(
        `| ${s.threads} | ${name} | 1 (${invoke.toFixed(1)} ms) | ${s.mcInvoke.toFixed(3)}x | ${s.masksKept.toFixed(4)}x | ${s.masksDrawn.toFixed(3)}x ` +
          `| ${s.photoRule.toFixed(3)}x (${s.photoRuleMs.toFixed(2)} ms) | ${s.hostWork.toFixed(3)}x | ${s.drawImageLowMs.toFixed(1)} / ${s.drawImageHighMs.toFixed(1)} ms (rule ${(s.photoRuleMs / s.drawImageLowMs).toFixed(1)}x / ${(s.photoRuleMs / s.drawImageHighMs).toFixed(1)}x) |`,
      );
    }
    lines.push(`| ${row.threads} | first photo after compiling (${basename(row.first.photo)}) | | ${(row.first.invokeMs / invoke).toFixed(2)}x | masks ${(row.first.masksMs / invoke).toFixed(3)}x | | ${(row.first.photoMs / invoke).toFixed(3)}x | | |`);
  }
  const text = lines.join("\n");
  result.table = text;
  console.log(text);
  const used = [...new Set(result.runs.flatMap((row) => row.masked.map((r) => r.photoRule)))];
  console.log(`photo rule: ${result.photoRule ?? "the model's"} (the page used v${used.join(", v")}); the work ran in: ${result.ranIn ?? "not recorded (the page's thread before 5 December 2026, 23:30 UTC)"}`);
  console.log(`${result.date.replace("T", " ")} UTC, load average ${result.loadAverageAtStart[0].toFixed(2)} at start, ${result.loadAverageAtEnd[0].toFixed(2)} at end, ${result.cpus} CPUs; the ${result.statistic} of the runs`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
