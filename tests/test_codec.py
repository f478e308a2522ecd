"""Codec: round-trips of every allowed dtype and hostile input → clear ProtocolErrors."""

import msgpack
import numpy as np
import pytest
from tickwire.protocol import (
    ALLOWED_DTYPES,
    Action,
    Limits,
    ProtocolError,
    State,
    decode,
    decode_payload,
    encode,
    encode_payload,
)
from tickwire.protocol.codec import EXT_FRAME_ARRAY, EXT_INLINE_ARRAY


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (3,), (4, 5), (2, 0, 3)])
def test_every_allowed_dtype_round_trips(dtype, shape):
    arr = (np.arange(int(np.prod(shape))) % 2).astype(dtype).reshape(shape)
    out = decode_payload(encode_payload({"a": arr}))["a"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_large_arrays_travel_as_separate_frames_and_decode_as_views():
    big = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    frames = encode_payload({"big": big, "small": np.arange(3)})
    assert len(frames) == 2 and len(frames[0]) < 200  # header stays small
    assert np.shares_memory(frames[1], big)  # sent without a copy
    out = decode_payload([bytes(f) for f in frames])["big"]
    np.testing.assert_array_equal(out, big)
    assert not out.flags.writeable  # a view of the received frame


def test_non_contiguous_and_big_endian_arrays_round_trip():
    a = np.arange(64, dtype=np.int32).reshape(8, 8)[:, ::3]
    b = np.arange(5, dtype=">f8")
    out = decode_payload(encode_payload([a, b], Limits(inline_array_bytes=0)))
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1], b)
    assert out[1].dtype == np.dtype("<f8")


def test_numpy_scalars_and_nested_structures_round_trip():
    obj = {
        "i": np.int64(7),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "c": np.complex64(1j),
        "nested": [{"x": (1, 2)}, None, b"raw", "text"],
    }
    out = decode_payload(encode_payload(obj))
    assert out["i"] == 7 and out["f"] == 0.5 and out["b"] is True and out["c"] == 1j
    assert out["nested"] == [{"x": [1, 2]}, None, b"raw", "text"]


@pytest.mark.parametrize("value", [object(), np.array(["a"]), np.array([{}], dtype=object), 1 + 2j])
def test_unencodable_values_are_refused_with_a_clear_error(value):
    with pytest.raises(ProtocolError) as e:
        encode_payload({"x": value})
    assert e.value.reason in ("unencodable", "bad_dtype")
    assert "allowed" in str(e.value) or "may hold" in str(e.value) or "cannot encode" in str(e.value)


def _ext(code, meta):
    return msgpack.ExtType(code, msgpack.packb(meta))


def test_map_keys_may_be_numbers_as_well_as_strings():
    """A world's ``{player_id: position}`` travels as it is: int, float, bool, None and bytes
    keys decode to themselves (an unhashable key is rejected, above)."""
    value = {0: [1, 2], "pos": {1: np.arange(3)}, 2.5: None, None: True, b"k": -1}
    back = decode_payload(encode_payload(value))
    assert list(back) == list(value) and back[0] == [1, 2] and back[None] is True
    assert np.array_equal(back["pos"][1], np.arange(3)) and back[2.5] is None and back[b"k"] == -1


@pytest.mark.parametrize(
    "header, frames, reason",
    [
        (b"", [], "malformed"),
        (b"\xc1", [], "malformed"),  # never-used msgpack byte
        (b"\x92\x01", [], "malformed"),  # truncated list
        (msgpack.packb(1) + b"x", [], "malformed"),  # trailing bytes
        (b"\x81\x91\x01\x02", [], "malformed"),  # a map key that is a list (unhashable)
        (msgpack.packb(msgpack.ExtType(9, b"")), [], "bad_ext"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["|O", [1], b"x" * 8])), [], "bad_dtype"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["<f8", [-1], b""])), [], "bad_shape"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["<f8", [2], b"x" * 15])), [], "bad_shape"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["<f8", [1] * 9, b"x" * 8])), [], "bad_shape"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["<f8", [10**12], b""])), [], "oversized"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, ["<f8", [1], 5])), [], "malformed"),
        (msgpack.packb(_ext(EXT_INLINE_ARRAY, "junk")), [], "malformed"),
        (msgpack.packb(_ext(EXT_FRAME_ARRAY, ["|u1", [4], 1])), [], "malformed"),  # no frame 1
        (msgpack.packb(_ext(EXT_FRAME_ARRAY, ["|u1", [4], 1])), [b"abc"], "bad_shape"),
        (msgpack.packb([_ext(EXT_FRAME_ARRAY, ["|u1", [1], 1])] * 2), [b"a"], "malformed"),  # reused
        (msgpack.packb(1), [b"unreferenced"], "malformed"),
        (msgpack.packb("x" * 100), [], "malformed"),  # over max_str_len below
    ],
)
def test_hostile_input_is_rejected_with_a_reason(header, frames, reason):
    limits = Limits(max_str_len=50)
    with pytest.raises(ProtocolError) as e:
        decode_payload([header, *frames] if header or frames else [], limits)
    assert e.value.reason == reason, str(e.value)
    assert str(e.value)  # always says what was wrong


def test_amplification_frames_are_stopped_by_explicit_limits():
    # 1 MB of "empty list" bytes would otherwise allocate a million lists.
    bomb = b"\xdd\x00\x0f\x42\x40" + b"\x90" * 1_000_000
    with pytest.raises(ProtocolError) as e:
        decode_payload([bomb], Limits(max_array_len=1000))
    assert e.value.reason == "malformed" and "limits" in str(e.value)


def test_oversized_header_and_too_many_frames_are_rejected_before_parsing():
    with pytest.raises(ProtocolError, match="over the limit") as e:
        decode_payload([b"\x00" * 101], Limits(max_header_bytes=100))
    assert e.value.reason == "oversized"
    with pytest.raises(ProtocolError, match="frames") as e:
        decode_payload([b"\xc0"] * 10, Limits(max_frames=4))
    assert e.value.reason == "oversized"


def test_deep_nesting_is_rejected_not_crashing():
    deep = b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(ProtocolError):
        decode_payload([deep])


def test_messages_round_trip_with_arrays():
    a = Action(run="r1", tick=5, player=2, seq=9, token="t", payload={"v": np.ones(3)})
    b = decode(encode(a))
    assert (b.run, b.tick, b.player, b.seq, b.token) == ("r1", 5, 2, 9, "t")
    np.testing.assert_array_equal(b.payload["v"], np.ones(3))
    s = decode(encode(State(run="r1", tick=0, payload=np.zeros((300, 300)))))
    assert s.payload.shape == (300, 300)


@pytest.mark.parametrize(
    "body, reason, words",
    [
        ({"v": 99, "kind": "state", "run": "r", "tick": 1}, "version", "version"),
        ({"v": 1, "kind": "nope"}, "malformed", "unknown message kind"),
        ({"v": 1, "kind": "state", "run": "r"}, "malformed", "lacks field 'tick'"),
        ({"v": 1, "kind": "state", "run": "r", "tick": "1"}, "malformed", "tick must be int"),
        ({"v": 1, "kind": "state", "run": "r", "tick": True}, "malformed", "tick must be int"),
        ([1, 2], "malformed", "must be a msgpack map"),
    ],
)
def test_message_validation_names_the_problem(body, reason, words):
    with pytest.raises(ProtocolError) as e:
        decode([msgpack.packb(body)])
    assert e.value.reason == reason and words in str(e.value)
