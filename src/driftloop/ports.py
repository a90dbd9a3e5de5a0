"""Free loopback ports for processes driftloop starts itself."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1.

    All sockets stay bound until every port is picked: asking twice in a row
    for one port can hand back the same number, and a server then refuses to
    start with its HTTP and gRPC ports equal.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]
