"""The one exception hierarchy of gittrack.

Every error a user can cause is a ``GittrackError`` subclass whose message names the offending
value, key or file and what is allowed. The command line maps these classes to exit codes once.
"""

from __future__ import annotations

import warnings

# MLflow's HTTP status of each error code, so ``get_http_status_code`` answers as MLflow does.
_HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "INTERNAL_ERROR": 500,
}


class GittrackError(Exception):
    """Base class of every error gittrack raises on purpose.

    ``error_code`` is MLflow's code for the same condition, so a script written against
    ``MlflowException`` that tests ``e.error_code == "RESOURCE_DOES_NOT_EXIST"`` keeps working.
    """

    exit_code = 1
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None, **_details: object) -> None:
        super().__init__(message)
        self.message = message
        if isinstance(error_code, str):
            self.error_code = error_code

    def get_http_status_code(self) -> int:
        """The HTTP status MLflow's server would answer with for this error."""
        return _HTTP_STATUS.get(self.error_code, 500)


class InvalidInputError(GittrackError, ValueError):
    """A key, value, path or argument breaks a documented rule; nothing was written."""

    exit_code = 2
    error_code = "INVALID_PARAMETER_VALUE"


class NotFoundError(GittrackError, LookupError):
    """A run, experiment, model, version or artifact does not exist."""

    exit_code = 3
    error_code = "RESOURCE_DOES_NOT_EXIST"


class ConflictError(GittrackError):
    """The request contradicts what is stored (a changed param, a duplicate name)."""

    exit_code = 4
    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidStateError(GittrackError):
    """The object is in a state that forbids the operation (finished or deleted run)."""

    exit_code = 5
    error_code = "INVALID_STATE"


class RunEndedError(InvalidStateError):
    """The run is no longer live: it was committed (ended), possibly while this call ran.

    Logging calls catch it and add their data to the committed run with a commit of its own
    (MLflow lets a finished run take data); it reaches a caller only where that is impossible.
    """


class CorruptDataError(GittrackError):
    """Stored data does not match its schema or cannot be parsed; the message names the file."""

    exit_code = 6


class RepositoryError(GittrackError):
    """The tracking repository is missing, not a git repository, or git failed."""

    exit_code = 7


class PolicyError(GittrackError):
    """A registry policy in ``.tracking/config.yaml`` forbids the operation."""

    exit_code = 8
    error_code = "PERMISSION_DENIED"


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
