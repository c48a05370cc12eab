"""The wire format between the grader and a sandboxed worker: plain data only.

A message is a JSON header followed by ``.npy`` frames. Nothing is ever unpickled:
arrays are read with ``np.load(allow_pickle=False)``, so object arrays and pickle
payloads cannot cross, and every size is capped before it is read.

Values are encoded as small JSON trees::

    {"t": "nd", "i": k}        the k-th array frame (a numpy ndarray)
    {"t": "num", "v": x}       a finite int64/float64/bool scalar (Python or numpy), inline
    {"t": "num", "i": k}       any other number (float32, NaN, ...), sent as a 0-d frame
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
import math
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
    plain = _plain(value)
    if plain is not None:
        return {"t": "num", "v": plain}
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


_INLINE = {bool: bool, int: int, float: float, np.bool_: bool, np.int64: int, np.float64: float}


def _plain(value) -> bool | int | float | None:
    """A number JSON carries exactly (finite, int64 range): sent inline, not as a frame."""
    cast = _INLINE.get(type(value))
    if cast is None:
        return None
    plain = cast(value)
    if isinstance(plain, float):
        return plain if np.isfinite(plain) else None
    return plain if isinstance(plain, bool) or -(1 << 63) <= plain < (1 << 63) else None


def _frame(array: np.ndarray, frames: list) -> int:
    if array.dtype.kind not in ARRAY_KINDS:
        raise ProtocolError(f"arrays of dtype {array.dtype} cannot be sent")
    frames.append(npy_parts(array))
    return len(frames) - 1


_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER = re.compile(rb"\{'descr': '([<>|][biuf][1248])', 'fortran_order': False, "
                     rb"'shape': (\(\)|\(\d+,\)|\(\d+(?:, \d+)+\)), \} *\n")


def to_npy(array: np.ndarray) -> bytes:
    """The array in .npy format 1.0 (what np.save writes), without np.save's overhead."""
    return b"".join(npy_parts(array))


def npy_parts(array: np.ndarray) -> tuple[bytes, ...] | tuple[bytes, memoryview]:
    """``to_npy`` as (header, the array's own bytes): sent as they are, with no copy."""
    if array.dtype.str[0] not in "<|" or array.dtype.str[1] not in ARRAY_KINDS:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return (buffer.getvalue(),)
    array = np.ascontiguousarray(array) if array.ndim else array  # (it makes a 0-d array 1-d)
    key = (array.dtype.str, array.shape)
    head = _HEADS.get(key)
    if head is None:
        shape = repr(tuple(int(n) for n in array.shape))
        header = f"{{'descr': '{array.dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
        header = header.encode() + b" " * (63 - (len(_MAGIC) + 2 + len(header)) % 64) + b"\n"
        head = _MAGIC + len(header).to_bytes(2, "little") + header
        if len(_HEADS) < 4096 and array.ndim <= 8:
            _HEADS[key] = head
    body = memoryview(array.reshape(-1)).cast("B") if array.size else b""
    return head, body


_HEADS: dict[tuple[str, tuple[int, ...]], bytes] = {}  # (dtype, shape) -> its .npy header, made once


class Ref:
    """A placeholder in a request: a remote object or an earlier step's result."""

    def __init__(self, tree: dict):
        self.tree = tree


def decode(tree, frames: list[np.ndarray | None], make_obj=None, depth: int = 0):
    """Rebuild a value from its JSON tree; the inverse of ``encode``. An ``nd`` frame is
    taken out of ``frames`` (set to None) as it is decoded: it can be used once.

    ``make_obj(tree)`` builds the local stand-in for a remote object; without it,
    remote objects and step references stay ``Ref``s.
    """
    if depth > MAX_DEPTH or not isinstance(tree, dict):
        raise ProtocolError("malformed value")
    kind = tree.get("t")
    if kind == "num" and "v" in tree:
        if _plain(tree["v"]) is None:  # JSON gives int, float, bool: only in-range, finite ones
            raise ProtocolError("malformed number")
        return tree["v"]
    if kind in ("nd", "num"):
        index = tree.get("i")
        if not isinstance(index, int) or not 0 <= index < len(frames):
            raise ProtocolError("reference to a missing array frame")
        array = frames[index]
        if array is None:
            raise ProtocolError("an array frame is used twice")
        if kind == "nd":  # each frame is one value: handed over, so no two values alias
            frames[index] = None
            return array
        if array.shape != ():
            raise ProtocolError("a number frame must be 0-d")
        if array.dtype.kind == "f" and array.dtype.itemsize < 8:
            return array[()]  # a float32 number stays one: its precision decides its tolerance
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


def pack(header: dict, frames: list) -> bytes:
    """Serialize a message: header length, header JSON, frame lengths inside the header."""
    return b"".join(pack_parts(header, frames))


def pack_parts(header: dict, frames: list) -> list:
    """``pack`` as a list of buffers (each frame's parts as ``npy_parts`` made them), to write
    with one ``writev``; a frame may also be plain bytes."""
    parts = [f if isinstance(f, tuple) else (f,) for f in frames]
    header = dict(header, frames=[sum(len(p) for p in f) for f in parts])
    raw = json.dumps(header, allow_nan=False).encode()
    return [_LEN.pack(len(raw)), raw, *(p for f in parts for p in f if len(p))]


def read_message(read_exactly) -> tuple[dict, list[np.ndarray]]:
    """Read one message using ``read_exactly(n) -> bytes`` and validate every part.

    Whatever the bytes are, reading them raises nothing but ProtocolError (and what
    ``read_exactly`` itself raises): the other side may be anybody's code.
    """
    (size,) = _LEN.unpack(read_exactly(_LEN.size))
    if size > MAX_HEADER:
        raise ProtocolError(f"header of {size} bytes exceeds the limit")
    raw = read_exactly(size)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError, MemoryError) as exc:  # not JSON, an int too long, nested 10^5 deep
        raise ProtocolError(f"header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    sizes = header.pop("frames", [])
    if (not isinstance(sizes, list) or len(sizes) > MAX_FRAMES
            or not all(isinstance(s, int) and 0 <= s <= MAX_FRAME for s in sizes)
            or sum(sizes) > MAX_MESSAGE):
        raise ProtocolError("array frames exceed the limits")
    frames = [_load(read_exactly(s)) for s in sizes]
    return header, frames


def _load(raw: bytes | bytearray) -> np.ndarray:
    """Read one frame; a strict fast path for what ``to_npy`` writes, else numpy's reader.

    A ``bytearray`` frame is the reader's own buffer: the array is built on it, not copied.
    Sizes are multiplied as Python integers: a forged shape cannot overflow into a match;
    and whatever else a forged frame makes numpy raise is a ProtocolError.
    """
    try:
        return _read_frame(raw)
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed frame is the sender's fault
        raise ProtocolError(f"unreadable array frame ({type(exc).__name__})") from None


_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], int]] = {}  # header bytes -> what they say


def _parsed_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """(dtype, shape, count) of a ``to_npy`` header, or None; the same few shapes come in
    every request, so each distinct header is parsed once (a bounded cache)."""
    found = _HEADERS.get(header)
    if found is None:
        match = _HEADER.fullmatch(header)
        if not match:
            return None
        shape = tuple(int(n) for n in re.findall(rb"\d+", match.group(2)))
        found = np.dtype(match.group(1).decode()), shape, math.prod(shape)
        if len(_HEADERS) < 4096 and len(header) <= 256:  # what a hostile sender can fill: 1 MB
            _HEADERS[bytes(header)] = found
    return found


def _read_frame(raw: bytes | bytearray) -> np.ndarray:
    if raw[:8] == _MAGIC and len(raw) >= 10:
        size = int.from_bytes(raw[8:10], "little")
        parsed = _parsed_header(bytes(raw[10:10 + size]))
        if parsed:
            dtype, shape, count = parsed
            if len(shape) <= 32 and len(raw) - 10 - size == count * dtype.itemsize:
                array = np.frombuffer(raw, dtype=dtype, count=count, offset=10 + size).reshape(shape)
                return array if isinstance(raw, bytearray) else array.copy()
            raise ProtocolError("array frame size does not match its header")
    array = np.load(io.BytesIO(raw), allow_pickle=False)
    if type(array) is not np.ndarray or array.dtype.kind not in ARRAY_KINDS:
        raise ProtocolError("array frame of a forbidden type")
    return array


def direction(seed: int, shape: tuple) -> np.ndarray:
    """A random unit-length direction from a seed: the same on both sides of the boundary,
    so a numerical check needs to send only the seed, not the array.

    Random signs (+-1/sqrt(n)): every entry weighs the same, so any wrong entry moves
    <grad, u>; and signs are cheap to draw (one random bit each) for a 784x50 weight.
    """
    shape = tuple(shape)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    drawn = np.random.Generator(np.random.PCG64(seed)).bytes((size + 7) // 8)
    u = np.unpackbits(np.frombuffer(drawn, np.uint8), count=size).astype(np.float64)
    scale = 1.0 / np.sqrt(max(size, 1))
    u *= 2.0 * scale  # bit 1 -> +1/sqrt(n), bit 0 -> -1/sqrt(n)
    u -= scale
    return u.reshape(shape)
