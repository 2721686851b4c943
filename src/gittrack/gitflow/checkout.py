"""A run's exact code: which commit holds it, its uncommitted change, and a linked worktree
holding it (``gittrack checkout``, ``runs show --code``, ``compare --code``; DESIGN §5, §13).

A run made on a clean tree ran on ``source.commit``. A run made on a dirty tree ran on its
snapshot commit (parent ``source.commit``), which the run's tracking commit keeps reachable;
``git diff <commit> <snapshot>`` is its uncommitted change. A run the post-commit hook
relabelled names the commit its snapshot became, whose tree is the snapshot's.

``checkout_run`` adds a linked worktree with ``git worktree add --detach``: the user's own
work tree, index, HEAD, branch and stash are untouched; git records the new worktree under
``$GIT_DIR/worktrees/``, which is what the user asked for. Everything is checked before the
worktree is added, and a failure after it removes the worktree again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from gittrack.entities import Run
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    GittrackError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
)
from gittrack.gitflow.by_commit import FULL_ID
from gittrack.store.codecs import dump_yaml
from gittrack.store.files import replace_file
from gittrack.tracking.repository import TrackingRepository

RUN_FILE = ".gittrack-run.yaml"


@dataclass(frozen=True)
class RunCode:
    """Where a run's code is.

    ``base`` is the commit the run started on; ``commit`` the commit whose tree is the code
    it ran (the snapshot for a dirty tree, else ``base``). ``captured`` is False for a
    dirty-tree run whose uncommitted change was not recorded (capture mode ``commit``);
    ``untracked_skipped`` lists the untracked files too large for the snapshot."""

    run_id: str
    base: str
    commit: str
    dirty: bool
    captured: bool
    untracked_skipped: tuple[str, ...]

    @property
    def has_change(self) -> bool:
        """Whether the code differs from ``base`` (a snapshot with its own tree)."""
        return self.commit != self.base


@dataclass(frozen=True)
class Checkout:
    """A linked worktree holding a run's code, and the run file written in it."""

    path: Path
    code: RunCode
    run_file: Path


def run_code(repository: TrackingRepository, run: Run) -> RunCode:
    """Where ``run``'s code is.

    :raises InvalidStateError: the run recorded no source commit (capture mode ``none``, or
        it ran outside a git repository).
    :raises NotFoundError: the recorded commit is not in this repository (fetch it).
    :raises CorruptDataError: the recorded commit or snapshot is not a full commit id (a
        revision such as ``HEAD`` would show other code) or names a blob or tree.
    """
    source = run.source
    run_id = run.info.run_id
    if not source.commit:
        raise InvalidStateError(
            f"run {run_id} recorded no source commit (source capture was 'none' or it ran "
            "outside a git repository): there is no code to show"
        )
    repo = repository.repo
    for what, sha in (("commit", source.commit), ("snapshot", source.snapshot)):
        if sha and not FULL_ID.fullmatch(sha):
            raise CorruptDataError(
                f"run {run_id}'s source {what} {sha!r} is not a commit id (40 or 64 "
                "lowercase hex digits): the run's record is damaged"
            )
        if sha and not repo.has_object(sha):
            raise NotFoundError(
                f"run {run_id}'s source {what} {sha} is not in {repository.path}: "
                "fetch it (git fetch, gittrack pull) first"
            )
        kind = repo.read_object(sha)[0] if sha else "commit"
        if kind != "commit":
            raise CorruptDataError(
                f"run {run_id}'s source {what} {sha!r} names a {kind}, not a commit: "
                "the run's record is damaged"
            )
    code = source.commit
    if source.snapshot and repo.commit_tree_info(source.snapshot)[0] != _tree(repository, code):
        code = source.snapshot
    return RunCode(
        run_id=run_id,
        base=source.commit,
        commit=code,
        dirty=bool(source.dirty),
        captured=not source.dirty or bool(source.snapshot),
        untracked_skipped=tuple(source.untracked_skipped),
    )


def _tree(repository: TrackingRepository, commit: str) -> str:
    return repository.repo.commit_tree_info(commit)[0]


def code_diff(repository: TrackingRepository, old: str, new: str, stat: bool = False) -> bytes:
    """``git diff old new`` (a patch, or ``--stat`` with ``stat``) between two commits' code;
    empty when their trees are equal. The user's external diff and textconv drivers are not
    run: the output is the plain patch."""
    if _tree(repository, old) == _tree(repository, new):
        return b""
    form = ("--stat",) if stat else ("--patch",)
    return repository.repo.git(
        "diff", "--no-ext-diff", "--no-textconv", *form, old, new, "--"
    ).stdout


def default_checkout_path(repository: TrackingRepository, run_id: str) -> Path:
    """``<parent of the repository>/<repository name>-run-<first 8 of run id>``: beside the
    user's work tree, never inside it (where it would show in ``git status``)."""
    root = repository.repo.work_tree or repository.repo.common_dir
    return root.parent / f"{root.name}-run-{run_id[:8]}"


def check_checkout_path(path: Path) -> Path:
    """``path`` made absolute, refused when something is already there.

    :raises ConflictError: the path exists (a file, a directory, a dangling link).
    """
    path = Path(path).expanduser().absolute()
    if path.exists() or path.is_symlink():
        raise ConflictError(
            f"checkout path {str(path)!r} already exists: choose another with --path, "
            "or remove it (git worktree remove, for an earlier checkout)"
        )
    return path


def run_file_document(run: Run, code: RunCode) -> dict:
    """What ``.gittrack-run.yaml`` holds: the run, its code and its params."""
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "source": {
            "commit": code.base,
            "code": code.commit,
            "branch": run.source.branch,
            "dirty": code.dirty,
            "snapshot": run.source.snapshot,
            "untracked_skipped": list(code.untracked_skipped),
            "entry_point": run.source.entry_point,
        },
        "params": dict(sorted(run.data.params.items())),
    }


def checkout_run(repository: TrackingRepository, run_id: str, path: Path | None = None) -> Checkout:
    """Add a linked worktree at ``path`` (default ``default_checkout_path``) holding the
    run's exact code, detached, with the run and its params in ``.gittrack-run.yaml``.

    :raises NotFoundError: no such run, or its code is not in the repository.
    :raises InvalidStateError: the run recorded no source commit.
    :raises ConflictError: ``path`` exists.
    :raises InvalidInputError: the repository has no work tree (bare).
    """
    run = repository.runs.get(run_id)
    code = run_code(repository, run)
    target = check_checkout_path(path or default_checkout_path(repository, run.info.run_id))
    if repository.repo.bare:
        raise InvalidInputError(f"{repository.path} is a bare repository: it has no worktrees")
    repository.repo.git("worktree", "add", "--detach", "--quiet", str(target), code.commit)
    run_file = target / RUN_FILE
    try:
        replace_file(str(run_file), dump_yaml(run_file_document(run, code)))
    except BaseException:
        with contextlib.suppress(GittrackError):  # the write's error is the one to report
            remove_worktree(repository, target)
        raise
    return Checkout(target, code, run_file)


def remove_worktree(repository: TrackingRepository, path: Path) -> None:
    """Remove a linked worktree ``checkout_run`` added: its files and git's record of it.

    :raises RepositoryError: git could not remove it (its message says why).
    """
    repository.repo.git("worktree", "remove", "--force", "--force", str(path))
