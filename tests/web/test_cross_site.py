"""Cross-site request forgery, tried in real Chromium: a page served from another
loopback port (another origin, the same "site") posts to the lab the ways a hostile page
can without asking (an HTML form, ``fetch`` in ``no-cors`` mode) and the way it must ask
for (JSON, which needs a CORS preflight). Nothing it sends may change anything; the
lab's own page, in the same browser, still can.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SMALL = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"

ATTACK = """<!doctype html><meta charset="utf-8"><title>a page on another origin</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="__LAB__/api/train/cancel" enctype="text/plain" target="sink">
  <input name='{"run": "' value='x"}'>
</form>
<script>
const LAB = "__LAB__";
window.results = {};
async function attempt(name, url, init) {
  try {
    const response = await fetch(url, init);
    window.results[name] = response.type === "opaque" ? "opaque" : response.status;
  } catch (error) {
    window.results[name] = "blocked";
  }
}
(async () => {
  const png = new Blob([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10])], {type: "image/png"});
  await attempt("upload", LAB + "/api/images", {method: "POST", mode: "no-cors", body: png});
  await attempt("train", LAB + "/api/train", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: JSON.stringify({model: "cnn"})});
  await attempt("cancel_fetch", LAB + "/api/train/cancel", {method: "POST", mode: "no-cors"});
  await attempt("cancel_json", LAB + "/api/train/cancel", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: "{}"});
  document.getElementById("form").submit();
  window.results.done = true;
})();
</script>"""


class AttackerSite:
    """One page on another loopback port: another origin than the lab's."""

    def __init__(self, lab_url: str) -> None:
        page = ATTACK.replace("__LAB__", lab_url.rstrip("/")).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AttackerSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def call(base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # the loopback test server
        return json.load(response)


@pytest.fixture
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def test_a_page_on_another_port_cannot_cancel_train_or_upload(browser, live_server) -> None:
    lab = live_server.server.config.app.state.lab
    started = call(live_server.url, "/api/train", {"model": SMALL, "epochs": 100, "name": "long"})
    assert started["status"] in ("starting", "running")
    try:
        with AttackerSite(live_server.url) as attacker:
            context = browser.new_context()
            page = context.new_page()
            answers: list[tuple[str, int]] = []
            page.on(
                "response",
                lambda r: answers.append((r.url, r.status)) if "/api/" in r.url else None,
            )
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(attacker.url)
            deadline = time.monotonic() + 30
            while not page.evaluate("() => window.results && window.results.done"):
                assert time.monotonic() < deadline, (
                    "the attacking page never finished",
                    page.evaluate("() => window.results"),
                    problems,
                    answers,
                )
                page.wait_for_timeout(50)
            page.wait_for_timeout(1000)  # the form's post lands in the iframe
            results = page.evaluate("() => window.results")
            context.close()
        # The JSON request needs a preflight, which the lab never grants: blocked.
        assert results["cancel_json"] == "blocked", results
        # Everything that did reach the lab was refused.
        reached = [status for url, status in answers if url.startswith(live_server.url)]
        assert reached and all(status in (403, 415) for status in reached), answers
        snapshot = call(live_server.url, "/api/train")
        assert snapshot["run"] == "long" and snapshot["status"] == "running", snapshot
        assert not lab.pictures._uploads  # no upload was stored

        # The lab's own page, in the same browser, can cancel.
        context = browser.new_context()
        page = context.new_page()
        page.goto(live_server.url)
        status = page.evaluate(
            """async () => (await fetch('/api/train/cancel', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: '{}'})).status"""
        )
        context.close()
        assert status == 200
        assert lab.training.wait(60)
        assert call(live_server.url, "/api/train")["status"] == "interrupted"
    finally:
        lab.training.shutdown()
