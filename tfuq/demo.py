"""The offline default: the seed paper's experiment in miniature, with no network.

scikit-learn ships 1,797 real handwritten digits (8x8, UCI). The demo makes them 32x32 RGB,
trains ``small_cnn`` with an MC-dropout head, converts it to a full-integer tfuq model with
30 passes per invoke, calibrates an abstention threshold with a risk guarantee on held-out
images, and evaluates in distribution and on corrupted copies (the 15 CIFAR-C corruptions,
severities 1-5), printing the paper's columns plus ours and writing a report with plots.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfuq import data, evaluation
from tfuq.data import corruptions
from tfuq.runtime import abstain, modelfile
from tfuq.runtime.config import DecisionRule

SIZE = 32
SPLIT = {"train": 0.5, "calibration": 0.3, "test": 0.2}


def digits(size: int = SIZE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's digits as uint8 RGB ``(1797, size, size, 3)``, labels and names.

    The 0..16 ink levels become white ink on black, upsampled by pixel repetition (a
    multiple of 8 keeps every source pixel a clean block).
    """
    from sklearn.datasets import load_digits

    if size % 8:
        raise ValueError(f"digit images are 8x8: size must be a multiple of 8, got {size}")
    bunch = load_digits()
    ink = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    ink = ink.repeat(size // 8, axis=1).repeat(size // 8, axis=2)
    images = np.repeat(ink[..., None], 3, axis=-1)
    return images, bunch.target.astype(np.int64), [str(d) for d in bunch.target_names]


def split(labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Stratified train / calibration / test indices in the proportions of ``SPLIT``."""
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in SPLIT}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        ends = np.round(np.cumsum(list(SPLIT.values())) * len(members)).astype(int)
        for name, chunk in zip(SPLIT, np.split(members, ends[:-1]), strict=True):
            parts[name].append(chunk)
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def corrupted_copies(images: np.ndarray, severity: int, seed: int = 0) -> np.ndarray:
    """Each image corrupted at ``severity`` by one of the 15 corruptions, in turn."""
    out = np.empty_like(images)
    for number, name in enumerate(corruptions.CORRUPTIONS):
        chosen = np.arange(number, len(images), len(corruptions.CORRUPTIONS))
        if len(chosen):
            out[chosen] = corruptions.corrupt(images[chosen], name, severity, seed=seed, index=chosen)
    return out


def _severity_plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    severity = [row["severity"] for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, label in (
        ("micro_f1_all", "micro-F1, all images"),
        ("micro_f1_accepted", "micro-F1, accepted"),
        ("coverage", "coverage"),
        ("ignored_would_be_wrong", "ignored that would be wrong"),
    ):
        axes[0].plot(severity, [row[key] for row in rows], marker="o", label=label)
    axes[0].set(xlabel="corruption severity (0 = clean)", ylabel="share", ylim=(0, 1.02),
                title="Interval rule (the seed paper's)")
    axes[0].legend(fontsize=8)
    axes[1].plot(severity, [row["calibrated_coverage"] for row in rows], marker="o", label="coverage")
    axes[1].plot(severity, [row["calibrated_risk"] for row in rows], marker="o", label="selective risk")
    if rows[0].get("target_risk") is not None:
        axes[1].axhline(rows[0]["target_risk"], color="grey", linestyle="--", label="target risk")
    axes[1].set(xlabel="corruption severity (0 = clean)", ylim=(0, 1.02),
                title="Calibrated threshold (guarantee holds at 0 only)")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(
    out: str | os.PathLike = "tfuq-demo",
    *,
    epochs: int = 25,
    passes: int = 30,
    target_risk: float = 0.02,
    confidence: float = 0.9,
    seed: int = 0,
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> dict:
    """Run the whole offline experiment; write artifacts into ``out``; return the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    user_say = say

    def say(message: str) -> None:
        user_say(f"{message}  [{time.perf_counter() - started:.0f} s]" if message.startswith("[") else message)

    from tfuq.conversion.convert import convert
    from tfuq.modeling import backbones
    from tfuq.training import train

    images, labels, names = digits()
    parts = split(labels, seed)
    say(f"[1/5] data: scikit-learn digits, {len(images)} images as {SIZE}x{SIZE} RGB; "
        + ", ".join(f"{name} {len(index)}" for name, index in parts.items()))

    say(f"[2/5] training small_cnn with an MC-dropout head (up to {epochs} epochs)")
    keras_model = backbones.build_model(
        "small_cnn", classes=len(names), input_size=SIZE, weights=None, dropout=0.3, dense=(64,),
        dropout_placement="all", name="digits_mc",
    )
    fitted = train.train(keras_model, images[parts["train"]], labels[parts["train"]], epochs=epochs,
                         batch_size=32, validation_split=0.15, patience=4, seed=seed)
    keras_model = fitted.model
    train.save_model(keras_model, out / "model.keras")

    say(f"[3/5] converting to full-integer TFLite, {passes} passes per invoke")
    train_images = images[parts["train"]]
    representative = train_images[data.balanced_indices(labels[parts["train"]], 200, seed=seed)]
    conversion = convert(keras_model, representative, passes=passes, calibration_samples=160,
                         check_samples=40, labels=names)
    conversion.save(out / "model.tflite")
    check = conversion.check

    say(f"[4/5] calibrating a threshold: selective risk <= {target_risk:.0%} with confidence {confidence:.0%}")
    import tfuq

    model = tfuq.load(out / "model.tflite", threads=os.cpu_count())
    calibration_passes = model.run(images[parts["calibration"]], seed=seed)
    calibrated = abstain.calibrate(calibration_passes, labels[parts["calibration"]],
                                   target_risk=target_risk, confidence=confidence,
                                   score="max_probability")
    say(f"      {calibrated.message}")
    calibrated_rule = calibrated.to_rule() if calibrated.feasible else None
    if calibrated_rule is not None:
        modelfile.update_config(out / "model.tflite", {"decision": calibrated_rule})

    say("[5/5] evaluating: clean test images, then corrupted copies at severities 1-5")
    test_images, test_labels = images[parts["test"]], labels[parts["test"]]
    float_probs = np.stack([np.asarray(keras_model(test_images.astype("float32"), training=False))
                            for _ in range(passes)])
    interval = abstain.interval_rule(1.0)
    clean_passes = model.run(test_images, seed=seed)
    ood_images = corrupted_copies(test_images, 5, seed)
    ood_passes = model.run(ood_images, seed=seed)
    headline = evaluation.summarize(clean_passes, test_labels, interval, ood_passes)
    headline.save_arrays(out / "passes.npz")
    evaluation.write_report(headline, out / "report", title="tfuq demo: digits, int8, interval rule")

    rows = []
    for severity in range(6):
        if severity == 0:
            probabilities = clean_passes
        elif severity == 5:
            probabilities = ood_passes
        else:
            probabilities = model.run(corrupted_copies(test_images, severity, seed), seed=seed)
        paper = evaluation.summarize(probabilities, test_labels, interval).report
        row = {"severity": severity, **{k: paper[k] for k in (
            "micro_f1_all", "micro_f1_accepted", "ignored", "ignored_would_be_wrong", "coverage",
            "selective_risk", "aurc", "auroc_errors", "ece")}}
        if calibrated_rule is not None:
            guarded = evaluation.summarize(probabilities, test_labels, calibrated_rule).report
            row.update(calibrated_coverage=guarded["coverage"], calibrated_risk=guarded["selective_risk"],
                       target_risk=target_risk)
        else:
            row.update(calibrated_coverage=float("nan"), calibrated_risk=float("nan"), target_risk=None)
        rows.append(row)
    _severity_plot(rows, out / "report" / "severity.png")

    summary = {
        "data": {name: int(len(index)) for name, index in parts.items()},
        "epochs_run": len(fitted.history.get("loss", [])),
        "float_accuracy": float(np.mean(float_probs.mean(0).argmax(-1) == test_labels)),
        "int8_accuracy": float(np.mean(clean_passes.mean(0).argmax(-1) == test_labels)),
        "self_check": {"agreement": check.agreement, "mean_abs_diff": check.mean_abs_diff},
        "model_bytes": (out / "model.tflite").stat().st_size,
        "calibration": DecisionRule.from_dict(calibrated_rule).calibration.to_dict() if calibrated_rule
        else {"message": calibrated.message},
        "headline": headline.report,
        "severity": rows,
        "seconds": time.perf_counter() - started,
    }
    with modelfile.atomic_output(out / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=2, default=float)
    _append_severity(out / "report" / "report.md", rows, summary)
    summary["table"] = evaluation.format_table(headline.report)
    return summary


def severity_table(rows: list[dict]) -> str:
    """The paper's columns, and the calibrated rule's, per corruption severity (0 = clean)."""
    def pct(value):
        return "   -" if value is None or value != value else f"{value:6.1%}"

    lines = ["severity  F1 all  F1 kept  ignored  ignored&wrong  coverage(cal)  risk(cal)"]
    for row in rows:
        lines.append(
            f"{row['severity']:>8}  {row['micro_f1_all']:.3f}   {row['micro_f1_accepted']:.3f}  "
            f"{pct(row['ignored'])}  {pct(row['ignored_would_be_wrong']):>13}  "
            f"{pct(row['calibrated_coverage']):>13}  {pct(row['calibrated_risk']):>9}"
        )
    return "\n".join(lines)


def _append_severity(report: Path, rows: list[dict], summary: dict) -> None:
    text = report.read_text()
    text += (
        "\n## Against corruption severity\n\n"
        "Each test image corrupted by one of the 15 CIFAR-C corruptions in turn; severity 0 is "
        "the clean test set. The calibrated threshold's guarantee covers only data like its "
        "calibration set (severity 0).\n\n"
        f"Float Keras accuracy {summary['float_accuracy']:.3f}, int8 TFLite accuracy "
        f"{summary['int8_accuracy']:.3f} (MC mean of the passes).\n\n"
        "```\n" + severity_table(rows) + "\n```\n\n![metrics against severity](severity.png)\n"
    )
    with modelfile.atomic_output(report, "w") as handle:
        handle.write(text)
