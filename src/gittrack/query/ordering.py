"""``order_by`` clauses of ``search_runs``: parsing and a vectorised multi-key sort.

A clause is a key, written as in a filter (``metrics.loss``, ``params.`a.b```, ``start_time``,
``attributes.created``), optionally followed by ``ASC`` or ``DESC`` in any case. As in MLflow:

* runs are first put in the natural order, ``start_time`` descending then ``run_id``
  ascending, and the clauses are applied on top of it, so ties keep the natural order;
* a missing value sorts last, in ascending and descending order alike; of a metric, a NaN
  latest value sorts after every number and before the runs without the metric (MLflow's
  sqlite store, in both directions);
* metrics and times sort as numbers, everything else as strings.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gittrack.errors import InvalidInputError
from gittrack.query.filter_parser import FilterSyntaxError, Key, parse_key, tokenize
from gittrack.query.run_rows import logged_as_nan

__all__ = ["DEFAULT_ORDER", "OrderKey", "parse_order_by", "sort_runs"]


@dataclass(frozen=True)
class OrderKey:
    """One sort key: which key, and in which direction."""

    key: Key
    ascending: bool = True

    @property
    def column(self) -> str:
        """The run-frame column this key sorts by."""
        return self.key.column


DEFAULT_ORDER: tuple[OrderKey, ...] = (
    OrderKey(Key("attribute", "start_time"), ascending=False),
    OrderKey(Key("attribute", "run_id"), ascending=True),
)


def parse_order_by(order_by: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse ``order_by`` clauses such as ``["metrics.loss ASC", "params.lr desc"]``.

    ``None`` or an empty list give ``[]`` (the natural order only); a single string is taken as
    one clause. Raises :class:`~gittrack.query.filter_parser.FilterSyntaxError` (an
    ``InvalidInputError``) naming the clause, the token and what was expected.
    """
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    keys = []
    for clause in order_by:
        if not isinstance(clause, str):
            raise InvalidInputError(
                f"an order_by clause must be a string, got {type(clause).__name__}: {clause!r}"
            )
        keys.append(_parse_clause(clause))
    return keys


@functools.lru_cache(maxsize=512)
def _parse_clause(clause: str) -> OrderKey:
    tokens = tokenize(clause)
    key_token = tokens[0]
    if key_token.kind == "end":
        raise FilterSyntaxError(
            "empty order_by clause; expected a key such as metrics.loss, optionally followed "
            "by ASC or DESC",
            0,
            clause,
        )
    key = parse_key(key_token, clause)
    direction = tokens[1]
    if direction.kind == "end":
        return OrderKey(key)
    if direction.kind != "name" or direction.text.lower() not in ("asc", "desc"):
        raise FilterSyntaxError(
            f"expected ASC, DESC or the end of the clause after {key_token.text!r}, "
            f"found {direction.describe()}",
            direction.position,
            clause,
        )
    trailing = tokens[2]
    if trailing.kind != "end":
        raise FilterSyntaxError(
            f"expected the end of the clause after {direction.text!r}, found {trailing.describe()}",
            trailing.position,
            clause,
        )
    return OrderKey(key, ascending=direction.text.lower() == "asc")


def sort_runs(df: pd.DataFrame, keys: Sequence[OrderKey] | None = None) -> pd.DataFrame:
    """Return ``df`` with its rows sorted by ``keys``, then by :data:`DEFAULT_ORDER`.

    The index labels travel with their rows. A key whose column is absent from ``df`` leaves
    the order unchanged.
    """
    order = _sort_positions(df, [*(keys or ()), *DEFAULT_ORDER])
    return df.iloc[order]


def _sort_positions(df: pd.DataFrame, keys: Sequence[OrderKey]) -> np.ndarray:
    """Row positions in sorted order.

    Keys are applied one at a time from the most significant, and each later key only
    re-sorts the rows still tied on the earlier ones. The natural tie breaker (``run_id``, a
    string sort) therefore costs next to nothing when start times are distinct.
    """
    n = len(df)
    order = np.arange(n)
    # starts[i]: the row at sorted position i begins a new group of rows tied so far
    starts = np.zeros(n, dtype=bool)
    starts[:1] = True
    for key in keys:
        tied = _tied_positions(starts)
        if not tied.any():
            break
        column = df.get(key.column)
        if column is None:
            continue
        positions = np.flatnonzero(tied)
        rows = order[positions]
        missing, rank = _sort_values(column.iloc[rows], key)
        if key.key.kind == "metric":
            # A NaN the run logged sorts before a metric the run does not have.
            logged = logged_as_nan(df.iloc[rows], key.key.name, missing)
            missing = missing.astype(np.int8) * 2 - logged
        group = np.cumsum(starts)[positions]
        within = np.lexsort((rank, missing, group))
        order[positions] = rows[within]
        group, missing, rank = group[within], missing[within], rank[within]
        changed = (group[1:] != group[:-1]) | (missing[1:] != missing[:-1])
        changed |= rank[1:] != rank[:-1]
        starts[positions] = np.concatenate(([True], changed))
    return order


def _tied_positions(starts: np.ndarray) -> np.ndarray:
    """Sorted positions that share their group with at least one other position."""
    ends = np.append(starts[1:], True)
    return ~(starts & ends)


def _sort_values(column: pd.Series, key: OrderKey) -> tuple[np.ndarray, np.ndarray]:
    """A missing flag and a rank such that ascending (missing, rank) is the wanted order."""
    if key.key.is_numeric:
        rank = _as_float(column)
        missing = np.isnan(rank)
        rank[missing] = 0.0
    else:
        missing = column.isna().to_numpy(dtype=bool)
        codes, _ = pd.factorize(_as_text(column[~missing]), sort=True)
        rank = np.zeros(len(column), dtype=np.float64)
        rank[~missing] = codes
    if not key.ascending:
        rank = -rank
    return missing, rank


def _as_float(column: pd.Series) -> np.ndarray:
    if column.dtype.kind not in "fiub":
        column = pd.to_numeric(column, errors="coerce")
    return column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


def _as_text(column: pd.Series) -> pd.Series:
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        return column
    return column.map(str).astype(object)
