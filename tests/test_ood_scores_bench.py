"""benchmarks/ood_scores.py: the feature scores by hand, and the whole analysis on a fake run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import ood_scores  # noqa: E402

from tests._dummies import ood_kept  # noqa: E402


def test_knn_is_minus_the_cosine_distance_to_the_kth_neighbour():
    scores = ood_scores.FeatureScores(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]]),
                                      np.array([0, 1, 0, 1]))
    got = scores.knn(np.array([[2.0, 0.0], [1.0, 1.0]]), k=1)
    assert got == pytest.approx([0.0, -(1 - 1.1 / np.sqrt(2 * 1.01))], abs=1e-12)


def test_mahalanobis_matches_the_quadratic_form_written_out():
    rng = np.random.default_rng(3)
    bank, labels = rng.normal(size=(60, 3)), np.repeat([0, 1, 2], 20)
    bank[labels == 1] += 4
    scores = ood_scores.FeatureScores(bank, labels)
    x = rng.normal(size=(5, 3))
    by_hand = [-min(float((v - m) @ scores.precision @ (v - m)) for m in scores.means) for v in x]
    assert scores.mahalanobis(x) == pytest.approx(by_hand, rel=1e-9)
    background = [float((v - scores.global_mean) @ scores.global_precision @ (v - scores.global_mean)) for v in x]
    relative = [-min(float((v - m) @ scores.precision @ (v - m)) - b for m in scores.means)
                for v, b in zip(x, background, strict=True)]
    assert scores.relative_mahalanobis(x) == pytest.approx(relative, rel=1e-9)


def test_the_analysis_runs_on_a_fake_run_and_the_guard_holds_its_share(tmp_path):
    result = ood_scores.analyse(ood_kept.write(tmp_path))
    detection = {(r["score"], r["set"]): r for r in result["detection"]}
    # the fake OOD features are far from every class mean: the feature scores separate them
    assert detection[("float relative Mahalanobis", "cifar10")]["auroc"] > 0.95
    assert 0.45 < detection[("int8 MC max probability", "blank")]["auroc"] <= 1
    guard = result["guard"]
    assert guard["rank"] == 6 and guard["n"] == 200  # P(Bin(200,.05) <= 5) = 0.064 <= 0.1 < P(<= 6)
    rules = {r["rule"]: r for r in result["rules"]}
    assert rules["OOD guard alone"]["coverage"] >= 0.93  # a 5% guard on 400 exchangeable images
    assert rules["guard + default (shipped)"]["coverage"] <= rules["default (interval + max prob >= 0.5)"]["coverage"]
    assert "AUROC / FPR95" in ood_scores.tables(result)
