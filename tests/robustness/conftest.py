"""What the hostile cases share: the CLI in a child process, under a memory limit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

#: Address space each hostile child may use: torch itself maps about 1.5 GB, so a case
#: that allocates what it was told to would fail here instead of taking the machine.
MEMORY_LIMIT = 3 * 2**30


def run_limited(*args: str, timeout: float = 60.0, cwd=None) -> subprocess.CompletedProcess:
    """``python -m convlens ARGS`` with RLIMIT_AS at MEMORY_LIMIT and a deadline."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "convlens", *args],
        capture_output=True, text=True, timeout=timeout, check=False, preexec_fn=limit, cwd=cwd,
    )  # fmt: skip


@pytest.fixture
def limited_cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_limited
