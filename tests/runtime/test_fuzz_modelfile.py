"""Fuzzing the model-file reader: tfuq.json field by field, the appended zip byte by byte,
and the TFLite flatbuffer through the interpreter. Every input must end in a usable model
or a ModelFileError (exit 2 from the CLI), never another exception, never a hang."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests._dummies.fuzz import Tally, budget, json_values  # noqa: E402
from tests._dummies.modelfiles import FAKE_FLATBUFFER, VALID_CONFIG, raw_pack  # noqa: E402
from tfuq.runtime import abstain, masks, modelfile, photo  # noqa: E402
from tfuq.runtime.config import ModelConfig  # noqa: E402

pytestmark = pytest.mark.fuzz
CONFIG_TALLY, ZIP_TALLY, FLATBUFFER_TALLY = Tally("model files: tfuq.json"), Tally("model files: zip"), Tally("model files: flatbuffer")


def consume(config: ModelConfig) -> None:
    """Read an accepted configuration the way the runtime, the CLI and inspect do."""
    passes = config.passes
    spec = config.input
    shape = (spec.height, spec.width, spec.channels)
    assert shape[2] == 3 and min(shape) >= 1
    labels = list(config.labels or [])
    assert all(isinstance(label, str) and not any(ord(c) < 32 or ord(c) == 127 for c in label) for label in labels)
    rule = config.decision_rule()
    abstain.describe_rule(rule)
    abstain.rule_conf_factor(rule)
    try:
        photo.rule_of(config)
    except photo.PhotoError:  # an unknown rule: refused in one line when a photo is read
        pass
    layers = config.mc_dropout
    text = [f"{config.mode} {config.seed_scheme.name} v{config.seed_scheme.version}"]
    text += [f"{layer.layer}: {layer.rate}" for layer in layers]
    assert ModelConfig.from_json(config.to_json()) == config  # what a rewrite keeps
    if config.mode == "masked":
        specs = [(layer.feature_shape, layer.rate) for layer in layers]
        assert all(layer.shape[0] == passes for layer in layers)
        if sum(np.prod(s) for s, _ in specs) * passes <= 100_000:
            drawn = masks.masks_for(0, passes, specs)
            assert [m.shape for m in drawn] == [(passes, *s) for s, _ in specs]


def _paths(value, prefix=()):
    """Every path into a JSON tree (keys and list indices), the root excluded."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


PATHS = sorted(_paths(VALID_CONFIG), key=repr)


@st.composite
def mutated_configs(draw):
    config = copy.deepcopy(VALID_CONFIG)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = config
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):  # an earlier change removed the path
            continue
    return config


@settings(max_examples=budget(400))
@given(mutated_configs())
@example({**VALID_CONFIG, "passes": True})  # a bool is not a number of passes
@example({**VALID_CONFIG, "passes": 2})  # the mask shape says 3
@example({**VALID_CONFIG, "mode": "masked", "mc_dropout": [{"layer": "d", "input": "image", "shape": [3, 4], "rate": 0.5}]})
@example({**VALID_CONFIG, "decision": {"rule": "threshold", "score": "max_probability", "threshold": float("nan")}})
@example({**VALID_CONFIG, "input": {**VALID_CONFIG["input"], "height": 10**9}})
def test_every_tfuq_json_field_is_checked(config):
    data = raw_pack(FAKE_FLATBUFFER, config)
    try:
        flatbuffer, read = modelfile.split(data)
    except modelfile.ModelFileError as error:
        assert str(error).strip() and "\n" not in str(error)
        CONFIG_TALLY.add("ModelFileError")
        return
    assert flatbuffer == FAKE_FLATBUFFER
    consume(read)  # whatever passes the check, every reader can use
    CONFIG_TALLY.add("accepted")


@settings(max_examples=budget(100))
@given(st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_a_config_that_is_not_json_or_not_an_object(text):
    for payload in (text.encode("utf-8", "surrogatepass"), json.dumps(text).encode()):
        try:
            modelfile.split(raw_pack(FAKE_FLATBUFFER, payload))
        except modelfile.ModelFileError:
            CONFIG_TALLY.add("ModelFileError")
        else:  # pragma: no cover - no text is a valid configuration
            raise AssertionError(f"accepted {payload!r}")


def test_deeply_nested_json_is_refused():
    payload = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(modelfile.ModelFileError):
        modelfile.split(raw_pack(FAKE_FLATBUFFER, payload))


VALID_FILE = modelfile.pack(FAKE_FLATBUFFER, {k: v for k, v in VALID_CONFIG.items() if not k.startswith("format")})


@st.composite
def mutated_bytes(draw, original: bytes):
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "append", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@settings(max_examples=budget(400))
@given(mutated_bytes(VALID_FILE))
@example(VALID_FILE[: len(VALID_FILE) - 22])  # no end-of-central-directory record
@example(VALID_FILE + b"PK\x05\x06" + bytes(18))  # a second, empty zip directory at the end
def test_the_appended_zip_byte_by_byte(data):
    try:
        flatbuffer, config = modelfile.split(data)
    except modelfile.ModelFileError:
        ZIP_TALLY.add("ModelFileError")
        return
    consume(config)
    assert flatbuffer[4:8] == b"TFL3"
    ZIP_TALLY.add("accepted")


# -- the flatbuffer itself, through the interpreter and `tfuq inspect` -----------------------
@pytest.fixture(scope="module")
def tiny_file(tiny_tflite) -> bytes:
    return open(tiny_tflite, "rb").read()


def _flip_flatbuffer(data: bytes, changes: list[tuple[float, int]]) -> bytes:
    flatbuffer, config = modelfile.split(data)
    mutated = bytearray(flatbuffer)
    for where, value in changes:
        mutated[int(where * (len(mutated) - 1))] = value
    return raw_pack(bytes(mutated), config.to_dict())


@settings(max_examples=budget(120))
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=16))
def test_a_damaged_flatbuffer_loads_and_runs_or_is_refused(tiny_file, tmp_path_factory, changes):
    import tfuq
    from tfuq.cli.main import main

    data = _flip_flatbuffer(tiny_file, changes)
    loaded = False
    try:
        model = tfuq.load(data)
        loaded = True
        probabilities = model.run(np.zeros((1, *model.input_shape), np.uint8), seed=1)
        assert probabilities.shape == (model.passes, 1, model.classes)
        outcome = "ran"
    except modelfile.ModelFileError:  # refused at load, or the interpreter failed to run it
        outcome = "ModelFileError"
    path = tmp_path_factory.mktemp("flipped") / "m.tflite"
    path.write_bytes(data)
    status = main(["inspect", str(path), "--json"])
    assert status == (0 if loaded else 2)  # inspect loads but does not run
    FLATBUFFER_TALLY.add(outcome)


def test_tensor_names_that_are_not_utf8_are_a_model_file_error(tiny_file):
    # Found by the fuzzer: ai-edge-litert raised UnicodeDecodeError from get_input_details.
    import tfuq

    flatbuffer, config = modelfile.split(tiny_file)
    at = flatbuffer.find(b"mask_0")
    damaged = flatbuffer[:at] + b"\xfb" + flatbuffer[at + 1 :]
    with pytest.raises(modelfile.ModelFileError):
        tfuq.load(raw_pack(damaged, config.to_dict()))
