"""Rows of the run frame read straight from the canonical ``meta.yaml`` and ``params.yaml``.

An index build reads two YAML documents per run; even the subset reader of
``store/fast_yaml.py`` spends ~1 µs a line building dictionaries the frame takes apart again.
The documents a run commit writes have one canonical layout (``run_documents.META_ORDER``
spelled by ``codecs.dump_yaml``): the top-level keys in a fixed order, tags and params as
``key: value`` lines two columns in, one six-line block per metric summary, strings plain
when they read as themselves and double-quoted otherwise. ``read_row`` recognises exactly
that layout with a few regular expressions over the whole document and returns the row's
values (``RunRow``) without building the documents.

It accepts only what it can read the way PyYAML does: plain scalars of letters, digits and
``_ .-/`` that no YAML 1.1 resolver turns into a boolean or null, double-quoted scalars (with
JSON's escapes, which YAML reads alike, in tags and params only), keys of at most 1,000
characters (libyaml refuses longer implicit keys), numbers in the spelling ``dump_yaml``
writes, each key once; the ``source`` mapping is read by ``load_yaml_fast`` (and cached, as
runs of one commit share it). Everything else (comments, anchors, tabs, other escapes, other
key orders, dataset ``inputs``, a run id that is not its directory's, a corrupt field...) is
declined with None, and the caller reads the run through the general path
(``load_yaml_fast`` and ``FrameBuilder.add``), which gives the same row or reports the run as
skipped. The row of an accepted run is the one the general path builds, cell for cell
(``tests/test_canonical_rows.py`` holds the two to each other on generated and mutated
documents).
"""

from __future__ import annotations

import functools
import json
import re
import sys

from gittrack.entities import LifecycleStage, RunStatus
from gittrack.errors import CorruptDataError
from gittrack.query.run_rows import RunRow
from gittrack.store.fast_yaml import load_yaml_fast
from gittrack.store.run_documents import artifact_uri

__all__ = ["read_row"]

# Plain scalars that read as themselves: YAML 1.1 resolves only these words among them.
_WORDS = "(?:[Yy]es|YES|[Nn]o|NO|[Tt]rue|TRUE|[Ff]alse|FALSE|[Oo]n|ON|[Oo]ff|OFF|[Nn]ull|NULL)"
_PLAIN_BODY = r"[A-Za-z_](?:[A-Za-z0-9_ .\-/]*[A-Za-z0-9_.\-/])?"
_PLAIN_KEY_BODY = r"[A-Za-z_](?:[A-Za-z0-9_ .\-/]{0,998}[A-Za-z0-9_.\-/])?"
# What a double-quoted scalar without escapes may hold: YAML's printable characters but the
# quote, the backslash, and those ``fast_yaml`` leaves to libyaml (line breaks, tabs, BOM).
_QUOTED_CHARACTER = (
    r"[\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
    r"\U00010000-\U0010ffff]"
)


# JSON's escapes, which YAML reads alike (``dump_yaml`` quotes with JSON's spelling); not the
# escaped surrogates, which JSON pairs and YAML does not.
_ESCAPE = r'\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4})'


def _string(name: str, end: str, key: bool = False, escapes: bool = False) -> str:
    """A string scalar captured in group ``name`` (without its quotes), followed by ``end``;
    escapes are allowed in its quoted form only when ``escapes`` (``_unescaped`` reads them)."""
    body = _PLAIN_KEY_BODY if key else _PLAIN_BODY
    if escapes:
        quoted = f"(?:{_QUOTED_CHARACTER}|{_ESCAPE})*"
    else:
        quoted = _QUOTED_CHARACTER + ("{0,1000}" if key else "*")
    return (
        rf'(?P<{name}_q>")?(?P<{name}>(?({name}_q){quoted}|(?!{_WORDS}{end}){body}))'
        rf'(?({name}_q)"){end}'
    )


_NL = "\n"
_TIME = r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"'
# The document up to its metric summaries (which ``_SUMMARY`` reads in one pass).
_HEAD = re.compile(
    "format: 1\n"
    f"run_id: {_string('run_id', _NL)}"
    f"run_name: {_string('run_name', _NL)}"
    f"experiment_id: {_string('experiment_id', _NL)}"
    f"status: (?P<status>{'|'.join(RunStatus.ALL)})\n"
    f"lifecycle: (?P<lifecycle>{LifecycleStage.ACTIVE}|{LifecycleStage.DELETED})\n"
    f"start_time: {_TIME.replace('(', '(?P<start>', 1)}\n"
    f"end_time: (?:null|{_TIME.replace('(', '(?P<end>', 1)})\n"
    f"parent_run_id: (?:null\n|{_string('parent', _NL)})"
    f"user: {_string('user', _NL)}"
    f"(?:description: (?:null\n|{_string('description', _NL)}))?"
    r"tags:(?: \{\}\n|\n(?P<tags>(?:  [^\n]*\n)+))"
    r"(?:source:(?: \{\}\n|\n(?P<source>(?:  [^\n]*\n)*)))?"
    r"metrics:(?P<no_metrics> \{\})?\n"
)
_ARTIFACT_URI = re.compile(f"artifact_uri: {_string('artifact_uri', _NL)}")
# One ``key: value`` line of tags (two columns in) or params (at the margin).
_TAG = re.compile(rf"  {_string('k', ': ', True, True)}{_string('v', _NL, False, True)}")
_PARAM = re.compile(rf"{_string('k', ': ', True, True)}{_string('v', _NL, False, True)}")
_NUMBER = r'(-?(?:0|[1-9][0-9]*)\.[0-9]+(?:e[-+][0-9]+)?|NaN|Infinity|"-Infinity")'
_INTEGER = r"(0|-?[1-9][0-9]*)"
_SUMMARY = re.compile(
    rf"^  {_string('k', ':', key=True)}\n"
    rf"    value: {_NUMBER}\n    step: {_INTEGER}\n    timestamp: {_INTEGER}\n"
    rf"    min: {_NUMBER}\n    max: {_NUMBER}\n    count: {_INTEGER}\n",
    re.M,
)
_SUMMARY_JSON = '"{}":[{},{},{},{},{}]'.format
_SPECIAL = {"NaN": "NaN", "Infinity": "Infinity", '"-Infinity"': "-Infinity"}


def read_row(run_id: str, raw_meta: bytes, raw_params: bytes | None) -> RunRow | None:
    """The row of a committed run whose documents are in the canonical layout.

    Args:
        run_id: the id of the run directory the documents were read from.
        raw_meta: its ``meta.yaml``.
        raw_params: its ``params.yaml`` (None or empty: no params).

    Returns:
        The row, or None when either document leaves the canonical layout (the caller then
        reads it with the general YAML reader, which names any problem).
    """
    try:
        text = raw_meta.decode()
        params = _params(raw_params.decode() if raw_params else "")
    except UnicodeDecodeError:
        return None
    head = _HEAD.match(text)
    if head is None or head["run_id"] != run_id or params is None:
        return None
    end, uri = _artifact_uri(text, head.end())
    tags = _pairs(_TAG, _TAG_LINES, head["tags"]) if head["tags"] else {}
    source = _source_json(head["source"])
    if head["no_metrics"] is None:
        summaries = _summaries(text, head.end(), end)
    else:
        summaries = ({}, "", None) if end == head.end() else None
    if end < 0 or tags is None or source is None or summaries is None:
        return None
    metrics, details, nan_metrics = summaries
    return RunRow(
        run_id,
        head["experiment_id"],
        head["run_name"],
        head["user"],
        head["status"],
        artifact_uri({"run_id": run_id, "artifact_uri": uri}),
        head["lifecycle"],
        head["parent"],
        f'{{"source":{source},"summaries":{{{details}}}}}',
        nan_metrics,
        None,
        head["start"],
        head["end"],
        metrics,
        params,
        tags,
    )


def _artifact_uri(text: str, start: int) -> tuple[int, str | None]:
    """(where the metric summaries end, the ``artifact_uri`` line's value) of the document
    whose summaries begin at ``start``; the end is -1 when its last line is of another kind.
    """
    last = text.rfind("\n", start, len(text) - 1) + 1 or start
    if last == len(text) or text[last] == " ":
        return len(text), None
    line = _ARTIFACT_URI.fullmatch(text, last)
    return (last, line["artifact_uri"]) if line is not None else (-1, None)


# The tag and param lines seen, parsed: most repeat from run to run.
_TAG_LINES: dict[str, tuple[str, str]] = {}
_PARAM_LINES: dict[str, tuple[str, str]] = {}
_LINES_KEPT = 100_000


def _pairs(
    pattern: re.Pattern[str], known: dict[str, tuple[str, str]], block: str
) -> dict[str, str] | None:
    """The ``key: value`` lines of a block (each ending with a line break), or None when a
    line is of another shape or a key repeats."""
    lines = block.split("\n")
    lines.pop()
    try:
        pairs = dict(map(known.__getitem__, lines))
    except KeyError:
        if len(known) > _LINES_KEPT:
            known.clear()
        for line in lines:
            if line not in known:
                found = pattern.fullmatch(line + "\n")
                # libyaml reads a key of at most 1,024 characters (with its quotes)
                if found is None or found.end("k") - found.start() > 1000:
                    return None
                known[line] = (_unescaped(found["k"]), _unescaped(found["v"]))
        pairs = dict(map(known.__getitem__, lines))
    return pairs if len(pairs) == len(lines) else None


def _unescaped(text: str) -> str:
    return json.loads(f'"{text}"') if "\\" in text else text


def _params(text: str) -> dict[str, str] | None:
    if not text or text == "{}\n":
        return {}
    if not text.endswith("\n"):
        return None
    return _pairs(_PARAM, _PARAM_LINES, text)


def _summaries(text: str, start: int, end: int) -> tuple[dict[str, float], str, str | None] | None:
    """(latest values, the summaries part of ``_details``, ``_nan_metrics``) of the metric
    summaries in ``text[start:end]``; None when one is of another shape or a key repeats."""
    found = _SUMMARY.findall(text, start, end)
    if not found or len(found) * 7 != text.count("\n", start, end):
        return None
    _, keys, value_texts, steps, stamps, lows, highs, counts = zip(*found)
    try:
        values = list(map(float, value_texts))
    except ValueError:  # "-Infinity"
        values = None
    if (
        values is None
        or list(map(repr, values)) != list(value_texts)  # NaN, infinities, another spelling
        or not _canonical(lows, value_texts)
        or not _canonical(highs, value_texts)
        or not "".join(keys).isascii()
    ):
        return _summaries_one_by_one(found)
    # One key object per name, so that ``run_rows._key_columns`` groups runs cheaply.
    metrics = dict(zip(map(sys.intern, keys), values))
    if len(metrics) != len(keys):
        return None
    return metrics, ",".join(map(_SUMMARY_JSON, keys, steps, stamps, lows, highs, counts)), None


def _canonical(texts: tuple[str, ...], value_texts: tuple[str, ...]) -> bool:
    """Whether float texts are spelled as JSON spells their numbers."""
    if texts == value_texts:
        return True
    try:
        return list(map(repr, map(float, texts))) == list(texts)
    except ValueError:
        return False


def _summaries_one_by_one(
    found: list[tuple[str, ...]],
) -> tuple[dict[str, float], str, str | None] | None:
    """``_summaries`` of summaries with NaN or infinite numbers, numbers in another spelling or
    keys outside ASCII."""
    values: dict[str, float] = {}
    parts = []
    nan_keys = []
    for _, key, value, step, timestamp, low, high, count in found:
        value_json = _number_json(value)
        number = float(value_json)
        if number != number:
            nan_keys.append(key)
        values[key] = number
        key_json = json.dumps(key)
        parts.append(
            f"{key_json}:[{step},{timestamp},{_number_json(low)},{_number_json(high)},{count}]"
        )
    if len(values) != len(found):
        return None
    return values, ",".join(parts), json.dumps(nan_keys) if nan_keys else None


def _number_json(text: str) -> str:
    """A summary number (a float or one of the strings for NaN and the infinities) as JSON."""
    special = _SPECIAL.get(text)
    return special if special is not None else repr(float(text))


@functools.lru_cache(maxsize=4096)
def _source_json(block: str | None) -> str | None:
    """The ``source`` part of ``_details`` (cached: runs of one commit share their source);
    None when the block is not a mapping that JSON can hold."""
    if not block:
        return "{}"
    try:
        source = load_yaml_fast(f"source:\n{block}".encode(), "meta.yaml")["source"]
        if not isinstance(source, dict):
            return None
        return json.dumps(source, separators=(",", ":"))
    except (CorruptDataError, TypeError, ValueError):
        return None
