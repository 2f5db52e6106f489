"""The folder boundaries: which stage of the pipeline may import which.

``tfuq/runtime/`` runs on numpy and an interpreter, nothing heavier: importing every module
there in a fresh interpreter loads no TensorFlow, Keras or TensorFlow Datasets module, and no
file there imports another tfuq folder. The other folders follow the pipeline
(``ALLOWED`` below: data -> modeling -> training -> conversion, with the runtime under all
of them); imports are read from the source with ``ast``, so a lazy import inside a function
counts, except where ``LAZY_ALLOWED`` names it. All checks go by folder, so a module added
later is covered without editing this file.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfuq"
RUNTIME = PACKAGE / "runtime"
HEAVY = ("tensorflow", "keras", "tensorflow_datasets", "tf_keras")
FORBIDDEN_INSIDE = ("tfuq.modeling", "tfuq.training", "tfuq.conversion", "tfuq.data", "tfuq.evaluation",
                    "tfuq.demo", "tfuq.cli", "tfuq.beam", "tfuq.workflow")


def _runtime_modules() -> list[str]:
    names = []
    for path in sorted(RUNTIME.glob("*.py")):
        stem = path.stem
        names.append("tfuq.runtime" if stem == "__init__" else f"tfuq.runtime.{stem}")
    return names


def test_the_runtime_folder_has_the_modules_the_readme_names():
    assert {"tfuq.runtime.masks", "tfuq.runtime.modelfile", "tfuq.runtime.interpreter",
            "tfuq.runtime.aggregate", "tfuq.runtime.decision", "tfuq.runtime.calibration",
            "tfuq.runtime.metrics"} <= set(
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
def test_runtime_files_import_nothing_from_the_other_stages(path):
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
    sample.write_text("def f():\n    from tfuq import data\n    import tfuq.conversion.convert\n")
    modules = [module for _, module in _imported_modules(sample)]
    assert "tfuq.data" in modules and "tfuq.conversion.convert" in modules


def test_the_data_modules_do_not_import_each_other_in_a_circle():
    # common is the bottom: it imports nothing from tfuq, so datasets, corruptions and the
    # builder can all import it.
    common = RUNTIME.parent / "data" / "common.py"
    assert [m for _, m in _imported_modules(common) if m.startswith("tfuq")] == []


# Which tfuq folders each stage folder may import (besides itself, the runtime and the
# private top-level helpers). The pipeline reads left to right: a stage never imports a later
# one, so the modeling code can be read without the converter and the data code without Keras.
ALLOWED = {
    "data": set(),
    "modeling": {"data"},
    "training": {"data", "modeling"},
    "conversion": {"data", "modeling"},
    "beam": {"data", "evaluation"},
    # The flow every command shares sits above the stages and under the commands.
    "workflow": {"data", "modeling", "training", "conversion", "evaluation", "reporting"},
}
ALWAYS = {"runtime", "_progress", "_files", "quiet"}


def _tfuq_folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "tfuq" and len(parts) > 1 else None


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_stage_imports_only_the_stages_before_it(folder):
    offending = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for line, module in _imported_modules(path):
            target = _tfuq_folder(module)
            if target and target != folder and target not in ALWAYS and target not in ALLOWED[folder]:
                offending.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offending == []


def test_reading_data_loads_no_tensorflow():
    # tfuq.data may build a TFDS dataset (cifar100_corrupted), but only when asked: reading
    # .npz files and folders, splitting and corrupting images run on numpy and Pillow.
    modules = ["tfuq.data", "tfuq.data.common", "tfuq.data.datasets", "tfuq.data.corruptions"]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=PACKAGE.parent, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_no_source_folder_is_named_like_build_output():
    assert not [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name in ("build", "dist", "out")]
