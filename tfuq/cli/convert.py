"""Convert a Keras classifier with MC dropout to one full-integer TFLite file.

The model is a .keras or .h5 file, functional or Sequential (a backbone model inside is fine).
Its tfuq.MCDropout layers sample; a model without any has its Keras Dropout and
SpatialDropout layers sample instead (--mc-dropout and --mc-layers choose). Preprocessing done
outside the model is stated with --input-range/--mean/--std and folded in; a logits output
gets --add-softmax.

The file takes uint8 RGB pixels and one 0/1 mask per MCDropout layer, returns all MC passes
in one invoke, and carries its own configuration (labels, passes, masks, seed scheme,
decision rule). After conversion a self-check compares Keras and TFLite on held-out images
with the same masks. It gates the decision tfuq makes, the MC-mean top-1: the share of images
whose int8 MC-mean top-1 is Keras' MC-mean top-1 (for models of 200+ classes, one of Keras'
top k = min(5, classes // 100), so near-ties between similar classes do not fail it); when the
.npz has labels y, int8 accuracy must also be within 5 points of Keras'. It reports single-pass
agreement and top-5 overlap too. The command exits 1 when the check fails.

example:
  tfuq convert model.keras --out model.tflite --passes 30 --representative data.npz
  tfuq convert keras_io.keras --out model.tflite --representative data.npz \
      --mc-dropout dropout --input-range=-1,1 --add-softmax
  tfuq convert model.keras --out model.tflite --recipe converters/resnet50.toml --json -
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tfuq._files import check_input
from tfuq.cli._byo import add_input_arguments, check_model_path, input_size, preprocessing
from tfuq.cli._common import EXIT_CHECK_FAILED, CliError, info, quiet_tensorflow, require
from tfuq.runtime.config import MAX_PASSES

HELP = "convert a Keras classifier with (MC) dropout to a full-integer tfuq .tflite"

# Options a recipe may set; command-line flags given explicitly win over the recipe.
DEFAULTS = {
    "passes": 30,
    "mode": "masked",
    "calibration_samples": 200,
    "check_samples": 50,
    "min_agreement": 0.9,
    "bias_correction": 0,
}


def add_arguments(parser) -> None:
    parser.add_argument("model", help="Keras model file (.keras or .h5) with tfuq.MCDropout or Keras dropout layers")
    parser.add_argument("--out", required=True, help="where to write the .tflite")
    parser.add_argument(
        "--representative", required=True, metavar="NPZ",
        help=".npz with x: uint8 (N, H, W, 3) images, brought to the model input by the photo "
             "rule (centre crop, bilinear) when their size differs",
    )
    parser.add_argument("--recipe", metavar="TOML", help="conversion recipe, e.g. converters/resnet50.toml")
    parser.add_argument("--passes", type=int, help=f"MC passes per invoke (default {DEFAULTS['passes']})")
    parser.add_argument("--mode", choices=("masked", "in-graph", "deterministic"), help="masked (default): masks as inputs, one invoke; in-graph: the paper's RANDOM_UNIFORM form, one invoke per pass; deterministic: MCDropout off, the one-pass baseline")
    parser.add_argument("--calibration-samples", type=int, help=f"images for int8 calibration (default {DEFAULTS['calibration_samples']})")
    parser.add_argument(
        "--bias-correction", type=int, metavar="N",
        help="after calibration, correct every layer's int8 bias for its mean error against the float "
        "model on N calibration images (0: off, the default; 32 brought a fine-tuned Lite0 at 224 from "
        "0.9 points below float to equal)",
    )
    parser.add_argument("--check-samples", type=int, help=f"held-out images for the self-check, 0 skips it (default {DEFAULTS['check_samples']})")
    parser.add_argument("--min-agreement", type=float, help=f"self-check threshold on Keras/TFLite MC-mean top-1 agreement (near-ties allowed for 200+ classes; default {DEFAULTS['min_agreement']})")
    parser.add_argument("--labels", metavar="TXT", help="class names, one per line (default: the names stored in the .keras by tfuq train/pretrained, else those in the .npz, else class_0 ...)")
    parser.add_argument(
        "--mc-dropout", choices=("auto", "dropout", "mcdropout"), default="auto",
        help="which dropout layers sample: auto (default) = the tfuq.MCDropout layers, or every Keras "
        "Dropout/SpatialDropout when there is none; dropout = both; mcdropout = tfuq.MCDropout only",
    )
    parser.add_argument("--mc-layers", metavar="NAMES", help="comma-separated names of the Keras dropout layers that sample (instead of --mc-dropout)")
    add_input_arguments(parser)
    parser.add_argument(
        "--scores", nargs="+", choices=("energy",), metavar="NAME",
        help="out-of-distribution scores the masked graph returns beside the probabilities: energy "
        "(logsumexp of the MC-mean logits, a few operations on the passes' logits; tfuq calibrate "
        "--ood-score energy can guard on it). Default none: on the models measured here the MC "
        "predictive entropy, computed from the passes, separated foreign photos better",
    )
    parser.add_argument("--add-softmax", action="store_true", help="the model outputs logits: append a softmax (one logit z: two classes [1 - sigmoid(z), sigmoid(z)])")
    parser.add_argument("--json", metavar="PATH", help="write the conversion report as JSON ('-' or /dev/stdout prints it)")


def load_recipe(path: str | None) -> dict:
    """Read a conversion recipe; unknown keys are an error, so typos do not pass silently."""
    if path is None:
        return {}
    check_input(path, "recipe")  # a FIFO would block
    try:
        with open(path, "rb") as handle:
            recipe = tomllib.load(handle)
    except FileNotFoundError:
        raise CliError(f"recipe not found: {path}") from None
    except OSError as error:  # a folder, no permission
        raise CliError(f"cannot read recipe {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise CliError(f"recipe {path} is not valid TOML: {error}") from None
    options = recipe.get("convert", {})
    unknown = set(options) - set(DEFAULTS) - {"decision"}
    if unknown:
        raise CliError(f"recipe {path}: unknown option(s) {', '.join(sorted(unknown))}")
    return options


def check_options(options: dict) -> None:
    """The conversion options (flags over recipe over defaults), before any work."""
    import math

    for key, least in (("passes", 1), ("calibration_samples", 1), ("check_samples", 0), ("bias_correction", 0)):
        value = options[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            flag = "--" + key.replace("_", "-")
            raise CliError(f"{flag} must be an integer of at least {least}, got {value!r}")
    if options["passes"] > MAX_PASSES:  # the model file's limit: fail now, not after converting
        raise CliError(f"--passes must be at most {MAX_PASSES}, got {options['passes']}")
    agreement = options["min_agreement"]
    if not isinstance(agreement, int | float) or not math.isfinite(agreement) or agreement < 0:
        raise CliError(f"--min-agreement must be a finite number >= 0, got {agreement!r}")
    if options["mode"] not in ("masked", "in-graph", "deterministic"):
        raise CliError(f"mode must be masked, in-graph or deterministic, got {options['mode']!r}")
    if options["bias_correction"] and options["mode"] == "in-graph":
        raise CliError("--bias-correction needs a full-integer model: mode masked or deterministic")
    if options.get("decision") is not None:
        from tfuq.runtime import decision

        decision.check_rule(options["decision"])  # a RuleError (exit 2) names what is wrong


def run(args) -> int:
    from tfuq.cli._outputs import Outputs

    with Outputs() as outputs:
        return _convert(args, outputs)


def _convert(args, outputs) -> int:
    from tfuq.cli._outputs import json_text

    require("tensorflow", "convert", "convert")
    out = Path(args.out)
    options = {**DEFAULTS, **load_recipe(args.recipe)}
    for key in DEFAULTS:
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    check_options(options)
    check_model_path(args.model)
    mc_layers = [n.strip() for n in args.mc_layers.split(",") if n.strip()] if args.mc_layers else None
    if args.mc_layers is not None and not mc_layers:
        raise CliError("--mc-layers needs at least one layer name")
    if mc_layers and args.mc_dropout != "auto":
        raise CliError("give --mc-layers or --mc-dropout, not both")
    input_size_given = input_size(args.input_size)
    for option, source in (("model", args.model), ("--representative", args.representative),
                           ("--labels", args.labels), ("--recipe", args.recipe)):
        if source:
            outputs.input(source, option)
    staged_model = outputs.file(out, "--out")
    staged_json = outputs.file(args.json, "--json") if args.json not in (None, "-") else None
    from tfuq import data

    # Cheap checks first: bad data fails before TensorFlow takes seconds to load.
    images, image_labels, npz_names = data.load_npz(args.representative)
    names = None
    if args.labels:
        names = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
    quiet_tensorflow()
    from tfuq.conversion import convert
    from tfuq.training.train import class_names_of

    stated = preprocessing(args)

    info(f"loading {args.model}")
    model = convert.load_keras_model(args.model)
    names = names or class_names_of(args.model)
    info(f"converting ({options['mode']}, {options['passes']} passes)")
    result = convert.convert(
        model,
        images,
        labels=names or npz_names,
        decision=options.get("decision"),
        progress=True,
        representative_labels=image_labels,
        mc_dropout=args.mc_dropout,
        mc_layers=mc_layers,
        preprocessing=stated,
        input_size=input_size_given,
        add_softmax=args.add_softmax,
        scores=tuple(args.scores) if args.scores else None,
        **{k: options[k] for k in DEFAULTS},
    )
    result.save(staged_model)
    size = staged_model.stat().st_size
    report = {
        "out": str(out),
        "bytes": size,
        "mode": options["mode"],
        "passes": options["passes"],
        "full_integer": result.summary.full_integer,
        "operators": dict(result.summary.operators),
        "notes": result.notes,
        "mc_dropout": [m.layer for m in result.config.mc_dropout],
        "preprocessing": result.config.input.preprocessing,
        "bias_correction": None if result.config.source.bias_correction is None
        else result.config.source.bias_correction.to_dict(),
        "scores": result.config.score_names,
    }
    info(f"wrote {out} ({size / 1e6:.2f} MB, {'full-integer' if result.summary.full_integer else 'NOT full-integer: ' + '; '.join(result.summary.problems)})")
    for note in result.notes:
        info(f"note: {note}")
    status = 0
    if result.check is not None:
        check = result.check
        report["self_check"] = vars(check) | {"passed": check.passed}
        verdict = "ok" if check.passed else "FAILED"
        within = "MC-mean top-1 agreement" if check.tie_k == 1 else f"MC-mean top-1 within Keras' top {check.tie_k}"
        accuracy = (
            f", accuracy Keras {check.keras_accuracy:.1%} vs int8 {check.tflite_accuracy:.1%}"
            if check.keras_accuracy is not None else ""
        )
        info(
            f"self-check on {check.images} {'held-out ' if check.held_out else ''}images: "
            f"{within} {check.agreement:.1%} (threshold {check.min_agreement:.0%}){accuracy}; "
            f"exact MC-mean top-1 {check.mean_top1_agreement:.1%}, single-pass {check.pass_agreement:.1%}, "
            f"top-5 overlap {check.top5_overlap:.1%}, mean |p_keras - p_tflite| {check.mean_abs_diff:.4f}: {verdict}"
        )
        status = 0 if check.passed else EXIT_CHECK_FAILED
    if staged_json is not None:
        outputs.write_json(staged_json, report)
    outputs.commit()
    if args.json == "-":
        print(json_text(report))
    return status
