"""The folder boundary: ``tfuq/runtime/`` runs on numpy and an interpreter, nothing heavier.

Two checks, both by folder so a module added later is covered without editing this file:
importing every module under ``tfuq/runtime/`` in a fresh interpreter loads no TensorFlow,
Keras or TensorFlow Datasets module; and no file there imports from ``tfuq.build`` or
``tfuq.data`` (read from the source with ``ast``, so a lazy import inside a function counts).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "tfuq" / "runtime"
HEAVY = ("tensorflow", "keras", "tensorflow_datasets", "tf_keras")
FORBIDDEN_INSIDE = ("tfuq.build", "tfuq.data", "tfuq.evaluation", "tfuq.demo", "tfuq.cli")


def _runtime_modules() -> list[str]:
    names = []
    for path in sorted(RUNTIME.glob("*.py")):
        stem = path.stem
        names.append("tfuq.runtime" if stem == "__init__" else f"tfuq.runtime.{stem}")
    return names


def test_the_runtime_folder_has_the_modules_the_readme_names():
    assert {"tfuq.runtime.masks", "tfuq.runtime.modelfile", "tfuq.runtime.interpreter",
            "tfuq.runtime.aggregate", "tfuq.runtime.abstain", "tfuq.runtime.metrics"} <= set(
        _runtime_modules())


def test_importing_every_runtime_module_loads_no_tensorflow_keras_or_tfds():
    code = (
        "import importlib, json, sys\n"
        f"for name in {_runtime_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=RUNTIME.parents[1], check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "tfuq":  # from tfuq import data
                found += [(node.lineno, f"tfuq.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


@pytest.mark.parametrize("path", sorted(RUNTIME.glob("*.py")), ids=lambda p: p.name)
def test_runtime_files_import_nothing_from_build_data_or_above(path):
    offending = [
        f"{path.name}:{line} imports {module}"
        for line, module in _imported_modules(path)
        if module.startswith(".") or any(
            module == forbidden or module.startswith(forbidden + ".") for forbidden in FORBIDDEN_INSIDE)
    ]
    assert offending == []


def test_the_import_reader_sees_lazy_and_from_tfuq_imports(tmp_path):
    # The check above is only as good as the reader: it must see an import inside a function
    # and the ``from tfuq import data`` form.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from tfuq import data\n    import tfuq.build.convert\n")
    modules = [module for _, module in _imported_modules(sample)]
    assert "tfuq.data" in modules and "tfuq.build.convert" in modules


def test_the_data_modules_do_not_import_each_other_in_a_circle():
    # common is the bottom: it imports nothing from tfuq, so datasets, corruptions and the
    # builder can all import it.
    common = RUNTIME.parent / "data" / "common.py"
    assert [m for _, m in _imported_modules(common) if m.startswith("tfuq")] == []
