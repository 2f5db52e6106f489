// The flatbuffer reader against an independent route: `tfuq inspect --json`, which asks the
// Python interpreter for every signature tensor's type, shape and quantization.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { readSignature, splitModelFile } from "../src/core";
import { REPO, python } from "./python";

const DEMO = join(resolve(__dirname, ".."), ".cache", "demo");
const QUIET = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", ABSL_MIN_LOG_LEVEL: "3" };

let inspected: { inputs: Record<string, Tensor>; outputs: Record<string, Tensor> };
interface Tensor {
  shape: number[];
  dtype: string;
  scale: number;
  zero_point: number;
}

beforeAll(() => {
  execFileSync(python(), [join(__dirname, "..", "tools", "make_demo_model.py"), "--out", DEMO], { cwd: REPO, env: QUIET, stdio: ["ignore", "ignore", "inherit"] });
  const text = execFileSync(python(), ["-m", "tfuq.cli.main", "inspect", join(DEMO, "model.tflite"), "--json"], { cwd: REPO, env: QUIET, encoding: "utf8" });
  inspected = JSON.parse(text);
});

it("reads each input's and output's type, shape and quantization as the interpreter reports them", () => {
  const file = splitModelFile(new Uint8Array(readFileSync(join(DEMO, "model.tflite"))), "model.tflite");
  const signature = readSignature(file.flatbuffer);
  for (const side of ["inputs", "outputs"] as const) {
    expect(Object.keys(signature[side]).sort()).toEqual(Object.keys(inspected[side]).sort());
    for (const [name, want] of Object.entries(inspected[side])) {
      const got = signature[side][name];
      expect([got.type, got.shape, got.scale, got.zeroPoint], name).toEqual([want.dtype, want.shape, want.scale, want.zero_point]);
    }
  }
});
