"""Predict or abstain, image by image: decode each image with Pillow, make it the model input
by the photo rule the model carries (centre crop, then resize: tfuq.runtime.photo), run all
MC passes with one interpreter kept loaded, and print one line per image: the label, or
"not sure" and why, with the top probability, an uncertainty score and the latency.

IMAGE may be "-" to read image paths from standard input, one per line, as they arrive.
--watch DIR polls a folder and decides on each new image (a file counts once its size and
time stamp hold still between two polls; a file written again under the same name is a new
image). --max-images and --timeout bound the stream. The decision rule is the one the model
carries unless --rule says otherwise. Needs numpy, one interpreter package and Pillow, never
TensorFlow.

example:
  tfuq predict model.tflite cat.jpg dog.png
  tfuq predict model.tflite photo.jpg --json --rule threshold --score max_probability --threshold 0.9
  find shots/ -name '*.jpg' | tfuq predict model.tflite - --threads 2
  tfuq predict model.tflite --watch /run/camera --max-images 100 --timeout 600 --json

With --runner the images (folders, glob patterns, bucket globs such as gs://b/photos/*.jpg) go
through an Apache Beam pipeline instead (pip install 'tfuq[beam]'), one record per image
written to --records as sharded JSONL or Parquet:
  tfuq predict model.tflite archive/ --runner direct --records decisions/   # recursively
  tfuq predict model.tflite 'gs://bucket/uploads/*.jpg' --runner dataflow --records gs://bucket/out \\
      --pipeline-options='--project=P --region=europe-west1 --temp_location=gs://bucket/tmp'
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tfuq.cli._common import RULE_CHOICES, RULE_HELP, CliError, info, rule_from_args

HELP = "predict or abstain on image files, a stream of paths or a watched folder"

# Spelled out rather than imported so that `tfuq --help` does not load numpy.
BACKEND_CHOICES = ("auto", "ai_edge_litert", "tflite_runtime", "tensorflow")
SCORE_CHOICES = ("max_probability", "predictive_entropy", "mutual_information", "variation_ratio")
DEFAULT_SCORE = "mutual_information"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .tflite made by tfuq convert")
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="image files; '-' reads image paths from standard input, one per line")
    parser.add_argument("--seed", type=int, default=0,
                        help="MC run seed, the same for every image (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--threads", type=int, help="interpreter threads")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                        help="interpreter package (default: the first installed of "
                             "ai_edge_litert, tflite_runtime, tensorflow)")
    rules = parser.add_argument_group("decision rule (default: the one the model carries)")
    rules.add_argument("--rule", choices=RULE_CHOICES, default="model", help=RULE_HELP)
    rules.add_argument("--conf-factor", type=float,
                       help="Z of the interval rule mean +/- Z * std (default 1.0)")
    rules.add_argument("--score", choices=SCORE_CHOICES,
                       help="threshold rule score; also the uncertainty score printed "
                            f"(default: the rule's score, else {DEFAULT_SCORE})")
    rules.add_argument("--threshold", type=float, help="threshold rule threshold")
    beam = parser.add_argument_group("Apache Beam (a folder or bucket of photos, in batch)")
    beam.add_argument("--runner", choices=("direct", "flink", "spark", "dataflow"),
                      help="decide on the IMAGE folders or glob patterns with a Beam pipeline")
    beam.add_argument("--pipeline-options", default="", metavar="FLAGS",
                      help="more Beam pipeline flags, one string")
    beam.add_argument("--records", metavar="DIR", help="with --runner: where the records go")
    beam.add_argument("--records-format", choices=("jsonl", "parquet"), default="jsonl",
                      help="with --runner: JSONL (default) or Parquet shards")
    beam.add_argument("--seeding", choices=("shared", "per-image"), default="shared",
                      help="with --runner: the run seed's masks for every image (default), or "
                      "a seed from the run seed and each image's pixels")
    stream = parser.add_argument_group("streaming")
    stream.add_argument("--watch", metavar="DIR",
                        help="poll DIR and decide on each new image file")
    stream.add_argument("--include-existing", action="store_true",
                        help="with --watch, also decide on the images already in DIR")
    stream.add_argument("--interval", type=float, default=0.2, metavar="SECONDS",
                        help="with --watch, seconds between polls (default 0.2)")
    stream.add_argument("--max-images", type=int, metavar="N",
                        help="stop after N images (counting failed ones)")
    stream.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --watch, stop watching after SECONDS")


# -- images ----------------------------------------------------------------------------------
def decode(path: str | os.PathLike, height: int, width: int, rule=None):
    """An image file as the model's uint8 RGB input ``(height, width, 3)``, by the photo rule
    (default :data:`tfuq.runtime.photo.RULE`, ``center-crop-bilinear`` v2; see
    :mod:`tfuq.runtime.photo`).

    Raises:
        tfuq.runtime.photo.PhotoError (a ValueError): the file cannot become a model input.
    """
    from tfuq.runtime import photo

    return photo.read(path, (height, width), photo.RULE if rule is None else rule)


# -- one decision ----------------------------------------------------------------------------
class Predictor:
    """One loaded interpreter, one rule and one seed, applied image after image.

    The masks of a masked model depend only on the seed: ``Model.run_one`` draws them for the
    first image and keeps them, so every image gets the same ones, exactly as
    ``Model.run(images, seed)`` gives them. The rule is checked and typed once, here.
    """

    def __init__(self, model, rule: dict, seed: int, score: str | None = None):
        from tfuq.runtime import masks, photo
        from tfuq.runtime.config import DecisionRule
        from tfuq.runtime.decision import check_rule, describe_rule

        self.model = model
        self.seed = masks.check_seed(seed)
        self._typed_rule = DecisionRule.from_dict(rule, "rule")
        self.rule = check_rule(rule)
        self.score = score or self._typed_rule.score or DEFAULT_SCORE
        self.rule_text = describe_rule(self.rule)
        height, width, _ = model.input_shape
        self.size = (height, width)
        self.photo_rule = photo.rule_of(model.config)  # what the model file says

    def label(self, index: int) -> str:
        return self.model.labels[index] if self.model.labels else f"class_{index}"

    def passes(self, image):
        """MC probabilities of one uint8 image, ``(passes, classes)``."""
        return self.model.run_one(image, self.seed)

    def why(self, summary, rule: dict | None = None, failed_part: int | None = None) -> str:
        """Why ``rule`` (the predictor's) abstained on one image (``summary`` without a batch
        axis); for an ``all`` rule, why its first refusing part did (``failed_part``, the
        decision's, when known)."""
        from tfuq.runtime.config import DecisionRule

        typed = self._typed_rule if rule is None else DecisionRule.from_dict(rule, "rule")
        return self._why(summary, typed, failed_part)

    def _why(self, summary, typed, failed_part: int | None = None) -> str:
        from tfuq.runtime.aggregate import SCORES
        from tfuq.runtime.decision import HIGHER_IS_CONFIDENT, decide

        if typed.rule == "all":
            if failed_part is None:
                failed_part = int(decide(summary, typed.to_dict(), self.scores()).failed_part)
            return self._why(summary, typed.rules[failed_part])
        if typed.rule == "ood":
            if typed.score in SCORES:  # a score of the passes, on the threshold rule's side
                value = float(summary.score(typed.score))
                side = "below" if HIGHER_IS_CONFIDENT[typed.score] else "above"
            else:
                value, side = self.model.last_scores.get(typed.score, float("nan")), "below"
            return (f"out of distribution: {typed.score} {value:.4g} is {side} the OOD guard's "
                    f"{typed.threshold:.4g}")
        if typed.rule == "threshold":
            name, limit = typed.score, typed.threshold
            value = float(summary.score(name))
            side = "below" if HIGHER_IS_CONFIDENT[name] else "above"
            return f"{name} {value:.4g} is {side} {limit:.4g}"
        top = int(summary.predicted)
        lower, upper = summary.interval(typed.conf_factor)
        overlapping = upper >= lower[top]
        overlapping[top] = False
        rivals = np.flatnonzero(overlapping)  # by decreasing mean, ties by class index
        rivals = rivals[np.argsort(-summary.mean[rivals], kind="stable")].tolist()
        named = ", ".join(self.label(c) for c in rivals[:3])
        more = f" and {len(rivals) - 3} more" if len(rivals) > 3 else ""
        return (f"the interval of {self.label(top)} overlaps {named}{more} "
                f"(Z = {typed.conf_factor:g})")

    def scores(self) -> dict[str, np.ndarray]:
        """The model's OOD scores of the image just run, as 0-d arrays for ``decide``."""
        return {name: np.asarray(value) for name, value in self.model.last_scores.items()}

    def __call__(self, path: str) -> dict:
        """Decode, run and decide one image file; the record printed for it."""
        from tfuq.runtime import photo
        from tfuq.runtime.decision import decide

        start = time.perf_counter()
        image = photo.read(path, self.size, self.photo_rule)
        decoded = time.perf_counter()
        probabilities = self.model.run_one(image, self.seed)
        ran = time.perf_counter()
        decision = decide(probabilities, self.rule, self.scores())
        summary = decision.aggregate
        accept, top = bool(decision.accept), int(decision.predicted)
        done = time.perf_counter()
        ood_scores = self.model.last_scores
        failed_part = None if decision.failed_part is None else int(decision.failed_part)
        return {
            "path": str(path),
            "accept": accept,
            "label": self.label(top) if accept else None,
            "predicted": top,
            "predicted_label": self.label(top),
            "probability": float(summary.max_probability),
            "score": self.score,
            "uncertainty": float(summary.score(self.score)),
            "why": None if accept else self._why(summary, self._typed_rule, failed_part),
            **({"ood_scores": ood_scores} if ood_scores else {}),
            "run_ms": (ran - decoded) * 1e3,
            "decode_ms": (decoded - start) * 1e3,
            "total_ms": (done - start) * 1e3,
        }


def format_line(record: dict) -> str:
    """The text line for one record (an error record or a decision). File names, labels and
    messages are shown with control characters escaped, so none can start a line of its own
    (``--json`` escapes them as JSON does)."""
    from tfuq._files import shown

    path = shown(record["path"])
    if "error" in record:
        return f"{path}: error: {shown(record['error'])}"
    numbers = (f"p={record['probability']:.3f}  {record['score']}={record['uncertainty']:.4f}  "
               f"{record['run_ms']:.1f} ms (total {record['total_ms']:.1f} ms)")
    if record["accept"]:
        return f"{path}: {shown(record['label'])}  {numbers}"
    return (f"{path}: not sure ({shown(record['why'])}); "
            f"top {shown(record['predicted_label'])}  {numbers}")


# -- where the images come from --------------------------------------------------------------
def _stdin_paths() -> Iterator[str]:
    # readline, not iteration, so each path is handled as soon as its line arrives.
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        path = line.strip()
        if path:
            yield path


def _image_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Image files directly in ``folder``, with their (mtime_ns, size) signatures."""
    from tfuq.runtime.photo import IMAGE_SUFFIXES

    found = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:  # removed between the listing and the stat
                continue
            found[entry.path] = (stat.st_mtime_ns, stat.st_size)
    return found


def watch(folder: str | os.PathLike, interval: float, timeout: float | None = None,
          include_existing: bool = False) -> Iterator[str]:
    """Yield the path of each new image file in ``folder`` once it has stopped changing.

    What is already there is noted when ``watch`` is called (not at the first ``next``), so
    a file that appears after the call is new. A file is new when its (modification time,
    size) signature differs from the one last yielded for its name, and is yielded when two
    polls ``interval`` seconds apart see the same signature, so a file still being written is
    not read half-done. Stops after ``timeout`` seconds from the call (None: never).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"--watch: not a folder: {folder}")
    deadline = None if timeout is None else time.monotonic() + timeout
    done = {} if include_existing else _image_files(folder)
    return _poll(folder, interval, deadline, done)


def _poll(folder: Path, interval: float, deadline: float | None,
          done: dict[str, tuple[int, int]]) -> Iterator[str]:
    pending: dict[str, tuple[int, int]] = {}
    while True:
        current = _image_files(folder)
        ready = [path for path, signature in current.items()
                 if done.get(path) != signature and pending.get(path) == signature]
        pending = {path: signature for path, signature in current.items()
                   if done.get(path) != signature}
        for path in sorted(ready, key=lambda p: (current[p][0], p)):
            done[path] = current[path]
            pending.pop(path, None)
            yield path
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(interval, left))
        else:
            time.sleep(interval)


def _sources(args, watched: Iterator[str] | None) -> Iterator[str]:
    for item in args.images:
        if item == "-":
            yield from _stdin_paths()
        else:
            yield item
    if watched is not None:
        yield from watched


def _check_args(args) -> None:
    if not args.images and not args.watch:
        raise CliError("give IMAGE paths, '-' to read paths from standard input, or --watch DIR")
    if args.images.count("-") > 1:
        raise CliError("'-' (read paths from standard input) may be given once")
    if not 0 <= args.seed < 2**64:
        raise CliError(f"--seed must be in [0, 2**64), got {args.seed}")
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be at least 1, got {args.threads}")
    if args.max_images is not None and args.max_images < 1:
        raise CliError(f"--max-images must be at least 1, got {args.max_images}")
    for option in ("timeout", "interval"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            raise CliError(f"--{option} must be positive, got {value}")
    if args.timeout is not None and not args.watch:
        raise CliError("--timeout bounds --watch; give --watch DIR")
    if args.include_existing and not args.watch:
        raise CliError("--include-existing needs --watch DIR")
    if args.watch and not Path(args.watch).is_dir():
        raise CliError(f"--watch: not a folder: {args.watch}")
    if importlib.util.find_spec("PIL") is None:
        raise CliError("`tfuq predict` needs Pillow to decode images: pip install 'tfuq[pi]' "
                       "or pip install pillow")


def run(args) -> int:
    if args.runner:
        return run_beam(args)
    if args.records:
        raise CliError("--records needs --runner")
    _check_args(args)
    from tfuq import runtime
    from tfuq._files import shown

    try:
        model = runtime.load(args.model, threads=args.threads, backend=args.backend)
    except ImportError as error:  # the interpreter package asked for is not installed
        raise CliError(str(error)) from None
    from tfuq.runtime.photo import PhotoError

    try:
        predictor = Predictor(model, rule_from_args(args, model.config), args.seed, args.score)
    except PhotoError as error:
        raise CliError(f"{args.model}: {error}") from None
    info(f"{shown(args.model)}: {model.classes} classes, {model.passes} passes ({model.mode}), "
         f"rule {predictor.rule_text}, photos {predictor.photo_rule}, seed {predictor.seed}, "
         f"{model.backend}"
         + (f", {args.threads} threads" if args.threads else ""))
    watched = None
    if args.watch:  # what is in the folder now is not new; taken before saying "watching"
        watched = watch(args.watch, args.interval, args.timeout, args.include_existing)
        info(f"watching {shown(args.watch)} for new images"
             + (f" for {args.timeout:g} s" if args.timeout else "") + " (Ctrl-C stops)")
    counts = {"predicted": 0, "not sure": 0, "failed": 0}
    run_ms = []
    first_failure = None
    try:
        for path in _sources(args, watched):
            try:
                record = predictor(path)
            except (ValueError, MemoryError) as error:  # this image is bad; the stream goes on
                if isinstance(error, MemoryError):
                    error = "not enough memory for it"
                record = {"path": str(path), "error": str(error)}
                counts["failed"] += 1
                first_failure = first_failure or f"{path}: {error}"
            else:
                counts["predicted" if record["accept"] else "not sure"] += 1
                run_ms.append(record["run_ms"])
            print(json.dumps(record) if args.json else format_line(record), flush=True)
            if args.max_images is not None and sum(counts.values()) >= args.max_images:
                break
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    handled = sum(counts.values())
    summary = ", ".join(f"{value} {name}" for name, value in counts.items())
    if run_ms:
        summary += f"; median run {statistics.median(run_ms):.1f} ms"
    info(f"{handled} image{'s' if handled != 1 else ''}: {summary}")
    if counts["failed"]:  # the stream went on; the run still ends as bad input does
        raise CliError(f"{counts['failed']} of {handled} image{'s' if handled != 1 else ''} failed "
                       f"(first: {first_failure})")
    return 0


def run_beam(args) -> int:
    """``tfuq predict --runner``: every image of the folders or globs, as a Beam pipeline."""
    import shlex

    from tfuq.cli._common import require

    require("apache_beam", "beam", "predict --runner")
    from tfuq.beam import pipeline
    from tfuq.beam.sources import ReadImageFiles, SourceError
    from tfuq.runtime import photo

    if not args.images or "-" in args.images or args.watch:
        raise CliError("--runner takes folders or glob patterns of images, not '-' or --watch")
    if args.records is None:
        raise CliError("--runner needs --records DIR")
    if args.max_images is not None or args.timeout is not None:
        raise CliError("--max-images and --timeout bound a stream; --runner reads everything")
    try:
        model = pipeline.load_model(args.model, args.threads, args.backend)
    except ImportError as error:
        raise CliError(str(error)) from None
    rule = rule_from_args(args, model.config)
    size = model.input_shape[:2]
    try:
        options = pipeline.pipeline_options(args.runner, shlex.split(args.pipeline_options))
        photo_rule = photo.rule_of(model.config)  # as the one-process path follows it
        data = [(f"images{index}", ReadImageFiles(location, size, "images", photo_rule=photo_rule))
                for index, location in enumerate(args.images)]
        outcome = pipeline.run(
            args.model, data, args.records, fmt=args.records_format, options=options, rule=rule,
            seed=args.seed, seeding=args.seeding, threads=args.threads,
        )
    except SourceError as error:
        raise CliError(str(error)) from None
    records = pipeline.read_records(outcome["records"])
    accepted = sum(bool(r["accept"]) for r in records)
    from tfuq._files import shown

    for error in outcome["errors"]:
        info(f"{shown(error['id'])}: error: {shown(error['error'])}")
    info(f"{len(records) + len(outcome['errors'])} images: {accepted} predicted, "
         f"{len(records) - accepted} not sure, {len(outcome['errors'])} failed; records in "
         f"{args.records}")
    return 2 if outcome["errors"] else 0
