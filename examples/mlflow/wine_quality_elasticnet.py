"""MLflow's scikit-learn ElasticNet wine example, run on gittrack.

The flow of MLflow's ``examples/sklearn_elasticnet_wine/train.py``: split the data, fit an
``ElasticNet(alpha, l1_ratio)`` taken from the command line, compute RMSE/MAE/R2 on the test
set, log the two params and three metrics, infer the signature from the training data and the
model's predictions, and log the model registered as ``ElasticnetWineModel``. Only the import
lines differ from an MLflow script::

    import gittrack as mlflow
    import gittrack.sklearn
    from gittrack.models import infer_signature

Data: MLflow's example downloads the UCI Wine Quality (red) CSV, which cannot be downloaded
here. ``data/wine.csv`` is scikit-learn's bundled copy of the UCI Wine recognition data
(178 wines, 13 chemical measurements), written as a ``;``-separated CSV whose ``quality``
column is the wine's cultivar (0, 1 or 2), so the script reads it exactly as the original
reads ``winequality-red.csv``. It was made with::

    load_wine(as_frame=True) -> X.assign(quality=y).to_csv("wine.csv", sep=";", index=False)

Run it inside a git repository (runs go to its ``gittrack`` branch)::

    python examples/mlflow/wine_quality_elasticnet.py 0.5 0.5   # alpha l1_ratio
"""

import logging
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import gittrack as mlflow
import gittrack.sklearn
from gittrack.models import infer_signature

logging.basicConfig(level=logging.WARN)
logger = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data" / "wine.csv"


def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    mae = mean_absolute_error(actual, pred)
    r2 = r2_score(actual, pred)
    return rmse, mae, r2


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    np.random.seed(40)

    data = pd.read_csv(DATA, sep=";")

    # A 75/25 split; "quality" is the column to predict.
    train, test = train_test_split(data)
    train_x = train.drop(["quality"], axis=1)
    test_x = test.drop(["quality"], axis=1)
    train_y = train[["quality"]]
    test_y = test[["quality"]]

    alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5

    with mlflow.start_run():
        lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
        lr.fit(train_x, train_y)

        predicted_qualities = lr.predict(test_x)
        (rmse, mae, r2) = eval_metrics(test_y, predicted_qualities)

        print(f"Elasticnet model (alpha={alpha:f}, l1_ratio={l1_ratio:f}):")
        print(f"  RMSE: {rmse}")
        print(f"  MAE: {mae}")
        print(f"  R2: {r2}")

        mlflow.log_param("alpha", alpha)
        mlflow.log_param("l1_ratio", l1_ratio)
        mlflow.log_metric("rmse", rmse)
        mlflow.log_metric("r2", r2)
        mlflow.log_metric("mae", mae)

        predictions = lr.predict(train_x)
        signature = infer_signature(train_x, predictions)

        # MLflow's file store has no registry; a gittrack repository always has one.
        tracking_url_type_store = urlparse(mlflow.get_tracking_uri()).scheme
        if tracking_url_type_store != "file":
            mlflow.sklearn.log_model(
                lr, name="model", registered_model_name="ElasticnetWineModel", signature=signature
            )
        else:
            mlflow.sklearn.log_model(lr, name="model", signature=signature)
