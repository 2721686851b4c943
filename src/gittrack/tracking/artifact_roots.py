"""Which directories outside git the runs of this clone may keep artifacts in (DESIGN §10).

An experiment created with ``artifact_location`` keeps its runs' artifacts in
``<location>/<run_id>/artifacts``, and the run's ``meta.yaml`` records that ``artifact_uri``.
Both documents travel with ``git pull``, so a crafted branch could name any directory of the
puller's machine: a run whose ``artifact_uri`` is ``~/.ssh`` would list and copy keys, and a
new run in an experiment whose location is the user's working tree would write files into it.

So the location a document names is honoured only in its own shape and place:

- **reading** a run's artifacts needs its ``artifact_uri`` to be an absolute local path that,
  normalized, is ``<root>/<run_id>/artifacts`` for the run's own id, where neither of the last
  two directories is a symbolic link, and where neither the path nor what it resolves to lies
  in a working tree of the repository (the main one, a linked one, a superproject's) or in
  its git directory: such a directory holds that run's artifacts and nothing else of the
  user's;
- **writing** there (a new run in the experiment, or an artifact logged to an existing run)
  also needs ``<root>`` to be trusted by this clone: created here with
  ``create_experiment(artifact_location=...)`` (recorded in ``$GIT_DIR/gittrack/artifact-roots``,
  which no push or pull carries), or declared by the user with
  ``git config --add gittrack.artifactRoot PATH``, as git's ``safe.directory`` declares
  repositories. The refusal says which command trusts it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import urllib.parse
from pathlib import Path

from gittrack.errors import (
    CorruptDataError,
    InvalidInputError,
    InvalidStateError,
    warn_skipped,
)
from gittrack.store.files import replace_file, storage_error
from gittrack.store.git import GitRepo
from gittrack.store.validation import check_name_characters
from gittrack.tracking import validation

CONFIG_KEY = "gittrack.artifactRoot"
ROOTS_FILE = "artifact-roots"


def _normal(path: str) -> str:
    """A local path as roots are compared: normalized (``..`` and doubled separators
    folded, symbolic links left as they are)."""
    return os.path.normpath(path)


def _local_path(location: str, what: str) -> str:
    """The absolute local path a location names (a path or a ``file://`` URI), normalized.

    Raises:
        ValueError: a relative path, a ``file://`` URI naming another host, or a control
            character (``what`` names the location in the message).
    """
    if location.lower().startswith("file:"):
        host = urllib.parse.urlparse(location).netloc
        if host not in ("", "localhost"):
            raise ValueError(f"{what} {location!r} names the host {host!r}")
    path = str(validation.artifact_location_path(location))
    try:
        check_name_characters(path, what)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from exc
    if not os.path.isabs(path):
        raise ValueError(f"{what} {location!r} is not an absolute path")
    return _normal(path)


class ArtifactRoots:
    """The artifact directories outside git that this clone trusts, and the checks on the
    locations that branch documents name."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._repository_dirs: list[tuple[Path, str]] | None = None

    # ------------------------------------------------------------------ trust
    @property
    def _file(self) -> Path:
        return self.repo.gittrack_dir / ROOTS_FILE

    def _recorded(self) -> set[str]:
        """The roots this clone recorded; a missing file records none.

        Raises:
            RepositoryError: the file exists but cannot be read.
        """
        try:
            data = self._file.read_bytes()
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise storage_error(exc, "could not read the trusted artifact locations") from exc
        lines = data.decode("utf-8", errors="surrogateescape").splitlines()
        return {line for line in lines if os.path.isabs(line)}

    def _declared(self) -> set[str]:
        """The roots of ``git config gittrack.artifactRoot`` (this repository's and the
        user's configuration: never a file a pull changes), read at each call so that a
        root declared while a process runs counts at once (only writes under roots this
        clone did not record come here). A value that is not an absolute path (after ``~``
        expansion) is reported and ignored, as git ignores such a ``safe.directory``."""
        proc = self.repo.git("config", "--get-all", CONFIG_KEY, check=False)
        roots = set()
        for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
            value = os.path.expanduser(line.strip())
            if not value:
                continue
            if os.path.isabs(value):
                roots.add(_normal(value))
            else:
                warn_skipped(f"git config {CONFIG_KEY} {line!r} is not an absolute path")
        return roots

    def is_trusted(self, root: str) -> bool:
        """Whether runs may write artifacts under ``root``.

        Args:
            root: an absolute local path, normalized.

        Returns:
            True when this clone created an experiment with it or the user declared it in
            ``git config gittrack.artifactRoot``.
        """
        return root in self._recorded() or root in self._declared()

    def trust(self, location: str) -> None:
        """Record ``location`` (an experiment this clone just created) as a root its runs
        may write artifacts under. Concurrent processes each add theirs: the file is
        rewritten whole under an exclusive lock.

        Raises:
            RepositoryError: the record could not be read or written (a full disk...).
        """
        root = _local_path(location, "artifact_location")
        lock_path = f"{self._file}.lock"
        with self._lock:
            try:
                self._file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise storage_error(exc, f"could not record {root!r} as trusted") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                recorded = self._recorded()
                if root not in recorded:
                    lines = sorted(recorded | {root})
                    text = "\n".join(lines) + "\n"
                    replace_file(self._file, text.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                raise storage_error(exc, f"could not record {root!r} as trusted") from exc
            finally:
                os.close(fd)  # closing releases the lock

    # ------------------------------------------------------------------ places
    def _repository_places(self) -> list[tuple[Path, str]]:
        """Every directory gittrack never writes in: the git directory, each working tree
        of the repository (main and linked) and the superproject's, as given and resolved."""
        if self._repository_dirs is None:
            places: list[tuple[Path, str]] = [(self.repo.common_dir, "git directory")]
            if self.repo.work_tree is not None:
                places.append((self.repo.work_tree, "working tree"))
            listed = self.repo.git("worktree", "list", "--porcelain", check=False)
            for line in listed.stdout.decode("utf-8", "surrogateescape").splitlines():
                if line.startswith("worktree "):
                    places.append((Path(line[len("worktree ") :]), "working tree"))
            if self.repo.work_tree is not None:
                above = self.repo.git("rev-parse", "--show-superproject-working-tree", check=False)
                superproject = above.stdout.decode("utf-8", "surrogateescape").strip()
                if above.returncode == 0 and superproject:
                    places.append((Path(superproject), "superproject's working tree"))
            resolved = []
            for place, what in places:
                resolved.append((Path(_normal(str(place.absolute()))), what))
                with contextlib.suppress(OSError):
                    resolved.append((place.resolve(), what))
            self._repository_dirs = resolved
        return self._repository_dirs

    def _inside_repository(self, path: str) -> str | None:
        """What part of the repository ``path`` lies in, as written or once resolved
        (symbolic links followed), or None."""
        candidates = [Path(path)]
        with contextlib.suppress(OSError):
            candidates.append(Path(path).resolve())
        for candidate in candidates:
            for place, what in self._repository_places():
                if candidate == place or place in candidate.parents:
                    return f"{what} ({place})"
        return None

    def check_outside_repository(self, location: str) -> None:
        """Refuse a location in a working tree or the git directory of the repository:
        artifacts written there would change the user's files (or git's).

        Raises:
            InvalidInputError: the location is inside one of them.
        """
        inside = self._inside_repository(
            _normal(str(validation.artifact_location_path(location).absolute()))
        )
        if inside is not None:
            raise InvalidInputError(
                f"artifact_location {location!r} is inside the repository's {inside}: "
                "gittrack never writes there; choose a directory outside it, or leave "
                "artifact_location unset to keep artifacts in the runs on the tracking branch"
            )

    # ------------------------------------------------------------------ the checks of use
    def check_writable_location(self, location: str, experiment_id: str) -> None:
        """Refuse to start a run whose artifacts would go to ``location`` unless it is an
        absolute local path outside the repository that this clone trusts.

        Raises:
            CorruptDataError: the experiment's location is not an absolute local path, or
                lies inside the repository (a crafted document); nothing is written.
            InvalidStateError: the location is not trusted by this clone; nothing is
                written.
        """
        what = f"experiment {experiment_id}: artifact_location"
        try:
            root = _local_path(location, what)
        except ValueError as exc:
            raise CorruptDataError(f"{exc}: gittrack does not write artifacts there") from exc
        inside = self._inside_repository(root)
        if inside is not None:
            raise CorruptDataError(
                f"{what} {location!r} lies inside the repository's {inside}: gittrack never "
                "writes there, so runs cannot be started in this experiment"
            )
        if not self.is_trusted(root):
            raise InvalidStateError(self._untrusted(root, f"experiment {experiment_id}"))

    def run_directory(self, uri: str, run_id: str, writing: bool) -> Path:
        """The directory holding a run's artifacts outside git, as its ``artifact_uri``
        names it, once the name is checked.

        Args:
            uri: the run's ``artifact_uri``.
            run_id: the run's id (already validated).
            writing: an artifact is about to be written there.

        Returns:
            ``<root>/<run_id>/artifacts``, normalized.

        Raises:
            CorruptDataError: the URI is not such a path outside the repository, or one of
                its last two directories is a symbolic link (a crafted document).
            InvalidStateError: ``writing`` under a root this clone does not trust.
        """
        what = f"run {run_id}: artifact_uri"
        if not isinstance(uri, str) or not uri:
            raise CorruptDataError(f"{what} {uri!r} is not a location")
        try:
            path = Path(_local_path(uri, what))
        except ValueError as exc:
            raise CorruptDataError(f"{exc}: gittrack does not read or write there") from exc
        if path.name != "artifacts" or path.parent.name != run_id:
            raise CorruptDataError(
                f"{what} {uri!r} is not <artifact_location>/{run_id}/artifacts: gittrack "
                "does not read or write artifacts there"
            )
        if os.path.islink(path) or os.path.islink(path.parent):
            raise CorruptDataError(
                f"{what} {uri!r} goes through a symbolic link (gittrack creates real "
                "directories there): gittrack does not read or write artifacts there"
            )
        inside = self._inside_repository(str(path))
        if inside is not None:
            raise CorruptDataError(
                f"{what} {uri!r} lies inside the repository's {inside}: gittrack does not "
                "read or write artifacts there"
            )
        root = str(path.parent.parent)
        if writing and not self.is_trusted(root):
            raise InvalidStateError(self._untrusted(root, f"run {run_id}"))
        return path

    @staticmethod
    def _untrusted(root: str, what: str) -> str:
        quoted = root.replace("'", "'\\''")
        return (
            f"{what} keeps its artifacts in {root!r}, outside git, and this clone has no "
            "record of trusting that location (it came with the tracking branch, or was "
            "created before gittrack recorded trusted locations); to let runs write there, "
            f"trust it: git config --add {CONFIG_KEY} '{quoted}'"
        )
