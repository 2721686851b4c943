"""A fast reader for the block YAML that gittrack writes, with libyaml behind it.

Reading a run's ``meta.yaml`` through PyYAML costs ~0.4 ms even with libyaml, most of it in
the Python-level construction of nodes, and an index build reads tens of thousands of them.
The documents gittrack writes use a small subset of YAML: nested block mappings, block
sequences of scalars or of mappings (a run's dataset inputs), ``{}`` and ``[]``, plain scalars
and quoted scalars on one line.
``load_yaml_fast`` reads exactly that subset, resolving plain scalars with PyYAML's own
YAML 1.1 rules, and hands anything else (comments, anchors, multi-line scalars, escapes only
YAML knows, tabs, ...) to ``codecs.load_yaml``. The result is always what PyYAML returns.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import yaml

from gittrack.store.codecs import load_yaml

__all__ = ["load_yaml_fast", "parse_subset"]

_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_TAG = "tag:yaml.org,2002:"
# Numbers as gittrack writes them, a subset of what YAML 1.1 resolves as int and float.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]*(?:[eE][-+][0-9]+)?)?\Z")
_NUMBER_START = frozenset("-0123456789")
_SIMPLE_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_SIMPLE_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+][0-9]+)?\Z")
# Characters outside YAML's printable set, plus the ones YAML reads as line breaks (NEL, LS,
# PS), tabs, carriage returns and the byte-order mark: documents holding any go to libyaml.
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_INDICATORS = frozenset("[]{},#&*!|>'\"%@`?:-")
_JSON_STRING = json.JSONDecoder()


class _Unsupported(Exception):
    """The document leaves the subset: libyaml reads it."""


def load_yaml_fast(data: bytes, where: str) -> Any:
    """Parse a YAML document as ``codecs.load_yaml`` does, quickly when gittrack wrote it."""
    try:
        return parse_subset(data)
    except _Unsupported:
        return load_yaml(data, where)


def parse_subset(data: bytes | str) -> Any:
    """Parse a document of the subset; raises ``_Unsupported`` for anything else."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise _Unsupported from exc
    if _UNUSUAL.search(text):
        raise _Unsupported
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise _Unsupported
    if len(lines) == 1 and lines[0] in ("{}", "[]"):
        return {} if lines[0] == "{}" else []
    cache = _LINE_CACHE
    entries = []
    for line in lines:
        entry = cache.get(line)
        if entry is None:
            entry = _key_value_line(line) or _parse_line(line)
            if len(cache) >= _LINE_CACHE_SIZE:
                cache.clear()
            cache[line] = entry
        entries.append(entry)
    value, pos = _mapping(entries, 0, 0)
    if pos != len(entries):
        raise _Unsupported
    return value


# Lines repeat across the documents of an index build ("    count: 1", "status: FINISHED"):
# their parsed form is kept. Entries are immutable: (indent, kind, key, value).
_LINE_CACHE: dict[str, tuple[int, int, str, Any]] = {}
_LINE_CACHE_SIZE = 50_000
_KEY_VALUE, _KEY_ONLY, _ITEM, _EMPTY_MAP, _EMPTY_LIST, _ITEM_MAP = range(6)


def _key_value_line(line: str) -> tuple[int, int, str, Any] | None:
    """The common ``<indent><key>: <scalar>`` line, its key part looked up in a cache."""
    head_text, separator, rest = line.partition(": ")
    if not separator or not rest or rest in ("{}", "[]"):
        return None
    head = _HEADS.get(head_text)
    if head is None:
        body = head_text.lstrip(" ")
        if body.startswith("-") or '"' in body or "'" in body:
            return None  # sequence items and quoted keys take the general path
        try:
            key, nothing = _split_key(body + ":")
        except _Unsupported:
            return None
        if nothing is not None:
            return None
        if len(_HEADS) >= _LINE_CACHE_SIZE:
            _HEADS.clear()
        head = _HEADS[head_text] = (len(head_text) - len(body), key)
    return head[0], _KEY_VALUE, head[1], _scalar(rest)


_HEADS: dict[str, tuple[int, str]] = {}


def _parse_line(line: str) -> tuple[int, int, str, Any]:
    body = line.lstrip(" ")
    indent = len(line) - len(body)
    if body.startswith("- "):
        text = body[2:]
        if text in ("{}", "[]"):
            raise _Unsupported
        try:
            return indent, _ITEM, "", _scalar(text)
        except _Unsupported:
            # ``- key: value`` or ``- key:``: the first entry of a mapping item, whose other
            # entries follow two columns in.
            return indent, _ITEM_MAP, "", _parse_line(" " * (indent + 2) + text)
    key, rest = _split_key(body)
    if rest is None:
        return indent, _KEY_ONLY, key, None
    if rest == "{}":
        return indent, _EMPTY_MAP, key, None
    if rest == "[]":
        return indent, _EMPTY_LIST, key, None
    return indent, _KEY_VALUE, key, _scalar(rest)


def _mapping(entries: list, pos: int, indent: int) -> tuple[dict, int]:
    result: dict[str, Any] = {}
    n = len(entries)
    while pos < n:
        level, kind, key, value = entries[pos]
        if level != indent:
            if level < indent:
                break
            raise _Unsupported
        if kind in _ITEMS or key in result:
            raise _Unsupported
        pos += 1
        if kind == _KEY_VALUE:
            result[key] = value
        elif kind == _EMPTY_MAP:
            result[key] = {}
        elif kind == _EMPTY_LIST:
            result[key] = []
        elif pos < n and entries[pos][1] in _ITEMS and entries[pos][0] >= indent:
            result[key], pos = _sequence(entries, pos, entries[pos][0])
        elif pos < n and entries[pos][0] > indent:
            result[key], pos = _mapping(entries, pos, entries[pos][0])
        else:
            result[key] = None
    return result, pos


_ITEMS = (_ITEM, _ITEM_MAP)


def _sequence(entries: list, pos: int, indent: int) -> tuple[list, int]:
    items: list[Any] = []
    n = len(entries)
    while pos < n:
        level, kind, _key, value = entries[pos]
        if level > indent:
            raise _Unsupported
        if level < indent or kind not in _ITEMS:
            break
        if kind == _ITEM:
            items.append(value)
            pos += 1
            continue
        # A mapping item: its first entry sits on the item's line, the rest two columns in.
        end = pos + 1
        while end < n and entries[end][0] > indent:
            end += 1
        item, used = _mapping([value, *entries[pos + 1 : end]], 0, indent + 2)
        if used != end - pos:
            raise _Unsupported
        items.append(item)
        pos = end
    return items, pos


# YAML's implicit keys end within 1024 characters of their start: PyYAML (and libyaml) refuse
# ``key: value`` whose ':' is further, so such a line is left to them.
_LONGEST_KEY = 1024


def _split_key(body: str) -> tuple[str, str | None]:
    """``key: value`` as (key, value text), or (key, None) for ``key:`` ending the line."""
    if not body:
        raise _Unsupported
    first = body[0]
    if first == '"' or first == "'":
        key, end = _quoted_key(body)
        if end > _LONGEST_KEY:
            raise _Unsupported
        tail = body[end:]
        if tail == ":":
            return key, None
        if tail.startswith(": ") and len(tail) > 2:
            return key, tail[2:]
        raise _Unsupported
    if first in _INDICATORS:
        raise _Unsupported
    split = body.find(": ")
    if split < 0:
        if not body.endswith(":"):
            raise _Unsupported
        key_text, rest = body[:-1], None
    else:
        key_text, rest = body[:split], body[split + 2 :]
        if not rest:
            raise _Unsupported
    if not key_text or key_text[-1] == " " or " #" in key_text or len(key_text) > _LONGEST_KEY:
        raise _Unsupported
    key = _plain_key(key_text)
    return key, rest


@functools.lru_cache(maxsize=4096)
def _plain_key(text: str) -> str:
    value = _plain(text)
    if not isinstance(value, str):
        raise _Unsupported
    return value


def _quoted_key(body: str) -> tuple[str, int]:
    if body[0] == '"':
        try:
            key, end = _JSON_STRING.raw_decode(body)
        except ValueError as exc:
            raise _Unsupported from exc
        if not isinstance(key, str) or _SURROGATE_ESCAPE.search(body, 0, end):
            raise _Unsupported
        return key, end
    index = 1
    while True:
        quote = body.find("'", index)
        if quote < 0:
            raise _Unsupported
        if body[quote + 1 : quote + 2] == "'":
            index = quote + 2
            continue
        return body[1:quote].replace("''", "'"), quote + 1


def _scalar(text: str) -> Any:
    first = text[0]
    if first in _NUMBER_START:
        number = _NUMBER.match(text)
        if number is not None:
            return float(text) if number.group(1) else int(text)
    if first == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
            raise _Unsupported
        return inner.replace("''", "'")
    if first == '"':
        if len(text) < 2 or text[-1] != '"' or _SURROGATE_ESCAPE.search(text):
            raise _Unsupported
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise _Unsupported from exc
        if not isinstance(value, str):
            raise _Unsupported
        return value
    if text in ("{}", "[]"):
        raise _Unsupported
    if first in _INDICATORS and not (first == "-" and text[1:2] not in ("", " ")):
        raise _Unsupported
    if ": " in text or " #" in text or text[-1] in ": ":
        raise _Unsupported
    return _plain(text)


def _plain(text: str) -> Any:
    """A plain scalar, typed by PyYAML's implicit resolvers (YAML 1.1)."""
    for tag, regexp in _RESOLVERS.get(text[0], ()):
        if regexp.match(text):
            return _construct(tag, text)
    return text


def _construct(tag: str, text: str) -> Any:
    kind = tag[len(_TAG) :] if tag.startswith(_TAG) else ""
    if kind == "null":
        return None
    if kind == "bool":
        return _BOOLS[text.lower()]
    if kind == "int" and _SIMPLE_INT.match(text):
        return int(text)
    if kind == "float" and _SIMPLE_FLOAT.match(text):
        return float(text)
    raise _Unsupported
