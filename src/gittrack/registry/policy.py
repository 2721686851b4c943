"""Registry policy from ``.tracking/config.yaml``: who may assign which label, and how.

The policy is a mapping of stage or alias to rules, under ``registry.policy``::

    registry:
      stages: [None, Staging, Production, Archived]
      policy:
        Production:
          allow: ["*@example.com", "lead@corp.org"]   # git user.email patterns (fnmatch)
          exclusive: true    # assigning it archives the version that held it
          signed: true       # its tags must be signed (git tag -s)

``exclusive`` defaults to true for ``Production`` and false elsewhere; a label without an
``allow`` list may be assigned by anyone. The rules are checked twice: before a tag is written
(:meth:`RegistryPolicy.check_assignment`, nothing is written when it fails) and after the fact
over every tag in the repository (:meth:`RegistryPolicy.violations`), which catches tags made by
hand or pushed from elsewhere.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gittrack.errors import PolicyError
from gittrack.registry.state import RegistryState
from gittrack.registry.tag_names import TagKind, parse_tag
from gittrack.registry.tags_io import TagListing

EXCLUSIVE_BY_DEFAULT = frozenset({"Production"})
ARCHIVE_STAGE = "Archived"


@dataclass(frozen=True)
class LabelRule:
    """The rules of one stage or alias. ``allow`` is None when anyone may assign it."""

    label: str
    allow: tuple[str, ...] | None = None
    exclusive: bool = False
    signed: bool = False

    def allows(self, email: str) -> bool:
        if self.allow is None:
            return True
        email = email.lower()
        return any(fnmatch.fnmatchcase(email, pattern.lower()) for pattern in self.allow)


@dataclass(frozen=True)
class Violation:
    """A tag that breaks the policy: which tag, what rule, and why."""

    tag: str
    model: str
    label: str | None
    rule: str
    message: str


class RegistryPolicy:
    """The rules of every label; labels without rules get the defaults."""

    def __init__(self, rules: Mapping[str, LabelRule] | None = None) -> None:
        self.rules = dict(rules or {})

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RegistryPolicy:
        raw = ((config.get("registry") or {}).get("policy")) or {}
        rules = {}
        for label, spec in raw.items():
            spec = spec or {}
            allow = spec.get("allow")
            rules[str(label)] = LabelRule(
                label=str(label),
                allow=None if allow is None else tuple(str(p) for p in allow),
                exclusive=bool(spec.get("exclusive", label in EXCLUSIVE_BY_DEFAULT)),
                signed=bool(spec.get("signed", False)),
            )
        return cls(rules)

    def rule(self, label: str) -> LabelRule:
        found = self.rules.get(label)
        if found is not None:
            return found
        return LabelRule(label, exclusive=label in EXCLUSIVE_BY_DEFAULT)

    def check_assignment(
        self, model: str, version: int, label: str, email: str, removing: bool = False
    ) -> None:
        """Raise ``PolicyError`` if ``email`` may not give (or take away) ``label``."""
        rule = self.rule(label)
        if not rule.allows(email):
            allowed = ", ".join(rule.allow or ())
            action = f"remove {label!r} from" if removing else f"assign {label!r} to"
            raise PolicyError(
                f"{email or 'this user'} may not {action} {model} version {version}: "
                f"registry.policy.{label}.allow in .tracking/config.yaml allows only {allowed}"
            )

    def violations(self, listing: TagListing, state: RegistryState) -> list[Violation]:
        """Every tag that breaks the policy, oldest first."""
        found: list[tuple[Any, Violation]] = []
        for record in listing.records:
            parsed = parse_tag(record.name)
            if parsed is None:
                continue
            if not record.annotated:
                found.append((None, _lightweight(parsed.model, record.name)))
                continue
            if parsed.label is None:
                continue
            verb = "assigns" if parsed.kind is TagKind.ASSIGNMENT else "removes"
            rule = self.rule(parsed.label)
            if not rule.allows(record.tagger_email):
                message = (
                    f"{verb} {parsed.label!r} by {record.tagger_email or 'an unknown tagger'}, "
                    f"who is not allowed to (allow: {', '.join(rule.allow or ())})"
                )
                found.append(
                    (
                        record.date,
                        Violation(record.name, parsed.model, parsed.label, "allow", message),
                    )
                )
            if rule.signed and record.name not in listing.signed:
                message = f"{verb} {parsed.label!r} but is not signed (policy requires signed tags)"
                found.append(
                    (
                        record.date,
                        Violation(record.name, parsed.model, parsed.label, "signed", message),
                    )
                )
        found.extend((None, v) for v in self._exclusivity(state))
        lightweight = [v for when, v in found if when is None and v.rule == "annotated"]
        dated = sorted((item for item in found if item[0] is not None), key=lambda i: i[0])
        exclusive = [v for when, v in found if when is None and v.rule == "exclusive"]
        return [*lightweight, *(v for _, v in dated), *exclusive]

    def _exclusivity(self, state: RegistryState) -> list[Violation]:
        out = []
        for model in state.active_models():
            for label in state.stages:
                if not self.rule(label).exclusive:
                    continue
                holders = model.versions_in_stage(label)
                if len(holders) < 2:
                    continue
                assignments = sorted(
                    (v.stage_assignment for v in holders if v.stage_assignment is not None),
                    key=lambda a: (a.when, a.counter or 0),
                )
                held = ", ".join(f"v{a.version} ({a.tag})" for a in assignments)
                out.append(
                    Violation(
                        assignments[-1].tag,
                        model.name,
                        label,
                        "exclusive",
                        f"{label!r} is exclusive but {len(holders)} versions hold it: {held}",
                    )
                )
        return out


def _lightweight(model: str, tag: str) -> Violation:
    return Violation(
        tag,
        model,
        None,
        "annotated",
        "is a lightweight tag, which the registry ignores (registry tags must be annotated)",
    )
