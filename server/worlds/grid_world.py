"""The embedded default world: players move on a grid and collect resources."""

from __future__ import annotations

from typing import Any

import numpy as np

from .png import player_colours
from .world import ActionBatch, World

#: Action ids → (d_row, d_col).
MOVES = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int16)
ACTION_NAMES = ["stay", "up", "down", "left", "right"]


class GridWorld(World):
    """A seeded multi-player resource game on a numpy grid.

    Each tick every player moves one cell (or stays); a player that ends its move on a
    resource collects it (+1 score; players move in id order, so ties are deterministic).
    Collected resources respawn on random empty cells, keeping the count constant.
    The grid is 16x16, or about 8 cells per player when there are more than 32 players.
    """

    action_spec = {"type": "discrete", "n": len(MOVES), "names": ACTION_NAMES}
    #: ``step`` takes the tick's actions as arrays (:class:`ActionBatch`) as well as a dict
    accepts_action_array = True

    def __init__(self, size: int | None = None, resources: int | None = None) -> None:
        self.fixed_size = size
        self.size = size or 16
        self.resources = resources

    def reset(self, seed: int, players: int) -> dict[str, Any]:
        # 16x16, or larger for many players: about 8 cells per player
        self.size = self.fixed_size or max(16, int(np.ceil(np.sqrt(8 * players))))
        rng = np.random.default_rng(seed)
        cells = self.size * self.size
        n_res = self.resources or max(4, 2 * players)
        if n_res >= cells:
            raise ValueError(f"{n_res} resources do not fit on a {self.size}x{self.size} grid")
        grid = np.zeros((self.size, self.size), dtype=np.uint8)
        grid.flat[rng.choice(cells, size=n_res, replace=False)] = 1
        positions = rng.integers(0, self.size, size=(players, 2)).astype(np.int16)
        return {
            "tick": 0,
            "grid": grid,
            "positions": positions,
            "scores": np.zeros(players, dtype=np.int32),
            "rng": rng,
        }

    def observe(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k: state[k] for k in ("tick", "grid", "positions", "scores")}

    def step(self, state: dict[str, Any], actions: dict[int, Any] | ActionBatch) -> dict[str, Any]:
        grid, pos, scores = state["grid"].copy(), state["positions"].copy(), state["scores"].copy()
        if isinstance(actions, ActionBatch):
            ids, moves = actions.ids, actions.actions
            if moves.dtype.kind not in "iu":  # e.g. a recorded None: stays, as in the dict form
                moves = np.array([a if isinstance(a, int) else 0 for a in moves.tolist()])
        elif actions:
            ids = np.fromiter(sorted(actions), dtype=np.int64, count=len(actions))
            moves = np.array([a if isinstance(a, int) else 0 for a in (actions[i] for i in ids)])
        else:
            ids = np.zeros(0, np.int64)
        collected = 0
        n = len(ids)
        if n:
            # ids are distinct and ascending: n of them from 0 to n - 1 are every player
            everyone = n == len(pos) and ids[0] == 0 and ids[-1] == n - 1
            moved = (pos if everyone else pos[ids]) + MOVES[moves]
            np.minimum(np.maximum(moved, 0, out=moved), self.size - 1, out=moved)  # np.clip, faster
            if everyone:
                pos = moved
            else:
                pos[ids] = moved
            cells = moved[:, 0].astype(np.int64) * self.size + moved[:, 1]
            # the lowest id on a resource cell collects it (ids are sorted: first occurrence
            # among the players that ended on a resource, who are all of that cell's players)
            on = np.flatnonzero(grid.flat[cells] > 0)
            if len(on):
                won_cells, first = np.unique(cells[on], return_index=True)
                scores[ids[on[first]]] += 1
                collected = int(grid.flat[won_cells].sum())
                grid.flat[won_cells] = 0
        if collected:
            empty = np.flatnonzero(grid == 0)
            grid.flat[state["rng"].choice(empty, size=collected, replace=False)] = 1
        return {
            "tick": state["tick"] + 1,
            "grid": grid,
            "positions": pos,
            "scores": scores,
            "rng": state["rng"],
        }

    def scores(self, state: dict[str, Any]) -> list[float]:
        return [int(s) for s in state["scores"]]

    def noop(self) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "size": self.size}

    def render(self, state: dict[str, Any], scale: int = 1) -> np.ndarray:
        """An RGB image (H, W, 3) of the grid, ``scale`` pixels per cell (default one: the
        native size viewers scale up): resources green, players in distinct colours."""
        img = np.full((self.size, self.size, 3), 24, dtype=np.uint8)
        img[state["grid"] > 0] = (40, 200, 80)
        for (r, c), colour in zip(state["positions"], player_colours(len(state["positions"]))):
            img[r, c] = colour
        return img.repeat(scale, axis=0).repeat(scale, axis=1)

    def player_cells(self, state: dict[str, Any]) -> list[tuple[int, int]]:
        """Each player's (row, col) pixel in :meth:`render`'s native picture, by player id:
        viewers (the ``--render`` picture, the replay page) draw the players there in
        :func:`~tickwire.server.worlds.png.player_colours` with a legend, and split a cell
        that several players share so that each stays visible."""
        return [(int(r), int(c)) for r, c in state["positions"]]
