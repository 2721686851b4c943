"""Build tracking branches as a hostile or careless pull could leave them, with git plumbing.

git's default fetch does not check the objects it receives, so a tracking branch can hold any
tree: entries named ``..`` or ``.git``, a name with a slash in it, a file where a directory
belongs. These helpers write such objects with ``git hash-object --literally`` and move the
branch with ``commit-tree`` and ``update-ref``, as a fetched branch would arrive.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import git

TREE = "40000"
BLOB = "100644"
Entry = tuple[str, bytes, str]  # (mode, name, object id)


def blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", input=data).strip()


def raw_tree(repo: Path, entries: list[Entry]) -> str:
    """A tree object holding exactly ``entries``, whatever their names, in git's order."""
    ordered = sorted(entries, key=lambda e: e[1] + b"/" if e[0] == TREE else e[1])
    body = b"".join(
        f"{mode} ".encode() + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in ordered
    )
    return git(
        repo, "hash-object", "-w", "-t", "tree", "--literally", "--stdin", input=body
    ).strip()


def tree_entries(repo: Path, tree: str) -> list[Entry]:
    out = []
    for record in git(repo, "ls-tree", "-z", tree).split("\0"):
        if record:
            info, name = record.split("\t", 1)
            mode, _kind, sha = info.split()
            out.append((mode.lstrip("0") if mode == "040000" else mode, name.encode(), sha))
    return out


def _replace(repo: Path, tree: str | None, parts: list[str], value: tuple[str, str] | None) -> str:
    entries = [e for e in tree_entries(repo, tree) if e[1] != parts[0].encode()] if tree else []
    current = {e[1]: e for e in tree_entries(repo, tree)} if tree else {}
    if len(parts) > 1:
        below = current.get(parts[0].encode())
        sub = below[2] if below is not None and below[0] == TREE else None
        entries.append((TREE, parts[0].encode(), _replace(repo, sub, parts[1:], value)))
    elif value is not None:
        entries.append((value[0], parts[0].encode(), value[1]))
    return raw_tree(repo, entries)


def commit_on_branch(
    repo: Path, changes: dict[str, tuple[str, str] | None], branch: str = "gittrack"
) -> str:
    """Commit ``changes`` (path -> (mode, object id), or None to delete) on top of ``branch``."""
    tip = git(repo, "rev-parse", f"refs/heads/{branch}").strip()
    tree = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
    for path, value in changes.items():
        tree = _replace(repo, tree, path.split("/"), value)
    commit = git(repo, "commit-tree", tree, "-p", tip, "-m", "fetched from elsewhere").strip()
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def put_file(repo: Path, path: str, data: bytes) -> str:
    return commit_on_branch(repo, {path: (BLOB, blob(repo, data))})
