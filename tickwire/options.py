"""Where flags are defined: every option of ``tickwire run|server|agent``, once.

Each :class:`Option` row says its flag, type, default, allowed values, help, which commands
have it, which config field it fills and its group (:data:`GROUPS`); its environment
variable is ``TICKWIRE_`` + the flag's name. From this one table come the argparse flags in
their groups (:func:`add_to_parser`), the environment fallback and validation
(:func:`resolve`: a flag wins over its variable, the variable over the default; errors name
both), the role configs (:func:`server_config`, :func:`agent_config`) and the docs' flag
tables, one per group (:func:`markdown_table`; ``python -m tickwire.options`` prints them).
``tickwire bench`` keeps its own parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tickwire.agents.config import RANGES as AGENT_RANGES
from tickwire.agents.config import AgentConfig
from tickwire.protocol.errors import ConfigError
from tickwire.server.world_server.config import MODES, ON_MISSING, RANGES, ServerConfig

DEFAULT_WORLD = "tickwire.server.worlds.grid_world:GridWorld"
DEFAULT_AGENT = "tickwire.agents.examples.greedy_agent:GreedyAgent"
#: The agent of ``tickwire run --world pettingzoo:...`` without --agent: samples its action space.
SAMPLING_AGENT = "tickwire.agents.examples.random_agent:RandomAgent"
ENV_PREFIX = "TICKWIRE_"
COMMANDS = ("run", "server", "agent", "replay")

_FROM_CONFIG: Any = object()  #: default: the config field's own default
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One command-line option and its environment variable."""

    flag: str  #: "--ticks"
    help: str
    commands: tuple[str, ...]
    type: type = str  #: str, int, float, or bool (a switch)
    default: Any = None  #: None: not set (shown as "—")
    field: str | None = None  #: config field it fills: "server.ticks", "agent.slot"
    choices: tuple[str, ...] | None = None
    #: smallest allowed value; values must be greater than ``above`` (a ServerConfig
    #: field's are filled in from its RANGES, never given in the row)
    minimum: float | None = None
    above: float | None = None
    short: str | None = None  #: "-q"
    metavar: str | None = None
    group: str = ""  #: its heading in ``--help`` and the docs: a key of :data:`GROUPS`

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def switch(self) -> bool:
        return self.type is bool

    @property
    def names(self) -> str:
        """``--players (TICKWIRE_PLAYERS)``: how every error refers to this option."""
        return f"{self.flag} ({self.env})"


def _config_default(field: str) -> Any:
    """The default of ``role.name`` from ServerConfig/AgentConfig (None if it has none)."""
    role, name = field.split(".")
    cls = {"server": ServerConfig, "agent": AgentConfig}[role]
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return None if f.default is dataclasses.MISSING else f.default


#: The option groups, in the order of ``--help`` and of the docs: key → (title, what for).
GROUPS: dict[str, tuple[str, str]] = {
    "world": ("World", "what is played, for how long, from which seed"),
    "players": ("Players and agents", "who plays, and how they join"),
    "timing": ("Timing and deadlines", "when a tick closes, and what a miss costs"),
    "connection": ("Connection", "addresses and how long to wait for the other side"),
    "security": ("Security and keys", "CURVE keys, public addresses, the memory guard"),
    "recording": ("Recording and resume", "the run record for --resume and tickwire replay"),
    "output": ("Output", "the summary, pictures and pages, and what is printed"),
    "observability": ("Observability", "events and metrics while the run plays"),
}

_RS, _R, _S, _A = ("run", "server"), ("run",), ("server",), ("agent",)
_ALL = ("run", "server", "agent", "replay")

#: The table. Grouped by ``group`` (:data:`GROUPS` order), its order is the order of
#: ``--help`` and of the docs' table.
OPTIONS: tuple[Option, ...] = (
    Option(
        "--bind",
        "base address to bind: tcp://HOST:PORT uses PORT, PORT+1, PORT+2 (PORT 0: "
        "three free ports); ipc:///path/prefix uses three paths (default: tcp://0.0.0.0:5555 "
        "with --key or --insecure, else tcp://127.0.0.1:5555)",
        _S,
        str,
        _FROM_CONFIG,
        "server.bind",
        metavar="ADDRESS",
        group="connection",
    ),
    Option(
        "--connect",
        "base address of the server, e.g. tcp://HOST:5555 or ipc:///tmp/tw (required)",
        _A,
        str,
        None,
        "agent.connect",
        metavar="ADDRESS",
        group="connection",
    ),
    Option(
        "--players",
        "players to wait for before the run starts (a PettingZoo world: its agent count)",
        _S,
        int,
        _FROM_CONFIG,
        "server.players",
        metavar="N",
        group="players",
    ),
    Option(
        "--agents",
        "local agent processes (players) to start (a PettingZoo world: its agent count)",
        _R,
        int,
        4,
        "server.players",
        metavar="N",
        group="players",
    ),
    Option(
        "--agent",
        "agent class, pkg.module:Class or path/file.py:Class",
        ("run", "agent"),
        str,
        DEFAULT_AGENT,
        metavar="SPEC",
        group="players",
    ),
    Option(
        "--world",
        "world class, pkg.module:Class or path/file.py:Class, or "
        "pettingzoo:MODULE for MODULE.parallel_env() (replay: default the recorded world; "
        "give it when the world's file has moved)",
        ("run", "server", "replay"),
        str,
        DEFAULT_WORLD,
        metavar="SPEC",
        group="world",
    ),
    Option("--ticks", "ticks to run", _RS, int, _FROM_CONFIG, "server.ticks", metavar="N", group="world"),
    Option(
        "--seed",
        "world seed; per-player agent seeds derive from it",
        _RS,
        int,
        _FROM_CONFIG,
        "server.seed",
        minimum=0,
        metavar="N",
        group="world",
    ),
    Option(
        "--mode",
        "strict: wait for every live player (deterministic); deadline: also close a tick at --deadline-ms",
        _RS,
        str,
        _FROM_CONFIG,
        "server.mode",
        choices=MODES,
        group="timing",
    ),
    Option(
        "--deadline-ms",
        "tick deadline in deadline mode, milliseconds",
        _RS,
        float,
        _FROM_CONFIG,
        "server.deadline_ms",
        metavar="MS",
        group="timing",
    ),
    Option(
        "--tick-rate",
        "start ticks on a fixed clock of HZ ticks per second (real time); in "
        "deadline mode a tick's deadline is its period",
        _RS,
        float,
        None,
        "server.tick_rate",
        metavar="HZ",
        group="timing",
    ),
    Option(
        "--on-missing",
        "action used for a player that missed a tick: the world's noop, or its last action",
        _RS,
        str,
        _FROM_CONFIG,
        "server.on_missing",
        choices=ON_MISSING,
        group="timing",
    ),
    Option(
        "--strikes",
        "deadline mode: misses in a row before a player is no longer waited for "
        "(until it answers again); 0 = never",
        _RS,
        int,
        _FROM_CONFIG,
        "server.strikes",
        metavar="K",
        group="timing",
    ),
    Option(
        "--min-players",
        "after --lobby-timeout, start anyway with at least this many ready players",
        _S,
        int,
        None,
        "server.min_players",
        metavar="N",
        group="players",
    ),
    Option(
        "--lobby-timeout",
        "seconds to wait for players; then stop and name who is missing",
        _RS,
        float,
        _FROM_CONFIG,
        "server.lobby_timeout_s",
        metavar="S",
        group="players",
    ),
    Option(
        "--late-join",
        "let a new player take a free slot mid-run (a dead player's slot can always be taken back)",
        _S,
        bool,
        False,
        "server.late_join",
        group="players",
    ),
    Option(
        "--ready-timeout",
        "a joined player that has not proved readiness (subscribed and "
        "sent READY) within S seconds loses its slot",
        _S,
        float,
        _FROM_CONFIG,
        "server.ready_timeout_s",
        metavar="S",
        group="players",
    ),
    Option(
        "--events",
        "append the run's events (JSON lines) to FILE",
        _RS,
        str,
        None,
        "server.events_path",
        metavar="FILE",
        group="observability",
    ),
    Option(
        "--summary",
        "also write the JSON summary to FILE (atomically), whatever the outcome",
        _RS,
        str,
        None,
        metavar="FILE",
        group="output",
    ),
    Option(
        "--metrics",
        "serve Prometheus metrics at http://HOST:PORT/metrics (needs pip install 'tickwire[metrics]')",
        _RS,
        str,
        None,
        metavar="HOST:PORT",
        group="observability",
    ),
    Option(
        "--record",
        "record the run to DIR: an append-only action log with state hashes "
        "and world checkpoints, for --resume and `tickwire replay`",
        _RS,
        str,
        None,
        "server.record_dir",
        metavar="DIR",
        group="recording",
    ),
    Option(
        "--resume",
        "resume the run recorded in DIR from its last complete tick (recorded "
        "world and settings; players join again) and keep recording to DIR",
        _S,
        str,
        None,
        "server.resume_dir",
        metavar="DIR",
        group="recording",
    ),
    Option(
        "--fsync-every",
        "with --record: fsync the action log every K ticks (0 = never: a machine crash may lose the tail)",
        _RS,
        int,
        _FROM_CONFIG,
        "server.fsync_every",
        metavar="K",
        group="recording",
    ),
    Option(
        "--checkpoint-every",
        "with --record: checkpoint the world every N ticks (0 = never: resume re-simulates from the start)",
        _RS,
        int,
        _FROM_CONFIG,
        "server.checkpoint_every",
        metavar="N",
        group="recording",
    ),
    Option(
        "--per-process",
        "players hosted by each agent process (fewer processes: faster on few cores)",
        _R,
        int,
        1,
        minimum=1,
        metavar="K",
        group="players",
    ),
    Option(
        "--pin-cpus",
        "pin agent process i to core i mod cores and run it as SCHED_BATCH "
        "(Linux): steadier ticks when agents compute",
        _R,
        bool,
        False,
        group="players",
    ),
    Option(
        "--transport",
        "how local agents connect: ipc (fastest) or tcp on 127.0.0.1",
        _R,
        str,
        "ipc",
        choices=("ipc", "tcp"),
        group="connection",
    ),
    Option(
        "--render",
        "write the final grid as a PNG image to FILE",
        _R,
        str,
        None,
        metavar="FILE",
        group="output",
    ),
    Option(
        "--key",
        "this process's secret key file (NAME.key_secret from `tickwire keys new`); "
        "server: needs --allow; agent: needs --server-key",
        ("server", "agent"),
        str,
        None,
        None,
        metavar="FILE",
        group="security",
    ),
    Option(
        "--allow",
        "directory of the public *.key files of the agents allowed to connect "
        "(with --key: every socket uses CURVE encryption and authentication)",
        _S,
        str,
        None,
        "server.allow_dir",
        metavar="DIR",
        group="security",
    ),
    Option(
        "--insecure",
        "allow binding a non-loopback address without --key/--allow (anyone "
        "who can reach the port can join, and read every observation)",
        _S,
        bool,
        _FROM_CONFIG,
        "server.insecure",
        group="security",
    ),
    Option(
        "--memory-budget-mb",
        "cut the connection that is filling the server's memory "
        "(e.g. one message of thousands of frames) when its resident memory exceeds the "
        "start-up level by MB; 0 = off",
        _RS,
        float,
        _FROM_CONFIG,
        "server.memory_budget_mb",
        metavar="MB",
        group="security",
    ),
    Option(
        "--server-key",
        "the server's public key file (server.key)",
        _A,
        str,
        None,
        "agent.server_key_path",
        metavar="FILE",
        group="security",
    ),
    Option(
        "--name",
        "player name (K players: NAME-0 .. NAME-K-1); default: the container's "
        "hostname when this is a container's main process, else the class name",
        _A,
        str,
        None,
        group="players",
    ),
    Option(
        "--count",
        "players (agents) hosted by this one process",
        _A,
        int,
        1,
        minimum=1,
        metavar="K",
        group="players",
    ),
    Option(
        "--slot",
        "ask for this player slot (K players: SLOT .. SLOT+K-1)",
        _A,
        int,
        None,
        "agent.slot",
        metavar="N",
        group="players",
    ),
    Option(
        "--join-timeout",
        "seconds to keep trying to reach the server",
        _A,
        float,
        _FROM_CONFIG,
        "agent.join_timeout_s",
        metavar="S",
        group="connection",
    ),
    Option(
        "--server-timeout",
        "exit when the server has been silent this many seconds",
        _A,
        float,
        _FROM_CONFIG,
        "agent.server_timeout_s",
        metavar="S",
        group="connection",
    ),
    Option(
        "--html",
        "replay: also write FILE, one self-contained HTML page that plays the run "
        "(world per tick, players, hashes; written even when a tick differs)",
        ("replay",),
        str,
        None,
        metavar="FILE",
        group="output",
    ),
    Option(
        "--html-every",
        "with --html: show every K-th tick (default: every tick up to "
        "10,000 shown ticks, then an automatic stride; totals stay exact)",
        ("replay",),
        int,
        None,
        minimum=1,
        metavar="K",
        group="output",
    ),
    Option(
        "--json",
        "print one JSON object on stdout (the summary, or the agents' results), whatever the outcome",
        _ALL,
        bool,
        False,
        group="output",
    ),
    Option(
        "--quiet",
        "no progress line; log only warnings and errors",
        _ALL,
        bool,
        False,
        short="-q",
        group="output",
    ),
    Option("--verbose", "debug logging", _ALL, bool, False, short="-v", group="output"),
)


def _from_config(o: Option) -> Option:
    """``o`` with what its config field states: the default (if the row says so), and the
    range of a ServerConfig or AgentConfig field (their ``RANGES``: one
    statement of it, checked here with this table's wording)."""
    if o.group not in GROUPS:
        raise AssertionError(f"{o.flag}: group {o.group!r} is not one of {', '.join(GROUPS)}")
    if o.default is _FROM_CONFIG:
        assert o.field is not None, f"{o.flag}: a default from the config needs a config field"
        o = dataclasses.replace(o, default=_config_default(o.field))
    role, _, name = (o.field or "").partition(".")
    ranges = {"server": RANGES, "agent": AGENT_RANGES}.get(role, {})
    if name in ranges:
        if o.minimum is not None or o.above is not None:
            raise AssertionError(
                f"{o.flag}: its range is the {role} config's (RANGES[{name!r}]), not the row's"
            )
        rng = ranges[name][1]
        o = dataclasses.replace(o, minimum=rng.minimum, above=rng.above)
    return o


# Defaults and ranges that come from the config dataclasses are filled in once, here.
OPTIONS = tuple(_from_config(o) for o in OPTIONS)
BY_DEST: dict[str, Option] = {o.dest: o for o in OPTIONS}


def for_command(command: str) -> list[Option]:
    """The options ``command`` has, in table order."""
    return [o for o in OPTIONS if command in o.commands]


def grouped(opts: list[Option] | tuple[Option, ...] = OPTIONS) -> list[tuple[str, list[Option]]]:
    """``opts`` by group, in :data:`GROUPS` order (table order within a group); empty
    groups left out."""
    return [(g, [o for o in opts if o.group == g]) for g in GROUPS if any(o.group == g for o in opts)]


# ---------------------------------------------------------------------------- argparse
def show_default(o: Option) -> str | None:
    """The default as people read it: ``100`` not ``100.0``, ``off`` for a switch."""
    if o.switch:
        return "on" if o.default else "off"
    if o.default is None:
        return None
    return f"{o.default:g}" if isinstance(o.default, float) else str(o.default)


def _help(o: Option) -> str:
    default = show_default(o)
    extra = f"; one of {', '.join(o.choices)}" if o.choices else ""
    shown = "" if default is None else f"; default {default}"
    return f"{o.help} [env {o.env}{shown}{extra}]".replace("%", "%%")


def add_to_parser(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s flags. Values stay raw (None when absent): :func:`resolve` converts
    and checks them, so a bad flag and a bad variable get the same message."""
    for group, opts in grouped(for_command(command)):
        _add_group(parser.add_argument_group(GROUPS[group][0]), opts)


def _add_group(parser: argparse._ArgumentGroup, opts: list[Option]) -> None:
    for o in opts:
        names = [o.short, o.flag] if o.short else [o.flag]
        if o.switch:
            parser.add_argument(
                *names, dest=o.dest, action="store_const", const=True, default=None, help=_help(o)
            )
        else:
            parser.add_argument(
                *names,
                dest=o.dest,
                default=None,
                help=_help(o),
                metavar=o.metavar or (o.choices and "{" + ",".join(o.choices) + "}") or o.dest.upper(),
            )


# ---------------------------------------------------------------------------- values
def _convert(o: Option, raw: Any, source: str) -> Any:
    """Convert a raw flag or variable value to the option's type, or raise ConfigError."""
    if o.switch:
        if raw is True or str(raw).strip().lower() in _TRUE:
            return True
        if str(raw).strip().lower() in _FALSE:
            return False
        raise ConfigError(
            f"{o.names} must be 1/0 (or true/false, yes/no, on/off), got {raw!r} from {source}", o.flag
        )
    try:
        value = o.type(raw)
    except ValueError:
        kind = {int: "an integer", float: "a number"}.get(o.type, o.type.__name__)
        raise ConfigError(f"{o.names} must be {kind}, got {raw!r} from {source}", o.flag) from None
    if o.type is float and not math.isfinite(value):
        raise ConfigError(f"{o.names} must be a finite number, got {raw!r} from {source}", o.flag)
    return value


def close_matches(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """``": did you mean --agent or --agents?"``: the candidates closest to ``word`` (difflib
    ratio at least 0.75, and within 0.1 of the best), or "" if none is close."""
    scored = sorted(
        ((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in dict.fromkeys(candidates)),
        key=lambda rc: -rc[0],
    )
    best = scored[0][0] if scored else 0.0
    close = [c for r, c in scored if r >= 0.75 and r >= best - 0.1][:3]
    return f": did you mean {' or '.join(close)}?" if close else ""


def _check(o: Option, value: Any, source: str) -> None:
    """Raise ConfigError if ``value`` is outside the option's choices or range."""
    if o.choices is not None and value not in o.choices:
        raise ConfigError(
            f"{o.names} must be one of {', '.join(o.choices)}, got {value!r} from {source}"
            + close_matches(str(value), o.choices),
            o.flag,
        )
    if o.minimum is not None and value < o.minimum:
        raise ConfigError(f"{o.names} must be at least {o.minimum:g}, got {value!r} from {source}", o.flag)
    if o.above is not None and not value > o.above:
        raise ConfigError(f"{o.names} must be greater than {o.above:g}, got {value!r} from {source}", o.flag)


def resolve_one(o: Option, given: Any, environ: Mapping[str, str]) -> Any:
    """The option's value: the flag if given, else its variable if set (and not empty),
    else the default; converted and checked."""
    if given is not None:
        raw, source = given, o.flag
    elif environ.get(o.env, "").strip():
        raw, source = environ[o.env].strip(), o.env
    else:
        return o.default
    value = _convert(o, raw, source)
    _check(o, value, source)
    return value


def given(
    args: argparse.Namespace | Mapping[str, Any], command: str, environ: Mapping[str, str] | None = None
) -> set[str]:
    """The dest names of ``command``'s options set by a flag or a (non-empty) variable."""
    environ = os.environ if environ is None else environ
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return {
        o.dest
        for o in for_command(command)
        if values.get(o.dest) is not None or environ.get(o.env, "").strip()
    }


def resolve(
    args: argparse.Namespace | Mapping[str, Any], command: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every option of ``command``, by dest name, from parsed flags, variables and defaults."""
    environ = os.environ if environ is None else environ
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return {o.dest: resolve_one(o, given.get(o.dest), environ) for o in for_command(command)}


# ---------------------------------------------------------------------------- configs
def _name_variables(text: str) -> str:
    """Add the variable after each flag a config's own message names: ``--players`` →
    ``--players (TICKWIRE_PLAYERS)``, so every error names both."""

    def named(m: re.Match) -> str:
        o = BY_DEST.get(m.group(1).replace("-", "_"))
        return o.names if o else m.group(0)

    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)(?! \(TICKWIRE_)", named, text)


def _fields_for(role: str, cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Config fields of ``role`` filled by options present in ``values``."""
    known = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for dest, value in values.items():
        o = BY_DEST[dest]
        if o.field and o.field.startswith(role + "."):
            name = o.field.split(".", 1)[1]
            if name in known:
                out[name] = value
            elif value is not None:
                raise ConfigError(
                    f"{o.names} is not supported by this version of the server "
                    f"({cls.__name__} has no field {name!r})",
                    o.flag,
                )
    return out


def _key(values: Mapping[str, Any]) -> dict[str, Any]:
    """``--key`` fills ``key_path`` of whichever role has it (server and agent share it)."""
    return {"key_path": values["key"]} if values.get("key") is not None else {}


def server_config(values: Mapping[str, Any], **override: Any) -> ServerConfig:
    """The server's config from resolved option values; validated once, here."""
    try:
        return ServerConfig(**{**_fields_for("server", ServerConfig, values), **_key(values), **override})
    except ConfigError as e:
        raise ConfigError(_name_variables(str(e)), getattr(e, "option", None)) from None


def agent_config(values: Mapping[str, Any], **override: Any) -> AgentConfig:
    """An agent process's config from resolved option values."""
    if not values.get("connect"):
        raise ConfigError(
            f"no server address: pass {BY_DEST['connect'].names} e.g. --connect tcp://HOST:5555", "--connect"
        )
    try:
        return AgentConfig(**{**_fields_for("agent", AgentConfig, values), **_key(values), **override})
    except ConfigError as e:
        raise ConfigError(_name_variables(str(e)), getattr(e, "option", None)) from None


# ---------------------------------------------------------------------------- README
def markdown_table() -> str:
    """The docs' flag tables, one per group (a heading each), generated from :data:`OPTIONS`."""
    return "\n\n".join(
        f"### {GROUPS[g][0]}\n\n{GROUPS[g][1][0].upper()}{GROUPS[g][1][1:]}.\n\n{_group_table(opts)}"
        for g, opts in grouped()
    )


def _group_table(opts: list[Option]) -> str:
    rows = ["| flag | environment variable | default | commands | meaning |", "|---|---|---|---|---|"]
    for o in opts:
        flag = f"`{o.short}`, `{o.flag}`" if o.short else f"`{o.flag}`"
        if o.choices:
            flag += " " + "\\|".join(f"`{c}`" for c in o.choices)
        elif not o.switch:
            flag += f" {o.metavar or o.dest.upper()}"
        shown = show_default(o)
        default = shown if o.switch else "—" if shown is None else f"`{shown}`"
        rows.append(f"| {flag} | `{o.env}` | {default} | {', '.join(o.commands)} | {o.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
