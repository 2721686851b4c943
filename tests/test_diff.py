"""``gittrack diff``: the runs of two code commits compared per experiment, on real
repositories (DESIGN §11)."""

from __future__ import annotations

import json
from pathlib import Path

import gittrack as mlflow
from gittrack.cli.main import main
from gittrack.store.branch import Blob
from gittrack.tracking.repository import forget_repositories, open_repository

from .conftest import git, gittrack_cli, run_script, tree_fingerprint


def commit(repo: Path, name: str, text: str = "") -> str:
    (repo / f"{name}.py").write_text(text or f"print({name!r})\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def log_run(
    experiment: str, metrics: dict[str, float], params: dict[str, str] | None = None, **kw
) -> str:
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=kw.pop("run_name", f"{experiment}-run"), **kw) as run:
        mlflow.log_params(params or {})
        mlflow.log_metrics(metrics)
    return run.info.run_id


def two_commits(repo: Path) -> dict[str, str]:
    """BASE and HEAD, each with one run in ``iris`` and one in ``wine``."""
    made = {"base": commit(repo, "model")}
    made["iris_base"] = log_run("iris", {"accuracy": 0.9, "loss": 0.3}, {"trees": "10"})
    made["wine_base"] = log_run("wine", {"accuracy": 0.8, "f1": 0.5}, {"depth": "3"})
    made["head"] = commit(repo, "model", "print('model')\nprint('bigger')\n")
    made["iris_head"] = log_run("iris", {"accuracy": 0.95, "loss": 0.3}, {"trees": "50"})
    made["wine_head"] = log_run("wine", {"accuracy": 0.7, "f1": 0.5}, {"depth": "3"})
    return made


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    forget_repositories()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_markdown_of_two_commits_with_runs_in_two_experiments_is_the_expected_table(
    repo: Path, capsys
) -> None:
    made = two_commits(repo)
    b, h = made["base"][:7], made["head"][:7]

    code, out, _ = cli(capsys, "diff", made["base"], made["head"], "--md")

    assert code == 0
    expected = f"""## gittrack diff {b}...{h}

- BASE {made["base"]} ({b})
- HEAD {made["head"]} ({h})

### iris

Runs: BASE {made["iris_base"][:8]} (iris-run) · HEAD {made["iris_head"][:8]} (iris-run)

| Metric | BASE | HEAD | Change | % |
| --- | ---: | ---: | ---: | ---: |
| accuracy | 0.9 | 0.95 | ↑ +0.05 | +5.56% |

| Param | BASE | HEAD |
| --- | --- | --- |
| trees | 10 | 50 |

Code:

```text
 model.py | 1 +
 1 file changed, 1 insertion(+)
```

### wine

Runs: BASE {made["wine_base"][:8]} (wine-run) · HEAD {made["wine_head"][:8]} (wine-run)

| Metric | BASE | HEAD | Change | % |
| --- | ---: | ---: | ---: | ---: |
| accuracy | 0.8 | 0.7 | ↓ -0.1 | -12.50% |

Code:

```text
 model.py | 1 +
 1 file changed, 1 insertion(+)
```

Budgets: all kept.
"""
    assert out == expected


def test_json_reports_sides_runs_metrics_params_and_code_field_by_field(repo: Path, capsys) -> None:
    made = two_commits(repo)

    code, out, _ = cli(capsys, "diff", made["base"], "HEAD", "--json", "--all")

    assert code == 0
    doc = json.loads(out)
    assert doc["base"] == {
        "rev": made["base"],
        "commit": made["base"],
        "runs_commit": made["base"],
        "distance": 0,
    }
    assert doc["head"]["rev"] == "HEAD" and doc["head"]["commit"] == made["head"]
    assert [e["experiment_name"] for e in doc["experiments"]] == ["iris", "wine"]
    iris = doc["experiments"][0]
    assert iris["base_run"] == {
        "run_id": made["iris_base"],
        "run_name": "iris-run",
        "commit": made["base"],
        "snapshot": None,
    }
    assert iris["head_run"]["run_id"] == made["iris_head"]
    accuracy, loss = iris["metrics"]
    assert accuracy["metric"] == "accuracy"
    assert (accuracy["base"], accuracy["head"]) == (0.9, 0.95)
    assert abs(accuracy["change"] - 0.05) < 1e-12 and abs(accuracy["percent"] - 5.5556) < 1e-3
    assert (accuracy["direction"], accuracy["goal"], accuracy["verdict"]) == ("up", None, None)
    assert accuracy["broken"] == []
    assert (loss["direction"], loss["change"], loss["percent"]) == ("same", 0.0, 0.0)
    assert iris["params"] == [{"param": "trees", "base": "10", "head": "50"}]
    assert iris["diffstat"] == git(repo, "diff", "--stat", made["base"], made["head"]).rstrip()
    assert doc["budgets_broken"] == []


def test_the_code_diffstat_is_gits_own_between_the_two_runs_commits(repo: Path, capsys) -> None:
    made = two_commits(repo)

    _, out, _ = cli(capsys, "diff", made["base"], made["head"], "--json")

    real = git(repo, "diff", "--stat", "--no-color", made["base"], made["head"], "--")
    assert {e["diffstat"] for e in json.loads(out)["experiments"]} == {real.rstrip("\n")}


def test_a_dirty_run_is_compared_by_its_snapshot_so_uncommitted_code_shows(
    repo: Path, capsys
) -> None:
    base = commit(repo, "model")
    log_run("iris", {"accuracy": 0.9})
    commit(repo, "more")
    (repo / "model.py").write_text("print('uncommitted change')\nprint('more')\n")
    head_run = log_run("iris", {"accuracy": 0.91})
    snapshot = mlflow.get_run(head_run).source.snapshot
    assert snapshot is not None
    before = tree_fingerprint(repo)

    _, out, _ = cli(capsys, "diff", base, "HEAD", "--json", "--select", "latest")

    iris = json.loads(out)["experiments"][0]
    assert iris["head_run"]["snapshot"] == snapshot
    assert iris["diffstat"] == git(repo, "diff", "--stat", base, snapshot).rstrip()
    assert "model.py | 3 ++-" in iris["diffstat"]
    assert tree_fingerprint(repo) == before


def test_diff_leaves_the_users_tree_index_head_and_branch_untouched(repo: Path, capsys) -> None:
    made = two_commits(repo)
    (repo / "scratch.txt").write_text("user's uncommitted work\n")
    git(repo, "add", "scratch.txt")
    before = tree_fingerprint(repo)

    for fmt in ("--md", "--json"):
        assert cli(capsys, "diff", made["base"], fmt)[0] == 0

    assert tree_fingerprint(repo) == before


def test_default_base_is_the_merge_base_with_main_like_git_diff_three_dots(
    repo: Path, capsys
) -> None:
    made = two_commits(repo)
    git(repo, "checkout", "-q", "-b", "feature", made["base"])
    commit(repo, "feature")
    log_run("iris", {"accuracy": 0.99})
    commit(repo, "later_on_main_is_not_the_base")  # on feature: moves HEAD only

    code, out, _ = cli(capsys, "diff", "--json", "--nearest")

    doc = json.loads(out)
    merge_base = git(repo, "merge-base", "main", "HEAD").strip()
    assert code == 0 and doc["base"]["rev"] == "main...HEAD"
    assert doc["base"]["commit"] == merge_base == made["base"]
    assert doc["head"]["distance"] == 1  # HEAD has no runs: its parent's stand for it


def test_nearest_walks_first_parents_to_an_ancestor_three_commits_back(repo: Path, capsys) -> None:
    made = two_commits(repo)
    for name in ("a", "b", "c"):
        commit(repo, name)
    git(repo, "checkout", "-q", "-b", "side", "HEAD~1")
    commit(repo, "side")
    log_run("iris", {"accuracy": 0.5})  # a run on a second parent must not be taken
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")

    code, out, _ = cli(capsys, "diff", made["base"], "HEAD~1", "--nearest", "--md")

    assert code == 0
    short = git(repo, "rev-parse", "--short=7", "HEAD~1").strip()
    assert f"HEAD\\~1 ({short}): no runs, " in out  # ``~`` escaped: GitHub strikes ~text~
    assert f"using {made['head'][:7]}, 3 commits back (first parent)" in out
    _, doc, _ = cli(capsys, "diff", made["base"], "HEAD", "--nearest", "--json")
    head = json.loads(doc)["head"]
    assert (head["runs_commit"], head["distance"]) == (made["head"], 4)


def test_a_side_without_runs_is_a_one_line_error_that_suggests_nearest(repo: Path, capsys) -> None:
    made = two_commits(repo)
    commit(repo, "no_runs")
    before = tree_fingerprint(repo)

    code, out, err = cli(capsys, "diff", made["base"], "HEAD")

    assert code == 3 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "HEAD (" in err and "has no finished runs" in err and "--nearest" in err
    assert tree_fingerprint(repo) == before


def test_runs_without_a_source_commit_are_named_when_a_commit_has_none(
    repo: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITTRACK_SOURCE_CAPTURE", "none")
    log_run("iris", {"accuracy": 0.9})

    code, _, err = cli(capsys, "diff", "HEAD", "HEAD")

    assert code == 3 and len(err.strip().splitlines()) == 1
    assert "1 runs record no source commit" in err


def test_unknown_revisions_experiments_and_options_are_one_line_errors(repo: Path, capsys) -> None:
    made = two_commits(repo)
    before = git(repo, "for-each-ref")
    for args, named in (
        (["no-such-rev", "HEAD"], "'no-such-rev'"),
        ([made["base"], "nope"], "'nope'"),
        ([made["base"], "--experiment", "missing"], "'missing'"),
        ([made["base"], "--select", "best"], "'best'"),
        ([made["base"], "--select", "best:metrics.accuracy"], "--goal"),
        ([made["base"], "--budgets", "/no/such/file.yaml"], "/no/such/file.yaml"),
    ):
        code, out, err = cli(capsys, "diff", *args)
        assert code != 0 and out == "", args
        assert named in err and len(err.strip().splitlines()) == 1, err
    assert git(repo, "for-each-ref") == before


def test_the_command_line_prints_one_line_and_no_traceback_for_an_unknown_revision(
    repo: Path,
) -> None:
    proc = gittrack_cli(repo, "diff", "no-such-rev", "HEAD", "--md")

    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith("gittrack: error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_select_best_takes_the_best_run_toward_the_goal_and_latest_is_the_default(
    repo: Path, capsys
) -> None:
    base = commit(repo, "model")
    log_run("iris", {"accuracy": 0.5})
    commit(repo, "more")
    best = log_run("iris", {"accuracy": 0.9, "loss": 0.4}, run_name="best")
    worst = log_run("iris", {"accuracy": 0.6, "loss": 0.1}, run_name="latest")

    def head_run(*options: str) -> str:
        _, out, _ = cli(capsys, "diff", base, "HEAD", "--json", *options)
        return json.loads(out)["experiments"][0]["head_run"]["run_id"]

    assert head_run() == worst
    assert head_run("--select", "best:metrics.accuracy", "--goal", "maximize") == best
    assert head_run("--select", "best:metrics.loss", "--goal", "minimize") == worst


def test_deleted_running_and_child_runs_do_not_stand_for_a_commit(repo: Path, capsys) -> None:
    base = commit(repo, "model")
    kept = log_run("iris", {"accuracy": 0.5})
    deleted = log_run("iris", {"accuracy": 0.1})
    mlflow.delete_run(deleted)
    with mlflow.start_run(run_id=kept):
        with mlflow.start_run(nested=True, run_name="child"):
            mlflow.log_metric("accuracy", 0.0)

    _, out, _ = cli(capsys, "diff", base, base, "--json", "--all")
    _, nested, _ = cli(capsys, "diff", base, base, "--json", "--include-nested")

    iris = json.loads(out)["experiments"][0]
    assert iris["head_run"]["run_id"] == kept
    assert json.loads(nested)["experiments"][0]["head_run"]["run_name"] == "child"


def test_metric_globs_pick_rows_and_all_keeps_unchanged_ones(repo: Path, capsys) -> None:
    made = two_commits(repo)

    _, some, _ = cli(capsys, "diff", made["base"], "HEAD", "--json", "--metrics", "f*", "--all")
    _, changed, _ = cli(capsys, "diff", made["base"], "HEAD", "--json", "--metrics", "*")

    metrics = {e["experiment_name"]: e["metrics"] for e in json.loads(some)["experiments"]}
    assert [m["metric"] for m in metrics["wine"]] == ["f1"] and metrics["iris"] == []
    shown = {e["experiment_name"]: e["metrics"] for e in json.loads(changed)["experiments"]}
    assert [m["metric"] for m in shown["iris"]] == ["accuracy"]  # loss did not change


def test_experiment_option_limits_the_diff_to_named_experiments(repo: Path, capsys) -> None:
    made = two_commits(repo)

    _, out, _ = cli(capsys, "diff", made["base"], "--json", "-e", "wine")

    assert [e["experiment_name"] for e in json.loads(out)["experiments"]] == ["wine"]


def test_markdown_escapes_table_characters_in_names_and_values(repo: Path, capsys) -> None:
    base = commit(repo, "model")
    log_run("a|b", {"acc": 0.5}, {"p": "x|y"}, run_name="r`1")
    commit(repo, "more")
    log_run("a|b", {"acc": 0.6}, {"p": "<b>z</b>"}, run_name="r`1")

    _, out, _ = cli(capsys, "diff", base, "HEAD", "--md")

    assert "### a\\|b" in out and "| p | x\\|y | \\<b\\>z\\</b\\> |" in out
    assert "(r\\`1)" in out
    for line in out.splitlines():
        if line.startswith("| "):
            assert line.count(" | ") - line.count("\\| ") in (2, 4), line


def test_terminal_table_is_the_default_format(repo: Path, capsys) -> None:
    made = two_commits(repo)

    code, out, _ = cli(capsys, "diff", made["base"])

    assert code == 0
    assert "== iris" in out and "accuracy  0.9   0.95  ↑ +0.05  +5.56%" in out
    assert out.rstrip().endswith("budgets: all kept")


def test_diff_reads_the_saved_index_without_importing_pandas(repo: Path, capsys) -> None:
    made = two_commits(repo)
    assert cli(capsys, "runs", "list")[0] == 0  # any query saves the index

    proc = run_script(
        "import io, sys, contextlib\n"
        "from gittrack.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main(['diff', '{made['base']}', 'HEAD', '--md'])\n"
        "print(code, 'pandas' in sys.modules, '| accuracy | 0.9 | 0.95 |' in out.getvalue())\n",
        repo,
    )

    assert proc.stdout.split() == ["0", "False", "True"], proc.stderr


def test_an_unreadable_experiment_file_is_reported_and_its_runs_still_compared(
    repo: Path, capsys
) -> None:
    made = two_commits(repo)
    wine = mlflow.get_experiment_by_name("wine").experiment_id
    forget_repositories()
    path = f".tracking/experiments/{wine}.yaml"
    open_repository().branch.commit(lambda snap: {path: Blob(b"name: [unclosed\n")}, "break")

    code, out, err = cli(capsys, "diff", made["base"], "--json")

    assert code == 0
    names = [e["experiment_name"] for e in json.loads(out)["experiments"]]
    assert sorted(names) == sorted(["iris", wine])
    assert "skipped" in err and path in err


def test_markdown_renders_names_with_emphasis_strikethrough_and_entities_literally(
    repo: Path, capsys
) -> None:
    markdown_it = __import__("pytest").importorskip("markdown_it")
    name, run_name = "__main__ ~~v1~~ &amp;", "_r_ &#124;"
    base = commit(repo, "model")
    log_run(name, {"acc": 0.5}, {"p": "~~x~~"}, run_name=run_name)
    commit(repo, "more")
    log_run(name, {"acc": 0.6}, {"p": "__y__"}, run_name=run_name)

    _, out, _ = cli(capsys, "diff", base, "HEAD", "--md")
    html = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(out)

    assert not any(tag in html for tag in ("<strong>", "<em>", "<s>", "<del>")), html
    assert "__main__ ~~v1~~ &amp;amp;" in html and "_r_ &amp;#124;" in html
    assert "<td>~~x~~</td>" in html and "<td>__y__</td>" in html


def test_a_recorded_snapshot_that_looks_like_an_option_is_not_passed_to_git(
    repo: Path, tmp_path: Path
) -> None:
    import dataclasses

    from gittrack.gitflow.commit_diff import code_diffstat

    made = two_commits(repo)
    before = tree_fingerprint(repo)
    written = tmp_path / "written-by-git"
    runs = [mlflow.get_run(made["iris_base"]), mlflow.get_run(made["iris_head"])]
    crafted = dataclasses.replace(
        runs[1], source=dataclasses.replace(runs[1].source, snapshot=f"--output={written}")
    )

    stat = code_diffstat(open_repository(str(repo)), runs[0], crafted)

    assert not written.exists()
    assert stat.startswith("(code not available here: ") and "--output=" in stat
    assert tree_fingerprint(repo) == before
