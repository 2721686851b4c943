"""Metric budgets (DESIGN §11): the limits a pull request's runs must keep.

Budgets live in ``.tracking/config.yaml`` on the tracking branch, under ``budgets:``, so every
clone and CI job reads the same ones after a fetch; ``gittrack diff --budgets FILE`` reads the
``budgets:`` section of another YAML file instead (a CI job may keep its own). Per metric::

    budgets:
      accuracy: {goal: maximize, min: 0.9, max_decrease: 0.01}
      loss: {goal: minimize, max_increase_pct: 5}

``min`` and ``max`` bound the value at HEAD; ``max_decrease``/``max_increase`` bound the change
from BASE, ``max_decrease_pct``/``max_increase_pct`` the change in percent of BASE's value
(not checked when BASE's value is 0: no percentage exists). ``goal`` says which direction is
better; it orients the arrows of the diff and picks the run ``--select best:metrics.X`` keeps.
A metric with budgets that BASE's run logged and HEAD's run did not (or logged as NaN) breaks
its budget: a pull request that stops logging a guarded metric must not pass unseen. (A metric
neither side logged is not that experiment's: budgets apply to every experiment compared.)

A limit equal to the value, up to floating-point rounding (``0.95 - 0.94`` is not exactly
``0.01``), keeps the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gittrack.errors import CorruptDataError, InvalidInputError
from gittrack.store import layout
from gittrack.store.branch import Blob, BranchSnapshot, Changes
from gittrack.store.codecs import dump_yaml, format_number, load_yaml
from gittrack.store.schemas import check_outgoing, check_stored, problems
from gittrack.tracking import validation
from gittrack.tracking.repository import TrackingRepository

GOALS = ("maximize", "minimize")
LIMITS = ("min", "max", "max_decrease", "max_increase", "max_decrease_pct", "max_increase_pct")
SECTION = "budgets"


@dataclass(frozen=True)
class Budget:
    """The rules of one metric: ``limits`` maps a rule name of ``LIMITS`` to its number."""

    metric: str
    goal: str | None
    limits: Mapping[str, float]


@dataclass(frozen=True)
class BrokenRule:
    """One rule of a budget that HEAD's value breaks; ``value`` is what was compared with
    ``limit`` (HEAD's value, the change, or the change in percent), None when not logged."""

    metric: str
    rule: str
    limit: float | None
    value: float | None

    def describe(self) -> str:
        """One line a reviewer reads, e.g. ``accuracy: max_decrease 0.01 broken (0.05)``."""
        if self.rule == "logged":
            return f"{self.metric}: has a budget but HEAD's run did not log it"
        shown = format_number(self.value)
        unit = "%" if self.rule.endswith("_pct") else ""
        return (
            f"{self.metric}: {self.rule} {format_number(self.limit)}{unit} broken ({shown}{unit})"
        )


def parse_budgets(section: Any, where: str) -> dict[str, Budget]:
    """The budgets of a ``budgets:`` section.

    :param section: the section as YAML read it (None: no budgets).
    :param where: the file and field prefix error messages name.
    :returns: metric -> Budget.
    :raises CorruptDataError: the section breaks ``schemas/budgets.schema.json``, a metric name
        is not a valid key or a limit is not a finite number; the message names the field.
    """
    if section is None:
        return {}
    found = problems(section, SECTION)
    if found:
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise CorruptDataError(f"{where}: {SECTION}.{found[0]}{more}")
    budgets = {}
    for metric, rules in section.items():
        try:
            validation.check_key(metric, "metric")
        except InvalidInputError as exc:
            raise CorruptDataError(f"{where}: {SECTION}.{metric}: {exc.message}") from exc
        for rule in LIMITS:
            if rule in (rules or {}) and not math.isfinite(rules[rule]):
                raise CorruptDataError(
                    f"{where}: {SECTION}.{metric}.{rule}: {rules[rule]!r} is not a finite number"
                )
        rules = rules or {}
        limits = {rule: float(rules[rule]) for rule in LIMITS if rule in rules}
        budgets[metric] = Budget(metric, rules.get("goal"), limits)
    return budgets


def configured_budgets(repository: TrackingRepository) -> dict[str, Budget]:
    """The budgets in ``.tracking/config.yaml`` at the tracking branch's tip.

    :raises CorruptDataError: config.yaml or its ``budgets:`` section is invalid.
    """
    return parse_budgets(repository.config().get(SECTION), layout.CONFIG_PATH)


def budgets_from_file(path: str | Path) -> dict[str, Budget]:
    """The ``budgets:`` section of a YAML file shaped like config.yaml.

    :raises InvalidInputError: the file cannot be read or has no ``budgets:`` mapping.
    :raises CorruptDataError: the file is not YAML or the section is invalid (file and field
        named).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"budgets file {str(path)!r}: {exc.strerror or exc}") from exc
    doc = load_yaml(data, str(path))
    if not isinstance(doc, dict) or SECTION not in doc:
        raise InvalidInputError(
            f"budgets file {str(path)!r} has no '{SECTION}:' mapping (shaped like config.yaml: "
            f"'{SECTION}: {{accuracy: {{min: 0.9}}}}')"
        )
    return parse_budgets(doc[SECTION], str(path))


def _over(value: float, limit: float) -> bool:
    """``value`` exceeds ``limit`` by more than floating-point rounding."""
    return value > limit and not math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def judge(budget: Budget, base: float | None, head: float | None) -> list[BrokenRule]:
    """The rules of ``budget`` that the change from ``base`` to ``head`` breaks.

    :param base: BASE's value (None: not logged there; change rules are then not checked).
    :param head: HEAD's value (None or NaN: not logged, which breaks a budget with any rule
        when BASE logged it).
    :returns: the broken rules, in ``LIMITS`` order.
    """
    limits = budget.limits
    if head is None or math.isnan(head):
        logged_before = base is not None and not math.isnan(base)
        return [BrokenRule(budget.metric, "logged", None, None)] if limits and logged_before else []
    measured: dict[str, float] = {"min": -head, "max": head}
    bounds = {"min": -limits.get("min", math.inf), "max": limits.get("max", math.inf)}
    if base is not None and math.isfinite(base):
        change = head - base
        measured.update(max_decrease=-change, max_increase=change)
        if base != 0:
            percent = change / abs(base) * 100
            measured.update(max_decrease_pct=-percent, max_increase_pct=percent)
    broken = []
    for rule in LIMITS:
        if rule not in limits or rule not in measured:
            continue
        bound = bounds.get(rule, limits[rule])
        if _over(measured[rule], bound):
            value = head if rule in ("min", "max") else measured[rule]
            broken.append(BrokenRule(budget.metric, rule, limits[rule], value))
    return broken


def set_budget(
    repository: TrackingRepository,
    metric: str,
    goal: str | None = None,
    limits: Mapping[str, float] | None = None,
) -> Budget:
    """Add or change the budget of ``metric`` in config.yaml (one tracking commit).

    The given ``goal`` and ``limits`` replace those of the existing budget; the others stay.

    :returns: the budget as stored.
    :raises InvalidInputError: the metric name, goal or a limit is not allowed; nothing is
        written.
    """
    validation.check_key(metric, "metric")
    limits = dict(limits or {})
    if goal is not None and goal not in GOALS:
        raise InvalidInputError(f"goal {goal!r} is not one of {', '.join(GOALS)}")
    for rule, limit in limits.items():
        if rule not in LIMITS:
            raise InvalidInputError(f"budget rule {rule!r} is not one of {', '.join(LIMITS)}")
        if not math.isfinite(limit) or (rule not in ("min", "max") and limit < 0):
            raise InvalidInputError(f"{rule} {limit!r} must be a finite number (at least 0)")
    if goal is None and not limits:
        raise InvalidInputError(f"budget of {metric!r}: give a goal or at least one limit")

    def update(section: dict[str, Any]) -> None:
        entry = dict(section.get(metric) or {})
        entry.update(limits)
        if goal is not None:
            entry["goal"] = goal
        section[metric] = entry

    section = _write_section(repository, update, f"Set the budget of metric {metric}")
    return parse_budgets(section, layout.CONFIG_PATH)[metric]


def remove_budget(repository: TrackingRepository, metric: str) -> bool:
    """Remove the budget of ``metric`` from config.yaml; False when it had none."""
    if metric not in configured_budgets(repository):
        return False
    _write_section(repository, lambda section: section.pop(metric, None), f"Remove budget {metric}")
    return True


def _write_section(
    repository: TrackingRepository, update: Callable[[dict[str, Any]], object], message: str
) -> dict:
    """Apply ``update`` to the budgets section of config.yaml at the tip and commit it."""
    written: dict[str, Any] = {}

    def build(snap: BranchSnapshot) -> Changes:
        raw = snap.read(layout.CONFIG_PATH)
        doc = load_yaml(raw, layout.CONFIG_PATH) if raw is not None else layout.initial_config()
        check_stored(doc, "config", layout.CONFIG_PATH)
        parse_budgets(doc.get(SECTION), layout.CONFIG_PATH)  # refuse to build on a bad one
        section = dict(doc.get(SECTION) or {})
        update(section)
        check_outgoing(section, SECTION, f"{layout.CONFIG_PATH} {SECTION}")
        doc[SECTION] = section
        check_outgoing(doc, "config", layout.CONFIG_PATH)
        written.clear()
        written.update(section)
        return {layout.CONFIG_PATH: Blob(dump_yaml(doc))}

    repository.branch.commit(build, message)
    return written
