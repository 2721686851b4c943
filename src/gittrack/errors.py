"""The one exception hierarchy of gittrack.

Every error a user can cause is a ``GittrackError`` subclass whose message names the offending
value, key or file and what is allowed. The command line maps these classes to exit codes once.
"""

from __future__ import annotations

import warnings


class GittrackError(Exception):
    """Base class of every error gittrack raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(GittrackError, ValueError):
    """A key, value, path or argument breaks a documented rule; nothing was written."""

    exit_code = 2


class NotFoundError(GittrackError, LookupError):
    """A run, experiment, model, version or artifact does not exist."""

    exit_code = 3


class ConflictError(GittrackError):
    """The request contradicts what is stored (a changed param, a duplicate name)."""

    exit_code = 4


class InvalidStateError(GittrackError):
    """The object is in a state that forbids the operation (finished or deleted run)."""

    exit_code = 5


class CorruptDataError(GittrackError):
    """Stored data does not match its schema or cannot be parsed; the message names the file."""

    exit_code = 6


class RepositoryError(GittrackError):
    """The tracking repository is missing, not a git repository, or git failed."""

    exit_code = 7


class PolicyError(GittrackError):
    """A registry policy in ``.tracking/config.yaml`` forbids the operation."""

    exit_code = 8


class CorruptDataWarning(UserWarning):
    """A run or file that cannot be read was left out of a listing; the message names it."""


def warn_skipped(message: str) -> None:
    """Say that a listing or search went on without what ``message`` names.

    One corrupt file (a hostile pull, a hand edit) is reported this way and skipped, so it
    never stops a search of everything else; reading it directly still raises.
    """
    warnings.warn(f"skipped: {message}", CorruptDataWarning, stacklevel=3)


# MLflow scripts sometimes catch ``MlflowException``; the name is kept as an alias.
MlflowException = GittrackError
