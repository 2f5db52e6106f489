"""``tfuq`` entry point: finds the subcommand modules in this package and dispatches.

Each module ``tfuq/cli/<name>.py`` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, importing anything heavy inside ``run`` so ``tfuq --help`` stays fast and
a Raspberry Pi never loads TensorFlow.
"""

from __future__ import annotations

import sys

try:  # Ctrl-C while the modules load: the one line, not a traceback from an import
    import argparse
    import importlib
    import pkgutil
    import textwrap

    import tfuq
    from tfuq._files import Terminated, is_stdout, shown, stop_signals_raise
    from tfuq.cli._common import EXIT_BAD_INPUT, CliError
except KeyboardInterrupt:
    print("tfuq: interrupted", file=sys.stderr)
    sys.exit(130)


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


# Said under every command that writes files (tfuq/_files.py does what it says).
OUTPUTS_NOTE = (
    "outputs: --json - and --json /dev/stdout print to standard output (so does a --json path "
    "naming the file standard output already goes to); every other output is a regular file, "
    "written whole or not at all: a device, FIFO or socket there is refused before any work."
)


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
        json_option = command._option_string_actions.get("--json")
        if json_option is not None and json_option.metavar == "PATH":
            command.epilog = textwrap.fill(OUTPUTS_NOTE, 88)
        command.set_defaults(run=module.run)
    return parser


# Errors the user can fix. Every tfuq validation error (ModelFileError, ConversionError,
# ExportError, OutputError, ...) subclasses ValueError, as do numpy's and Keras' complaints about input.
USER_ERRORS = (CliError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError)
_MAX_MESSAGE = 1000  # characters of an error line; the rest is cut


def _say(command: str, message: str) -> None:
    print(f"tfuq{' ' + command if command else ''}: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit status. Ctrl-C is "interrupted" (130), SIGTERM and SIGHUP
    "terminated" (128 + the signal), each one line, with clean-ups run; never a traceback for
    an error the user can fix."""
    command = ""
    with stop_signals_raise():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            command = args.command
            if isinstance(getattr(args, "json", None), str) and is_stdout(args.json):
                args.json = "-"  # /dev/stdout, or the file stdout goes to: printed, not replaced
            return int(args.run(args) or 0)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt:
            _say(command, "interrupted")
            return 130
        except Terminated as stop:
            _say(command, f"terminated ({stop})")
            return 128 + stop.signum
        except Exception as error:
            if not isinstance(error, USER_ERRORS):
                raise
            message = shown(str(error).strip()) or repr(error)
            if len(message) > _MAX_MESSAGE:
                message = message[:_MAX_MESSAGE] + f"... ({len(message):,} characters)"
            _say(command, f"error: {message}")
            return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
