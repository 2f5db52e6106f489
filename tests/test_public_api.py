"""The public API: ``tfuq.__all__`` resolves and covers the README's names; benchmarks and the
Android tools use public names only (imports and attributes read with ``ast``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tfuq

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "android_demo" / "tools").rglob("*.py")])
SUBPACKAGES = {"runtime", "modeling", "training", "conversion", "data", "beam", "cli", "evaluation",
               "demo", "quiet", "workflow", "reporting"}


@pytest.mark.parametrize("name", tfuq.__all__)
def test_every_public_name_resolves_to_a_documented_object(name):
    value = getattr(tfuq, name)
    assert value is not None and (value.__doc__ or "").strip(), name
    assert name in dir(tfuq)


def test_the_readme_uses_only_public_names():
    # `tfuq.load(...)`, `tfuq.decide`: every top-level name the docs show is in __all__ (or is
    # a stage folder, e.g. `tfuq.runtime.masks.image_seed`); `tfuq.json` is the file.
    text = "".join(path.read_text() for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    shown = set(re.findall(r"\btfuq\.([A-Za-z]\w*)", text)) - {"json"}
    assert shown - set(tfuq.__all__) - SUBPACKAGES == set()
    assert {"load", "aggregate", "decide", "MCDropout"} <= shown  # the scan sees the README


def _private_uses(source: str) -> list[str]:
    """``module.name`` of every private tfuq name a script imports or reads as an attribute
    (a leading underscore in the module path or the name; ``self._x`` is the script's own)."""
    tree = ast.parse(source)
    found, tfuq_names = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tfuq":
            for alias in node.names:
                tfuq_names.add(alias.asname or alias.name)
                if any(part.startswith("_") for part in [*node.module.split("."), alias.name]):
                    found.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tfuq":
                    tfuq_names.add(alias.asname or "tfuq")
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            base = node.value
            while isinstance(base, ast.Attribute | ast.Call | ast.Subscript):
                base = base.func if isinstance(base, ast.Call) else base.value
            if isinstance(base, ast.Name) and base.id not in ("self", "cls"):
                found.append(ast.unparse(node))
    return found


def test_the_scan_finds_private_names():
    assert _private_uses("from tfuq.conversion.convert import _quiet_converter") == [
        "tfuq.conversion.convert._quiet_converter"]
    assert _private_uses("from tfuq.cli._common import quiet_tensorflow") == [
        "tfuq.cli._common.quiet_tensorflow"]
    assert _private_uses("import tfuq\nr = tfuq.load('m')\nr._runner(x=1)") == ["r._runner"]
    assert _private_uses("import tfuq\ntfuq.load('m')._runner()") == ["tfuq.load('m')._runner"]
    assert _private_uses("class A:\n    def f(self):\n        return self._say") == []
    assert _private_uses("from tfuq.quiet import held_output\nimport tfuq.runtime.masks") == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_public_tfuq_names_only(path):
    assert _private_uses(path.read_text()) == []
