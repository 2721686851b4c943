"""A custom model with its own files, registered and loaded back by name, MLflow style.

A ``PythonModel`` wraps two scikit-learn objects saved as files (a scaler and a classifier,
trained on scikit-learn's bundled iris data, nothing is downloaded). The files are logged as
the model's ``artifacts``; the model is registered as ``IrisScaled`` with alias ``champion``
and then loaded through ``models:/IrisScaled@champion``, which hands ``load_context`` local
copies of the files. Its ``model_config`` says what to predict (``output: class``); loading
with ``model_config={"output": "proba"}`` asks for probabilities instead.

    python examples/custom_python_model.py              # track into the repo around the cwd
    python examples/custom_python_model.py --repo PATH  # track into the repo at PATH

The run and the registry tags are committed to that repository; the working tree is left as it
was, and the artifact files are written to a temporary directory.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import gittrack as mlflow
from gittrack.tracking import MlflowClient

MODEL_NAME = "IrisScaled"


class ScaledIrisClassifier(mlflow.pyfunc.PythonModel):
    """Scale the four measurements, then classify; both steps are read from artifacts."""

    def load_context(self, context):
        with open(context.artifacts["scaler"], "rb") as handle:
            self.scaler = pickle.load(handle)
        with open(context.artifacts["classifier"], "rb") as handle:
            self.classifier = pickle.load(handle)
        self.output = context.model_config["output"]

    def predict(self, context, model_input, params=None):
        scaled = self.scaler.transform(model_input)
        if self.output == "proba":
            return self.classifier.predict_proba(scaled)
        return self.classifier.predict(scaled)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo",
        help="git repository to track into (default: the one containing the current directory)",
    )
    return parser.parse_args(argv)


def save_artifacts(folder: Path) -> dict[str, str]:
    """Train the scaler and the classifier; pickle each into ``folder``."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    scaler = StandardScaler().fit(X)
    classifier = LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
    paths = {}
    for name, obj in (("scaler", scaler), ("classifier", classifier)):
        paths[name] = str(folder / f"{name}.pkl")
        with open(paths[name], "wb") as out:
            pickle.dump(obj, out)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.repo:
        mlflow.set_tracking_uri(args.repo)
    X, y = load_iris(return_X_y=True, as_frame=True)
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_name="scaled_iris") as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ScaledIrisClassifier(),
            artifacts=save_artifacts(Path(folder)),
            input_example=X.head(3),
            model_config={"output": "class"},
            registered_model_name=MODEL_NAME,
        )
    version = info.registered_model_version
    MlflowClient(tracking_uri=mlflow.get_tracking_uri()).set_registered_model_alias(
        MODEL_NAME, "champion", version
    )

    uri = f"models:/{MODEL_NAME}@champion"
    accuracy = float(np.mean(mlflow.pyfunc.load_model(uri).predict(X) == y.to_numpy()))
    scorer = mlflow.pyfunc.load_model(uri, model_config={"output": "proba"})
    probabilities = scorer.predict(X.head(2))
    print(f"run_id={run.info.run_id}")
    print(f"registered {MODEL_NAME} version {version} as @champion")
    print(f"accuracy={accuracy:.3f}")
    print(f"probability rows sum to one: {bool(np.allclose(probabilities.sum(axis=1), 1))}")


if __name__ == "__main__":
    main()
