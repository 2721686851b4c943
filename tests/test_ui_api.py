"""The web UI's JSON API (``gittrack ui``), served by uvicorn on a real repository.

Every endpoint answers good requests with what ``Client`` reads and bad ones (bad ids,
traversal, malformed filters, wrong Host, missing CSRF token) with a 4xx JSON error naming
the problem, never a 500, and nothing in the user's repository changes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed")
pytest.importorskip("uvicorn", reason="the ui extra is not installed")

from gittrack import Client  # noqa: E402
from gittrack.entities import ViewType  # noqa: E402
from gittrack.ui.app import create_app  # noqa: E402
from gittrack.ui.security import CSRF_HEADER  # noqa: E402

from .conftest import SRC, git, tree_fingerprint  # noqa: E402
from .ui_support import LONG_STEPS, MARKUP_NAME, build_ui_repo, free_port, serving  # noqa: E402


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    return build_ui_repo(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="module")
def server(ui):
    with serving(create_app(Client(str(ui.path)))) as url:
        yield url


@pytest.fixture(scope="module")
def write_server(ui):
    app = create_app(Client(str(ui.path)), allow_write=True)
    with serving(app) as url:
        yield url, app


class Reply:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def call(url: str, method: str = "GET", headers=None, body=None) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def get(server: str, endpoint: str, **params) -> Reply:
    query = urllib.parse.urlencode(params, doseq=True)
    return call(f"{server}{endpoint}" + (f"?{query}" if query else ""))


def error_of(reply: Reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()["error"]


# ----------------------------------------------------------------- experiments and runs
def test_experiments_list_their_run_counts_and_last_activity(server, ui):
    experiments = {e["name"]: e for e in get(server, "/api/experiments").json()["experiments"]}
    assert experiments["iris"]["run_count"] == 5
    assert experiments["Default"]["run_count"] == 0
    latest = Client(str(ui.path)).get_run(ui.markup).info.start_time
    assert experiments["iris"]["last_activity"] >= latest


def test_runs_are_paged_on_the_server_with_a_total(server):
    first = get(server, "/api/runs", limit=2, order_by="attributes.run_name ASC").json()
    second = get(server, "/api/runs", limit=2, offset=2, order_by="attributes.run_name ASC").json()
    assert first["total"] == second["total"] == 5
    names = [r["run_name"] for r in first["runs"] + second["runs"]]
    assert names == sorted(names) and len(set(names)) == 4


def test_runs_sort_by_a_metric_in_both_directions(server):
    up = get(server, "/api/runs", order_by="metrics.loss ASC", filter="metrics.loss < 1").json()
    down = get(server, "/api/runs", order_by="metrics.loss DESC", filter="metrics.loss < 1").json()
    losses = [r["metrics"]["loss"] for r in up["runs"]]
    assert losses == sorted(losses)
    assert [r["run_id"] for r in down["runs"]] == [r["run_id"] for r in up["runs"]][::-1]


def test_runs_filter_uses_the_query_engine_and_reports_the_keys_the_runs_have(server, ui):
    page = get(server, "/api/runs", filter="params.alpha = '0.1'").json()
    assert [r["run_id"] for r in page["runs"]] == [ui.parent]
    assert page["metric_keys"] == ["accuracy", "loss"]
    assert page["param_keys"] == ["alpha", "solver"]


def test_a_malformed_filter_is_a_400_carrying_the_parsers_message(server):
    message = error_of(get(server, "/api/runs", filter="metrics.loss <<"), 400)
    assert "position" in message and "metrics.loss <<" in message


@pytest.mark.parametrize(
    "params",
    [
        {"order_by": "metrics.loss SIDEWAYS"},
        {"offset": "-1"},
        {"limit": "many"},
        {"limit": "100000"},
        {"view": "everything"},
    ],
)
def test_bad_search_arguments_are_a_400_naming_the_argument(server, params):
    message = error_of(get(server, "/api/runs", **params), 400)
    assert any(str(v)[:8] in message or k in message for k, v in params.items())


def test_the_runs_row_shows_the_commit_with_a_dirty_marker_and_the_parent(server, ui):
    rows = {r["run_id"]: r for r in get(server, "/api/runs").json()["runs"]}
    assert rows[ui.dirty]["dirty"] is True and rows[ui.parent]["dirty"] is False
    head_before = git(ui.path, "rev-parse", "HEAD~1").strip()
    assert rows[ui.dirty]["commit"] == head_before
    assert rows[ui.child]["parent_run_id"] == ui.parent


def test_csv_export_has_every_matching_run_with_mlflows_columns(server, ui, tmp_path):
    reply = get(server, "/api/runs.csv", filter="metrics.loss < 1")
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.body.decode())))
    expected = Client(str(ui.path)).search_runs(filter_string="metrics.loss < 1")
    assert sorted(r["run_id"] for r in rows) == sorted(r.info.run_id for r in expected)
    assert {
        "run_id",
        "experiment_id",
        "status",
        "start_time",
        "metrics.loss",
        "params.alpha",
    } <= set(rows[0])
    # Times in the one spelling every gittrack CSV uses: ISO-8601 with milliseconds.
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["start_time"]) for r in rows
    )


def test_the_csv_download_is_the_file_runs_export_writes(server, ui, tmp_path):
    reply = get(server, "/api/runs.csv", filter="metrics.loss < 1")
    written = Client(str(ui.path)).export_runs(
        tmp_path / "out",
        "csv",
        filter_string="metrics.loss < 1",
        run_view_type=ViewType.ACTIVE_ONLY,
        with_history=False,
    )
    assert reply.body == written["runs"].read_bytes()


def test_a_nan_metric_is_sent_as_valid_json(server, ui):
    rows = {r["run_id"]: r for r in get(server, "/api/runs").json()["runs"]}
    assert rows[ui.markup]["metrics"]["loss"] == "NaN"
    assert rows[ui.markup]["run_name"] == MARKUP_NAME


# ------------------------------------------------------------------------- one run
def test_a_run_has_params_metric_summary_description_and_children(server, ui):
    run = get(server, f"/api/runs/{ui.parent}").json()
    assert run["params"] == {"alpha": "0.1", "solver": "lbfgs"}
    assert run["metric_summaries"]["loss"]["count"] == LONG_STEPS
    assert run["metric_summaries"]["loss"]["max"] == 2.0
    assert run["description"].startswith("First try")
    assert [c["run_id"] for c in run["children"]] == [ui.child]
    child = get(server, f"/api/runs/{ui.child}").json()
    assert child["parent"] == {"run_id": ui.parent, "run_name": "baseline"}


RUN_ENDPOINTS = ["", "/metric?key=loss", "/artifacts", "/artifact?path=notes.txt", "/diff"]


@pytest.mark.parametrize("suffix", RUN_ENDPOINTS)
@pytest.mark.parametrize(
    "bad", ["zz", "C24C2746BC1A43BD9A29A45B838159E8", "..%2F..%2Fetc", "0" * 33]
)
def test_a_malformed_run_id_is_a_400_on_every_run_endpoint(server, suffix, bad):
    reply = call(f"{server}/api/runs/{bad}{suffix}")
    assert reply.status in (400, 404)
    assert "error" in reply.json()


@pytest.mark.parametrize("suffix", RUN_ENDPOINTS)
def test_an_unknown_run_is_a_404_on_every_run_endpoint(server, suffix):
    message = error_of(call(f"{server}/api/runs/{'0' * 32}{suffix}"), 404)
    assert "0" * 32 in message


def test_a_long_metric_is_downsampled_keeping_its_first_and_last_points(server, ui):
    series = get(server, f"/api/runs/{ui.parent}/metric", key="loss", max_points=500).json()
    assert series["points"] == LONG_STEPS
    assert len(series["x"]) == len(series["y"]) == 500
    assert series["x"][0] == 0 and series["x"][-1] == LONG_STEPS - 1
    assert series["y"][0] == 2.0
    assert series["x"] == sorted(series["x"])


def test_a_metric_is_plotted_against_step_wall_time_or_relative_time(server, ui):
    run = Client(str(ui.path)).get_run(ui.parent)
    by = {
        axis: get(
            server, f"/api/runs/{ui.parent}/metric", key="loss", x=axis, max_points=3000
        ).json()
        for axis in ("step", "time", "relative")
    }
    assert by["step"]["x"][:3] == [0, 1, 2]
    assert by["time"]["x"][:2] == [1_700_000_000_000, 1_700_000_001_000]
    assert by["relative"]["x"][0] == pytest.approx((1_700_000_000_000 - run.info.start_time) / 1000)


def test_a_nan_point_is_left_out_of_the_chart_and_counted(server, ui):
    series = get(server, f"/api/runs/{ui.markup}/metric", key="loss").json()
    assert series["x"] == [] and series["nonfinite"] == 1


@pytest.mark.parametrize(
    "params, status",
    [
        ({}, 400),
        ({"key": "no-such-metric"}, 404),
        ({"key": "loss", "x": "sideways"}, 400),
        ({"key": "loss", "max_points": "2"}, 400),
        ({"key": "loss", "max_points": "x"}, 400),
    ],
)
def test_a_bad_metric_request_names_the_problem(server, ui, params, status):
    assert error_of(get(server, f"/api/runs/{ui.parent}/metric", **params), status)


# ----------------------------------------------------------------------- artifacts
def test_artifacts_are_listed_directory_by_directory(server, ui):
    top = get(server, f"/api/runs/{ui.parent}/artifacts").json()["files"]
    assert {(f["path"], f["is_dir"]) for f in top} == {
        ("config", True),
        ("data", True),
        ("notes.txt", False),
        ("plots", True),
    }
    config = get(server, f"/api/runs/{ui.parent}/artifacts", path="config").json()["files"]
    assert [f["path"] for f in config] == ["config/params.json", "config/params.yaml"]


def test_artifact_previews_parse_json_yaml_and_csv(server, ui):
    def preview(path):
        return get(server, f"/api/runs/{ui.parent}/artifact", path=path).json()

    assert preview("config/params.json")["data"] == {"alpha": 0.1, "layers": [1, 2]}
    assert preview("config/params.yaml")["data"] == {"alpha": 0.1}
    assert preview("data/sample.csv")["rows"] == [
        ["sepal", "petal"],
        ["5.1", "1.4"],
        ["4.9", "1.3"],
    ]
    text = preview("notes.txt")
    assert text["kind"] == "text" and text["text"].startswith("<script>")
    assert preview("plots/confusion.png")["kind"] == "image"


def test_the_mlmodel_file_is_previewed_as_a_document(server, ui):
    mlmodel = get(server, f"/api/runs/{ui.improved}/artifact", path="model/MLmodel").json()
    assert mlmodel["kind"] == "mlmodel"
    assert "sklearn" in mlmodel["data"]["flavors"]


def test_an_image_artifact_is_served_as_an_image(server, ui):
    reply = get(server, f"/api/runs/{ui.parent}/image", path="plots/confusion.png")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    assert reply.body.startswith(b"\x89PNG")
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_only_images_are_served_as_raw_bytes(server, ui):
    message = error_of(get(server, f"/api/runs/{ui.parent}/image", path="notes.txt"), 400)
    assert "notes.txt" in message and ".png" in message


TRAVERSALS = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "config/../../meta.yaml",
    "..",
    "a/./../../x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("endpoint", ["artifact", "artifacts", "image"])
def test_an_artifact_path_leaving_the_run_is_refused(server, ui, endpoint, path):
    if endpoint == "image":
        path += "/x.png"
    message = error_of(get(server, f"/api/runs/{ui.parent}/{endpoint}", path=path), 400)
    assert "artifact" in message or "image" in message


def test_a_missing_artifact_or_a_directory_is_a_404(server, ui):
    assert "nope.txt" in error_of(
        get(server, f"/api/runs/{ui.parent}/artifact", path="nope.txt"), 404
    )
    assert "config" in error_of(get(server, f"/api/runs/{ui.parent}/artifact", path="config"), 404)


# ------------------------------------------------------------------------ source
def test_a_dirty_run_shows_its_uncommitted_diff(server, ui):
    diff = get(server, f"/api/runs/{ui.dirty}/diff").json()["diff"]
    assert "-print('train')" in diff and "+print('train with a better alpha')" in diff
    assert get(server, f"/api/runs/{ui.parent}/diff").json()["diff"] is None


# ------------------------------------------------------------------------ compare
def test_compare_puts_runs_side_by_side_and_can_show_differences_only(server, ui):
    ids = [ui.parent, ui.improved]
    full = get(server, "/api/compare", run_id=ids).json()
    fields = {row["field"]: row for row in full["rows"]}
    assert fields["params.alpha"]["values"] == ["0.1", "0.5"] and fields["params.alpha"]["differs"]
    assert fields["params.solver"]["differs"] is False
    diff = get(server, "/api/compare", run_id=ids, diff_only=1).json()
    assert "params.solver" not in {row["field"] for row in diff["rows"]}
    assert [r["run_name"] for r in diff["runs"]] == ["baseline", "improved"]


@pytest.mark.parametrize("ids, status", [([], 400), (["zz"], 400), (["0" * 32, "1" * 32], 404)])
def test_compare_refuses_bad_run_ids(server, ids, status):
    assert error_of(get(server, "/api/compare", run_id=ids), status)


def test_compare_refuses_the_same_run_twice(server, ui):
    assert ui.parent in error_of(get(server, "/api/compare", run_id=[ui.parent, ui.parent]), 400)


# ------------------------------------------------------------------------ commits
def test_commits_follow_the_first_parent_history_with_their_runs(server, ui):
    data = get(server, "/api/commits", rev="main").json()
    history = git(ui.path, "log", "--first-parent", "--format=%H", "main").split()
    assert [c["commit"] for c in data["commits"]] == history
    newest, oldest = data["commits"]
    assert {r["run_id"] for r in oldest["runs"]} == {ui.parent, ui.child, ui.dirty}
    assert {r["run_id"] for r in newest["runs"]} == {ui.improved, ui.markup}
    assert "accuracy" in data["metric_keys"]


@pytest.mark.parametrize("rev, status", [("no-such-branch", 404), ("--all", 400), ("main", 200)])
def test_commits_of_a_bad_revision_is_a_4xx(server, rev, status):
    reply = get(server, "/api/commits", rev=rev, limit=5)
    assert reply.status == status, reply.body


def test_reading_commits_writes_no_notes(server, ui):
    get(server, "/api/commits")
    assert git(ui.path, "for-each-ref", "refs/notes/").strip() == ""


# ----------------------------------------------------------------------- registry
def test_the_registry_lists_models_with_stages_and_aliases(server, ui):
    (model,) = get(server, "/api/models").json()["models"]
    assert model["name"] == ui.model and model["aliases"] == {"champion": "1"}
    detail = get(server, f"/api/models/{ui.model}").json()
    (version,) = detail["versions"]
    assert version["current_stage"] == "Staging" and version["aliases"] == ["champion"]
    assert version["run_id"] == ui.improved
    kinds = [event["kind"] for event in detail["history"]]
    assert kinds == ["registered", "stage", "alias"]
    assert all(isinstance(event["when"], int) for event in detail["history"])


def test_an_unknown_model_is_a_404(server):
    assert "nope" in error_of(get(server, "/api/models/nope"), 404)


# ----------------------------------------------------------------------- security
@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example"])
def test_a_foreign_host_header_is_refused(server, host):
    reply = call(f"{server}/api/runs", headers={"Host": host})
    assert reply.status == 400


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_host_headers_are_served(server, host):
    port = server.rsplit(":", 1)[1]
    assert call(f"{server}/api/info", headers={"Host": f"{host}:{port}"}).status == 200


def test_a_read_only_server_refuses_writes(server, ui):
    reply = call(f"{server}/api/runs/{ui.parent}/tags", "POST", body={"key": "k", "value": "v"})
    assert "--allow-write" in error_of(reply, 403)


def test_a_write_needs_the_pages_csrf_token(write_server, ui):
    url, app = write_server
    endpoint = f"{url}/api/runs/{ui.parent}/tags"
    before = tree_fingerprint(ui.path)
    for headers in ({}, {CSRF_HEADER: "0" * 64}):
        assert CSRF_HEADER in error_of(
            call(endpoint, "POST", headers, {"key": "k", "value": "v"}), 403
        )
    assert "reviewed" not in Client(str(ui.path)).get_run(ui.parent).data.tags
    token = _token_of(call(url + "/").body.decode())
    reply = call(endpoint, "POST", {CSRF_HEADER: token}, {"key": "reviewed", "value": "yes"})
    assert reply.status == 200, reply.body
    assert Client(str(ui.path)).get_run(ui.parent).data.tags["reviewed"] == "yes"
    assert tree_fingerprint(ui.path) == before


def test_a_bad_tag_key_is_refused_before_anything_is_written(write_server, ui):
    url, _ = write_server
    token = _token_of(call(url + "/").body.decode())
    tip = git(ui.path, "rev-parse", "gittrack").strip()
    for body in ({"key": "bad\x00key", "value": "v"}, {"key": 3}, ["not", "an", "object"]):
        reply = call(f"{url}/api/runs/{ui.parent}/tags", "POST", {CSRF_HEADER: token}, body)
        assert reply.status == 400, reply.body
    assert git(ui.path, "rev-parse", "gittrack").strip() == tip


def _token_of(page: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_the_page_carries_a_content_security_policy_allowing_only_its_own_scripts(server):
    reply = call(server + "/")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert reply.headers["x-frame-options"] == "DENY"


def test_the_chart_library_is_served_locally(server):
    reply = call(server + "/vendor/plotly-basic.min.js")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js (basic - minified)" in reply.body[:200]


# ------------------------------------------------------------- documentation, errors
def test_openapi_documents_every_api_endpoint(server):
    schema = get(server, "/api/openapi.json").json()
    assert set(schema["paths"]) >= {
        "/api/info",
        "/api/version",
        "/api/experiments",
        "/api/runs",
        "/api/runs.csv",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/metric",
        "/api/runs/{run_id}/artifacts",
        "/api/runs/{run_id}/artifact",
        "/api/runs/{run_id}/image",
        "/api/runs/{run_id}/diff",
        "/api/runs/{run_id}/tags",
        "/api/compare",
        "/api/commits",
        "/api/models",
        "/api/models/{name}",
    }
    assert "summary" in schema["paths"]["/api/runs"]["get"]


def test_an_unknown_api_path_is_a_json_404(server):
    assert "/api/nothing" in error_of(get(server, "/api/nothing"), 404)


BAD_VALUES = ["", "..", "%00", "'", "`", "x" * 5000, "\u202e", "-1", "1e309", "[]"]


def test_no_bad_input_makes_a_500(server, ui):
    paths = [
        "/api/runs?filter={v}",
        "/api/runs?order_by={v}",
        "/api/runs?offset={v}",
        "/api/runs?limit={v}",
        "/api/runs?experiment_id={v}",
        "/api/runs.csv?filter={v}",
        "/api/runs/{v}",
        f"/api/runs/{ui.parent}/metric?key={{v}}",
        f"/api/runs/{ui.parent}/metric?key=loss&x={{v}}",
        f"/api/runs/{ui.parent}/metric?key=loss&max_points={{v}}",
        f"/api/runs/{ui.parent}/artifacts?path={{v}}",
        f"/api/runs/{ui.parent}/artifact?path={{v}}",
        f"/api/runs/{ui.parent}/image?path={{v}}",
        "/api/compare?run_id={v}",
        "/api/compare?run_id={v}&run_id={v}",
        "/api/commits?rev={v}",
        "/api/commits?limit={v}",
        "/api/models/{v}",
    ]
    for path in paths:
        for value in BAD_VALUES:
            reply = call(server + path.format(v=urllib.parse.quote(value, safe="")))
            assert reply.status < 500, (path, value, reply.body[:200])
            if reply.status >= 400:
                assert reply.json()["error"]


def test_reading_every_page_leaves_the_users_repository_untouched(server, ui):
    before = tree_fingerprint(ui.path)
    for path in (
        "/api/experiments",
        "/api/runs",
        "/api/commits",
        "/api/models",
        f"/api/runs/{ui.dirty}",
        f"/api/runs/{ui.dirty}/diff",
        f"/api/runs/{ui.parent}/metric?key=loss",
        f"/api/models/{ui.model}",
    ):
        assert call(server + path).status == 200
    assert tree_fingerprint(ui.path) == before


# -------------------------------------------------------------------- live runs
def test_a_live_run_appears_and_the_data_version_moves_while_it_logs(server, ui):
    client = Client(str(ui.path))
    version = get(server, "/api/version").json()["data_version"]
    run = client.create_run("0", run_name="live-one")
    run_id = run.info.run_id
    try:
        client.log_metric(run_id, "loss", 1.0, step=0)
        moved = get(server, "/api/version").json()["data_version"]
        assert moved != version
        live = get(server, "/api/runs", experiment_id="0").json()["runs"]
        assert [(r["run_id"], r["status"]) for r in live] == [(run_id, "RUNNING")]
        client.log_metric(run_id, "loss", 0.5, step=1)
        assert get(server, "/api/version").json()["data_version"] != moved
        series = get(server, f"/api/runs/{run_id}/metric", key="loss").json()
        assert series["y"] == [1.0, 0.5]
    finally:
        client.set_terminated(run_id)
        client.delete_run(run_id)


# ------------------------------------------------------------------- the command
def test_gittrack_ui_serves_the_repository_given_with_repo(ui, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gittrack", "ui", "--repo", str(ui.path), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = None
        for _ in range(300):
            try:
                info = json.loads(
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info").read()
                )
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert info is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert Path(info["repository"]) == ui.path and info["allow_write"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "read-only" in proc.stderr.read()


def test_gittrack_ui_without_the_ui_extra_says_how_to_install_it(tmp_path, ui):
    blocker = tmp_path / "blocked" / "uvicorn"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(SRC)])}
    proc = subprocess.run(
        [sys.executable, "-m", "gittrack", "ui", "--repo", str(ui.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert 'pip install "gittrack[ui]"' in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_gittrack_ui_refuses_a_bad_port_in_one_line(ui, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-m", "gittrack", "ui", "--repo", str(ui.path), "--port", "70000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "70000" in proc.stderr and "Traceback" not in proc.stderr


def test_every_answer_is_strict_json_even_with_nan_metrics(server, ui):
    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    for endpoint in (
        "/api/runs",
        f"/api/runs/{ui.markup}",
        f"/api/runs/{ui.markup}/metric?key=loss",
        f"/api/compare?run_id={ui.markup}&run_id={ui.parent}",
    ):
        json.loads(call(server + endpoint).body, parse_constant=refuse)


# ------------------------------------------------------------ MLflow, side by side
@pytest.mark.slow
def test_the_runs_page_and_csv_match_mlflows_search_of_the_same_runs(tmp_path, monkeypatch):
    """The UI's table pages and its CSV say what ``mlflow.search_runs`` says of the same runs:
    which runs a filter keeps, their order, and MLflow's columns (gittrack adds four after)."""
    mlflow = pytest.importorskip("mlflow")
    from .conftest import make_repo

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    theirs_exp = mlflow.create_experiment("side-by-side")
    repo = make_repo(tmp_path / "ours")
    monkeypatch.chdir(repo)
    ours = Client(str(repo))
    our_exp = ours.create_experiment("side-by-side")
    runs = [("a", 0.5, "x", 3), ("b", 0.25, "y", 1), ("c", 0.75, "x", 2), ("d", 0.25, "z", 4)]
    for name, rmse, kind, depth in runs:
        with mlflow.start_run(experiment_id=theirs_exp, run_name=name):
            mlflow.log_metric("rmse", rmse)
            mlflow.log_params({"kind": kind, "depth": depth})
            mlflow.set_tag("team", kind.upper())
        run_id = ours.create_run(our_exp, run_name=name).info.run_id
        ours.log_metric(run_id, "rmse", rmse)
        ours.log_param(run_id, "kind", kind)
        ours.log_param(run_id, "depth", depth)
        ours.set_tag(run_id, "team", kind.upper())
        ours.set_terminated(run_id)
    search = {"filter": "params.kind != 'y' and metrics.rmse <= 0.5", "order": "metrics.rmse DESC"}
    expected = mlflow.search_runs(
        [theirs_exp], search["filter"], order_by=[search["order"], "attributes.run_name ASC"]
    )
    with serving(create_app(ours)) as url:
        params = {
            "experiment_id": our_exp,
            "filter": search["filter"],
            "order_by": [search["order"], "attributes.run_name ASC"],
        }
        page = get(url, "/api/runs", **params).json()
        table = list(csv.reader(io.StringIO(get(url, "/api/runs.csv", **params).body.decode())))
    assert [r["run_name"] for r in page["runs"]] == list(expected["tags.mlflow.runName"])
    assert page["total"] == len(expected)
    extras = ["run_name", "user_id", "lifecycle_stage", "parent_run_id"]
    ours_columns = [c for c in table[0] if c not in extras]
    theirs_columns = [c for c in expected.columns if not c.startswith("tags.mlflow.")]
    ours_columns = [c for c in ours_columns if not c.startswith("tags.mlflow.")]
    # MLflow's order of keys within metrics/params/tags follows its database's row order.
    assert ours_columns[:6] == theirs_columns[:6]
    assert sorted(ours_columns) == sorted(theirs_columns)
    groups = [c.split(".")[0] for c in ours_columns[6:]]
    assert groups == sorted(groups, key=["metrics", "params", "tags"].index)
    assert [row[table[0].index("params.depth")] for row in table[1:]] == list(
        expected["params.depth"]
    )


# ------------------------------------------------------------------ one bad run
def test_a_corrupt_run_is_reported_on_its_page_and_skipped_everywhere_else(tmp_path, monkeypatch):
    from .conftest import make_repo
    from .hostile_branch import put_file

    repo = make_repo(tmp_path / "p")
    monkeypatch.chdir(repo)
    client = Client(str(repo))
    good, bad = (client.create_run("0", run_name=n).info.run_id for n in ("good", "bad"))
    for run_id in (good, bad):
        client.log_metric(run_id, "loss", 0.5)
        client.set_terminated(run_id)
    meta = f".tracking/runs/{bad[:2]}/{bad[2:4]}/{bad}/meta.yaml"
    put_file(repo, meta, b"status: [unclosed\nrun_id: x\n")
    with pytest.warns(Warning), serving(create_app(Client(str(repo)))) as url:
        page = get(url, "/api/runs").json()
        assert [r["run_id"] for r in page["runs"]] == [good]
        assert get(url, "/api/experiments").status == 200
        assert get(url, f"/api/runs/{good}/metric", key="loss").json()["y"] == [0.5]
        reply = get(url, f"/api/runs/{bad}")
        assert reply.headers["content-type"].startswith("application/json")
        assert meta in reply.json()["error"]
