"""The model registry's state, computed from its tags (pure: the caller lists the tags).

Input is one :class:`TagRecord` per tag, as ``git for-each-ref refs/tags`` reports it. The
rules, which read the same tags the way GTO does wherever gittrack's model allows:

* Only annotated tags count; lightweight tags are ignored, as GTO ignores them.
* Events are ordered by tag date, then by the counter ``K``. Within one second, a tag
  without a counter comes before the counted ones if it registers or assigns (a version is
  registered before it is labelled) and after them if it deregisters or deprecates (those
  end a life). Remaining ties go registration, assignment, unassignment, deregistration,
  deprecation, then by tag name.
* An assignment or unassignment tag does not name a version: it refers to the version whose
  registration tag points at the same commit. This is how GTO resolves it, and it holds
  whatever the order of the tags. A tag on a commit that registers no version of the model
  changes nothing (GTO would list that commit as an unregistered version); a commit that
  registers several versions of one model is ambiguous and raises ``CorruptDataError``.
* A deregistration counts only on its version's registration commit (GTO matches both the
  version and the commit). A deregistered version keeps its record but holds no stage or
  alias, and later assignments to it are ignored.
* A label in the configured stages is a stage. A version's stage is the latest of its stage
  assignments that has not been unassigned since: after ``Staging``, ``Production`` and an
  unassignment of ``Production``, the version is back in ``Staging`` (GTO keeps every stage a
  version was given until it is unassigned; gittrack shows the latest one).
* Any other label is an alias. It belongs to the version that got it last and leaves the
  previous holder; unassigning it from its holder leaves it with no version. (Here GTO differs:
  it keeps the alias on the earlier versions and falls back to one of them.)
* A model is deprecated when its latest event is a deprecation; a later registration or
  assignment makes it active again, as in GTO.

A registration tag's message is a YAML mapping (source URI, run_id, user, description); see
:func:`format_registration_message` and :func:`parse_registration_message`.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from gittrack.errors import CorruptDataError, GittrackError, InvalidInputError, NotFoundError
from gittrack.registry.tag_names import (
    ParsedTag,
    TagKind,
    parse_tag,
    validate_label,
    validate_model_name,
    version_string,
)
from gittrack.store.codecs import dump_yaml, load_yaml

DEFAULT_STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")
"""MLflow's stages, the default set of labels that are stages rather than aliases."""

NO_STAGE = "None"

_KIND_PRIORITY = {
    TagKind.REGISTRATION: 0,
    TagKind.ASSIGNMENT: 1,
    TagKind.UNASSIGNMENT: 2,
    TagKind.DEREGISTRATION: 3,
    TagKind.DEPRECATION: 4,
}
_ENDING_KINDS = frozenset({TagKind.DEREGISTRATION, TagKind.DEPRECATION})

_REGISTRATION_KEYS = ("source", "run_id", "user", "description")


# ----------------------------------------------------------------------------- input


@dataclass(frozen=True)
class TagRecord:
    """One tag as git stores it.

    ``commit`` is the commit the tag points at (peeled). ``date`` is the tagger date, an aware
    datetime or epoch seconds (converted to an aware UTC datetime). ``annotated`` is False
    for a lightweight tag, which has no tagger, date or message of its own.
    """

    name: str
    commit: str
    tagger_name: str
    tagger_email: str
    date: datetime
    message: str = ""
    annotated: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.date, (int, float)) and not isinstance(self.date, bool):
            object.__setattr__(self, "date", datetime.fromtimestamp(self.date, tz=timezone.utc))
        elif not isinstance(self.date, datetime) or self.date.utcoffset() is None:
            raise InvalidInputError(
                f"Tag {self.name!r}: its date must be epoch seconds or a timezone-aware "
                f"datetime, got {self.date!r}"
            )


class TagChanges(NamedTuple):
    """The tags of one model added (in the order the store added them) and removed (in no
    particular order) between two points of a tag store's changes."""

    added: tuple[TagRecord, ...]
    removed: tuple[TagRecord, ...]


class TagFeed(Protocol):
    """A tag store's numbered changes (``registry.tags_io.TagJournal``)."""

    def changes(self, model: str, since: int, until: int) -> TagChanges | None:
        """The tags of ``model`` added and removed after change ``since`` up to change
        ``until``; None when the feed no longer knows them all."""
        ...


@dataclass(frozen=True)
class TagPosition:
    """Where a listing of tags stands in its store's changes: it holds the tags as they were
    after change ``generation`` of ``feed`` (only those of ``model``, when given).

    Whoever computed something from the tags at one position and keeps it can bring it up to
    date with the changes between that position and a later listing's, instead of reading
    every tag again (DESIGN §6).
    """

    feed: TagFeed
    generation: int
    model: str | None = None


# ----------------------------------------------------------------------------- output


class EventKind(str, Enum):
    """What happened to a model, as its history reports it."""

    REGISTERED = "registered"
    DEREGISTERED = "deregistered"
    STAGE = "stage"
    ALIAS = "alias"
    UNASSIGNED = "unassigned"
    DEPRECATED = "deprecated"


@dataclass(frozen=True)
class Event:
    """One entry of a model's history: what (kind, version, label), who, when and why."""

    model: str
    kind: EventKind
    version: int | None
    label: str | None
    who: str
    email: str
    when: datetime
    message: str
    tag: str
    commit: str


@dataclass(frozen=True)
class Assignment:
    """A stage or alias that a version holds, with the tag that gave it."""

    model: str
    version: int
    label: str
    is_stage: bool
    tag: str
    counter: int | None
    who: str
    email: str
    when: datetime
    message: str


@dataclass
class Version:
    """A registered version: its registration tag, and the labels it holds now."""

    model: str
    number: int
    commit: str
    tag: str
    who: str
    email: str
    when: datetime
    message: str
    deregistered: bool = False
    stage_assignment: Assignment | None = None
    alias_assignments: dict[str, Assignment] = field(default_factory=dict)

    @property
    def semver(self) -> str:
        """The version as written in its tag: ``vN.0.0``."""
        return version_string(self.number)

    @property
    def stage(self) -> str | None:
        """The version's stage, or ``None`` if it never got one (or lost it)."""
        return self.stage_assignment.label if self.stage_assignment else None

    @property
    def current_stage(self) -> str:
        """The stage in MLflow's spelling: the string ``"None"`` when there is none."""
        return self.stage or NO_STAGE

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(sorted(self.alias_assignments))

    @functools.cached_property
    def last_tagged(self) -> datetime:
        """When the latest tag that made the version what it is now was made: its
        registration or the assignment of a label it holds (a built ``Version`` never
        changes, so this is computed once)."""
        dates = [self.when, *(a.when for a in self.alias_assignments.values())]
        if self.stage_assignment is not None:
            dates.append(self.stage_assignment.when)
        return max(dates)

    def registration_info(self) -> RegistrationMessage:
        """The registration tag's message, parsed (see :func:`parse_registration_message`)."""
        return _remembered_registration(self.message, self.tag)


@dataclass
class ModelState:
    """A model: its versions by number, and whether it is deprecated."""

    name: str
    versions: dict[int, Version] = field(default_factory=dict)
    deprecated: bool = False
    # The numbers of the versions that hold a stage or an alias (None: not known, every
    # version is looked at): a model with thousands of versions has few labelled ones.
    labelled: frozenset[int] | None = None

    def _labelled_versions(self) -> list[Version]:
        """The versions that may hold a label, by number."""
        if self.labelled is None:
            return [v for _, v in sorted(self.versions.items())]
        return [self.versions[n] for n in sorted(self.labelled)]

    @property
    def aliases(self) -> dict[str, int]:
        """Each alias and the number of the version that holds it."""
        return {
            alias: version.number
            for version in self._labelled_versions()
            for alias in version.aliases
        }

    def version(self, number: int) -> Version:
        try:
            return self.versions[number]
        except KeyError:
            raise NotFoundError(
                f"Model {self.name!r} has no version {number!r}; "
                f"versions: {sorted(self.versions) or 'none'}"
            ) from None

    def active_versions(self) -> list[Version]:
        """Versions that are not deregistered, oldest number first."""
        return [v for _, v in sorted(self.versions.items()) if not v.deregistered]

    def has_active_versions(self) -> bool:
        """Whether any version is not deregistered."""
        return any(not v.deregistered for v in self.versions.values())

    def versions_in_stage(self, stage: str) -> list[Version]:
        """The active versions whose stage is ``stage``, oldest number first."""
        return [v for v in self._labelled_versions() if not v.deregistered and v.stage == stage]

    def latest_version(self, stage: str | None = None) -> Version | None:
        """The highest active version, optionally only among those in ``stage``."""
        candidates = self.active_versions() if stage is None else self.versions_in_stage(stage)
        return candidates[-1] if candidates else None

    def alias_version(self, alias: str) -> Version | None:
        number = self.aliases.get(alias)
        return None if number is None else self.versions[number]


@dataclass
class RegistryState:
    """Every model that has registry tags, by name, and the labels that are stages."""

    models: dict[str, ModelState] = field(default_factory=dict)
    stages: tuple[str, ...] = DEFAULT_STAGES

    def model(self, name: str) -> ModelState:
        try:
            return self.models[name]
        except KeyError:
            raise NotFoundError(f"No registered model named {name!r}") from None

    def active_models(self) -> list[ModelState]:
        """Models that are not deprecated, by name."""
        return [m for _, m in sorted(self.models.items()) if not m.deprecated]


# ----------------------------------------------------------------------------- computing


def build_registry_state(
    tags: Iterable[TagRecord], stages: Sequence[str] = DEFAULT_STAGES
) -> RegistryState:
    """Compute the registry from its tags (rules in the module docstring)."""
    return StateBuilder().build(tags, stages)


def model_history(
    tags: Iterable[TagRecord], name: str, stages: Sequence[str] = DEFAULT_STAGES
) -> list[Event]:
    """Every registry event of model ``name``, oldest first."""
    validate_model_name(name)
    stage_set = _validate_stages(stages)
    events = _registry_tags_by_model(tags).get(name, [])
    by_commit = _registrations_by_commit(events)
    return [_history_event(name, p, r, by_commit, stage_set) for p, r in events]


def next_assignment_counter(tags: Iterable[TagRecord | str], name: str) -> int:
    """The counter ``K`` for the next stage tag of ``name``: highest ``#K`` on its tags + 1.

    Like GTO, this counts every tag of the model, lightweight ones included, so the new tag
    name cannot collide with an existing one.
    """
    validate_model_name(name)
    return name_maxima(tags, name)[1] + 1


def next_version_number(tags: Iterable[TagRecord | str], name: str) -> int:
    """The next version number of ``name``: one more than the highest major version tagged.

    Deregistered versions count (their numbers are never reused), and so do versions GTO
    registered with any semantic version, so the new version is also the highest semver.
    """
    validate_model_name(name)
    return name_maxima(tags, name)[0] + 1


# ----------------------------------------------------------------------------- registration message


@dataclass(frozen=True)
class RegistrationMessage:
    """What a registration tag's message records. Unknown keys are kept in ``extra``."""

    source: str | None = None
    run_id: str | None = None
    user: str | None = None
    description: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def format_registration_message(
    *,
    source: str | None,
    run_id: str | None,
    user: str | None,
    description: str | None = None,
) -> str:
    """The YAML message of a registration tag.

    Write it with ``git tag --cleanup=verbatim`` so that git keeps it byte for byte.
    """
    document = {"source": source, "run_id": run_id, "user": user, "description": description}
    return dump_yaml(document).decode()


@functools.lru_cache(maxsize=1 << 14)
def _remembered_registration(text: str, tag: str) -> RegistrationMessage:
    """``parse_registration_message``, remembered: a listing reads the message of every
    version without a metadata file (GTO's), and the YAML parser is slow."""
    return parse_registration_message(text, tag)


def parse_registration_message(text: str, tag: str) -> RegistrationMessage:
    """Parse a registration tag's message.

    An empty message gives an empty record, and plain text that is not a mapping (as GTO
    writes: ``Registering artifact ...``) becomes the description. Invalid YAML, or a mapping
    whose known fields are not strings, raises ``CorruptDataError`` naming the tag.
    """
    document = load_yaml(text, f"Tag {tag!r}: its message") if text.strip() else None
    if document is None:
        return RegistrationMessage()
    if isinstance(document, str):
        return RegistrationMessage(description=document)
    if not isinstance(document, dict):
        raise CorruptDataError(
            f"Tag {tag!r}: its message must be a YAML mapping with keys "
            f"{', '.join(_REGISTRATION_KEYS)}; got a {type(document).__name__}"
        )
    for key in _REGISTRATION_KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise CorruptDataError(
                f"Tag {tag!r}: field {key!r} of its message must be a string, got {value!r}"
            )
    extra = {k: v for k, v in document.items() if k not in _REGISTRATION_KEYS}
    return RegistrationMessage(**{k: document.get(k) for k in _REGISTRATION_KEYS}, extra=extra)


# ----------------------------------------------------------------------------- internals

_TagEvent = tuple[ParsedTag, TagRecord]
_Plan = tuple[list[_TagEvent], list[_TagEvent], int]


def _validate_stages(stages: Sequence[str]) -> frozenset[str]:
    if isinstance(stages, str):
        raise InvalidInputError(f"Stages must be a sequence of names, got the string {stages!r}")
    return frozenset(validate_label(stage) for stage in stages)


def _order_key(event: _TagEvent) -> tuple[datetime, float, int, str]:
    parsed, record = event
    if parsed.counter is not None:
        counter: float = parsed.counter
    else:
        counter = math.inf if parsed.kind in _ENDING_KINDS else 0
    return (record.date, counter, _KIND_PRIORITY[parsed.kind], record.name)


def _registry_tags_by_model(tags: Iterable[TagRecord]) -> dict[str, list[_TagEvent]]:
    by_model: dict[str, list[_TagEvent]] = {}
    for record in tags:
        parsed = parse_tag(record.name)
        if parsed is not None and record.annotated:
            by_model.setdefault(parsed.model, []).append((parsed, record))
    for events in by_model.values():
        events.sort(key=_order_key)
    return by_model


def name_maxima(tags: Iterable[TagRecord | str], name: str) -> tuple[int, int]:
    """``(highest major version, highest counter)`` on the tags of model ``name`` among
    ``tags`` (0 when there is none); lightweight tags count, as in GTO."""
    major = counter = 0
    for tag in tags:
        parsed = parse_tag(tag if isinstance(tag, str) else tag.name)
        if parsed is None or parsed.model != name:
            continue
        if parsed.version is not None:
            major = max(major, int(parsed.version[1:].split(".", 1)[0]))
        if parsed.counter is not None:
            counter = max(counter, parsed.counter)
    return major, counter


def _registrations_by_commit(events: list[_TagEvent]) -> dict[str, list[ParsedTag]]:
    by_commit: dict[str, list[ParsedTag]] = {}
    for parsed, record in events:
        if parsed.kind is TagKind.REGISTRATION:
            registered = by_commit.setdefault(record.commit, [])
            if all(p.version != parsed.version for p in registered):
                registered.append(parsed)
    return by_commit


def _resolve_version(
    record: TagRecord, model: str, by_commit: dict[str, list[ParsedTag]]
) -> int | None:
    """The version an assignment or unassignment tag refers to, by its commit."""
    registered = by_commit.get(record.commit, [])
    if len(registered) > 1:
        versions = ", ".join(p.version or "" for p in registered)
        raise CorruptDataError(
            f"Tag {record.name!r} points at commit {record.commit}, where several versions of "
            f"model {model!r} are registered ({versions}); each version needs its own commit"
        )
    return registered[0].version_number if registered else None


class _ModelBuilder:
    """Replays one model's tag events, oldest first, and can be extended by later events.

    Which version an assignment refers to is decided by the registrations on its commit, so
    events can be added only while no new registration lands on a commit an earlier event
    already named (``appended``); otherwise the model is replayed from the start.
    """

    def __init__(self, name: str, stages: frozenset[str]) -> None:
        self.name = name
        self.stages = stages
        self.events: list[_TagEvent] = []
        self.by_commit: dict[str, list[ParsedTag]] = {}
        self.versions: dict[int, Version] = {}
        # Labels each version holds now, with the position of the event that gave them.
        self.labels: dict[int, dict[str, tuple[int, Assignment]]] = {}
        self.deprecated = False
        self._named_commits: set[str] = set()  # commits that events other than registrations name
        self._built: dict[int, Version] = {}  # the last state's versions, reused when untouched
        # Ids of the replayed tag records (``events`` keeps the records, so no id is reused).
        self._ids: set[int] = set()
        self._touched: set[int] = set()
        # The tags replayed are those of the model at this position of the store's changes
        # (None: unknown, or not from a store).
        self.position: TagPosition | None = None
        self._last_state: ModelState | None = None

    # ------------------------------------------------------------------ saved form
    def document(self) -> dict[str, Any]:
        """What was replayed, by tag name: the events in order, each version's registration
        tag (and whether it is deregistered), each held label's tag and position."""
        return {
            "stages": sorted(self.stages),
            "events": [record.name for _, record in self.events],
            "versions": [[n, v.tag, v.deregistered] for n, v in self.versions.items()],
            "labels": [
                [number, position, assignment.tag]
                for number, held in self.labels.items()
                for position, assignment in held.values()
            ],
            "deprecated": self.deprecated,
        }

    @classmethod
    def restored(
        cls, name: str, document: Mapping[str, Any], records: Mapping[str, TagRecord]
    ) -> _ModelBuilder:
        """The builder ``document`` describes, its tags taken from ``records`` (by name).

        Raises:
            KeyError, TypeError, ValueError: the document does not describe a builder of
                these tags (the caller replays the model instead).
        """
        builder = cls(name, frozenset(document["stages"]))
        builder.events = events = [_event_of(records[tag], name) for tag in document["events"]]
        builder.by_commit = _registrations_by_commit(events)
        builder._named_commits = {r.commit for p, r in events if p.kind is not TagKind.REGISTRATION}
        builder._ids = {id(record) for _, record in events}
        for number, tag, deregistered in document["versions"]:
            parsed, record = _event_of(records[tag], name)
            if parsed.kind is not TagKind.REGISTRATION or parsed.version_number != int(number):
                raise ValueError(f"version {number!r} described by tag {tag!r}")
            version = _new_version(name, parsed, record)
            if deregistered:
                version = replace(version, deregistered=True)
            builder.versions[int(number)] = version
        for number, position, tag in document["labels"]:
            holder = builder.versions.get(int(number))
            if holder is None or holder.deregistered:
                raise ValueError(f"label {tag!r} held by version {number!r}, which holds none")
            parsed, record = _event_of(records[tag], name)
            if parsed.kind is not TagKind.ASSIGNMENT or parsed.label is None:
                raise ValueError(f"label of version {number!r} given by tag {tag!r}")
            assignment = builder._assignment(parsed, record, int(number))
            held = builder.labels.setdefault(int(number), {})
            held[assignment.label] = (int(position), assignment)
        builder._touched = set(builder.versions)
        builder.deprecated = bool(document["deprecated"])
        return builder

    def appended(
        self, events: list[_TagEvent], added: list[_TagEvent] | None = None
    ) -> _Plan | None:
        """``(all events in order, the new ones, where replaying starts)`` when ``events`` are the replayed events,
        unchanged, plus new ones that can be replayed on top of them; ``None`` when the model
        must be replayed whole.

        New events must sort after the replayed ones, except registrations, which only add a
        version (a registration dated in the second of an assignment sorts before it): those
        may fall anywhere when their number and commit are new to the model.
        """
        # A listing holds one record per tag name, the same object while the tag is
        # unchanged: the replayed tags are all still there, unchanged, when every replayed
        # record is among ``events``, and the new events are those of the other records.
        # ``added``, when given, are those new events, found by the caller.
        if added is not None:
            new = list(added)
        else:
            by_id = dict(zip(map(id, map(itemgetter(1), events)), events))
            if len(by_id) != len(events) or not self._ids <= by_id.keys():
                return None
            new = [by_id[i] for i in by_id.keys() - self._ids]
        if any(p.kind is TagKind.REGISTRATION and r.commit in self._named_commits for p, r in new):
            return None  # an earlier assignment may now name this version
        new.sort(key=_order_key)
        done = len(self.events)
        if not new or not self.events:
            return self.events + new, new, done
        last = _order_key(self.events[-1])
        early = [event for event in new if _order_key(event) <= last]
        if not early:
            return self.events + new, new, done
        if not all(self._insertable(event) for event in early):
            return None
        ordered = self.events.copy()
        for event in early:  # each key is unique (it ends with the tag name)
            bisect.insort(ordered, event, key=_order_key)
        ordered += new[len(early) :]
        return ordered, new, done + len(early)

    def _insertable(self, event: _TagEvent) -> bool:
        parsed, record = event
        return (
            parsed.kind is TagKind.REGISTRATION
            and parsed.version_number is not None
            and parsed.version_number not in self.versions
            and record.commit not in self.by_commit
        )

    def extend(self, ordered: list[_TagEvent], new: list[_TagEvent], start: int) -> ModelState:
        """Take ``ordered`` (every event, sorted) as replayed: note the ``new`` ones, and
        replay ``ordered[start:]`` (before ``start``, new events are registrations only)."""
        for parsed, record in new:
            self._ids.add(id(record))
            if parsed.kind is TagKind.REGISTRATION:
                registered = self.by_commit.setdefault(record.commit, [])
                if all(p.version != parsed.version for p in registered):
                    registered.append(parsed)
                if parsed.version_number is not None:
                    number = parsed.version_number
                    if number not in self.versions:
                        self.versions[number] = _new_version(self.name, parsed, record)
                        self._touched.add(number)
            else:
                self._named_commits.add(record.commit)
        self.events = ordered
        for position in range(start, len(ordered)):
            parsed, record = ordered[position]
            if parsed.kind is TagKind.DEREGISTRATION:
                self._deregister(parsed, record)
            elif parsed.kind is TagKind.ASSIGNMENT:
                self._assign(parsed, record, position)
            elif parsed.kind is TagKind.UNASSIGNMENT:
                self._unassign(parsed, record)
        self.deprecated = bool(ordered) and ordered[-1][0].kind is TagKind.DEPRECATION
        return self._state()

    def _state(self) -> ModelState:
        """The state now: versions no event touched since the last state are shared with it
        (nobody changes a built ``Version``), the others are built afresh; a version that
        holds no label is its registration's ``Version`` itself. With nothing touched, the
        last state is the state."""
        last = self._last_state
        if not self._touched and last is not None and last.deprecated == self.deprecated:
            return last
        in_order = True
        highest = next(reversed(self._built), 0) if self._built else 0
        for number in sorted(self._touched):
            if number not in self._built:
                in_order = in_order and number > highest
                highest = max(highest, number)
            self._built[number] = _labelled(self.versions[number], self.labels.get(number))
        self._touched.clear()
        if not in_order:  # a version registered out of order: versions are kept by number
            self._built = dict(sorted(self._built.items()))
        labelled = frozenset(number for number, held in self.labels.items() if held)
        self._last_state = ModelState(self.name, dict(self._built), self.deprecated, labelled)
        return self._last_state

    def _deregister(self, parsed: ParsedTag, record: TagRecord) -> None:
        version = self.versions.get(parsed.version_number or 0)
        if version is not None and version.commit == record.commit:
            self.versions[version.number] = replace(version, deregistered=True)
            self.labels.pop(version.number, None)
            self._touched.add(version.number)

    def _assign(self, parsed: ParsedTag, record: TagRecord, position: int) -> None:
        number = self._active_version(record)
        if number is None or parsed.label is None:
            return
        label = parsed.label
        if label not in self.stages:
            for holder, held in self.labels.items():
                if held.pop(label, None) is not None:
                    self._touched.add(holder)
        assignment = self._assignment(parsed, record, number)
        self.labels.setdefault(number, {})[label] = (position, assignment)
        self._touched.add(number)

    def _assignment(self, parsed: ParsedTag, record: TagRecord, number: int) -> Assignment:
        assert parsed.label is not None
        return Assignment(
            model=self.name,
            version=number,
            label=parsed.label,
            is_stage=parsed.label in self.stages,
            tag=record.name,
            counter=parsed.counter,
            who=record.tagger_name,
            email=record.tagger_email,
            when=record.date,
            message=record.message,
        )

    def _unassign(self, parsed: ParsedTag, record: TagRecord) -> None:
        number = self._active_version(record)
        if number is not None and parsed.label is not None:
            self.labels.get(number, {}).pop(parsed.label, None)
            self._touched.add(number)

    def _active_version(self, record: TagRecord) -> int | None:
        number = _resolve_version(record, self.name, self.by_commit)
        if number is None or self.versions[number].deregistered:
            return None
        return number


class StateBuilder:
    """Computes registry states one after another, replaying for each model only the tags
    added since the previous state (a model whose earlier tags changed is replayed whole).

    The result is the one ``build_registry_state`` gives for the same tags; a service keeps
    one builder so that an operation on a model with thousands of tags costs its new tags.
    """

    def __init__(self) -> None:
        self._models: dict[str, _ModelBuilder] = {}
        self._last_grouped: (
            tuple[tuple[TagRecord, ...], frozenset[int], dict[str, list[_TagEvent]]] | None
        ) = None
        self.replayed = 0  # tag events replayed so far (restored models replay none)

    def build(
        self,
        tags: Iterable[TagRecord],
        stages: Sequence[str] = DEFAULT_STAGES,
        position: TagPosition | None = None,
    ) -> RegistryState:
        """The registry state of ``tags`` (rules in the module docstring).

        Args:
            tags: every tag (or, with a ``position`` naming a model, that model's tags).
            stages: the labels that are stages.
            position: where ``tags`` stand in their store's changes, when they are a store's
                listing: a model's builder that replayed its tags at an earlier position
                replays only the tags added since (no tag is compared then).
        """
        stage_set = _validate_stages(stages)
        if position is not None and position.model is not None:
            if tags == () and position.model not in self._models:
                return RegistryState(stages=tuple(stages))  # a model without tags, known none
            advanced = self._advanced(position, stage_set)
            if advanced is not None:
                return RegistryState(models=advanced, stages=tuple(stages))
        grouped, added = self._grouped(tags)
        models = {}
        try:
            for name in sorted(grouped):
                builder = self._models.get(name)
                plan = None
                if builder is not None and builder.stages == stage_set:
                    plan = builder.appended(grouped[name], added.get(name) if added else None)
                if builder is None or plan is None:
                    ordered = sorted(grouped[name], key=_order_key)
                    builder = self._models[name] = _ModelBuilder(name, stage_set)
                    plan = (ordered, ordered, 0)
                models[name] = self._extended(builder, plan, position)
        except BaseException:
            # Some builders may not have replayed these tags: the next call compares them all.
            self._last_grouped = None
            raise
        return RegistryState(models=models, stages=tuple(stages))

    def _advanced(
        self, position: TagPosition, stages: frozenset[str]
    ) -> dict[str, ModelState] | None:
        """The state of ``position.model`` from its builder and the tags added since the
        builder's position; None when that cannot be known that way (no builder, another
        store or stages, a tag removed or changed, changes the store no longer remembers)."""
        assert position.model is not None
        name = position.model
        builder = self._models.get(name)
        known = builder.position if builder is not None else None
        if builder is None or known is None or known.feed is not position.feed:
            return None
        if builder.stages != stages:
            return None
        changes = position.feed.changes(name, known.generation, position.generation)
        if changes is None or changes.removed:
            return None
        added = []
        for record in changes.added:
            parsed = parse_tag(record.name)
            if parsed is not None and parsed.model == name and record.annotated:
                added.append((parsed, record))
        plan = builder.appended(builder.events, added)
        if plan is None:
            return None
        # The builders no longer replayed exactly the last grouped call's tags.
        self._last_grouped = None
        state = self._extended(builder, plan, position)
        return {name: state} if builder.events else {}

    def _extended(
        self, builder: _ModelBuilder, plan: _Plan, position: TagPosition | None
    ) -> ModelState:
        """``builder.extend(*plan)``, after which the builder stands at ``position``; a
        builder whose replay failed part-way is dropped (the next state replays its model
        whole, and fails the same way)."""
        self.replayed += len(plan[0]) - plan[2]
        try:
            state = builder.extend(*plan)
        except BaseException:
            self._models.pop(builder.name, None)
            raise
        builder.position = position
        return state

    def _grouped(
        self, tags: Iterable[TagRecord]
    ) -> tuple[dict[str, list[_TagEvent]], dict[str, list[_TagEvent]] | None]:
        """The registry events of the annotated tags among ``tags``, by model; and, when
        the tags of the previous call are all still among ``tags`` (the same record objects:
        a listing keeps them while their tags are unchanged), the events added since for each
        model of that call (whose builder replayed exactly that call's events), else None.

        Only the added records are parsed then.
        """
        records = tags if isinstance(tags, tuple) else tuple(tags)
        by_id = dict(zip(map(id, records), records))
        last = self._last_grouped
        added: dict[str, list[_TagEvent]] | None = None
        if last is not None and len(by_id) == len(records) and last[1] <= by_id.keys():
            grouped = {model: events.copy() for model, events in last[2].items()}
            added = {model: [] for model in grouped}
            fresh: Iterable[TagRecord] = [by_id[i] for i in by_id.keys() - last[1]]
        else:
            grouped, fresh = {}, records
        for record in fresh:
            parsed = parse_tag(record.name)
            if parsed is not None and record.annotated:
                grouped.setdefault(parsed.model, []).append((parsed, record))
                if added is not None and parsed.model in last[2]:  # type: ignore[index]
                    added[parsed.model].append((parsed, record))
        # The records are kept with their ids, so that no id is reused while it is kept.
        self._last_grouped = (records, frozenset(by_id), grouped)
        return grouped, added

    def document(self, is_current: Callable[[TagRecord], bool]) -> dict[str, Any]:
        """The builder in JSON-able form, for ``restore`` in another process: the models
        whose replayed tags all pass ``is_current`` (the others are replayed there)."""
        return {
            name: builder.document()
            for name, builder in self._models.items()
            if all(is_current(record) for _, record in builder.events)
        }

    def restore(self, document: Any, records: Mapping[str, TagRecord]) -> None:
        """Take up what ``document`` (from ``document``) says was replayed, its tags looked
        up by name in ``records``; a model it does not describe well is left to be replayed,
        and so is one whose tags changed since (``build`` tells).

        Args:
            document: a value ``document`` returned, read back from JSON (any other value
                restores nothing).
            records: the tags the document was saved with, by name.
        """
        self._last_grouped = None  # the restored builders did not replay the last tags
        if not isinstance(document, dict):
            return
        for name, described in document.items():
            try:
                self._models[name] = _ModelBuilder.restored(name, described, records)
            except (KeyError, TypeError, ValueError, AttributeError, GittrackError):
                self._models.pop(name, None)


def _event_of(record: TagRecord, model: str) -> _TagEvent:
    """The registry event of a saved tag, which must be an annotated tag of ``model``."""
    parsed = parse_tag(record.name)
    if parsed is None or parsed.model != model or not record.annotated:
        raise ValueError(f"tag {record.name!r} is not a registry tag of model {model!r}")
    return parsed, record


def _labelled(version: Version, held: dict[str, tuple[int, Assignment]] | None) -> Version:
    """``version`` holding the labels ``held`` (label -> (position, assignment)): its stage is
    the stage assigned last, the others are aliases."""
    if not held:
        return version
    stages = [(position, a) for position, a in held.values() if a.is_stage]
    return Version(
        version.model,
        version.number,
        version.commit,
        version.tag,
        version.who,
        version.email,
        version.when,
        version.message,
        version.deregistered,
        max(stages, key=lambda item: item[0])[1] if stages else None,
        {a.label: a for _, a in held.values() if not a.is_stage},
    )


def _new_version(model: str, parsed: ParsedTag, record: TagRecord) -> Version:
    assert parsed.version_number is not None
    return Version(
        model=model,
        number=parsed.version_number,
        commit=record.commit,
        tag=record.name,
        who=record.tagger_name,
        email=record.tagger_email,
        when=record.date,
        message=record.message,
    )


def _history_event(
    model: str,
    parsed: ParsedTag,
    record: TagRecord,
    by_commit: dict[str, list[ParsedTag]],
    stages: frozenset[str],
) -> Event:
    if parsed.kind in (TagKind.ASSIGNMENT, TagKind.UNASSIGNMENT):
        version = _resolve_version(record, model, by_commit)
    else:
        version = parsed.version_number
    return Event(
        model=model,
        kind=_event_kind(parsed, stages),
        version=version,
        label=parsed.label,
        who=record.tagger_name,
        email=record.tagger_email,
        when=record.date,
        message=record.message,
        tag=record.name,
        commit=record.commit,
    )


def _event_kind(parsed: ParsedTag, stages: frozenset[str]) -> EventKind:
    if parsed.kind is TagKind.ASSIGNMENT:
        return EventKind.STAGE if parsed.label in stages else EventKind.ALIAS
    return {
        TagKind.REGISTRATION: EventKind.REGISTERED,
        TagKind.DEREGISTRATION: EventKind.DEREGISTERED,
        TagKind.UNASSIGNMENT: EventKind.UNASSIGNED,
        TagKind.DEPRECATION: EventKind.DEPRECATED,
    }[parsed.kind]
