"""tfuq.runtime.abstain: the rules on hand-made passes, the binomial bound against SciPy, and SGR."""

import math

import numpy as np
import pytest
from scipy import special, stats

from tfuq.runtime import abstain
from tfuq.runtime.aggregate import aggregate


def images(*per_image):
    """Per-image (passes, classes) lists -> a (passes, batch, classes) array."""
    return np.stack([np.asarray(image, dtype=np.float64) for image in per_image], axis=1)


# -- interval rule ---------------------------------------------------------------------------
def test_interval_accepts_only_when_the_top_interval_clears_every_other():
    probabilities = images(
        [[0.9, 0.1], [0.7, 0.3]],  # mean (.8, .2), std .1: [.7, .9] vs [.1, .3]: accept
        [[0.9, 0.1], [0.3, 0.7]],  # mean (.6, .4), std .3: [.3, .9] vs [.1, .7]: abstain
    )
    decision = abstain.decide(probabilities, {"rule": "interval", "conf_factor": 1.0})
    assert decision.accept.tolist() == [True, False]
    assert decision.predicted.tolist() == [0, 0]


def test_interval_needs_strictly_separated_intervals():
    # mean (.625, .375), std .125 -> [.5, .75] vs [.25, .5]: the intervals touch at .5.
    touching = images([[0.75, 0.25], [0.5, 0.5]])
    assert abstain.decide(touching, abstain.interval_rule(1.0)).accept.tolist() == [False]
    assert abstain.decide(touching, abstain.interval_rule(0.99)).accept.tolist() == [True]


def test_interval_checks_every_other_class_not_just_the_runner_up():
    # mean (.5, .3, .1, .1), std (0, 0, .1, .1): the runner-up's upper end stays at .3, while
    # classes 2 and 3 reach .1 + .1 Z, which passes class 0's .5 above Z = 4.
    probabilities = images([[0.5, 0.3, 0.2, 0.0], [0.5, 0.3, 0.0, 0.2]])
    assert abstain.decide(probabilities, abstain.interval_rule(3.0)).accept.tolist() == [True]
    assert abstain.decide(probabilities, abstain.interval_rule(5.0)).accept.tolist() == [False]


def test_interval_with_zero_factor_abstains_on_exact_ties_only():
    probabilities = images([[0.5, 0.5], [0.5, 0.5]], [[0.6, 0.4], [0.2, 0.8]])
    decision = abstain.decide(probabilities, abstain.interval_rule(0.0))
    assert decision.accept.tolist() == [False, True]
    assert decision.predicted.tolist() == [0, 1]


def test_interval_always_accepts_with_one_class():
    assert abstain.decide(np.ones((3, 4, 1)), abstain.interval_rule(5.0)).accept.all()


def test_the_rule_conf_factor_wins_over_the_aggregates():
    probabilities = images([[0.9, 0.1], [0.3, 0.7]])  # mean (.6,.4), std .3
    summary = aggregate(probabilities, conf_factor=5.0)
    assert abstain.decide(summary, abstain.interval_rule(0.2)).accept.tolist() == [True]
    assert abstain.decide(summary, abstain.interval_rule(0.4)).accept.tolist() == [False]


# -- threshold rules -------------------------------------------------------------------------
def test_max_probability_accepts_at_or_above_the_threshold():
    probabilities = images([[0.75, 0.25], [0.25, 0.75]], [[0.75, 0.25], [0.75, 0.25]],
                           [[0.5, 0.5], [0.25, 0.75]])  # max mean .5, .75, .625
    rule = abstain.threshold_rule("max_probability", 0.625)
    assert abstain.decide(probabilities, rule).accept.tolist() == [False, True, True]


@pytest.mark.parametrize(
    "score, value",
    [
        ("predictive_entropy", math.log(2)),  # mean (.5, .5)
        ("mutual_information", math.log(2)),  # one-hot passes that disagree
        ("variation_ratio", 0.5),  # one of two passes off the mode
    ],
)
def test_uncertainty_scores_accept_at_or_below_the_threshold(score, value):
    disagree = images([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]])  # 2nd image: certain
    below = abstain.decide(disagree, abstain.threshold_rule(score, value - 1e-9))
    above = abstain.decide(disagree, abstain.threshold_rule(score, value + 1e-9))
    assert below.accept.tolist() == [False, True]
    assert above.accept.tolist() == [True, True]


def test_variation_ratio_threshold_accepts_at_equality():
    passes = images([[1, 0], [1, 0], [0, 1], [0, 1]])  # 2 of 4 off the mode: exactly 0.5
    assert abstain.decide(passes, abstain.threshold_rule("variation_ratio", 0.5)).accept[0]


def test_one_image_gives_a_0d_decision():
    decision = abstain.decide(np.array([[0.8, 0.2], [0.6, 0.4]]), abstain.interval_rule(1.0))
    assert decision.accept.shape == () and bool(decision.accept) is True
    assert int(decision.predicted) == 0


def test_certainty_points_towards_confidence():
    summary = aggregate(images([[0.9, 0.1], [0.9, 0.1]], [[1.0, 0.0], [0.0, 1.0]]))
    assert abstain.certainty(summary, "max_probability").tolist() == summary.max_probability.tolist()
    assert abstain.certainty(summary, "mutual_information")[0] > abstain.certainty(
        summary, "mutual_information")[1]


# -- rule validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule, message",
    [
        ({"rule": "vote"}, "unknown decision rule"),
        ({"conf_factor": 1.0}, "unknown decision rule"),
        ({"rule": "interval"}, "needs 'conf_factor'"),
        ({"rule": "interval", "conf_factor": -1}, "non-negative"),
        ({"rule": "interval", "conf_factor": float("nan")}, "finite"),
        ({"rule": "interval", "conf_factor": "1"}, "number"),
        ({"rule": "interval", "conf_factor": True}, "number"),
        ({"rule": "threshold", "score": "confidence", "threshold": 0.5}, "score must be one of"),
        ({"rule": "threshold", "score": "max_probability"}, "needs 'threshold'"),
        ({"rule": "threshold", "score": "max_probability", "threshold": float("inf")}, "finite"),
        ([("rule", "interval")], "is a dict"),
    ],
)
def test_malformed_rules_are_rejected_with_the_reason(rule, message):
    with pytest.raises(abstain.RuleError, match=message):
        abstain.check_rule(rule)
    with pytest.raises(ValueError):
        abstain.decide(np.ones((2, 1, 2)) / 2, rule)


def test_rules_keep_extra_keys_and_read_as_text():
    rule = {"rule": "threshold", "score": "mutual_information", "threshold": 1,
            "calibration": {"n": 10}}
    checked = abstain.check_rule(rule)
    assert checked == {**rule, "threshold": 1.0} and isinstance(checked["threshold"], float)
    assert abstain.describe_rule(rule) == "mutual_information <= 1"
    assert abstain.describe_rule(abstain.interval_rule(1.5)) == "interval (Z = 1.5)"
    assert abstain.describe_rule(abstain.threshold_rule("max_probability", 0.9)) == (
        "max_probability >= 0.9")


# -- binomial bound --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "errors, trials, delta",
    [(1, 10, 0.1), (3, 50, 0.05), (17, 400, 0.01), (250, 1000, 0.2), (999, 1000, 0.1),
     (40, 10000, 0.001)],
)
def test_binomial_bound_matches_clopper_pearson_from_scipy(errors, trials, delta):
    bound = abstain.binomial_upper_bound(errors, trials, delta)
    assert bound == pytest.approx(special.betaincinv(errors + 1, trials - errors, 1 - delta), abs=1e-10)
    assert stats.binom.cdf(errors, trials, bound) == pytest.approx(delta, rel=1e-6)
    assert stats.binom.cdf(errors, trials, bound) <= delta * (1 + 1e-9)  # the safe side


def test_binomial_bound_edge_cases():
    assert abstain.binomial_upper_bound(0, 10, 0.1) == pytest.approx(1 - 0.1 ** 0.1, abs=1e-15)
    assert abstain.binomial_upper_bound(5, 5, 0.1) == 1.0
    assert abstain.binomial_upper_bound(0, 0, 0.1) == 1.0
    for args in [(-1, 5, 0.1), (6, 5, 0.1), (1, 5, 0.0), (1, 5, 1.0)]:
        with pytest.raises(ValueError):
            abstain.binomial_upper_bound(*args)


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
    result = abstain.calibrate(probabilities, labels, target_risk=0.05, confidence=0.9)
    assert result.feasible and result.steps == 9 and result.n == 400
    assert (result.threshold, result.accepted, result.errors) == (0.99, 300, 0)
    assert result.coverage == 0.75 and result.selective_risk == 0.0
    assert result.risk_bound == pytest.approx(1 - (0.1 / 9) ** (1 / 300), abs=1e-12)
    rule = result.to_rule()
    assert rule["rule"] == "threshold" and rule["score"] == "max_probability"
    assert rule["calibration"]["target_risk"] == 0.05 and rule["calibration"]["method"] == "sgr"
    assert abstain.decide(probabilities, rule).accept.sum() == 300


def test_sgr_reports_what_it_chose_consistently(rng):
    certainty = rng.uniform(size=3000)
    correct = rng.uniform(size=3000) > 0.4 * (1 - certainty)  # errors among the unsure
    probabilities, labels = two_class_means(0.5 + 0.5 * certainty, correct, rng)
    result = abstain.calibrate(probabilities, labels, target_risk=0.08, confidence=0.95,
                               score="predictive_entropy")
    assert result.feasible and result.steps == math.ceil(math.log2(3000))
    accept = abstain.decide(probabilities, result.to_rule()).accept
    wrong = abstain.decide(probabilities, result.to_rule()).predicted != labels
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
        result = abstain.calibrate(probabilities, labels, target_risk=0.12, confidence=0.8)
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
    result = abstain.calibrate(probabilities, labels, target_risk=0.01, confidence=0.9)
    # Even no error in 20 images only bounds the risk by 1 - (0.1 / 5) ** (1 / 20) = 0.178.
    assert not result.feasible and result.threshold is None
    assert result.risk_bound >= 0.01
    assert "cannot be guaranteed" in result.message and "20 calibration images" in result.message
    with pytest.raises(abstain.InfeasibleError, match="cannot be guaranteed"):
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
        abstain.calibrate(np.full((2, 4, 2), 0.5), np.zeros(4, dtype=int), **kwargs)


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
        abstain.calibrate(np.full((2, 4, 2), 0.5), labels, target_risk=0.1)


def test_calibration_needs_a_batch():
    with pytest.raises(ValueError, match="batch"):
        abstain.calibrate(np.full((2, 2), 0.5), np.zeros(1, dtype=int), target_risk=0.1)


# -- the all rule ----------------------------------------------------------------------------
def test_all_rule_refuses_the_improbable_prediction_the_interval_rule_accepts():
    # A white image on a 1000-class model (issue 10): the same passes every time, top class
    # 0.024, every other (1 - 0.024) / 999 ~ 0.00098. Std 0, so the intervals are points and
    # 0.024 > 0.00098: the interval rule accepts; 0.024 < 0.5: the floor refuses.
    white = np.full((2, 1, 1000), (1 - 0.024) / 999)
    white[:, 0, 7] = 0.024
    assert abstain.decide(white, abstain.INTERVAL_RULE).accept.tolist() == [True]
    decision = abstain.decide(white, abstain.DEFAULT_RULE)
    assert decision.accept.tolist() == [False] and decision.predicted.tolist() == [7]
    assert decision.failed_part.tolist() == [1]  # the floor, the rule's second part


def test_all_rule_accepts_a_confident_image_both_parts_accept():
    # mean (.85, .075, .075), std (.05, .025, .025): [.8, .9] clears .1; .85 >= .5.
    confident = images([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])
    decision = abstain.decide(confident, abstain.DEFAULT_RULE)
    assert decision.accept.tolist() == [True] and decision.failed_part.tolist() == [-1]
    assert abstain.decide(confident, abstain.INTERVAL_RULE).failed_part is None


def test_all_rule_names_the_first_part_that_refuses_and_ties_accept():
    probabilities = images(
        [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]],  # max probability exactly 0.5: the floor accepts
        [[0.75, 0.25, 0.0], [0.5, 0.5, 0.0]],    # lower[0] = upper[1] = .5: the interval refuses
        [[0.625, 0.375, 0.0], [0.125, 0.375, 0.5]],  # mean (.375, .375, .25): both refuse
    )
    forward = abstain.decide(probabilities, abstain.DEFAULT_RULE)
    assert forward.accept.tolist() == [True, False, False]
    assert forward.failed_part.tolist() == [-1, 0, 0]
    floor_first = abstain.all_rule(abstain.DEFAULT_RULE["rules"][1], abstain.INTERVAL_RULE)
    assert abstain.decide(probabilities, floor_first).failed_part.tolist() == [-1, 1, 0]
    one_image = abstain.decide(probabilities[:, 1], abstain.DEFAULT_RULE)
    assert one_image.failed_part.shape == () and int(one_image.failed_part) == 0


def test_all_rule_aggregates_with_its_interval_parts_width():
    rule = abstain.all_rule(abstain.threshold_rule("max_probability", 0.1), abstain.interval_rule(2.5))
    assert abstain.rule_conf_factor(rule) == 2.5
    assert abstain.decide(images([[0.6, 0.4]]), rule).aggregate.conf_factor == 2.5
    assert abstain.describe_rule(abstain.DEFAULT_RULE) == (
        "interval (Z = 1) and max_probability >= 0.5")


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"rule": "all"}, "needs 'rules', a list"),
        ({"rule": "all", "rules": {"rule": "interval", "conf_factor": 1}}, "needs 'rules', a list"),
        ({"rule": "all", "rules": []}, "1 to 8 rules, got 0"),
        ({"rule": "all", "rules": [abstain.INTERVAL_RULE] * 9}, "1 to 8 rules, got 9"),
        ({"rule": "all", "rules": [abstain.DEFAULT_RULE]}, "part 0: 'all' cannot be a part"),
        ({"rule": "all", "rules": [abstain.INTERVAL_RULE, {"rule": "interval"}]},
         "part 1: interval rule needs 'conf_factor'"),
        ({"rule": "all", "rules": [{"rule": "threshold", "score": "max_probability",
                                    "threshold": "0.5"}]}, "part 0: threshold must be a number"),
        ({"rule": "all", "rules": ["interval"]}, "part 0: a decision rule is a dict"),
    ],
)
def test_malformed_all_rules_are_rejected_in_one_line(rule, message):
    with pytest.raises(abstain.RuleError, match=message) as error:
        abstain.check_rule(rule)
    assert "\n" not in str(error.value)


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
    result = abstain.calibrate(probabilities, labels, target_risk=0.05, confidence=0.9,
                               within=abstain.INTERVAL_RULE)
    assert result.feasible and result.steps == 9 and result.n == 400
    assert (result.threshold, result.accepted, result.errors) == (0.99, 200, 0)
    assert result.coverage == 0.5
    assert result.risk_bound == pytest.approx(1 - (0.1 / 9) ** (1 / 200), abs=1e-12)
    rule = result.to_rule()
    assert abstain.check_rule(rule)["rules"] == [
        abstain.INTERVAL_RULE, abstain.threshold_rule("max_probability", 0.99)]
    assert rule["calibration"]["n"] == 400
    assert abstain.decide(probabilities, rule).accept.sum() == 200
    # Within the default, the floor .5 is implied by >= .99 and dropped; an entropy
    # threshold does not imply it, so there it stays.
    within_default = abstain.calibrate(probabilities, labels, target_risk=0.05, within=abstain.DEFAULT_RULE)
    assert within_default.to_rule()["rules"] == rule["rules"]
    entropy = abstain.calibrate(probabilities, labels, target_risk=0.05,
                                score="predictive_entropy", within=abstain.DEFAULT_RULE).to_rule()
    assert [part.get("score") for part in entropy["rules"]] == [
        None, "max_probability", "predictive_entropy"]


def test_sgr_within_a_rule_that_accepts_nothing_says_so():
    split = np.stack([np.tile([1.0, 0.0], (10, 1)), np.tile([0.0, 1.0], (10, 1))])
    with pytest.raises(abstain.InfeasibleError, match="accepts none of the 10"):
        abstain.calibrate(split, np.zeros(10, dtype=np.int64), target_risk=0.1,
                          within=abstain.INTERVAL_RULE)


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

    bound = abstain.binomial_upper_bound(errors, trials, delta)
    assert cdf(bound) <= Fraction(delta)
    # ...and it is tight: a step of 1e-12 down is on the unsafe side.
    assert cdf(bound - 1e-12) > Fraction(delta)


# -- found by a mutation pass (tests/README.md) ------------------------------------------------
@pytest.mark.parametrize("args, words", [((-1, 5, 0.1), "need 0 <= errors"), ((0, -1, 0.1), "need 0 <= errors"),
                                         ((1, 5, 0.0), "delta"), ((1, 5, 1.0), "delta")])
def test_binomial_bound_names_the_bad_argument(args, words):
    with pytest.raises(ValueError, match=words):
        abstain.binomial_upper_bound(*args)


@pytest.mark.parametrize("option", ["target_risk", "confidence"])
def test_calibrate_refuses_a_bool_as_a_fraction(option):
    probabilities = np.full((3, 4, 2), 0.5, np.float32)
    settings = {"target_risk": 0.1, "confidence": 0.9, option: True}
    with pytest.raises(ValueError, match="must be a number"):
        abstain.calibrate(probabilities, np.zeros(4, int), **settings)


@pytest.mark.parametrize("score, sign", [("max_probability", ">="), ("predictive_entropy", "<=")])
def test_calibration_message_states_the_direction_of_the_threshold(score, sign):
    rng = np.random.default_rng(0)
    top = rng.uniform(0.8, 0.99, 300)
    probabilities = np.stack([top, 1 - top], axis=-1)[None].repeat(2, axis=0).astype(np.float32)
    result = abstain.calibrate(probabilities, np.zeros(300, int), target_risk=0.1, confidence=0.9, score=score)
    assert result.feasible and result.message.startswith(f"{score} {sign} ")
