"""Decode limits: every length, count and size read from the wire is checked against these."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds a decoder enforces; a message over any of them is rejected, never trusted.

    The defaults fit worlds with states up to ~256 MiB of arrays and small actions.
    """

    max_header_bytes: int = 4 * MiB  #: the msgpack part of one message
    max_frames: int = 64  #: frames in one message (1 header + arrays)
    max_array_bytes: int = 256 * MiB  #: bytes in one numpy array
    max_ndim: int = 8  #: dimensions of one numpy array
    max_str_len: int = 1 * MiB  #: characters in one string
    max_bin_len: int = 64 * MiB  #: bytes in one inline binary
    max_array_len: int = 1_000_000  #: items in one msgpack list
    max_map_len: int = 100_000  #: entries in one msgpack map
    max_ext_len: int = 64 * MiB  #: bytes in one extension value (inline arrays)
    inline_array_bytes: int = 64 * 1024  #: arrays smaller than this travel inside the header

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Limits.{name} must be a non-negative int, got {value!r}")


DEFAULT_LIMITS = Limits()

#: The server's actions socket cuts a peer that sends a frame over this (libzmq's MAXMSGSIZE).
MAX_ACTION_FRAME = 256 * 1024

#: Actions are small; the server applies this stricter bound to the actions socket.
#: The actions socket also caps each frame at :data:`MAX_ACTION_FRAME`.
#: Decoding work grows with the header (~0.25 µs per byte of empty lists), so it stays small.
ACTION_LIMITS = Limits(
    max_header_bytes=96 * 1024,
    max_frames=8,
    max_array_bytes=256 * 1024,
    max_bin_len=96 * 1024,
    max_ext_len=96 * 1024,
    max_array_len=10_000,
    max_map_len=10_000,
    max_str_len=64 * 1024,
)

#: Control messages (JOIN, LEAVE) need a few hundred bytes: the server decodes the control
#: socket with these, so a legal-but-huge message costs little work before it is rejected.
CONTROL_LIMITS = Limits(
    max_header_bytes=16 * 1024,
    max_frames=1,
    max_array_bytes=0,
    max_ndim=1,
    max_str_len=4096,
    max_bin_len=4096,
    max_array_len=256,
    max_map_len=64,
    max_ext_len=0,
    inline_array_bytes=0,
)
