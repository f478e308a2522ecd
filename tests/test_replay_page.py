"""The replay page (``tickwire replay DIR --html FILE``): built from a real recorded run with
real agent processes, checked as a file (self-contained, escaped) and in a real headless
Chromium (runs without errors, deep links, autoplay, the world's pixels on a screenshot).

Chromium comes from Debian (``apt-get install -y chromium``; ``.ci/run`` installs it): when it
is missing the browser tests are skipped with the reason, except under CI=true, where that is
a failure (as the Docker tests do).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from tickwire.server.record import replay_page
from tickwire.server.record.log import Recorder, TickRecord, read_run, run_header
from tickwire.server.record.replay import replay_run
from tickwire.server.record.replay_page import PageBuilder, embed_json
from tickwire.server.world_server.config import ServerConfig
from tickwire.server.worlds.grid_world import GridWorld
from tickwire.server.worlds.png import png_bytes

from tickwire.cli import main

TESTS = Path(__file__).resolve().parent
HOSTILE = "</script><img src=x onerror=alert(1)>"
PLAYERS, TICKS = 3, 40
RESOURCE = (40, 200, 80)


# ---------------------------------------------------------------------------- helpers
def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "tickwire", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def page_data(html: str) -> dict:
    blocks = re.findall(r'<script type="application/json" id="replay-data">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def chromium(url: str, args: list[str], tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """One bounded headless Chromium run with its own profile; its whole process group is
    killed afterwards, so nothing is left behind even if it hangs."""
    exe = shutil.which("chromium")
    if not exe:
        problem = "chromium is not installed: `apt-get install -y chromium` (Debian; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    profile = tmp_path / f"chromium-{len(list(tmp_path.glob('chromium-*')))}"
    cmd = [
        exe,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        *args,
        url,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {timeout} s") from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, renderer) still around
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def dump_dom(page: Path, fragment: str, tmp_path: Path, budget_ms: int = 3000) -> str:
    got = chromium(page.as_uri() + fragment, [f"--virtual-time-budget={budget_ms}", "--dump-dom"], tmp_path)
    assert got.returncode == 0 and "<html" in got.stdout, got.stderr[-2000:]
    return got.stdout


def root_attr(dom: str, name: str) -> str | None:
    tag = re.search(r"<html[^>]*>", dom).group(0)
    m = re.search(rf'{name}="([^"]*)"', tag)
    return m.group(1) if m else None


def cell(dom: str, player: int, field: str) -> str:
    m = re.search(rf'<td[^>]*id="p{player}-{field}"[^>]*>(.*?)</td>', dom, re.S)
    assert m, f"no cell p{player}-{field}"
    return m.group(1)


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) as an (H, W, 3) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # sub: a running sum per channel
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) & 255
        elif kind == 2:  # up
            cur = (line + prev) & 255
        else:  # average or paeth: each byte depends on the reconstructed one to its left
            cur = _sequential(line.tolist(), prev.tolist(), bpp, kind)
        out[y] = cur
        prev = np.asarray(cur, dtype=np.int64)
    return out.reshape(h, w, bpp)[..., :3]


def _sequential(line: list[int], prev: list[int], bpp: int, kind: int) -> list[int]:
    cur = [0] * len(line)
    for i, x in enumerate(line):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            cur[i] = (x + (a + b) // 2) & 255
            continue
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        cur[i] = (x + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return cur


def player_colours(players: int) -> list[tuple[int, int, int]]:
    """The grid world's player colours (GridWorld.render)."""
    hues = np.linspace(0, 1, players, endpoint=False)
    return [tuple(int(v) for v in (255 * np.array([1 - h, 0.4 + 0.6 * h, h])).astype(np.uint8)) for h in hues]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real run (3 agent processes, deadline mode, a late answer, markup player names)
    recorded, then replayed to a page."""
    work = tmp_path_factory.mktemp("replay-page")
    run = run_cli(
        [
            "run",
            "--agents",
            str(PLAYERS),
            "--ticks",
            str(TICKS),
            "--seed",
            "3",
            "--mode",
            "deadline",
            "--tick-rate",
            "40",
            "--record",
            "rec",
            "--agent",
            "sample_agents:MarkupNamedAgent",
            "--json",
            "-q",
        ],
        work,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    replay = run_cli(["replay", "rec", "--html", "page.html", "--json", "-q"], work)
    assert replay.returncode == 0, replay.stderr[-3000:]
    page = work / "page.html"
    return {
        "dir": work / "rec",
        "page": page,
        "html": page.read_text("utf-8"),
        "summary": json.loads(run.stdout),
        "report": json.loads(replay.stdout),
        "ticks": list(read_run(work / "rec")),
    }


# ---------------------------------------------------------------------------- the file
def test_replay_html_keeps_the_report_and_exit_code_and_names_the_page(recorded):
    report = recorded["report"]
    assert report["identical"] and report["exit_code"] == 0 and report["ticks"] == TICKS
    assert report["html"] == "page.html" and recorded["page"].stat().st_size > 0


def test_the_page_is_self_contained(recorded):
    html = recorded["html"]
    assert not re.search(r"https?://", html), "the page must not reference the network"
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"""url\(\s*['"]?(?!data:)""", html)
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!data:|#)""", html, re.I)


def test_markup_in_a_player_name_is_data_never_markup(recorded):
    html = recorded["html"]
    assert HOSTILE not in html and "<img" not in html and html.count("</script>") == 2
    data = page_data(html)
    assert HOSTILE in data["names"][0].values()  # the exact name, as text, after JSON parsing


def test_embedded_json_cannot_end_its_script_block():
    text = embed_json({"x": "</script><!-- & </SCRIPT>", "y": ["<>"]})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": "</script><!-- & </SCRIPT>", "y": ["<>"]}


def test_every_tick_of_the_record_is_in_the_page_with_its_players(recorded):
    data, ticks = page_data(recorded["html"]), recorded["ticks"]
    cols = data["cols"]
    assert cols["t"] == [t.tick for t in ticks] and data["meta"]["every"] == 1
    assert [[p for p in range(PLAYERS) if p in t.missing] for t in ticks] == cols["m"]
    assert [[[p, n] for p, n in sorted(t.late.items())] for t in ticks] == cols["l"]
    assert data["action_names"] == GridWorld.action_spec["names"]
    assert len(data["frames"]["sheets"]) == 1 and data["frames"]["height"] == 16


def test_late_answers_are_recorded_per_tick_and_add_up_to_the_summary(recorded):
    late = {p["id"]: p["late"] for p in recorded["summary"]["players"]}
    recorded_late = {p: sum(t.late.get(p, 0) for t in recorded["ticks"]) for p in late}
    assert recorded_late == late and late[0] >= 1  # player 0 answered tick 5 after 0.2 s
    assert 5 in {t.tick for t in recorded["ticks"] if 0 in t.missing}


# ---------------------------------------------------------------------------- in Chromium
def test_the_page_runs_in_chromium_and_a_deep_link_shows_that_ticks_values(recorded, tmp_path):
    dom = dump_dom(recorded["page"], "#tick=7", tmp_path)
    assert root_attr(dom, "data-ready") == "1" and root_attr(dom, "data-errors") == ""
    assert root_attr(dom, "data-tick") == "7" and root_attr(dom, "data-drawn") == "7"
    rec = recorded["ticks"][7]
    names = GridWorld.action_spec["names"]
    for p in range(PLAYERS):
        assert cell(dom, p, "action") == f"{names[rec.actions[p]]} ({rec.actions[p]})"
        assert cell(dom, p, "status") == rec.statuses[p]
        assert ("missed" in cell(dom, p, "now")) == (p in rec.missing)
        answered = sum(1 for t in recorded["ticks"][:8] if p in t.actions and p not in t.missing)
        assert cell(dom, p, "answered") == str(answered)
    assert cell(dom, 0, "name") == "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert "<img" not in dom


def test_autoplay_advances_with_virtual_time(recorded, tmp_path):
    dom = dump_dom(recorded["page"], "#play&speed=60", tmp_path, budget_ms=5000)
    assert root_attr(dom, "data-errors") == "" and int(root_attr(dom, "data-tick")) > 10


def test_a_screenshot_shows_the_world(recorded, tmp_path):
    shot = tmp_path / "shot.png"
    got = chromium(
        recorded["page"].as_uri() + "#tick=0",
        [
            "--virtual-time-budget=3000",
            "--window-size=1000,800",
            f"--screenshot={shot}",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ],
        tmp_path,
    )
    assert got.returncode == 0 and shot.exists(), got.stderr[-2000:]
    img = decode_png(shot.read_bytes())
    colours = {tuple(c) for c in np.unique(img.reshape(-1, 3), axis=0)}
    assert RESOURCE in colours, "the grid world's resources are not on the screenshot"
    assert colours & set(player_colours(PLAYERS)), "no player is on the screenshot"
    green = np.all(img == RESOURCE, axis=-1).sum()
    assert green >= 4 * 20 * 20, f"only {green} resource pixels: the grid is not scaled up"


def test_a_world_without_render_gets_a_working_page_that_says_so(tmp_path):
    from counter_world import CounterWorld

    world, cfg = CounterWorld(), ServerConfig(players=2, seed=0, ticks=12)
    rec = Recorder(
        tmp_path / "rec", run_header(world, "counter_world:CounterWorld", cfg, "r", 0), world, 0, 0
    )
    state = world.reset(0, 2)
    for t in range(12):
        state = world.step(state, {0: 1, 1: 2})
        rec.tick(t, {0: 1, 1: 2}, frozenset(), {0: "active", 1: "active"}, state, None, {0: "a", 1: "b"})
    rec.close()
    sys.path.insert(0, str(TESTS))
    try:
        assert main(["replay", str(tmp_path / "rec"), "--html", str(tmp_path / "p.html"), "-q"]) == 0
    finally:
        sys.path.remove(str(TESTS))
    page = tmp_path / "p.html"
    assert page_data(page.read_text())["frames"]["sheets"] == []
    dom = dump_dom(page, "#tick=11", tmp_path)
    assert root_attr(dom, "data-ready") == "1" and root_attr(dom, "data-errors") == ""
    assert re.search(r'<div id="norender">', dom), "the no-render note is hidden"
    assert cell(dom, 1, "score") == "-" and cell(dom, 0, "score") == str(state["total"])


# ---------------------------------------------------------------------------- legend, overlap
@pytest.fixture
def overlap_page(tmp_path: Path) -> Path:
    """A page of a recorded OverlapWorld run: players 0 and 1 share a cell all along."""
    sys.path.insert(0, str(TESTS))
    try:
        from overlap_world import OverlapWorld

        world, cfg = OverlapWorld(), ServerConfig(players=3, seed=0, ticks=5)
        header = run_header(world, "overlap_world:OverlapWorld", cfg, "r", 0)
        rec = Recorder(tmp_path / "rec", header, world, 0, 0)
        state = world.reset(0, 3)
        statuses, names = {p: "active" for p in range(3)}, {0: "ann", 1: "bob", 2: HOSTILE}
        for t in range(5):
            state = world.step(state, {0: 0, 1: 0, 2: 0})
            rec.tick(t, {0: 0, 1: 0, 2: 0}, frozenset(), statuses, state, None, names)
        rec.close()
        assert main(["replay", str(tmp_path / "rec"), "--html", str(tmp_path / "p.html"), "-q"]) == 0
    finally:
        sys.path.remove(str(TESTS))
    return tmp_path / "p.html"


def test_the_page_has_a_legend_of_player_colours_and_names(overlap_page, tmp_path):
    dom = dump_dom(overlap_page, "#tick=2", tmp_path)
    assert root_attr(dom, "data-errors") == ""
    items = re.findall(r'<li data-player="(\d+)" data-colour="(#[0-9a-f]{6})">(.*?)</li>', dom, re.S)
    colours = ["#" + bytes(c).hex() for c in player_colours(3)]
    assert [(int(p), c) for p, c, _ in items] == list(enumerate(colours))
    assert "0 ann" in items[0][2] and "1 bob" in items[1][2]
    assert "&lt;/script&gt;" in items[2][2] and "<img" not in items[2][2]  # a name stays text


def test_players_sharing_a_cell_are_all_visible_on_the_page(overlap_page, tmp_path):
    shot = tmp_path / "shot.png"
    got = chromium(
        overlap_page.as_uri() + "#tick=2",
        [
            "--virtual-time-budget=3000",
            "--window-size=1000,800",
            f"--screenshot={shot}",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ],
        tmp_path,
    )
    assert got.returncode == 0 and shot.exists(), got.stderr[-2000:]
    img = decode_png(shot.read_bytes())
    # the legend's swatches are small (12 px); the shared cell's stripes are big: look for
    # each colour's largest patch by counting pixels in the canvas's rows only
    c0, c1, c2 = player_colours(3)
    on = [np.all(img == c, axis=-1) for c in (c0, c1, c2)]
    assert on[0].sum() > 200 and on[1].sum() > 200, "a player sharing the cell is hidden"
    rows0, cols0 = np.nonzero(on[0])
    rows1, cols1 = np.nonzero(on[1])
    big0 = np.bincount(rows0).argmax()  # a row through player 0's stripe
    assert on[1][big0].any(), "players 0 and 1 are not drawn side by side in their cell"
    assert cols0[rows0 == big0].max() + 1 == cols1[rows1 == big0].min(), "the stripes are not adjacent"
    assert on[2].sum() > 200


# ---------------------------------------------------------------------------- a difference
def _grid_record(directory: Path, ticks: int, tamper_at: int | None = None) -> None:
    world, cfg = GridWorld(), ServerConfig(players=2, seed=5, ticks=ticks)
    rec = Recorder(
        directory,
        run_header(world, "tickwire.server.worlds.grid_world:GridWorld", cfg, "run0", 0),
        world,
        0,
        0,
    )
    state = world.reset(5, 2)
    for t in range(ticks):
        acts = {0: t % 5, 1: (t * 3) % 5}
        state = world.step(state, {0: 0, 1: 0} if t == tamper_at else acts)
        rec.tick(
            t,
            acts,
            frozenset({1}) if t % 3 == 0 else frozenset(),
            {0: "active", 1: "active"},
            state,
            {0: 1} if t % 4 == 1 else None,
        )
    rec.close()


def test_a_page_is_written_when_a_tick_differs_and_marks_it(tmp_path):
    _grid_record(tmp_path / "rec", 30, tamper_at=9)
    code = main(["replay", str(tmp_path / "rec"), "--html", str(tmp_path / "p.html"), "-q"])
    assert code == 8
    data = page_data((tmp_path / "p.html").read_text())
    assert data["meta"]["first_difference"]["tick"] == 9 and not data["meta"]["identical"]
    assert data["cols"]["t"][-1] == 9 and list(data["cols"]["x"]) == ["9"]


# ---------------------------------------------------------------------------- sampling
def _feed(builder: PageBuilder, world: GridWorld, ticks: int, differ_at: int | None = None) -> np.ndarray:
    """Feed ``ticks`` synthetic ticks; returns the exact answered/missed/late totals."""
    state, totals = world.reset(1, 2), np.zeros((2, 3), dtype=np.int64)
    for t in range(ticks):
        acts, missing, late = (
            {0: t % 5, 1: 1},
            frozenset({1}) if t % 7 == 0 else frozenset(),
            ({1: 1} if t % 7 == 1 else {}),
        )
        state = world.step(state, acts)
        digest = world.digest(state)
        rec = TickRecord(
            0,
            "r",
            t,
            acts,
            missing,
            {0: "active", 1: "active"},
            "bad" if t == differ_at else digest,
            late,
            {0: "a", 1: "b"},
        )
        builder.on_step(rec, state, digest)
        totals += [[1, 0, 0], [int(not missing), int(bool(missing)), len(late)]]
    return totals


def test_a_long_run_is_sampled_with_a_doubling_stride_and_exact_totals(monkeypatch):
    monkeypatch.setattr(replay_page, "MAX_ROWS", 100)
    world = GridWorld()
    header = {"players": 2, "config": {"ticks": 1000}}
    builder = PageBuilder(world, header)
    totals = _feed(builder, world, 1000)
    assert builder.cap == 100 and builder.every == 16 and len(builder.rows) <= 101
    shown = [r["t"] for r in builder.rows]
    assert all(t % 16 == 0 for t in shown[:-1]) and shown[-1] == 999  # the last planned tick
    assert builder.rows[-1]["tot"] == totals.tolist()
    assert len(builder.frames) <= len(builder.rows)  # frames no shown tick uses are dropped


def test_a_fixed_stride_is_kept_and_the_differing_tick_is_always_shown():
    world = GridWorld()
    builder = PageBuilder(world, {"players": 2, "config": {"ticks": 500}}, every=50)
    _feed(builder, world, 123, differ_at=123 - 1)
    assert [r["t"] for r in builder.rows] == [0, 50, 100, 122] and builder.every == 50
    assert "x" in builder.rows[-1]


def test_unchanged_frames_are_stored_once():
    world = GridWorld()
    builder = PageBuilder(world, {"players": 2, "config": {"ticks": 50}})
    state = world.reset(0, 2)
    for t in range(50):
        digest = world.digest(state)
        builder.on_step(TickRecord(0, "r", t, {}, frozenset(), {}, digest), state, digest)
    assert len(builder.rows) == 50 and len(builder.frames) == 1


def test_the_frame_sheets_decode_back_to_the_renders():
    world = GridWorld()
    state = world.reset(2, 3)
    img = world.render(state)
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    assert np.array_equal(
        decode_png(png_bytes(np.concatenate([img, img[::-1]]))), np.concatenate([img, img[::-1]])
    )


def test_a_render_hook_breaking_its_contract_is_named():
    class Flat(GridWorld):
        def render(self, state):
            return np.zeros((4, 4), dtype=np.uint8)

    world = Flat()
    state = world.reset(0, 1)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        replay_page.frame_of(world, state)


def test_replay_run_hands_every_stepped_tick_to_on_step(tmp_path):
    _grid_record(tmp_path, 12)
    seen = []
    report = replay_run(
        tmp_path,
        GridWorld(),
        on_step=lambda rec, state, h: seen.append((rec.tick, h == rec.state_hash, int(state["tick"]))),
    )
    assert report.identical and seen == [(t, True, t + 1) for t in range(12)]


def test_the_readme_replay_page_block_runs_as_printed(tmp_path):
    from test_readme import block_with, command_lines

    lines = command_lines(block_with("bash", "--html run1.html"))
    assert [argv[:2] for argv in lines] == [["tickwire", "run"], ["tickwire", "replay"]]
    for argv in lines:
        done = run_cli(argv[1:], tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    data = page_data((tmp_path / "run1.html").read_text())
    assert data["meta"]["identical"] and len(data["cols"]["t"]) == 1000


def test_a_resumed_run_shows_both_epochs_and_each_epochs_first_tick(tmp_path):
    _grid_record(tmp_path, 10)  # epoch 0: ticks 0..9 (planned 10; one more epoch appended)
    world, cfg = GridWorld(), ServerConfig(players=2, seed=5, ticks=25)
    rec = Recorder(
        tmp_path,
        run_header(world, "tickwire.server.worlds.grid_world:GridWorld", cfg, "run1", 1, 10, "run0"),
        world,
        0,
        0,
    )
    state = world.reset(5, 2)
    for t in range(10):
        state = world.step(state, {0: t % 5, 1: (t * 3) % 5})
    for t in range(10, 25):
        state = world.step(state, {0: 1, 1: 2})
        rec.tick(t, {0: 1, 1: 2}, frozenset(), {0: "active", 1: "dead"} if t == 10 else None, state)
    rec.close()
    builder = PageBuilder(GridWorld(), {"players": 2, "config": {"ticks": 25}}, every=8)
    report = replay_run(tmp_path, builder.world, on_step=builder.on_step)
    assert report.identical and report.epochs == 2
    assert [(r["t"], r["e"]) for r in builder.rows] == [(0, 0), (8, 0), (10, 1), (16, 1), (24, 1)]
    data = builder.data(report)
    assert data["meta"]["runs"] == ["run0", "run1"] and data["cols"]["st"][-1] == 1
    assert data["statuses"][1] == {"0": "active", "1": "dead"}


def test_html_every_without_html_is_a_usage_error(tmp_path, capsys):
    _grid_record(tmp_path, 3)
    assert main(["replay", str(tmp_path), "--html-every", "5"]) == 2
    assert "add --html FILE" in capsys.readouterr().err


def test_actions_and_scores_of_any_shape_become_short_json_safe_values():
    assert replay_page.action_text(np.int64(3)) == 3 and replay_page.action_text(None) is None
    assert replay_page.action_text(np.arange(100)).endswith("…")
    assert len(replay_page.action_text(np.arange(100))) == replay_page.MAX_ACTION_CHARS
    assert replay_page.action_text(float("inf")) == "inf"
    assert replay_page._number(np.float32(2.5)) == 2.5 and replay_page._number(4.0) == 4
    assert replay_page._number("high") == "high"
    json.dumps([replay_page.action_text({"k": b"\x00"}), replay_page._number(float("nan"))], allow_nan=False)
