"""Draw the app's result screen from real numbers: the README's picture.

    python android_demo/tools/mockup.py --model /tmp/tfuq-demo/model.tflite \\
        --image /tmp/tfuq-demo/red.png --image /tmp/tfuq-demo/orange.png \\
        --out android_demo/docs/result_screen.png

Each photo goes the way the app sends it (the photo rule of ``tfuq.runtime.photo``: centre
crop to the model's aspect ratio, Pillow's bilinear, raw RGB pixels), through ``tfuq.load(...).run`` with the run seed, then ``tfuq.runtime.aggregate`` and
``tfuq.runtime.abstain.decide`` with the rule the model file carries. The screen layout follows
``app/src/main/res/layout/activity_main.xml``; the sentences follow ``Decision.explain`` in
``uqcore``. The latency shown is this machine's invoke, not a phone's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

SCALE = 2  # drawn at twice the size, then halved: smoother text and bars
PREVIEW_SIZE = 720  # longest side of the preview, as in ImagePrep.kt
WIDTH, HEIGHT = 420, 780
COLOURS = {
    "background": (255, 251, 254),
    "text": (28, 27, 31),
    "muted": (73, 69, 79),
    "accept": (27, 94, 32),
    "accept_background": (232, 245, 233),
    "abstain": (138, 75, 0),
    "abstain_background": (255, 243, 224),
    "track": (224, 224, 224),
    "predicted": (63, 111, 181),
    "other": (154, 169, 194),
    "whisker": (32, 33, 36),
    "button": (103, 80, 164),
    "tonal": (232, 222, 248),
    "frame": (30, 30, 30),
}
SCORE_TITLES = {
    "max_probability": "Max probability",
    "predictive_entropy": "Predictive entropy",
    "mutual_information": "Mutual information",
    "variation_ratio": "Variation ratio",
}


def font(size: int, bold: bool = False):
    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(
        str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size * SCALE
    )


def prepare(path: Path, height: int, width: int) -> tuple[object, np.ndarray]:
    """The model input by the photo rule, as the app's ImagePrep makes it (uqcore's
    PhotoRule, bit for bit), and the same crop at screen size for the preview."""
    from PIL import Image

    from tfuq.runtime import photo

    pixels = photo.read(path, (height, width))
    preview = photo.read(path, (PREVIEW_SIZE * height // max(height, width),
                                PREVIEW_SIZE * width // max(height, width)))
    return Image.fromarray(preview), pixels


def explain(
    decision_rule, summary, accept: bool, labels: list[str], conf_factor: float
) -> str:
    """The sentence under the headline, as uqcore's Decision.explain words it."""
    predicted = int(summary.predicted)
    if decision_rule.rule == "interval":
        lower = summary.mean - conf_factor * summary.std
        upper = summary.mean + conf_factor * summary.std
        others = [c for c in range(len(labels)) if c != predicted]
        if not others:
            return f"{labels[predicted]} is the only class."
        rival = max(others, key=lambda c: (upper[c], -c))
        if accept:
            return (
                f"The interval of {labels[predicted]} (lower {lower[predicted]:.3f}) is clear of every "
                f"other class (highest upper {upper[rival]:.3f}, {labels[rival]})."
            )
        return (
            f"The intervals of {labels[predicted]} (lower {lower[predicted]:.3f}) and "
            f"{labels[rival]} (upper {upper[rival]:.3f}) overlap."
        )
    score = decision_rule.score
    value = float(getattr(summary, score))
    higher = score == "max_probability"
    side = (
        ("at or above" if accept else "below") if higher else ("at or below" if accept else "above")
    )
    which = "the calibrated threshold" if decision_rule.calibration is not None else "the threshold"
    return f"{SCORE_TITLES[score]} {value:.3f} is {side} {which} {decision_rule.threshold:.3f}."


def wrap(draw, text: str, width: int, typeface) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=typeface) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    return lines + [line] if line else lines


def screen(model, path: Path, seed: int, model_name: str):
    from PIL import Image, ImageDraw

    from tfuq.runtime import abstain, aggregate
    from tfuq.runtime.config import DecisionRule

    config = model.config
    carried = config.decision or DecisionRule.default()  # the rule, typed
    rule = carried.to_dict()
    labels = model.labels or [f"class_{i}" for i in range(model.classes)]
    crop, pixels = prepare(path, *model.input_shape[:2])
    start = time.perf_counter()
    masks = model.masks(seed)
    mask_ms = (time.perf_counter() - start) * 1e3
    model.run_with_masks(pixels, masks)  # warm-up: the first invoke allocates
    start = time.perf_counter()
    probabilities = model.run_with_masks(pixels, masks)  # (passes, classes)
    invoke_ms = (time.perf_counter() - start) * 1e3
    conf_factor = abstain.rule_conf_factor(abstain.check_rule(rule))
    summary = aggregate.aggregate(probabilities, conf_factor)
    decision = abstain.decide(summary, rule)
    accept = bool(decision.accept)
    predicted = int(decision.predicted)
    # An "all" rule is explained, as uqcore does, by its first refusing part (or its last part
    # when all accept; uqcore then says every part's sentence, too long for this card).
    shown = carried
    if shown.rule == "all":
        failed = int(decision.failed_part)
        shown = shown.rules[failed if failed >= 0 else -1]

    s = SCALE
    image = Image.new("RGB", (WIDTH * s, HEIGHT * s), COLOURS["background"])
    draw = ImageDraw.Draw(image)
    x0, x1 = 16 * s, (WIDTH - 16) * s
    draw.rectangle((0, 0, WIDTH * s, 24 * s), fill=(243, 237, 247))
    draw.text((x0, 5 * s), "12:00", font=font(11), fill=COLOURS["muted"])
    draw.text((x0, 34 * s), "tfuq demo", font=font(20), fill=COLOURS["text"])
    draw.text(
        (x1 - draw.textlength("Settings", font=font(13)), 40 * s),
        "Settings",
        font=font(13),
        fill=COLOURS["button"],
    )
    def rule_text(part) -> str:
        if part.rule == "all":
            return " and ".join(rule_text(p) for p in part.rules)
        if part.rule == "interval":
            return f"interval, Z = {part.conf_factor:.2f}"
        sign = "≥" if part.score == "max_probability" else "≤"
        return f"{SCORE_TITLES[part.score]} {sign} {part.threshold:.3f}"

    subtitle = f"{model_name} · {model.passes} passes · {len(labels)} classes · {rule_text(carried)}"
    draw.text((x0, 62 * s), subtitle, font=font(10), fill=COLOURS["muted"])

    y = 86 * s
    photo_h = 200 * s
    preview = crop.resize((int(photo_h * crop.width / crop.height), photo_h))
    image.paste(preview, ((WIDTH * s - preview.width) // 2, y))
    y += photo_h + 12 * s

    card_lines = wrap(
        draw, explain(shown, summary, accept, labels, conf_factor), x1 - x0 - 32 * s, font(12)
    )
    card_h = (16 + 34 + 4 + 17 * len(card_lines) + 14) * s
    draw.rounded_rectangle(
        (x0, y, x1, y + card_h),
        radius=12 * s,
        fill=COLOURS["accept_background" if accept else "abstain_background"],
    )
    headline = labels[predicted] if accept else "Not sure"
    draw.text(
        (x0 + 16 * s, y + 14 * s),
        headline,
        font=font(26, bold=True),
        fill=COLOURS["accept" if accept else "abstain"],
    )
    ty = y + 54 * s
    for line in card_lines:
        draw.text((x0 + 16 * s, ty), line, font=font(12), fill=COLOURS["text"])
        ty += 17 * s
    y += card_h + 12 * s

    scores = (
        f"max p {float(summary.max_probability):.3f} · entropy {float(summary.predictive_entropy):.3f} · "
        f"mutual info {float(summary.mutual_information):.3f} · variation ratio {float(summary.variation_ratio):.3f}"
    )
    for line in wrap(draw, scores, x1 - x0, font(10)):
        draw.text((x0, y), line, font=font(10), fill=COLOURS["muted"])
        y += 14 * s
    draw.text((x0, y), f"Rule: {rule_text(carried)}", font=font(10), fill=COLOURS["muted"])
    y += 24 * s

    lower, upper = (
        summary.mean - conf_factor * summary.std,
        summary.mean + conf_factor * summary.std,
    )
    order = sorted(range(len(labels)), key=lambda c: (-summary.mean[c], c))[:5]
    for c in order:
        draw.text((x0, y), labels[c], font=font(14), fill=COLOURS["text"])
        interval = f"[{100 * lower[c]:.1f}%, {100 * upper[c]:.1f}%]"
        mean = f"{100 * summary.mean[c]:.1f}%"
        iw = draw.textlength(interval, font=font(10))
        draw.text((x1 - iw, y + 4 * s), interval, font=font(10), fill=COLOURS["muted"])
        draw.text(
            (x1 - iw - 8 * s - draw.textlength(mean, font=font(14, True)), y),
            mean,
            font=font(14, True),
            fill=COLOURS["text"],
        )
        by = y + 26 * s
        thickness = 6 * s
        draw.rounded_rectangle(
            (x0, by - thickness // 2, x1, by + thickness // 2),
            radius=thickness // 2,
            fill=COLOURS["track"],
        )
        span = x1 - x0
        clamp = lambda v: min(1.0, max(0.0, float(v)))  # noqa: E731
        end = x0 + span * clamp(summary.mean[c])
        if end > x0:
            draw.rounded_rectangle(
                (x0, by - thickness // 2, max(end, x0 + thickness), by + thickness // 2),
                radius=thickness // 2,
                fill=COLOURS["predicted" if c == predicted else "other"],
            )
        lo, hi = x0 + span * clamp(lower[c]), x0 + span * clamp(upper[c])
        draw.line((lo, by, hi, by), fill=COLOURS["whisker"], width=2 * s)
        for x in (lo, hi):
            draw.line((x, by - thickness, x, by + thickness), fill=COLOURS["whisker"], width=2 * s)
        y += 44 * s

    footer = (
        f"{model.passes} passes · seed {seed} · invoke {invoke_ms:.1f} ms · masks {mask_ms:.2f} ms · "
        f"input {model.input_shape[1]}×{model.input_shape[0]}"
    )
    draw.text((x0, y + 4 * s), footer, font=font(9), fill=COLOURS["muted"])

    by = (HEIGHT - 60) * s
    half = (x1 - x0 - 8 * s) // 2
    draw.rounded_rectangle((x0, by, x0 + half, by + 40 * s), radius=20 * s, fill=COLOURS["tonal"])
    draw.rounded_rectangle((x1 - half, by, x1, by + 40 * s), radius=20 * s, fill=COLOURS["button"])
    for text, left, colour in (
        ("Pick photo", x0, COLOURS["text"]),
        ("Take photo", x1 - half, (255, 255, 255)),
    ):
        draw.text(
            (left + (half - draw.textlength(text, font=font(13))) / 2, by + 11 * s),
            text,
            font=font(13),
            fill=colour,
        )
    image = image.resize((WIDTH, HEIGHT), Image.LANCZOS)
    return image, accept, headline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, type=Path, help="a .tflite made by `tfuq convert` (masked mode)"
    )
    parser.add_argument(
        "--image",
        required=True,
        action="append",
        type=Path,
        help="a photo; repeat for side-by-side screens",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="run seed (default 0, the app's default)"
    )
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from PIL import Image

    import tfuq

    model = tfuq.load(args.model)
    if model.mode != "masked":
        print("the app runs masked models; convert with --mode masked", file=sys.stderr)
        return 2
    screens = []
    for path in args.image:
        shot, accept, headline = screen(model, path, args.seed, "model.tflite")
        print(f"{path.name}: {headline} ({'accept' if accept else 'abstain'})")
        screens.append(shot)
    gap = 24
    sheet = Image.new(
        "RGB", (len(screens) * (WIDTH + gap) + gap, HEIGHT + 2 * gap), (236, 239, 241)
    )
    for index, shot in enumerate(screens):
        sheet.paste(shot, (gap + index * (WIDTH + gap), gap))
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
