"""Live runs: created in the staging area, logged into while they run, committed when they end.

The owning process keeps a run's params, tags and info in memory and rewrites the small YAML
files atomically on each change; metric points are appended one line per call. ``end`` writes
the final ``meta.yaml`` into the live directory first, then commits, then removes the live
directory, so a crash at any point leaves either the live run (recovered later with the status
it had, by ``tracking.recovery``) or the committed run, never neither. A run already on the
branch still takes data, one commit per call. The run's documents are encoded and decoded by
``store.run_documents``; its artifact files are written by ``tracking.artifacts``.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import os
import uuid
import warnings
from dataclasses import dataclass, field

from gittrack.entities import (
    DatasetInput,
    LifecycleStage,
    Metric,
    Run,
    RunStatus,
    SourceInfo,
)
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    GittrackError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    RepositoryError,
    RunEndedError,
)
from gittrack.store import layout
from gittrack.store.branch import Blob, BranchSnapshot, Changes, TrackingBranch
from gittrack.store.codecs import (
    dump_yaml,
    format_time,
    is_real_time,
    load_yaml,
    metric_line,
    parse_metric_lines,
)
from gittrack.store.commits import message_field
from gittrack.store.files import storage_error
from gittrack.store.run_documents import (
    decode_summaries,
    encode_summaries,
    live_meta_bytes,
    meta_for_disk,
    run_from_documents,
    source_document,
    summarize_metrics,
)
from gittrack.store.schemas import check_outgoing, check_stored
from gittrack.store.staging import ARTIFACTS, META, METRICS, PARAMS, LiveRun, Staging
from gittrack.tracking import inputs as run_inputs
from gittrack.tracking import validation
from gittrack.tracking.artifact_roots import ArtifactRoots
from gittrack.tracking.artifacts import ArtifactBlobs, check_artifact_slot
from gittrack.tracking.run_names import generate_run_name
from gittrack.tracking.validation import INT64_MAX, INT64_MIN
from gittrack.utils import clock
from gittrack.utils.mlflow_tags import MLFLOW_RUN_NOTE

NOTE_TAG = MLFLOW_RUN_NOTE
MISSING_SOURCE_TAG = "gittrack.source.missing"


@dataclass
class _OpenRun:
    """A live run this process has open: the handle plus the documents it rewrites."""

    live: LiveRun
    meta: dict
    params: dict[str, str]
    file_stamps: dict[str, tuple] = field(default_factory=dict)


def current_user() -> str:
    """The user name, as ``getpass.getuser`` finds it (environment first, then the
    password database, whose answer is kept: it cannot change while the process runs)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user if user.isascii() else _as_text(user)
    return _user_of_process()


def _as_text(value: str) -> str:
    """Text from the environment as UTF-8 can store it: bytes that were not UTF-8 (which
    Python keeps as lone surrogates) become U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@functools.cache
def _user_of_process() -> str:
    return getpass.getuser()


def check_new_run(
    tags: dict[str, object] | None,
    run_name: object,
    start_time: object,
    description: object,
) -> tuple[dict[str, str], str | None, int | None]:
    """The fields of a run about to be created, checked before anything is written:
    (tags, run name, start time)."""
    checked = validation.check_tags(tags)
    name = None if run_name is None else validation.check_run_name(run_name)
    tagged = checked.get(validation.RUN_NAME_TAG)
    if name and tagged is not None and tagged != name:
        raise InvalidInputError(
            f"run_name {name!r} and tag {validation.RUN_NAME_TAG}={tagged!r} disagree: give "
            "one of them, or the same name in both (as MLflow requires)"
        )
    if description is not None:
        validation.check_string_value(description, "tag", NOTE_TAG)
    return checked, name, validation.check_time(start_time, "start_time")


def _apply_tags(meta: dict, tags: dict[str, str]) -> None:
    """Set checked tags in a meta document; the run name tag renames the run (MLflow)."""
    meta["tags"].update(tags)
    if validation.RUN_NAME_TAG in tags:
        meta["run_name"] = tags[validation.RUN_NAME_TAG]


def _unlogged_params(run_id: str, logged: dict, checked: dict[str, str]) -> dict[str, str]:
    """The params not logged yet; a different value for a logged one is a conflict."""
    new = {}
    for key, value in checked.items():
        old = logged.get(key)
        if old is None:
            new[key] = value
        elif str(old) != value:
            raise ConflictError(
                f"param {key!r} of run {run_id} is already {old!r}; it cannot change to "
                f"{value!r} (params are immutable: log a new key or start a new run)"
            )
    return new


def _indented(yaml_mapping: bytes) -> bytes:
    """A top-level YAML mapping as entries of the mapping above it (two spaces in)."""
    return b"".join(b"  " + line + b"\n" for line in yaml_mapping.splitlines())


class LiveRunStore:
    """The runs of one tracking repository as this process writes them: live runs it creates,
    resumes, logs into and ends, and committed runs it reads, updates and logs into."""

    def __init__(self, branch: TrackingBranch, staging: Staging, blobs: ArtifactBlobs) -> None:
        """:param blobs: turns a run's artifact files into blobs when it is committed."""
        self.branch = branch
        self.repo = branch.repo
        self.staging = staging
        self.blobs = blobs
        self.artifact_roots = ArtifactRoots(self.repo)
        self._open: dict[str, _OpenRun] = {}
        self._key_json: dict[str, str] = {}

    def create(
        self,
        experiment_id: str,
        *,
        artifact_location: str | None = None,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        source: SourceInfo | None = None,
        description: str | None = None,
        same_repo_source: bool = False,
    ) -> Run:
        tags, run_name, start_time = check_new_run(tags, run_name, start_time, description)
        if artifact_location:
            self.artifact_roots.check_writable_location(artifact_location, str(experiment_id))
        run_name = run_name or tags.get("mlflow.runName") or generate_run_name()
        run_id = uuid.uuid4().hex
        source = source or SourceInfo()
        user = current_user()
        system_tags = {
            "mlflow.runName": run_name,
            "mlflow.user": user,
            "mlflow.source.type": "LOCAL",
        }
        if source.entry_point:
            system_tags["mlflow.source.name"] = source.entry_point
        if source.commit:
            system_tags["mlflow.source.git.commit"] = source.commit
        if source.branch:
            system_tags["mlflow.source.git.branch"] = source.branch
        if parent_run_id:
            system_tags["mlflow.parentRunId"] = parent_run_id
        if description is not None:
            system_tags[NOTE_TAG] = str(description)
        meta = {
            "format": layout.FORMAT_VERSION,
            "run_id": run_id,
            "run_name": run_name,
            "experiment_id": str(experiment_id),
            "status": RunStatus.RUNNING,
            "lifecycle": LifecycleStage.ACTIVE,
            "start_time": format_time(clock.now_ms() if start_time is None else start_time),
            "end_time": None,
            "parent_run_id": parent_run_id,
            "user": user,
            "tags": {**system_tags, **tags},
            "source": source_document(source),
            "metrics": {},
        }
        if artifact_location:  # the experiment keeps artifacts outside git (MLflow's layout)
            meta["artifact_uri"] = f"{artifact_location.rstrip('/')}/{run_id}/artifacts"
        if same_repo_source:
            meta["_parents"] = (
                [source.snapshot or source.commit] if (source.snapshot or source.commit) else []
            )
            if source.snapshot:
                self.repo.update_ref(
                    layout.live_snapshot_ref(run_id), source.snapshot, None, reflog=False
                )
        # Every field is checked above, so the schema check at commit cannot fail on them.
        meta_bytes = live_meta_bytes(meta)
        try:
            live = self.staging.create(run_id, {META: meta_bytes})
        except BaseException:
            self._release_snapshot(meta)
            raise
        opened = _OpenRun(live, meta, {})
        opened.file_stamps[META] = live.stamp_of_own(META, len(meta_bytes))
        opened.file_stamps[PARAMS] = live.stamp_of_own(PARAMS, 0)
        self._open[run_id] = opened
        return run_from_documents(meta, {}, {})

    def resume(self, run_id: str) -> Run:
        """Reopen a run for logging: a live one whose owner is gone, or a committed one."""
        validation.check_run_id(run_id)
        if self.live_handle(run_id) is not None:
            return self.get(run_id)
        if self.staging.exists(run_id):
            live = self.staging.open(run_id, claim=True)
            meta = load_yaml(live.read(META) or b"", f"{live.path}/{META}")
            params = load_yaml(live.read(PARAMS) or b"", f"{live.path}/{PARAMS}") or {}
        else:
            snap = self.branch.snapshot()
            base = layout.run_dir(run_id)
            raw_meta = snap.read(f"{base}/{META}")
            if raw_meta is None:
                raise NotFoundError(f"run {run_id} does not exist")
            meta = load_yaml(raw_meta, f"{base}/{META}")
            check_stored(meta, "meta", f"{base}/{META}")
            params = load_yaml(snap.read(f"{base}/{PARAMS}") or b"", f"{base}/{PARAMS}") or {}
            meta.update(status=RunStatus.RUNNING, end_time=None)
            live = self.staging.create(
                run_id,
                {
                    META: live_meta_bytes(meta),
                    PARAMS: dump_yaml(params) if params else b"",
                    METRICS: snap.read(f"{base}/{METRICS}") or b"",
                },
            )
        if meta.get("lifecycle") == LifecycleStage.DELETED:
            live.close()
            raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
        meta["status"] = RunStatus.RUNNING
        meta["end_time"] = None
        opened = _OpenRun(live, meta, dict(params))
        self._open[run_id] = opened
        self._write_meta(opened)
        return self.get(run_id)

    def live_handle(self, run_id: str) -> _OpenRun | None:
        """This process's handle on a live run: one it owns, or one it attached to while
        that run is still live (a handle on a run committed since is dropped)."""
        opened = self._open.get(run_id)
        if opened is None or opened.live.owner or self.staging.exists(run_id):
            return opened
        self._open.pop(run_id).live.close()
        return None

    def writable(self, run_id: str) -> _OpenRun:
        """This process's handle on a live run to log into: its own, or one it attaches to.

        Raises:
            RunEndedError: the run is committed, not live.
            InvalidStateError: the run is deleted.
            NotFoundError: there is no such run.
        """
        opened = self.live_handle(run_id)
        if opened is not None:
            if opened.meta["lifecycle"] == LifecycleStage.DELETED:
                raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
            return opened
        return self._attach(run_id)

    def _attach(self, run_id: str) -> _OpenRun:
        """Log into a live run another process (or an earlier client) opened."""
        validation.check_run_id(run_id)
        if not self.staging.exists(run_id):
            meta_raw = self.branch.snapshot().read(f"{layout.run_dir(run_id)}/{META}")
            if meta_raw is None:
                raise NotFoundError(f"run {run_id} does not exist")
            meta = load_yaml(meta_raw, f"{layout.run_dir(run_id)}/{META}")
            if meta.get("lifecycle") == LifecycleStage.DELETED:
                raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
            raise RunEndedError(f"run {run_id} is {meta.get('status')}: committed, not live")
        live = self.staging.open(run_id)
        meta = load_yaml(live.read(META) or b"", f"{live.path}/{META}")
        params = load_yaml(live.read(PARAMS) or b"", f"{live.path}/{PARAMS}") or {}
        opened = _OpenRun(live, meta, dict(params))
        self._remember_stamps(opened)
        if meta.get("lifecycle") == LifecycleStage.DELETED:
            raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
        self._open[run_id] = opened
        return opened

    def _key(self, key: str) -> str:
        if key.__class__ is not str:
            validation.check_key(key, "metric")  # refuses it: a key is a string
        encoded = self._key_json.get(key)
        if encoded is None:
            validation.check_key(key, "metric")
            encoded = self._key_json[key] = json.dumps(key)
        return encoded

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = 0,
    ) -> None:
        try:
            opened = self._open.get(run_id) or self.writable(run_id)
            if opened.meta["lifecycle"] != LifecycleStage.ACTIVE:
                self.writable(run_id)
            try:
                encoded = self._key_json.get(key) or self._key(key)
            except TypeError:  # an unhashable key (a list, an array): refused by the key rule
                encoded = self._key(key)
            if value.__class__ is not float:
                value = validation.check_metric_value(value, key)
            if step.__class__ is not int or not INT64_MIN <= step <= INT64_MAX:
                step = validation.check_step(step, key)
            if timestamp is None:
                timestamp = clock.now_ms()
            elif timestamp.__class__ is not int or not 0 <= timestamp <= INT64_MAX:
                timestamp = validation.check_timestamp(timestamp, key)
            opened.live.append_metric(
                metric_line(encoded, value, step, timestamp), key, value, step, timestamp
            )
        except RunEndedError:
            self.log_to_ended(
                run_id, points=self._checked_points([Metric(key, value, timestamp, step)])
            )

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        step: int | None = 0,
        timestamp: int | None = None,
    ) -> None:
        ts = clock.now_ms() if timestamp is None else validation.check_timestamp(timestamp, "*")
        step = validation.check_step(step, "*")
        points = [(k, validation.check_metric_value(v, k), step, ts) for k, v in metrics.items()]
        lines = [metric_line(self._key(k), v, step, ts) for k, v, step, ts in points]  # type: ignore[arg-type]
        try:
            self.writable(run_id).live.append_metrics(b"".join(lines), points)  # type: ignore[arg-type]
        except RunEndedError:
            self.log_to_ended(run_id, points=points)  # type: ignore[arg-type]

    def log_metric_points(self, run_id: str, metrics: list[Metric]) -> None:
        points = self._checked_points(metrics)
        try:
            self._append_points(self.writable(run_id), points)
        except RunEndedError:
            self.log_to_ended(run_id, points=points)

    def _checked_points(self, metrics: list[Metric]) -> list[tuple[str, float, int, int]]:
        now = clock.now_ms()
        points = []
        for m in metrics:
            self._key(m.key)
            timestamp = validation.check_timestamp(m.timestamp, m.key)
            points.append(
                (
                    m.key,
                    validation.check_metric_value(m.value, m.key),
                    validation.check_step(m.step, m.key),
                    now if timestamp is None else timestamp,
                )
            )
        return points

    def _append_points(self, opened: _OpenRun, points: list[tuple[str, float, int, int]]) -> None:
        lines = [metric_line(self._key(k), v, step, ts) for k, v, step, ts in points]
        opened.live.append_metrics(b"".join(lines), points)

    def log_batch(
        self,
        run_id: str,
        metrics: list[Metric],
        params: dict[str, object],
        tags: dict[str, object],
    ) -> None:
        """Params, tags and metrics of one call: all are checked (including a param that
        would change value) before any is written, so a rejected batch leaves no trace."""
        checked_params = validation.check_params(params)
        checked_tags = validation.check_tags(tags)
        points = self._checked_points(metrics)
        try:
            opened = self.writable(run_id)
            if checked_params:
                self._refresh(opened, PARAMS)
                self._new_params(opened, checked_params)  # a changed value is refused here
                self._append_params(opened, checked_params)
            if checked_tags:
                self._set_live_tags(run_id, checked_tags)
            if points:
                self._append_points(self.writable(run_id), points)
        except RunEndedError:
            # Committed before or during the batch: what reached the live run is in that
            # commit, and logging it again changes nothing (params and tags are the same).
            self.log_to_ended(run_id, points=points, params=checked_params, tags=checked_tags)

    def log_params(self, run_id: str, params: dict[str, object]) -> None:
        checked = validation.check_params(params)
        try:
            self._append_params(self.writable(run_id), checked)
        except RunEndedError:
            self.log_to_ended(run_id, params=checked)

    def _append_params(self, opened: _OpenRun, checked: dict[str, str]) -> None:
        self._refresh(opened, PARAMS)
        new = self._new_params(opened, checked)
        if new:
            # Params never change, so params.yaml only grows: one append, no new file.
            data = dump_yaml(new)
            opened.live.append(PARAMS, data)
            opened.params = {**opened.params, **new}
            self._grown(opened, PARAMS, len(data))

    @staticmethod
    def _new_params(opened: _OpenRun, checked: dict[str, str]) -> dict[str, str]:
        return _unlogged_params(opened.live.run_id, opened.params, checked)

    def set_tags(self, run_id: str, tags: dict[str, object]) -> None:
        checked = validation.check_tags(tags)
        if self.is_live(run_id):
            try:
                self._set_live_tags(run_id, checked)
                return
            except RunEndedError:
                pass  # committed meanwhile: tagged on the branch below
        self._update_committed_meta(run_id, lambda meta: _apply_tags(meta, checked), "Tag")

    def _set_live_tags(self, run_id: str, checked: dict[str, str]) -> None:
        opened = self.writable(run_id)
        self._refresh(opened, META)
        tags = opened.meta["tags"]
        if tags and "mlflow.runName" not in checked and not (checked.keys() & tags.keys()):
            # New keys only: appended to the tags mapping, which is last in the live meta.yaml.
            tags.update(checked)
            data = _indented(dump_yaml(checked))
            opened.live.append(META, data)
            self._grown(opened, META, len(data))
            return
        _apply_tags(opened.meta, checked)
        self._write_meta(opened)

    def delete_tag(self, run_id: str, key: str) -> None:
        def drop(meta: dict) -> None:
            if key not in meta["tags"]:
                raise NotFoundError(f"run {run_id} has no tag {key!r}")
            del meta["tags"][key]

        if self.is_live(run_id):
            try:
                opened = self.writable(run_id)
                self._refresh(opened, META)
                drop(opened.meta)
                self._write_meta(opened)
                return
            except RunEndedError:
                pass  # committed meanwhile: changed on the branch below
        self._update_committed_meta(run_id, drop, "Delete tag of")

    def log_inputs(self, run_id: str, dataset_inputs: list[DatasetInput]) -> None:
        """Record datasets a run took as input (``MlflowClient.log_inputs``).

        :param run_id: a live or ended run.
        :param dataset_inputs: the inputs; one whose dataset (name, digest) the run already
            has changes nothing, as in MLflow.
        :raises InvalidInputError: an input breaks MLflow's rules (nothing is written).
        :raises NotFoundError: no such run. ``InvalidStateError``: the run is deleted.
        """
        entries = run_inputs.check_dataset_inputs(dataset_inputs)
        if not entries:
            return

        def add(meta: dict) -> bool:
            merged = run_inputs.merge_inputs(meta.get("inputs") or [], entries)
            if len(merged) == len(meta.get("inputs") or []):
                return False
            meta["inputs"] = merged
            return True

        if self.is_live(run_id):
            try:
                opened = self.writable(run_id)
                self._refresh(opened, META)
                if add(opened.meta):
                    self._write_meta(opened)
                return
            except RunEndedError:
                pass  # committed meanwhile: recorded on the branch below
        self._update_committed_meta(run_id, add, "Log inputs to")

    def is_live(self, run_id: str) -> bool:
        """Whether ``run_id`` is a live run (this process's or another's), not a committed one.

        Raises:
            InvalidInputError: ``run_id`` is not a run id.
        """
        if run_id in self._open and self._open[run_id].live.owner:
            return True
        return self.staging.exists(validation.check_run_id(run_id))

    def end(
        self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        validation.check_run_status(status)
        end_time = validation.check_time(end_time, "end_time")
        opened = self.live_handle(run_id)
        if opened is None:
            validation.check_run_id(run_id)
            if not self.staging.exists(run_id):
                # Committed already: MLflow sets the status and end time all the same.
                ended = format_time(clock.now_ms() if end_time is None else end_time)
                self._update_committed_meta(
                    run_id,
                    lambda meta: meta.update(status=status, end_time=ended),
                    f"End ({status})",
                )
                return
            opened = self._open[run_id] = _OpenRun(self.staging.open(run_id, claim=True), {}, {})
            self._refresh(opened, META, force=True)
            self._refresh(opened, PARAMS, force=True)
        # On failure (a full disk, a lock in the way) the run stays open here, still owned
        # by this process: ending it again retries the commit.
        try:
            opened.live.seal()  # what other processes logged is read below, or refused
            self._refresh(opened, META)
            self._refresh(opened, PARAMS)
            opened.meta["status"] = status
            opened.meta["end_time"] = format_time(clock.now_ms() if end_time is None else end_time)
            opened.live.mark_ending(status, opened.meta["end_time"])
            self.commit_live(opened.live, opened.meta, opened.params)
        except BaseException as exc:
            opened.live.unseal()
            if isinstance(exc, (RepositoryError, OSError)):
                problem = (
                    exc
                    if isinstance(exc, RepositoryError)
                    else storage_error(exc, "could not read it")
                )
                raise RepositoryError(
                    f"run {run_id} is not committed, {problem.message}; it is still live, "
                    "with everything logged: end it again once that is fixed"
                ) from exc
            raise
        self._open.pop(run_id, None)

    def commit_live(self, live: LiveRun, meta: dict, params: dict[str, str]) -> str:
        """Commit a live run's files onto the branch, then remove the live directory."""
        live.seal()  # callers seal before they read the documents: this is then a no-op
        try:
            has_artifacts = live.has_artifacts()
            tip = self._commit_sealed(live, meta, params, has_artifacts)
        except BaseException:
            live.unseal()
            raise
        self._release_snapshot(meta)
        try:
            self.staging.recycle(live, has_artifacts)  # unseals once out of live/
        except OSError:  # committed: a later recovery finds nothing new and removes it
            live.close()
        return tip

    def _commit_sealed(
        self, live: LiveRun, meta: dict, params: dict[str, str], has_artifacts: bool
    ) -> str:
        run_id = live.run_id
        appended = live.appended_metrics()
        if appended is not None:  # all written by this process: no need to read them back
            (raw_metrics, points), torn = appended, None
        else:
            raw_metrics = live.read_appended(METRICS) or b""
            points, torn = parse_metric_lines(raw_metrics, live.file(METRICS))
        if torn is not None:  # only the points are committed: the skipped lines are named
            raw_metrics = b"".join(metric_line(json.dumps(k), v, s, t) for k, v, s, t in points)
            meta.setdefault("tags", {})["gittrack.recovery"] = torn
        meta["metrics"] = encode_summaries(summarize_metrics(points))
        parents = self._present_parents(meta, [p for p in meta.get("_parents") or [] if p])
        stored = meta_for_disk(meta)
        where = f"{layout.run_dir(run_id)}/{META}"
        check_outgoing(stored, "meta", where)
        check_outgoing(params, "params", f"{layout.run_dir(run_id)}/{PARAMS}")
        base = layout.run_dir(run_id)
        changes: dict[str, Blob] = {
            f"{base}/{META}": Blob(dump_yaml(stored)),
            f"{base}/{PARAMS}": Blob(dump_yaml(params)),
            f"{base}/{METRICS}": Blob(raw_metrics),
        }
        if has_artifacts:
            self.blobs.add_directory(live.artifacts_dir, f"{base}/{ARTIFACTS}", changes)
        message = (
            f"Run {message_field(meta['run_name'])} {meta['status']} ({run_id})\n\n"
            f"Experiment: {meta['experiment_id']}\n"
            f"Run-Id: {run_id}\n"
            f"Source-Commit: {meta['source'].get('commit') or 'none'}\n"
        )
        return self.branch.commit(lambda _snap: changes, message, tuple(dict.fromkeys(parents)))

    def _present_parents(self, meta: dict, parents: list[str]) -> list[str]:
        """The source commits still in the repository. One that is gone (a ``git gc`` that
        ran without the live ref, e.g. before it existed) is warned about and recorded in
        the run's ``gittrack.source.missing`` tag, never silently dropped."""
        present = [p for p in parents if self.repo.has_object(p)]
        missing = [p for p in parents if p not in present]
        if missing:
            run_id = meta["run_id"]
            meta.setdefault("tags", {})[MISSING_SOURCE_TAG] = " ".join(missing)
            warnings.warn(
                f"run {run_id}: its source commit {', '.join(missing)} is missing from the "
                "repository (removed by git gc?); the run is committed without it as a "
                f"parent and tagged {MISSING_SOURCE_TAG}",
                RuntimeWarning,
                stacklevel=4,
            )
        return present

    def _release_snapshot(self, meta: dict) -> None:
        """Drop the live ref of the run's snapshot: from now on the run's commit (a parent)
        keeps it. A ref that cannot be removed now (another writer holds its lock) is left
        to ``recover_orphans``, which removes the refs of committed runs."""
        snapshot = (meta.get("source") or {}).get("snapshot")
        if not snapshot or snapshot not in (meta.get("_parents") or ()):
            return
        with contextlib.suppress(GittrackError, OSError):
            self.repo.delete_ref(layout.live_snapshot_ref(meta["run_id"]), snapshot)

    def get(self, run_id: str) -> Run:
        validation.check_run_id(run_id)
        opened = self.live_handle(run_id)
        if opened is not None or self.staging.exists(run_id):
            live = opened.live if opened else self.staging.open(run_id)
            meta = load_yaml(live.read(META) or b"", f"{live.path}/{META}")
            params = load_yaml(live.read(PARAMS) or b"", f"{live.path}/{PARAMS}") or {}
            points, _ = parse_metric_lines(live.read(METRICS) or b"", f"{live.path}/{METRICS}")
            return run_from_documents(meta, params, summarize_metrics(points))
        snap = self.branch.snapshot()
        meta = self.committed_meta(run_id, snap)
        base = layout.run_dir(run_id)
        params = load_yaml(snap.read(f"{base}/{PARAMS}") or b"", f"{base}/{PARAMS}") or {}
        check_stored(params, "params", f"{base}/{PARAMS}")
        return run_from_documents(meta, params, decode_summaries(meta, f"{base}/{META}"))

    def committed_meta(self, run_id: str, snap: BranchSnapshot) -> dict:
        """The checked ``meta.yaml`` of a committed run. A run directory whose ``meta.yaml``
        is missing, unreadable or names another run raises ``CorruptDataError`` naming it."""
        directory = layout.run_dir(run_id)
        where = f"{directory}/{META}"
        found = snap.entry(directory)
        if found is None:
            raise NotFoundError(f"run {run_id} does not exist on branch {self.branch.name}")
        if not found.is_tree:
            raise CorruptDataError(f"{directory}: is a file, not a run directory")
        raw = snap.read(where)
        if raw is None:
            raise CorruptDataError(f"{where}: missing (or not a file) in run directory {run_id}")
        meta = load_yaml(raw, where)
        check_stored(meta, "meta", where)
        if meta["run_id"] != run_id:
            raise CorruptDataError(
                f"{where}: run_id {meta['run_id']!r} does not match its directory {run_id}"
            )
        for name in ("start_time", "end_time"):
            if meta[name] is not None and not is_real_time(meta[name]):
                raise CorruptDataError(f"{where}: {name}: {meta[name]!r} is not a real time")
        return meta

    def set_lifecycle(self, run_id: str, lifecycle: str) -> None:
        if self.is_live(run_id):
            opened = self.live_handle(run_id) or self._attach_any(run_id)
            self._refresh(opened, META)
            opened.meta["lifecycle"] = lifecycle
            self._write_meta(opened)
            return
        verb = "Delete" if lifecycle == LifecycleStage.DELETED else "Restore"
        self._update_committed_meta(
            run_id, lambda meta: meta.__setitem__("lifecycle", lifecycle), verb
        )

    def _attach_any(self, run_id: str) -> _OpenRun:
        live = self.staging.open(run_id)
        opened = _OpenRun(live, {}, {})
        self._refresh(opened, META, force=True)
        self._refresh(opened, PARAMS, force=True)
        self._open[run_id] = opened
        return opened

    def _update_committed_meta(self, run_id: str, change, verb: str) -> None:
        """Change a committed run's meta.yaml in one commit. A deleted run takes no change
        but its lifecycle (MLflow refuses to update a deleted run)."""
        validation.check_run_id(run_id)
        where = f"{layout.run_dir(run_id)}/{META}"

        def build(snap: BranchSnapshot) -> Changes:
            meta = self.committed_meta(run_id, snap)
            if meta["lifecycle"] == LifecycleStage.DELETED and verb not in ("Delete", "Restore"):
                raise InvalidStateError(f"run {run_id} is deleted; restore it before changing it")
            if change(meta) is False:  # nothing to change: no commit
                return {}
            check_outgoing(meta, "meta", where)
            return {where: Blob(dump_yaml(meta))}

        self.branch.commit(build, f"{verb} run {run_id}\n\nRun-Id: {run_id}\n")

    def update(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """``MlflowClient.update_run``: a new status and/or name, on a live or committed run.

        As in MLflow the end time stays as it is, and the name changes ``run_name`` and the
        ``mlflow.runName`` tag together. A live run given a terminated status is ended
        (committed) with it, as ``end`` does.
        """
        if status is not None and status not in RunStatus.ALL:
            raise InvalidInputError(
                f"run status {status!r} is not one of {', '.join(RunStatus.ALL)}"
            )
        tags = {} if name is None else {validation.RUN_NAME_TAG: validation.check_run_name(name)}
        if self.is_live(run_id):
            if tags:
                self.set_tags(run_id, tags)
            if status is not None and RunStatus.is_terminated(status):
                self.end(run_id, status)
            elif status is not None and self.is_live(run_id):
                opened = self.writable(run_id)
                self._refresh(opened, META)
                opened.meta["status"] = status
                self._write_meta(opened)
            return

        def change(meta: dict) -> None:
            _apply_tags(meta, tags)
            if status is not None:
                meta["status"] = status

        self._update_committed_meta(run_id, change, "Update")

    # A run on the branch (FINISHED, FAILED, KILLED) still takes data, as in MLflow, and
    # keeps its status: each call is one commit, built by ``TrackingBranch.commit`` on the
    # current tip from the run's files there. A writer that loses the race rebuilds on the
    # winner's commit, so two processes logging to one ended run at once lose nothing.
    def log_to_ended(
        self,
        run_id: str,
        *,
        points: list[tuple[str, float, int, int]] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        artifacts: dict[str, Blob] | None = None,
    ) -> None:
        """Add checked data to a committed run in one commit (``NotFoundError`` when there
        is no such run, ``InvalidStateError`` when it is deleted)."""
        validation.check_run_id(run_id)
        base = layout.run_dir(run_id)

        def build(snap: BranchSnapshot) -> Changes:
            meta = self.committed_meta(run_id, snap)
            if meta["lifecycle"] == LifecycleStage.DELETED:
                raise InvalidStateError(f"run {run_id} is deleted; restore it before logging to it")
            changes: dict[str, Blob] = {}
            if params:
                where = f"{base}/{PARAMS}"
                stored = load_yaml(snap.read(where) or b"", where) or {}
                check_stored(stored, "params", where)
                new = _unlogged_params(run_id, stored, params)
                if new:
                    changes[where] = Blob(dump_yaml({**stored, **new}))
            if points:
                where = f"{base}/{METRICS}"
                raw = snap.read(where) or b""
                old, torn = parse_metric_lines(raw, where)
                if torn is not None or (raw and not raw.endswith(b"\n")):
                    raw = b"".join(metric_line(json.dumps(k), v, s, t) for k, v, s, t in old)
                lines = b"".join(metric_line(self._key(k), v, s, t) for k, v, s, t in points)
                changes[where] = Blob(raw + lines)
                meta["metrics"] = encode_summaries(summarize_metrics(old + list(points)))
            for rel, blob in (artifacts or {}).items():
                check_artifact_slot(snap, run_id, rel)
                changes[f"{base}/{ARTIFACTS}/{rel}"] = blob
            if tags or points:
                _apply_tags(meta, tags or {})
                check_outgoing(meta, "meta", f"{base}/{META}")
                changes[f"{base}/{META}"] = Blob(dump_yaml(meta))
            return changes

        self.branch.commit(build, f"Log to ended run {run_id}\n\nRun-Id: {run_id}\n")

    def _write_meta(self, opened: _OpenRun) -> None:
        opened.live.write(META, live_meta_bytes(opened.meta))
        opened.file_stamps[META] = opened.live.stamp(META)

    def _remember_stamps(self, opened: _OpenRun) -> None:
        for name in (META, PARAMS):
            opened.file_stamps[name] = opened.live.stamp(name)

    @staticmethod
    def _grown(opened: _OpenRun, name: str, appended: int) -> None:
        """The stamp of a file after this process appended ``appended`` bytes to it."""
        before = opened.file_stamps.get(name)
        opened.file_stamps[name] = (
            opened.live.stamp_of_own(name, before[0] + appended)
            if before
            else opened.live.stamp(name)
        )

    def _refresh(self, opened: _OpenRun, name: str, force: bool = False) -> None:
        """Re-read a live file another process rewrote since we last wrote it."""
        stamp = opened.live.stamp(name)
        if not force and stamp == opened.file_stamps.get(name):
            return
        opened.live.reopen(name)  # appends go to the file now at the path
        doc = load_yaml(opened.live.read(name) or b"", f"{opened.live.path}/{name}")
        if name == META:
            opened.meta = doc
        else:
            opened.params = dict(doc or {})
        opened.file_stamps[name] = stamp

    def owns(self, run_id: str) -> bool:
        """Whether this process owns the live run ``run_id`` (it created or resumed it).

        Args:
            run_id: a run id.

        Returns:
            True when this process holds the run open as its owner.
        """
        opened = self._open.get(run_id)
        return opened is not None and opened.live.owner

    def opened(self, run_id: str) -> _OpenRun:
        """This process's handle on a live run it made writable (``writable``) before.

        Raises:
            KeyError: the run is not open in this process.
        """
        return self._open[run_id]
