"""What the app holds between requests: where the runs are, caches, the trainer.

One :class:`LabState` per app (``create_app`` makes it), reached from a request with
:func:`lab`. Everything in it is safe to share between the request threads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from convlens.data.config import DataConfig
    from convlens.web.pictures import Pictures
    from convlens.web.runrefs import NetworkCache
    from convlens.web.training import TrainingManager


@dataclass
class LabState:
    runs_dir: Path  # every run the page reads or writes lives under it
    data: DataConfig  # what "train from the page" trains on (fixed by the server)
    pictures: Pictures
    networks: NetworkCache
    training: TrainingManager
    # Heavy requests (a forward pass, a convolution of the photo) run at most this many at
    # once: more would only share the same cores, thrash the GIL and torch's threads, and
    # finish later all together. The rest wait their turn in the server's thread pool.
    compute: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(max(1, min(4, os.cpu_count() or 1)))
    )


def lab(request: Request) -> LabState:
    return request.app.state.lab
