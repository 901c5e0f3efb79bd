"""The README's library examples run as written (issue 16: they had drifted from the API).

Every ```python block of README.md's "Library" section is run, in order, in one fresh
interpreter, in an empty folder, with the data folder set and ``CONVLENS_SMOKE=1`` so
its trainings take seconds. Without the real files it runs on the embedded sample (and
says so). (Examples elsewhere that need the reader's own files, such as a Keras model
to import, are tested by their features' own tests.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def section(text: str, title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## ``."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_readme_python_runs_as_written(tmp_path) -> None:
    blocks = python_blocks(section((ROOT / "README.md").read_text(encoding="utf-8"), "Library"))
    assert blocks, "README.md's Library section has no python example"
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {
        **os.environ,
        "CONVLENS_SMOKE": "1",
        "CONVLENS_RUNS": str(tmp_path / "runs"),
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    data = os.environ.get("CONVLENS_TEST_DATA")
    if data and Path(data).is_dir():
        env["CONVLENS_DATA"] = data
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Total params: 243,786" in done.stdout and "test accuracy" in done.stdout
    assert "smoke test, not a result" in done.stdout  # every result says what it is
    for figure in ("journey.png", "explain.png", "vertical.png"):
        assert (tmp_path / figure).stat().st_size > 1000
