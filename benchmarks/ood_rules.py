"""Every decision rule on inputs no training image resembles: blank, noise, text, other photos.

The interval rule's blind spot (issue 10): when every class is improbable, every interval is
narrow, nothing overlaps the top class, and the rule accepts a prediction of a few percent.
This measures, for each rule, the share of images it accepts per kind of input (in
distribution and out of it), and the AUROC / FPR95 of each score at telling the in-distribution
test images from each kind.

Models:
- ``digits``: ``small_cnn`` with an MC-dropout head trained on scikit-learn's digits as
  ``tfuq demo`` trains it (same split, epochs, conversion), int8, T=30. In distribution: its
  test split. Out of it: blank (16 grey levels, white and black among them), uniform noise,
  Gaussian noise, text rendered with Pillow's default font, crops of scikit-image's photos.
- ``--imagenet MODEL``: a 1000-class tfuq model file (the EfficientNet-Lite0 ImageNet
  classifier with MC dropout, from ``tfuq pretrained``); in distribution: scikit-image's photos
  of ImageNet things (cat, coffee, astronaut, rocket, ...), out of it: the same blank, noise
  and text kinds at the model's size, and scikit-image's photos of things ImageNet has no class
  for (a scanned page, micrographs, the moon, the Hubble deep field). Few images: a look, not
  a benchmark.

Thresholds of the plain score rules are set where they keep 95% of the in-distribution
*calibration* images (so every score rule gives up the same 5% in distribution), the SGR rule
is calibrated on them too; the fixed floors are the ones the default is argued from.

    python benchmarks/ood_rules.py --out benchmarks/results/ood_rules [--imagenet lite0_mc.tflite]

Offline; a few minutes on two cores (training the digits model is most of it; it is cached in
``--out`` and reused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfuq.runtime import abstain, metrics  # noqa: E402
from tfuq.runtime.aggregate import SCORES, aggregate  # noqa: E402

WORDS = ("tfuq", "hello", "STOP", "Exit", "42", "abc", "Aa Bb", "0123", "text", "MC drop",
         "int8", "noise", "7 days", "x=y", "OK", "Lorem ipsum")
IMAGENET_PHOTOS = ("astronaut", "cat", "chelsea", "coffee", "rocket")  # things ImageNet has
NOT_IMAGENET = ("page", "text", "moon", "retina", "immunohistochemistry", "hubble_deep_field",
                "colorwheel")  # a scanned page, micrographs, the sky: no ImageNet class
OTHER_PHOTOS = ("astronaut", "cat", "chelsea", "coffee", "rocket", "hubble_deep_field",
                "immunohistochemistry", "retina", "camera", "moon", "page", "text", "brick",
                "grass", "gravel", "colorwheel")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- inputs ----------------------------------------------------------------------------------
def blank(size: int) -> np.ndarray:
    levels = np.linspace(0, 255, 16).round().astype(np.uint8)  # 0 (black) ... 255 (white)
    return np.broadcast_to(levels[:, None, None, None], (16, size, size, 3)).copy()


def uniform_noise(size: int, count: int, rng) -> np.ndarray:
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def gaussian_noise(size: int, count: int, rng) -> np.ndarray:
    return np.clip(rng.normal(128, 64, (count, size, size, 3)), 0, 255).round().astype(np.uint8)


def text(size: int, count: int, rng) -> np.ndarray:
    """Words in Pillow's default bitmap font, dark on light and light on dark, scaled to size."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    out = np.empty((count, size, size, 3), np.uint8)
    for index in range(count):
        ink, paper = (255, 0) if index % 2 else (0, 255)
        canvas = Image.new("L", (48, 48), paper)
        draw = ImageDraw.Draw(canvas)
        for line in range(3):
            word = WORDS[int(rng.integers(len(WORDS)))]
            draw.text((int(rng.integers(0, 8)), 2 + 15 * line), word, fill=ink, font=font)
        out[index] = np.asarray(canvas.convert("RGB").resize((size, size), Image.BILINEAR))
    return out


def photo(name: str, size: int, crop: float = 1.0, rng=None) -> np.ndarray:
    """One scikit-image sample photo as uint8 RGB ``(size, size, 3)``, centre or random crop."""
    import skimage.data
    from PIL import Image

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype != np.uint8:
        image = (255 * (image - image.min()) / max(np.ptp(image), 1e-9)).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3]
    side = int(min(image.shape[:2]) * crop)
    top = (image.shape[0] - side) // 2 if rng is None else int(rng.integers(0, image.shape[0] - side + 1))
    left = (image.shape[1] - side) // 2 if rng is None else int(rng.integers(0, image.shape[1] - side + 1))
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.BILINEAR))


def photos(size: int, per_photo: int, rng) -> np.ndarray:
    crops = [photo(name, size)[None] for name in OTHER_PHOTOS]
    crops += [photo(name, size, 0.5, rng)[None] for name in OTHER_PHOTOS for _ in range(per_photo)]
    return np.concatenate(crops)


def ood_sets(size: int, seed: int, count: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "blank": blank(size),
        "uniform noise": uniform_noise(size, count, rng),
        "Gaussian noise": gaussian_noise(size, count, rng),
        "text": text(size, count // 2, rng),
        "photos": photos(size, 6, rng),
    }


# -- models ----------------------------------------------------------------------------------
def digits_model(out: Path, seed: int, epochs: int):
    """The demo's model, trained and converted once and cached in ``out``."""
    import tfuq
    from tfuq import demo

    images, labels, names = demo.digits()
    parts = demo.split(labels, seed)
    path = out / "digits.tflite"
    if not path.exists():
        from tfuq import data
        from tfuq.conversion.convert import convert
        from tfuq.modeling import backbones
        from tfuq.training import train

        say(f"training small_cnn on {len(parts['train'])} digits ({epochs} epochs at most)")
        keras_model = backbones.build_model(
            "small_cnn", classes=len(names), input_size=demo.SIZE, weights=None, dropout=0.3,
            dense=(64,), dropout_placement="all", name="digits_mc",
        )
        fitted = train.train(keras_model, images[parts["train"]], labels[parts["train"]],
                             epochs=epochs, batch_size=32, validation_split=0.15, patience=4,
                             seed=seed)
        train_images = images[parts["train"]]
        representative = train_images[data.balanced_indices(labels[parts["train"]], 200, seed=seed)]
        say("converting: full integer, 30 passes per invoke")
        convert(fitted.model, representative, passes=30, calibration_samples=160,
                check_samples=40, labels=names).save(path)
    model = tfuq.load(path, threads=os.cpu_count())
    return model, {
        "calibration": (images[parts["calibration"]], labels[parts["calibration"]]),
        "test": (images[parts["test"]], labels[parts["test"]]),
    }


# -- rules and scores ------------------------------------------------------------------------
def rules_for(calibration, labels) -> dict[str, dict]:
    """The rules compared: fixed ones, and score thresholds keeping 95% in distribution."""
    summary = aggregate(calibration)
    rules = {"interval Z=1 (paper)": abstain.INTERVAL_RULE}
    for score in SCORES:
        values = summary.score(score)
        # Keep 95%: the 5th percentile of a confidence, the 95th of an uncertainty.
        keep = np.quantile(values, 0.05 if abstain.HIGHER_IS_CONFIDENT[score] else 0.95,
                           method="lower" if abstain.HIGHER_IS_CONFIDENT[score] else "higher")
        rules[f"{score} (keeps 95%)"] = abstain.threshold_rule(score, float(keep))
    rules["mutual_information <= 0.1"] = abstain.threshold_rule("mutual_information", 0.1)
    for floor in (0.3, 0.5, 0.7):
        rules[f"max_probability >= {floor}"] = abstain.threshold_rule("max_probability", floor)
    for floor in (0.3, 0.5, 0.7):
        name = f"interval and max_probability >= {floor}"
        if floor == abstain.DEFAULT_FLOOR:
            name += " (default)"
        rules[name] = abstain.all_rule(
            abstain.INTERVAL_RULE, abstain.threshold_rule("max_probability", floor))
    rules["interval and MI <= 0.1"] = abstain.all_rule(
        abstain.INTERVAL_RULE, abstain.threshold_rule("mutual_information", 0.1))
    if labels is not None:
        result = abstain.calibrate(calibration, labels, target_risk=0.02, confidence=0.9,
                                   within=abstain.DEFAULT_RULE)
        say(f"SGR within the default: {result.message}")
        if result.feasible:
            rules["default + SGR (risk 2%, 90%)"] = result.to_rule()
    return rules


def measure(model, inside: np.ndarray, inside_labels, calibration, cal_labels, kinds, seed: int):
    say(f"running {len(inside)} in-distribution images")
    passes = {"in distribution": model.run(inside, seed=seed)}
    for kind, images in kinds.items():
        say(f"running {len(images)} {kind} images")
        passes[kind] = model.run(images, seed=seed)
    rules = rules_for(model.run(calibration, seed=seed), cal_labels)
    acceptance = {name: {kind: float(np.mean(abstain.decide(p, rule).accept))
                         for kind, p in passes.items()} for name, rule in rules.items()}
    summaries = {kind: aggregate(p) for kind, p in passes.items()}
    detection = {}
    for score in SCORES:
        certain_in = abstain.certainty(summaries["in distribution"], score)
        detection[score] = {}
        for kind in kinds:
            certain_out = abstain.certainty(summaries[kind], score)
            values = np.concatenate([certain_in, certain_out])
            is_in = np.r_[np.ones(len(certain_in), bool), np.zeros(len(certain_out), bool)]
            detection[score][kind] = {
                "auroc": metrics.auroc(-values, ~is_in),
                "fpr95": metrics.fpr_at_tpr(values, is_in, 0.95),
            }
    top = {kind: {"max_probability_median": float(np.median(s.max_probability)),
                  "max_probability_max": float(np.max(s.max_probability)),
                  "mutual_information_median": float(np.median(s.mutual_information))}
           for kind, s in summaries.items()}
    extra = {}
    if inside_labels is not None:
        mean = passes["in distribution"].mean(0)
        extra["accuracy"] = float(np.mean(mean.argmax(-1) == inside_labels))
        extra["selective_risk"] = {
            name: float(metrics.selective_risk(inside_labels, mean.argmax(-1),
                                               abstain.decide(passes["in distribution"], rule).accept))
            if abstain.decide(passes["in distribution"], rule).accept.any() else None
            for name, rule in rules.items()}
    return {"rules": rules, "acceptance": acceptance, "detection": detection, "top": top,
            "counts": {kind: int(p.shape[1]) for kind, p in passes.items()}, **extra}


def table(result: dict) -> str:
    kinds = list(result["counts"])
    head = "| rule | " + " | ".join(f"{k} ({result['counts'][k]})" for k in kinds) + " |"
    lines = [head, "|" + "---|" * (len(kinds) + 1)]
    for name, row in result["acceptance"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * row[k]:.0f}%" for k in kinds) + " |")
    ood = kinds[1:]
    lines += ["", "| score: AUROC / FPR95 | " + " | ".join(ood) + " |", "|" + "---|" * (len(ood) + 1)]
    for score, row in result["detection"].items():
        lines.append(f"| {score} | " + " | ".join(
            f"{row[k]['auroc']:.3f} / {100 * row[k]['fpr95']:.0f}%" for k in ood) + " |")
    lines += ["", "| input | median max_probability | highest | median MI |", "|---|---|---|---|"]
    for kind, row in result["top"].items():
        lines.append(f"| {kind} | {row['max_probability_median']:.3f} | "
                     f"{row['max_probability_max']:.3f} | {row['mutual_information_median']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/ood_rules")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imagenet", metavar="MODEL", help="a 1000-class tfuq model file")
    parser.add_argument("--skip-digits", action="store_true",
                        help="reuse the digits figures already in --out/ood_rules.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {}

    if args.skip_digits:
        with open(out / "ood_rules.json") as handle:
            previous = json.load(handle)
        results["digits"] = previous["digits"]
        results["digits_measured"] = previous.get("digits_measured", previous.get("date"))
    else:
        model, data = digits_model(out, args.seed, args.epochs)
        size = model.input_shape[0]
        results["digits"] = measure(model, *data["test"], *data["calibration"],
                                    ood_sets(size, args.seed), args.seed)

    if args.imagenet:
        import tfuq

        model = tfuq.load(args.imagenet, threads=os.cpu_count())
        size = model.input_shape[0]
        rng = np.random.default_rng(args.seed)
        inside = np.stack([photo(name, size) for name in IMAGENET_PHOTOS]
                          + [photo(name, size, 0.8, rng) for name in IMAGENET_PHOTOS for _ in range(3)])
        kinds = ood_sets(size, args.seed, count=24)
        kinds["photos"] = np.stack([photo(name, size) for name in NOT_IMAGENET]
                                   + [photo(name, size, 0.6, rng) for name in NOT_IMAGENET for _ in range(2)])
        results["imagenet"] = measure(model, inside, None, inside, None, kinds, args.seed)

    results["seconds"] = time.perf_counter() - started
    results["load_average"] = os.getloadavg()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with open(out / "ood_rules.json", "w") as handle:
        json.dump(results, handle, indent=2)
    for name in ("digits", "imagenet"):
        if name in results:
            print(f"## {name}\n\n{table(results[name])}\n")
    print(f"{results['seconds']:.0f} s, load average {results['load_average'][0]:.1f}, {results['date']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
