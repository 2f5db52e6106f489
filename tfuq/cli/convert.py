"""Convert a Keras model with tfuq.MCDropout layers to one full-integer TFLite file.

The file takes uint8 RGB pixels and one 0/1 mask per MCDropout layer, returns all MC passes
in one invoke, and carries its own configuration (labels, passes, masks, seed scheme,
decision rule). After conversion a self-check compares Keras and TFLite on held-out images;
the command exits 1 when top-1 agreement falls below --min-agreement.

example:
  tfuq convert model.keras --out model.tflite --passes 30 --representative data.npz
  tfuq convert model.keras --out model.tflite --recipe converters/resnet50.toml --json -
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tfuq.cli._common import EXIT_CHECK_FAILED, CliError, info, quiet_tensorflow, require

HELP = "convert a Keras MC-dropout model to a full-integer tfuq .tflite"

# Options a recipe may set; command-line flags given explicitly win over the recipe.
DEFAULTS = {
    "passes": 30,
    "mode": "masked",
    "calibration_samples": 200,
    "check_samples": 50,
    "min_agreement": 0.9,
}


def add_arguments(parser) -> None:
    parser.add_argument("model", help="Keras model file (.keras) with tfuq.MCDropout layers")
    parser.add_argument("--out", required=True, help="where to write the .tflite")
    parser.add_argument(
        "--representative", required=True, metavar="NPZ",
        help=".npz with x: uint8 (N, H, W, 3) images, resized to the model input as needed",
    )
    parser.add_argument("--recipe", metavar="TOML", help="conversion recipe, e.g. converters/resnet50.toml")
    parser.add_argument("--passes", type=int, help=f"MC passes per invoke (default {DEFAULTS['passes']})")
    parser.add_argument("--mode", choices=("masked", "in-graph", "deterministic"), help="masked (default): masks as inputs, one invoke; in-graph: the paper's RANDOM_UNIFORM form, one invoke per pass; deterministic: MCDropout off, the one-pass baseline")
    parser.add_argument("--calibration-samples", type=int, help=f"images for int8 calibration (default {DEFAULTS['calibration_samples']})")
    parser.add_argument("--check-samples", type=int, help=f"held-out images for the self-check, 0 skips it (default {DEFAULTS['check_samples']})")
    parser.add_argument("--min-agreement", type=float, help=f"self-check threshold on Keras/TFLite top-1 agreement (default {DEFAULTS['min_agreement']})")
    parser.add_argument("--labels", metavar="TXT", help="class names, one per line (default: names in the .npz, else class_0 ...)")
    parser.add_argument("--json", metavar="PATH", help="write the conversion report as JSON ('-' for stdout)")


def load_recipe(path: str | None) -> dict:
    """Read a conversion recipe; unknown keys are an error, so typos do not pass silently."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            recipe = tomllib.load(handle)
    except FileNotFoundError:
        raise CliError(f"recipe not found: {path}") from None
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

    for key, least in (("passes", 1), ("calibration_samples", 1), ("check_samples", 0)):
        value = options[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            flag = "--" + key.replace("_", "-")
            raise CliError(f"{flag} must be an integer of at least {least}, got {value!r}")
    agreement = options["min_agreement"]
    if not isinstance(agreement, int | float) or not math.isfinite(agreement) or agreement < 0:
        raise CliError(f"--min-agreement must be a finite number >= 0, got {agreement!r}")
    if options["mode"] not in ("masked", "in-graph", "deterministic"):
        raise CliError(f"mode must be masked, in-graph or deterministic, got {options['mode']!r}")
    if options.get("decision") is not None:
        from tfuq.runtime import abstain

        abstain.check_rule(options["decision"])  # a RuleError (exit 2) names what is wrong


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
    if not Path(args.model).is_file():
        raise CliError(f"model file not found: {args.model}")
    for source in (args.model, args.representative, args.labels, args.recipe):
        if source:
            outputs.input(source)
    staged_model = outputs.file(out, "--out")
    staged_json = outputs.file(args.json, "--json") if args.json not in (None, "-") else None
    from tfuq import data

    # Cheap checks first: bad data fails before TensorFlow takes seconds to load.
    images, _, npz_names = data.load_npz(args.representative)
    names = None
    if args.labels:
        names = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
    quiet_tensorflow()
    from tfuq.build import convert

    info(f"loading {args.model}")
    model = convert.load_keras_model(args.model)
    info(f"converting ({options['mode']}, {options['passes']} passes)")
    result = convert.convert(
        model,
        images,
        labels=names or npz_names,
        decision=options.get("decision"),
        progress=True,
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
    }
    info(f"wrote {out} ({size / 1e6:.2f} MB, {'full-integer' if result.summary.full_integer else 'NOT full-integer: ' + '; '.join(result.summary.problems)})")
    for note in result.notes:
        info(f"note: {note}")
    status = 0
    if result.check is not None:
        check = result.check
        report["self_check"] = vars(check) | {"passed": check.passed}
        verdict = "ok" if check.passed else "FAILED"
        info(
            f"self-check on {check.images} {'held-out ' if check.held_out else ''}images: "
            f"top-1 agreement {check.agreement:.1%} (threshold {check.min_agreement:.0%}), "
            f"mean |p_keras - p_tflite| {check.mean_abs_diff:.4f}: {verdict}"
        )
        status = 0 if check.passed else EXIT_CHECK_FAILED
    if staged_json is not None:
        outputs.write_json(staged_json, report)
    outputs.commit()
    if args.json == "-":
        print(json_text(report))
    return status
