"""What every subcommand shares: error handling, JSON output, optional-dependency checks."""

from __future__ import annotations

import importlib.util
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
    """Import TensorFlow before a subcommand's work, without its start-up chatter on the
    user's terminal (:func:`tfuq.quiet.import_tensorflow`; C++ errors hidden too, as the
    command's own messages say what failed)."""
    from tfuq.quiet import import_tensorflow

    import_tensorflow(log_level=3)


def emit_json(payload: Any, path: str | None = None) -> None:
    """Print ``payload`` as JSON, or write it atomically to ``path`` ("-" is stdout)."""
    from tfuq._files import atomic_output, is_stdout, json_text

    text = json_text(payload)
    if path is None or is_stdout(path):
        print(text)
        return
    with atomic_output(path, "w") as out:
        out.write(text + "\n")


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
    from tfuq.runtime import decision

    if args.rule not in ("threshold", "combined") and args.threshold is not None:
        raise CliError("--threshold needs --rule threshold or combined")
    if args.rule not in ("interval", "combined") and args.conf_factor is not None:
        raise CliError("--conf-factor needs --rule interval or combined")
    if args.rule == "model":
        return config.decision_rule()
    if args.rule == "interval":
        return decision.interval_rule(1.0 if args.conf_factor is None else args.conf_factor)
    if args.rule == "combined":
        score = args.score or "max_probability"
        if args.threshold is None and score != "max_probability":
            raise CliError(f"--rule combined with --score {score} needs --threshold")
        return decision.all_rule(
            decision.interval_rule(1.0 if args.conf_factor is None else args.conf_factor),
            decision.threshold_rule(
                score, decision.DEFAULT_FLOOR if args.threshold is None else args.threshold),
        )
    if args.score is None or args.threshold is None:
        raise CliError("--rule threshold needs --score and --threshold")
    return decision.threshold_rule(args.score, args.threshold)


OUTLIERS_HELP = (
    "outlier exposure: images of none of the classes, on which training pushes the model towards "
    "uniform probabilities, so that 'not sure' comes out on things it was never taught (Hendrycks "
    "et al. 2019). Any data spec (labels ignored), a flat folder of photos (folder:PATH/ without "
    "class subfolders) or featureless:N (N generated images of nothing: flat colours, gradients, "
    "blends, for a blank wall or a covered lens). Repeat it to take several, read in order into "
    "one set, e.g. --outliers folder:not_mine/ --outliers featureless:500"
)


def add_outliers_option(parser) -> None:
    """``--outliers SPEC``, repeatable, as ``tfuq train``, ``attach`` and ``fit`` take it."""
    parser.add_argument("--outliers", action="append", metavar="SPEC", help=OUTLIERS_HELP)


def read_outliers(specs: list[str], size: tuple[int, int], seed: int, say=info):
    """The images of every ``--outliers`` spec at ``size`` as one uint8 array
    (:func:`tfuq.data.outliers.load_outliers`), with a progress line naming them all."""
    from tfuq.data.outliers import load_outliers

    say(f"loading outliers {', '.join(specs)}")
    return load_outliers(specs, size, seed=seed)
