#!/usr/bin/env bash
# The Raspberry Pi environment check: a clean Python 3.11 venv with only `pip install ".[pi]"`
# (tflite-runtime 2.14, numpy < 2, no TensorFlow) must run models converted in the main
# environment and reproduce their outputs (tests/pi/test_pi_runtime.py says to what tolerance),
# decide with `tfuq predict`, and compute the shared mask vectors bit for bit under numpy 1.
#
#   bash .ci/pi_env.sh [MAIN_PYTHON]     # MAIN_PYTHON: a python with tfuq[all] (default .venv/bin/python)
#
# The pi venv goes to $PI_VENV (default .venv-pi), rebuilt from scratch each time; it stays
# afterwards so that `python benchmarks/run_all.py` can time tflite-runtime in it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
main_python=${1:-.venv/bin/python}
pi_venv=${PI_VENV:-.venv-pi}
fixtures=$(mktemp -d)
trap 'rm -rf "$fixtures"' EXIT

echo "== pi: models and expected outputs from the main environment ($main_python)"
"$main_python" tests/pi/make_fixtures.py --out "$fixtures" 2> "$fixtures/make_fixtures.log" || {
    cat "$fixtures/make_fixtures.log" >&2
    exit 1
}

echo "== pi: clean venv $pi_venv with pip install \".[pi]\" (+ pytest and hypothesis for the tests)"
rm -rf "$pi_venv"
python3.11 -m venv "$pi_venv"
# The pi extra alone must give a working `tfuq predict`: Pillow comes with it, not from here.
"$pi_venv/bin/pip" install --quiet ".[pi]" pytest hypothesis
"$pi_venv/bin/python" - <<'PY'
import importlib.metadata as m
print("pi venv: " + ", ".join(f"{p} {m.version(p)}" for p in ("tfuq", "numpy", "tflite-runtime", "ai-edge-litert", "pillow")))
import PIL.Image  # noqa: F401  (the extra brought it)
PY

echo "== pi: tests in $pi_venv"
# Tests import their helpers as tests._dummies: the repository goes on sys.path after
# site-packages (a .pth line), so `import tfuq` still finds the installed package.
"$pi_venv/bin/python" -c 'import site, sys; open(site.getsitepackages()[0] + "/tfuq_tests.pth", "w").write(sys.argv[1] + "\n")' "$PWD"
# -o pythonpath= and the venv's own pytest: the installed tfuq is tested, not the source tree.
mapfile -t suite < <(grep -v '^#' tests/pi/suite.txt)  # .ci/arm64.sh runs the same on arm64
TFUQ_PI_FIXTURES="$fixtures" TFUQ_PI_EXPECT_INSTALLED=1 \
    "$pi_venv/bin/pytest" "${suite[@]}" -o pythonpath= -p no:cacheprovider -q
