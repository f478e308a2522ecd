"""docker-compose for real: a server container and agent containers on the default world.

Needs a Docker daemon (.ci/run installs and starts one). Without one the tests are skipped
with the reason, except under CI=true, where that is a failure. The base image is a local
stand-in for python:3.x-slim built from Debian packages (docker/build-base-image.sh),
built once and cached by tag; pip inside `docker build` uses a host-built wheelhouse.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "tickwire-base:py3"
#: per checkout: several checkouts may share one Docker daemon, and each tests its own code
IMAGE = f"tickwire:test-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}"


def _run(args: list[str], timeout: float = 300, check: bool = True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and out.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        )
    return out


def _compose_command() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="session")
def compose_cmd() -> list[str]:
    problem = None
    if not shutil.which("docker"):
        problem = "the docker client is not installed"
    elif subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        problem = "no Docker daemon is running (start dockerd; .ci/run does)"
    elif _compose_command() is None:
        problem = "neither `docker compose` nor `docker-compose` is installed"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker tests cannot run in CI: {problem}")
        pytest.skip(problem)
    return _compose_command()


@pytest.fixture(scope="session")
def image(compose_cmd: list[str]) -> str:
    """Base image (cached by tag), host wheelhouse, then the tickwire image."""
    _run(["bash", str(ROOT / "docker/build-base-image.sh"), BASE_IMAGE], timeout=1200)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--wheel-dir",
            str(ROOT / "docker/wheels"),
            "pyzmq",
            "msgpack",
            "numpy",
            "prometheus-client",
            "setuptools>=64",
            "wheel",
        ],
        timeout=600,
    )
    _run(
        [
            "docker",
            "build",
            "-q",
            "-t",
            IMAGE,
            "--build-arg",
            f"PYTHON_IMAGE={BASE_IMAGE}",
            "--build-arg",
            "PIP_ARGS=--no-index --find-links /wheels",
            str(ROOT),
        ],
        timeout=900,
    )
    return IMAGE


# ---------------------------------------------------------------------- build context
def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().lstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex: '*' and '?' stop at '/', '**' crosses it."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            c = pattern[i]
            out, i = out + {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories
    decides ('!' re-includes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for pattern in patterns:
        rx = _pattern_regex(pattern.lstrip("!"))
        if any(rx.fullmatch(prefix) for prefix in prefixes):
            verdict = not pattern.startswith("!")
    return verdict


def _readme_made_dirs() -> set[str]:
    """Directories the shell blocks of the README and the docs create: virtualenvs, key and
    allow directories, run records, pip download targets."""
    from support.doc_blocks import all_text

    readme = all_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    found = set()
    word = r"([^\s;&|]+)"  # up to the end of the shell word
    for flag in ("-m venv", "--dir", "mkdir -p", "--record", "--dest"):
        for block in blocks:
            found |= {d.rstrip("/") for d in re.findall(f"{flag} {word}", block)}
    return {d for d in found if not d.startswith(("/", "$", "~"))}


def _dockerfile_copies() -> set[str]:
    text = (ROOT / "Dockerfile").read_text()
    return {
        src.rstrip("/")
        for line in re.findall(r"^COPY (?!--from)(.*)$", text, re.M)
        for src in line.split()[:-1]
    }


def test_the_build_context_leaves_out_what_the_readme_makes_and_keeps_what_is_built():
    patterns = _ignore_patterns()
    made = _readme_made_dirs()
    needed = _dockerfile_copies()
    assert {".venv", "keys", "allow"} <= made  # the parser still finds them
    left_in = sorted(d for d in made - needed if not _ignored(d, patterns))
    assert not left_in, f"add these to .dockerignore (the README's commands create them): {left_in}"
    assert not [d for d in needed if _ignored(d, patterns)], needed
    assert _ignored(".venv/lib/python3.12/site-packages/numpy/core.so", patterns)
    assert _ignored("server/__pycache__/loop.cpython-312.pyc", patterns)
    assert not _ignored("server/world_server/loop.py", patterns)


def test_the_image_gets_every_folder_the_package_installs_from():
    """pyproject's package-dir maps tickwire.* onto top-level folders: each must be COPYed."""
    section = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-dir]")[1]
    section = section.split("\n[")[0]
    folders = {v.split("/")[0] for v in re.findall(r'^"[^"]+" = "([^"]+)"', section, re.MULTILINE)}
    assert {"tickwire", "protocol", "plumbing", "server", "agents"} <= folders
    missing = sorted(folders - _dockerfile_copies())
    assert not missing, f"add COPY lines to the Dockerfile for: {missing}"


class Compose:
    """One compose project (unique name), torn down with everything in it."""

    def __init__(self, cmd: list[str], image: str, env: dict[str, str], files: list[str]) -> None:
        self.cmd = cmd
        self.project = f"twt{uuid.uuid4().hex[:8]}"
        self.files = [a for f in files for a in ("-f", str(ROOT / f))]
        self.env = {
            **os.environ,
            "TICKWIRE_IMAGE": image,
            "PYTHON_IMAGE": BASE_IMAGE,
            "PIP_ARGS": "--no-index --find-links /wheels",
            "TICKWIRE_JSON": "1",
            **env,
        }

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return _run(
            [*self.cmd, "-p", self.project, *self.files, *args],
            timeout=timeout,
            check=check,
            env=self.env,
            cwd=ROOT,
        )

    def containers(self, service: str) -> list[str]:
        return self("ps", "-q", service).stdout.split()

    def logs(self, container: str) -> tuple[str, str]:
        out = _run(["docker", "logs", container])
        return out.stdout, out.stderr

    def wait_exit(self, container: str, timeout: float) -> int:
        return int(_run(["docker", "wait", container], timeout=timeout).stdout.strip())

    def summary(self, timeout: float = 180) -> dict:
        (server,) = self.containers("server")
        code = self.wait_exit(server, timeout)
        out, err = self.logs(server)
        assert code == 0, f"server exited {code}:\n{err[-3000:]}"
        return json.loads(out.strip().splitlines()[-1])

    def down(self) -> None:
        self("down", "-v", "-t", "2", "--remove-orphans", timeout=120, check=False)


@pytest.fixture
def compose(compose_cmd, image):
    projects: list[Compose] = []

    def make(env: dict[str, str] | None = None, files: tuple[str, ...] = ("docker-compose.yml",)) -> Compose:
        c = Compose(compose_cmd, image, env or {}, list(files))
        projects.append(c)
        return c

    yield make
    for c in projects:
        c.down()


def test_compose_up_with_four_agent_replicas_every_tick_answered(compose):
    c = compose({"TICKWIRE_PLAYERS": "4", "TICKWIRE_TICKS": "300"})
    c("up", "-d", "--no-build", "--scale", "agent=4")
    s = c.summary()
    assert s["ticks"] == 300 and len(s["players"]) == 4
    assert all(p["answered"] == 300 and p["missed"] == 0 for p in s["players"])
    agents = c.containers("agent")
    assert len(agents) == 4 and all(c.wait_exit(a, 30) == 0 for a in agents)
    user = _run(["docker", "inspect", "-f", "{{.Config.User}}", agents[0]]).stdout.strip()
    assert user == "tickwire"  # not root
    # players are named after their containers (Docker sets the hostname to the short id)
    hostnames = {_run(["docker", "inspect", "-f", "{{.Config.Hostname}}", a]).stdout.strip() for a in agents}
    assert {p["name"] for p in s["players"]} == hostnames
    # the summary was also written to the compose volume, the same object as on stdout
    (server,) = c.containers("server")
    copied = _run(["docker", "cp", f"{server}:/data/summary.json", "-"]).stdout
    assert json.loads(copied[copied.index("{") : copied.rindex("}") + 1]) == s


def test_compose_runs_with_keys_and_an_agent_without_them_gets_nothing(compose):
    c = compose({"TICKWIRE_PLAYERS": "2", "TICKWIRE_TICKS": "200"})
    c("up", "-d", "--no-build", "--scale", "agent=0")  # the keys service, then the server
    keyless = c(
        "run",
        "--rm",
        "-e",
        "TICKWIRE_KEY=",
        "-e",
        "TICKWIRE_SERVER_KEY=",
        "-e",
        "TICKWIRE_JOIN_TIMEOUT=3",
        "agent",
        check=False,
    )
    assert keyless.returncode != 0 and "no WELCOME" in keyless.stderr, keyless.stderr[-2000:]
    c("up", "-d", "--no-build", "--scale", "agent=2")
    s = c.summary()
    assert s["ticks"] == 200 and all(p["answered"] == 200 for p in s["players"])
    assert s["rejected"].get("auth_failed", 0) >= 1, s["rejected"]
    (server,) = c.containers("server")
    assert "with CURVE keys (1 allowed)" in c.logs(server)[1]


def _health(container: str) -> dict:
    return json.loads(_run(["docker", "inspect", "-f", "{{json .State.Health}}", container]).stdout)


def _run_healthcheck(container: str) -> subprocess.CompletedProcess:
    """Run the container's own healthcheck command once, now (as Docker would)."""
    test = json.loads(
        _run(["docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", container]).stdout
    )
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    return _run(["docker", "exec", container, *argv], timeout=30, check=False)


def test_the_server_reports_healthy_and_its_healthcheck_is_no_failed_handshake(compose):
    """A keyed run, healthy after several checks, and none of them counted as auth_failed;
    a stopped (SIGSTOP) server is unhealthy, which a TCP connect did not tell."""
    c = compose({"TICKWIRE_PLAYERS": "1", "TICKWIRE_TICKS": "100000000"})
    c("up", "-d", "--no-build", "--scale", "agent=1")
    (server,) = c.containers("server")
    deadline = time.monotonic() + 90
    health = _health(server)
    while time.monotonic() < deadline:  # Docker keeps the last 5 results: 5 checks passed
        health = _health(server)
        if health["Status"] == "healthy" and len(health["Log"]) >= 5:
            break
        time.sleep(0.5)  # the healthcheck runs on Docker's own schedule
    else:
        raise AssertionError(f"server not healthy 5 times within 90 s: {health}")
    # the compose file serves Prometheus metrics on port 9100 of the compose network
    scrape = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:9100/metrics', timeout=10).read().decode())"
    )
    text = _run(["docker", "exec", server, "python", "-c", scrape]).stdout
    assert "tickwire_ticks_total" in text and 'tickwire_rejected_total{reason="malformed"} 0.0' in text
    _run(["docker", "kill", "-s", "STOP", server])
    try:
        stopped = _run_healthcheck(server)
    finally:
        _run(["docker", "kill", "-s", "CONT", server])
    assert stopped.returncode != 0 and "stopped" in stopped.stderr, stopped
    assert _run_healthcheck(server).returncode == 0
    c("stop", "-t", "10", "server")
    out, err = c.logs(server)
    s = json.loads(out.strip().splitlines()[-1])
    assert s["ticks"] > 0 and s["reason"] == "signal SIGTERM", (s["reason"], err[-2000:])
    assert not s["rejected"].get("auth_failed"), s["rejected"]  # 5+ health checks ran
    assert "with CURVE keys (1 allowed)" in err


def test_deadline_mode_survives_a_killed_agent_container(compose, tmp_path):
    # agents that take 10 ms a tick: the 1,000 ticks last >= 10 s, so the kill lands mid-run
    # even when the started event is read late (docker cp on a loaded machine takes seconds;
    # 3,000 instant ticks were once over before the kill: "Container ... is not running")
    ticks = 1000
    c = compose(
        {
            "TICKWIRE_PLAYERS": "3",
            "TICKWIRE_TICKS": str(ticks),
            "TICKWIRE_MODE": "deadline",
            "TICKWIRE_DEADLINE_MS": "200",
            "TICKWIRE_AGENT": "tickwire.agents.examples.slow_agent:SlowAgent",
            "TICKWIRE_SLOW_MS": "10",
        },
        files=("docker-compose.yml", _with_server_events(tmp_path)),
    )
    c("up", "-d", "--no-build", "--scale", "agent=3")
    (server,) = c.containers("server")
    _wait_server_event(server, lambda e: e["event"] == "started")
    victim = c.containers("agent")[0]
    _run(["docker", "kill", victim])
    s = c.summary()
    assert s["ticks"] == ticks and s["reason"] == "ticks done"
    dead = [p for p in s["players"] if p["status"] == "dead"]
    assert len(dead) == 1 and dead[0]["answered"] < ticks
    assert all(p["answered"] == ticks for p in s["players"] if p["status"] != "dead")


EVENTS_IN_SERVER = "/tmp/events.jsonl"


def _with_server_events(tmp_path: Path) -> str:
    """A compose override that makes the server write its --events file inside its container."""
    override = tmp_path / "events.override.yml"
    override.write_text(
        f'version: "3.8"\nservices:\n  server:\n    environment:\n      TICKWIRE_EVENTS: {EVENTS_IN_SERVER}\n'
    )
    return str(override)


def _server_events(container: str) -> list[dict]:
    """The server container's events so far (also after it exited: docker cp)."""
    out = subprocess.run(
        ["docker", "cp", f"{container}:{EVENTS_IN_SERVER}", "-"], capture_output=True, timeout=60
    )  # a tar stream: bytes, not text
    if out.returncode != 0:
        return []  # not written yet
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        text = tar.extractfile(tar.getmembers()[0]).read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _wait_server_event(container: str, match, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in _server_events(container):
            if match(e):
                return e
        time.sleep(0.2)  # polling the events file: the container gives no other signal
    raise AssertionError(f"no matching event from {container} within {timeout} s")


def test_a_paused_agent_is_counted_late_then_answers_again(compose, tmp_path):
    c = compose(
        {
            "TICKWIRE_PLAYERS": "3",
            "TICKWIRE_TICKS": "1000",
            "TICKWIRE_MODE": "deadline",
            "TICKWIRE_DEADLINE_MS": "100",
            "TICKWIRE_SLOW_MS": "5",
            "TICKWIRE_AGENT": "tickwire.agents.examples.slow_agent:SlowAgent",
        },
        files=("docker-compose.yml", _with_server_events(tmp_path)),
    )
    c("up", "-d", "--no-build", "--scale", "agent=3")
    (server,) = c.containers("server")
    _wait_server_event(server, lambda e: e["event"] == "started")
    victim = c.containers("agent")[0]
    # the victim's player is named after its container's hostname: follow that player (on a
    # loaded machine another one may be struck for a moment too, and answer late or not)
    name = _run(["docker", "inspect", "-f", "{{.Config.Hostname}}", victim]).stdout.strip()
    _run(["docker", "pause", victim])
    try:  # struck after 3 missed deadlines: inactive, no longer waited for
        struck = _wait_server_event(
            server,
            lambda e: e["event"] == "player" and e["new"] == "inactive" and e["name"] == name,
            timeout=30,
        )
        time.sleep(1.0)  # the fault itself: stay frozen a while (shorter than the 4 s heartbeat)
    finally:
        _run(["docker", "unpause", victim])
    s = c.summary()
    assert s["ticks"] == 1000 and s["reason"] == "ticks done"
    changes = [
        (e["old"], e["new"])
        for e in _server_events(server)
        if e["event"] == "player" and e["id"] == struck["id"]
    ]
    assert ("active", "inactive") in changes and changes[-1][1] == "active", changes
    p = next(p for p in s["players"] if p["id"] == struck["id"])
    assert p["status"] == "active" and p["late"] >= 1 and p["missed"] >= 3
    assert p["answered"] + p["missed"] == 1000 and p["answered"] > 0


def test_compose_down_during_a_run_stops_everything_within_ten_seconds(compose, tmp_path):
    c = compose(
        {"TICKWIRE_PLAYERS": "3", "TICKWIRE_TICKS": "100000000"},
        files=("docker-compose.yml", _with_server_events(tmp_path)),
    )
    c("up", "-d", "--no-build", "--scale", "agent=3")
    (server,) = c.containers("server")
    _wait_server_event(server, lambda e: e["event"] == "started")
    ids = c.containers("server") + c.containers("agent")
    t0 = time.monotonic()
    c("down", "-t", "10", timeout=10)  # raises if it takes longer than 10 s
    elapsed = time.monotonic() - t0
    left = _run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={c.project}"])
    assert left.stdout.split() == [] and elapsed < 10
    assert ids  # they existed, and are gone


def test_a_users_own_agent_image_runs_next_to_the_built_in_ones(compose):
    c = compose(
        {
            "TICKWIRE_PLAYERS": "3",
            "TICKWIRE_TICKS": "200",
            "MY_AGENT_IMAGE": f"my-agent:test-{uuid.uuid4().hex[:6]}",
        },
        files=("docker-compose.yml", "examples/docker-compose.my-agent.yml"),
    )
    c("build", "my-agent")
    try:
        c("up", "-d", "--no-build", "--scale", "agent=2")
        s = c.summary()
        names = sorted(p["name"] for p in s["players"])
        assert "my-agent" in names and len(names) == 3
        assert all(p["answered"] == 200 for p in s["players"])
    finally:
        _run(["docker", "rmi", "-f", c.env["MY_AGENT_IMAGE"]], check=False)


# ---------------------------------------------------------------------- Swarm
class Swarm:
    """The stacks and secrets a test made on the swarm, removed at teardown."""

    def __init__(self) -> None:
        self.stacks: list[str] = []
        self.secrets: list[str] = []

    def create_secrets(self, prefix: str, keys: Path) -> None:
        """What the README says: one Swarm secret per key file, named PREFIX-FILE."""
        for f in ("server.key", "server.key_secret", "agent.key", "agent.key_secret"):
            _run(["docker", "secret", "create", f"{prefix}-{f}", str(keys / f)])
            self.secrets.append(f"{prefix}-{f}")


@pytest.fixture
def swarm(image):
    """A single-node swarm (left at teardown if this test created it) and the stacks and
    secrets made on it (removed at teardown with their containers, network and volumes)."""
    state = _run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    created = state != "active"
    if created:
        _run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
    made = Swarm()
    yield made
    for stack in made.stacks:
        _run(["docker", "stack", "rm", stack], check=False)
        label = f"label=com.docker.stack.namespace={stack}"
        left = _run(["docker", "ps", "-aq", "--filter", label], check=False).stdout.split()
        if left:
            _run(["docker", "rm", "-f", *left], check=False)
        deadline = time.monotonic() + 30
        while _run(["docker", "network", "ls", "-q", "--filter", label]).stdout.strip():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)  # Swarm removes the network on its own schedule
        volumes = _run(["docker", "volume", "ls", "-q", "--filter", label]).stdout.split()
        if volumes:  # `stack rm` leaves a stack's named volumes behind
            _run(["docker", "volume", "rm", *volumes], check=False)
    deadline = time.monotonic() + 30
    while made.secrets and time.monotonic() < deadline:  # in use until the tasks are gone
        made.secrets = [
            n for n in made.secrets if _run(["docker", "secret", "rm", n], check=False).returncode != 0
        ]
        if made.secrets:
            time.sleep(0.2)  # Swarm releases them on its own schedule
    if created:
        _run(["docker", "swarm", "leave", "--force"], check=False)


def _task_containers(service: str, timeout: float = 60, count: int = 1) -> list[str]:
    """The running containers of a Swarm service, once there are ``count`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = _run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"]
        ).stdout.split()
        if len(ids) >= count:
            return ids
        time.sleep(0.2)  # Swarm starts tasks on its own schedule
    raise AssertionError(f"service {service} did not run {count} container(s) in {timeout} s")


def test_a_keyed_swarm_stack_restarts_a_killed_agent_and_it_rejoins(swarm, tmp_path):
    """Keys as Swarm secrets (docker/stack-keys.yml), which reach every node: no `keys`
    task runs and no key volume is read."""
    stack = f"twt{uuid.uuid4().hex[:8]}"
    swarm.stacks.append(stack)
    keys = tmp_path / "stack-keys"
    for name in ("server", "agent"):  # as the README: tickwire keys new NAME --dir stack-keys
        _run([sys.executable, "-m", "tickwire", "keys", "new", name, "--dir", str(keys)])
    swarm.create_secrets(stack, keys)
    ticks = 3000
    env = {
        **os.environ,
        "TICKWIRE_IMAGE": IMAGE,
        "TICKWIRE_PLAYERS": "3",
        "TICKWIRE_TICKS": str(ticks),
        "TICKWIRE_JSON": "1",
        "TICKWIRE_SLOW_MS": "5",
        "TICKWIRE_AGENT": "tickwire.agents.examples.slow_agent:SlowAgent",
        "TICKWIRE_SECRETS": stack,
    }
    _run(
        [
            "docker",
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            str(ROOT / "docker-compose.yml"),
            "-c",
            str(ROOT / "docker/stack-keys.yml"),
            "-c",
            _with_server_events(tmp_path),
            stack,
        ],
        env=env,
        cwd=ROOT,
    )
    (server,) = _task_containers(f"{stack}_server")
    c = Compose([], IMAGE, {}, [])  # for its container helpers only
    _wait_server_event(server, lambda e: e["event"] == "started")
    victim = _task_containers(f"{stack}_agent", count=3)[0]
    _run(["docker", "kill", victim])  # Swarm replaces the failed task: the new one rejoins
    code = c.wait_exit(server, 180)
    out, err = c.logs(server)
    assert code == 0, err[-3000:]
    s = json.loads(out.strip().splitlines()[-1])
    assert s["ticks"] == ticks and s["reason"] == "ticks done"
    assert all(p["status"] == "active" for p in s["players"]), s["players"]
    back = [p for p in s["players"] if p["rejoins"]]
    assert len(back) == 1 and back[0]["rejoins"] == 1 and back[0]["dead"] > 0
    assert all(
        p["answered"] + p["missed"] + p["dead"] + p["left"] + p["not_joined"] == ticks for p in s["players"]
    ), s["players"]
    rejoined = [
        e
        for e in _server_events(server)
        if e["event"] == "player" and (e["old"], e["new"]) == ("dead", "joined")
    ]
    assert [e["id"] for e in rejoined] == [back[0]["id"]]
    assert "with CURVE keys (1 allowed)" in err and not s["rejected"].get("auth_failed"), s["rejected"]
    assert _run(["docker", "service", "ps", "-q", f"{stack}_keys"]).stdout.split() == []
    env_of = _run(["docker", "inspect", "-f", "{{json .Config.Env}}", server]).stdout
    assert "TICKWIRE_KEY=/run/secrets/server.key_secret" in json.loads(env_of)
