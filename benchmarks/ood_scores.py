"""Out-of-distribution scores on a model's kept outputs, and the decision rules that use them.

Reads what ``paper_experiment.py --pretrained-lite`` keeps per set in
``<out>/<backbone>/probabilities/<set>.npz``: the MC passes (float and int8, same masks), the
deterministic pass, the pooled trunk features (what the first MCDropout sees), the
deterministic and MC-mean logits (float), and the int8 model's own scores (``int8_score_*``,
the outputs ``tfuq convert`` adds beside the probabilities). Every score is oriented so that
larger means "more like the training data" (a certainty):

- from the probabilities: MC-mean max probability (MSP), predictive entropy, mutual
  information, one deterministic pass's max softmax;
- from the logits: energy (Liu et al. 2020; ``logsumexp`` of the logits, MC-mean or
  deterministic) and the max logit; ``energy`` in int8 is the model's own output;
- from the features (fitted on ``train_bank``, 30 training images per class):
  KNN (Sun et al. 2022: minus the cosine distance to the k-th nearest training feature),
  Mahalanobis (Lee et al. 2018: minus the smallest class distance with a shared, Ledoit-Wolf
  shrunk covariance) and relative Mahalanobis (Ren et al. 2021: minus the smallest class
  distance less the distance to one Gaussian over all training features);
- combinations: the sum of two scores standardised on the calibration images (what a
  deployed model could compute).

Per OOD set: AUROC (OOD positive; 0.5 is chance) and two FPR95s named apart: ``fpr95`` as
``tfuq evaluate`` counts it (the share of test images refused when 95% of the OOD images are)
and ``ood_kept_at_95_id`` as the OOD literature (ODIN, OpenOOD) does (keep 95% of the test
images; the share of the OOD images kept with them).

Then the rules: the carried default (interval Z = 1 and MC max probability >= 0.5), the
paper's interval rule, each with the OOD guard of ``tfuq calibrate`` (``abstain.ood_guard`` on
the calibration images' int8 MC predictive entropy, alpha 5%, delta 10%; and on the in-graph
energy where the model has it) in front, and the guard with an
SGR threshold calibrated within it (what ``tfuq calibrate --within default`` writes): test
coverage and risk, and the share of every OOD set each one answers.

    python benchmarks/ood_scores.py --out runs/oe [--baseline runs/base]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ALPHA, DELTA = 0.05, 0.10
TARGET_RISK, CONFIDENCE = 0.10, 0.90
KNN_K = (1, 10)


# -- feature scores ------------------------------------------------------------------------------
def _normalise(features: np.ndarray) -> np.ndarray:
    features = features.astype(np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


class FeatureScores:
    """KNN, Mahalanobis and relative Mahalanobis fitted on training features and labels."""

    def __init__(self, features: np.ndarray, labels: np.ndarray):
        from sklearn.covariance import LedoitWolf

        self.bank = _normalise(features)
        x = features.astype(np.float64)
        self.classes = np.unique(labels)
        self.means = np.stack([x[labels == c].mean(0) for c in self.classes])
        centred = x - self.means[np.searchsorted(self.classes, labels)]
        self.precision = LedoitWolf().fit(centred).precision_
        self.global_mean = x.mean(0)
        self.global_precision = LedoitWolf().fit(x - self.global_mean).precision_

    def knn(self, features: np.ndarray, k: int) -> np.ndarray:
        similarity = _normalise(features) @ self.bank.T  # cosine; distance = 1 - similarity
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
        return -(1.0 - kth)

    def _class_distances(self, features: np.ndarray) -> np.ndarray:
        x = features.astype(np.float64)
        # (x - m)^T P (x - m) = x^T P x - 2 m^T P x + m^T P m, for every class mean m
        px = x @ self.precision
        quad = np.einsum("ij,ij->i", px, x)[:, None]
        cross = px @ self.means.T
        means_term = np.einsum("ij,jk,ik->i", self.means, self.precision, self.means)[None, :]
        return quad - 2 * cross + means_term

    def mahalanobis(self, features: np.ndarray) -> np.ndarray:
        return -self._class_distances(features).min(1)

    def relative_mahalanobis(self, features: np.ndarray) -> np.ndarray:
        centred = features.astype(np.float64) - self.global_mean
        background = np.einsum("ij,jk,ik->i", centred, self.global_precision, centred)
        return -(self._class_distances(features) - background[:, None]).min(1)


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max(-1, keepdims=True)
    return (np.log(np.exp(logits - top).sum(-1, keepdims=True)) + top)[:, 0]


def all_scores(kept: dict, features: FeatureScores | None) -> dict[str, np.ndarray]:
    """Every score of one set (larger = more in-distribution), name -> ``(batch,)``."""
    from tfuq.runtime.aggregate import aggregate

    found = {}
    for precision in ("float", "int8"):
        summary = aggregate(kept[precision].astype(np.float64))
        found[f"{precision} MC max probability"] = summary.max_probability
        found[f"{precision} MC entropy"] = -summary.predictive_entropy
        found[f"{precision} MC mutual information"] = -summary.mutual_information
    found["float 1-pass max softmax"] = kept["deterministic"].astype(np.float64).max(-1)
    if "mc_mean_logits" in kept:
        found["float energy (MC-mean logits)"] = _logsumexp(kept["mc_mean_logits"])
        found["float energy (1 pass)"] = _logsumexp(kept["det_logits"])
        found["float max logit (MC mean)"] = kept["mc_mean_logits"].astype(np.float64).max(-1)
    for key in kept:
        if key.startswith("int8_score_"):
            found[f"int8 {key[len('int8_score_'):]} (model output)"] = kept[key].astype(np.float64)
    if features is not None and "features" in kept:
        for k in KNN_K:
            found[f"float KNN k={k}"] = features.knn(kept["features"], k)
        found["float Mahalanobis"] = features.mahalanobis(kept["features"])
        found["float relative Mahalanobis"] = features.relative_mahalanobis(kept["features"])
    return found


COMBINATIONS = (
    ("int8 energy (model output)", "float KNN k=10"),
    ("int8 energy (model output)", "float relative Mahalanobis"),
    ("int8 MC max probability", "float KNN k=10"),
)


def combine(scores: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sums of two scores, each standardised by its mean and spread on ``reference`` (the
    calibration images)."""
    out = {}
    for first, second in COMBINATIONS:
        if first in scores and second in scores:
            parts = [(scores[n] - reference[n].mean()) / max(reference[n].std(), 1e-12) for n in (first, second)]
            out[f"{first} + {second}"] = parts[0] + parts[1]
    return out


# -- detection -----------------------------------------------------------------------------------
def detection(test: dict[str, np.ndarray], ood: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """AUROC and both FPR95s of every score against every OOD set."""
    from tfuq.evaluation import ood_kept_at_95_id
    from tfuq.runtime import metrics

    rows = []
    for name, sure in test.items():
        for set_name, theirs in ood.items():
            if name not in theirs:
                continue
            other = theirs[name]
            clean = np.nan_to_num(np.r_[sure, other], nan=-1e12, posinf=1e12, neginf=-1e12)
            is_ood = np.r_[np.zeros(len(sure), bool), np.ones(len(other), bool)]
            rows.append({"score": name, "set": set_name, "auroc": metrics.auroc(-clean, is_ood),
                         "fpr95": metrics.fpr_at_tpr(-clean, is_ood, 0.95),
                         "ood_kept_at_95_id": ood_kept_at_95_id(clean[: len(sure)], clean[len(sure):])})
    return rows


# -- rules -------------------------------------------------------------------------------------------
def rule_rows(kept: dict[str, dict], ood_names: list[str]) -> tuple[list[dict], dict]:
    """Coverage/risk on the test images and the share of each OOD set answered, per rule."""
    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import aggregate

    calibration = kept["calibration"]
    energy = "int8_score_energy"

    def scores_of(data):
        return {"energy": data[energy]} if energy in data else None

    # tfuq calibrate's default guard: the int8 MC predictive entropy of the calibration images
    entropy = aggregate(calibration["int8"].astype(np.float64)).predictive_entropy
    rules = {"interval Z=1 (paper)": abstain.INTERVAL_RULE, "default (interval + max prob >= 0.5)": abstain.DEFAULT_RULE}
    try:
        guard = abstain.ood_guard(entropy, "predictive_entropy", alpha=ALPHA, delta=DELTA)
    except abstain.InfeasibleError:  # too few calibration images for the guarantee
        guard = None
    if guard is not None:
        rules["OOD guard alone (entropy)"] = guard.rule
        rules["guard + interval"] = abstain.with_ood_guard(abstain.INTERVAL_RULE, guard.rule)
        rules["guard + default (shipped)"] = abstain.with_ood_guard(abstain.DEFAULT_RULE, guard.rule)
    if energy in calibration and guard is not None:
        energy_guard = abstain.ood_guard(calibration[energy], "energy", alpha=ALPHA, delta=DELTA)
        rules["OOD guard alone (in-graph energy)"] = energy_guard.rule
        rules["energy guard + default"] = abstain.with_ood_guard(abstain.DEFAULT_RULE, energy_guard.rule)
    sgr = None if guard is None else abstain.calibrate(
        calibration["int8"].astype(np.float64), calibration["labels"], target_risk=TARGET_RISK,
        confidence=CONFIDENCE, score="max_probability", within=rules["guard + default (shipped)"],
        scores=scores_of(calibration))
    if sgr is not None and sgr.feasible:
        rules[f"guard + default + SGR (risk {TARGET_RISK}, conf. {CONFIDENCE})"] = sgr.to_rule()
    rows = []
    for label, rule in rules.items():
        row = {"rule": label, "text": abstain.describe_rule(rule)}
        for set_name in ["test", *ood_names]:
            data = kept[set_name]
            decision = abstain.decide(data["int8"].astype(np.float64), rule, scores_of(data))
            accept = decision.accept
            if set_name == "test":
                wrong = decision.predicted != data["labels"]
                row["coverage"] = float(accept.mean())
                row["risk"] = float(wrong[accept].mean()) if accept.any() else None
                row["accuracy_all"] = float(1 - wrong.mean())
            else:
                row[f"answers_{set_name[4:]}"] = float(accept.mean())
        rows.append(row)
    if guard is None:
        return rows, {}
    test_entropy = aggregate(kept["test"]["int8"].astype(np.float64)).predictive_entropy
    info = {"score": "predictive_entropy (int8 MC mean)", "threshold": guard.threshold, "rank": guard.rank,
            "n": len(entropy), "refused_on_calibration": guard.refused_on_calibration,
            "refused_on_test": float(np.mean(test_entropy > guard.threshold))}
    return rows, info


def disjoint_rows(unseen: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows of the kept ``tinyimagenet_unseen`` arrays whose class is none of CIFAR-100's
    (``ood_dev.UNSEEN_DISJOINT``): the set is the dev file's images of ``UNSEEN_CLASSES`` in file
    order, so the classes are read back from the file."""
    import ood_dev

    with np.load(ood_dev.SHARED_OOD / ood_dev.TINY) as data:
        classes = np.asarray(data["y"])
    classes = classes[np.isin(classes, ood_dev.UNSEEN_CLASSES)]
    if len(classes) != len(unseen["labels"]):
        raise SystemExit(f"ood_scores: the kept tinyimagenet_unseen set has {len(unseen['labels'])} rows, "
                         f"the dev file {len(classes)}")
    keep = np.isin(classes, ood_dev.UNSEEN_DISJOINT)
    # the MC arrays are (passes, images, ...), the rest (images, ...)
    return {key: value[:, keep] if key in ("float", "int8") else value[keep] for key, value in unseen.items()}


def analyse(out: str | Path, backbone: str = "efficientnet_lite0") -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from paper_beyond import load

    kept = load(Path(out) / backbone / "probabilities")
    if "ood_tinyimagenet_unseen" in kept:
        kept["ood_tinyimagenet_disjoint"] = disjoint_rows(kept["ood_tinyimagenet_unseen"])
    missing = [name for name in ("test", "calibration", "train_bank") if name not in kept]
    if missing:
        raise SystemExit(f"ood_scores: {out} has no kept {', '.join(missing)} yet")
    bank = kept["train_bank"]
    features = FeatureScores(bank["features"], bank["labels"]) if "features" in bank else None
    ood_names = sorted(n for n in kept if n.startswith("ood_"))
    reference = all_scores(kept["calibration"], features)
    per_set = {}
    for name in ["test", *ood_names]:
        found = all_scores(kept[name], features)
        per_set[name] = {**found, **combine(found, reference)}
    accuracy = {p: float(np.mean(kept["test"][p].astype(np.float64).mean(0).argmax(-1) == kept["test"]["labels"]))
                for p in ("float", "int8")}
    rows, guard = rule_rows(kept, ood_names)
    return {"format": "tfuq-ood-scores", "out": str(out), "accuracy": accuracy,
            "sets": {n: int(len(kept[n]["labels"])) for n in ["test", *ood_names]},
            "detection": detection(per_set["test"], {n[4:]: per_set[n] for n in ood_names}),
            "rules": rows, "guard": guard}


def tables(result: dict, focus: tuple[str, ...] = ("cifar10", "tinyimagenet_unseen", "tinyimagenet_disjoint")) -> str:
    sets = [s[4:] for s in result["sets"] if s.startswith("ood_")]
    ordered = [s for s in focus if s in sets] + [s for s in sets if s not in focus]
    lines = [f"{result['out']}: test accuracy float {result['accuracy']['float']:.3f}, int8 {result['accuracy']['int8']:.3f}",
             "", "AUROC / FPR95 (literature: OOD kept at 95% of test kept) per OOD set",
             "| score | " + " | ".join(ordered) + " |", "|---|" + "---|" * len(ordered)]
    by = {}
    for row in result["detection"]:
        by.setdefault(row["score"], {})[row["set"]] = row
    for score, mine in by.items():
        lines.append(f"| {score} | " + " | ".join(
            f"{mine[s]['auroc']:.3f} / {mine[s]['ood_kept_at_95_id']:.2f}" if s in mine else "n/a" for s in ordered) + " |")
    if result["guard"]:
        g = result["guard"]
        lines += ["", f"OOD guard ({g['score']}, alpha {ALPHA}, delta {DELTA}): threshold {g['threshold']:.4g}, "
                  f"rank {g['rank']} of {g['n']} calibration images; refuses {g['refused_on_calibration']:.1%} of them "
                  f"and {g['refused_on_test']:.1%} of the test images"]
    lines += ["", "Rules (int8, T = 30): test coverage / risk, share of each OOD set answered",
              "| rule | coverage | risk | " + " | ".join(ordered) + " |", "|---|---|---|" + "---|" * len(ordered)]
    for row in result["rules"]:
        lines.append(f"| {row['rule']} | {row['coverage']:.3f} | "
                     + (f"{row['risk']:.3f}" if row["risk"] is not None else "n/a") + " | "
                     + " | ".join(f"{row['answers_' + s]:.3f}" for s in ordered) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, nargs="+", help="--out folders of paper_experiment.py runs")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args(argv)
    for out in args.out:
        result = analyse(out, args.backbone)
        (Path(out) / "ood_scores.json").write_text(json.dumps(result, indent=1) + "\n")
        print(tables(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
