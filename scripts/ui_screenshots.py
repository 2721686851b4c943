"""Take the README's screenshots of ``gittrack ui`` (runs table, run page) in headless Chromium.

    python scripts/ui_screenshots.py [OUT_DIR]      # default docs/images

The repository is the one the UI's tests use (``tests/ui_support.py``), built in a temporary
directory with the real client. Needs the ``ui`` and ``dev`` extras and Debian's chromium.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.test_ui_browser import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.ui_support import build_ui_repo, serving  # noqa: E402

from gittrack import Client  # noqa: E402
from gittrack.ui.app import create_app  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gittrack-"))
    try:
        ui = build_ui_repo(scratch)
        # The tests' run with markup in its name shows escaping at work; the README's
        # pictures show an ordinary day's runs.
        Client(str(ui.path)).delete_run(ui.markup)
        with serving(create_app(Client(str(ui.path)))) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 560})
            page.goto(url + "/#/runs")
            page.wait_for_selector("#runs-table tbody tr")
            page.locator(f"tr[data-run-id='{ui.parent}'] button.toggle").click()
            page.locator(f"tr[data-run-id='{ui.parent}'] input[type=checkbox]").check()
            page.locator(f"tr[data-run-id='{ui.improved}'] input[type=checkbox]").check()
            page.screenshot(path=str(out / "ui-runs-table.png"))
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{url}/#/run/{ui.parent}")
            page.wait_for_selector(".chart[data-metric='loss'][data-render-ms] path.js-line")
            page.locator("#log-y").check()
            page.locator(".chart[data-metric='loss'] .yaxislayer-above text").first.wait_for()
            page.screenshot(path=str(out / "ui-run-page.png"))
            browser.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
