"""``tfuq.json``, the configuration a model file carries, as typed dataclasses.

One class per section, named as in the Kotlin core's ``ModelConfig.kt`` (``InputSpec``,
``MaskSpec``, ``SeedScheme``, ``DecisionRule``, ``PhotoRuleSpec``); field names are the JSON
keys. Each section checks its own keys when read (``from_dict``) and writes them back
(``to_dict``); :class:`ModelConfig` checks what spans sections (mask shapes against
``passes``, tensor names distinct). Keys a section does not know are kept in its ``extra``
and written back unchanged, so a file from a newer writer survives a rewrite (``tfuq
calibrate``).

    >>> config = ModelConfig.from_json(text)               # doctest: +SKIP
    >>> config.passes, config.input.height, config.decision.rule       # doctest: +SKIP
    (30, 224, 'all')
    >>> ModelConfig.from_json(config.to_json()) == config  # doctest: +SKIP
    True

Errors are :class:`ConfigError` (a ``ValueError``): one line that names the key
(``input.height must be in [1, 16384], got 0``), quoting file content repr-style and cut
short, so a label holding an escape sequence or a shape of rank 100,000 cannot flood or
forge a terminal.

Adding an optional section (``ood``, say): write a frozen ``_Section`` dataclass with
``from_dict(value, where)`` that reads its keys through :class:`_Object` (one checked getter
per key) and keeps ``extra``; add one line among the optional fields of :class:`ModelConfig`,
``ood: OodSpec | None = section(OodSpec.from_dict)``; put checks against other sections (an
output it names exists, say) in :meth:`ModelConfig._check_consistency`. Reading and
``to_dict`` need no change: they go over the fields, nested sections by their own
``to_dict``, ``None`` left out, so files without the section are read and written as before
(``tests/runtime/test_config.py`` does exactly this). Readers use ``config.ood``. A new kind
of decision rule (an ``ood`` part of an ``all`` rule) is a kind in ``abstain.check_rule``'s
grammar, and its keys read in :meth:`DecisionRule._typed` as fields of :class:`DecisionRule`;
until then they are kept in ``extra``.

No TensorFlow; the decision grammar (:mod:`tfuq.runtime.abstain`) and the seed scheme
(:mod:`tfuq.runtime.masks`) it checks against bring numpy, as the rest of the runtime does.
"""

from __future__ import annotations

import json
import math
import reprlib
import unicodedata
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

FORMAT = "tfuq-model"
FORMAT_VERSION = 1
MODES = ("masked", "in-graph", "deterministic")
MAX_SIDE = 16384  # pixels; larger inputs are not images a phone or a Pi runs
MAX_PASSES = 10000
MAX_MASK_VALUES = 1 << 26  # uint8 mask values per invoke (64 MiB): beyond, a hostile file
MAX_MASK_RANK = 8  # (passes, features...): a convolution's mask has rank 4
MAX_NAME = 256  # characters in a tensor, layer, or rule name, and in one label
MAX_LABELS_TEXT = 1 << 20  # characters in all labels together (ImageNet-21k needs ~600k)
MAX_TEXT = 4096  # characters in a descriptive string (preprocessing, source, ...)
# The range of each score (natural logarithms); a threshold outside it is a damaged file.
# Entropies are at most ln(classes); 2**31 classes bound any model a runtime can hold.
MAX_ENTROPY = math.log(2**31)
SCORE_RANGES = {
    "max_probability": (0.0, 1.0),
    "variation_ratio": (0.0, 1.0),
    "predictive_entropy": (0.0, MAX_ENTROPY),
    "mutual_information": (0.0, MAX_ENTROPY),
}
_SLACK = 1e-6  # a calibrated threshold is a float32 score, which may round past the ends
_MAX_MESSAGE = 300


class ConfigError(ValueError):
    """A ``tfuq.json`` that is not a usable configuration; the message is one short line."""

    def __init__(self, message: str):
        message = " ".join(message.splitlines())  # one line, whatever a caller quoted
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        super().__init__(message)


_QUOTE = reprlib.Repr()
_QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlist, _QUOTE.maxdict, _QUOTE.maxlevel = 40, 40, 6, 4, 2
_QUOTE.maxlong = 24


def quote(value: Any) -> str:
    """``value`` for an error message: repr-style (control characters escaped) and short.

    >>> quote("a\\x1b[2Jb")
    "'a\\\\x1b[2Jb'"
    >>> quote(list(range(100_000)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    return _QUOTE.repr(value)


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _unprintable(text: str) -> str | None:
    """The first character a terminal would act on (control, surrogate, line separator)."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or "\u202a" <= char <= "\u202e" \
                or "\u2066" <= char <= "\u2069":
            return char
    return None


# -- reading one JSON object -----------------------------------------------------------------
class _Object:
    """A JSON object read into a section: one checked getter per key, each naming the key
    (``where.key``) when the value is missing or wrong; :meth:`rest` is what no getter read."""

    def __init__(self, value: Any, where: str):
        if not isinstance(value, dict):
            raise ConfigError(f"{where or 'the configuration'} must be a JSON object, got {_kind(value)}")
        self.value, self.where, self._read = value, where, set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str):
        raise ConfigError(f"{self.path(key)} {message}")

    def get(self, key: str, required: bool = True) -> Any:
        self._read.add(key)
        if key not in self.value:
            if required:
                self.fail(key, "is missing")
            return None
        return self.value[key]

    def typed(self, key: str, kind: type, required: bool = True) -> Any:
        value = self.get(key, required)
        if key not in self.value:
            return None
        if not isinstance(value, kind) or isinstance(value, bool):
            self.fail(key, f"must be {_KIND_NAMES[kind]}, got {_kind(value)} {quote(value)}")
        return value

    def integer(self, key: str, low: int, high: int | None = None, required: bool = True) -> int | None:
        value = self.typed(key, int, required)
        if value is not None and not (low <= value and (high is None or value <= high)):
            self.fail(key, f"must be in [{low}, {high}], got {quote(value)}" if high is not None
                      else f"must be at least {low}, got {quote(value)}")
        return value

    def number(self, key: str, required: bool = True, nullable: bool = False) -> float | None:
        value = self.get(key, required)
        if value is None and (nullable or key not in self.value):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {quote(value)}")
        return float(value)

    def fraction(self, key: str, required: bool = True, nullable: bool = False) -> float | None:
        value = self.number(key, required, nullable)
        if value is not None and not 0.0 <= value <= 1.0:
            self.fail(key, f"must be in [0, 1], got {value:g}")
        return value

    def text(self, key: str, required: bool = True, limit: int = MAX_TEXT, minimum: int = 0) -> str | None:
        value = self.typed(key, str, required)
        if value is None:
            return None
        if not minimum <= len(value) <= limit:
            self.fail(key, f"must have {minimum} to {limit} characters, got {len(value)}")
        if (char := _unprintable(value)) is not None:
            self.fail(key, f"holds the control character {char!r}: {quote(value)}")
        return value

    def name(self, key: str, required: bool = True) -> str | None:
        return self.text(key, required, limit=MAX_NAME, minimum=1)

    def section(self, key: str, read: Callable[[Any, str], Any], required: bool = True) -> Any:
        value = self.get(key, required)
        if key not in self.value:
            return None
        return read(value, self.path(key))

    def rest(self) -> dict:
        return {key: value for key, value in self.value.items() if key not in self._read}


def section(read: Callable[[Any, str], Any], required: bool = False) -> Any:
    """A field of a section that holds a key of ``tfuq.json``, read by ``read(value, where)``.

    Optional ones default to None (the key is absent, and ``to_dict`` leaves it out).
    """
    if required:
        return field(metadata={"read": read})
    return field(default=None, metadata={"read": read})


def _json_value(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    return value


class _Section:
    """``to_dict`` for every section: each field under its own name, None left out, nested
    sections by their own ``to_dict``, over the ``extra`` keys the file held."""

    extra: dict

    def to_dict(self) -> dict:
        written = dict(self.extra)
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "extra" and value is not None:
                written[item.name] = _json_value(value)
        return written


# -- the sections ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoRuleSpec(_Section):
    """``input.photo_rule``: how a photo becomes the input (:mod:`tfuq.runtime.photo`)."""

    name: str
    version: int
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "input.photo_rule") -> PhotoRuleSpec:
        read = _Object(value, where)
        return cls(read.name("name"), read.integer("version", 0), extra=read.rest())


def _photo_rule(value: Any, where: str) -> PhotoRuleSpec | None:
    return None if value is None else PhotoRuleSpec.from_dict(value, where)  # null: no rule


@dataclass(frozen=True)
class InputSpec(_Section):
    """``input``: the image input, uint8 RGB pixels ``(1, height, width, 3)``."""

    name: str
    height: int
    width: int
    channels: int
    pixel_format: str | None = None
    dtype: str | None = None
    preprocessing: str | None = None
    #: None: converted before the rule existed; photos are stretched (``photo.STRETCH``).
    photo_rule: PhotoRuleSpec | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "input") -> InputSpec:
        read = _Object(value, where)
        spec = cls(
            name=read.name("name"),
            height=read.integer("height", 1, MAX_SIDE),
            width=read.integer("width", 1, MAX_SIDE),
            channels=read.integer("channels", 3, 3),
            pixel_format=read.text("pixel_format", required=False),
            dtype=read.text("dtype", required=False),
            preprocessing=read.text("preprocessing", required=False),
            photo_rule=read.section("photo_rule", _photo_rule, required=False),
            extra=read.rest(),
        )
        # Another layout would run but classify garbage: the runtime feeds RGB bytes.
        for key, expected in (("pixel_format", "RGB"), ("dtype", "uint8")):
            if getattr(spec, key) not in (None, expected):
                read.fail(key, f"must be {expected!r}, got {quote(getattr(spec, key))}")
        return spec


@dataclass(frozen=True)
class OutputSpec(_Section):
    """``output``: the probabilities tensor, ``(passes, classes)`` per invoke."""

    name: str
    kind: str | None = None
    layout: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "output") -> OutputSpec:
        read = _Object(value, where)
        return cls(read.name("name"), read.text("kind", required=False),
                   read.text("layout", required=False), extra=read.rest())


@dataclass(frozen=True)
class ScoreSpec(_Section):
    """One entry of ``scores``: an out-of-distribution score the graph returns beside the
    probabilities, as the ``(1, 1)`` output ``output``; larger = more like the training data.
    An ``ood`` part of the decision rule reads it by ``name``."""

    name: str
    output: str
    layout: str | None = None
    larger_means: str | None = None
    definition: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "scores[]") -> ScoreSpec:
        read = _Object(value, where)
        return cls(read.name("name"), read.name("output"), read.text("layout", required=False),
                   read.text("larger_means", required=False),
                   read.text("definition", required=False, limit=1024), extra=read.rest())


MAX_SCORES = 8


def _score_specs(value: Any, where: str) -> tuple[ScoreSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list, got {type(value).__name__}")
    if len(value) > MAX_SCORES:
        raise ConfigError(f"{where}: at most {MAX_SCORES} out-of-distribution scores, got {len(value)}")
    specs = tuple(ScoreSpec.from_dict(item, f"{where}[{index}]") for index, item in enumerate(value))
    if len({spec.name for spec in specs}) != len(specs):
        raise ConfigError(f"{where} must have distinct names")
    return specs


@dataclass(frozen=True)
class MaskSpec(_Section):
    """One entry of ``mc_dropout``. In a ``masked`` model ``input`` names the model input
    that takes its mask and ``shape`` is ``(passes, features...)``; other modes have neither."""

    layer: str
    rate: float
    input: str | None = None
    shape: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The shape of one pass's mask: ``shape`` without the passes axis."""
        if self.shape is None:
            raise ValueError(f"MC dropout layer {self.layer!r} has no mask input")
        return self.shape[1:]

    @classmethod
    def from_dict(cls, value: Any, where: str = "mc_dropout[0]") -> MaskSpec:
        read = _Object(value, where)
        rate = read.number("rate")
        if not 0.0 < rate < 1.0:
            read.fail("rate", f"must be in (0, 1), got {rate:g}")
        shape = read.typed("shape", list, required=False)
        if shape is not None and not (
            2 <= len(shape) <= MAX_MASK_RANK
            and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_MASK_VALUES for d in shape)
        ):
            read.fail("shape", f"must be (passes, features...) of 2 to {MAX_MASK_RANK} positive "
                               f"integers, got {len(shape)} values {quote(shape)}")
        return cls(layer=read.name("layer"), rate=rate, input=read.name("input", required=False),
                   shape=None if shape is None else tuple(shape), extra=read.rest())


def _mask_specs(value: Any, where: str) -> tuple[MaskSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list, got {_kind(value)}")
    return tuple(MaskSpec.from_dict(layer, f"{where}[{index}]") for index, layer in enumerate(value))


@dataclass(frozen=True)
class SeedScheme(_Section):
    """``seed_scheme``: how run seeds become masks; must be the one :mod:`tfuq.runtime.masks`
    implements, else the masks would look valid and differ from the ones calibrated with."""

    name: str
    version: int
    keep_bits: int | None = None
    mask_values: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "seed_scheme") -> SeedScheme:
        from tfuq.runtime import masks

        read = _Object(value, where)
        scheme = cls(read.text("name", limit=MAX_NAME), read.integer("version", 0),
                     read.integer("keep_bits", 0, required=False),
                     read.text("mask_values", required=False), extra=read.rest())
        if (scheme.name, scheme.version) != (masks.SCHEME, masks.SCHEME_VERSION):
            raise ConfigError(f"seed scheme {quote(scheme.name)} v{scheme.version} is not the one this "
                              f"tfuq draws masks with ({masks.SCHEME} v{masks.SCHEME_VERSION})")
        if scheme.keep_bits not in (None, masks.KEEP_BITS):
            read.fail("keep_bits", f"must be {masks.KEEP_BITS}, got {scheme.keep_bits}")
        return scheme


@dataclass(frozen=True)
class RuleCalibration(_Section):
    """``decision.calibration``: what ``tfuq calibrate`` found (for display; see
    :class:`tfuq.runtime.abstain.Calibration`)."""

    method: str | None = None
    target_risk: float | None = None
    confidence: float | None = None
    risk_bound: float | None = None
    coverage: float | None = None
    selective_risk: float | None = None
    accepted: int | None = None
    errors: int | None = None
    n: int | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "decision.calibration") -> RuleCalibration:
        read = _Object(value, where)
        return cls(
            method=read.text("method", required=False, limit=MAX_NAME),
            **{key: read.fraction(key, required=False, nullable=True)
               for key in ("target_risk", "confidence", "risk_bound", "coverage", "selective_risk")},
            **{key: read.integer(key, 0, required=False) for key in ("accepted", "errors", "n")},
            extra=read.rest(),
        )


@dataclass(frozen=True)
class DecisionRule(_Section):
    """``decision``: a rule of :mod:`tfuq.runtime.abstain` (``interval``, ``threshold``, or
    ``all`` of ``rules``), typed; :meth:`to_dict` is the dict ``abstain.decide`` takes."""

    rule: str
    conf_factor: float | None = None
    score: str | None = None
    threshold: float | None = None
    rules: tuple[DecisionRule, ...] | None = None
    calibration: RuleCalibration | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "decision") -> DecisionRule:
        from tfuq.runtime import abstain

        try:
            checked = abstain.check_rule(value)  # the grammar lives with the decisions
        except abstain.RuleError as error:
            raise ConfigError(f"{where}: {error}") from None
        return cls._typed(checked, where)

    @classmethod
    def _typed(cls, checked: dict, where: str) -> DecisionRule:
        # check_rule has checked each kind's own keys; the others stay in ``extra``, but for
        # a threshold rule's optional conf_factor (the width of its aggregate's intervals).
        read = _Object(checked, where)
        kind = read.get("rule")
        rule = cls(
            rule=kind,
            conf_factor=read.number("conf_factor", required=kind == "interval") if kind != "all" else None,
            score=read.get("score") if kind in ("threshold", "ood") else None,
            threshold=read.number("threshold") if kind in ("threshold", "ood") else None,
            rules=tuple(cls._typed(part, f"{where}.rules[{index}]")
                        for index, part in enumerate(read.get("rules"))) if kind == "all" else None,
            calibration=read.section("calibration", RuleCalibration.from_dict, required=False),
            extra=read.rest(),
        )
        if rule.conf_factor is not None and rule.conf_factor < 0:
            read.fail("conf_factor", f"must be non-negative, got {rule.conf_factor:g}")
        return rule

    def check_ranges(self, where: str = "decision") -> None:
        """Refuse a threshold outside its score's range (:data:`SCORE_RANGES`): in a model
        file it is damage (``1e308``), though a rule given in code may use one to accept
        nothing."""
        if self.threshold is not None and self.rule == "threshold":  # an ood score has no fixed range
            low, high = SCORE_RANGES[self.score]
            if not low - _SLACK <= self.threshold <= high + _SLACK:
                raise ConfigError(f"{where}.threshold must be in the range of {self.score}, "
                                  f"[{low:g}, {high:.4g}], got {self.threshold:g}")
        for index, part in enumerate(self.rules or ()):
            part.check_ranges(f"{where}.rules[{index}]")

    @classmethod
    def default(cls) -> DecisionRule:
        """What a model without ``decision`` is decided by: ``abstain.DEFAULT_RULE``."""
        from tfuq.runtime import abstain

        return cls.from_dict(abstain.DEFAULT_RULE)


@dataclass(frozen=True)
class BiasCorrectionRecord(_Section):
    """``source.bias_correction``: what ``convert --bias-correction`` did."""

    images: int | None = None
    layers: int | None = None
    skipped: int | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "source.bias_correction") -> BiasCorrectionRecord:
        read = _Object(value, where)
        counts = {key: read.integer(key, 0, required=False) for key in ("images", "layers", "skipped")}
        return cls(**counts, extra=read.rest())


@dataclass(frozen=True)
class Source(_Section):
    """``source``: where the model came from (for display)."""

    keras_model: str | None = None
    tensorflow: str | None = None
    created: str | None = None
    calibration_samples: int | None = None
    bias_correction: BiasCorrectionRecord | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, value: Any, where: str = "source") -> Source:
        read = _Object(value, where)
        return cls(
            keras_model=read.text("keras_model", required=False, limit=MAX_NAME),
            tensorflow=read.text("tensorflow", required=False, limit=MAX_NAME),
            created=read.text("created", required=False, limit=MAX_NAME),
            calibration_samples=read.integer("calibration_samples", 0, required=False),
            bias_correction=read.section("bias_correction", BiasCorrectionRecord.from_dict, required=False),
            extra=read.rest(),
        )


# -- top-level keys --------------------------------------------------------------------------
def _mode(value: Any, where: str) -> str:
    if value not in MODES:
        raise ConfigError(f"{where} must be one of {', '.join(MODES)}, got {quote(value)}")
    return value


def _passes(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PASSES:
        raise ConfigError(f"{where} must be an integer in [1, {MAX_PASSES}], got {quote(value)}")
    return value


def _labels(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of strings, got {_kind(value)}")
    if not value:  # a model has at least one class: [] can match no model
        raise ConfigError(f"{where} is empty; give one label per class, or leave the key out")
    total = 0
    for index, label in enumerate(value):
        if not isinstance(label, str):
            raise ConfigError(f"{where}[{index}] must be a string, got {_kind(label)} {quote(label)}")
        if len(label) > MAX_NAME:
            raise ConfigError(f"{where}[{index}] has {len(label)} characters, more than {MAX_NAME}")
        if (char := _unprintable(label)) is not None:
            raise ConfigError(f"{where}[{index}] holds the control character {char!r}: {quote(label)}")
        total += len(label)
        if total > MAX_LABELS_TEXT:
            raise ConfigError(f"{where} hold more than {MAX_LABELS_TEXT} characters in all")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where} must be distinct")
    return tuple(value)


@dataclass(frozen=True)
class ModelConfig(_Section):
    """The whole ``tfuq.json``. Required sections first; optional ones are None when absent.

    Attributes:
        mode: ``masked`` (masks are inputs, all passes in one invoke), ``in-graph`` or
            ``deterministic``.
        passes: MC passes T one run returns.
        labels: one name per class, or None (the model names classes ``class_i``).
        decision: the rule the model file carries, or None (readers use
            :meth:`decision_rule`, which falls back to ``abstain.DEFAULT_RULE``).
    """

    mode: str = section(_mode, required=True)
    passes: int = section(_passes, required=True)
    input: InputSpec = section(InputSpec.from_dict, required=True)
    output: OutputSpec = section(OutputSpec.from_dict, required=True)
    mc_dropout: tuple[MaskSpec, ...] = section(_mask_specs, required=True)
    seed_scheme: SeedScheme = section(SeedScheme.from_dict, required=True)
    labels: tuple[str, ...] | None = section(_labels)
    decision: DecisionRule | None = section(DecisionRule.from_dict)
    scores: tuple[ScoreSpec, ...] | None = section(_score_specs)
    source: Source | None = section(Source.from_dict)
    format: str = field(default=FORMAT, metadata={"read": None})
    format_version: int = field(default=FORMAT_VERSION, metadata={"read": None})
    extra: dict = field(default_factory=dict, repr=False)

    # -- reading and writing -------------------------------------------------------------
    @classmethod
    def from_dict(cls, value: Any, where: str = "") -> ModelConfig:
        """Check and type a parsed ``tfuq.json``; raises :class:`ConfigError` naming the key."""
        read = _Object(value, where)
        if read.get("format", required=False) != FORMAT:
            raise ConfigError(f"not a tfuq model configuration (format is not {FORMAT!r})")
        version = read.typed("format_version", int)
        if version > FORMAT_VERSION:
            raise ConfigError(f"configuration version {version} is newer than this tfuq understands "
                              f"({FORMAT_VERSION}); upgrade tfuq")
        read.integer("format_version", 1)
        values = {"format": FORMAT, "format_version": version}
        for item in fields(cls):
            if item.metadata.get("read") is not None:
                required = item.default is MISSING and item.default_factory is MISSING
                values[item.name] = read.section(item.name, item.metadata["read"], required)
        config = cls(**values, extra=read.rest())
        config._check_consistency()
        return config

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelConfig:
        """Parse ``tfuq.json`` text. A key given twice in one object is refused, as Android's
        ``org.json`` refuses it (Python's ``json`` would keep the last silently)."""
        try:
            value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"not valid JSON ({error})") from error
        except RecursionError as error:
            raise ConfigError("not valid JSON (nested too deeply)") from error
        return cls.from_dict(value)

    def checked(self) -> ModelConfig:
        """This configuration read back through :meth:`from_dict`: for one built in code (the
        converter's), every check a file gets; raises :class:`ConfigError`."""
        return type(self).from_dict(self.to_dict())

    def to_json(self) -> str:
        """The text a model file carries: sorted keys, one-space indent (what ``pack`` writes)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def _check_consistency(self) -> None:
        """What spans sections, or holds for a file only: a masked model's masks match
        ``passes`` and take inputs of their own; the masks of one invoke stay within
        :data:`MAX_MASK_VALUES`; the decision's thresholds lie in their scores' ranges."""
        if self.decision is not None:
            self.decision.check_ranges()
            from tfuq.runtime import abstain

            missing = sorted(set(abstain.rule_scores(self.decision.to_dict())) - set(self.score_names))
            if missing:
                raise ConfigError(f"decision: the OOD guard reads score {quote(missing[0])}, which the "
                                  f"model does not output")
        if self.mode != "masked":
            return
        taken = {self.input.name, self.output.name}
        for index, score in enumerate(self.scores or ()):
            if score.output in taken:
                raise ConfigError(f"scores[{index}].output {quote(score.output)} names an input or another output")
            taken.add(score.output)
        values = 0
        for index, layer in enumerate(self.mc_dropout):
            where = f"mc_dropout[{index}]"
            if layer.input is None or layer.shape is None:
                raise ConfigError(f"{where}.{'input' if layer.input is None else 'shape'} is missing "
                                  f"(a masked model feeds each mask)")
            if layer.input in taken:
                raise ConfigError(f"{where}.input {quote(layer.input)} names another input or the output")
            taken.add(layer.input)
            if layer.shape[0] != self.passes:
                raise ConfigError(f"{where}.shape starts with {layer.shape[0]}, but passes is {self.passes}")
            values += math.prod(layer.shape)
            if values > MAX_MASK_VALUES:
                raise ConfigError(f"masks of more than {MAX_MASK_VALUES} values per invoke")

    # -- what readers ask ----------------------------------------------------------------
    @property
    def score_names(self) -> list[str]:
        """The names of the out-of-distribution scores the model returns (may be empty)."""
        return [score.name for score in self.scores or ()]

    def decision_rule(self) -> dict:
        """The rule to decide by, as ``abstain.decide`` takes it: the carried one, or
        ``abstain.DEFAULT_RULE`` for a file without ``decision``."""
        return (self.decision or DecisionRule.default()).to_dict()

    def label(self, cls: int) -> str:
        """The name of class ``cls``: its label, or ``class_i`` as ``tfuq convert`` names
        unlabelled classes."""
        return self.labels[cls] if self.labels and 0 <= cls < len(self.labels) else f"class_{cls}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ConfigError(f"key {quote(key)} appears twice in one object")
        result[key] = value
    return result
