"""The page in a real browser: headless Chromium from Debian, driven by Playwright.

Skipped (not failed) where /usr/bin/chromium or the playwright package is missing; CI
installs both. Playwright's own browser download is never used: ``executable_path``
points at the system Chromium. Screenshots go to the test's tmp folder, and also to
``$CONVLENS_WEB_SHOTS`` when set (``CONVLENS_WEB_SHOTS=/tmp/web-shots pytest ...``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from convlens.errors import Interrupted
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.progress import SilentReporter

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SMALL = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    # Nothing but the test server may be asked for anything (no CDN, no fonts, ...).
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(live_server.url)
            or route.request.url.startswith("data:")
            else (problems.append(f"outside request: {route.request.url}"), route.abort())
        ),
    )
    page.base = live_server.url
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def shots(tmp_path: Path) -> Iterator:
    folder = tmp_path / "shots"
    folder.mkdir()

    def shoot(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header stays on top
        page.screenshot(path=str(path), full_page=True)
        return path

    yield shoot
    extra = os.environ.get("CONVLENS_WEB_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for path in folder.glob("*.png"):
            shutil.copy(path, Path(extra) / f"e2e-{path.name}")


def wait_until(page, function: str, arg: object = None, timeout: float = 20.0) -> None:
    """Poll a JavaScript expression or function until it is true. (Playwright's
    wait_for_function evaluates strings, which the page's Content-Security-Policy
    rightly forbids; page.evaluate goes through the debugger and is not affected.)"""
    if "=>" not in function:
        function = f"() => ({function})"
    deadline = time.monotonic() + timeout
    while not page.evaluate(function, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {function}"
        page.wait_for_timeout(50)


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # the loopback test server
        return json.load(response)


def test_filter_playground(page, shots) -> None:
    page.goto(page.base + "#filters")
    page.wait_for_selector("#f-out[src^='data:image/png']")
    page.click(".chip[data-name='horizontal']")
    image = page.get_attribute(".thumb.selected", "data-id")
    expected = post(page.base, "/api/filter", {"image": image, "kernel": "horizontal"})
    wait_until(
        page, "png => document.getElementById('f-out').src === png", arg=expected["filtered"]["png"]
    )

    box = page.locator("#f-out").bounding_box()
    scale = box["width"] / expected["filtered"]["width"]
    row, col = 12, 9
    page.mouse.move(box["x"] + (col + 0.5) * scale, box["y"] + (row + 0.5) * scale)
    wait_until(
        page,
        "([r, c]) => { const p = document.getElementById('f-pixel');"
        " return Boolean(p) && p.dataset.row == r && p.dataset.col == c; }",
        arg=[row, col],
    )
    shown = float(page.text_content("#f-sum"))
    work = post(
        page.base, "/api/pixel", {"image": image, "kernel": "horizontal", "row": row, "col": col}
    )
    assert shown == pytest.approx(work["total"], rel=1e-5, abs=1e-9)
    assert page.text_content("#f-clamped").strip() == str(work["clamped"])
    assert page.locator("#f-in-mark").is_visible()
    shots(page, "filters-horizontal")

    # edit the grid by hand: the kernel becomes "custom" and the picture follows
    page.fill("#f-grid input:nth-child(5)", "4")
    wait_until(page, "!document.querySelector('.chip.selected')")
    custom = post(page.base, "/api/filter", {"image": image, "kernel": "-1 -2 -1; 0 4 0; 1 2 1"})
    wait_until(
        page, "png => document.getElementById('f-out').src === png", arg=custom["filtered"]["png"]
    )
    page.click(".thumb[data-id='photo']")
    wait_until(page, "document.getElementById('f-in-size').textContent === '600×512'")
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.wait_for_timeout(300)
    shots(page, "filters-photo")


def draw_bars(page) -> None:
    """Three vertical strokes: what the tiny dataset calls class 0."""
    box = page.locator("#p-canvas").bounding_box()
    for x in (0.25, 0.5, 0.75):
        page.mouse.move(box["x"] + x * box["width"], box["y"] + 0.1 * box["height"])
        page.mouse.down()
        for step in range(1, 9):
            page.mouse.move(
                box["x"] + x * box["width"], box["y"] + (0.1 + 0.1 * step) * box["height"]
            )
        page.mouse.up()


def test_draw_predict_and_follow_the_journey(page, shots) -> None:
    page.goto(page.base + "#predict")
    page.wait_for_selector("#p-run option[value='cnn']", state="attached")
    page.click("#p-clear")
    draw_bars(page)
    page.wait_for_selector(".tile")
    page.wait_for_timeout(700)  # the last live answer lands
    pixels = page.evaluate(
        "() => { const c = document.getElementById('p-canvas').getContext('2d');"
        " const d = c.getImageData(0, 0, 28, 28).data; const rows = [];"
        " for (let r = 0; r < 28; r++) { const row = [];"
        " for (let k = 0; k < 28; k++) row.push(d[(r * 28 + k) * 4]); rows.push(row); }"
        " return rows; }"
    )
    assert max(max(row) for row in pixels) > 200  # the strokes are on the canvas
    run = page.input_value("#p-run")
    answer = post(page.base, "/api/predict", {"run": run, "pixels": pixels})
    assert page.text_content("#p-label") == answer["label"]
    assert page.locator(".bar-name").count() == len(answer["classes"])
    assert page.text_content("#p-saliency-cap") == "Grad-CAM (conv2d_1)"
    assert page.locator(".layer").count() == 4  # conv, pool, conv, pool
    assert page.locator(".strip img").count() == 5  # the input and one map per layer

    page.click(".tile[data-layer='max_pooling2d'][data-index='2']")
    page.wait_for_selector("#p-detail .beside")
    assert "max pooling" in page.text_content("#p-detail")
    page.click(".tile[data-layer='conv2d'][data-index='1']")
    page.wait_for_selector("#p-detail .cells")
    assert page.locator("#p-detail .cell").count() == 9  # the learned 3x3 filter
    shots(page, "predict-journey")

    page.click("text=Try this filter on the Filters tab")
    wait_until(page, "location.hash === '#filters'")
    page.wait_for_selector("#tab-filters:not([hidden])")
    assert "learned filter 1 of conv2d" in page.text_content("#f-kernel-desc")


def test_runs_side_by_side(page, shots) -> None:
    page.goto(page.base + "#runs")
    page.click("#r-table tr[data-name='cnn']")
    page.click("#r-table tr[data-name='dnn']")
    wait_until(page, "document.querySelectorAll('.run-card').length === 2")
    page.wait_for_selector("#r-verdict:not([hidden])")
    verdict = page.text_content("#r-verdict")
    assert "wins" not in verdict and "points apart" in verdict
    assert "McNemar's exact test" in verdict
    wait_until(
        page,
        "[...document.querySelectorAll('.run-card img.figure')].every(i => i.complete"
        " && i.naturalWidth > 0)",
    )
    shots(page, "runs-compare")


def test_train_from_the_page(page, shots, runs_dir) -> None:
    page.goto(page.base + "#train")
    page.wait_for_selector("#t-presets .choice")
    page.fill("#t-spec", SMALL)
    page.check("input[value='custom']")
    page.fill("#t-epochs", "3")
    page.fill("#t-name", "from-page")
    page.click("#t-start")
    wait_until(
        page, "document.getElementById('t-title').textContent.includes('is done')", timeout=60
    )
    assert page.locator("#t-chart path.test").count() == 1
    assert page.locator("#t-chart circle.train").count() == 3
    assert (runs_dir / "from-page" / "model.safetensors").exists()
    shots(page, "train-done")
    page.click("#t-open")
    page.wait_for_selector(".run-card")
    assert "from-page" in page.text_content(".run-card h2")


def test_the_recipe_follows_the_model_and_runs_as_shown(page, shots, runs_dir) -> None:
    page.goto(page.base + "#train")
    page.wait_for_selector("#t-presets .choice")
    fields = ("#t-epochs", "#t-batch", "#t-lr", "#t-schedule")

    def shown() -> tuple:
        return (page.input_value("#t-recipe"), *(page.input_value(f) for f in fields))

    assert shown() == ("", "5", "32", "0.001", "constant")  # cnn: the lesson's recipe
    page.check("input[name='model'][value='quick']")
    assert shown() == ("quick", "2", "128", "0.004", "onecycle")
    assert not page.is_checked("#t-augment")
    page.check("input[value='custom']")
    assert shown() == ("", "5", "32", "0.001", "constant")
    page.select_option("#t-recipe", "fast")
    assert shown() == ("fast", "12", "256", "0.004", "onecycle")
    assert page.is_checked("#t-augment") and page.is_checked("#t-tta")
    assert "AdamW · weight decay 0.05 · label smoothing 0.1" in page.text_content("#t-recipe-rest")
    page.uncheck("#t-augment")  # flip averaging needs a model that saw mirror images
    assert page.is_disabled("#t-tta") and not page.is_checked("#t-tta")
    page.check("#t-augment")
    page.check("#t-tta")
    shots(page, "train-recipe")

    page.fill("#t-spec", SMALL)  # focusing the layers keeps the recipe chosen above
    assert page.input_value("#t-recipe") == "fast"
    page.fill("#t-epochs", "1")
    page.fill("#t-batch", "16")
    page.fill("#t-name", "fast-recipe")
    page.click("#t-start")
    wait_until(
        page, "document.getElementById('t-title').textContent.includes('is done')", timeout=60
    )
    assert "recipe from fast: AdamW · batch 16" in page.text_content("#t-running-recipe")
    config = Run.open("fast-recipe", runs_dir).config
    assert config["recipe"] == "fast"
    train = config["train"]
    assert (train["epochs"], train["batch_size"], train["optimizer"]) == (1, 16, "adamw")
    assert train["augment"] and train["tta_flip"] and train["label_smoothing"] == 0.1


class CtrlCAtEpoch(SilentReporter):
    """Presses Ctrl-C as epoch ``epoch`` starts, as a person at ``convlens train`` would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_an_interrupted_run_from_the_runs_tab(page, shots, runs_dir, tiny_data) -> None:
    from convlens.train.session import train

    with pytest.raises(Interrupted):  # 1 of 2 epochs done, then the library's Ctrl-C path
        train(
            SMALL,
            data=tiny_data,
            config=TrainConfig(epochs=2, precision="fp32"),
            runs_dir=runs_dir,
            name="paused",
            reporter=CtrlCAtEpoch(2),
        )
    assert Run.open("paused", runs_dir).state()["status"] == "interrupted"

    page.goto(page.base + "#runs")
    page.wait_for_selector("#r-table tr[data-name='paused'] button.resume")
    assert page.locator("#r-table button.resume").count() == 1  # cnn and dnn are complete
    page.click("#r-table tr[data-name='paused']")
    page.wait_for_selector(".run-card button.resume")
    recipe = page.text_content(".run-card .recipe")
    assert "its own layers · recipe from the lesson's defaults: Adam · batch 32" in recipe
    shots(page, "runs-interrupted")

    page.click(".run-card button.resume")
    wait_until(page, "location.hash === '#train'")
    wait_until(
        page, "document.getElementById('t-title').textContent.includes('is done')", timeout=60
    )
    assert page.locator("#t-chart circle.train").count() == 2  # epoch 1 from before, and 2
    state = Run.open("paused", runs_dir).state()
    assert state["status"] == "complete" and state["epochs_done"] == 2
    shots(page, "train-resumed")
    page.click("#t-open")
    page.wait_for_selector(".run-card .badge.complete")
    assert page.locator("button.resume").count() == 0
