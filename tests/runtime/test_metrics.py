"""tfuq.runtime.metrics: hand-computed cases, scikit-learn as an independent route, bad input."""

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score, roc_curve

from tfuq.runtime import metrics

LABELS = np.array([0, 1, 2, 2, 1, 0])
PREDICTED = np.array([0, 1, 1, 2, 0, 0])  # wrong at 2 and 4
ACCEPT = np.array([True, True, False, True, False, False])  # accepted: 0, 1, 3 (all right)


# -- classification --------------------------------------------------------------------------
def test_accuracy_and_micro_f1_by_hand():
    assert metrics.accuracy(LABELS, PREDICTED) == pytest.approx(4 / 6)
    assert metrics.micro_f1(LABELS, PREDICTED) == pytest.approx(4 / 6)
    assert metrics.accuracy(LABELS, PREDICTED, ACCEPT) == 1.0
    assert metrics.micro_f1(LABELS, PREDICTED, ACCEPT) == 1.0
    assert metrics.coverage(ACCEPT) == 0.5
    assert metrics.selective_risk(LABELS, PREDICTED, ACCEPT) == 0.0
    # Abstained: 2 (wrong), 4 (wrong), 5 (right).
    assert metrics.abstained_error_rate(LABELS, PREDICTED, ACCEPT) == pytest.approx(2 / 3)


def test_micro_f1_matches_scikit_learn_on_all_and_on_accepted(rng):
    labels = rng.integers(0, 7, 500)
    predicted = np.where(rng.uniform(size=500) < 0.6, labels, rng.integers(0, 9, 500))
    accept = rng.uniform(size=500) < 0.7
    assert metrics.micro_f1(labels, predicted) == pytest.approx(
        f1_score(labels, predicted, average="micro"), abs=1e-15)
    assert metrics.micro_f1(labels, predicted, accept) == pytest.approx(
        f1_score(labels[accept], predicted[accept], average="micro"), abs=1e-15)


def test_rates_over_empty_sets_are_nan():
    nothing = np.zeros(6, dtype=bool)
    assert math.isnan(metrics.accuracy(LABELS, PREDICTED, nothing))
    assert math.isnan(metrics.micro_f1(LABELS, PREDICTED, nothing))
    assert math.isnan(metrics.selective_risk(LABELS, PREDICTED, nothing))
    assert math.isnan(metrics.abstained_error_rate(LABELS, PREDICTED, ~nothing))
    assert metrics.coverage(nothing) == 0.0


def test_accept_may_be_zeros_and_ones():
    assert metrics.coverage([1, 0, 1, 1]) == 0.75


# -- risk-coverage -----------------------------------------------------------------------------
def test_risk_coverage_curve_and_aurc_by_hand():
    labels = [0, 0, 0, 0]
    predicted = [0, 1, 0, 1]  # wrong at 1 and 3
    certainty = [0.9, 0.8, 0.7, 0.6]
    coverage, risk, threshold = metrics.risk_coverage_curve(labels, predicted, certainty)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0, 1 / 2, 1 / 3, 1 / 2])
    assert threshold.tolist() == [0.9, 0.8, 0.7, 0.6]
    assert metrics.aurc(labels, predicted, certainty) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_tied_certainties_enter_together():
    labels = [0, 0, 0, 0]
    predicted = [0, 1, 0, 0]
    coverage, risk, _ = metrics.risk_coverage_curve(labels, predicted, [0.9, 0.5, 0.5, 0.1])
    assert coverage.tolist() == [0.25, 0.75, 1.0]
    assert risk == pytest.approx([0, 1 / 3, 1 / 4])
    # Step integral: 0.25 * 0 + 0.5 * 1/3 + 0.25 * 1/4, whatever order the tie is in.
    expected = 0.5 / 3 + 0.25 / 4
    assert metrics.aurc(labels, predicted, [0.9, 0.5, 0.5, 0.1]) == pytest.approx(expected)
    assert metrics.aurc([0, 0, 0, 0], [0, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(expected)


def test_aurc_with_the_error_ranked_last_no_error_or_constant_certainty():
    assert metrics.aurc([0, 0, 0], [0, 0, 1], [3.0, 2.0, 1.0]) == pytest.approx(1 / 9)
    assert metrics.aurc([0, 0, 0], [0, 0, 0], [3.0, 2.0, 1.0]) == 0.0
    assert metrics.aurc([0, 0, 0, 0], [1, 0, 1, 0], np.ones(4)) == 0.5


# -- AUROC and FPR -----------------------------------------------------------------------------
def test_auroc_matches_scikit_learn_with_ties(rng):
    positive = rng.uniform(size=400) < 0.3
    scores = np.round(rng.normal(size=400) + positive, 1)  # rounding makes many ties
    assert metrics.auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)


def test_auroc_by_hand():
    assert metrics.auroc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert metrics.auroc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert metrics.auroc([1, 1, 1, 1], [False, True, False, True]) == 0.5


def test_fpr_at_95_tpr_matches_the_roc_curve_of_scikit_learn(rng):
    positive = rng.uniform(size=1000) < 0.4
    scores = np.round(rng.normal(size=1000) + 1.5 * positive, 2)
    fpr, tpr, _ = roc_curve(positive, scores, drop_intermediate=False)
    expected = fpr[np.argmax(tpr >= 0.95)]
    assert metrics.fpr_at_tpr(scores, positive, 0.95) == pytest.approx(expected, abs=1e-15)


def test_fpr_at_tpr_by_hand():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    positive = [False, True, False, True, False, True, True, True, True, True]
    # 7 positives; TPR >= 0.95 needs all 7, so the threshold is the lowest positive, 0.2:
    # negatives at 0.3 and 0.5 are above it, 0.1 is not.
    assert metrics.fpr_at_tpr(scores, positive) == pytest.approx(2 / 3)
    # TPR >= 0.5 needs 4 of 7: threshold 0.7, no negative above it.
    assert metrics.fpr_at_tpr(scores, positive, tpr=0.5) == 0.0


# -- calibration -----------------------------------------------------------------------------
def test_ece_by_hand_with_15_bins():
    probabilities = [[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.6, 0.4], [0.5, 0.5]]
    labels = [0, 1, 0, 0, 1]
    # Bins of width 1/15: .95 -> (14/15, 1]; .6 -> (8/15, 9/15]; .5 -> (7/15, 8/15].
    # |1/2 - .95| * 2/5 + |1 - .6| * 2/5 + |0 - .5| * 1/5  (0.5 predicts class 0: wrong)
    expected = 0.45 * 0.4 + 0.4 * 0.4 + 0.5 * 0.2
    assert metrics.expected_calibration_error(labels, probabilities) == pytest.approx(expected)


def test_ece_matches_a_loop_over_bins(rng):
    probabilities = rng.dirichlet(np.ones(5) * 0.4, size=2000)
    labels = rng.integers(0, 5, 2000)
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    expected = 0.0
    for lower, upper in zip(np.arange(15) / 15, np.arange(1, 16) / 15, strict=True):
        inside = (confidence > lower) & (confidence <= upper)
        if inside.any():
            expected += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    assert metrics.expected_calibration_error(labels, probabilities) == pytest.approx(expected, abs=1e-12)
    table = metrics.calibration_bins(labels, probabilities)
    assert table["count"].sum() == 2000 and len(table["edges"]) == 16


def test_a_perfectly_calibrated_model_has_zero_ece():
    probabilities = [[0.75, 0.25]] * 4
    assert metrics.expected_calibration_error([0, 0, 0, 1], probabilities) == 0.0


def test_brier_score_by_hand_and_against_scikit_learn(rng):
    assert metrics.brier_score([0, 1], [[1.0, 0.0], [1.0, 0.0]]) == 1.0  # (0 + 2) / 2
    probabilities = rng.dirichlet(np.ones(4), size=300)
    labels = rng.integers(0, 4, 300)
    expected = brier_score_loss(labels, probabilities, labels=[0, 1, 2, 3])
    assert metrics.brier_score(labels, probabilities) == pytest.approx(expected, abs=1e-12)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.accuracy([0, 1], [0]), "differ in length"),
        (lambda: metrics.accuracy([[0, 1]], [[0, 1]]), "vector"),
        (lambda: metrics.accuracy([], []), "empty"),
        (lambda: metrics.accuracy([0.0, 1.0], [0, 1]), "integer"),
        (lambda: metrics.accuracy([True, False], [0, 1]), "integer"),
        (lambda: metrics.accuracy([0, -1], [0, 1]), "non-negative"),
        (lambda: metrics.micro_f1([0, 1], [0, 1], [True]), "differ in length"),
        (lambda: metrics.coverage([0.5, 1.0]), "booleans"),
        (lambda: metrics.coverage([2, 1]), "booleans"),
        (lambda: metrics.aurc([0, 1], [0, 1], [0.5, np.nan]), "NaN"),
        (lambda: metrics.aurc([0, 1], [0, 1], [0.5, np.inf]), "Inf"),
        (lambda: metrics.auroc([0.1, 0.2], [True, True]), "both positives and negatives"),
        (lambda: metrics.auroc([0.1, 0.2], [False, False]), "both positives and negatives"),
        (lambda: metrics.auroc(["a", "b"], [True, False]), "numbers"),
        (lambda: metrics.fpr_at_tpr([0.1, 0.2], [True, False], tpr=0.0), "tpr"),
        (lambda: metrics.brier_score([0, 2], [[0.5, 0.5], [0.5, 0.5]]), "out of range"),
        (lambda: metrics.brier_score([0], [[0.5, np.nan]]), "NaN"),
        (lambda: metrics.brier_score([0], [[1.5, -0.5]]), r"\[0, 1\]"),
        (lambda: metrics.brier_score([0], [[[0.5, 0.5]]]), "average the MC passes"),
        (lambda: metrics.brier_score([0, 1], [[0.5, 0.5]]), "differ in length"),
        (lambda: metrics.expected_calibration_error([0], [[0.5, 0.5]], bins=0), "bins"),
        (lambda: metrics.expected_calibration_error([0], [[np.inf, 0.5]]), "Inf"),
        (lambda: metrics.calibration_bins([0], np.zeros((1, 0))), "empty"),
    ],
)
def test_bad_input_is_rejected_with_the_reason(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    # Bins are (b/10, (b+1)/10]: 0.5 is the top of bin 4, 0.55 sits in bin 5. Alone in its
    # bin each is off by its whole confidence gap: (|1 - 0.5| + |0 - 0.55|) / 2 = 0.525.
    # Putting 0.5 into bin 5 instead would give |0.5 - 0.525| = 0.025.
    probabilities = [[0.5, 0.5], [0.55, 0.45]]
    labels = [0, 1]
    table = metrics.calibration_bins(labels, probabilities, bins=10)
    assert table["count"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert metrics.expected_calibration_error(labels, probabilities, bins=10) == pytest.approx(0.525)
    # The ends: 0 joins the first bin, 1 the last.
    ends = metrics.calibration_bins([0, 0], [[1.0, 0.0], [0.0, 0.0]], bins=4)["count"]
    assert ends.tolist() == [1, 0, 0, 1]


# -- found by a mutation pass (tests/README.md): each kills a mutant that survived -------------
def test_probabilities_just_outside_the_unit_interval_are_refused_and_rounding_is_not():
    labels = [0, 0]
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        metrics.expected_calibration_error(labels, [[1.01, 0.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        metrics.expected_calibration_error(labels, [[0.5, 0.5], [-0.01, 0.0]])
    # float32 sums land a hair above 1: 1 + 1e-7 is rounding, not an error.
    assert metrics.expected_calibration_error(labels, [[1 + 1e-7, 0.0], [0.5, 0.5]]) >= 0


def test_fpr_at_tpr_does_not_demand_one_positive_more_for_float_rounding():
    # 0.28 * 25 = 7.000000000000001 in floating point: TPR 0.28 needs 7 positives, not 8.
    positive_scores = np.arange(25, 0, -1) / 25.0  # 1.0, 0.96, ..., 0.04
    negative_scores = np.array([0.74])  # below the 7th positive (0.76), above the 8th (0.72)
    scores = np.concatenate([positive_scores, negative_scores])
    positive = np.r_[np.ones(25, bool), False]
    assert metrics.fpr_at_tpr(scores, positive, tpr=0.28) == 0.0
    assert metrics.fpr_at_tpr(scores, positive, tpr=1.0) == 1.0  # tpr 1 is allowed


def test_one_bin_is_allowed_and_bad_bin_counts_are_named():
    assert metrics.expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], bins=1) == pytest.approx(0.35)
    for bins in (0, True, 2.0):
        with pytest.raises(ValueError, match="bins must be a positive integer"):
            metrics.calibration_bins([0], [[1.0, 0.0]], bins=bins)
