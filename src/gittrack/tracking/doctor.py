"""``gittrack doctor``: check every file of the tracking branch against its schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gittrack.errors import CorruptDataError
from gittrack.store import layout
from gittrack.store.branch import BranchSnapshot
from gittrack.store.codecs import load_yaml, parse_metric_lines
from gittrack.store.schemas import problems

_KIND_BY_NAME = {"meta.yaml": "meta", "params.yaml": "params"}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _kind(path: str) -> str | None:
    if path == layout.CONFIG_PATH:
        return "config"
    if path.startswith(layout.EXPERIMENTS_DIR + "/") and path.endswith(".yaml"):
        return "experiment"
    if path.startswith(layout.RUNS_DIR + "/"):
        name = path.rpartition("/")[2]
        if "/artifacts/" in path:
            return None
        return _KIND_BY_NAME.get(name, "metrics" if name == "metrics.jsonl" else None)
    if path.startswith(layout.MODELS_DIR + "/"):
        if path.endswith("/model.yaml"):
            return "registered_model"
        if "/versions/" in path and path.endswith(".yaml"):
            return "model_version"
    return None


def _check_file(path: str, kind: str, data: bytes) -> Iterator[Problem]:
    if kind == "metrics":
        try:
            points, torn = parse_metric_lines(data, path)
        except CorruptDataError as exc:
            yield Problem(path, exc.message.removeprefix(f"{path}: "))
            return
        if torn:
            yield Problem(path, torn.removeprefix(f"{path}: "))
        return
    try:
        doc = load_yaml(data, path)
    except CorruptDataError as exc:
        yield Problem(path, exc.message.removeprefix(f"{path}:").strip())
        return
    for message in problems(doc, kind):
        yield Problem(path, message)
    if kind == "meta" and isinstance(doc, dict):
        run_id = doc.get("run_id")
        if isinstance(run_id, str) and not path.endswith(f"/{run_id}/meta.yaml"):
            yield Problem(path, f"run_id {run_id!r} does not match its directory")


def check_snapshot(snap: BranchSnapshot) -> list[Problem]:
    """Every problem of every known file on the branch, in path order."""
    found: list[Problem] = []
    if snap.commit is None:
        return found
    for rel, entry in snap.walk(layout.TRACKING_ROOT, layout.TRACKING_ROOT + "/"):
        kind = _kind(rel)
        if kind is None:
            continue
        found.extend(_check_file(rel, kind, snap.repo.read_blob(entry.sha)))
    if snap.entry(layout.CONFIG_PATH) is None:
        found.append(Problem(layout.CONFIG_PATH, "missing"))
    return found
