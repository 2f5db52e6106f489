"""``tfuq`` entry point: finds the subcommand modules in this package and dispatches.

Each module ``tfuq/cli/<name>.py`` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, importing anything heavy inside ``run`` so ``tfuq --help`` stays fast and
a Raspberry Pi never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import tfuq
from tfuq.cli._common import EXIT_BAD_INPUT, CliError


def _commands() -> dict[str, object]:
    names = [
        m.name
        for m in pkgutil.iter_modules(sys.modules["tfuq.cli"].__path__)
        if not m.name.startswith("_") and m.name != "main"
    ]
    # A module serve_demo.py is the command serve-demo.
    return {
        name.replace("_", "-"): importlib.import_module(f"tfuq.cli.{name}") for name in sorted(names)
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfuq",
        description="Image classifiers that know when they don't know: MC dropout, int8 TFLite.",
    )
    parser.add_argument("--version", action="version", version=f"tfuq {tfuq.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _commands().items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


# Errors the user can fix. Every tfuq validation error (ModelFileError, ConversionError,
# ExportError, ...) subclasses ValueError, as do numpy's and Keras' complaints about input.
USER_ERRORS = (CliError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"tfuq {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, USER_ERRORS):
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            print(f"tfuq {args.command}: error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
