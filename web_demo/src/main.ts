/**
 * The page: load a tfuq model (the bundled one, `?model=URL`, or a dropped/picked file), turn a
 * photo or webcam frame into the model input with the photo rule, draw the masks for the seed,
 * run the one invoke, aggregate, decide, and show why. All numbers come from `./core`, computed
 * by `engine.ts` in a Web Worker (`worker.ts`; on this thread only where the browser cannot
 * start one, or with `?worker=0`); this file only wires the DOM to it.
 *
 * For tests and scripts the page publishes its state on `window.tfuq` and `body[data-state]`
 * (`loading`, `ready`, `running`, `done`, `error`), and where the work runs (`window.tfuq.ranIn`).
 */

import { type Backend, startBackend } from "./backend";
import {
  DEFAULT_FLOOR,
  type Decision,
  PHOTO_RULE_NAME,
  type PartRule,
  type Rule,
  SCORES,
  type Score,
  type ThresholdRule,
  checkRule,
  classSummary,
  isPassScore,
  label,
  oodHigherIsIn,
  ruleConfFactor,
  shortLabel,
} from "./core";
import type { EngineResult, OpenedModel, PhotoInfo, PhotoSource, RanIn } from "./engine";
import { type Accelerator, threadsAvailable, webGpuAvailable } from "./runner";

/** What the page keeps of a run (`window.tfuq.result`, read by the tests): the engine's result
 * with the input as plain numbers and the decision's parts spread out. */
type PageResult = Omit<EngineResult, "input" | "decision"> & {
  input: number[];
  accept: boolean;
  predicted: number;
  /** For an `all` rule: the index of the first part that refused, -1 when all accepted; else null. */
  failedPart: number | null;
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const page = {
  state: "loading" as string,
  error: null as string | null,
  modelName: "",
  ranIn: null as RanIn | null,
  result: null as PageResult | null,
};
(window as unknown as { tfuq: typeof page }).tfuq = page;

let engine: Backend | null = null;
let file: OpenedModel | null = null;
let photo: PhotoInfo | null = null;
// Opening a model, compiling and classifying run one at a time, in order: a run never sees a
// model that is being replaced or freed.
let queue: Promise<unknown> = Promise.resolve();
function enqueue<T>(task: () => Promise<T>): Promise<T> {
  const next = queue.then(task, task);
  queue = next.catch(() => undefined);
  return next;
}

function setState(state: string): void {
  page.state = state;
  document.body.dataset.state = state;
}

function showError(message: string): void {
  page.error = message;
  $("error").textContent = message;
  $("error").hidden = false;
  setState("error");
}

function clearError(): void {
  page.error = null;
  $("error").hidden = true;
}

// -- model ---------------------------------------------------------------------------------
async function openModel(bytes: Uint8Array, name: string): Promise<void> {
  if (!engine) throw new Error("the page has not started");
  const accelerator = $<HTMLSelectElement>("accelerator").value as Accelerator;
  const threads = Number($<HTMLSelectElement>("threads").value) || 1;
  // A file that fails its checks leaves the open model as it was, in the engine as here.
  file = await engine.open(bytes, name, accelerator, threads);
  page.modelName = name;
  const passes = $<HTMLInputElement>("passes");
  passes.max = String(file.config.passes);
  passes.value = String(file.config.passes);
  $<HTMLSelectElement>("rule").value = "model";
  // The option stays short (the settings column is narrow); the model line and its tooltip say the rule.
  $("rule-model").title = `the model's own: ${ruleText(file.config.decision)}`;
  syncParameter();
  const c = file.config;
  const classes = file.classes;
  const summary = classSummary(c, classes);
  $("model-line").textContent = `${name}: ${c.passes} passes, input ${c.input.height}×${c.input.width}, ${summary.text}; rule ${ruleText(c.decision)}.`;
  // Many classes: the whole list only on request (with a 1000-class model it is pages long).
  const all = $<HTMLDetailsElement>("all-classes");
  all.hidden = !summary.truncated;
  all.open = false;
  $("all-classes-list").textContent = summary.truncated ? Array.from({ length: classes }, (_, i) => label(c, i)).join(" · ") : "";
}

async function compile(): Promise<void> {
  if (!file || !engine) return;
  const accelerator = $<HTMLSelectElement>("accelerator").value as Accelerator;
  const threads = Number($<HTMLSelectElement>("threads").value) || 1;
  await engine.compile(accelerator, threads);
}

function ruleText(rule: Rule): string {
  if (rule.rule === "all") return `${rule.rules.map(ruleText).join(" and ")}${rule.calibration ? " (calibrated)" : ""}`;
  if (rule.rule === "interval") return `interval, mean ± ${rule.conf_factor}·std`;
  if (rule.rule === "ood") {
    // A score of the passes in words and on its own side ("predictive entropy ≤"); a model score as named.
    const name = isPassScore(rule.score) ? rule.score.replace(/_/g, " ") : rule.score;
    return `OOD guard: ${name} ${oodHigherIsIn(rule) ? "≥" : "≤"} ${rule.threshold.toFixed(3)}${rule.calibration ? " (calibrated)" : ""}`;
  }
  const sign = rule.score === "max_probability" ? "≥" : "≤";
  return `${rule.score.replace(/_/g, " ")} ${sign} ${rule.threshold}${rule.calibration ? " (calibrated)" : ""}`;
}

// -- settings ------------------------------------------------------------------------------
const DEFAULT_THRESHOLDS: Record<Score, number> = { max_probability: 0.9, predictive_entropy: 0.5, mutual_information: 0.1, variation_ratio: 0.2 };

/** The rule's parts: an `all` rule's, else the rule itself. */
const partsOf = (rule: Rule | undefined): PartRule[] => (rule ? (rule.rule === "all" ? rule.rules : [rule]) : []);

function syncParameter(): void {
  const choice = $<HTMLSelectElement>("rule").value;
  const parameter = $<HTMLInputElement>("parameter");
  const floor = $<HTMLInputElement>("floor");
  const own = file?.config.decision;
  const ownParts = partsOf(own);
  const ownInterval = ownParts.find((part) => part.rule === "interval");
  const ownThreshold = (score: Score) => ownParts.find((part): part is ThresholdRule => part.rule === "threshold" && part.score === score);
  // The carried rule's numbers are shown, greyed; the others start from them where it has them.
  parameter.disabled = floor.disabled = choice === "model";
  let showFloor = choice === "all";
  if (choice === "model") {
    const only = ownParts.length === 1 && ownParts[0].rule === "threshold" ? ownParts[0] : null;
    $("parameter-label").textContent = only ? "t" : "Z";
    parameter.value = String(only ? only.threshold : own ? ruleConfFactor(own) : 1);
    const ownFloor = own?.rule === "all" ? ownThreshold("max_probability") : undefined;
    showFloor = ownFloor !== undefined;
    floor.value = String(ownFloor?.threshold ?? DEFAULT_FLOOR);
  } else if (choice === "interval" || choice === "all") {
    $("parameter-label").textContent = "Z";
    parameter.value = String(ownInterval?.conf_factor ?? 1);
    floor.value = String(ownThreshold("max_probability")?.threshold ?? DEFAULT_FLOOR);
  } else {
    $("parameter-label").textContent = "t";
    const score = choice as Score;
    parameter.value = String(ownThreshold(score)?.threshold ?? DEFAULT_THRESHOLDS[score]);
  }
  $("floor-label").hidden = floor.hidden = !showFloor;
}

function currentRule(): Rule {
  const choice = $<HTMLSelectElement>("rule").value;
  if (!file) throw new Error("no model loaded");
  if (choice === "model") return file.config.decision;
  const value = Number($<HTMLInputElement>("parameter").value);
  if (!Number.isFinite(value)) throw new Error("the rule's parameter must be a number");
  if (choice === "interval" || choice === "all") {
    if (value < 0) throw new Error("Z must be non-negative");
    const interval = { rule: "interval", conf_factor: value } as const;
    if (choice === "interval") return interval;
    const floor = Number($<HTMLInputElement>("floor").value);
    if (!Number.isFinite(floor)) throw new Error("the floor must be a number");
    return checkRule({ rule: "all", rules: [interval, { rule: "threshold", score: "max_probability", threshold: floor }] });
  }
  if (!SCORES.includes(choice as Score)) throw new Error(`unknown rule ${choice}`);
  return { rule: "threshold", score: choice as Score, threshold: value };
}

// -- photos --------------------------------------------------------------------------------
/** Hand a photo to the engine, which decodes it to pixels (in the worker) and keeps it for the runs. */
function setPhoto(source: PhotoSource): Promise<void> {
  return enqueue(async () => {
    if (!engine) throw new Error("the page has not started");
    photo = await engine.setPhoto(source);
  });
}

// -- running -------------------------------------------------------------------------------
function classify(): Promise<void> {
  return enqueue(classifyNow);
}

async function classifyNow(): Promise<void> {
  // What this run uses, fixed now: a new photo or model arriving meanwhile queues another run.
  if (!file || !engine || !photo) return;
  clearError();
  setState("running");
  try {
    const rule = currentRule();
    const done = await engine.classify({ seed: $<HTMLInputElement>("seed").value, passes: Number($<HTMLInputElement>("passes").value), rule });
    if (!done) {
      setState("ready");
      return;
    }
    const { decision, input, ...rest } = done;
    page.result = {
      ...rest,
      input: Array.from(input),
      accept: decision.accept,
      predicted: decision.predicted,
      failedPart: decision.failedPart,
    };
    render(input, decision, rule, page.result);
    setState("done");
  } catch (error) {
    showError((error as Error).message);
  }
}

// -- drawing -------------------------------------------------------------------------------
const fmt = (x: number) => x.toFixed(3);
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

function render(input: Uint8Array, decision: Decision, rule: Rule, result: PageResult): void {
  if (!file) return;
  const config = file.config;
  const canvas = $<HTMLCanvasElement>("crop");
  canvas.width = config.input.width;
  canvas.height = config.input.height;
  const pixels = new ImageData(config.input.width, config.input.height);
  for (let i = 0; i < config.input.width * config.input.height; i++) {
    pixels.data.set([input[i * 3], input[i * 3 + 1], input[i * 3 + 2], 255], i * 4);
  }
  canvas.getContext("2d")?.putImageData(pixels, 0, 0);

  const headline = $("headline");
  headline.textContent = result.headline;
  headline.classList.toggle("unsure", !decision.accept);
  $("reason").textContent = result.reason;
  // An all rule: each part's verdict, the refusing one marked.
  const parts = $("parts");
  parts.hidden = rule.rule !== "all";
  parts.replaceChildren(
    ...partsOf(rule.rule === "all" ? rule : undefined).map((part, i) => {
      const item = document.createElement("li");
      const verdict = decision.parts?.[i].accept ? "accepts" : "refuses";
      item.textContent = `${ruleText(part)}: ${verdict}`;
      item.className = i === decision.failedPart ? "refused" : verdict;
      return item;
    }),
  );

  const summary = decision.aggregate;
  const z = summary.confFactor; // the rule's Z: its own, an all rule's first interval part's, else 1
  $("interval-hint").textContent = `top ${Math.min(5, summary.mean.length)} by mean; bar = mean, whisker = mean ± ${z}·std`;
  const order = summary.mean.map((_, i) => i).sort((a, b) => summary.mean[b] - summary.mean[a] || a - b).slice(0, 5);
  const clamp = (x: number) => Math.min(100, Math.max(0, x * 100));
  $("classes").replaceChildren(
    ...order.map((c) => {
      const row = document.createElement("div");
      row.className = c === decision.predicted ? "cls top" : "cls";
      const lower = summary.lower[c];
      const upper = summary.upper[c];
      row.innerHTML = `<span class="name"></span><div class="track"><div class="bar" style="width:${clamp(summary.mean[c])}%"></div><div class="whisker" style="left:${clamp(lower)}%;width:${clamp(upper) - clamp(lower)}%"></div></div><span class="numbers">${pct(summary.mean[c])} [${pct(lower)}, ${pct(upper)}]</span>`;
      const title = row.querySelector(".name") as HTMLElement;
      title.textContent = shortLabel(config, c);
      title.title = label(config, c); // the synonyms, on hover
      return row;
    }),
  );

  const scores: [string, number][] = [
    ["max probability", summary.max_probability],
    ["predictive entropy (nats)", summary.predictive_entropy],
    ["mutual information (nats)", summary.mutual_information],
    ["expected entropy (nats)", summary.expected_entropy],
    ["variation ratio", summary.variation_ratio],
    // The model's own out-of-distribution scores (larger = more like its training data), all passes.
    ...Object.entries(result.scores).map(([name, value]): [string, number] => [`${name} (model score)`, value]),
  ];
  $("scores").replaceChildren(
    ...scores.map(([name, value]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td>${name}</td><td>${fmt(value)}</td>`;
      return tr;
    }),
  );
  const threads = result.threads === 1 ? "1 thread" : `${result.threads} threads`;
  $("footer").textContent =
    `${result.passes} of ${config.passes} passes · seed ${result.seed} · rule ${ruleText(rule)} · invoke ${result.invokeMs.toFixed(2)} ms ` +
    `(${result.accelerator}, ${threads}, all passes) · masks ${result.masksMs.toFixed(2)} ms${result.masksCached ? " (kept from the last photo)" : ""} · photo rule ${result.photoMs.toFixed(2)} ms ` +
    `(${PHOTO_RULE_NAME} v${config.photoRule}, ${result.photoSize[1]}×${result.photoSize[0]} → ${config.input.height}×${config.input.width})`;
  $("result").hidden = false;
}

// -- wiring --------------------------------------------------------------------------------
async function takeFile(blob: File): Promise<void> {
  try {
    clearError();
    if (blob.name.toLowerCase().endsWith(".tflite")) {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      await enqueue(async () => {
        setState("loading");
        await openModel(bytes, blob.name);
        setState("ready");
      });
    } else {
      await setPhoto({ kind: "file", blob, name: blob.name });
    }
    await classify();
  } catch (error) {
    showError((error as Error).message);
  }
}

async function startCamera(): Promise<void> {
  const video = $<HTMLVideoElement>("video");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    await video.play();
    video.hidden = false;
    $("snap").hidden = false;
  } catch (error) {
    showError(`no webcam: ${(error as Error).message}`);
  }
}

async function snap(): Promise<void> {
  const video = $<HTMLVideoElement>("video");
  if (!video.videoWidth) return;
  try {
    // The frame as it is now; the worker draws it 1:1 and reads its pixels.
    const bitmap = await createImageBitmap(video);
    await setPhoto({ kind: "bitmap", bitmap, name: "webcam frame" });
    await classify();
  } catch (error) {
    showError((error as Error).message);
  }
}

async function setUpAccelerators(): Promise<void> {
  const threads = $<HTMLSelectElement>("threads");
  const most = threadsAvailable() ? Math.max(1, navigator.hardwareConcurrency || 1) : 1;
  threads.replaceChildren(
    ...Array.from({ length: most }, (_, i) => {
      const option = document.createElement("option");
      option.value = option.textContent = String(i + 1);
      return option;
    }),
  );
  threads.disabled = most === 1;
  threads.title = threadsAvailable() ? "" : "threads need a cross-origin-isolated page (tfuq serve-demo sends the headers)";
  const gpu = $<HTMLSelectElement>("accelerator").querySelector('option[value="webgpu"]') as HTMLOptionElement;
  gpu.disabled = !(await webGpuAvailable());
  if (gpu.disabled) gpu.textContent = "WebGPU (not available in this browser)";
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  if (params.has("seed")) $<HTMLInputElement>("seed").value = params.get("seed") as string;
  await setUpAccelerators();
  engine = await startBackend(new URL("litert-wasm/", location.href).href, params.get("worker") !== "0");
  page.ranIn = engine.ranIn;
  const modelUrl = new URL(params.get("model") ?? "model.tflite", location.href);
  try {
    const response = await fetch(modelUrl);
    if (!response.ok) throw new Error(`no model at ${modelUrl.pathname} (HTTP ${response.status}); open one with "Open a model"`);
    await openModel(new Uint8Array(await response.arrayBuffer()), decodeURIComponent(modelUrl.pathname.split("/").pop() || "model.tflite"));
    setState("ready");
  } catch (error) {
    showError((error as Error).message);
  }

  $<HTMLInputElement>("photo-file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void takeFile(f);
  });
  $<HTMLInputElement>("model-file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void takeFile(f);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files?.[0];
    if (f) void takeFile(f);
  });
  $("camera").addEventListener("click", () => void startCamera());
  $("snap").addEventListener("click", () => void snap());
  for (const id of ["seed", "passes", "parameter", "floor"]) $(id).addEventListener("change", () => void classify());
  $("rule").addEventListener("change", () => {
    syncParameter();
    void classify();
  });
  for (const id of ["accelerator", "threads"]) {
    $(id).addEventListener("change", async () => {
      try {
        await enqueue(compile);
        await classify();
      } catch (error) {
        showError((error as Error).message);
      }
    });
  }
}

void main().catch((error) => showError(`the page could not start: ${(error as Error).message}`));
