"""The layering of docs/design.md is checked by import-linter, not by reading."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path, src: Path = ROOT / "src") -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_imports_point_downwards_only() -> None:
    result = _lint(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract is live: the store reaching up to the client is reported."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gittrack", src / "gittrack")
    (src / "gittrack" / "store" / "layer_probe.py").write_text("import gittrack.client\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint(tmp_path / "pyproject.toml", src)
    assert result.returncode != 0
    assert "gittrack.store is not allowed to import gittrack.client" in result.stdout


def test_the_web_ui_importing_a_domain_breaks_the_contract(tmp_path: Path) -> None:
    """Issue 12: the UI reaches the domains only through Client."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gittrack", src / "gittrack")
    (src / "gittrack" / "ui" / "layer_probe.py").write_text("import gittrack.query.search\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint(tmp_path / "pyproject.toml", src)
    assert result.returncode != 0
    assert "the web UI reads through Client only BROKEN" in result.stdout
    assert "gittrack.ui.layer_probe" in result.stdout
