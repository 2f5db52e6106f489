"""Choose a score threshold from labelled calibration images so that, with the confidence
asked, the error rate among accepted images (the selective risk) on new images from the same
distribution stays at or below the target, and write it into the model file as its decision
rule, so the Raspberry Pi and the phone apply the same one.

The method is Selection with Guaranteed Risk (Geifman and El-Yaniv, NeurIPS 2017): a binary
search over thresholds with a Clopper-Pearson bound and a union bound over its steps (see
tfuq.runtime.calibration.calibrate for the exact guarantee). Use images the model was not trained on. When
the target cannot be guaranteed with the images given, it says why, writes nothing and exits 2.

--within keeps a rule in front of the threshold: `interval` (the paper's rule, Z = 1) or
`default` (tfuq convert's default, the interval rule and max_probability >= 0.5). The search
then runs over the images that rule accepts and writes the combined rule; the guarantee is on
the error rate among images the combined rule accepts. A calibrated threshold alone (the
default, --within none) already refuses images whose top probability is low when the target
risk is low; --within default keeps the floor whatever the target.

An OOD guard is calibrated first on the same images (their labels are not needed for it):
the guard refuses an image whose --ood-score (default predictive_entropy of the MC mean: after
outlier exposure the best separator of foreign photos measured here, benchmarks/README.md;
a model score the model returns, such as energy, also works) is on the far side of a
threshold, an order statistic of the images' scores chosen so that, with probability at least
1 - --ood-delta, the guard alone refuses at most --ood-alpha of the images of this
distribution (default 5% with 90%). The guard is the first part of the rule written, and the
risk threshold is searched among the images it accepts, so the risk guarantee holds for the
whole rule. --no-ood-guard leaves it out.

example:
  tfuq calibrate model.tflite --data cal.npz --target-risk 0.05 --confidence 0.9
  tfuq calibrate model.tflite --data cal.npz --target-risk 0.05 --within default
  tfuq calibrate model.tflite --data cal.npz --target-risk 0.02 --score mutual_information \\
      --dry-run --json -
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfuq._files import shown
from tfuq.cli._common import CliError, info
from tfuq.cli.evaluate import check_args as check_common_args
from tfuq.cli.evaluate import load_images
from tfuq.runtime import abstain, decision  # numpy only
from tfuq.runtime.aggregate import SCORES
from tfuq.runtime.config import DecisionRule

WITHIN = {"none": None, "interval": decision.INTERVAL_RULE, "default": decision.DEFAULT_RULE}
HELP = "calibrate an abstention threshold with a risk guarantee and store it in the model"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .tflite made by tfuq convert (rewritten in place)")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="labelled calibration images: an .npz (x: uint8 (N, H, W, 3), "
                        "y: labels) or a dataset spec such as cifar100:train[45000:]")
    parser.add_argument("--target-risk", type=float, required=True,
                        help="selective risk (error rate among accepted images) not to exceed")
    parser.add_argument("--confidence", type=float, default=0.9,
                        help="probability that the guarantee holds, 1 - delta (default 0.9)")
    parser.add_argument("--score", choices=SCORES, default="max_probability",
                        help="uncertainty score to threshold (default max_probability)")
    parser.add_argument("--within", choices=tuple(WITHIN), default="none",
                        help="a rule the threshold is combined with: none (default), interval "
                        "(Z = 1) or default (interval and max_probability >= 0.5)")
    parser.add_argument("--ood-alpha", type=float, default=0.05,
                        help="largest share of in-distribution images the OOD guard may refuse (default 0.05)")
    parser.add_argument("--ood-delta", type=float, default=0.1,
                        help="probability that the OOD guard refuses more than --ood-alpha (default 0.1)")
    parser.add_argument("--ood-score", metavar="SCORE",
                        help=f"what the OOD guard reads: a score of the passes ({', '.join(SCORES)}) or "
                        "one the model returns (tfuq inspect lists them) (default predictive_entropy)")
    parser.add_argument("--no-ood-guard", action="store_true", help="no OOD guard")
    parser.add_argument("--seed", type=int, default=0, help="MC run seed (default 0)")
    parser.add_argument("--threads", type=int, help="interpreter threads")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use N images (a seeded draw, in the original order)")
    parser.add_argument("--dry-run", action="store_true", help="compute and print, do not write")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' or /dev/stdout prints it)")


def check_args(args) -> None:
    """Every argument, before the model or the data is read."""
    # Without --ood-score the guard reads the MC predictive entropy, and is left out (with a
    # line saying why) when the images are too few for its guarantee; asked for, it must be met.
    args.ood_score_given = args.ood_score is not None
    args.ood_score = args.ood_score or "predictive_entropy"
    for name, value in (("--target-risk", args.target_risk), ("--confidence", args.confidence),
                        ("--ood-alpha", args.ood_alpha), ("--ood-delta", args.ood_delta)):
        if not 0.0 < value < 1.0:
            raise CliError(f"{name} must be strictly between 0 and 1, got {value}")
    check_common_args(args)  # --limit, --threads, --seed as evaluate checks them


def run(args) -> int:
    from tfuq import runtime
    from tfuq.cli._outputs import Outputs, json_text
    from tfuq.runtime import budget, modelfile

    check_args(args)
    with Outputs() as outputs:
        # Check: every location before the long run (the model is rewritten in place).
        outputs.input(args.model, "model")
        if Path(args.data).exists():
            outputs.input(args.data, "--data")
        staged_json = outputs.file(args.json, "--json") if args.json not in (None, "-") else None
        staged_model = None if args.dry_run else outputs.file(args.model, "model", in_place=True)
        model = runtime.load(args.model, threads=args.threads)
        flatbuffer, config = model.flatbuffer, model.config
        images, labels = load_images(args.data, args.limit, model, True, "calibration")
        if labels.max() >= model.classes:
            raise CliError(f"{args.data}: label {labels.max()} is out of range for {model.classes} classes")
        budget.check_run(args.model, model.passes, len(images), model.classes)
        # Work.
        if not args.no_ood_guard and args.ood_score not in SCORES and args.ood_score not in model.score_names:
            raise CliError(f"--ood-score {shown(args.ood_score)} is neither a score of the passes "
                           f"({', '.join(SCORES)}) nor one the model returns "
                           f"({', '.join(model.score_names) or 'it returns none'})")
        info(f"calibrating {shown(args.model)} on {len(images)} images, {model.passes} passes, seed {args.seed}")
        from tfuq.workflow import steps

        result, guard = steps.calibration_of(
            model, images, labels, target_risk=args.target_risk, confidence=args.confidence,
            score=args.score, within=WITHIN[args.within], ood_guard=not args.no_ood_guard, ood_score=args.ood_score,
            guard_optional=not args.ood_score_given,
            ood_alpha=args.ood_alpha, ood_delta=args.ood_delta, seed=args.seed, progress=True, say=info,
        )
        payload = {
            "model": args.model,
            "data": args.data,
            "seed": args.seed,
            "feasible": result.feasible,
            "message": result.message,
            "rule": result.to_rule() if result.feasible else None,
            "ood_guard": None if guard is None else guard.rule,
            "written": result.feasible and not args.dry_run,
        }
        # Commit: the JSON, then the model. Infeasible: nothing is written (exit 2); the
        # JSON still goes to stdout with --json -.
        if not result.feasible:
            if args.json == "-":
                print(json_text(payload))
            raise abstain.InfeasibleError(result.message)
        if staged_model is not None:
            calibrated = dataclasses.replace(config, decision=DecisionRule.from_dict(payload["rule"]))
            outputs.write_bytes(staged_model, modelfile.pack(flatbuffer, calibrated))
        if staged_json is not None:
            outputs.write_json(staged_json, payload)
        outputs.commit()
    if args.json == "-":
        print(json_text(payload))
    rule = payload["rule"]
    if args.json == "-":
        info(result.message)  # stdout carries the JSON
    else:
        print(result.message)
    info(("would write" if args.dry_run else "wrote") + f" decision {abstain.describe_rule(rule)} "
         f"into {shown(args.model)}")
    return 0
