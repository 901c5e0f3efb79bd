"""The page in a real browser: headless Chromium from Debian, driven by Playwright.

Skipped (not failed) where /usr/bin/chromium or the playwright package is missing; CI
installs both. Playwright's own browser download is never used: ``executable_path``
points at the system Chromium. One server and one browser serve the whole module (tests
that add runs give them their own names). Screenshots go to a tmp folder, and also to
``$CONVLENS_WEB_SHOTS`` when set (``CONVLENS_WEB_SHOTS=/tmp/web-shots pytest ...``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from convlens.data.config import DataConfig
from convlens.errors import Interrupted
from convlens.models.registry import PRESETS
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.progress import SilentReporter
from tests.web.conftest import library_message

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SMALL = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TABS = ("filters", "predict", "runs", "train")

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def module_runs(tmp_path_factory: pytest.TempPathFactory, trained_runs: Path) -> Path:
    target = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(trained_runs, target)
    return target


@pytest.fixture(scope="module")
def module_data(tiny_idx_dir: Path) -> DataConfig:
    return DataConfig(dataset=f"idx:{tiny_idx_dir}")


@pytest.fixture(scope="module")
def server(module_runs: Path, module_data: DataConfig) -> Iterator:
    from tests.web.conftest import LiveServer

    with LiveServer(module_runs, module_data) as live:
        yield live


@pytest.fixture
def runs_dir(module_runs: Path) -> Path:
    """The server's runs folder (shared by this module's tests)."""
    return module_runs


@pytest.fixture
def tiny_data(module_data: DataConfig) -> DataConfig:
    return module_data


@contextlib.contextmanager
def opened(browser, server, viewport: dict, *, refusals: bool = False) -> Iterator:
    """A fresh page at ``viewport``; fails the test on page errors or outside requests
    (and on the console's note of a 400 answer, unless the test sends ``refusals``)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    refused = "the server responded with a status of 400"

    def console(message) -> None:
        if message.type == "error" and not (refusals and refused in message.text):
            problems.append(f"console: {message.text}")

    page.on("console", console)
    # Nothing but the test server may be asked for anything (no CDN, no fonts, ...).
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(server.url) or route.request.url.startswith("data:")
            else (problems.append(f"outside request: {route.request.url}"), route.abort())
        ),
    )
    page.base = server.url
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture
def page(browser, server) -> Iterator:
    with opened(browser, server, DESKTOP) as desktop:
        yield desktop


@pytest.fixture(scope="module")
def shot_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("shots")
    yield folder
    extra = os.environ.get("CONVLENS_WEB_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for path in folder.glob("*.png"):
            shutil.copy(path, Path(extra) / f"e2e-{path.name}")


@pytest.fixture
def shots(shot_folder: Path) -> Iterator:
    def shoot(page, name: str) -> Path:
        path = shot_folder / f"{name}.png"
        page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header stays on top
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000  # a picture, not a blank page
        return path

    return shoot


def train_on_page(page, run: str) -> None:
    """Press Start and wait for the Train tab to say the run ``run`` is done."""
    page.click("#t-start")
    wait_until_done(page, run)


def wait_until_done(page, run: str) -> None:
    title = f"{run} is done"
    wait_until(page, "(t) => document.getElementById('t-title').textContent === t", title, 60)


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


def get(base: str, path: str) -> dict:
    with urllib.request.urlopen(base.rstrip("/") + path, timeout=60) as response:
        return json.load(response)


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

    # the arrow keys step the filter along; a pooled pixel explains the largest of its block
    page.focus("#f-out-frame")
    page.keyboard.press("ArrowRight")
    wait_until(page, "document.getElementById('f-pixel').dataset.col == 10")
    assert page.evaluate("document.getElementById('f-pixel').dataset.row") == "12"
    pooled = page.locator("#f-pooled").bounding_box()
    p_row, p_col = 6, 4
    page.mouse.move(pooled["x"] + (p_col + 0.5) * scale, pooled["y"] + (p_row + 0.5) * scale)
    pooling = post(
        page.base,
        "/api/pixel",
        {"image": image, "kernel": "horizontal", "pool": 2, "pool_row": p_row, "pool_col": p_col},
    )
    r, c = pooling["pooling"]["at"]
    wait_until(
        page,
        "([r, c]) => { const p = document.getElementById('f-pixel');"
        " return Boolean(p) && p.dataset.row == r && p.dataset.col == c; }",
        arg=[r, c],
    )
    assert page.evaluate("document.getElementById('f-pool-pixel').dataset.row") == str(p_row)
    assert float(page.text_content("#f-pool-max")) == pytest.approx(pooling["pooling"]["max"])
    assert float(page.text_content("#f-sum")) == pytest.approx(pooling["pooling"]["max"])
    assert page.locator(".pool-step .cell").count() == 4  # the 2x2 block
    assert page.locator(".pool-step .cell.max").count() == 1
    assert page.locator("#f-out-block").is_visible()
    page.click("#f-play")
    wait_until(
        page, "([r, c]) => document.getElementById('f-pool-pixel').dataset.col != c", [0, p_col]
    )
    page.click("#f-play")
    assert page.text_content("#f-play") == "Play"

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
    page.click(".tile[data-layer='conv2d_1'][data-index='3']")
    step_through(page, run, pixels, "conv2d_1", 3, channels=8)  # a sum over 8 input maps
    page.click(".tile[data-layer='conv2d'][data-index='1']")
    page.wait_for_selector("#p-detail .cells")
    assert page.locator("#p-detail .learned .cell").count() == 9  # the learned 3x3 filter
    step_through(page, run, pixels, "conv2d", 1, channels=1)
    shots(page, "predict-journey")

    page.click("text=Try this filter on the Filters tab")
    wait_until(page, "location.hash === '#filters'")
    page.wait_for_selector("#tab-filters:not([hidden])")
    assert "learned filter 1 of conv2d" in page.text_content("#f-kernel-desc")


def step_through(page, run: str, pixels, layer: str, index: int, channels: int) -> None:
    """The Step-through panel of ``layer`` map ``index``: its numbers are the server's, the
    arrow keys move it, and the worked-out value is the layer's own output."""
    panel = f".unit-step[data-layer='{layer}'][data-index='{index}']"
    page.wait_for_selector(f"{panel} .unit-value")
    lead = page.locator(f"{panel} .lead")
    row, col = int(lead.get_attribute("data-row")), int(lead.get_attribute("data-col"))
    page.focus(f"{panel} .where")
    page.keyboard.press("ArrowRight")
    wait_until(page, f'document.querySelector("{panel} .lead").dataset.col == {col + 1}')
    unit = post(
        page.base,
        "/api/unit",
        {"run": run, "pixels": pixels, "layer": layer, "index": index, "row": row,
         "col": col + 1},
    )  # fmt: skip
    total = page.locator(f"{panel} .unit-total")
    assert float(total.get_attribute("data-value")) == pytest.approx(unit["value"], abs=1e-9)
    assert unit["value"] == pytest.approx(unit["layer_value"], abs=1e-5)
    if channels == 1:
        assert page.locator(f"{panel} .cell").count() == 27  # window, weights, products
    else:
        assert page.locator(f"{panel} .ch").count() == channels  # one small sum per map
    page.click(f"{panel} button:has-text('Play')")
    wait_until(page, f'document.querySelector("{panel} .lead").dataset.col != {col + 1}')
    page.click(f"{panel} button:has-text('Pause')")


def charts(page) -> None:
    """Every accuracy chart: whole epochs on the x axis, no label over another."""
    ticks = page.evaluate(
        "() => [...document.querySelectorAll('.chart svg')].map(svg =>"
        " [...svg.querySelectorAll('text.tick')].map(t => t.textContent))"
    )
    assert ticks and all(ticks)
    for labels in ticks:
        assert all(label.isdigit() for label in labels), labels
        assert [int(x) for x in labels] == sorted({int(x) for x in labels})
    overlaps = page.evaluate(
        "() => { const bad = []; for (const svg of document.querySelectorAll('.chart svg')) {"
        " const boxes = [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect());"
        " boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {"
        " if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1"
        " && b.top < a.bottom - 1) bad.push([a.left, a.top, b.left, b.top]); })); }"
        " return bad; }"
    )
    assert not overlaps, overlaps


def test_runs_side_by_side(page, shots) -> None:
    page.goto(page.base + "#runs")
    page.click("#r-table tr[data-name='cnn']")
    page.click("#r-table tr[data-name='dnn']")
    wait_until(page, "document.querySelectorAll('.run-card').length === 2")
    page.wait_for_selector("#r-verdict:not([hidden])")
    verdict = page.text_content("#r-verdict")
    assert "wins" not in verdict and "points apart" in verdict
    assert "McNemar's exact test" in verdict
    page.wait_for_selector("#r-overlay:not([hidden]) svg")
    charts(page)
    shots(page, "runs-compare")


def refusal_beside(page, control: str) -> str:
    """The one line the page shows beside ``control`` after a refusal, once it is there:
    the control is marked invalid, described by the line, and has the focus."""
    line = f"{control}-error"
    page.wait_for_selector(line)
    assert page.get_attribute(control, "aria-invalid") == "true"
    assert line[1:] in page.get_attribute(control, "aria-describedby").split()
    assert page.evaluate("document.activeElement.id") == control[1:]
    assert page.is_hidden("#t-message")  # not also at the bottom of the form
    return page.text_content(line)


def test_train_from_the_page(page, shots, runs_dir) -> None:
    page.goto(page.base + "#train")
    page.wait_for_selector("#t-presets .choice")
    page.fill("#t-spec", SMALL)
    page.check("input[value='custom']")
    page.fill("#t-epochs", "3")
    page.fill("#t-name", "from-page")
    # every text the progress card shows, as it changes: the evaluation must be among them
    page.evaluate(
        "() => { window.seen = new Set(); const note = () => { for (const id of"
        " ['t-step-label', 't-step', 't-sub']) window.seen.add(id + ': '"
        " + document.getElementById(id).textContent); };"
        " new MutationObserver(note).observe(document.getElementById('t-progress'),"
        " {subtree: true, childList: true, characterData: true}); }"
    )
    train_on_page(page, "from-page")
    seen = page.evaluate("[...window.seen]")
    assert "t-step-label: evaluation" in seen and "t-step-label: final evaluation" in seen
    assert any(t.startswith("t-sub: ") and "evaluating" in t for t in seen)
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
    assert shown() == ("quick", "2", "128", "0.006", "onecycle")
    assert (page.input_value("#t-norm-lr"), page.input_value("#t-epoch-images")) == ("4", "45000")
    assert (page.input_value("#t-weight-decay"), page.input_value("#t-label-smoothing")) == (
        "0", "0",
    )  # fmt: skip
    assert not page.is_checked("#t-augment")
    page.check("input[value='custom']")
    assert shown() == ("", "5", "32", "0.001", "constant")
    page.select_option("#t-recipe", "fast")
    assert shown() == ("fast", "20", "256", "0.004", "onecycle")
    assert page.is_checked("#t-augment") and page.is_checked("#t-tta")
    assert page.input_value("#t-optimizer") == "adamw"
    assert (page.input_value("#t-weight-decay"), page.input_value("#t-label-smoothing")) == (
        "0.05", "0.1",
    )  # fmt: skip
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
    train_on_page(page, "fast-recipe")
    assert "recipe from fast: AdamW · batch 16" in page.text_content("#t-running-recipe")
    config = Run.open("fast-recipe", runs_dir).config
    assert config["recipe"] == "fast"
    train = config["train"]
    assert (train["epochs"], train["batch_size"], train["optimizer"]) == (1, 16, "adamw")
    assert train["augment"] and train["tta_flip"] and train["label_smoothing"] == 0.1


def test_flips_weight_average_and_shifts_are_set_on_the_page(browser, server, runs_dir) -> None:
    """The recipe controls for ``flip``, ``ema`` and ``tta_shift``: labelled, inside a
    phone's width, tied to augment, refused with the library's one line when out of
    range, and what they show is what the run's config.json records."""
    controls = ("#t-flip", "#t-ema", "#t-tta-shift")
    with opened(browser, server, PHONE) as phone:
        phone.goto(phone.base + "#train")
        phone.wait_for_selector("#t-presets .choice")
        for control in controls:
            box = phone.locator(control).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    with opened(browser, server, DESKTOP, refusals=True) as page:
        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        labelled = {  # each control's role and the name a screen reader says for it
            "t-flip": ("combobox", "Training flips"),
            "t-ema": ("spinbutton", "Weight average (EMA)"),
            "t-tta-shift": ("checkbox", "Shifts at test time"),
        }
        for control, (role, name) in labelled.items():
            found = page.get_by_role(role, name=re.compile("^" + re.escape(name)))
            assert found.evaluate("e => e.id") == control
        assert page.input_value("#t-flip") == "random" and page.input_value("#t-ema") == "0"
        assert page.is_disabled("#t-tta-shift") and page.is_disabled("#t-flip")  # no augment
        page.fill("#t-spec", SMALL)
        page.check("#t-augment")
        page.select_option("#t-flip", "alternate")
        page.check("#t-tta-shift")
        page.fill("#t-epochs", "1")
        page.fill("#t-name", "views-recipe")

        page.fill("#t-ema", "1")  # a decay of 1 never moves: the library's one line, beside it
        page.click("#t-start")
        assert refusal_beside(page, "#t-ema") == library_message(ema=1.0)
        assert not (runs_dir / "views-recipe").exists()

        page.fill("#t-ema", "0.9")
        train_on_page(page, "views-recipe")
        running = page.text_content("#t-running-recipe")
        assert "alternating flips" in running and "shifts at test time" in running
        assert "weight average 0.9" in running
    train = Run.open("views-recipe", runs_dir).config["train"]
    assert (train["flip"], train["ema"], train["tta_shift"], train["augment"]) == (
        "alternate", 0.9, True, True,
    )  # fmt: skip


def test_optimizer_schedule_and_epoch_size_are_set_on_the_page(
    browser, server, shots, runs_dir
) -> None:
    """The controls for ``optimizer``, ``momentum``, ``norm_lr_scale``, ``warmup``,
    ``anneal``, ``final_lr_scale`` and ``epoch_images``: labelled, with the library's
    help on hover and its choices, inside a phone's width, shown only where they apply,
    filled in by a preset's recipe, refused with the library's one line, and what they
    show is what the run's config.json records."""
    from convlens.option_fields import help_of

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    controls = {  # the control, its role and the name a screen reader says for it
        "optimizer": ("#t-optimizer", "combobox", "Optimizer"),
        "momentum": ("#t-momentum", "spinbutton", "Momentum (SGD)"),
        "norm_lr_scale": ("#t-norm-lr", "spinbutton", "Batchnorm and bias lr factor"),
        "warmup": ("#t-warmup", "spinbutton", "Warm-up (share of steps)"),
        "anneal": ("#t-anneal", "combobox", "Decay shape"),
        "final_lr_scale": ("#t-final-lr", "spinbutton", "Final lr factor"),
        "epoch_images": ("#t-epoch-images", "spinbutton", "Images an epoch"),
    }
    with opened(browser, server, PHONE) as phone:
        phone.goto(phone.base + "#train")
        phone.wait_for_selector("#t-presets .choice")
        phone.check("input[name='model'][value='quick']")  # one-cycle: its three show
        phone.select_option("#t-optimizer", "sgd")
        for control, _, _ in controls.values():
            box = phone.locator(control).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shots(phone, "train-recipe-phone")
    with opened(browser, server, DESKTOP, refusals=True) as page:
        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        page.check("input[name='model'][value='quick']")
        page.select_option("#t-optimizer", "sgd")
        for name, (control, role, label) in controls.items():
            found = page.get_by_role(role, name=re.compile("^" + re.escape(label)))
            assert "#" + found.evaluate("e => e.id") == control
            title = found.evaluate("e => e.closest('label').title")
            assert title.startswith(help_of(fields[name])[:20]), (name, title)
        choices = page.eval_on_selector_all("#t-optimizer option", "os => os.map(o => o.value)")
        assert tuple(choices) == fields["optimizer"].metadata["choices"]
        if axe_script() is not None:  # every control shown (SGD, one-cycle): none fails it
            assert audit(page) == []

        # quick's recipe fills them in; the lesson's and fast's put theirs back
        shown = {n: page.input_value(c) for n, (c, _, _) in controls.items() if n != "optimizer"}
        assert shown == {
            "momentum": "0.9", "norm_lr_scale": "4", "warmup": "0.25", "anneal": "cosine",
            "final_lr_scale": "0.001", "epoch_images": "45000",
        }  # fmt: skip
        page.select_option("#t-recipe", "")
        assert page.input_value("#t-norm-lr") == "1" and page.input_value("#t-epoch-images") == ""
        assert page.get_attribute("#t-epoch-images", "placeholder") == "all"
        assert page.input_value("#t-optimizer") == "adam"
        for hidden in ("#t-momentum", "#t-warmup", "#t-anneal", "#t-final-lr"):
            assert not page.is_visible(hidden), hidden  # adam, constant: they do not apply
        page.select_option("#t-recipe", "fast")
        assert page.input_value("#t-optimizer") == "adamw" and page.is_visible("#t-warmup")
        assert not page.is_visible("#t-momentum")
        page.select_option("#t-recipe", "quick")
        assert page.get_attribute("#t-epoch-images", "placeholder") == "the recipe's 45,000"

        page.fill("#t-spec", SMALL)  # typing layers chooses them, with the lesson's recipe
        page.select_option("#t-recipe", "quick")
        page.select_option("#t-optimizer", "sgd")
        assert page.is_visible("#t-momentum") and page.is_visible("#t-warmup")
        page.fill("#t-epochs", "1")
        page.fill("#t-batch", "16")
        page.fill("#t-lr", "0.05")
        page.fill("#t-name", "schedule-recipe")
        page.fill("#t-momentum", "1")  # never forgets: the library's one line, beside it
        page.click("#t-start")
        assert refusal_beside(page, "#t-momentum") == library_message(momentum=1.0)
        page.fill("#t-momentum", "0.8")  # changed: its line goes
        assert page.locator("#t-momentum-error").count() == 0
        page.fill("#t-warmup", "1")
        page.click("#t-start")
        assert refusal_beside(page, "#t-warmup") == library_message(warmup=1.0)
        assert not (runs_dir / "schedule-recipe").exists()

        page.fill("#t-warmup", "0.3")
        page.select_option("#t-anneal", "linear")
        page.fill("#t-final-lr", "0.01")
        page.fill("#t-norm-lr", "2")
        page.fill("#t-epoch-images", "60")
        shots(page, "train-recipe-schedule")
        train_on_page(page, "schedule-recipe")
        running = page.text_content("#t-running-recipe")
        assert "SGD · batch 16 · lr 0.05 · one-cycle · momentum 0.8 · warm-up 0.3" in running
        assert "linear decay · ending at lr ×0.01" in running
        assert "batchnorm and biases at 2x lr · 60 images an epoch" in running
    train = Run.open("schedule-recipe", runs_dir).config["train"]
    assert {key: train[key] for key in controls} == {
        "optimizer": "sgd", "momentum": 0.8, "norm_lr_scale": 2.0, "warmup": 0.3,
        "anneal": "linear", "final_lr_scale": 0.01, "epoch_images": 60,
    }  # fmt: skip


GAP_SMALL = "conv(4, 3, relu), maxpool(2), gap, dense(3, softmax)"  # takes any image size
#: Every recipe field set to a value none of the presets has, each applying (SGD, one-cycle,
#: augment, Lookahead on): what the form sends and the run's config.json must record.
EVERY_FIELD = {
    "epochs": 1, "batch_size": 16, "lr": 0.01, "optimizer": "sgd", "weight_decay": 0.001,
    "momentum": 0.85, "norm_lr_scale": 4.0, "schedule": "onecycle", "warmup": 0.1,
    "anneal": "linear", "final_lr_scale": 0.0, "label_smoothing": 0.1, "augment": True,
    "flip": "alternate", "tta_flip": True, "tta_shift": True, "ema": 0.9, "epoch_images": 40,
    "resize": "20:0.5", "lookahead": 2, "lookahead_alpha": 0.6,
}  # fmt: skip
CONTROLS = {  # field: the control, its role and the name a screen reader says for it
    "epochs": ("#t-epochs", "spinbutton", "Epochs"),
    "batch_size": ("#t-batch", "spinbutton", "Batch size"),
    "lr": ("#t-lr", "spinbutton", "Learning rate"),
    "optimizer": ("#t-optimizer", "combobox", "Optimizer"),
    "weight_decay": ("#t-weight-decay", "spinbutton", "Weight decay"),
    "momentum": ("#t-momentum", "spinbutton", "Momentum (SGD)"),
    "norm_lr_scale": ("#t-norm-lr", "spinbutton", "Batchnorm and bias lr factor"),
    "schedule": ("#t-schedule", "combobox", "Schedule"),
    "warmup": ("#t-warmup", "spinbutton", "Warm-up (share of steps)"),
    "anneal": ("#t-anneal", "combobox", "Decay shape"),
    "final_lr_scale": ("#t-final-lr", "spinbutton", "Final lr factor"),
    "label_smoothing": ("#t-label-smoothing", "spinbutton", "Label smoothing"),
    "augment": ("#t-augment", "checkbox", "Augment"),
    "flip": ("#t-flip", "combobox", "Training flips"),
    "tta_flip": ("#t-tta", "checkbox", "Flip at test time"),
    "tta_shift": ("#t-tta-shift", "checkbox", "Shifts at test time"),
    "ema": ("#t-ema", "spinbutton", "Weight average (EMA)"),
    "epoch_images": ("#t-epoch-images", "spinbutton", "Images an epoch"),
    "resize": ("#t-resize", "textbox", "Progressive resizing"),
    "lookahead": ("#t-lookahead", "spinbutton", "Lookahead (steps)"),
    "lookahead_alpha": ("#t-lookahead-alpha", "spinbutton", "Lookahead share kept"),
}


def page_words(text: str) -> str:
    """The library's words as the page shows them: each --flag of a recipe field named by
    the label of its control (``--resize`` -> ``"Progressive resizing"``)."""

    def label(flag: re.Match) -> str:
        name = flag.group(1).replace("-", "_")
        return f'"{CONTROLS[name][2]}"' if name in CONTROLS else flag.group(0)

    return re.sub(r"--([a-z-]+)", label, text)


def set_recipe(page, recipe: dict) -> None:
    """Set each recipe control to ``recipe``'s value, as a person would (the ones that
    show others first: augment, optimizer, schedule, lookahead)."""
    first = ("augment", "optimizer", "schedule", "lookahead")
    for name in sorted(recipe, key=lambda n: (n not in first, n)):
        control, role, _ = CONTROLS[name]
        value = recipe[name]
        if role == "checkbox":
            page.set_checked(control, value)
        elif role == "combobox":
            page.select_option(control, value)
        else:
            page.fill(control, str(value))


def test_every_recipe_field_has_a_control_and_the_request_carries_it(
    browser, server, shots, runs_dir
) -> None:
    """Every one of RECIPE_FIELDS has a labelled control with the library's help, set by
    a preset's recipe; set on the page, each is in the request, and config.json records
    what was shown. Lookahead's share shows only with Lookahead on."""
    from convlens.option_fields import help_of
    from convlens.recipe import RECIPE_FIELDS

    assert set(CONTROLS) == set(EVERY_FIELD) == set(RECIPE_FIELDS)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    with opened(browser, server, DESKTOP) as page:
        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        page.check("input[value='custom']")
        page.fill("#t-spec", GAP_SMALL)
        page.select_option("#t-recipe", "fast")  # its recipe fills the new controls in
        fast = {**TrainConfig().to_dict(), **PRESETS["fast"].recipe}
        for name in ("weight_decay", "label_smoothing", "lookahead"):
            assert float(page.input_value(CONTROLS[name][0])) == fast[name], name
        assert page.input_value("#t-resize") == "" and not page.is_visible("#t-lookahead-alpha")
        page.fill("#t-lookahead", "3")
        assert page.is_visible("#t-lookahead-alpha")  # only with Lookahead on
        page.fill("#t-lookahead", "0")
        assert not page.is_visible("#t-lookahead-alpha")

        set_recipe(page, EVERY_FIELD)
        for name, (control, role, label) in CONTROLS.items():
            found = page.get_by_role(role, name=re.compile("^" + re.escape(label)))
            assert "#" + found.evaluate("e => e.id") == control, name
            title = found.evaluate("e => e.closest('label').title")
            assert title == page_words(help_of(fields[name])), name
        if axe_script() is not None:  # every control shown: none fails the audit
            assert audit(page) == []
        page.fill("#t-name", "every-field")
        shots(page, "train-every-field")
        with page.expect_request(
            lambda r: r.url.endswith("/api/train") and r.method == "POST"
        ) as sent:
            page.click("#t-start")
        body = sent.value.post_data_json
        assert {name: body.get(name) for name in RECIPE_FIELDS} == EVERY_FIELD
        wait_until_done(page, "every-field")
        running = page.text_content("#t-running-recipe")
        assert "weight decay 0.001" in running and "label smoothing 0.1" in running
        assert "lookahead every 2 steps, keeping 0.6" in running and "first 20×20" in running
    train = Run.open("every-field", runs_dir).config["train"]
    assert {name: train[name] for name in RECIPE_FIELDS} == EVERY_FIELD


def test_a_phone_shows_each_fields_help_under_it(browser, server, shots) -> None:
    """A phone has no hover: "Explain each field" puts the library's help under each
    control that applies (none under one that does not), inside the screen."""
    from convlens.option_fields import help_of

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    with opened(browser, server, PHONE) as page:
        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        assert not page.is_visible("#t-lr-help")
        page.click("#t-explain")
        assert page.get_attribute("#t-explain", "aria-pressed") == "true"
        for name, (control, _, _) in CONTROLS.items():
            help_line = f"{control}-help"
            assert page.get_attribute(control, "aria-describedby") == help_line[1:]
            if page.is_visible(control):
                assert page.text_content(help_line) == page_words(help_of(fields[name])), name
            else:  # SGD's momentum, one-cycle's three, Lookahead's share: not for the lesson's
                assert not page.is_visible(help_line), name
        fits_a_phone(page, "#tab-train")
        if axe_script() is not None:
            assert audit(page) == []
        shots(page, "train-explained-phone")
        page.click("#t-explain")
        assert not page.is_visible("#t-lr-help")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_refused_field_says_why_beside_its_control(browser, server, shots, runs_dir, size):
    """A value TrainConfig refuses, and progressive resizing on a flatten head (refused
    once the training has loaded data of unknown size), each get the server's one line
    beside their control, its --flags named by the page's labels, inside the screen."""
    viewport = DESKTOP if size == "desktop" else PHONE
    with opened(browser, server, viewport, refusals=True) as page:
        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        page.fill("#t-spec", SMALL)  # flatten: its dense layer needs full-size maps
        page.fill("#t-epochs", "1")
        page.fill("#t-name", f"refused-{size}")
        page.fill("#t-lr", "")
        page.focus("#t-lr")
        page.keyboard.type("1e")  # not a number: the input's value is empty, nothing is sent
        starts: list[str] = []
        page.on(
            "request",
            lambda r: r.method == "POST" and r.url.endswith("/api/train") and starts.append(r.url),
        )
        page.keyboard.press("Enter")  # the keyboard's way to Start
        assert refusal_beside(page, "#t-lr") == '"Learning rate" needs a number, such as 0.001'
        assert starts == []  # refused on the page: nothing was sent
        page.fill("#t-lr", "")
        page.keyboard.type("0,001")  # a decimal comma: the field drops it (0001 = lr 1) unless told
        assert page.input_value("#t-lr") == "0.001"
        assert page.locator("#t-lr-error").count() == 0  # changed: its line goes
        page.fill("#t-label-smoothing", "1")
        page.click("#t-start")
        shown = refusal_beside(page, "#t-label-smoothing")
        assert shown == library_message(label_smoothing=1.0)
        page.fill("#t-label-smoothing", "0.1")
        page.fill("#t-lookahead", "5")
        page.fill("#t-lookahead-alpha", "0")
        page.click("#t-start")
        assert refusal_beside(page, "#t-lookahead-alpha") == library_message(
            lookahead=5, lookahead_alpha=0.0
        )
        page.fill("#t-lookahead-alpha", "0.5")
        page.fill("#t-resize", "20:0.5")
        page.click("#t-start")
        line = refusal_beside(page, "#t-resize")
        final = get(page.base, "/api/train")
        assert final["status"] == "failed" and final["field"] == "resize"
        assert line == page_words(final["message"])
        assert "cannot train on 20x20 images" in line and "--" not in line
        box = page.locator("#t-resize-error").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        if axe_script() is not None:  # the marked control and its line pass the audit
            assert audit(page) == []
        shots(page, f"train-refused-{size}")
        page.fill("#t-resize", "")
        assert page.locator("#t-resize-error").count() == 0
    assert not (runs_dir / f"refused-{size}").exists()


PHONE_TRIPS = (Path(__file__).parent / "phone_trips.js").read_text(encoding="utf-8")


def fits_a_phone(page, tab: str) -> None:
    """Nothing in ``tab`` a learner trips over on a phone (tests/web/phone_trips.js)."""
    trips = page.evaluate(PHONE_TRIPS, tab)
    assert trips == {"wide": [], "small": [], "hidden": [], "broken": []}, (tab, trips)


def canvas_pixels(page) -> list:
    return page.evaluate(
        "() => [...document.getElementById('p-canvas').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data].filter((_, i) => i % 4 === 0)"
    )


@pytest.mark.slow
def test_a_learner_on_a_phone_trains_looks_and_predicts_an_upload(browser, tmp_path, shots) -> None:
    """A learner's walk on a phone from an empty runs folder: Predict says to train first;
    train a small run on the Train tab, open it in Runs, "Predict with it" answers a
    sample at once (not an empty canvas), then an uploaded photo. No tab on the way has
    anything wider than the screen, a target under 24x24, hidden matrix columns or a
    broken number."""
    from PIL import Image, ImageDraw

    from tests.web.conftest import LiveServer

    ten_classes = DataConfig(dataset="fashion-mnist", download=False)  # the embedded sample
    runs = tmp_path / "runs"
    runs.mkdir()
    photo = tmp_path / "shirt.png"  # a light garment on a dark floor, as a phone takes it
    picture = Image.new("RGB", (300, 240), (40, 40, 48))
    ImageDraw.Draw(picture).polygon(
        [(90, 40), (210, 40), (260, 100), (220, 110), (215, 220), (85, 220), (80, 110), (40, 100)],
        fill=(230, 225, 210),
    )
    picture.save(photo)
    with LiveServer(runs, ten_classes) as fresh, opened(browser, fresh, PHONE) as page:
        page.goto(page.base + "#predict")
        page.wait_for_selector("#p-message:not([hidden])")
        assert "No trained run yet" in page.text_content("#p-message")
        page.click(".tabs a[data-tab='train']")
        page.wait_for_selector("#t-presets .choice")
        # ten classes (a 10x10 matrix) and a six-figure parameter count in the layer table
        page.fill("#t-spec", "conv(4, 3, relu), maxpool(2), flatten, dense(256, relu), dense(10)")
        page.fill("#t-epochs", "1")
        page.fill("#t-subset", "600")
        page.fill("#t-name", "first-run")
        fits_a_phone(page, "#tab-train")
        train_on_page(page, "first-run")
        fits_a_phone(page, "#tab-train")
        page.click("#t-open")
        page.wait_for_selector(".run-card[data-name='first-run'] .confusion")
        fits_a_phone(page, "#tab-runs")
        shots(page, "phone-walk-run")

        page.click(".tabs a[data-tab='train']")
        page.click("#t-try")
        wait_until(page, "location.hash === '#predict'")
        names = Run.open("first-run", runs).class_names
        answered = "names => names.includes(document.getElementById('p-label').textContent)"
        wait_until(page, answered, names)  # a sample, answered without drawing anything
        page.wait_for_selector(".tile")
        sample = canvas_pixels(page)
        page.set_input_files("#p-upload", str(photo))
        wait_until(
            page,
            "(old) => { const d = document.getElementById('p-canvas')"
            ".getContext('2d').getImageData(0, 0, 28, 28).data;"
            " return d.some((v, i) => i % 4 === 0 && v !== old[i / 4]); }",
            sample,
        )
        wait_until(page, answered, names)
        assert canvas_pixels(page) != sample
        fits_a_phone(page, "#tab-predict")
        shots(page, "phone-walk-predict")


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
    wait_until_done(page, "paused")
    assert page.locator("#t-chart circle.train").count() == 2  # epoch 1 from before, and 2
    state = Run.open("paused", runs_dir).state()
    assert state["status"] == "complete" and state["epochs_done"] == 2
    shots(page, "train-resumed")
    page.click("#t-open")
    page.wait_for_selector(".run-card .badge.complete")
    assert page.locator("button.resume").count() == 0


def run_card_at_each_size(browser, server, name: str) -> Iterator[tuple[str, object]]:
    """The Runs tab opened on run ``name``'s card with its chart drawn, at desktop size,
    then at phone size: ``(size, page)`` for each."""
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with opened(browser, server, viewport) as page:
            page.goto(page.base + "#runs")
            page.click(f"#r-table tr[data-name='{name}']")
            page.wait_for_selector(".run-card .chart svg")
            yield size, page


def test_a_run_judged_with_views_says_which_figures_have_them(
    browser, server, shots, runs_dir, tiny_data
) -> None:
    """The lines are every epoch on the image alone; the last epoch's figures with the
    recipe's views are diamonds, named in the legend, the note and the headline figures."""
    from convlens.train.session import train

    config = TrainConfig(epochs=2, precision="fp32", augment=True, tta_flip=True)
    train(SMALL, data=tiny_data, config=config, runs_dir=runs_dir, name="views")
    try:
        for size, page in run_card_at_each_size(browser, server, "views"):
            card = page.text_content(".run-card")
            assert "Test accuracy (2 views)" in card and "Train accuracy (2 views)" in card
            assert "the diamonds are epoch 2 judged again with this recipe's 2" in card
            assert page.locator(".run-card .chart path.views").count() == 2  # train, test
            assert page.locator(".run-card .chart circle.test").count() == 2
            assert "◆ 2 views" in page.text_content(".run-card .chart svg")
            charts(page)
            shots(page, f"runs-views-{size}")
    finally:
        shutil.rmtree(runs_dir / "views")  # the other tests count the module's runs


def test_a_small_run_judged_on_a_test_sample_says_so(
    browser, server, shots, runs_dir, tiny_data, monkeypatch
) -> None:
    """A small run's test line is a fixed test sample: the card's note says how many of
    the test images, the points' tooltips and the training log's lines say "sampled"."""
    from convlens.train import epoch_evaluation
    from convlens.train.session import train

    monkeypatch.setattr(epoch_evaluation, "TEST_SAMPLE_IMAGES", 24)
    config = TrainConfig(epochs=2, precision="fp32", train_subset=15)  # 45 < 60 test images
    train(SMALL, data=tiny_data, config=config, runs_dir=runs_dir, name="sampled")
    try:
        for size, page in run_card_at_each_size(browser, server, "sampled"):
            note = page.text_content(".run-card .sample-note")
            assert "the same 24 of the 60 test images" in note
            assert "on all 60 test images" in note
            tips = page.locator(".run-card .chart circle.test title").all_text_contents()
            assert len(tips) == 2 and all("test (24 sampled)" in t for t in tips)
            charts(page)
            shots(page, f"runs-sampled-{size}")
    finally:
        shutil.rmtree(runs_dir / "sampled")  # the other tests count the module's runs


def test_confusion_cell_to_mistakes_to_journey(page, shots, runs_dir) -> None:
    confusion = Run.open("cnn", runs_dir).metrics()["confusion"]
    true, predicted = next(
        (t, p) for t, row in enumerate(confusion) for p, n in enumerate(row) if t != p and n
    )
    page.goto(page.base + "#runs")
    page.click("#r-table tr[data-name='cnn']")
    cell = f".confusion button[data-true='{true}'][data-predicted='{predicted}']"
    page.wait_for_selector(cell)
    assert page.locator(".confusion button").count() == len(confusion) ** 2
    assert page.is_disabled(".confusion button[data-true='0'][data-predicted='0']")
    page.click(cell)
    page.wait_for_selector(".mistake")
    answer = get(page.base, f"/api/runs/cnn/mistakes?true={true}&predicted={predicted}&limit=24")
    shown = page.eval_on_selector_all(".mistake", "bs => bs.map(b => Number(b.dataset.index))")
    assert shown == [item["index"] for item in answer["items"]]  # the surest first
    counted = f"{confusion[true][predicted]} of the {sum(confusion[true])} test images"
    assert counted in page.text_content(".mistakes-panel")
    shots(page, "runs-mistakes")

    first = answer["items"][0]
    page.click(f".mistake[data-index='{first['index']}']")
    wait_until(page, "location.hash === '#predict'")
    wait_until(page, "document.getElementById('p-answer-note').textContent.includes('Test image')")
    page.wait_for_selector(".tile")
    assert f"Test image {first['index']}" in page.text_content("#p-answer-note")
    assert page.input_value("#p-run") == "cnn"
    wait_until(
        page, "label => document.getElementById('p-label').textContent === label",
        answer["predicted_label"],
    )  # fmt: skip
    assert page.get_attribute("#p-saliency", "src").startswith("data:image/png")
    assert page.locator(".layer").count() == 4  # its journey


def test_two_runs_on_one_picture_layer_by_layer(page, shots, runs_dir) -> None:
    shutil.copytree(runs_dir / "cnn", runs_dir / "cnn-again")  # a second conv run
    try:
        compare_two_runs(page, shots)
    finally:
        shutil.rmtree(runs_dir / "cnn-again")


def compare_two_runs(page, shots) -> None:
    page.goto(page.base + "#predict")
    page.wait_for_selector("#p-run2 option[value='cnn-again']", state="attached")
    page.select_option("#p-run", "cnn")
    page.select_option("#p-run2", "cnn-again")
    page.click("#p-clear")
    draw_bars(page)
    page.wait_for_selector("#p-compare:not([hidden]) .compare-grid")
    assert page.locator(".compare-grid .name").count() == 4  # conv, pool, conv, pool
    page.select_option("#p-run2", "dnn")
    wait_until(page, "Boolean(document.getElementById('p-label2'))")
    wait_until(page, "document.querySelectorAll('.compare-grid .head')[2]?.textContent === 'dnn'")
    pixels = page.evaluate(
        "() => { const d = document.getElementById('p-canvas').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data; return [...Array(28)].map((_, r) =>"
        " [...Array(28)].map((_, c) => d[(r * 28 + c) * 4])); }"
    )
    second = post(page.base, "/api/predict", {"run": "dnn", "pixels": pixels})
    assert page.text_content("#p-label2") == second["label"]
    assert "(no layer here)" in page.text_content(".compare-grid")  # dnn has no conv layers
    shots(page, "predict-two-runs")


def test_an_empty_canvas_says_nothing_is_drawn(page) -> None:
    page.goto(page.base + "#predict")
    page.wait_for_selector(".tile")
    page.click("#p-clear")
    wait_until(page, "document.getElementById('p-label').textContent === 'nothing yet'")
    assert "Nothing is drawn" in page.text_content("#p-answer-note")
    assert page.locator("#p-bars > *").count() == 0
    assert page.get_attribute("#p-saliency", "src") is None  # no Grad-CAM of nothing


def test_download_and_delete_a_run(page, runs_dir) -> None:
    shutil.copytree(runs_dir / "dnn", runs_dir / "throwaway")
    page.goto(page.base + "#runs")
    page.click("#r-table tr[data-name='throwaway']")
    card = ".run-card[data-name='throwaway']"
    page.wait_for_selector(f"{card} .run-actions")
    with page.expect_download() as download:
        page.click(f"{card} a:has-text('Download weights')")
    saved = download.value
    assert saved.suggested_filename == "throwaway.safetensors"
    assert (
        Path(saved.path()).read_bytes()
        == (runs_dir / "throwaway" / "model.safetensors").read_bytes()
    )

    with page.expect_download() as keras:
        page.click(f"{card} button:has-text('Download Keras')")
    assert keras.value.suggested_filename == "throwaway.keras"
    assert Path(keras.value.path()).read_bytes()[:2] == b"PK"  # a .keras file is a zip

    page.once("dialog", lambda dialog: dialog.dismiss())  # "no": nothing happens
    page.click(f"{card} button:has-text('Delete run')")
    page.wait_for_timeout(300)
    assert (runs_dir / "throwaway").is_dir()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{card} button:has-text('Delete run')")
    page.wait_for_selector("#r-table tr[data-name='throwaway']", state="detached")
    assert not (runs_dir / "throwaway").exists() and (runs_dir / "dnn").is_dir()
    assert "Deleted run throwaway" in page.text_content("#r-message")


def test_cancel_in_the_train_tab_then_resume_there(page, runs_dir) -> None:
    page.goto(page.base + "#train")
    page.wait_for_selector("#t-presets .choice")
    page.fill("#t-spec", SMALL)
    page.fill("#t-epochs", "100")
    page.fill("#t-name", "cancel-me")
    page.click("#t-start")
    wait_until(page, "document.getElementById('t-title').textContent === 'Training cancel-me'")
    wait_until(page, "document.querySelectorAll('#t-log li').length >= 1", timeout=60)
    assert "epoch" in page.text_content("#t-live")  # the progress is read out, per epoch
    page.click("#t-cancel")
    wait_until(page, "document.getElementById('t-title').textContent.includes('cancelled')")
    done = Run.open("cancel-me", runs_dir).state()["epochs_done"]
    sub = page.text_content("#t-sub")
    assert f"interrupted after {done} of 100 epochs" in sub and "Resume" in sub
    assert "convlens train --resume" not in sub  # the page's own way, not the CLI's
    assert page.is_visible("#t-resume")
    assert "cancelled" in page.text_content("#t-live")
    page.click("#t-resume")
    wait_until(page, "document.getElementById('t-title').textContent.startsWith('Training')")
    page.click("#t-cancel")
    wait_until(page, "document.getElementById('t-title').textContent.includes('cancelled')")
    assert Run.open("cancel-me", runs_dir).state()["epochs_done"] >= done
    shutil.rmtree(runs_dir / "cancel-me")  # the other tests count the resumable runs


def tab_order(page, limit: int = 80) -> list[dict]:
    """Press Tab until focus leaves the page or comes round again: what each stop is."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            "() => { const e = document.activeElement; if (!e || e === document.body) return null;"
            " const ring = getComputedStyle(e).outlineStyle !== 'none'"
            " || getComputedStyle(e.closest('label') || e).outlineStyle !== 'none';"
            " return {id: e.id, tag: e.tagName, cls: e.className, name: e.dataset.name || '',"
            " html: e.outerHTML.slice(0, 120),"
            " ring, visible: e.getBoundingClientRect().width > 0 || e.closest('label') !== null}; }"
        )
        if stop is None or (stops and stop == stops[0]):
            break
        stops.append(stop)
    return stops


def test_keyboard_only_through_every_tab(browser, server, runs_dir) -> None:
    with opened(browser, server, DESKTOP) as page:
        page.goto(page.base + "#filters")
        page.wait_for_selector("#f-out[src^='data:image/png']")
        stops = tab_order(page)
        ids = {s["id"] for s in stops}
        assert {"f-upload", "f-out-frame", "f-pool-frame", "f-play", "f-weight"} <= ids
        assert all(s["ring"] for s in stops), [s for s in stops if not s["ring"]]
        assert any("thumb" in s["cls"] for s in stops) and any("chip" in s["cls"] for s in stops)

        page.goto(page.base + "#predict")
        page.wait_for_selector(".tile")
        stops = tab_order(page, 200)
        ids = {s["id"] for s in stops}
        assert {"p-run", "p-run2", "p-clear", "p-upload", "p-filter"} <= ids
        assert any("tile" in s["cls"] for s in stops)
        assert all(s["ring"] for s in stops), [s for s in stops if not s["ring"]]

        page.goto(page.base + "#runs")
        page.wait_for_selector("#r-table tr[data-name='cnn']")
        stops = tab_order(page)
        assert {"cnn", "dnn"} <= {s["name"] for s in stops if s["tag"] == "TR"}
        assert "r-import" in {s["id"] for s in stops}
        page.focus("#r-table tr[data-name='cnn']")
        page.keyboard.press("Enter")
        page.wait_for_selector(".run-card[data-name='cnn']")
        below = page.evaluate(
            "document.querySelector(\"#r-table tr[data-name='cnn']\").nextElementSibling"
            ".dataset.name"
        )
        page.keyboard.press("ArrowDown")
        page.keyboard.press(" ")
        wait_until(page, "document.querySelectorAll('.run-card').length === 2")
        assert page.evaluate("document.activeElement.dataset.name") == below

        page.goto(page.base + "#train")
        page.wait_for_selector("#t-presets .choice")
        fields = ("#t-recipe", "#t-epochs", "#t-batch", "#t-lr", "#t-schedule")
        page.check("input[name='model'][value='quick']")
        before = [page.input_value(f) for f in fields]
        stops = tab_order(page)
        ids = {s["id"] for s in stops}
        assert {"t-spec", "t-recipe", "t-epochs", "t-start", "t-name"} <= ids
        assert [page.input_value(f) for f in fields] == before  # passing through changes nothing
        assert page.is_checked("input[name='model'][value='quick']")
        assert not page.is_checked("input[value='custom']")
        page.focus("#t-spec")
        page.keyboard.type(" ")  # typing layers is choosing them
        assert page.is_checked("input[value='custom']")


def axe_script() -> Path | None:
    """axe-core, installed for the tests (``npm install --prefix tests/web/.axe axe-core``;
    .ci/run does it), or where ``CONVLENS_AXE`` points."""
    given = os.environ.get("CONVLENS_AXE")
    path = Path(given) if given else Path(__file__).parent / ".axe/node_modules/axe-core/axe.min.js"
    return path if path.is_file() else None


def audit(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now. The script is
    evaluated through the debugger (the page's CSP rightly forbids injected scripts)."""
    page.evaluate(axe_script().read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 4).map(n => n.target.join(' '))}))"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_tab_fits_reads_and_passes_the_audit(browser, server, shots, size) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    with opened(browser, server, viewport) as page:
        problems = {}
        for tab in TABS:
            page.goto(page.base + f"#{tab}")
            ready = {
                "filters": "#f-out[src^='data:image/png']",
                "predict": ".tile",
                "runs": "#r-table tr[data-name='cnn']",
                "train": "#t-presets .choice",
            }[tab]
            page.wait_for_selector(ready)
            if tab == "runs":
                page.click("#r-table tr[data-name='cnn']")
                page.wait_for_selector(".run-card .confusion")
            if tab == "predict":
                page.click(".tile[data-layer='conv2d'][data-index='0']")
                page.wait_for_selector(".unit-step .unit-value")
                if size == "phone":  # the detail is far below the maps: brought into view
                    top = page.evaluate(
                        "document.getElementById('p-detail').getBoundingClientRect().top"
                    )
                    assert 0 <= top < viewport["height"] / 2
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{tab} is {width} px wide at {size}"
            header = page.locator("header.top").bounding_box()
            for link in page.locator(".tabs a").all():
                box = link.bounding_box()
                assert (
                    box["y"] >= header["y"]
                    and box["y"] + box["height"] <= header["y"] + header["height"] + 1
                )
                assert box["x"] + box["width"] <= viewport["width"]
            tops = {round(link.bounding_box()["y"]) for link in page.locator(".tabs a").all()}
            assert len(tops) == 1, f"the tabs wrap onto {len(tops)} lines at {size}"
            if tab == "filters":
                for pic in ("#f-in", "#f-out", "#f-pooled"):
                    box = page.locator(pic).bounding_box()
                    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], pic
            if tab == "runs":
                fits = page.evaluate(
                    "() => [...document.querySelectorAll('.run-card, #r-table')].every(e =>"
                    " e.getBoundingClientRect().right"
                    " <= document.documentElement.clientWidth + 0.5)"
                )
                assert fits
            shots(page, f"{size}-{tab}")
            if axe_script() is not None:
                problems[tab] = audit(page)
        if axe_script() is None:
            pytest.skip(
                "axe-core is not installed for the tests (npm install --prefix tests/web/.axe "
                "axe-core); the layout was checked, the accessibility audit was not"
            )
        assert not any(problems.values()), problems


def import_keras_fixture(page, name: str) -> None:
    """Import tests/interop/fixtures/keras/NAME.keras from the Runs tab's file input and
    wait for its row in the runs table."""
    page.goto(page.base + "#runs")
    page.wait_for_selector("#r-table tr[data-name='cnn']")
    keras = Path(__file__).parents[1] / "interop" / "fixtures" / "keras" / f"{name}.keras"
    page.set_input_files("#r-import", str(keras))
    page.wait_for_selector(f"#r-table tr[data-name='{name}']")


def test_import_a_model_and_look_inside_it(page, shots, runs_dir) -> None:
    import_keras_fixture(page, "lesson")
    try:
        assert "Imported lesson.keras as run lesson" in page.text_content("#r-import-message")
        card = page.locator(".run-card[data-name='lesson']")
        card.wait_for()
        assert "Imported from lesson.keras" in card.text_content()
        assert card.locator(".layers-table tbody tr").count() >= 4
        shots(page, "runs-imported")
        page.goto(page.base + "#predict")
        page.wait_for_selector("#p-run option[value='lesson']", state="attached")
        page.select_option("#p-run", "lesson")
        names = Run.open("lesson", runs_dir).class_names
        wait_until(
            page, "names => names.includes(document.getElementById('p-label').textContent)", names
        )
        page.wait_for_selector(".tile")
    finally:
        shutil.rmtree(runs_dir / "lesson")


def test_a_keras_global_max_pooling_model_on_the_page(page, shots, runs_dir) -> None:
    """Keras' GlobalMaxPooling2D fixture imported from the page: its layer table row as
    Keras prints it, and in Predict the maps of its conv and pool layers and gmp's 1x1
    maps, whose detail says they keep the largest value of the map before."""
    import_keras_fixture(page, "globalmax")
    try:
        card = page.locator(".run-card[data-name='globalmax']")
        card.wait_for()
        rows = card.locator(".layers-table tbody tr")
        cells = [rows.nth(i).locator("td").all_text_contents() for i in range(rows.count())]
        assert ["global_max_pooling2d (GlobalMaxPooling2D)", "(None, 12)", "0"] in cells
        page.goto(page.base + "#predict")
        page.wait_for_selector("#p-run option[value='globalmax']", state="attached")
        page.select_option("#p-run", "globalmax")
        page.click("#p-clear")
        draw_bars(page)
        wait_until(page, "document.querySelectorAll('.layer').length === 5")
        page.wait_for_timeout(700)  # the last live answer lands
        from convlens.introspect import journey_layer_names

        network = Run.open("globalmax", runs_dir).load_network()
        kinds = [network.layer_specs()[name].kind for name in journey_layer_names(network)]
        assert kinds == ["conv", "maxpool", "conv", "conv", "gmp"]  # Keras' names, as in the file
        names = journey_layer_names(network)
        assert page.locator(".layer h3").all_text_contents() == names
        assert page.locator(".strip img").count() == 6  # the input and one map per layer
        page.click(".tile[data-layer='global_max_pooling2d'][data-index='2']")
        page.wait_for_selector("#p-detail .beside")
        detail = page.text_content("#p-detail")
        assert f"max pooling map 2 of {names[-2]}" in detail and "5×5 becomes 1×1" in detail
        shots(page, "predict-globalmax")
    finally:
        page.goto("about:blank")  # no answer of the page may still be on its way
        shutil.rmtree(runs_dir / "globalmax")
