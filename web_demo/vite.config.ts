import { cpSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig } from "vite";

// LiteRT.js loads its WebAssembly at run time from a URL: copy the package's files into
// public/ (git-ignored) so the dev server and the build serve them beside the page.
const wasmSource = resolve(import.meta.dirname, "node_modules/@litertjs/core/wasm");
const wasmTarget = resolve(import.meta.dirname, "public/litert-wasm");
mkdirSync(wasmTarget, { recursive: true });
cpSync(wasmSource, wasmTarget, { recursive: true });

// Cross-origin isolation lets LiteRT.js use its threaded build (SharedArrayBuffer).
const isolation = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

export default defineConfig({
  base: "./",
  server: { headers: isolation, host: "127.0.0.1" },
  preview: { headers: isolation, host: "127.0.0.1" },
  build: { target: "es2022" },
  // The page's work runs in a module worker (src/worker.ts), in the build as in `npm run dev`.
  worker: { format: "es" },
});
