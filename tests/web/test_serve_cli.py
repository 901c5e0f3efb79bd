"""``convlens serve`` as a command: its help, and one line for a port it cannot have."""

from __future__ import annotations

import socket

import pytest

from convlens.cli.main import main


def test_serve_is_a_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out and "127.0.0.1" in out and "--port" in out


def test_a_port_in_use_is_one_line(capsys, tmp_path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        code = main(["serve", "--runs", str(tmp_path), "--port", str(port)])
    finally:
        taken.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_loopback_names() -> None:
    from convlens.web.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_kept_alive_connections_answer_at_once(live_server) -> None:
    """Nagle's algorithm is off on accepted connections: a second request on the same
    connection must not wait for a delayed ACK (about 40 ms on Linux)."""
    import http.client
    import time
    from urllib.parse import urlsplit

    url = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(9):
        started = time.perf_counter()
        connection.request("GET", "/api/kernels")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        times.append(time.perf_counter() - started)
    connection.close()
    assert sorted(times)[4] < 0.025, times  # the median; 0.04 s or more with Nagle on
