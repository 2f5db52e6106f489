"""The offline default, end to end in about two minutes on two cores, with no network:
`tfuq fit`'s workflow on scikit-learn's handwritten digits (split per class, a small
MC-dropout CNN, a full-integer tfuq model with 30 passes per invoke, an abstention threshold
calibrated with a risk guarantee, the test report with its gallery of refused images, what
the model will do on a phone, a Pi and in the browser), then clean and corrupted test images.
Prints the seed paper's table plus ours.

example:
  tfuq demo
  tfuq demo --out /tmp/demo --epochs 10 --json -
  tfuq demo --out /tmp/oe --featureless 150      # outlier exposure on 150 featureless images
"""

from __future__ import annotations

from tfuq.cli._common import CliError, info, quiet_tensorflow, require

HELP = "run the offline default experiment (digits, int8, abstention, report)"


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="tfuq-demo", help="folder for the artifacts (default: ./tfuq-demo)")
    parser.add_argument("--epochs", type=int, default=25, help="most training epochs (early stopping may end sooner)")
    parser.add_argument("--passes", type=int, default=30, help="MC passes per invoke (default 30)")
    parser.add_argument("--target-risk", type=float, default=0.03, help="selective risk to guarantee (default 0.03)")
    parser.add_argument("--confidence", type=float, default=0.9, help="confidence of the guarantee (default 0.9)")
    parser.add_argument("--featureless", type=int, metavar="N",
                        help="outlier exposure on N generated featureless images (flat colours, gradients, "
                        "blends), as --outliers featureless:N in tfuq train (default 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON ('-' or /dev/stdout prints it)")


def check_args(args) -> None:
    """Every argument, before TensorFlow loads or anything trains."""
    if args.epochs < 1 or args.passes < 1:
        raise CliError("--epochs and --passes must be at least 1")
    from tfuq.runtime.config import MAX_PASSES as _MAX_PASSES

    if args.passes > _MAX_PASSES:  # the model file's limit, before training
        raise CliError(f"--passes must be at most {_MAX_PASSES}, got {args.passes}")
    for name, value in (("--target-risk", args.target_risk), ("--confidence", args.confidence)):
        if not 0.0 < value < 1.0:
            raise CliError(f"{name} must be strictly between 0 and 1, got {value}")
    if not 0 <= args.seed < 2**32:
        raise CliError(f"--seed must be in [0, 2**32), got {args.seed}")
    from tfuq.data.featureless import MAX_COUNT

    if args.featureless is not None and not 0 <= args.featureless <= MAX_COUNT:
        raise CliError(f"--featureless must be in [0, {MAX_COUNT:,}], got {args.featureless}")


def run(args) -> int:
    from tfuq.cli._outputs import Outputs, json_text

    check_args(args)
    require("tensorflow", "convert", "demo")
    require("sklearn", "convert", "demo")
    with Outputs() as outputs:
        # Everything goes into a staged folder, put in place (model.tflite last) at the end.
        staged = outputs.folder(args.out, "--out")
        staged_json = outputs.file(args.json, "--json") if args.json not in (None, "-") else None
        quiet_tensorflow()
        from tfuq import demo

        featureless = {} if args.featureless is None else {"featureless": args.featureless}
        summary = demo.run(staged, epochs=args.epochs, passes=args.passes, target_risk=args.target_risk,
                           confidence=args.confidence, seed=args.seed, say=info, **featureless)
        payload = {k: v for k, v in summary.items() if k != "table"}
        if staged_json is not None:
            outputs.write_json(staged_json, payload)
        outputs.commit()
    print(f"\nscikit-learn digits, {summary['data']['test']} test images; float accuracy "
          f"{summary['float_accuracy']:.3f}, int8 accuracy {summary['int8_accuracy']:.3f} "
          f"(Keras vs TFLite top-1 agreement {summary['self_check']['agreement']:.1%})\n")
    print("In distribution, OOD = the same images corrupted at severity 5:")
    print(summary["table"])
    print("\nAgainst corruption severity (interval rule; calibrated threshold in the last two columns):")
    print(demo.severity_table(summary["severity"]))
    calibration = summary["calibration"]
    if "risk_bound" in calibration:
        print(f"\ncalibrated rule written into the model: max_probability threshold, risk bound "
              f"{calibration['risk_bound']:.3f} at confidence {calibration['confidence']:.0%}, "
              f"coverage {calibration['coverage']:.1%} on the calibration images")
    else:
        print(f"\nno calibrated rule: {calibration['message']}")
    from tfuq.workflow import fit

    print("\n" + "\n".join(fit.summary_lines(summary, args.out)))
    times = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in summary["seconds_per_stage"].items())
    print(f"\nartifacts in {args.out}/: model.keras, model.tflite, split.json, summary.json, SUMMARY.md, "
          f"report/report.md (+ PNGs, the gallery, passes.npz); {summary['seconds']:.0f} s ({times})")
    if args.json == "-":
        print(json_text(payload))
    return 0
