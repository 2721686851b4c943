"""Git and GTO read the registry's tags the way gittrack does.

The tags are made with plain ``git tag -a`` in a fresh repository, read back with
``git for-each-ref`` and compared with what the ``gto`` command line prints there. GTO needs
nothing but the tags: no ``.gto`` config and no ``artifacts.yaml``. Without a ``.gto`` file it
lists every label used in the tags (stages and aliases alike); with ``stages:`` set there, its
registry overview would show only those columns.

Where the two models differ, the comparison says how they map:

* GTO lets a version hold several stages at once until each is unassigned; gittrack's stage of
  a version is the most recently given of those (compared with ``gto show MODEL --vs -1``);
* an alias in gittrack is held by the version that got it last, which is what GTO's overview
  (``gto show``, one version per label) reports for that label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gittrack.registry.state import (
    EventKind,
    RegistryState,
    TagRecord,
    build_registry_state,
    format_registration_message,
    model_history,
    next_assignment_counter,
)
from gittrack.registry.tag_names import (
    deprecation_tag,
    deregistration_tag,
    parse_tag,
    stage_tag,
    unassignment_tag,
    version_tag,
)

from .registry_support import FOR_EACH_REF_FORMAT, for_each_ref_listing

START = 1_714_564_800  # 2024-05-01T12:00:00Z; every tag gets its own second after it.

GTO_EVENTS = {
    EventKind.REGISTERED: "registration",
    EventKind.DEREGISTERED: "deregistration",
    EventKind.STAGE: "assignment",
    EventKind.ALIAS: "assignment",
    EventKind.UNASSIGNED: "unassignment",
    EventKind.DEPRECATED: "deprecation",
}


@dataclass
class Repo:
    path: Path
    env: dict[str, str]
    clock: int = START

    def git(self, *args: str, stdin: str | None = None, **env: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def commit(self, message: str) -> str:
        # Commits predate the tags: GTO counts a version's commit date among the model's
        # events, so a commit dated after a deprecation tag would make the model active again.
        date = f"{START - 3600} +0000"
        self.git(
            "commit", "--allow-empty", "-q", "-m", message,
            GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date,
        )  # fmt: skip
        return self.git("rev-parse", "HEAD").strip()

    def tag(self, name: str, commit: str, who: str = "Ann", message: str = "") -> None:
        """An annotated tag by ``who``, one second after the previous one."""
        self.clock += 1
        self.git(
            "tag", "-a", "--cleanup=verbatim", "-F", "-", name, commit,
            stdin=message or f"{name}\n",
            GIT_COMMITTER_NAME=who,
            GIT_COMMITTER_EMAIL=f"{who.lower()}@example.org",
            GIT_COMMITTER_DATE=f"{self.clock} +0000",
        )  # fmt: skip

    def tag_records(self) -> list[TagRecord]:
        output = self.git("for-each-ref", "refs/tags", f"--format={FOR_EACH_REF_FORMAT}")
        return list(for_each_ref_listing(output).records)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    repo = Repo(tmp_path / "repo", env)
    repo.path.mkdir()
    repo.git("init", "-q")
    repo.git("config", "user.name", "Ann")
    repo.git("config", "user.email", "ann@example.org")
    return repo


def gto_json(repo: Repo, *args: str) -> Any:
    try:
        import gto  # noqa: F401
    except ImportError as error:
        pytest.skip(f"gto is not installed: {error}")
    command = [sys.executable, "-c", "import sys; from gto.cli import app; sys.exit(app())"]
    try:
        result = subprocess.run(
            [*command, *args, "--json"],
            cwd=repo.path,
            env={**repo.env, "GTO_EMOJIS": "false"},
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as error:
        pytest.skip(f"gto is not installed: cannot run it ({error})")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def registry(repo: Repo) -> Repo:
    """Three live models and a deprecated one over two commits, tagged the gittrack way."""
    a = repo.commit("train: first model")
    b = repo.commit("train: second model")
    counter = {"churn": 0, "fraud": 0, "nlp/models:bert": 0, "old": 0}

    def assign(
        model: str, label: str, commit: str, who: str = "Ann", unassign: bool = False
    ) -> None:
        counter[model] += 1
        make = unassignment_tag if unassign else stage_tag
        repo.tag(make(model, label, counter[model]), commit, who, f"{label} by {who}\n")

    registration = format_registration_message(
        source="runs:/0123/model", run_id="0123", user="ann", description="baseline"
    )
    repo.tag(version_tag("churn", 1), a, message=registration)
    repo.tag(version_tag("fraud", 1), a)
    repo.tag(version_tag("nlp/models:bert", 1), a)
    repo.tag(version_tag("old", 1), a)
    assign("churn", "Staging", a)
    assign("churn", "champion", a)
    assign("churn", "Production", a, who="Bob")
    assign("fraud", "Staging", a)
    assign("fraud", "Production", a, who="Bob")
    assign("nlp/models:bert", "Staging", a)
    repo.tag(version_tag("churn", 2), b, who="Cy")
    repo.tag(version_tag("fraud", 2), b, who="Cy")
    assign("churn", "Staging", b)
    assign("churn", "champion", b, who="Bob")
    assign("fraud", "Staging", b)
    assign("fraud", "Production", a, who="Bob", unassign=True)
    repo.tag(deregistration_tag("fraud", 2), b, who="Bob")
    repo.tag(deprecation_tag("old"), a, who="Cy")
    repo.git("tag", "churn#Archived#99", a)  # lightweight: neither reader counts it
    repo.git("tag", "-a", "-m", "not ours", "release-2024", b)
    return repo


def test_gittrack_reads_back_the_tags_it_names(registry: Repo) -> None:
    state = build_registry_state(registry.tag_records())
    churn, fraud = state.model("churn"), state.model("fraud")

    assert sorted(state.models) == ["churn", "fraud", "nlp/models:bert", "old"]
    assert {n: v.stage for n, v in churn.versions.items()} == {1: "Production", 2: "Staging"}
    assert churn.aliases == {"champion": 2}
    assert {n: v.stage for n, v in fraud.versions.items()} == {1: "Staging", 2: None}
    assert fraud.version(2).deregistered
    assert state.model("old").deprecated
    assert churn.version(1).registration_info().run_id == "0123"
    assert churn.version(2).who == "Cy"
    assert next_assignment_counter(registry.tag_records(), "churn") == 100


def test_gto_lists_the_same_models_latest_versions_and_aliases(registry: Repo) -> None:
    state = build_registry_state(registry.tag_records())

    overview = gto_json(registry, "show")
    with_deprecated = gto_json(registry, "show", "--deprecated")

    assert sorted(overview) == [m.name for m in state.active_models()]
    assert {name: not shown["active"] for name, shown in with_deprecated.items()} == {
        name: model.deprecated for name, model in state.models.items()
    }
    for name, shown in overview.items():
        model = state.model(name)
        latest = model.latest_version()
        assert shown["version"] == (latest.semver if latest else None), name
        for alias, number in model.aliases.items():
            assert shown["stage"][alias] == model.version(number).semver, (name, alias)


def test_gto_shows_the_same_versions_and_stages_per_model(registry: Repo) -> None:
    state = build_registry_state(registry.tag_records())

    for model in state.active_models():
        shown = gto_json(registry, "show", model.name, "--vs", "-1")
        shown_all = gto_json(registry, "show", model.name, "--vs", "-1", "--deprecated")

        assert {v["version"]: gto_stage(v, state) for v in shown} == {
            v.semver: v.stage for v in model.active_versions()
        }, model.name
        assert {v["version"]: not v["is_active"] for v in shown_all} == {
            v.semver: v.deregistered for v in model.versions.values()
        }, model.name
        assert {v["version"]: v["commit_hexsha"] for v in shown_all} == {
            v.semver: v.commit for v in model.versions.values()
        }, model.name


def gto_stage(shown_version: dict[str, Any], state: RegistryState) -> str | None:
    """The stage gittrack derives from GTO's view: the most recently given active stage."""
    stages = [s for s in shown_version["stages"] if s["stage"] in state.stages]
    latest = max(stages, key=lambda s: s["activated_at"], default=None)
    return latest["stage"] if latest else None


@pytest.mark.parametrize("model", ["churn", "fraud", "nlp/models:bert", "old"])
def test_gto_history_lists_the_same_events_in_the_same_order(registry: Repo, model: str) -> None:
    history = model_history(registry.tag_records(), model)

    shown = gto_json(registry, "history", model, "--ascending")

    assert [
        (e["event"], e["version"], e["stage"], e["ref"], e["author"], e["commit"]) for e in shown
    ] == [
        (
            GTO_EVENTS[e.kind],
            f"v{e.version}.0.0" if e.version else None,
            e.label,
            e.tag,
            e.who,
            e.commit,
        )
        for e in history
    ]


@pytest.mark.parametrize(
    "model", ["a", "churn", "Team/Churn_v2", "nlp/models:bert", "a.b/c_d-e:m", "x/:m"]
)
def test_git_accepts_every_tag_name_gittrack_builds(repo: Repo, model: str) -> None:
    names = [
        version_tag(model, 12),
        deregistration_tag(model, 12),
        stage_tag(model, "eu/Production", 3),
        unassignment_tag(model, "champion", 4),
        deprecation_tag(model),
        deprecation_tag(model, 5),
    ]

    for name in names:
        repo.git("check-ref-format", f"refs/tags/{name}")
        parsed = parse_tag(name)
        assert parsed is not None and parsed.model == model
