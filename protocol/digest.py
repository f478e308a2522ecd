"""Canonical digests of world states and per-player seeds: pure and deterministic."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import numpy as np


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return [[_canonical(k), _canonical(v)] for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0]))]
    if isinstance(obj, (list, tuple)):
        return [_canonical(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return ["ndarray", obj.dtype.str, list(obj.shape), obj.tobytes()]  # tobytes is C order
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def state_digest(obj: Any) -> str:
    """SHA-256 (hex) of a canonical encoding: equal states give equal digests on any machine."""
    return hashlib.sha256(msgpack.packb(_canonical(obj), use_bin_type=True)).hexdigest()


def player_seed(run_seed: int, player: int) -> int:
    """A per-player seed derived from the run seed, so even random agents are reproducible."""
    return int(np.random.SeedSequence([run_seed, player]).generate_state(1, np.uint64)[0] >> 1)
