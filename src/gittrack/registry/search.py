"""Filters and ordering for ``search_registered_models`` and ``search_model_versions``.

The filter language is the one of ``search_runs`` (``query.filter_parser``): comparisons joined
by ``AND`` and ``OR``, parentheses, and ``IN``/``NOT IN`` lists, with registry keys in place of
run keys. The keys are MLflow's, plus a few of gittrack's:

* registered models: ``name``, ``description`` (strings), ``creation_timestamp``,
  ``last_updated_timestamp`` (numbers, epoch ms) and ``tags.<key>``;
* model versions: ``name``, ``run_id``, ``source_path``, ``user_id``, ``current_stage``,
  ``description`` (strings), ``version_number``, ``creation_timestamp``,
  ``last_updated_timestamp`` (numbers) and ``tags.<key>``.

Strings compare with ``= != LIKE ILIKE IN NOT IN`` (``LIKE`` case-sensitive, ``ILIKE`` not,
``%`` any run of characters, ``_`` one); tags also with ``IS NULL``/``IS NOT NULL``; numbers
with ``= != < <= > >=`` (a quoted number, ``version_number = '3'``, is read as the number, as
MLflow's stores do). As for runs, an item without the field matches no comparison.

Each search builds a small frame of the candidates, one column per field, and evaluates the
parsed filter on it with the run engine's masks, so ``LIKE`` and missing-value rules are
exactly those of run searches. pandas is imported by a search that has a filter: a listing
without one (``gittrack models list``) does without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gittrack.entities import ModelVersion, RegisteredModel, RegisteredModelSummary
from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import (
    And,
    Comparison,
    FilterExpr,
    FilterParser,
    FilterSyntaxError,
    Key,
    MatchAll,
    Or,
    Token,
    filter_mask,
    parse_filter,
    prefixed_key_name,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "MODEL_FIELDS",
    "VERSION_FIELDS",
    "filter_models",
    "filter_versions",
    "names_required",
    "order",
    "parse_model_filter",
    "parse_version_filter",
]

T = TypeVar("T")
M = TypeVar("M", RegisteredModel, RegisteredModelSummary)

# field -> whether it compares as a number
MODEL_FIELDS: Mapping[str, bool] = {
    "name": False,
    "description": False,
    "creation_timestamp": True,
    "last_updated_timestamp": True,
}
VERSION_FIELDS: Mapping[str, bool] = {
    "name": False,
    "version_number": True,
    "run_id": False,
    "source_path": False,
    "user_id": False,
    "current_stage": False,
    "description": False,
    "creation_timestamp": True,
    "last_updated_timestamp": True,
}
_ATTRIBUTE_PREFIXES = frozenset({"attribute", "attributes", "attr"})
_TAG_PREFIXES = frozenset({"tag", "tags"})


# ------------------------------------------------------------------------- parsing


class _RegistryParser(FilterParser):
    """The run filter grammar over the fields of registry entities."""

    fields: Mapping[str, bool] = {}

    def resolve_key(self, token: Token) -> Key:
        if token.kind not in ("name", "string") or (
            token.kind == "string" and token.segments[0][1] == "'"
        ):
            raise self.error(
                f"expected a field ({self._field_list()}) or tags.<key>, found {token.describe()}",
                token,
            )
        segments = token.segments
        if len(segments) == 1:
            return self._attribute(segments[0][0], token)
        prefix = segments[0][0].lower()
        name = prefixed_key_name(token, self.text)
        if prefix in _TAG_PREFIXES and name:
            return Key("tag", name)
        if prefix in _ATTRIBUTE_PREFIXES:
            return self._attribute(name, token)
        raise self.error(
            f"unknown field {token.text!r}; use tags.<key> or one of {self._field_list()}",
            token,
        )

    def _attribute(self, name: str, token: Token) -> Key:
        if name not in self.fields:
            raise self.error(
                f"unknown field {name!r}; use tags.<key> or one of {self._field_list()}",
                token,
            )
        return Key("attribute", name, numeric=self.fields[name])

    def _field_list(self) -> str:
        return ", ".join(self.fields)

    def parse_number(self, key: Key, key_token: Token) -> float:
        token = self.peek()
        if token.kind == "string" and token.segments[0][1] in "'\"":
            try:
                value = float(token.segments[0][0])
            except ValueError:
                pass
            else:
                self.advance()
                return value
        return super().parse_number(key, key_token)

    def number_problem(self, key: Key, key_token: Token, token: Token) -> str:
        return f"{key.name!r} is a number: expected a number such as 3, found {token.describe()}"


class _ModelParser(_RegistryParser):
    fields = MODEL_FIELDS


class _VersionParser(_RegistryParser):
    fields = VERSION_FIELDS


def parse_model_filter(filter_string: str | None) -> FilterExpr:
    """Parse a ``search_registered_models`` filter.

    Raises:
        FilterSyntaxError: (an ``InvalidInputError``) naming the token, its position and what
            was expected.
    """
    return parse_filter(filter_string, parser=_ModelParser)


def parse_version_filter(filter_string: str | None) -> FilterExpr:
    """Parse a ``search_model_versions`` filter.

    Raises:
        FilterSyntaxError: (an ``InvalidInputError``) naming the token, its position and what
            was expected.
    """
    return parse_filter(filter_string, parser=_VersionParser)


def names_required(expr: FilterExpr) -> set[str] | None:
    """The model names a match must have (from ``name = ...``/``name IN ...``), or ``None``
    when the filter does not pin the name; lets a search read only those models."""
    if isinstance(expr, Comparison):
        if expr.key == Key("attribute", "name") and expr.op == "=":
            return {str(expr.value)}
        if expr.key == Key("attribute", "name") and expr.op == "IN":
            return {str(v) for v in expr.value or ()}
        return None
    if isinstance(expr, And):
        pinned = [names_required(operand) for operand in expr.operands]
        known = [names for names in pinned if names is not None]
        return set.intersection(*known) if known else None
    if isinstance(expr, Or):
        pinned = [names_required(operand) for operand in expr.operands]
        if any(names is None for names in pinned):
            return None
        return set().union(*pinned)  # type: ignore[arg-type]
    return None


# ------------------------------------------------------------------------- evaluation


def filter_models(models: list[M], expr: FilterExpr) -> list[M]:
    """The models (entities or summaries) that match ``expr``, in the given order."""
    if isinstance(expr, MatchAll) or not models:
        return models
    frame = _frame(
        models,
        {
            "name": [m.name for m in models],
            "description": [m.description for m in models],
            "creation_timestamp": _times([m.creation_timestamp for m in models]),
            "last_updated_timestamp": _times([m.last_updated_timestamp for m in models]),
        },
    )
    return _selected(models, expr, frame)


def filter_versions(versions: list[ModelVersion], expr: FilterExpr) -> list[ModelVersion]:
    """The model versions that match ``expr``, in the given order."""
    if isinstance(expr, MatchAll) or not versions:
        return versions
    import numpy as np

    frame = _frame(
        versions,
        {
            "name": [v.name for v in versions],
            "version_number": np.array([float(v.version) for v in versions]),
            "run_id": [v.run_id for v in versions],
            "source_path": [v.source for v in versions],
            "user_id": [v.user_id for v in versions],
            "current_stage": [v.current_stage for v in versions],
            "description": [v.description for v in versions],
            "creation_timestamp": _times([v.creation_timestamp for v in versions]),
            "last_updated_timestamp": _times([v.last_updated_timestamp for v in versions]),
        },
    )
    return _selected(versions, expr, frame)


def _frame(items: Sequence[Any], columns: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    for key in sorted({k for item in items for k in item.tags}):
        columns[f"tags.{key}"] = [item.tags.get(key) for item in items]
    return pd.DataFrame(columns)


def _selected(items: list[T], expr: FilterExpr, frame: pd.DataFrame) -> list[T]:
    mask = filter_mask(expr, frame).to_numpy(dtype=bool)
    return [item for item, keep in zip(items, mask) if keep]


def _times(values: list[int | None]) -> np.ndarray:
    import numpy as np

    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


# ------------------------------------------------------------------------- ordering


def order(
    items: list[T],
    order_by: Sequence[str] | None,
    key_of: Callable[[T, str], Any],
    default: Sequence[str],
    fields: Sequence[str],
) -> list[T]:
    """Sort ``items`` by ``order_by`` clauses (``"name ASC"``, ``"version_number DESC"``),
    then by the ``default`` clauses on the fields the caller did not name.

    Args:
        items: the entities, sorted in place.
        order_by: clauses ``FIELD [ASC|DESC]``, FIELD one of ``fields``.
        key_of: the value of a field of an item; ``None`` sorts last.
        default: clauses applied after the given ones.
        fields: the fields that may be ordered by.

    Returns:
        ``items``, sorted.

    Raises:
        InvalidInputError: a clause that is not ``FIELD [ASC|DESC]`` or names another field.
    """
    if isinstance(order_by, str):
        order_by = [order_by]
    clauses = [_order_clause(c, fields) for c in order_by or []]
    given = {field for field, _ in clauses}
    clauses += [_order_clause(c, fields) for c in default if c.split()[0] not in given]
    for field, descending in reversed(clauses):
        items.sort(key=lambda item, f=field: _sort_key(key_of(item, f)), reverse=descending)
    return items


def _order_clause(clause: str, fields: Sequence[str]) -> tuple[str, bool]:
    if not isinstance(clause, str):
        raise InvalidInputError(f"an order_by clause must be a string, got {clause!r}")
    parts = clause.split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
        raise FilterSyntaxError("an order_by clause must be 'FIELD [ASC|DESC]'", 0, clause)
    if parts[0] not in fields:
        raise FilterSyntaxError(
            f"cannot order by {parts[0]!r}; fields: {', '.join(fields)}", 0, clause
        )
    return parts[0], len(parts) == 2 and parts[1].upper() == "DESC"


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    return (0, value)
