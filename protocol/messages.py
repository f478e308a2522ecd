"""Protocol messages: frozen dataclasses, one per kind, and their wire form.

On the wire every message is a msgpack map ``{"v": VERSION, "kind": KIND, <fields>}``
(see PROTOCOL.md); numpy arrays inside ``payload``/``world``/``scores`` use the codec's
array extension. :func:`encode` and :func:`decode` are the only entry points.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from .codec import Frame, decode_payload, encode_payload
from .errors import ProtocolError
from .limits import DEFAULT_LIMITS, Limits
from .schema import compile_message

VERSION = 1


@dataclass(frozen=True)
class Join:
    """agent → server (control): ask for a player slot."""

    KIND: ClassVar[str] = "join"
    name: str
    slot: int | None = None
    capabilities: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Welcome:
    """server → agent (control): you are ``player``; subscribe to ``topic``, then send READY."""

    KIND: ClassVar[str] = "welcome"
    run: str
    player: int
    name: str
    seed: int
    token: str
    topic: bytes
    mode: str
    deadline_ms: int | None
    ticks: int
    players: int
    world: dict = field(default_factory=dict)
    #: True: an OBSERVATION (this player's private part) follows every STATE.
    private: bool = False
    #: This player's spaces in the form of :mod:`tickwire.protocol.spaces` (nil: not described).
    observation_space: dict | None = None
    action_space: dict | None = None
    #: True: this server accepts ACTION_ARRAY (columnar actions); absent on older servers.
    action_array: bool = False


@dataclass(frozen=True)
class Ready:
    """agent → server (actions): proves the action path is connected."""

    KIND: ClassVar[str] = "ready"
    run: str
    player: int
    token: str


@dataclass(frozen=True)
class State:
    """server → all (state): the shared observation for ``tick``."""

    KIND: ClassVar[str] = "state"
    run: str
    tick: int
    payload: Any = None


@dataclass(frozen=True)
class Observation:
    """server → one agent (control, by identity): that player's private part of ``tick``.

    Sent only to its player, never published; with the tick's STATE it forms the player's
    view. A ``terminated`` or ``truncated`` player is out of the barrier until the world
    says otherwise (e.g. a new episode); it does not act on that tick.
    """

    KIND: ClassVar[str] = "observation"
    run: str
    tick: int
    player: int
    payload: Any = None
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """agent → server (actions): the player's action for ``tick``."""

    KIND: ClassVar[str] = "action"
    run: str
    tick: int
    player: int
    seq: int
    token: str
    payload: Any = None


@dataclass(frozen=True)
class Actions:
    """agent → server (actions): one process's players' actions for ``tick``, in one message.

    ``actions`` is a list of ``[player, token, payload]``; each entry is checked exactly like
    an ACTION (same rules, same rejections) — it only saves messages.
    """

    KIND: ClassVar[str] = "actions"
    run: str
    tick: int
    seq: int
    actions: list


@dataclass(frozen=True)
class ActionArray:
    """agent → server (actions): one process's players' actions for ``tick`` as columns.

    ``players`` (K ints: an int array or a list), ``tokens`` (K strings) and ``actions``
    (an array whose first axis has length K, or a list of K values): entry ``i`` is player
    ``players[i]``'s action. Checked per batch; an invalid entry rejects that player's action
    only. Sent only to a server whose WELCOME says ``action_array: true``.
    """

    KIND: ClassVar[str] = "action_array"
    run: str
    tick: int
    seq: int
    players: Any
    tokens: list
    actions: Any


@dataclass(frozen=True)
class Heartbeat:
    """server → all (state): sent when nothing else was published for a while."""

    KIND: ClassVar[str] = "heartbeat"
    run: str
    tick: int


@dataclass(frozen=True)
class Leave:
    """agent → server (control): the agent is going away on purpose."""

    KIND: ClassVar[str] = "leave"
    run: str
    player: int
    reason: str = ""


@dataclass(frozen=True)
class End:
    """server → all (state and control): the run is over."""

    KIND: ClassVar[str] = "end"
    run: str
    tick: int
    reason: str
    scores: list = field(default_factory=list)


@dataclass(frozen=True)
class Error:
    """server → agent (control): a request was refused; ``text`` says why and what to do.

    ``retry_ms`` (``full`` only, optional): some slots are held by players that joined but
    have not proved readiness yet; such a slot is freed after the server's ready timeout, so
    JOIN again in about this many milliseconds. Absent (nil): do not retry."""

    KIND: ClassVar[str] = "error"
    code: str
    text: str
    run: str = ""
    retry_ms: int | None = None


Message = Union[
    Join, Welcome, Ready, State, Observation, Action, Actions, ActionArray, Heartbeat, Leave, End, Error
]
KINDS: dict[str, type] = {c.KIND: c for c in typing.get_args(Message)}


_SCHEMAS: dict[type, list[str]] = {}
_BUILDERS: dict[str, Any] = {}
for _kind, _cls in KINDS.items():
    _SCHEMAS[_cls], _BUILDERS[_kind] = compile_message(_cls)


def _from_map(obj: Any) -> Message:
    if obj.__class__ is not dict:
        raise ProtocolError("malformed", f"a message must be a msgpack map, got {type(obj).__name__}")
    version = obj.get("v")
    if version != VERSION:
        raise ProtocolError(
            "version",
            f"protocol version {version!r} is not supported; this "
            f"peer speaks version {VERSION}: upgrade the older side",
        )
    kind = obj.get("kind")
    build = _BUILDERS.get(kind) if kind.__class__ is str else None
    if build is None:
        raise ProtocolError("malformed", f"unknown message kind {kind!r}; known: {sorted(KINDS)}")
    return build(obj)


def encode(msg: Message, limits: Limits = DEFAULT_LIMITS) -> list[Frame]:
    """Encode a message into frames ready for ``socket.send_multipart``."""
    body = {"v": VERSION, "kind": msg.KIND}
    for name in _SCHEMAS[type(msg)]:
        body[name] = getattr(msg, name)
    return encode_payload(body, limits)


def decode(frames: typing.Sequence[Frame], limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode frames into a message; raise :class:`ProtocolError` saying what was wrong."""
    return _from_map(decode_payload(frames, limits))
