"""Messages of the PlayerPool and of the chief/worker pair: typed, versioned, pure.

Both pairs use the same two sockets (see ``tickwire.server.work.hub``): the bind side publishes
on an XPUB (``[topic, *frames]``) and reads a PULL; the other side subscribes and PUSHes.
On the wire a message is a msgpack map ``{"v": WORK_VERSION, "kind": KIND, <fields>}``
made by the protocol codec (numpy arrays as its array extension, never pickle).
:func:`encode_work` and :func:`decode_work` are the only entry points; decoding checks the
version, the kind and every field's type, and raises :class:`ProtocolError` saying which.

The timing and linger values of both pairs live here too, so there is one place to read them.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from .codec import Frame, decode_payload, encode_payload
from .errors import ProtocolError
from .limits import DEFAULT_LIMITS, Limits
from .schema import compile_message

WORK_VERSION = 1

#: ZMTP heartbeats on the chief's XPUB and the worker's SUB: a frozen or vanished peer is
#: noticed within the timeout (libzmq answers pings from its own thread, so a busy peer is
#: not mistaken for a dead one).
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 4000
#: The longest a closing socket waits to hand queued messages to the kernel; a bind side
#: closes with 0 (its peers are going away with it), a connecting side that must deliver a
#: last report (a host's failure) uses this.
LINGER_MS = 1000
#: A worker whose link to the chief was up and stays down this long takes the chief for gone:
#: ``send()`` raises, ``stopping`` turns true, ``close()`` stops waiting for a confirmation.
#: (A killed chief's link drops at once; a frozen one's after the heartbeat timeout.)
CHIEF_GONE_S = 2.0
#: The chief's default cap on each frame a worker sends (an item's header, or one of its
#: numpy arrays; ``Chief(max_item_bytes=...)``): room for a rollout of 2 000 84×84×4 uint8
#: observations or 16 M float32 values; a bigger frame from a peer cuts its connection, a bigger
#: item is refused by ``Worker.send`` before it is sent.
MAX_ITEM_BYTES = 64 * 1024 * 1024
#: How long a stopping pool or chief gives its processes to exit before terminating them.
STOP_GRACE_S = 2.0
#: A topic every subscriber takes: calls, END and STOP travel on it.
ALL_TOPIC = b"all"


# ----------------------------------------------------------------------------- PlayerPool
@dataclass(frozen=True)
class PoolCall:
    """pool → hosts: call every player with ``state``; ``call`` counts up from 1."""

    KIND: ClassVar[str] = "pool.call"
    pool: str
    call: int
    state: Any = None


@dataclass(frozen=True)
class PoolStop:
    """pool → hosts: exit now (the pool is closing)."""

    KIND: ClassVar[str] = "pool.stop"
    pool: str


@dataclass(frozen=True)
class HostReady:
    """host → pool: ``players`` are unpickled and subscribed; the host takes calls."""

    KIND: ClassVar[str] = "pool.ready"
    pool: str
    host: int
    players: list


#: ``HostResults.call`` of a host that could not decode a call on its topic (it cannot know
#: which call it was): its players' answers to the pending call are that error.
UNREADABLE_CALL = -1


@dataclass(frozen=True)
class HostResults:
    """host → pool: answers to ``call``, a list of ``[player, ok, value]``: the action if
    ``ok``, else the player's traceback text. A host may answer one call in several parts;
    ``call`` is :data:`UNREADABLE_CALL` when it could not decode the call at all."""

    KIND: ClassVar[str] = "pool.results"
    pool: str
    host: int
    call: int
    results: list


@dataclass(frozen=True)
class HostFailed:
    """host → pool: the host could not start ``player`` (None: before any player);
    ``error`` is the host's own traceback (an import failure, a bad pickle...)."""

    KIND: ClassVar[str] = "pool.failed"
    pool: str
    host: int
    player: int | None
    error: str


# ----------------------------------------------------------------------------- chief/worker
@dataclass(frozen=True)
class WorkHello:
    """worker → chief: the worker is connected (sent once, before any item)."""

    KIND: ClassVar[str] = "work.hello"
    worker: int


@dataclass(frozen=True)
class WorkItem:
    """worker → chief: one item; ``seq`` is 1, 2, 3, ... per worker; ``version`` is the
    parameter version (:class:`WorkParams`) the worker held when it sent it, 0 for none."""

    KIND: ClassVar[str] = "work.item"
    worker: int
    seq: int
    data: Any = None
    version: int = 0


@dataclass(frozen=True)
class WorkFin:
    """worker → chief: the worker is done; ``fin`` is its last seq, ``error`` its traceback
    if it failed. Repeated until acknowledged."""

    KIND: ClassVar[str] = "work.fin"
    worker: int
    fin: int
    error: str | None = None


@dataclass(frozen=True)
class WorkEnd:
    """chief → every worker (topic ``all``): stop producing and send FIN."""

    KIND: ClassVar[str] = "work.end"


@dataclass(frozen=True)
class WorkAck:
    """chief → one worker (its own topic): everything up to ``fin`` was read; exit now."""

    KIND: ClassVar[str] = "work.ack"
    worker: int
    fin: int


@dataclass(frozen=True)
class WorkParams:
    """chief → every worker (topic ``all``), and again to a worker that subscribes late (its
    own topic): the whole parameter set ``params`` of ``version`` (1, 2, 3, ...) in one
    message, so a worker never holds half of one version and half of another."""

    KIND: ClassVar[str] = "work.params"
    version: int
    params: Any = None


WorkMessage = Union[
    PoolCall,
    PoolStop,
    HostReady,
    HostResults,
    HostFailed,
    WorkHello,
    WorkItem,
    WorkFin,
    WorkEnd,
    WorkAck,
    WorkParams,
]
WORK_KINDS: dict[str, type] = {c.KIND: c for c in typing.get_args(WorkMessage)}


_SCHEMAS: dict[str, list[str]] = {}
_BUILDERS: dict[str, Any] = {}
for _kind, _cls in WORK_KINDS.items():
    _SCHEMAS[_kind], _BUILDERS[_kind] = compile_message(_cls)


def from_map(obj: Any) -> WorkMessage:
    """Validate a decoded map and build its message (version, kind, every field's type)."""
    if obj.__class__ is not dict:
        raise ProtocolError("malformed", f"a work message must be a msgpack map, got {type(obj).__name__}")
    if obj.get("v") != WORK_VERSION:
        raise ProtocolError(
            "version",
            f"work protocol version {obj.get('v')!r} is not "
            f"supported; this side speaks {WORK_VERSION}: run the same tickwire "
            "version on both sides",
        )
    kind = obj.get("kind")
    build = _BUILDERS.get(kind) if kind.__class__ is str else None
    if build is None:
        raise ProtocolError("malformed", f"unknown work message kind {kind!r}; known: {sorted(WORK_KINDS)}")
    return build(obj)


def encode_work(msg: WorkMessage, limits: Limits = DEFAULT_LIMITS) -> list[Frame]:
    """Frames of ``msg`` (a header frame, then one frame per large numpy array)."""
    body = {"v": WORK_VERSION, "kind": msg.KIND}
    for name in _SCHEMAS[msg.KIND]:
        body[name] = getattr(msg, name)
    return encode_payload(body, limits)


def decode_work(frames: typing.Sequence[Frame], limits: Limits = DEFAULT_LIMITS) -> WorkMessage:
    """The message in ``frames``; :class:`ProtocolError` says what was wrong with it."""
    return from_map(decode_payload(frames, limits))
