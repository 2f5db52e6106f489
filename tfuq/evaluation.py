"""Evaluate a tfuq model's decisions on labelled images: the numbers and the arrays.

The library behind ``tfuq evaluate``; the workflow, the demo and the benchmarks call it
directly. The tables, plots, gallery and Markdown report are in :mod:`tfuq.reporting`.

    >>> import tfuq
    >>> from tfuq import evaluation
    >>> model = tfuq.load("model.tflite")                                   # doctest: +SKIP
    >>> result = evaluation.evaluate(model, images, labels, seed=0)        # doctest: +SKIP
    >>> result.report["coverage"], result.report["selective_risk"]         # doctest: +SKIP

Running the model and computing the numbers need NumPy and an interpreter only. MC outputs are
``(passes, batch, classes)``.

What the report holds (rates in [0, 1], ``None`` where a number is undefined, e.g. the
accuracy on accepted images when none is accepted, or AUROC when no image is wrong):

- the seed paper's columns: ``micro_f1_all`` (the MC-mean prediction on every image, no
  abstention: "the original model"), ``micro_f1_accepted``, ``ignored`` (share abstained
  on) and ``ignored_would_be_wrong`` (share of those that the model would have got wrong);
- ``coverage`` (= 1 - ignored), ``selective_risk`` (error rate among accepted images),
  ``accuracy_all``, ``accuracy_accepted``, ``ece`` (15 equal-width bins on the MC-mean
  max probability), ``brier`` (multiclass, summed over classes);
- for each uncertainty score in ``scores``: ``aurc``, and ``auroc_errors``/``fpr95_errors``
  for telling wrong predictions from right ones; with out-of-distribution images also
  ``auroc_ood``/``fpr95_ood`` for telling them from the test images. The headline ``aurc``,
  ``auroc_errors``, ... repeat those of ``score`` (the rule's score, else max_probability);
- with out-of-distribution images, ``ood_accepted``: the share of them the rule accepts.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from tfuq import data
from tfuq.runtime import abstain, metrics
from tfuq.runtime.aggregate import SCORES, Aggregate, aggregate
from tfuq.runtime.config import DecisionRule

# Images per model.run call: small enough for a steady progress bar, large enough to be cheap.
_CHUNK = 32


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate` / :func:`summarize`: the report and what it came from."""

    report: dict
    rule: dict
    labels: np.ndarray  # (batch,)
    probabilities: np.ndarray | None  # (passes, batch, classes); None when built from records
    summary: Aggregate
    decision: abstain.Decision
    ood_probabilities: np.ndarray | None = None
    ood_summary: Aggregate | None = None
    ood_decision: abstain.Decision | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-image arrays to save: enough to recompute every number of the report."""
        arrays = {
            "labels": self.labels,
            "rule": np.array(json.dumps(self.rule, sort_keys=True)),
        }
        if self.probabilities is not None:
            arrays["probabilities"] = self.probabilities
        arrays.update(_per_image(self.summary, self.decision, ""))
        if self.ood_summary is not None:
            if self.ood_probabilities is not None:
                arrays["ood_probabilities"] = self.ood_probabilities
            arrays.update(_per_image(self.ood_summary, self.ood_decision, "ood_"))
        return arrays

    def save_arrays(self, path: str | os.PathLike) -> None:
        """Write :meth:`arrays` to a compressed ``.npz`` (atomically)."""
        from tfuq.runtime.modelfile import atomic_output

        with atomic_output(path, "wb") as out:
            np.savez_compressed(out, **self.arrays())


def _per_image(summary: Aggregate, decision: abstain.Decision, prefix: str) -> dict:
    arrays = {
        "mean": summary.mean,
        "std": summary.std,
        "predicted": summary.predicted,
        "accept": decision.accept,
    }
    arrays.update({score: summary.score(score) for score in SCORES})
    return {prefix + key: value for key, value in arrays.items()}


# -- running -----------------------------------------------------------------------------------
SEEDINGS = ("shared", "per-image")


def run_passes(
    model, images: np.ndarray, seed: int = 0, progress: bool = False, seeding: str = "shared"
) -> np.ndarray:
    """All MC passes of ``model`` (a :class:`tfuq.runtime.Model`) on ``images``: the
    probabilities of :func:`run_model`, float32 ``(passes, batch, classes)``."""
    return run_model(model, images, seed, progress, seeding)[0]


def run_model(
    model, images: np.ndarray, seed: int = 0, progress: bool = False, seeding: str = "shared"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All MC passes of ``model`` (a :class:`tfuq.runtime.Model`) on ``images``, and the
    out-of-distribution scores it carries (``model.score_names``) from the same invokes.

    ``seeding="shared"`` gives every image the masks of run seed ``seed`` (as ``tfuq
    predict`` does); ``"per-image"`` gives each image the seed
    :func:`tfuq.runtime.masks.image_seed` derives from ``seed`` and its pixels (as the
    Beam pipelines of :mod:`tfuq.beam` do). Either way an image's result does not depend on
    the images around it. Images of another size than the model's input are brought to it by
    the photo rule the model carries (centre crop, bilinear: :mod:`tfuq.runtime.photo`; needs
    Pillow). Returns float32 ``(passes, batch, classes)`` and ``{score: (batch,) float32}``.
    """
    from tfuq.runtime import masks, photo

    if seeding not in SEEDINGS:
        raise ValueError(f"unknown seeding {seeding!r}; choose one of {', '.join(SEEDINGS)}")
    images = data.check_images(images)
    if images.shape[1:3] != tuple(model.input_shape[:2]):
        images = data.resize(images, model.input_shape[:2], photo.rule_of(model.config))
    out = np.empty((model.passes, len(images), model.classes), dtype=np.float32)
    names = list(getattr(model, "score_names", []))
    scores = {name: np.empty(len(images), dtype=np.float32) for name in names}
    starts = range(0, len(images), _CHUNK)
    bar = None
    if progress:
        from tfuq._progress import bar as progress_bar

        bar = progress_bar(len(images), "MC passes", "img", sys.stderr)
    try:
        for start in starts:
            chunk = images[start : start + _CHUNK]
            span = slice(start, start + len(chunk))
            if names:  # one image at a time, each invoke's scores read right after it
                for offset, image in enumerate(chunk):
                    image_seed = seed if seeding == "shared" else masks.image_seed(seed, image)
                    probabilities, found = model.run_scored(image, image_seed)
                    out[:, start + offset] = probabilities[:, 0]
                    for name in names:
                        scores[name][start + offset] = found[name][0]
            elif seeding == "shared":
                out[:, span] = model.run(chunk, seed=seed)
            else:
                seeds = [masks.image_seed(seed, image) for image in chunk]
                out[:, span] = model.run_each(chunk, seeds)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return out, scores


def evaluate(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    rule: dict | None = None,
    *,
    ood_images: np.ndarray | None = None,
    seed: int = 0,
    score: str | None = None,
    progress: bool = False,
    seeding: str = "shared",
) -> Evaluation:
    """Run ``model`` on labelled images (and optional OOD images) and report its decisions.

    Args:
        model: a :class:`tfuq.runtime.Model`, or a path to a tfuq ``.tflite``.
        images: uint8 RGB ``(batch, H, W, 3)``; resized to the model input if needed.
        labels: int ``(batch,)`` class indices.
        rule: a decision rule dict (see :mod:`tfuq.runtime.abstain`); None uses the one the model
            file carries.
        ood_images: uint8 images from outside the training distribution, or None.
        seed: run seed for the MC masks.
        score: the uncertainty score for the headline AURC/AUROC/FPR95 (default: the
            rule's score, else max_probability); every score is in ``report["scores"]``.
        progress: show a progress bar on stderr.
        seeding: ``shared`` (one run seed's masks for every image) or ``per-image`` (see
            :func:`run_passes`).
    """
    from tfuq import runtime

    if isinstance(model, str | os.PathLike):
        model = runtime.load(model)
    if rule is None:
        rule = model.config.decision_rule()
    probabilities, scores = run_model(model, images, seed, progress, seeding)
    ood, ood_scores = (None, None) if ood_images is None else run_model(model, ood_images, seed, progress, seeding)
    result = summarize(probabilities, labels, rule, ood, score=score, scores=scores, ood_scores=ood_scores)
    result.report.update(
        {"seed": int(seed), "seeding": seeding, "model": getattr(model, "path", None)}
    )
    return result


# -- the numbers ---------------------------------------------------------------------------------
def ood_kept_at_95_id(id_certainty: np.ndarray, ood_certainty: np.ndarray) -> float | None:
    """FPR95 as the OOD literature (ODIN, OpenOOD) counts it: keep the 95% most certain
    in-distribution images (a threshold at their 5th percentile, ties kept) and report the
    share of OOD images kept with them. tfuq's ``fpr95_ood`` is the other way round: the share
    of in-distribution images refused when 95% of the OOD ones are.

    >>> ood_kept_at_95_id(np.arange(100.0), np.array([2.0, 5.0, 50.0, 99.0]))  # keep >= 5
    0.75
    """
    if len(id_certainty) == 0 or len(ood_certainty) == 0:
        return None
    positive = np.r_[np.ones(len(id_certainty), bool), np.zeros(len(ood_certainty), bool)]
    return _finite(metrics.fpr_at_tpr(np.r_[id_certainty, ood_certainty], positive, 0.95))


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _ranking(positive: np.ndarray, uncertainty: np.ndarray) -> tuple[float | None, float | None]:
    if positive.all() or not positive.any():
        return None, None
    return metrics.auroc(uncertainty, positive), metrics.fpr_at_tpr(uncertainty, positive, 0.95)


def summarize(
    probabilities: np.ndarray,
    labels: np.ndarray,
    rule: dict,
    ood_probabilities: np.ndarray | None = None,
    *,
    score: str | None = None,
    scores: dict[str, np.ndarray] | None = None,
    ood_scores: dict[str, np.ndarray] | None = None,
) -> Evaluation:
    """The report of :func:`evaluate` from MC probabilities already computed.

    Args:
        probabilities: ``(passes, batch, classes)`` of the labelled images.
        labels: int ``(batch,)``.
        rule: a decision rule dict.
        ood_probabilities: ``(passes, ood_batch, classes)`` of out-of-distribution images.
        score: headline uncertainty score (see :func:`evaluate`).
        scores, ood_scores: the model's out-of-distribution scores by name, ``(batch,)`` and
            ``(ood_batch,)`` (:func:`run_model`), needed by a rule with an ``ood`` part.
    """
    rule = abstain.check_rule(rule)
    if np.ndim(probabilities) != 3:
        raise ValueError(
            f"probabilities must be (passes, batch, classes), got shape {np.shape(probabilities)}"
        )
    summary = aggregate(probabilities, abstain.rule_conf_factor(rule))
    ood_summary = None
    if ood_probabilities is not None:
        if np.ndim(ood_probabilities) != 3:
            raise ValueError("OOD probabilities must be (passes, batch, classes)")
        ood_summary = aggregate(ood_probabilities, abstain.rule_conf_factor(rule))
    result = summarize_aggregates(summary, labels, rule, ood_summary, score=score, scores=scores,
                                  ood_scores=ood_scores)
    result.probabilities = np.asarray(probabilities)
    if ood_probabilities is not None:
        result.ood_probabilities = np.asarray(ood_probabilities)
    return result


def summarize_aggregates(
    summary: Aggregate,
    labels: np.ndarray,
    rule: dict,
    ood_summary: Aggregate | None = None,
    *,
    score: str | None = None,
    scores: dict[str, np.ndarray] | None = None,
    ood_scores: dict[str, np.ndarray] | None = None,
) -> Evaluation:
    """The report of :func:`summarize` from per-image summaries already aggregated.

    What batch pipelines use: their records carry each image's mean, std and scores, not the
    passes, and an image's :class:`Aggregate` is the same alone as in a batch, so the
    numbers equal those of :func:`summarize` on the passes. The result's ``probabilities``
    are None.
    """
    rule = abstain.check_rule(rule)
    labels = data.check_labels(labels, len(summary.predicted), summary.classes)
    if score is None:
        score = DecisionRule.from_dict(rule, "rule").score or "max_probability"
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    decision = abstain.decide(summary, rule, scores)
    predicted, accept = summary.predicted, decision.accept
    wrong = predicted != labels

    report = {
        "images": int(len(labels)),
        "passes": int(summary.passes),
        "classes": int(summary.classes),
        "rule": rule,
        "rule_text": abstain.describe_rule(rule),
        "micro_f1_all": metrics.micro_f1(labels, predicted),
        "accuracy_all": metrics.accuracy(labels, predicted),
        "micro_f1_accepted": _finite(metrics.micro_f1(labels, predicted, accept)),
        "accuracy_accepted": _finite(metrics.accuracy(labels, predicted, accept)),
        "accepted": int(accept.sum()),
        "coverage": metrics.coverage(accept),
        "ignored": 1.0 - metrics.coverage(accept),
        "ignored_would_be_wrong": _finite(metrics.abstained_error_rate(labels, predicted, accept)),
        "selective_risk": _finite(metrics.selective_risk(labels, predicted, accept)),
        "ece": metrics.expected_calibration_error(labels, summary.mean),
        "ece_bins": metrics.ECE_BINS,
        "brier": metrics.brier_score(labels, summary.mean),
        "score": score,
        "scores": {},
    }
    ood_decision = None
    if ood_summary is not None:
        if ood_summary.classes != summary.classes or ood_summary.passes != summary.passes:
            raise ValueError("OOD probabilities must have the same passes and classes")
        ood_decision = abstain.decide(ood_summary, rule, ood_scores)
        report["ood_images"] = int(len(ood_summary.predicted))
        report["ood_accepted"] = float(ood_decision.accept.mean())
    for name in SCORES:
        sure = abstain.certainty(summary, name)
        auroc, fpr = _ranking(wrong, -sure)
        entry = {
            "aurc": metrics.aurc(labels, predicted, sure),
            "auroc_errors": auroc,
            "fpr95_errors": fpr,
        }
        if ood_summary is not None:
            ood_sure = abstain.certainty(ood_summary, name)
            is_ood = np.r_[np.zeros(len(sure), bool), np.ones(len(ood_sure), bool)]
            entry["auroc_ood"], entry["fpr95_ood"] = _ranking(is_ood, -np.r_[sure, ood_sure])
            entry["ood_kept_at_95_id"] = ood_kept_at_95_id(sure, ood_sure)
        report["scores"][name] = entry
    # The scores the model returns beside its probabilities (larger = more like its training
    # data): how they tell the OOD images apart, the way the OOD literature reports it.
    report["model_scores"] = {}
    for name, values in (scores or {}).items():
        entry = {"mean": float(np.mean(values))}
        if ood_summary is not None and ood_scores is not None and name in ood_scores:
            theirs = np.asarray(ood_scores[name], dtype=np.float64)
            is_ood = np.r_[np.zeros(len(values), bool), np.ones(len(theirs), bool)]
            entry["auroc_ood"], entry["fpr95_ood"] = _ranking(is_ood, -np.r_[values, theirs])
            entry["ood_kept_at_95_id"] = ood_kept_at_95_id(np.asarray(values, np.float64), theirs)
            entry["ood_mean"] = float(np.mean(theirs))
        report["model_scores"][name] = entry
    report.update(report["scores"][score])
    return Evaluation(
        report=report,
        rule=rule,
        labels=labels,
        probabilities=None,
        summary=summary,
        decision=decision,
        ood_summary=ood_summary,
        ood_decision=ood_decision,
    )
