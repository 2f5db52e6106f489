/**
 * One invoke of a tfuq model on LiteRT.js (`@litertjs/core`): XNNPACK compiled to WebAssembly,
 * or WebGPU where the browser has it.
 *
 * tfuq models output int8 probabilities, a type the package's Tensor class does not map
 * (it knows float32, int32 and uint8), so this runs on the package's own lower layer,
 * `getGlobalLiteRt().liteRtWasm`, as its `loadAndCompile` does: tensor buffers are made from
 * the model's own tensor types and read back as bytes. Quantization is applied by the core
 * (`quantize`/`dequantize`) from the flatbuffer's parameters, exactly as tfuq's Python runtime.
 */

import { getGlobalLiteRt, isWebGPUSupported, loadLiteRt } from "@litertjs/core";
import { type ModelFile, type SignatureInfo, type TensorInfo, dequantize, quantize, readSignature } from "./core";

export type Accelerator = "wasm" | "webgpu";

let loaded: Promise<unknown> | null = null;

/** Load LiteRT.js's WebAssembly once; the threaded build when the page is cross-origin isolated. */
export function initLiteRt(wasmBase: string): Promise<unknown> {
  loaded ??= loadLiteRt(wasmBase, { threads: threadsAvailable() });
  return loaded;
}

/** Threads need SharedArrayBuffer, which needs a cross-origin-isolated page (tfuq serve-demo sends the headers). */
export function threadsAvailable(): boolean {
  return typeof crossOriginIsolated !== "undefined" && crossOriginIsolated && typeof SharedArrayBuffer !== "undefined";
}

export async function webGpuAvailable(): Promise<boolean> {
  try {
    return isWebGPUSupported() && (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

export interface RunResult {
  /** `(passes, classes)` float32 probabilities as the model's T rows. */
  probabilities: number[][];
  /** The interpreter call alone, all passes, in milliseconds. */
  invokeMs: number;
  /** The model's out-of-distribution scores by name (`scores` in `tfuq.json`), dequantized from
   * their `(1, 1)` outputs of the same invoke; computed over all of the model's passes. */
  scores: Record<string, number>;
}

// The lower layer's objects are not exported as types by the package; only what is used is described.
interface Deletable {
  delete(): void;
}
interface RankedTensorType extends Deletable {
  bytes(): number;
}
interface TensorBuffer extends Deletable {
  lock(mode: unknown): number;
  unlock(): void;
  packedSize(): number;
  isWebGpuMemory(): boolean;
}
interface CompiledModel extends Deletable {
  run(signature: number, inputs: TensorBuffer[]): TensorBuffer[] | Promise<TensorBuffer[]>;
  isFullyAccelerated(): boolean;
}
interface WasmModel extends Deletable {
  getSignature(index: number): { inputNames(): Vector<string>; outputNames(): Vector<string> } & Deletable;
  getInputTensorType(signature: number, index: number): RankedTensorType;
}
interface Vector<T> extends Deletable {
  size(): number;
  get(index: number): T;
}

function strings(vector: Vector<string>): string[] {
  const out = Array.from({ length: vector.size() }, (_, i) => vector.get(i));
  vector.delete();
  return out;
}

export class TfuqRunner {
  readonly signature: SignatureInfo;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly fullyAccelerated: boolean;
  private deleted = false;

  private constructor(
    readonly file: ModelFile,
    readonly accelerator: Accelerator,
    readonly threads: number,
    private readonly wasmModel: WasmModel,
    private readonly compiled: CompiledModel,
    private readonly modelPointer: number,
  ) {
    this.signature = readSignature(file.flatbuffer);
    const signature = wasmModel.getSignature(0);
    this.inputNames = strings(signature.inputNames());
    this.outputNames = strings(signature.outputNames());
    signature.delete();
    this.fullyAccelerated = compiled.isFullyAccelerated();
    this.check();
  }

  /** Compile `file` for `accelerator` with `threads` XNNPACK threads (1 without a threaded build). */
  static async create(file: ModelFile, accelerator: Accelerator, threads: number): Promise<TfuqRunner> {
    const liteRt = getGlobalLiteRt();
    const wasm = liteRt.liteRtWasm as unknown as {
      _malloc(size: number): number;
      _free(pointer: number): void;
      HEAPU8: Uint8Array;
      loadModel(environment: unknown, pointer: number, size: number): WasmModel;
      compileModel(environment: unknown, model: WasmModel, options: unknown): CompiledModel | Promise<CompiledModel>;
    };
    const environment = liteRt.getDefaultEnvironment();
    if (accelerator === "webgpu" && !environment.webGpuDevice) throw new Error("WebGPU was chosen but the browser gave no WebGPU device");
    const bytes = file.flatbuffer;
    const pointer = wasm._malloc(bytes.byteLength);
    wasm.HEAPU8.set(bytes, pointer);
    try {
      const model = wasm.loadModel(environment.liteRtEnvironment, pointer, bytes.byteLength);
      const compiled = await wasm.compileModel(environment.liteRtEnvironment, model, {
        environment,
        accelerator,
        cpuOptions: { numThreads: threads },
        gpuOptions: {},
        webNNOptions: {},
      });
      return new TfuqRunner(file, accelerator, threads, model, compiled, pointer);
    } catch (error) {
      wasm._free(pointer);
      throw error;
    }
  }

  /** Inputs and outputs against the configuration, as `tfuq/runtime/interpreter.py` checks them. */
  private check(): void {
    const config = this.file.config;
    const { inputs, outputs } = this.signature;
    const image = inputs[config.input.name];
    if (!image) throw new Error(`the model has no input named "${config.input.name}"`);
    const want = [1, config.input.height, config.input.width, config.input.channels];
    if (image.shape.join() !== want.join()) throw new Error(`image input is [${image.shape}], the configuration says [${want}]`);
    const expected = new Set([config.input.name, ...(config.mode === "masked" ? config.mcDropout.map((m) => m.input) : [])]);
    for (const spec of config.mode === "masked" ? config.mcDropout : []) {
      const got = inputs[spec.input]?.shape ?? [];
      if (got.join() !== spec.shape.join()) throw new Error(`mask input "${spec.input}" is [${got}], the configuration says [${spec.shape}]`);
    }
    const names = Object.keys(inputs).sort();
    if (names.join() !== [...expected].sort().join()) throw new Error(`inputs ${names} do not match the configuration ${[...expected].sort()}`);
    if (!outputs[config.outputName]) throw new Error(`the model has no output named "${config.outputName}"`);
    const classes = outputs[config.outputName].shape.at(-1) ?? 0;
    if (config.labels.length && config.labels.length !== classes) throw new Error(`${config.labels.length} labels for ${classes} classes`);
    for (const score of config.scores) {
      const shape = outputs[score.output]?.shape;
      if (!shape || shape.join() !== "1,1") throw new Error(`score ${score.name} needs a (1, 1) output named "${score.output}"`);
      if (!this.outputNames.includes(score.output)) throw new Error(`the runtime lists no output "${score.output}"`);
    }
  }

  get classes(): number {
    return this.signature.outputs[this.file.config.outputName].shape.at(-1) ?? 0;
  }

  /** One invoke: RGB bytes `(H, W, 3)` and the 0/1 masks by input name, to `(passes, classes)`. */
  async run(image: Uint8Array, masks: Record<string, Uint8Array>): Promise<RunResult> {
    if (this.deleted) throw new Error("this model was closed");
    const liteRt = getGlobalLiteRt();
    const wasm = liteRt.liteRtWasm as unknown as {
      HEAPU8: Uint8Array;
      LiteRtTensorBuffer: { createManaged(env: unknown, type: unknown, tensorType: RankedTensorType, size: number): TensorBuffer };
      LiteRtTensorBufferType: { HOST_MEMORY: unknown };
      LiteRtTensorBufferLockMode: { READ: unknown; WRITE: unknown };
    };
    const environment = liteRt.getDefaultEnvironment();
    const config = this.file.config;
    const feeds: Record<string, Uint8Array> = { [config.input.name]: quantize(image, this.info(config.input.name)) };
    for (const [name, mask] of Object.entries(masks)) feeds[name] = quantize(mask, this.info(name));
    const buffers: TensorBuffer[] = [];
    let outputs: TensorBuffer[] = [];
    try {
      this.inputNames.forEach((name, index) => {
        const bytes = feeds[name];
        if (!bytes) throw new Error(`no value for input "${name}"`);
        const type = this.wasmModel.getInputTensorType(0, index);
        const size = type.bytes();
        if (size !== bytes.length) {
          type.delete();
          throw new Error(`input "${name}" takes ${size} bytes, got ${bytes.length}`);
        }
        const buffer = wasm.LiteRtTensorBuffer.createManaged(environment.liteRtEnvironment, wasm.LiteRtTensorBufferType.HOST_MEMORY, type, size);
        type.delete();
        buffers.push(buffer);
        const pointer = buffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
        wasm.HEAPU8.set(bytes, pointer);
        buffer.unlock();
      });
      const start = performance.now();
      outputs = await this.compiled.run(0, buffers);
      const invokeMs = performance.now() - start;
      const read = (name: string): Float32Array => {
        const output = outputs[this.outputNames.indexOf(name)];
        if (output.isWebGpuMemory()) throw new Error("the output stayed in WebGPU memory; choose the wasm accelerator");
        const pointer = output.lock(wasm.LiteRtTensorBufferLockMode.READ);
        const raw = wasm.HEAPU8.slice(pointer, pointer + output.packedSize());
        output.unlock();
        return dequantize(raw, this.info(name, true));
      };
      const values = read(config.outputName);
      const scores = Object.fromEntries(config.scores.map((score) => [score.name, read(score.output)[0]]));
      const classes = this.classes;
      const passes = values.length / classes;
      const probabilities = Array.from({ length: passes }, (_, p) => Array.from(values.subarray(p * classes, (p + 1) * classes)));
      return { probabilities, invokeMs, scores };
    } finally {
      for (const buffer of buffers) buffer.delete();
      for (const output of outputs) output.delete();
    }
  }

  private info(name: string, output = false): TensorInfo {
    const info = (output ? this.signature.outputs : this.signature.inputs)[name];
    if (!info) throw new Error(`the model has no ${output ? "output" : "input"} named "${name}"`);
    return info;
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    this.compiled.delete();
    this.wasmModel.delete();
    (getGlobalLiteRt().liteRtWasm as unknown as { _free(p: number): void })._free(this.modelPointer);
  }
}
