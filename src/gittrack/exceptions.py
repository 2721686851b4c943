"""MLflow's ``mlflow.exceptions`` names, drawn onto gittrack's one hierarchy (``errors.py``).

``MlflowException`` is ``GittrackError``: ``except MlflowException`` catches every error
gittrack raises on purpose, and ``e.error_code`` is MLflow's code for the same condition
(``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, ...). The other classes MLflow
scripts name in ``except`` clauses are subclasses, so such clauses import and behave; gittrack
has no server, projects or tracing, so it raises none of them itself::

    MlflowException (GittrackError)
     ├── RestException              a tracking server's REST error
     ├── ExecutionException         an MLflow project run failed
     ├── MissingConfigException     a required configuration is missing
     ├── MlflowTracingException     a tracing operation failed
     └── InvalidUrlException        (also InvalidInputError) a malformed URL
"""

from __future__ import annotations

from gittrack.errors import GittrackError, InvalidInputError

MlflowException = GittrackError


class RestException(GittrackError):
    """An error answered by a tracking server's REST API (never raised: no server here)."""


class ExecutionException(GittrackError):
    """An MLflow project run failed (never raised: gittrack does not run projects)."""


class MissingConfigException(GittrackError):
    """A required configuration file or setting is missing."""


class MlflowTracingException(GittrackError):
    """A tracing operation failed (never raised: gittrack does not trace)."""


class InvalidUrlException(InvalidInputError):
    """A URL that cannot be parsed or uses a scheme that is not allowed."""


__all__ = [
    "ExecutionException",
    "InvalidUrlException",
    "MissingConfigException",
    "MlflowException",
    "MlflowTracingException",
    "RestException",
]
