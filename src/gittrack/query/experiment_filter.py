"""``search_experiments`` filters and order, on the run filter engine.

MLflow's experiment grammar: attributes ``name``, ``experiment_id`` (strings) and
``creation_time``, ``last_update_time`` (numbers, epoch ms), written bare or with an
``attribute.`` prefix, and ``tags.<key>``; strings compare with ``= != LIKE ILIKE``, tags also
with ``IS NULL``/``IS NOT NULL``, times with ``= != < <= > >=``. As for runs, gittrack also
accepts ``OR``, parentheses and ``IN``/``NOT IN`` on the string fields.

The filter is parsed by ``filter_parser.FilterParser``, with experiment keys in place of run
keys, into its expression tree, and evaluated over a small frame that holds each experiment
under the run-frame column of the same type (the name in ``run_name``, the id in ``run_id``,
the times in ``start_time`` and ``end_time``), so the masks, ``LIKE`` semantics and
missing-value rules are exactly those of run searches. The default order is MLflow's:
``creation_time DESC``, then ``experiment_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gittrack.entities import Experiment
from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import (
    FilterExpr,
    FilterParser,
    FilterSyntaxError,
    Key,
    MatchAll,
    Token,
    filter_mask,
    parse_filter,
    prefixed_key_name,
    tokenize,
)
from gittrack.query.ordering import OrderKey, sort_runs

__all__ = ["filter_and_order", "parse_experiment_filter", "parse_experiment_order_by"]

_ATTRIBUTES = {
    "name": Key("attribute", "run_name"),
    "experiment_id": Key("attribute", "run_id"),
    "creation_time": Key("attribute", "start_time"),
    "last_update_time": Key("attribute", "end_time"),
}
_ATTRIBUTE_PREFIXES = frozenset({"attribute", "attributes", "attr"})
_TAG_PREFIXES = frozenset({"tag", "tags"})
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = (*_STRING_OPS, "IS NULL", "IS NOT NULL")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_ID_KEY = _ATTRIBUTES["experiment_id"]


def filter_and_order(
    experiments: list[Experiment],
    filter_string: str | None,
    order_by: Sequence[str] | str | None,
) -> list[Experiment]:
    """The experiments matching ``filter_string``, in ``order_by`` order (MLflow's default)."""
    expression = parse_experiment_filter(filter_string)
    keys = parse_experiment_order_by(order_by)
    frame = _frame(experiments)
    if not isinstance(expression, MatchAll):
        frame = frame[filter_mask(expression, frame).to_numpy(dtype=bool)]
    return [experiments[i] for i in sort_runs(frame, keys)["position"]]


def _frame(experiments: list[Experiment]) -> pd.DataFrame:
    def times(values: list[int | None]) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    data: dict[str, object] = {
        "position": np.arange(len(experiments)),
        "run_id": [e.experiment_id for e in experiments],
        "run_name": [e.name for e in experiments],
        "start_time": times([e.creation_time for e in experiments]),
        "end_time": times([e.last_update_time for e in experiments]),
    }
    for key in sorted({k for e in experiments for k in e.tags}):
        data[f"tags.{key}"] = [e.tags.get(key) for e in experiments]
    return pd.DataFrame(data)


# ------------------------------------------------------------------------- parsing


def parse_experiment_filter(filter_string: str | None) -> FilterExpr:
    """Compile an experiment filter; raises ``FilterSyntaxError`` naming the offending token."""
    return parse_filter(filter_string, parser=_ExperimentParser)


class _ExperimentParser(FilterParser):
    """The run filter grammar over experiment keys, with messages in experiment terms."""

    def resolve_key(self, token: Token) -> Key:
        return experiment_key(token, self.text)

    def check_comparator(self, key: Key, key_token: Token, op: str, op_token: Token) -> None:
        allowed = _NUMERIC_OPS if key.is_numeric else _TAG_OPS if key.kind == "tag" else _STRING_OPS
        if op not in allowed:
            raise self.error(
                f"comparator {op!r} is not valid for {key_token.text!r}; expected one of "
                f"{', '.join(allowed)}",
                op_token,
            )

    def number_problem(self, key: Key, key_token: Token, token: Token) -> str:
        return (
            f"{key_token.text!r} is a time in epoch milliseconds: expected a number, "
            f"found {token.describe()}"
        )

    def string_problem(self, key: Key, key_token: Token, token: Token) -> str:
        return (
            f"expected a quoted string to compare {key_token.text!r} with, found {token.describe()}"
        )


def experiment_key(token: Token, source: str) -> Key:
    """Resolve ``name``, ``attribute.creation_time``, ``tags.team``... to a run-frame key."""
    if token.kind not in ("name", "string") or (
        token.kind == "string" and token.segments[0][1] == "'"
    ):
        raise FilterSyntaxError(
            f"expected name, experiment_id, creation_time, last_update_time or tags.<key>, "
            f"found {token.describe()}",
            token.position,
            source,
        )
    segments = token.segments
    if len(segments) == 1:
        return _attribute(segments[0][0], token, source)
    prefix = segments[0][0].lower()
    name = prefixed_key_name(token, source)
    if prefix in _ATTRIBUTE_PREFIXES:
        return _attribute(name, token, source)
    if prefix in _TAG_PREFIXES and name:
        return Key("tag", name)
    raise FilterSyntaxError(
        f"unknown prefix {segments[0][0]!r} in {token.text!r}; experiments are searched by "
        "attributes (name, experiment_id, creation_time, last_update_time) and tags.<key>",
        token.position,
        source,
    )


def _attribute(name: str, token: Token, source: str) -> Key:
    key = _ATTRIBUTES.get(name)
    if key is None:
        raise FilterSyntaxError(
            f"unknown experiment attribute {name!r}; expected one of "
            f"{', '.join(_ATTRIBUTES)} or tags.<key>",
            token.position,
            source,
        )
    return key


def parse_experiment_order_by(order_by: Sequence[str] | str | None) -> list[OrderKey]:
    """``order_by`` of ``search_experiments`` (attributes only), ending with the id."""
    if isinstance(order_by, str):
        order_by = [order_by]
    keys = [_order_clause(clause) for clause in order_by or ()]
    if not keys:
        keys = [OrderKey(_ATTRIBUTES["creation_time"], ascending=False)]
    if not any(k.key == _ID_KEY for k in keys):
        keys.append(OrderKey(_ID_KEY, ascending=True))
    return keys


def _order_clause(clause: str) -> OrderKey:
    if not isinstance(clause, str):
        raise InvalidInputError(f"an order_by clause must be a string, got {clause!r}")
    tokens = tokenize(clause)
    if tokens[0].kind == "end":
        raise FilterSyntaxError("empty order_by clause", 0, clause)
    key = experiment_key(tokens[0], clause)
    if key.kind == "tag":
        raise FilterSyntaxError(
            f"experiments are ordered by attributes only ({', '.join(_ATTRIBUTES)}), "
            f"not by {tokens[0].text!r}",
            tokens[0].position,
            clause,
        )
    direction = tokens[1]
    ascending = True
    if direction.kind != "end":
        if direction.kind != "name" or direction.text.lower() not in ("asc", "desc"):
            raise FilterSyntaxError(
                f"expected ASC, DESC or the end of the clause, found {direction.describe()}",
                direction.position,
                clause,
            )
        ascending = direction.text.lower() == "asc"
        if tokens[2].kind != "end":
            raise FilterSyntaxError(
                f"expected the end of the clause, found {tokens[2].describe()}",
                tokens[2].position,
                clause,
            )
    return OrderKey(key, ascending)
