"""The notebooks, run as a learner runs them: in a real Jupyter kernel (nbclient and
ipykernel), top to bottom, with ``CONVLENS_SMOKE=1`` so every training takes seconds.

They are committed without outputs; executed, every cell must run without error and the
results must show as a notebook shows them (text/html tables, image/png figures). The
executed lesson is also rendered to HTML with nbconvert and looked at in Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("lesson.ipynb", "own-data.ipynb")


def read(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name: str) -> None:
    """nbstripout-clean: no outputs, no execution counts, no widget state in metadata."""
    notebook = read(name)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code"
    for cell in code:
        assert cell.get("outputs") == [], f"{name}: a cell keeps its outputs: {cell.source[:60]}"
        assert cell.get("execution_count") is None, f"{name}: an execution count is kept"
    assert "widgets" not in notebook.metadata


def execute(name: str, folder: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the notebook in a fresh kernel, working in ``folder``; return it with outputs."""
    source = Path(__file__).resolve().parents[2] / "src"
    monkeypatch.setenv("CONVLENS_SMOKE", "1")
    monkeypatch.setenv("CONVLENS_RUNS", str(folder / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")])
    )
    data = os.environ.get("CONVLENS_TEST_DATA")
    if data and Path(data).is_dir():
        monkeypatch.setenv("CONVLENS_DATA", data)  # else the embedded sample, said so
    notebook = read(name)
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    return notebook


def outputs_of(notebook, text: str) -> list[dict]:
    """The outputs of the first code cell whose source contains ``text``."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and text in c.source)
    return cell.outputs


def mime(outputs: list[dict]) -> set[str]:
    return {key for out in outputs for key in out.get("data", {})}


@pytest.fixture(scope="module")
def executed_lesson(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("lesson")
    with pytest.MonkeyPatch.context() as patch:
        return execute("lesson.ipynb", folder, patch), folder


def test_the_lesson_runs_in_a_kernel_and_shows_its_results(executed_lesson) -> None:
    notebook, _ = executed_lesson
    for text in ('"laplacian")', "journey(cnn)", "filters(cnn)", "explain(cnn, 0)"):
        assert "image/png" in mime(outputs_of(notebook, text)), f"no figure under {text}"
    for text in ('summary("cnn"', "\ncnn", "compare([", "evaluate(cnn)", '"filters": [16'):
        assert "text/html" in mime(outputs_of(notebook, text)), f"no table under {text}"
    summary = outputs_of(notebook, 'summary("cnn"')[0]["data"]["text/html"]
    assert "(None, 26, 26, 64)" in summary and "243,786" in summary
    # Smoke mode is said under the run, and the live curves left one figure, not five.
    run_cell = outputs_of(notebook, 'train("cnn", config=convlens.TrainConfig(epochs=5)')
    assert "smoke" in "".join(o.get("data", {}).get("text/html", "") for o in run_cell)
    assert sum("image/png" in o.get("data", {}) for o in run_cell) == 1
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_the_own_data_notebook_runs_on_a_light_background_folder(tmp_path, monkeypatch) -> None:
    notebook = execute("own-data.ipynb", tmp_path, monkeypatch)
    described = outputs_of(notebook, "run.preparation.describe()")[0]["data"]["text/plain"]
    assert "dark objects on a light background" in described
    assert "text/html" in mime(outputs_of(notebook, "convlens.predict(run, pictures)"))
    assert "image/png" in mime(outputs_of(notebook, "explain(run, pictures[0])"))


def test_the_executed_lesson_renders_to_html_with_its_figures(executed_lesson, tmp_path) -> None:
    """nbconvert's HTML of the executed lesson, opened in Chromium: the figures decode and
    the page is not blank (the screenshot is kept next to the HTML for people to see)."""
    nbconvert = pytest.importorskip("nbconvert")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    notebook, folder = executed_lesson
    body, _ = nbconvert.HTMLExporter(template_name="classic").from_notebook_node(notebook)
    page_path = folder / "lesson.html"
    page_path.write_text(body, encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        decoded = page.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        tables = page.evaluate("document.querySelectorAll('.output_html table').length")
        shot = page.screenshot(full_page=True, path=str(folder / "lesson.png"))
        browser.close()
    assert len(decoded) >= 8 and all(decoded), "a figure of the lesson does not decode"
    assert tables >= 4
    assert len(shot) > 50_000  # a page of figures, not a blank one
