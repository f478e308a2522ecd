"""PNG encoding of RGB frames without an imaging library (``--render`` and the replay page)."""

from __future__ import annotations

import struct
import zlib

import numpy as np


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
