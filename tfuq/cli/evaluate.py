"""Run a tfuq model on labelled images and report how good its predict-or-abstain decisions
are: micro-F1 of the original model and on accepted images, the share ignored and how much of
it would have been wrong (the seed paper's columns), coverage, selective risk, AURC, AUROC and
FPR95 (errors vs correct, and test vs out-of-distribution with --ood), ECE and Brier.

The decision rule is the one the model carries (--rule model, the default), or one given
here: --rule interval --conf-factor Z, or --rule threshold --score S --threshold T.

example:
  tfuq evaluate model.tflite --data test.npz --rule interval --conf-factor 1.0
  tfuq evaluate model.tflite --data cifar100:test --ood svhn.npz --json report.json \\
      --save-passes passes.npz --report report/
  tfuq evaluate model.tflite --data test.npz --rule threshold --score mutual_information \\
      --threshold 0.05 --limit 500 --threads 4
"""

from __future__ import annotations

from pathlib import Path

from tfuq.cli._common import RULE_CHOICES, RULE_HELP, CliError, emit_json, info, rule_from_args
from tfuq.runtime.aggregate import SCORES  # numpy only

HELP = "measure a model's predictions and abstentions on labelled images"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .tflite made by tfuq convert")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="labelled images: an .npz (x: uint8 (N, H, W, 3), y: labels) or a "
                        "dataset spec such as cifar100:test or folder:photos/")
    parser.add_argument("--ood", metavar="DATA",
                        help="out-of-distribution images, .npz or spec (labels are ignored)")
    parser.add_argument("--rule", choices=RULE_CHOICES, default="model", help=RULE_HELP)
    parser.add_argument("--conf-factor", type=float,
                        help="Z of the interval rule mean +/- Z * std (default 1.0)")
    parser.add_argument("--score", choices=SCORES,
                        help="threshold rule score; also the headline score for AURC/AUROC/FPR95")
    parser.add_argument("--threshold", type=float, help="threshold rule threshold")
    parser.add_argument("--seed", type=int, default=0, help="MC run seed (default 0)")
    parser.add_argument("--threads", type=int, help="interpreter threads")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use N images of each set (a seeded draw, in the original order)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON ('-' for stdout)")
    parser.add_argument("--save-passes", metavar="NPZ",
                        help="save MC probabilities, mean, std, scores, decisions and labels")
    parser.add_argument("--report", metavar="DIR", help="write plots and report.md into DIR")


def load_images(source: str, limit: int | None, size, need_labels: bool, what: str):
    """Images (resized to ``size``) and labels from an ``.npz`` path or a dataset spec.

    ``source`` is a path to an existing ``.npz``, or a spec of :func:`tfuq.data.load_spec`
    such as ``cifar100:test`` or ``folder:photos/``. ``limit`` keeps a seeded draw of that
    many images, in their original order.
    """
    from tfuq import data

    spec = f"npz:{source}" if Path(source).is_file() or ":" not in source else source
    loaded = data.load_spec(spec, limit=limit, size=size)
    if need_labels and loaded.labels is None:
        raise CliError(f"{source} has no labels (array 'y'); {what} needs them")
    return loaded.images, loaded.labels


def check_outputs(args) -> None:
    """Fail before the long run when an output cannot be written."""
    for option in ("json", "save_passes"):
        path = getattr(args, option)
        if path not in (None, "-") and not Path(path).resolve().parent.is_dir():
            raise CliError(f"--{option.replace('_', '-')}: folder does not exist: {Path(path).parent}")


def run(args) -> int:
    from tfuq import evaluation, runtime

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    check_outputs(args)
    model = runtime.load(args.model, threads=args.threads)
    rule = rule_from_args(args, model.config)
    size = model.input_shape[:2]
    images, labels = load_images(args.data, args.limit, size, True, "evaluate")
    ood = None
    if args.ood:
        ood, _ = load_images(args.ood, args.limit, size, False, "--ood")
    if labels.max() >= model.classes:
        raise CliError(f"{args.data}: label {labels.max()} is out of range for {model.classes} classes")
    info(f"evaluating {args.model} on {len(images)} images"
         + (f" and {len(ood)} OOD images" if ood is not None else "")
         + f", {model.passes} passes, seed {args.seed}")
    result = evaluation.evaluate(
        model, images, labels, rule, ood_images=ood, seed=args.seed, score=args.score,
        progress=True,
    )
    result.report.update({"data": args.data, "ood": args.ood})
    table = f"{args.model} on {args.data}\n" + evaluation.format_table(result.report)
    if args.json == "-":
        info(table)  # stdout carries the JSON
    else:
        print(table)
    if args.json:
        emit_json(result.report, args.json)
    if args.save_passes:
        result.save_arrays(args.save_passes)
        info(f"wrote {args.save_passes}")
    if args.report:
        path = evaluation.write_report(result, args.report, title=f"{Path(args.model).name} on {Path(args.data).name}")
        info(f"wrote {path} and its plots")
    return 0
