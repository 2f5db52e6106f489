/**
 * The configuration a tfuq model file carries, read as `tfuq/runtime/modelfile.py` reads it.
 *
 * A tfuq `.tflite` is a TFLite flatbuffer followed by a zip archive holding `tfuq.json`, with
 * entry offsets counted from the start of the file. fflate extracts the entry; the flatbuffer is
 * everything before the archive's first local header (found in the central directory).
 */

import { unzipSync } from "fflate";
import { type Rule, SCORE_NAME, checkRule, ruleScores } from "./decision";
import { KEEP_BITS, type MaskLayer, SCHEME, SCHEME_VERSION } from "./masks";
import { PHOTO_RULE_NAME, PHOTO_RULE_VERSIONS, type PhotoRuleVersion } from "./photo";

export const CONFIG_NAME = "tfuq.json";
export const FORMAT = "tfuq-model";
export const FORMAT_VERSION = 1;

export class ModelFileError extends Error {}

export interface InputSpec {
  name: string;
  height: number;
  width: number;
  channels: number;
}

export interface MaskSpec {
  layer: string;
  input: string;
  /** `(passes, *features)` */
  shape: number[];
  rate: number;
}

/** An out-of-distribution score the model outputs beside its probabilities: `name` (what a rule's
 * `ood` part reads) from the `(1, 1)` output `output` (`score_<name>`). Larger = more like the training data. */
export interface ModelScore {
  name: string;
  output: string;
}

/** At most this many scores, as `tfuq/runtime/modelfile.py` allows. */
export const MAX_SCORES = 8;

export interface ModelConfig {
  mode: "masked" | "deterministic" | "in-graph";
  passes: number;
  labels: string[];
  input: InputSpec;
  /**
   * The version of `center-crop-bilinear` that `input.photo_rule` names. A file without one
   * (converted before the rule existed; tfuq's Python runtime stretches its photos) gets 1.
   */
  photoRule: PhotoRuleVersion;
  outputName: string;
  /** The out-of-distribution scores the model outputs; none in files converted before they existed. */
  scores: ModelScore[];
  mcDropout: MaskSpec[];
  decision: Rule;
  /** Everything the file carries, for display. */
  json: Record<string, unknown>;
}

export interface ModelFile {
  flatbuffer: Uint8Array;
  config: ModelConfig;
}

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;

/** Offset of the first local header the central directory names (where the zip starts). */
function archiveStart(data: Uint8Array, name: string): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // The end-of-central-directory record is 22 bytes plus a comment of at most 65535.
  const lowest = Math.max(0, data.length - 22 - 0xffff);
  for (let at = data.length - 22; at >= lowest; at--) {
    if (view.getUint32(at, true) !== EOCD_SIGNATURE) continue;
    const entries = view.getUint16(at + 10, true);
    let cursor = view.getUint32(at + 16, true);
    let start = Number.POSITIVE_INFINITY;
    for (let i = 0; i < entries; i++) {
      if (cursor + 46 > data.length || view.getUint32(cursor, true) !== CENTRAL_SIGNATURE) break;
      start = Math.min(start, view.getUint32(cursor + 42, true));
      cursor += 46 + view.getUint16(cursor + 28, true) + view.getUint16(cursor + 30, true) + view.getUint16(cursor + 32, true);
    }
    if (Number.isFinite(start)) return start;
    break;
  }
  throw new ModelFileError(`${name} carries no tfuq configuration (truncated, or not made by \`tfuq convert\`)`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field<T>(json: Record<string, unknown>, key: string, kind: "string" | "number" | "object" | "array", where: string): T {
  const value = json[key];
  const ok =
    kind === "array" ? Array.isArray(value) : kind === "object" ? isObject(value) : typeof value === kind;
  if (!ok) throw new ModelFileError(`${where}.${key} must be ${kind === "array" || kind === "object" ? "an" : "a"} ${kind}, got ${JSON.stringify(value)}`);
  return value as T;
}

function positiveInt(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ModelFileError(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function readPhotoRule(rule: unknown): PhotoRuleVersion {
  if (rule === null) return 1;
  if (!isObject(rule)) throw new ModelFileError(`input.photo_rule must be an object, got ${JSON.stringify(rule)}`);
  const version = rule.version as PhotoRuleVersion;
  if (rule.name !== PHOTO_RULE_NAME || !PHOTO_RULE_VERSIONS.includes(version)) {
    const known = PHOTO_RULE_VERSIONS.map((v) => `v${v}`).join(", ");
    throw new ModelFileError(`unknown photo rule ${JSON.stringify(rule.name)} v${JSON.stringify(rule.version)}; this page knows ${PHOTO_RULE_NAME} ${known}`);
  }
  return version;
}

/** Validate a parsed `tfuq.json`; `name` (the file) prefixes every message. */
export function parseConfig(json: unknown, name: string): ModelConfig {
  try {
    if (!isObject(json) || json.format !== FORMAT) {
      throw new ModelFileError(`${CONFIG_NAME} is not a tfuq model configuration (format is not "${FORMAT}")`);
    }
    const version = typeof json.format_version === "number" ? json.format_version : 0;
    if (version > FORMAT_VERSION) {
      throw new ModelFileError(`configuration version ${version} is newer than this page understands (${FORMAT_VERSION})`);
    }
    const mode = (json.mode ?? "masked") as ModelConfig["mode"];
    if (!["masked", "deterministic", "in-graph"].includes(mode)) throw new ModelFileError(`unknown mode ${JSON.stringify(mode)}`);
    if (mode === "in-graph") throw new ModelFileError("an in-graph model draws its own masks; this page runs masked or deterministic models");
    const passes = positiveInt(json.passes, "passes");
    const labels = (json.labels ?? []) as unknown[];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) throw new ModelFileError("labels must be a list of strings");
    const input = field<Record<string, unknown>>(json, "input", "object", "tfuq.json");
    const spec: InputSpec = {
      name: field<string>(input, "name", "string", "input"),
      height: positiveInt(input.height, "input.height"),
      width: positiveInt(input.width, "input.width"),
      channels: positiveInt(input.channels, "input.channels"),
    };
    if (spec.channels !== 3 || input.pixel_format !== "RGB" || input.dtype !== "uint8") {
      throw new ModelFileError(`input takes ${spec.channels}-channel ${String(input.pixel_format)} ${String(input.dtype)}; this page feeds 3-channel RGB uint8`);
    }
    const photoRule = readPhotoRule(input.photo_rule ?? null);
    const output = field<Record<string, unknown>>(json, "output", "object", "tfuq.json");
    const mcDropout: MaskSpec[] = [];
    if (mode === "masked") {
      const layers = field<unknown[]>(json, "mc_dropout", "array", "tfuq.json");
      if (layers.length === 0) throw new ModelFileError("mc_dropout lists no layer");
      layers.forEach((layer, i) => {
        if (!isObject(layer)) throw new ModelFileError(`mc_dropout[${i}] must be an object`);
        const rate = layer.rate;
        if (typeof rate !== "number" || !(rate > 0 && rate < 1)) throw new ModelFileError(`mc_dropout[${i}].rate must be in (0, 1), got ${JSON.stringify(rate)}`);
        const shape = field<unknown[]>(layer, "shape", "array", `mc_dropout[${i}]`);
        if (shape.length < 2 || shape[0] !== passes || shape.some((d) => typeof d !== "number" || !Number.isInteger(d) || d < 1)) {
          throw new ModelFileError(`mc_dropout[${i}].shape is ${JSON.stringify(shape)}; a masked model's mask is (passes=${passes}, *features)`);
        }
        mcDropout.push({
          layer: String(layer.layer ?? `layer_${i}`),
          input: field<string>(layer, "input", "string", `mc_dropout[${i}]`),
          shape: shape as number[],
          rate,
        });
      });
      const scheme = field<Record<string, unknown>>(json, "seed_scheme", "object", "tfuq.json");
      if (scheme.name !== SCHEME || scheme.version !== SCHEME_VERSION || scheme.keep_bits !== KEEP_BITS) {
        throw new ModelFileError(
          `seed scheme ${String(scheme.name)} v${String(scheme.version)} (${String(scheme.keep_bits)} bits) is not the one this page implements (${SCHEME} v${SCHEME_VERSION}, ${KEEP_BITS} bits)`,
        );
      }
    }
    const outputName = field<string>(output, "name", "string", "output");
    const scoresJson = json.scores ?? [];
    if (!Array.isArray(scoresJson)) throw new ModelFileError(`tfuq.json.scores must be an array, got ${JSON.stringify(scoresJson)}`);
    if (scoresJson.length > MAX_SCORES) throw new ModelFileError(`scores: at most ${MAX_SCORES} out-of-distribution scores, got ${scoresJson.length}`);
    const taken = new Set([spec.name, outputName, ...mcDropout.map((m) => m.input)]);
    const scores: ModelScore[] = scoresJson.map((score, i) => {
      if (!isObject(score)) throw new ModelFileError(`scores[${i}] must be an object`);
      const scoreName = field<string>(score, "name", "string", `scores[${i}]`);
      if (!SCORE_NAME.test(scoreName)) throw new ModelFileError(`scores[${i}].name must be an identifier, got ${JSON.stringify(scoreName.slice(0, 60))}`);
      const scoreOutput = field<string>(score, "output", "string", `scores[${i}]`);
      if (taken.has(scoreOutput)) throw new ModelFileError(`scores[${i}].output "${scoreOutput}" names an input or another output`);
      taken.add(scoreOutput);
      return { name: scoreName, output: scoreOutput };
    });
    if (new Set(scores.map((s) => s.name)).size !== scores.length) throw new ModelFileError("scores must have distinct names");
    let decision: Rule;
    try {
      decision = checkRule(json.decision ?? { rule: "interval", conf_factor: 1.0 });
    } catch (error) {
      throw new ModelFileError(`decision: ${(error as Error).message}`);
    }
    const missing = ruleScores(decision).find((read) => !scores.some((s) => s.name === read));
    if (missing !== undefined) throw new ModelFileError(`decision: the OOD guard reads score "${missing}", which the model does not output`);
    return {
      mode,
      passes,
      labels: labels as string[],
      input: spec,
      photoRule,
      outputName,
      scores,
      mcDropout,
      decision,
      json,
    };
  } catch (error) {
    if (error instanceof ModelFileError) throw new ModelFileError(`${name}: ${error.message}`);
    throw error;
  }
}

/** Split a tfuq model file into its flatbuffer and its checked configuration. */
export function splitModelFile(data: Uint8Array, name = "model"): ModelFile {
  if (data.length < 8 || String.fromCharCode(...data.subarray(4, 8)) !== "TFL3") {
    throw new ModelFileError(`${name} is not a TFLite flatbuffer (no TFL3 identifier)`);
  }
  const start = archiveStart(data, name);
  let entry: Uint8Array | undefined;
  try {
    entry = unzipSync(data, { filter: (file) => file.name === CONFIG_NAME })[CONFIG_NAME];
  } catch {
    entry = undefined;
  }
  if (entry === undefined) {
    throw new ModelFileError(`${name} carries no tfuq configuration (truncated, or not made by \`tfuq convert\`)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(entry));
  } catch {
    throw new ModelFileError(`${name}: tfuq configuration is not valid JSON`);
  }
  return { flatbuffer: data.subarray(0, start), config: parseConfig(json, name) };
}

/** The mask layers of a masked model, for `masksFor`: one pass's shape and the rate. */
export function maskLayers(config: ModelConfig): MaskLayer[] {
  return config.mcDropout.map((spec) => ({ shape: spec.shape.slice(1), rate: spec.rate }));
}

/** A class's name: its label, or `class_i` as `tfuq convert` names unlabelled classes. */
export function label(config: ModelConfig, index: number): string {
  return config.labels[index] ?? `class_${index}`;
}

/**
 * A class name as a person reads it on a small screen: the first of comma-separated synonyms
 * (ImageNet's "tench, Tinca tinca" is "tench"), the whole label when that part is empty.
 */
export function shortLabel(config: ModelConfig, index: number): string {
  const full = label(config, index);
  return full.split(",")[0].trim() || full;
}

/** The header's line about the classes, and whether it left some out ("show all" then lists them). */
export interface ClassSummary {
  text: string;
  truncated: boolean;
}

/**
 * "4 classes: red, orange, yellow, green" for few classes; for many, the first `shown` and an
 * ellipsis: "1000 classes: tench, goldfish, great white shark, tiger shark, hammerhead, …".
 * A 1000-class model's full list (4,400 pixels of text with the synonyms) stays behind "show all".
 */
export function classSummary(config: ModelConfig, classes: number, shown = 5): ClassSummary {
  if (!Number.isInteger(shown) || shown < 1) throw new RangeError(`shown must be a positive integer, got ${shown}`);
  const count = Math.min(classes, shown);
  const names = Array.from({ length: count }, (_, i) => shortLabel(config, i));
  const truncated = classes > count;
  const noun = classes === 1 ? "class" : "classes";
  return { text: `${classes} ${noun}: ${names.join(", ")}${truncated ? ", …" : ""}`, truncated };
}
