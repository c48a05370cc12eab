"""The wire format between the grader and a sandboxed worker: plain data only.

A message is a JSON header followed by ``.npy`` frames. Nothing is ever unpickled:
arrays are read with ``np.load(allow_pickle=False)``, so object arrays and pickle
payloads cannot cross, and every size is capped before it is read.

Values are encoded as small JSON trees::

    {"t": "nd", "i": k}        the k-th array frame (a numpy ndarray)
    {"t": "num", "i": k}       a Python or numpy scalar, sent as a 0-d frame
    {"t": "tuple"|"list", "v": [...]}, {"t": "dict", "v": [[key, value], ...]}
    {"t": "none"}, {"t": "str", "v": "..."}
    {"t": "obj", "h": handle, "type": "ClassName", "methods": [...]}   a remote object
    {"t": "step", "i": k}      (requests only) the result of step k of this request
    {"t": "other", "type": "name"}   something that cannot cross
    {"t": "raised", "error": {...}}  a tolerated step's exception (type, message, frames)

This module runs on both sides of the sandbox, so it imports only numpy and stdlib.
"""
from __future__ import annotations

import io
import json
import re
import struct

import numpy as np

MAX_HEADER = 1 << 20          # bytes of JSON per message
MAX_FRAME = 64 << 20          # bytes per array frame
MAX_MESSAGE = 128 << 20       # bytes per message, all frames together
MAX_FRAMES = 4096
MAX_DEPTH = 16
MAX_STR = 2000
ARRAY_KINDS = "biuf"          # bool, int, unsigned, float: nothing else crosses

_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed, in-limit message."""


def encode(value, frames: list[bytes], handles=None, depth: int = 0):
    """Encode ``value`` as a JSON tree, appending array frames to ``frames``.

    ``handles`` (worker side) turns any other object into a remote handle.
    """
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if isinstance(value, np.ndarray):
        return {"t": "nd", "i": _frame(np.asarray(value), frames)}
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return {"t": "num", "i": _frame(np.asarray(value), frames)}
    if value is None:
        return {"t": "none"}
    if isinstance(value, str):
        return {"t": "str", "v": value[:MAX_STR]}
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"t": kind, "v": [encode(v, frames, handles, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[str(k), encode(v, frames, handles, depth + 1)]
                                   for k, v in value.items()]}
    if isinstance(value, Ref):
        return value.tree
    if isinstance(value, Raised):
        return {"t": "raised", "error": value.error}
    if handles is not None:
        return handles(value)
    return {"t": "other", "type": type(value).__name__}


def _frame(array: np.ndarray, frames: list[bytes]) -> int:
    if array.dtype.kind not in ARRAY_KINDS:
        raise ProtocolError(f"arrays of dtype {array.dtype} cannot be sent")
    frames.append(to_npy(array))
    return len(frames) - 1


_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER = re.compile(rb"\{'descr': '([<>|][biuf][1248])', 'fortran_order': False, "
                     rb"'shape': (\(\)|\(\d+,\)|\(\d+(?:, \d+)+\)), \} *\n")


def to_npy(array: np.ndarray) -> bytes:
    """The array in .npy format 1.0 (what np.save writes), without np.save's overhead."""
    array = np.ascontiguousarray(array) if array.ndim else array
    if array.dtype.str[0] not in "<|" or array.dtype.str[1] not in ARRAY_KINDS:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    shape = repr(tuple(int(n) for n in array.shape))
    header = f"{{'descr': '{array.dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
    header = header.encode() + b" " * (63 - (len(_MAGIC) + 2 + len(header)) % 64) + b"\n"
    return _MAGIC + len(header).to_bytes(2, "little") + header + array.tobytes()


class Ref:
    """A placeholder in a request: a remote object or an earlier step's result."""

    def __init__(self, tree: dict):
        self.tree = tree


def decode(tree, frames: list[np.ndarray], make_obj=None, depth: int = 0):
    """Rebuild a value from its JSON tree; the inverse of ``encode``.

    ``make_obj(tree)`` builds the local stand-in for a remote object; without it,
    remote objects and step references stay ``Ref``s.
    """
    if depth > MAX_DEPTH or not isinstance(tree, dict):
        raise ProtocolError("malformed value")
    kind = tree.get("t")
    if kind in ("nd", "num"):
        index = tree.get("i")
        if not isinstance(index, int) or not 0 <= index < len(frames):
            raise ProtocolError("reference to a missing array frame")
        array = frames[index]
        if kind == "nd":
            return array.copy()
        if array.shape != ():
            raise ProtocolError("a number frame must be 0-d")
        return array.item()
    if kind == "none":
        return None
    if kind == "str":
        return str(tree.get("v", ""))[:MAX_STR]
    if kind in ("tuple", "list"):
        items = [decode(v, frames, make_obj, depth + 1) for v in _seq(tree.get("v"))]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        pairs = _seq(tree.get("v"))
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise ProtocolError("malformed dict")
        return {k: decode(v, frames, make_obj, depth + 1) for k, v in pairs}
    if kind in ("obj", "step"):
        return make_obj(tree) if make_obj and kind == "obj" else Ref(tree)
    if kind == "other":
        return Unsendable(str(tree.get("type", "?"))[:100])
    if kind == "raised":
        error = tree.get("error")
        return Raised(error if isinstance(error, dict) else {})
    raise ProtocolError(f"unknown value kind {kind!r}")


def _seq(value) -> list:
    if not isinstance(value, list):
        raise ProtocolError("malformed sequence")
    return value


class Raised:
    """A step marked ``tolerate`` raised: its exception report stands in for its result."""

    def __init__(self, error: dict):
        self.error = error


class Unsendable:
    """Stands for a returned object that cannot cross the boundary (its type name only)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def pack(header: dict, frames: list[bytes]) -> bytes:
    """Serialize a message: header length, header JSON, frame lengths inside the header."""
    header = dict(header, frames=[len(f) for f in frames])
    raw = json.dumps(header, allow_nan=False).encode()
    return b"".join([_LEN.pack(len(raw)), raw, *frames])


def read_message(read_exactly) -> tuple[dict, list[np.ndarray]]:
    """Read one message using ``read_exactly(n) -> bytes`` and validate every part."""
    (size,) = _LEN.unpack(read_exactly(_LEN.size))
    if size > MAX_HEADER:
        raise ProtocolError(f"header of {size} bytes exceeds the limit")
    try:
        header = json.loads(read_exactly(size))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("header is not JSON") from exc
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    sizes = header.pop("frames", [])
    if (not isinstance(sizes, list) or len(sizes) > MAX_FRAMES
            or not all(isinstance(s, int) and 0 <= s <= MAX_FRAME for s in sizes)
            or sum(sizes) > MAX_MESSAGE):
        raise ProtocolError("array frames exceed the limits")
    frames = [_load(read_exactly(s)) for s in sizes]
    return header, frames


def _load(raw: bytes) -> np.ndarray:
    """Read one frame; a strict fast path for what ``to_npy`` writes, else numpy's reader."""
    if raw[:8] == _MAGIC and len(raw) >= 10:
        size = int.from_bytes(raw[8:10], "little")
        match = _HEADER.fullmatch(raw[10:10 + size])
        if match:
            dtype = np.dtype(match.group(1).decode())
            shape = tuple(int(n) for n in re.findall(rb"\d+", match.group(2)))
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            body = raw[10 + size:]
            if len(body) == count * dtype.itemsize:
                return np.frombuffer(body, dtype=dtype).reshape(shape).copy()
            raise ProtocolError("array frame size does not match its header")
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # any malformed frame is the sender's fault
        raise ProtocolError(f"unreadable array frame: {exc}") from None
    if type(array) is not np.ndarray or array.dtype.kind not in ARRAY_KINDS:
        raise ProtocolError("array frame of a forbidden type")
    return array


def direction(seed: int, shape: tuple) -> np.ndarray:
    """A random unit-length direction from a seed: the same on both sides of the boundary,
    so a numerical check needs to send only the seed, not the array.

    Random signs (+-1/sqrt(n)): every entry weighs the same, so any wrong entry moves
    <grad, u>; and signs are cheaper to draw than normals for a 784x50 weight.
    """
    shape = tuple(shape)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    signs = np.random.default_rng(seed).integers(0, 2, size=shape, dtype=np.int8)
    return (signs.astype(np.float64) * 2.0 - 1.0) / np.sqrt(max(size, 1))
