"""``tfuq fit``: from labelled images (a folder of class subfolders) to a model to ship.

Stages, each leaving a marker ``<out>/stages/<stage>.json`` (its settings and seconds) when
done, so a stopped run resumes at the first unfinished stage, and a run with changed settings
redoes only the stages they affect (``<out>/fit.json`` records the last run's recipe):

1. ``split``: check the data (every file readable, enough images per class), then the
   per-class seeded split into train / validation / calibration / test (``split.json``);
2. ``train``: build and fine-tune the classifier (``model.keras``, ``model.history.json``;
   cached trunk features in ``features/``);
3. ``convert``: the full-integer tfuq model with the self-check (``model.tflite``,
   ``conversion.json``);
4. ``calibrate``: a threshold with a risk guarantee on the calibration images, written into
   the model file when the target is feasible (``calibration.json``);
5. ``evaluate``: the test images under the model's rule; ``report/`` with plots and the
   gallery of refused and wrongly accepted images (``evaluation.json``);
6. ``summary``: what the model will do on a phone, a Raspberry Pi and in the browser
   (``summary.json``, ``SUMMARY.md``).

:func:`lite0_recipe` is the recipe that measured best here on a CPU (the pretrained-Lite0
setup of ``benchmarks/paper_experiment.py``); :func:`digits_recipe` is ``tfuq demo``'s.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tfuq._files import json_default
from tfuq.workflow import split as splitting
from tfuq.workflow.steps import ConvertSettings, TrainSettings

STAGES = ("split", "train", "convert", "calibrate", "evaluate", "summary")
FIT_FORMAT = "tfuq-fit"
# Refuse data that would not fit in memory as uint8 pixels (suggest a smaller --image-size).
MAX_PIXEL_BYTES = 6 * 2**30


class FitError(ValueError):
    """Settings or data the user can fix; the message says what and how."""


@dataclass(frozen=True)
class Recipe:
    """Every choice of a fit run; :meth:`describe` prints them, the CLI overrides them."""

    train: TrainSettings
    convert: ConvertSettings
    fractions: dict = field(default_factory=lambda: dict(splitting.FRACTIONS))
    min_per_class: int = 10
    image_size: int | None = None  # None: as stored when all images share a size, else the input size
    target_risk: float = 0.1
    confidence: float = 0.9
    score: str = "max_probability"
    outlier_weight: float = 0.5
    seed: int = 0

    def to_json(self) -> dict:
        values = asdict(self)
        values["train"] = self.train.to_json()
        return values

    def describe(self) -> list[str]:
        t, c = self.train, self.convert
        shares = " / ".join(f"{name} {share:.0%}" for name, share in self.fractions.items())
        how = (f"last {t.trainable_layers} weighted layers fine-tuned on cached trunk features of "
               f"{t.views} augmented views" if t.views else
               f"{'all layers' if t.trainable_layers is None else f'last {t.trainable_layers} layers'} trained")
        head = ", ".join([f"MCDropout {t.dropout}"] + [f"Dense {units}, MCDropout {t.dropout}" for units in t.dense])
        return [
            f"split      per class, seed {self.seed}: {shares} (classes of at least {self.min_per_class} images)",
            f"model      {t.backbone} ({'weights ' + t.weights if t.weights else 'random init'}), input "
            f"{t.input_size or 'default'}, head {head}",
            f"training   {how}; up to {t.epochs} epochs, batch {t.batch_size}, Adam {t.learning_rate:g}, "
            f"label smoothing {t.label_smoothing:g}, early stop on {t.monitor} (patience {t.patience})",
            f"convert    int8, {c.passes} passes per invoke ({c.mode}), {c.calibration_samples} calibration "
            f"+ {c.check_samples} self-check images, bias correction {c.bias_correction or 'off'}",
            f"calibrate  {self.score} threshold: selective risk <= {self.target_risk:g} with confidence "
            f"{self.confidence:g} on the calibration images",
        ]


def lite0_recipe(**changes) -> Recipe:
    """Pretrained EfficientNet-Lite0, cached views: ``benchmarks/paper_experiment.py``'s
    ``pretrained_lite_setup`` (71% on the shared CIFAR-100 subset, int8 within 0.1 point),
    converted as ``converters/efficientnet_lite0.toml`` says."""
    from tfuq.runtime import abstain

    train = TrainSettings(
        backbone="efficientnet_lite0", weights="imagenet", input_size=224, dropout=0.3,
        dense=(512,), dropout_placement="all", trainable_layers=8, epochs=20, batch_size=64,
        learning_rate=1e-3, patience=4, monitor="val_accuracy", label_smoothing=0.1, views=8,
    )
    convert = ConvertSettings(passes=30, calibration_samples=200, check_samples=50,
                              bias_correction=32, decision=abstain.DEFAULT_RULE)
    return replace(Recipe(train=train, convert=convert), **changes)


def digits_recipe(**changes) -> Recipe:
    """``tfuq demo``: a small CNN from scratch on 32x32 digits, two minutes on two cores."""
    train = TrainSettings(
        backbone="small_cnn", weights=None, input_size=32, dropout=0.3, dense=(64,),
        dropout_placement="all", epochs=25, batch_size=32, patience=4,
    )
    convert = ConvertSettings(passes=30, calibration_samples=160, check_samples=40,
                              decision={"rule": "interval", "conf_factor": 1.0})
    recipe = Recipe(train=train, convert=convert, target_risk=0.03,
                    fractions={"train": 0.45, "validation": 0.1, "calibration": 0.25, "test": 0.2})
    return replace(recipe, **changes)


@dataclass
class Data:
    """The labelled images of a run: pixels, labels, class names, and the files when read
    from a folder (for the saved split)."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    source: str
    files: list[str] | None = None


class Run:
    """One fit run in ``out``: stage markers that record each stage's settings and seconds.

    A stage is kept when its marker holds the settings asked now; when they differ, that
    stage and every later one run again (a new ``--target-risk`` redoes calibrate, evaluate
    and summary, not the training).
    """

    def __init__(self, out: str | os.PathLike, say: Callable[[str], None]):
        self.out = Path(out)
        self.say = say
        self.seconds: dict[str, float] = {}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "stages").mkdir(exist_ok=True)

    def marker(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def done(self, stage: str) -> bool:
        return self.marker(stage).exists()

    def stage(self, stage: str, settings: dict, work: Callable[[], dict | None]) -> dict:
        """Run ``work`` unless its marker holds ``settings``; time it and leave the marker."""
        number = STAGES.index(stage) + 1
        wanted = json.loads(json.dumps(settings, default=json_default))
        if self.done(stage):
            record = json.loads(self.marker(stage).read_text())
            if record.get("settings") == wanted:
                self.seconds[stage] = record["seconds"]
                self.say(f"[{number}/{len(STAGES)}] {stage}: done before ({record['seconds']:.0f} s), kept")
                return record
            found = record.get("settings") or {}
            changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            self.say(f"[{number}/{len(STAGES)}] {stage}: settings changed ({', '.join(changed)}), "
                     "redoing it and the stages after it")
            for later in STAGES[STAGES.index(stage):]:
                self.marker(later).unlink(missing_ok=True)
        self.say(f"[{number}/{len(STAGES)}] {stage}")
        began = time.perf_counter()
        details = work() or {}
        seconds = time.perf_counter() - began
        self.seconds[stage] = seconds
        record = {"stage": stage, "seconds": round(seconds, 1), "settings": wanted, **details}
        write_json(self.marker(stage), record)
        self.say(f"[{number}/{len(STAGES)}] {stage} took {seconds:.0f} s")
        return record


def stage_settings(spec: str, recipe: Recipe, extra: dict | None = None) -> dict[str, dict]:
    """The settings each stage depends on, cumulative (a stage depends on all before it)."""
    values = recipe.to_json()
    split = {"data": spec, "seed": recipe.seed, "fractions": values["fractions"],
             "min_per_class": recipe.min_per_class, "image_size": recipe.image_size}
    train = {**split, "train": values["train"], "outlier_weight": recipe.outlier_weight, **(extra or {})}
    convert = {**train, "convert": values["convert"]}
    calibrate = {**convert, "target_risk": recipe.target_risk, "confidence": recipe.confidence,
                 "score": recipe.score}
    return {"split": split, "train": train, "convert": convert, "calibrate": calibrate,
            "evaluate": calibrate, "summary": calibrate}


def write_json(path: Path, payload) -> None:
    """``payload`` as indented JSON at ``path``, written all or nothing (numpy values as numbers)."""
    from tfuq.runtime.modelfile import atomic_output

    with atomic_output(path, "w") as handle:
        json.dump(payload, handle, indent=1, default=json_default)
        handle.write("\n")


def check_folder_spec(spec: str, recipe: Recipe):
    """For ``folder:PATH``: scan it (refusing an unusable folder) and return the scan; None
    for other specs."""
    from tfuq.workflow import folder

    source, _, path = spec.partition(":")
    if source != "folder":
        return None
    try:
        return folder.scan(path, recipe.min_per_class)
    except folder.FolderError as error:
        raise FitError(str(error)) from None


def load_data(spec: str, recipe: Recipe, scan=None) -> Data:
    """The labelled images of ``spec`` at the size the recipe asks (see ``Recipe.image_size``)."""
    from tfuq import data

    size = None
    if recipe.image_size is not None:
        size = (recipe.image_size, recipe.image_size)
    elif scan is not None and scan.one_size() is None:
        side = recipe.train.input_size or 224
        size = (side, side)
    if scan is not None:
        height, width = size or scan.one_size()
        needed = scan.images * height * width * 3
        if needed > MAX_PIXEL_BYTES:
            raise FitError(f"{scan.images} images at {height}x{width} need {needed / 2**30:.1f} GiB as pixels; "
                           "give a smaller --image-size")
    loaded = data.load_spec(spec, size=size)
    if loaded.labels is None:
        raise FitError(f"{spec} has no labels (an .npz needs an array y)")
    classes = int(loaded.labels.max()) + 1
    names = list(loaded.label_names) if loaded.label_names and len(loaded.label_names) >= classes \
        else [f"class_{i}" for i in range(classes)]
    files = None
    if scan is not None:
        files = [str(f.relative_to(scan.root)) for name in scan.classes for f in scan.files[name]]
        if len(files) != len(loaded.labels):
            files = None  # the loader saw other files than the scan (changed meanwhile): indices only
    counts = np.bincount(loaded.labels, minlength=len(names))
    small = [(names[i], int(c)) for i, c in enumerate(counts) if c < recipe.min_per_class]
    if small:
        listed = ", ".join(f"{n} ({c})" for n, c in small[:10])
        raise FitError(f"{spec}: {len(small)} class(es) with fewer than {recipe.min_per_class} images: {listed}")
    return Data(loaded.images, loaded.labels.astype(np.int64), names, spec, files)


def fit(
    spec: str,
    out: str | os.PathLike,
    recipe: Recipe,
    *,
    data: Data | None = None,
    outliers: np.ndarray | None = None,
    say: Callable[[str], None] | None = None,
    progress: bool = False,
    extra_settings: dict | None = None,
) -> dict:
    """Run (or resume) every stage in ``out``; return the summary.

    Args:
        spec: the labelled data (``folder:photos/``, ``npz:data.npz``, ...), checked and
            loaded unless ``data`` is given (``tfuq demo`` gives its digits).
        recipe: the choices (:func:`lite0_recipe`, :func:`digits_recipe`, or changed ones).
        outliers: uint8 images of none of the classes for outlier exposure, or None.
        progress: progress bars for the MC runs on stderr.
        extra_settings: more settings that must match on resume (e.g. the outlier specs).
    """
    say = say or (lambda message: print(message, flush=True))
    for line in recipe.describe():
        say("  " + line)
    scan = None if data is not None else check_folder_spec(spec, recipe)
    if scan is not None:
        say(f"{scan.root}: {len(scan.classes)} classes, {scan.images} images, all readable")
    run = Run(out, say)
    settings = stage_settings(spec, recipe, extra_settings)
    write_json(run.out / "fit.json", {"format": FIT_FORMAT, "data": spec, "recipe": recipe.to_json(),
                                       **(extra_settings or {})})
    if data is None:
        data = load_data(spec, recipe, scan)
    out = run.out
    parts: dict[str, np.ndarray] = {}

    def do_split() -> dict:
        made = splitting.split(data.labels, recipe.fractions, recipe.seed)
        splitting.save(out / "split.json", made, data.labels, data.names, data.files,
                       data=spec, seed=recipe.seed, fractions=recipe.fractions)
        return {name: int(len(index)) for name, index in made.items()}

    record = run.stage("split", settings["split"], do_split)
    parts.update(splitting.load(out / "split.json"))
    if sum(len(index) for index in parts.values()) != len(data.labels):
        raise FitError(f"{out / 'split.json'} was made for {sum(len(i) for i in parts.values())} images, "
                       f"the data now has {len(data.labels)}; use another --out")
    say("  " + ", ".join(f"{name} {len(index)}" for name, index in parts.items()))

    def take(name: str):
        return data.images[parts[name]], data.labels[parts[name]]

    keras_model = None

    def do_train() -> dict:
        nonlocal keras_model
        from tfuq.training import train as training
        from tfuq.workflow import steps

        images, labels = take("train")
        model = steps.build_classifier(recipe.train, len(data.names), images.shape[1:3])
        fitted = steps.train_classifier(
            model, recipe.train, images, labels, validation=take("validation"),
            cache=out / "features", outliers=outliers, outlier_weight=recipe.outlier_weight,
            callbacks=[training.epoch_lines(recipe.train.epochs, say)] if recipe.train.views else [],
            say=say,
        )
        keras_model = fitted.model
        training.save_model(keras_model, out / "model.keras", class_names=data.names)
        training.save_history(fitted, training.history_path(out / "model.keras"), data=spec,
                              label_names=data.names, build=recipe.train.to_json())
        validation = fitted.history.get("val_accuracy") or [None]
        best = fitted.best_epoch
        return {"epochs_run": fitted.epochs_run, "best_epoch": best,
                "best_val_accuracy_one_pass": validation[best - 1] if best else validation[-1],
                "train_samples": fitted.train_samples, "validation_samples": fitted.validation_samples}

    trained = run.stage("train", settings["train"], do_train)

    def do_convert() -> dict:
        nonlocal keras_model
        from tfuq.conversion.convert import load_keras_model
        from tfuq.workflow import steps

        if keras_model is None:
            keras_model = load_keras_model(out / "model.keras")
        images, labels = take("train")
        conversion = steps.convert_classifier(keras_model, images, labels, recipe.convert,
                                              class_names=data.names, seed=recipe.seed,
                                              progress=progress, say=say)
        check = conversion.check
        details = {
            "model_bytes": len(conversion.to_bytes()),
            "full_integer": conversion.summary.full_integer,
            "self_check": None if check is None else {
                "images": check.images, "agreement": check.agreement,
                "mean_abs_diff": check.mean_abs_diff, "passed": check.passed},
            "notes": conversion.notes,
        }
        conversion.save(out / "model.tflite")
        # The rule the file was converted with: what stays when no calibrated one can be had.
        from tfuq.runtime import modelfile

        details["decision"] = modelfile.read(out / "model.tflite")[1].decision.to_dict()
        write_json(out / "conversion.json", details)
        if check is not None:
            say(f"  self-check: Keras vs int8 top-1 agreement {check.agreement:.1%} on {check.images} "
                f"images ({'passed' if check.passed else 'FAILED'})")
        return details

    converted = run.stage("convert", settings["convert"], do_convert)
    keras_model = None  # the rest runs on the int8 file only

    def do_calibrate() -> dict:
        from tfuq.workflow import steps

        images, labels = take("calibration")
        found = steps.calibrate_model(out / "model.tflite", images, labels, target_risk=recipe.target_risk,
                                      confidence=recipe.confidence, score=recipe.score,
                                      seed=recipe.seed, progress=progress, say=lambda m: say("  " + m))
        say(f"  {found.message}")
        if not found.feasible:
            # A rule calibrated by an earlier run (another target) must not stay behind.
            from tfuq.runtime import abstain, modelfile

            modelfile.update_config(out / "model.tflite",
                                    {"decision": converted.get("decision") or abstain.DEFAULT_RULE})
            say("  the model keeps the rule it was converted with")
        details = {"feasible": found.feasible, "message": found.message, "rule": found.rule,
                   "ood_guard": found.ood_guard,
                   "target_risk": recipe.target_risk, "confidence": recipe.confidence,
                   "images": found.images, **({"calibration": found.details} if found.details else {})}
        write_json(out / "calibration.json", details)
        return details

    calibrated = run.stage("calibrate", settings["calibrate"], do_calibrate)

    def do_evaluate() -> dict:
        from tfuq import reporting
        from tfuq.workflow import steps

        images, labels = take("test")
        result = steps.evaluate_model(out / "model.tflite", images, labels, out / "report",
                                      title=f"tfuq fit: {spec}, test images", seed=recipe.seed,
                                      progress=progress)
        result.save_arrays(out / "report" / "passes.npz")
        write_json(out / "evaluation.json", result.report)
        say(reporting.format_table(result.report))
        return {key: result.report[key] for key in (
            "images", "accuracy_all", "coverage", "selective_risk", "accuracy_accepted", "rule_text")}

    evaluated = run.stage("evaluate", settings["evaluate"], do_evaluate)

    def do_summary() -> dict:
        from tfuq.workflow import steps

        images, _ = take("test")
        seconds = steps.invoke_seconds(out / "model.tflite", images[0], threads=os.cpu_count())
        summary = device_summary(out, converted, calibrated, evaluated, seconds)
        write_json(out / "summary.json", summary)
        with atomic_output_text(out / "SUMMARY.md") as handle:
            handle.write(summary_markdown(summary))
        return {"invoke_seconds": seconds}

    run.stage("summary", settings["summary"], do_summary)
    summary = json.loads((out / "summary.json").read_text())
    summary["seconds_per_stage"] = {stage: round(run.seconds.get(stage, 0.0), 1) for stage in STAGES}
    summary["split"] = {name: int(len(index)) for name, index in parts.items()}
    summary["training"] = {k: v for k, v in trained.items() if k != "stage"}
    summary["split_record"] = {k: v for k, v in record.items() if k != "stage"}
    write_json(out / "summary.json", summary)
    return summary


def atomic_output_text(path: Path):
    from tfuq.runtime.modelfile import atomic_output

    return atomic_output(path, "w")


def device_summary(out: Path, converted: dict, calibrated: dict, evaluated: dict, invoke_seconds: float) -> dict:
    """What the model will do on a phone, a Raspberry Pi and in the browser: its size, its
    passes, its rule, the coverage and risk measured on the test images (and the bound the
    calibration guarantees), and one invoke's time on this machine."""
    from tfuq.runtime import abstain, modelfile

    _, config = modelfile.read(out / "model.tflite")
    rule = config.decision.to_dict() if config.decision is not None else abstain.DEFAULT_RULE
    size = (out / "model.tflite").stat().st_size
    guarantee = None
    if calibrated.get("feasible"):
        bound = calibrated.get("calibration", {}).get("risk_bound")
        guarantee = {"target_risk": calibrated["target_risk"], "confidence": calibrated["confidence"],
                     "risk_bound": bound}
    self_check = converted.get("self_check") or {}
    return {
        "model": "model.tflite",  # in the run's folder
        "model_bytes": size,
        "classes": len(config.labels or []),
        "passes": int(config.passes),
        "rule": rule,
        "rule_text": abstain.describe_rule(rule),
        "test_images": evaluated["images"],
        "test_accuracy_all": evaluated["accuracy_all"],
        "expected_coverage": evaluated["coverage"],
        "expected_selective_risk": evaluated["selective_risk"],
        "accuracy_accepted": evaluated["accuracy_accepted"],
        "guarantee": guarantee,
        "self_check_passed": self_check.get("passed"),
        "self_check_agreement": self_check.get("agreement"),
        "invoke_seconds_here": invoke_seconds,
    }


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def summary_lines(summary: dict, folder: str | os.PathLike = ".") -> list[str]:
    """The device summary as the lines ``tfuq fit`` prints and ``SUMMARY.md`` holds, with the
    commands for the model file in ``folder``."""
    guarantee = summary["guarantee"]
    model = str(Path(folder) / summary["model"])
    promise = (f"calibrated: selective risk <= {guarantee['target_risk']:g} with confidence "
               f"{guarantee['confidence']:g} (bound {guarantee['risk_bound']:.3f}) on images like the "
               "calibration ones" if guarantee else "no calibrated guarantee (target infeasible on the "
               "calibration images); the converter's rule applies")
    return [
        f"model      {model}: {summary['model_bytes'] / 1e6:.2f} MB, {summary['classes']} classes, "
        f"{summary['passes']} MC passes in one invoke ({summary['invoke_seconds_here'] * 1000:.1f} ms on this machine)",
        f"rule       {summary['rule_text']}",
        f"expect     on the {summary['test_images']} test images: coverage {_pct(summary['expected_coverage'])}, "
        f"error among accepted {_pct(summary['expected_selective_risk'])} "
        f"(accuracy without abstaining {_pct(summary['test_accuracy_all'])})",
        f"guarantee  {promise}",
        "on a phone, a Raspberry Pi and in the browser the same file gives the same passes, the same "
        "rule and so the same decisions:",
        f"  phone    android_demo: ./gradlew installDebug -PtfuqModel={model}",
        f'  Pi       pip install "tfuq[pi]"; tfuq predict {model} photo.jpg',
        f"  browser  tfuq serve-demo --model {model}",
    ]


def summary_markdown(summary: dict) -> str:
    return ("# What this model will do\n\n```\n" + "\n".join(summary_lines(summary)) + "\n```\n\n"
            "The test report with its plots and the gallery of refused images: [report/report.md](report/report.md).\n")
