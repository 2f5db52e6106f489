"""Model files without TensorFlow: a valid tfuq.json, and raw packing of any bytes."""

from __future__ import annotations

import copy
import io
import json
import zipfile

FAKE_FLATBUFFER = b"\x1c\x00\x00\x00TFL3" + bytes(range(200))

VALID_CONFIG = {
    "format": "tfuq-model",
    "format_version": 1,
    "mode": "masked",
    "passes": 3,
    "labels": ["red", "green"],
    "input": {"name": "image", "height": 16, "width": 16, "channels": 3, "pixel_format": "RGB",
              "dtype": "uint8", "preprocessing": "inside the model: feed raw pixels 0-255"},
    "output": {"name": "output_0", "kind": "probabilities", "layout": "(passes, classes)"},
    "mc_dropout": [{"layer": "mc_dropout", "input": "mask_0", "shape": [3, 32], "rate": 0.2}],
    "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                    "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
    "decision": {"rule": "interval", "conf_factor": 1.0},
    "source": {"keras_model": "tiny"},
}


def valid_config(**changes) -> dict:
    """A deep copy of :data:`VALID_CONFIG` with top-level ``changes``."""
    return {**copy.deepcopy(VALID_CONFIG), **changes}


def without_format(config: dict) -> dict:
    """``config`` as :func:`tfuq.runtime.modelfile.pack` takes it (it adds the format keys)."""
    return {k: v for k, v in config.items() if k not in ("format", "format_version")}


def raw_pack(flatbuffer: bytes, payload, name: str = "tfuq.json") -> bytes:
    """``flatbuffer`` + a zip holding ``payload`` (JSON-encoded unless bytes), unchecked."""
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    buffer = io.BytesIO()
    buffer.write(flatbuffer)
    with zipfile.ZipFile(buffer, mode="a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(name, payload)
    return buffer.getvalue()
