"""Hyperparameter tuning with child runs, as in MLflow's documentation.

A parent run holds the sweep; each configuration of a small grid is a nested child run that
trains a scikit-learn random forest on the bundled wine data (nothing is downloaded) and logs
its params and validation accuracy. The best child is found with ``search_runs`` on the
``mlflow.parentRunId`` tag and its params and score are logged to the parent.

    cd path/to/your/git/repo && python path/to/examples/mlflow/hyperparameter_sweep.py

Only the import line differs from the MLflow script: with ``import mlflow`` instead, it runs
on MLflow unchanged.
"""

import itertools

from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import gittrack as mlflow

GRID = {"n_estimators": [10, 50], "max_depth": [2, 4, 8]}


def train_and_score(params, X_train, X_val, y_train, y_val):
    """Fit one configuration and return its accuracy on the validation split."""
    model = RandomForestClassifier(random_state=0, **params).fit(X_train, y_train)
    return accuracy_score(y_val, model.predict(X_val))


def main():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=42)
    mlflow.set_experiment("wine-hyperparameter-sweep")

    with mlflow.start_run(run_name="sweep") as parent:
        mlflow.log_param("grid", str(GRID))
        for values in itertools.product(*GRID.values()):
            params = dict(zip(GRID, values))
            name = "rf-" + "-".join(f"{k}={v}" for k, v in params.items())
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.log_params(params)
                mlflow.log_metric(
                    "val_accuracy", train_and_score(params, X_train, X_val, y_train, y_val)
                )

        children = mlflow.search_runs(
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            order_by=["metrics.val_accuracy DESC", "tags.mlflow.runName ASC"],
        )
        best = children.iloc[0]
        mlflow.log_params({f"best_{k}": best[f"params.{k}"] for k in GRID})
        mlflow.log_metric("best_val_accuracy", best["metrics.val_accuracy"])
        mlflow.set_tag("best_run_id", best["run_id"])

    print(f"parent run_id={parent.info.run_id}")
    print(f"{len(children)} child runs; best {best['tags.mlflow.runName']}")
    print(f"best val_accuracy={best['metrics.val_accuracy']:.4f}")


if __name__ == "__main__":
    main()
