"""The layering of docs/design.md is checked by import-linter, not by reading."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def _lint_with_probe(tmp_path: Path, probe: str, line: str) -> subprocess.CompletedProcess[str]:
    """Lint a scratch copy of the package with one more module, ``probe``, holding ``line``."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gittrack", src / "gittrack")
    (src / "gittrack" / probe).write_text(line + "\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return _lint(tmp_path / "pyproject.toml", src)


@pytest.mark.parametrize(
    ("probe", "line", "contract"),
    [
        (
            "cli/layer_probe.py",
            "import gittrack.gitflow.sync",
            "the command line reaches the domains through Client only",
        ),
        (
            "registry/layer_probe.py",
            "import gittrack.fluent",
            "the domains never import fluent, client or the front ends",
        ),
        (
            "query/layer_probe.py",
            "import gittrack.gitflow.commit_runs",
            "the domains import each other in one direction",
        ),
        (
            "registry/layer_probe.py",
            "import gittrack.models.model_format",
            "the domains import each other in one direction",
        ),
        (
            "store/layer_probe.py",
            "import gittrack.tracking.validation",
            "the store imports no domain",
        ),
        (
            "entities_probe.py",
            "import gittrack.entities\nimport gittrack.utils.mlflow_tags",
            None,
        ),
    ],
    ids=[
        "cli-to-domain",
        "domain-to-fluent",
        "query-to-gitflow",
        "registry-to-models",
        "store-to-domain",
        "unrelated-module-is-fine",
    ],
)
def test_a_wrong_import_breaks_the_contract_that_forbids_it(
    tmp_path: Path, probe: str, line: str, contract: str | None
) -> None:
    """Issue 12: each contract is live: one import it forbids, in a scratch copy, fails it;
    the same imports from a module no contract covers pass."""
    result = _lint_with_probe(tmp_path, probe, line)
    if contract is None:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    assert f"gittrack.{probe[:-3].replace('/', '.')}" in result.stdout


def test_errors_importing_anything_of_gittrack_breaks_the_contract(tmp_path: Path) -> None:
    """entities and errors are the bottom of the domain model: even ``utils`` is refused."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "gittrack", src / "gittrack")
    errors = src / "gittrack" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport gittrack.utils.mlflow_tags  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint(tmp_path / "pyproject.toml", src)
    assert result.returncode != 0
    assert "entities and errors import nothing of gittrack BROKEN" in result.stdout
    assert "gittrack.errors -> gittrack.utils.mlflow_tags" in result.stdout
