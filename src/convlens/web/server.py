"""Serve the app with uvicorn on a socket we bind ourselves.

Binding first gives a one-line error for a port in use (instead of a uvicorn traceback),
makes ``--port 0`` (any free port) print the port it got, and keeps the default on the
loopback interface, where only this computer can reach the page.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from convlens.data.config import DataConfig
from convlens.errors import OptionError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one), or an OptionError."""
    if not 0 <= port <= 65535:
        raise OptionError(f"--port {port} is not valid; use 1 to 65535 (or 0 for any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # connections accepted from a socket that says it is TCP. With proto 0 every answer on
    # a kept-alive connection waits for the browser's delayed ACK: 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        reason = err.strerror or str(err)
        raise OptionError(
            f"cannot listen on {host}:{port} ({reason}); choose another --port or --host"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    runs_dir: Path,
    data: DataConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the lab until Ctrl-C; ``announce`` gets the URL once the socket is bound."""
    import uvicorn

    from convlens.web.app import create_app

    sock = bind(host, port)
    hosts = None
    if is_loopback(host):  # refuse other Host headers: no DNS-rebinding page gets in
        port_text = str(sock.getsockname()[1])
        hosts = [*LOOPBACK_NAMES, *(f"{name}:{port_text}" for name in LOOPBACK_NAMES)]
    app = create_app(runs_dir, data=data, allowed_hosts=hosts)
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=3,  # open event streams must not hold up Ctrl-C
        access_log=False,
    )
    announce(url_for(sock))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
