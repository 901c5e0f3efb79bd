"""What convlens says without stopping: warnings a notebook shows, and the log.

The CLI prints its notices on stderr itself. A library user (a script, a notebook) gets
the same sentence twice over: as a :class:`ConvlensWarning` through ``warnings.warn``
(Jupyter shows it under the cell; ``warnings.simplefilter("ignore", ConvlensWarning)``
silences it) and on the ``convlens`` logger, for programs that collect logs. Nothing
here imports torch.
"""

from __future__ import annotations

import logging
import warnings

LOGGER = logging.getLogger("convlens")
# A library adds no output of its own to the log: without this, logging's last-resort
# handler would print every warning a second time on stderr.
LOGGER.addHandler(logging.NullHandler())


class ConvlensWarning(UserWarning):
    """Something the user should know about a result, though nothing failed."""


class SampleDataWarning(ConvlensWarning):
    """The full dataset was not found: results come from the embedded 10% sample."""


class SmokeModeWarning(ConvlensWarning):
    """``CONVLENS_SMOKE=1`` capped a training's epochs and data."""


# Shown every time, not once per line of code: each fallback is a separate fact about a
# separate result. Appended, so a user's own filters (e.g. "ignore") still win.
warnings.filterwarnings("always", category=ConvlensWarning, append=True)


def say(message: str, category: type[ConvlensWarning] = ConvlensWarning) -> None:
    """Warn (``category``) and log (WARNING on the ``convlens`` logger) ``message``."""
    LOGGER.warning(message)
    warnings.warn(message, category, stacklevel=3)
