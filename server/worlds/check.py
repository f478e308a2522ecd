"""``tickwire check-world SPEC``: check a World for the mistakes that break a run.

Like PettingZoo's ``parallel_api_test``, for tickwire worlds: reset, observe, per-player
views, spaces, step, done, scores, the render hook and determinism from the seed, each
checked without a server, and every problem said in plain words. Exit code 0 when all is well, 1 otherwise
(2 when the world cannot even be loaded).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from tickwire.protocol import ProtocolError, State, TickwireError, decode, encode
from tickwire.protocol.spaces import SpaceError, action_checker, contains, from_gymnasium

from .loader import load_world
from .world import World


class Problems(list):
    """What is wrong, one plain sentence each."""

    def check(self, what: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn``; an exception becomes a problem (``what`` raised ...); returns its value."""
        try:
            return fn()
        except Exception as e:  # the world's own bug, whatever it is
            self.append(f"{what} raised {type(e).__name__}: {e}")
            return None


def _sendable(value: Any) -> str | None:
    """None if ``value`` can travel on the wire (encoded, and decoded again by the other
    side within the default limits), else why not."""
    try:
        decode(encode(State("check", 0, value)))
    except (ProtocolError, TypeError, ValueError, OverflowError) as e:
        return str(e) or type(e).__name__
    return None


def _actions(world: World, players: int, rng: np.random.Generator, spaces: dict[int, Any]) -> dict[int, Any]:
    """One valid action per player: sampled from its action space, else the world's noop."""
    out = {}
    for p in range(players):
        space = spaces.get(p)
        out[p] = _sample(space, rng) if space is not None else world.noop()
    return out


def _sample(space: dict, rng: np.random.Generator) -> Any:
    """A random value of a wire space (seeded), without needing gymnasium."""
    kind = space["type"]
    if kind == "discrete":
        return int(space.get("start", 0) + rng.integers(space["n"]))
    shape = tuple(space.get("shape", ()))
    if kind == "box":
        low = np.broadcast_to(
            np.asarray(space["low"], np.float64).reshape(-1)
            if isinstance(space["low"], list)
            else space["low"],
            (int(np.prod(shape)),),
        ).reshape(shape)
        high = np.broadcast_to(
            np.asarray(space["high"], np.float64).reshape(-1)
            if isinstance(space["high"], list)
            else space["high"],
            (int(np.prod(shape)),),
        ).reshape(shape)
        lo, hi = np.maximum(low, -1.0), np.minimum(high, 1.0)
        lo, hi = np.where(lo > hi, low, lo), np.where(lo > hi, high, hi)
        return (lo + (hi - lo) * rng.random(shape)).astype(space["dtype"])
    if kind == "multi_discrete":
        nvec = np.array(space["nvec"]).reshape(shape)
        return (rng.random(shape) * nvec).astype(np.int64)
    if kind == "multi_binary":
        return rng.integers(0, 2, shape).astype(np.int8)
    if kind == "dict":
        return {k: _sample(v, rng) for k, v in space["spaces"].items()}
    return [_sample(s, rng) for s in space["spaces"]]


class WorldCheck:
    """Runs the checks on one World instance (a fresh instance per run: ``make()``)."""

    def __init__(
        self, make: Callable[[], World], players: int | None = None, ticks: int = 50, seed: int = 0
    ) -> None:
        self.make = make
        self.world = make()
        self.players = players or getattr(self.world, "default_players", None) or 2
        self.ticks = ticks
        self.seed = seed
        self.problems = Problems()

    def run(self) -> Problems:
        spaces = self._spaces()
        trace = self._play(self.world, spaces, record=True)
        if trace is not None:
            again = self._play(self.make(), spaces, record=False)
            if again is not None and again != trace:
                tick = next(i for i, (a, b) in enumerate(zip(trace, again)) if a != b)
                self.problems.append(
                    f"not deterministic: two runs with seed {self.seed} and the same actions "
                    f"differ at tick {tick} (digest of observe() and the player views); use only "
                    "the seed given to reset() for randomness, e.g. np.random.default_rng(seed)"
                )
        return self.problems

    # ------------------------------------------------------------------ spaces
    def _spaces(self) -> dict[str, dict[int, Any]]:
        """Each player's observation and action space as wire maps (problems noted)."""
        got: dict[str, dict[int, Any]] = {"observation": {}, "action": {}}
        for p in range(self.players):
            for kind, method in (
                ("observation", self.world.observation_space),
                ("action", self.world.action_space),
            ):
                space = self.problems.check(f"{kind}_space({p})", lambda m=method: m(p))  # type: ignore[misc]
                if space is None:
                    continue
                try:
                    got[kind][p] = from_gymnasium(space)
                except (SpaceError, ImportError) as e:
                    self.problems.append(f"{kind}_space({p}) cannot be sent to agents: {e}")
        for p, space in got["action"].items():
            self.problems.check(f"compiling action_space({p})", lambda s=space: action_checker(s))  # type: ignore[misc]
        return got

    # ------------------------------------------------------------------ play
    def _play(self, world: World, spaces: dict[str, dict[int, Any]], record: bool) -> list | None:
        """reset, then ``ticks`` ticks of observe/views/step with seeded valid actions; the
        list of per-tick digests (None if the world could not get that far)."""
        quiet = Problems()
        problems = self.problems if record else quiet
        state = problems.check(
            f"reset(seed={self.seed}, players={self.players})", lambda: world.reset(self.seed, self.players)
        )
        if state is None and not record:
            return None
        rng = np.random.default_rng(self.seed)
        trace = []
        for tick in range(self.ticks + 1):
            digest = self._observe(world, state, tick, spaces, problems, record)
            if digest is None:
                return None
            trace.append(digest)
            if tick == self.ticks or self._done(world, state, tick, problems, record):
                break
            actions = _actions(world, self.players, rng, spaces["action"])
            before = len(problems)
            state = problems.check(f"step() at tick {tick}", lambda: world.step(state, actions))
            if state is None:
                if record and len(problems) == before:  # it returned None (did not raise)
                    problems.append(f"step() at tick {tick} returned None: return the next state")
                return None
        if record:
            self._scores(world, state)
            if world.has_render:
                self._render(world, state, tick)
        return trace

    def _render(self, world: World, final: Any, tick: int) -> None:
        """render(state) gives the same (H, W, 3) uint8 picture shape at the start and the end."""
        shapes = []
        start = self.problems.check("reset() again", lambda: world.reset(self.seed, self.players))
        for when, state in (("reset()", start), (f"tick {tick}", final)):
            frame = self.problems.check(
                f"render() of the state after {when}",
                lambda s=state: world.render(s),  # type: ignore[misc]
            )
            if frame is None:
                return
            if (
                not isinstance(frame, np.ndarray)
                or frame.dtype != np.uint8
                or frame.ndim != 3
                or frame.shape[2] != 3
                or 0 in frame.shape
            ):
                what = (
                    f"a {frame.dtype} array of shape {frame.shape}"
                    if isinstance(frame, np.ndarray)
                    else f"a {type(frame).__name__}"
                )
                self.problems.append(
                    f"render() of the state after {when} returned {what}: "
                    "return an (H, W, 3) uint8 RGB array (np.uint8, H, W > 0)"
                )
                return
            shapes.append(frame.shape)
        if shapes[0] != shapes[1]:
            self.problems.append(
                f"render() changed its picture's shape from {shapes[0]} to "
                f"{shapes[1]}: every frame of a run should have the same shape "
                "(viewers and the replay page scale one size)"
            )

    def _observe(
        self, world: World, state: Any, tick: int, spaces: dict, problems: Problems, record: bool
    ) -> str | None:
        shared = problems.check(f"observe() at tick {tick}", lambda: world.observe(state))
        why = _sendable(shared)
        if why is not None:
            if record:
                problems.append(
                    f"observe() at tick {tick} returns something that cannot be sent "
                    f"to agents ({why}): use dicts, lists, numbers, strings and numpy "
                    "arrays of numeric dtypes"
                )
            return None
        views = []
        if world.has_player_views:
            for p in range(self.players):
                view = problems.check(
                    f"observe_player(state, {p}) at tick {tick}",
                    lambda p=p: world.observe_player(state, p),  # type: ignore[misc]
                )
                if view is None or (record and not self._view_ok(view, p, tick, spaces)):
                    return None
                views.append(view.observation)
        digest = problems.check("digest()", lambda: world.digest(state))
        if digest is None:
            return None
        return digest + repr([np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v for v in views])

    def _view_ok(self, view: Any, p: int, tick: int, spaces: dict) -> bool:
        where = f"observe_player(state, {p}) at tick {tick}"
        fields = ("observation", "reward", "terminated", "truncated", "info")
        if not all(hasattr(view, f) for f in fields):
            self.problems.append(
                f"{where} returned a {type(view).__name__}: return a "
                "PlayerView(observation, reward, terminated, truncated, info)"
            )
            return False
        ok = True
        if not isinstance(view.reward, (int, float, np.number)) or isinstance(view.reward, bool):
            self.problems.append(f"{where}: reward {view.reward!r:.40} is not a number")
            ok = False
        for flag in ("terminated", "truncated"):
            if not isinstance(getattr(view, flag), (bool, np.bool_)):
                self.problems.append(f"{where}: {flag} {getattr(view, flag)!r:.40} is not a bool")
                ok = False
        why = _sendable({"o": view.observation, "i": view.info or {}})
        if why is not None:
            self.problems.append(f"{where}: the observation or info cannot be sent ({why})")
            ok = False
        space = spaces["observation"].get(p)
        if ok and space is not None and not contains(space, view.observation):
            self.problems.append(
                f"{where}: the observation does not fit observation_space({p}) "
                f"(shape/dtype/bounds); got {np.asarray(view.observation)!r:.80}"
            )
            ok = False
        return ok

    def _done(self, world: World, state: Any, tick: int, problems: Problems, record: bool) -> bool:
        done = problems.check(f"done() at tick {tick}", lambda: world.done(state))
        if record and not isinstance(done, (bool, np.bool_)):
            problems.append(f"done() at tick {tick} returned {done!r:.40}: return True or False")
            return True
        return bool(done)

    def _scores(self, world: World, state: Any) -> None:
        scores = self.problems.check("scores()", lambda: world.scores(state))
        if scores is None:
            return
        scores = list(scores)
        if scores and len(scores) != self.players:
            self.problems.append(
                f"scores() returned {len(scores)} scores for {self.players} "
                "players: return one per player (index = player id), or []"
            )
        elif not all(isinstance(s, (int, float, np.number)) and not isinstance(s, bool) for s in scores):
            self.problems.append(f"scores() must be numbers, got {scores!r:.80}")
        why = _sendable(scores)
        if why is not None:
            self.problems.append(f"scores() cannot be sent in END ({why})")
        noop = self.problems.check("noop()", world.noop)
        if _sendable(noop) is not None:
            self.problems.append(f"noop() returned {noop!r:.40}, which cannot be sent")
        describe = self.problems.check("describe()", world.describe)
        if not isinstance(describe, dict) or _sendable(describe) is not None:
            self.problems.append("describe() must return a map that can be sent in WELCOME")


def check_world(
    make: Callable[[], World], players: int | None = None, ticks: int = 50, seed: int = 0
) -> list[str]:
    """Run every check on the world ``make()`` builds; returns the problems (empty: all good)."""
    return list(WorldCheck(make, players, ticks, seed).run())


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``low`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``tickwire check-world``."""
    parser = argparse.ArgumentParser(
        prog="tickwire check-world",
        description="Check a World for mistakes before hosting it: "
        "reset, observe, per-player views and spaces, step, done, scores, determinism.",
    )
    parser.add_argument("world", help="pkg.module:Class, path/file.py:Class or pettingzoo:MODULE")
    parser.add_argument(
        "--players", type=_at_least(1), default=None, help="players (default: the world's own count, else 2)"
    )
    parser.add_argument("--ticks", type=_at_least(0), default=50, help="ticks to play (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed for reset (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``tickwire check-world SPEC [--players N] [--ticks N] [--seed N]``."""
    args = build_parser().parse_args(argv)
    try:
        make = lambda: load_world(args.world)  # noqa: E731
        checker = WorldCheck(make, args.players, args.ticks, args.seed)
    except TickwireError as e:
        print(f"tickwire check-world: cannot load {args.world}: {e}", file=sys.stderr)
        return 2
    problems = checker.run()
    for text in problems:
        print(f"problem: {text}")
    print(
        f"{args.world}: {'OK' if not problems else f'{len(problems)} problem(s)'} "
        f"({checker.players} players, {args.ticks} ticks, seed {args.seed})"
    )
    return 1 if problems else 0
