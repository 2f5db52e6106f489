"""What every subcommand shares: error handling, JSON output, optional-dependency checks."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class CliError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


def require(module: str, extra: str, command: str) -> None:
    """Fail in one line when an optional dependency of ``command`` is missing."""
    if importlib.util.find_spec(module) is None:
        raise CliError(f"`tfuq {command}` needs {module}: pip install 'tfuq[{extra}]'")


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on the user's terminal.

    Some of it (CUDA probing) is logged before absl reads any setting, so the import runs
    with file descriptor 2 pointed at /dev/null.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def emit_json(payload: Any, path: str | None = None) -> None:
    """Print ``payload`` as JSON, or write it atomically to ``path`` ("-" is stdout)."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=_plain)
    if path in (None, "-"):
        print(text)
        return
    from tfuq.runtime.modelfile import atomic_output

    with atomic_output(path, "w") as out:
        out.write(text + "\n")


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def info(message: str) -> None:
    """Progress and notes go to stderr, so stdout stays clean for results and --json."""
    print(message, file=sys.stderr, flush=True)


RULE_CHOICES = ("model", "interval", "threshold", "combined")
RULE_HELP = ("decision rule: the model's own (default), interval (the paper's), threshold, or "
             "combined (interval and a threshold, default max_probability >= 0.5)")


def rule_from_args(args, config) -> dict:
    """The decision rule ``--rule/--conf-factor/--score/--threshold`` ask for.

    ``--rule model`` takes the rule the model file carries (``config`` is its
    :class:`~tfuq.runtime.config.ModelConfig`);
    ``--rule combined`` is the interval rule (``--conf-factor``, default 1) and a threshold
    (``--score``, default max_probability; ``--threshold``, default 0.5): ``tfuq convert``'s
    default when given no options.
    """
    from tfuq.runtime import abstain

    if args.rule not in ("threshold", "combined") and args.threshold is not None:
        raise CliError("--threshold needs --rule threshold or combined")
    if args.rule not in ("interval", "combined") and args.conf_factor is not None:
        raise CliError("--conf-factor needs --rule interval or combined")
    if args.rule == "model":
        return config.decision_rule()
    if args.rule == "interval":
        return abstain.interval_rule(1.0 if args.conf_factor is None else args.conf_factor)
    if args.rule == "combined":
        score = args.score or "max_probability"
        if args.threshold is None and score != "max_probability":
            raise CliError(f"--rule combined with --score {score} needs --threshold")
        return abstain.all_rule(
            abstain.interval_rule(1.0 if args.conf_factor is None else args.conf_factor),
            abstain.threshold_rule(
                score, abstain.DEFAULT_FLOOR if args.threshold is None else args.threshold),
        )
    if args.score is None or args.threshold is None:
        raise CliError("--rule threshold needs --score and --threshold")
    return abstain.threshold_rule(args.score, args.threshold)
