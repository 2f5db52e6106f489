"""tfuq.runtime.calibration: the binomial bound against SciPy, and SGR."""

import math

import numpy as np
import pytest
from scipy import special, stats

from tfuq.runtime import calibration, decision
from tfuq.runtime.aggregate import aggregate


# -- binomial bound --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "errors, trials, delta",
    [(1, 10, 0.1), (3, 50, 0.05), (17, 400, 0.01), (250, 1000, 0.2), (999, 1000, 0.1),
     (40, 10000, 0.001)],
)
def test_binomial_bound_matches_clopper_pearson_from_scipy(errors, trials, delta):
    bound = calibration.binomial_upper_bound(errors, trials, delta)
    assert bound == pytest.approx(special.betaincinv(errors + 1, trials - errors, 1 - delta), abs=1e-10)
    assert stats.binom.cdf(errors, trials, bound) == pytest.approx(delta, rel=1e-6)
    assert stats.binom.cdf(errors, trials, bound) <= delta * (1 + 1e-9)  # the safe side


def test_binomial_bound_edge_cases():
    assert calibration.binomial_upper_bound(0, 10, 0.1) == pytest.approx(1 - 0.1 ** 0.1, abs=1e-15)
    assert calibration.binomial_upper_bound(5, 5, 0.1) == 1.0
    assert calibration.binomial_upper_bound(0, 0, 0.1) == 1.0
    for args in [(-1, 5, 0.1), (6, 5, 0.1), (1, 5, 0.0), (1, 5, 1.0)]:
        with pytest.raises(ValueError):
            calibration.binomial_upper_bound(*args)


# -- calibration -----------------------------------------------------------------------------
def two_class_means(top_probability, correct, rng):
    """(1, batch, 2) probabilities whose top class is the label where ``correct``."""
    labels = rng.integers(0, 2, len(correct))
    top = np.where(correct, labels, 1 - labels)
    mean = np.where(top[:, None] == np.arange(2), top_probability[:, None],
                    1 - top_probability[:, None])
    return mean[None], labels


def test_sgr_on_a_hand_made_set(rng):
    # 300 correct images at max probability .99, 100 wrong ones at .6. k = ceil(log2 400) = 9.
    confident = np.arange(400) < 300
    probabilities, labels = two_class_means(np.where(confident, 0.99, 0.6), confident, rng)
    result = calibration.calibrate(probabilities, labels, target_risk=0.05, confidence=0.9)
    assert result.feasible and result.steps == 9 and result.n == 400
    assert (result.threshold, result.accepted, result.errors) == (0.99, 300, 0)
    assert result.coverage == 0.75 and result.selective_risk == 0.0
    assert result.risk_bound == pytest.approx(1 - (0.1 / 9) ** (1 / 300), abs=1e-12)
    rule = result.to_rule()
    assert rule["rule"] == "threshold" and rule["score"] == "max_probability"
    assert rule["calibration"]["target_risk"] == 0.05 and rule["calibration"]["method"] == "sgr"
    assert decision.decide(probabilities, rule).accept.sum() == 300


def test_sgr_reports_what_it_chose_consistently(rng):
    certainty = rng.uniform(size=3000)
    correct = rng.uniform(size=3000) > 0.4 * (1 - certainty)  # errors among the unsure
    probabilities, labels = two_class_means(0.5 + 0.5 * certainty, correct, rng)
    result = calibration.calibrate(probabilities, labels, target_risk=0.08, confidence=0.95,
                               score="predictive_entropy")
    assert result.feasible and result.steps == math.ceil(math.log2(3000))
    accept = decision.decide(probabilities, result.to_rule()).accept
    wrong = decision.decide(probabilities, result.to_rule()).predicted != labels
    assert accept.sum() == result.accepted and (accept & wrong).sum() == result.errors
    assert result.coverage == accept.mean() and 0.3 < result.coverage < 1.0
    expected_bound = special.betaincinv(result.errors + 1, result.accepted - result.errors,
                                        1 - 0.05 / result.steps)
    assert result.risk_bound == pytest.approx(expected_bound, abs=1e-9)
    assert result.risk_bound < 0.08
    # The threshold is a calibration image's entropy, and a lower-is-better score: accept <=.
    entropies = aggregate(probabilities).predictive_entropy
    assert result.threshold in entropies
    np.testing.assert_array_equal(accept, entropies <= result.threshold)


def test_sgr_keeps_its_promise_over_many_calibration_draws():
    # Certainty u ~ U(0, 1) and P(error | u) = (1 - u) / 2, so the true selective risk of
    # "accept u >= theta" is (1 - theta) / 4. The bound may fail in at most 1 - confidence
    # of the draws; it is conservative, so the observed rate sits well below.
    rng = np.random.default_rng(11)
    failures, optimism = [], []
    for _ in range(60):
        certainty = rng.uniform(size=1000)
        correct = rng.uniform(size=1000) > (1 - certainty) / 2
        probabilities, labels = two_class_means(0.5 + 0.5 * certainty, correct, rng)
        result = calibration.calibrate(probabilities, labels, target_risk=0.12, confidence=0.8)
        if not result.feasible:  # rare at this size; nothing is promised then
            continue
        true_risk = (1 - (2 * result.threshold - 1)) / 4
        failures.append(true_risk > result.risk_bound)
        optimism.append(true_risk > result.selective_risk)
    assert len(failures) >= 50 and np.mean(failures) <= 0.2
    # The empirical risk alone would be no guarantee: it undershoots in many draws.
    assert np.mean(optimism) > 0.2


def test_sgr_says_plainly_when_the_target_cannot_be_met(rng):
    correct = np.ones(20, dtype=bool)
    probabilities, labels = two_class_means(np.linspace(0.6, 1.0, 20), correct, rng)
    result = calibration.calibrate(probabilities, labels, target_risk=0.01, confidence=0.9)
    # Even no error in 20 images only bounds the risk by 1 - (0.1 / 5) ** (1 / 20) = 0.178.
    assert not result.feasible and result.threshold is None
    assert result.risk_bound >= 0.01
    assert "cannot be guaranteed" in result.message and "20 calibration images" in result.message
    with pytest.raises(calibration.InfeasibleError, match="cannot be guaranteed"):
        result.to_rule()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_risk": 0.0}, "target_risk"),
        ({"target_risk": 1.0}, "target_risk"),
        ({"target_risk": 0.1, "confidence": 1.0}, "confidence"),
        ({"target_risk": 0.1, "score": "margin"}, "unknown score"),
    ],
)
def test_bad_calibration_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibration.calibrate(np.full((2, 4, 2), 0.5), np.zeros(4, dtype=int), **kwargs)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(3, dtype=int), "vector of 4"),
        (np.array([0, 1, 2, 0]), r"\[0, 2\)"),
        (np.array([0, -1, 1, 0]), r"\[0, 2\)"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "integers"),
    ],
)
def test_bad_calibration_labels_are_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        calibration.calibrate(np.full((2, 4, 2), 0.5), labels, target_risk=0.1)


def test_calibration_needs_a_batch():
    with pytest.raises(ValueError, match="batch"):
        calibration.calibrate(np.full((2, 2), 0.5), np.zeros(1, dtype=int), target_risk=0.1)


def test_sgr_within_the_interval_rule_on_a_hand_made_set():
    # Two classes, T = 2, label 0 for all. 200 correct images at (.99, .01) every pass; 100
    # wrong ones at (.4, .6) every pass (intervals are points: accepted by the interval
    # rule); 100 wrong ones whose passes disagree, (1, 0) and (.2, .8): mean (.6, .4), std .4,
    # [.2, 1] overlaps [0, .8], so the interval rule refuses them. Within it, SGR sees
    # m = 300 images, k = ceil(log2 300) = 9 steps, and takes the 200 at .99 with no error.
    sure = np.tile([[0.99, 0.01]], (2, 200, 1))
    wrong = np.tile([[0.4, 0.6]], (2, 100, 1))
    split = np.stack([np.tile([1.0, 0.0], (100, 1)), np.tile([0.2, 0.8], (100, 1))])
    probabilities = np.concatenate([sure, wrong, split], axis=1)
    labels = np.zeros(400, dtype=np.int64)
    result = calibration.calibrate(probabilities, labels, target_risk=0.05, confidence=0.9,
                               within=decision.INTERVAL_RULE)
    assert result.feasible and result.steps == 9 and result.n == 400
    assert (result.threshold, result.accepted, result.errors) == (0.99, 200, 0)
    assert result.coverage == 0.5
    assert result.risk_bound == pytest.approx(1 - (0.1 / 9) ** (1 / 200), abs=1e-12)
    rule = result.to_rule()
    assert decision.check_rule(rule)["rules"] == [
        decision.INTERVAL_RULE, decision.threshold_rule("max_probability", 0.99)]
    assert rule["calibration"]["n"] == 400
    assert decision.decide(probabilities, rule).accept.sum() == 200
    # Within the default, the floor .5 is implied by >= .99 and dropped; an entropy
    # threshold does not imply it, so there it stays.
    within_default = calibration.calibrate(probabilities, labels, target_risk=0.05, within=decision.DEFAULT_RULE)
    assert within_default.to_rule()["rules"] == rule["rules"]
    entropy = calibration.calibrate(probabilities, labels, target_risk=0.05,
                                score="predictive_entropy", within=decision.DEFAULT_RULE).to_rule()
    assert [part.get("score") for part in entropy["rules"]] == [
        None, "max_probability", "predictive_entropy"]


def test_sgr_within_a_rule_that_accepts_nothing_says_so():
    split = np.stack([np.tile([1.0, 0.0], (10, 1)), np.tile([0.0, 1.0], (10, 1))])
    with pytest.raises(calibration.InfeasibleError, match="accepts none of the 10"):
        calibration.calibrate(split, np.zeros(10, dtype=np.int64), target_risk=0.1,
                          within=decision.INTERVAL_RULE)


@pytest.mark.parametrize(
    "errors, trials, delta",
    [(1, 10, 0.1), (3, 50, 0.05), (17, 400, 0.01), (25, 100, 0.2), (99, 100, 0.1)],
)
def test_binomial_bound_is_on_the_safe_side_in_exact_arithmetic(errors, trials, delta):
    # The bound b must satisfy P(Binomial(n, b) <= k) <= delta exactly; the low end of the
    # bisection (1e-13 below) does not. Exact rationals, no floating rounding in the check.
    from fractions import Fraction
    from math import comb

    def cdf(rate: float) -> Fraction:
        b = Fraction(rate)
        return sum(comb(trials, k) * b**k * (1 - b) ** (trials - k) for k in range(errors + 1))

    bound = calibration.binomial_upper_bound(errors, trials, delta)
    assert cdf(bound) <= Fraction(delta)
    # ...and it is tight: a step of 1e-12 down is on the unsafe side.
    assert cdf(bound - 1e-12) > Fraction(delta)


# -- found by a mutation pass (tests/README.md) ------------------------------------------------
@pytest.mark.parametrize("args, words", [((-1, 5, 0.1), "need 0 <= errors"), ((0, -1, 0.1), "need 0 <= errors"),
                                         ((1, 5, 0.0), "delta"), ((1, 5, 1.0), "delta")])
def test_binomial_bound_names_the_bad_argument(args, words):
    with pytest.raises(ValueError, match=words):
        calibration.binomial_upper_bound(*args)


@pytest.mark.parametrize("option", ["target_risk", "confidence"])
def test_calibrate_refuses_a_bool_as_a_fraction(option):
    probabilities = np.full((3, 4, 2), 0.5, np.float32)
    settings = {"target_risk": 0.1, "confidence": 0.9, option: True}
    with pytest.raises(ValueError, match="must be a number"):
        calibration.calibrate(probabilities, np.zeros(4, int), **settings)


@pytest.mark.parametrize("score, sign", [("max_probability", ">="), ("predictive_entropy", "<=")])
def test_calibration_message_states_the_direction_of_the_threshold(score, sign):
    rng = np.random.default_rng(0)
    top = rng.uniform(0.8, 0.99, 300)
    probabilities = np.stack([top, 1 - top], axis=-1)[None].repeat(2, axis=0).astype(np.float32)
    result = calibration.calibrate(probabilities, np.zeros(300, int), target_risk=0.1, confidence=0.9, score=score)
    assert result.feasible and result.message.startswith(f"{score} {sign} ")
