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
predict's per-photo cost, warm, within 1.10x of the deterministic invoke plus the decode.

    python benchmarks/end_to_end.py photos --out photos/        # the fixed photo set
    python benchmarks/end_to_end.py models --out models/        # Lite0, 1000 and 100 classes
    python benchmarks/end_to_end.py run --models models/ --photos photos/ --threads 1 2 --json e2e.json

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


def bench_model(name: str, folder: Path, photos: list[Path], threads: int, repeats: int, cold_runs: int) -> dict:
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
    predictor = Predictor(model, rule, seed)
    for path in photos:  # per photo, with the deterministic invoke again beside it
        with open(path, "rb") as handle:
            data = handle.read()
        decoded = photo.decode(data)
        group = {
            f"{path.name}: deterministic invoke": deterministic_invoke,
            f"{path.name}: decode": lambda data=data: photo.decode(data),
            f"{path.name}: photo rule": lambda decoded=decoded: photo.prepare(decoded, size),
            f"{path.name}: predict, warm": lambda path=path: predictor(str(path)),
        }
        times.update(interleaved(group, max(5, repeats // 8)))
    # On a loaded machine the fastest of many interleaved runs (wall clock) is the closest to
    # the work itself; in CPU time the median is. Both statistics are kept.
    pick = min if _clock is CLOCKS["wall"] else statistics.median
    fastest = {name: pick(values) for name, values in times.items()}
    medians = {name: statistics.median(values) for name, values in times.items()}

    cold = []  # a fresh Model each time: load, then the first photo (masks drawn, first invoke)
    for _ in range(cold_runs):
        start = _clock()
        fresh = tfuq.load(masked_file, threads=threads)
        loaded = _clock()
        Predictor(fresh, rule, seed)(str(photos[1]))
        cold.append(((loaded - start) * 1e3, (_clock() - loaded) * 1e3))

    invoke = fastest["deterministic invoke"]
    masked_invoke = fastest["masked invoke (masks given)"]
    per_photo = {}
    for path in photos:
        photo_invoke = fastest[f"{path.name}: deterministic invoke"]
        decode = fastest[f"{path.name}: decode"]
        per_photo[path.name] = {
            "pixels": int(np.prod(photo.decode(path).shape[:2])),
            "deterministic_invoke_ms": photo_invoke,
            "decode_ms": decode,
            "photo_rule_ms": fastest[f"{path.name}: photo rule"],
            "predict_warm_ms": fastest[f"{path.name}: predict, warm"],
            "predict_warm_over_invoke_plus_decode": fastest[f"{path.name}: predict, warm"] / (photo_invoke + decode),
            "photo_rule_over_invoke": fastest[f"{path.name}: photo rule"] / photo_invoke,
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
        "cold": {
            "photo": first,
            "load_ms": min(c[0] for c in cold),
            "first_photo_ms": min(c[1] for c in cold),
            "first_photo_over_invoke_plus_decode": min(c[1] for c in cold)
            / (invoke + per_photo[first]["decode_ms"]),
        },
    }


# -- instructions (load-independent) -----------------------------------------------------------
_WORKER = """
import sys, numpy as np, tfuq
sys.path.insert(0, {here!r})
from end_to_end import raw_invoke
from tfuq.cli.predict import Predictor
from tfuq.runtime import abstain, photo
folder, name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
masked, deterministic = (folder + "/" + f for f in {models!r}[name])
path = sys.argv[4]
model = tfuq.load(masked, threads=1)
data = open(path, "rb").read()
size = model.input_shape[:2]
image = photo.read(path, size)
rule = model.config.decision_rule()
predictor = Predictor(model, rule, 0)
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


def instructions_per_call(folder: Path, name: str, photo_path: Path, work: str) -> float:
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
                 code, str(folder), name, str(calls), str(photo_path), work],
                capture_output=True, text=True, check=True, env=env)
        counts.append(int(re.search(r"Collected : (\d+)", result.stderr).group(1)))
    return (counts[1] - counts[0]) / 2


def table(rows: list[dict]) -> str:
    """The Markdown table benchmarks/README.md quotes."""
    lines = [
        "| model | threads | deterministic invoke | masked invoke | `Model.run`, repeated seed (/ masked invoke) "
        "| `run_one`, new seed | masks alone | aggregate + decide | predict, warm, 0.3 MP: / (invoke + decode) "
        "| photo rule 0.3 / 3 / 12 MP | cold first photo / (invoke + decode) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        r = row["over_deterministic_invoke"]
        p = row["per_photo"]
        lines.append(
            f"| {row['model']} | {row['threads']} | 1 ({row['fastest_ms']['deterministic invoke']:.2f} ms) "
            f"| {r['masked invoke (masks given)']:.3f}x | {r['Model.run, repeated seed']:.3f}x "
            f"({row['run_repeated_seed_over_masked_invoke']:.3f}x) "
            f"| {r['Model.run_one, new seed each call']:.3f}x | {r['masks alone (masks_for)']:.3f}x "
            f"| {r['aggregate + decide']:.3f}x | {p['0.3mp.jpg']['predict_warm_over_invoke_plus_decode']:.3f}x "
            f"| {p['0.3mp.jpg']['photo_rule_over_invoke']:.3f}x / {p['3mp.jpg']['photo_rule_over_invoke']:.3f}x / "
            f"{p['12mp.jpg']['photo_rule_over_invoke']:.3f}x "
            f"| {row['cold']['first_photo_over_invoke_plus_decode']:.2f}x |"
        )
    return "\n".join(lines)


def count_instructions(args) -> int:
    """Instructions per call of the Python path on the 0.3 MP photo, and the two targets."""
    photo_path = write_photos(args.photos)[1]
    load, started = os.getloadavg(), datetime.now(UTC)
    results = {}
    for name in args.only:
        counts = {}
        for work in INSTRUCTION_WORK + PREDICT_PARTS:
            print(f"{name}: {work} ...", file=sys.stderr, flush=True)
            counts[work] = instructions_per_call(args.models, name, photo_path, work)
        invoke = counts["deterministic invoke"]
        results[name] = {
            "instructions": counts,
            "over_deterministic_invoke": {work: count / invoke for work, count in counts.items()},
            "run_repeated_seed_over_masked_invoke": counts["Model.run, repeated seed"] / counts["masked invoke (masks given)"],
            "predict_over_invoke_plus_decode": counts["predict, warm"] / (invoke + counts["decode"]),
            "predict_beyond_its_parts": counts["predict, warm"] - sum(counts[part] for part in PREDICT_PARTS),
        }
        print(f"| {name} | {invoke / 1e6:.1f} M | " + " | ".join(
            f"{counts[w] / invoke:.3f}x" for w in INSTRUCTION_WORK[1:])
            + f" | {results[name]['run_repeated_seed_over_masked_invoke']:.4f}x"
            f" | {results[name]['predict_over_invoke_plus_decode']:.4f}x |", flush=True)
    print("\npredict's parts, in M instructions per call (and / deterministic invoke):")
    print("| model | " + " | ".join(PREDICT_PARTS) + " | predict beyond its parts | predict |")
    print("| --- " * (len(PREDICT_PARTS) + 3) + "|")
    for name, result in results.items():
        counts, invoke = result["instructions"], result["instructions"]["deterministic invoke"]
        cells = [counts[part] for part in PREDICT_PARTS]
        cells += [result["predict_beyond_its_parts"], counts["predict, warm"]]
        print(f"| {name} | " + " | ".join(f"{c / 1e6:.2f} M ({c / invoke:.4f}x)" for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(timespec="minutes"), "load_average_at_start": load,
            "photo": photo_path.name, "threads": 1, "python": platform.python_version(),
            "results": results}, indent=2))
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
    global _clock
    _clock = CLOCKS[args.clock]
    paths = write_photos(args.photos)
    load = os.getloadavg()
    started = datetime.now(UTC)
    rows = []
    for name in args.only:
        for threads in args.threads:
            print(f"{name}, {threads} thread(s) ...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, args.models, paths, threads, args.repeats, args.cold_runs))
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
