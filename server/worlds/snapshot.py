"""The default ``World.snapshot`` / ``World.restore`` codec: msgpack + numpy arrays, no pickle.

A state made of dicts, lists, str, bytes, ints, floats, bools, None, numpy arrays and numpy
random Generators round-trips bit-exactly: arrays travel through the project codec (inline,
dtype and shape checked on the way back), a Generator is saved as its bit generator's name
and ``bit_generator.state`` (whose 128-bit integers msgpack cannot hold, so ints outside the
64-bit range are saved as decimal strings). Tuples come back as lists. Anything else (an
object of your own class) raises :class:`SnapshotError`: override the hooks for such states.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tickwire.protocol.codec import decode_payload, encode_payload
from tickwire.protocol.errors import ProtocolError, SnapshotError
from tickwire.protocol.limits import Limits

#: Everything inline (one frame), and room for large worlds: a snapshot is our own file.
SNAPSHOT_LIMITS = Limits(
    max_header_bytes=2**31 - 1,
    max_frames=1,
    max_array_bytes=2**31 - 1,
    max_bin_len=2**31 - 1,
    max_ext_len=2**31 - 1,
    max_str_len=2**31 - 1,
    max_array_len=2**31 - 1,
    max_map_len=2**31 - 1,
    inline_array_bytes=2**31 - 1,
)
#: The key that marks a tagged value (a Generator or a big int) inside a snapshot.
TAG = "__tickwire_snapshot__"
_INT64 = range(-(2**63), 2**64)


def snapshot_state(state: Any) -> bytes:
    """Encode ``state`` as one bytes blob (see the module docstring for what it may hold)."""
    try:
        frames = encode_payload(_tagged(state, "state"), SNAPSHOT_LIMITS)
    except ProtocolError as e:
        raise SnapshotError(
            f"cannot snapshot the world state: {e}; override World.snapshot and World.restore for such states"
        ) from e
    return bytes(frames[0])


def restore_state(blob: bytes) -> Any:
    """The state :func:`snapshot_state` encoded (arrays are writable copies)."""
    try:
        return _untagged(decode_payload([blob], SNAPSHOT_LIMITS))
    except ProtocolError as e:
        raise SnapshotError(f"cannot restore a world state from its snapshot: {e}") from e


def _tagged(obj: Any, where: str) -> Any:
    """A copy of ``obj`` with Generators and big ints replaced by tagged dicts."""
    if isinstance(obj, dict):
        if TAG in obj:
            raise SnapshotError(f"{where}: the key {TAG!r} is reserved for snapshots")
        return {k: _tagged(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tagged(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.random.Generator):
        bg = obj.bit_generator
        return {
            TAG: "generator",
            "bit_generator": type(bg).__name__,
            "state": _tagged(bg.state, f"{where}.bit_generator.state"),
        }
    if type(obj) is int and obj not in _INT64:
        return {TAG: "int", "value": str(obj)}
    if isinstance(obj, (np.ndarray, np.generic, str, bytes, int, float, bool, type(None))):
        return obj
    raise SnapshotError(
        f"{where}: cannot snapshot a value of type {type(obj).__name__}; "
        "override World.snapshot and World.restore for such states"
    )


def _untagged(obj: Any) -> Any:
    if isinstance(obj, dict):
        kind = obj.get(TAG)
        if kind == "generator":
            return _generator(obj["bit_generator"], _untagged(obj["state"]))
        if kind == "int":
            return int(obj["value"])
        return {k: _untagged(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untagged(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.copy()  # decoded arrays are read-only views of the blob
    return obj


def _generator(name: str, state: dict) -> np.random.Generator:
    cls = getattr(np.random, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
        raise SnapshotError(f"snapshot names an unknown numpy bit generator {name!r}")
    bg = cls()
    bg.state = state
    return np.random.Generator(bg)
