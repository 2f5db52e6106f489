/**
 * From MC passes to per-image numbers, as `tfuq/runtime/aggregate.py` and `tests/vectors/README.md`
 * define them: mean, population std over passes, predicted class (ties to the lowest index),
 * max probability, predictive and expected entropy, mutual information, variation ratio, and
 * the per-class interval `mean ± conf_factor·std`. Natural logarithms, `0 ln 0 = 0`, doubles.
 *
 * Probabilities of one image are `(passes, classes)`: an array of passes, each an array of classes.
 */

export const SCORES = ["max_probability", "predictive_entropy", "mutual_information", "variation_ratio"] as const;
export type Score = (typeof SCORES)[number];

/** Softmax outputs may exceed 1 by a rounding step; anything more is not a probability. */
const ABOVE_ONE_TOLERANCE = 1e-6;

export interface Aggregate {
  passes: number;
  confFactor: number;
  mean: number[];
  std: number[];
  predicted: number;
  max_probability: number;
  predictive_entropy: number;
  expected_entropy: number;
  mutual_information: number;
  variation_ratio: number;
  lower: number[];
  upper: number[];
}

function xlnx(x: number): number {
  return x === 0 ? 0 : x * Math.log(x);
}

/** Index of the largest value; ties go to the lowest index. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Check a conf_factor: finite and non-negative. */
export function checkConfFactor(confFactor: number): number {
  if (typeof confFactor !== "number" || !Number.isFinite(confFactor) || confFactor < 0) {
    throw new RangeError(`conf_factor must be finite and non-negative, got ${confFactor}`);
  }
  return confFactor;
}

/** Check `(passes, classes)` probabilities: rectangular, non-empty, finite, in [0, 1]. */
export function checkProbabilities(probabilities: readonly (readonly number[])[]): void {
  if (probabilities.length === 0) throw new RangeError("probabilities have no passes");
  const classes = probabilities[0].length;
  if (classes === 0) throw new RangeError("probabilities have no classes");
  for (const row of probabilities) {
    if (row.length !== classes) throw new RangeError(`every pass must have ${classes} classes, got ${row.length}`);
    for (const value of row) {
      if (Number.isNaN(value)) throw new RangeError("probabilities contain NaN");
      if (!Number.isFinite(value)) throw new RangeError("probabilities contain Inf");
      if (value < 0) throw new RangeError(`probabilities must be >= 0, found ${value}`);
      if (value > 1 + ABOVE_ONE_TOLERANCE) throw new RangeError(`probabilities must be <= 1, found ${value} (logits instead of softmax?)`);
    }
  }
}

/** Every aggregate of one image from its `(passes, classes)` probabilities. */
export function aggregate(probabilities: readonly (readonly number[])[], confFactor = 1.0): Aggregate {
  checkConfFactor(confFactor);
  checkProbabilities(probabilities);
  const passes = probabilities.length;
  const classes = probabilities[0].length;
  const mean = new Array<number>(classes).fill(0);
  for (const row of probabilities) for (let c = 0; c < classes; c++) mean[c] += row[c];
  for (let c = 0; c < classes; c++) mean[c] /= passes;
  const std = mean.map((m, c) => {
    let sum = 0;
    for (const row of probabilities) sum += (row[c] - m) ** 2;
    return Math.sqrt(sum / passes);
  });
  const predicted = argmax(mean);
  let predictive = 0;
  for (const m of mean) predictive -= xlnx(m);
  let expected = 0;
  const votes = new Array<number>(classes).fill(0);
  for (const row of probabilities) {
    let h = 0;
    for (const x of row) h -= xlnx(x);
    expected += h;
    votes[argmax(row)] += 1;
  }
  expected /= passes;
  return {
    passes,
    confFactor,
    mean,
    std,
    predicted,
    max_probability: mean[predicted],
    predictive_entropy: predictive,
    expected_entropy: expected,
    mutual_information: predictive - expected,
    variation_ratio: 1 - Math.max(...votes) / passes,
    lower: mean.map((m, c) => m - confFactor * std[c]),
    upper: mean.map((m, c) => m + confFactor * std[c]),
  };
}
