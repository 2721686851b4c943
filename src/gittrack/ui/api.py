"""The JSON API the pages call, under ``/api``; each endpoint's docstring ends in the OpenAPI
fragment ``/api/openapi.json`` is built from (Starlette's ``SchemaGenerator``).

Every endpoint reads through ``Client``. Requests are served one at a time (``_serial``): the
client keeps git processes and caches that are not shared between threads.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gittrack.client import Client
from gittrack.entities import ViewType
from gittrack.errors import InvalidInputError, NotFoundError, PolicyError
from gittrack.ui import previews, shapes
from gittrack.ui.lttb import downsample
from gittrack.ui.security import CSRF_HEADER, csrf_matches
from gittrack.utils import clock

MAX_PAGE = 1000
DEFAULT_POINTS = 2000
MAX_POINTS = 20_000
X_AXES = ("step", "time", "relative")
SERIES_CACHE = 64  # downsampled series kept, keyed by the data version they were read at
_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}


class JSON(JSONResponse):
    """A JSON response whose non-finite numbers are spelled as strings (never invalid JSON)."""

    def render(self, content: Any) -> bytes:
        return super().render(shapes.jsonable(content))


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"{name} {raw!r} must be a whole number") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name} {value} must be between {low} and {high}")
    return value


def _choice(request: Request, name: str, allowed: tuple[str, ...] | dict, default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise InvalidInputError(f"{name} {value!r} must be one of {', '.join(allowed)}")
    return value


def _search_args(request: Request) -> dict[str, Any]:
    """The search a runs request asks for: experiments, filter, order and view."""
    q = request.query_params
    return {
        "experiment_ids": q.getlist("experiment_id") or None,
        "filter_string": q.get("filter", ""),
        "order_by": q.getlist("order_by") or None,
        "run_view_type": _VIEWS[_choice(request, "view", _VIEWS, "active")],
    }


class Api:
    """The endpoints over one ``Client``.

    Args:
        client: the tracking repository to read.
        allow_write: whether write endpoints may act (``--allow-write``).
        csrf_token: the token write requests must carry in ``X-CSRF-Token``.
    """

    def __init__(self, client: Client, allow_write: bool, csrf_token: str) -> None:
        self.client = client
        self.allow_write = allow_write
        self.csrf_token = csrf_token
        self._lock = threading.Lock()
        self._series: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    async def _serial(self, work: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with self._lock:
                return work()

        return await run_in_threadpool(locked)

    def _run(self, request: Request) -> Any:
        return self.client.get_run(request.path_params["run_id"])

    # ------------------------------------------------------------------ endpoints
    async def info(self, request: Request) -> Response:
        """Where the UI reads from and whether it may write.
        ---
        summary: Server information
        responses:
          200: {description: "repository, branch, allow_write, data_version"}
        """

        def work() -> dict[str, Any]:
            repository = self.client.repository
            return {
                "repository": str(repository.path),
                "branch": repository.branch_name,
                "allow_write": self.allow_write,
                "data_version": self.client.data_version(),
            }

        return JSON(await self._serial(work))

    async def version(self, request: Request) -> Response:
        """A token that changes when the tracking branch moves or a live run logs; the pages
        poll it and reload what they show when it changes.
        ---
        summary: Data version (poll to refresh)
        responses:
          200: {description: "{data_version: string}"}
        """
        return JSON({"data_version": await self._serial(self.client.data_version)})

    async def experiments(self, request: Request) -> Response:
        """Active experiments with their run counts and last activity.
        ---
        summary: List experiments
        responses:
          200: {description: "experiments: [{experiment_id, name, run_count, last_activity}]"}
        """

        def work() -> list[dict[str, Any]]:
            out = []
            for experiment in self.client.search_experiments():
                page = self.client.search_runs_page(
                    [experiment.experiment_id], order_by=["attributes.start_time DESC"], limit=1
                )
                latest = page.runs[0].info if page.runs else None
                times = [experiment.last_update_time, experiment.creation_time]
                if latest is not None:
                    times += [latest.start_time, latest.end_time]
                out.append(
                    {
                        "experiment_id": experiment.experiment_id,
                        "name": experiment.name,
                        "run_count": page.total,
                        "last_activity": max((t for t in times if t), default=None),
                        "tags": dict(experiment.tags),
                    }
                )
            return out

        return JSON({"experiments": await self._serial(work)})

    async def runs(self, request: Request) -> Response:
        """One page of runs matching a filter, in order, with the keys the matching runs have.
        ---
        summary: Search runs (paged)
        parameters:
          - {name: experiment_id, in: query, schema: {type: string}, description: repeatable}
          - {name: filter, in: query, schema: {type: string}, description: "search filter, e.g. metrics.rmse < 1"}
          - {name: order_by, in: query, schema: {type: string}, description: "repeatable, e.g. metrics.rmse DESC"}
          - {name: view, in: query, schema: {type: string, enum: [active, deleted, all]}}
          - {name: offset, in: query, schema: {type: integer}}
          - {name: limit, in: query, schema: {type: integer, maximum: 1000}}
        responses:
          200: {description: "runs, total, offset, metric_keys, param_keys, tag_keys"}
          400: {description: "malformed filter or order (the parser's message)"}
        """
        args = _search_args(request)
        offset = _int(request, "offset", 0, 0, 10**9)
        limit = _int(request, "limit", 50, 1, MAX_PAGE)

        def work() -> dict[str, Any]:
            page = self.client.search_runs_page(**args, offset=offset, limit=limit)
            return {
                "runs": [shapes.run_row(run) for run in page.runs],
                "total": page.total,
                "offset": page.offset,
                "metric_keys": page.metric_keys,
                "param_keys": page.param_keys,
                "tag_keys": page.tag_keys,
            }

        return JSON(await self._serial(work))

    async def runs_csv(self, request: Request) -> Response:
        """Every run matching the search as CSV (MLflow's search_runs columns).
        ---
        summary: Export runs as CSV
        parameters:
          - {name: filter, in: query, schema: {type: string}}
        responses:
          200: {description: text/csv}
          400: {description: malformed filter}
        """
        args = _search_args(request)
        text = await self._serial(lambda: self.client.search_runs_csv(**args))
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="runs.csv"'},
        )

    async def run(self, request: Request) -> Response:
        """One run: params, metric summaries, tags, description, source, parent and children.
        ---
        summary: Get a run
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string, pattern: "^[0-9a-f]{32}$"}}
        responses:
          200: {description: the run}
          400: {description: bad run id}
          404: {description: no such run}
        """

        def work() -> dict[str, Any]:
            run = self._run(request)
            out = shapes.run_detail(run)
            run_id = run.info.run_id
            children = self.client.search_runs_page(
                filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'",
                run_view_type=ViewType.ALL,
                order_by=["attributes.start_time ASC"],
                limit=MAX_PAGE,
            )
            out["children"] = [
                {"run_id": c.info.run_id, "run_name": c.info.run_name, "status": c.info.status}
                for c in children.runs
            ]
            parent = out["parent_run_id"]
            out["parent"] = None
            if parent and self.client.run_exists(parent):
                p = self.client.get_run(parent)
                out["parent"] = {"run_id": parent, "run_name": p.info.run_name}
            return out

        return JSON(await self._serial(work))

    async def metric(self, request: Request) -> Response:
        """One metric's history, downsampled on the server (LTTB) to at most max_points.
        ---
        summary: Metric history for charts
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
          - {name: key, in: query, required: true, schema: {type: string}}
          - {name: x, in: query, schema: {type: string, enum: [step, time, relative]}}
          - {name: max_points, in: query, schema: {type: integer, maximum: 20000}}
        responses:
          200: {description: "key, x_axis, x, y, points (before downsampling), nonfinite"}
          400: {description: bad run id, key or axis}
          404: {description: no such run or metric}
        """
        key = request.query_params.get("key")
        if not key:
            raise InvalidInputError("query parameter 'key' (the metric) is required")
        axis = _choice(request, "x", X_AXES, "step")
        n_out = _int(request, "max_points", DEFAULT_POINTS, 3, MAX_POINTS)

        def work() -> dict[str, Any]:
            run = self._run(request)
            if key not in run.metric_summaries and key not in run.data.metrics:
                raise NotFoundError(f"run {run.info.run_id} has no metric {key!r}")
            cache_key = (self.client.data_version(), run.info.run_id, key, axis, n_out)
            series = self._series.get(cache_key)
            if series is None:
                frame = self.client.get_metric_history_frame(run.info.run_id, key)
                series = _series(frame, key, axis, n_out, run.info.start_time)
                self._series[cache_key] = series
                while len(self._series) > SERIES_CACHE:
                    self._series.popitem(last=False)
            return series

        return JSON(await self._serial(work))

    async def artifacts(self, request: Request) -> Response:
        """The direct children of one directory of a run's artifacts.
        ---
        summary: List artifacts
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
          - {name: path, in: query, schema: {type: string}, description: "relative; no '..'"}
        responses:
          200: {description: "files: [{path, is_dir, size}]"}
          400: {description: bad run id or path}
        """
        path = request.query_params.get("path") or None

        def work() -> list[dict[str, Any]]:
            run = self._run(request)
            return [
                {"path": f.path, "is_dir": f.is_dir, "size": f.file_size}
                for f in self.client.list_artifacts(run.info.run_id, path)
            ]

        return JSON({"files": await self._serial(work)})

    async def artifact(self, request: Request) -> Response:
        """A preview of one artifact file: text, JSON, YAML, CSV rows, MLmodel or an image kind.
        ---
        summary: Preview an artifact
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
          - {name: path, in: query, required: true, schema: {type: string}}
        responses:
          200: {description: "path, kind, size, truncated, text|data|rows"}
          400: {description: bad run id or path}
          404: {description: no such file}
        """
        path = request.query_params.get("path", "")

        def work() -> dict[str, Any]:
            run = self._run(request)
            data, size = self.client.read_artifact(run.info.run_id, path, previews.PREVIEW_BYTES)
            return previews.preview(path, data, size)

        return JSON(await self._serial(work))

    async def artifact_image(self, request: Request) -> Response:
        """The bytes of an image artifact (PNG, JPEG, GIF, WebP, BMP only), for <img>.
        ---
        summary: Image artifact
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
          - {name: path, in: query, required: true, schema: {type: string}}
        responses:
          200: {description: the image}
          400: {description: bad path or not an image}
          404: {description: no such file}
        """
        path = request.query_params.get("path", "")
        media = previews.IMAGE_TYPES.get(
            ("." + path.rsplit(".", 1)[-1].lower()) if "." in path else ""
        )
        if media is None:
            raise InvalidInputError(
                f"artifact {path!r} is not an image: only {', '.join(previews.IMAGE_TYPES)} are served"
            )

        def work() -> tuple[bytes, int]:
            run = self._run(request)
            return self.client.read_artifact(run.info.run_id, path, previews.IMAGE_BYTES)

        data, size = await self._serial(work)
        if len(data) < size:
            raise InvalidInputError(f"image {path!r} is {size} bytes: larger than the UI shows")
        return Response(data, media_type=media)

    async def diff(self, request: Request) -> Response:
        """The run's uncommitted changes (git diff of its commit and its snapshot).
        ---
        summary: Source diff of a dirty run
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: "diff: text or null when the run was clean"}
          404: {description: no such run}
        """
        run_id = request.path_params["run_id"]
        return JSON({"diff": await self._serial(lambda: self.client.get_source_diff(run_id))})

    async def compare(self, request: Request) -> Response:
        """Params, metrics and tags of several runs side by side.
        ---
        summary: Compare runs
        parameters:
          - {name: run_id, in: query, required: true, schema: {type: string}, description: repeatable, 2 or more}
          - {name: diff_only, in: query, schema: {type: boolean}}
        responses:
          200: {description: "runs: [{run_id, run_name}], rows: [{field, values, differs}]"}
          400: {description: bad or repeated run ids}
          404: {description: no such run}
        """
        ids = request.query_params.getlist("run_id")
        if not 1 <= len(ids) <= 50:
            raise InvalidInputError(f"compare takes 1 to 50 run_id parameters, not {len(ids)}")
        diff_only = request.query_params.get("diff_only", "") in ("1", "true", "yes")

        def work() -> dict[str, Any]:
            frame = self.client.compare_runs(ids, diff_only=diff_only)
            names = frame.loc["run_name", ids].tolist() if "run_name" in frame.index else ids
            if diff_only and "run_name" not in frame.index:
                names = [self.client.get_run(i).info.run_name for i in ids]
            rows = [
                {
                    "field": field,
                    "values": [_plain(v) for v in frame.loc[field, ids].tolist()],
                    "differs": bool(frame.loc[field, "differs"]),
                }
                for field in frame.index
            ]
            return {
                "runs": [{"run_id": i, "run_name": n} for i, n in zip(ids, names)],
                "rows": rows,
            }

        return JSON(await self._serial(work))

    async def commits(self, request: Request) -> Response:
        """The first-parent history of a branch, each commit with its runs and their latest
        metrics (the Commits page plots one metric along it).
        ---
        summary: Runs along the first-parent history
        parameters:
          - {name: rev, in: query, schema: {type: string}, description: "default HEAD"}
          - {name: limit, in: query, schema: {type: integer, maximum: 1000}}
        responses:
          200: {description: "commits: [{commit, subject, runs: [{run_id, run_name, experiment_id, status, metrics}]}], metric_keys"}
          400: {description: bad limit}
          404: {description: unknown revision}
        """
        rev = request.query_params.get("rev") or "HEAD"
        if rev.startswith("-") or "\0" in rev or len(rev) > 256:
            raise InvalidInputError(f"revision {rev[:60]!r} is not a branch, tag or commit name")
        limit = _int(request, "limit", 100, 1, MAX_PAGE)

        def work() -> dict[str, Any]:
            entries = self.client.commit_history(rev, limit)
            keys: set[str] = set()
            commits = []
            for entry in entries:
                runs = []
                for run in entry.runs:
                    keys.update(run.metrics)
                    runs.append(
                        {
                            "run_id": run.run_id,
                            "run_name": run.run_name,
                            "experiment_id": run.experiment_id,
                            "status": run.status,
                            "metrics": dict(run.metrics),
                        }
                    )
                commits.append({"commit": entry.commit, "subject": entry.subject, "runs": runs})
            return {"commits": commits, "metric_keys": sorted(keys)}

        return JSON(await self._serial(work))

    async def models(self, request: Request) -> Response:
        """Registered models with their latest version per stage and their aliases.
        ---
        summary: List registered models
        responses:
          200: {description: "models: [...]"}
        """

        def work() -> list[dict[str, Any]]:
            return [shapes.model_json(m) for m in self.client.search_registered_models()]

        return JSON({"models": await self._serial(work)})

    async def model(self, request: Request) -> Response:
        """One model: every version (stage, aliases, source run) and its history, oldest first.
        ---
        summary: Get a registered model
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: "model, versions, history"}
          404: {description: no such model}
        """
        name = request.path_params["name"]

        def work() -> dict[str, Any]:
            model = self.client.get_registered_model(name)
            versions = self.client.search_model_versions(f"name = '{_quoted(name)}'")
            history = [
                {
                    "kind": event.kind.value,
                    "version": event.version,
                    "label": event.label,
                    "who": event.who,
                    "when": event.when,
                    "message": event.message,
                    "tag": event.tag,
                }
                for event in self.client.get_registry_history(name)
            ]
            return {
                "model": shapes.model_json(model),
                "versions": sorted(
                    (shapes.version_json(v) for v in versions), key=lambda v: -int(v["version"])
                ),
                "history": history,
            }

        return JSON(await self._serial(work))

    async def set_tag(self, request: Request) -> Response:
        """Set a tag on a run (needs --allow-write and the page's CSRF token).
        ---
        summary: Set a run tag
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
          - {name: X-CSRF-Token, in: header, required: true, schema: {type: string}}
        requestBody:
          content:
            application/json:
              schema: {type: object, properties: {key: {type: string}, value: {type: string}}}
        responses:
          200: {description: the tag as stored}
          400: {description: bad key or value}
          403: {description: read-only server or missing/wrong CSRF token}
        """
        self._check_write(request)
        try:
            body = await request.json()
        except ValueError:
            raise InvalidInputError("the request body must be a JSON object {key, value}") from None
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            raise InvalidInputError("the request body must be a JSON object {key, value}")
        key, value = body["key"], body.get("value", "")
        if not isinstance(value, str):
            raise InvalidInputError(f"tag value for {key!r} must be a string")

        def work() -> dict[str, Any]:
            run = self._run(request)
            self.client.set_tag(run.info.run_id, key, value)
            return {"run_id": run.info.run_id, "key": key, "value": value}

        return JSON(await self._serial(work))

    def _check_write(self, request: Request) -> None:
        if not self.allow_write:
            raise PolicyError("this UI is read-only: start it with `gittrack ui --allow-write`")
        if not csrf_matches(self.csrf_token, request.headers.get(CSRF_HEADER)):
            raise PolicyError(f"a write needs the page's CSRF token in the {CSRF_HEADER} header")


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _plain(value: Any) -> Any:
    """A compare cell as JSON: times as epoch milliseconds, numpy scalars as numbers."""
    if hasattr(value, "timestamp") and callable(value.timestamp):
        return clock.to_ms(value)
    if hasattr(value, "item"):
        return value.item()
    return value


def _series(frame: Any, key: str, axis: str, n_out: int, start_time: int) -> dict[str, Any]:
    """The points of one metric on the asked x axis, non-finite values left out, LTTB-reduced."""
    order = ["step", "timestamp"] if axis == "step" else ["timestamp", "step"]
    frame = frame.sort_values(order, kind="stable")
    values = frame["value"].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if axis == "step":
        x = frame["step"].to_numpy(dtype=np.float64)
    elif axis == "time":
        x = frame["timestamp"].to_numpy(dtype=np.float64)
    else:
        x = (frame["timestamp"].to_numpy(dtype=np.float64) - start_time) / 1000.0
    x, y = downsample(x[finite], values[finite], n_out)
    return {
        "key": key,
        "x_axis": axis,
        "x": [int(v) if axis != "relative" and math.isfinite(v) else v for v in x.tolist()],
        "y": y.tolist(),
        "points": int(len(values)),
        "nonfinite": int((~finite).sum()),
    }
