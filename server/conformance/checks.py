"""The conformance scenarios: what the scripted server does, and what it expects back.

Three runs of the agent command, each against fresh sockets, playing the built-in grid
world as player 1 of 3 (the other two players are the scripted server's):

1. **play** — join and readiness, tick 0, a burst of states while the agent is paused
   (``newest_state``), a state published again (``resend``), a silence with heartbeats
   only (``heartbeats``), END (``end``);
2. **rejoin** — the command restarted with ``TICKWIRE_SLOT=1`` mid-run (``rejoin``);
3. **private** — a world with private views and spaces in the WELCOME: an OBSERVATION per
   tick, sent late once and ``terminated`` once (``private``, ``spaces``).

``act`` (well-formed, valid actions), ``limits`` (nothing over a cap, no connection cut),
``end`` (exit 0 on END) and ``keys`` (CURVE with the given key, ``--keys`` only) are judged
over all three runs. Every wait is bounded; nothing waits on a clock but the scripted pauses.
"""

from __future__ import annotations

import logging
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tickwire.protocol import Action, End, Heartbeat, Join, Observation, Ready, State, Welcome
from tickwire.protocol.limits import ACTION_LIMITS, MAX_ACTION_FRAME
from tickwire.protocol.spaces import contains

from ..worlds.grid_world import GridWorld
from .harness import AGENT_KEY, Keys, Session

log = logging.getLogger(__name__)

PLAYERS = 3
PLAYER = 1  #: the agent's player id (not 0: an agent must use WELCOME's ``player``)
SEED = 7
ACT_TIMEOUT_S = 5.0  #: an agent answers a STATE within this
END_TIMEOUT_S = 5.0  #: an agent exits within this after END
BURST = 12  #: states published while the agent is paused (newest_state)
PAUSE_S = 0.3  #: how long the agent stays paused while the burst is published
QUIET_S = 0.5  #: the window in which an agent must NOT act (late observation, terminated)
HEARTBEATS = 3
HEARTBEAT_GAP_S = 0.7
#: Environment variables the scripted server sets (or clears) for the agent command.
AGENT_ENV = ("TICKWIRE_CONNECT", "TICKWIRE_SLOT", "TICKWIRE_KEY", "TICKWIRE_SERVER_KEY")

#: name → what it checks, in report order.
CHECKS: dict[str, str] = {
    "join": "JOIN on control within --timeout, without a slot when none was given",
    "ready": "subscribes to WELCOME's topic and sends READY (run, player, token)",
    "act": "answers STATEs with well-formed ACTIONs: its run, player, token, a valid payload",
    "newest_state": "after a burst of queued STATEs, answers the newest, not the backlog",
    "resend": "a STATE for the tick it answered: sends the same ACTION again",
    "heartbeats": "survives a silence of HEARTBEATs without acting, then acts on the next STATE",
    "end": "exits with code 0 within 5 s of END (every run)",
    "rejoin": "restarted with TICKWIRE_SLOT: JOINs that slot and plays with the new token",
    "private": "private views: acts only with STATE and OBSERVATION of a tick; not when terminated",
    "spaces": "takes a WELCOME with observation_space/action_space; its actions fit action_space",
    "limits": "no message over the server's caps, no connection cut",
    "keys": "with --keys: every socket connects with CURVE, as the given key",
}
OBSERVATION_SPACE = {
    "type": "dict",
    "spaces": {
        "grid": {"type": "box", "dtype": "|u1", "shape": [16, 16], "low": 0, "high": 1},
        "positions": {"type": "box", "dtype": "<i2", "shape": [PLAYERS, 2], "low": 0, "high": 15},
        "scores": {"type": "box", "dtype": "<i4", "shape": [PLAYERS], "low": 0, "high": 2**31 - 1},
        "tick": {"type": "discrete", "n": 2**31 - 1},
    },
}
ACTION_SPACE = {"type": "discrete", "n": 5}


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  #: "PASS", "FAIL" or "SKIP"
    expected: str
    seen: str
    fix: str = ""
    required: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Play:
    """A scripted run of the grid world: the agent is player 1; 0 and 2 stay put."""

    def __init__(self, session: Session, private: bool = False, first_tick: int = 0) -> None:
        self.s = session
        self.world = GridWorld()
        self.state = self.world.reset(SEED, PLAYERS)
        self.run = secrets.token_hex(6)
        self.token = secrets.token_hex(8)
        self.topic = b"tw." + secrets.token_hex(16).encode()
        self.tick = first_tick
        self.private = private
        self.sent: dict[int, State] = {}  #: the STATE published for each tick

    def welcome(self, name: str, **extra: Any) -> Welcome:
        world = self.world.describe()
        if self.private:  # the action space decides what is valid
            world = {**world, "action_spec": {}}
            extra = {"private": True, "observation_space": OBSERVATION_SPACE, "action_space": ACTION_SPACE}
        return Welcome(
            self.run,
            PLAYER,
            name,
            SEED,
            self.token,
            self.topic,
            "strict",
            None,
            10_000,
            PLAYERS,
            world,
            **extra,
        )

    def view(self) -> dict[str, Any]:
        return self.world.observe(self.state)

    def publish(self, observation: bool = True, terminated: bool = False) -> float:
        """Send this tick (its OBSERVATION first with private views); the time it was sent."""
        at = time.monotonic()
        if self.private:
            if observation:
                self.observe(terminated)
        state = State(self.run, self.tick, {"tick": self.tick} if self.private else self.view())
        self.sent[self.tick] = state
        self.s.publish(state)
        return at

    def observe(self, terminated: bool = False) -> None:
        self.s.tell(Observation(self.run, self.tick, PLAYER, self.view(), 1.0, terminated))

    def answer(self, since: float, timeout_s: float = ACT_TIMEOUT_S) -> Action | None:
        """The agent's first ACTION for this tick sent after ``since``, if any in time."""
        found = self.s.wait_for(lambda: self.s.actions_for(self.tick, since), timeout_s)
        return found[0] if found else None

    def advance(self, action: Action | None) -> None:
        """Step the world with the agent's move (the stay move without one)."""
        move = action.payload if action is not None and contains(ACTION_SPACE, action.payload) else 0
        self.state = self.world.step(self.state, {0: 0, PLAYER: move, 2: 0})
        self.tick += 1

    def play(self, timeout_s: float = ACT_TIMEOUT_S) -> Action | None:
        """Publish this tick, wait for the answer, step; the answer (None if none)."""
        action = self.answer(self.publish(), timeout_s)
        self.advance(action)
        return action


class Conformance:
    """Runs the three scripted runs of ``command`` and judges every check."""

    def __init__(self, command: Sequence[str], workdir: str, timeout_s: float = 10.0, keys: bool = False):
        self.command = list(command)
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.keys = Keys(workdir) if keys else None
        self.results: dict[str, Check] = {}
        self.sessions: list[Session] = []
        self.exits: list[tuple[str, int | None]] = []  #: (run, exit code after END)

    # ------------------------------------------------------------------ helpers
    def _set(self, name: str, ok: bool, expected: str, seen: str, fix: str = "") -> bool:
        if name not in self.results:
            self.results[name] = Check(name, "PASS" if ok else "FAIL", expected, seen, "" if ok else fix)
        return ok

    def _skip(self, names: Sequence[str], why: str) -> None:
        for name in names:
            if name not in self.results:
                self.results[name] = Check(name, "SKIP", CHECKS[name], why)

    def _start(self, name: str, slot: int | None = None) -> Session:
        env: dict[str, str | None] = dict.fromkeys(AGENT_ENV)  # the user's own values must not leak in
        if slot is not None:
            env["TICKWIRE_SLOT"] = str(slot)
        s = Session(self.command, self.workdir, name, self.keys, env)
        self.sessions.append(s)
        return s

    def _silence(self, s: Session) -> str:
        """What was seen instead: the process's exit and output, messages that did not decode."""
        parts = []
        if s.exit_code is not None:
            tail = s.output_tail()
            parts.append(f"the command exited with code {s.exit_code}" + (f" ({tail})" if tail else ""))
        if s.undecodable:
            parts.append(f"{len(s.undecodable)} message(s) that do not decode, e.g. {s.undecodable[0]}")
        if s.auth_failures:
            parts.append(f"failed CURVE handshake(s): {s.auth_failures[0]}")
        return "; ".join(parts) or "nothing"

    def _join(self, s: Session, check: str, slot: int | None) -> Join | None:
        joins = s.wait_for(lambda: s.of(Join), self.timeout_s)
        if not joins:
            self._set(
                check,
                False,
                f"a JOIN on control within {self.timeout_s:g} s",
                self._silence(s),
                "read TICKWIRE_CONNECT (tcp://HOST:P: control is P+2; ipc://X: X.control), "
                "connect a DEALER there and send {v: 1, kind: 'join', name: ...}",
            )
            return None
        join = joins[0]
        if join.slot != slot:
            want = "no slot (nil or left out)" if slot is None else f"slot {slot}"
            where = "TICKWIRE_SLOT was not set" if slot is None else f"TICKWIRE_SLOT={slot}"
            self._set(
                check,
                False,
                f"JOIN with {want} ({where})",
                f"JOIN with slot {join.slot!r}",
                "send JOIN's slot as an int when TICKWIRE_SLOT (or --slot) is given, else leave it out",
            )
            return None
        return join

    def _ready(self, s: Session, play: Play, check: str) -> bool:
        done = lambda: play.topic in s.subscriptions and s.ready_with(play.run, PLAYER, play.token)  # noqa: E731
        if s.wait_for(done, self.timeout_s):
            return True
        got = s.of(Ready)
        seen = [
            "subscribed to the topic" if play.topic in s.subscriptions else "no subscription to the topic",
            f"READY {got[-1]}" if got else "no READY",
        ]
        if s.exit_code is not None or s.undecodable:
            seen.append(self._silence(s))
        self._set(
            check,
            False,
            f"within {self.timeout_s:g} s of WELCOME: a subscription to its topic and READY "
            f"with its run, player and token",
            "; ".join(seen),
            "subscribe the SUB socket to WELCOME's topic (bytes), then send {v: 1, kind: "
            "'ready', run, player, token} on actions",
        )
        return False

    def _end(self, s: Session, play: Play) -> None:
        s.ended = True
        end = End(play.run, play.tick, "ticks done", [0] * PLAYERS)
        s.publish(end)
        s.tell(end)
        self.exits.append((s.name, s.wait_exit(END_TIMEOUT_S)))

    # ------------------------------------------------------------------ runs
    def run(self) -> list[Check]:
        """Run every scripted run; the checks in report order."""
        try:
            self._play_run()
            self._rejoin_run()
            self._private_run()
            self._judge_overall()
        finally:
            for s in self.sessions:
                s.close()
        return [self.results[name] for name in CHECKS]

    def _play_run(self) -> None:
        s = self._start("play")
        play = Play(s)
        later = ["ready", "act", "newest_state", "resend", "heartbeats"]
        join = self._join(s, "join", None)
        if join is None:
            return self._skip(later, "no usable JOIN")
        self._set(
            "join", True, CHECKS["join"], f"JOIN {join.name!r} after {time.monotonic() - s.started:.2f} s"
        )
        s.tell(play.welcome(join.name))
        s.tell(Heartbeat(play.run, 0))  # the server's probe of a joined player: to be ignored
        if not self._ready(s, play, "ready"):
            return self._skip(later, "not ready")
        self._set("ready", True, CHECKS["ready"], "topic subscribed and READY received")
        if play.play() is None:
            self._set(
                "act",
                False,
                f"an ACTION for tick 0 within {ACT_TIMEOUT_S:g} s of its STATE",
                "none" if s.exit_code is None else self._silence(s),
                "for each STATE send {v: 1, kind: 'action', run, tick, player, seq, token, payload} "
                "on actions",
            )
            return self._skip(later, "no action for tick 0")
        for _ in range(3):
            play.play()
        self._newest_state(s, play)
        self._resend(s, play)
        self._heartbeats(s, play)
        self._judge_actions(s, play, "act")
        self._end(s, play)

    def _newest_state(self, s: Session, play: Play) -> None:
        if not s.signal_group(signal.SIGSTOP):
            self._set("newest_state", False, "a running agent to pause", self._silence(s))
            return
        first = play.tick
        try:
            for i in range(BURST):
                if i:
                    play.advance(None)
                play.publish()
            s.idle(PAUSE_S)
        finally:
            s.signal_group(signal.SIGCONT)
        newest = play.answer(0.0)
        old = sorted({a.tick for a in s.of(Action) if first <= a.tick < play.tick})
        ok = newest is not None and len(old) <= (BURST - 1) // 2
        self._set(
            "newest_state",
            ok,
            f"STATEs {first}..{play.tick} arrived together: an ACTION for {play.tick} (the newest), "
            "few or none for the older ones",
            ("an ACTION for the newest" if newest else "no ACTION for the newest")
            + f", and for {len(old)} of the {BURST - 1} older ones"
            + (f" ({', '.join(map(str, old[:5]))}{', ...' if len(old) > 5 else ''})" if old else ""),
            "read every queued message (non-blocking) before acting and act on the newest STATE only",
        )
        play.advance(newest)

    def _resend(self, s: Session, play: Play) -> None:
        play.tick -= 1  # publish the answered tick again, exactly as before
        answered = s.actions_for(play.tick)
        since = time.monotonic()
        s.publish(play.sent[play.tick])
        again = s.wait_for(lambda: s.actions_for(play.tick, since), 3.0)
        same = bool(again) and bool(answered) and again[0].payload == answered[0].payload
        self._set(
            "resend",
            same,
            f"STATE {play.tick} published again after the agent answered it: the same ACTION "
            "again within 3 s",
            (f"ACTION for {play.tick} again, payload {again[0].payload!r}" if again else "no ACTION")
            + (f" (first: {answered[0].payload!r})" if again and not same and answered else ""),
            "a STATE for the tick you already answered means your action was lost: send the "
            "same ACTION again (PROTOCOL.md, 'A run, step by step', 3)",
        )
        play.tick += 1
        play.play()

    def _heartbeats(self, s: Session, play: Play) -> None:
        since = time.monotonic()
        for _ in range(HEARTBEATS):
            s.publish(Heartbeat(play.run, play.tick - 1))
            s.idle(HEARTBEAT_GAP_S)
        acted = s.of(Action, since)
        alive = s.exit_code is None
        after = play.play() if alive else None
        ok = alive and not acted and after is not None
        seen = (
            f"the command exited with code {s.exit_code}"
            if not alive
            else f"ACTIONs during the silence (tick(s) {sorted({a.tick for a in acted})})"
            if acted
            else "no ACTION for the STATE after it"
            if after is None
            else f"quiet for {HEARTBEATS * HEARTBEAT_GAP_S:.1f} s, then answered tick {after.tick}"
        )
        self._set(
            "heartbeats",
            ok,
            f"{HEARTBEATS} HEARTBEATs over {HEARTBEATS * HEARTBEAT_GAP_S:.1f} s and no STATE: stay, "
            "send nothing, act on the next STATE",
            seen,
            "ignore HEARTBEATs (they only prove the server is alive; give up only after ~10 s "
            "with nothing at all on the state socket)",
        )
        play.play()

    def _rejoin_run(self) -> None:
        s = self._start("rejoin", slot=PLAYER)
        play = Play(s, first_tick=40)  # mid-run: its ticks are not 0
        join = self._join(s, "rejoin", PLAYER)
        if join is None:
            return
        s.tell(play.welcome(join.name))
        if not self._ready(s, play, "rejoin"):
            return
        first, second = play.play(), play.play()
        ok = first is not None and second is not None
        self._set(
            "rejoin",
            ok,
            f"restarted with TICKWIRE_SLOT={PLAYER}: JOIN with slot {PLAYER}, READY and ACTIONs for "
            "ticks 40 and 41 with the new WELCOME's token",
            "JOIN with the slot and READY, then "
            + ("ACTIONs for 40 and 41" if ok else f"no ACTION for tick 40 or 41 ({self._silence(s)})"),
            "act on the STATEs after the new WELCOME whatever their tick (a rejoin starts mid-run)",
        )
        self._judge_actions(s, play, "act")
        self._end(s, play)

    def _private_run(self) -> None:
        s = self._start("private")
        play = Play(s, private=True)
        join = self._join(s, "private", None)
        if join is None:
            return self._skip(["spaces"], "no JOIN in the private run")
        s.tell(play.welcome(join.name))
        if not self._ready(s, play, "private"):
            self._set(
                "spaces",
                False,
                CHECKS["spaces"],
                "not ready after a WELCOME with private views and spaces",
                "ignore WELCOME keys you do not use",
            )
            return
        problems = []
        if play.play() is None:
            problems.append("no ACTION for tick 0 (OBSERVATION, then STATE)")
        # tick 1: the STATE first, the OBSERVATION only after a pause
        since = play.publish(observation=False)
        s.idle(QUIET_S)
        if s.actions_for(play.tick, since):
            problems.append(f"acted on STATE {play.tick} before its OBSERVATION arrived")
        play.observe()
        action = play.answer(since)
        if action is None:
            problems.append(f"no ACTION for tick {play.tick} once its OBSERVATION arrived")
        play.advance(action)
        # tick 2: terminated
        since = play.publish(terminated=True)
        s.idle(QUIET_S)
        if s.actions_for(play.tick, since):
            problems.append(f"acted on tick {play.tick} although its OBSERVATION said terminated")
        play.advance(None)
        # tick 3: a new episode
        if play.play() is None:
            problems.append(f"no ACTION for tick {play.tick - 1} (a new episode after terminated)")
        self._set(
            "private",
            not problems,
            "an ACTION for a tick only with its STATE and its OBSERVATION; none for a terminated tick",
            "; ".join(problems)
            or "acted on ticks 0, 1 and 3 with their OBSERVATIONs, not on terminated tick 2",
            "with WELCOME private: true, keep the newest STATE and the newest OBSERVATION, act when "
            "their ticks match; skip the tick when the OBSERVATION says terminated or truncated",
        )
        acts = s.of(Action)
        bad = [a.payload for a in acts if not contains(ACTION_SPACE, a.payload)]
        self._set(
            "spaces",
            bool(acts) and not bad,
            f"ACTIONs that fit action_space {ACTION_SPACE}",
            f"{len(acts)} ACTION(s)" + (f", {len(bad)} outside it, e.g. {bad[0]!r}" if bad else ", all fit"),
            "read WELCOME's action_space and send payloads that fit it",
        )
        self._judge_actions(s, play, "act")
        self._end(s, play)

    # ------------------------------------------------------------------ judged over all runs
    def _judge_actions(self, s: Session, play: Play, check: str) -> None:
        """Every ACTION of this run well-formed: run, player, token, payload; every message decodes."""
        problems = [f"message that does not decode ({s.undecodable[0]})"] if s.undecodable else []
        for a in s.of(Action):
            if (a.run, a.player, a.token) != (play.run, PLAYER, play.token):
                problems.append(
                    f"ACTION for tick {a.tick} with run/player/token {a.run!r}/{a.player}/{a.token!r}, "
                    f"not {play.run!r}/{PLAYER}/{play.token!r}"
                )
            elif not contains(ACTION_SPACE, a.payload):
                problems.append(f"ACTION payload {a.payload!r} not an int in 0..4")
        if problems:
            self._set(
                check,
                False,
                "ACTIONs with WELCOME's run, player and token, payloads that fit the action spec",
                f"in the {s.name} run: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                "copy run, player and token from the newest WELCOME; send payloads world.action_spec allows",
            )

    def _judge_overall(self) -> None:
        acted = [r for s in self.sessions for r in s.records(Action)]
        if "act" not in self.results and acted:
            self._set("act", True, CHECKS["act"], f"{len(acted)} well-formed ACTION(s)")
        self._skip(["act"], "no action to judge")
        if self.exits:
            bad = [(run, code) for run, code in self.exits if code != 0]
            self._set(
                "end",
                not bad,
                f"exit code 0 within {END_TIMEOUT_S:g} s of END",
                "exit code 0 in every run (" + ", ".join(run for run, _ in self.exits) + ")"
                if not bad
                else "; ".join(
                    f"{run} run: " + ("still running (killed)" if code is None else f"exit code {code}")
                    for run, code in bad
                ),
                "on END (from the state or the control socket) close the sockets and exit 0",
            )
        self._skip(["end"], "no run got as far as END")
        self._judge_limits(acted)
        self._judge_keys()

    def _judge_limits(self, acted: list) -> None:
        cut = [f"{s.name} run: {c}" for s in self.sessions for c in s.cut]
        over = [f"{s.name} run: {u}" for s in self.sessions for u in s.undecodable if "oversized" in u]
        largest = max((r.size for r in acted), default=0)
        if not acted and not cut and not over:
            return self._skip(["limits"], "no action to judge")
        self._set(
            "limits",
            not cut and not over,
            f"every action message within the caps ({MAX_ACTION_FRAME // 1024} KiB a frame, "
            f"{ACTION_LIMITS.max_header_bytes // 1024} KiB a header) and no connection cut",
            "; ".join(cut + over) or f"{len(acted)} action message(s), the largest {largest} bytes",
            "check each action message's size before sending (the server cuts the connection "
            "of a frame over the cap: the player misses the tick without a word)",
        )

    def _judge_keys(self) -> None:
        if self.keys is None:
            self.results["keys"] = Check(
                "keys", "SKIP", CHECKS["keys"], "not asked for: run with --keys", required=False
            )
            return
        users = {r.user_id for s in self.sessions for r in s.received}
        failures = [f"{s.name} run: {f}" for s in self.sessions for f in s.auth_failures]
        ok = bool(users) and users == {AGENT_KEY} and not failures
        self._set(
            "keys",
            ok,
            f"every message over CURVE from the key {AGENT_KEY!r} (TICKWIRE_KEY), server key "
            "from TICKWIRE_SERVER_KEY",
            "; ".join(failures)
            or (f"messages from key(s) {sorted(map(str, users))}" if users else "no message"),
            "load TICKWIRE_KEY (NAME.key_secret: public-key and secret-key) and "
            "TICKWIRE_SERVER_KEY (server.key: public-key) and set them as CURVE client keys on "
            "all three sockets",
        )
