"""An agent host's per-tick path with many seats: the ACTION_ARRAY encoder (the frames of
``encode`` and the verdict of the decode check, without decoding), the readiness set over
many control sockets (real ZeroMQ sockets), the rules' counting, and a real run in which
one seat of many gets an ERROR mid-run."""

from __future__ import annotations

import select
import threading
import time

import numpy as np
import pytest
import zmq
from support.agent_rules_builders import playing, state
from tickwire.agents import BatchAgent, run
from tickwire.plumbing.readiness import ReadySet
from tickwire.protocol import ActionArray, ProtocolError, decode, encode
from tickwire.protocol.action_encoder import ActionArrayEncoder
from tickwire.protocol.limits import ACTION_LIMITS, DEFAULT_LIMITS, MAX_ACTION_FRAME
from tickwire.server import GridWorld, ServerConfig, WorldServer


def tokens(k: int) -> list[str]:
    return [f"{i:016x}" for i in range(k)]  # 16 characters, as the server's


def frames_bytes(frames) -> list[bytes]:
    return [bytes(memoryview(f)) for f in frames]


# ---------------------------------------------------------------------------- encoder
@pytest.mark.parametrize(
    "k, actions",
    [
        (1, lambda k: np.array([3], np.int64)),
        (3, lambda k: np.array([[0.5, 1], [2, 3], [4, 5]], np.float32)),  # a box, 2-D
        (300, lambda k: np.arange(k, dtype=np.int64) % 5),  # header over 4 KiB
        (300, lambda k: np.arange(k, dtype=">i4")),  # big-endian: sent little-endian
        (300, lambda k: np.arange(2 * k, dtype=np.uint8)[::2]),  # not contiguous
        (300, lambda k: np.zeros((k, 40), np.float64)),  # 96,000 bytes: its own frame
        (9000, lambda k: np.ones(k, np.int8)),  # 72,000 bytes of ids: their own frame
        (4, lambda k: [1, "x", None, [2]]),  # not an array: encoded and checked as before
    ],
)
def test_encoder_gives_the_frames_of_encode_tick_after_tick(k, actions):
    players = np.arange(100, 100 + k, dtype=np.int64)
    toks = tokens(k)
    # the layout, under limits wide enough for every case (the server's: the next test)
    encoder = ActionArrayEncoder("r1", players, toks, DEFAULT_LIMITS, max_frame=2**30)
    for tick, seq in [(0, 1), (127, 128), (70_000, 2**33)]:  # msgpack int widths
        msg = ActionArray("r1", tick, seq, players, toks, actions(k))
        assert encoder.fits(msg)
        frames = encoder.encode(msg)
        assert frames_bytes(frames) == frames_bytes(encode(msg))
        back = decode(frames)
        assert (back.tick, back.seq, back.tokens) == (tick, seq, toks)
        np.testing.assert_array_equal(back.players, players)
    assert not encoder.fits(ActionArray("r1", 0, 1, players.copy(), toks, actions(k)))
    assert not encoder.fits(ActionArray("r2", 0, 1, players, toks, actions(k)))


def test_encoder_takes_columns_of_numpy_scalars_as_encode_does():
    players = [np.int64(3), np.int32(4)]  # a list, as ActionArray allows
    msg = ActionArray("r1", 1, 2, players, ["a", "b"], np.array([1, 2]))
    encoder = ActionArrayEncoder("r1", players, ["a", "b"])
    assert frames_bytes(encoder.encode(msg)) == frames_bytes(encode(msg))


@pytest.mark.parametrize(
    "k, actions, token_len",
    [
        (500, np.zeros(500, np.int64), 16),  # fine
        (500, np.zeros((500, 80), np.float64), 16),  # 320,000 bytes: over the frame cap
        (500, np.zeros((500, 16), np.float64), 16),  # 64,000 bytes inline: fine
        (2, np.zeros((2,) + (1,) * 8, np.int8), 16),  # 9 dimensions
        (10_001, np.zeros(10_001, np.int8), 4),  # more tokens than a list may hold
        (5_900, np.zeros(5_900, np.int8), 16),  # a header over 96 KiB
        (2, np.zeros(2, np.int8), 70_000),  # a token over the string limit
    ],
)
def test_encoder_refuses_exactly_what_the_server_refuses(k, actions, token_len):
    players = np.arange(k, dtype=np.int64)
    toks = ["t" * token_len] * k
    msg = ActionArray("r1", 5, 6, players, toks, actions)
    frames = encode(msg)
    try:  # what the server's actions socket does: cut a frame over its cap, decode the rest
        assert max(memoryview(f).nbytes for f in frames) <= MAX_ACTION_FRAME
        decode(frames, ACTION_LIMITS)
        refused = False
    except (AssertionError, ProtocolError):
        refused = True
    encoder = ActionArrayEncoder("r1", players, toks)
    if not refused:
        assert frames_bytes(encoder.encode(msg)) == frames_bytes(encode(msg))
    else:
        with pytest.raises(ProtocolError):
            encoder.encode(msg)


# ---------------------------------------------------------------------------- readiness
@pytest.fixture
def dealers(zctx, ipc_base):
    """A ROUTER and 300 DEALERs connected to it, each having said hello (so the ROUTER
    knows their identities); (router, dealers)."""
    router = zctx.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(ipc_base)
    socks = []
    for i in range(300):
        d = zctx.socket(zmq.DEALER)
        d.linger = 0
        d.setsockopt(zmq.ROUTING_ID, b"d%d" % i)
        d.connect(ipc_base)
        d.send(b"hello")
        socks.append(d)
    for _ in socks:
        assert router.poll(10_000)
        router.recv_multipart()
    return router, socks


def test_ready_set_reports_only_the_sockets_with_a_message_until_they_are_read(dealers):
    router, socks = dealers
    watch = ReadySet(socks)
    try:
        assert watch.ready(0) == []
        for i in (7, 150, 299):
            router.send_multipart([b"d%d" % i, b"news"])
        seen: list[int] = []
        deadline = time.monotonic() + 20  # bounded: they arrive within a few waits
        while len(seen) < 3 and time.monotonic() < deadline:
            for i in watch.ready(5.0):
                assert socks[i].recv(zmq.NOBLOCK) == b"news"
                seen.append(i)
        assert sorted(seen) == [7, 150, 299]
        assert watch.ready(0) == []
        router.send_multipart([b"d150", b"again"])
        while not (got := watch.ready(5.0)) and time.monotonic() < deadline:
            pass
        assert got == [150]
        assert watch.ready(0) == [150]  # not read yet: still reported
        assert socks[150].recv(zmq.NOBLOCK) == b"again"
        assert watch.ready(0) == []
    finally:
        watch.close()


def test_ready_set_wakes_for_a_message_sent_while_it_waits(dealers):
    router, socks = dealers
    watch = ReadySet(socks)
    try:
        assert watch.ready(0) == []
        sender = threading.Thread(target=lambda: router.send_multipart([b"d42", b"late"]))
        sender.start()
        got: list[int] = []
        for _ in range(100):  # a wake for something else returns early and empty
            got = watch.ready(10.0)
            if got:
                break
        sender.join(10)
        assert got == [42] and socks[42].recv() == b"late"
    finally:
        watch.close()


def test_ready_set_still_sees_a_message_whose_signal_a_send_consumed(dealers):
    router, socks = dealers
    watch = ReadySet(socks)
    try:
        assert watch.ready(0) == []
        router.send_multipart([b"d9", b"answer"])
        fd = socks[9].getsockopt(zmq.FD)
        assert select.select([fd], [], [], 10.0)[0] == [fd]  # the message is signalled
        socks[9].send(b"question")  # libzmq may take in the signal here
        watch.touched(9)
        assert watch.ready(0) == [9] and socks[9].recv() == b"answer"
    finally:
        watch.close()


# ---------------------------------------------------------------------------- rules
def test_rules_count_every_seats_ticks_once_per_tick_and_subsets_apart():
    r = playing(3)
    for tick in range(5):
        r.states_received([state(tick)], 101.0)
        r.acted_array(tick, np.zeros(3, np.int64))
    assert [x.ticks for x in r.results] == [5, 5, 5]
    r.states_received([state(5)], 101.0)
    r.acted_array(5, np.zeros(2, np.int64), acting=[0, 2])
    r.states_received([state(9)], 101.0)  # ticks 6..8 never seen: skipped by all
    r.acted_array(9, np.zeros(3, np.int64))
    assert [(x.ticks, x.skipped) for x in r.results] == [(7, 3), (6, 3), (7, 3)]


# ---------------------------------------------------------------------------- a real run
class OneBadSeat(BatchAgent):
    """Valid moves, except seat 50's at tick 5 (9 is no move): the server tells that seat."""

    def act_batch(self, observations):
        actions = (observations["tick"] + self.player_ids) % 5
        if self.tick == 5:
            actions[50] = 9
        return actions


def test_a_control_message_to_one_seat_of_many_is_read_during_play(ipc_base):
    server = WorldServer(GridWorld(), ServerConfig(bind=ipc_base, players=64, ticks=30))
    summary: dict = {}
    thread = threading.Thread(target=lambda: summary.update(server.run()), daemon=True)
    thread.start()
    try:
        results = run(OneBadSeat(), ipc_base, count=64, handle_signals=False, join_timeout_s=60)
    finally:
        server.stop("test over")
        thread.join(30)
    assert not thread.is_alive()
    assert [r.ticks for r in results] == [30] * 64
    bad = results[50]
    assert len(bad.errors) == 1 and "tick 5" in bad.errors[0], bad.errors
    assert all(not r.errors for i, r in enumerate(results) if i != 50)
    assert summary["rejected"] == {"invalid_action": 1}, summary["rejected"]
