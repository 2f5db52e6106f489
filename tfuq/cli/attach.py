"""Give a trained classifier without dropout an MC-dropout head, ready for `tfuq convert`.

Puts a tfuq.MCDropout before the model's final Dense and fine-tunes only that Dense on your
labelled images with the dropout in place (the layers before it run once over the data, so
this takes seconds to minutes, not a training run). Reports validation accuracy of the
original model and of the MC mean after. If the model's preprocessing happened outside it,
state it (--input-range/--mean/--std): it is folded in, and the written model takes raw pixels.

example:
  tfuq attach model.keras --rate 0.2 --data train.npz --out mc.keras --epochs 5
  tfuq attach keras_io.keras --rate 0.2 --data train.npz --out mc.keras --input-range=-1,1 --json -
  tfuq attach model.keras --rate 0.2 --data train.npz --out oe.keras --outliers other.npz --outliers featureless:500
  tfuq convert mc.keras --out mc.tflite --representative train.npz --add-softmax
"""

from __future__ import annotations

from pathlib import Path

from tfuq.cli._byo import add_input_arguments, check_model_path, input_size, preprocessing
from tfuq.cli._common import (
    CliError,
    add_outliers_option,
    emit_json,
    info,
    quiet_tensorflow,
    read_outliers,
    require,
)

HELP = "add an MC-dropout head to a trained classifier and fine-tune the head"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="trained Keras classifier (.keras or .h5) ending in a Dense layer")
    parser.add_argument("--rate", type=float, required=True, help="MC-dropout rate, in (0, 1); 0.2 is a common choice")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="labelled training images: an .npz (x: uint8 (N, H, W, 3), y: labels), npz:PATH or folder:PATH/")
    parser.add_argument("--out", required=True, help="where to write the model (.keras)")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs of the final Dense (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--val-split", type=float, default=0.1, help="share of each class held out to report accuracy and keep the best epoch (default 0.1; 0: none)")
    parser.add_argument("--passes", type=int, default=30, help="MC passes for the validation accuracy after (default 30)")
    parser.add_argument("--limit", type=int, metavar="N", help="use at most N images (a seeded draw over all classes)")
    add_input_arguments(parser)
    add_outliers_option(parser)
    parser.add_argument("--outlier-weight", type=float, default=0.5, metavar="W",
                        help="with --outliers: weight of the outlier term, in (0, 100] (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, dropout and shuffling (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON ('-' or /dev/stdout prints it)")


def _spec(text: str) -> str:
    # A bare path to an .npz is shorthand for npz:PATH, as in `tfuq train`.
    if text.endswith(".npz") and not text.startswith("npz:") and ":" not in text.partition("/")[0]:
        return f"npz:{text}"
    return text


def run(args) -> int:
    require("tensorflow", "convert", "attach")
    out = Path(args.out)
    if out.suffix != ".keras":
        raise CliError(f"--out must end in .keras, got {out.name}")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CliError(f"output folder does not exist: {out.parent}")
    if not 0.0 < args.rate < 1.0:
        raise CliError(f"--rate must be in (0, 1), got {args.rate}")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--passes", args.passes)):
        if value < 1:
            raise CliError(f"{flag} must be at least 1, got {value}")
    if not 0.0 <= args.val_split < 1.0:
        raise CliError(f"--val-split must be in [0, 1), got {args.val_split}")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    check_model_path(args.model)
    size = input_size(args.input_size)
    from tfuq import data

    loaded = data.load_spec(_spec(args.data), limit=args.limit, seed=args.seed)
    if loaded.labels is None:
        raise CliError(f"{args.data} has no labels (an .npz needs an array y)")
    if not 0.0 < args.outlier_weight <= 100.0:
        raise CliError(f"--outlier-weight must be in (0, 100], got {args.outlier_weight}")
    # at the training images' size; attach brings both to the model's input
    outliers = None if not args.outliers else read_outliers(
        args.outliers, loaded.images.shape[1:3], args.seed, info)
    quiet_tensorflow()
    from tfuq.conversion import convert
    from tfuq.modeling import attach
    from tfuq.training import train

    stated = preprocessing(args)
    say = (lambda message: None) if args.no_progress else info
    info(f"loading {args.model}")
    model = convert.load_keras_model(args.model)
    result = attach.attach(
        model, loaded.images, loaded.labels, rate=args.rate, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        validation_split=args.val_split, preprocessing=stated, input_size=size,
        passes=args.passes, seed=args.seed, progress=say, outliers=outliers,
        outlier_weight=args.outlier_weight,
    )
    train.save_model(result.model, out)
    for note in result.notes:
        info(f"note: {note}")
    report = {
        "out": str(out),
        "classifier": result.classifier,
        "rate": args.rate,
        "epochs_run": len(next(iter(result.history.values()), [])),
        "train_samples": len(loaded.labels) - result.validation_samples,
        "validation_samples": result.validation_samples,
        "accuracy_before": result.accuracy_before,
        "accuracy_after_mc_mean": result.accuracy_after,
        "passes": result.passes,
        "seconds": round(result.seconds, 1),
        "history": result.history,
        "notes": result.notes,
        **({"outliers": list(args.outliers), "outlier_weight": args.outlier_weight} if args.outliers else {}),
    }
    compared = ""
    if result.accuracy_before is not None:
        compared = (f"; validation accuracy {result.accuracy_before:.3f} before, "
                    f"{result.accuracy_after:.3f} after (MC mean of {result.passes} passes)")
    info(f"wrote {out}: MCDropout({args.rate:g}) before {result.classifier!r}, "
         f"{report['epochs_run']} epochs in {result.seconds:.0f} s{compared}")
    if args.json:
        emit_json(report, args.json)
    return 0
