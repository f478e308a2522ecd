"""PNG encoding of RGB frames without an imaging library (``--render`` and the replay page),
and the picture ``--render`` writes: the world's frame scaled up, its players drawn so that
players sharing a cell all stay visible, and a legend (player id ↔ colour) below."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Background of the legend strip (the grid world's empty-cell grey).
LEGEND_BG = (24, 24, 24)
#: Players listed in the picture's legend at most (then "+N" for the rest).
LEGEND_MAX = 64

# A 3x5 bitmap font: the digits and "+" (legend ids, counts of players sharing a cell).
_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    "+": "000010111010000",
}


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes."""
    h, w, _ = rgb.shape
    rows = np.zeros((h, 1 + w * 3), dtype=np.uint8)  # filter byte 0 (none) per row
    rows[:, 1:] = rgb.reshape(h, w * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as a PNG file."""
    with open(path, "wb") as f:
        f.write(png_bytes(rgb))


# ----------------------------------------------------------------------------- players
def player_colours(players: int) -> np.ndarray:
    """One distinct RGB colour per player id, (players, 3) uint8: the grid world draws its
    players in these, and the legends of the ``--render`` picture and the replay page use them."""
    hues = np.linspace(0, 1, max(1, players), endpoint=False)[:players]
    return (255 * np.stack([1 - hues, 0.4 + 0.6 * hues, hues], axis=-1)).astype(np.uint8).reshape(-1, 3)


def draw_text(img: np.ndarray, text: str, top: int, left: int, colour: Sequence[int], dot: int = 1) -> int:
    """Draw ``text`` (digits and "+") with its top-left corner at (top, left), each font
    pixel ``dot`` pixels square, clipped to ``img``; returns the x just after it."""
    for ch in text:
        bits = _GLYPHS.get(ch)
        if bits:
            for i, bit in enumerate(bits):
                if bit == "1":
                    y, x = top + (i // 3) * dot, left + (i % 3) * dot
                    img[max(0, y) : y + dot, max(0, x) : x + dot] = colour
        left += 4 * dot
    return left


def draw_players(big: np.ndarray, cells: Sequence[Any], colours: np.ndarray, scale: int) -> None:
    """Draw each player on ``big`` (a frame scaled up ``scale`` times) at its frame pixel
    ``cells[player]`` = (row, col) (None: not shown). Players sharing a cell split it into
    vertical stripes in id order, and the cell shows how many share it."""
    sharing: dict[tuple[int, int], list[int]] = {}
    for player, cell in enumerate(cells):
        if cell is not None:
            sharing.setdefault((int(cell[0]), int(cell[1])), []).append(player)
    for (row, col), players in sharing.items():
        top, left = row * scale, col * scale
        if not (0 <= top < big.shape[0] and 0 <= left < big.shape[1]):
            continue
        shown = players[:scale]  # a stripe is at least one pixel wide
        edges = np.linspace(0, scale, len(shown) + 1).round().astype(int)
        for player, a, b in zip(shown, edges[:-1], edges[1:]):
            big[top : top + scale, left + a : left + b] = colours[player]
        count = str(len(players))
        if len(players) > 1 and scale >= 4 * len(count) + 2:
            dot = max(1, scale // 16)  # small: the stripes stay visible
            w, h = 4 * dot * len(count) + dot, 6 * dot + dot
            big[top : top + h, left : left + w] = 0
            draw_text(big, count, top + dot, left + dot, (255, 255, 255), dot)


def legend(width: int, colours: np.ndarray, dot: int = 2) -> np.ndarray:
    """A strip ``width`` pixels wide listing each player as a colour swatch and its id
    (at most :data:`LEGEND_MAX`, then "+N"), wrapped into as many rows as needed."""
    swatch, line = 5 * dot, 7 * dot
    entries = [(str(p), colours[p]) for p in range(min(len(colours), LEGEND_MAX))]
    extra = len(colours) - len(entries)
    widths = [swatch + dot + 4 * dot * len(text) + 3 * dot for text, _ in entries]
    if extra:
        widths.append(4 * dot * len(f"+{extra}") + dot)
    rows, x = 1, dot
    for w in widths:
        if x + w > width and x > dot:
            rows, x = rows + 1, dot
        x += w
    strip = np.empty((rows * line + dot, width, 3), dtype=np.uint8)
    strip[:] = LEGEND_BG
    y, x = dot, dot
    for i, w in enumerate(widths):
        if x + w > width and x > dot:
            y, x = y + line, dot
        if i < len(entries):
            text, colour = entries[i]
            strip[y : y + swatch, x : x + swatch] = colour
            draw_text(strip, text, y, x + swatch + dot, (230, 230, 230), dot)
        else:
            draw_text(strip, f"+{extra}", y, x, (230, 230, 230), dot)
        x += w
    return strip


def render_picture(world: Any, state: Any, side: int = 256) -> np.ndarray:
    """The ``--render`` picture of ``state``: the world's render scaled up by whole pixels
    (crisp) to at least ``side`` pixels; for a world that says where its players are
    (``player_cells(state)``, e.g. the grid world) the players drawn so each stays visible
    and a legend of their colours below."""
    img = np.asarray(world.render(state))
    scale = max(1, -(-side // max(1, min(img.shape[:2]))))
    big = img.repeat(scale, axis=0).repeat(scale, axis=1)
    where = getattr(world, "player_cells", None)
    if where is None:
        return big
    cells = list(where(state))
    colours = player_colours(len(cells))
    draw_players(big, cells, colours, scale)
    return np.concatenate([big, legend(big.shape[1], colours)])
