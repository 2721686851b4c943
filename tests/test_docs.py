"""The design document the code cites exists inside the project, section by section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"DESIGN §(\d+)|§(\d+)")


def _sections() -> set[str]:
    text = (ROOT / "docs" / "design.md").read_text()
    return set(re.findall(r"^#+ §(\d+)\b", text, flags=re.MULTILINE))


def test_every_section_cited_in_the_code_exists_in_docs_design() -> None:
    sections = _sections()
    assert {"1", "4", "7"} <= sections
    missing = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in CITATION.finditer(line):
                cited = match.group(1) or match.group(2)
                if cited not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: §{cited}")
    assert missing == []


def test_the_api_reference_pages_name_modules_that_exist() -> None:
    import importlib

    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        for target in re.findall(r"^::: ([\w.]+)$", page.read_text(), flags=re.MULTILINE):
            module, _, name = target.rpartition(".")
            try:
                importlib.import_module(target)
            except ImportError:
                assert hasattr(importlib.import_module(module), name), (page.name, target)
