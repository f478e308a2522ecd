"""Observation and action spaces in a language-neutral form, and cheap action checks.

A space travels in WELCOME as a small map (see PROTOCOL.md, "Spaces"):

* ``{"type": "discrete", "n": N, "start": S}`` — the ints ``S .. S+N-1`` (``start`` optional, 0);
* ``{"type": "box", "dtype": "<f4", "shape": [..], "low": L, "high": H}`` — arrays of that
  shape; ``low``/``high`` are one number (the same bound everywhere) or a flat list of
  ``prod(shape)`` numbers in C order (``±inf`` allowed);
* ``{"type": "multi_discrete", "nvec": [..], "shape": [..]}`` — int arrays, ``0 <= x < nvec``
  (``nvec`` flat, C order);
* ``{"type": "multi_binary", "shape": [..]}`` — arrays of 0/1;
* ``{"type": "dict", "spaces": {key: space}}``, ``{"type": "tuple", "spaces": [space, ..]}``.

Pure: numpy only. :func:`to_gymnasium` and :func:`from_gymnasium` import gymnasium when
called (it is an optional extra: ``pip install 'tickwire[gym]'``). :func:`action_checker`
compiles a space into a function that returns the action (numpy-converted where the space
says so) or raises :class:`SpaceError` saying why it does not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .codec import ALLOWED_DTYPES
from .errors import ProtocolError

Space = dict[str, Any]
Checker = Callable[[Any], Any]
TYPES = ("discrete", "box", "multi_discrete", "multi_binary", "dict", "tuple")


class SpaceError(ProtocolError, ValueError):
    """A space map is malformed, or a value does not fit a space; the text says which."""

    def __init__(self, text: str) -> None:
        super().__init__("invalid_action", text)


# ---------------------------------------------------------------------------- gymnasium
def from_gymnasium(space: Any) -> Space:
    """The wire map of a Gymnasium space (Discrete, Box, MultiDiscrete, MultiBinary, Dict,
    Tuple); an already-converted map is returned as it is."""
    if isinstance(space, dict):
        validate_space(space)
        return space
    from gymnasium import spaces as gs

    if isinstance(space, gs.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gs.Box):
        return {
            "type": "box",
            "dtype": _dtype_str(space.dtype),
            "shape": list(space.shape),
            "low": _bound(space.low),
            "high": _bound(space.high),
        }
    if isinstance(space, gs.MultiDiscrete):
        return {
            "type": "multi_discrete",
            "nvec": [int(v) for v in space.nvec.ravel()],
            "shape": list(space.shape),
        }
    if isinstance(space, gs.MultiBinary):
        return {"type": "multi_binary", "shape": list(space.shape)}
    if isinstance(space, gs.Dict):
        return {"type": "dict", "spaces": {str(k): from_gymnasium(v) for k, v in space.spaces.items()}}
    if isinstance(space, gs.Tuple):
        return {"type": "tuple", "spaces": [from_gymnasium(s) for s in space.spaces]}
    raise SpaceError(
        f"cannot describe a {type(space).__name__} on the wire: use Discrete, Box, "
        "MultiDiscrete, MultiBinary, Dict or Tuple"
    )


def to_gymnasium(space: Space) -> Any:
    """The Gymnasium space of a wire map (needs gymnasium installed)."""
    from gymnasium import spaces as gs

    validate_space(space)
    kind = space["type"]
    if kind == "discrete":
        return gs.Discrete(space["n"], start=space.get("start", 0))
    if kind == "box":
        shape = tuple(space["shape"])
        dtype = np.dtype(space["dtype"])
        return gs.Box(
            _unbound(space["low"], shape, dtype),
            _unbound(space["high"], shape, dtype),
            shape=shape,
            dtype=dtype,
        )
    if kind == "multi_discrete":
        return gs.MultiDiscrete(np.array(space["nvec"], np.int64).reshape(space["shape"]))
    if kind == "multi_binary":
        shape = space["shape"]
        return gs.MultiBinary(shape[0] if len(shape) == 1 else shape)
    if kind == "dict":
        return gs.Dict({k: to_gymnasium(v) for k, v in space["spaces"].items()})
    return gs.Tuple([to_gymnasium(s) for s in space["spaces"]])


def _dtype_str(dtype: Any) -> str:
    text = np.dtype(dtype).newbyteorder("<").str if np.dtype(dtype).byteorder == ">" else np.dtype(dtype).str
    if text not in ALLOWED_DTYPES:
        raise SpaceError(f"a Box of dtype {dtype} cannot travel: use a numeric dtype")
    return text


def _bound(values: np.ndarray) -> Any:
    """One number if every bound is the same, else a flat list (C order)."""
    flat = np.asarray(values).ravel()
    if flat.size and (flat == flat[0]).all():
        return _number(flat[0])
    return [_number(v) for v in flat]


def _number(v: Any) -> int | float:
    return int(v) if np.issubdtype(type(v), np.integer) else float(v)


def _unbound(bound: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(bound, list):
        return np.array(bound, dtype=np.float64).reshape(shape).astype(dtype)
    return np.full(shape, bound, dtype=np.float64).astype(dtype)


# ---------------------------------------------------------------------------- validation
def validate_space(space: Any, where: str = "space") -> None:
    """Raise :class:`SpaceError` naming what is wrong with a wire map (checked recursively)."""
    if not isinstance(space, dict) or space.get("type") not in TYPES:
        raise SpaceError(f"{where} must be a map with 'type' one of {TYPES}, got {space!r:.80}")
    kind = space["type"]
    if kind == "discrete":
        _need_int(space.get("n"), f"{where}.n", 1)
        if not isinstance(space.get("start", 0), int):
            raise SpaceError(f"{where}.start must be an int")
    elif kind in ("box", "multi_discrete", "multi_binary"):
        shape = space.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SpaceError(f"{where}.shape must be a list of non-negative ints, got {shape!r:.80}")
        size = math.prod(shape)
        if kind == "box":
            if space.get("dtype") not in ALLOWED_DTYPES:
                raise SpaceError(f"{where}.dtype must be one of {sorted(ALLOWED_DTYPES)}")
            for key in ("low", "high"):
                _need_bound(space.get(key), size, f"{where}.{key}")
        elif kind == "multi_discrete":
            nvec = space.get("nvec")
            if not isinstance(nvec, list) or len(nvec) != size:
                raise SpaceError(f"{where}.nvec must be a flat list of {size} ints")
            for i, n in enumerate(nvec):
                _need_int(n, f"{where}.nvec[{i}]", 1)
    elif kind == "dict":
        if not isinstance(space.get("spaces"), dict):
            raise SpaceError(f"{where}.spaces must be a map of spaces")
        for k, v in space["spaces"].items():
            validate_space(v, f"{where}.spaces[{k!r}]")
    else:
        if not isinstance(space.get("spaces"), list):
            raise SpaceError(f"{where}.spaces must be a list of spaces")
        for i, v in enumerate(space["spaces"]):
            validate_space(v, f"{where}.spaces[{i}]")


def _need_int(value: Any, where: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpaceError(f"{where} must be an int >= {minimum}, got {value!r:.40}")


def _need_bound(value: Any, size: int, where: str) -> None:
    if isinstance(value, list):
        if len(value) != size or not all(isinstance(v, (int, float)) for v in value):
            raise SpaceError(f"{where} must be a number or a flat list of {size} numbers")
    elif not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SpaceError(f"{where} must be a number or a flat list of {size} numbers")


# ---------------------------------------------------------------------------- actions
def action_checker(space: Space) -> Checker:
    """A function ``action -> action`` that raises :class:`SpaceError` if it does not fit.

    Compiled once per space so the per-action cost is a few comparisons: ints for
    ``discrete``; arrays (or nested lists) of the right shape and bounds for the array
    kinds, returned as numpy arrays of the space's dtype; maps and lists for dict/tuple.
    """
    validate_space(space)
    return _compile(space)


def _compile(space: Space) -> Checker:
    kind = space["type"]
    if kind == "discrete":
        return _discrete(space["n"], space.get("start", 0))
    if kind == "box":
        return _array(
            space,
            np.dtype(space["dtype"]),
            _unbound(space["low"], tuple(space["shape"]), np.dtype(np.float64)),
            _unbound(space["high"], tuple(space["shape"]), np.dtype(np.float64)),
        )
    if kind == "multi_discrete":
        nvec = np.array(space["nvec"], np.float64).reshape(space["shape"])
        return _array(space, np.dtype(np.int64), np.zeros_like(nvec), nvec - 1)
    if kind == "multi_binary":
        shape = tuple(space["shape"])
        return _array(space, np.dtype(np.int8), np.zeros(shape), np.ones(shape))
    if kind == "dict":
        return _mapping({k: _compile(v) for k, v in space["spaces"].items()})
    return _sequence([_compile(s) for s in space["spaces"]])


def _discrete(n: int, start: int) -> Checker:
    stop = start + n

    def check(action: Any) -> Any:
        if action.__class__ is not int or not start <= action < stop:
            if isinstance(action, np.integer) and start <= int(action) < stop:
                return int(action)
            raise SpaceError(f"action {action!r:.40} is not an int in {start}..{stop - 1}")
        return action

    return check


def _array(space: Space, dtype: np.dtype, low: np.ndarray, high: np.ndarray) -> Checker:
    shape = tuple(space["shape"])
    integral = dtype.kind in "iub"
    name = space["type"]

    def check(action: Any) -> Any:
        try:
            arr = np.asarray(action)
        except (ValueError, TypeError):
            raise SpaceError(f"action {action!r:.40} is not an array ({name} {list(shape)})") from None
        if arr.shape != shape or arr.dtype.kind not in "biuf" or (integral and arr.dtype.kind == "f"):
            raise SpaceError(
                f"action of shape {list(arr.shape)} and dtype {arr.dtype} does not fit "
                f"{name} shape {list(shape)} of {dtype}"
            )
        if not ((arr >= low) & (arr <= high)).all():
            raise SpaceError(f"action {arr.ravel()[:8].tolist()} is outside the {name} bounds")
        return arr.astype(dtype, copy=False)

    return check


def _mapping(checks: dict[str, Checker]) -> Checker:
    def check(action: Any) -> Any:
        if not isinstance(action, dict) or action.keys() != checks.keys():
            raise SpaceError(f"action must be a map with keys {sorted(checks)}, got {action!r:.60}")
        return {k: c(action[k]) for k, c in checks.items()}

    return check


def _sequence(checks: list[Checker]) -> Checker:
    def check(action: Any) -> Any:
        if not isinstance(action, (list, tuple)) or len(action) != len(checks):
            raise SpaceError(f"action must be a list of {len(checks)} values, got {action!r:.60}")
        return tuple(c(a) for c, a in zip(checks, action))

    return check


def contains(space: Space, value: Any) -> bool:
    """True if ``value`` fits ``space`` (for observations: the checker of world authors)."""
    try:
        _compile(space)(value)
    except SpaceError:
        return False
    return True


def plain(value: Any) -> Any:
    """A sampled value made sendable: numpy scalars become Python numbers (arrays stay,
    the codec carries them), tuples lists and maps keep their keys."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


#: ``batch_checker``'s function: (K actions as one array) -> (the array in the space's dtype,
#: a bool mask of the K entries that fit); raises :class:`SpaceError` if the array as a whole
#: cannot hold actions of the space (wrong shape or dtype: every entry is rejected).
BatchChecker = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def batch_checker(space: Space) -> BatchChecker | None:
    """One vectorised check for K actions of ``space`` at once (``discrete``, ``box``,
    ``multi_discrete``, ``multi_binary``); None for ``dict``/``tuple`` (check entry by
    entry). Entry ``i`` fits exactly when :func:`action_checker` would accept ``actions[i]``."""
    validate_space(space)
    kind = space["type"]
    if kind == "discrete":
        start = space.get("start", 0)
        low, high = np.float64(start), np.float64(start + space["n"] - 1)
        return _batch(space, (), np.dtype(np.int64), low, high, kinds="iu")
    if kind in ("dict", "tuple"):
        return None
    shape = tuple(space["shape"])
    dtype: np.dtype[Any]
    if kind == "box":
        dtype = np.dtype(space["dtype"])
        low = _unbound(space["low"], shape, np.dtype(np.float64))
        high = _unbound(space["high"], shape, np.dtype(np.float64))
    elif kind == "multi_discrete":
        dtype = np.dtype(np.int64)
        high = np.array(space["nvec"], np.float64).reshape(shape) - 1
        low = np.zeros_like(high)
    else:
        dtype, low, high = np.dtype(np.int8), np.zeros(shape), np.ones(shape)
    return _batch(space, shape, dtype, low, high)


def _batch(
    space: Space, shape: tuple[int, ...], dtype: np.dtype, low: Any, high: Any, kinds: str = "biuf"
) -> BatchChecker:
    integral = dtype.kind in "iub"
    name = space["type"]
    axes = tuple(range(1, 1 + len(shape)))

    def check(actions: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            arr = np.asarray(actions)
        except (ValueError, TypeError):
            raise SpaceError(f"the actions are not an array of {name} actions") from None
        if arr.ndim != 1 + len(shape) or arr.shape[1:] != shape:
            raise SpaceError(
                f"actions of shape {list(arr.shape)} do not hold {name} actions of shape "
                f"{list(shape)} (expected [K, {', '.join(map(str, shape))}])".replace(", ]", "]")
            )
        if arr.dtype.kind not in kinds or (integral and arr.dtype.kind == "f"):
            raise SpaceError(f"actions of dtype {arr.dtype} do not fit {name} actions of {dtype}")
        inside = (arr >= low) & (arr <= high)
        ok = inside.all(axis=axes) if axes else inside
        return arr.astype(dtype, copy=False), ok

    return check
