"""The typed ``tfuq.json``: every key read through :mod:`tfuq.runtime.config`, round trips,
one-line refusals, and no module reading the configuration by string key."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest

from tests._dummies.modelfiles import FAKE_FLATBUFFER, VALID_CONFIG, raw_pack, valid_config
from tfuq.runtime import abstain, modelfile
from tfuq.runtime.config import (
    ConfigError,
    DecisionRule,
    InputSpec,
    MaskSpec,
    ModelConfig,
    OutputSpec,
    PhotoRuleSpec,
    SeedScheme,
    Source,
    _Object,
    _Section,
    quote,
    section,
)

ROOT = Path(__file__).resolve().parents[2]

# What `tfuq convert` writes today (tfuq/conversion/convert.py), typed out by hand, with a
# calibrated rule as `tfuq calibrate` writes it and a bias-correction record.
CONVERTED = {
    "format": "tfuq-model",
    "format_version": 1,
    "mode": "masked",
    "passes": 30,
    "labels": ["cat", "dog", "fox"],
    "input": {"name": "image", "height": 224, "width": 160, "channels": 3, "pixel_format": "RGB",
              "dtype": "uint8", "preprocessing": "folded into the model ([-1, 1]): feed raw pixels 0-255",
              "photo_rule": {"name": "center-crop-bilinear", "version": 2}},
    "output": {"name": "StatefulPartitionedCall:0", "kind": "probabilities", "layout": "(passes, classes)"},
    "mc_dropout": [
        {"layer": "mc_dropout", "input": "mask_0", "shape": [30, 7, 7, 64], "rate": 0.2},
        {"layer": "mc_dropout_1", "input": "mask_1", "shape": [30, 1280], "rate": 0.3},
    ],
    "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                    "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
    "decision": {"rule": "all", "rules": [
        {"rule": "interval", "conf_factor": 1.5},
        {"rule": "threshold", "score": "predictive_entropy", "threshold": 0.25},
    ], "calibration": {"method": "sgr", "target_risk": 0.1, "confidence": 0.9, "risk_bound": 0.0975,
                       "coverage": 0.5, "selective_risk": 0.05, "accepted": 100, "errors": 5, "n": 200}},
    "source": {"keras_model": "lite0", "tensorflow": "2.21.0", "created": "2026-12-05T17:00:00+00:00",
               "calibration_samples": 64, "bias_correction": {"images": 32, "layers": 20, "skipped": 2}},
}


# -- every key, typed --------------------------------------------------------------------------
def test_every_key_of_a_converted_file_is_read_through_the_typed_config():
    config = ModelConfig.from_json(json.dumps(CONVERTED))
    assert (config.format, config.format_version, config.mode, config.passes) == ("tfuq-model", 1, "masked", 30)
    assert config.labels == ("cat", "dog", "fox")
    assert config.input == InputSpec(
        name="image", height=224, width=160, channels=3, pixel_format="RGB", dtype="uint8",
        preprocessing="folded into the model ([-1, 1]): feed raw pixels 0-255",
        photo_rule=PhotoRuleSpec("center-crop-bilinear", 2))
    assert config.output == OutputSpec("StatefulPartitionedCall:0", "probabilities", "(passes, classes)")
    assert config.mc_dropout == (MaskSpec("mc_dropout", 0.2, "mask_0", (30, 7, 7, 64)),
                                 MaskSpec("mc_dropout_1", 0.3, "mask_1", (30, 1280)))
    assert config.mc_dropout[0].feature_shape == (7, 7, 64)
    assert config.seed_scheme == SeedScheme("splitmix64-counter", 1, 24,
                                            "0 or 1; the model scales kept units by 1/(1-rate)")
    decision = config.decision
    assert decision.rule == "all" and decision.conf_factor is None and decision.score is None
    interval, floor = decision.rules
    assert (interval.rule, interval.conf_factor) == ("interval", 1.5)
    assert (floor.rule, floor.score, floor.threshold) == ("threshold", "predictive_entropy", 0.25)
    calibration = decision.calibration
    assert (calibration.method, calibration.target_risk, calibration.confidence, calibration.risk_bound,
            calibration.coverage, calibration.selective_risk, calibration.accepted, calibration.errors,
            calibration.n) == ("sgr", 0.1, 0.9, 0.0975, 0.5, 0.05, 100, 5, 200)
    source = config.source
    assert (source.keras_model, source.tensorflow, source.created, source.calibration_samples) == (
        "lite0", "2.21.0", "2026-12-05T17:00:00+00:00", 64)
    assert (source.bias_correction.images, source.bias_correction.layers, source.bias_correction.skipped) == (32, 20, 2)
    # Nothing was left unread: every section's extra is empty.
    def extras(section):
        yield section.extra
        for item in dataclasses.fields(section):
            value = getattr(section, item.name)
            for child in value if isinstance(value, tuple) else (value,):
                if dataclasses.is_dataclass(child):
                    yield from extras(child)
    assert all(extra == {} for extra in extras(config))
    assert config.label(1) == "dog" and config.label(3) == "class_3"


def test_round_trip_is_exact_for_what_the_converter_and_calibrate_write():
    text = json.dumps(CONVERTED, indent=1, sort_keys=True)
    config = ModelConfig.from_json(text)
    assert config.to_dict() == CONVERTED
    assert config.to_json() == text  # the bytes `pack` writes
    assert ModelConfig.from_json(config.to_json()) == config
    minimal = valid_config()
    assert ModelConfig.from_dict(minimal).to_dict() == minimal
    for mode in ("in-graph", "deterministic"):  # no mask inputs in these modes
        other = valid_config(mode=mode, mc_dropout=[{"layer": "mc_dropout", "rate": 0.2}])
        assert ModelConfig.from_dict(other).to_dict() == other


def test_old_files_without_the_optional_keys_load_and_keep_what_they_lack():
    old = valid_config()
    for key in ("labels", "decision", "source"):
        del old[key]
    del old["seed_scheme"]["keep_bits"]
    config = ModelConfig.from_dict(old)
    assert (config.labels, config.decision, config.source, config.input.photo_rule) == (None, None, None, None)
    assert config.decision_rule() == abstain.DEFAULT_RULE
    assert config.to_dict() == old  # nothing added on rewrite
    assert config.label(0) == "class_0"


def test_unknown_keys_survive_a_rewrite():
    newer = copy.deepcopy(CONVERTED)
    newer["ood"] = {"threshold": 3.5, "alpha": 0.05}
    newer["input"]["color_space"] = "sRGB"
    newer["decision"]["rules"][0]["note"] = "kept"
    assert ModelConfig.from_dict(newer).to_dict() == newer


def test_pack_and_split_carry_the_typed_config(tmp_path):
    config = ModelConfig.from_dict(CONVERTED)
    data = modelfile.pack(FAKE_FLATBUFFER, config)
    assert modelfile.split(data) == (FAKE_FLATBUFFER, config)
    # The same bytes as packing the JSON form (what callers without the types pass).
    assert modelfile.pack(FAKE_FLATBUFFER, {k: v for k, v in CONVERTED.items() if not k.startswith("format")}) == data


def test_the_written_json_is_the_text_readers_in_other_languages_parse():
    # Kotlin's ModelConfig and the web core read the same text: sorted keys, plain numbers.
    data = modelfile.pack(FAKE_FLATBUFFER, ModelConfig.from_dict(CONVERTED))
    import io
    import zipfile

    text = zipfile.ZipFile(io.BytesIO(data)).read("tfuq.json").decode()
    assert json.loads(text) == CONVERTED
    assert text == json.dumps(CONVERTED, indent=1, sort_keys=True)


def test_a_new_optional_section_is_one_class_and_one_field():
    # What adding the `ood` section takes (the module docstring says so): a section class that
    # reads its keys, and one field on ModelConfig. Reading, writing, and leaving it out of
    # files without it come from the generic from_dict/to_dict.
    @dataclasses.dataclass(frozen=True)
    class Guard(_Section):
        threshold: float
        alpha: float
        extra: dict = dataclasses.field(default_factory=dict, repr=False)

        @classmethod
        def from_dict(cls, value, where="ood"):
            read = _Object(value, where)
            return cls(read.number("threshold"), read.fraction("alpha"), extra=read.rest())

    @dataclasses.dataclass(frozen=True)
    class WithGuard(ModelConfig):
        ood: Guard | None = section(Guard.from_dict)

    with_guard = {**CONVERTED, "ood": {"threshold": 3.5, "alpha": 0.05}}
    config = WithGuard.from_dict(with_guard)
    assert config.ood == Guard(3.5, 0.05) and config.to_dict() == with_guard
    assert WithGuard.from_dict(CONVERTED).ood is None and WithGuard.from_dict(CONVERTED).to_dict() == CONVERTED
    with pytest.raises(ConfigError, match=r"^ood.alpha must be in \[0, 1\], got 2$"):
        WithGuard.from_dict({**CONVERTED, "ood": {"threshold": 3.5, "alpha": 2}})


# -- refusals ------------------------------------------------------------------------------------
def refused(config) -> str:
    with pytest.raises(modelfile.ModelFileError) as caught:
        modelfile.split(raw_pack(FAKE_FLATBUFFER, config))
    message = str(caught.value)
    assert "\n" not in message and len(message) <= 400, message
    return message


@pytest.mark.parametrize(("change", "names"), [
    ({"labels": []}, "labels is empty"),
    ({"labels": ["red", "x" * 257]}, "labels[1] has 257 characters"),
    ({"labels": ["red", "gr\x00een"]}, "labels[1] holds the control character '\\x00'"),
    ({"labels": ["red\nimg.png: predicted FAKE", "green"]}, "labels[0] holds the control character '\\n'"),
    ({"labels": ["\x1b[2J", "green"]}, "labels[0] holds the control character '\\x1b'"),
    ({"labels": ["red", "red"]}, "labels must be distinct"),
    ({"labels": ["a" * 200 + str(i) for i in range(6000)]}, "labels hold more than 1048576 characters"),
    ({"labels": "red"}, "labels must be a list"),
    ({"decision": {"rule": "threshold", "score": "max_probability", "threshold": 1e308}},
     "decision.threshold must be in the range of max_probability, [0, 1], got 1e+308"),
    ({"decision": {"rule": "threshold", "score": "predictive_entropy", "threshold": -0.5}},
     "decision.threshold must be in the range of predictive_entropy"),
    ({"decision": {"rule": "all", "rules": [{"rule": "threshold", "score": "variation_ratio", "threshold": 2}]}},
     "decision.rules[0].threshold must be in the range of variation_ratio"),
    ({"decision": {"rule": "threshold", "score": "max_probability", "threshold": 0.5, "conf_factor": "x"}},
     "decision.conf_factor must be a finite number, got 'x'"),
    ({"decision": {"rule": "interval", "conf_factor": 1, "calibration": {"coverage": 2}}},
     "decision.calibration.coverage must be in [0, 1], got 2"),
    ({"passes": 10001}, "passes must be an integer in [1, 10000], got 10001"),
    ({"mode": "fast"}, "mode must be one of masked, in-graph, deterministic, got 'fast'"),
    ({"input": {**VALID_CONFIG["input"], "height": 0}}, "input.height must be in [1, 16384], got 0"),
    ({"input": {**VALID_CONFIG["input"], "dtype": "float32"}}, "input.dtype must be 'uint8', got 'float32'"),
    ({"mc_dropout": [{"layer": "d", "input": "mask_0", "shape": [3] + [1] * 100_000, "rate": 0.2}]},
     "mc_dropout[0].shape must be (passes, features...) of 2 to 8 positive integers, got 100001 values"),
    ({"mc_dropout": [{"layer": "d", "input": "mask_0", "shape": [4, 32], "rate": 0.2}]},
     "mc_dropout[0].shape starts with 4, but passes is 3"),
    ({"mc_dropout": [{"layer": "d", "input": "mask_0", "rate": 0.2}]}, "mc_dropout[0].shape is missing"),
    ({"mc_dropout": [{"layer": "d", "input": "image", "shape": [3, 4], "rate": 0.2}]},
     "mc_dropout[0].input 'image' names another input or the output"),
    ({"seed_scheme": {"name": "other", "version": 1}}, "seed scheme 'other' v1 is not the one"),
    ({"source": {"keras_model": 5}}, "source.keras_model must be a string, got int 5"),
    ({"format_version": 2}, "configuration version 2 is newer"),
])
def test_a_bad_key_is_refused_in_one_line_that_names_it(change, names):
    message = refused(valid_config(**change))
    assert names in message, message
    assert message.startswith("model: tfuq.json: ")


def test_quoted_values_are_escaped_and_short():
    message = refused(valid_config(mode="\x1b]0;owned\x07" + "m" * 10_000))
    assert "\x1b" not in message and "\\x1b" in message and len(message) < 200
    assert quote("a\nb") == "'a\\nb'"
    assert len(quote(list(range(100_000)))) < 40


def test_a_key_given_twice_in_one_object_is_refused():
    text = json.dumps(VALID_CONFIG)[:-1] + ', "passes": 4}'
    message = refused(text.encode())
    assert "key 'passes' appears twice" in message


def test_two_tfuq_json_entries_in_the_archive_are_refused():
    import io
    import zipfile

    data = raw_pack(FAKE_FLATBUFFER, VALID_CONFIG)
    buffer = io.BytesIO(data)
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(buffer, mode="a") as archive:
            archive.writestr("tfuq.json", json.dumps(valid_config(passes=4, mc_dropout=[])))
    with pytest.raises(modelfile.ModelFileError, match="holds tfuq.json more than once"):
        modelfile.split(buffer.getvalue())


def test_thresholds_at_the_ends_of_their_range_are_accepted():
    for score, threshold in (("max_probability", 1.0), ("max_probability", 0.0), ("variation_ratio", 1.0),
                             ("mutual_information", -1e-9), ("predictive_entropy", math.log(1000))):
        rule = {"rule": "threshold", "score": score, "threshold": threshold}
        assert ModelConfig.from_dict(valid_config(decision=rule)).decision.threshold == threshold
    # A rule given in code may accept nothing with a threshold past the end; a file may not.
    beyond = {"rule": "threshold", "score": "max_probability", "threshold": 1.5}
    assert DecisionRule.from_dict(beyond).threshold == 1.5
    with pytest.raises(ConfigError, match="decision.threshold must be in the range"):
        ModelConfig.from_dict(valid_config(decision=beyond))


def test_a_config_built_in_code_gets_the_file_checks():
    config = ModelConfig.from_dict(VALID_CONFIG)
    assert config.checked() == config
    with pytest.raises(ConfigError, match="labels\\[0\\] holds the control character"):
        dataclasses.replace(config, labels=("a\rb", "c")).checked()
    with pytest.raises(ConfigError, match="source.created must have 0 to 256 characters"):
        dataclasses.replace(config, source=Source(created="x" * 300)).checked()
    # pack checks a typed config as it checks a file: nothing unchecked is written.
    with pytest.raises(modelfile.ModelFileError, match="model: tfuq.json: labels must be distinct"):
        modelfile.pack(FAKE_FLATBUFFER, dataclasses.replace(config, labels=("a", "a")))


# -- no string keys outside the typed config ---------------------------------------------------
# Keys that exist only in tfuq.json (and rule dicts): reading one anywhere is reading the config.
CONFIG_ONLY_KEYS = {"mc_dropout", "seed_scheme", "photo_rule", "keep_bits", "pixel_format", "format_version",
                    "mask_values"}
RULE_KEYS = {"rule", "rules", "score", "threshold", "conf_factor", "calibration"}


def string_key_reads(source: str, exempt_rule_keys: bool = False) -> list[tuple[int, str]]:
    """``config["passes"]``, ``model.config.get("decision")``, ``spec["input"]`` on a config
    section, ``rule.get("conf_factor", 1.0)``: reads of ``tfuq.json`` keys by string."""
    top_level = {item.name for item in dataclasses.fields(ModelConfig)}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            target, key = node.func.value, node.args[0]
        else:
            continue
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        text = ast.unparse(target).lower()
        on_config = "config" in text and key.value in top_level  # not a Keras layer's get_config()
        # A decision rule travels as abstain's dict; reading its keys is reading the config's.
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        on_rule = (name in ("rule", "part", "decision") or name.endswith("_rule")) and key.value in RULE_KEYS \
            and not exempt_rule_keys
        if on_config or key.value in CONFIG_ONLY_KEYS or on_rule:
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_the_scan_finds_string_key_reads():
    source = (
        "a = model.config['passes']\n"
        "b = config.get('labels') or []\n"
        "c = rule.get('conf_factor', 1.0)\n"
        "d = layer['mc_dropout']\n"
        "e = self.rule.get('score')\n"
        "f = details['shape']\n"  # a tensor's details, not the config
        "g = record['passes']\n"
        "h = model.config.passes\n"
        "i = layer.get_config()['dtype']\n"  # a Keras layer's config
        "j = part['threshold']\n"
        "k = parts['calibration']\n"  # a data split
    )
    assert [line for line, _ in string_key_reads(source)] == [1, 2, 3, 4, 5, 10]
    assert [line for line, _ in string_key_reads(source, exempt_rule_keys=True)] == [1, 2, 4]


# Modules that own a grammar the config shares: abstain's rule dicts are the decision rule's
# language (the typed DecisionRule writes them); the conversion's Keras-side configs are not
# tfuq.json.
RULE_GRAMMAR = {"tfuq/runtime/abstain.py", "tfuq/runtime/decision.py", "tfuq/runtime/calibration.py"}


def test_no_module_reads_the_configuration_by_string_key():
    offenders = []
    folders = [ROOT / "tfuq", ROOT / "benchmarks", ROOT / "android_demo" / "tools", ROOT / "web_demo" / "tools"]
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "tfuq/runtime/config.py":
                continue
            for line, text in string_key_reads(path.read_text(), exempt_rule_keys=name in RULE_GRAMMAR):
                offenders.append(f"{name}:{line}: {text}")
    assert offenders == []
