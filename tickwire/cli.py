"""The ``tickwire`` command: ``run`` (server + local agents), ``server``, ``agent``, ``keys``,
``bench``.

Flags, their ``TICKWIRE_*`` variables, defaults and checks come from one table
(``tickwire.options``); exit codes from one map (``tickwire.exitcodes``). Every command
ends with one of those codes, and with ``--json`` prints exactly one JSON object on stdout
whatever the outcome (logs and the progress line go to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Set
from typing import Any, NoReturn

from tickwire import exitcodes, options
from tickwire.agents.loading import load_agent_class
from tickwire.exitcodes import ExitCode
from tickwire.options import close_matches
from tickwire.plumbing.process import reap_resource_tracker
from tickwire.protocol.errors import ConfigError, LobbyTimeout, TickwireError
from tickwire.server.worlds.loader import load_world
from tickwire.server.worlds.world import World

log = logging.getLogger(__name__)

COMMANDS = {
    "run": "run a world with N local agent processes (server + agents in one command)",
    "server": "run the world server; agents connect to it",
    "agent": "run agents (players) against a server",
    "replay": "re-simulate a recorded run (--record DIR) without agents and check its state "
    "hashes; --html FILE also writes a page that plays it",
}
#: Commands with their own parser: ``tickwire bench`` and ``tickwire check-world``.
OWN_PARSER = {
    "bench": "benchmark tickwire against the alternatives (tickwire bench --help)",
    "check-world": "check a World class for mistakes (tickwire check-world --help)",
    "conformance": "check an agent program in any language against a scripted server: "
    "tickwire conformance -- COMMAND (tickwire conformance --help)",
}


def _exit_code_epilog() -> str:
    lines = ["exit codes:"]
    lines += [f"  {c.value:>3}  {c.label:<16} {exitcodes.MEANING[c].replace('`', '')}" for c in ExitCode]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError on bad usage instead of exiting, so a usage error
    takes the same path as every other error (exit code, and JSON with --json).

    A misspelt flag, command or choice gets "did you mean ...?" (difflib; argparse only
    suggests from Python 3.14 on, and never for an unknown flag)."""

    #: each command's own parser by its words ("run", "keys new"), set by build_parser
    commands: dict[str, _Parser]

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise ConfigError(f"{message} (see {self.prog} --help)")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            close = close_matches(str(value), [str(c) for c in action.choices])
            if close:
                choices = ", ".join(map(repr, action.choices))
                raise argparse.ArgumentError(
                    action, f"invalid choice: {value!r}{close} (choose from {choices})"
                )
        super()._check_value(action, value)

    def unrecognized(self, extras: list[str]) -> NoReturn:
        """Report arguments this command does not take, with the flags meant."""
        flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        hints = {
            flag: close
            for flag in (e.partition("=")[0] for e in extras if e.startswith("--"))
            if (close := close_matches(flag, flags))
        }
        text = f"unrecognized arguments: {' '.join(extras)}"
        if len(hints) == 1:
            text += next(iter(hints.values()))
        elif hints:
            text += " (" + "; ".join(f"{flag}{close}" for flag, close in hints.items()) + ")"
        self.error(text)


def build_parser() -> _Parser:
    """The parser of every command but ``bench`` (which has its own)."""
    parser = _Parser(
        prog="tickwire",
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Lockstep worlds with agents in their own processes or containers, over "
        "ZeroMQ. Every flag has a TICKWIRE_* environment variable; a flag wins over "
        "its variable, the variable over the default.",
    )
    from tickwire import __version__

    parser.add_argument("--version", action="version", version=f"tickwire {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = {}
    for name, text in COMMANDS.items():
        p = sub.add_parser(
            name,
            # the options come grouped below; listing every one here would take 10 lines
            usage=f"%(prog)s [-h] [OPTIONS]{' DIR' if name == 'replay' else ''}",
            help=text,
            description=text,
            epilog=_exit_code_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.commands[name] = p
        options.add_to_parser(p, name)
        if name == "replay":
            p.add_argument(
                "dir", metavar="DIR", nargs="?", help="the directory a --record run wrote (required)"
            )
    keys = sub.add_parser(
        "keys",
        help="make CURVE key pairs: tickwire keys new NAME [--dir DIR]",
        description="Make a CURVE key pair: DIR/NAME.key (public; give it to "
        "the other side) and DIR/NAME.key_secret (mode 0600; keep it).",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="new")
    new = keys_sub.add_parser("new", help="write DIR/NAME.key and DIR/NAME.key_secret")
    parser.commands.update({"keys": keys, "keys new": new})
    new.add_argument(
        "name",
        metavar="NAME",
        help="key name, e.g. server or alice (an agent's "
        "key name is the identity the server binds its slot to)",
    )
    new.add_argument(
        "--dir",
        default=".",
        help="directory to write to (created if missing; default: the current directory)",
    )
    new.add_argument(
        "--slot",
        type=int,
        default=None,
        metavar="N",
        help="a server that allows "
        "this key gives it player slot N (and the name NAME), and that slot to "
        "no other key",
    )
    for name, text in OWN_PARSER.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


# ---------------------------------------------------------------------------- output
def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=True, default=str), flush=True)


def _outcome(code: ExitCode) -> dict[str, Any]:
    return {"outcome": code.label, "exit_code": int(code)}


def _report_error(
    command: str, error: BaseException, as_json: bool, summary_path: str | None = None
) -> ExitCode:
    """Tell the user what went wrong (stderr; one JSON object with --json and --summary)."""
    code = exitcodes.for_error(error)
    label = {
        ExitCode.ERROR: "error",
        ExitCode.USAGE: "usage error",
        ExitCode.TRANSPORT: "transport error",
    }.get(code, code.label.replace("_", " "))
    print(f"{' '.join(filter(None, ('tickwire', command)))}: {label}: {error}", file=sys.stderr, flush=True)
    if as_json or summary_path:
        summary = getattr(error, "summary", None) or {}
        obj = {
            **summary,
            **_outcome(code),
            "reason": summary.get("reason", label),
            "error": {"type": type(error).__name__, "message": str(error)},
        }
        # the error may be that the file cannot be written: then it is said once, above
        unwritable = isinstance(error, ConfigError) and error.option == "--summary"
        failed = summary_path and not unwritable and _write_summary_file(summary_path, obj)
        if failed:  # the exit code is the error's; the JSON says the file is missing too
            print(
                f"{' '.join(filter(None, ('tickwire', command)))}: could not write the "
                f"summary to {summary_path!r} (--summary): {failed}",
                file=sys.stderr,
                flush=True,
            )
            obj["summary_file"] = {"file": summary_path, "written": False, "error": failed}
        if as_json:
            _print_json(obj)
    return code


def _summary_path(args: argparse.Namespace) -> str | None:
    """--summary as given (flag, else variable), before validation: errors are written too."""
    raw = getattr(args, "summary", None)
    if raw is None and args.command in options.BY_DEST["summary"].commands:
        raw = os.environ.get(options.BY_DEST["summary"].env, "").strip() or None
    return raw or None


def _check_summary_path(path: str | None) -> None:
    """Fail before the run, not after it, if the summary file cannot be written: a device
    or pipe must be writable; elsewhere a temp file is made (and removed) in its folder,
    which also finds a folder that refuses even root (sysfs, a read-only mount)."""
    if path is None:
        return
    if _written_in_place(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(
                f"--summary (TICKWIRE_SUMMARY): cannot write {path!r}: no write "
                "permission; choose another path",
                "--summary",
            )
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder):
        raise ConfigError(
            f"--summary (TICKWIRE_SUMMARY): cannot write {path!r}: "
            + (
                f"it is a directory; give a file name in it, e.g. {path}/summary.json"
                if os.path.isdir(path)
                else f"folder {folder!r} does not exist; create it or choose another path"
            ),
            "--summary",
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tickwire-summary-", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ConfigError(
            f"--summary (TICKWIRE_SUMMARY): cannot write {path!r}: folder "
            f"{folder!r} is not writable ({e.strerror or e}); choose another "
            "path",
            "--summary",
        ) from e


def _written_in_place(path: str) -> bool:
    """An existing device or pipe (/dev/stdout, /dev/full): written in place, since renaming
    a temp file over it would replace the device node."""
    return os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)


def _check_render_path(path: str | None) -> None:
    """Fail before the run, not after it, if the picture cannot be written."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise ConfigError(
            f"--render (TICKWIRE_RENDER): {path!r} is not a file name; give the "
            "PNG file to write, e.g. --render final.png",
            "--render",
        )
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConfigError(
            f"--render (TICKWIRE_RENDER): cannot write {path!r}: folder "
            f"{folder!r} does not exist or is not writable; create it or choose "
            "another path",
            "--render",
        )


def _write_render(path: str, world: World, state: Any) -> dict[str, Any]:
    """Write the final picture; the summary's ``render`` entry. A failure (disk full,
    permissions) is logged and reported there, never raised: the run's outcome stands."""
    from tickwire.server.worlds.png import png_bytes, render_picture

    data = png_bytes(render_picture(world, state))
    # a file is written whole or not at all (temp file, renamed); a device or a pipe
    # (/dev/stdout) is written in place: renaming over it would replace the device node
    special = _written_in_place(path)
    tmp = path if special else f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        if not special:
            os.replace(tmp, path)
    except OSError as e:
        if not special:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        log.error(
            "--render: could not write the picture %r: %s; the run itself is not "
            "affected (free space or fix the permissions, and use `tickwire replay "
            "--html` on a record to see the run)",
            path,
            e.strerror or e,
        )
        return {"file": path, "written": False, "error": f"{type(e).__name__}: {e}"}
    return {"file": path, "written": True}


def _write_summary_file(path: str, obj: dict[str, Any]) -> str | None:
    """Write the summary atomically (temp file in the same folder, fsync, rename): a reader
    never sees half a file; a device or pipe is written in place. Returns None, or why it
    could not be written (the caller decides the exit code; nothing is raised)."""
    text = json.dumps(obj, sort_keys=True, default=str) + "\n"
    tmp = None
    try:
        if _written_in_place(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            return None
        fd, tmp = tempfile.mkstemp(
            dir=os.path.dirname(os.path.abspath(path)), prefix=".tickwire-summary-", suffix=".tmp"
        )
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return f"{type(e).__name__}: {e}"
    return None


def _summary_not_written(
    command: str, path: str, error: str, summary: dict[str, Any], code: ExitCode
) -> dict[str, Any]:
    """The run's summary, its outcome now ``record_failed`` (exit 7), the run's own outcome
    kept under ``run_outcome``; says so on stderr. A script must notice a lost summary."""
    print(
        f"tickwire {command}: record failed: could not write the summary to {path!r} "
        f"(--summary): {error}. The run itself ended with {code.label} (exit {int(code)}): "
        f"reason {summary.get('reason')!r}, {summary.get('ticks')} tick(s), state hash "
        f"{summary.get('state_hash')}. Free space or fix the path; --json prints the same "
        "summary on stdout",
        file=sys.stderr,
        flush=True,
    )
    return {
        **summary,
        **_outcome(ExitCode.RECORD_FAILED),
        "run_outcome": code.label,
        "run_exit_code": int(code),
        "summary_file": {"file": path, "written": False, "error": error},
    }


def _wants_json(args: argparse.Namespace) -> bool:
    """--json as given, before validation (so even a bad configuration is reported as JSON)."""
    raw = getattr(args, "json", None)
    raw = raw if raw is not None else os.environ.get(options.BY_DEST["json"].env, "")
    return raw is True or str(raw).strip().lower() in {"1", "true", "yes", "on"}


def _configure_logging(values: dict[str, Any]) -> None:
    level = logging.DEBUG if values["verbose"] else logging.WARNING if values["quiet"] else logging.INFO
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )


# ---------------------------------------------------------------------------- run / server
def _stop_on_signals(box: list[Any]) -> list[str]:
    """SIGINT/SIGTERM end the run cleanly; the returned list records which arrived.

    Installed before the server and the agent processes exist (``box`` gets the server
    later), so a signal in the first second still ends in the clean path: agents reaped,
    the ipc directory removed."""
    received: list[str] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        if box:
            box[0].stop(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return received


def _lobby_summary(config: Any, world: World, error: LobbyTimeout) -> dict[str, Any]:
    """The summary of a run that never started: the server's own (it attaches one to the
    error), or what the configuration tells if none is attached."""
    summary = dict(
        error.summary
        or {
            "run": None,
            "world": type(world).__name__,
            "seed": config.seed,
            "mode": config.mode,
            "ticks": 0,
            "elapsed_s": 0.0,
            "lobby_s": config.lobby_timeout_s,
            "ticks_per_s": None,
            "state_hash": None,
            "players": [],
            "rejected": {},
        }
    )
    summary.setdefault("lobby", str(error))
    summary["reason"] = "lobby timeout"
    return summary


def _resumed_values(values: dict[str, Any]) -> dict[str, Any]:
    """With ``--resume DIR``: the recorded world and run-defining settings replace the given ones."""
    from tickwire.server.record.log import RUN_FIELDS, RunReader
    from tickwire.server.world_server.config import ServerConfig

    if not values.get("resume"):
        return values
    first = RunReader(values["resume"]).first
    recorded = {**{k: first["config"][k] for k in RUN_FIELDS}, "world": first["world"]}
    changed = {k: (values[k], v) for k, v in recorded.items() if values.get(k) != v}
    if changed:
        log.info(
            "--resume: using the recorded %s",
            ", ".join(f"{k}={v!r}" for k, (_, v) in sorted(changed.items())),
        )
    # a value that is not the default was most likely asked for: say loudly it is not used
    defaults = {**{k: getattr(ServerConfig(), k) for k in RUN_FIELDS}, "world": options.DEFAULT_WORLD}
    ignored = {k: given for k, (given, _) in changed.items() if given != defaults.get(k)}
    if ignored:
        log.warning(
            "--resume: ignoring %s: a resumed run keeps the world and the %s "
            "recorded in %s; record a new run to change them",
            ", ".join(f"{k}={v!r}" for k, v in sorted(ignored.items())),
            ", ".join(RUN_FIELDS),
            values["resume"],
        )
    return {**values, **recorded}


def _make_run(
    values: dict[str, Any], command: str, world: World, metrics: Any = None
) -> tuple[Any, Any, Any]:
    """(server, run callable, progress) for ``tickwire run`` or ``tickwire server``."""
    from tickwire.server.observers.progress import Progress
    from tickwire.server.world_server.launcher import LocalRun
    from tickwire.server.world_server.loop import WorldServer

    config = options.server_config(values)
    progress = None if values["quiet"] else Progress(config.ticks)
    if command == "server":
        server = WorldServer(world, config, progress, metrics=metrics, world_spec=values["world"])
        return server, server.run, progress
    load_agent_class(values["agent"])  # fail here, not in N child processes
    runner = LocalRun(
        world,
        config,
        values["agent"],
        values["agents"],
        values["transport"],
        values["per_process"],
        progress,
        logging.DEBUG if values["verbose"] else logging.WARNING,
        pin_cpus=values["pin_cpus"],
        metrics=metrics,
        world_spec=values["world"],
    )
    return runner.server, runner.run, progress


def _world_defaults(values: dict[str, Any], command: str, given: Set[str], world: World) -> dict[str, Any]:
    """A world that knows its player count (a PettingZoo env) sets --agents/--players unless
    given; its agents sample their action spaces unless --agent is given."""
    values = dict(values)
    count = getattr(world, "default_players", None)
    key = "agents" if command == "run" else "players"
    if count and key not in given:
        values[key] = count
    if command == "run" and "agent" not in given and values["world"].startswith("pettingzoo:"):
        values["agent"] = options.SAMPLING_AGENT
    return values


def _serve(values: dict[str, Any], command: str, given: Set[str] = frozenset()) -> ExitCode:
    """``tickwire run`` / ``tickwire server``: play the run, print (and write) its summary.

    With ``--resume DIR`` the record's lock is taken first, before DIR is read (another
    server may be writing it); with ``--record DIR`` once the flags are checked, before a
    socket is bound or an agent spawned. Either way it is held until the command ends."""
    if not values.get("resume"):
        return _serve_locked(values, command, given)
    from tickwire.server.record.log import lock_record

    with lock_record(values["resume"]):
        return _serve_locked(values, command, given)


def _serve_locked(values: dict[str, Any], command: str, given: Set[str]) -> ExitCode:
    values = _resumed_values(values)
    if values["world"].partition(":")[0].endswith(".py"):  # the record must find it from anywhere
        path, _, name = values["world"].partition(":")
        values = {**values, "world": f"{os.path.abspath(path)}:{name}"}
    world = load_world(values["world"])
    values = _world_defaults(values, command, given, world)
    if values.get("record") or values.get("resume"):
        # a file-size limit must give a clear "record failed", not a core dump (SIGXFSZ)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if values.get("render") and not world.has_render:
        raise ConfigError(f"--render: world {values['world']!r} has no render(state) method", "--render")
    _check_render_path(values.get("render"))
    _check_summary_path(values["summary"])
    if values.get("record") and not values.get("resume"):  # before a socket or an agent
        from tickwire.server.record.log import lock_record, refuse_existing_record

        with lock_record(values["record"], create=True):
            refuse_existing_record(values["record"])
            return _with_metrics(values, command, world)
    return _with_metrics(values, command, world)


def _with_metrics(values: dict[str, Any], command: str, world: World) -> ExitCode:
    """Play the run with the ``--metrics`` endpoint open meanwhile (if asked for)."""
    metrics = None
    if values["metrics"]:
        from tickwire.server.observers.metrics import MetricsServer

        metrics = MetricsServer(values["metrics"])
    try:
        return _play(values, command, world, metrics)
    finally:
        if metrics is not None:
            metrics.close()


def _play(values: dict[str, Any], command: str, world: World, metrics: Any) -> ExitCode:
    from tickwire.server.observers.summary import format_summary

    box: list[Any] = []
    received = _stop_on_signals(box)
    server, run, progress = _make_run(values, command, world, metrics)
    box.append(server)
    if received:  # a signal came while the server was being built
        server.stop(f"signal {received[0]}")
    try:
        summary = run()
    except LobbyTimeout as e:
        e.summary = _lobby_summary(server.config, world, e)
        raise
    finally:
        if progress:
            progress.close()
    if values.get("render") and server.final_state is not None:
        summary = {**summary, "render": _write_render(values["render"], world, server.final_state)}
    code = exitcodes.for_summary(summary, interrupted=bool(received))
    out = {**summary, **_outcome(code)}
    failed = values["summary"] and _write_summary_file(values["summary"], out)
    if failed:
        out = _summary_not_written(command, values["summary"], failed, summary, code)
    if values["json"]:
        _print_json(out)
    else:
        print(format_summary(summary), flush=True)
    if code in (ExitCode.PLAYERS_CRASHED, ExitCode.PLAYERS_LEFT):
        print(f"tickwire {command}: {_why_nobody_is_left(command, code, summary)}", file=sys.stderr)
    return ExitCode.RECORD_FAILED if failed else code


def _why_nobody_is_left(command: str, code: ExitCode, summary: dict[str, Any]) -> str:
    """The closing line of a run that no player was left to play: who left, and why."""
    if code is ExitCode.PLAYERS_LEFT:
        return (
            f"players left: every player left before the end ({summary.get('reason')}, "
            f"{summary.get('ticks')} tick(s) played); their reasons are in the summary above"
        )
    lobby = summary.get("left_in_lobby") or []
    if lobby:
        where = "the reasons the players that left in the lobby gave are in the summary above"
    elif command == "run":
        where = "see the agents' errors above"
    else:
        where = "see each agent's own output, and the players' statuses above"
    return f"players crashed: no player was left able to play ({summary.get('reason')}); {where}"


# ---------------------------------------------------------------------------- agent
def _result_dict(r: Any) -> dict[str, Any]:
    keys = ("name", "player", "ticks", "skipped", "done", "reason", "errors", "rejoins")
    out = {k: getattr(r, k, None) for k in keys}
    end = getattr(r, "end", None)
    out["scores"] = list(end.scores) if end is not None else None
    return out


def _run_agents(values: dict[str, Any], command: str) -> ExitCode:
    """``tickwire agent``: host ``--count`` agents of one class in this process."""
    from tickwire.agents.container import container_name, name_agents
    from tickwire.agents.runtime import run

    config = options.agent_config(values)
    from tickwire.agents.batch import BatchAgent

    cls = load_agent_class(values["agent"])
    if issubclass(cls, BatchAgent):  # one call for the --count seats
        batch = cls()
        name_agents([batch], values["name"], None if values["name"] else container_name())
        results = run(batch, config=config, count=values["count"])
    else:
        agents = [cls() for _ in range(values["count"])]
        name_agents(agents, values["name"], None if values["name"] else container_name())
        results = run(agents, config=config)
    stopped = any(str(getattr(r, "reason", "")).startswith("signal") for r in results)
    code = ExitCode.INTERRUPTED if stopped else ExitCode.OK
    if values["json"]:
        _print_json(
            {
                **_outcome(code),
                "reason": results[0].reason if results else "",
                "agents": [_result_dict(r) for r in results],
            }
        )
    else:  # the same line as ``print(run(...))`` in a script, one per hosted player
        print("\n".join(str(r) for r in results), flush=True)
    return code


# ---------------------------------------------------------------------------- replay
def _replay(values: dict[str, Any], command: str, given: Set[str] = frozenset()) -> ExitCode:
    """``tickwire replay DIR``: re-simulate a recorded run, compare every state hash."""
    from tickwire.server.record.log import RunReader
    from tickwire.server.record.replay import replay_run

    if not values.get("dir"):
        raise ConfigError(
            "tickwire replay needs the record's directory: tickwire replay DIR (the DIR given to --record)"
        )
    from tickwire.server.observers.progress import JobProgress

    if values.get("html_every") and not values.get("html"):
        raise ConfigError(
            "--html-every (TICKWIRE_HTML_EVERY) only applies to the page: add --html FILE (TICKWIRE_HTML)",
            "--html-every",
        )
    if values.get("html") == "":
        raise ConfigError(
            "--html (TICKWIRE_HTML) is empty: give the page's file path, e.g. --html run.html", "--html"
        )
    if values.get("html") and not os.path.isdir(os.path.dirname(os.path.abspath(values["html"]))):
        raise ConfigError(
            f"--html (TICKWIRE_HTML) {values['html']}: its directory does not "
            "exist; create it or give another path",
            "--html",
        )
    first = RunReader(values["dir"]).first
    world = _replay_world(first["world"], values["world"] if "world" in given else None)
    if "world" in given and values["world"].rpartition(":")[2] != first["world"].rpartition(":")[2]:
        log.warning(
            "replaying with --world %s, but the run was recorded with %s: expect the "
            "hashes to differ unless it is the same world",
            values["world"],
            first["world"],
        )
    progress = JobProgress(int(first["config"]["ticks"]), "tick", enabled=not values["quiet"])
    progress.update(0, f"replaying {values['dir']}")
    page = None
    if values.get("html"):
        from tickwire.server.record.replay_page import PageBuilder

        page = PageBuilder(world, first, values.get("html_every"))
    try:
        report = replay_run(
            values["dir"],
            world,
            lambda done: progress.update(done, f"replaying {values['dir']}"),
            page.on_step if page else None,
        )
    finally:
        progress.close()
    if page is not None:
        _write_page(values["html"], page.page(report))
    if "world" in given:  # the report names the world that was replayed
        report = dataclasses.replace(report, world=values["world"])
    code = ExitCode.OK if report.identical else ExitCode.REPLAY_DIFFERS
    extra = {"html": values["html"]} if page is not None else {}
    if values["json"]:
        _print_json({**report.as_dict(), **extra, **_outcome(code)})
    else:
        print(_replay_text(report) + (f"\nreplay page: {values['html']}" if extra else ""), flush=True)
    return code


def _replay_world(recorded: str, spec: str | None) -> World:
    """The world to replay: the recorded one, or ``spec`` (--world) where it is now."""
    if spec is not None:
        return load_world(spec)
    try:
        return load_world(recorded)
    except ConfigError as e:
        raise ConfigError(
            f"the recorded world {recorded!r} could not be loaded ({e}); if its "
            "file or module has moved, give --world SPEC (TICKWIRE_WORLD) where "
            "it is now",
            "--world",
        ) from e


def _write_page(path: str, html: str) -> None:
    """Write the replay page atomically (a temp file in the same directory, renamed)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigError(
            f"--html {path}: could not write the page ({e.strerror or e}); give a "
            "file path in a writable directory",
            "--html",
        ) from e
    log.info("wrote the replay page %s (%d bytes)", path, len(html.encode()))


def _replay_text(r: Any) -> str:
    lines = [
        f"replayed {r.ticks} tick(s) of {r.world} (seed {r.seed}, {r.epochs} epoch(s): "
        f"{', '.join(r.runs)}); final state hash {r.final_hash}"
    ]
    if r.live is not None:
        from tickwire.server.record.log import describe_holder

        lines.append(
            f"being recorded now by {describe_holder(r.live)}: replayed the ticks "
            "complete when replay began; run replay again for the rest"
        )
    if r.torn_tail and r.live is not None:
        lines.append(
            f"{r.torn_tail['file']}: {r.torn_tail['bytes']} byte(s) of the tick being "
            "written now (not a torn tail)"
        )
    elif r.torn_tail:
        t = r.torn_tail
        lines.append(
            f"torn tail: {t['file']} at byte {t['offset']} ({t['reason']}; {t['bytes']} "
            "byte(s) after the last complete tick; --resume truncates it)"
        )
    if r.first_difference:
        d = r.first_difference
        lines.append(f"DIFFERS at tick {d['tick']}: recorded hash {d['recorded']}, replayed {d['replayed']}")
    if r.damage:
        d = r.damage
        after = "" if d.get("next_frame") is None else f"; a good record follows at byte {d['next_frame']}"
        lines.append(
            f"DAMAGED record: {d['file']} at byte {d['offset']} ({d['reason']}{after}); "
            f"ticks after {r.ticks - 1} could not be checked"
        )
    lines.append("identical" if r.identical else "NOT identical")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- keys
def _make_keys(args: argparse.Namespace) -> ExitCode:
    """``tickwire keys new NAME [--dir DIR]``."""
    from tickwire.plumbing.keys import new_keypair

    if args.slot is not None and args.slot < 0:
        raise ConfigError(f"--slot must be >= 0, got {args.slot}", "--slot")
    public, secret = new_keypair(args.name, args.dir, args.slot)
    print(
        f"wrote {public} (public: give it to the other side) and {secret} (secret, mode 0600: keep it)",
        flush=True,
    )
    return ExitCode.OK


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tickwire`` command; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser: many flags that only it has
        from tickwire.bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["check-world"]:
        from tickwire.server.worlds.check import main as check_main

        return check_main(argv[1:])
    if argv[:1] == ["conformance"]:
        from tickwire.server.conformance import main as conformance_main

        return conformance_main(argv[1:])
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:  # name the command's own help, and the flag meant
            words = " ".join(filter(None, (args.command, getattr(args, "keys_command", None))))
            parser.commands.get(words, parser).unrecognized(extras)
    except ConfigError as e:  # bad usage: unknown flag, missing command, ...
        command = next((a for a in argv if a in COMMANDS or a == "keys"), "")
        return int(_report_error(command, e, "--json" in argv))
    as_json, summary_path = _wants_json(args), _summary_path(args)
    try:
        if args.command == "keys":
            return int(_make_keys(args))
        values = options.resolve(args, args.command)
        if args.command == "replay":
            values["dir"] = args.dir
        _configure_logging(values)
        if args.command == "agent":
            return int(_run_agents(values, args.command))
        if args.command == "replay":
            return int(_replay(values, args.command, options.given(args, args.command)))
        return int(_serve(values, args.command, options.given(args, args.command)))
    except (TickwireError, KeyboardInterrupt) as e:
        return int(_report_error(args.command, e, as_json, summary_path))
    except Exception as e:  # a bug in the user's world/agent or in tickwire: keep the traceback
        log.exception("tickwire %s failed", args.command)
        return int(_report_error(args.command, e, as_json, summary_path))
    finally:
        reap_resource_tracker()
