"""Run a tfuq model on labelled images and report how good its predict-or-abstain decisions
are: micro-F1 of the original model and on accepted images, the share ignored and how much of
it would have been wrong (the seed paper's columns), coverage, selective risk, AURC, AUROC and
FPR95 (errors vs correct, and test vs out-of-distribution with --ood), ECE and Brier. With
--ood it prints two FPR95s, named apart: "FPR95 OOD", tfuq's, is the share of test images
refused when 95% of the OOD images are (OOD as the positive class); "OOD kept@95", the OOD
literature's (ODIN, OpenOOD), is the share of OOD images kept when 95% of the test images are.
Every out-of-distribution score the model returns beside its probabilities (energy, when
converted with --scores energy) is reported too, and a rule with an OOD guard decides with it.

The decision rule is the one the model carries (--rule model, the default), or one given
here: --rule interval --conf-factor Z, or --rule threshold --score S --threshold T.

example:
  tfuq evaluate model.tflite --data test.npz --rule interval --conf-factor 1.0
  tfuq evaluate model.tflite --data cifar100:test --ood svhn.npz --json report.json \\
      --save-passes passes.npz --report report/
  tfuq evaluate model.tflite --data test.npz --rule threshold --score mutual_information \\
      --threshold 0.05 --limit 500 --threads 4

With --runner the same evaluation runs as an Apache Beam pipeline (pip install 'tfuq[beam]'):
one record per image is written to --records (sharded JSONL or Parquet), then merged into
the same report. Data may then also be npz:<glob> shards, tfrecord:<glob>, files:<glob> and
cifar100_corrupted/*:test (all 75 CIFAR-100-C sets, with tables per severity and corruption).
  tfuq evaluate model.tflite --data test.npz --runner direct --json r.json   # records in a temp folder
  tfuq evaluate model.tflite --data test.npz --runner direct --records out/ --json r.json
  tfuq evaluate model.tflite --data 'cifar100_corrupted/*:test' --runner flink \\
      --records /shared/c100c/ --pipeline-options='--flink_master=host:8081 --environment_type=PROCESS ...'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tfuq._files import shown
from tfuq.cli._common import RULE_CHOICES, RULE_HELP, CliError, info, rule_from_args
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
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON ('-' or /dev/stdout prints it)")
    parser.add_argument("--save-passes", metavar="NPZ",
                        help="save MC probabilities, mean, std, scores, decisions and labels")
    parser.add_argument("--report", metavar="DIR", help="write plots and report.md into DIR")
    parser.add_argument("--seeding", choices=("shared", "per-image"), default="shared",
                        help="shared: every image gets the run seed's masks (default); "
                        "per-image: a seed from the run seed and the image's pixels")
    beam = parser.add_argument_group("Apache Beam (batch inference on one machine or a cluster)")
    beam.add_argument("--runner", choices=("direct", "flink", "spark", "dataflow"),
                      help="run as a Beam pipeline on this runner (default: one process here)")
    beam.add_argument("--pipeline-options", default="", metavar="FLAGS",
                      help="more Beam pipeline flags, one string, e.g. "
                      "'--direct_num_workers=2 --direct_running_mode=multi_processing'")
    beam.add_argument("--records", metavar="DIR",
                      help="with --runner: folder for the per-image records (required on a cluster; "
                      "with --runner direct and no --records they go to a temporary folder, "
                      "deleted once merged into the report)")
    beam.add_argument("--records-format", choices=("jsonl", "parquet"), default="jsonl",
                      help="with --runner: record shards as JSONL (default) or Parquet")
    beam.add_argument("--batch-size", type=int, metavar="N",
                      help="with --runner: images per RunInference batch (results do not depend on it)")
    beam.add_argument("--data-dir", metavar="DIR",
                      help="with --runner: the tensorflow-datasets folder holding prepared "
                      "cifar100 / cifar100_corrupted TFRecords (default $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets)")


def load_images(source: str, limit: int | None, model, need_labels: bool, what: str):
    """Images (brought to the model's input size by its photo rule) and labels from an
    ``.npz`` path or a dataset spec.

    ``source`` is a path to an existing ``.npz``, or a spec of :func:`tfuq.data.load_spec`
    such as ``cifar100:test`` or ``folder:photos/``. ``limit`` keeps a seeded draw of that
    many images, in their original order.
    """
    from tfuq import data
    from tfuq.runtime import photo

    spec = f"npz:{source}" if Path(source).is_file() or ":" not in source else source
    loaded = data.load_spec(spec, limit=limit, size=model.input_shape[:2],
                            photo_rule=photo.rule_of(model.config))
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
    outputs.input(args.model, "model")
    for option, source in (("--data", args.data), ("--ood", args.ood)):
        if source and Path(source).exists():
            outputs.input(source, option)
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
    from tfuq.cli._outputs import Outputs
    from tfuq.runtime import budget

    check_args(args)
    if args.runner:
        return run_beam(args)
    for option in ("records", "batch_size", "data_dir"):
        if getattr(args, option) is not None:
            raise CliError(f"--{option.replace('_', '-')} needs --runner")
    with Outputs() as outputs:
        staged = claim_outputs(args, outputs)
        model = runtime.load(args.model, threads=args.threads)
        rule = rule_from_args(args, model.config)
        images, labels = load_images(args.data, args.limit, model, True, "evaluate")
        ood = None
        if args.ood:
            ood, _ = load_images(args.ood, args.limit, model, False, "--ood")
        if labels.max() >= model.classes:
            raise CliError(f"{args.data}: label {labels.max()} is out of range for {model.classes} classes")
        budget.check_run(args.model, model.passes, len(images) + (0 if ood is None else len(ood)),
                         model.classes)
        info(f"evaluating {shown(args.model)} on {len(images)} images"
             + (f" and {len(ood)} OOD images" if ood is not None else "")
             + f", {model.passes} passes, seed {args.seed}")
        result = evaluation.evaluate(
            model, images, labels, rule, ood_images=ood, seed=args.seed, score=args.score,
            progress=True, seeding=args.seeding,
        )
        result.report.update({"data": args.data, "ood": args.ood})
        _commit(args, result, staged, outputs, images, model.labels)
    return _show(args, result, staged)


def _commit(args, result, staged: dict, outputs, images=None, class_names=None) -> None:
    """Write the staged outputs, then move them all into place (or none of them).

    ``images`` (uint8, the evaluated ones) give the report its gallery of refused and wrongly
    accepted images; the Beam path has records, not images, and goes without."""
    from tfuq import reporting

    if "json" in staged:
        outputs.write_json(staged["json"], result.report)
    if "save_passes" in staged:
        result.save_arrays(staged["save_passes"])
    if "report" in staged:
        reporting.write_report(result, staged["report"],
                               title=f"{Path(args.model).name} on {Path(args.data).name}",
                               images=images, class_names=class_names)
    outputs.commit()


def _show(args, result, staged: dict, extra_text: str = "") -> int:
    from tfuq import reporting
    from tfuq.cli._outputs import json_text

    table = f"{shown(args.model)} on {shown(args.data)}\n" + reporting.format_table(result.report)
    if extra_text:
        table += "\n\n" + extra_text
    if args.json == "-":
        info(table)  # stdout carries the JSON
        print(json_text(result.report))
    else:
        print(table)
    for option in ("json", "save_passes"):
        if option in staged:
            info(f"wrote {shown(getattr(args, option))}")
    if args.report:
        info(f"wrote {shown(Path(args.report) / 'report.md')} and its plots")
    return 0


def run_beam(args) -> int:
    """``tfuq evaluate --runner``: the Beam pipeline, then the records merged into the report."""
    from tfuq.cli._common import require

    require("apache_beam", "beam", "evaluate --runner")
    from tfuq.beam import pipeline
    from tfuq.beam.sources import SourceError
    from tfuq.cli._outputs import Outputs

    if args.limit is not None:
        raise CliError("--limit is not available with --runner; make a smaller .npz instead")
    if args.records is None and args.runner != "direct":
        raise CliError(f"--runner {args.runner} needs --records DIR, a folder its workers can write")
    if args.batch_size is not None and args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}")
    with Outputs() as outputs, tempfile.TemporaryDirectory(prefix="tfuq-records-") as scratch:
        staged = claim_outputs(args, outputs)
        # Without --records the report is the product; the records live only until merged.
        records = args.records if args.records is not None else os.path.join(scratch, "records")
        result, extra = _run_pipeline(args, pipeline, SourceError, records)
        _commit(args, result, staged, outputs)
    return _show(args, result, staged, extra)


def _run_pipeline(args, pipeline, SourceError, records_dir: str):
    """The Beam pipeline's records (written to ``records_dir``) merged into an evaluation
    result, and the extra tables."""
    import shlex

    from tfuq.runtime import photo

    model = pipeline.load_model(args.model, args.threads)
    rule = rule_from_args(args, model.config)
    size, photo_rule = model.input_shape[:2], photo.rule_of(model.config)
    try:
        options = pipeline.pipeline_options(args.runner, shlex.split(args.pipeline_options))
        data = pipeline.sources(args.data, size, "data", args.data_dir, photo_rule=photo_rule)
        if args.ood:
            data += pipeline.sources(args.ood, size, "ood", args.data_dir, labelled=False,
                                     photo_rule=photo_rule)
    except SourceError as error:
        raise CliError(str(error)) from None
    if args.ood and len(data) > 2:
        raise CliError("--ood takes one data set")
    corrupted = len(data) > 1 and not args.ood  # cifar100_corrupted/*: the headline pools them
    info(f"evaluating {args.model} on {args.data} with the Beam {pipeline.RUNNERS[args.runner]}, "
         f"{model.passes} passes, seed {args.seed} ({args.seeding}); records in {records_dir}")
    try:
        outcome = pipeline.run(
            args.model, data, records_dir, fmt=args.records_format, options=options, rule=rule,
            seed=args.seed, seeding=args.seeding, threads=args.threads, batch_size=args.batch_size,
        )
    except SourceError as error:
        raise CliError(str(error)) from None
    records = pipeline.read_records(outcome["records"])
    extra = ""
    if corrupted:
        tables = pipeline.corruption_tables(records, rule, args.score, passes=model.passes)
        pooled = [{**r, "set": "data"} for r in records]
        pooled.sort(key=lambda r: (r["order"], r["key"]))
        result = pipeline.merge(pooled, rule, score=args.score, passes=model.passes)
        result.report.update(tables)
        extra = pipeline.format_tables(tables)
    else:
        result = pipeline.merge(records, rule, "data", "ood" if args.ood else None,
                                score=args.score, passes=model.passes)
    labels_max = int(result.labels.max())
    if labels_max >= model.classes:
        raise CliError(f"{args.data}: label {labels_max} is out of range for {model.classes} classes")
    result.report.update({"data": args.data, "ood": args.ood, "seed": int(args.seed),
                          "seeding": args.seeding, "model": args.model, "runner": args.runner,
                          "records": args.records})
    return result, extra
