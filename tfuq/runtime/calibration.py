"""A threshold with a risk guarantee: Selection with Guaranteed Risk, offline, on labelled data.

:func:`calibrate` chooses the threshold ``t`` of a ``threshold`` rule from labelled data so
that the error rate among accepted images stays below a target with a stated confidence, alone
or ``within`` another rule (the combined rule then carries the guarantee); its rule carries a
``calibration`` dict beside the rule's keys, which readers of the rule ignore.

The rules themselves and how a model file carries them are :mod:`tfuq.runtime.decision`.
NumPy and the standard library only.

MC outputs are ``(passes, batch, classes)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from tfuq.runtime.aggregate import SCORES, Aggregate, aggregate
from tfuq.runtime.decision import (
    HIGHER_IS_CONFIDENT,
    all_rule,
    certainty,
    check_rule,
    decide,
    describe_rule,
    threshold_rule,
)


class InfeasibleError(ValueError):
    """The target risk cannot be guaranteed with the calibration data given."""


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
    labels = _check_labels(summary, labels)
    total = len(labels)
    if within is not None:
        within = check_rule(within)
        inside = np.asarray(decide(summary, within, scores).accept)
        if not inside.any():
            raise InfeasibleError(
                f"{describe_rule(within)} accepts none of the {total} calibration images"
            )
        summary, labels = summary.take(inside), labels[inside]

    m = len(labels)
    delta = 1.0 - confidence
    steps = max(1, math.ceil(math.log2(m)))
    tried = _search(certainty(summary, score), summary.predicted != labels, target_risk,
                    delta / steps, steps)
    feasible = [t for t in tried if t.bound < target_risk]
    # The most coverage among the thresholds that meet the target; else the lowest bound.
    if feasible:
        chosen = max(feasible, key=lambda t: t.accepted)
    else:
        chosen = min(tried, key=lambda t: t.bound)
    orient = 1.0 if HIGHER_IS_CONFIDENT[score] else -1.0
    result = Calibration(
        feasible=bool(feasible),
        score=score,
        target_risk=target_risk,
        confidence=confidence,
        threshold=orient * chosen.theta + 0.0 if feasible else None,  # + 0.0: no -0.0
        risk_bound=chosen.bound,
        selective_risk=chosen.errors / chosen.accepted,
        coverage=chosen.accepted / total,
        accepted=chosen.accepted,
        errors=chosen.errors,
        n=total,
        steps=steps,
        message="",
        within=within,
    )
    return replace(result, message=_message(result, orient * chosen.theta, m))


def _message(result: Calibration, threshold: float, m: int) -> str:
    """One line: the rule found and what it guarantees, or why no threshold meets the target
    (``threshold``: the chosen or best one, on the score's own scale; ``m``: the images the
    search ran over)."""
    inside = "" if result.within is None else f" within {describe_rule(result.within)} (accepts {m})"
    if result.feasible:
        sign = ">=" if HIGHER_IS_CONFIDENT[result.score] else "<="
        return (
            f"{result.score} {sign} {threshold:.6g}{inside}: coverage {result.coverage:.1%} on "
            f"{result.n} calibration images, selective risk {result.selective_risk:.2%}, "
            f"guaranteed <= {result.risk_bound:.2%} at {result.confidence:.0%} confidence"
        )
    # Even with no error at all, the bound needs this many accepted images.
    level = (1.0 - result.confidence) / result.steps
    needed = math.ceil(math.log(level) / math.log1p(-result.target_risk))
    return (
        f"target risk {result.target_risk:g} cannot be guaranteed at {result.confidence:.0%} "
        f"confidence with {m} calibration images{inside} and score {result.score}: the best "
        f"threshold tried accepts {result.accepted} images with {result.errors} errors, risk "
        f"bound {result.risk_bound:.3f}; even with no errors about {needed} accepted images "
        "would be needed. Use more calibration data, a higher target risk or a lower confidence"
    )


def _check_labels(summary: Aggregate, labels: np.ndarray) -> np.ndarray:
    """The labels as an array, checked against a batch aggregate: one int class per image."""
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
    return labels


class _Tried(NamedTuple):
    """One threshold SGR tested: ``theta`` (on the certainty scale), its bound, and the
    accepted images and errors among them."""

    theta: float
    bound: float
    accepted: int
    errors: int


def _search(
    sure: np.ndarray, wrong: np.ndarray, target_risk: float, level: float, steps: int
) -> list[_Tried]:
    """SGR's binary search over the sorted certainties (``sure``, larger is more confident;
    ``wrong`` per image): ``steps`` thresholds, each with its Clopper-Pearson bound at
    ``level`` (``delta / steps``), towards more coverage while the bound is below target."""
    m = len(sure)
    order = np.argsort(sure, kind="stable")
    sorted_sure = sure[order]
    # Errors among the images at least as certain as sorted_sure[j], ties included.
    errors_from = np.concatenate([np.cumsum(wrong[order][::-1])[::-1], [0]])

    def test(z: int) -> _Tried:
        theta = float(sorted_sure[z - 1])
        first = int(np.searchsorted(sorted_sure, theta, side="left"))  # ties accepted too
        accepted, errors = m - first, int(errors_from[first])
        return _Tried(theta, binomial_upper_bound(errors, accepted, level), accepted, errors)

    z_min, z_max = 1, m
    tried = []
    for _ in range(steps):
        z = math.ceil((z_min + z_max) / 2)
        tried.append(test(z))
        if tried[-1].bound < target_risk:
            z_max = z
        else:
            z_min = z
    return tried


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

    @property
    def threshold(self) -> float:
        """Images scoring below it are refused."""
        return float(self.rule["threshold"])


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
