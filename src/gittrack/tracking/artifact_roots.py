"""Which directories outside git the runs of this clone may keep artifacts in (DESIGN §3).

An experiment created with ``artifact_location`` keeps its runs' artifacts in
``<location>/<run_id>/artifacts``, and the run's ``meta.yaml`` records that ``artifact_uri``.
Both documents travel with ``git pull``, so a crafted branch could name any directory of the
puller's machine: a run whose ``artifact_uri`` is ``~/.ssh`` would list and copy keys, and a
new run in an experiment whose location is the user's working tree would write files into it.

So the location a document names is honoured only in its own shape and place:

- **reading** a run's artifacts needs its ``artifact_uri`` to be exactly
  ``<root>/<run_id>/artifacts`` for the run's own id, with no ``..`` and outside the
  repository's working tree and git directory: such a directory holds that run's artifacts
  and nothing else of the user's;
- **writing** there (a new run in the experiment, or an artifact logged to an existing run)
  also needs ``<root>`` to be trusted by this clone: created here with
  ``create_experiment(artifact_location=...)`` (recorded in ``$GIT_DIR/gittrack/artifact-roots``,
  which no push or pull carries), or declared by the user with
  ``git config --add gittrack.artifactRoot PATH``, as git's ``safe.directory`` declares
  repositories. The refusal says which command trusts it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gittrack.errors import CorruptDataError, InvalidInputError, InvalidStateError
from gittrack.store.files import replace_file, storage_error
from gittrack.store.git import GitRepo
from gittrack.tracking import validation

CONFIG_KEY = "gittrack.artifactRoot"
ROOTS_FILE = "artifact-roots"


def _normal(location: str) -> str:
    """A location as roots are compared: the local path it names, absolute and normalized
    (``..`` and doubled separators folded, symbolic links left as they are)."""
    return os.path.normpath(os.path.abspath(validation.artifact_location_path(location)))


class ArtifactRoots:
    """The artifact directories outside git that this clone trusts, and the checks on the
    locations that branch documents name."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._lock = threading.Lock()

    @property
    def _file(self) -> Path:
        return self.repo.gittrack_dir / ROOTS_FILE

    def _recorded(self) -> set[str]:
        try:
            text = self._file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return set()
        return {line for line in text.splitlines() if line}

    def _declared(self) -> set[str]:
        """The roots of ``git config gittrack.artifactRoot`` (this repository's and the
        user's configuration: never a file a pull changes)."""
        proc = self.repo.git("config", "--type=path", "--get-all", CONFIG_KEY, check=False)
        if proc.returncode != 0:
            return set()
        return {_normal(line) for line in proc.stdout.decode().splitlines() if line.strip()}

    def is_trusted(self, location: str) -> bool:
        """Whether runs may write artifacts under ``location``.

        Args:
            location: an ``artifact_location`` (a path or ``file://`` URI).

        Returns:
            True when this clone created an experiment with it or the user declared it in
            ``git config gittrack.artifactRoot``.
        """
        root = _normal(location)
        return root in self._recorded() or root in self._declared()

    def trust(self, location: str) -> None:
        """Record ``location`` as a root this clone's runs may write artifacts under (an
        experiment is being created with it).

        Raises:
            RepositoryError: the record could not be written (a full disk...); the
                experiment is not created then.
        """
        root = _normal(location)
        with self._lock:
            recorded = self._recorded()
            if root in recorded:
                return
            lines = sorted(recorded | {root})
            try:
                replace_file(self._file, ("\n".join(lines) + "\n").encode())
            except OSError as exc:
                raise storage_error(
                    exc, f"could not record the artifact location {root!r}; nothing was created"
                ) from exc

    def check_outside_repository(self, location: str) -> None:
        """Refuse a location in the repository's working tree or git directory: artifacts
        written there would change the user's files (or git's).

        Raises:
            InvalidInputError: the location is inside one of them.
        """
        directory = validation.artifact_location_path(location).resolve()
        for inside, what in (
            (self.repo.work_tree, "working tree"),
            (self.repo.common_dir, "git directory"),
        ):
            if inside is not None and (
                directory == inside.resolve() or inside.resolve() in directory.parents
            ):
                raise InvalidInputError(
                    f"artifact_location {location!r} is inside the repository's {what} "
                    f"({inside}): gittrack never writes there; choose a directory outside it, "
                    "or leave artifact_location unset to keep artifacts in the runs on the "
                    "tracking branch"
                )

    def check_writable_location(self, location: str, experiment_id: str) -> None:
        """Refuse to start a run whose artifacts would go to an untrusted ``location``.

        Raises:
            InvalidStateError: the experiment's location came with a pull and is not trusted,
                or lies inside the repository; nothing is written.
        """
        try:
            self.check_outside_repository(location)
        except InvalidInputError as exc:
            raise InvalidStateError(
                f"experiment {experiment_id}: {exc.message}; its runs cannot log there"
            ) from exc
        if not self.is_trusted(location):
            raise InvalidStateError(self._untrusted(location, f"experiment {experiment_id}"))

    def run_directory(self, uri: str, run_id: str, writing: bool) -> Path:
        """The directory holding a run's artifacts outside git, as its ``artifact_uri``
        names it, once the name is checked.

        Args:
            uri: the run's ``artifact_uri``.
            run_id: the run's id (already validated).
            writing: an artifact is about to be written there.

        Returns:
            ``<root>/<run_id>/artifacts``.

        Raises:
            CorruptDataError: the URI is not ``<root>/<run_id>/artifacts`` for this run, or
                lies inside the repository (a crafted document).
            InvalidStateError: ``writing`` under a root this clone does not trust.
        """
        if not isinstance(uri, str) or not uri:
            raise CorruptDataError(f"run {run_id}: artifact_uri {uri!r} is not a location")
        raw = str(validation.artifact_location_path(uri))
        path = Path(_normal(uri))
        parts = Path(raw).parts
        if (
            not Path(raw).is_absolute()
            or ".." in parts
            or path.name != "artifacts"
            or path.parent.name != run_id
        ):
            raise CorruptDataError(
                f"run {run_id}: artifact_uri {uri!r} is not <artifact_location>/{run_id}/"
                "artifacts: gittrack does not read or write artifacts there"
            )
        try:
            self.check_outside_repository(str(path))
        except InvalidInputError as exc:
            raise CorruptDataError(
                f"run {run_id}: artifact_uri {uri!r} lies inside the repository: gittrack "
                "does not read or write artifacts there"
            ) from exc
        if writing and not self.is_trusted(str(path.parent.parent)):
            raise InvalidStateError(self._untrusted(str(path.parent.parent), f"run {run_id}"))
        return path

    @staticmethod
    def _untrusted(root: str, what: str) -> str:
        quoted = root.replace("'", "'\\''")
        return (
            f"{what} keeps its artifacts in {root!r}, outside git, a location that came "
            "with the tracking branch and that this clone has not trusted; to let runs "
            f"write there, trust it: git config --add {CONFIG_KEY} '{quoted}'"
        )
