"""Is MC dropout worth it? The analysis beyond the seed paper, on the same model and images.

Reads the per-image probabilities that ``paper_experiment.py --pretrained-lite`` keeps in
``<out>/<backbone>/probabilities/`` (float MC passes, int8 MC passes with the same masks, the
float deterministic pass, labels) and compares, clean and at corruption severities 3 and 5
(the 15 corruptions pooled):

- scores: one deterministic pass (max softmax, entropy) vs the MC mean (max probability,
  predictive entropy) and the MC-only scores (mutual information, variation ratio) vs the
  paper's interval rule, ranked by its margin ``z*`` (the largest ``conf_factor`` at which the
  interval rule still accepts): risk-coverage curves and AURC;
- a threshold calibrated with SGR (``tfuq.runtime.abstain.calibrate``, what ``tfuq calibrate``
  runs) on the calibration images held out of training: guaranteed bound vs realised risk
  and coverage on the clean test images;
- out-of-distribution sets (``ood_sets.py``): AUROC and FPR at 95% TPR of each score against
  the clean test images, and the share of each set every decision rule accepts.

    python benchmarks/paper_beyond.py --out runs/paper_lite

Works on whatever has finished (missing sets are left out and named). Writes
``<out>/paper_beyond.json``, ``<out>/paper_beyond_rc.png`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SEVERITIES = (0, 3, 5)
PRECISIONS = ("float", "int8")
# name: (source, how to get the certainty; larger = more confident)
SCORES = (
    "det_max_probability",
    "det_entropy",
    "mc_max_probability",
    "mc_entropy",
    "mc_mutual_information",
    "mc_variation_ratio",
    "interval_margin",
)
LABELS = {
    "det_max_probability": "1 pass: max softmax",
    "det_entropy": "1 pass: entropy",
    "mc_max_probability": "MC mean: max prob.",
    "mc_entropy": "MC mean: entropy",
    "mc_mutual_information": "MC: mutual information",
    "mc_variation_ratio": "MC: variation ratio",
    "interval_margin": "interval rule (margin z*)",
}
TARGET_RISK = 0.10
CONFIDENCE = 0.90
MI_CEILING = 0.1  # the throwaway check
CONF_FACTOR = 1.0


def interval_margin(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``z*`` per image: the interval rule accepts at ``conf_factor = Z`` exactly when
    ``z* > Z``. For the top class ``t`` (argmax of the mean, lowest index on ties),
    ``z* = min_c (mean_t - mean_c) / (std_t + std_c)`` over ``c != t``; a zero denominator
    gives ``+inf`` when the means differ and ``-inf`` on a tie. ``mean``/``std`` are
    ``(batch, classes)``."""
    top = mean.argmax(-1)
    rows = np.arange(len(mean))
    gap = mean[rows, top][:, None] - mean
    spread = std[rows, top][:, None] + std
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread > 0, gap / np.where(spread > 0, spread, 1), np.where(gap > 0, np.inf, -np.inf))
    z[rows, top] = np.inf
    return z.min(-1)


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(-1)


def scores(passes: np.ndarray, deterministic: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{score: (predicted, certainty)}`` for MC ``passes`` ``(passes, batch, classes)`` and the
    deterministic probabilities ``(batch, classes)``; certainty is larger when more confident."""
    from tfuq.runtime.aggregate import aggregate

    summary = aggregate(passes.astype(np.float64), conf_factor=CONF_FACTOR)
    det = deterministic.astype(np.float64)
    det_predicted = det.argmax(-1)
    return {
        "det_max_probability": (det_predicted, det.max(-1)),
        "det_entropy": (det_predicted, -_entropy(det)),
        "mc_max_probability": (summary.predicted, summary.max_probability),
        "mc_entropy": (summary.predicted, -summary.predictive_entropy),
        "mc_mutual_information": (summary.predicted, -summary.mutual_information),
        "mc_variation_ratio": (summary.predicted, -summary.variation_ratio),
        "interval_margin": (summary.predicted, interval_margin(summary.mean, summary.std)),
    }


def load(folder: Path) -> dict[str, dict]:
    """Every kept ``<name>.npz`` of ``folder`` as float arrays."""
    found = {}
    for path in sorted(folder.glob("*.npz")):
        if path.name.endswith(".part.npz"):
            continue
        with np.load(path) as data:
            found[path.stem] = {key: data[key] for key in data.files}
    return found


def _severity_of(name: str) -> int | None:
    if name == "test":
        return 0
    stem, _, level = name.rpartition("_")
    if stem and level.isdigit() and not name.startswith(("ood_", "calibration", "test")):
        return int(level)
    return None


def pooled_sets(kept: dict[str, dict]) -> dict[int, dict]:
    """Clean test (severity 0) and the corruptions pooled per severity 3 and 5."""
    out = {}
    for severity in SEVERITIES:
        names = [n for n in kept if _severity_of(n) == severity]
        if not names:
            continue
        out[severity] = {
            key: np.concatenate([kept[n][key] for n in names], axis=1 if key in PRECISIONS else 0)
            for key in ("float", "int8", "deterministic", "labels")
        } | {"sets": names}
    return out


def risk_coverage(kept_sets: dict[int, dict]) -> list[dict]:
    """AURC and accuracy of every score, per severity and precision (deterministic scores
    are float only)."""
    from tfuq.runtime import metrics

    rows = []
    for severity, data in kept_sets.items():
        for precision in PRECISIONS:
            for name, (predicted, certainty) in scores(data[precision], data["deterministic"]).items():
                if name.startswith("det_") and precision == "int8":
                    continue
                labels = data["labels"]
                rows.append({
                    "severity": severity, "precision": precision, "score": name,
                    "images": int(len(labels)),
                    "accuracy": float(np.mean(predicted == labels)),
                    "aurc": metrics.aurc(labels, predicted, np.nan_to_num(certainty, posinf=1e9, neginf=-1e9)),
                    "auroc_errors": metrics.auroc(-np.nan_to_num(certainty, posinf=1e9, neginf=-1e9),
                                                  predicted != labels)
                    if 0 < np.sum(predicted != labels) < len(labels) else None,
                })
    return rows


def calibrated(kept: dict[str, dict], kept_sets: dict[int, dict]) -> list[dict]:
    """SGR thresholds from the calibration images, checked on the test sets."""
    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import aggregate

    if "calibration" not in kept:
        return []
    out = []
    for precision in PRECISIONS:
        calibration = aggregate(kept["calibration"][precision].astype(np.float64))
        for score in ("max_probability", "mutual_information"):
            result = abstain.calibrate(calibration, kept["calibration"]["labels"], target_risk=TARGET_RISK,
                                       confidence=CONFIDENCE, score=score)
            row = {"precision": precision, "score": score, "target_risk": TARGET_RISK,
                   "confidence": CONFIDENCE, "feasible": result.feasible, "threshold": result.threshold,
                   "risk_bound": result.risk_bound, "calibration_images": result.n,
                   "calibration_coverage": result.coverage, "message": result.message}
            if result.feasible:
                rule = result.to_rule()
                for severity, data in kept_sets.items():
                    summary = aggregate(data[precision].astype(np.float64))
                    accept = abstain.decide(summary, rule).accept
                    wrong = summary.predicted != data["labels"]
                    row[f"coverage_{severity}"] = float(accept.mean())
                    row[f"risk_{severity}"] = float(wrong[accept].mean()) if accept.any() else None
            out.append(row)
    return out


def rules(calibration_rows: list[dict]) -> dict[str, dict]:
    """The decision rules compared on every set: the paper's, thresholds, and combinations."""
    found = {
        "interval Z=1 (paper)": {"interval": CONF_FACTOR},
        f"MI <= {MI_CEILING}": {"mutual_information": MI_CEILING},
        f"interval Z=1 + MI <= {MI_CEILING}": {"interval": CONF_FACTOR, "mutual_information": MI_CEILING},
        "interval Z=1 + max prob >= 0.5": {"interval": CONF_FACTOR, "max_probability": 0.5},
    }
    for row in calibration_rows:
        if row["feasible"] and row["precision"] == "int8":
            key = f"SGR {row['score']} (risk {TARGET_RISK}, conf. {CONFIDENCE}): {row['threshold']:.4g}"
            found[key] = {row["score"]: row["threshold"]}
            if row["score"] == "max_probability":
                found[f"interval Z=1 + {key}"] = {"interval": CONF_FACTOR, row["score"]: row["threshold"]}
    return found


def accepts(passes: np.ndarray, rule: dict) -> np.ndarray:
    """Images a combined rule accepts (every part must accept)."""
    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import aggregate

    summary = aggregate(passes.astype(np.float64), conf_factor=CONF_FACTOR)
    accept = np.ones(len(summary.predicted), dtype=bool)
    for part, value in rule.items():
        if part == "interval":
            accept &= abstain.accept_interval(summary, value)
        else:
            accept &= abstain.accept_threshold(summary, part, value)
    return accept


def ood(kept: dict[str, dict], kept_sets: dict[int, dict], rule_set: dict[str, dict]) -> dict:
    """AUROC/FPR95 of every score against the clean test images, and acceptance per rule."""
    from tfuq.runtime import metrics

    if 0 not in kept_sets:
        return {}
    clean = kept_sets[0]
    names = [n for n in kept if n.startswith("ood_")]
    detection, acceptance = [], []
    for precision in PRECISIONS:
        clean_scores = scores(clean[precision], clean["deterministic"])
        for name in names:
            theirs = scores(kept[name][precision], kept[name]["deterministic"])
            for score in SCORES:
                if score.startswith("det_") and precision == "int8":
                    continue
                uncertainty = -np.nan_to_num(np.concatenate([clean_scores[score][1], theirs[score][1]]),
                                             posinf=1e9, neginf=-1e9)
                positive = np.r_[np.zeros(len(clean_scores[score][1]), bool), np.ones(len(theirs[score][1]), bool)]
                detection.append({"precision": precision, "set": name[4:], "score": score,
                                  "auroc": metrics.auroc(uncertainty, positive),
                                  "fpr95": metrics.fpr_at_tpr(uncertainty, positive, 0.95)})
        for label, rule in rule_set.items():
            row = {"precision": precision, "rule": label,
                   "test_coverage": float(accepts(clean[precision], rule).mean())}
            mean = clean[precision].astype(np.float64).mean(0)
            accepted = accepts(clean[precision], rule)
            row["test_risk"] = float(np.mean(mean.argmax(-1)[accepted] != clean["labels"][accepted])) if accepted.any() else None
            for severity in (3, 5):
                if severity in kept_sets:
                    data = kept_sets[severity]
                    accepted = accepts(data[precision], rule)
                    row[f"coverage_{severity}"] = float(accepted.mean())
                    row[f"risk_{severity}"] = (float(np.mean(data[precision].astype(np.float64).mean(0).argmax(-1)[accepted]
                                                             != data["labels"][accepted])) if accepted.any() else None)
            for name in names:
                passes = kept[name][precision]
                chosen = accepts(passes, rule)
                row[f"accepts_{name[4:]}"] = float(chosen.mean())
                top = passes.astype(np.float64).mean(0).max(-1)
                row[f"top_probability_accepted_{name[4:]}"] = float(top[chosen].max()) if chosen.any() else None
            acceptance.append(row)
    return {"detection": detection, "acceptance": acceptance, "sets": [n[4:] for n in names]}


def analyse(out: str | Path, backbone: str = "efficientnet_lite0") -> dict:
    """Everything above for ``out/backbone/probabilities``; missing sets are named."""
    folder = Path(out) / backbone / "probabilities"
    kept = load(folder)
    kept_sets = pooled_sets(kept)
    calibration_rows = calibrated(kept, kept_sets)
    rule_set = rules(calibration_rows)
    return {
        "format": "tfuq-paper-beyond",
        "backbone": backbone,
        "sets_found": sorted(kept),
        "pooled": {str(s): d["sets"] for s, d in kept_sets.items()},
        "risk_coverage": risk_coverage(kept_sets),
        "calibration": calibration_rows,
        "rules": rule_set,
        "ood": ood(kept, kept_sets, rule_set),
        "_curves": kept_sets,
    }


def plot(result: dict, path: Path) -> None:
    """Risk-coverage curves of every score, a panel per severity, int8 MC (deterministic: float)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfuq.runtime import metrics

    kept_sets = result["_curves"]
    if not kept_sets:
        return
    figure, axes = plt.subplots(1, len(kept_sets), figsize=(4.2 * len(kept_sets), 3.8), squeeze=False)
    for axis, (severity, data) in zip(axes[0], kept_sets.items(), strict=True):
        for name in SCORES:
            precision = "float" if name.startswith("det_") else "int8"
            predicted, certainty = scores(data[precision], data["deterministic"])[name]
            coverage, risk, _ = metrics.risk_coverage_curve(
                data["labels"], predicted, np.nan_to_num(certainty, posinf=1e9, neginf=-1e9))
            style = ":" if name.startswith("det_") else ("--" if name == "interval_margin" else "-")
            axis.plot(coverage, risk, style, label=LABELS[name], linewidth=1.2)
        axis.set_title("clean test" if severity == 0 else f"CIFAR-100-C severity {severity} (15 pooled)", fontsize=9)
        axis.set_xlabel("coverage")
        axis.grid(alpha=0.3)
        axis.set_xlim(0, 1)
    axes[0, 0].set_ylabel("selective risk (error among accepted)")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle("Risk-coverage: one deterministic pass (float, dotted) vs MC dropout T=30 (int8)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _f(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def tables(result: dict) -> str:
    """Markdown tables of the analysis."""
    parts = []
    rc = result["risk_coverage"]
    if rc:
        severities = sorted({r["severity"] for r in rc})
        parts += ["AURC (lower is better) and accuracy of the prediction each score goes with",
                  "| score | precision | " + " | ".join(f"AURC sev {s}" for s in severities)
                  + " | " + " | ".join(f"acc. sev {s}" for s in severities) + " |",
                  "|" + "---|" * (2 + 2 * len(severities))]
        for precision in PRECISIONS:
            for score in SCORES:
                mine = {r["severity"]: r for r in rc if r["score"] == score and r["precision"] == precision}
                if mine:
                    parts.append(f"| {LABELS[score]} | {precision} | "
                                 + " | ".join(_f(mine[s]["aurc"], 4) if s in mine else "n/a" for s in severities)
                                 + " | " + " | ".join(_f(mine[s]["accuracy"]) if s in mine else "n/a" for s in severities) + " |")
    if result["calibration"]:
        parts += ["", f"SGR threshold on the held-out calibration images (target risk {TARGET_RISK}, "
                  f"confidence {CONFIDENCE}); realised on the test sets",
                  "| precision | score | threshold | bound | calib. coverage | test risk | test coverage "
                  "| sev 3 risk | sev 3 cov. | sev 5 risk | sev 5 cov. |", "|" + "---|" * 11]
        for row in result["calibration"]:
            parts.append(f"| {row['precision']} | {row['score']} | {_f(row['threshold'], 4)} | {_f(row['risk_bound'])} "
                         f"| {_f(row['calibration_coverage'])} | {_f(row.get('risk_0'))} | {_f(row.get('coverage_0'))} "
                         f"| {_f(row.get('risk_3'))} | {_f(row.get('coverage_3'))} | {_f(row.get('risk_5'))} "
                         f"| {_f(row.get('coverage_5'))} |")
    ood_part = result["ood"]
    if ood_part and ood_part["sets"]:
        sets = ood_part["sets"]
        parts += ["", "Out-of-distribution detection against the clean test images: AUROC / FPR95",
                  "| score | precision | " + " | ".join(sets) + " |", "|" + "---|" * (2 + len(sets))]
        for precision in PRECISIONS:
            for score in SCORES:
                mine = {r["set"]: r for r in ood_part["detection"] if r["score"] == score and r["precision"] == precision}
                if mine:
                    parts.append(f"| {LABELS[score]} | {precision} | "
                                 + " | ".join(f"{mine[s]['auroc']:.3f} / {mine[s]['fpr95']:.3f}" for s in sets) + " |")
        parts += ["", "Share accepted by each rule (int8 MC passes): test coverage and risk, then each out-of-distribution set",
                  "| rule | test cov. | test risk | sev 5 cov. | sev 5 risk | " + " | ".join(sets) + " |",
                  "|" + "---|" * (5 + len(sets))]
        for row in ood_part["acceptance"]:
            if row["precision"] == "int8":
                parts.append(f"| {row['rule']} | {_f(row['test_coverage'])} | {_f(row['test_risk'])} "
                             f"| {_f(row.get('coverage_5'))} | {_f(row.get('risk_5'))} | "
                             + " | ".join(_f(row[f'accepts_{s}']) for s in sets) + " |")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the --out folder of paper_experiment.py --pretrained-lite")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--plot", help="risk-coverage plot (default <out>/paper_beyond_rc.png)")
    args = parser.parse_args(argv)
    folder = Path(args.out) / args.backbone / "probabilities"
    if not folder.is_dir():
        print(f"paper_beyond: no kept probabilities in {folder}", file=sys.stderr)
        return 2
    result = analyse(args.out, args.backbone)
    plot_path = Path(args.plot) if args.plot else Path(args.out) / "paper_beyond_rc.png"
    plot(result, plot_path)
    saved = {k: v for k, v in result.items() if not k.startswith("_")}
    (Path(args.out) / "paper_beyond.json").write_text(json.dumps(saved, indent=1) + "\n")
    print(tables(result))
    if {"test", "calibration", "train_bank"} <= set(result["sets_found"]):
        # Every OOD score the model carries and the feature scores, and the OOD guard's rules.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import ood_scores

        scored = ood_scores.analyse(args.out, args.backbone)
        (Path(args.out) / "ood_scores.json").write_text(json.dumps(scored, indent=1) + "\n")
        print("\n" + ood_scores.tables(scored))
    missing = [s for s in ("test", "calibration") if s not in result["sets_found"]]
    if missing:
        print(f"\nnot yet available: {', '.join(missing)}", file=sys.stderr)
    print(f"\nJSON: {Path(args.out) / 'paper_beyond.json'}\nplot: {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
