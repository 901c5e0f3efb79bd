"""A bounded load test on loopback: concurrent predictions and feature maps.

``convlens serve`` runs in a subprocess (its own memory, as in use) on a free port of
127.0.0.1; a fixed number of client threads send prediction and feature-map requests for
a fixed time, then stop. Checked: no request fails, and the server's memory (RSS) after
the load is close to what it was after a warm-up. Latency percentiles are printed and,
with ``CONVLENS_LOAD_REPORT=path``, written there as JSON. ``CONVLENS_LOAD_SECONDS`` and
``CONVLENS_LOAD_CLIENTS`` change the defaults (5 s, 8 clients).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

SECONDS = float(os.environ.get("CONVLENS_LOAD_SECONDS", "5"))
CLIENTS = int(os.environ.get("CONVLENS_LOAD_CLIENTS", "8"))
WARMUP_SECONDS = 1.5
RSS_TOLERANCE_MB = 40.0  # after warm-up, allocator noise only; a leak per request shows


@pytest.fixture
def server(runs_dir: Path, tiny_idx_dir: Path):
    """``convlens serve --port 0`` in a subprocess; yields (host, port, pid)."""
    command = [
        sys.executable,
        "-m",
        "convlens",
        "serve",
        "--runs",
        str(runs_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        f"idx:{tiny_idx_dir}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://(127\.0\.0\.1):(\d+)/", line)
        assert match, f"serve printed {line!r}"
        host, port = match.group(1), int(match.group(2))
        assert host == "127.0.0.1"  # loopback only, whatever happens
        # keep reading what the server prints, so a full pipe never blocks it
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield host, port, process.pid
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C would
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else None


def hammer(host: str, port: int, seconds: float, clients: int) -> tuple[list, list]:
    """``clients`` threads, each with one keep-alive connection, for ``seconds``."""
    drawing = np.zeros((28, 28), dtype=np.uint8)
    drawing[:, 3::6] = 220
    body = json.dumps({"run": "cnn", "pixels": drawing.tolist()}).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[tuple[str, float]] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def connect() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.connect()
        # As browsers do: without it, headers and body go out in two packets and Nagle's
        # algorithm waits for the server's delayed ACK, adding 40 ms to every request.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def client(number: int) -> None:
        connection = connect()
        paths = ("/api/predict", "/api/features")
        count = number
        while time.monotonic() < stop:
            path = paths[count % 2]
            count += 1
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and payload.startswith(b"{")
            except (OSError, http.client.HTTPException) as err:
                ok, payload = False, str(err).encode()
                connection.close()
                connection = connect()
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append((path, elapsed))
                else:
                    failures.append(f"{path}: {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return latencies, failures


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {
        "count": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def test_concurrent_predictions_and_feature_maps_hold_up(server) -> None:
    host, port, pid = server
    _, warm_failures = hammer(host, port, WARMUP_SECONDS, CLIENTS)  # caches, threads, arenas
    assert not warm_failures, warm_failures[:3]
    before = rss_mb(pid)
    started = time.monotonic()
    latencies, failures = hammer(host, port, SECONDS, CLIENTS)
    wall = time.monotonic() - started
    after = rss_mb(pid)

    report = {
        "clients": CLIENTS,
        "seconds": round(wall, 2),
        "requests": len(latencies),
        "failures": len(failures),
        "requests_per_second": round(len(latencies) / wall, 1),
        "all": percentiles([t for _, t in latencies]),
        "predict": percentiles([t for p, t in latencies if p == "/api/predict"]),
        "features": percentiles([t for p, t in latencies if p == "/api/features"]),
        "rss_mb_before": None if before is None else round(before, 1),
        "rss_mb_after": None if after is None else round(after, 1),
        "cpus": os.cpu_count(),
    }
    print("\nload test on 127.0.0.1:", json.dumps(report, indent=2))
    target = os.environ.get("CONVLENS_LOAD_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, indent=2) + "\n")

    assert not failures, failures[:3]
    assert len(latencies) >= CLIENTS  # every client got answers
    assert wall < SECONDS + 30  # it stops by itself
    if before is not None and after is not None:
        assert after - before < RSS_TOLERANCE_MB, report
