"""How one file changed on both sides of a merge is merged (DESIGN §10's table).

Every rule is a pure function of the base, the two sides and which side is "later", and is
symmetric: swapping the sides (and with them which one is later) gives the same bytes, so every
clone computes the same tree from the same two tips. A value changed on one side only wins; a
value changed on both sides is decided by the rule of its field, then by the later side.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gittrack.errors import CorruptDataError
from gittrack.store import layout
from gittrack.store.codecs import dump_yaml, load_yaml, parse_metric_lines
from gittrack.store.run_documents import encode_summaries, summarize_metrics
from gittrack.tracking.inputs import merge_inputs

TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
_ABSENT = object()


@dataclass(frozen=True)
class Side:
    """One side of a merge: a file's bytes (None: absent) and whether this side is the later."""

    data: bytes | None
    later: bool


@dataclass
class FileMerge:
    """The merged bytes of a file, and what a user should hear about it."""

    data: bytes
    reports: list[str] = field(default_factory=list)


def three_way(base: Any, ours: Any, theirs: Any, later_is_theirs: bool) -> Any:
    """One value: the side that changed it, else the later side (``_ABSENT``: no value)."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    return theirs if later_is_theirs else ours


def _merge_key(
    merged: dict, key: str, base: dict, ours: dict, theirs: dict, later_is_theirs: bool
) -> None:
    """Set ``merged[key]`` to the three-way merge of the key's values (a key both sides
    deleted, or never had, stays out)."""
    value = three_way(
        base.get(key, _ABSENT), ours.get(key, _ABSENT), theirs.get(key, _ABSENT), later_is_theirs
    )
    if value is not _ABSENT:
        merged[key] = value


def merge_mapping(
    base: dict | None, ours: dict | None, theirs: dict | None, later_is_theirs: bool
) -> dict:
    """Per key three-way merge (a tags mapping): union of additions, the later per clashing key.

    Keys come in the later side's order, then the earlier side's new ones, so the result does
    not depend on which side is "ours"."""
    base, ours, theirs = base or {}, ours or {}, theirs or {}
    later, earlier = (theirs, ours) if later_is_theirs else (ours, theirs)
    merged: dict = {}
    for key in [*later, *(k for k in earlier if k not in later), *base]:
        if key in merged:
            continue
        _merge_key(merged, key, base, ours, theirs, later_is_theirs)
    return merged


def _load(data: bytes | None, where: str) -> dict | None:
    """A stored document as a mapping (None: absent); ``CorruptDataError`` otherwise."""
    if data is None:
        return None
    doc = load_yaml(data, where) or {}
    if not isinstance(doc, dict):
        raise CorruptDataError(f"{where} is not a YAML mapping")
    return doc


def load_mapping(data: bytes, where: str) -> dict:
    """A stored document that must be a YAML mapping."""
    return _load(data, where) or {}


def _later_by_time(ours: dict, theirs: dict, key: str, later_is_theirs: bool) -> bool:
    """Whether theirs is later: the times recorded in the files, then the tips' order."""
    mine, other = str(ours.get(key) or ""), str(theirs.get(key) or "")
    if mine != other:
        return other > mine  # ISO-8601 UTC strings sort by time
    return later_is_theirs


def merge_documents(
    base: dict | None,
    ours: dict,
    theirs: dict,
    later_is_theirs: bool,
    mappings: tuple[str, ...] = ("tags",),
) -> dict:
    """Field by field: mappings merged per key, other fields three-way with the later winning."""
    base = base or {}
    later, earlier = (theirs, ours) if later_is_theirs else (ours, theirs)
    merged: dict = {}
    for key in [*later, *(k for k in earlier if k not in later)]:
        if key in mappings:
            merged[key] = merge_mapping(
                base.get(key), ours.get(key), theirs.get(key), later_is_theirs
            )
            continue
        _merge_key(merged, key, base, ours, theirs, later_is_theirs)
    return merged


def merge_timed_document(base: bytes | None, ours: Side, theirs: Side, where: str) -> FileMerge:
    """An experiment, registered model or version: name, lifecycle and description the later
    change, tags union (the later per key), ``creation_time`` the earlier."""
    b, o, t = _load(base, where), _load(ours.data, where) or {}, _load(theirs.data, where) or {}
    later = _later_by_time(o, t, "last_update_time", theirs.later)
    merged = merge_documents(b, o, t, later)
    created = [str(d["creation_time"]) for d in (o, t) if d.get("creation_time")]
    if created:
        merged["creation_time"] = min(created)
    updated = [str(d["last_update_time"]) for d in (o, t) if d.get("last_update_time")]
    if updated:
        merged["last_update_time"] = max(updated)
    return FileMerge(dump_yaml(merged))


def merge_run_meta(
    base: bytes | None, ours: Side, theirs: Side, where: str, metrics: bytes | None
) -> FileMerge:
    """Tags union (later per key), lifecycle the later change, a terminal status beats
    RUNNING (with its end time), dataset inputs the union (one per name and digest), and the
    metric summary recomputed from ``metrics``."""
    b, o, t = _load(base, where), _load(ours.data, where) or {}, _load(theirs.data, where) or {}
    merged = merge_documents(b, o, t, theirs.later, mappings=("tags",))
    o_done, t_done = o.get("status") in TERMINAL_STATUSES, t.get("status") in TERMINAL_STATUSES
    if o.get("status") != t.get("status") or o.get("end_time") != t.get("end_time"):
        winner = t if (t_done and not o_done) or (t_done == o_done and theirs.later) else o
        merged["status"], merged["end_time"] = winner.get("status"), winner.get("end_time")
    if o.get("inputs") or t.get("inputs"):
        later, earlier = (t, o) if theirs.later else (o, t)
        merged["inputs"] = merge_inputs(
            merge_inputs((b or {}).get("inputs") or [], later.get("inputs") or []),
            earlier.get("inputs") or [],
        )
    if metrics is not None:
        points, _torn = parse_metric_lines(metrics, where.rsplit("/", 1)[0] + "/metrics.jsonl")
        merged["metrics"] = encode_summaries(summarize_metrics(points))
    return FileMerge(dump_yaml(merged))


def merge_params(base: bytes | None, ours: Side, theirs: Side, where: str) -> FileMerge:
    """Union; a param never changes, so a clash keeps the earlier side's value and is told."""
    o, t = _load(ours.data, where) or {}, _load(theirs.data, where) or {}
    earlier, later = (o, t) if theirs.later else (t, o)
    merged = dict(earlier)
    reports = []
    for key, value in later.items():
        if key not in merged:
            merged[key] = value
        elif merged[key] != value:
            reports.append(
                f"{where}: param {key!r} differs ({merged[key]!r} and {value!r}); "
                f"kept {merged[key]!r} from the earlier write"
            )
    return FileMerge(dump_yaml(dict(sorted(merged.items()))), reports)


def merge_metric_lines(base: bytes | None, ours: Side, theirs: Side, where: str) -> FileMerge:
    """Union of the points, deduplicated, in (timestamp, step) order; a torn line is dropped."""
    lines: dict[bytes, tuple] = {}
    for side in (ours.data, theirs.data):
        raw = side or b""
        for line in raw.split(b"\n"):
            if not line.strip() or line in lines:
                continue
            points, torn = parse_metric_lines(line + b"\n", where)
            if torn is None and points:
                key, _value, step, timestamp = points[0]
                lines[line] = (timestamp, step, key, line)
    ordered = sorted(lines.values())
    return FileMerge(b"".join(item[3] + b"\n" for item in ordered))


def keep_one_side(
    base: bytes | None, ours: Side, theirs: Side, where: str, prefer_ours: bool
) -> FileMerge:
    """A file with no field rule: ours (config) or the later side, and the user is told."""
    keep = ours if prefer_ours or ours.later else theirs
    which = "local" if keep is ours else "remote"
    return FileMerge(
        keep.data or b"",
        [f"{where} was changed on both sides; kept the {which} version"],
    )


_EXPERIMENTS = re.escape(layout.EXPERIMENTS_DIR)
_RUNS = re.escape(layout.RUNS_DIR)
_MODELS = re.escape(layout.MODELS_DIR)
_EXPERIMENT = re.compile(rf"^{_EXPERIMENTS}/[^/]+\.yaml$")
_RUN_FILE = re.compile(rf"^{_RUNS}/[^/]+/[^/]+/[^/]+/(meta\.yaml|params\.yaml|metrics\.jsonl)$")
_REGISTRY = re.compile(rf"^{_MODELS}/.+/(model\.yaml|versions/\d+\.yaml)$")
VERSION_FILE = re.compile(rf"^{_MODELS}/(?P<model>.+)/versions/(?P<number>\d+)\.yaml$")

RuleFn = Callable[[bytes | None, Side, Side, str], FileMerge]


def rule_for(path: str) -> RuleFn:
    """The rule that merges ``path`` (a run's ``meta.yaml`` is merged by the run's directory,
    which knows the merged metrics)."""
    if path == layout.CONFIG_PATH:
        return lambda b, o, t, w: keep_one_side(b, o, t, w, prefer_ours=True)
    if _EXPERIMENT.match(path):
        return merge_timed_document
    match = _RUN_FILE.match(path)
    if match:
        name = match.group(1)
        if name == "params.yaml":
            return merge_params
        if name == "metrics.jsonl":
            return merge_metric_lines
        return lambda b, o, t, w: merge_run_meta(b, o, t, w, None)
    if _REGISTRY.match(path):
        return merge_timed_document
    return lambda b, o, t, w: keep_one_side(b, o, t, w, prefer_ours=False)
