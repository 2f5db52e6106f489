"""tfuq.runtime.decision: the rules on hand-made passes."""

import math

import numpy as np
import pytest

from tfuq.runtime import decision
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
    made = decision.decide(probabilities, {"rule": "interval", "conf_factor": 1.0})
    assert made.accept.tolist() == [True, False]
    assert made.predicted.tolist() == [0, 0]


def test_interval_needs_strictly_separated_intervals():
    # mean (.625, .375), std .125 -> [.5, .75] vs [.25, .5]: the intervals touch at .5.
    touching = images([[0.75, 0.25], [0.5, 0.5]])
    assert decision.decide(touching, decision.interval_rule(1.0)).accept.tolist() == [False]
    assert decision.decide(touching, decision.interval_rule(0.99)).accept.tolist() == [True]


def test_interval_checks_every_other_class_not_just_the_runner_up():
    # mean (.5, .3, .1, .1), std (0, 0, .1, .1): the runner-up's upper end stays at .3, while
    # classes 2 and 3 reach .1 + .1 Z, which passes class 0's .5 above Z = 4.
    probabilities = images([[0.5, 0.3, 0.2, 0.0], [0.5, 0.3, 0.0, 0.2]])
    assert decision.decide(probabilities, decision.interval_rule(3.0)).accept.tolist() == [True]
    assert decision.decide(probabilities, decision.interval_rule(5.0)).accept.tolist() == [False]


def test_interval_with_zero_factor_abstains_on_exact_ties_only():
    probabilities = images([[0.5, 0.5], [0.5, 0.5]], [[0.6, 0.4], [0.2, 0.8]])
    made = decision.decide(probabilities, decision.interval_rule(0.0))
    assert made.accept.tolist() == [False, True]
    assert made.predicted.tolist() == [0, 1]


def test_interval_always_accepts_with_one_class():
    assert decision.decide(np.ones((3, 4, 1)), decision.interval_rule(5.0)).accept.all()


def test_the_rule_conf_factor_wins_over_the_aggregates():
    probabilities = images([[0.9, 0.1], [0.3, 0.7]])  # mean (.6,.4), std .3
    summary = aggregate(probabilities, conf_factor=5.0)
    assert decision.decide(summary, decision.interval_rule(0.2)).accept.tolist() == [True]
    assert decision.decide(summary, decision.interval_rule(0.4)).accept.tolist() == [False]


# -- threshold rules -------------------------------------------------------------------------
def test_max_probability_accepts_at_or_above_the_threshold():
    probabilities = images([[0.75, 0.25], [0.25, 0.75]], [[0.75, 0.25], [0.75, 0.25]],
                           [[0.5, 0.5], [0.25, 0.75]])  # max mean .5, .75, .625
    rule = decision.threshold_rule("max_probability", 0.625)
    assert decision.decide(probabilities, rule).accept.tolist() == [False, True, True]


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
    below = decision.decide(disagree, decision.threshold_rule(score, value - 1e-9))
    above = decision.decide(disagree, decision.threshold_rule(score, value + 1e-9))
    assert below.accept.tolist() == [False, True]
    assert above.accept.tolist() == [True, True]


def test_variation_ratio_threshold_accepts_at_equality():
    passes = images([[1, 0], [1, 0], [0, 1], [0, 1]])  # 2 of 4 off the mode: exactly 0.5
    assert decision.decide(passes, decision.threshold_rule("variation_ratio", 0.5)).accept[0]


def test_one_image_gives_a_0d_decision():
    made = decision.decide(np.array([[0.8, 0.2], [0.6, 0.4]]), decision.interval_rule(1.0))
    assert made.accept.shape == () and bool(made.accept) is True
    assert int(made.predicted) == 0


def test_certainty_points_towards_confidence():
    summary = aggregate(images([[0.9, 0.1], [0.9, 0.1]], [[1.0, 0.0], [0.0, 1.0]]))
    assert decision.certainty(summary, "max_probability").tolist() == summary.max_probability.tolist()
    assert decision.certainty(summary, "mutual_information")[0] > decision.certainty(
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
    with pytest.raises(decision.RuleError, match=message):
        decision.check_rule(rule)
    with pytest.raises(ValueError):
        decision.decide(np.ones((2, 1, 2)) / 2, rule)


def test_rules_keep_extra_keys_and_read_as_text():
    rule = {"rule": "threshold", "score": "mutual_information", "threshold": 1,
            "calibration": {"n": 10}}
    checked = decision.check_rule(rule)
    assert checked == {**rule, "threshold": 1.0} and isinstance(checked["threshold"], float)
    assert decision.describe_rule(rule) == "mutual_information <= 1"
    assert decision.describe_rule(decision.interval_rule(1.5)) == "interval (Z = 1.5)"
    assert decision.describe_rule(decision.threshold_rule("max_probability", 0.9)) == (
        "max_probability >= 0.9")


# -- the all rule ----------------------------------------------------------------------------
def test_all_rule_refuses_the_improbable_prediction_the_interval_rule_accepts():
    # A white image on a 1000-class model (issue 10): the same passes every time, top class
    # 0.024, every other (1 - 0.024) / 999 ~ 0.00098. Std 0, so the intervals are points and
    # 0.024 > 0.00098: the interval rule accepts; 0.024 < 0.5: the floor refuses.
    white = np.full((2, 1, 1000), (1 - 0.024) / 999)
    white[:, 0, 7] = 0.024
    assert decision.decide(white, decision.INTERVAL_RULE).accept.tolist() == [True]
    made = decision.decide(white, decision.DEFAULT_RULE)
    assert made.accept.tolist() == [False] and made.predicted.tolist() == [7]
    assert made.failed_part.tolist() == [1]  # the floor, the rule's second part


def test_all_rule_accepts_a_confident_image_both_parts_accept():
    # mean (.85, .075, .075), std (.05, .025, .025): [.8, .9] clears .1; .85 >= .5.
    confident = images([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])
    made = decision.decide(confident, decision.DEFAULT_RULE)
    assert made.accept.tolist() == [True] and made.failed_part.tolist() == [-1]
    assert decision.decide(confident, decision.INTERVAL_RULE).failed_part is None


def test_all_rule_names_the_first_part_that_refuses_and_ties_accept():
    probabilities = images(
        [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]],  # max probability exactly 0.5: the floor accepts
        [[0.75, 0.25, 0.0], [0.5, 0.5, 0.0]],    # lower[0] = upper[1] = .5: the interval refuses
        [[0.625, 0.375, 0.0], [0.125, 0.375, 0.5]],  # mean (.375, .375, .25): both refuse
    )
    forward = decision.decide(probabilities, decision.DEFAULT_RULE)
    assert forward.accept.tolist() == [True, False, False]
    assert forward.failed_part.tolist() == [-1, 0, 0]
    floor_first = decision.all_rule(decision.DEFAULT_RULE["rules"][1], decision.INTERVAL_RULE)
    assert decision.decide(probabilities, floor_first).failed_part.tolist() == [-1, 1, 0]
    one_image = decision.decide(probabilities[:, 1], decision.DEFAULT_RULE)
    assert one_image.failed_part.shape == () and int(one_image.failed_part) == 0


def test_all_rule_aggregates_with_its_interval_parts_width():
    rule = decision.all_rule(decision.threshold_rule("max_probability", 0.1), decision.interval_rule(2.5))
    assert decision.rule_conf_factor(rule) == 2.5
    assert decision.decide(images([[0.6, 0.4]]), rule).aggregate.conf_factor == 2.5
    assert decision.describe_rule(decision.DEFAULT_RULE) == (
        "interval (Z = 1) and max_probability >= 0.5")


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"rule": "all"}, "needs 'rules', a list"),
        ({"rule": "all", "rules": {"rule": "interval", "conf_factor": 1}}, "needs 'rules', a list"),
        ({"rule": "all", "rules": []}, "1 to 8 rules, got 0"),
        ({"rule": "all", "rules": [decision.INTERVAL_RULE] * 9}, "1 to 8 rules, got 9"),
        ({"rule": "all", "rules": [decision.DEFAULT_RULE]}, "part 0: 'all' cannot be a part"),
        ({"rule": "all", "rules": [decision.INTERVAL_RULE, {"rule": "interval"}]},
         "part 1: interval rule needs 'conf_factor'"),
        ({"rule": "all", "rules": [{"rule": "threshold", "score": "max_probability",
                                    "threshold": "0.5"}]}, "part 0: threshold must be a number"),
        ({"rule": "all", "rules": ["interval"]}, "part 0: a decision rule is a dict"),
    ],
)
def test_malformed_all_rules_are_rejected_in_one_line(rule, message):
    with pytest.raises(decision.RuleError, match=message) as error:
        decision.check_rule(rule)
    assert "\n" not in str(error.value)
