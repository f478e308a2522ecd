"""``tickwire bench``: one lockstep workload on tickwire and on the alternatives, side by side.

Each tick, N players get the state and return a small action. Back-ends: the real
tickwire server/agents path over ipc and tcp, PlayerPool (hosted, and one process per
player), a minimal raw pyzmq loop (the
reference for framework overhead), ``multiprocessing.Pool.map`` (the textbook answer), one
persistent worker per player over ``multiprocessing.Pipe``, Gymnasium's AsyncVectorEnv and
Ray actors when installed, and the plain serial loop. For each cell (N, payload, compute)
every back-end is started once, then measured in windows that alternate between back-ends
(so drift on a noisy machine hits all alike); ticks/s is the median over the windows and
latency percentiles come from every tick of every window. Ratios are computed within the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import multiprocessing as mp
import os
import platform
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tickwire.agents import Agent, BatchAgent
from tickwire.server.observers.progress import JobProgress

log = logging.getLogger(__name__)

COMPUTE_ENV = "TICKWIRE_BENCH_COMPUTE_MS"


# ----------------------------------------------------------------------------- workload
def make_state(payload: str, tick: int = 0) -> dict[str, Any]:
    """``small``: ~10 scalars and the tick; ``large``: a 512×512 float32 array (1 MiB)."""
    if payload == "small":
        return {"tick": tick, **{f"x{i}": float(i) * 0.5 for i in range(10)}}
    return {"tick": tick, "grid": _LARGE}


_LARGE = np.random.default_rng(0).random((512, 512), dtype=np.float32)


def busy_wait(ms: float) -> None:
    """Spin for ``ms`` of CPU time: agent compute that a sleep would not model."""
    if ms > 0:
        end = time.perf_counter() + ms / 1e3
        while time.perf_counter() < end:
            pass


class BenchPlayer:
    """The player of every back-end: spins ``compute_ms``, returns a small action."""

    def __init__(self, index: int, compute_ms: float) -> None:
        self.index, self.compute_ms = index, compute_ms

    def get_action(self, state: dict) -> int:
        busy_wait(self.compute_ms)
        return (state["tick"] + self.index) % 5


class BenchAgent(Agent):
    """The tickwire agent of the benchmark (compute from ``TICKWIRE_BENCH_COMPUTE_MS``)."""

    def setup(self, info: Any) -> None:
        self.compute_ms = float(os.environ.get(COMPUTE_ENV, "0"))

    def act(self, observation: dict) -> int:
        busy_wait(self.compute_ms)
        return (observation["tick"] + self.player_id) % 5


class BenchBatchAgent(BatchAgent):
    """:class:`BenchAgent`'s policy for all the seats of a process in one call (the same
    actions, so the same run): ``tickwire run --per-process K --agent
    tickwire.bench:BenchBatchAgent``."""

    def setup(self, info: Any) -> None:
        self.compute_ms = float(os.environ.get(COMPUTE_ENV, "0"))

    def act_batch(self, observations: dict) -> np.ndarray:
        busy_wait(self.compute_ms * len(self.player_ids))
        return (observations["tick"] + self.player_ids) % 5


# ----------------------------------------------------------------------------- back-ends
class Backend:
    """start(n, payload, compute_ms) once; window() many times; close() once."""

    name = "?"
    #: measured alone, after the others: its idle background processes would slow them
    isolated = False
    #: an optional package the back-end needs; without it the back-end is not offered
    requires: str | None = None

    @classmethod
    def available(cls) -> bool:
        return cls.requires is None or importlib.util.find_spec(cls.requires) is not None

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        self.n, self.payload, self.compute_ms = n, payload, compute_ms

    def tick(self, state: dict) -> list:
        raise NotImplementedError

    def window(self, min_ticks: int, min_s: float) -> list[float]:
        """Run ticks until both bounds are met; return each tick's latency in seconds."""
        lat: list[float] = []
        t_start = time.perf_counter()
        t = 0
        while len(lat) < min_ticks or time.perf_counter() - t_start < min_s:
            state = make_state(self.payload, t)
            t0 = time.perf_counter()
            actions = self.tick(state)
            lat.append(time.perf_counter() - t0)
            if len(actions) != self.n:
                raise RuntimeError(f"{self.name}: {len(actions)} actions for {self.n} players")
            t += 1
        return lat

    def close(self) -> None:
        pass


class Serial(Backend):
    name = "serial"

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        super().start(n, payload, compute_ms)
        self.players = [BenchPlayer(i, compute_ms) for i in range(n)]

    def tick(self, state: dict) -> list:
        return [p.get_action(state) for p in self.players]


def _call_player(player: BenchPlayer, state: dict) -> int:
    return player.get_action(state)


class PoolMap(Backend):
    """The textbook answer: players and state pickled to a process pool on every call."""

    name = "pool-map"

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        super().start(n, payload, compute_ms)
        self.players = [BenchPlayer(i, compute_ms) for i in range(n)]
        self.pool = mp.get_context("spawn").Pool(os.cpu_count())

    def tick(self, state: dict) -> list:
        return self.pool.starmap(_call_player, [(p, state) for p in self.players])

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def _pipe_worker(conn: Any, index: int, compute_ms: float) -> None:
    player = BenchPlayer(index, compute_ms)
    while True:
        state = conn.recv()
        if state is None:
            return
        conn.send(player.get_action(state))


class Pipes(Backend):
    """One persistent worker process per player, state sent down each Pipe."""

    name = "pipes"

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        super().start(n, payload, compute_ms)
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_pipe_worker, args=(child, i, compute_ms), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def tick(self, state: dict) -> list:
        for c in self.conns:
            c.send(state)
        return [c.recv() for c in self.conns]

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(5)


class Pool(Backend):
    """tickwire's PlayerPool as a user gets it: hosted, one process per usable core,
    each hosting its share of the players; ``per_player``: one process per player."""

    def __init__(self, per_player: bool = False) -> None:
        self.per_player = per_player
        self.name = "tickwire-pool" + ("-per-player" if per_player else "")

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        super().start(n, payload, compute_ms)
        from tickwire.server.work.pool import PlayerPool

        self.pool = PlayerPool(
            [BenchPlayer(i, compute_ms) for i in range(n)], processes=n if self.per_player else None
        )

    def tick(self, state: dict) -> list:
        return self.pool.get_actions(state)

    def close(self) -> None:
        self.pool.close()


def _raw_worker(state_addr: str, result_addr: str, index: int, compute_ms: float) -> None:
    import msgpack
    import zmq

    ctx = zmq.Context()
    sub, push = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH)
    sub.subscribe(b"")
    sub.connect(state_addr)
    push.connect(result_addr)
    player = BenchPlayer(index, compute_ms)
    while True:
        frames = sub.recv_multipart(copy=False)
        head = msgpack.unpackb(frames[0].buffer)
        if head.get("stop"):
            break
        if "probe" in head:
            push.send(struct.pack("<qq", -1, index))
            continue
        if len(frames) > 1:
            head["grid"] = np.frombuffer(frames[1].buffer, np.float32).reshape(512, 512)
        push.send(struct.pack("<qq", head["tick"], player.get_action(head)))
    sub.close(0)
    push.close(0)
    ctx.term()


class ZmqRaw(Backend):
    """Minimal pyzmq: PUB the state (array as a raw frame), PUSH/PULL the replies, count."""

    name = "zmq-raw"

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        import tempfile

        import msgpack
        import zmq

        super().start(n, payload, compute_ms)
        self._pack = msgpack.packb
        self.dir = tempfile.mkdtemp(prefix="twraw-")
        self.ctx = zmq.Context()
        self.pub, self.pull = self.ctx.socket(zmq.PUB), self.ctx.socket(zmq.PULL)
        for s in (self.pub, self.pull):
            s.linger = 0
        self.pub.bind(f"ipc://{self.dir}/s")
        self.pull.bind(f"ipc://{self.dir}/r")
        ctx = mp.get_context("spawn")
        self.procs = [
            ctx.Process(
                target=_raw_worker,
                daemon=True,
                args=(f"ipc://{self.dir}/s", f"ipc://{self.dir}/r", i, compute_ms),
            )
            for i in range(n)
        ]
        for p in self.procs:
            p.start()
        seen: set[int] = set()
        while len(seen) < n:  # slow joiners: probe until every worker has answered one
            self.pub.send(self._pack({"probe": 1}))
            if self.pull.poll(50):
                while self.pull.poll(0):
                    seen.add(struct.unpack("<qq", self.pull.recv())[1])

    def tick(self, state: dict) -> list:
        if "grid" in state:
            self.pub.send_multipart([self._pack({"tick": state["tick"]}), state["grid"]], copy=False)
        else:
            self.pub.send(self._pack(state))
        out: list[Any] = []
        while len(out) < self.n:
            tick, action = struct.unpack("<qq", self.pull.recv())
            if tick == state["tick"]:
                out.append(action)
        return out

    def close(self) -> None:
        import shutil

        self.pub.send(self._pack({"stop": 1}))
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        self.ctx.destroy(0)
        shutil.rmtree(self.dir, ignore_errors=True)


class _BenchWorld:
    """A world whose state is the bench payload; step() records tick times and parks the
    server between measurement windows (so back-ends can alternate)."""

    action_spec: dict = {}

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.go = threading.Event()
        self.done_window = threading.Event()
        self.budget = (0, 0.0)
        self.lat: list[float] = []
        self.stop = False

    def reset(self, seed: int, players: int) -> dict:
        return {"tick": 0}

    def observe(self, state: dict) -> dict:
        if state["tick"] == 0:  # the run starts: park until the first window opens
            self.go.wait()
            self._t0 = self._last = time.perf_counter()
        return make_state(self.payload, state["tick"])

    def step(self, state: dict, actions: dict) -> dict:
        now = time.perf_counter()
        self.lat.append(now - self._last)
        self._last = now
        min_ticks, min_s = self.budget
        if len(self.lat) >= min_ticks and now - self._t0 >= min_s:
            self.go.clear()
            self.done_window.set()
            self.go.wait()  # parked until the next window (or the end)
            self._t0 = self._last = time.perf_counter()
        return {"tick": state["tick"] + 1}

    def done(self, state: dict) -> bool:
        return self.stop


class TickwireServer(Backend):
    """The real path: WorldServer + agent processes (one per player, or ``hosted``: one per
    core, pinned to it, hosting several players each), over ipc or tcp."""

    def __init__(self, transport: str, hosted: bool = False) -> None:
        self.transport = transport
        self.hosted = hosted
        self.name = f"tickwire-{transport}" + ("-hosted" if hosted else "")

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        from tickwire.server.world_server.launcher import LocalRun
        from tickwire.server.world_server.loop import ServerConfig
        from tickwire.server.worlds.world import World

        super().start(n, payload, compute_ms)
        # hosted: one agent process per core, each hosting ceil(n / cores) players
        self.per_process = -(-n // (os.cpu_count() or 1)) if self.hosted else 1
        world_cls = type("BenchWorld", (_BenchWorld, World), {})
        self.world = world_cls(payload)
        os.environ[COMPUTE_ENV] = str(compute_ms)
        self.run = LocalRun(
            self.world,
            ServerConfig(players=n, ticks=2**62, lobby_timeout_s=300),
            "tickwire.bench:BenchAgent",
            n,
            self.transport,
            self.per_process,
            agent_server_timeout_s=600,
            pin_cpus=self.hosted,
        )
        self.summary: dict | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True, name="bench-server")
        self.thread.start()

    def _serve(self) -> None:
        self.summary = self.run.run()

    def window(self, min_ticks: int, min_s: float) -> list[float]:
        w = self.world
        w.lat, w.budget = [], (min_ticks, min_s)
        w.done_window.clear()
        w.go.set()
        while not w.done_window.wait(1.0):
            if not self.thread.is_alive():
                raise RuntimeError(f"{self.name}: the server stopped ({self.summary})")
        return list(w.lat)

    def close(self) -> None:
        self.world.stop = True
        self.world.go.set()
        self.thread.join(30)


class GymAsync(Backend):
    """Gymnasium AsyncVectorEnv: N trivial envs, the state passed as each env's action."""

    name = "gym-async"
    requires = "gymnasium"

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        from gymnasium.vector import AsyncVectorEnv

        super().start(n, payload, compute_ms)
        self.env = AsyncVectorEnv(
            [_GymEnvFactory(i, compute_ms) for i in range(n)],
            context="spawn",
            shared_memory=False,
            copy=False,
        )
        self.env.reset(seed=0)

    def tick(self, state: dict) -> list:
        obs, *_ = self.env.step(tuple([state] * self.n))
        return list(obs)

    def close(self) -> None:
        self.env.close(terminate=True)


class _GymEnvFactory:
    def __init__(self, index: int, compute_ms: float) -> None:
        self.index, self.compute_ms = index, compute_ms

    def __call__(self) -> Any:
        import gymnasium as gym

        class PlayerEnv(gym.Env):
            observation_space = gym.spaces.Discrete(5)
            action_space = gym.spaces.Discrete(5)  # the "action" given is the state

            def __init__(env, player: BenchPlayer) -> None:
                env.player = player

            def reset(env, seed: int | None = None, options: Any = None) -> tuple:
                return 0, {}

            def step(env, state: dict) -> tuple:
                return env.player.get_action(state), 0.0, False, False, {}

        return PlayerEnv(BenchPlayer(self.index, self.compute_ms))


class RayActors(Backend):
    """One Ray actor per player (if ray is installed)."""

    name = "ray"
    requires = "ray"
    isolated = True

    def start(self, n: int, payload: str, compute_ms: float) -> None:
        import ray

        super().start(n, payload, compute_ms)
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            _node_ip_address="127.0.0.1",
        )  # loopback only
        actor = ray.remote(BenchPlayer)
        self.ray = ray
        self.actors = [actor.remote(i, compute_ms) for i in range(n)]

    def tick(self, state: dict) -> list:
        ref = self.ray.put(state)
        return self.ray.get([a.get_action.remote(ref) for a in self.actors])

    def close(self) -> None:
        self.ray.shutdown()


def all_backends() -> dict[str, Callable[[], Backend]]:
    table: dict[str, Callable[[], Backend]] = {
        "tickwire-ipc": lambda: TickwireServer("ipc"),
        "tickwire-ipc-hosted": lambda: TickwireServer("ipc", hosted=True),
        "tickwire-tcp": lambda: TickwireServer("tcp"),
        "tickwire-pool": Pool,
        "tickwire-pool-per-player": lambda: Pool(per_player=True),
        "zmq-raw": ZmqRaw,
        "pool-map": PoolMap,
        "pipes": Pipes,
        "serial": Serial,
    }
    for optional in (GymAsync, RayActors):
        if optional.available():
            table[optional.name] = optional
    return table


# ----------------------------------------------------------------------------- harness
@dataclass(frozen=True, slots=True)
class Record:
    backend: str
    n: int
    payload: str
    compute_ms: float
    ticks_per_s: float
    p50_ms: float
    p99_ms: float
    windows: int
    ticks: int


def measure_cell(
    names: list[str],
    n: int,
    payload: str,
    compute_ms: float,
    reps: int,
    min_ticks: int,
    min_s: float,
    together: bool,
    on_window: Callable[[str], None] = lambda name: None,
) -> list[Record]:
    """All back-ends on one cell; windows alternate between back-ends ``reps`` times.
    ``on_window(backend)`` is called as each window (the warm-up one too) starts."""
    factories = all_backends()
    rates: dict[str, list[float]] = {b: [] for b in names}
    lats: dict[str, list[float]] = {b: [] for b in names}

    def warm(b: Backend) -> None:
        on_window(b.name)
        b.window(max(3, min_ticks // 10), min_s / 5)  # not counted

    def measure(b: Backend) -> None:
        on_window(b.name)
        lat = b.window(min_ticks, min_s)
        rates[b.name].append(len(lat) / sum(lat))
        lats[b.name].extend(lat)

    # Back-ends measured side by side (alternating windows) unless there would be too many
    # processes for that, or a back-end must run alone; the rest run one at a time.
    shared = [b for b in names if together and not getattr(factories[b], "isolated", False)]
    started: list[Backend] = []
    try:
        for name in shared:
            started.append(factories[name]())
            started[-1].start(n, payload, compute_ms)
            warm(started[-1])
        for _ in range(reps):
            for backend in started:
                measure(backend)
    finally:
        for backend in started:
            backend.close()
    for name in (b for b in names if b not in shared):
        backend = factories[name]()
        try:
            backend.start(n, payload, compute_ms)
            warm(backend)
            for _ in range(reps):
                measure(backend)
        finally:
            backend.close()
    out = []
    for name in names:
        lat_ms = np.array(lats[name]) * 1e3
        out.append(
            Record(
                name,
                n,
                payload,
                compute_ms,
                round(statistics.median(rates[name]), 1),
                round(float(np.percentile(lat_ms, 50)), 3),
                round(float(np.percentile(lat_ms, 99)), 3),
                len(rates[name]),
                len(lat_ms),
            )
        )
    return out


def format_table(records: list[Record]) -> str:
    lines = [
        f"{'backend':<26}{'N':>5} {'payload':<7}{'ms':>4}{'ticks/s':>13}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'vs zmq-raw':>11}{'vs pool-map':>12}{'vs pipes':>9}"
    ]
    by_cell: dict[tuple, dict[str, Record]] = {}
    for r in records:
        by_cell.setdefault((r.n, r.payload, r.compute_ms), {})[r.backend] = r
    for recs in by_cell.values():
        for r in recs.values():

            def ratio(base):
                return (
                    f"{r.ticks_per_s / recs[base].ticks_per_s:.2f}x"  # noqa: E731
                    if base in recs and recs[base].ticks_per_s
                    else "-"
                )

            lines.append(
                f"{r.backend:<26}{r.n:>5} {r.payload:<7}{r.compute_ms:>4g}"
                f"{r.ticks_per_s:>13,.1f}{r.p50_ms:>9.3f}{r.p99_ms:>9.3f}"
                f"{ratio('zmq-raw'):>11}{ratio('pool-map'):>12}{ratio('pipes'):>9}"
            )
        lines.append("")
    return "\n".join(lines)


def plot(records: list[Record], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'tickwire[bench]'") from None
    cells = sorted({(r.payload, r.compute_ms) for r in records})
    fig, axes = plt.subplots(1, len(cells), figsize=(5 * len(cells), 4), squeeze=False)
    for ax, (payload, ms) in zip(axes[0], cells):
        for name in sorted({r.backend for r in records}):
            pts = sorted(
                (r.n, r.ticks_per_s)
                for r in records
                if r.backend == name and r.payload == payload and r.compute_ms == ms
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="players (N)",
            ylabel="ticks/s",
            title=f"{payload} state, {ms:g} ms compute",
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def environment() -> dict[str, Any]:
    import msgpack
    import zmq

    return {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
        "numpy": np.__version__,
    }


def _measure_all(cells: list[tuple], args: argparse.Namespace, progress: JobProgress) -> list[Record]:
    """Every cell in turn; each cell's table goes to stderr as soon as it is measured."""
    records: list[Record] = []
    done = 0
    for index, (payload, compute, n, cell_names) in enumerate(cells, 1):

        def on_window(backend: str) -> None:
            nonlocal done
            progress.update(done, f"cell {index}/{len(cells)} (N={n}, {payload}, {compute:g} ms)  {backend}")
            done += 1

        t0 = time.perf_counter()
        recs = measure_cell(
            cell_names,
            n,
            payload,
            compute,
            args.reps,
            args.min_ticks,
            args.min_s,
            together=n <= 16,
            on_window=on_window,
        )
        records += recs
        progress.write(format_table(recs))
        progress.write(f"  (cell took {time.perf_counter() - t0:.1f} s)")
        progress.update(done, f"cell {index}/{len(cells)} done")
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tickwire bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="N in {4, 16}, compute 0 ms, both payloads (< 2 min on 2 cores)"
    )
    p.add_argument("--n", type=int, nargs="+", help="player counts (default 1 4 16 64)")
    p.add_argument("--payload", nargs="+", choices=("small", "large"), default=["small", "large"])
    p.add_argument("--compute-ms", type=float, nargs="+", help="agent compute (default 0 1)")
    p.add_argument("--backends", nargs="+", help=f"subset of {sorted(all_backends())}")
    p.add_argument("--reps", type=int, default=3, help="measured windows per back-end and cell")
    p.add_argument("--min-ticks", type=int, default=50)
    p.add_argument("--min-s", type=float, default=0.4, help="minimum seconds per window")
    p.add_argument(
        "--json",
        metavar="FILE",
        nargs="?",
        const="-",
        help="write the records as JSON (to FILE, or stdout with no FILE)",
    )
    p.add_argument("--plot", metavar="PNG", help="ticks/s against N per back-end (matplotlib)")
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress line (there is none either when stderr is not a terminal)",
    )
    scale = p.add_argument_group("scale (thousands of players in one world: per-seat vs batched agents)")
    scale.add_argument(
        "--scale",
        action="store_true",
        help="one tickwire run per size and path (per-seat BenchAgent, batched BenchBatchAgent): "
        "ticks/s, CPU µs per player-tick, server RSS per player",
    )
    scale.add_argument(
        "--sizes", metavar="N,N,..", help="player counts for --scale (default 1000,4000,10000)"
    )
    scale.add_argument("--ticks", type=int, default=2000, help="ticks per --scale run (default 2000)")
    scale.add_argument("--hosts", type=int, default=8, help="agent processes per --scale run (default 8)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.scale:
        from .scale import scale_main

        return scale_main(args, environment())
    ns = args.n or ([4, 16] if args.quick else [1, 4, 16, 64])
    computes = args.compute_ms or ([0.0] if args.quick else [0.0, 1.0])
    available = all_backends()
    names = args.backends or list(available)
    unknown = [b for b in names if b not in available]
    if unknown:
        p.error(
            f"back-end(s) {unknown} not available here (have {sorted(available)}; "
            "gym-async and ray need their packages installed)"
        )
    if args.quick:
        args.min_s = min(args.min_s, 0.25)
    print(f"tickwire bench on {json.dumps(environment())}", file=sys.stderr)
    cells = [
        (payload, compute, n, [b for b in names if not (b == "serial" and n * compute > 200)])
        for payload in args.payload
        for compute in computes
        for n in ns
    ]
    progress = JobProgress(sum(len(c[3]) for c in cells) * (args.reps + 1), "window", enabled=not args.quiet)
    try:
        records = _measure_all(cells, args, progress)
    finally:
        progress.close()
    table = format_table(records)
    if args.json == "-":
        print(json.dumps([asdict(r) for r in records]))
    else:
        print(table)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(
                    {"environment": environment(), "records": [asdict(r) for r in records]}, f, indent=1
                )
    if args.plot:
        plot(records, args.plot)
    return 0
