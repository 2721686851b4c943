"""The registry as of one moment, read-only, and its MLflow-shaped entities.

A :class:`RegistryView` joins what the tags say (versions, stages, aliases, lifecycle) with the
metadata files at one commit of the tracking branch (descriptions and tags), and turns them
into ``RegisteredModel`` and ``ModelVersion`` objects. Metadata files are read lazily, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from types import MappingProxyType
from typing import Any

from gittrack.entities import ModelVersion, RegisteredModel, RegisteredModelSummary
from gittrack.errors import (
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
    warn_skipped,
)
from gittrack.registry import metadata
from gittrack.registry.state import (
    ModelState,
    RegistrationMessage,
    RegistryState,
    TagRecord,
    Version,
    build_registry_state,
)
from gittrack.registry.tag_names import TagKind, parse_tag
from gittrack.registry.tags_io import TagListing
from gittrack.store.branch import BranchSnapshot
from gittrack.store.codecs import parse_time
from gittrack.utils.clock import to_ms


class RegistryView:
    """Tags, the registry state they give, and the branch snapshot holding the metadata."""

    def __init__(
        self,
        listing: TagListing,
        snapshot: BranchSnapshot,
        stages: tuple[str, ...],
        state: RegistryState | None = None,
    ) -> None:
        """``state``, when given, is the one ``listing`` gives with ``stages`` (computed once
        for many views, see ``shared_state``); else it is computed here."""
        self.listing = listing
        self.snapshot = snapshot
        self.stages = stages
        if state is None:
            state = build_registry_state(listing.records, stages)
        self.state: RegistryState = state
        self._model_docs: dict[str, dict[str, Any] | None] = {}
        self.skipped = 0  # things left out of a listing because a file is unreadable
        self._version_docs: dict[tuple[str, int], dict[str, Any] | None] = {}

    # ------------------------------------------------------------------ metadata
    def model_doc(self, name: str) -> dict[str, Any] | None:
        if name not in self._model_docs:
            self._model_docs[name] = metadata.read_model(self.snapshot, name)
        return self._model_docs[name]

    def version_doc(self, name: str, number: int) -> dict[str, Any] | None:
        key = (name, number)
        if key not in self._version_docs:
            self._version_docs[key] = metadata.read_version(self.snapshot, name, number)
        return self._version_docs[key]

    @cached_property
    def _index(self) -> dict[str, str]:
        return metadata.blob_index(self.snapshot)

    def prefetch(self, names: Iterable[str] = (), versions: Iterable[tuple[str, int]] = ()) -> None:
        """Read the metadata files of many models and versions in one batch."""
        names = [n for n in names if n not in self._model_docs]
        keys = [k for k in versions if k not in self._version_docs]
        paths = [metadata.model_path(n) for n in names]
        paths += [metadata.version_path(n, v) for n, v in keys]
        if not paths:
            return
        cache = metadata.DocCache(self.snapshot.repo.gittrack_dir / "cache" / "registry-docs.json")
        unreadable: dict[str, str] = {}
        docs = metadata.read_many(self.snapshot, self._index, paths, cache, unreadable)
        cache.save(keep=self._index.values())
        # An unreadable file is not kept: reading it again raises, for the caller to report.
        for name in names:
            if metadata.model_path(name) not in unreadable:
                self._model_docs[name] = docs[metadata.model_path(name)]
        for key in keys:
            if metadata.version_path(*key) not in unreadable:
                self._version_docs[key] = docs[metadata.version_path(*key)]

    @cached_property
    def _deprecations(self) -> dict[str, TagRecord]:
        latest: dict[str, TagRecord] = {}
        for record in self.listing.records:
            parsed = parse_tag(record.name)
            if parsed is None or not record.annotated or parsed.kind is not TagKind.DEPRECATION:
                continue
            if parsed.model not in latest or record.date > latest[parsed.model].date:
                latest[parsed.model] = record
        return latest

    # ------------------------------------------------------------------ existence
    def exists(self, name: str) -> bool:
        """Whether ``name`` is a live registered model.

        A model lives when it is not deprecated and has a ``model.yaml`` or an active version,
        or when its ``model.yaml`` was written after its latest deprecation (it was deleted and
        created again).
        """
        model = self.state.models.get(name)
        doc = self.model_doc(name)
        if model is not None and not model.deprecated:
            return doc is not None or model.has_active_versions()
        if doc is None:
            return False
        if model is None:
            return True
        deprecation = self._deprecations.get(name)
        if deprecation is None:
            return True
        # gittrack deprecates on the commit that removes model.yaml: a model.yaml now means the
        # model was created again. A deprecation made elsewhere is compared by time.
        at_deprecation = BranchSnapshot(self.snapshot.repo, deprecation.commit)
        if at_deprecation.entry(metadata.model_path(name)) is None:
            return True
        return (parse_time(doc.get("creation_time")) or 0) > to_ms(deprecation.date)

    def model_names(self) -> list[str]:
        """Every live model, by name."""
        candidates = sorted(set(metadata.model_names_in(self._index)) | set(self.state.models))
        self.prefetch(names=candidates)
        return [n for n in candidates if self._readable_and_exists(n)]

    def _readable_and_exists(self, name: str) -> bool:
        """``exists``; a model whose ``model.yaml`` cannot be read is left out with a warning."""
        try:
            return self.exists(name)
        except CorruptDataError as exc:
            self.skip(exc.message)
            return False

    def skip(self, message: str) -> None:
        """Report that an unreadable file leaves something out of what this view lists."""
        self.skipped += 1
        warn_skipped(message)

    def require_model(self, name: str) -> ModelState:
        """The model's state (empty when it has no versions yet); NotFoundError if it is gone."""
        if not self.exists(name):
            raise NotFoundError(f"Registered model {name!r} does not exist")
        model = self.state.models.get(name)
        if model is None or model.deprecated:
            return ModelState(name)
        return model

    def require_version(self, name: str, number: int | str) -> Version:
        model = self.require_model(name)
        n = parse_version_number(number)
        version = model.versions.get(n)
        if version is None or version.deregistered:
            active = [v.number for v in model.active_versions()]
            raise NotFoundError(
                f"Model version {name!r} version {n} does not exist; "
                f"versions: {', '.join(map(str, active)) or 'none'}"
            )
        return version

    # ------------------------------------------------------------------ entities
    def model_version(self, version: Version) -> ModelVersion:
        doc = self.version_doc(version.model, version.number) or {}
        # Versions registered by hand or by GTO have no file: their tag message tells.
        info = RegistrationMessage() if _complete(doc) else _registration_info(version)
        created, updated = self._version_times(version)
        return ModelVersion(
            name=version.model,
            version=str(version.number),
            creation_timestamp=created,
            last_updated_timestamp=updated,
            description=doc.get("description", info.description),
            user_id=doc.get("user") or info.user or version.email,
            current_stage=version.current_stage,
            source=doc.get("source") or info.source,
            run_id=doc.get("run_id") or info.run_id,
            status="READY",
            tags=dict(doc.get("tags") or {}),
            aliases=list(version.aliases),
            model_id=doc.get("model_id"),
        )

    def latest_per_stage(self, name: str) -> list[Version]:
        """The highest active version in each stage (``"None"`` included), in stage order."""
        return self._latest_per_stage(self.require_model(name).active_versions())

    def _latest_per_stage(self, active: list[Version]) -> list[Version]:
        latest: dict[str, Version] = {}
        for version in active:
            latest[version.current_stage] = version
        order = [*self.stages, *sorted(set(latest) - set(self.stages))]
        return [latest[s] for s in order if s in latest]

    def registered_model(self, name: str) -> RegisteredModel:
        summary = self.model_summary(name)
        versions = self.require_model(name).versions
        return RegisteredModel(
            name=name,
            creation_timestamp=summary.creation_timestamp,
            last_updated_timestamp=summary.last_updated_timestamp,
            description=summary.description,
            tags=dict(summary.tags),
            latest_versions=[self.model_version(versions[n]) for _, n in summary.latest_stages],
            aliases={alias: str(n) for alias, n in summary.aliases.items()},
        )

    def model_summary(self, name: str) -> RegisteredModelSummary:
        """What ``registered_model`` says of ``name``, its latest versions as numbers.

        Raises:
            NotFoundError: the model does not exist.
            CorruptDataError: its ``model.yaml`` or a latest version's file is unreadable.
        """
        model = self.require_model(name)
        doc = self.model_doc(name) or {}
        active = model.active_versions()
        latest = self._latest_per_stage(active)
        self.prefetch(versions=[(name, v.number) for v in latest])
        created = parse_time(doc.get("creation_time")) or min(
            (to_ms(v.when) for v in active), default=None
        )
        updates = [parse_time(doc.get("last_update_time")) or created or 0]
        if active:
            updates.append(to_ms(max(v.last_tagged for v in active)))
        updates += [self._version_times(v)[1] for v in latest]
        return RegisteredModelSummary(
            name=name,
            creation_timestamp=created,
            last_updated_timestamp=max(updates) or None,
            description=doc.get("description"),
            tags=MappingProxyType(dict(doc.get("tags") or {})),
            latest_stages=tuple((v.current_stage, v.number) for v in latest),
            aliases=MappingProxyType(dict(sorted(model.aliases.items()))),
            versions=tuple(v.number for v in active),
        )

    def _version_times(self, version: Version) -> tuple[int, int]:
        """(creation, last update) of a version in ms: its file's, else its tags'."""
        doc = self.version_doc(version.model, version.number) or {}
        created = parse_time(doc.get("creation_time")) or to_ms(version.when)
        return created, max(created, _last_change(version, doc))


MAX_VERSION = 2**63 - 1  # MLflow's version column is a 64-bit integer


def parse_version_number(number: int | str) -> int:
    """A version number given as an int or a string (MLflow passes both), 1 to 2**63-1."""
    if isinstance(number, bool):
        value = 0
    elif isinstance(number, int):
        value = number  # not through str(): an int of over 4300 digits cannot be spelled
    else:
        text = str(number).strip()
        try:
            value = int(text) if len(text) <= 40 else 0
        except ValueError:
            value = 0
    if not 1 <= value <= MAX_VERSION:
        shown = "over 2**63-1" if value > MAX_VERSION else repr(number)[:60]
        raise InvalidInputError(f"Model version {shown} is not a version number (1, 2, 3, ...)")
    return value


_VERSION_FIELDS = ("source", "run_id", "user", "description")


def _complete(doc: dict[str, Any]) -> bool:
    return all(key in doc for key in _VERSION_FIELDS)


def _last_change(version: Version, doc: dict[str, Any]) -> int:
    """The latest of the version's file edit, registration and label assignments (ms)."""
    return max(parse_time(doc.get("last_update_time")) or 0, to_ms(version.last_tagged))


def _registration_info(version: Version) -> RegistrationMessage:
    # A hand-made registration tag may carry any text; it must not break reading.
    try:
        return version.registration_info()
    except CorruptDataError:
        return RegistrationMessage(description=version.message.strip() or None)
