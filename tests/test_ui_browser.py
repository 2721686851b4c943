"""End-to-end: the web UI in a real headless Chromium (Debian's ``chromium`` driven by
Playwright's Python package, never a downloaded browser).

Screenshots go to ``$GITTRACK_SCREENSHOT_DIR`` (default ``test-artifacts/ui/``) for CI to keep.
The tests skip, saying why, only where no browser can be had; ``.ci/run`` installs one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)

expect = playwright_api.expect

from gittrack import Client  # noqa: E402
from gittrack.ui.app import create_app  # noqa: E402

from .ui_support import MARKUP_NAME, build_ui_repo, serving  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.slow


def chromium_path() -> str | None:
    """Debian's chromium (or the one ``GITTRACK_CHROMIUM`` names)."""
    named = os.environ.get("GITTRACK_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / "test-artifacts" / "ui"
    path = Path(os.environ.get("GITTRACK_SCREENSHOT_DIR") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    return build_ui_repo(tmp_path_factory.mktemp("ui-browser"))


@pytest.fixture(scope="module")
def server(ui):
    with serving(create_app(Client(str(ui.path)))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (.ci/run does)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.base = server
    yield tab
    context.close()
    assert errors == []


def shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)


def open_runs(page):
    page.goto(page.base + "/#/runs")
    page.wait_for_selector("#runs-table tbody tr")


def visible_names(page) -> list[str]:
    return page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()


def test_the_runs_table_lists_runs_with_nested_runs_folded_under_their_parent(page, ui):
    open_runs(page)
    names = visible_names(page)
    assert set(names) == {"baseline", "dirty-try", "improved", MARKUP_NAME}
    assert page.locator("#page-info").inner_text().strip() == "1–5 of 5 runs"
    page.locator(f"tr[data-run-id='{ui.parent}'] button.toggle").click()
    assert "fold-1" in visible_names(page)
    assert page.locator(f"tr[data-run-id='{ui.dirty}'] .dirty").count() == 1
    shot(page, "runs-table")


def test_typing_a_filter_narrows_the_table_and_a_bad_one_is_shown_inline(page):
    open_runs(page)
    search = page.locator("#filter")
    search.fill("params.alpha = '0.5'")
    search.press("Enter")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    assert visible_names(page) == ["improved"]
    search.fill("metrics.loss <<")
    search.press("Enter")
    page.wait_for_selector("#filter-error:has-text('position')")
    assert "metrics.loss <<" in page.locator("#filter-error").inner_text()
    shot(page, "runs-filter-error")
    search.fill("")
    search.press("Enter")
    expect(page.locator("#filter-error")).to_have_text("")


def test_clicking_a_column_header_sorts_by_it(page):
    open_runs(page)
    header = page.locator("#runs-table th", has_text="loss")
    header.click()
    page.wait_for_selector("#runs-table th.sorted-desc:has-text('loss')")
    header = page.locator("#runs-table th", has_text="loss")
    header.click()
    page.wait_for_selector("#runs-table th.sorted-asc:has-text('loss')")
    assert visible_names(page)[0] == "baseline"  # the smallest loss first


def test_a_run_page_draws_metric_charts_with_their_points(page, ui):
    open_runs(page)
    page.locator("#runs-table a", has_text="baseline").click()
    page.wait_for_selector(".chart[data-metric='loss'][data-points] path.js-line")
    chart = page.locator(".chart[data-metric='loss']")
    assert chart.locator("path.js-line").first.get_attribute("d").startswith("M")
    assert chart.evaluate("node => node.data[0].x.length") == 2000  # LTTB's points, drawn
    assert page.locator(".chart[data-metric='loss']").get_attribute("data-points") == "3000"
    assert page.locator("#description").inner_text().startswith("First try: a <b>plain</b>")
    page.locator("#log-y").check()
    page.wait_for_selector(".chart[data-metric='loss'] .yaxislayer-above text:has-text('0.001')")
    shot(page, "run-page")


def test_the_run_page_previews_artifacts(page, ui):
    page.goto(f"{page.base}/#/run/{ui.parent}")
    page.wait_for_selector("#artifact-tree a")
    page.locator("#artifact-tree a", has_text="data").click()
    page.locator("#artifact-tree a[data-path='data/sample.csv']").click()
    page.wait_for_selector("#artifact-preview table td:has-text('5.1')")
    page.locator("#artifact-tree a", has_text="plots").click()
    page.locator("#artifact-tree a[data-path='plots/confusion.png']").click()
    image = page.locator("#artifact-preview img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 32
    page.locator("#artifact-tree a[data-path='notes.txt']").click()
    page.wait_for_selector("#artifact-preview pre:has-text('<script>')")
    assert page.evaluate("window.__xss") is None


def test_a_dirty_run_shows_its_diff(page, ui):
    page.goto(f"{page.base}/#/run/{ui.dirty}")
    page.wait_for_selector("#diff")
    assert "+print('train with a better alpha')" in page.locator("#diff").inner_text()


def test_markup_in_a_run_name_is_shown_as_text_and_never_runs(page, ui):
    page.goto(f"{page.base}/#/run/{ui.markup}")
    page.wait_for_selector("h1")
    assert MARKUP_NAME in page.locator("h1").inner_text()
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_two_selected_runs_are_compared_side_by_side(page, ui):
    open_runs(page)
    for run_id in (ui.parent, ui.improved):
        page.locator(f"tr[data-run-id='{run_id}'] input[type=checkbox]").check()
    page.locator("#compare-selected").click()
    page.wait_for_selector("#compare-table tr.differs")
    row = page.locator("#compare-table tr", has_text="params.alpha")
    assert row.locator("td").all_inner_texts()[1:] == ["0.1", "0.5"]
    page.wait_for_selector("#overlay g.trace.scatter >> nth=1")
    assert page.locator("#overlay g.trace.scatter").count() == 2
    page.wait_for_selector("#parallel g.trace.scatter")
    page.wait_for_selector("#scatter path.point")
    page.locator("#diff-only").check()
    expect(page.locator("#compare-table td", has_text="params.solver")).to_have_count(0)
    expect(page.locator("#compare-table td", has_text="params.alpha")).to_have_count(1)
    shot(page, "compare")


def test_markup_in_run_names_and_values_stays_text_inside_charts(page, ui):
    page.goto(f"{page.base}/#/compare?run_id={ui.parent}&run_id={ui.markup}")
    page.wait_for_selector("#parallel g.legend text.legendtext >> nth=1")
    legend = page.locator("#parallel g.legend text.legendtext").all_text_contents()
    assert MARKUP_NAME in legend
    page.locator("#scatter-x").select_option("params.alpha")
    expect(page.locator("#scatter .xaxislayer-above")).to_contain_text("<b>0.9</b>")
    assert page.locator("#parallel b, #scatter b, main img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_registry_shows_versions_stages_aliases_and_history(page, ui):
    page.goto(page.base + "/#/registry")
    page.locator("main a", has_text=ui.model).click()
    page.wait_for_selector("#history li")
    assert page.locator("main .pill.stage").first.inner_text() == "Staging"
    assert "@champion" in page.locator("main").inner_text()
    assert page.locator("#history li").count() == 3
    shot(page, "registry")


def test_the_commits_page_plots_a_metric_along_the_history(page):
    page.goto(page.base + "/#/commits")
    page.wait_for_selector("#commit-chart path.point")
    page.locator("#commit-metric").select_option("accuracy")
    page.wait_for_selector("#commit-chart path.point >> nth=1")
    assert page.locator("#commit-chart path.point").count() == 2
    shot(page, "commits")


def test_a_live_runs_chart_grows_while_it_logs(page, ui):
    client = Client(str(ui.path))
    run_id = client.create_run("0", run_name="live-training").info.run_id
    try:
        client.log_metric(run_id, "loss", 1.0, step=0)
        client.log_metric(run_id, "loss", 0.8, step=1)
        page.goto(f"{page.base}/#/run/{run_id}")
        page.wait_for_selector(".chart[data-metric='loss'][data-points='2']")
        for step in range(2, 6):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        page.wait_for_selector(".chart[data-metric='loss'][data-points='6']", timeout=15_000)
    finally:
        client.set_terminated(run_id)
        client.delete_run(run_id)
