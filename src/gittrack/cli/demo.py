"""``gittrack demo``: track real scikit-learn runs into a fresh repository and show them.

It makes a new git repository, commits a tiny training script there, trains a few models on
scikit-learn's bundled iris and wine data sets with tracked runs, then prints a search table
and where the runs live on the tracking branch.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gittrack.errors import InvalidInputError, RepositoryError
from gittrack.store import layout
from gittrack.store.git_process import run_git

TRAIN_SCRIPT = '''"""Demo training script committed so that every run records the code it ran on."""
'''


def _fresh_folder(base: Path | None) -> Path:
    if base is not None:
        if base.exists() and any(base.iterdir()):
            raise InvalidInputError(f"demo folder {str(base)!r} exists and is not empty")
        return base
    for n in range(1, 1000):
        candidate = Path.cwd() / ("gittrack-demo" if n == 1 else f"gittrack-demo-{n}")
        if not candidate.exists():
            return candidate
    raise InvalidInputError("no free gittrack-demo folder name in the current directory")


def _init_repo(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q"], cwd=folder)
    ident = run_git(["var", "GIT_COMMITTER_IDENT"], cwd=folder, check=False)
    if ident.returncode != 0:
        run_git(["config", "user.name", "gittrack demo"], cwd=folder)
        run_git(["config", "user.email", "demo@gittrack.invalid"], cwd=folder)
    (folder / "train.py").write_text(TRAIN_SCRIPT)
    run_git(["add", "train.py"], cwd=folder)
    run_git(["commit", "-q", "-m", "Add training script"], cwd=folder)


def _train(folder: Path) -> list[str]:
    try:
        from sklearn.datasets import load_iris, load_wine
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise InvalidInputError(
            "the demo trains scikit-learn models: pip install 'gittrack[sklearn]'"
        ) from exc
    import gittrack as mlflow

    mlflow.set_tracking_uri(str(folder))
    candidates = [
        ("logreg", {"C": 0.1}),
        ("logreg", {"C": 1.0}),
        ("logreg", {"C": 10.0}),
        ("forest", {"n_estimators": 10, "max_depth": 2}),
        ("forest", {"n_estimators": 100, "max_depth": 5}),
    ]
    run_ids = []
    for dataset_name, loader in (("iris", load_iris), ("wine", load_wine)):
        data = loader()
        x_train, x_test, y_train, y_test = train_test_split(
            data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
        )
        mlflow.set_experiment(f"demo-{dataset_name}")
        for kind, params in candidates:
            if kind == "logreg":
                model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, **params))
            else:
                model = RandomForestClassifier(random_state=0, **params)
            with mlflow.start_run(run_name=f"{kind}-{'-'.join(map(str, params.values()))}") as run:
                mlflow.log_params({"model": kind, "dataset": dataset_name, **params})
                mlflow.set_tag("purpose", "demo")
                # A learning curve: accuracy on the test split as training data grows.
                for step, fraction in enumerate((0.25, 0.5, 0.75, 1.0)):
                    n = max(int(len(x_train) * fraction), 10)
                    model.fit(x_train[:n], y_train[:n])
                    mlflow.log_metric(
                        "test_accuracy", accuracy_score(y_test, model.predict(x_test)), step=step
                    )
                predictions = model.predict(x_test)
                mlflow.log_metrics(
                    {
                        "accuracy": accuracy_score(y_test, predictions),
                        "f1_macro": f1_score(y_test, predictions, average="macro"),
                    }
                )
                estimator = model[-1] if hasattr(model, "steps") else model
                if hasattr(estimator, "feature_importances_"):
                    mlflow.log_dict(
                        dict(
                            zip(
                                data.feature_names, estimator.feature_importances_.round(4).tolist()
                            )
                        ),
                        "feature_importance.json",
                    )
                run_ids.append(run.info.run_id)
    return run_ids


def run_demo(folder: Path | None = None) -> Path:
    """Create the demo repository, track the runs and print what was stored."""
    import gittrack as mlflow

    target = _fresh_folder(folder).resolve()
    print(f"Creating a fresh git repository in {target}")
    _init_repo(target)
    previous = Path.cwd()
    os.chdir(target)  # runs record the code of the folder they run in
    try:
        run_ids = _train(target)
        frame = mlflow.search_runs(search_all_experiments=True, order_by=["metrics.accuracy DESC"])
    finally:
        os.chdir(previous)
    columns = [
        "run_id",
        "params.dataset",
        "params.model",
        "params.C",
        "params.n_estimators",
        "metrics.accuracy",
        "metrics.f1_macro",
        "status",
    ]
    table = frame[[c for c in columns if c in frame.columns]].copy()
    table["run_id"] = table["run_id"].str[:12]
    print(f"\nTracked {len(run_ids)} runs. search_runs(order_by=['metrics.accuracy DESC']):\n")
    print(table.to_string(index=False, na_rep="-"))
    first = run_ids[0]
    try:
        log = run_git(["log", "--oneline", "-3", "gittrack"], cwd=target).stdout.decode()
    except RepositoryError:
        log = ""
    print(f"\nThe runs are commits on branch 'gittrack' of {target}:")
    print(log.rstrip())
    print(
        f"\nOne run's files:  git -C {target} ls-tree -r --name-only gittrack "
        f"{layout.run_dir(first)}"
    )
    files = subprocess.run(
        [
            "git",
            "ls-tree",
            "-r",
            "--name-only",
            "gittrack",
            layout.run_dir(first),
        ],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in files.splitlines():
        print(f"  {line}")
    print(f'\nTry:  cd {target} && gittrack runs list && gittrack search "metrics.accuracy > 0.9"')
    return target
