"""Check, then work, then commit: the files a subcommand writes, all or none.

The mechanism lives in :mod:`tfuq._files` (one for the library and the commands); this
module is where the subcommands take it from.
"""

from __future__ import annotations

from tfuq._files import OutputError, Outputs, json_text

__all__ = ["OutputError", "Outputs", "json_text"]
