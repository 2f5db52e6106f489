"""Show what a tfuq model file holds: its carried configuration, inputs, outputs, size and
operator histogram, and whether every tensor is integer.

example:
  tfuq inspect model.tflite
  tfuq inspect model.tflite --json
"""

from __future__ import annotations

import os

from tfuq._files import shown
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
    from tfuq.runtime import tflite_graph

    model = runtime.load(path)
    summary = tflite_graph.summarize(model.flatbuffer)

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
        "config": model.config.to_dict(),
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
    # Names from the file are shown with control characters escaped: a label cannot forge a line.
    from tfuq.runtime.config import ModelConfig

    config = ModelConfig.from_dict(report["config"])  # the checked dict, typed again
    labels = config.labels or ()
    listed = ", ".join(shown(label) for label in labels[:8]) + (
        f", ... ({len(labels)} in all)" if len(labels) > 8 else "")
    print(f"{shown(report['path'])}: {report['bytes'] / 1e6:.2f} MB ({report['flatbuffer_bytes'] / 1e6:.2f} MB flatbuffer)")
    print(f"  mode {config.mode}, {config.passes} passes, seed scheme "
          f"{shown(config.seed_scheme.name)} v{config.seed_scheme.version}")
    print(f"  labels: {listed}")
    print(f"  decision: {shown(_describe(config.decision_rule()))}")
    for layer in config.mc_dropout:
        print(f"  MC dropout {shown(layer.layer)}: rate {layer.rate}" + (f", mask input {shown(layer.input)} {layer.shape}" if layer.input is not None else ""))
    for score in config.scores or ():
        print(f"  OOD score {shown(score.name)}: output {shown(score.output)} (larger = more like the training data)")
    for kind in ("inputs", "outputs"):
        for name, t in report[kind].items():
            print(f"  {kind[:-1]} {shown(name)}: {t['dtype']} {tuple(t['shape'])} scale {t['scale']:.6g} zero point {t['zero_point']}")
    print("  operators: " + ", ".join(f"{k} x{v}" for k, v in report["operators"].items()))
    print("  full-integer: " + ("yes" if report["full_integer"] else "no (" + shown("; ".join(report["problems"])) + ")"))
    return 0
