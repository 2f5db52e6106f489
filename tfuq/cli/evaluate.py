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

from tfuq.cli._common import CliError, info, rule_from_args
from tfuq.runtime.aggregate import SCORES  # numpy only

HELP = "measure a model's predictions and abstentions on labelled images"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .tflite made by tfuq convert")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="labelled images: an .npz (x: uint8 (N, H, W, 3), y: labels) or a "
                        "dataset spec such as cifar100:test or folder:photos/")
    parser.add_argument("--ood", metavar="DATA",
                        help="out-of-distribution images, .npz or spec (labels are ignored)")
    parser.add_argument("--rule", choices=("model", "interval", "threshold"), default="model",
                        help="decision rule: the model's own (default), interval or threshold")
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


def check_args(args) -> None:
    """The numeric arguments, before anything is read."""
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be at least 1, got {args.threads}")
    if not 0 <= args.seed < 2**64:
        raise CliError(f"--seed must be in [0, 2**64), got {args.seed}")


def claim_outputs(args, outputs) -> dict:
    """Claim every output location before the long run; the staged paths by option."""
    outputs.input(args.model)
    for source in (args.data, args.ood):
        if source and Path(source).exists():
            outputs.input(source)
    staged = {}
    if args.json not in (None, "-"):
        staged["json"] = outputs.file(args.json, "--json")
    if args.save_passes is not None:
        staged["save_passes"] = outputs.file(args.save_passes, "--save-passes")
    if args.report is not None:
        staged["report"] = outputs.folder(args.report, "--report")
    return staged


def run(args) -> int:
    from tfuq import evaluation, runtime
    from tfuq.cli._outputs import Outputs, json_text

    check_args(args)
    with Outputs() as outputs:
        staged = claim_outputs(args, outputs)
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
        if "json" in staged:
            outputs.write_json(staged["json"], result.report)
        if "save_passes" in staged:
            result.save_arrays(staged["save_passes"])
        if "report" in staged:
            evaluation.write_report(result, staged["report"],
                                    title=f"{Path(args.model).name} on {Path(args.data).name}")
        outputs.commit()
    table = f"{args.model} on {args.data}\n" + evaluation.format_table(result.report)
    if args.json == "-":
        info(table)  # stdout carries the JSON
        print(json_text(result.report))
    else:
        print(table)
    for option in ("json", "save_passes"):
        if option in staged:
            info(f"wrote {getattr(args, option)}")
    if args.report:
        info(f"wrote {Path(args.report) / 'report.md'} and its plots")
    return 0
