"""The agent's side of the protocol as a pure state machine (sans-IO, in the style of h11).

Events go in as method calls, each with ``now`` (seconds on any monotonic clock, passed in:
this module never reads a clock, touches a socket or logs). Each call returns the decisions
the I/O loop must carry out, in order: a message to send and on which socket, a topic to
subscribe to, the user's ``setup``/``act``/``on_end`` to call, an ERROR to report, or an
error to give up with. ``tickwire.agents.runtime`` is the loop that owns the sockets.

One process may host several players: each has its own control socket (a DEALER, its
identity), and all share one state socket (SUB) and one actions socket (PUSH).

The rules:

* **Join.** Each hosted player sends JOIN (name, slot) on its control socket at once and
  again until its WELCOME arrives: the first time after :data:`JOIN_RETRY_S`, then after
  twice as long each time, up to :data:`JOIN_RETRY_MAX_S`, each wait after the first one
  lengthened by up to :data:`JOIN_JITTER` of itself at random (agents started together do
  not retry together). While the server is working through the JOINs already queued (a
  WELCOME came for some hosted player since the last JOINs went out), no JOIN is repeated:
  the check is made again after :data:`JOIN_RETRY_S`. A JOIN that could not be sent at all
  (no connection yet: a JOIN sent before the server is up is dropped, not queued) is sent
  again on its own after :data:`JOIN_RETRY_S`, whatever the others' retries do. A busy lobby so gets few
  repeated JOINs (each one queued at the server costs it memory and an answer), and a lost
  JOIN on a small run still costs about a second at most. Without a WELCOME for every
  player within the join timeout the agent gives up (:class:`ServerUnreachable`).
* **Welcome → ready.** On a player's first WELCOME: call ``setup``, subscribe to the
  WELCOME's topic (this proves to the server that the player hears the state), then send
  READY on the actions socket, retried every :data:`READY_RETRY_S` until it can be sent or
  the join timeout passes. A repeated WELCOME (answer to a retried JOIN) changes nothing.
* **Refusal.** An ERROR before a player's WELCOME is a refusal: the agent LEAVEs for the
  players already welcomed and gives up with :class:`Refused` (the server's code and
  text). An ERROR after the WELCOME is reported and recorded; play goes on.
* **Full, for now.** A ``full`` refusal with ``retry_ms`` (some slots are held by players
  that joined but are not ready yet; the server frees them after its ready timeout) is not
  final: :class:`Waiting` is reported once, and the JOIN is sent again after ``retry_ms``
  (at least :data:`FULL_RETRY_MIN_S`, at most :data:`FULL_RETRY_MAX_S`: a slot may be freed
  sooner) until a WELCOME, or a refusal without ``retry_ms``, or the join timeout, which then
  gives up with :class:`Refused` ``full`` and the server's last text.
* **Play.** Once every player sent READY: for each batch of messages read from the state
  socket, act on the **newest** STATE of this run only. Older queued states and ticks never
  seen (gaps: the publisher drops for slow subscribers) count as ``skipped``, from the
  first STATE seen on (an agent joining mid-run, or rejoining a resumed run, never had the
  ticks before it to play); states at or before the last tick acted on are ignored. Every
  hosted player acts on the same state and their actions go out as one ACTION (one player)
  or one ACTIONS batch (several). Each tick from the first STATE on is counted once per
  player, in ``ticks`` (acted on), ``skipped`` or ``done`` (its own view said terminated or
  truncated), as the server counts ``answered``/``missed`` and ``done``; a tick played
  again after a rejoin (the server resumed from before it) is not counted again.
* **Private views.** When the WELCOME says ``private`` (the world gives each player its own
  view), a player acts on tick *t* only once both the STATE of *t* and its own OBSERVATION
  of *t* (from its control socket) are in; newer ones replace older ones while waiting. A
  player whose OBSERVATION says terminated or truncated does not act on that tick (the
  server does not wait for it); when no hosted player acts, nothing is sent.
* **Other runs, heartbeats.** Messages of another run are ignored and do not count as the
  server being alive (while playing, a STATE or HEARTBEAT of another run starts a rejoin).
  HEARTBEATs and any control message of this run do.
* **End.** The first END of this run, on either socket, calls ``on_end`` and finishes.
* **Asked again.** A STATE for the tick last acted on (the server publishes the open tick's
  STATE again when an actions connection was lost) sends that tick's action again; the
  server rejects a duplicate harmlessly.
* **Rejoin.** A message of another run while playing means a server at the same address
  now runs a new run (restarted or resumed): every hosted player JOINs again asking for
  the slot it had, within the server timeout. Its WELCOME gives a :class:`Setup` with
  ``again=True`` (the user's ``setup`` is not called twice), then READY, then play from
  the new run's next STATE. While rejoining, a ``slot_taken`` or ``run_in_progress``
  refusal is retried (the server may not have seen the old connection go yet).
* **Silence.** Once playing, no message of this run for longer than the server timeout
  means the server is gone: give up with a :class:`ServerGone` that says what to do.
* **Stop.** A stop request (signal, error in user code) sends LEAVE for every welcomed
  player and finishes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union, cast

import numpy as np

from .endpoints import Endpoints
from .errors import Refused, ServerGone, ServerUnreachable, TickwireError
from .messages import (
    Action,
    ActionArray,
    Actions,
    End,
    Error,
    Heartbeat,
    Join,
    Leave,
    Message,
    Observation,
    Ready,
    State,
    Welcome,
)

JOIN_RETRY_S = 0.5  #: a JOIN without answer is sent again after this long (the first time)
JOIN_RETRY_MAX_S = 4.0  #: later retries wait twice as long each time, up to this (plus jitter)
JOIN_JITTER = 0.25  #: each wait after the first is lengthened by up to this fraction, at random
READY_RETRY_S = 0.01  #: a READY that could not be sent (actions socket not connected) is retried
#: An action that could not be sent (the actions connection was down: a cut, a restart) is
#: sent again this often while its tick is still the newest one we have seen.
ACTION_RETRY_S = 0.02


#: Refusals that are retried while rejoining (the server has not seen the old connection go).
_RETRY_ON_REJOIN = frozenset({"slot_taken", "run_in_progress"})
#: A ``full`` refusal with ``retry_ms`` is retried after that long, within these bounds.
FULL_RETRY_MIN_S = 0.1
FULL_RETRY_MAX_S = 2.0

# Decisions are slotted records the loop only reads. They are not frozen: a frozen
# dataclass costs about a microsecond more to build, and two are built per tick.


class Socket(Enum):
    """Which of the agent's sockets a message goes out on."""

    CONTROL = "control"  #: the DEALER of the hosted player ``Send.agent``
    ACTIONS = "actions"  #: the shared PUSH


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` on ``socket`` (for CONTROL: the socket of hosted player ``agent``)."""

    socket: Socket
    message: Message
    agent: int = 0
    resend: bool = False  #: an action sent again on request (not counted twice)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe the state socket to ``topic`` (the readiness proof of one player)."""

    topic: bytes


@dataclass(frozen=True, slots=True)
class Setup:
    """Hosted player ``agent`` was welcomed: give it its WELCOME and call its ``setup``
    (``again``: a rejoin after the server's run changed; ``setup`` was called already)."""

    agent: int
    welcome: Welcome
    again: bool = False


@dataclass(frozen=True, slots=True)
class Act:
    """The hosted players act on ``state``; then report the payloads to :meth:`AgentRules.acted`.

    ``observations`` (private views only): each hosted player's OBSERVATION for this tick,
    in hosting order; a terminated or truncated one does not act.
    """

    state: State
    observations: list[Observation] | None = None


@dataclass(frozen=True, slots=True)
class Ended:
    """The run is over: call every hosted player's ``on_end``."""

    end: End


@dataclass(frozen=True, slots=True)
class ServerComplained:
    """The server sent hosted player ``agent`` an ERROR after its WELCOME: show it."""

    agent: int
    error: Error


@dataclass(frozen=True, slots=True)
class Waiting:
    """Hosted player ``agent`` was refused ``full`` for now (slots held by players not ready
    yet): it JOINs again by itself; show ``error`` once."""

    agent: int
    error: Error


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop now and raise ``error``."""

    error: TickwireError


@dataclass(frozen=True, slots=True)
class Finish:
    """The agent's work is done (END, or a stop request); close and return."""

    reason: str


Decision = Union[Send, Subscribe, Setup, Act, Ended, ServerComplained, Waiting, GiveUp, Finish]


@dataclass
class AgentResult:
    """How one hosted agent's run went (what :func:`tickwire.agents.run` returns).

    Mutable on purpose: the rules fill it in while the agent plays (ticks, skipped, errors,
    rejoins), so a run stopped part-way (a signal, an error) still returns what happened."""

    name: str
    player: int | None = None
    ticks: int = 0  #: ticks it acted on (whose action was sent), each tick once
    skipped: int = 0  #: ticks it never saw, or skipped because a newer state was queued
    #: ticks its own view (private views) said terminated or truncated: it did not act on
    #: them (the server's ``done``); ``on_done`` ran for those whose STATE it acted on
    done: int = 0
    end: End | None = None  #: the server's END, if one arrived
    reason: str = ""  #: why it stopped: ``end: <reason>``, or the stop reason
    errors: list[str] = field(default_factory=list)  #: ERROR texts the server sent
    rejoins: int = 0  #: times it joined again because the server's run changed

    def __str__(self) -> str:
        """One line: who, how many ticks acted on, skipped and done (if any), rejoins (if
        any), how it ended, the scores."""
        if self.player is None:
            return f"{self.name}: never joined ({self.reason or 'not started'})"
        text = (
            f"{self.name} (player {self.player}): acted on {self.ticks} "
            f"tick{'s' * (self.ticks != 1)}, skipped {self.skipped}"
            + (f", done {self.done}" if self.done else "")
            + (f", rejoined {self.rejoins} time{'s' * (self.rejoins != 1)}" if self.rejoins else "")
            + "; "
        )
        end = self.end
        if end is None:
            text += f"stopped ({self.reason})" if self.reason else "still running"
        else:
            text += f"run ended at tick {end.tick} ({end.reason})"
            if self.player < len(end.scores):
                text += f"; score {end.scores[self.player]} (all: {', '.join(str(s) for s in end.scores)})"
        if self.errors:
            text += f"; {len(self.errors)} error(s) from the server, last: {self.errors[-1]}"
        return text


class Phase(Enum):
    """Where the agent is in its life."""

    JOINING = "joining"  #: some hosted player has no WELCOME yet, or its READY is unsent
    PLAYING = "playing"  #: every player sent READY: acting on states
    DONE = "done"  #: finished (END or stop) or gave up


class AgentRules:
    """The rules for the players hosted in one agent process (see the module docstring).

    ``names`` are the hosted players' names (one per player); ``slot`` asks for slots
    ``slot .. slot+len(names)-1``. ``now`` is the time the agent starts.
    """

    def __init__(
        self,
        names: Sequence[str],
        endpoints: Endpoints,
        *,
        now: float,
        slot: int | None = None,
        join_timeout_s: float = 60.0,
        server_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if not names:
            raise ValueError("AgentRules needs at least one hosted player")
        self.endpoints = endpoints
        self._results = [AgentResult(n) for n in names]
        #: ticks every hosted player acted on that are not yet added to each result's
        #: ``ticks`` (counting them once per tick, not once per player; see :attr:`results`)
        self._acted_all = 0
        #: some player's own view said done for a tick not yet acted on (private views)
        self._any_done_seen = False
        self.welcomes: list[Welcome | None] = [None] * len(names)
        self._welcomed_count = 0  #: WELCOMEs taken in: with ``welcomes``' identity, the columns' key
        self.phase = Phase.JOINING
        self.run: str | None = None  #: the run id of the first WELCOME
        self.slot = slot
        self.join_timeout_s = join_timeout_s
        self.server_timeout_s = server_timeout_s
        self.join_deadline = now + join_timeout_s
        self.last_heard = now
        self.last_tick = -1
        #: the first STATE tick seen since this run's WELCOME (or a rejoin's): ticks before
        #: it were never this agent's to play (it joined mid-run, or the server resumed)
        self._first_seen: int | None = None
        #: the ticks counted in the results (acted on, skipped or done), first to last,
        #: across rejoins (None before the first)
        self._counted: tuple[int, int] | None = None
        #: ``_counted`` when the last rejoin began: a resumed server plays these ticks
        #: again, and they are not counted twice
        self._counted_before: tuple[int, int] | None = None
        #: per hosted player: ticks newer than the last acted on whose OBSERVATION said done
        self._done_seen: list[set[int]] = [set() for _ in names]
        self.seq = 0
        self.other_run: str | None = None  #: the last other run heard from, for the error text
        self._unready = set(range(len(names)))  # no WELCOME yet, or READY not sent yet
        self._ready_retry: set[int] = set()
        self._next_join = now  # JOINs are due at once
        self._join_wait = JOIN_RETRY_S  # the wait after the next JOINs, before jitter
        self._welcomed_since_join = False  # a WELCOME came since the last JOINs went out
        self._unsent: set[int] = set()  # players whose JOIN could not be sent (no connection)
        self._next_unsent = now  # when those are sent again
        self._rng = rng if rng is not None else random.Random()  # the retries' jitter
        self._slots = [None if slot is None else slot + i for i in range(len(names))]
        self.rejoining = False  #: joining again after the server's run changed
        self._last_sent: Send | None = None  # the last action(s) sent, for a resend
        #: ((the ``welcomes`` list and ``_welcomed_count`` they were built from), player ids,
        #: tokens, all take ACTION_ARRAY)
        self._columns: tuple[tuple[list, int], np.ndarray, list[str], bool] | None = None
        self._action_retry: tuple[Send, float] | None = None  # a failed action send, and when
        self.private = False  #: the world sends each player its own OBSERVATION
        self._pending: State | None = None  # private views: the newest STATE not acted on
        self._own: list[Observation | None] = [None] * len(names)
        #: hosted players refused ``full`` for now: the server's last such ERROR
        self._full: dict[int, Error] = {}

    @property
    def results(self) -> list[AgentResult]:
        """One :class:`AgentResult` per hosted player (hosting order), up to date."""
        if self._acted_all:  # per-tick counting is one addition for all; spread it on reading
            n, self._acted_all = self._acted_all, 0
            for result in self._results:
                result.ticks += n
        return self._results

    @property
    def never_welcomed(self) -> bool:
        """Some hosted player never had a WELCOME (from any run): it never got through."""
        return any(r.player is None for r in self.results)

    # ------------------------------------------------------------------ timers
    def due(self, now: float) -> list[Decision]:
        """Whatever is due at ``now``: JOIN retries, READY retries, the timeouts."""
        if self.phase is Phase.JOINING:
            if now >= self.join_deadline:
                return self._join_timed_out()
            decisions = self._ready_retries() if self._ready_retry else []
            if now >= self._next_join:
                if self._welcomed_since_join and not self._full:  # the server is getting there
                    self._welcomed_since_join = False
                    self._next_join = now + JOIN_RETRY_S
                else:
                    self._unsent = set()  # all are sent now
                    self._next_join = now + self._join_backoff()
                    decisions += self._joins(self._unready)
            if self._unsent and now >= self._next_unsent:  # these never reached the server
                unsent, self._unsent = self._unsent, set()
                decisions += self._joins(unsent)
            return decisions
        if self.phase is Phase.PLAYING and now - self.last_heard > self.server_timeout_s:
            return self._give_up(ServerGone(self._silence_text()))
        retry = self._action_retry
        if retry is not None and now >= retry[1]:
            self._action_retry = None
            msg = retry[0].message  # an ACTION or ACTIONS (see send_failed)
            if (
                self.phase is Phase.PLAYING
                and isinstance(msg, (Action, Actions))
                and msg.tick == self.last_tick
            ):
                self._count_acted(msg, +1)  # undone again if it fails again
                return [retry[0]]  # still the newest tick as far as we know: try again
        return []

    def next_due(self, now: float) -> float:
        """Seconds until :meth:`due` may have something to do (0 if it has now)."""
        if self.phase is Phase.JOINING:
            at = min(self._next_join, self.join_deadline)
            if self._unsent:
                at = min(at, self._next_unsent)
            if self._ready_retry:
                at = min(at, now + READY_RETRY_S)
        elif self.phase is Phase.PLAYING:
            at = self.last_heard + self.server_timeout_s
            if self._action_retry is not None:
                at = min(at, self._action_retry[1])
        else:
            return 0.0
        return max(0.0, at - now)

    def _join_backoff(self) -> float:
        """The wait before the next JOIN retry: :data:`JOIN_RETRY_S` the first time, then
        doubling up to :data:`JOIN_RETRY_MAX_S`, with jitter (module docstring)."""
        wait = self._join_wait
        self._join_wait = min(wait * 2, JOIN_RETRY_MAX_S)
        if wait > JOIN_RETRY_S:
            wait *= 1 + JOIN_JITTER * self._rng.random()
        return wait

    def _joins(self, players: set[int]) -> list[Decision]:
        return [
            Send(Socket.CONTROL, Join(self.results[i].name, self._slots[i]), i)
            for i in sorted(players)
            if self.welcomes[i] is None
        ]

    def _ready_retries(self) -> list[Decision]:
        retry, self._ready_retry = self._ready_retry, set()
        return [self._ready(i) for i in sorted(retry)]

    def _join_timed_out(self) -> list[Decision]:
        if self._full:  # the server answered: it was full all along
            agent, error = next(iter(self._full.items()))
            return self._give_up(
                Refused(
                    "full",
                    (
                        f"the server refused {self.results[agent].name}: still full after the join "
                        f"timeout ({self.join_timeout_s:g} s): {error.text} (full)"
                    ),
                )
            )
        if self.rejoining:
            text = (
                f"the server at {self.endpoints.base} now runs another run "
                f"({self.other_run!r}); this agent could not rejoin it as player(s) "
                f"{self._slots} within the server timeout ({self.server_timeout_s:g} s)"
                + (f": {self.results[0].errors[-1]}" if self.results[0].errors else "")
            )
        elif any(w is None for w in self.welcomes):
            text = (
                f"no WELCOME from a tickwire server at {self.endpoints.base} after "
                f"{self.join_timeout_s:g} s: is the server running, and is the address "
                "(and its next two ports) reachable from here?"
            )
        else:
            text = (
                f"could not send READY to the actions endpoint {self.endpoints.actions} "
                f"within the join timeout ({self.join_timeout_s:g} s): is that address "
                "reachable from here?"
            )
        # a rejoin that failed lost the server it played with; otherwise none was reached
        return self._give_up(ServerGone(text) if self.rejoining else ServerUnreachable(text))

    def _silence_text(self) -> str:
        text = (
            f"the server at {self.endpoints.base} has been silent for more than "
            f"{self.server_timeout_s:g} s (it sends a heartbeat every second when idle); "
            "it is gone or unreachable, so this agent stops."
        )
        if self.other_run is not None:
            text += (
                f" A server there now runs {self.other_run!r}, not this agent's run "
                f"{self.run!r}: it was restarted; start the agent again to join it."
            )
        return text

    # ------------------------------------------------------------------ control socket
    def control_received(self, agent: int, msg: Message, now: float) -> list[Decision]:
        """A decoded message arrived on hosted player ``agent``'s control socket."""
        if self.phase is Phase.DONE:
            return []
        if isinstance(msg, Welcome):
            return self._welcomed(agent, msg, now)
        if isinstance(msg, Error):
            return self._error(agent, msg, now)
        if self.run is not None and getattr(msg, "run", None) == self.run:
            self.last_heard = now
            if isinstance(msg, End):
                return self._ended(msg)
            if isinstance(msg, Observation):
                return self._observed(agent, msg)
        return []

    def _observed(self, agent: int, obs: Observation) -> list[Decision]:
        """A player's private view: keep the newest; act if its STATE is in too."""
        w, held = self.welcomes[agent], self._own[agent]
        if w is None or obs.player != w.player or obs.tick <= self.last_tick:
            return []
        if obs.terminated or obs.truncated:  # out of that tick, even if it never acts on it
            self._done_seen[agent].add(obs.tick)
            self._any_done_seen = True
        if held is None or obs.tick > held.tick:
            self._own[agent] = obs
        return self._try_act() if self.phase is Phase.PLAYING else []

    def _try_act(self) -> list[Decision]:
        """Private views: act once the pending STATE and every player's view of it are in."""
        state = self._pending
        if state is None or any(o is None or o.tick != state.tick for o in self._own):
            return []
        self._pending = None
        return self._act_on(state, [o for o in self._own if o is not None])  # all are, see above

    def _act_on(self, state: State, observations: list[Observation] | None) -> list[Decision]:
        """Count the ticks between the last one acted on and ``state``'s (from the first
        state seen on, and not those an earlier run counted): done if the player's own view
        said so, else skipped; and ``state``'s tick as done for the players whose view says so."""
        tick = state.tick
        first = tick if self._first_seen is None else self._first_seen
        after = max(self.last_tick, first - 1)  # the gap: after < t < tick
        gap = tick - after - 1 - self._overlap(after + 1, tick - 1)
        if self._any_done_seen:
            for i, result in enumerate(self.results):
                seen = self._done_seen[i]
                done = sum(1 for t in seen if after < t < tick and self._new(t)) if seen else 0
                result.done += done
                result.skipped += max(0, gap - done)
                if seen:
                    self._done_seen[i] = {t for t in seen if t > tick}
            self._any_done_seen = any(self._done_seen)
        elif gap > 0:  # nobody's view said done: every player skipped the whole gap
            for result in self._results:
                result.skipped += gap
        if observations is not None and self._new(tick):
            for result, obs in zip(self.results, observations):
                result.done += bool(obs.terminated or obs.truncated)
        self.last_tick = tick
        lo, hi = self._counted or (first, tick)
        self._counted = (min(lo, first), max(hi, tick))
        return [Act(state, observations)]

    def _new(self, tick: int) -> bool:
        """``tick`` was not counted in an earlier run (before the last rejoin)."""
        before = self._counted_before
        return before is None or not before[0] <= tick <= before[1]

    def _overlap(self, first: int, last: int) -> int:
        """How many of the ticks ``first..last`` an earlier run counted."""
        before = self._counted_before
        if before is None or last < first:
            return 0
        return max(0, min(last, before[1]) - max(first, before[0]) + 1)

    def _welcomed(self, agent: int, welcome: Welcome, now: float) -> list[Decision]:
        if self.welcomes[agent] is not None:
            return []  # the answer to a retried JOIN
        self._full.pop(agent, None)
        self._welcomed_since_join = True
        self.welcomes[agent] = welcome
        self._welcomed_count += 1
        self.run = self.run or welcome.run
        self.private = self.private or welcome.private
        self.last_heard = now
        self.results[agent].player = welcome.player
        return [Setup(agent, welcome, self.rejoining), Subscribe(welcome.topic), self._ready(agent)]

    def _ready(self, agent: int) -> Send:
        w = self.welcomes[agent]
        assert w is not None  # READY follows the WELCOME
        self._unready.discard(agent)
        if not self._unready:
            self.phase = Phase.PLAYING
            self.rejoining = False
        return Send(Socket.ACTIONS, Ready(w.run, w.player, w.token), agent)

    def _error(self, agent: int, error: Error, now: float) -> list[Decision]:
        result = self.results[agent]
        if self.welcomes[agent] is None and self.rejoining and error.code in _RETRY_ON_REJOIN:
            result.errors.append(error.text)
            return []  # the server has not seen our old connection go yet: JOIN again soon
        if self.welcomes[agent] is None and error.code == "full" and error.retry_ms is not None:
            return self._wait_for_a_slot(agent, error, now)
        if self.welcomes[agent] is None:
            return self._give_up(
                Refused(error.code, f"the server refused {result.name}: {error.text} ({error.code})")
            )
        self.last_heard = now
        result.errors.append(error.text)
        return [ServerComplained(agent, error)]

    def _wait_for_a_slot(self, agent: int, error: Error, now: float) -> list[Decision]:
        """``full`` for now: JOIN again after ``retry_ms`` (bounded); say so the first time."""
        first = agent not in self._full
        self._full[agent] = error
        wait = min(max((error.retry_ms or 0) / 1e3, FULL_RETRY_MIN_S), FULL_RETRY_MAX_S)  # not None here
        self._next_join = now + wait
        if not first:
            return []
        self.results[agent].errors.append(error.text)
        return [Waiting(agent, error)]

    # ------------------------------------------------------------------ state socket
    def states_received(self, msgs: Sequence[Message], now: float) -> list[Decision]:
        """Decoded messages read from the state socket in one go, oldest first."""
        if self.phase is Phase.DONE:
            return []
        newest = None
        for msg in msgs:
            run = getattr(msg, "run", None)  # every kind sent on the state socket has one
            if run != self.run:
                if self.run is not None:
                    self.other_run = run
                    if self.phase is Phase.PLAYING and isinstance(msg, (State, Heartbeat)):
                        return self._rejoin(now)
                continue
            self.last_heard = now
            if isinstance(msg, State):
                newest = msg
                if self._first_seen is None:
                    self._first_seen = msg.tick
            elif isinstance(msg, End):
                return self._ended(msg)
        if self.phase is not Phase.PLAYING:
            return []
        if newest is not None and newest.tick == self.last_tick and self._last_sent is not None:
            return [self._last_sent]  # asked again: our action for this tick was lost
        if newest is None or newest.tick <= self.last_tick:
            if now - self.last_heard > self.server_timeout_s:  # other runs only, for long
                return self._give_up(ServerGone(self._silence_text()))
            return []
        if self.private:
            self._pending = newest
            return self._try_act()
        return self._act_on(newest, None)

    def acted(self, tick: int, payloads: Sequence[Any], acting: Sequence[int] | None = None) -> Send | None:
        """The actions for ``tick`` of the hosted players ``acting`` (indexes in hosting
        order; default all), one payload each: the message to send (None if nobody acted)."""
        welcomes = cast(  # a player acts only once it has its WELCOME
            "list[Welcome]", self.welcomes if acting is None else [self.welcomes[i] for i in acting]
        )
        if not welcomes:
            return None
        self.seq += 1
        self._count_ticks(tick, acting)
        if len(self.welcomes) == 1:
            w = welcomes[0]
            send = Send(Socket.ACTIONS, Action(w.run, tick, w.player, self.seq, w.token, payloads[0]))
        else:
            entries = [[w.player, w.token, p] for w, p in zip(welcomes, payloads)]
            assert self.run is not None  # set by the first WELCOME
            send = Send(Socket.ACTIONS, Actions(self.run, tick, self.seq, entries))
        self._last_sent = Send(send.socket, send.message, send.agent, resend=True)
        return send

    def acted_array(self, tick: int, actions: Any, acting: Sequence[int] | None = None) -> Send | None:
        """The actions for ``tick`` of the hosted players ``acting`` (default all) as one
        array (first axis: one entry per acting player, in hosting order): an ACTION_ARRAY
        if every WELCOME said the server takes it, else the same actions as ACTION/ACTIONS.
        With every player acting, the work does not grow with their number (the columns
        are cached, the ticks counted once for all)."""
        if acting is None:  # every hosted player: all welcomed while playing
            ids, tokens, arrays = self._all_columns()
        else:
            welcomes = cast("list[Welcome]", [self.welcomes[i] for i in acting])  # all welcomed
            if not welcomes:
                return None
            ids, tokens, arrays = self._columns_of(welcomes)
        if not arrays:  # an older server: entry by entry
            rows = actions.tolist() if getattr(actions, "ndim", 0) == 1 else list(actions)
            return self.acted(tick, rows, acting)
        self.seq += 1
        self._count_ticks(tick, acting)
        assert self.run is not None  # set by the first WELCOME
        msg = ActionArray(self.run, tick, self.seq, ids, tokens, actions)
        send = Send(Socket.ACTIONS, msg)
        self._last_sent = Send(send.socket, send.message, send.agent, resend=True)
        return send

    def _count_ticks(self, tick: int, acting: Sequence[int] | None) -> None:
        """Count ``tick`` as acted on for the players ``acting`` (default all)."""
        if not self._new(tick):  # played again after a resume: counted before
            return
        if acting is None:
            self._acted_all += 1  # added to each result when the results are read
        else:
            for i in acting:
                self._results[i].ticks += 1

    @staticmethod
    def _columns_of(welcomes: Sequence[Welcome]) -> tuple[np.ndarray, list[str], bool]:
        """Player ids, tokens, and whether every WELCOME said the server takes ACTION_ARRAY."""
        ids = np.fromiter((w.player for w in welcomes), dtype=np.int64, count=len(welcomes))
        return ids, [w.token for w in welcomes], all(w.action_array for w in welcomes)

    def _all_columns(self) -> tuple[np.ndarray, list[str], bool]:
        """:meth:`_columns_of` every hosted player, rebuilt only when a WELCOME changed: the
        same objects tick after tick, so an encoder can keep their packed form."""
        cached, key = self._columns, (self.welcomes, self._welcomed_count)
        if cached is None or cached[0][0] is not key[0] or cached[0][1] != key[1]:
            cached = self._columns = (key, *self._columns_of(self.welcomes))  # type: ignore[arg-type]
        return cached[1], cached[2], cached[3]

    def _rejoin(self, now: float) -> list[Decision]:
        """The server's run changed under us: JOIN again for the same slots (module docstring)."""
        n = len(self.results)
        self._slots = [r.player for r in self.results]
        self.welcomes = [None] * n
        self._unready, self._ready_retry = set(range(n)), set()
        self.phase, self.rejoining, self.run = Phase.JOINING, True, None
        self.last_tick, self._last_sent, self._action_retry = -1, None, None
        self._first_seen = None
        self._counted_before = self._counted
        self._done_seen = [set() for _ in range(n)]
        self._any_done_seen = False
        self._pending, self._own, self._full = None, [None] * n, {}
        self.join_deadline, self._next_join = now + self.server_timeout_s, now
        self._join_wait, self._welcomed_since_join, self._unsent = JOIN_RETRY_S, False, set()
        for result in self.results:
            result.rejoins += 1
        return self.due(now)

    # ------------------------------------------------------------------ failures, stop, end
    def send_failed(self, send: Send, now: float) -> list[Decision]:
        """``send`` could not be sent (its socket has no connected peer)."""
        msg = send.message
        if isinstance(msg, Ready) and self.phase is not Phase.DONE:
            self._unready.add(send.agent)
            self._ready_retry.add(send.agent)
            self.phase = Phase.JOINING
        elif isinstance(msg, (Action, Actions, ActionArray)):
            if not send.resend:
                self._count_acted(msg, -1)
            if self.phase is Phase.PLAYING and msg.tick == self.last_tick:
                # retried until it is sent or a newer STATE comes
                self._action_retry = (Send(send.socket, msg, send.agent), now + ACTION_RETRY_S)
        elif isinstance(msg, Join) and self.phase is Phase.JOINING:
            # it never left (nothing was queued at the server): this one again soon, on its
            # own, whatever the other players' retries do
            if not self._unsent:
                self._next_unsent = now + JOIN_RETRY_S
            self._unsent.add(send.agent)
        return []  # a lost LEAVE cannot be helped

    def _count_acted(self, msg: Action | Actions | ActionArray, step: int) -> None:
        """Count ``msg``'s players' ticks acted on (sent) up or down by ``step``."""
        if not self._new(msg.tick):
            return  # a tick played again after a resume: never counted in this run
        if isinstance(msg, ActionArray):
            players = set(np.asarray(msg.players).tolist())
        else:
            players = {msg.player} if isinstance(msg, Action) else {e[0] for e in msg.actions}
        for result in self.results:
            if result.player in players:
                result.ticks += step

    def stop(self, reason: str) -> list[Decision]:
        """Stop on request (a signal, an error in user code): LEAVE for every welcomed player."""
        if self.phase is Phase.DONE:
            return []
        self.phase = Phase.DONE
        for result in self.results:
            result.reason = reason
        return [*self._leaves(reason), Finish(reason)]

    def _leaves(self, reason: str) -> list[Decision]:
        return [
            Send(Socket.CONTROL, Leave(w.run, w.player, reason), i)
            for i, w in enumerate(self.welcomes)
            if w is not None
        ]

    def _ended(self, end: End) -> list[Decision]:
        self.phase = Phase.DONE
        for result in self.results:
            result.end, result.reason = end, f"end: {end.reason}"
        return [Ended(end), Finish(f"end: {end.reason}")]

    def _give_up(self, error: TickwireError) -> list[Decision]:
        leaves = self._leaves(f"giving up: {error}") if isinstance(error, Refused) else []
        self.phase = Phase.DONE
        for result in self.results:
            result.reason = f"gave up: {error}"
        return [*leaves, GiveUp(error)]

    @property
    def finished(self) -> bool:
        """True once nothing more will happen (END, stop, or giving up)."""
        return self.phase is Phase.DONE

    @property
    def playing(self) -> bool:
        """True while acting on states (every hosted player sent READY, no END yet)."""
        return self.phase is Phase.PLAYING
