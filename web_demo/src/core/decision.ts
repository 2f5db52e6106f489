/**
 * Predict or abstain, as `tfuq/runtime/abstain.py` decides (and `tests/vectors/decisions.json` checks):
 *
 * - `{"rule": "interval", "conf_factor": Z}`: accept when the lower end of the predicted class's
 *   interval `mean ± Z·std` is strictly above the upper end of every other class's (one class
 *   always accepts).
 * - `{"rule": "threshold", "score": S, "threshold": t}`: accept when `max_probability >= t`,
 *   or when `predictive_entropy`, `mutual_information` or `variation_ratio` is `<= t`.
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
export type Rule = IntervalRule | ThresholdRule;

export const DEFAULT_RULE: IntervalRule = { rule: "interval", conf_factor: 1.0 };

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
  throw new RuleError(`unknown decision rule ${JSON.stringify(r.rule)}; choose one of interval, threshold`);
}

/** A short form: `interval (Z = 1)` or `max_probability >= 0.9`. */
export function describeRule(rule: Rule): string {
  if (rule.rule === "interval") return `interval (Z = ${rule.conf_factor})`;
  return `${rule.score} ${HIGHER_IS_CONFIDENT[rule.score] ? ">=" : "<="} ${rule.threshold}`;
}

export interface Decision {
  accept: boolean;
  predicted: number;
  aggregate: Aggregate;
  /** For the interval rule: the class whose upper end comes closest to the predicted lower end. */
  rival: number | null;
}

/** Apply `rule` to one image's `(passes, classes)` probabilities. */
export function decide(probabilities: readonly (readonly number[])[], rule: Rule): Decision {
  const checked = checkRule(rule);
  const summary = aggregate(probabilities, checked.rule === "interval" ? checked.conf_factor : 1.0);
  if (checked.rule === "interval") {
    const topLower = summary.lower[summary.predicted];
    let rival: number | null = null;
    for (let c = 0; c < summary.upper.length; c++) {
      if (c === summary.predicted) continue;
      if (rival === null || summary.upper[c] > summary.upper[rival]) rival = c;
    }
    const accept = rival === null || topLower > summary.upper[rival];
    return { accept, predicted: summary.predicted, aggregate: summary, rival };
  }
  const value = summary[checked.score];
  const accept = HIGHER_IS_CONFIDENT[checked.score] ? value >= checked.threshold : value <= checked.threshold;
  return { accept, predicted: summary.predicted, aggregate: summary, rival: null };
}

const SCORE_TITLES: Record<Score, string> = {
  max_probability: "Max probability",
  predictive_entropy: "Predictive entropy",
  mutual_information: "Mutual information",
  variation_ratio: "Variation ratio",
};

/** Why, in one sentence for under the headline: the same sentences as the Android app's. */
export function explain(decision: Decision, rule: Rule, name: (index: number) => string): string {
  const fmt = (x: number) => x.toFixed(3);
  const summary = decision.aggregate;
  const predicted = decision.predicted;
  if (rule.rule === "interval") {
    const lower = summary.lower[predicted];
    if (decision.rival === null) return `${name(predicted)} is the only class.`;
    const rivalUpper = summary.upper[decision.rival];
    if (decision.accept) {
      return `The interval of ${name(predicted)} (lower ${fmt(lower)}) is clear of every other class (highest upper ${fmt(rivalUpper)}, ${name(decision.rival)}).`;
    }
    return `The intervals of ${name(predicted)} (lower ${fmt(lower)}) and ${name(decision.rival)} (upper ${fmt(rivalUpper)}) overlap.`;
  }
  const higher = HIGHER_IS_CONFIDENT[rule.score];
  const side = higher ? (decision.accept ? "at or above" : "below") : decision.accept ? "at or below" : "above";
  const which = rule.calibration ? "the calibrated threshold" : "the threshold";
  return `${SCORE_TITLES[rule.score]} ${fmt(summary[rule.score])} is ${side} ${which} ${fmt(rule.threshold)}.`;
}
