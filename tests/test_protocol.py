"""The wire format between grader and worker: exact round trips, and forged messages refused.

The worker is the student's process, so every reply is read as hostile input: these
tests forge the replies a submission could write to the channel.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from grader.worker.inside import protocol
from grader.worker.inside.protocol import ProtocolError


def reader(data: bytes):
    """``read_exactly`` over bytes already received."""
    view = memoryview(data)

    def read_exactly(n: int) -> bytes:
        nonlocal view
        chunk, view = bytes(view[:n]), view[n:]
        return chunk

    return read_exactly


def wire(header: dict, frames: list) -> tuple[dict, list]:
    """Send through pack and read back with read_message, as the two sides do."""
    return protocol.read_message(reader(protocol.pack(header, frames)))


def round_trip(value):
    frames: list = []
    tree = protocol.encode(value, frames)
    header, arrays = wire({"v": tree}, frames)
    return protocol.decode(header["v"], arrays)


@pytest.mark.parametrize("value", [0.1, -3, True, np.float64(1e-300), np.int64(-2**63), np.bool_(False)])
def test_plain_numbers_cross_inline_and_exactly(value):
    frames: list = []
    assert protocol.encode(value, frames)["v"] == value and frames == []
    got = round_trip(value)
    assert got == value and type(got) is type(value.item() if isinstance(value, np.generic) else value)


@pytest.mark.parametrize("value", [np.float32(0.1), float("nan"), float("inf"), np.int32(7), np.uint64(2**64 - 1)])
def test_other_numbers_cross_as_0d_frames(value):
    frames: list = []
    assert "i" in protocol.encode(value, frames) and len(frames) == 1
    got = round_trip(value)
    assert got == value.item() if isinstance(value, np.generic) else (got == value or np.isnan(got))


def test_arrays_keep_dtype_shape_and_values_and_arrive_writable():
    for array in (np.arange(12.0).reshape(3, 4).T, np.zeros((0, 3)), np.array(5.0), np.arange(6, dtype=np.int8)):
        got = round_trip(array)
        assert type(got) is np.ndarray and got.dtype == array.dtype and got.shape == array.shape
        assert np.array_equal(got, array) and got.flags.writeable


def test_a_frame_read_into_a_bytearray_is_not_copied():
    raw = bytearray(protocol.to_npy(np.arange(4.0)))
    got = protocol._load(raw)
    got[0] = 9.0
    assert raw[-32:-24] == struct.pack("<d", 9.0), "the array should be built on the buffer it arrived in"


def forged(results: list, frames: list[bytes]) -> tuple[dict, list]:
    raw = json.dumps({"ok": True, "results": results, "frames": [len(f) for f in frames]}).encode()
    return protocol.read_message(reader(struct.pack(">I", len(raw)) + raw + b"".join(frames)))


def test_one_frame_cannot_be_two_values():
    """Two results aliasing one array would let a mutation of one change the other."""
    header, arrays = forged([{"t": "nd", "i": 0}, {"t": "nd", "i": 0}], [protocol.to_npy(np.ones(3))])
    with pytest.raises(ProtocolError, match="used twice"):
        [protocol.decode(t, arrays) for t in header["results"]]


@pytest.mark.parametrize("number", [float("nan"), 2**63, "1.0", None, [1]], ids=repr)
def test_a_forged_inline_number_is_refused(number):
    raw = json.dumps({"t": "num", "v": number})
    with pytest.raises(ProtocolError, match="malformed number"):
        protocol.decode(json.loads(raw), [])


def test_a_header_with_an_endless_integer_is_a_protocol_error():
    raw = b'{"ok": true, "results": [{"t": "num", "v": ' + b"9" * 5000 + b"}]}"
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.read_message(reader(struct.pack(">I", len(raw)) + raw))


def test_pack_parts_is_pack():
    frames: list = []
    tree = protocol.encode({"dW": np.ones((3, 2)), "loss": np.float32(2.5), "n": 3}, frames)
    parts = protocol.pack_parts({"v": tree}, frames)
    assert b"".join(bytes(memoryview(p).cast("B")) for p in parts) == protocol.pack({"v": tree}, frames)
