"""Write the language-neutral test vectors: masks, aggregate, decisions, photos, photos_v2 (.json).

The only way these files are made (see README.md beside this script for their format):

    python tests/vectors/make_vectors.py            # rewrite the files
    python tests/vectors/make_vectors.py --check    # exit 1 if the files are out of date

Masks come from ``tfuq.runtime.masks``. Aggregates and decisions are computed here by a plain-Python
reference that follows README.md line by line (``math``, loops, one image at a time), and
must agree with ``tfuq.runtime.aggregate`` / ``tfuq.runtime.abstain`` to 1e-12 before anything is written,
so the files are never just a copy of the code they test. Decision cases whose outcome could
flip by rounding are refused unless the case is marked exact (binary fractions with a
power-of-two pass count, where every operation is exact in IEEE doubles).
Photos (the ``center-crop-bilinear`` v1 rule) come from :func:`reference_photo`, plain Python
integers and floats written from the rule's text and Pillow's ``Resample.c``, and must equal
``tfuq.runtime.photo.prepare`` (which resizes with Pillow) byte for byte. Photos by version 2
(step 1b, the reduction) come from :func:`reference_photo_v2`, the same with the choice of s and
the block average written from the rule's formula (float32 only through numpy's scalar, no
Pillow), and must equal ``prepare`` with version 2 (Pillow's ``Image.reduce``) byte for byte.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

from tfuq.runtime import abstain, masks, photo  # noqa: E402
from tfuq.runtime import aggregate as tfuq_aggregate  # noqa: E402

# JSON readers compare doubles within this (summation order differs between languages).
TOLERANCE = 1e-12
# A decision whose score is closer than this to its boundary must be marked exact.
MARGIN = 1e-9
SCORE_SIGNS = {"max_probability": ">=", "predictive_entropy": "<=",
               "mutual_information": "<=", "variation_ratio": "<="}


# -- masks -----------------------------------------------------------------------------------
MIX_INPUTS = [0, 1, 2, 12345, 0x9E3779B97F4A7C15, 2**63, 2**64 - 1]
MASK_CASES = [
    ("one layer, rate 0.5", 0, 3, [([16], 0.5)]),
    ("two layers of different rates and shapes", 123, 2, [([2, 3], 0.25), ([5], 0.75)]),
    ("largest seed", 2**64 - 1, 2, [([8], 0.1)]),
    ("seed above 2^63 (signed 64-bit readers see it negative)", 2**63 + 12345, 2, [([12], 0.5)]),
    ("single pass, image-shaped mask", 42, 1, [([4, 4, 2], 0.3)]),
    ("rates near the ends", 7, 3, [([32], 0.01), ([32], 0.99)]),
    ("fourth layer uses stream index 3", 99, 2,
     [([3], 0.5), ([3], 0.5), ([3], 0.5), ([10], 0.2)]),
    ("thirty passes, one wide layer", 2024, 30, [([64], 0.5)]),
]


def build_masks() -> dict:
    mix = [{"input": str(z), "output": str(int(masks.mix(np.uint64(z))))} for z in MIX_INPUTS]
    cases = []
    for name, seed, passes, layers in MASK_CASES:
        generated = masks.masks_for(seed, passes, [(shape, rate) for shape, rate in layers])
        cases.append({
            "name": name,
            "seed": str(seed),
            "passes": passes,
            "layers": [
                {"shape": shape, "rate": rate, "threshold": masks.drop_threshold(rate)}
                for shape, rate in layers
            ],
            "pass_seeds": [str(int(s)) for s in masks.pass_seeds(seed, passes)],
            "masks": ["".join(map(str, mask.reshape(-1).tolist())) for mask in generated],
        })
    return {"scheme": masks.SCHEME, "version": masks.SCHEME_VERSION, "mix": mix, "cases": cases}


# -- aggregation: the plain-Python reference ---------------------------------------------------
def _xlnx(x: float) -> float:
    return 0.0 if x == 0.0 else x * math.log(x)


def _argmax(values: list[float]) -> int:
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:  # strictly greater: ties stay with the lowest index
            best = index
    return best


def reference_image(passes: list[list[float]], conf_factor: float) -> dict:
    """Every aggregate of one image from its ``(passes, classes)`` probabilities."""
    count, classes = len(passes), len(passes[0])
    mean = [sum(p[c] for p in passes) / count for c in range(classes)]
    std = [math.sqrt(sum((p[c] - mean[c]) ** 2 for p in passes) / count) for c in range(classes)]
    predicted = _argmax(mean)
    predictive = -sum(_xlnx(m) for m in mean)
    expected = sum(-sum(_xlnx(x) for x in p) for p in passes) / count
    votes = [0] * classes
    for p in passes:
        votes[_argmax(p)] += 1
    return {
        "mean": mean,
        "std": std,
        "predicted": predicted,
        "max_probability": mean[predicted],
        "predictive_entropy": predictive,
        "expected_entropy": expected,
        "mutual_information": predictive - expected,
        "variation_ratio": 1.0 - max(votes) / count,
        "lower": [m - conf_factor * s for m, s in zip(mean, std, strict=True)],
        "upper": [m + conf_factor * s for m, s in zip(mean, std, strict=True)],
    }


def reference(probabilities: list, conf_factor: float) -> dict:
    """Aggregates of a ``(passes, batch, classes)`` nested list, batch first."""
    batch = len(probabilities[0])
    images = [reference_image([p[b] for p in probabilities], conf_factor) for b in range(batch)]
    return {key: [image[key] for image in images] for key in images[0]}


def _rng_probabilities(seed: int, passes: int, batch: int, classes: int, spread: float):
    """Varied ``(passes, batch, classes)`` probabilities that every Python reproduces.

    Only ``random.Random(seed).random()`` is used: its sequence is guaranteed across Python
    versions, unlike NumPy's distributions, so rerunning the script rewrites identical files.
    """
    draw = random.Random(seed).random
    centres = [[draw() ** 3 + 1e-3 for _ in range(classes)] for _ in range(batch)]
    result = []
    for _ in range(passes):
        rows = []
        for centre in centres:
            weights = [c * math.exp(spread * (draw() - 0.5)) for c in centre]
            total = sum(weights)
            rows.append([w / total for w in weights])
        result.append(rows)
    return result


def _aggregate_cases() -> list[tuple[str, float, list]]:
    return [
        ("two passes that disagree completely: mutual information ln 2", 1.0,
         [[[1.0, 0.0]], [[0.0, 1.0]]]),
        ("identical passes: mutual information 0, std 0", 1.0,
         [[[0.7, 0.2, 0.1]]] * 3),
        ("tie in the mean goes to the lowest class", 1.0,
         [[[0.25, 0.375, 0.375]], [[0.25, 0.375, 0.375]]]),
        ("tie inside a pass and in the vote: per-pass argmax takes the lowest class", 1.0,
         [[[0.5, 0.5, 0.0]], [[0.5, 0.5, 0.0]], [[0.0, 0.5, 0.5]], [[0.25, 0.75, 0.0]]]),
        ("single pass: std, mutual information and variation ratio are 0", 1.0,
         [[[0.1, 0.6, 0.3], [0.8, 0.15, 0.05]]]),
        ("one class", 1.0, [[[1.0], [1.0]], [[1.0], [1.0]]]),
        ("zeros: 0 ln 0 = 0", 2.0, [[[0.0, 1.0, 0.0, 0.0]], [[0.0, 0.5, 0.5, 0.0]]]),
        ("uniform passes: predictive entropy ln 4", 1.0, [[[0.25] * 4]] * 2),
        ("conf_factor 0: the interval is the mean", 0.0,
         [[[0.6, 0.4], [0.2, 0.8]], [[0.5, 0.5], [0.3, 0.7]]]),
        ("batch of 6, 5 passes, 7 classes, random", 1.5, _rng_probabilities(1, 5, 6, 7, 3.0)),
        ("batch of 4, 30 passes, 10 classes, random", 1.0, _rng_probabilities(2, 30, 4, 10, 2.0)),
    ]


def _check_against_tfuq(name: str, probabilities: list, conf_factor: float, expected: dict):
    got = tfuq_aggregate.aggregate(np.asarray(probabilities, dtype=np.float64), conf_factor)
    for key, value in expected.items():
        if not np.allclose(getattr(got, key), value, rtol=0, atol=TOLERANCE):
            raise SystemExit(f"{name}: tfuq.runtime.aggregate and the reference disagree on {key}")


def build_aggregate() -> dict:
    cases = []
    for name, conf_factor, probabilities in _aggregate_cases():
        expected = reference(probabilities, conf_factor)
        _check_against_tfuq(name, probabilities, conf_factor, expected)
        cases.append({"name": name, "conf_factor": conf_factor,
                      "probabilities": probabilities, "expected": expected})
    return {"tolerance": TOLERANCE, "cases": cases}


# -- decisions ---------------------------------------------------------------------------------
def reference_all(probabilities: list, rule: dict,
                  scores: dict | None = None) -> tuple[list[bool], list[int], list[float], list[int]]:
    """An ``all`` rule: ``(accept, predicted, margins of every part, failed_part)``."""
    outcomes = [reference_decision(probabilities, part, scores) for part in rule["rules"]]
    predicted = outcomes[0][1]
    failed = [next((i for i, outcome in enumerate(outcomes) if not outcome[0][b]), -1)
              for b in range(len(predicted))]
    margins = [m for outcome in outcomes for m in outcome[2]]
    return [f < 0 for f in failed], predicted, margins, failed


def reference_decision(probabilities: list, rule: dict,
                       scores: dict | None = None) -> tuple[list[bool], list[int], list[float]]:
    """``(accept, predicted, margin)``; the margin is the distance to the rule's boundary.

    ``scores`` holds the model's per-image scores by name (None for NaN, as in the file). An
    ``ood`` part on a score of the passes compares it as a ``threshold`` part does."""
    summary = reference(probabilities, rule.get("conf_factor", 1.0))
    accept, margins = [], []
    for b, predicted in enumerate(summary["predicted"]):
        if rule["rule"] == "ood" and rule["score"] not in SCORE_SIGNS:
            value = scores[rule["score"]][b]
            # NaN (null in the file) compares false: the guard refuses what it cannot score.
            margin = math.nan if value is None else value - rule["threshold"]
            accept.append(margin >= 0)
        elif rule["rule"] == "interval":
            top_lower = summary["lower"][b][predicted]
            others = [u for c, u in enumerate(summary["upper"][b]) if c != predicted]
            margin = top_lower - max(others) if others else math.inf
            accept.append(margin > 0)
        else:
            score = summary[rule["score"]][b]
            margin = score - rule["threshold"]
            accept.append(margin >= 0 if SCORE_SIGNS[rule["score"]] == ">=" else margin <= 0)
        margins.append(margin)
    return accept, summary["predicted"], margins


def _images(*images: list[list[float]]) -> list:
    """Per-image ``(passes, classes)`` lists to the files' ``(passes, batch, classes)``."""
    return [[image[t] for image in images] for t in range(len(images[0]))]


def _votes() -> list:
    """T=4, 4 classes; the passes vote 0,0,1,1 / 0,0,0,1 / 0,1,2,3 / 2,2,2,2."""
    return _images(
        [[0.75, 0.25, 0, 0], [0.75, 0.25, 0, 0], [0.25, 0.75, 0, 0], [0.25, 0.75, 0, 0]],
        [[0.5, 0.25, 0.25, 0], [0.5, 0.25, 0.25, 0], [0.5, 0.25, 0.25, 0], [0, 1, 0, 0]],
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        [[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]],
    )


def _decision_cases() -> list[tuple[str, dict, list, bool]]:
    """``(name, rule, probabilities, exact)``."""
    mixed = _images(  # T=2: confident; unsure but consistent; passes that disagree
        [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]],
        [[0.5, 0.3, 0.2], [0.45, 0.35, 0.2]],
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
    )
    random_batch = _rng_probabilities(3, 8, 6, 5, 4.0)
    votes = _votes()
    return [
        ("interval Z=1: accept separated intervals, abstain on overlap",
         {"rule": "interval", "conf_factor": 1.0}, mixed, False),
        ("interval Z=0 compares means only", {"rule": "interval", "conf_factor": 0.0}, mixed, False),
        ("interval Z=5 is stricter", {"rule": "interval", "conf_factor": 5.0}, mixed, False),
        ("interval: touching intervals abstain (strictly greater needed)",
         {"rule": "interval", "conf_factor": 1.0},
         _images([[0.75, 0.25], [0.25, 0.75]], [[0.5, 0.5], [0.5, 0.5]]), True),
        ("interval: a tie with zero spread abstains even at Z=0",
         {"rule": "interval", "conf_factor": 0.0}, _images([[0.5, 0.5], [0.5, 0.5]]), True),
        ("interval: one class always accepts",
         {"rule": "interval", "conf_factor": 2.0}, _images([[1.0], [1.0]], [[1.0], [1.0]]), True),
        ("interval Z=1 on a random batch", {"rule": "interval", "conf_factor": 1.0},
         random_batch, False),
        ("interval Z=0.5 on a random batch", {"rule": "interval", "conf_factor": 0.5},
         random_batch, False),
        ("max_probability >= t accepts at equality",
         {"rule": "threshold", "score": "max_probability", "threshold": 0.5},
         _images([[0.75, 0.25, 0], [0.25, 0.75, 0]], [[0.5, 0.5, 0], [0.75, 0.25, 0]],
                 [[0.25, 0.25, 0.5], [0.5, 0.25, 0.25]]), True),
        ("max_probability threshold 0.7",
         {"rule": "threshold", "score": "max_probability", "threshold": 0.7}, mixed, False),
        ("max_probability threshold on a random batch",
         {"rule": "threshold", "score": "max_probability", "threshold": 0.5}, random_batch, False),
        ("predictive_entropy threshold 0.6",
         {"rule": "threshold", "score": "predictive_entropy", "threshold": 0.6}, mixed, False),
        ("predictive_entropy threshold on a random batch",
         {"rule": "threshold", "score": "predictive_entropy", "threshold": 1.15}, random_batch, False),
        ("mutual_information threshold 0.1",
         {"rule": "threshold", "score": "mutual_information", "threshold": 0.1}, mixed, False),
        ("mutual_information threshold on a random batch",
         {"rule": "threshold", "score": "mutual_information", "threshold": 0.24},
         random_batch, False),
        ("variation_ratio <= t accepts at equality",
         {"rule": "threshold", "score": "variation_ratio", "threshold": 0.5}, votes, True),
        ("variation_ratio threshold 0 accepts unanimous passes only",
         {"rule": "threshold", "score": "variation_ratio", "threshold": 0.0}, votes, True),
        ("a calibrated rule: the calibration dict is ignored by the decision",
         {"rule": "threshold", "score": "max_probability", "threshold": 0.8,
          "calibration": {"method": "sgr", "target_risk": 0.05, "confidence": 0.9,
                          "risk_bound": 0.048, "coverage": 0.62, "n": 2000}},
         mixed, False),
        *_all_cases(mixed, votes),
    ]


INTERVAL = {"rule": "interval", "conf_factor": 1.0}
FLOOR = {"rule": "threshold", "score": "max_probability", "threshold": 0.5}


def _edges() -> list:
    """Five T=2 images at the default rule's edges, in binary fractions (exact)."""
    edges = _images(
        [[0.25] + [0.125] * 6] * 2,           # every class improbable: interval yes, floor no
        [[0.75, 0.125, 0.125]] * 2,           # confident: both accept
        [[0.5, 0.25, 0.25]] * 2,              # max_probability exactly 0.5: the floor accepts
        [[0.75, 0.25, 0.0], [0.5, 0.5, 0.0]],  # lower[0] = upper[1] = 0.5: the interval refuses
        [[0.625, 0.375, 0.0], [0.125, 0.375, 0.5]],  # a tie at .375 < .5: both refuse
    )
    # Seven classes as the widest image; pad the others with zeros.
    return [[image + [0.0] * (7 - len(image)) for image in row] for row in edges]


def _all_cases(mixed: list, votes: list) -> list[tuple[str, dict, list, bool]]:
    """Cases of the ``all`` rule; exact ones use binary fractions and constant or T=2 passes."""
    default = {"rule": "all", "rules": [INTERVAL, FLOOR]}
    edges = _edges()
    wide = _rng_probabilities(11, 4, 6, 12, 0.1)  # 12 classes, none above 0.41: the blind spot
    return [
        ("all: interval and max_probability >= 0.5 (the default) at its edges", default, edges, True),
        ("all: the parts in the other order name the other part", {"rule": "all", "rules": [FLOOR, INTERVAL]},
         edges, True),
        ("all: the default on a random batch", default, _rng_probabilities(3, 8, 6, 5, 4.0), False),
        ("all: the default on 12 improbable classes", default, wide, False),
        ("all: interval Z=1 and mutual_information <= 0.0002 on 12 classes",
         {"rule": "all", "rules": [INTERVAL,
                                   {"rule": "threshold", "score": "mutual_information", "threshold": 0.0002}]},
         wide, False),
        ("all: one part behaves as that part", {"rule": "all", "rules": [
            {"rule": "threshold", "score": "variation_ratio", "threshold": 0.5}]}, votes, True),
        ("all: three parts, calibrated (the calibration dict is ignored)",
         {"rule": "all", "rules": [INTERVAL,
                                   {"rule": "threshold", "score": "max_probability", "threshold": 0.4},
                                   {"rule": "threshold", "score": "predictive_entropy", "threshold": 0.9}],
          "calibration": {"method": "sgr", "target_risk": 0.05, "confidence": 0.9,
                          "risk_bound": 0.048, "coverage": 0.62, "n": 2000}},
         mixed, False),
    ]


ENERGY = {"rule": "ood", "score": "energy", "threshold": 3.25}


def _ood_cases() -> list[tuple[str, dict, list, bool, dict]]:
    """``(name, rule, probabilities, exact, scores)``: rules with an ``ood`` part, with the
    model's per-image scores (None for NaN). Ties use binary fractions."""
    edges = _edges()  # the default rule: image 0 floor refuses, 3 and 4 interval refuses
    mixed = _decision_cases()[0][2]
    guard = {**ENERGY, "threshold": 4.5, "calibration": {
        "method": "order statistic, one-sided binomial bound", "alpha": 0.05, "delta": 0.1,
        "n": 500, "rank": 16, "refused_on_calibration": 0.03}}
    draw = random.Random(5).random
    random_scores = [round(8.0 * draw() - 1.0, 6) for _ in range(6)]
    return [
        ("ood: energy >= t accepts at equality, refuses below it and a NaN score", ENERGY, edges, True,
         {"energy": [4.5, 3.25, 3.0, None, -1.5]}),
        ("all: the ood guard first, then interval and floor", {"rule": "all", "rules": [ENERGY, INTERVAL, FLOOR]},
         edges, True, {"energy": [4.5, 2.0, 3.25, 5.0, None]}),
        ("all: the ood guard in the middle", {"rule": "all", "rules": [INTERVAL, ENERGY, FLOOR]},
         edges, True, {"energy": [4.5, 2.0, 3.25, 5.0, None]}),
        ("all: the ood guard last", {"rule": "all", "rules": [INTERVAL, FLOOR, ENERGY]},
         edges, True, {"energy": [4.5, 2.0, 3.25, 5.0, 3.0]}),
        ("all: a calibrated guard (as tfuq calibrate writes it) and the default on a random batch",
         {"rule": "all", "rules": [guard, INTERVAL, FLOOR]}, _rng_probabilities(3, 8, 6, 5, 4.0), False,
         {"energy": random_scores}),
        ("all: two ood parts on two scores, a negative threshold",
         {"rule": "all", "rules": [{"rule": "ood", "score": "energy", "threshold": -0.5},
                                   {"rule": "ood", "score": "knn", "threshold": 0.0}, INTERVAL]},
         mixed, False, {"energy": [1.0, -2.5, 0.75], "knn": [0.5, 0.25, -0.125]}),
    ]


def _one_hot() -> list:
    """Four T=2 images whose scores of the passes are exact in every reader: one-hot passes
    (``1 ln 1 = 0 ln 0 = 0``) and halves. Predictive entropy 0, ln 2, 0, ln 2; mutual information
    0, ln 2, 0, 0 (the last not exactly: an entropy computed twice, left out where it is the
    boundary); max_probability 1, 1/2, 1, 1/2; variation ratio 0, 1/2, 0, 0."""
    return _images([[1, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [0, 0, 1]],
                   [[0.5, 0.5, 0], [0.5, 0.5, 0]])


def _ood_pass_score_cases() -> list[tuple[str, dict, list, bool, dict | None]]:
    """Like :func:`_ood_cases`, with guards on the scores of the passes (computed on the host,
    compared as the threshold rule compares them: ``max_probability >= t``, the others ``<= t``).
    They need no model scores. Those scores are never NaN: the passes are checked for NaN and
    Inf before they are aggregated, so NaN is a model score's only (the cases above)."""
    edges = _edges()  # predictive entropy 1.906, 0.736, 1.040, 0.662, 1.082
    one_hot = _one_hot()
    votes = _votes()  # variation ratio 1/2, 1/4, 3/4, 0
    random_batch = _rng_probabilities(3, 8, 6, 5, 4.0)
    entropy = {"rule": "ood", "score": "predictive_entropy", "threshold": 1.0}
    calibrated = {"rule": "ood", "score": "predictive_entropy", "threshold": 1.1, "calibration": {
        "method": "order statistic, one-sided binomial bound", "alpha": 0.05, "delta": 0.1,
        "n": 500, "rank": 16, "refused_on_calibration": 0.03}}
    return [
        ("ood on max_probability: >= t accepts at equality", {"rule": "ood", "score": "max_probability", "threshold": 0.625},
         edges, True, None),
        ("ood on predictive_entropy: <= t accepts at equality (one-hot passes, entropy 0)",
         {"rule": "ood", "score": "predictive_entropy", "threshold": 0.0}, one_hot, True, None),
        ("ood on mutual_information: <= t accepts at equality",
         {"rule": "ood", "score": "mutual_information", "threshold": 0.0}, [row[:3] for row in one_hot], True, None),
        ("ood on variation_ratio: <= t accepts at equality",
         {"rule": "ood", "score": "variation_ratio", "threshold": 0.25}, votes, True, None),
        ("ood on predictive_entropy on a random batch", {"rule": "ood", "score": "predictive_entropy", "threshold": 1.0},
         random_batch, False, None),
        ("ood on mutual_information on a random batch", {"rule": "ood", "score": "mutual_information", "threshold": 0.2},
         random_batch, False, None),
        ("all: the guard on predictive_entropy first, then interval and floor (tfuq calibrate's default)",
         {"rule": "all", "rules": [entropy, INTERVAL, FLOOR]}, edges, True, None),
        ("all: the guard on predictive_entropy in the middle", {"rule": "all", "rules": [INTERVAL, entropy, FLOOR]},
         edges, True, None),
        ("all: the guard on predictive_entropy last", {"rule": "all", "rules": [INTERVAL, FLOOR, entropy]},
         edges, True, None),
        ("all: a guard on max_probability at its tie, then interval",
         {"rule": "all", "rules": [{"rule": "ood", "score": "max_probability", "threshold": 0.5}, INTERVAL]},
         one_hot, True, None),
        ("all: a guard on variation_ratio at its tie, then mutual_information <= 0.5",
         {"rule": "all", "rules": [{"rule": "ood", "score": "variation_ratio", "threshold": 0.5},
                                   {"rule": "threshold", "score": "mutual_information", "threshold": 0.5}]},
         votes, True, None),
        ("all: a calibrated guard on predictive_entropy (as tfuq calibrate writes it) and the default on a random batch",
         {"rule": "all", "rules": [calibrated, INTERVAL, FLOOR]}, random_batch, False, None),
        ("all: a guard on predictive_entropy and one on the model score energy",
         {"rule": "all", "rules": [entropy, ENERGY, INTERVAL]}, edges, True,
         {"energy": [4.5, 3.25, 2.0, None, 5.0]}),
        ("all: a model score named like a score of the passes is not read; the passes' score decides",
         {"rule": "all", "rules": [{"rule": "ood", "score": "predictive_entropy", "threshold": 0.5}, INTERVAL]},
         one_hot, True, {"predictive_entropy": [9.0, 0.0, 9.0, 0.0]}),
    ]


def build_decisions() -> dict:
    cases = []
    plain = [(*case, None) for case in _decision_cases()]
    for name, rule, probabilities, exact, scores in plain + _ood_cases() + _ood_pass_score_cases():
        expected = {}
        if rule["rule"] == "all":
            accept, predicted, margins, expected["failed_part"] = reference_all(probabilities, rule, scores)
        else:
            accept, predicted, margins = reference_decision(probabilities, rule, scores)
        close = [m for m in margins if abs(m) < MARGIN]
        if close and not (exact and all(m == 0 for m in close)):
            raise SystemExit(f"{name}: a decision is within {MARGIN} of its boundary ({close})")
        arrays = None if scores is None else {
            key: np.array([math.nan if v is None else v for v in values], dtype=np.float64)
            for key, values in scores.items()}
        got = abstain.decide(np.asarray(probabilities, dtype=np.float64), rule, arrays)
        if got.accept.tolist() != accept or got.predicted.tolist() != predicted or (
                "failed_part" in expected and got.failed_part.tolist() != expected["failed_part"]):
            raise SystemExit(f"{name}: tfuq.runtime.abstain and the reference disagree")
        cases.append({"name": name, "rule": rule, **({} if scores is None else {"scores": scores}),
                      "probabilities": probabilities,
                      "expected": {"accept": accept, "predicted": predicted, **expected}})
    return {"cases": cases}


# -- photos ----------------------------------------------------------------------------------
PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling: 32 - 8 - 2


def _triangle(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


def reference_coefficients(in_size: int, out_size: int) -> list[tuple[int, list[int]]]:
    """Per output index: (first input index, fixed-point weights), as Pillow's
    ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` compute them for BILINEAR.

    Every float operation is a double, in Pillow's order; ``int()`` truncates toward zero as
    C's cast does.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    rows = []
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(0, int(center - support + 0.5))
        xmax = min(in_size, int(center + support + 0.5)) - xmin
        weights = [_triangle((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for w in weights:
            total += w
        if total != 0.0:
            weights = [w / total for w in weights]
        fixed = [int(0.5 + w * (1 << PRECISION_BITS)) if w >= 0
                 else int(-0.5 + w * (1 << PRECISION_BITS)) for w in weights]
        rows.append((xmin, fixed))
    return rows


def _clip8(accumulated: int) -> int:
    return min(255, max(0, accumulated >> PRECISION_BITS))


def reference_resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow's 8-bit BILINEAR resize of uint8 ``(H, W, 3)`` to ``(height, width, 3)``, in
    integers: horizontal pass rounded to uint8, then vertical."""
    source = rgb.astype(np.int64)
    half = 1 << (PRECISION_BITS - 1)
    across = np.empty((source.shape[0], width, 3), dtype=np.int64)
    for xx, (xmin, weights) in enumerate(reference_coefficients(source.shape[1], width)):
        total = half + sum(source[:, xmin + x] * k for x, k in enumerate(weights))
        across[:, xx] = np.clip(total >> PRECISION_BITS, 0, 255)
    out = np.empty((height, width, 3), dtype=np.int64)
    for yy, (ymin, weights) in enumerate(reference_coefficients(source.shape[0], height)):
        total = half + sum(across[ymin + y] * k for y, k in enumerate(weights))
        out[yy] = np.clip(total >> PRECISION_BITS, 0, 255)
    return out.astype(np.uint8)


def reference_photo(rgba: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``center-crop-bilinear`` v1 rule's steps 1-3, from its text: alpha over white,
    centre crop, Pillow's bilinear."""
    source_height, source_width = rgba.shape[:2]
    flat = np.empty((source_height, source_width, 3), dtype=np.int64)
    for y in range(source_height):
        for x in range(source_width):
            a = int(rgba[y, x, 3])
            for c in range(3):
                flat[y, x, c] = (int(rgba[y, x, c]) * a + 255 * (255 - a) + 127) // 255
    if source_width * height > source_height * width:
        crop_height = source_height
        crop_width = max(1, (source_height * width + height // 2) // height)
        top, left = 0, (source_width - crop_width) // 2
    else:
        crop_width = source_width
        crop_height = max(1, (source_width * height + width // 2) // width)
        top, left = (source_height - crop_height) // 2, 0
    crop = flat[top : top + crop_height, left : left + crop_width].astype(np.uint8)
    return reference_resize(crop, height, width)


def _reference_crop(height: int, width: int, target_height: int,
                    target_width: int) -> tuple[int, int, int, int]:
    """Step 2's crop ``(top, left, crop_height, crop_width)``, as in :func:`reference_photo`."""
    if width * target_height > height * target_width:
        crop_width = max(1, (height * target_width + target_height // 2) // target_height)
        return 0, (width - crop_width) // 2, height, crop_width
    crop_height = max(1, (width * target_height + target_width // 2) // target_width)
    return (height - crop_height) // 2, 0, crop_height, width


def reference_factor(height: int, width: int, target_height: int, target_width: int) -> int:
    """Version 2's s: the largest of 8, 4, 2, 1 whose reduced image's crop covers the input."""
    for s in (8, 4, 2, 1):
        reduced_height, reduced_width = (height + s - 1) // s, (width + s - 1) // s
        _, _, crop_height, crop_width = _reference_crop(reduced_height, reduced_width,
                                                        target_height, target_width)
        if crop_width >= target_width and crop_height >= target_height:
            return s
    return 1  # the crop of the image itself can be smaller than an upscaled input


def reference_multiplier(count: int) -> int:
    """m(n) = trunc(float32(2**32) / float32(256 * n)): one IEEE single-precision division."""
    return int(np.float32(2.0**32) / np.float32(256 * count))


def reference_reduce(rgb: list, s: int) -> list:
    """Step 1b on rows of ``[r, g, b]`` lists: each output pixel averages its block (smaller
    at the right and bottom edges) as v = ((sum + n // 2) * m(n)) >> 24."""
    height, width = len(rgb), len(rgb[0])
    out = []
    for y in range((height + s - 1) // s):
        row = []
        for x in range((width + s - 1) // s):
            block = [rgb[j][i] for j in range(y * s, min((y + 1) * s, height))
                     for i in range(x * s, min((x + 1) * s, width))]
            n = len(block)
            m = reference_multiplier(n)
            pixel = []
            for c in range(3):
                total = sum(p[c] for p in block)
                assert (total + n // 2) * m < 2**32
                pixel.append(((total + n // 2) * m) >> 24)
            row.append(pixel)
        out.append(row)
    return out


def reference_photo_v2(rgba: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``center-crop-bilinear`` v2 rule's steps 1-3, from its text: alpha over white, the
    reduction by s, centre crop of the reduced image, Pillow's bilinear."""
    source_height, source_width = rgba.shape[:2]
    flat = [[[(int(rgba[y, x, c]) * int(rgba[y, x, 3]) + 255 * (255 - int(rgba[y, x, 3])) + 127)
              // 255 for c in range(3)] for x in range(source_width)] for y in range(source_height)]
    s = reference_factor(source_height, source_width, height, width)
    reduced = reference_reduce(flat, s) if s > 1 else flat
    top, left, crop_height, crop_width = _reference_crop(len(reduced), len(reduced[0]), height, width)
    crop = np.array([row[left : left + crop_width] for row in reduced[top : top + crop_height]],
                    dtype=np.uint8)
    return reference_resize(crop, height, width)


def _photo(seed: int, height: int, width: int, alpha: str = "opaque") -> np.ndarray:
    """A small RGBA test picture: a gradient with noise, so crops and weights show."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1),
                     (xs + ys) * 127 // max(1, width + height - 2)], axis=-1)
    noisy = np.clip(base + rng.integers(-40, 41, base.shape), 0, 255)
    if alpha == "opaque":
        a = np.full((height, width, 1), 255)
    elif alpha == "mixed":  # every kind: transparent, opaque and in between
        a = rng.integers(0, 256, (height, width, 1))
        a.flat[0], a.flat[-1] = 0, 255
    else:
        raise ValueError(alpha)
    return np.concatenate([noisy, a], axis=-1).astype(np.uint8)


# (name, source height, width, target height, width, seed, alpha)
PHOTO_CASES = [
    ("wider than the model: columns cropped, downscale by 7/3", 6, 14, 3, 3, 1, "opaque"),
    ("taller than the model: rows cropped", 13, 5, 4, 4, 2, "opaque"),
    ("same aspect ratio: no crop, downscale by 2.5", 10, 15, 4, 6, 3, "opaque"),
    ("upscale (scale below 1: plain bilinear)", 3, 4, 7, 9, 4, "opaque"),
    ("upscale of a wide image into a tall input", 4, 9, 8, 5, 5, "opaque"),
    ("downscale by a non-integer factor in both axes", 17, 23, 5, 7, 6, "opaque"),
    ("downscale by 11/4 and 13/5", 11, 13, 4, 5, 7, "opaque"),
    ("already the model's size: steps 1-2 only", 5, 6, 5, 6, 8, "opaque"),
    ("one pixel to many", 1, 1, 3, 4, 9, "opaque"),
    ("many to one pixel", 7, 9, 1, 1, 10, "opaque"),
    ("one-pixel-high strip for a tall input: crop width rounds to 0, kept at 1", 1, 5, 3, 1, 11,
     "opaque"),
    ("semi-transparent pixels over white", 8, 8, 4, 4, 12, "mixed"),
    ("semi-transparent, cropped and upscaled", 5, 7, 6, 6, 13, "mixed"),
    ("odd crop offset: (W - cw) is odd", 4, 11, 4, 4, 14, "opaque"),
]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode("ascii")


# Version 2 (name, source height, width, target height, width, seed, alpha): s from 1 to 8,
# edge blocks on each axis and both, n not a power of two, alpha, wider and taller.
PHOTO_V2_CASES = [
    ("s = 1: halving would leave a crop one row short", 8, 15, 5, 5, 21, "opaque"),
    ("s = 2, whole blocks, wider: columns cropped after the reduction", 16, 24, 5, 5, 22, "opaque"),
    ("s = 4, taller: edge blocks 3 wide on the right (n = 12), rows cropped", 30, 15, 4, 4, 23,
     "opaque"),
    ("s = 4, wider: edge blocks 3 high at the bottom (n = 12), columns cropped", 15, 30, 4, 4, 24,
     "opaque"),
    ("s = 4, edges on both axes: right n = 12, bottom n = 4, corner n = 3", 13, 15, 3, 3, 25,
     "opaque"),
    ("s = 8, whole blocks, wider", 32, 48, 4, 4, 26, "opaque"),
    ("s = 8, edges on both axes: n = 56 and corner n = 49, semi-transparent", 23, 23, 3, 3, 27,
     "mixed"),
    ("s = 2, edges on both axes (n = 2, corner 1), semi-transparent, rectangular input", 11, 9,
     5, 4, 28, "mixed"),
    ("s = 2, the reduced crop is exactly the input: no resize", 16, 16, 8, 8, 29, "opaque"),
    ("s = 2, then a resize by 10/7", 20, 40, 7, 7, 30, "opaque"),
    ("s = 4, taller image into a wide input", 40, 30, 3, 5, 31, "mixed"),
    ("s = 8 on a 9x9 image for one pixel: blocks 8x8, 8x1, 1x8 and 1x1", 9, 9, 1, 1, 32, "opaque"),
    ("s = 1, upscale (the reduction never applies to a small image)", 3, 4, 7, 9, 33, "mixed"),
]

# The choice of s alone: (width, height, target width, target height).
FACTOR_CASES = [
    (640, 480, 224, 224), (451, 300, 224, 224), (2000, 1500, 224, 224), (4000, 3000, 224, 224),
    (4000, 600, 224, 224),
    (448, 448, 224, 224), (447, 448, 224, 224), (446, 448, 224, 224),  # ceil(446/2) = 223
    (1792, 1792, 224, 224), (1785, 1785, 224, 224), (1784, 1784, 224, 224),
    (897, 1792, 224, 224), (1792, 895, 224, 224),
    (300, 200, 100, 150), (3000, 2000, 100, 150), (1, 1, 1, 1), (8, 8, 1, 1), (7, 7, 1, 1),
    (8192, 8192, 224, 224), (640, 480, 480, 640), (4032, 3024, 256, 256),
]


def _photo_cases(cases: list, reference, rule: photo.PhotoRule) -> list:
    out = []
    for name, height, width, target_height, target_width, seed, alpha in cases:
        rgba = _photo(seed, height, width, alpha)
        expected = reference(rgba, target_height, target_width)
        got = photo.prepare(rgba, (target_height, target_width), rule)
        if not np.array_equal(got, expected):
            raise SystemExit(f"{name}: tfuq.runtime.photo and the reference disagree")
        out.append({"name": name, "source_height": height, "source_width": width,
                    "source_rgba_base64": _b64(rgba), "target_height": target_height,
                    "target_width": target_width, "expected_rgb_base64": _b64(expected)})
    return out


def build_photos() -> dict:
    return {"rule": photo.CENTER_CROP.to_json(),
            "cases": _photo_cases(PHOTO_CASES, reference_photo, photo.CENTER_CROP)}


def build_photos_v2() -> dict:
    factors = []
    for width, height, target_width, target_height in FACTOR_CASES:
        s = reference_factor(height, width, target_height, target_width)
        if photo.reduction_factor(height, width, target_height, target_width) != s:
            raise SystemExit(f"{width}x{height} for {target_width}x{target_height}: "
                             "tfuq.runtime.photo and the reference choose different s")
        factors.append({"width": width, "height": height, "target_width": target_width,
                        "target_height": target_height, "s": s})
    return {"rule": photo.CENTER_CROP_V2.to_json(), "factors": factors,
            "cases": _photo_cases(PHOTO_V2_CASES, reference_photo_v2, photo.CENTER_CROP_V2)}


# -- files -------------------------------------------------------------------------------------
def render(payload: dict) -> str:
    return json.dumps(payload, indent=1) + "\n"


def build() -> dict[str, str]:
    """File name -> the text it should hold."""
    return {
        "masks.json": render(build_masks()),
        "aggregate.json": render(build_aggregate()),
        "decisions.json": render(build_decisions()),
        "photos.json": render(build_photos()),
        "photos_v2.json": render(build_photos_v2()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build().items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
            continue
        path.write_text(text)
        print(f"wrote {path.relative_to(HERE.parents[1])}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python tests/vectors/make_vectors.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
