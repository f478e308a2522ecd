"""CURVE key files: ``tickwire keys new NAME`` and loading keys for servers and agents.

Key files are ZeroMQ certificates (``zmq.auth``): ``NAME.key`` holds the public key and may be
shared; ``NAME.key_secret`` holds both keys and is written with mode 0600 from the start
(``zmq.auth.create_certificates`` alone would leave it world-readable). A server's allow-list
is a directory of agents' public ``*.key`` files; an agent's key name (the file's stem) is its
ZAP User-Id, the identity the server binds its player slots to.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq
import zmq.auth
from tickwire.protocol.errors import ConfigError
from zmq.auth.certs import _cert_public_banner, _cert_secret_banner, _write_key_file

#: The monitor events that mean "a peer failed the CURVE handshake" (nothing of it was
#: delivered): the server's sockets and a Worker watch for them.
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

MAKE_KEYS_HINT = (
    "make keys with `tickwire keys new server --dir keys` and `tickwire keys new "
    "NAME --dir keys` (one per agent), then copy the agents' public NAME.key files "
    "into the --allow directory"
)


def new_keypair(name: str, directory: str | os.PathLike = ".", slot: int | None = None) -> tuple[Path, Path]:
    """Write ``DIR/NAME.key`` (public) and ``DIR/NAME.key_secret`` (mode 0600); refuse to
    overwrite either. ``slot`` is written into the metadata: a server that allows this key
    gives it that player slot (and the name NAME). Returns both paths."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r} must be a plain file name such as 'server' or 'alice'", "NAME")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = d / f"{name}.key", d / f"{name}.key_secret"
    for p in (public, secret):
        if p.exists():
            raise ConfigError(
                f"{p} already exists; remove it first or choose another NAME (keys are never overwritten)",
                "NAME",
            )
    pub, sec = zmq.curve_keypair()
    # the secret file exists with mode 0600 before a byte of it is written
    meta = None if slot is None else {"slot": str(slot)}
    os.close(os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _write_key_file(secret, _cert_secret_banner, pub, secret_key=sec, metadata=meta)
    _write_key_file(public, _cert_public_banner, pub, metadata=meta)
    return public, secret


def _load(path: str | os.PathLike, what: str, flag: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(os.fspath(path))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {what} from {flag} {path}: {e}; {MAKE_KEYS_HINT}", flag) from None


def load_secret(path: str | os.PathLike, flag: str = "--key") -> tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file; refuse one that others may read."""
    public, secret = _load(path, "a secret key", flag)
    if secret is None:
        raise ConfigError(
            f"{flag} {path} holds no secret key: pass the NAME.key_secret file, not NAME.key", flag
        )
    mode = os.stat(path).st_mode & 0o077
    if mode:
        raise ConfigError(
            f"{flag} {path} is readable by other users (mode "
            f"{os.stat(path).st_mode & 0o777:o}); run `chmod 600 {path}`",
            flag,
        )
    return public, secret


def load_public(path: str | os.PathLike, flag: str = "--server-key") -> bytes:
    """The public key in a ``.key`` (or ``.key_secret``) file."""
    return _load(path, "a public key", flag)[0]


def client_keys(
    key_path: str | os.PathLike | None,
    server_key_path: str | os.PathLike | None,
    key_flag: str = "--key",
    server_flag: str = "--server-key",
) -> tuple[bytes, bytes, bytes] | None:
    """(own public, own secret, server public) for a CURVE client, or None without keys;
    the two paths go together (a client needs its own secret and the server's public key)."""
    if key_path is None and server_key_path is None:
        return None
    if key_path is None or server_key_path is None:
        raise ConfigError(
            f"{key_flag} and {server_flag} go together: a client needs its own "
            "secret key and the server's public key to connect with CURVE",
            key_flag if key_path is None else server_flag,
        )
    public, secret = load_secret(key_path, key_flag)
    return public, secret, load_public(server_key_path, server_flag)


def key_slot(path: str | os.PathLike) -> int | None:
    """The ``slot = N`` line of a key file's metadata section, if any."""
    section = ""
    for line in Path(path).read_text().splitlines():
        if line and not line[0].isspace():
            section = line.strip()
        elif section == "metadata" and line.strip().startswith("slot"):
            value = line.split("=", 1)[1].strip().strip('"')
            if not value.isdigit():
                raise ConfigError(f"{path}: metadata slot must be a player number, got {value!r}", "--allow")
            return int(value)
    return None


def fixed_slots(directory: str | os.PathLike) -> dict[str, int]:
    """{key name: slot} for the allowed keys whose metadata names a slot; slots unique."""
    out: dict[str, int] = {}
    for p in sorted(Path(directory).glob("*.key")):
        slot = key_slot(p)
        if slot is None:
            continue
        if slot in out.values():
            raise ConfigError(
                f"--allow {directory}: slot {slot} is given to two keys; give each key its own slot",
                "--allow",
            )
        out[p.name[: -len(".key")]] = slot
    return out


def allowed_keys(directory: str | os.PathLike, flag: str = "--allow") -> dict[bytes, str]:
    """{public key (z85): name} for every ``*.key`` file in ``directory``; at least one."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{flag} {d} is not a directory; {MAKE_KEYS_HINT}", flag)
    keys = {load_public(p, flag): p.name[: -len(".key")] for p in sorted(d.glob("*.key"))}
    if not keys:
        raise ConfigError(
            f"{flag} {d} holds no public *.key files, so no agent could join; {MAKE_KEYS_HINT}", flag
        )
    return keys
