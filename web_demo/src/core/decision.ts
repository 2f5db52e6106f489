/**
 * Predict or abstain, as `tfuq/runtime/abstain.py` decides (and `tests/vectors/decisions.json` checks):
 *
 * - `{"rule": "interval", "conf_factor": Z}`: accept when the lower end of the predicted class's
 *   interval `mean ± Z·std` is strictly above the upper end of every other class's (one class
 *   always accepts).
 * - `{"rule": "threshold", "score": S, "threshold": t}`: accept when `max_probability >= t`,
 *   or when `predictive_entropy`, `mutual_information` or `variation_ratio` is `<= t`.
 * - `{"rule": "ood", "score": S, "threshold": t}`: the out-of-distribution guard. S names a score
 *   the model outputs beside its probabilities (`scores` in `tfuq.json`, e.g. `energy`, larger =
 *   more like the training data); accept when the image's score is `>= t` (NaN refuses).
 * - `{"rule": "all", "rules": [part, ...]}`: accept only when every part (1 to 8 interval,
 *   threshold or ood rules, no nesting) accepts; `failedPart` is the index of the first part that
 *   refuses, -1 when all accept. The aggregate is made with the first interval part's Z (else 1);
 *   each interval part compares its own bounds. `tfuq convert`'s default is `interval (Z = 1)`
 *   and `max_probability >= 0.5`.
 *
 * Other keys of a rule (a calibrated rule's `calibration` record) are kept and ignored.
 */

import { type Aggregate, SCORES, type Score, aggregate } from "./aggregate";

export interface IntervalRule {
  rule: "interval";
  conf_factor: number;
  [extra: string]: unknown;
}
export interface ThresholdRule {
  rule: "threshold";
  score: Score;
  threshold: number;
  calibration?: Record<string, unknown>;
  [extra: string]: unknown;
}
/** The out-of-distribution guard: accept when the model's score `score` is `>= threshold`. */
export interface OodRule {
  rule: "ood";
  score: string;
  threshold: number;
  calibration?: Record<string, unknown>;
  [extra: string]: unknown;
}
/** A rule that can be a part of an `all` rule. */
export type PartRule = IntervalRule | ThresholdRule | OodRule;
export interface AllRule {
  rule: "all";
  rules: PartRule[];
  calibration?: Record<string, unknown>;
  [extra: string]: unknown;
}
export type Rule = PartRule | AllRule;

export const MAX_PARTS = 8;
/** The seed paper's rule alone (`tfuq predict --rule interval`). */
export const INTERVAL_RULE: IntervalRule = { rule: "interval", conf_factor: 1.0 };
/** The default floor on `max_probability`: the top class holds at least half of the mass. */
export const DEFAULT_FLOOR = 0.5;
/** What `tfuq convert` writes: the interval rule and a floor on the top probability. */
export const DEFAULT_RULE: AllRule = {
  rule: "all",
  rules: [
    { rule: "interval", conf_factor: 1.0 },
    { rule: "threshold", score: "max_probability", threshold: DEFAULT_FLOOR },
  ],
};

/** True when a larger score means a more confident prediction. */
export const HIGHER_IS_CONFIDENT: Record<Score, boolean> = {
  max_probability: true,
  predictive_entropy: false,
  mutual_information: false,
  variation_ratio: false,
};

export class RuleError extends Error {}

function finiteNumber(rule: Record<string, unknown>, key: string): number {
  if (!(key in rule)) throw new RuleError(`${String(rule.rule)} rule needs "${key}": ${JSON.stringify(rule)}`);
  const value = rule[key];
  if (typeof value !== "number") throw new RuleError(`${key} must be a number, got ${JSON.stringify(value)}`);
  if (!Number.isFinite(value)) throw new RuleError(`${key} must be finite, got ${value}`);
  return value;
}

/** Validate a rule as a model file carries it; throws RuleError naming the problem. */
export function checkRule(rule: unknown): Rule {
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw new RuleError(`a decision rule is an object, got ${JSON.stringify(rule)}`);
  }
  const r = rule as Record<string, unknown>;
  if (r.rule === "all") {
    const parts = r.rules;
    if (!Array.isArray(parts)) throw new RuleError(`all rule needs "rules", a list of rules, got ${JSON.stringify(parts)}`);
    if (parts.length < 1 || parts.length > MAX_PARTS) throw new RuleError(`all rule needs 1 to ${MAX_PARTS} rules, got ${parts.length}`);
    const checked = parts.map((part, index) => {
      const kind = typeof part === "object" && part !== null && !Array.isArray(part) ? (part as Record<string, unknown>).rule : undefined;
      if (kind !== undefined && kind !== "interval" && kind !== "threshold" && kind !== "ood") {
        throw new RuleError(`all rule part ${index}: ${JSON.stringify(kind)} cannot be a part; choose one of interval, threshold, ood (no nesting)`);
      }
      try {
        return checkRule(part) as PartRule;
      } catch (error) {
        throw new RuleError(`all rule part ${index}: ${(error as Error).message}`);
      }
    });
    return { ...r, rule: "all", rules: checked };
  }
  if (r.rule === "interval") {
    const confFactor = finiteNumber(r, "conf_factor");
    if (confFactor < 0) throw new RuleError(`conf_factor must be non-negative, got ${confFactor}`);
    return { ...r, rule: "interval", conf_factor: confFactor };
  }
  if (r.rule === "threshold") {
    if (!SCORES.includes(r.score as Score)) {
      throw new RuleError(`threshold rule score must be one of ${SCORES.join(", ")}, got ${JSON.stringify(r.score)}`);
    }
    return { ...r, rule: "threshold", score: r.score as Score, threshold: finiteNumber(r, "threshold") };
  }
  if (r.rule === "ood") {
    if (typeof r.score !== "string" || !SCORE_NAME.test(r.score)) {
      throw new RuleError(`ood rule score must be the name of a model score, got ${JSON.stringify(r.score)?.slice(0, 60)}`);
    }
    return { ...r, rule: "ood", score: r.score, threshold: finiteNumber(r, "threshold") };
  }
  throw new RuleError(`unknown decision rule ${JSON.stringify(r.rule)}; choose one of interval, threshold, ood, all`);
}

/** A model score's name, as `abstain.check_rule` takes it: an identifier of 1 to 64 characters. */
export const SCORE_NAME = /^[\p{L}_][\p{L}\p{N}_]{0,63}$/u;

/** The model scores (outputs beside the probabilities) a rule reads, in part order. */
export function ruleScores(rule: Rule): string[] {
  return (rule.rule === "all" ? rule.rules : [rule]).flatMap((part) => (part.rule === "ood" ? [part.score] : []));
}

/** The interval width `Z` a rule's aggregate is made with: an `all` rule's first interval
 * part's, else the rule's own `conf_factor`, else 1 (as `abstain.rule_conf_factor`). */
export function ruleConfFactor(rule: Rule): number {
  if (rule.rule === "all") {
    const first = rule.rules.find((part) => part.rule === "interval");
    if (first) return first.conf_factor;
  }
  return typeof rule.conf_factor === "number" ? rule.conf_factor : 1.0;
}

/** A short form: `interval (Z = 1)` or `max_probability >= 0.9`. */
export function describeRule(rule: Rule): string {
  if (rule.rule === "all") return rule.rules.map(describeRule).join(" and ");
  if (rule.rule === "interval") return `interval (Z = ${rule.conf_factor})`;
  if (rule.rule === "ood") return `ood guard: ${rule.score} >= ${rule.threshold}`;
  return `${rule.score} ${HIGHER_IS_CONFIDENT[rule.score] ? ">=" : "<="} ${rule.threshold}`;
}

export interface Decision {
  accept: boolean;
  predicted: number;
  aggregate: Aggregate;
  /** For the interval rule: the class whose upper end comes closest to the predicted lower end. */
  rival: number | null;
  /** For an `all` rule: each part's decision, in order; null for the other rules. */
  parts: Decision[] | null;
  /** For an `all` rule: the index of the first part that refused, -1 when every part accepted. */
  failedPart: number | null;
  /** For an `ood` rule: the model's score it compared (NaN when it could not be computed). */
  score?: number;
}

/** The model's out-of-distribution scores for one image, by name (`scores` in `tfuq.json`). */
export type ModelScores = Readonly<Record<string, number>>;

function decideLeaf(summary: Aggregate, rule: PartRule, scores: ModelScores): Decision {
  const predicted = summary.predicted;
  if (rule.rule === "ood") {
    if (!(rule.score in scores)) throw new RuleError(`the rule's OOD guard needs the model score "${rule.score}", which was not given`);
    const score = scores[rule.score];
    // NaN compares false: what cannot be scored is refused.
    return { accept: score >= rule.threshold, predicted, aggregate: summary, rival: null, parts: null, failedPart: null, score };
  }
  if (rule.rule === "interval") {
    // Bounds at the rule's own Z, whatever width the aggregate was made with.
    const z = rule.conf_factor;
    const topLower = summary.mean[predicted] - z * summary.std[predicted];
    let rival: number | null = null;
    let rivalUpper = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < summary.mean.length; c++) {
      if (c === predicted) continue;
      const upper = summary.mean[c] + z * summary.std[c];
      if (rival === null || upper > rivalUpper) {
        rival = c;
        rivalUpper = upper;
      }
    }
    const accept = rival === null || topLower > rivalUpper;
    return { accept, predicted, aggregate: summary, rival, parts: null, failedPart: null };
  }
  const value = summary[rule.score];
  const accept = HIGHER_IS_CONFIDENT[rule.score] ? value >= rule.threshold : value <= rule.threshold;
  return { accept, predicted, aggregate: summary, rival: null, parts: null, failedPart: null };
}

/** Apply `rule` to one image's `(passes, classes)` probabilities; `scores` are the model's
 * out-of-distribution scores for it, needed when the rule has an `ood` part. */
export function decide(probabilities: readonly (readonly number[])[], rule: Rule, scores: ModelScores = {}): Decision {
  const checked = checkRule(rule);
  const summary = aggregate(probabilities, ruleConfFactor(checked));
  if (checked.rule !== "all") return decideLeaf(summary, checked, scores);
  const parts = checked.rules.map((part) => decideLeaf(summary, part, scores));
  const failedPart = parts.findIndex((part) => !part.accept);
  return { accept: failedPart < 0, predicted: summary.predicted, aggregate: summary, rival: null, parts, failedPart };
}

const SCORE_TITLES: Record<Score, string> = {
  max_probability: "Max probability",
  predictive_entropy: "Predictive entropy",
  mutual_information: "Mutual information",
  variation_ratio: "Variation ratio",
};

/** What a refusal by the OOD guard says first, after "Not sure" (as the Android app). */
export const OUT_OF_DISTRIBUTION = "Looks unlike anything it was trained on";

/** True when the OOD guard refused: alone, or as the first refusing part of an `all` rule. */
export function refusedAsOutOfDistribution(decision: Decision, rule: Rule): boolean {
  if (decision.accept) return false;
  if (rule.rule === "ood") return true;
  return rule.rule === "all" && decision.failedPart !== null && decision.failedPart >= 0 && rule.rules[decision.failedPart].rule === "ood";
}

/** Why, in one sentence for under the headline: the same sentences as the Android app's.
 * For an `all` rule: the refusing part's sentence, or when every part accepted all of theirs. */
export function explain(decision: Decision, rule: Rule, name: (index: number) => string): string {
  if (rule.rule === "all") {
    const parts = decision.parts ?? [];
    if (decision.failedPart !== null && decision.failedPart >= 0) return explain(parts[decision.failedPart], rule.rules[decision.failedPart], name);
    return parts.map((part, i) => explain(part, rule.rules[i], name)).join(" ");
  }
  const fmt = (x: number) => x.toFixed(3);
  const summary = decision.aggregate;
  const predicted = decision.predicted;
  if (rule.rule === "interval") {
    const z = rule.conf_factor;
    const lower = summary.mean[predicted] - z * summary.std[predicted];
    if (decision.rival === null) return `${name(predicted)} is the only class.`;
    const rivalUpper = summary.mean[decision.rival] + z * summary.std[decision.rival];
    if (decision.accept) {
      return `The interval of ${name(predicted)} (lower ${fmt(lower)}) is clear of every other class (highest upper ${fmt(rivalUpper)}, ${name(decision.rival)}).`;
    }
    return `The intervals of ${name(predicted)} (lower ${fmt(lower)}) and ${name(decision.rival)} (upper ${fmt(rivalUpper)}) overlap.`;
  }
  if (rule.rule === "ood") {
    const score = decision.score ?? Number.NaN;
    return decision.accept
      ? `Looks like what it was trained on: ${rule.score} ${fmt(score)} is at or above the OOD guard's ${fmt(rule.threshold)}.`
      : `${OUT_OF_DISTRIBUTION}: ${rule.score} ${fmt(score)} is below the OOD guard's ${fmt(rule.threshold)}.`;
  }
  const higher = HIGHER_IS_CONFIDENT[rule.score];
  const side = higher ? (decision.accept ? "at or above" : "below") : decision.accept ? "at or below" : "above";
  const which = rule.calibration ? "the calibrated threshold" : "the threshold";
  return `${SCORE_TITLES[rule.score]} ${fmt(summary[rule.score])} is ${side} ${which} ${fmt(rule.threshold)}.`;
}
