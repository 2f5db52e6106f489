"""Predict or abstain: the decision rules over MC passes, as run on the device.

Decisions need NumPy only (they run on a Raspberry Pi; the Kotlin core mirrors them and both
read ``tests/vectors/decisions.json``). Choosing a rule's threshold from labelled data is
:mod:`tfuq.runtime.calibration`.

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
  ``>= t``. :func:`tfuq.runtime.calibration.ood_guard` calibrates ``t`` on held-out
  in-distribution images so that the guard alone refuses at most ``alpha`` of such images with
  probability at least ``1 - delta``.
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
(``--rule interval``). A calibrated rule (:func:`tfuq.runtime.calibration.calibrate`)
carries a ``calibration`` dict beside the keys above, which readers of the rule ignore.

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


def with_ood_guard(rule: Mapping, guard: Mapping) -> dict:
    """``rule`` with the ``ood`` part ``guard`` added (replacing an earlier guard on the same
    score) as the first part of an ``all`` rule, so a refusal by it names it."""
    rule = check_rule(rule)
    parts = rule["rules"] if rule["rule"] == "all" else [rule]
    kept = [part for part in parts if not (part["rule"] == "ood" and part["score"] == guard["score"])]
    return all_rule(dict(guard), *kept)
