"""CURVE key pairs for a server and its players, and the command-line flags that use them."""

from __future__ import annotations

from pathlib import Path

from tickwire.plumbing.keys import new_keypair


def keyring(tmp_path: Path, alice_slot: int | None = None) -> dict[str, Path]:
    """server, alice, bob (allowed) and mallory (not) key pairs; the allow directory."""
    keys, allow = tmp_path / "keys", tmp_path / "allow"
    allow.mkdir()
    for name in ("server", "alice", "bob", "mallory"):
        new_keypair(name, keys, alice_slot if name == "alice" else None)
    for name in ("alice", "bob"):
        (allow / f"{name}.key").write_bytes((keys / f"{name}.key").read_bytes())
    return {"dir": keys, "allow": allow}


def server_flags(keys: dict[str, Path]) -> list[str]:
    """`tickwire server` flags for the keyring's server key and allow directory."""
    return ["--key", str(keys["dir"] / "server.key_secret"), "--allow", str(keys["allow"])]


def agent_flags(keys: dict[str, Path], name: str) -> list[str]:
    """`tickwire agent` flags for ``name``'s key pair and the server's public key."""
    return ["--key", str(keys["dir"] / f"{name}.key_secret"), "--server-key", str(keys["dir"] / "server.key")]
