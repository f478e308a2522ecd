"""The wire form of spaces (tickwire.protocol.spaces): Gymnasium round trips, malformed maps,
and the compiled action checks."""

from __future__ import annotations

import gymnasium.spaces as gs
import numpy as np
import pytest
from tickwire.protocol.spaces import SpaceError, action_checker, contains, from_gymnasium, to_gymnasium

SPACES = [
    gs.Discrete(5),
    gs.Discrete(3, start=-1),
    gs.Box(-1.0, 1.0, (2, 3), np.float32),
    gs.Box(np.array([0, -np.inf], np.float64), np.array([1, np.inf]), dtype=np.float64),
    gs.Box(0, 255, (4,), np.uint8),
    gs.MultiDiscrete([3, 4, 5]),
    gs.MultiBinary(4),
    gs.MultiBinary([2, 2]),
    gs.Dict({"a": gs.Discrete(2), "b": gs.Box(0, 1, (1,))}),
    gs.Tuple([gs.Discrete(2), gs.MultiBinary(3)]),
]


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_gymnasium_spaces_round_trip_through_the_wire_form(space):
    wire = from_gymnasium(space)
    assert to_gymnasium(wire) == space
    space.seed(1)
    sample = space.sample()
    assert contains(wire, sample)


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_the_wire_form_survives_msgpack(space):
    from tickwire.protocol import State, decode, encode

    wire = from_gymnasium(space)
    assert decode(encode(State("r", 0, wire))).payload == wire


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"type": "discrete"}, "n must be an int"),
        ({"type": "nope"}, "type"),
        ({"type": "box", "dtype": "<f4", "shape": [2], "low": [0.0], "high": 1.0}, "flat list of 2"),
        ({"type": "box", "dtype": "object", "shape": [2], "low": 0, "high": 1}, "dtype"),
        ({"type": "multi_discrete", "nvec": [2, 0], "shape": [2]}, "nvec[1]"),
        ({"type": "dict", "spaces": {"a": {"type": "discrete", "n": -1}}}, "spaces['a'].n"),
        ("discrete", "must be a map"),
    ],
)
def test_malformed_space_maps_are_refused_with_the_reason(bad, words):
    with pytest.raises(SpaceError, match=words.replace("[", r"\[").replace("]", r"\]")):
        action_checker(bad)


def test_discrete_checks_type_and_range():
    check = action_checker({"type": "discrete", "n": 3, "start": 1})
    assert check(1) == 1 and check(np.int64(3)) == 3
    for bad in (0, 4, 1.0, True, [1], None):
        with pytest.raises(SpaceError):
            check(bad)


def test_box_checks_shape_bounds_and_converts_to_its_dtype():
    check = action_checker(from_gymnasium(gs.Box(-1.0, 1.0, (2,), np.float32)))
    out = check([0.5, -1])
    assert out.dtype == np.float32 and out.tolist() == [0.5, -1.0]
    for bad in ([0.5], [2.0, 0.0], [np.nan, 0.0], "ab", {"x": 1}):
        with pytest.raises(SpaceError):
            check(bad)


def test_integer_spaces_refuse_floats():
    with pytest.raises(SpaceError):
        action_checker(from_gymnasium(gs.MultiDiscrete([3, 3])))(np.array([1.0, 2.0]))
    with pytest.raises(SpaceError):
        action_checker(from_gymnasium(gs.MultiBinary(2)))([0, 2])


def test_dict_and_tuple_check_every_part():
    check = action_checker(from_gymnasium(SPACES[-2]))
    assert check({"a": 1, "b": [0.5]})["a"] == 1
    with pytest.raises(SpaceError):
        check({"a": 1})
    tcheck = action_checker(from_gymnasium(SPACES[-1]))
    assert tcheck([1, [0, 1, 1]])[0] == 1
    with pytest.raises(SpaceError):
        tcheck([1])
