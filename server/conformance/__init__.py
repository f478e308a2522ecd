"""``tickwire conformance -- COMMAND``: check an agent program in any language against a
scripted server, check by check (see :mod:`.checks` for the scenarios).

The command is started as tickwire starts its own agents' processes, with the endpoint in
its environment: ``TICKWIRE_CONNECT`` (the base address, ``tcp://127.0.0.1:P``: state P,
actions P+1, control P+2), ``TICKWIRE_SLOT`` when it is restarted to take its slot back, and
with ``--keys`` ``TICKWIRE_KEY`` (its secret key file) and ``TICKWIRE_SERVER_KEY`` (the
server's public key file). ``tickwire agent`` reads exactly these, so
``tickwire conformance -- tickwire agent`` checks the Python SDK.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from typing import Any

from .checks import CHECKS, Check, Conformance

__all__ = ["CHECKS", "Check", "Conformance", "main", "run_conformance"]

#: Exit codes of ``tickwire conformance``.
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_STARTED = 0, 1, 2, 3


def run_conformance(command: list[str], timeout_s: float = 10.0, keys: bool = False) -> list[Check]:
    """Check ``command`` (argv of an agent program); every check's result, in report order.
    Raises OSError if the command cannot be started."""
    workdir = tempfile.mkdtemp(prefix="tickwire-conformance-")
    try:
        return Conformance(command, workdir, timeout_s, keys).run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the flags before ``--`` (the command after it is not parsed)."""
    checks = "\n".join(f"  {name:<13} {text}" for name, text in CHECKS.items())
    parser = argparse.ArgumentParser(
        prog="tickwire conformance",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="tickwire conformance [--json] [--keys] [--timeout S] -- COMMAND [ARGS...]",
        description="Run an agent program (any language) against a scripted tickwire server "
        "and report, check by check, what it does right and wrong. The command is started "
        "three times (play, rejoin, private views) as player 1 of 3 in the grid world. "
        "It learns the server from its environment, as `tickwire agent` does: "
        "TICKWIRE_CONNECT (base address tcp://127.0.0.1:P: state P, actions P+1, control "
        "P+2); TICKWIRE_SLOT (set when it is restarted to take its slot back); with --keys, "
        "TICKWIRE_KEY (its NAME.key_secret file) and TICKWIRE_SERVER_KEY (the server's "
        "public server.key file). Example: tickwire conformance -- ./agent",
        epilog=f"checks:\n{checks}\n\nexit codes:\n  0  every required check passed\n"
        "  1  a required check failed (the report names it)\n"
        "  2  usage error (no COMMAND, a bad flag)\n"
        "  3  the command could not be started (not found, not executable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the text report"
    )
    parser.add_argument(
        "--keys",
        action="store_true",
        help="run with CURVE keys: the command gets TICKWIRE_KEY and TICKWIRE_SERVER_KEY, "
        "and the keys check counts",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds the agent has to JOIN and to prove readiness after WELCOME (default 10)",
    )
    return parser


def format_report(checks: list[Check], command: list[str]) -> str:
    """The text report: one line per check, then the verdict."""
    lines = [f"tickwire conformance: {' '.join(command)}"]
    for c in checks:
        line = f"{c.status} {c.name}: expected {c.expected}; seen {c.seen}"
        lines.append(line + (f"; to do: {c.fix}" if c.fix else ""))
    failed = [c.name for c in checks if c.status == "FAIL" and c.required]
    skipped = sum(c.status == "SKIP" for c in checks)
    lines.append(
        f"conformance: {'FAILED' if failed else 'PASSED'} ({len(checks) - len(failed) - skipped} of "
        f"{len(checks)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; {skipped} skipped" if skipped else "")
        + ")"
    )
    return "\n".join(lines)


def _verdict(checks: list[Check]) -> int:
    return EXIT_FAILED if any(c.status == "FAIL" and c.required for c in checks) else EXIT_PASSED


def _usage_json(as_json: bool, problem: str) -> None:
    if as_json:  # with --json, one JSON object whatever the outcome
        print(json.dumps({"outcome": "usage_error", "exit_code": EXIT_USAGE, "error": problem}), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``tickwire conformance [--json] [--keys] [--timeout S] -- COMMAND ARGS...``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, command = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser()
    as_json = "--json" in ours
    try:
        args = parser.parse_args(ours)
    except SystemExit as e:  # --help (0) or a bad flag (2: argparse said why on stderr)
        if e.code:
            _usage_json(as_json, "bad flags (see tickwire conformance --help)")
        return EXIT_USAGE if e.code else EXIT_PASSED
    if not command or not args.timeout > 0:
        parser.print_usage(sys.stderr)
        problem = "no COMMAND after --" if not command else f"--timeout must be > 0, got {args.timeout}"
        print(f"tickwire conformance: {problem} (see tickwire conformance --help)", file=sys.stderr)
        _usage_json(as_json, problem)
        return EXIT_USAGE
    try:
        checks = run_conformance(command, args.timeout, args.keys)
    except OSError as e:
        print(
            f"tickwire conformance: cannot start {command[0]!r}: {e.strerror or e}; check the path "
            "and that it is executable",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps({"outcome": "not_started", "exit_code": EXIT_NOT_STARTED, "error": str(e)}))
        return EXIT_NOT_STARTED
    code = _verdict(checks)
    if args.json:
        out: dict[str, Any] = {
            "outcome": "passed" if code == EXIT_PASSED else "failed",
            "exit_code": code,
            "command": command,
            "checks": [c.as_dict() for c in checks],
            "failed": [c.name for c in checks if c.status == "FAIL" and c.required],
        }
        print(json.dumps(out, sort_keys=True), flush=True)
    else:
        print(format_report(checks, command), flush=True)
    return code
