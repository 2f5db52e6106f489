"""Read a TFLite flatbuffer: operators, tensor types, and the RANDOM_UNIFORM seeds.

Used to prove a converted model is full-integer by reading the file itself rather than
trusting the converter, for ``tfuq inspect``, and to patch per-run seeds into the in-graph
form. Needs the flatbuffer schema module that ai-edge-litert ships (or TensorFlow's copy).
"""

from __future__ import annotations

import collections
import struct
from dataclasses import dataclass, field


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as schema
        except ImportError as error:
            raise ImportError(
                "reading TFLite flatbuffers needs ai-edge-litert or tensorflow installed"
            ) from error
    return schema


_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")
# Operators that mean a model is not full-integer, whatever its tensors' types.
_FORBIDDEN_OPS = ("DEQUANTIZE", "RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL", "MULTINOMIAL")


@dataclass
class GraphSummary:
    """What a flatbuffer holds, in names a person reads."""

    operators: collections.Counter = field(default_factory=collections.Counter)
    custom_ops: list[str] = field(default_factory=list)
    tensor_types: collections.Counter = field(default_factory=collections.Counter)
    float_tensors: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Reasons the graph is not full-integer (empty when it is)."""
        found = [f"custom or Select TF op {name}" for name in self.custom_ops]
        found += [f"{name} operator" for name in _FORBIDDEN_OPS if self.operators.get(name)]
        found += [f"float tensor {name}" for name in self.float_tensors[:5]]
        if len(self.float_tensors) > 5:
            found.append(f"... and {len(self.float_tensors) - 5} more float tensors")
        return found

    @property
    def full_integer(self) -> bool:
        return not self.problems


def _names(enum_class) -> dict[int, str]:
    return {value: key for key, value in vars(enum_class).items() if not key.startswith("_")}


def summarize(flatbuffer: bytes) -> GraphSummary:
    """Operator histogram and tensor types of every subgraph of a TFLite model."""
    schema = _schema()
    model = schema.Model.GetRootAs(flatbuffer, 0)
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)
    codes = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = "CUSTOM:" + (code.CustomCode() or b"?").decode()
        codes.append(name)
    summary = GraphSummary()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            name = codes[subgraph.Operators(o).OpcodeIndex()]
            summary.operators[name] += 1
            if name.startswith("CUSTOM:") and name not in summary.custom_ops:
                summary.custom_ops.append(name)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            type_name = type_names.get(tensor.Type(), str(tensor.Type()))
            summary.tensor_types[type_name] += 1
            if type_name in _FLOAT_TYPES:
                summary.float_tensors.append((tensor.Name() or b"?").decode())
    return summary


def operator_outputs(flatbuffer: bytes) -> list[tuple[str, tuple[int, ...]]]:
    """(operator name, shape of its first output) for the main subgraph, in execution order."""
    schema = _schema()
    model = schema.Model.GetRootAs(flatbuffer, 0)
    op_names = _names(schema.BuiltinOperator)
    subgraph = model.Subgraphs(0)
    found = []
    for o in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(o)
        code = model.OperatorCodes(operator.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        tensor = subgraph.Tensors(operator.Outputs(0))
        found.append((name, tuple(int(d) for d in tensor.ShapeAsNumpy())))
    return found


def random_seed_offsets(flatbuffer: bytes) -> list[tuple[int, int]]:
    """Byte offsets of the (seed, seed2) int64 fields of every RANDOM_UNIFORM operator."""
    schema = _schema()
    model = schema.Model.GetRootAs(flatbuffer, 0)
    random_codes = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == (
            schema.BuiltinOperator.RANDOM_UNIFORM
        ):
            random_codes.add(index)
    offsets = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            if operator.OpcodeIndex() not in random_codes:
                continue
            table = operator.BuiltinOptions()
            if table is None:
                raise ValueError("RANDOM_UNIFORM operator without RandomOptions")
            options = schema.RandomOptions()
            options.Init(table.Bytes, table.Pos)
            seed_at, seed2_at = options._tab.Offset(4), options._tab.Offset(6)
            if not seed_at or not seed2_at:
                raise ValueError(
                    "RANDOM_UNIFORM seeds are not stored in the file (converted with seed 0); "
                    "re-export with tfuq so they can be patched"
                )
            offsets.append((table.Pos + seed_at, table.Pos + seed2_at))
    return offsets


def with_random_seeds(flatbuffer: bytes, seeds: list[tuple[int, int]]) -> bytes:
    """A copy of ``flatbuffer`` whose RANDOM_UNIFORM operators use the given (seed, seed2)."""
    offsets = random_seed_offsets(flatbuffer)
    if len(seeds) != len(offsets):
        raise ValueError(f"model has {len(offsets)} RANDOM_UNIFORM operators, got {len(seeds)} seeds")
    data = bytearray(flatbuffer)
    for (seed_at, seed2_at), (seed, seed2) in zip(offsets, seeds, strict=True):
        struct.pack_into("<q", data, seed_at, seed)
        struct.pack_into("<q", data, seed2_at, seed2)
    return bytes(data)
