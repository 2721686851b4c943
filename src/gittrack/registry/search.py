"""Filters and ordering for ``search_registered_models`` and ``search_model_versions``.

MLflow's registry filter language: comparisons joined by ``AND``, each ``key op value`` where
the key is an attribute (``name``, ``run_id``, ``source_path``, ``version_number``,
``user_id``, ``current_stage``, ``description``) or ``tags.<key>`` (backquote keys with
spaces: ``tags.`my key```), the operator one of ``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``,
``NOT IN``, and the value a quoted string, a number or a parenthesised list of them.
``LIKE`` is case-sensitive, ``ILIKE`` not; ``%`` matches any run of characters, ``_`` one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gittrack.errors import InvalidInputError
from gittrack.tracking import validation

T = TypeVar("T")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<>|=|\(|\)|,)
      | (?P<key>(?:tags?\.)?(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*))
    )""",
    re.VERBOSE,
)
_WORD_OPS = {"LIKE", "ILIKE", "IN", "AND", "NOT"}


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Any


class PagedList(list):  # type: ignore[type-arg]
    """A page of search results; ``token`` is the next page's token (None on the last)."""

    def __init__(self, items: Iterable[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


def parse_filter(text: str | None, attributes: Sequence[str]) -> list[Condition]:
    """Parse a registry filter into conditions that must all hold."""
    if not text or not text.strip():
        return []
    tokens = _tokenize(text)
    conditions = []
    position = 0
    while position < len(tokens):
        condition, position = _condition(tokens, position, text, attributes)
        conditions.append(condition)
        if position < len(tokens):
            if tokens[position] != ("word", "AND"):
                raise InvalidInputError(
                    f"filter {text!r}: expected AND between conditions, got {tokens[position][1]!r}"
                )
            position += 1
            if position == len(tokens):
                raise InvalidInputError(f"filter {text!r} ends with AND")
    return conditions


def matches(conditions: Sequence[Condition], lookup: Callable[[str], Any]) -> bool:
    """Whether the item whose fields ``lookup`` returns satisfies every condition."""
    for condition in conditions:
        value = lookup(condition.key)
        if value is None or not _compare(str(value), condition):
            return False
    return True


def order(
    items: list[T],
    order_by: Sequence[str] | None,
    key_of: Callable[[T, str], Any],
    default: Sequence[str],
    attributes: Sequence[str],
) -> list[T]:
    """Sort by ``order_by`` clauses (``"name ASC"``, ``"version_number DESC"``), then default."""
    clauses = [_order_clause(c, attributes) for c in order_by or []]
    given = {field for field, _ in clauses}
    clauses += [_order_clause(c, attributes) for c in default if c.split()[0] not in given]
    for field, descending in reversed(clauses):
        items.sort(key=lambda item, f=field: _sort_key(key_of(item, f)), reverse=descending)
    return items


def _order_clause(clause: str, attributes: Sequence[str]) -> tuple[str, bool]:
    parts = clause.split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
        raise InvalidInputError(f"order_by clause {clause!r} must be 'FIELD [ASC|DESC]'")
    if parts[0] not in attributes:
        raise InvalidInputError(f"cannot order by {parts[0]!r}; fields: {', '.join(attributes)}")
    return parts[0], len(parts) == 2 and parts[1].upper() == "DESC"


def paginate(items: list[T], max_results: int | None, page_token: str | None) -> PagedList:
    start = _page_start(page_token)
    if max_results is None:
        return PagedList(items[start:])
    max_results = validation.check_max_results(max_results)
    end = start + max_results
    return PagedList(items[start:end], str(end) if end < len(items) else None)


# ------------------------------------------------------------------------ internals


def _page_start(page_token: str | None) -> int:
    """Where the page a token names starts: a token is what ``paginate`` returned (the
    index of the next item, as ASCII digits); anything else is refused."""
    if not page_token:
        return 0
    text = str(page_token)
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise InvalidInputError(f"page token {text[:40]!r} is not one a registry search returned")
    return int(text)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    return (0, value)


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise InvalidInputError(
                f"filter {text!r}: cannot read {text[position:].strip()[:20]!r}"
            )
        position = match.end()
        if match["string"]:
            quote = match["string"][0]
            tokens.append(("value", match["string"][1:-1].replace(quote * 2, quote)))
        elif match["number"]:
            tokens.append(("value", match["number"]))
        elif match["op"]:
            tokens.append(("op", "!=" if match["op"] == "<>" else match["op"]))
        elif match["key"].upper() in _WORD_OPS:
            tokens.append(("word", match["key"].upper()))
        else:
            tokens.append(("key", match["key"]))
    return tokens


def _condition(
    tokens: list[tuple[str, Any]], position: int, text: str, attributes: Sequence[str]
) -> tuple[Condition, int]:
    kind, key = tokens[position]
    if kind != "key":
        raise InvalidInputError(f"filter {text!r}: expected a field name, got {key!r}")
    key = _normalize_key(key, text, attributes)
    position += 1
    if position >= len(tokens):
        raise InvalidInputError(f"filter {text!r}: {key} needs an operator and a value")
    op = tokens[position][1]
    if op == "NOT" and position + 1 < len(tokens) and tokens[position + 1][1] == "IN":
        op, position = "NOT IN", position + 1
    if op not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
        raise InvalidInputError(
            f"filter {text!r}: {op!r} is not an operator; use =, !=, LIKE, ILIKE, IN or NOT IN"
        )
    position += 1
    if op in ("IN", "NOT IN"):
        return _list_condition(tokens, position, text, key, op)
    if position >= len(tokens) or tokens[position][0] != "value":
        raise InvalidInputError(f"filter {text!r}: {key} {op} needs a quoted value")
    return Condition(key, op, tokens[position][1]), position + 1


def _list_condition(
    tokens: list[tuple[str, Any]], position: int, text: str, key: str, op: str
) -> tuple[Condition, int]:
    if position >= len(tokens) or tokens[position] != ("op", "("):
        raise InvalidInputError(f"filter {text!r}: {key} {op} needs a list like ('a', 'b')")
    values = []
    position += 1
    while position < len(tokens) and tokens[position] != ("op", ")"):
        kind, value = tokens[position]
        if kind == "value":
            values.append(value)
        elif tokens[position] != ("op", ","):
            raise InvalidInputError(f"filter {text!r}: unexpected {value!r} in the {op} list")
        position += 1
    if position >= len(tokens):
        raise InvalidInputError(f"filter {text!r}: the {op} list is not closed with ')'")
    return Condition(key, op, tuple(values)), position + 1


def _normalize_key(key: str, text: str, attributes: Sequence[str]) -> str:
    prefix, dot, rest = key.partition(".")
    if dot and prefix in ("tag", "tags"):
        return "tags." + rest.strip("`")
    name = key.strip("`")
    if name not in attributes:
        raise InvalidInputError(
            f"filter {text!r}: unknown field {name!r}; use tags.<key> or one of "
            f"{', '.join(attributes)}"
        )
    return name


def _compare(value: str, condition: Condition) -> bool:
    op, target = condition.op, condition.value
    if op == "=":
        return value == target
    if op == "!=":
        return value != target
    if op == "IN":
        return value in target
    if op == "NOT IN":
        return value not in target
    flags = re.IGNORECASE if op == "ILIKE" else 0
    pattern = "".join(
        ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(target)
    )
    return re.fullmatch(pattern, value, flags | re.DOTALL) is not None
