"""The registry's mutable metadata on the tracking branch (DESIGN §2).

``models/<name>/model.yaml`` holds a registered model's description and tags;
``models/<name>/versions/<N>.yaml`` one version's source, run, description and tags. What a
version *is* (its number, its commit, its stage and aliases) lives in the tags; these files hold
what can be edited afterwards. Every document is validated against its schema on the way out
and on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gittrack.errors import CorruptDataError
from gittrack.store import layout
from gittrack.store.bounded_cache import BoundedCache
from gittrack.store.branch import BranchSnapshot
from gittrack.store.codecs import dump_yaml
from gittrack.store.fast_yaml import load_yaml_fast
from gittrack.store.files import replace_file
from gittrack.store.schemas import check_outgoing, check_stored

MODEL_FILE = "model.yaml"
VERSIONS_DIR = "versions"


def model_path(name: str) -> str:
    return f"{layout.model_dir(name)}/{MODEL_FILE}"


def versions_path(name: str) -> str:
    return f"{layout.model_dir(name)}/{VERSIONS_DIR}"


def version_path(name: str, number: int) -> str:
    return f"{versions_path(name)}/{number}.yaml"


def read_model(snap: BranchSnapshot, name: str) -> dict[str, Any] | None:
    """``model.yaml`` of ``name`` at ``snap``, or None when there is none."""
    return _read_doc(snap, model_path(name))


def read_version(snap: BranchSnapshot, name: str, number: int) -> dict[str, Any] | None:
    """``versions/<N>.yaml`` of ``name`` at ``snap``, or None when there is none."""
    return _read_doc(snap, version_path(name, number))


# (repository, blob id) -> the blob: a registry write reads its model's ``model.yaml``, which
# rarely changes, and a blob id names its content, so no entry goes stale.
_blobs: BoundedCache[tuple[str, str], bytes] = BoundedCache(4 << 20, weigh=len)


def _read_doc(snap: BranchSnapshot, path: str) -> dict[str, Any] | None:
    found = snap.entry(path)
    if found is None or found.is_tree:
        return None
    key = (str(snap.repo.common_dir), found.sha)
    raw = _blobs.get(key)
    if raw is None:
        raw = snap.repo.read_blob(found.sha)
        _blobs.put(key, raw)
    return decode(raw, path)  # parsed again: the caller may change the document


def decode(raw: bytes, where: str) -> dict[str, Any]:
    """Parse and validate a ``model.yaml`` or ``versions/<N>.yaml`` read from ``where``."""
    doc = load_yaml_fast(raw, where)
    kind = "registered_model" if where.endswith(f"/{MODEL_FILE}") else "model_version"
    check_stored(doc, kind, where)
    return doc


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def version_numbers(snap: BranchSnapshot, name: str) -> list[int]:
    """Numbers of the version files of ``name`` (registered or only reserved)."""
    numbers = []
    for entry in snap.listdir(versions_path(name)):
        stem, dot, suffix = entry.name.partition(".")
        # ASCII digits of a 64-bit number only: a fetched tree may name a file '².yaml'
        # or one of 5000 digits, which int() refuses.
        if dot and suffix == "yaml" and _is_number(stem) and not entry.is_tree:
            numbers.append(int(stem))
    return sorted(numbers)


# (repository, versions tree id) -> the highest number it holds a version file for.
_highest: BoundedCache[tuple[str, str], int] = BoundedCache(4096)


def highest_version_number(snap: BranchSnapshot, name: str) -> int:
    """The highest number among the version files of ``name`` at ``snap`` (0 without one).

    Kept per versions tree: a tree is read once, and one written by a registration is not
    read at all (``remember_version_file``), so a model with thousands of versions does not
    cost a walk of its versions tree per registration.
    """
    found = snap.entry(versions_path(name))
    if found is None or not found.is_tree:
        return 0
    key = (str(snap.repo.common_dir), found.sha)
    known = _highest.get(key)
    if known is None:
        known = max(version_numbers(snap, name), default=0)
        _highest.put(key, known)
    return known


def remember_version_file(
    before: BranchSnapshot, after: BranchSnapshot, name: str, number: int
) -> None:
    """Note the highest version number at ``after``, a commit whose versions tree of
    ``name`` is the one at ``before`` with the file of version ``number`` added."""
    found = after.entry(versions_path(name))
    if found is not None and found.is_tree:
        highest = max(highest_version_number(before, name), number)
        _highest.put((str(after.repo.common_dir), found.sha), highest)


def blob_index(snap: BranchSnapshot) -> dict[str, str]:
    """Path -> blob id of every registry metadata file at ``snap``.

    The trees are read level by level, each level in one batch, so a registry of any size
    costs a few round trips to git.
    """
    root = snap.entry(layout.MODELS_DIR)
    if root is None or not root.is_tree:
        return {}
    index: dict[str, str] = {}
    level = [(layout.MODELS_DIR, root.sha)]
    while level:
        trees = snap.repo.read_trees([sha for _path, sha in level])
        below = []
        for (path, _sha), entries in zip(level, trees):
            for entry in entries:
                child = f"{path}/{entry.name}"
                if entry.is_tree:
                    below.append((child, entry.sha))
                else:
                    index[child] = entry.sha
        level = below
    return index


def model_names_in(index: dict[str, str]) -> list[str]:
    """Every model with a ``model.yaml`` in a :func:`blob_index`."""
    prefix, suffix = f"{layout.MODELS_DIR}/", f"/{MODEL_FILE}"
    return sorted(
        p[len(prefix) : -len(suffix)] for p in index if p.startswith(prefix) and p.endswith(suffix)
    )


def read_many(
    snap: BranchSnapshot,
    index: dict[str, str],
    paths: list[str],
    cache: DocCache | None = None,
    unreadable: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The documents at ``paths`` (None where there is none), read in one batch.

    Documents already in ``cache`` (by blob id) are neither read nor parsed again. With
    ``unreadable``, a document that cannot be read is left out (None) and its path mapped there
    to the reason, so one corrupt file does not stop a listing; without it, it raises.
    """
    docs: dict[str, Any] = dict.fromkeys(paths)
    missing = []
    for path in paths:
        sha = index.get(path)
        if sha is None:
            continue
        known = cache.get(sha) if cache is not None else None
        if known is None:
            missing.append(path)
        else:
            docs[path] = known
    bodies = snap.repo.read_objects([index[p] for p in missing]) if missing else []
    for path, (_kind, body) in zip(missing, bodies):
        try:
            docs[path] = decode(body, path)
        except CorruptDataError as exc:
            if unreadable is None:
                raise
            unreadable[path] = exc.message
            continue
        if cache is not None:
            cache.put(index[path], docs[path])
    return docs


class DocCache:
    """Parsed, validated metadata documents by blob id, kept in ``$GIT_DIR/gittrack/cache``.

    A blob id names its content, so an entry never goes stale; entries of files no longer on
    the branch are dropped when the cache is saved. Deleting the file loses nothing. An
    instance lives for one batch read: the documents it hands out are the caller's.
    """

    FORMAT = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._docs: dict[str, Any] | None = None
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        if self._docs is None:
            try:
                document = json.loads(self.path.read_bytes())
            except (FileNotFoundError, ValueError):
                document = {}
            ok = isinstance(document, dict) and document.get("format") == self.FORMAT
            self._docs = dict(document.get("docs") or {}) if ok else {}
        return self._docs

    def get(self, sha: str) -> Any:
        return self._load().get(sha)

    def put(self, sha: str, doc: Any) -> None:
        self._load()[sha] = doc
        self._dirty = True

    def save(self, keep: Iterable[str]) -> None:
        """Write the cache if it changed, keeping only the entries of the blobs in ``keep``."""
        if not self._dirty:
            return
        wanted = set(keep)
        docs = {sha: doc for sha, doc in self._load().items() if sha in wanted}
        replace_file(self.path, json.dumps({"format": self.FORMAT, "docs": docs}).encode())
        self._dirty = False


def encode_model(doc: dict[str, Any]) -> bytes:
    check_outgoing(doc, "registered_model", model_path(doc["name"]))
    return dump_yaml(doc)


def encode_version(doc: dict[str, Any]) -> bytes:
    check_outgoing(doc, "model_version", version_path(doc["name"], doc["version"]))
    return dump_yaml(doc)
