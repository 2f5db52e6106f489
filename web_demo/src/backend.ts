/**
 * How the page reaches the engine (`engine.ts`): in a module Web Worker (`worker.ts`), so a
 * photo's decode, photo rule, masks, invoke and decision never block the page; or, where the
 * browser cannot start that worker (no module workers, or no 2D OffscreenCanvas in workers:
 * the worker's start fails), on the page's own thread, with the same engine and results.
 */

import type { ClassifyRequest, EngineResult, OpenedModel, PhotoInfo, PhotoSource, RanIn } from "./engine";
import type { Accelerator } from "./runner";

export type Request = { id: number } & (
  | { type: "start"; wasmBase: string }
  | { type: "open"; bytes: Uint8Array; name: string; accelerator: Accelerator; threads: number }
  | { type: "compile"; accelerator: Accelerator; threads: number }
  | { type: "photo"; source: PhotoSource }
  | { type: "classify"; request: ClassifyRequest }
);

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export interface Backend {
  readonly ranIn: RanIn;
  start(wasmBase: string): Promise<void>;
  open(bytes: Uint8Array, name: string, accelerator: Accelerator, threads: number): Promise<OpenedModel>;
  compile(accelerator: Accelerator, threads: number): Promise<void>;
  setPhoto(source: PhotoSource): Promise<PhotoInfo>;
  classify(request: ClassifyRequest): Promise<EngineResult | null>;
}

type Body<T> = T extends unknown ? Omit<T, "id"> : never;

class WorkerBackend implements Backend {
  readonly ranIn = "worker" as const;
  private next = 0;
  private failed: Error | null = null;
  private readonly waiting = new Map<number, { done: (value: unknown) => void; fail: (error: Error) => void }>();

  constructor(private readonly worker: Worker) {
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.ok) waiter?.done(reply.value);
      else waiter?.fail(new Error(reply.error));
    };
    // A worker that fails to load or crashes: every pending request gets the message.
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new Error(`the page's worker failed: ${event.message || "it could not start"}`);
      this.failed = error; // and so does every later request: reload the page
      for (const waiter of this.waiting.values()) waiter.fail(error);
      this.waiting.clear();
    };
  }

  private call<T>(body: Body<Request>, transfer: Transferable[] = []): Promise<T> {
    const id = this.next++;
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((done, fail) => {
      this.waiting.set(id, { done: done as (value: unknown) => void, fail });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }

  start(wasmBase: string) {
    return this.call<void>({ type: "start", wasmBase });
  }
  open(bytes: Uint8Array, name: string, accelerator: Accelerator, threads: number) {
    // The page keeps no copy: the bytes move to the worker when they are a whole buffer.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    return this.call<OpenedModel>({ type: "open", bytes, name, accelerator, threads }, whole ? [bytes.buffer as ArrayBuffer] : []);
  }
  compile(accelerator: Accelerator, threads: number) {
    return this.call<void>({ type: "compile", accelerator, threads });
  }
  setPhoto(source: PhotoSource) {
    return this.call<PhotoInfo>({ type: "photo", source }, source.kind === "bitmap" ? [source.bitmap] : []);
  }
  classify(request: ClassifyRequest) {
    return this.call<EngineResult | null>({ type: "classify", request });
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/**
 * The engine in a worker, started (LiteRT.js loaded from `wasmBase`); on the page's thread when
 * `inWorker` is false or the worker cannot start.
 */
export async function startBackend(wasmBase: string, inWorker: boolean): Promise<Backend> {
  if (inWorker && typeof Worker !== "undefined") {
    let backend: WorkerBackend | null = null;
    try {
      backend = new WorkerBackend(new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }));
      await backend.start(wasmBase);
      return backend;
    } catch (error) {
      backend?.terminate();
      console.warn(`running on the page's thread: ${(error as Error).message}`);
    }
  }
  const { Engine } = await import("./engine");
  const engine = new Engine("main thread");
  await engine.start(wasmBase);
  return {
    ranIn: engine.ranIn,
    start: (base) => engine.start(base),
    open: (...args) => engine.open(...args),
    compile: (...args) => engine.compile(...args),
    setPhoto: (source) => engine.setPhoto(source),
    classify: (request) => engine.classify(request),
  };
}
