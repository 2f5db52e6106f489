"""No tfuq number depends on subnormal floats, and flush-to-zero brings no warning.

Importing tflite-runtime on aarch64 turns flush-to-zero on for the whole process (its
extension is built with GCC's fast-math start-up code; docs/raspberry_pi.md): subnormal results
become 0 and, on aarch64, subnormal inputs count as 0. Here a fresh Python process sets the
same mode itself (FPCR.FZ on aarch64; MXCSR's FTZ and DAZ on x86-64, through a few bytes of
machine code called with ctypes), checks that it took (``5e-324 * 1.0 == 0``), and runs the
aggregation, the decision rules and the metrics on passes built to produce subnormals; a
second process does the same with the mode off. Same decisions; numbers equal to within
``ATOL``, far below anything a threshold or a printed digit could see; and no "smallest
subnormal" warning from numpy. Runs in the main environment and in the Pi suite
(tests/pi/suite.txt, on x86-64 and emulated arm64).

    python tests/runtime/test_flush_to_zero.py on|off     # prints the numbers as JSON
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import platform
import subprocess
import sys
import tempfile
import warnings

import numpy as np

# Largest difference allowed between the two modes. The terms that flush are products like
# 1e-310 * ln(1e-310), variance terms like (1e-200)**2, and in float32 1e-39 * ln(1e-38):
# measured 2.6e-37 at most (a float32 entropy), on x86-64 and emulated arm64 alike.
ATOL = 1e-30

# f(set_bits, clear_bits) -> the old control word: it sets then clears those bits of the
# floating-point control register and returns its old value.
_CODE = {
    # stmxcsr [rsp-4]; mov eax,[rsp-4]; mov ecx,eax; or ecx,edi; not esi; and ecx,esi;
    # mov [rsp-4],ecx; ldmxcsr [rsp-4]; ret
    "x86_64": (bytes.fromhex("0fae5c24fc 8b4424fc 89c1 09f9 f7d6 21f1 894c24fc 0fae5424fc c3".replace(" ", "")),
               ctypes.c_uint32, (1 << 15) | (1 << 6)),  # FTZ, DAZ
    # mrs x2,fpcr; orr x3,x2,x0; bic x3,x3,x1; msr fpcr,x3; mov x0,x2; ret
    "aarch64": (b"".join(word.to_bytes(4, "little") for word in
                         (0xD53B4402, 0xAA000043, 0x8A210063, 0xD51B4403, 0xAA0203E0, 0xD65F03C0)),
                ctypes.c_uint64, 1 << 24),  # FZ
}


def set_flush_to_zero(on: bool) -> None:
    """Turn flush-to-zero on or off for the calling thread (x86-64 or aarch64 Linux)."""
    code, word, bits = _CODE[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    # Written to a file and mapped from it (never writable and executable at once); mapping
    # a file's pages executable also brings the instruction cache up to date on arm64.
    with tempfile.TemporaryFile() as file:
        file.write(code.ljust(mmap.PAGESIZE, b"\0"))
        file.flush()
        address = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_PRIVATE, file.fileno(), 0)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap of the control-register code failed")
    function = ctypes.CFUNCTYPE(word, word, word)(address)
    if on:
        function(bits, 0)
    else:
        function(0, bits)


def _passes() -> np.ndarray:
    """(passes=6, batch=5, classes=4) probabilities whose arithmetic meets subnormals."""
    rng = np.random.default_rng(7)
    passes = np.empty((6, 5, 4))
    passes[:, 0] = [1 - 3e-310, 1e-310, 1e-310, 1e-310]  # subnormal inputs
    passes[:, 1] = [[0.5, 0.5 - 1e-200, 1e-200, 0.0], [0.5, 0.5 - 2e-200, 2e-200, 0.0]] * 3  # std**2 underflows
    passes[:, 2] = rng.dirichlet(np.ones(4), size=6)
    passes[:, 3] = rng.integers(0, 256, (6, 4)) / 256.0  # the int8 output grid
    passes[:, 3] /= passes[:, 3].sum(-1, keepdims=True)
    passes[:, 4] = [[1 - 3e-39, 1e-39, 1e-39, 1e-39], [0.25] * 4] * 3  # float32 subnormals
    return passes


def _numbers() -> dict:
    from tfuq.runtime import abstain, metrics
    from tfuq.runtime.aggregate import SCORES, aggregate, entropy

    results: dict = {}
    labels = np.array([0, 1, 2, 3, 0])
    for dtype in (np.float64, np.float32):
        passes = _passes().astype(dtype)
        summary = aggregate(passes)
        for field in ("mean", "std", "max_probability", "predictive_entropy", "expected_entropy",
                      "mutual_information", "variation_ratio", "lower", "upper", "predicted"):
            results[f"{dtype.__name__} {field}"] = getattr(summary, field).tolist()
        results[f"{dtype.__name__} entropy"] = entropy(passes).tolist()
        rules = [abstain.interval_rule(1.0)] + [abstain.threshold_rule(score, 0.5) for score in SCORES]
        for rule in rules:
            decision = abstain.decide(passes, rule)
            results[f"{dtype.__name__} {abstain.describe_rule(rule)}"] = (
                decision.accept.tolist(), decision.predicted.tolist())
        mean = summary.mean.astype(np.float64)
        mean /= mean.sum(-1, keepdims=True)
        results[f"{dtype.__name__} metrics"] = [
            metrics.expected_calibration_error(labels, mean), metrics.brier_score(labels, mean),
            metrics.aurc(labels, summary.predicted, summary.max_probability),
            metrics.auroc(summary.mutual_information, labels != summary.predicted)
            if len(set((labels != summary.predicted).tolist())) == 2 else None,
        ]
    return results


def _run(mode: str) -> dict:
    result = subprocess.run([sys.executable, os.path.abspath(__file__), mode], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "subnormal" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [item for part in value for item in _flatten(part)]
    return [value]


def test_tfuq_numbers_do_not_depend_on_subnormals():
    import pytest

    if platform.machine() not in _CODE:
        pytest.skip(f"no control-register code for {platform.machine()}")
    on, off = _run("on"), _run("off")
    assert on["probe"] == 0.0, "flush-to-zero did not take"
    assert off["probe"] == 5e-324, "flush-to-zero is on although it was turned off"
    assert on["results"].keys() == off["results"].keys()
    largest = 0.0
    for key, want in off["results"].items():
        got = on["results"][key]
        flat_got, flat_want = _flatten(got), _flatten(want)
        assert len(flat_got) == len(flat_want), key
        for a, b in zip(flat_got, flat_want, strict=True):
            if isinstance(b, (bool, int)) or b is None:
                assert a == b, f"{key}: {a} with flush-to-zero, {b} without"
            else:
                largest = max(largest, abs(a - b))
                assert abs(a - b) <= ATOL, f"{key}: {a!r} with flush-to-zero, {b!r} without"
    print(f"largest difference: {largest:.3g}")


if __name__ == "__main__":
    set_flush_to_zero(sys.argv[1] == "on")
    probe = float((np.array([5e-324]) * np.float64(1.0))[0])
    # numpy 1.x's "The value of the smallest subnormal ... is zero" must not come up.
    warnings.filterwarnings("error", message=".*smallest subnormal.*")
    print(json.dumps({"probe": probe, "results": _numbers()}))
