"""End to end per photo in Python, as ratios to one deterministic invoke measured in the same run.

What a user pays per photo beyond one pass of the network: decode, the photo rule, the masks,
the one MC invoke, aggregation and the decision (``tfuq predict``'s ``Predictor``, warm and
cold), beside the parts alone. Every figure is from ``--repeats`` interleaved timings
(ABCABC..., so background load hits each alike; the photos, slower, an eighth as many, each
beside the deterministic invoke again) at each thread count: in wall-clock time the fastest,
in process CPU time (``--clock cpu``, what a loaded machine inflates least) the median. Quote
the ratios, which hold on a busy machine, rather than the milliseconds, which do not.

The baselines are the interpreter called directly (the backend's signature runner on the
file's flatbuffer, inputs already quantized): ``deterministic invoke`` on a ``--mode
deterministic`` file of the same network, ``masked invoke`` on the masked file with the masks
given. Targets (issue 23): ``Model.run`` with a repeated seed within 1.02x of the masked invoke;
predict's per-photo cost, warm, within 1.10x of the deterministic invoke plus the decode (the
full decode, ``photo.decode``, whatever the photo rule then does).

The photo rule is a parameter, not the model file's: ``--photo-rules 1 2`` (the default) times
``center-crop-bilinear`` version 1 and version 2 (step 1b's reduction, JPEGs decoded at 1/s)
side by side on the same files, the predictor's rule set to each in turn.

    python benchmarks/end_to_end.py photos --out photos/        # the fixed photo set
    python benchmarks/end_to_end.py models --out models/        # Lite0, 1000 and 100 classes
    python benchmarks/end_to_end.py run --models models/ --photos photos/ --threads 1 2 --json e2e.json
    python benchmarks/end_to_end.py agreement --models models/ --json agreement.json  # v1 vs v2

``models`` makes, with the CLI: ImageNet EfficientNet-Lite0 (``tfuq pretrained``, 1000
classes, one mask of 1280) and a 100-class Lite0 for the paper experiment's shapes (ImageNet
trunk, head 1280 -> 512 -> 100 with MC dropout before both dense layers, untrained head:
right shapes, meaningless decisions), each converted masked (T = 30) and deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: The fixed photo set: name -> (width, height). chelsea is scikit-image's cat as it comes;
#: the others are scikit-image's astronaut resized to 0.3, 3 and 12 megapixels, JPEG q 90.
PHOTOS = {"chelsea.png": None, "0.3mp.jpg": (640, 480), "3mp.jpg": (2000, 1500), "12mp.jpg": (4000, 3000)}
MODELS = {  # name -> (masked file, deterministic file)
    "lite0-1000": ("lite0.tflite", "lite0_det.tflite"),
    "lite0-100": ("lite0_100.tflite", "lite0_100_det.tflite"),
}


def photo_rule(version: int):
    """``center-crop-bilinear`` of ``version`` (1 or 2)."""
    from tfuq.runtime import photo

    return {1: photo.CENTER_CROP, 2: photo.CENTER_CROP_V2}[version]


def write_photos(folder: Path) -> list[Path]:
    """The fixed photo set in ``folder`` (made again only when missing)."""
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size in PHOTOS.items():
        path = folder / name
        if not path.exists():
            if size is None:
                Image.fromarray(skimage.data.chelsea()).save(path)
            else:
                image = Image.fromarray(skimage.data.astronaut()).resize(size, Image.BILINEAR)
                image.save(path, quality=90)
        paths.append(path)
    return paths


def make_models(folder: Path, representative: Path | None) -> None:
    """Lite0 with 1000 and 100 classes, masked and deterministic, with the tfuq CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    tfuq = [sys.executable, "-m", "tfuq.cli.main"]
    if representative is None:
        representative = folder / "rep.npz"
        _representative(representative)
    if not (folder / "lite0.keras").exists():
        subprocess.run([*tfuq, "pretrained", "efficientnet_lite0", "--out", str(folder / "lite0.keras")], check=True)
    if not (folder / "lite0_100.keras").exists():
        import keras

        from tfuq.modeling.backbones import build_model

        keras.utils.set_random_seed(0)
        model = build_model("efficientnet_lite0", 100, dense=(512,), dropout_placement="all",
                            dropout=0.2, weights="imagenet")
        model.save(folder / "lite0_100.keras")
    for keras_name, (masked, deterministic) in (("lite0.keras", MODELS["lite0-1000"]),
                                                ("lite0_100.keras", MODELS["lite0-100"])):
        for out, mode in ((masked, "masked"), (deterministic, "deterministic")):
            if not (folder / out).exists():
                subprocess.run([*tfuq, "convert", str(folder / keras_name), "--out", str(folder / out),
                                "--representative", str(representative), "--passes", "30",
                                "--mode", mode, "--check-samples", "0"], check=True)


def _representative(path: Path) -> None:
    """64 random crops of four scikit-image photos, as README's quickest way makes them."""
    import skimage.data as d
    from PIL import Image

    photos = [d.chelsea(), d.coffee(), d.astronaut(), d.rocket()]
    rng, crops = np.random.default_rng(0), []
    for _ in range(64):
        p = photos[rng.integers(4)]
        s = int(rng.integers(150, min(p.shape[:2]) + 1))
        y, x = rng.integers(0, p.shape[0] - s + 1), rng.integers(0, p.shape[1] - s + 1)
        crops.append(np.asarray(Image.fromarray(p[y : y + s, x : x + s]).resize((224, 224))))
    np.savez(path, x=np.stack(crops))


# -- timing -----------------------------------------------------------------------------------
CLOCKS = {
    # Wall-clock time: what a user waits, inflated by every other job on the cores.
    "wall": time.perf_counter,
    # CPU time of this process (every thread of it): what the work costs, which waiting for
    # a busy core does not inflate; on a loaded machine its ratios hold much better.
    "cpu": time.process_time,
}
_clock = CLOCKS["wall"]


def interleaved(calls: dict, repeats: int) -> dict:
    """Milliseconds of each call, ``repeats`` times, timed in turn after one warm-up call each."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = _clock()
            call()
            times[name].append((_clock() - start) * 1e3)
    return times


def _quantized(values: np.ndarray, detail: dict) -> np.ndarray:
    """``values`` as the tensor of ``detail`` holds them (the bench's own, not tfuq's)."""
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return values.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(detail["dtype"])


def raw_invoke(flatbuffer: bytes, threads: int, image: np.ndarray, masks: dict):
    """The interpreter alone: a call with every input already quantized."""
    from tfuq.runtime.interpreter import interpreter_class

    _, interpreter = interpreter_class()
    runner = interpreter(model_content=flatbuffer, num_threads=threads).get_signature_runner()
    details = runner.get_input_details()
    feeds = {}
    for name, detail in details.items():
        value = masks[name] if name in masks else image[None]
        feeds[name] = _quantized(np.asarray(value, dtype=np.float64), detail)
    return lambda: runner(**feeds)


def bench_model(name: str, folder: Path, photos: list[Path], threads: int, repeats: int, cold_runs: int,
                versions: list[int]) -> dict:
    import tfuq
    from tfuq.cli.predict import Predictor
    from tfuq.runtime import abstain, photo

    masked_file, deterministic_file = (folder / f for f in MODELS[name])
    model = tfuq.load(masked_file, threads=threads)
    deterministic = tfuq.load(deterministic_file, threads=threads)
    # Another instance for the new seeds: a Model keeps only its last seed's masks, so new
    # seeds on the same instance would make "repeated seed" draw them again.
    fresh_seeds = tfuq.load(masked_file, threads=threads)
    size = model.input_shape[:2]
    rule = model.config.decision_rule()
    seed = 0
    image = photo.read(photos[0], size)
    masks = model.masks(seed)
    seeds = iter(range(1, 10**9))  # a new seed on every call: per-image seeding's cost
    probabilities = model.run_one(image, seed)
    deterministic_invoke = raw_invoke(deterministic.flatbuffer, threads, image, {})
    calls = {
        "deterministic invoke": deterministic_invoke,
        "masked invoke (masks given)": raw_invoke(model.flatbuffer, threads, image, masks),
        "Model.run, repeated seed": lambda: model.run(image, seed),
        "Model.run_one, new seed each call": lambda: fresh_seeds.run_one(image, next(seeds)),
        "masks alone (masks_for)": lambda: fresh_seeds.masks(next(seeds)),
        "aggregate + decide": lambda: abstain.decide(probabilities, rule),
    }
    times = interleaved(calls, repeats)
    predictors = {}
    for version in versions:  # the same model, its photo rule set by the bench
        predictors[version] = Predictor(model, rule, seed)
        predictors[version].photo_rule = photo_rule(version)
    for path in photos:  # per photo, with the deterministic invoke again beside it
        with open(path, "rb") as handle:
            data = handle.read()
        decoded = photo.decode(data)
        group = {
            f"{path.name}: deterministic invoke": deterministic_invoke,
            f"{path.name}: decode": lambda data=data: photo.decode(data),
        }
        for version, predictor in predictors.items():
            chosen = predictor.photo_rule
            group.update({
                # steps 1-3 on the full decode (no reduced JPEG decode: that is step 0's)
                f"{path.name}: photo rule v{version}":
                    lambda decoded=decoded, chosen=chosen: photo.prepare(decoded, size, chosen),
                f"{path.name}: photo.read v{version}":
                    lambda data=data, chosen=chosen: photo.read(data, size, chosen),
                f"{path.name}: predict, warm v{version}":
                    lambda path=path, predictor=predictor: predictor(str(path)),
            })
        times.update(interleaved(group, max(5, repeats // 8)))
    # On a loaded machine the fastest of many interleaved runs (wall clock) is the closest to
    # the work itself; in CPU time the median is. Both statistics are kept.
    pick = min if _clock is CLOCKS["wall"] else statistics.median
    fastest = {name: pick(values) for name, values in times.items()}
    medians = {name: statistics.median(values) for name, values in times.items()}

    cold = {version: [] for version in versions}  # a fresh Model each time: load, then the
    for _ in range(cold_runs):  # first photo (masks drawn, first invoke)
        for version in versions:
            start = _clock()
            fresh = tfuq.load(masked_file, threads=threads)
            loaded = _clock()
            cold_predictor = Predictor(fresh, rule, seed)
            cold_predictor.photo_rule = photo_rule(version)
            cold_predictor(str(photos[1]))
            cold[version].append(((loaded - start) * 1e3, (_clock() - loaded) * 1e3))

    invoke = fastest["deterministic invoke"]
    masked_invoke = fastest["masked invoke (masks given)"]
    per_photo = {}
    for path in photos:
        photo_invoke = fastest[f"{path.name}: deterministic invoke"]
        decode = fastest[f"{path.name}: decode"]
        by_rule = {}
        for version in versions:
            rule_ms, read_ms, predict_ms = (fastest[f"{path.name}: {part} v{version}"]
                                            for part in ("photo rule", "photo.read", "predict, warm"))
            by_rule[f"v{version}"] = {
                "photo_rule_ms": rule_ms,
                "photo_read_ms": read_ms,
                "predict_warm_ms": predict_ms,
                "predict_warm_over_invoke_plus_decode": predict_ms / (photo_invoke + decode),
                "photo_rule_over_invoke": rule_ms / photo_invoke,
                "photo_read_over_decode": read_ms / decode,
            }
        per_photo[path.name] = {
            "pixels": int(np.prod(photo.decode(path).shape[:2])),
            "deterministic_invoke_ms": photo_invoke,
            "decode_ms": decode,
            "rules": by_rule,
        }
    first = photos[1].name
    return {
        "model": name,
        "classes": model.classes,
        "mask_shapes": [list(spec.shape) for spec in model.mask_specs],
        "threads": threads,
        "backend": model.backend,
        "repeats": repeats,
        "fastest_ms": fastest,
        "medians_ms": medians,
        "over_deterministic_invoke": {key: value / invoke for key, value in fastest.items() if ":" not in key},
        "run_repeated_seed_over_masked_invoke": fastest["Model.run, repeated seed"] / masked_invoke,
        "per_photo": per_photo,
        "photo_rules": [f"v{version}" for version in versions],
        "cold": {f"v{version}": {
            "photo": first,
            "load_ms": min(c[0] for c in runs),
            "first_photo_ms": min(c[1] for c in runs),
            "first_photo_over_invoke_plus_decode": min(c[1] for c in runs)
            / (invoke + per_photo[first]["decode_ms"]),
        } for version, runs in cold.items()},
    }


# -- instructions (load-independent) -----------------------------------------------------------
_WORKER = """
import sys, numpy as np, tfuq
sys.path.insert(0, {here!r})
from end_to_end import raw_invoke
from tfuq.cli.predict import Predictor
from tfuq.runtime import abstain, photo
folder, name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
version = int(sys.argv[6])
masked, deterministic = (folder + "/" + f for f in {models!r}[name])
path = sys.argv[4]
model = tfuq.load(masked, threads=1)
data = open(path, "rb").read()
size = model.input_shape[:2]
image = photo.read(path, size)
rule = model.config.decision_rule()
predictor = Predictor(model, rule, 0)
predictor.photo_rule = {{1: photo.CENTER_CROP, 2: photo.CENTER_CROP_V2}}[version]
probabilities = model.run_one(image, 0)
work = {{
    "deterministic invoke": lambda: raw_invoke(tfuq.load(deterministic, threads=1).flatbuffer, 1, image, {{}}),
    "masked invoke (masks given)": lambda: raw_invoke(model.flatbuffer, 1, image, model.masks(0)),
    "Model.run, repeated seed": lambda: lambda: model.run(image, 0),
    "decode": lambda: lambda: photo.decode(data),
    "photo.read (decode + rule)": lambda: lambda: photo.read(path, size, predictor.photo_rule),
    "Model.run_one, repeated seed": lambda: lambda: model.run_one(image, 0),
    "abstain.decide": lambda: lambda: abstain.decide(probabilities, rule, predictor.scores()),
    "predict, warm": lambda: lambda: predictor(path),
}}[sys.argv[5]]()
work()  # warm: the first call allocates, draws the masks
for _ in range(calls):
    work()
"""
INSTRUCTION_WORK = ("deterministic invoke", "masked invoke (masks given)", "Model.run, repeated seed",
                    "decode", "predict, warm")
# What predict does, part by part: the photo rule on the file (Pillow's decode, crop and
# resize), the MC invoke with the kept masks, aggregation and the decision. What predict
# executes beyond their sum is its own Python (the record, the reason for abstaining).
PREDICT_PARTS = ("photo.read (decode + rule)", "Model.run_one, repeated seed", "abstain.decide")
# The work whose count depends on the photo rule; the rest is counted once, under version 1.
RULE_WORK = ("photo.read (decode + rule)", "predict, warm")


def instructions_per_call(folder: Path, name: str, photo_path: Path, work: str, version: int = 1) -> float:
    """CPU instructions one call of ``work`` executes (callgrind; (3 calls - 1 call) / 2)."""
    import re
    import tempfile

    code = _WORKER.format(here=str(Path(__file__).parent), models=MODELS)
    # Callgrind counts every thread. numpy's OpenBLAS starts a thread per core that spins
    # while waiting for work, for a stretch of wall-clock time: counted, it added a few
    # million instructions to a call at random. Nothing here calls BLAS; one thread, none.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    counts = []
    for calls in (1, 3):
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/out", sys.executable, "-c",
                 code, str(folder), name, str(calls), str(photo_path), work, str(version)],
                capture_output=True, text=True, check=True, env=env)
        counts.append(int(re.search(r"Collected : (\d+)", result.stderr).group(1)))
    return (counts[1] - counts[0]) / 2


def table(rows: list[dict]) -> str:
    """The Markdown table benchmarks/README.md quotes: a line per model, threads and photo rule
    (the columns before the rule's are measured once per model and threads)."""
    names = ("chelsea.png", "0.3mp.jpg", "3mp.jpg", "12mp.jpg")
    lines = [
        "| model | threads | deterministic invoke | masked invoke | `Model.run`, repeated seed (/ masked invoke) "
        "| `run_one`, new seed | masks alone | aggregate + decide | photo rule | photo rule 0.3 / 3 / 12 MP "
        "| `photo.read` / decode, 0.3 / 3 / 12 MP "
        "| predict, warm, / (invoke + decode): cat / 0.3 / 3 / 12 MP | cold first photo / (invoke + decode) |",
        "| --- " * 13 + "|",
    ]
    for row in rows:
        r = row["over_deterministic_invoke"]
        for rule in row["photo_rules"]:
            p = {name: row["per_photo"][name]["rules"][rule] for name in names}

            def cells(key: str, photos=names[1:], digits: int = 3, p=p) -> str:
                return " / ".join(f"{p[name][key]:.{digits}f}x" for name in photos)

            lines.append(
                f"| {row['model']} | {row['threads']} | 1 ({row['fastest_ms']['deterministic invoke']:.2f} ms) "
                f"| {r['masked invoke (masks given)']:.3f}x | {r['Model.run, repeated seed']:.3f}x "
                f"({row['run_repeated_seed_over_masked_invoke']:.3f}x) "
                f"| {r['Model.run_one, new seed each call']:.3f}x | {r['masks alone (masks_for)']:.3f}x "
                f"| {r['aggregate + decide']:.3f}x | {rule} | {cells('photo_rule_over_invoke')} "
                f"| {cells('photo_read_over_decode', digits=2)} "
                f"| {cells('predict_warm_over_invoke_plus_decode', names)} "
                f"| {row['cold'][rule]['first_photo_over_invoke_plus_decode']:.2f}x |"
            )
    return "\n".join(lines)


def count_instructions(args) -> int:
    """Instructions per call of the Python path on one photo (0.3 MP by default), and the two
    targets, for each photo rule: the work that does not depend on the rule is counted once."""
    photo_path = args.photos / args.photo
    write_photos(args.photos)
    load, started = os.getloadavg(), datetime.now(UTC)
    results = {}
    shared = [work for work in INSTRUCTION_WORK + PREDICT_PARTS if work not in RULE_WORK]
    for name in args.only:
        counts = {}
        for work in shared:
            print(f"{name}: {work} ...", file=sys.stderr, flush=True)
            counts[work] = instructions_per_call(args.models, name, photo_path, work)
        invoke = counts["deterministic invoke"]
        results[name] = {
            "instructions": counts,
            "over_deterministic_invoke": {work: count / invoke for work, count in counts.items()},
            "run_repeated_seed_over_masked_invoke": counts["Model.run, repeated seed"] / counts["masked invoke (masks given)"],
            "rules": {},
        }
        for version in args.photo_rules:
            ruled = dict(counts)
            for work in RULE_WORK:
                print(f"{name}: {work}, photo rule v{version} ...", file=sys.stderr, flush=True)
                ruled[work] = instructions_per_call(args.models, name, photo_path, work, version)
            results[name]["rules"][f"v{version}"] = {
                "instructions": {work: ruled[work] for work in RULE_WORK},
                "over_deterministic_invoke": {work: ruled[work] / invoke for work in RULE_WORK},
                "predict_over_invoke_plus_decode": ruled["predict, warm"] / (invoke + counts["decode"]),
                "predict_beyond_its_parts": ruled["predict, warm"] - sum(ruled[part] for part in PREDICT_PARTS),
            }
    print("| model | photo rule | deterministic invoke | " + " | ".join(INSTRUCTION_WORK[1:])
          + " | `photo.read` | `Model.run` / masked invoke | predict / (invoke + decode) |")
    print("| --- " * (len(INSTRUCTION_WORK) + 5) + "|")
    for name, result in results.items():
        counts, invoke = result["instructions"], result["instructions"]["deterministic invoke"]
        for rule, ruled in result["rules"].items():
            values = {**counts, **ruled["instructions"]}
            print(f"| {name} | {rule} | {invoke / 1e6:.1f} M | " + " | ".join(
                f"{values[w] / invoke:.3f}x" for w in INSTRUCTION_WORK[1:])
                + f" | {values['photo.read (decode + rule)'] / invoke:.3f}x"
                + f" | {result['run_repeated_seed_over_masked_invoke']:.4f}x"
                f" | **{ruled['predict_over_invoke_plus_decode']:.4f}x** |", flush=True)
    print("\npredict's parts, in M instructions per call (and / deterministic invoke):")
    print("| model | photo rule | " + " | ".join(PREDICT_PARTS) + " | predict beyond its parts | predict |")
    print("| --- " * (len(PREDICT_PARTS) + 4) + "|")
    for name, result in results.items():
        counts, invoke = result["instructions"], result["instructions"]["deterministic invoke"]
        for rule, ruled in result["rules"].items():
            values = {**counts, **ruled["instructions"]}
            cells = [values[part] for part in PREDICT_PARTS]
            cells += [ruled["predict_beyond_its_parts"], values["predict, warm"]]
            print(f"| {name} | {rule} | " + " | ".join(f"{c / 1e6:.2f} M ({c / invoke:.4f}x)" for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(timespec="minutes"), "load_average_at_start": load,
            "date_end": datetime.now(UTC).isoformat(timespec="minutes"),
            "photo": photo_path.name, "threads": 1, "python": platform.python_version(),
            "results": results}, indent=2))
    return 0


# -- does version 2 cost accuracy? ---------------------------------------------------------------
#: scikit-image's colour photos (the agreement set): originals and random crops at 0.3/3/12 MP.
AGREEMENT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                    "immunohistochemistry", "retina")


def _jpeg(pixels: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    """``pixels`` (resized to ``size`` = (width, height), bilinear, as :func:`write_photos`
    does) as a JPEG of quality 90."""
    import io

    from PIL import Image

    image = Image.fromarray(pixels)
    if size is not None:
        image = image.resize(size, Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _agreement_set(crops: int, seed: int = 0):
    """(name, JPEG bytes): each photo as it is, and ``crops`` random crops of it (at least
    half its shorter side, aspect 4:3 or 3:4) resized to 0.3, 3 and 12 MP."""
    import skimage.data

    rng = np.random.default_rng(seed)
    for photo_name in AGREEMENT_PHOTOS:
        pixels = getattr(skimage.data, photo_name)()
        yield f"{photo_name} as is", _jpeg(pixels)
        height, width = pixels.shape[:2]
        for index in range(crops):
            tall = bool(rng.integers(2))
            side = int(rng.integers(min(height, width) // 2, min(height, width) + 1))
            crop_height, crop_width = (side, side * 3 // 4) if tall else (side * 3 // 4, side)
            top = int(rng.integers(0, height - crop_height + 1))
            left = int(rng.integers(0, width - crop_width + 1))
            crop = pixels[top : top + crop_height, left : left + crop_width]
            for label, (long_side, short_side) in PHOTO_MEGAPIXELS.items():
                size = (short_side, long_side) if tall else (long_side, short_side)
                yield f"{photo_name} crop {index} at {label}", _jpeg(crop, size)


PHOTO_MEGAPIXELS = {"0.3 MP": (640, 480), "3 MP": (2000, 1500), "12 MP": (4000, 3000)}


def agreement(args) -> int:
    """Top-1 of the deterministic 1000-class Lite0 under versions 1 and 2 on real photos; how
    far the reduced JPEG decode is from a full decode + step 1b; and, if the data is there,
    top-1 accuracy on Tiny-ImageNet's 64-px validation photos upscaled (JPEG)."""
    import tfuq
    from tfuq.runtime import photo

    model = tfuq.load(args.models / MODELS["lite0-1000"][1], threads=2)
    size = model.input_shape[:2]
    started, load = datetime.now(UTC), os.getloadavg()

    def top1(pixels: np.ndarray) -> int:
        return int(np.argmax(model.run(pixels[None])[0, 0]))

    def confident(pixels: np.ndarray) -> bool:  # the model's top probability at least 0.5
        return float(np.max(model.run(pixels[None])[0, 0])) >= 0.5

    by_size: dict[str, list] = {}
    draft_differences: dict[str, list] = {}
    for name, data in _agreement_set(args.crops):
        label = name.split(" at ")[-1] if " at " in name else "as is"
        v1, v2 = photo.read(data, size, photo.CENTER_CROP), photo.read(data, size, photo.CENTER_CROP_V2)
        decoded = photo.decode(data)
        full_v2 = photo.prepare(decoded, size, photo.CENTER_CROP_V2)
        s = photo.reduction_factor(*decoded.shape[:2], *size)
        # the last: version 2 on the full decode, so the reduced decode's share shows apart
        by_size.setdefault(label, []).append((top1(v1), top1(v2), s, top1(full_v2), confident(v1)))
        if s > 1:
            difference = np.abs(v2.astype(np.int16) - full_v2)
            draft_differences.setdefault(label, []).append((float(difference.mean()), int(difference.max())))
    photos_result = {}
    for label, rows in by_size.items():
        agree = sum(a == b for a, b, *_ in rows)
        full = sum(a == c for a, _, _, c, _ in rows)
        decoder = sum(b == c for _, b, _, c, _ in rows)
        sure = [row for row in rows if row[4]]
        photos_result[label] = {"photos": len(rows), "top1_agree": agree, "agreement": agree / len(rows),
                                "top1_agree_v1_v2_full_decode": full, "top1_agree_v2_reduced_full_decode": decoder,
                                "v1_top_probability_at_least_half": len(sure),
                                "top1_agree_among_those": sum(a == b for a, b, *_ in sure),
                                "s": sorted({row[2] for row in rows})}
        print(f"{label}: top-1 v1 = v2 on {agree} / {len(rows)} photos (s = {photos_result[label]['s']}); "
              f"v1 = v2 on the full decode {full}; v2 reduced decode = v2 full decode {decoder}; "
              f"where v1's top probability >= 0.5: v1 = v2 on "
              f"{photos_result[label]['top1_agree_among_those']} / {len(sure)}")
    drafts = {label: {"photos": len(rows), "mean_abs_mean": float(np.mean([m for m, _ in rows])),
                      "mean_abs_max": float(max(m for m, _ in rows)), "max_abs": int(max(x for _, x in rows))}
              for label, rows in draft_differences.items()}
    for label, row in drafts.items():
        print(f"{label}: reduced JPEG decode vs full decode + step 1b: mean |difference| "
              f"{row['mean_abs_mean']:.3f} (per photo at most {row['mean_abs_max']:.3f}), max {row['max_abs']}")
    tiny = None
    data_file = args.data / "tinyimagenet_val_classes_0_99.npz"
    if data_file.is_file():
        loaded = np.load(data_file)
        images, labels = loaded["x"][:: args.tiny_step], loaded["y_imagenet1k"][:: args.tiny_step]
        tiny = {"file": data_file.name, "images": len(images), "upscaled_to": args.tiny_side}
        for version in (1, 2, "2_full_decode"):
            tiny[f"v{version}_correct"] = 0
        agree = only_v1 = only_v2 = 0
        for image, label in zip(images, labels, strict=True):
            data = _jpeg(image, (args.tiny_side, args.tiny_side))
            a = top1(photo.read(data, size, photo.CENTER_CROP))
            b = top1(photo.read(data, size, photo.CENTER_CROP_V2))
            tiny["v2_full_decode_correct"] += int(
                top1(photo.prepare(photo.decode(data), size, photo.CENTER_CROP_V2)) == label)
            tiny["v1_correct"] += int(a == label)
            tiny["v2_correct"] += int(b == label)
            agree += int(a == b)
            only_v1 += int(a == label != b)
            only_v2 += int(b == label != a)
        tiny.update(top1_agree=agree, right_v1_only=only_v1, right_v2_only=only_v2, s=photo.reduction_factor(args.tiny_side, args.tiny_side, *size),
                    v1_accuracy=tiny["v1_correct"] / len(images), v2_accuracy=tiny["v2_correct"] / len(images))
        print(f"Tiny-ImageNet ({len(images)} images, 64 px upscaled to {args.tiny_side}, s = {tiny['s']}): "
              f"top-1 accuracy v1 {tiny['v1_accuracy']:.4f}, v2 {tiny['v2_accuracy']:.4f} "
              f"(v2 on the full decode {tiny['v2_full_decode_correct'] / len(images):.4f}); "
              f"top-1 v1 = v2 on {agree} / {len(images)}; right under v1 only {only_v1}, v2 only {only_v2}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(timespec="minutes"), "load_average_at_start": load,
            "model": MODELS["lite0-1000"][1], "photos": photos_result, "reduced_decode": drafts,
            "tiny_imagenet": tiny}, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    photos = commands.add_parser("photos", help="write the fixed photo set")
    photos.add_argument("--out", type=Path, required=True)
    models = commands.add_parser("models", help="make the Lite0 files (1000 and 100 classes)")
    models.add_argument("--out", type=Path, required=True)
    models.add_argument("--representative", type=Path, help=".npz for calibration (default: made)")
    run = commands.add_parser("run", help="time it")
    run.add_argument("--models", type=Path, required=True, help="folder of the files `models` makes")
    run.add_argument("--photos", type=Path, required=True, help="folder of the photo set")
    run.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    run.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    run.add_argument("--repeats", type=int, default=200)
    run.add_argument("--cold-runs", type=int, default=3)
    count = commands.add_parser("instructions", help="count instructions per call with callgrind (1 thread)")
    count.add_argument("--models", type=Path, required=True)
    count.add_argument("--photos", type=Path, required=True)
    count.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    count.add_argument("--json", type=Path)
    count.add_argument("--photo", default="0.3mp.jpg", choices=sorted(PHOTOS), help="the photo (default 0.3 MP)")
    agree = commands.add_parser("agreement", help="top-1 of Lite0-1000 under photo rules v1 and v2")
    agree.add_argument("--models", type=Path, required=True)
    agree.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ood_dev",
                       help="folder of tinyimagenet_val_classes_0_99.npz (skipped if absent)")
    agree.add_argument("--crops", type=int, default=20, help="random crops per photo")
    agree.add_argument("--tiny-side", type=int, default=512, help="Tiny-ImageNet upscaled to this square")
    agree.add_argument("--tiny-step", type=int, default=1, help="every n-th Tiny-ImageNet image")
    agree.add_argument("--json", type=Path)
    for command in (run, count):
        command.add_argument("--photo-rules", type=int, nargs="+", choices=(1, 2), default=[1, 2],
                             help="center-crop-bilinear versions to time (default both)")
    run.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                     help="wall (default; the fastest run of each) or cpu (process CPU time; the median)")
    run.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.command == "photos":
        for path in write_photos(args.out):
            print(path)
        return 0
    if args.command == "models":
        make_models(args.out, args.representative)
        return 0
    if args.command == "instructions":
        return count_instructions(args)
    if args.command == "agreement":
        return agreement(args)
    global _clock
    _clock = CLOCKS[args.clock]
    paths = write_photos(args.photos)
    load = os.getloadavg()
    started = datetime.now(UTC)
    rows = []
    for name in args.only:
        for threads in args.threads:
            print(f"{name}, {threads} thread(s) ...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, args.models, paths, threads, args.repeats, args.cold_runs,
                                    args.photo_rules))
    result = {
        "date": started.isoformat(timespec="minutes"),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "clock": args.clock,
        "python": platform.python_version(),
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(rows))
    print(f"{started:%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f} at start, "
          f"{result['load_average_at_end'][0]:.2f} at end, {os.cpu_count()} CPUs, "
          f"{args.clock} clock ({'fastest' if args.clock == 'wall' else 'median'} of the runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
