"""Track a random-forest classifier on the iris data set, MLflow style.

The tracking part of the model-registry tutorial on real data (scikit-learn's bundled iris,
nothing is downloaded): one run with the hyperparameters, accuracy/precision/recall, a
confusion-matrix image, the feature importances as JSON and a few descriptive tags.

    python examples/iris_random_forest.py              # track into the repo around the cwd
    python examples/iris_random_forest.py --repo PATH  # track into the repo at PATH

The run is committed to the ``gittrack`` branch of that repository; the working tree is left
as it was. Only the imports differ from the MLflow version of this script.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

import gittrack as mlflow

EXPERIMENT_NAME = "iris_random_forest"
SEED = 42
PARAMS: dict[str, Any] = {"n_estimators": 100, "max_depth": 5, "random_state": SEED}
TEST_SIZE = 0.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo",
        help="git repository to track into (default: the one containing the current directory)",
    )
    return parser.parse_args(argv)


def log_confusion_matrix(y_true: Any, y_pred: Any, labels: list[str]) -> bool:
    """Log the confusion matrix as ``confusion_matrix.png``; False when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        print("note: matplotlib is not installed, confusion_matrix.png is not logged")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, display_labels=labels, ax=ax, colorbar=False
    )
    ax.set_title("Iris: confusion matrix (test split)")
    fig.tight_layout()
    mlflow.log_figure(fig, "confusion_matrix.png")
    plt.close(fig)
    return True


def sklearn_flavor_available() -> bool:
    """Whether this gittrack ships ``gittrack.sklearn`` (model logging, as ``mlflow.sklearn``)."""
    return importlib.util.find_spec("gittrack.sklearn") is not None


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if args.repo:
        mlflow.set_tracking_uri(args.repo)
    mlflow.set_experiment(EXPERIMENT_NAME)

    data = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_SIZE, random_state=SEED, stratify=data.target
    )

    with mlflow.start_run(run_name="random_forest_v1") as run:
        mlflow.log_params({**PARAMS, "test_size": TEST_SIZE})
        # gittrack records the code version itself (mlflow.source.git.commit); these tags
        # describe the data and the model family for searching.
        mlflow.set_tags(
            {
                "data_version": f"iris@scikit-learn-{sklearn.__version__}",
                "dataset": "iris",
                "model_family": "random_forest",
                "project_phase": "baseline",
            }
        )

        model = RandomForestClassifier(**PARAMS)
        model.fit(X_train, y_train)
        y_pred = model.predict(X_test)

        metrics = {
            "accuracy": accuracy_score(y_test, y_pred),
            "precision": precision_score(y_test, y_pred, average="macro"),
            "recall": recall_score(y_test, y_pred, average="macro"),
            "f1_score": f1_score(y_test, y_pred, average="macro"),
        }
        mlflow.log_metric("accuracy", metrics["accuracy"])
        mlflow.log_metrics({k: v for k, v in metrics.items() if k != "accuracy"})

        log_confusion_matrix(y_test, y_pred, list(data.target_names))
        mlflow.log_dict(
            {
                "feature_importance": dict(
                    zip(data.feature_names, model.feature_importances_.tolist(), strict=True)
                )
            },
            "feature_importance.json",
        )

        # Optional: log the fitted model once gittrack.sklearn is available (it mirrors
        # mlflow.sklearn). Remove the check when every supported gittrack version has it.
        if sklearn_flavor_available():
            mlflow.sklearn.log_model(model, "random_forest_model")
        else:
            print("note: gittrack.sklearn is not available, the model itself is not logged")

    print(f"run_id={run.info.run_id}")
    print(f"experiment: {EXPERIMENT_NAME}  tracking repository: {mlflow.get_tracking_uri()}")
    print("  " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return metrics


if __name__ == "__main__":
    main()
