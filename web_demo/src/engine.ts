/**
 * The per-photo work of the page, with no DOM: open a model file and compile it on LiteRT.js,
 * decode a photo to pixels, apply the photo rule, draw (or keep) the masks, run the one invoke,
 * aggregate and decide. `worker.ts` runs it in a Web Worker so the page never blocks; the page
 * runs it on its own thread only where the browser gives no module worker (`main.ts`).
 *
 * Everything it returns is plain data (structured-cloneable): the page only draws it.
 */

import {
  type Decision,
  MaskCache,
  type ModelConfig,
  type ModelFile,
  type Rule,
  checkSeed,
  decide,
  explain,
  maskLayers,
  photoToInput,
  refusedAsOutOfDistribution,
  shortLabel,
  splitModelFile,
} from "./core";
import { type Accelerator, TfuqRunner, initLiteRt } from "./runner";

/** Where the work ran: a dedicated worker, or the page's own thread (the fallback). */
export type RanIn = "worker" | "main thread";

export interface OpenedModel {
  name: string;
  config: ModelConfig;
  /** The classes the model's output has. */
  classes: number;
}

export interface PhotoInfo {
  name: string;
  width: number;
  height: number;
  /** Decoding to pixels: `createImageBitmap`, drawn 1:1, `getImageData`. */
  decodeMs: number;
}

export interface ClassifyRequest {
  /** The run seed as typed (checked here, `checkSeed`). */
  seed: string;
  /** The first `passes` of the model's rows. */
  passes: number;
  rule: Rule;
}

export interface EngineResult {
  photo: string;
  /** `[height, width]` of the decoded photo, after EXIF orientation. */
  photoSize: [number, number];
  seed: string;
  passes: number;
  rule: Rule;
  /** The model input, RGB bytes `(H, W, 3)`. */
  input: Uint8Array;
  /** `(passes, classes)`: the first `passes` rows. */
  probabilities: number[][];
  decision: Decision;
  /** The model's out-of-distribution scores by name (`scores` in `tfuq.json`), from the same invoke. */
  scores: Record<string, number>;
  /** True when the OOD guard refused: the photo looks unlike the training data. */
  outOfDistribution: boolean;
  label: string;
  headline: string;
  reason: string;
  invokeMs: number;
  masksMs: number;
  /** The masks were the last run's (same seed and model): drawn once, kept. */
  masksCached: boolean;
  photoMs: number;
  /** Decoding the photo to pixels (when it arrived; a new seed on the same photo does not decode again). */
  decodeMs: number;
  /** The version of `center-crop-bilinear` the model names, which made `input`. */
  photoRule: number;
  accelerator: Accelerator;
  threads: number;
  /** Where the decode, photo rule, masks, invoke and decision ran: "worker", or "main thread" (the fallback). */
  ranIn: RanIn;
}

interface Photo {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  name: string;
  decodeMs: number;
}

/** A photo as the page hands it over: a file's bytes (decoded here), or a webcam frame already taken. */
export type PhotoSource = { kind: "file"; blob: Blob; name: string } | { kind: "bitmap"; bitmap: ImageBitmap; name: string };

export class Engine {
  private model: OpenedModel | null = null;
  private file: ModelFile | null = null;
  private runner: TfuqRunner | null = null;
  private photo: Photo | null = null;
  private readonly maskCache = new MaskCache();

  constructor(readonly ranIn: RanIn) {}

  /** Load LiteRT.js's WebAssembly from `wasmBase` (the threaded build on a cross-origin-isolated page). */
  async start(wasmBase: string): Promise<void> {
    await initLiteRt(wasmBase);
  }

  /** Read and check model file `bytes`, then compile it; the previous model is freed. */
  async open(bytes: Uint8Array, name: string, accelerator: Accelerator, threads: number): Promise<OpenedModel> {
    const next = splitModelFile(bytes, name);
    if (next.config.mode !== "masked" && next.config.mode !== "deterministic") throw new Error(`${name}: mode ${next.config.mode} is not supported here`);
    this.model = null;
    this.file = next;
    await this.compile(accelerator, threads);
    this.model = { name, config: next.config, classes: (this.runner as TfuqRunner | null)?.classes ?? next.config.labels.length };
    return this.model;
  }

  /** Compile the open model again for `accelerator` and `threads`. */
  async compile(accelerator: Accelerator, threads: number): Promise<void> {
    if (!this.file) return;
    this.runner?.delete();
    this.runner = null;
    this.runner = await TfuqRunner.create(this.file, accelerator, threads);
  }

  /** Decode a photo to pixels and keep it for the runs that follow. */
  async setPhoto(source: PhotoSource): Promise<PhotoInfo> {
    const start = performance.now();
    let bitmap: ImageBitmap;
    if (source.kind === "file") {
      // EXIF orientation applied, no colour management and no premultiplication: the decoded
      // pixels that Pillow's Image.open gives for the same file.
      bitmap = await createImageBitmap(source.blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    } else {
      bitmap = source.bitmap;
    }
    const { width, height } = bitmap;
    // Drawn 1:1 (no scaling by the canvas); the resize is the photo rule's, in the core.
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (!context) throw new Error("this browser gives no 2D canvas");
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    bitmap.close();
    this.photo = { rgba, width, height, name: source.name, decodeMs: performance.now() - start };
    return { name: source.name, width, height, decodeMs: this.photo.decodeMs };
  }

  /** One run on the kept photo; null when there is no model or no photo yet. */
  async classify(request: ClassifyRequest): Promise<EngineResult | null> {
    const current = this.photo;
    const runner = this.runner;
    if (!this.model || !runner || !current) return null;
    const config = this.model.config;
    const seed = checkSeed(request.seed);
    const passesWanted = request.passes;
    if (!Number.isInteger(passesWanted) || passesWanted < 1 || passesWanted > config.passes) {
      throw new Error(`passes must be an integer from 1 to the model's ${config.passes}`);
    }
    const rule = request.rule;

    let start = performance.now();
    const input = photoToInput(current.rgba, current.width, current.height, config.input.height, config.input.width, undefined, config.photoRule);
    const photoMs = performance.now() - start;

    start = performance.now();
    const feeds: Record<string, Uint8Array> = {};
    let masksCached = false;
    if (config.mode === "masked") {
      const drawn = this.maskCache.get(seed, config.passes, maskLayers(config));
      masksCached = drawn.cached;
      config.mcDropout.forEach((spec, i) => {
        feeds[spec.input] = drawn.masks[i];
      });
    }
    const masksMs = performance.now() - start;

    const { probabilities: rows, invokeMs, scores } = await runner.run(input, feeds);
    // A deterministic model gives one row: every pass is that row, as in tfuq's Python runtime.
    const all = rows.length === 1 ? Array.from({ length: config.passes }, () => rows[0]) : rows;
    // The pass seeds are a counter-based stream: the first k rows are what a k-pass run gives.
    const probabilities = all.slice(0, passesWanted);
    const decision = decide(probabilities, rule, scores);
    const name = (i: number) => shortLabel(config, i);
    return {
      photo: current.name,
      photoSize: [current.height, current.width],
      seed: seed.toString(),
      passes: passesWanted,
      rule,
      input,
      probabilities,
      decision,
      scores,
      outOfDistribution: refusedAsOutOfDistribution(decision, rule),
      label: name(decision.predicted),
      headline: decision.accept ? name(decision.predicted) : "Not sure",
      reason: explain(decision, rule, name),
      invokeMs,
      masksMs,
      masksCached,
      photoMs,
      decodeMs: current.decodeMs,
      photoRule: config.photoRule,
      accelerator: runner.accelerator,
      threads: runner.threads,
      ranIn: this.ranIn,
    };
  }
}
