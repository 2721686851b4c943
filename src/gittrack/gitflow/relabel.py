"""Re-label dirty-tree runs with the commit their code became (DESIGN §5, post-commit hook).

A run started on a dirty tree records HEAD and a snapshot commit of the working state; its
tracking commit takes the snapshot as second parent. When the user then commits exactly that
state, the new commit's tree equals the snapshot's tree, and the run is re-labelled with the
new commit (``source.commit`` and the ``mlflow.source.git.commit`` tag), all such runs in one
tracking commit.

Finding them must not read every run. A snapshot's parent is the commit the run started on,
recorded in the run's tracking commit as ``Source-Commit``: git's own ``--grep`` picks the
runs made on the new commit's parents (or on the commit it amends), so Python sees only those.
A run starts after its commit became HEAD here (HEAD's reflog, on this machine's clock), and is
committed after it starts, so the walk stops (``--since``) at tracking commits older than
that; without a reflog entry, the commit's own date less a day of slack for clocks is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from gittrack.errors import GittrackError
from gittrack.gitflow.notes import Notes, RunSummary, note_text
from gittrack.store import layout
from gittrack.store.branch import Blob, BranchSnapshot, Change, Changes
from gittrack.store.codecs import decode_metric_value, dump_yaml, load_yaml
from gittrack.store.git import GitRepo
from gittrack.store.schemas import check_outgoing, check_stored
from gittrack.store.staging import META
from gittrack.tracking.repository import TrackingRepository

CLOCK_SLACK_SECONDS = 24 * 3600
REFLOG_SLACK_SECONDS = 60
COMMIT_TAG = "mlflow.source.git.commit"


@dataclass(frozen=True)
class Relabelled:
    """The outcome of re-labelling for one code commit."""

    commit: str
    run_ids: tuple[str, ...]
    note_written: bool
    problems: tuple[str, ...] = ()


def committer_time(repo: GitRepo, commit: str) -> int:
    """The committer timestamp (seconds) of a commit."""
    _kind, body = repo.read_object(commit)
    for line in body.split(b"\n"):
        if not line:
            break
        if line.startswith(b"committer "):
            return int(line.rsplit(b" ", 2)[1])
    return 0


def _trailer(message: str, key: str) -> str | None:
    prefix = f"{key}: "
    for line in message.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def _head_reflog(repo: GitRepo) -> list[tuple[str, str, int]]:
    """HEAD's reflog as (old, new, local time) entries, oldest first; [] without one."""
    try:
        with open(repo.git_dir / "logs" / "HEAD", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    entries = []
    for line in raw.splitlines():
        fields = line.split(b"\t", 1)[0].split(b" ")
        try:
            entries.append((fields[0].decode(), fields[1].decode(), int(fields[-2])))
        except (IndexError, ValueError, UnicodeDecodeError):
            continue  # a damaged line says nothing about when HEAD moved
    return entries


def _earliest_start(repo: GitRepo, sources: set[str], reflog: list[tuple[str, str, int]]) -> int:
    """A time before any run on ``sources`` started: when each first became HEAD here (the
    reflog, this machine's clock), else its committer time less a day of clock slack."""
    became_head: dict[str, int] = {}
    for _old, new, when in reflog:
        if new in sources and new not in became_head:
            became_head[new] = when
    return min(
        became_head[source] - REFLOG_SLACK_SECONDS
        if source in became_head
        else committer_time(repo, source) - CLOCK_SLACK_SECONDS
        for source in sources
    )


def snapshot_runs(repository: TrackingRepository, commit: str) -> dict[str, str]:
    """Runs (id -> snapshot) whose tracking commit has a snapshot with ``commit``'s tree.

    A snapshot's parent is the HEAD the run started on: one of the new commit's parents, or
    the commit it amends. git filters the tracking commits by their ``Source-Commit`` trailer,
    so only the runs made on those commits reach Python."""
    repo = repository.repo
    if repository.branch.tip() is None:
        return {}
    tree, parents = repo.commit_tree_info(commit)
    reflog = _head_reflog(repo)
    previous_head = reflog[-1][0] if reflog else None  # what an amend replaced
    sources = {c for c in (*parents, previous_head) if c and c not in (repo.null_sha, commit)}
    if not sources:
        return {}
    args = ["log", "--first-parent", "--format=%H %P%x00%B%x1e", "-F"]
    args += [f"--grep=Source-Commit: {source}" for source in sorted(sources)]
    args.append(f"--since=@{_earliest_start(repo, sources, reflog)}")
    out = repo.git(*args, repository.branch.ref, "--").stdout.decode(errors="replace")
    found: dict[str, str] = {}
    for record in out.split("\x1e"):
        head, _, message = record.strip("\n").partition("\x00")
        shas = head.split()
        run_id = _trailer(message, "Run-Id")
        if len(shas) < 3 or run_id is None or run_id in found:
            continue
        snapshot = shas[2]
        if snapshot == _trailer(message, "Source-Commit"):
            continue  # a clean run: its second parent is the commit itself
        if repo.has_object(snapshot) and repo.commit_tree_info(snapshot)[0] == tree:
            found[run_id] = snapshot
    return found


def relabel(repository: TrackingRepository, commit: str) -> Relabelled:
    """Re-label the runs whose snapshot became ``commit`` and write the commit's note.

    A run whose ``meta.yaml`` cannot be read is left as it is and named in ``problems``;
    the others are re-labelled all the same."""
    candidates = snapshot_runs(repository, commit)
    if not candidates:
        return Relabelled(commit, (), False)
    changed: dict[str, dict] = {}
    problems: dict[str, str] = {}

    def build(snap: BranchSnapshot) -> Changes:
        changed.clear()
        problems.clear()
        changes: dict[str, Change] = {}
        for run_id, snapshot in sorted(candidates.items()):
            where = f"{layout.run_dir(run_id)}/{META}"
            try:
                meta = _relabelled(_meta(snap, where), snapshot, commit, where)
            except GittrackError as exc:
                problems[run_id] = exc.message
                continue
            if meta is None:
                continue
            changed[run_id] = meta
            if meta.pop("_changed"):
                changes[where] = Blob(dump_yaml(meta))
        return changes

    ids = sorted(candidates)
    message = (
        f"Relabel {len(ids)} run(s) with commit {commit[:12]}\n\n"
        f"Source-Commit: {commit}\n" + "".join(f"Run-Id: {run_id}\n" for run_id in ids)
    )
    repository.branch.commit(build, message)
    text = note_text(_summary(meta) for meta in changed.values())
    written = Notes(repository.repo).write({commit: text}) if text else False
    return Relabelled(commit, tuple(sorted(changed)), written, tuple(problems.values()))


def _relabelled(meta: dict, snapshot: str, commit: str, where: str) -> dict | None:
    """The run's meta with ``commit`` as its code (``_changed`` says whether that is new),
    or None when the run is not one of the snapshot's (anymore)."""
    source = meta.get("source") or {}
    if not meta or source.get("snapshot") != snapshot:
        return None
    if source.get("commit") == commit and meta["tags"].get(COMMIT_TAG) == commit:
        return {**meta, "_changed": False}  # done by an earlier call
    meta = {**meta, "source": {**source, "commit": commit}}
    meta["tags"] = {**meta["tags"], COMMIT_TAG: commit}
    check_outgoing(meta, "meta", where)
    return {**meta, "_changed": True}


def _meta(snap: BranchSnapshot, where: str) -> dict:
    raw = snap.read(where)
    if raw is None:
        return {}
    meta = load_yaml(raw, where)
    check_stored(meta, "meta", where)
    return meta


def _summary(meta: dict) -> RunSummary:
    metrics = {key: decode_metric_value(entry["value"]) for key, entry in meta["metrics"].items()}
    return RunSummary(
        meta["run_id"], str(meta["experiment_id"]), meta["run_name"], meta["status"], metrics
    )
