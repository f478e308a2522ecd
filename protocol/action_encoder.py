"""One host's ACTION_ARRAY messages, encoded tick after tick with work that does not grow
with the players it hosts.

A host with K players sends, every tick, the same run id, player ids and tokens, and a new
tick, seq and actions array. :class:`ActionArrayEncoder` packs the parts that stay the same
once, and checks them once against the limits the server decodes the actions socket with
(:data:`~protocol.limits.ACTION_LIMITS`, :data:`~protocol.limits.MAX_ACTION_FRAME`). Each
message then packs its tick, seq and actions and checks the actions' size from their dtype
and shape, so the sender learns that the server would refuse a message (a frame over the
cap even cuts the connection) without decoding it a second time. The frames are exactly those of
:func:`~protocol.messages.encode`.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from .codec import Frame, pack_array
from .errors import ProtocolError
from .limits import ACTION_LIMITS, MAX_ACTION_FRAME, Limits
from .messages import VERSION, ActionArray, decode, encode

#: A message of one frame this small is within every limit of the actions socket.
SMALL_ACTION_BYTES = 4096


def _packb(value: Any, buffers: list[Frame]) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=lambda o: _ext(o, buffers))


def _ext(o: Any, buffers: list[Frame]) -> Any:
    """What :func:`~protocol.codec.encode_payload` makes of a numpy value."""
    if isinstance(o, np.ndarray):
        return pack_array(o, buffers)
    if isinstance(o, np.generic):  # numpy scalars: plain values, complex as a 0-d array
        return pack_array(np.asarray(o), buffers) if o.dtype.kind == "c" else o.item()
    raise ProtocolError("unencodable", f"cannot encode a value of type {type(o).__name__} in an ACTION_ARRAY")


def check_action_frames(
    frames: list[Frame], limits: Limits = ACTION_LIMITS, max_frame: int = MAX_ACTION_FRAME
) -> None:
    """Raise :class:`ProtocolError` if the server would refuse these frames on its actions
    socket, by decoding them as it will. One small frame cannot break a limit: not decoded."""
    if len(frames) == 1 and len(frames[0]) <= SMALL_ACTION_BYTES:
        return
    sizes = [memoryview(f).nbytes for f in frames]
    if max(sizes) > max_frame:
        raise ProtocolError(
            "oversized",
            f"one of its parts is {max(sizes):,} bytes, over the server's cap of "
            f"{max_frame:,} bytes per frame",
        )
    decode(frames, limits)


class ActionArrayEncoder:
    """Encodes ACTION_ARRAY messages of run ``run`` with the columns ``players`` and
    ``tokens`` (the same objects every tick: :meth:`fits` compares them by identity).

    :meth:`encode` raises :class:`ProtocolError` (``oversized``, or ``unencodable`` as
    :func:`~protocol.messages.encode` would) for a message the server would refuse.
    """

    def __init__(
        self,
        run: str,
        players: Any,
        tokens: list,
        limits: Limits = ACTION_LIMITS,
        max_frame: int = MAX_ACTION_FRAME,
    ) -> None:
        self.run, self.players, self.tokens = run, players, tokens
        self.limits, self.max_frame = limits, max_frame
        buffers: list[Frame] = []
        # the map of encode(): {"v", "kind", "run", "tick", "seq", "players", "tokens", "actions"}
        self._head = b"".join(
            [
                b"\x88",
                *(_packb(x, buffers) for x in ("v", VERSION, "kind", ActionArray.KIND, "run", run, "tick")),
            ]
        )
        self._seq_key = _packb("seq", buffers)
        self._columns = b"".join(
            _packb(x, buffers) for x in ("players", players, "tokens", tokens, "actions")
        )
        self._buffers = buffers  # the players' frame, for thousands of players
        #: why every message of these columns is refused (checked once, as the server decodes)
        self._refused: ProtocolError | None = None
        try:
            check_action_frames(
                [self._head + b"\x00" + self._seq_key + b"\x00" + self._columns + b"\xc0", *buffers],
                limits,
                max_frame,
            )
        except ProtocolError as e:
            self._refused = e

    def fits(self, msg: ActionArray) -> bool:
        """True if ``msg`` has this encoder's run and columns (the same objects)."""
        return msg.players is self.players and msg.tokens is self.tokens and msg.run == self.run

    def encode(self, msg: ActionArray) -> list[Frame]:
        """The frames of ``msg`` (which :meth:`fits`), checked against the server's limits."""
        if self._refused is not None:
            raise self._refused
        actions = msg.actions
        if type(actions) is not np.ndarray:  # a list of values: checked by decoding it
            frames = encode(msg)
            check_action_frames(frames, self.limits, self.max_frame)
            return frames
        buffers = list(self._buffers)
        ext = pack_array(actions, buffers)
        header = b"".join(
            [
                self._head,
                msgpack.packb(msg.tick),
                self._seq_key,
                msgpack.packb(msg.seq),
                self._columns,
                msgpack.packb(ext),
            ]
        )
        self._check(actions, ext, header, buffers)
        return [header, *buffers]

    def _check(self, actions: np.ndarray, ext: msgpack.ExtType, header: bytes, buffers: list[Frame]) -> None:
        """What the server's decoder checks of the parts that change: the actions array
        (dimensions, bytes, its frame or inline data) and the message (header, frames)."""
        limits = self.limits
        if actions.ndim > limits.max_ndim:
            raise ProtocolError(
                "bad_shape", f"the actions array has {actions.ndim} dimensions, over {limits.max_ndim}"
            )
        if actions.nbytes > limits.max_array_bytes:
            raise ProtocolError(
                "oversized",
                f"the actions array is {actions.nbytes:,} bytes, over the limit of "
                f"{limits.max_array_bytes:,}",
            )
        if len(ext.data) > limits.max_ext_len:
            raise ProtocolError(
                "oversized",
                f"the actions array is {len(ext.data):,} bytes inline, over {limits.max_ext_len:,}",
            )
        if buffers and memoryview(buffers[-1]).nbytes > self.max_frame:
            raise ProtocolError(
                "oversized",
                f"one of its parts is {memoryview(buffers[-1]).nbytes:,} bytes, over the server's cap of "
                f"{self.max_frame:,} bytes per frame",
            )
        if len(header) > limits.max_header_bytes:
            raise ProtocolError(
                "oversized", f"header is {len(header)} bytes, over the limit of {limits.max_header_bytes}"
            )
        if 1 + len(buffers) > limits.max_frames:
            raise ProtocolError(
                "oversized", f"message has {1 + len(buffers)} frames, over the limit of {limits.max_frames}"
            )
