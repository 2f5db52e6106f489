"""The OOD guard: the ``ood`` rule part, its calibration, and numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfuq.runtime import abstain
from tfuq.runtime.abstain import InfeasibleError, RuleError

# Two images, T = 2, three classes: both confident on class 0.
PASSES = np.array([[[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]], [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]]])


def test_an_ood_part_accepts_at_or_above_its_threshold_and_refuses_nan():
    rule = {"rule": "ood", "score": "energy", "threshold": 2.0}
    scores = {"energy": np.array([2.0, 1.999])}
    assert abstain.decide(PASSES, rule, scores).accept.tolist() == [True, False]
    nan = {"energy": np.array([np.nan, 5.0])}
    assert abstain.decide(PASSES, rule, nan).accept.tolist() == [False, True]


def test_in_an_all_rule_the_guard_is_named_when_it_refuses_first():
    rule = abstain.all_rule({"rule": "ood", "score": "energy", "threshold": 2.0},
                            {"rule": "threshold", "score": "max_probability", "threshold": 0.5})
    decision = abstain.decide(PASSES, rule, {"energy": np.array([1.0, 3.0])})
    assert decision.accept.tolist() == [False, True]
    assert decision.failed_part.tolist() == [0, -1]
    assert abstain.describe_rule(rule) == "ood guard: energy >= 2 and max_probability >= 0.5"


def test_a_rule_with_a_guard_needs_the_scores_and_of_the_right_shape():
    rule = {"rule": "ood", "score": "energy", "threshold": 2.0}
    with pytest.raises(RuleError, match="needs the model score 'energy'"):
        abstain.decide(PASSES, rule)
    with pytest.raises(RuleError, match="has shape"):
        abstain.decide(PASSES, rule, {"energy": np.array([1.0, 2.0, 3.0])})
    with pytest.raises(RuleError, match="name of a model score"):
        abstain.check_rule({"rule": "ood", "score": "not a name", "threshold": 1.0})
    with pytest.raises(RuleError, match="finite"):
        abstain.check_rule({"rule": "ood", "score": "energy", "threshold": float("inf")})
    assert abstain.rule_scores(abstain.check_rule(rule)) == ["energy"]


def test_binomial_cdf_matches_the_sum_written_out():
    n, p = 20, 0.05
    for k in (0, 1, 3, 19, 20):
        by_hand = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
        assert abstain.binomial_cdf(k, n, p) == pytest.approx(by_hand, rel=1e-10)


def test_the_guard_threshold_is_the_largest_admissible_order_statistic():
    # n = 200, alpha 0.05, delta 0.1: P(Bin(200, .05) <= k - 1) <= 0.1 holds for k <= 6
    # (P(<= 5) = 0.0640, P(<= 6) = 0.1262, computed with the sum above).
    cdf = [sum(math.comb(200, i) * 0.05**i * 0.95 ** (200 - i) for i in range(k + 1)) for k in range(8)]
    assert cdf[5] <= 0.1 < cdf[6]
    scores = np.random.default_rng(0).permutation(np.arange(200.0))
    guard = abstain.ood_guard(scores, "energy", alpha=0.05, delta=0.1)
    assert guard.rank == 6
    assert guard.rule == {"rule": "ood", "score": "energy", "threshold": 5.0, "calibration": {
        "method": "order statistic, one-sided binomial bound", "alpha": 0.05, "delta": 0.1,
        "n": 200, "rank": 6, "refused_on_calibration": 0.025}}


def test_the_guard_refuses_about_alpha_or_less_of_new_in_distribution_images():
    # The guarantee, by simulation: over 400 draws of 300 calibration scores, the share of a
    # large fresh sample refused exceeds alpha in at most ~delta of the draws.
    rng = np.random.default_rng(1)
    fresh = rng.normal(size=200_000)
    over = 0
    for _ in range(400):
        guard = abstain.ood_guard(rng.normal(size=300), "energy", alpha=0.05, delta=0.1)
        over += np.mean(fresh < guard.threshold) > 0.05
    assert over / 400 <= 0.1 + 0.04  # delta plus about 2.7 standard errors of 400 draws


def test_too_few_images_for_the_guarantee_are_refused_with_the_count_needed():
    # (1 - 0.05) ** 44 = 0.105 > 0.1: 44 images cannot give the guarantee, 45 can.
    with pytest.raises(InfeasibleError, match="at least 45 calibration images, got 44"):
        abstain.ood_guard(np.arange(44.0), "energy")
    assert abstain.ood_guard(np.arange(45.0), "energy").rank == 1
    with pytest.raises(ValueError, match="finite"):
        abstain.ood_guard(np.array([1.0, np.nan]), "energy")


def test_with_ood_guard_puts_the_guard_first_and_replaces_an_earlier_one():
    guard = {"rule": "ood", "score": "energy", "threshold": 3.0}
    rule = abstain.with_ood_guard(abstain.DEFAULT_RULE, guard)
    assert [part["rule"] for part in rule["rules"]] == ["ood", "interval", "threshold"]
    again = abstain.with_ood_guard(rule, {**guard, "threshold": 4.0})
    assert [part.get("threshold") for part in again["rules"] if part["rule"] == "ood"] == [4.0]


def test_calibrating_a_risk_threshold_within_a_guard_uses_the_scores():
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet(np.ones(3) * 0.3, size=(4, 300)).astype(np.float64)
    labels = probabilities.mean(0).argmax(-1)
    labels[:30] = (labels[:30] + 1) % 3
    energy = rng.normal(size=300)
    guard = abstain.ood_guard(energy, "energy").rule
    result = abstain.calibrate(probabilities, labels, target_risk=0.2, within=guard,
                               scores={"energy": energy})
    rule = result.to_rule()
    assert rule["rules"][0]["rule"] == "ood"
    decision = abstain.decide(probabilities, rule, {"energy": energy})
    assert not decision.accept[energy < guard["threshold"]].any()
