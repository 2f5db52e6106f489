"""What the fuzz tests share: example budgets, JSON values, a tally of what they tried."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

from hypothesis import strategies as st

# Where each fuzz test adds up what it tried and how it ended, for tests/README.md's table.
TALLY_FILE = os.environ.get("TFUQ_FUZZ_TALLY")


def budget(examples: int) -> int:
    """A fuzz test's example budget: ``examples`` in CI, ten times that when exploring."""
    return examples * (10 if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else 1)


class Tally:
    """Counts outcomes per surface; written to ``$TFUQ_FUZZ_TALLY`` (JSON) when set."""

    def __init__(self, surface: str) -> None:
        self.surface = surface
        self.counts: collections.Counter = collections.Counter()

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1
        if TALLY_FILE:
            path = Path(TALLY_FILE)
            data = json.loads(path.read_text()) if path.exists() else {}
            surface = data.setdefault(self.surface, {})
            surface[outcome] = surface.get(outcome, 0) + 1
            path.write_text(json.dumps(data, indent=1, sort_keys=True))


json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats() | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
