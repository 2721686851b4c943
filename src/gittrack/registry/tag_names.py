"""Names of the registry's git tags: GTO's grammar, parsed and formatted in one place.

The registry is a set of annotated tags named the way GTO (iterative/gto) names them, so plain
``git tag`` and GTO read the same registry. The forms gittrack writes:

==============================  =====================================================
``M@vN.0.0``                    register version N of model M
``M@vN.0.0!``                   deregister version N
``M#LABEL#K``                   assign a stage or alias LABEL (to the version whose
                                registration tag points at the same commit)
``M#LABEL!#K``                  unassign LABEL
``M@deprecated``                deprecate (delete) model M
==============================  =====================================================

gittrack's version N is the semantic version ``vN.0.0``. ``K`` is the model's assignment
counter: one more than the highest ``#K`` suffix on any tag of that model (the first is 1).

GTO's grammar is wider than what gittrack writes, and :func:`parse_tag` reads all of it: any
semantic version (``M@v1.2.3-rc.1+build``), a ``#K`` suffix on any kind of tag (``M@v1.0.0#3``,
``M@deprecated#7``) and assignments without a counter (``M#prod``). GTO also reserves the
suffix ``@created`` but gives it no meaning, so it is not a registry tag here either.

Names (GTO's rules):

* a model name is ``[NAMESPACE:]NAME``; NAME starts and ends with a letter or digit and
  otherwise holds letters, digits, ``_``, ``-`` and ``/``; a single character is allowed;
* the optional NAMESPACE (GTO calls it the directory part) holds letters, digits, ``_``,
  ``-``, ``.`` and ``/``; in a tag its ``:`` is written ``=`` (``nlp/models:bert`` is tagged
  ``nlp/models=bert@v1.0.0``), since ``:`` cannot appear in a git ref;
* a stage or alias label follows the NAME rule.

On top of GTO's rules, gittrack refuses names that git cannot store as a tag (an empty path
segment ``//``, ``..``, a segment that starts with ``.`` or ends with ``.lock``), so that a
name that passes validation always makes a valid ref. Lengths are bounded for the same
reason: a loose ref is a file, and the longest tag gittrack writes, ``M#LABEL!#K`` plus git's
``.lock``, must fit in one file name (255 bytes) with a model name of at most
``MAX_MODEL_NAME_LENGTH`` and a label of at most ``MAX_LABEL_LENGTH`` characters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

from gittrack.errors import InvalidInputError

NAMESPACE_SEPARATOR = ":"
NAMESPACE_SEPARATOR_IN_TAG = "="

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?"
_NAMESPACE = r"[A-Za-z0-9_./-]+"
_MODEL_IN_TAG = rf"(?:{_NAMESPACE}{NAMESPACE_SEPARATOR_IN_TAG})?{_NAME}"

# Semantic versioning 2.0.0 (semver.org), with GTO's mandatory lowercase "v" prefix.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = (
    rf"v(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?P<prerelease>-{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*)?"
    rf"(?P<build>\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?"
)

_TAG_RE = re.compile(
    rf"(?P<model>{_MODEL_IN_TAG})"
    rf"(?:"
    rf"(?:#(?P<label>{_NAME})|@(?P<version>{_SEMVER}))(?P<cancel>!)?"
    rf"|@(?P<deprecated>deprecated)"
    rf")"
    rf"(?:#(?P<counter>[0-9]+))?"
)
_NAME_RE = re.compile(_NAME)
_NAMESPACE_RE = re.compile(_NAMESPACE)

DEPRECATED_SUFFIX = "deprecated"
MAX_MODEL_NAME_LENGTH = 160
MAX_LABEL_LENGTH = 64


class TagKind(str, Enum):
    """What a registry tag records."""

    REGISTRATION = "registration"
    DEREGISTRATION = "deregistration"
    ASSIGNMENT = "assignment"
    UNASSIGNMENT = "unassignment"
    DEPRECATION = "deprecation"


@dataclass(frozen=True)
class ParsedTag:
    """A registry tag name taken apart.

    ``version`` is the semantic version as written (``v2.0.0``); ``version_number`` is N when
    it has gittrack's form ``vN.0.0`` (N >= 1) and ``None`` otherwise. ``label`` is set for
    assignments and unassignments, ``counter`` whenever the tag has a ``#K`` suffix.
    """

    tag: str
    kind: TagKind
    model: str
    version: str | None = None
    version_number: int | None = None
    label: str | None = None
    counter: int | None = None


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"Invalid model name {name!r}: a model name must be non-empty")
    _check_length("model name", name, MAX_MODEL_NAME_LENGTH)
    namespace, separator, base = name.rpartition(NAMESPACE_SEPARATOR)
    if separator and NAMESPACE_SEPARATOR in namespace:
        raise InvalidInputError(
            f"Invalid model name {name!r}: at most one {NAMESPACE_SEPARATOR!r} is allowed "
            "(NAMESPACE:NAME)"
        )
    if separator and not _NAMESPACE_RE.fullmatch(namespace):
        raise InvalidInputError(
            f"Invalid model name {name!r}: the namespace before {NAMESPACE_SEPARATOR!r} must "
            "be non-empty and hold only letters, digits, '_', '-', '.' and '/'"
        )
    if not _NAME_RE.fullmatch(base):
        raise InvalidInputError(f"Invalid model name {name!r}: {_name_rule(base, 'the name')}")
    _check_storable_in_git("model name", name)
    return name


def validate_label(label: str) -> str:
    """Return ``label`` (a stage or alias) if it is valid, else raise ``InvalidInputError``."""
    if isinstance(label, str):
        _check_length("stage or alias", label, MAX_LABEL_LENGTH)
    if not isinstance(label, str) or not _NAME_RE.fullmatch(label):
        raise InvalidInputError(
            f"Invalid stage or alias {label!r}: {_name_rule(label, 'a stage or alias')}"
        )
    _check_storable_in_git("stage or alias", label)
    return label


def validate_version_number(number: int) -> int:
    """Return ``number`` if it is a valid version number (an integer >= 1)."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidInputError(
            f"Invalid version number {number!r}: versions are integers starting at 1"
        )
    return number


def validate_counter(counter: int) -> int:
    """Return ``counter`` if it is a valid assignment counter (an integer >= 1)."""
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 1:
        raise InvalidInputError(
            f"Invalid assignment counter {counter!r}: counters are integers starting at 1"
        )
    return counter


def version_string(number: int) -> str:
    """The semantic version gittrack writes for version ``number``: ``vN.0.0``."""
    return f"v{validate_version_number(number)}.0.0"


def version_tag(name: str, number: int) -> str:
    """Tag that registers version ``number`` of model ``name``: ``M@vN.0.0``."""
    return f"{_model_in_tag(name)}@{version_string(number)}"


def deregistration_tag(name: str, number: int) -> str:
    """Tag that deregisters version ``number`` of model ``name``: ``M@vN.0.0!``."""
    return f"{version_tag(name, number)}!"


def stage_tag(name: str, label: str, counter: int) -> str:
    """Tag that assigns stage or alias ``label``: ``M#LABEL#K``."""
    validate_label(label)
    return f"{_model_in_tag(name)}#{label}#{validate_counter(counter)}"


def unassignment_tag(name: str, label: str, counter: int) -> str:
    """Tag that removes stage or alias ``label``: ``M#LABEL!#K``."""
    validate_label(label)
    return f"{_model_in_tag(name)}#{label}!#{validate_counter(counter)}"


def deprecation_tag(name: str, counter: int | None = None) -> str:
    """Tag that deprecates model ``name``: ``M@deprecated`` (``M@deprecated#K`` with a counter).

    A counter is needed only to deprecate a model a second time, as tag names are unique.
    """
    tag = f"{_model_in_tag(name)}@{DEPRECATED_SUFFIX}"
    return tag if counter is None else f"{tag}#{validate_counter(counter)}"


@functools.lru_cache(maxsize=1 << 16)
def parse_tag(tag_name: str) -> ParsedTag | None:
    """Parse a tag name (without ``refs/tags/``); ``None`` if it is not a registry tag.

    Remembered (a ``ParsedTag`` is immutable): every registry read and write looks at each
    tag of a model, so a registry of thousands of tags would parse the same names again and
    again.
    """
    match = _TAG_RE.fullmatch(tag_name)
    if match is None:
        return None
    model = match["model"].replace(NAMESPACE_SEPARATOR_IN_TAG, NAMESPACE_SEPARATOR)
    counter = int(match["counter"]) if match["counter"] else None
    cancelled = match["cancel"] == "!"
    if match["deprecated"]:
        return ParsedTag(tag_name, TagKind.DEPRECATION, model, counter=counter)
    if match["label"]:
        kind = TagKind.UNASSIGNMENT if cancelled else TagKind.ASSIGNMENT
        return ParsedTag(tag_name, kind, model, label=match["label"], counter=counter)
    kind = TagKind.DEREGISTRATION if cancelled else TagKind.REGISTRATION
    return ParsedTag(
        tag_name,
        kind,
        model,
        version=match["version"],
        version_number=_gittrack_version_number(match),
        counter=counter,
    )


def is_registry_tag(tag_name: str) -> bool:
    """Whether ``tag_name`` follows the registry grammar."""
    return parse_tag(tag_name) is not None


def _model_in_tag(name: str) -> str:
    return validate_model_name(name).replace(NAMESPACE_SEPARATOR, NAMESPACE_SEPARATOR_IN_TAG)


def _gittrack_version_number(match: re.Match[str]) -> int | None:
    if match["prerelease"] or match["build"] or match["minor"] != "0" or match["patch"] != "0":
        return None
    major = int(match["major"])
    return major if major >= 1 else None


def _name_rule(value: str, what: str) -> str:
    if not value:
        return f"{what} must be non-empty"
    return (
        f"{what} must start and end with a letter or digit and hold only letters, digits, "
        "'_', '-' and '/'"
    )


def _check_length(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInputError(
            f"Invalid {what} {value[:40]!r}...: it has {len(value)} characters; at most {limit} "
            "are allowed, so that its git tags fit in a file name"
        )


def _check_storable_in_git(what: str, value: str) -> None:
    as_in_tag = value.replace(NAMESPACE_SEPARATOR, NAMESPACE_SEPARATOR_IN_TAG)
    segments = as_in_tag.split("/")
    if "" in segments or ".." in as_in_tag:
        problem = "an empty path segment ('//' or a leading '/')" if "" in segments else "'..'"
    elif any(segment.startswith(".") for segment in segments):
        problem = "a path segment starting with '.'"
    elif any(segment.endswith(".lock") for segment in segments):
        problem = "a path segment ending in '.lock'"
    else:
        return
    raise InvalidInputError(f"Invalid {what} {value!r}: a git tag name cannot contain {problem}")
