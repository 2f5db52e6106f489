/**
 * The page's per-photo work in a module Web Worker (`engine.ts`): the model, the decode to
 * pixels, the photo rule, the masks, the invoke, aggregation and the decision. The page posts
 * requests (`backend.ts`) and draws the answers; its thread never runs them.
 *
 * LiteRT.js 2.5 loads its Emscripten glue with `importScripts` when that exists, else with a
 * `<script>` element (`@litertjs/wasm-utils`' `runScript`). A module worker has `importScripts`
 * but it throws ("Module scripts don't support importScripts()") and has no `document`, so the
 * glue is fetched and evaluated as a classic script here instead. In a worker the glue also
 * takes the worker's own URL as its script's (`self.location.href`), so its `.wasm` and the
 * script its pthread workers start are named explicitly (`Module.locateFile`,
 * `Module.mainScriptUrlOrBlob`), as Emscripten provides.
 */

import { Engine } from "./engine";
import type { Reply, Request } from "./backend";

// The parts of a dedicated worker's global scope used here (tsconfig's lib is the page's, DOM).
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: Reply, transfer: Transferable[]): void;
  importScripts(...urls: string[]): void;
  Module?: Record<string, unknown>;
};
const engine = new Engine("worker");

function isModuleWorker(): boolean {
  try {
    scope.importScripts(); // no URLs: nothing to load in a classic worker; a module worker throws
    return false;
  } catch {
    return true;
  }
}

/** Before `loadLiteRt`: where the glue's files are, and a classic-script loader for a module worker. */
function prepareLiteRt(wasmBase: string): void {
  const module: Record<string, unknown> = { locateFile: (path: string) => new URL(path, wasmBase).href };
  scope.Module = module;
  if (!isModuleWorker()) return;
  scope.importScripts = (...urls: string[]) => {
    for (const url of urls) {
      // Synchronous, as importScripts is (the loader reads the glue's global right after); a
      // worker may block, the page does not wait on it.
      const request = new XMLHttpRequest();
      request.open("GET", url, false);
      request.send();
      if (request.status !== 200) throw new Error(`could not load ${url} (HTTP ${request.status})`);
      // The glue's pthread workers run this same script (classic workers, where it loads as it is).
      module.mainScriptUrlOrBlob = url;
      // Indirect eval: a classic script in the global scope (its `var ModuleFactory` a global).
      (0, eval)(`${request.responseText}\n//# sourceURL=${url}`);
    }
  };
}

async function handle(request: Request): Promise<{ value: unknown; transfer: Transferable[] }> {
  switch (request.type) {
    case "start":
      // The photo is decoded here: without a 2D OffscreenCanvas in workers the page runs it all itself.
      if (typeof OffscreenCanvas === "undefined" || !new OffscreenCanvas(1, 1).getContext("2d")) throw new Error("this browser gives workers no 2D OffscreenCanvas");
      prepareLiteRt(request.wasmBase);
      await engine.start(request.wasmBase);
      return { value: null, transfer: [] };
    case "open":
      return { value: await engine.open(request.bytes, request.name, request.accelerator, request.threads), transfer: [] };
    case "compile":
      await engine.compile(request.accelerator, request.threads);
      return { value: null, transfer: [] };
    case "photo":
      return { value: await engine.setPhoto(request.source), transfer: [] };
    case "classify": {
      const result = await engine.classify(request.request);
      return { value: result, transfer: result ? [result.input.buffer] : [] };
    }
  }
}

// One request at a time, in the order they came: a run never sees a model being replaced.
let queue: Promise<unknown> = Promise.resolve();
scope.onmessage = (event: MessageEvent<Request>) => {
  const request = event.data;
  queue = queue.then(async () => {
    let reply: Reply;
    let transfer: Transferable[] = [];
    try {
      const done = await handle(request);
      reply = { id: request.id, ok: true, value: done.value };
      transfer = done.transfer;
    } catch (error) {
      reply = { id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    scope.postMessage(reply, transfer);
  });
};
