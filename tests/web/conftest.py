"""Fixtures for the web tests: tiny trained runs, an in-process client, a live server.

The runs are trained once per session with the real CLI on the tiny pattern dataset
(tests/conftest.py), so the page is tested against ordinary run folders.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from convlens.data.config import DataConfig

CNN = "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"  # noqa: E501
DNN = "flatten, dense(16, relu), dense(3, softmax)"


def library_message(**config: object) -> str:
    """The one line :class:`TrainConfig` refuses ``config`` with: what the page shows."""
    from convlens.errors import OptionError
    from convlens.recipe import TrainConfig

    with pytest.raises(OptionError) as err:
        TrainConfig(**config)
    return str(err.value)


def library_field(**config: object) -> str | None:
    """The field :class:`TrainConfig` names when it refuses ``config``: the control the
    page marks."""
    from convlens.errors import OptionError
    from convlens.recipe import TrainConfig

    with pytest.raises(OptionError) as err:
        TrainConfig(**config)
    return err.value.field


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, tiny_idx_dir: Path, tiny_runs) -> Path:
    """A runs folder with ``cnn`` (conv and pool layers) and ``dnn`` (none), 1 epoch each."""
    return tiny_runs(tmp_path_factory.mktemp("web-runs"), tiny_idx_dir, {"cnn": CNN, "dnn": DNN})


@pytest.fixture
def runs_dir(tmp_path: Path, trained_runs: Path) -> Path:
    """A private copy of the trained runs (tests may add runs or break them)."""
    target = tmp_path / "runs"
    shutil.copytree(trained_runs, target)
    return target


@pytest.fixture
def tiny_data(tiny_idx_dir: Path) -> DataConfig:
    """What "train from the page" trains on in the tests: the tiny pattern dataset."""
    return DataConfig(dataset=f"idx:{tiny_idx_dir}")


@pytest.fixture
def client(runs_dir: Path, tiny_data: DataConfig) -> Iterator:
    from starlette.testclient import TestClient

    from convlens.web import create_app

    with TestClient(create_app(runs_dir, data=tiny_data)) as test_client:
        yield test_client


class LiveServer:
    """The app under uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, runs_dir: Path, data: DataConfig) -> None:
        import uvicorn

        from convlens.web.app import create_app
        from convlens.web.server import bind, url_for

        self.sock = bind("127.0.0.1", 0)
        self.url = url_for(self.sock)
        config = uvicorn.Config(
            create_app(runs_dir, data=data), log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live_server(runs_dir: Path, tiny_data: DataConfig) -> Iterator[LiveServer]:
    with LiveServer(runs_dir, tiny_data) as server:
        yield server
