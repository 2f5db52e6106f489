"""How good the decisions are: plain functions over arrays that return floats.

NumPy only. Every function validates its input (NaN, Inf, shapes, label range) and raises a
ValueError that says what is wrong. Conventions:

- ``labels`` and ``predicted`` are non-negative integer class indices, ``(batch,)``.
- ``accept`` is a boolean ``(batch,)``: True where the model predicts, False where it abstains.
- ``probabilities`` are per-image class probabilities ``(batch, classes)``, e.g. the MC mean
  :attr:`tfuq.runtime.aggregate.Aggregate.mean` (not the MC passes ``(passes, batch, classes)``).
- ``certainty`` is a per-image score where larger means more confident
  (:func:`tfuq.runtime.abstain.certainty`); ``scores`` for AUROC and FPR are larger for the
  positive class (an error, or an out-of-distribution image).
- Rates over an empty set (accuracy on accepted images when everything was rejected) are
  ``nan``, not an error: the set is legitimately empty.

    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    >>> selective_risk([0, 1, 2, 2], [0, 1, 1, 2], accept=[True, True, False, True])
    0.0
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


# -- validation ------------------------------------------------------------------------------
def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a vector (batch,), got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty")
    return array


def _classes(values, name: str, classes: int | None = None) -> np.ndarray:
    array = _vector(values, name)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(f"{name} must be non-negative, found {array.min()}")
    if classes is not None and array.max() >= classes:
        raise ValueError(f"{name} has class {array.max()}, out of range for {classes} classes")
    return array.astype(np.int64)


def _finite_floats(array: np.ndarray, name: str, contains: str = "contains") -> np.ndarray:
    """``array`` as float64 after checking it holds finite real numbers (not booleans)."""
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} {contains} {'NaN' if np.isnan(array).any() else 'Inf'}")
    return array


def _reals(values, name: str) -> np.ndarray:
    return _finite_floats(_vector(values, name), name)


def _flags(values, name: str) -> np.ndarray:
    array = _vector(values, name)
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.integer) or not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be booleans (or 0/1), got dtype {array.dtype}")
        array = array.astype(bool)
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise ValueError(f"inputs differ in length: {shown}")


def _probabilities(values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(
            f"probabilities must be (batch, classes), got shape {array.shape} "
            "(average the MC passes first: tfuq.runtime.aggregate.aggregate(...).mean)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"probabilities are empty (shape {array.shape})")
    array = _finite_floats(array, "probabilities", "contain")
    if array.min() < 0 or array.max() > 1 + 1e-6:
        raise ValueError(
            f"probabilities must be in [0, 1], found {array.min():.6g}..{array.max():.6g}"
        )
    return array


def _labelled(labels, predicted, accept=None):
    labels = _classes(labels, "labels")
    predicted = _classes(predicted, "predicted")
    if accept is None:
        _same_length(labels=labels, predicted=predicted)
        return labels, predicted, None
    accept = _flags(accept, "accept")
    _same_length(labels=labels, predicted=predicted, accept=accept)
    return labels, predicted, accept


def _binary_scores(scores, positive) -> tuple[np.ndarray, np.ndarray]:
    scores = _reals(scores, "scores")
    positive = _flags(positive, "positive")
    _same_length(scores=scores, positive=positive)
    if positive.all() or not positive.any():
        kind = "positive" if positive.all() else "negative"
        raise ValueError(f"every sample is {kind}: AUROC and FPR need both positives and negatives")
    return scores, positive


# -- classification --------------------------------------------------------------------------
def accuracy(labels, predicted, accept=None) -> float:
    """Share of images whose prediction equals the label; with ``accept``, of accepted ones.

    Returns ``nan`` when ``accept`` rejects every image.
    """
    labels, predicted, accept = _labelled(labels, predicted, accept)
    correct = labels == predicted
    if accept is not None:
        correct = correct[accept]
    return float(correct.mean()) if len(correct) else float("nan")


def micro_f1(labels, predicted, accept=None) -> float:
    """Micro-averaged F1 over classes; with ``accept``, over the accepted images only.

    True positives, false positives and false negatives are counted per class and summed
    before ``F1 = 2 TP / (2 TP + FP + FN)``. For single-label multiclass predictions every
    error is one false positive (for the predicted class) and one false negative (for the
    true class), so micro-F1 equals accuracy; it is reported because the seed paper does.
    Returns ``nan`` when ``accept`` rejects every image.

    >>> micro_f1([0, 1, 1], [0, 1, 0])   # 2 TP, 1 FP (class 0), 1 FN (class 1)
    0.6666666666666666
    """
    labels, predicted, accept = _labelled(labels, predicted, accept)
    if accept is not None:
        labels, predicted = labels[accept], predicted[accept]
    if len(labels) == 0:
        return float("nan")
    classes = int(max(labels.max(), predicted.max())) + 1
    hit = labels == predicted
    true_positives = np.bincount(labels[hit], minlength=classes)
    false_positives = np.bincount(predicted[~hit], minlength=classes)
    false_negatives = np.bincount(labels[~hit], minlength=classes)
    tp, fp, fn = true_positives.sum(), false_positives.sum(), false_negatives.sum()
    return float(2 * tp / (2 * tp + fp + fn))


def coverage(accept) -> float:
    """Share of images the model accepts (does not abstain on)."""
    return float(_flags(accept, "accept").mean())


def selective_risk(labels, predicted, accept) -> float:
    """Error rate among accepted images (``nan`` when none is accepted)."""
    return 1.0 - accuracy(labels, predicted, accept)


def abstained_error_rate(labels, predicted, accept) -> float:
    """Share of abstained images that would have been misclassified.

    The seed paper's "saved from being misclassified". ``nan`` when nothing was abstained on.
    """
    labels, predicted, accept = _labelled(labels, predicted, accept)
    wrong = (labels != predicted)[~accept]
    return float(wrong.mean()) if len(wrong) else float("nan")


# -- ranking: risk-coverage, AUROC, FPR ------------------------------------------------------
def risk_coverage_curve(labels, predicted, certainty) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selective risk against coverage when accepting the most certain images first.

    One point per distinct certainty value ``s``, from the most certain down: accept every
    image with certainty ``>= s`` (tied images enter together, so the curve does not
    depend on the order of ties).

    Returns:
        ``(coverage, risk, threshold)``, each ``(points,)``, coverage increasing to 1.

    >>> cov, risk, _ = risk_coverage_curve([0, 0, 0], [0, 1, 0], [0.9, 0.8, 0.7])
    >>> cov.tolist(), risk.tolist()
    ([0.3333333333333333, 0.6666666666666666, 1.0], [0.0, 0.5, 0.3333333333333333])
    """
    labels, predicted, _ = _labelled(labels, predicted)
    certainty = _reals(certainty, "certainty")
    _same_length(labels=labels, certainty=certainty)
    order = np.argsort(-certainty, kind="stable")
    sorted_certainty = certainty[order]
    errors = np.cumsum(labels[order] != predicted[order])
    # The last position of each run of equal certainty closes one point of the curve.
    last = np.flatnonzero(np.append(sorted_certainty[1:] != sorted_certainty[:-1], True))
    accepted = last + 1
    n = len(labels)
    return accepted / n, errors[last] / accepted, sorted_certainty[last]


def aurc(labels, predicted, certainty) -> float:
    """Area under the risk-coverage curve (Geifman et al., ICLR 2019); lower is better.

    Step integral ``sum_j (coverage_j - coverage_(j-1)) * risk_j`` over the points of
    :func:`risk_coverage_curve`, from coverage 0. Without ties this is the mean over
    ``k = 1..n`` of the error rate among the ``k`` most certain images.

    >>> aurc([0, 0, 0], [0, 1, 0], [0.9, 0.8, 0.7])  # (0 + 1/2 + 1/3) / 3
    0.2777777777777778
    """
    cov, risk, _ = risk_coverage_curve(labels, predicted, certainty)
    widths = np.diff(cov, prepend=0.0)
    return float(np.sum(widths * risk))


def auroc(scores, positive) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney statistic). For telling errors from correct
    predictions pass an uncertainty (``-certainty``) and ``positive = predicted != labels``;
    for out-of-distribution detection pass the uncertainty and ``positive = is_ood``.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    scores, positive = _binary_scores(scores, positive)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid_ranks = ends - (counts - 1) / 2.0  # average 1-based rank of each tied group
    ranks = mid_ranks[inverse]
    n_positive = int(positive.sum())
    n_negative = len(scores) - n_positive
    u = ranks[positive].sum() - n_positive * (n_positive + 1) / 2.0
    return float(u / (n_positive * n_negative))


def fpr_at_tpr(scores, positive, tpr: float = 0.95) -> float:
    """False positive rate at the largest threshold whose true positive rate is ``>= tpr``.

    A sample counts as flagged when its score is ``>= threshold``. With ``tpr=0.95`` this is
    the FPR95 of the out-of-distribution literature (lower is better).

    >>> fpr_at_tpr([0.1, 0.4, 0.35, 0.8], [False, False, True, True], tpr=0.95)
    0.5
    """
    scores, positive = _binary_scores(scores, positive)
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    positives = np.sort(scores[positive])[::-1]
    needed = int(np.ceil(tpr * len(positives) - 1e-9))  # rounding must not demand one more
    threshold = positives[max(needed, 1) - 1]
    return float(np.mean(scores[~positive] >= threshold))


# -- calibration -----------------------------------------------------------------------------
def calibration_bins(labels, probabilities, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin confidence and accuracy for a reliability diagram.

    Confidence is the largest probability of each image and the prediction its argmax.
    ``bins`` equal-width bins over [0, 1], bin ``b`` holding confidences in
    ``(b / bins, (b + 1) / bins]`` (the first bin also holds 0), as Guo et al. (2017) do.

    Returns:
        ``edges`` ``(bins + 1,)``, and per bin ``count``, ``confidence`` (mean),
        ``accuracy`` (``nan`` in empty bins).
    """
    probabilities = _probabilities(probabilities)
    labels = _classes(labels, "labels", probabilities.shape[1])
    _same_length(labels=labels, probabilities=probabilities)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        mean_accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_confidence, "accuracy": mean_accuracy}


def expected_calibration_error(labels, probabilities, bins: int = ECE_BINS) -> float:
    """ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over :func:`calibration_bins`.

    15 equal-width bins on the largest (MC-mean) probability by default, as Guo et al.
    (2017). Lower is better; 0 for a perfectly calibrated model.

    >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], bins=10)  # (0.1 + 0.8) / 2
    0.45
    """
    table = calibration_bins(labels, probabilities, bins)
    used = table["count"] > 0
    weights = table["count"][used] / table["count"].sum()
    gaps = np.abs(table["accuracy"][used] - table["confidence"][used])
    return float(np.sum(weights * gaps))


def brier_score(labels, probabilities) -> float:
    """Multiclass Brier score: mean over images of ``sum_c (p_c - [c == label])**2``.

    Brier's (1950) original form, in [0, 2]; lower is better.

    >>> brier_score([0], [[0.75, 0.25]])  # 0.25**2 + 0.25**2
    0.125
    """
    probabilities = _probabilities(probabilities)
    labels = _classes(labels, "labels", probabilities.shape[1])
    _same_length(labels=labels, probabilities=probabilities)
    target = np.zeros_like(probabilities)
    target[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probabilities - target) ** 2, axis=1)))
