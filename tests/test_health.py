"""``python -m tickwire.health``: the healthcheck that reads /proc and never connects.

Against a real keyed server process: healthy while it serves, unhealthy while it is stopped
(SIGSTOP) or gone, and never counted as a failed handshake (a plaintext connect is).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from support.events import event, wait_event
from support.keyring import keyring, server_flags
from tickwire.protocol import ConfigError

from tickwire.health import control_port, listening_inodes, process_state

HEALTH = [sys.executable, "-m", "tickwire.health"]

# /proc/net/tcp: a listener on 0.0.0.0:5557 (0x15B5) and a connection from port 5557
TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:15B5 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001 0 4242 1 0
   1: 0100007F:15B5 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 10001 0 4343 1 0
   2: 00000000:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001 0 4444 1 0
"""


def test_only_listening_sockets_on_the_control_port_count():
    assert listening_inodes(TABLE, 5557) == {4242}
    assert listening_inodes(TABLE, 5556) == set()


def test_the_state_letter_follows_the_last_parenthesis():
    assert process_state("1 (tick (wire) x) T 0 1 1") == "T"


@pytest.mark.parametrize("base", ["ipc:///tmp/tw", "tcp://0.0.0.0:0", "nonsense"])
def test_addresses_it_cannot_check_are_refused_with_what_to_pass(base):
    with pytest.raises(ConfigError):
        control_port(base)


def health(base: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HEALTH, base], capture_output=True, text=True, timeout=30)


def test_healthy_while_serving_unhealthy_when_stopped_and_never_counted(procs, tmp_path):
    keys = keyring(tmp_path)
    events = tmp_path / "events.jsonl"
    server = procs(
        [
            "-m",
            "tickwire.server",
            "--bind",
            "tcp://127.0.0.1:0",
            "--players",
            "1",
            "--lobby-timeout",
            "600",
            "--json",
            "-q",
            "--events",
            str(events),
            *server_flags(keys),
        ],
        name="server",
    )
    base = wait_event(events, event("listening"), server)["base"]
    for _ in range(5):
        ok = health(base)
        assert ok.returncode == 0, ok.stderr
    os.kill(server.pid, signal.SIGSTOP)
    try:
        stopped = health(base)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert stopped.returncode == 1 and "stopped" in stopped.stderr, stopped.stderr
    assert health(base).returncode == 0
    server.popen.send_signal(signal.SIGTERM)
    server.wait(30)
    summary = json.loads(server.stdout)
    assert "auth_failed" not in {k for k, v in summary["rejected"].items() if v}, summary
    gone = health(base)
    assert gone.returncode == 1 and "nothing listens" in gone.stderr, gone.stderr
