"""Predict or abstain: decision rules over MC passes, and a threshold with a risk guarantee.

Decisions need NumPy only (they run on a Raspberry Pi; the Kotlin core mirrors them and both
read ``tests/vectors/decisions.json``). Calibration needs NumPy and the standard library too.

A rule is the plain dict a model file carries as ``decision`` in ``tfuq.json``:

- ``{"rule": "interval", "conf_factor": Z}`` (the seed paper's rule). Each class gets the
  interval ``[mean[c] - Z * std[c], mean[c] + Z * std[c]]`` over the MC passes (population
  standard deviation). The image is accepted, with the class ``predicted = argmax mean``
  (ties to the lowest index), when the lower end of the predicted class's interval is
  *strictly* greater than the upper end of every other class's interval, i.e. the intervals
  do not overlap; otherwise the model abstains. With one class it always accepts. ``Z = 0``
  compares the means only, so it abstains only on exact ties.
- ``{"rule": "threshold", "score": S, "threshold": t}`` with ``S`` one of
  ``max_probability`` (accept when the score is ``>= t``), ``predictive_entropy``,
  ``mutual_information`` or ``variation_ratio`` (accept when the score is ``<= t``).
  See :mod:`tfuq.runtime.aggregate` for the scores.
- ``{"rule": "ood", "score": S, "threshold": t}``: the out-of-distribution guard. ``S`` names
  a score the model returns beside its probabilities (``scores`` in ``tfuq.json``, e.g.
  ``energy``: larger = more like the training data); accept when the image's score is
  ``>= t``. :func:`ood_guard` calibrates ``t`` on held-out in-distribution images so that the
  guard alone refuses at most ``alpha`` of such images with probability at least ``1 - delta``.
- ``{"rule": "all", "rules": [part, ...]}``: accept only when every part accepts (a logical
  AND); each part is an ``interval``, ``threshold`` or ``ood`` rule, 1 to 8 of them, no nesting. The
  first part that refuses is the reason for abstaining (:attr:`Decision.failed_part`). It
  exists for the interval rule's blind spot: when every class is improbable (a blank image,
  noise, a photo of nothing the model knows, on a model with many classes) every interval is
  narrow, nothing overlaps the top one, and the interval rule accepts a prediction whose
  probability is a few percent. A floor on ``max_probability`` closes it. A generic AND of
  leaf rules rather than a dedicated "interval with floor" form, because the same reader then
  also takes the other fixes one may want (a ceiling on mutual information, an SGR-calibrated
  threshold beside the interval rule) and the definition stays one line; a depth of one keeps
  it exact to port (Kotlin, TypeScript) and to explain on a screen.

:data:`DEFAULT_RULE`, what ``tfuq convert`` writes, is ``interval (Z = 1) and
max_probability >= 0.5``: the predicted class must hold at least half of the probability
mass, as much as all other classes together. That floor means the same with any class count
(with two classes it never refuses, as the top class always has >= 1/2; uniform probability
1/classes is below it for every count >= 3), where a smaller one (0.3, say) would be void
with two or three classes. Measured (benchmarks/README.md, ``benchmarks/ood_rules.py``): on
the 1000-class EfficientNet-Lite0 ImageNet classifier the interval rule alone accepts 79% of
uniform-noise images and the default none of the blank, noise or text images; on a 10-class
digits model the floor changes no decision. :data:`INTERVAL_RULE` is the paper's rule alone
(``--rule interval``).

:func:`calibrate` chooses ``t`` from labelled data so that the error rate among accepted
images stays below a target with a stated confidence, alone or ``within`` another rule (the
combined rule then carries the guarantee); its rule carries a ``calibration`` dict beside the
keys above, which readers of the rule ignore.

MC outputs are ``(passes, batch, classes)``, or ``(passes, classes)`` for one image.

    >>> import numpy as np
    >>> passes = np.array([[[0.9, 0.1], [0.6, 0.4]], [[0.8, 0.2], [0.2, 0.8]]])  # T=2, 2 images
    >>> decide(passes, {"rule": "interval", "conf_factor": 1.0}).accept.tolist()
    [True, False]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tfuq.runtime.aggregate import SCORES, Aggregate, aggregate

RULES = ("interval", "threshold", "ood", "all")
PART_RULES = ("interval", "threshold", "ood")  # what an "all" rule may hold
MAX_PARTS = 8
# Which way each score points: True when a larger value means a more confident prediction.
HIGHER_IS_CONFIDENT = {
    "max_probability": True,
    "predictive_entropy": False,
    "mutual_information": False,
    "variation_ratio": False,
}
INTERVAL_RULE = {"rule": "interval", "conf_factor": 1.0}
DEFAULT_FLOOR = 0.5
DEFAULT_RULE = {
    "rule": "all",
    "rules": [
        {"rule": "interval", "conf_factor": 1.0},
        {"rule": "threshold", "score": "max_probability", "threshold": DEFAULT_FLOOR},
    ],
}


class RuleError(ValueError):
    """A decision rule that is malformed: unknown rule or score, missing or bad number."""


class InfeasibleError(ValueError):
    """The target risk cannot be guaranteed with the calibration data given."""


# -- rules -----------------------------------------------------------------------------------
def interval_rule(conf_factor: float = 1.0) -> dict:
    """The rule dict ``{"rule": "interval", "conf_factor": conf_factor}``."""
    return check_rule({"rule": "interval", "conf_factor": conf_factor})


def threshold_rule(score: str, threshold: float) -> dict:
    """The rule dict ``{"rule": "threshold", "score": score, "threshold": threshold}``."""
    return check_rule({"rule": "threshold", "score": score, "threshold": threshold})


def all_rule(*parts: Mapping) -> dict:
    """The rule dict ``{"rule": "all", "rules": [parts...]}``: accept when every part accepts."""
    return check_rule({"rule": "all", "rules": [dict(part) for part in parts]})


def _number(rule: Mapping, key: str) -> float:
    if key not in rule:
        raise RuleError(f"{rule.get('rule')} rule needs {key!r}: {dict(rule)}")
    value = rule[key]
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise RuleError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise RuleError(f"{key} must be finite, got {value!r}")
    return float(value)


def check_rule(rule: Mapping) -> dict:
    """Validate a decision rule; return it as a new dict with float numbers.

    Keys other than the ones a rule needs (``calibration``, for one) are kept as they are.

    Raises:
        RuleError: not a mapping, unknown ``rule`` or ``score``, a missing or non-finite
            number, a negative ``conf_factor``.
    """
    if not isinstance(rule, Mapping):
        raise RuleError(f"a decision rule is a dict, got {type(rule).__name__}")
    kind = rule.get("rule")
    if kind not in RULES:
        raise RuleError(f"unknown decision rule {kind!r}; choose one of {', '.join(RULES)}")
    checked = dict(rule)
    if kind == "all":
        parts = rule.get("rules")
        if not isinstance(parts, list | tuple):
            raise RuleError(f"all rule needs 'rules', a list of rules, got {parts!r}")
        if not 1 <= len(parts) <= MAX_PARTS:
            raise RuleError(f"all rule needs 1 to {MAX_PARTS} rules, got {len(parts)}")
        checked_parts = []
        for index, part in enumerate(parts):
            if isinstance(part, Mapping) and part.get("rule") not in PART_RULES:
                raise RuleError(
                    f"all rule part {index}: {part.get('rule')!r} cannot be a part; "
                    f"choose one of {', '.join(PART_RULES)} (no nesting)"
                )
            try:
                checked_parts.append(check_rule(part))
            except RuleError as error:
                raise RuleError(f"all rule part {index}: {error}") from None
        checked["rules"] = checked_parts
        return checked
    if kind == "interval":
        conf_factor = _number(rule, "conf_factor")
        if conf_factor < 0:
            raise RuleError(f"conf_factor must be non-negative, got {conf_factor:g}")
        checked["conf_factor"] = conf_factor
        return checked
    if kind == "ood":
        score = rule.get("score")
        if not isinstance(score, str) or not 1 <= len(score) <= 64 or not score.isidentifier():
            raise RuleError(f"ood rule score must be the name of a model score, got {score!r:.60}")
        checked["threshold"] = _number(rule, "threshold")
        return checked
    if rule.get("score") not in SCORES:
        raise RuleError(
            f"threshold rule score must be one of {', '.join(SCORES)}, got {rule.get('score')!r}"
        )
    checked["threshold"] = _number(rule, "threshold")
    return checked


def rule_scores(rule: Mapping) -> list[str]:
    """The model scores (outputs beside the probabilities) a checked rule reads."""
    parts = rule["rules"] if rule["rule"] == "all" else [rule]
    return [part["score"] for part in parts if part["rule"] == "ood"]


def describe_rule(rule: Mapping) -> str:
    """A short human-readable form, e.g. ``interval (Z = 1)`` or ``max_probability >= 0.9``."""
    rule = check_rule(rule)
    if rule["rule"] == "all":
        return " and ".join(describe_rule(part) for part in rule["rules"])
    if rule["rule"] == "interval":
        return f"interval (Z = {rule['conf_factor']:g})"
    if rule["rule"] == "ood":
        return f"ood guard: {rule['score']} >= {rule['threshold']:.6g}"
    sign = ">=" if HIGHER_IS_CONFIDENT[rule["score"]] else "<="
    return f"{rule['score']} {sign} {rule['threshold']:.6g}"


# -- decisions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """What to do with each image: ``accept`` (bool) and ``predicted`` (int64), ``(batch,)``.

    ``aggregate`` holds the numbers the decision came from. For an ``all`` rule,
    ``failed_part`` (int64, like ``accept``) is the index of the first part that refused, -1
    where every part accepted; None for the other rules.
    """

    accept: np.ndarray
    predicted: np.ndarray
    aggregate: Aggregate
    failed_part: np.ndarray | None = None


def certainty(summary: Aggregate, score: str) -> np.ndarray:
    """The score oriented so that larger means more confident (negated where needed)."""
    values = summary.score(score)
    return values if HIGHER_IS_CONFIDENT[score] else -values


def accept_interval(summary: Aggregate, conf_factor: float) -> np.ndarray:
    """Interval rule: ``lower[predicted] > upper[c]`` for every class ``c != predicted``."""
    lower, upper = summary.interval(conf_factor)
    predicted = summary.predicted[..., None]
    top_lower = np.take_along_axis(lower, predicted, axis=-1)[..., 0]
    classes = np.arange(summary.classes)
    others = np.where(classes == predicted, -np.inf, upper)
    return top_lower > np.max(others, axis=-1)


def accept_threshold(summary: Aggregate, score: str, threshold: float) -> np.ndarray:
    """Threshold rule: ``score >= threshold`` for max_probability, ``<=`` for the others."""
    values = summary.score(score)
    return values >= threshold if HIGHER_IS_CONFIDENT[score] else values <= threshold


def rule_conf_factor(rule: Mapping) -> float:
    """The interval width ``Z`` a rule's aggregate is made with: its first interval part's for
    an ``all`` rule, else its own ``conf_factor``, else 1."""
    if rule.get("rule") == "all":
        for part in rule["rules"]:
            if part["rule"] == "interval":
                return part["conf_factor"]
    return rule.get("conf_factor", 1.0)


def accept_ood(scores: Mapping[str, np.ndarray] | None, score: str, threshold: float) -> np.ndarray:
    """OOD guard: ``scores[score] >= threshold`` (a NaN score refuses)."""
    if scores is None or score not in scores:
        raise RuleError(f"the rule's OOD guard needs the model score {score!r}; pass scores={{{score!r}: ...}}")
    return np.asarray(scores[score], dtype=np.float64) >= threshold


def _accept_leaf(summary: Aggregate, rule: Mapping, scores: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    if rule["rule"] == "interval":
        return accept_interval(summary, rule["conf_factor"])
    if rule["rule"] == "ood":
        accepted = accept_ood(scores, rule["score"], rule["threshold"])
        if accepted.shape != np.shape(summary.predicted):
            raise RuleError(f"score {rule['score']!r} has shape {accepted.shape}, the batch is {np.shape(summary.predicted)}")
        return accepted
    return accept_threshold(summary, rule["score"], rule["threshold"])


def decide(source: np.ndarray | Aggregate, rule: Mapping,
           scores: Mapping[str, np.ndarray] | None = None) -> Decision:
    """Apply a decision rule to MC passes or to their :class:`~tfuq.runtime.aggregate.Aggregate`.

    Args:
        source: MC probabilities ``(passes, batch, classes)`` (or ``(passes, classes)`` for
            one image), or the result of :func:`tfuq.runtime.aggregate.aggregate`.
        rule: a rule dict, see the module docstring.
        scores: the model's out-of-distribution scores by name, ``(batch,)`` each (0-d for
            one image), as :meth:`tfuq.runtime.interpreter.Model.run_scored` returns them;
            needed when the rule has an ``ood`` part.

    Returns:
        A :class:`Decision`, with arrays shaped like the batch (0-d for one image).

    Example:
        >>> import numpy as np
        >>> passes = np.array([[0.7, 0.3], [0.9, 0.1]])  # one image, T=2
        >>> rule = {"rule": "threshold", "score": "max_probability", "threshold": 0.75}
        >>> bool(decide(passes, rule).accept)
        True
    """
    rule = check_rule(rule)
    if isinstance(source, Aggregate):
        summary = source
    else:
        summary = aggregate(source, rule_conf_factor(rule))
    if rule["rule"] != "all":
        accept = np.asarray(_accept_leaf(summary, rule, scores))
        return Decision(accept=accept, predicted=summary.predicted, aggregate=summary)
    failed = np.full(np.shape(summary.predicted), -1, dtype=np.int64)
    for index, part in enumerate(rule["rules"]):
        refused = ~np.asarray(_accept_leaf(summary, part, scores)) & (failed < 0)
        failed = np.where(refused, index, failed)
    return Decision(
        accept=np.asarray(failed < 0), predicted=summary.predicted, aggregate=summary,
        failed_part=failed,
    )


# -- the binomial tail bound ------------------------------------------------------------------
def binomial_upper_bound(errors: int, trials: int, delta: float) -> float:
    """One-sided Clopper-Pearson upper bound on an error rate.

    The largest ``b`` with ``P(Binomial(trials, b) <= errors) >= delta``, i.e. the value
    that the true rate exceeds with probability at most ``delta`` given ``errors`` errors in
    ``trials`` independent trials (``B*`` in Geifman and El-Yaniv, 2017). Computed with a
    bisection on the binomial CDF in log space (no SciPy), to about 1e-12; the returned value
    errs on the high (safe) side.

    >>> round(binomial_upper_bound(0, 10, 0.1), 6)  # 1 - 0.1 ** (1 / 10)
    0.205672
    """
    errors, trials = int(errors), int(trials)
    if trials < 0 or not 0 <= errors:
        raise ValueError(f"need 0 <= errors and 0 <= trials, got {errors} errors in {trials}")
    if errors > trials:
        raise ValueError(f"{errors} errors cannot happen in {trials} trials")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if trials == 0 or errors == trials:
        return 1.0
    if errors == 0:  # P(no error) = (1 - b) ** trials = delta
        return -math.expm1(math.log(delta) / trials)
    counts = np.arange(errors + 1)
    log_choose = np.array(
        [math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) for k in counts]
    )
    log_delta = math.log(delta)

    def log_cdf(rate: float) -> float:
        terms = log_choose + counts * math.log(rate) + (trials - counts) * math.log1p(-rate)
        top = terms.max()
        return float(top + math.log(np.exp(terms - top).sum()))

    low, high = errors / trials, 1.0  # the CDF falls from >= 1/2-ish at the MLE to 0 at 1
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if log_cdf(middle) > log_delta:
            low = middle
        else:
            high = middle
        if high - low < 1e-13:
            break
    return high


# -- calibration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes:
        feasible: whether a threshold meeting the target was found.
        score, target_risk, confidence: what was asked.
        threshold: the chosen threshold (None when infeasible).
        risk_bound: the guaranteed bound ``b*`` on the selective risk at that threshold
            (for an infeasible result: the lowest bound among the thresholds tried).
        selective_risk, coverage, accepted, errors: the chosen threshold on the
            calibration data (for an infeasible result: at the threshold with the lowest bound).
        n: calibration images; steps: thresholds tested (the union bound's ``k``).
        message: one line saying what was found, or why the target cannot be met.
    """

    feasible: bool
    score: str
    target_risk: float
    confidence: float
    threshold: float | None
    risk_bound: float
    selective_risk: float
    coverage: float
    accepted: int
    errors: int
    n: int
    steps: int
    message: str
    method: str = "sgr"
    within: dict | None = None

    def to_rule(self) -> dict:
        """The rule with a ``calibration`` dict; raises InfeasibleError if none.

        The threshold rule alone, or with ``within`` an ``all`` rule: the parts of ``within``
        and then the threshold (a ``max_probability`` floor of ``within`` that the calibrated
        threshold implies is dropped, as it can no longer refuse anything).
        """
        if not self.feasible:
            raise InfeasibleError(self.message)
        rule = threshold_rule(self.score, self.threshold)
        if self.within is not None:
            parts = self.within["rules"] if self.within["rule"] == "all" else [self.within]
            kept = [part for part in parts if not (
                part["rule"] == "threshold" and part["score"] == self.score
                and HIGHER_IS_CONFIDENT[self.score] and part["threshold"] <= self.threshold
            )]
            rule = all_rule(*kept, rule)
        rule["calibration"] = {
            "method": self.method,
            "target_risk": self.target_risk,
            "confidence": self.confidence,
            "risk_bound": self.risk_bound,
            "coverage": self.coverage,
            "selective_risk": self.selective_risk,
            "accepted": self.accepted,
            "errors": self.errors,
            "n": self.n,
        }
        return rule


def _check_fraction(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def calibrate(
    source: np.ndarray | Aggregate,
    labels: np.ndarray,
    *,
    target_risk: float,
    confidence: float = 0.9,
    score: str = "max_probability",
    within: Mapping | None = None,
    scores: Mapping[str, np.ndarray] | None = None,
) -> Calibration:
    """Choose a score threshold whose selective risk is guaranteed below ``target_risk``.

    Selection with Guaranteed Risk (SGR; Geifman and El-Yaniv, "Selective classification for
    deep neural networks", NeurIPS 2017, Algorithm 1). The ``m`` calibration images are
    sorted by certainty; a binary search over them runs ``k = ceil(log2 m)`` steps. Step
    ``i`` takes the certainty of the middle image as threshold ``theta_i``, accepts the
    images at least that certain, counts the errors among them, and computes the one-sided
    Clopper-Pearson bound ``b_i`` (:func:`binomial_upper_bound`) at level ``delta / k`` with
    ``delta = 1 - confidence``; it moves towards more coverage when ``b_i < target_risk`` and
    towards less otherwise. The result is the tested threshold with the largest coverage
    among those with ``b_i < target_risk`` (the paper returns the last step's; picking any
    tested one keeps the bound, since the union bound covers all ``k``).

    The guarantee (the paper's Lemma 3.1 and its theorem on SGR): if the calibration images and
    the images the rule will see are independent draws from one distribution, and neither
    the model nor the MC seed changes, then with probability at least ``confidence`` over
    the draw of the calibration set, the error rate among accepted future images (the
    selective risk) is at most ``risk_bound``, which is below ``target_risk``. Like the
    paper's proof, the union bound counts the ``k`` thresholds tested and treats each as if
    fixed in advance. Nothing is promised about coverage, and nothing holds under a
    distribution shift (out-of-distribution images are exactly that).

    Args:
        source: MC probabilities ``(passes, batch, classes)`` of the calibration images, or
            their :class:`~tfuq.runtime.aggregate.Aggregate` (a batch, not a single image).
        labels: true classes, int ``(batch,)``.
        target_risk: the selective risk not to exceed, in (0, 1).
        confidence: ``1 - delta``, in (0, 1).
        score: the score to threshold, one of :data:`tfuq.runtime.aggregate.SCORES`.
        within: a rule the threshold is added to (e.g. ``{"rule": "interval", ...}``, or
            :data:`DEFAULT_RULE`). The search then runs over the calibration images that
            ``within`` accepts, so the bound is on the error rate among images accepted by
            ``within`` *and* the threshold, i.e. by the combined rule ``to_rule()`` returns;
            the guarantee above holds for it unchanged, since ``within`` is fixed before the
            data is seen and its accepted images are independent draws from the distribution
            conditioned on its acceptance. Coverage, accepted and errors are still counted
            over all ``n`` images.

    Returns:
        A :class:`Calibration`; when ``feasible`` is False its ``message`` says why and
        ``to_rule()`` raises InfeasibleError.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 2, 400)
        >>> sure = np.where(np.arange(400) < 300, 0.99, 0.6)            # 300 confident images
        >>> top = np.where(np.arange(400) < 300, labels, 1 - labels)    # the rest are wrong
        >>> mean = np.where(top[:, None] == np.arange(2), sure[:, None], 1 - sure[:, None])
        >>> result = calibrate(mean[None], labels, target_risk=0.05, confidence=0.9)
        >>> result.feasible, result.to_rule()["threshold"]
        (True, 0.99)
    """
    target_risk = _check_fraction(target_risk, "target_risk")
    confidence = _check_fraction(confidence, "confidence")
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    summary = source if isinstance(source, Aggregate) else aggregate(source)
    if summary.predicted.ndim != 1:
        raise ValueError("calibration needs a batch of images, not a single image")
    total = len(summary.predicted)
    labels = np.asarray(labels)
    if labels.shape != (total,):
        raise ValueError(f"labels must be a vector of {total} entries, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= summary.classes:
        raise ValueError(
            f"labels must be in [0, {summary.classes}), found {labels.min()}..{labels.max()}"
        )
    if within is not None:
        within = check_rule(within)
        inside = np.asarray(decide(summary, within, scores).accept)
        if not inside.any():
            raise InfeasibleError(
                f"{describe_rule(within)} accepts none of the {total} calibration images"
            )
        summary = Aggregate(
            **{name: getattr(summary, name)[inside] for name in (
                "mean", "std", "predicted", "max_probability", "predictive_entropy",
                "expected_entropy", "mutual_information", "variation_ratio", "lower", "upper")},
            passes=summary.passes, conf_factor=summary.conf_factor,
        )
        labels = labels[inside]
    m = len(summary.predicted)

    delta = 1.0 - confidence
    steps = max(1, math.ceil(math.log2(m)))
    sure = certainty(summary, score)
    wrong = summary.predicted != labels
    order = np.argsort(sure, kind="stable")
    sorted_sure = sure[order]
    # Errors among the images at least as certain as sorted_sure[j], ties included.
    errors_from = np.concatenate([np.cumsum(wrong[order][::-1])[::-1], [0]])

    def test(z: int) -> tuple[float, float, int, int]:
        theta = float(sorted_sure[z - 1])
        first = int(np.searchsorted(sorted_sure, theta, side="left"))  # ties accepted too
        accepted, errors = m - first, int(errors_from[first])
        return theta, binomial_upper_bound(errors, accepted, delta / steps), accepted, errors

    z_min, z_max = 1, m
    tried = []
    for _ in range(steps):
        z = math.ceil((z_min + z_max) / 2)
        theta, bound, accepted, errors = test(z)
        tried.append((theta, bound, accepted, errors))
        if bound < target_risk:
            z_max = z
        else:
            z_min = z

    feasible = [t for t in tried if t[1] < target_risk]
    if feasible:
        theta, bound, accepted, errors = max(feasible, key=lambda t: t[2])
    else:
        theta, bound, accepted, errors = min(tried, key=lambda t: t[1])
    orient = 1.0 if HIGHER_IS_CONFIDENT[score] else -1.0
    coverage, risk = accepted / total, errors / accepted
    inside_text = "" if within is None else f" within {describe_rule(within)} (accepts {m})"
    if feasible:
        sign = ">=" if orient > 0 else "<="
        message = (
            f"{score} {sign} {orient * theta:.6g}{inside_text}: coverage {coverage:.1%} on {total} calibration "
            f"images, selective risk {risk:.2%}, guaranteed <= {bound:.2%} at "
            f"{confidence:.0%} confidence"
        )
    else:
        # Even with no error at all, the bound needs this many accepted images.
        needed = math.ceil(math.log(delta / steps) / math.log1p(-target_risk))
        message = (
            f"target risk {target_risk:g} cannot be guaranteed at {confidence:.0%} confidence "
            f"with {m} calibration images{inside_text} and score {score}: the best threshold tried accepts "
            f"{accepted} images with {errors} errors, risk bound {bound:.3f}; even with no "
            f"errors about {needed} accepted images would be needed. Use more calibration data, "
            "a higher target risk or a lower confidence"
        )
    return Calibration(
        feasible=bool(feasible),
        score=score,
        target_risk=target_risk,
        confidence=confidence,
        threshold=orient * theta + 0.0 if feasible else None,  # + 0.0: no -0.0
        risk_bound=bound,
        selective_risk=risk,
        coverage=coverage,
        accepted=accepted,
        errors=errors,
        n=total,
        steps=steps,
        message=message,
        within=within,
    )


# -- the out-of-distribution guard --------------------------------------------------------------
def binomial_cdf(successes: int, trials: int, rate: float) -> float:
    """``P(Binomial(trials, rate) <= successes)``, summed in log space (no SciPy).

    >>> round(binomial_cdf(0, 10, 0.1), 6)  # 0.9 ** 10
    0.348678
    """
    if successes < 0:
        return 0.0
    if successes >= trials:
        return 1.0
    if rate <= 0.0:
        return 1.0
    if rate >= 1.0:
        return 0.0
    counts = np.arange(successes + 1)
    terms = np.array([math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
                      for k in counts]) + counts * math.log(rate) + (trials - counts) * math.log1p(-rate)
    top = terms.max()
    return float(min(1.0, math.exp(top) * np.exp(terms - top).sum()))


@dataclass(frozen=True)
class OodGuard:
    """The outcome of :func:`ood_guard`: ``rule`` (the ``ood`` part, with its ``calibration``)
    and the numbers behind it."""

    rule: dict
    rank: int  # the threshold is the rank-th smallest calibration score
    refused_on_calibration: float  # share of the calibration images the guard refuses


def ood_guard(id_scores: np.ndarray, score: str, alpha: float = 0.05, delta: float = 0.1) -> OodGuard:
    """Calibrate an OOD guard on held-out in-distribution images.

    The guard refuses an image whose ``score`` (larger = more like the training data) is below
    a threshold ``t``. ``t`` is the ``k``-th smallest of the ``n`` calibration scores, with
    ``k`` the largest rank such that ``P(Binomial(n, alpha) <= k - 1) <= delta``. For images
    exchangeable with the calibration images, the share ``F(t)`` of in-distribution images
    below ``t`` is then above ``alpha`` with probability at most ``delta`` (the ``k``-th order
    statistic of ``n`` uniforms is Beta(k, n - k + 1), and ``P(Beta(k, n - k + 1) > alpha) =
    P(Binomial(n, alpha) <= k - 1)``): the guard alone refuses at most ``alpha`` of the
    in-distribution images with probability at least ``1 - delta``, as SGR's bound is stated
    (Geifman and El-Yaniv, 2017). It needs ``n >= log(delta) / log(1 - alpha)`` images (45 for
    5% and 10%); unlabelled images do.

    Args:
        id_scores: ``(n,)`` scores of held-out in-distribution images (never trained on).
        score: the name of the model score, as in ``tfuq.json``'s ``scores``.
        alpha: the largest share of in-distribution images the guard may refuse.
        delta: the probability, over the draw of the calibration images, that it refuses more.

    Raises:
        InfeasibleError: too few images for ``alpha`` and ``delta``.

    >>> guard = ood_guard(np.arange(100.0), "energy", alpha=0.05, delta=0.1)
    >>> guard.rank, guard.rule["threshold"]  # P(Bin(100, .05) <= 1) = 0.037, <= 2: 0.118
    (2, 1.0)
    """
    values = np.asarray(id_scores, dtype=np.float64).reshape(-1)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"need finite calibration scores, got {len(values)} values "
                         f"({int(np.sum(~np.isfinite(values)))} not finite)")
    alpha = _check_fraction(alpha, "alpha")
    delta = _check_fraction(delta, "delta")
    n = len(values)
    rank = 0
    while rank < n and binomial_cdf(rank, n, alpha) <= delta:  # rank + 1 is admissible
        rank += 1
    if rank == 0:
        need = math.ceil(math.log(delta) / math.log1p(-alpha))
        raise InfeasibleError(f"an OOD guard refusing at most {alpha:g} with confidence {1 - delta:g} "
                              f"needs at least {need} calibration images, got {n}")
    threshold = float(np.sort(values)[rank - 1])
    refused = float(np.mean(values < threshold))
    rule = check_rule({"rule": "ood", "score": score, "threshold": threshold, "calibration": {
        "method": "order statistic, one-sided binomial bound", "alpha": alpha, "delta": delta,
        "n": n, "rank": rank, "refused_on_calibration": refused}})
    return OodGuard(rule=rule, rank=rank, refused_on_calibration=refused)


def with_ood_guard(rule: Mapping, guard: Mapping) -> dict:
    """``rule`` with the ``ood`` part ``guard`` added (replacing an earlier guard on the same
    score) as the first part of an ``all`` rule, so a refusal by it names it."""
    rule = check_rule(rule)
    parts = rule["rules"] if rule["rule"] == "all" else [rule]
    kept = [part for part in parts if not (part["rule"] == "ood" and part["score"] == guard["score"])]
    return all_rule(dict(guard), *kept)
