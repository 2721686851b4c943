"""The ``search_runs`` filter language: tokenizer, parser and vectorised evaluation.

The grammar is MLflow's (``metrics.loss < 0.3 and params.optimizer = 'adam'``) with three
additions: ``OR`` (binding looser than ``AND``), parentheses, and ``IN``/``NOT IN`` on every
string field. A filter is parsed once into a small tree of frozen dataclasses and evaluated
against the run frame as whole-column pandas operations.

The run frame has one row per run: the attribute columns (``run_id``, ``run_name``,
``status``, ``user_id``, ``artifact_uri``, ``start_time``, ``end_time``, ...) and one column per
key, ``metrics.<key>``, ``params.<key>`` and ``tags.<key>``. A key absent from the frame is a
key no run has.

Semantics that follow MLflow:

* a run without the key never matches a comparison, not even ``!=`` or ``NOT IN``; only
  ``IS NULL`` selects it;
* ``LIKE`` is case-sensitive, ``ILIKE`` is not; ``%`` matches any sequence, ``_`` one character,
  and there is no escape character;
* ``dataset.name``, ``dataset.digest`` and ``dataset.context`` match a run when one of its
  dataset inputs matches (``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``);
* metric and time comparisons are numeric, param, tag and other attribute comparisons are
  exact string comparisons.

* a metric whose latest value is NaN matches ``!=`` (NaN differs from every number, as in
  MLflow's sqlite store) and no other comparison. The frame holds a missing metric as NaN too;
  ``_nan_metrics`` tells the two apart.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

from gittrack.errors import InvalidInputError
from gittrack.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT as DATASET_CONTEXT_TAG

if TYPE_CHECKING:  # numpy and pandas are imported by the evaluation: parsing stays light
    import numpy as np
    import pandas as pd

__all__ = [
    "And",
    "Comparison",
    "FilterExpr",
    "FilterParser",
    "FilterSyntaxError",
    "Key",
    "KeyKind",
    "MatchAll",
    "Or",
    "Token",
    "apply_filter",
    "filter_mask",
    "parse_filter",
    "parse_key",
    "prefixed_key_name",
    "tokenize",
]

KeyKind: TypeAlias = Literal["metric", "param", "tag", "attribute", "dataset"]

_PREFIXES: dict[str, KeyKind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_COLUMN_PREFIX: dict[KeyKind, str] = {"metric": "metrics.", "param": "params.", "tag": "tags."}

# ``dataset.<attr>`` compares the run's dataset inputs: a run matches when one of them does.
DATASET_PREFIXES = frozenset({"dataset", "datasets"})
DATASET_ATTRIBUTES = ("name", "digest", "context")
DATASET_COLUMN = "_inputs"
STRING_ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"})
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}

_NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_ATTRIBUTE_COMPARATORS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_PARAM_TAG_COMPARATORS = (*_STRING_ATTRIBUTE_COMPARATORS, "IS NULL", "IS NOT NULL")
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"})
_QUOTES = "'\"`"
_MAX_NESTING = 100


class FilterSyntaxError(InvalidInputError):
    """A filter or order_by string breaks the grammar; the message names token and position."""

    def __init__(self, message: str, position: int, text: str) -> None:
        super().__init__(f"{message} (at position {position} in {text!r})")
        self.position = position
        self.text = text


# --------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Key:
    """A resolved key: its kind and its name (aliases such as ``created`` already resolved).

    ``numeric`` marks an attribute of another search that compares as a number (a model
    version's ``version_number``); the run attributes and metrics know it from their name.
    """

    kind: KeyKind
    name: str
    numeric: bool = False

    @property
    def column(self) -> str:
        """The run-frame column that holds this key."""
        if self.kind == "attribute":
            return self.name
        if self.kind == "dataset":
            return DATASET_COLUMN
        return _COLUMN_PREFIX[self.kind] + self.name

    @property
    def is_numeric(self) -> bool:
        """Whether values of this key compare and sort as numbers."""
        return (
            self.numeric
            or self.kind == "metric"
            or (self.kind == "attribute" and self.name in NUMERIC_ATTRIBUTES)
        )


@dataclass(frozen=True)
class MatchAll:
    """The empty filter: every run matches."""


@dataclass(frozen=True)
class Comparison:
    """``key op value``; ``value`` is a float, a string, a tuple of strings (IN) or None."""

    key: Key
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class And:
    """All operands match."""

    operands: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Or:
    """At least one operand matches."""

    operands: tuple[FilterExpr, ...]


FilterExpr: TypeAlias = MatchAll | Comparison | And | Or


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    """One lexical unit.

    ``kind`` is one of ``name`` (a possibly dotted, possibly quoted key), ``string`` (a single
    quoted text), ``number``, ``keyword`` (upper-cased in ``text``), ``op``, ``(``, ``)``,
    ``,`` or ``end``. ``segments`` holds a name's dot-separated parts as ``(text, quote)``, with
    ``quote`` empty for a bare part; a string token has exactly one quoted segment.
    """

    kind: str
    text: str
    position: int
    segments: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The token as a user would recognise it in an error message."""
        if self.kind == "end":
            return "the end of the input"
        return self.text if self.kind == "string" else repr(self.text)


def _is_bare_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_-/"


def _is_digit(ch: str) -> bool:
    """An ASCII digit: ``str.isdigit`` also accepts characters ``float`` rejects, such as ²."""
    return len(ch) == 1 and "0" <= ch <= "9"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, position: int) -> FilterSyntaxError:
        return FilterSyntaxError(message, position, self.text)

    def tokens(self) -> list[Token]:
        result: list[Token] = []
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                result.append(Token("end", "", self.pos))
                return result
            result.append(self._next_token())

    def _next_token(self) -> Token:
        text, start = self.text, self.pos
        ch = text[start]
        if ch in "(),":
            self.pos += 1
            return Token(ch, ch, start)
        if ch in "=!<>":
            return self._operator()
        if _is_digit(ch) or (ch in "+-." and self._starts_number(start + 1)):
            return self._number()
        if ch in _QUOTES or ch.isalpha() or ch == "_":
            return self._name()
        raise self.error(f"unexpected character {ch!r}", start)

    def _starts_number(self, index: int) -> bool:
        """Whether a sign or point at ``index - 1`` begins a number (``-1``, ``.5``, ``-.5``)."""
        text = self.text
        if _is_digit(text[index : index + 1]):
            return True
        return (
            text[index - 1] in "+-"
            and text[index : index + 1] == "."
            and _is_digit(text[index + 1 : index + 2])
        )

    def _operator(self) -> Token:
        text, start = self.text, self.pos
        two = text[start : start + 2]
        if two in ("!=", "<=", ">="):
            self.pos += 2
            return Token("op", two, start)
        if two == "==":
            raise self.error("'==' is not a comparator; use '='", start)
        if two == "<>":
            raise self.error("'<>' is not a comparator; use '!='", start)
        if text[start] == "!":
            raise self.error("'!' must be followed by '=' (the comparator '!=')", start)
        self.pos += 1
        return Token("op", text[start], start)

    def _number(self) -> Token:
        text, start = self.text, self.pos
        end = start + 1 if text[start] in "+-" else start
        end = self._skip_digits(end)
        if end < len(text) and text[end] == ".":
            end = self._skip_digits(end + 1)
        if end < len(text) and text[end] in "eE":
            exponent = end + 1
            if exponent < len(text) and text[exponent] in "+-":
                exponent += 1
            if _is_digit(text[exponent : exponent + 1]):
                end = self._skip_digits(exponent)
        if end < len(text) and (_is_bare_char(text[end]) or text[end] in "." + _QUOTES):
            bad_end = end
            while bad_end < len(text) and (_is_bare_char(text[bad_end]) or text[bad_end] == "."):
                bad_end += 1
            raise self.error(
                f"malformed number {text[start : max(bad_end, end + 1)]!r}; expected digits with "
                "an optional sign, decimal point and exponent, such as 0.5, -3 or 1e-4",
                start,
            )
        self.pos = end
        return Token("number", text[start:end], start)

    def _skip_digits(self, index: int) -> int:
        while _is_digit(self.text[index : index + 1]):
            index += 1
        return index

    def _name(self) -> Token:
        start = self.pos
        segments = [self._segment()]
        while self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            if self.pos >= len(self.text) or not (
                _is_bare_char(self.text[self.pos]) or self.text[self.pos] in _QUOTES
            ):
                raise self.error(f"expected a key after {self.text[start : self.pos]!r}", self.pos)
            segments.append(self._segment())
        text = self.text[start : self.pos]
        if len(segments) == 1 and segments[0][1]:
            return Token("string", text, start, tuple(segments))
        if len(segments) == 1 and segments[0][0].upper() in _KEYWORDS:
            return Token("keyword", segments[0][0].upper(), start)
        return Token("name", text, start, tuple(segments))

    def _segment(self) -> tuple[str, str]:
        text, start = self.text, self.pos
        if text[start] not in _QUOTES:
            end = start
            while end < len(text) and _is_bare_char(text[end]):
                end += 1
            self.pos = end
            return text[start:end], ""
        return self._quoted(text[start]), text[start]

    def _quoted(self, quote: str) -> str:
        """Read a quoted text; a doubled quote or a backslash escapes the quote character."""
        text, start = self.text, self.pos
        chars: list[str] = []
        i = start + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and text[i + 1 : i + 2] in (quote, "\\"):
                chars.append(text[i + 1])
                i += 2
            elif ch == quote and text[i + 1 : i + 2] == quote:
                chars.append(quote)
                i += 2
            elif ch == quote:
                self.pos = i + 1
                return "".join(chars)
            else:
                chars.append(ch)
                i += 1
        raise self.error(f"unterminated quoted text: missing the closing {quote}", start)


def tokenize(text: str) -> list[Token]:
    """Split a filter or order_by clause into tokens; the last token has kind ``end``."""
    return _Lexer(text).tokens()


# --------------------------------------------------------------------------- keys


def _prefix_list() -> str:
    return "metrics, params, tags, attributes (or metric, param, parameter(s), tag, attr, run)"


def _attribute_list() -> str:
    return ", ".join(sorted(STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES | {"created"}))


def parse_key(token: Token, source: str) -> Key:
    """Resolve a name token (``metrics.loss``, ``params.`a.b```, ``status``) to a Key.

    ``source`` is the whole filter or clause, quoted in error messages.
    """
    if token.kind not in ("name", "string"):
        raise FilterSyntaxError(
            f"expected a key such as metrics.loss, params.lr, tags.team or an attribute "
            f"({_attribute_list()}), found {token.describe()}",
            token.position,
            source,
        )
    segments = token.segments
    if len(segments) == 1:
        return _attribute_key(segments[0][0], token, source)
    prefix = segments[0][0]
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise FilterSyntaxError(
            f"unknown prefix {prefix!r} in {token.text!r}; expected one of {_prefix_list()}",
            token.position,
            source,
        )
    name = prefixed_key_name(token, source)
    if not name:
        raise FilterSyntaxError(f"empty key in {token.text!r}", token.position, source)
    if kind == "attribute":
        return _attribute_key(name, token, source)
    return Key(kind, name)


def prefixed_key_name(token: Token, source: str) -> str:
    """The key after the prefix of a dotted name token: ``a.b`` in ``params.a.b``.

    Bare parts join with dots; a key with dots and quotes must be one quoted part.
    """
    rest = token.segments[1:]
    if len(rest) == 1:
        return rest[0][0]
    if all(not quote for _, quote in rest):
        return ".".join(text for text, _ in rest)
    raise FilterSyntaxError(
        f"a key that contains dots and quotes must be quoted whole, e.g. "
        f"{token.segments[0][0]}.`a.b`, found {token.text!r}",
        token.position,
        source,
    )


def _attribute_key(name: str, token: Token, source: str) -> Key:
    name = _ATTRIBUTE_ALIASES.get(name, name)
    if name not in STRING_ATTRIBUTES and name not in NUMERIC_ATTRIBUTES:
        raise FilterSyntaxError(
            f"unknown attribute {name!r}; expected one of {_attribute_list()}, "
            f"or a prefixed key such as metrics.{name} or params.{name}",
            token.position,
            source,
        )
    return Key("attribute", name)


def _dataset_key(token: Token, source: str) -> Key:
    name = prefixed_key_name(token, source) if len(token.segments) > 1 else ""
    if name not in DATASET_ATTRIBUTES:
        raise FilterSyntaxError(
            f"unknown dataset attribute {name!r} in {token.text!r}; expected one of "
            f"{', '.join('dataset.' + a for a in DATASET_ATTRIBUTES)}",
            token.position,
            source,
        )
    return Key("dataset", name)


# --------------------------------------------------------------------------- parser


class FilterParser:
    """Recursive-descent parser of the filter grammar, resolving keys as ``search_runs`` does.

    Another search (e.g. ``search_experiments``) reuses the grammar by overriding the key
    hooks: ``resolve_key``, ``check_comparator``, ``number_problem`` and ``string_problem``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def error(self, message: str, token: Token) -> FilterSyntaxError:
        return FilterSyntaxError(message, token.position, self.text)

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.text == word

    def parse(self) -> FilterExpr:
        if self.peek().kind == "end":
            return MatchAll()
        expr = self.parse_or()
        token = self.peek()
        if token.kind == ")":
            raise self.error("unexpected ')' without a matching '('", token)
        if token.kind != "end":
            raise self.error(
                f"expected AND, OR or the end of the filter, found {token.describe()}", token
            )
        return expr

    def parse_or(self) -> FilterExpr:
        operands = [self.parse_and()]
        while self.at_keyword("OR"):
            self.advance()
            operands.append(self.parse_and())
        return _combine(Or, operands)

    def parse_and(self) -> FilterExpr:
        operands = [self.parse_primary()]
        while self.at_keyword("AND"):
            self.advance()
            operands.append(self.parse_primary())
        return _combine(And, operands)

    def parse_primary(self) -> FilterExpr:
        token = self.peek()
        if token.kind != "(":
            return self.parse_comparison()
        if self.depth >= _MAX_NESTING:
            raise self.error(f"parentheses nested deeper than {_MAX_NESTING} levels", token)
        self.advance()
        self.depth += 1
        expr = self.parse_or()
        self.depth -= 1
        closing = self.advance()
        if closing.kind != ")":
            raise self.error(
                f"expected ')' to close the '(' at position {token.position}, "
                f"found {closing.describe()}",
                closing,
            )
        return expr

    def parse_comparison(self) -> Comparison:
        key_token = self.advance()
        key = self.resolve_key(key_token)
        op_token = self.peek()
        op = self.parse_comparator(key_token)
        self.check_comparator(key, key_token, op, op_token)
        if op in ("IS NULL", "IS NOT NULL"):
            return Comparison(key, op, None)
        if op in ("IN", "NOT IN"):
            return Comparison(key, op, self.parse_string_list(key, key_token))
        if key.is_numeric:
            return Comparison(key, op, self.parse_number(key, key_token))
        return Comparison(key, op, self.parse_string(key, key_token))

    def resolve_key(self, token: Token) -> Key:
        """The key a comparison starts with."""
        if token.kind == "string" and token.segments[0][1] == "'":
            raise self.error(
                f"expected a key, found the quoted value {token.describe()}; write the key "
                "first, e.g. params.optimizer = 'adam'",
                token,
            )
        if token.kind == "name" and token.segments[0][0].lower() in DATASET_PREFIXES:
            return _dataset_key(token, self.text)
        return parse_key(token, self.text)

    def check_comparator(self, key: Key, key_token: Token, op: str, op_token: Token) -> None:
        """Reject a comparator the key's type does not support."""
        _check_comparator(key, op, op_token, self.text)

    def number_problem(self, key: Key, key_token: Token, token: Token) -> str:
        """The message for a non-number ``token`` compared with a numeric key."""
        what = "a metric" if key.kind == "metric" else f"the time attribute {key.name!r}"
        return (
            f"expected a number to compare {what} with (e.g. 0.5, -3, 1e-4), "
            f"found {token.describe()}"
        )

    def string_problem(self, key: Key, key_token: Token, token: Token) -> str:
        """The message for a ``token`` that is not a quoted string value for a string key."""
        return _string_value_problem(key, token)

    def parse_comparator(self, key_token: Token) -> str:
        token = self.advance()
        if token.kind == "op":
            return token.text
        if token.kind == "keyword" and token.text in ("LIKE", "ILIKE", "IN"):
            return token.text
        if token.kind == "keyword" and token.text == "NOT":
            following = self.advance()
            if following.kind == "keyword" and following.text == "IN":
                return "NOT IN"
            raise self.error(f"expected IN after NOT, found {following.describe()}", following)
        if token.kind == "keyword" and token.text == "IS":
            negated = self.at_keyword("NOT")
            if negated:
                self.advance()
            null = self.advance()
            if null.kind == "keyword" and null.text == "NULL":
                return "IS NOT NULL" if negated else "IS NULL"
            expected = "NULL" if negated else "NULL or NOT NULL"
            raise self.error(f"expected {expected} after IS, found {null.describe()}", null)
        raise self.error(
            f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, "
            f"IS NOT NULL) after {key_token.text!r}, found {token.describe()}",
            token,
        )

    def parse_number(self, key: Key, key_token: Token) -> float:
        token = self.advance()
        if token.kind != "number":
            raise self.error(self.number_problem(key, key_token, token), token)
        return float(token.text)

    def parse_string(self, key: Key, key_token: Token) -> str:
        token = self.advance()
        if token.kind == "string" and token.segments[0][1] in "'\"":
            return token.segments[0][0]
        raise self.error(self.string_problem(key, key_token, token), token)

    def parse_string_list(self, key: Key, key_token: Token) -> tuple[str, ...]:
        opening = self.advance()
        if opening.kind != "(":
            raise self.error(
                f"expected '(' to start the IN list, found {opening.describe()}", opening
            )
        values: list[str] = []
        while self.peek().kind != ")":
            values.append(self.parse_string(key, key_token))
            separator = self.peek()
            if separator.kind == ",":
                self.advance()
            elif separator.kind != ")":
                raise self.error(
                    f"expected ',' or ')' in the IN list, found {separator.describe()}", separator
                )
        closing = self.advance()
        if not values:
            raise self.error(
                "empty IN list; expected at least one quoted string, e.g. IN ('a', 'b')", closing
            )
        return tuple(values)


def _string_value_problem(key: Key, token: Token) -> str:
    subject = f"{key.kind} {key.name!r}"
    if token.kind == "string":
        return (
            f"backticks quote keys, not values: quote the value for {subject} with ' or \", "
            f"found {token.describe()}"
        )
    if token.kind == "number":
        return (
            f"{key.kind}s are strings: quote the value for {subject}, e.g. '{token.text}', "
            f"found the number {token.text}"
        )
    if token.kind in ("name", "keyword"):
        return (
            f"expected a quoted string value for {subject}, found unquoted {token.describe()}; "
            f"write '{token.text}'"
        )
    return f"expected a quoted string value for {subject}, found {token.describe()}"


def _check_comparator(key: Key, op: str, token: Token, source: str) -> None:
    if key.is_numeric:
        allowed, what = _NUMERIC_COMPARATORS, "numbers"
    elif key.kind in ("attribute", "dataset"):
        allowed, what = _STRING_ATTRIBUTE_COMPARATORS, "strings"
    else:
        allowed, what = _PARAM_TAG_COMPARATORS, "strings"
    if op not in allowed:
        raise FilterSyntaxError(
            f"comparator {op!r} is not valid for {key.kind} {key.name!r}, which compares as "
            f"{what}; expected one of {', '.join(allowed)}",
            token.position,
            source,
        )


def _combine(kind: type[And] | type[Or], operands: list[FilterExpr]) -> FilterExpr:
    if len(operands) == 1:
        return operands[0]
    flat: list[FilterExpr] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


def parse_filter(
    filter_string: str | None, parser: type[FilterParser] = FilterParser
) -> FilterExpr:
    """Parse a search filter into an expression tree.

    ``None``, an empty or an all-blank string give ``MatchAll()``. Raises
    :class:`FilterSyntaxError` (an ``InvalidInputError``) naming the offending token, its
    position and what was expected. Results are cached: the tree is immutable. ``parser``
    selects the keys: ``FilterParser`` for runs, a subclass for another search.
    """
    if filter_string is None:
        return MatchAll()
    if not isinstance(filter_string, str):
        raise InvalidInputError(
            f"a filter must be a string, got {type(filter_string).__name__}: {filter_string!r}"
        )
    return _parse_cached(filter_string, parser)


@functools.lru_cache(maxsize=512)
def _parse_cached(filter_string: str, parser: type[FilterParser]) -> FilterExpr:
    return parser(filter_string).parse()


# --------------------------------------------------------------------------- evaluation

_NUMERIC_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LIKE_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def filter_mask(expr: FilterExpr, df: pd.DataFrame) -> pd.Series:
    """Evaluate ``expr`` on the run frame: a boolean Series aligned with ``df.index``."""
    import pandas as pd

    return pd.Series(_mask(expr, df), index=df.index, dtype=bool)


def apply_filter(df: pd.DataFrame, filter_string: str | None) -> pd.DataFrame:
    """The rows of ``df`` that match ``filter_string``; an empty filter returns ``df`` itself."""
    expr = parse_filter(filter_string)
    if isinstance(expr, MatchAll):
        return df
    return df.loc[_mask(expr, df)]


def _mask(expr: FilterExpr, df: pd.DataFrame) -> np.ndarray:
    import numpy as np

    if isinstance(expr, Comparison):
        return _comparison_mask(expr, df)
    if isinstance(expr, And):
        result = _mask(expr.operands[0], df)
        for operand in expr.operands[1:]:
            result = result & _mask(operand, df)
        return result
    if isinstance(expr, Or):
        result = _mask(expr.operands[0], df)
        for operand in expr.operands[1:]:
            result = result | _mask(operand, df)
        return result
    return np.ones(len(df), dtype=bool)


def _comparison_mask(comparison: Comparison, df: pd.DataFrame) -> np.ndarray:
    import numpy as np

    if comparison.key.kind == "dataset":
        return _dataset_mask(comparison, df)
    column = df.get(comparison.key.column)
    if column is None:
        return np.full(len(df), comparison.op == "IS NULL", dtype=bool)
    if comparison.key.is_numeric:
        return _numeric_mask(comparison, column, df)
    return _string_mask(comparison, column)


def _dataset_mask(comparison: Comparison, df: pd.DataFrame) -> np.ndarray:
    """Runs one of whose dataset inputs matches: the inputs of the runs that have any are
    laid out as one long column, compared as strings, and folded back to their runs."""
    import numpy as np
    import pandas as pd

    result = np.zeros(len(df), dtype=bool)
    column = df.get(DATASET_COLUMN)
    if column is None:
        return result
    cells = column.to_numpy(dtype=object)
    field = DATASET_ATTRIBUTES.index(comparison.key.name)
    rows, values = [], []
    for position in np.flatnonzero(column.notna().to_numpy(dtype=bool)):
        for entry in json.loads(cells[position]):
            if field == 2:
                value = (entry.get("tags") or {}).get(DATASET_CONTEXT_TAG)
            else:
                value = entry["dataset"][DATASET_ATTRIBUTES[field]]
            rows.append(position)
            values.append(value)
    if rows:
        long = pd.Series(values, dtype=object)
        matched = _string_mask(comparison, long)
        result[np.asarray(rows)[matched]] = True
    return result


def _numeric_mask(comparison: Comparison, column: pd.Series, df: pd.DataFrame) -> np.ndarray:
    import numpy as np

    from gittrack.query.run_rows import logged_as_nan

    values = _as_float_array(column)
    result = _NUMERIC_OPS[comparison.op](values, cast(float, comparison.value))
    if comparison.op == "!=":
        nan = np.isnan(values)
        result &= ~nan
        if comparison.key.kind == "metric":
            result |= logged_as_nan(df, comparison.key.name, nan)
    return result


def _as_float_array(column: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if column.dtype.kind not in "fiub":
        column = pd.to_numeric(column, errors="coerce")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _string_mask(comparison: Comparison, column: pd.Series) -> np.ndarray:
    op, value = comparison.op, comparison.value
    present = column.notna().to_numpy(dtype=bool)
    if op == "IS NULL":
        return ~present
    if op == "IS NOT NULL":
        return present
    column = _as_string_series(column)
    if op == "LIKE" and isinstance(value, str) and not ("%" in value or "_" in value):
        op = "="
    if op == "=":
        matched = column == value
    elif op == "!=":
        matched = column != value
    elif op == "IN":
        matched = column.isin(value)
    elif op == "NOT IN":
        matched = ~column.isin(value)
    else:
        regex = _like_to_regex(cast(str, value))
        matched = column.str.fullmatch(regex, case=op == "LIKE", na=False)
    return _to_bool_array(matched) & present


def _as_string_series(column: pd.Series) -> pd.Series:
    import pandas as pd

    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        return column
    # Only reached for frames that hold non-strings in a string field (e.g. an all-missing
    # column typed as float): compare their text, as the store would have written it.
    return column.map(str, na_action="ignore").astype(object)


def _to_bool_array(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=bool, na_value=False)


def _like_to_regex(pattern: str) -> str:
    """Translate a SQL LIKE pattern into a regular expression for a full match.

    ``[\\s\\S]`` rather than ``.`` lets the wildcards cross newlines without regex flags, which
    keeps the pattern valid for both Python's ``re`` and the RE2 engine behind Arrow strings.
    """
    parts = []
    for ch in pattern:
        if ch == "%":
            parts.append("[\\s\\S]*")
        elif ch == "_":
            parts.append("[\\s\\S]")
        elif ch in _LIKE_SPECIAL:
            parts.append("\\" + ch)
        else:
            parts.append(ch)
    return "".join(parts)
