"""``RulesPair``: the server's rules and agents' rules wired together, without sockets.

In the spirit of h11's ``ConnectionPair``: one :class:`ServerRules` and any number of agent
processes (:class:`AgentRules`, each hosting one or more players) exchange the real bytes:
every message that crosses is encoded with :func:`tickwire.protocol.encode` and decoded on
the other side with :func:`tickwire.protocol.decode` under the limits the real loops use.
Time is a fake clock (:attr:`RulesPair.now`) that only :meth:`RulesPair.advance` moves.

What the harness plays in place of the sockets (as the I/O loops do):

* the control socket (ROUTER/DEALER): each hosted player has an identity; a ``SendTo`` goes
  to that player's inbox, a control ``Send`` from an agent to ``receive_control``;
* the state socket (XPUB/SUB): a ``Publish`` (and a ``Republish`` of the open tick's STATE)
  goes to every live agent; an agent's ``Subscribe`` is reported to ``receive_subscription``;
* the actions socket (PUSH/PULL): an agent's actions ``Send`` goes to ``receive_action``
  (with :attr:`Agent.reaches_actions` False the send fails and the agent is told);
* a ``Probe`` asks whether the identity still has a live agent (else ``control_lost``);
* :meth:`RulesPair.restart` is a new server process (a new run) at the same address;
* :meth:`RulesPair.kill` is an agent process dying: its subscriptions go
  (``receive_subscription(..., False)``) and, if it carried a player's message, its
  actions connection (``actions_connection_lost``).

Agents act through ``policy(state) -> payloads`` (one payload per hosted player); a policy
returning None leaves the ``Act`` pending, to be answered later with :meth:`Agent.answer`
(a slow agent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from tickwire.protocol import ACTION_LIMITS, CONTROL_LIMITS, State, decode, derive, encode
from tickwire.protocol.agent_rules import (
    Act,
    AgentRules,
    Decision,
    Ended,
    Finish,
    GiveUp,
    Send,
    ServerComplained,
    Setup,
    Socket,
    Subscribe,
    Waiting,
)
from tickwire.protocol.messages import Welcome
from tickwire.protocol.server_rules import (
    Accepted,
    Lobby,
    NextTick,
    Output,
    Probe,
    Publish,
    Rejected,
    Republish,
    SendTo,
    ServerRules,
    StatusChange,
    TickClosed,
)
from tickwire.server.world_server.config import ServerConfig

ENDPOINTS = derive("ipc:///tmp/rules-pair/run")
#: More exchanges than this in one :meth:`RulesPair.pump` is a ping-pong loop: a bug.
MAX_EXCHANGES = 10_000

Policy = Callable[[State], "Sequence[Any] | None"]


class Agent:
    """One agent process in the pair: its rules, its inboxes and what it was told."""

    def __init__(
        self, pair: RulesPair, number: int, names: Sequence[str], slot: int | None, policy: Policy
    ) -> None:
        self.pair = pair
        self.rules = AgentRules(list(names), ENDPOINTS, now=pair.now, slot=slot)
        #: the control identity of each hosted player (a DEALER's identity)
        self.identities = [f"agent{number}.{i}".encode() for i in range(len(names))]
        self.policy = policy
        self.alive = True
        #: its actions socket has a connection (False: a send there fails, as a PUSH without
        #: a peer does, and is reported to ``send_failed``)
        self.reaches_actions = True
        self.subscribed: set[bytes] = set()
        self.carried_player = False  #: its actions connection carried a player's message
        self.control_inbox: deque[tuple[int, list]] = deque()  # (hosted player, frames)
        self.state_inbox: deque[list] = deque()
        self.welcomes: list[Welcome] = []  #: every Setup's WELCOME, in order
        self.acts: list[Act] = []  #: every Act decided, in order
        self.pending: Act | None = None  #: an Act the policy has not answered yet
        self.ended: Any = None  #: the END, once the run ended for it
        self.complaints: list[Any] = []  #: ServerComplained and Waiting decisions
        self.gave_up: Exception | None = None

    @property
    def finished(self) -> bool:
        """Its rules are done: END, a stop, or giving up."""
        return self.rules.finished

    @property
    def players(self) -> list[int | None]:
        """The player id of each hosted player (None: never welcomed)."""
        return [r.player for r in self.rules.results]

    def answer(self, payloads: Sequence[Any]) -> None:
        """Answer the pending ``Act`` now (a slow agent's late action) and deliver it."""
        act, self.pending = self.pending, None
        assert act is not None, "no Act is pending"
        self._acted(act, payloads)
        self.pair.pump()

    def _acted(self, act: Act, payloads: Sequence[Any]) -> None:
        send = self.rules.acted(act.state.tick, payloads)
        if send is not None:
            self.carry_out([send])

    def carry_out(self, decisions: Sequence[Decision]) -> None:
        """Do what the agent's rules decided: send bytes, subscribe, act, record."""
        pair = self.pair
        for d in decisions:
            kind = type(d)
            if kind is Send:
                frames = encode(d.message)
                if d.socket is Socket.CONTROL:
                    pair._to_control.append((self.identities[d.agent], frames))
                elif self.reaches_actions:
                    pair._to_actions.append((self, frames))
                else:
                    self.carry_out(self.rules.send_failed(d, pair.now))
            elif kind is Subscribe:
                self.subscribed.add(d.topic)
                pair._subscriptions.append((d.topic, True))
            elif kind is Setup:
                self.welcomes.append(d.welcome)
            elif kind is Act:
                self.acts.append(d)
                payloads = self.policy(d.state)
                if payloads is None:
                    self.pending = d
                else:
                    self._acted(d, payloads)
            elif kind is Ended:
                self.ended = d.end
            elif kind in (ServerComplained, Waiting):
                self.complaints.append(d)
            elif kind is GiveUp:
                self.gave_up = d.error
            elif kind is not Finish:  # Finish: ``finished`` says so
                raise AssertionError(f"unknown decision {d!r}")

    def _deliver(self) -> bool:
        """Hand the agent's queued input to its rules; True if there was any."""
        if not (self.control_inbox or self.state_inbox):
            return False
        now = self.pair.now
        while self.control_inbox:
            i, frames = self.control_inbox.popleft()
            self.carry_out(self.rules.control_received(i, decode(frames), now))
        if self.state_inbox:  # everything queued goes in at once, as the runtime drains it
            msgs = [decode(frames) for frames in self.state_inbox]
            self.state_inbox.clear()
            self.carry_out(self.rules.states_received(msgs, now))
        return True


class RulesPair:
    """A :class:`ServerRules` and its agents, exchanging encoded messages on a fake clock.

    ``settings`` are :class:`ServerConfig` fields (``players``, ``mode``, ...); ``rules``
    keyword arguments (``noop``, ``validate``, ...) go to :class:`ServerRules`.
    """

    def __init__(self, *, run_id: str = "run1", rules: dict | None = None, **settings: Any) -> None:
        self.now = 0.0
        self.config = ServerConfig(**{"bind": "inproc://rules-pair", **settings})
        self._rules = dict(rules or {})
        self.server = ServerRules(self.config, run_id, endpoints=ENDPOINTS, **self._rules)
        self.agents: list[Agent] = []
        self.changes: list[StatusChange] = []  #: every status change, in order
        self.rejected: list[Rejected] = []  #: every rejection, in order
        self.closed: list[TickClosed] = []  #: every closed tick, in order
        self._to_control: deque[tuple[bytes, list]] = deque()
        self._to_actions: deque[tuple[Agent, list]] = deque()
        self._subscriptions: deque[tuple[bytes, bool]] = deque()
        self._state_frames: list | None = None  # the open tick's STATE (for a Republish)
        self.server.open_lobby(self.now)

    # ------------------------------------------------------------------ agents
    def add_agent(self, *names: str, slot: int | None = None, policy: Policy = lambda state: None) -> Agent:
        """Start an agent process hosting ``names`` (default one player); its JOINs go out."""
        agent = Agent(self, len(self.agents), names or (f"p{len(self.agents)}",), slot, policy)
        self.agents.append(agent)
        agent.carry_out(agent.rules.due(self.now))
        return agent

    def restart(self, run_id: str) -> None:
        """A new server process (a new run, ``run_id``) at the same address: what was in
        flight is lost; the agents' sockets reconnect, and a SUB sends its subscriptions
        again to the new server."""
        self.server = ServerRules(self.config, run_id, endpoints=ENDPOINTS, **self._rules)
        self._to_control.clear()
        self._to_actions.clear()
        self._subscriptions.clear()
        self._state_frames = None
        for agent in self.agents:
            agent.control_inbox.clear()
            agent.state_inbox.clear()
            agent.carried_player = False
            self._subscriptions.extend((topic, True) for topic in sorted(agent.subscribed))
        self.server.open_lobby(self.now)

    def kill(self, agent: Agent) -> None:
        """The agent's process dies: its connections go, as the server's sockets see it."""
        agent.alive = False
        for topic in sorted(agent.subscribed):
            self._carry_out(self.server.receive_subscription(topic, False, self.now))
        agent.subscribed.clear()
        if agent.carried_player:
            self._carry_out(self.server.actions_connection_lost(self.now))

    # ------------------------------------------------------------------ time and traffic
    def advance(self, seconds: float) -> None:
        """Move the clock; run what is due by time on both sides; exchange until quiet."""
        self.now += seconds
        for agent in self.agents:
            if agent.alive and not agent.finished:
                agent.carry_out(agent.rules.due(self.now))
        server = self.server
        self._carry_out(server.heartbeat(self.now))
        self._carry_out(server.probe(self.now))
        if not server.running:
            self._carry_out(server.release_unready(self.now))
        self.pump()

    def pump(self) -> None:
        """Deliver queued messages both ways until nothing is in flight."""
        for _ in range(MAX_EXCHANGES):
            if not self._server_reads() and not any(a.alive and a._deliver() for a in self.agents):
                return
        raise AssertionError(f"still exchanging messages after {MAX_EXCHANGES} rounds")

    def _server_reads(self) -> bool:
        server, now, busy = self.server, self.now, False
        while self._subscriptions:
            topic, on = self._subscriptions.popleft()
            self._carry_out(server.receive_subscription(topic, on, now))
            busy = True
        while self._to_control:
            identity, frames = self._to_control.popleft()
            self._carry_out(server.receive_control(identity, decode(frames, CONTROL_LIMITS), now))
            busy = True
        while self._to_actions:
            agent, frames = self._to_actions.popleft()
            msg = decode(frames, ACTION_LIMITS)
            self._carry_out(server.receive_action(msg, now))
            if not agent.carried_player:
                agent.carried_player = server.from_player(msg)
            busy = True
        return busy

    def _carry_out(self, outs: Sequence[Output]) -> None:
        """Do what the server's rules decided (as ``WorldServer._carry_out`` does)."""
        for out in outs:
            kind = type(out)
            if kind is SendTo:
                self._send_control(out.identity, encode(out.message))
            elif kind is Publish:
                self._publish(encode(out.message))
            elif kind is Republish:
                assert self._state_frames is not None
                self._publish(self._state_frames)
            elif kind is Probe:
                if self._agent_of(out.identity) is None:
                    self._carry_out(self.server.control_lost(out.identity, self.now))
            elif kind is StatusChange:
                self.changes.append(out)
            elif kind is Rejected:
                self.rejected.append(out)
            elif kind is not Accepted:
                raise AssertionError(f"unknown output {out!r}")

    def _agent_of(self, identity: bytes) -> tuple[Agent, int] | None:
        for agent in self.agents:
            if agent.alive and identity in agent.identities:
                return agent, agent.identities.index(identity)
        return None

    def _send_control(self, identity: bytes, frames: list) -> None:
        found = self._agent_of(identity)
        if found is not None:  # a ROUTER drops what goes to an identity with no connection
            found[0].control_inbox.append((found[1], frames))

    def _publish(self, frames: list) -> None:
        for agent in self.agents:
            if agent.alive:  # every agent's SUB subscribes to everything ("")
                agent.state_inbox.append(frames)

    # ------------------------------------------------------------------ the server's phases
    def start(self) -> Lobby:
        """Ask the lobby; start the run if it says so. Returns its verdict."""
        verdict = self.server.lobby(self.now)
        if verdict is Lobby.START:
            self._carry_out(self.server.start(self.now))
            self.pump()
        return verdict

    def begin_tick(self, payload: Any = None) -> int:
        """Open the next tick and publish its STATE (``payload``: the world's observation)."""
        server = self.server
        assert server.next_tick(self.now) is NextTick.PLAY, "nobody is playing"
        tick = server.tick
        self._state_frames = encode(State(server.run_id, tick, payload))
        server.begin_tick(tick, self.now)
        self._publish(self._state_frames)
        server.published(self.now)
        self.pump()
        return tick

    def close_tick(self) -> TickClosed | None:
        """Close the open tick if the rules let it close now (None: it must wait)."""
        if not self.server.may_close(self.now):
            return None
        closed = self.server.close_tick(self.now)
        self._carry_out(closed.changes)
        self.closed.append(closed)
        return closed

    def end(self, reason: str = "ticks done", scores: Sequence[Any] = ()) -> None:
        """End the run: END goes out on both sockets."""
        self._carry_out(self.server.end(reason, list(scores), self.now))
        self.pump()
