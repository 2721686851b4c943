"""The model registry's operations, on git tags and the tracking branch (DESIGN §6).

What a version is lives in tags: ``M@vN.0.0`` registers version N on the tracking commit that
holds ``models/M/versions/N.yaml``, ``M#LABEL#K`` gives a stage or alias to the version
registered on the tagged commit, ``M@vN.0.0!`` deregisters and ``M@deprecated`` deletes the
model. Descriptions and tags, which can change, are YAML files on the tracking branch.

Concurrency: a version number is claimed by committing ``versions/N.yaml`` (the branch moves by
compare-and-swap, so two writers cannot both add the same file) and then creating the tag,
which fails if the name exists; either failure moves on to the next number. Assignment counters
are claimed the same way by creating the tag.

Each write checks the policy first (nothing is written when it refuses) and notifies the
configured receivers after the change is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from gittrack.entities import ModelVersion, RegisteredModel, RegisteredModelSummary
from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
    RepositoryError,
    warn_skipped,
)
from gittrack.query.paging import PagedList, page_of
from gittrack.registry import metadata
from gittrack.registry.notify import Notifier
from gittrack.registry.policy import ARCHIVE_STAGE, RegistryPolicy, Violation
from gittrack.registry.search import (
    MODEL_FIELDS,
    VERSION_FIELDS,
    FilterExpr,
    filter_models,
    filter_versions,
    names_required,
    order,
    parse_model_filter,
    parse_version_filter,
)
from gittrack.registry.shared_state import shared_registry
from gittrack.registry.state import (
    DEFAULT_STAGES,
    NO_STAGE,
    Event,
    Version,
    format_registration_message,
    model_history,
)
from gittrack.registry.tag_names import (
    deprecation_tag,
    deregistration_tag,
    stage_tag,
    unassignment_tag,
    validate_label,
    validate_model_name,
    version_tag,
)
from gittrack.registry.tag_writer import TagWriter, next_assignment_counter, next_version_number
from gittrack.registry.tags_io import TagListing
from gittrack.registry.time_travel import resolve_moment
from gittrack.registry.view import RegistryView, to_ms
from gittrack.store.branch import Blob, BranchSnapshot, Change
from gittrack.store.codecs import format_time
from gittrack.store.validation import check_tags, check_text
from gittrack.tracking import logged_models, model_uris, validation
from gittrack.tracking.repository import TrackingRepository
from gittrack.utils import clock

MAX_ATTEMPTS = 50
_Model = TypeVar("_Model", RegisteredModel, RegisteredModelSummary)
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class _NumberTaken(Exception):
    """Another writer committed the version file first: claim the next number."""


class RegistryService:
    """Registry operations on one tracking repository."""

    def __init__(
        self,
        repository: TrackingRepository,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.repository = repository
        self.repo = repository.repo
        self.branch = repository.branch
        self.shared = shared_registry(repository)
        self.tags = self.shared.tags
        self.writer = TagWriter(self.tags)
        self._report = report

    # ================================================================== configuration
    def stages(self) -> tuple[str, ...]:
        configured = (self.repository.config().get("registry") or {}).get("stages")
        return tuple(configured or DEFAULT_STAGES)

    def policy(self) -> RegistryPolicy:
        return RegistryPolicy.from_config(self.repository.config())

    def notifier(self) -> Notifier:
        return Notifier(
            self.repository.config().get("notifications") or {},
            self.repo.path,
            self._local_config,
            self._report,
        )

    def _local_config(self, key: str, as_bool: bool) -> list[str]:
        """Every value of ``key`` in the git config of this repository and its user (never
        from ``config.yaml``, which a pull can change)."""
        typed = ("--type=bool",) if as_bool else ()
        proc = self.repo.git("config", *typed, "--get-all", key, check=False)
        return proc.stdout.decode().splitlines() if proc.returncode == 0 else []

    def canonical_stage(self, stage: str) -> str:
        """The configured spelling of ``stage`` (case-insensitive, as in MLflow)."""
        if str(stage).lower() == NO_STAGE.lower():
            return NO_STAGE
        for known in self.stages():
            if known.lower() == str(stage).lower():
                return known
        raise InvalidInputError(
            f"{stage!r} is not a registry stage; stages: {', '.join(self.stages())} "
            "(configured in registry.stages of .tracking/config.yaml)"
        )

    # ================================================================== reading
    def view(
        self, at: str | datetime | None = None, model: str | None = None, refresh: bool = True
    ) -> RegistryView:
        """The registry now, or as it was at a revision or date.

        With ``model``, only that model's tags are read (the view knows no other model),
        which keeps single-model operations fast in a registry with many tags. With
        ``refresh`` False, the tags are those of the operation's first view, with its own
        writes since (an operation reads the tags once, as a database transaction would).
        """
        if at is None:
            listing, state = self.shared.current(self.stages(), model, refresh)
            return RegistryView(listing, self.branch.snapshot(), self.stages(), state)
        listing = self.tags.read()
        moment = resolve_moment(self.repo, self.branch.ref, at, listing)
        snapshot = BranchSnapshot(self.repo, moment.commit)
        return RegistryView(moment.tags_then(listing), snapshot, self.stages())

    def get_registered_model(self, name: str, at: str | datetime | None = None) -> RegisteredModel:
        return self.view(at, name).registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        at: str | datetime | None = None,
    ) -> PagedList:
        expression = parse_model_filter(filter_string)
        view = self.view(at)
        found = _matching_models(view, expression, order_by, view.registered_model)
        return page_of(found, max_results, page_token)

    def model_listing(
        self, filter_string: str | None = None, at: str | datetime | None = None
    ) -> list[RegisteredModelSummary]:
        """The registered models matching a filter, by name, as summaries (no entity is built).

        The listing of the whole registry now is remembered with the state and the tracking
        branch commit it was made from (``SharedRegistry.remembered_listing``): while neither
        changes, the next one is that listing again.

        Args:
            filter_string: a registered-model filter, as for ``search_registered_models``.
            at: a revision or date: the registry as it was then.

        Returns:
            One summary per model, by name.

        Raises:
            InvalidInputError: a malformed filter.
        """
        expression = parse_model_filter(filter_string)
        view = self.view(at)
        if at is not None or filter_string:
            return _matching_models(view, expression, None, view.model_summary)
        return self.shared.remembered_listing(
            view.state,
            view.snapshot.commit,
            lambda: _matching_models(view, expression, None, view.model_summary),
            lambda: view.skipped == 0,
        )

    def get_model_version(
        self, name: str, version: int | str, at: str | datetime | None = None
    ) -> ModelVersion:
        view = self.view(at, name)
        return view.model_version(view.require_version(name, version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        at: str | datetime | None = None,
    ) -> PagedList:
        expression = parse_version_filter(filter_string)
        view = self.view(at)
        names = view.model_names()
        wanted = names_required(expression)
        if wanted is not None:
            names = [n for n in names if n in wanted]
        view.prefetch(
            versions=[(n, v.number) for n in names for v in view.require_model(n).active_versions()]
        )
        versions = []
        for name in names:
            for version in view.require_model(name).active_versions():
                try:
                    versions.append(view.model_version(version))
                except CorruptDataError as exc:  # one unreadable file does not stop the listing
                    warn_skipped(exc.message)
        # MLflow's default: most recently updated first; any order_by is then broken by name
        # and the highest version first.
        found = order(
            filter_versions(versions, expression),
            order_by or ["last_updated_timestamp DESC"],
            _sort_value,
            ["name ASC", "version_number DESC"],
            VERSION_FIELDS,
        )
        return page_of(found, max_results, page_token)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The highest version in each stage (each configured stage when none are given)."""
        view = self.view(model=name)
        wanted = [self.canonical_stage(s) for s in stages] if stages else list(self.stages())
        latest = {v.current_stage: v for v in view.latest_per_stage(name)}
        return [view.model_version(latest[s]) for s in wanted if s in latest]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        view = self.view(model=name)
        model = view.require_model(name)
        holder = model.alias_version(alias)
        if holder is None:
            held = ", ".join(f"{a} (v{n})" for a, n in sorted(model.aliases.items()))
            raise NotFoundError(
                f"Registered model {name!r} has no alias {alias!r}; aliases: {held or 'none'}"
            )
        return view.model_version(holder)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        source = self.get_model_version(name, version).source
        if not source:
            raise NotFoundError(f"Model {name!r} version {version} records no source")
        return source

    def version_for_uri(self, uri: model_uris.ModelsUri) -> ModelVersion:
        """The version a ``models:/`` URI names; a clear error when none holds it."""
        view = self.view(model=uri.name)
        model = view.require_model(uri.name)
        if uri.version is not None:
            return view.model_version(view.require_version(uri.name, uri.version))
        if uri.alias is not None:
            return self.get_model_version_by_alias(uri.name, uri.alias)
        if uri.latest:
            latest = model.latest_version()
            if latest is None:
                raise NotFoundError(f"Registered model {uri.name!r} has no versions yet")
            return view.model_version(latest)
        stage = self.canonical_stage(uri.stage or "")
        holders = [v for v in model.active_versions() if v.current_stage == stage]
        if not holders:
            held = sorted({f"{v.current_stage} (v{v.number})" for v in model.active_versions()})
            raise NotFoundError(
                f"No version of model {uri.name!r} is in stage {stage!r}; "
                f"stages held: {', '.join(held) or 'none (no versions)'}"
            )
        return view.model_version(holders[-1])

    def history(self, name: str) -> list[Event]:
        """Every registration, stage change, alias move and deletion of ``name``, oldest first."""
        validate_model_name(name)
        view = self.view(model=name)
        events = model_history(view.listing.records, name, view.stages)
        if not events and view.model_doc(name) is None:
            raise NotFoundError(f"Registered model {name!r} does not exist and has no history")
        return events

    def verify(self) -> list[Violation]:
        """Every tag in the repository that breaks the registry policy."""
        view = self.view()
        return self.policy().violations(view.listing, view.state)

    # ================================================================== models
    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        validate_model_name(name)
        checked_tags = check_tags(tags, "registered model tag")
        check_text(description, "description")
        view = self.view(model=name)
        if view.exists(name):
            raise ConflictError(f"Registered model {name!r} already exists")
        seen = view.model_doc(name)
        now = format_time(clock.now_ms())
        doc = {
            "name": name,
            "description": description,
            "creation_time": now,
            "last_update_time": now,
            "tags": checked_tags,
        }

        def build(snap: BranchSnapshot) -> dict[str, Change]:
            if metadata.read_model(snap, name) != seen:
                raise ConflictError(f"Registered model {name!r} already exists")
            return {metadata.model_path(name): Blob(metadata.encode_model(doc))}

        self.branch.commit(build, _message(f"Create registered model {name}", name))
        return self.get_registered_model(name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        check_text(description, "description")
        self._edit_model(name, lambda doc: doc.__setitem__("description", description), "Describe")
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        [(key, text)] = check_tags({key: value}, "registered model tag").items()
        self._edit_model(name, lambda doc: doc.setdefault("tags", {}).__setitem__(key, text), "Tag")

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._edit_model(name, lambda doc: (doc.get("tags") or {}).pop(key, None), "Untag")

    def _edit_model(self, name: str, change: Callable[[dict], Any], verb: str) -> str:
        view = self.view(model=name)
        view.require_model(name)

        def build(snap: BranchSnapshot) -> dict[str, Change]:
            doc = metadata.read_model(snap, name) or _model_doc_from_tags(view, name)
            change(doc)
            doc["last_update_time"] = format_time(clock.now_ms())
            return {metadata.model_path(name): Blob(metadata.encode_model(doc))}

        return self.branch.commit(build, _message(f"{verb} registered model {name}", name))

    def delete_registered_model(self, name: str) -> None:
        """Delete the model: deregister its versions, remove its files, tag it deprecated."""
        view = self.view(model=name)
        model = view.require_model(name)

        def build(_snap: BranchSnapshot) -> dict[str, Change]:
            return {metadata.model_path(name): None, metadata.versions_path(name): None}

        commit = self.branch.commit(build, _message(f"Delete registered model {name}", name))
        for version in model.active_versions():
            self.writer.write(
                name,
                lambda _listing, v=version: deregistration_tag(name, v.number),
                version.commit,
                f"Delete {name} version {version.number}\n",
            )
        self.writer.write(
            name,
            lambda listing: self._deprecation_name(listing, name),
            commit,
            f"Delete registered model {name}\n",
        )

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Move the model and its versions (same numbers, stages and aliases) to ``new_name``."""
        validate_model_name(new_name)
        view = self.view()
        model = view.require_model(name)
        if view.exists(new_name):
            raise ConflictError(f"Registered model {new_name!r} already exists")
        model_doc = {
            **(view.model_doc(name) or _model_doc_from_tags(view, name)),
            "name": new_name,
        }
        model_doc["last_update_time"] = format_time(clock.now_ms())
        versions = model.active_versions()
        old_docs = {v.number: self._version_doc_for(view, v) for v in versions}

        def move(_snap: BranchSnapshot) -> dict[str, Change]:
            return {
                metadata.model_path(new_name): Blob(metadata.encode_model(model_doc)),
                metadata.model_path(name): None,
                metadata.versions_path(name): None,
            }

        self.branch.commit(move, _message(f"Rename registered model {name} to {new_name}", name))
        for version in versions:
            doc = {**old_docs[version.number], "name": new_name}
            commit = self.branch.commit(
                lambda _s, d=doc, n=version.number: {
                    metadata.version_path(new_name, n): Blob(metadata.encode_version(d))
                },
                _message(f"Move {name} version {version.number} to {new_name}", new_name),
            )
            self.writer.write(
                new_name,
                lambda _l, n=version.number: version_tag(new_name, n),
                commit,
                _registration_message(doc),
            )
            labels = [version.stage] if version.stage else []
            for label in [*labels, *version.aliases]:
                self._assign_label(new_name, version.number, commit, label, f"Renamed from {name}")
        self.delete_registered_model(name)
        return self.get_registered_model(new_name)

    # ================================================================== versions
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        validate_model_name(name)
        checked_tags = check_tags(tags, "model version tag")
        check_text(description, "description")
        check_text(source, "model version source")
        view = self.view(model=name)
        if not view.exists(name):
            raise NotFoundError(
                f"Registered model {name!r} does not exist: call "
                f"create_registered_model({name!r}) first (register_model creates it as needed)"
            )
        source, run_id = self._checked_source(source, run_id)
        model_id = _model_id_of_source(self.repository, source)
        user = self.repo.identity().email
        now = clock.now_ms()
        model_doc = None if view.model_doc(name) else _model_doc_from_tags(view, name)
        # The first attempt takes the tags and branch the view just read; a race for the
        # number reads them again.
        listing, snapshot = view.listing, view.snapshot
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                listing, snapshot = self.tags.read(name), self.branch.snapshot()
            number = max(
                next_version_number(listing, name),
                metadata.highest_version_number(snapshot, name) + 1,
            )
            doc = {
                "name": name,
                "version": number,
                "source": source,
                "run_id": run_id,
                "user": user,
                "description": description,
                "creation_time": format_time(now),
                "last_update_time": format_time(now),
                "tags": checked_tags,
            }
            if model_id is not None:
                doc["model_id"] = model_id
            bases: list[BranchSnapshot] = []  # the tip each attempt of the commit built on
            try:
                commit = self.branch.commit(
                    lambda snap, d=doc, b=bases: self._version_changes(snap, d, model_doc, b),
                    _message(f"Register {name} version {number}", name, run_id, number),
                )
                after = BranchSnapshot(self.repo, commit)
                metadata.remember_version_file(bases[-1], after, name, number)
                self.writer.create(
                    listing,
                    name,
                    version_tag(name, number),
                    commit,
                    _registration_message(doc),
                )
            except (_NumberTaken, ConflictError):
                continue
            entity = ModelVersion(
                name=name,
                version=str(number),
                creation_timestamp=now,
                last_updated_timestamp=now,
                description=description,
                user_id=user,
                current_stage="None",
                source=source,
                run_id=run_id,
                tags=dict(checked_tags),
                model_id=model_id,
            )
            self.notifier().send(
                "version_registered",
                _payload(self, entity, tag=version_tag(name, number)),
            )
            return entity
        raise RepositoryError(f"could not claim a version number for {name!r}: too many races")

    def _version_changes(
        self,
        snap: BranchSnapshot,
        doc: dict[str, Any],
        model_doc: dict[str, Any] | None,
        bases: list[BranchSnapshot],
    ) -> dict[str, Change]:
        bases.append(snap)
        path = metadata.version_path(doc["name"], doc["version"])
        if snap.entry(path) is not None:
            raise _NumberTaken()
        changes: dict[str, Change] = {path: Blob(metadata.encode_version(doc))}
        if model_doc is not None and snap.entry(metadata.model_path(doc["name"])) is None:
            changes[metadata.model_path(doc["name"])] = Blob(metadata.encode_model(model_doc))
        return changes

    def _checked_source(self, source: str, run_id: str | None) -> tuple[str, str | None]:
        if not isinstance(source, str) or not source.strip():
            raise InvalidInputError(f"model version source must be a URI or path, got {source!r}")
        if (model_id := model_uris.model_id_of(source)) is not None:
            source = logged_models.find_logged_model(self.repository, model_id).runs_uri
        if model_uris.is_models_uri(source):
            version = self.version_for_uri(model_uris.parse_models_uri(source))
            return version.source or source, run_id or version.run_id
        if not model_uris.is_runs_uri(source):
            return source, run_id
        parsed = model_uris.parse_runs_uri(source)
        if run_id is not None and run_id != parsed.run_id:
            raise InvalidInputError(
                f"run_id {run_id!r} does not match the run in source {source!r}"
            )
        self.repository.runs.get(validation.check_run_id(parsed.run_id))
        if parsed.path:
            parent, _, leaf = parsed.path.rpartition("/")
            listed = self.repository.runs.list_artifacts(parsed.run_id, parent or None)
            if not any(p.rpartition("/")[2] == leaf for p, _d, _s in listed):
                raise NotFoundError(
                    f"run {parsed.run_id} has no artifact {parsed.path!r} (source {source!r})"
                )
        return source, parsed.run_id

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        check_text(description, "description")
        self._edit_version(name, version, lambda d: d.__setitem__("description", description))
        return self.get_model_version(name, version)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        [(key, text)] = check_tags({key: value}, "model version tag").items()
        self._edit_version(name, version, lambda d: d.setdefault("tags", {}).__setitem__(key, text))

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self._edit_version(name, version, lambda d: (d.get("tags") or {}).pop(key, None))

    def _edit_version(self, name: str, version: int | str, change: Callable[[dict], Any]) -> None:
        view = self.view(model=name)
        target = view.require_version(name, version)
        fallback = self._version_doc_for(view, target)

        def build(snap: BranchSnapshot) -> dict[str, Change]:
            doc = metadata.read_version(snap, name, target.number) or dict(fallback)
            change(doc)
            doc["last_update_time"] = format_time(clock.now_ms())
            return {metadata.version_path(name, target.number): Blob(metadata.encode_version(doc))}

        self.branch.commit(
            build,
            _message(f"Update {name} version {target.number}", name, None, target.number),
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        view = self.view(model=name)
        target = view.require_version(name, version)
        self.writer.write(
            name,
            lambda _listing: deregistration_tag(name, target.number),
            target.commit,
            f"Delete {name} version {target.number}\n",
        )

    # ================================================================== stages and aliases
    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move the version to ``stage``; an exclusive stage (or ``archive_existing_versions``)
        moves the other versions holding it to ``Archived``.

        A move unassigns the version's stage before assigning the new one, so that GTO, which
        lets a version hold several stages until each is unassigned, shows the same stage.
        """
        stage = self.canonical_stage(stage)
        view = self.view(model=name)
        target = view.require_version(name, version)
        model = view.require_model(name)
        policy = self.policy()
        exclusive = policy.rule(stage).exclusive or (
            archive_existing_versions and stage not in (ARCHIVE_STAGE, NO_STAGE)
        )
        others: list[Version] = []
        if exclusive:  # the versions holding the stage: few, whatever the model's size
            holders = (
                model.versions_in_stage(stage) if stage != NO_STAGE else model.active_versions()
            )
            others = [v for v in holders if v.number != target.number and v.current_stage == stage]
        archive = self.canonical_stage(ARCHIVE_STAGE) if others else ARCHIVE_STAGE
        moves = [(target, stage)] if target.current_stage != stage else []
        moves += [(other, archive) for other in others]
        email = self.repo.identity().email
        for moved, new_stage in moves:  # every check passes before anything is written
            if moved.stage is not None:
                policy.check_assignment(name, moved.number, moved.stage, email, removing=True)
            if new_stage != NO_STAGE:
                policy.check_assignment(name, moved.number, new_stage, email)
        for moved, new_stage in moves:
            self._move_stage(name, moved, new_stage, policy)
        after = self.view(model=name, refresh=False)
        notifier = self.notifier()
        for moved, new_stage in moves:
            entity = after.model_version(after.require_version(name, moved.number))
            notifier.send(
                "stage_changed",
                _payload(self, entity, stage=new_stage, previous_stage=moved.current_stage),
            )
        return after.model_version(after.require_version(name, target.number))

    def _move_stage(self, name: str, version: Version, stage: str, policy: RegistryPolicy) -> None:
        # The new stage is assigned first: if that fails (say, signing is not set up), nothing
        # was written; the old stage, unassigned after, is no longer the latest either way.
        if stage != NO_STAGE:
            self._assign_label(name, version.number, version.commit, stage, None, policy)
        if version.stage is not None:
            held = version.stage
            self.writer.write(
                name,
                lambda listing: unassignment_tag(
                    name, held, next_assignment_counter(listing, name)
                ),
                version.commit,
                f"Unassign {held} from {name} version {version.number} (moved to {stage})\n",
                sign=policy.rule(held).signed,
                refresh=False,
            )

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self._check_alias(alias)
        view = self.view(model=name)
        target = view.require_version(name, version)
        previous = view.require_model(name).alias_version(alias)
        if previous is not None and previous.number == target.number:
            return
        policy = self.policy()
        policy.check_assignment(name, target.number, alias, self.repo.identity().email)
        self._assign_label(name, target.number, target.commit, alias, None, policy)
        after = self.view(model=name, refresh=False)
        entity = after.model_version(after.require_version(name, target.number))
        self.notifier().send(
            "alias_moved",
            _payload(
                self,
                entity,
                alias=alias,
                previous_version=previous.number if previous else None,
            ),
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        view = self.view(model=name)
        holder = view.require_model(name).alias_version(alias)
        if holder is None:
            return
        self.writer.write(
            name,
            lambda listing: unassignment_tag(name, alias, next_assignment_counter(listing, name)),
            holder.commit,
            f"Remove alias {alias} from {name} version {holder.number}\n",
        )
        self.notifier().send(
            "alias_moved",
            {
                "model": name,
                "alias": alias,
                "version": None,
                "previous_version": holder.number,
                "user": self.repo.identity().email,
                "repository": str(self.repo.path),
            },
        )

    def _check_alias(self, alias: str) -> None:
        validate_label(alias)
        if any(alias.lower() == s.lower() for s in self.stages()):
            raise InvalidInputError(
                f"{alias!r} is a stage, not an alias: use transition_model_version_stage"
            )
        if _RESERVED_ALIAS.match(alias):
            raise InvalidInputError(
                f"alias {alias!r} is reserved ('latest' and v<number> name versions in URIs)"
            )

    def _assign_label(
        self,
        name: str,
        number: int,
        commit: str,
        label: str,
        note: str | None,
        policy: RegistryPolicy | None = None,
    ) -> None:
        rule = (policy or self.policy()).rule(label)
        message = f"Assign {label} to {name} version {number}\n"
        if note:
            message += f"\n{note}\n"
        self.writer.write(
            name,
            lambda listing: stage_tag(name, label, next_assignment_counter(listing, name)),
            commit,
            message,
            sign=rule.signed,
            refresh=False,
        )

    # ================================================================== helpers
    @staticmethod
    def _deprecation_name(listing: TagListing, name: str) -> str:
        plain = deprecation_tag(name)
        if plain not in set(listing.names()):
            return plain
        return deprecation_tag(name, next_assignment_counter(listing, name))

    def _version_doc_for(self, view: RegistryView, version: Version) -> dict[str, Any]:
        doc = view.version_doc(version.model, version.number)
        if doc is not None:
            return dict(doc)
        entity = view.model_version(version)
        stamp = format_time(entity.creation_timestamp or to_ms(version.when))
        return {
            "name": version.model,
            "version": version.number,
            "source": entity.source or "",
            "run_id": entity.run_id,
            "user": entity.user_id,
            "description": entity.description,
            "creation_time": stamp,
            "last_update_time": stamp,
            "tags": {},
        }


# ====================================================================== helpers


def _message(subject: str, model: str, run_id: str | None = None, number: int | None = None) -> str:
    trailers = [f"Model: {model}"]
    if number is not None:
        trailers.append(f"Version: {number}")
    if run_id:
        trailers.append(f"Run-Id: {run_id}")
    return f"{subject}\n\n" + "\n".join(trailers) + "\n"


def _registration_message(doc: Mapping[str, Any]) -> str:
    return format_registration_message(
        source=doc.get("source"),
        run_id=doc.get("run_id"),
        user=doc.get("user"),
        description=doc.get("description"),
    )


def _model_doc_from_tags(view: RegistryView, name: str) -> dict[str, Any]:
    """A ``model.yaml`` for a model that so far exists only as tags (e.g. made with GTO)."""
    model = view.state.models.get(name)
    first = min((v.when for v in model.versions.values()), default=None) if model else None
    stamp = format_time(to_ms(first) if first else clock.now_ms())
    return {
        "name": name,
        "description": None,
        "creation_time": stamp,
        "last_update_time": stamp,
        "tags": {},
    }


def _payload(service: RegistryService, version: ModelVersion, **extra: Any) -> dict[str, Any]:
    return {
        "model": version.name,
        "version": int(version.version),
        "stage": version.current_stage,
        "aliases": list(version.aliases),
        "source": version.source,
        "run_id": version.run_id,
        "user": service.repo.identity().email,
        "repository": str(service.repo.path),
        "timestamp": format_time(clock.now_ms()),
        **extra,
    }


def _sort_value(entity: RegisteredModel | RegisteredModelSummary | ModelVersion, field: str) -> Any:
    """The value of a registered model's or model version's field, as ``order_by`` sorts it."""
    if field == "version_number":
        return int(entity.version)
    if field == "source_path":
        return entity.source
    return getattr(entity, field, None)


def _model_id_of_source(repository: TrackingRepository, source: str) -> str | None:
    """The ``model_id`` of a gittrack-logged model at a ``runs:/`` source, else None."""
    if not model_uris.is_runs_uri(source):
        return None
    parsed = model_uris.parse_runs_uri(source)
    return logged_models.model_id_at(repository, parsed.run_id, parsed.path)


def _matching_models(
    view: RegistryView,
    expression: FilterExpr,
    order_by: Sequence[str] | None,
    build: Callable[[str], _Model],
) -> list[_Model]:
    """The view's registered models matching a parsed filter, sorted, each made by ``build``
    (an entity or a summary); an unreadable one is reported and skipped."""
    names = view.model_names()
    view.prefetch(versions=[(v.model, v.number) for n in names for v in view.latest_per_stage(n)])
    models = []
    for name in names:
        try:
            models.append(build(name))
        except CorruptDataError as exc:  # one unreadable file does not stop the listing
            view.skip(exc.message)
    return order(
        filter_models(models, expression),
        order_by,
        _sort_value,
        ["name ASC"],
        MODEL_FIELDS,
    )
