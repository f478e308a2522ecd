"""Payload codec: msgpack for structure, numpy arrays as a typed extension, no pickle.

A payload becomes a list of frames: frame 0 is msgpack, frames 1.. are raw array
buffers (sent without copying). Small arrays travel inline in frame 0 instead, which
is cheaper than an extra frame. Decoding trusts nothing from the wire: every length,
dtype and shape is checked against :class:`~protocol.limits.Limits`, and arrays are
read-only ``np.frombuffer`` views of the received frames (copy one to mutate it).

Extension types (the only ones accepted):

* ``1`` inline array: msgpack ``[dtype, shape, data: bin]``
* ``2`` frame array:  msgpack ``[dtype, shape, frame_index: int]`` (index >= 1)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from .errors import ProtocolError
from .limits import DEFAULT_LIMITS, Limits

EXT_INLINE_ARRAY = 1
EXT_FRAME_ARRAY = 2

#: Little-endian (or byte-order-free) numeric dtypes; anything else is refused both ways.
ALLOWED_DTYPES = frozenset(
    {
        "|b1",
        "|i1",
        "|u1",
        "<i2",
        "<u2",
        "<i4",
        "<u4",
        "<i8",
        "<u8",
        "<f2",
        "<f4",
        "<f8",
        "<c8",
        "<c16",
    }
)

Frame = Any  # bytes, memoryview, or zmq.Frame: anything with the buffer protocol


def _wire_array(arr: np.ndarray) -> np.ndarray:
    """Return a C-contiguous little-endian array, or raise if its dtype is not allowed."""
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.dtype.str not in ALLOWED_DTYPES:
        raise ProtocolError(
            "bad_dtype",
            f"cannot encode a numpy array of dtype {arr.dtype!s}: allowed are bool, "
            "(u)int8-64, float16/32/64 and complex64/128; convert it with .astype()",
        )
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # keeps 0-d as 0-d


_local = threading.local()


def _plain_packer() -> msgpack.Packer:
    """This thread's Packer for plain values (a failed pack leaves it clean: autoreset)."""
    try:
        return _local.packer
    except AttributeError:
        _local.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
        return _local.packer


def pack_array(o: np.ndarray, buffers: list[Frame], limits: Limits = DEFAULT_LIMITS) -> msgpack.ExtType:
    """The extension value of array ``o``: inline below ``limits.inline_array_bytes``, else a
    reference to a new frame appended to ``buffers`` (the frames after the header)."""
    arr = _wire_array(o)
    if arr.nbytes < limits.inline_array_bytes:
        return msgpack.ExtType(
            EXT_INLINE_ARRAY, msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes()])
        )
    buffers.append(arr.reshape(-1).view(np.uint8))  # zero-copy byte view
    return msgpack.ExtType(EXT_FRAME_ARRAY, msgpack.packb([arr.dtype.str, list(arr.shape), len(buffers)]))


def encode_payload(obj: Any, limits: Limits = DEFAULT_LIMITS) -> list[Frame]:
    """Encode ``obj`` (dicts, lists, scalars, str, bytes, numpy arrays) into frames."""
    try:  # fast path: plain msgpack types only (most actions and small states)
        return [_plain_packer().pack(obj)]
    except (TypeError, ValueError, OverflowError):
        pass  # numpy values or something unencodable: the full path explains which
    buffers: list[Frame] = []

    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return pack_array(o, buffers, limits)
        if isinstance(o, np.generic):  # numpy scalars: plain values, complex as a 0-d array
            return default(np.asarray(o)) if o.dtype.kind == "c" else o.item()
        raise ProtocolError(
            "unencodable",
            f"cannot encode a value of type {type(o).__name__}: payloads may hold dict, "
            "list, tuple, str, bytes, int, float, bool, None and numpy arrays",
        )

    try:
        header = msgpack.packb(obj, default=default, use_bin_type=True)
    except ProtocolError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError("unencodable", f"cannot encode payload: {e}") from e
    return [header, *buffers]


def _array_meta(data: bytes, limits: Limits) -> tuple[np.dtype, tuple[int, ...], Any]:
    """Decode and check ``[dtype, shape, x]`` of an array extension."""
    try:
        meta = msgpack.unpackb(
            data,
            raw=False,
            max_str_len=16,
            max_array_len=limits.max_ndim + 1,
            max_bin_len=limits.max_ext_len,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as e:
        raise ProtocolError("malformed", f"array metadata is not valid msgpack: {e}") from e
    if not (isinstance(meta, list) and len(meta) == 3):
        raise ProtocolError("malformed", "array metadata must be [dtype, shape, data]")
    dtype, shape, x = meta
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise ProtocolError(
            "bad_dtype", f"array dtype {dtype!r} is not allowed; use one of {sorted(ALLOWED_DTYPES)}"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_ndim
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise ProtocolError(
            "bad_shape",
            f"array shape {shape!r} must be a list of at most {limits.max_ndim} non-negative ints",
        )
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes > limits.max_array_bytes:
        raise ProtocolError(
            "oversized",
            f"array of shape {shape} and dtype {dtype} is "
            f"{nbytes} bytes, over the limit of {limits.max_array_bytes}",
        )
    return dt, tuple(shape), x


def _as_array(buf: Any, dt: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    expected = math.prod(shape) * dt.itemsize
    if len(buf) != expected:
        raise ProtocolError(
            "bad_shape",
            f"array of shape {list(shape)} and dtype {dt.str} needs {expected} bytes but {len(buf)} arrived",
        )
    return np.frombuffer(buf, dtype=dt).reshape(shape)


def decode_payload(frames: Sequence[Frame], limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode frames made by :func:`encode_payload`; raise :class:`ProtocolError` on bad input."""
    if not frames:
        raise ProtocolError("malformed", "empty message: expected at least a msgpack header frame")
    if len(frames) > limits.max_frames:
        raise ProtocolError(
            "oversized", f"message has {len(frames)} frames, over the limit of {limits.max_frames}"
        )
    bufs: list[Any] = [getattr(f, "buffer", f) for f in frames]
    header = bufs[0]
    if len(header) > limits.max_header_bytes:
        raise ProtocolError(
            "oversized", f"header is {len(header)} bytes, over the limit of {limits.max_header_bytes}"
        )
    used: set[int] = set()

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_INLINE_ARRAY:
            dt, shape, raw = _array_meta(data, limits)
            if not isinstance(raw, bytes):
                raise ProtocolError("malformed", "inline array data must be msgpack bin")
            return _as_array(raw, dt, shape)
        if code == EXT_FRAME_ARRAY:
            dt, shape, index = _array_meta(data, limits)
            if type(index) is not int or not 1 <= index < len(bufs) or index in used:
                raise ProtocolError(
                    "malformed",
                    f"array refers to frame {index!r}, but the "
                    f"message has frames 1..{len(bufs) - 1} (each usable once)",
                )
            used.add(index)
            return _as_array(bufs[index], dt, shape)
        raise ProtocolError(
            "bad_ext",
            f"unknown msgpack extension type {code}; only 1 (inline array) and 2 (frame array) exist",
        )

    try:
        obj = msgpack.unpackb(
            header,
            ext_hook=ext_hook,
            raw=False,
            strict_map_key=False,
            use_list=True,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=limits.max_ext_len,
        )
    except ProtocolError:
        raise
    except Exception as e:  # msgpack raises ValueError, ExtraData, StackError, UnicodeError...
        raise ProtocolError(
            "malformed", f"header is not valid msgpack within limits: {type(e).__name__}: {e}"
        ) from e
    if len(used) != len(bufs) - 1:
        raise ProtocolError(
            "malformed", f"message has {len(bufs) - 1} array frames but the header refers to {len(used)}"
        )
    return obj
