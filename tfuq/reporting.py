"""The evaluation report for people: text tables, plots, the gallery and the Markdown page.

:mod:`tfuq.evaluation` computes the numbers (NumPy and an interpreter only); this module turns
an :class:`~tfuq.evaluation.Evaluation` into what a person reads. The plots and the gallery need
matplotlib, imported when they are drawn. MC outputs are ``(passes, batch, classes)``.

    >>> from tfuq import evaluation, reporting
    >>> result = evaluation.evaluate(model, images, labels, seed=0)        # doctest: +SKIP
    >>> print(reporting.format_table(result.report))                        # doctest: +SKIP
    >>> reporting.write_report(result, "report/", images=images)           # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfuq.evaluation import Evaluation
from tfuq.runtime import abstain, metrics
from tfuq.runtime.aggregate import SCORES


# -- text ------------------------------------------------------------------------------------------
def _show(value, kind: str = "rate") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if kind == "percent" else f"{value:.4f}"


def format_table(report: dict) -> str:
    """The report as aligned plain text: the seed paper's columns first, then the rest."""
    rows = [
        ("micro-F1, all images (original model)", _show(report["micro_f1_all"])),
        ("micro-F1, accepted images", _show(report["micro_f1_accepted"])),
        ("share ignored (abstained)", _show(report["ignored"], "percent")),
        ("share of ignored that would be wrong", _show(report["ignored_would_be_wrong"], "percent")),
        ("coverage", _show(report["coverage"], "percent")),
        ("selective risk", _show(report["selective_risk"], "percent")),
        (f"AURC ({report['score']})", _show(report["aurc"])),
        (f"AUROC errors ({report['score']})", _show(report["auroc_errors"])),
        (f"FPR95 errors ({report['score']})", _show(report["fpr95_errors"])),
        (f"ECE ({report['ece_bins']} bins)", _show(report["ece"])),
        ("Brier", _show(report["brier"])),
    ]
    if "ood_images" in report:
        rows += [
            (f"AUROC ID vs OOD ({report['score']})", _show(report["auroc_ood"])),
            (f"FPR95 ID vs OOD, ID refused at 95% OOD caught ({report['score']})", _show(report["fpr95_ood"])),
            (f"FPR95 as the OOD literature, OOD kept at 95% ID kept ({report['score']})",
             _show(report["ood_kept_at_95_id"])),
            ("OOD images accepted", _show(report["ood_accepted"], "percent")),
        ]
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{report['images']} images, {report['passes']} passes, {report['classes']} classes; "
        f"rule {report['rule_text']}",
        "",
    ]
    lines += [f"  {name:<{width}}  {value:>8}" for name, value in rows]
    lines += ["", _score_table(report)]
    if report.get("model_scores"):
        lines += ["", "  the model's own OOD scores (larger = more like its training data):"]
        for name, entry in report["model_scores"].items():
            found = [f"mean {entry['mean']:.4g}"]
            if "auroc_ood" in entry:
                found += [f"OOD mean {entry['ood_mean']:.4g}", f"AUROC OOD {_show(entry['auroc_ood'])}",
                          f"FPR95 OOD (ID refused) {_show(entry['fpr95_ood'])}",
                          f"OOD kept at 95% ID kept {_show(entry['ood_kept_at_95_id'])}"]
            lines.append(f"  {name:<20}" + ", ".join(found))
    return "\n".join(lines)


def _score_table(report: dict) -> str:
    columns = ["aurc", "auroc_errors", "fpr95_errors"]
    if "ood_images" in report:
        columns += ["auroc_ood", "fpr95_ood", "ood_kept_at_95_id"]
    names = {"aurc": "AURC", "auroc_errors": "AUROC err", "fpr95_errors": "FPR95 err",
             "auroc_ood": "AUROC OOD", "fpr95_ood": "FPR95 OOD", "ood_kept_at_95_id": "OOD kept@95"}
    header = "  " + f"{'score':<20}" + "".join(f"{names[c]:>12}" for c in columns)
    lines = [header]
    for score, entry in report["scores"].items():
        lines.append("  " + f"{score:<20}" + "".join(f"{_show(entry[c]):>12}" for c in columns))
    return "\n".join(lines)


# -- plots and the Markdown report ---------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(result: Evaluation, folder: str | os.PathLike) -> dict[str, Path]:
    """Draw the report's PNGs into ``folder``; returns ``{title: path}``.

    Risk-coverage curves of every score with the rule's operating point, a reliability
    diagram, score histograms for right vs wrong predictions, and, with OOD images,
    score histograms for test vs OOD images.
    """
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary, labels, report = result.summary, result.labels, result.report
    wrong = summary.predicted != labels
    written = {}

    def save(figure, name: str, title: str) -> None:
        path = folder / name
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written[title] = path

    figure, axis = plt.subplots(figsize=(6, 4.5))
    for score in SCORES:
        cov, risk, _ = metrics.risk_coverage_curve(
            labels, summary.predicted, abstain.certainty(summary, score)
        )
        axis.plot(cov, risk, label=f"{score} (AURC {report['scores'][score]['aurc']:.4f})")
    if report["selective_risk"] is not None:
        axis.plot(report["coverage"], report["selective_risk"], "k*", markersize=12,
                  label=f"rule: {report['rule_text']}")
    axis.set(xlabel="coverage", ylabel="selective risk (error rate among accepted)",
             xlim=(0, 1.01), ylim=(0, None), title="Risk-coverage")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save(figure, "risk_coverage.png", "Risk-coverage curves")

    table = metrics.calibration_bins(labels, summary.mean)
    edges, count = table["edges"], table["count"]
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    used = count > 0
    top.bar(centres[used], table["accuracy"][used], width=width * 0.95, color="tab:blue",
            edgecolor="black", label="accuracy")
    top.bar(centres[used], (table["confidence"] - table["accuracy"])[used],
            bottom=table["accuracy"][used], width=width * 0.95, color="tab:red", alpha=0.35,
            edgecolor="tab:red", label="gap to confidence")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
            title=f"Reliability (ECE {report['ece']:.3f}, {report['ece_bins']} bins)")
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(centres, count, width=width * 0.95, color="gray")
    bottom.set(xlabel="MC-mean max probability", ylabel="images")
    save(figure, "reliability.png", "Reliability diagram")

    def histograms(groups, name: str, title: str) -> None:
        figure, axes = plt.subplots(2, 2, figsize=(9, 6.5))
        for axis, score in zip(axes.ravel(), SCORES, strict=True):
            values = [source.score(score)[mask] for source, mask, _ in groups]
            joined = np.concatenate([v for v in values if len(v)])
            low, high = float(joined.min()), float(joined.max())
            bins = np.linspace(low, high if high > low else low + 1e-6, 31)
            for value, (_, _, label) in zip(values, groups, strict=True):
                if len(value):
                    axis.hist(value, bins=bins, alpha=0.55, density=True,
                              label=f"{label} ({len(value)})")
            axis.set(title=score, ylabel="density")
            axis.legend(fontsize=8)
        figure.suptitle(title)
        save(figure, name, title)

    everything = np.ones(len(labels), dtype=bool)
    histograms([(summary, ~wrong, "right"), (summary, wrong, "wrong")], "scores_errors.png",
               "Scores of right and wrong predictions")
    if result.ood_summary is not None:
        ood_all = np.ones(len(result.ood_summary.predicted), dtype=bool)
        histograms([(summary, everything, "test"), (result.ood_summary, ood_all, "OOD")],
                   "scores_ood.png", "Scores of test and out-of-distribution images")
    return written


# -- the gallery --------------------------------------------------------------------------------
# Tiles per gallery picture: enough to see a pattern, few enough to read every caption.
GALLERY_TILES = 24
GALLERY_TOP = 3  # classes listed under each tile


def refusing_part(result: Evaluation) -> list[str | None]:
    """Per image, the part of the rule that refused it, as text (None where it was accepted).

    For an ``all`` rule the first part that refused is named (``Decision.failed_part``); a
    one-part rule is its own reason. Interval parts say the two intervals that overlapped,
    threshold parts and the OOD guard the score against the threshold.
    """
    from tfuq.runtime.config import DecisionRule

    rule = DecisionRule.from_dict(result.rule, "rule")
    decision, summary = result.decision, result.summary
    parts = rule.rules if rule.rule == "all" else (rule,)
    reasons: list[str | None] = []
    for index in range(len(decision.accept)):
        if decision.accept[index]:
            reasons.append(None)
            continue
        part = parts[int(decision.failed_part[index])] if decision.failed_part is not None else parts[0]
        reasons.append(_why(summary, index, part))
    return reasons


def _why(summary, index: int, part) -> str:
    """Why ``part`` (a typed ``DecisionRule`` leaf) refused image ``index``."""
    from tfuq.runtime.aggregate import SCORES

    if part.rule == "interval":
        lower, upper = summary.interval(part.conf_factor)
        top = int(summary.predicted[index])
        others = np.where(np.arange(summary.classes) == top, -np.inf, upper[index])
        rival = int(np.argmax(others))
        return (f"interval Z={part.conf_factor:g}: low {lower[index, top]:.2f} <= "
                f"rival high {upper[index, rival]:.2f}")
    if part.rule == "ood" and part.score not in SCORES:  # a model score: not kept per image here
        return f"ood guard: {part.score} < {part.threshold:.2f}"
    value = float(summary.score(part.score)[index])
    sign = "<" if abstain.HIGHER_IS_CONFIDENT[part.score] else ">"
    prefix = "ood guard: " if part.rule == "ood" else ""
    return f"{prefix}{part.score} {value:.2f} {sign} {part.threshold:.2f}"


def gallery_indices(result: Evaluation, which: str, tiles: int = GALLERY_TILES) -> np.ndarray:
    """The images a gallery shows, in its order.

    ``abstained``: the refused images, most uncertain first (lowest certainty on the rule's
    score, max_probability for an interval rule). ``accepted_wrong``: accepted images whose
    prediction is wrong, most confident first (the errors the rule let through most easily).
    """
    summary, accept = result.summary, result.decision.accept
    sure = abstain.certainty(summary, result.report.get("score", "max_probability"))
    if which == "abstained":
        chosen = np.flatnonzero(~accept)
        order = np.argsort(sure[chosen], kind="stable")
    elif which == "accepted_wrong":
        chosen = np.flatnonzero(accept & (summary.predicted != result.labels))
        order = np.argsort(-sure[chosen], kind="stable")
    else:
        raise ValueError(f"unknown gallery {which!r}; choose abstained or accepted_wrong")
    return chosen[order][:tiles]


def _caption(result: Evaluation, index: int, names: list[str], reason: str | None) -> str:
    summary = result.summary
    mean, std = summary.mean[index], summary.std[index]
    factor = abstain.rule_conf_factor(result.rule)
    truth = names[int(result.labels[index])]
    lines = [f"true: {_short(truth)}"]
    for cls in np.argsort(-mean, kind="stable")[:GALLERY_TOP]:
        lines.append(f"{_short(names[cls])} {mean[cls]:.2f} [{mean[cls] - factor * std[cls]:.2f}, "
                     f"{mean[cls] + factor * std[cls]:.2f}]")
    if reason:
        lines.append(reason)
    return "\n".join(lines)


def _short(name: str, width: int = 16) -> str:
    name = name.split(",")[0]
    return name if len(name) <= width else name[: width - 1] + "…"


def write_gallery(
    result: Evaluation,
    images: np.ndarray,
    folder: str | os.PathLike,
    class_names: list[str] | None = None,
    *,
    prefix: str = "gallery",
    tiles: int = GALLERY_TILES,
) -> dict[str, Path]:
    """Draw the images the rule refused and the accepted ones it got wrong, as PNG grids.

    Each tile shows the image, its true class, the top classes with their MC mean and the
    interval ``mean -/+ Z * std`` of the rule's ``Z`` (1 without an interval part), and for
    refused images the rule part that refused (:func:`refusing_part`). Writes
    ``<prefix>_abstained.png`` and ``<prefix>_accepted_wrong.png`` into ``folder`` (a gallery
    with no image is not drawn); returns ``{title: path}``.

    Args:
        result: the evaluation of ``images``.
        images: uint8 ``(batch, H, W, 3)``, in the order of ``result.labels``.
        class_names: names per class index (default ``class_0`` ...).
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != len(result.labels):
        raise ValueError(
            f"the gallery needs the {len(result.labels)} evaluated images as (batch, H, W, 3), "
            f"got shape {images.shape}")
    names = list(class_names) if class_names else [f"class_{i}" for i in range(result.summary.classes)]
    if len(names) != result.summary.classes:
        raise ValueError(f"{len(names)} class names for {result.summary.classes} classes")
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reasons = refusing_part(result)
    written = {}
    galleries = (
        ("abstained", "Refused (abstained), most uncertain first"),
        ("accepted_wrong", "Accepted but wrong, most confident first"),
    )
    for which, title in galleries:
        chosen = gallery_indices(result, which, tiles)
        if not len(chosen):
            continue
        columns = max(3, min(6, len(chosen)))  # at least three wide, so the title fits
        rows = -(-len(chosen) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(2.5 * columns, 4.0 * rows), squeeze=False)
        for axis in axes.ravel():
            axis.axis("off")
        for axis, index in zip(axes.ravel(), chosen, strict=False):
            axis.imshow(images[index], interpolation="nearest" if images.shape[1] < 64 else "antialiased")
            axis.set_title(_caption(result, int(index), names, reasons[index]), fontsize=6.5,
                           loc="left", family="monospace")
        total = int((~result.decision.accept).sum()) if which == "abstained" else int(
            (result.decision.accept & (result.summary.predicted != result.labels)).sum())
        figure.suptitle(f"{title}: {len(chosen)} of {total}\nrule: {result.report['rule_text']}", fontsize=10)
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.55 / (4.0 * rows)), h_pad=2.0)  # room for the title
        path = folder / f"{prefix}_{which}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written[title] = path
    return written


def write_report(
    result: Evaluation,
    folder: str | os.PathLike,
    title: str = "tfuq evaluation",
    *,
    images: np.ndarray | None = None,
    class_names: list[str] | None = None,
) -> Path:
    """Write the plots and ``report.md`` (numbers plus the plots) into ``folder``; with the
    evaluated ``images``, also the gallery of refused and wrongly accepted images
    (:func:`write_gallery`)."""
    from tfuq.runtime.modelfile import atomic_output

    folder = Path(folder)
    plots = write_plots(result, folder)
    gallery = {} if images is None else write_gallery(result, images, folder, class_names)
    report = result.report
    lines = [f"# {title}", ""]
    if report.get("model"):
        lines += [f"Model `{report['model']}`, seed {report.get('seed', 0)}.", ""]
    lines += ["```", format_table(report), "```", ""]
    lines += [
        "Micro-F1 equals accuracy for single-label predictions. Selective risk is the error "
        "rate among accepted images; ECE uses equal-width bins on the MC-mean max "
        "probability; AUROC/FPR95 \"err\" tell wrong predictions from right ones by the "
        "score, \"OOD\" tell out-of-distribution images from test images. Two FPR95s: "
        "\"FPR95 OOD\" is the share of test images refused when 95% of the OOD images are "
        "(OOD as the positive class); \"OOD kept@95\" is the one the OOD literature (ODIN, "
        "OpenOOD) reports, the share of OOD images kept when 95% of the test images are.",
        "",
    ]
    for plot_title, path in plots.items():
        lines += [f"## {plot_title}", "", f"![{plot_title}]({path.name})", ""]
    if images is not None:
        lines += [
            "## What the model refuses, and what it gets wrong anyway", "",
            f"Refused: {int((~result.decision.accept).sum())} of {report['images']} images; "
            f"accepted but wrong: {int((result.decision.accept & (result.summary.predicted != result.labels)).sum())}. "
            f"Each tile: the true class, the top {GALLERY_TOP} classes with the MC mean and its interval "
            "(mean -/+ Z * std), and for a refused image the part of the rule that refused it.", "",
        ]
        lines += [f"![{gallery_title}]({path.name})\n" for gallery_title, path in gallery.items()]
        if not gallery:
            lines += ["(nothing refused and nothing accepted wrongly: no gallery)", ""]
    path = folder / "report.md"
    with atomic_output(path, "w") as out:
        out.write("\n".join(lines))
    return path
