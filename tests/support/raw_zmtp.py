"""A hostile peer's own ZMTP 3.0 framing over a plain socket: nothing in a ZeroMQ client limits
what it sends (oversized frames, endless streams)."""

from __future__ import annotations

import socket
import struct


def tcp_address(endpoint: str) -> tuple[str, int]:
    """(host, port) of a ``tcp://HOST:PORT`` endpoint."""
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    return host, int(port)


def zmtp(endpoint: str, socket_type: bytes) -> socket.socket:
    """A raw TCP connection that has done a ZMTP 3.0 NULL handshake as ``socket_type``:
    the attacker's own framing, so nothing in the client limits what it sends."""
    if endpoint.startswith("ipc://"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(endpoint.removeprefix("ipc://"))
    else:
        s = socket.create_connection(tcp_address(endpoint), timeout=10)
    s.sendall(
        b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    )
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    s.sendall(b"\x04" + bytes([len(body)]) + body)
    recv_exactly(s, 64)  # the server's greeting, then its READY: the handshake is done
    flags = recv_exactly(s, 1)[0]
    size = recv_exactly(s, 8 if flags & 0x02 else 1)
    recv_exactly(s, int.from_bytes(size, "big"))
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``s``; fails if the server closes the connection first."""
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise AssertionError("the server closed the connection during the ZMTP handshake")
        data += chunk
    return data


def send_frame_header(s: socket.socket, size: int, more: bool) -> bool:
    """False once the server cut the link."""
    try:
        s.sendall(bytes([0x03 if more else 0x02]) + struct.pack(">Q", size))
    except OSError:
        return False
    return True


def stream(s: socket.socket, total: int, chunk: bytes) -> bool:
    """Send ``total`` bytes of ``chunk`` repeats; False once the server cut the link."""
    try:
        while total > 0:
            s.sendall(chunk[:total])
            total -= len(chunk)
    except OSError:  # reset or broken pipe: the server disconnected us
        return False
    return True
