"""A small hand-rolled mutation pass: one mutant at a time, the module's tests on each.

Not a test (pytest does not collect it): run it on a copy of the repository, never in the
working tree, since it rewrites the source while it runs.

    cp -r tfuq tests setup.cfg /tmp/m/ && cd /tmp/m && python tests/mutation_pass.py . \
        tfuq/runtime/metrics.py tfuq/runtime/decision.py tfuq/runtime/calibration.py \
        tfuq/runtime/aggregate.py
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(sys.argv[1])
files = sys.argv[2:]
SWAPS = [(r"<=", "<"), (r"(?<![<>=!])<(?![<=])", "<="), (r">=", ">"), (r"(?<![<>=!-])>(?![>=])", ">="),
         (r"==", "!="), (r"!=", "=="), (r'"left"', '"right"'), (r'"right"', '"left"'),
         (r"\bmax\(", "min("), (r"\bmin\(", "max("), (r"(?<=\s)\+(?=\s)", "-"), (r"(?<=\s)-(?=\s)", "+"),
         (r"\band\b", "or"), (r"\bor\b", "and"), (r"\b1e-(\d+)", r"1e-\g<1>0"), (r"ddof=0", "ddof=1"),
         (r"axis=0", "axis=1"), (r"\[::-1\]", ""), (r"\bnot ", "")]
tests = ["tests/runtime/test_decision.py", "tests/runtime/test_calibration.py",
         "tests/runtime/test_aggregate.py", "tests/runtime/test_metrics.py", "tests/runtime/test_vectors.py"]
TESTS = {"tfuq/runtime/decision.py": ["tests/runtime/test_decision.py", "tests/runtime/test_vectors.py"],
         "tfuq/runtime/calibration.py": ["tests/runtime/test_calibration.py"],
         "tfuq/runtime/aggregate.py": ["tests/runtime/test_aggregate.py", "tests/runtime/test_vectors.py"],
         "tfuq/runtime/metrics.py": ["tests/runtime/test_metrics.py"]}
survivors, total = [], 0
for name in files:
    path = root / name
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    in_doc = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.count('"""') == 1:
            in_doc = not in_doc
            continue
        if in_doc or stripped.startswith(("#", "raise", "def ", "from ", "import ", ">>>", "f\"", '"')) or "ValueError(" in line or "Error(" in line:
            continue
        code = line.split("#")[0]
        for pattern, replacement in SWAPS:
            for match in re.finditer(pattern, code):
                mutated = code[:match.start()] + re.sub(pattern, replacement, match.group(0)) + code[match.end():]
                if mutated == code:
                    continue
                total += 1
                path.write_text("".join(lines[:number] + [mutated + line[len(code):]] + lines[number + 1:]))
                result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                         "-p", "no:randomly", *TESTS[name]], cwd=root, capture_output=True, text=True, timeout=600)
                status = "killed" if result.returncode != 0 else "SURVIVED"
                print(f"{status} {name}:{number + 1}: {pattern} -> {replacement}: {stripped[:90]}", flush=True)
                if status == "SURVIVED":
                    survivors.append((name, number + 1, pattern, stripped))
    path.write_text(original)
print(f"{total} mutants, {len(survivors)} survived", flush=True)
