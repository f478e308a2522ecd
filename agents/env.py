"""Seats of a tickwire world as RL environments, driven from a trainer's own loop.

A trainer takes K seats (players) of a running world, or of one it launches
(:func:`~tickwire.agents.env_launch.launch_world`), and sees them as

* :class:`ParallelSeats` — a PettingZoo ``ParallelEnv`` of the K seats;
* :class:`SeatEnv` — a Gymnasium ``Env`` of one seat;
* :func:`make_vector_env` — a Gymnasium ``VectorEnv`` of one seat in each of several worlds
  (autoreset mode ``NEXT_STEP``, Gymnasium's default; ``metadata["autoreset_mode"]`` says so).

The other seats are played by whatever joined: ``tickwire agent`` processes, containers,
programs in other languages. How the API maps onto the lockstep world:

* **Spaces** come from the WELCOME (:func:`tickwire.protocol.spaces.to_gymnasium`). A world
  without private views that does not describe its observation space needs a *view*
  (:class:`~tickwire.agents.env_views.SeatView`: observation space, each seat's observation
  and reward from the shared STATE); the grid world gets
  :class:`~tickwire.agents.env_views.GridView` by default.
* **step** sends the seats' actions for the tick last observed and returns the next tick:
  observation, reward, terminated, truncated and info of each seat. In a world with private
  views these are the seat's OBSERVATION message; in a shared world the view computes them
  and an episode is ``episode_ticks`` steps long (then ``truncated``).
* **reset** does not reset the world (other players share it): it starts the trainer's
  episode at the tick the seats are to act on next, or, when the last episode ended with
  every seat out (a PettingZoo world's episode), at the first tick of the world's next
  episode. ``seed`` seeds ``np_random`` only; the world's randomness is the server's ``--seed``.
  The environments are registered as ``nondeterministic`` (``spec.nondeterministic``).
* **Deadline mode**: a trainer slower than the deadline misses the tick as any agent would
  (the server plays its noop). ``info["late"]`` says the action of this step came too late
  to be sent, ``info["missed_ticks"]`` how many ticks closed without the seat's action since
  the last step; rewards of the ticks in between are summed into the step's reward.
* **End of the run**: the step that meets the server's END returns ``truncated`` for every
  seat with ``info["end"]`` (the reason); a later ``reset`` raises :class:`RunEnded`.

Needs ``pip install 'tickwire[gym]'`` (and ``tickwire[pettingzoo]`` for :class:`ParallelSeats`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from tickwire.protocol import ConfigError, Welcome
from tickwire.protocol.agent_rules import Act
from tickwire.protocol.errors import RunEnded
from tickwire.protocol.spaces import plain, to_gymnasium

from .config import AgentConfig
from .env_launch import LaunchedWorld, launch_world
from .env_link import SeatsLink
from .env_views import SeatView, default_view
from .runtime import curve_keys

try:
    import gymnasium
    from gymnasium.envs.registration import EnvSpec
except ImportError as e:  # pragma: no cover - the extra is installed with the tests
    raise ImportError(
        f"tickwire.agents.env needs gymnasium ({e}): pip install 'tickwire[gym]' "
        "(and 'tickwire[pettingzoo]' for ParallelSeats)"
    ) from e

try:
    from pettingzoo import ParallelEnv as _ParallelBase

    _PETTINGZOO_MISSING: str | None = None
except ImportError as e:  # ParallelSeats alone needs it
    _ParallelBase = object
    _PETTINGZOO_MISSING = str(e)

__all__ = [
    "LaunchedWorld",
    "ParallelSeats",
    "RunEnded",
    "SeatEnv",
    "SeatsVectorEnv",
    "launch_world",
    "make_vector_env",
]

log = logging.getLogger(__name__)

#: One seat's step: (observation, reward, terminated, truncated, info).
StepResult = tuple[Any, float, bool, bool, dict]

#: ``spec`` of the environments: a live world with other players is not reproducible from a seed.
SPEC_ID = "tickwire/Seats-v0"


class Seats:
    """K seats of one world seen tick by tick: what every environment class here wraps.

    ``connect`` is the server's base address, or a :class:`LaunchedWorld` (closed with the
    seats). ``slot`` asks for slots ``slot .. slot+K-1``. ``view`` (shared worlds only) turns
    the STATE into each seat's observation and reward; ``episode_ticks`` (shared worlds) ends
    an episode, truncated, after that many steps (None: only the run's END does).
    """

    def __init__(
        self,
        connect: str | LaunchedWorld,
        seats: int = 1,
        *,
        slot: int | None = None,
        name: str = "trainer",
        view: SeatView | None = None,
        episode_ticks: int | None = 200,
        join_timeout_s: float = 60.0,
        server_timeout_s: float = 10.0,
        step_timeout_s: float = 60.0,
        key_path: str | None = None,
        server_key_path: str | None = None,
    ) -> None:
        if seats < 1:
            raise ConfigError(f"seats must be >= 1, got {seats}")
        if episode_ticks is not None and episode_ticks < 1:
            raise ConfigError(f"episode_ticks must be >= 1 or None, got {episode_ticks}")
        self.world = connect if isinstance(connect, LaunchedWorld) else None
        address = connect.connect if isinstance(connect, LaunchedWorld) else connect
        cfg = AgentConfig(
            connect=address,
            slot=slot,
            join_timeout_s=join_timeout_s,
            server_timeout_s=server_timeout_s,
            key_path=key_path,
            server_key_path=server_key_path,
        )
        names = [name] if seats == 1 else [f"{name}-{i}" for i in range(seats)]
        self.step_timeout_s = step_timeout_s
        self.episode_ticks = episode_ticks
        self.link = SeatsLink(
            address,
            names,
            slot=slot,
            join_timeout_s=join_timeout_s,
            server_timeout_s=server_timeout_s,
            curve=curve_keys(cfg),
            alive=self.world.check if self.world else None,
        )
        try:
            self.link.wait(lambda: None not in self.link.welcomes, join_timeout_s, "WELCOME for every seat")
            if self.link.end is not None:
                raise RunEnded(f"the run ended before the seats joined ({self.link.end.reason})")
            self.welcomes: list[Welcome] = [w for w in self.link.welcomes if w is not None]
            self._spaces(view)
        except BaseException:
            self.close()
            raise
        self.act: Act | None = None  #: the tick the seats act on next (not acted on yet)
        self.playing = [False] * seats  #: seats in the trainer's episode
        self.steps = 0
        self.closed = False
        self._stepping: tuple[Act, bool] | None = None  # between begin_step and end_step

    def _spaces(self, view: SeatView | None) -> None:
        first = self.welcomes[0]
        self.private = first.private
        self.players = [w.player for w in self.welcomes]
        agents = first.world.get("agents")
        self.names = [
            str(agents[p]) if isinstance(agents, list) and p < len(agents) else f"player_{p}"
            for p in self.players
        ]
        self.view: SeatView | None = None if self.private else (view or default_view(first))
        self.observation_spaces: list[Any] = []
        self.action_spaces: list[Any] = []
        for w in self.welcomes:
            if self.private:
                if w.observation_space is None:
                    raise ConfigError(
                        f"world {w.world.get('name', '?')} sends private views but does not describe "
                        "their observation space: its observation_space(player) must return one"
                    )
                obs_space = to_gymnasium(w.observation_space)
            else:
                obs_space = self._view().observation_space(w)
            self.observation_spaces.append(obs_space)
            self.action_spaces.append(_action_space(w))

    # ------------------------------------------------------------------ episodes
    def reset(self) -> tuple[list[Any], list[dict]]:
        """Start the trainer's episode (module docstring): each seat's observation and info
        (None, {} for a seat not in this episode)."""
        self._check_open()
        if self.link.end is not None:
            raise RunEnded(
                f"the world's run is over ({self.link.end.reason}) at tick {self.link.end.tick}: "
                "no episode can start; start a new run (a launched world: launch it again)"
            )
        while self.act is None or not any(self._live(self.act)):
            act = self._next(-1 if self.act is None else self.act.state.tick)
            if act is None:
                return self.reset()  # the END came: raise RunEnded
            self.act = act
        live = self._live(self.act)
        self.playing, self.steps = list(live), 0
        obs, infos = [], []
        for i in range(len(self.players)):
            if live[i]:
                obs.append(self._observation(self.act, i))
                infos.append(self._info(self.act, i, missed=0, late=False))
            else:
                obs.append(None)
                infos.append({})
        self._forget(self.act.state.tick)
        return obs, infos

    def step(self, actions: Sequence[Any]) -> list[StepResult | None]:
        """Act for the seats in the episode (``actions[i]`` for seat i; others None), return
        each such seat's (observation, reward, terminated, truncated, info), None for the rest."""
        self.begin_step(actions)
        return self.end_step()

    def begin_step(self, actions: Sequence[Any]) -> None:
        """The first half of :meth:`step`: send the actions (unless the tick is gone)."""
        self._check_open()
        if self.act is None or not any(self.playing):
            raise RuntimeError("no episode is running: call reset() first (and after every episode)")
        act, t0 = self.act, self.act.state.tick
        self.link.pump(0.0)
        late = self.link.act is not None  # the server closed t0 without us (deadline mode)
        if not late:
            live, acting, payloads = self._live(act), [], []
            for i in range(len(self.players)):
                if not live[i]:
                    continue
                if self.playing[i]:
                    if actions[i] is None:
                        raise ValueError(f"seat {self.names[i]} is in the episode: it needs an action")
                    payloads.append(plain(actions[i]))
                else:  # back in the world's episode before the trainer's next reset
                    payloads.append(plain(self.action_spaces[i].sample()))
                acting.append(i)
            self.link.send(t0, payloads, acting)
        self._stepping = (act, late)

    def end_step(self) -> list[StepResult | None]:
        """The second half of :meth:`step`: wait for the next tick, return what it says."""
        if self._stepping is None:
            raise RuntimeError("end_step() without begin_step()")
        (act, late), self._stepping = self._stepping, None
        t0 = act.state.tick
        nxt = self._next(t0)
        self.steps += 1
        out: list[StepResult | None] = []
        if nxt is None:  # the run ended
            end = self.link.end
            assert end is not None
            for i in range(len(self.players)):
                if not self.playing[i]:
                    out.append(None)
                    continue
                info = {"tick": end.tick, "missed_ticks": 0, "late": late, "end": end.reason}
                out.append((self._observation(act, i), 0.0, False, True, info))
            self.playing = [False] * len(self.players)
            return out
        self.act = nxt
        t1 = nxt.state.tick
        missed = t1 - t0 - (0 if late else 1)
        for i in range(len(self.players)):
            if not self.playing[i]:
                out.append(None)
                continue
            if self.private:
                result = self._private_step(i, t0, nxt, missed, late)
            else:
                result = self._shared_step(i, act, nxt, missed, late)
            if result[2] or result[3]:
                self.playing[i] = False
            out.append(result)
        self._forget(t1)
        return out

    def _private_step(self, i: int, t0: int, nxt: Act, missed: int, late: bool) -> StepResult:
        """Seat i's view at the next tick, rewards of skipped ticks summed in; an episode
        that ended in a skipped tick ends this step (the next reset starts the new one)."""
        views = self.link.views[i]
        reward, final = 0.0, None
        for tick in sorted(t for t in views if t0 < t <= nxt.state.tick):
            view = views[tick]
            reward += float(view.reward)
            if view.terminated or view.truncated or tick == nxt.state.tick:
                final = view
                break
        if final is None:  # the rules acted on it, so it is there; be safe anyway
            assert nxt.observations is not None
            final = nxt.observations[i]
            reward += float(final.reward)
        info = {**copy.deepcopy(final.info or {}), "tick": final.tick, "missed_ticks": missed, "late": late}
        return (copy.deepcopy(final.payload), reward, bool(final.terminated), bool(final.truncated), info)

    def _shared_step(self, i: int, act: Act, nxt: Act, missed: int, late: bool) -> StepResult:
        player, view = self.players[i], self._view()
        obs = view.observe(nxt.state.payload, player)
        reward = float(view.reward(act.state.payload, nxt.state.payload, player))
        truncated = self.episode_ticks is not None and self.steps >= self.episode_ticks
        return (obs, reward, False, truncated, self._info(nxt, i, missed, late))

    # ------------------------------------------------------------------ helpers
    def _next(self, after: int) -> Act | None:
        """The next tick to act on after ``after`` (None: the run ended)."""
        link = self.link
        link.wait(
            lambda: link.act is not None and link.act.state.tick > after,
            self.step_timeout_s,
            f"tick after {after}",
        )
        if link.act is None:
            return None
        return link.take_act()

    def _live(self, act: Act) -> list[bool]:
        """Which seats the world waits for at ``act``'s tick (private views can say out)."""
        if act.observations is None:
            return [True] * len(self.players)
        return [not (o.terminated or o.truncated) for o in act.observations]

    def _observation(self, act: Act, i: int) -> Any:
        if act.observations is not None:
            return copy.deepcopy(act.observations[i].payload)
        return self._view().observe(act.state.payload, self.players[i])

    def _view(self) -> SeatView:
        if self.view is None:
            raise AssertionError("a world with private views has no view")
        return self.view

    def _info(self, act: Act, i: int, missed: int, late: bool) -> dict:
        extra = copy.deepcopy(act.observations[i].info or {}) if act.observations is not None else {}
        return {**extra, "tick": act.state.tick, "missed_ticks": missed, "late": late}

    def _forget(self, tick: int) -> None:
        for views in self.link.views:
            for t in [t for t in views if t < tick]:
                del views[t]

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("these seats are closed")

    def close(self) -> None:
        """LEAVE the world and close the sockets; a launched world is stopped too. Idempotent."""
        if getattr(self, "closed", False):
            return
        self.closed = True
        try:
            self.link.close("the trainer closed its environment")
        finally:
            if self.world is not None:
                self.world.close()


def _action_space(w: Welcome) -> Any:
    """The seat's action space: the WELCOME's, else a discrete ``action_spec``."""
    if w.action_space is not None:
        return to_gymnasium(w.action_space)
    spec = w.world.get("action_spec") or {}
    if spec.get("type") == "discrete":
        return gymnasium.spaces.Discrete(int(spec["n"]))
    raise ConfigError(
        f"world {w.world.get('name', '?')} describes no action space: give it an "
        "action_space(player) (or a discrete action_spec) to train on it"
    )


def _spec(**kwargs: Any) -> EnvSpec:
    return EnvSpec(SPEC_ID, entry_point=None, nondeterministic=True, kwargs=kwargs)


class SeatEnv(gymnasium.Env):
    """One seat of a tickwire world as a Gymnasium ``Env`` (see the module docstring).

    ``connect``: the server's base address or a :class:`LaunchedWorld`; the other options
    are those of :class:`Seats`. ``reset(seed=...)`` seeds ``np_random`` and the action
    space; the world itself is seeded by the server.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, connect: str | LaunchedWorld, **options: Any) -> None:
        self.seats = Seats(connect, 1, **options)
        self.observation_space = self.seats.observation_spaces[0]
        self.action_space = self.seats.action_spaces[0]
        self.spec = _spec(connect=self.seats.link.sockets.endpoints.base, **options)

    @property
    def player(self) -> int:
        """This seat's player id in the world."""
        return self.seats.players[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        obs, infos = self.seats.reset()
        return obs[0], infos[0]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        result = self.seats.step([action])[0]
        assert result is not None  # the seat was in the episode, or step() raised
        return result

    def close(self) -> None:
        self.seats.close()


class ParallelSeats(_ParallelBase):
    """K seats of a tickwire world as a PettingZoo ``ParallelEnv`` (module docstring).

    Agent names are the world's (``info.world["agents"]``, e.g. a PettingZoo world's) or
    ``player_<id>``. ``agents`` are the seats in the trainer's episode; a seat whose view
    says terminated or truncated leaves it until the next ``reset``.
    """

    metadata: dict[str, Any] = {"render_modes": [], "name": "tickwire_seats"}

    def __init__(self, connect: str | LaunchedWorld, seats: int = 2, **options: Any) -> None:
        if _PETTINGZOO_MISSING is not None:
            raise ImportError(
                f"ParallelSeats needs pettingzoo ({_PETTINGZOO_MISSING}): pip install 'tickwire[pettingzoo]'"
            )
        self.seats = Seats(connect, seats, **options)
        self.possible_agents = list(self.seats.names)
        self.agents: list[str] = []
        self.observation_spaces = dict(zip(self.possible_agents, self.seats.observation_spaces))
        self.action_spaces = dict(zip(self.possible_agents, self.seats.action_spaces))
        self._index = {n: i for i, n in enumerate(self.possible_agents)}

    def observation_space(self, agent: str) -> Any:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Any:
        return self.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        if seed is not None:
            for i, space in enumerate(self.action_spaces.values()):
                space.seed(seed + i)
        obs, infos = self.seats.reset()
        self.agents = [n for n, p in zip(self.possible_agents, self.seats.playing) if p]
        return (
            {n: obs[self._index[n]] for n in self.agents},
            {n: infos[self._index[n]] for n in self.agents},
        )

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise ValueError(f"actions for unknown agents {sorted(unknown)}; the agents are {self.agents}")
        results = self.seats.step([actions.get(n) for n in self.possible_agents])
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        for name, result in zip(self.possible_agents, results):
            if result is None:
                continue
            obs[name], rewards[name], terms[name], truncs[name], infos[name] = result
        self.agents = [n for n, p in zip(self.possible_agents, self.seats.playing) if p]
        return obs, rewards, terms, truncs, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.seats.close()


# ---------------------------------------------------------------------------- vector
class SeatsVectorEnv(gymnasium.vector.VectorEnv):
    """One seat in each of several worlds as a Gymnasium ``VectorEnv``.

    Autoreset mode ``NEXT_STEP`` (Gymnasium's default since 1.0): the step after a
    sub-environment's episode ended resets it (its action is ignored) and returns the new
    episode's first observation with reward 0 and neither flag set. The worlds advance
    concurrently: every action is sent before any next tick is awaited.
    """

    def __init__(self, envs: Sequence[SeatEnv]) -> None:
        from gymnasium.vector import AutoresetMode
        from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

        if not envs:
            raise ValueError("make_vector_env needs at least one world")
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        for e in self.envs[1:]:
            if (
                e.observation_space != self.single_observation_space
                or e.action_space != self.single_action_space
            ):
                raise ConfigError(
                    "the worlds of a vector env must give their seats the same spaces; got "
                    f"{e.observation_space}/{e.action_space} and "
                    f"{self.single_observation_space}/{self.single_action_space}"
                )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
        self._concatenate, self._empty = concatenate, create_empty_array
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict]:
        super().reset(seed=seed if isinstance(seed, int) else None)
        seeds = (
            seed
            if isinstance(seed, list)
            else [None if seed is None else seed + i for i in range(self.num_envs)]
        )
        infos: dict[str, Any] = {}
        obs = []
        for i, (env, s) in enumerate(zip(self.envs, seeds)):
            o, info = env.reset(seed=s)
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._needs_reset[:] = False
        return self._batch(obs), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        from gymnasium.vector.utils import iterate

        split: Any = iterate  # typed loosely by gymnasium
        actions = list(split(self.action_space, actions))
        seats = [env.seats for env in self.envs]
        n = self.num_envs
        obs: list[Any] = [None] * n
        rewards = np.zeros(n, dtype=np.float64)
        terms, truncs = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        infos: dict[str, Any] = {}
        stepping = [i for i in range(n) if not self._needs_reset[i]]
        for i in stepping:  # send everything first: the worlds tick concurrently
            seats[i].begin_step([actions[i]])
        for i in range(n):
            if self._needs_reset[i]:
                o, info = self.envs[i].reset()
            else:
                result = seats[i].end_step()[0]
                assert result is not None  # the seat was in its episode
                o, rewards[i], terms[i], truncs[i], info = result
            obs[i] = o
            infos = self._add_info(infos, info, i)
        self._needs_reset = terms | truncs
        return self._batch(obs), rewards, terms, truncs, infos

    def _batch(self, obs: list[Any]) -> Any:
        out: Any = self._empty(self.single_observation_space, self.num_envs)
        return self._concatenate(self.single_observation_space, obs, out)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


def make_vector_env(worlds: Sequence[str | LaunchedWorld], **options: Any) -> SeatsVectorEnv:
    """One seat in each of ``worlds`` (base addresses, or launched worlds) as a
    :class:`SeatsVectorEnv`; ``options`` are those of :class:`Seats`, for every seat."""
    envs: list[SeatEnv] = []
    try:
        for w in worlds:
            envs.append(SeatEnv(w, **options))
    except BaseException:
        for env in envs:
            env.close()
        for w in worlds[len(envs) :]:
            if isinstance(w, LaunchedWorld):
                w.close()
        raise
    return SeatsVectorEnv(envs)
