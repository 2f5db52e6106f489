"""Show what a tfuq model file holds: its carried configuration, inputs, outputs, size and
operator histogram, and whether every tensor is integer.

example:
  tfuq inspect model.tflite
  tfuq inspect model.tflite --json
"""

from __future__ import annotations

import os

from tfuq.cli._common import emit_json


def _describe(rule) -> str:
    """``interval (Z = 1) and max_probability >= 0.5``, or the raw value if it is malformed."""
    from tfuq.runtime import decision

    try:
        return decision.describe_rule(rule)
    except decision.RuleError:
        return f"{rule!r} (not a valid rule)"

HELP = "show a tfuq model's configuration, tensors and operators"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a .tflite made by tfuq convert")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def describe(path: str) -> dict:
    from tfuq import runtime
    from tfuq.runtime import flatbuffer

    model = runtime.load(path)
    summary = flatbuffer.summarize(model.flatbuffer)

    def tensors(details):
        return {
            name: {
                "shape": [int(d) for d in d_["shape"]],
                "dtype": d_["dtype"].__name__,
                "scale": float(d_["quantization"][0]),
                "zero_point": int(d_["quantization"][1]),
            }
            for name, d_ in details.items()
        }

    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "flatbuffer_bytes": len(model.flatbuffer),
        "backend": model.backend,
        "config": model.config,
        "inputs": tensors(model.signature_runner.get_input_details()),
        "outputs": tensors(model.signature_runner.get_output_details()),
        "operators": dict(sorted(summary.operators.items())),
        "tensor_types": dict(summary.tensor_types),
        "full_integer": summary.full_integer,
        "problems": summary.problems,
    }


def run(args) -> int:
    report = describe(args.model)
    if args.json:
        emit_json(report)
        return 0
    config = report["config"]
    labels = config.get("labels", [])
    shown = ", ".join(labels[:8]) + (f", ... ({len(labels)} in all)" if len(labels) > 8 else "")
    print(f"{report['path']}: {report['bytes'] / 1e6:.2f} MB ({report['flatbuffer_bytes'] / 1e6:.2f} MB flatbuffer)")
    print(f"  mode {config['mode']}, {config['passes']} passes, seed scheme "
          f"{config['seed_scheme']['name']} v{config['seed_scheme']['version']}")
    print(f"  labels: {shown}")
    print(f"  decision: {_describe(config['decision'])}")
    for layer in config.get("mc_dropout", []):
        print(f"  MC dropout {layer['layer']}: rate {layer['rate']}" + (f", mask input {layer['input']} {tuple(layer['shape'])}" if "input" in layer else ""))
    for kind in ("inputs", "outputs"):
        for name, t in report[kind].items():
            print(f"  {kind[:-1]} {name}: {t['dtype']} {tuple(t['shape'])} scale {t['scale']:.6g} zero point {t['zero_point']}")
    print("  operators: " + ", ".join(f"{k} x{v}" for k, v in report["operators"].items()))
    print("  full-integer: " + ("yes" if report["full_integer"] else "no (" + "; ".join(report["problems"]) + ")"))
    return 0
