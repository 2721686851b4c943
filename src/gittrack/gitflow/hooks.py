"""Git hooks that keep runs labelled and shared: install, uninstall, status and their bodies.

Hooks go where git looks for them: ``git rev-parse --git-path hooks`` answers with
``core.hooksPath`` when it is set. A hook already there is never overwritten: it is moved
aside to ``<name>.gittrack-chained`` and the gittrack hook runs it first, with the same
arguments and standard input, and keeps its exit status (a user's pre-push hook that refuses
still refuses). Uninstalling moves it back. Installing twice changes nothing.

A hook script only calls the command line (``gittrack hooks run <name>``), through the Python
that installed it when it still exists, else ``gittrack`` on PATH, so the logic lives here and
is tested in process. The pre-commit framework can call the same command
(``.pre-commit-hooks.yaml`` at the repository root).

- post-commit: re-label dirty-tree runs whose snapshot is the new commit, write its note
  (skipped while a rebase replays commits).
- post-merge: merge the fetched remote tracking branch and notes (``gitflow.sync.pull``).
- reference-transaction (git >= 2.28): git runs post-merge only when ``git pull`` merged
  something, never after "Already up to date" nor with ``git pull --rebase``; this hook runs
  for every ref transaction, so when a fetch moved ``refs/remotes/<remote>/gittrack`` it merges
  what was fetched (``sync.pull(fetch=False)``, no second fetch). Its shell body decides with
  builtins only (no process at all for a commit or a checkout) and starts Python only then.
  The pre-commit framework has no such stage, so it is not in ``.pre-commit-hooks.yaml``.
- pre-push: push the tracking branch, registry tags and notes to the same remote
  (``gitflow.sync.push``). A failure is reported and does not block the user's push unless
  ``git config gittrack.hooks.strict true``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gittrack.errors import ConflictError, GittrackError, InvalidInputError, RepositoryError
from gittrack.store.files import replace_file
from gittrack.store.git import GitRepo
from gittrack.store.git_process import NESTED_HOOK_ENV
from gittrack.tracking.repository import TrackingRepository

HOOK_NAMES = ("post-commit", "post-merge", "pre-push", "reference-transaction")
MARKER = "# gittrack-hook:"
CHAINED_SUFFIX = ".gittrack-chained"
NESTED_ENV = NESTED_HOOK_ENV  # also set on every git gittrack starts
STRICT_CONFIG = "gittrack.hooks.strict"


@dataclass(frozen=True)
class HookState:
    """Where one hook stands: ``installed``, ``not installed`` or ``foreign`` (someone
    else's hook is at the path, not chained by gittrack)."""

    name: str
    state: str
    path: Path
    chained: Path | None


def parse_hook_names(spec: str | None) -> tuple[str, ...]:
    """``post-commit,pre-push`` -> the names, checked; None means all of them."""
    if spec is None:
        return HOOK_NAMES
    names = tuple(dict.fromkeys(part.strip() for part in spec.split(",") if part.strip()))
    unknown = [name for name in names if name not in HOOK_NAMES]
    if unknown or not names:
        raise InvalidInputError(
            f"hook {unknown[0] if unknown else spec!r} is not one gittrack provides; "
            f"choose from {', '.join(HOOK_NAMES)}"
        )
    return names


def hooks_dir(repo: GitRepo) -> Path:
    """The directory git runs hooks from (``core.hooksPath`` when set)."""
    out = repo.git_text("rev-parse", "--git-path", "hooks").strip()
    return (repo.path / out).resolve() if not os.path.isabs(out) else Path(out)


def _is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:  # missing, a directory, or a hooks path that is not a directory
        return False
    return MARKER.encode() in head


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _script_head(name: str, python: str) -> list[str]:
    """The marker, where the chained hook is, and ``gittrack_run`` (the installing Python,
    else ``gittrack`` on PATH): the same in every hook."""
    return [
        "#!/bin/sh",
        f"{MARKER} {name}",
        "# Written by `gittrack hooks install`; `gittrack hooks uninstall` removes it and puts",
        f"# back the hook it chains ({name}{CHAINED_SUFFIX}), if there was one.",
        f'chained="${{0%/*}}/{name}{CHAINED_SUFFIX}"',
        f"python={_sh_quote(python)}",
        "gittrack_run() {",
        '    if [ -x "$python" ]; then "$python" -m gittrack "$@"',
        '    elif command -v gittrack >/dev/null 2>&1; then gittrack "$@"',
        f'    else echo "gittrack: not installed; {name} hook skipped" >&2; fi',
        "}",
    ]


def _reference_transaction_script(python: str) -> str:
    """git runs this hook for every ref transaction (a commit, a checkout: several each), so
    it reads its input with shell builtins and starts nothing unless a fetch ``committed`` a
    new ``refs/remotes/<remote>/<tracking branch>``. The chained hook gets the same input
    and its status (in ``prepared`` a non-zero status aborts the transaction: the user's
    choice); gittrack's part never changes the status."""
    name = "reference-transaction"
    lines = _script_head(name, python) + [
        'input=""',
        'moved=""',
        "while read -r old new ref; do",
        '    input="$input$old $new $ref',
        '"',
        '    case "$ref" in',
        '    refs/remotes/*/"${GITTRACK_BRANCH:-gittrack}")',
        '        case "$new" in *[!0]*) moved=1 ;; esac ;;',
        "    esac",
        "done",
        "status=0",
        'if [ -x "$chained" ]; then printf \'%s\' "$input" | "$chained" "$@" || status=$?; fi',
        f'if [ "$1" = committed ] && [ -n "$moved" ] && [ -z "${NESTED_ENV}" ]; then',
        f"    {NESTED_ENV}=1",
        f"    export {NESTED_ENV}",
        f'    printf \'%s\' "$input" | gittrack_run hooks run {name} "$@" || :',
        "fi",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def hook_script(name: str, python: str | None = None) -> str:
    """The shell script of one hook: the chained hook first, then ``gittrack hooks run``."""
    python = python or sys.executable
    if name == "reference-transaction":
        return _reference_transaction_script(python)
    stdin = name == "pre-push"  # the only one of these that git gives input
    lines = _script_head(name, python)
    if stdin:
        lines += [
            'input="$(mktemp "${TMPDIR:-/tmp}/gittrack-hook.XXXXXX")" || exit 1',
            "trap 'rm -f \"$input\"' EXIT",
            'cat > "$input"',
        ]
    feed = ' < "$input"' if stdin else ""
    # A refused pre-push stops the push, so there is nothing to share; git ignores the
    # status of post-commit and post-merge, and gittrack's part runs whatever theirs did.
    # A rebase runs post-commit once per replayed commit: gittrack's part sits it out rather
    # than start Python for each.
    gate = {"pre-push": '[ "$status" -eq 0 ] && ', "post-commit": "! in_rebase && "}.get(name, "")
    if name == "post-commit":
        lines += [
            "in_rebase() {",
            "    git rev-parse --git-path rebase-merge --git-path rebase-apply 2>/dev/null | {",
            '        while IFS= read -r dir; do [ -d "$dir" ] && exit 0; done',
            "        exit 1",
            "    }",
            "}",
        ]
    lines += [
        "status=0",
        f'if [ -x "$chained" ]; then "$chained" "$@"{feed} || status=$?; fi',
        f'if {gate}[ -z "${NESTED_ENV}" ]; then',
        f"    {NESTED_ENV}=1",
        f"    export {NESTED_ENV}",
        f'    gittrack_run hooks run {name} "$@"{feed} || status=$?',
        "fi",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def _state(directory: Path, name: str) -> HookState:
    path = directory / name
    chained = directory / f"{name}{CHAINED_SUFFIX}"
    kept = chained if chained.exists() or chained.is_symlink() else None
    if _is_ours(path):
        return HookState(name, "installed", path, kept)
    if path.exists() or path.is_symlink():
        return HookState(name, "foreign", path, kept)
    return HookState(name, "not installed", path, kept)


def status(repo: GitRepo, names: Sequence[str] = HOOK_NAMES) -> list[HookState]:
    directory = hooks_dir(repo)
    return [_state(directory, name) for name in names]


def install(repo: GitRepo, names: Sequence[str] = HOOK_NAMES) -> list[tuple[HookState, str]]:
    """Install the hooks, chaining any hook already there; (state, what was done) each."""
    directory = hooks_dir(repo)
    states = [_state(directory, name) for name in names]
    for state in states:  # refuse before writing anything
        if state.state == "foreign" and state.chained is not None:
            raise ConflictError(
                f"{state.path} is not gittrack's hook but {state.chained} is already kept "
                "for it: move one of them away, then install again"
            )
    done = []
    for state in states:
        script = hook_script(state.name).encode()
        if state.state == "installed" and state.path.read_bytes() == script:
            done.append((state, "already installed"))
            continue
        try:
            action = _write_hook(directory, state, script)
        except OSError as exc:
            raise RepositoryError(
                f"could not install the {state.name} hook in {directory}: {exc.strerror or exc}"
            ) from exc
        done.append((_state(directory, state.name), action))
    return done


def _write_hook(directory: Path, state: HookState, script: bytes) -> str:
    """Write one hook, moving a foreign one aside first; on failure the foreign one is put
    back, so the user's hook never goes missing."""
    directory.mkdir(parents=True, exist_ok=True)
    if state.state != "foreign":
        replace_file(state.path, script, mode=0o755)
        return "updated" if state.state == "installed" else "installed"
    chained = directory / f"{state.name}{CHAINED_SUFFIX}"
    os.replace(state.path, chained)
    try:
        replace_file(state.path, script, mode=0o755)
    except OSError:
        os.replace(chained, state.path)
        raise
    return f"installed, chaining the existing hook (kept as {chained.name})"


def uninstall(repo: GitRepo, names: Sequence[str] = HOOK_NAMES) -> list[tuple[HookState, str]]:
    """Remove gittrack's hooks and put back the hooks they chained."""
    directory = hooks_dir(repo)
    done = []
    for name in names:
        state = _state(directory, name)
        if state.state != "installed":
            done.append(
                (
                    state,
                    "not gittrack's hook, left alone"
                    if state.state == "foreign"
                    else "not installed",
                )
            )
            continue
        try:
            if state.chained is not None:
                os.replace(state.chained, state.path)
                action = "removed, the chained hook restored"
            else:
                state.path.unlink()
                action = "removed"
        except OSError as exc:
            raise RepositoryError(
                f"could not remove the {name} hook {state.path}: {exc.strerror or exc}"
            ) from exc
        done.append((_state(directory, name), action))
    return done


# ------------------------------------------------------------------ hook bodies
def run_hook(repository: TrackingRepository, name: str, args: Sequence[str]) -> int:
    """Run one hook's gittrack part; returns the hook's exit code."""
    if name not in HOOK_NAMES:
        raise InvalidInputError(f"hook {name!r} is not one of {', '.join(HOOK_NAMES)}")
    try:
        return _HANDLERS[name](repository, list(args))
    except GittrackError as exc:
        problem = exc.message
    except Exception as exc:  # a hook must not break the user's git command
        problem = f"{type(exc).__name__}: {exc}"
    print(f"gittrack: {name} hook: {problem}", file=sys.stderr)
    return 1 if name == "pre-push" and _strict(repository.repo) else 0


def _post_commit(repository: TrackingRepository, args: list[str]) -> int:
    from gittrack.gitflow.relabel import relabel

    commit = repository.repo.rev_parse("HEAD")
    if commit is None:
        return 0
    result = relabel(repository, commit)
    for problem in result.problems:
        print(f"gittrack: post-commit: a run was left unlabelled: {problem}", file=sys.stderr)
    if result.run_ids:
        print(
            f"gittrack: {len(result.run_ids)} run(s) re-labelled with commit {commit[:12]}",
            file=sys.stderr,
        )
    return 0


def _sync() -> ModuleType | None:
    """``gitflow.sync`` when this version has it (push and pull are built beside the hooks)."""
    try:
        return importlib.import_module("gittrack.gitflow.sync")
    except ModuleNotFoundError as exc:
        if exc.name != "gittrack.gitflow.sync":
            raise
        return None


def _post_merge(repository: TrackingRepository, args: list[str]) -> int:
    sync = _sync()
    remote = _upstream_remote(repository.repo)
    if sync is None or remote is None:
        return 0
    _report(sync.pull(repository, remote))
    return 0


def _pre_push(repository: TrackingRepository, args: list[str]) -> int:
    remote = args[0] if args else os.environ.get("PRE_COMMIT_REMOTE_NAME")
    if not remote:
        return 0
    # Imported here: pyarrow, and pandas when the query index is behind the branch.
    from gittrack.gitflow.commit_runs import refresh_notes_for_push

    try:
        refresh_notes_for_push(repository, _pushed(repository.repo.null_sha), remote)
    except GittrackError as exc:  # the runs still go; their notes follow with the next push
        print(f"gittrack: pre-push: notes not updated: {exc.message}", file=sys.stderr)
    sync = _sync()
    if sync is None:
        print(
            "gittrack: pre-push: runs are not pushed: this version has no `gittrack push`",
            file=sys.stderr,
        )
        return 0
    _report(sync.push(repository, remote))
    return 0


def _reference_transaction(repository: TrackingRepository, args: list[str]) -> int:
    """Merge what a fetch brought into each ``refs/remotes/<remote>/<branch>`` it moved
    (git's input on stdin: ``<old> <new> <ref>`` lines); one remote failing is reported and
    the others still merge."""
    sync = _sync()
    if sync is None or args[:1] != ["committed"] or sys.stdin is None or sys.stdin.isatty():
        return 0
    for remote in _fetched_remotes(sys.stdin.read(), repository.branch_name):
        try:
            _report(sync.pull(repository, remote, fetch=False))
        except GittrackError as exc:
            print(f"gittrack: reference-transaction: {remote}: {exc.message}", file=sys.stderr)
    return 0


def _fetched_remotes(lines: str, branch: str) -> list[str]:
    """The remotes whose ``refs/remotes/<remote>/<branch>`` moved to a commit (not deleted)."""
    remotes = []
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[1].strip("0"):
            continue
        ref = parts[2]
        if ref.startswith("refs/remotes/") and ref.endswith(f"/{branch}"):
            remote = ref[len("refs/remotes/") : -len(branch) - 1]
            if remote and remote not in remotes:
                remotes.append(remote)
    return remotes


def _pushed(null_sha: str) -> list[tuple[str, str]]:
    """(local commit, remote commit) of each ref being pushed: git's input to pre-push, or
    the pre-commit framework's PRE_COMMIT_TO_REF/FROM_REF."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if to_ref:
        return [(to_ref, os.environ.get("PRE_COMMIT_FROM_REF") or null_sha)]
    if sys.stdin is None or sys.stdin.isatty():
        return []
    pairs = []
    for line in sys.stdin.read().splitlines():
        parts = line.split()
        if len(parts) == 4:
            pairs.append((parts[1], parts[3]))
    return pairs


def _report(report: object) -> None:
    """Print what a push or pull did, when it says (one line each, on stderr)."""
    lines = getattr(report, "lines", None)
    for line in lines() if callable(lines) else ():
        print(f"gittrack: {line}", file=sys.stderr)


def _upstream_remote(repo: GitRepo) -> str | None:
    """The remote the current branch pulls from (``branch.<name>.remote``)."""
    head = repo.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    branch = head.stdout.decode().strip()
    if head.returncode != 0 or not branch:
        return None
    proc = repo.git("config", "--get", f"branch.{branch}.remote", check=False)
    remote = proc.stdout.decode().strip()
    return remote if proc.returncode == 0 and remote and remote != "." else None


def _strict(repo: GitRepo) -> bool:
    proc = repo.git("config", "--bool", "--get", STRICT_CONFIG, check=False)
    return proc.stdout.decode().strip() == "true"


_HANDLERS = {
    "post-commit": _post_commit,
    "post-merge": _post_merge,
    "pre-push": _pre_push,
    "reference-transaction": _reference_transaction,
}
