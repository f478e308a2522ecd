"""The replay page: ``tickwire replay DIR --html FILE`` writes one self-contained HTML file
that plays a recorded run (play/pause, tick slider, speed, the world per tick, per-player panel).

:class:`PageBuilder` is fed every re-simulated tick by :func:`~tickwire.server.record.replay.replay_run`
(its ``on_step``) and keeps a bounded sample of them: one row per shown tick with every
player's action, score, status, missed and late flags and running totals, and the world's
frame from its render hook (:meth:`World.render`), identical frames stored once and put into
the page as a few PNG "sheets" of frames stacked top to bottom. A world that says where its
players are in that picture (``player_cells(state)``, e.g. the grid world) also gets each
player's cell per shown tick: the page draws the players there in the colours of its legend
(:func:`~tickwire.server.worlds.png.player_colours`), splitting a cell that several share.
:meth:`PageBuilder.page` puts that data into ``replay_page.html`` (package data) as one JSON
block. The page fetches nothing: CSS, JS, data and images are inline.

Everything from the record or the agents (player names, statuses, actions) goes into the JSON
with ``<``, ``>`` and ``&`` escaped, and the page builds its DOM with ``textContent`` only, so
a hostile player name stays text.
"""

from __future__ import annotations

import base64
import json
import math
from importlib import resources
from typing import Any

import numpy as np

from ..worlds.png import player_colours, png_bytes
from .log import TickRecord

#: Shown ticks at most, before the automatic stride (without ``--html-every``) doubles.
MAX_ROWS = 10_000
#: ... and at most this many (shown tick, player) cells: many players mean fewer ticks.
MAX_CELLS = 400_000
#: ... and at most this many frame pixels (big renders mean fewer shown ticks).
MAX_FRAME_PIXELS = 20_000_000
#: Frames go into the page stacked in PNG sheets of at most this many pixels high: one deflate
#: stream over similar neighbouring frames is ~12x smaller than a PNG per frame.
SHEET_HEIGHT = 8192
#: An action is shown as at most this many characters.
MAX_ACTION_CHARS = 60
HASH_CHARS = 10  #: the per-tick hash prefix the page shows (the final hash is shown whole)
TEMPLATE = "replay_page.html"
DATA_MARK = "/*TICKWIRE_REPLAY_DATA*/"


def frame_of(world: Any, state: Any) -> np.ndarray | None:
    """The world's render of ``state`` checked against the hook's contract, or None if the
    world has no render hook. A wrong shape or dtype raises ValueError naming the problem."""
    if not getattr(world, "has_render", False):
        return None
    img = np.asarray(world.render(state))
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise ValueError(
            f"{type(world).__name__}.render returned {img.dtype} {img.shape}; the "
            "render hook must return an (H, W, 3) uint8 RGB array"
        )
    return img


def action_text(action: Any) -> Any:
    """An action as the page shows it: ints, floats, bools and None as they are, anything
    else as short text."""
    if isinstance(action, np.generic):
        action = action.item()
    if action is None or isinstance(action, (bool, int)):
        return action
    if isinstance(action, float):
        return action if math.isfinite(action) else str(action)
    if isinstance(action, np.ndarray):
        action = action.tolist()
    text = action if isinstance(action, str) else json.dumps(action, default=str)
    return text if len(text) <= MAX_ACTION_CHARS else text[: MAX_ACTION_CHARS - 1] + "…"


def _number(x: Any) -> Any:
    """A score as the page shows it: an int if whole, else a float, else short text."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return action_text(str(x))
    return int(x) if x.is_integer() else (round(x, 6) if math.isfinite(x) else str(x))


class PageBuilder:
    """Collects the shown ticks of a replay; ``every`` fixes the stride (``--html-every``),
    None picks it: every tick up to :data:`MAX_ROWS` (fewer with many players), then the
    stride doubles and every other shown tick is dropped, so memory and page stay bounded."""

    def __init__(self, world: Any, first_header: dict[str, Any], every: int | None = None) -> None:
        self.world = world
        self.header = first_header
        self.players = int(first_header["players"])
        self.planned = int(first_header.get("config", {}).get("ticks", 0))
        self.every = every or 1
        self.auto = every is None
        self.cap = max(100, min(MAX_ROWS, MAX_CELLS // max(1, self.players)))
        self.rows: list[dict[str, Any]] = []
        self.frames: list[np.ndarray] = []  # unique frames, in first-shown order
        self._frame_ids: dict[bytes, int] = {}
        self._tables: dict[str, tuple[list, dict]] = {"status": ([], {}), "names": ([], {})}
        self.totals = np.zeros((self.players, 3), dtype=np.int64)  # answered, missed, late
        self.replayed = 0
        self.has_render = bool(getattr(world, "has_render", False))
        self.has_cells = self.has_render and callable(getattr(world, "player_cells", None))
        self.frame_shape: tuple[int, ...] | None = None
        self._epoch: int | None = None

    # ------------------------------------------------------------------ collecting
    def on_step(self, rec: TickRecord, state: Any, replayed_hash: str) -> None:
        """One re-simulated tick (``replay_run``'s ``on_step``)."""
        self.replayed += 1
        self._count(rec)
        differs = replayed_hash != rec.state_hash
        new_epoch = rec.epoch != self._epoch
        self._epoch = rec.epoch
        if rec.tick % self.every == 0 or differs or new_epoch or rec.tick == self.planned - 1:
            self.rows.append(self._row(rec, state, replayed_hash, differs))
            if self.auto and len(self.rows) > self.cap:
                self._thin()

    def _count(self, rec: TickRecord) -> None:
        for pid in rec.actions:
            if 0 <= pid < self.players:
                self.totals[pid, 1 if pid in rec.missing else 0] += 1
        for pid, n in rec.late.items():
            if 0 <= pid < self.players:
                self.totals[pid, 2] += n

    def _row(self, rec: TickRecord, state: Any, replayed_hash: str, differs: bool) -> dict[str, Any]:
        scores = list(self.world.scores(state))
        row = {
            "t": rec.tick,
            "e": rec.epoch,
            "h": rec.state_hash[:HASH_CHARS],
            "f": self._frame(state),
            "st": self._table("status", rec.statuses),
            "nm": self._table("names", rec.names),
            "a": [action_text(rec.actions[p]) if p in rec.actions else None for p in range(self.players)],
            "sc": [_number(scores[p]) if p < len(scores) else None for p in range(self.players)],
            "in": [p in rec.actions for p in range(self.players)],
            "m": [int(p in rec.missing) for p in range(self.players)],
            "l": [int(rec.late.get(p, 0)) for p in range(self.players)],
            "tot": self.totals.tolist(),
        }
        if self.has_cells:
            row["pc"] = self._cells(state)
        if differs:
            row["x"] = {"recorded": rec.state_hash, "replayed": replayed_hash}
        return row

    def _frame(self, state: Any) -> int | None:
        img = frame_of(self.world, state)
        if img is None:
            return None
        if self.frame_shape is None:
            self.frame_shape = img.shape
            self.cap = max(10, min(self.cap, MAX_FRAME_PIXELS // (img.shape[0] * img.shape[1])))
        elif img.shape != self.frame_shape:
            raise ValueError(
                f"{type(self.world).__name__}.render returned shape {img.shape}, "
                f"earlier frames were {self.frame_shape}: every frame of a run "
                "must have the same shape"
            )
        key = img.tobytes()
        index = self._frame_ids.get(key)
        if index is None:
            index = self._frame_ids[key] = len(self.frames)
            self.frames.append(img)
        return index

    def _cells(self, state: Any) -> list[list[int] | None]:
        """Each player's [row, col] in the frame (None: not shown), for the page to draw."""
        cells = list(self.world.player_cells(state))[: self.players]
        cells += [None] * (self.players - len(cells))
        return [None if c is None else [int(c[0]), int(c[1])] for c in cells]

    def _table(self, kind: str, mapping: dict[int, str]) -> int:
        """Index of ``mapping`` in the table of distinct status (or name) maps: they change
        rarely, so each shown tick carries a number, not the map."""
        items, index = self._tables[kind]
        key = tuple(sorted(mapping.items()))
        if key not in index:
            index[key] = len(items)
            items.append({str(pid): str(v) for pid, v in key})
        return index[key]

    def _thin(self) -> None:
        """Double the stride: keep the ticks on it and the ones always shown (a new epoch,
        the differing tick, the last planned); frames no shown tick uses are dropped."""
        self.every *= 2
        kept, last_epoch = [], None
        for row in self.rows:
            if (
                row["t"] % self.every == 0
                or "x" in row
                or row["e"] != last_epoch
                or (row["t"] == self.planned - 1)
            ):
                kept.append(row)
            last_epoch = row["e"]
        self.rows = kept
        self._drop_unused_frames()

    def _drop_unused_frames(self) -> None:
        used = sorted({r["f"] for r in self.rows if r["f"] is not None})
        renumber = {old: new for new, old in enumerate(used)}
        self.frames = [self.frames[i] for i in used]
        self._frame_ids = {k: renumber[i] for k, i in self._frame_ids.items() if i in renumber}
        for row in self.rows:
            if row["f"] is not None:
                row["f"] = renumber[row["f"]]

    # ------------------------------------------------------------------ the page
    def sheets(self) -> list[str]:
        """The unique frames stacked into PNG sheets (base64); frame i is in sheet
        ``i // per_sheet`` at ``y = (i % per_sheet) * height``."""
        if not self.frames:
            return []
        per = self.per_sheet()
        return [
            base64.b64encode(png_bytes(np.concatenate(self.frames[i : i + per]))).decode("ascii")
            for i in range(0, len(self.frames), per)
        ]

    def per_sheet(self) -> int:
        return max(1, SHEET_HEIGHT // self.frame_shape[0]) if self.frame_shape else 1

    def columns(self) -> dict[str, Any]:
        """The shown ticks column by column (compact JSON). ``tot`` (running totals) only
        where the page cannot add them up itself: after a tick that is not shown."""
        rows, P = self.rows, self.players
        cols: dict[str, Any] = {k: [r[k] for r in rows] for k in ("t", "e", "h", "f", "st", "nm")}
        cols["a"] = [[r["a"][p] for r in rows] for p in range(P)]
        cols["sc"] = [[r["sc"][p] for r in rows] for p in range(P)]
        cols["in"] = [[p for p in range(P) if r["in"][p]] for r in rows]  # stepped with an action
        cols["m"] = [[p for p in range(P) if r["m"][p]] for r in rows]
        cols["l"] = [[[p, n] for p, n in enumerate(r["l"]) if n] for r in rows]
        cols["tot"] = {
            str(i): r["tot"] for i, r in enumerate(rows) if i == 0 or rows[i - 1]["t"] != r["t"] - 1
        }
        cols["x"] = {str(i): r["x"] for i, r in enumerate(rows) if "x" in r}
        if self.has_cells:
            cols["pc"] = [r["pc"] for r in rows]
        return cols

    def data(self, report: Any) -> dict[str, Any]:
        """Everything the page shows, as one JSON-able dict."""
        spec = getattr(self.world, "action_spec", None) or {}
        names = spec.get("names") if isinstance(spec, dict) else None
        shape = self.frame_shape
        return {
            "meta": {
                **report.as_dict(),
                "players": self.players,
                "world_name": str(self.header.get("world_name", "")),
                "tickwire": str(self.header.get("tickwire", "")),
                "planned_ticks": self.planned,
                "replayed": self.replayed,
                "every": self.every,
                "auto": self.auto,
                "shown": len(self.rows),
                "has_render": self.has_render,
                "frames": len(self.frames),
            },
            "action_names": [str(n) for n in names] if isinstance(names, list) else None,
            # the legend's colours, when the world says where its players are (else no legend)
            "player_colours": (
                ["#" + bytes(c.tolist()).hex() for c in player_colours(self.players)]
                if self.has_cells
                else None
            ),
            "statuses": self._tables["status"][0],
            "names": self._tables["names"][0],
            "frames": {
                "height": shape[0] if shape else 0,
                "width": shape[1] if shape else 0,
                "per_sheet": self.per_sheet(),
                "sheets": self.sheets(),
            },
            "cols": self.columns(),
        }

    def page(self, report: Any) -> str:
        """The HTML page, data inline."""
        template = resources.files(__package__).joinpath(TEMPLATE).read_text("utf-8")
        return template.replace(DATA_MARK, embed_json(self.data(report)), 1)


def embed_json(obj: Any) -> str:
    """``obj`` as JSON safe inside a ``<script type="application/json">`` block: no ``<``,
    ``>`` or ``&`` appear raw (so no ``</script>`` or ``<!--`` can end or bend the block)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
