"""Models with signatures move between gittrack and MLflow, and both refuse the same inputs.

A model gittrack saves loads in MLflow with the same signature and predictions; a model MLflow
saves loads in gittrack and its signature is enforced. The same bad inputs are refused by both
with ``MlflowException`` and ``INVALID_PARAMETER_VALUE``; the same good inputs are accepted by
both with the same predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gittrack as gt
from gittrack.exceptions import MlflowException as GittrackMlflowException

pytest.importorskip("sklearn")
pytest.importorskip("mlflow")

import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.models import Model as MlflowModel  # noqa: E402

import gittrack.pyfunc  # noqa: E402
import gittrack.sklearn  # noqa: E402
from gittrack.models import Model, infer_signature  # noqa: E402


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5].copy()
    X["magnesium"] = X["magnesium"].astype("int64")
    return X, y.astype("float64")


@pytest.fixture(scope="module")
def regressor(wine):
    from sklearn.linear_model import ElasticNet

    X, y = wine
    return ElasticNet(alpha=0.1, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def saved_by_both(tmp_path_factory, wine, regressor) -> dict[str, Path]:
    """The same estimator and signature saved by gittrack and by MLflow."""
    X, _ = wine
    root = tmp_path_factory.mktemp("models")
    signature = infer_signature(X, regressor.predict(X))
    gittrack.sklearn.save_model(regressor, root / "gittrack", signature=signature)
    mlflow.sklearn.save_model(
        regressor,
        root / "mlflow",
        signature=mlflow.models.infer_signature(X, regressor.predict(X)),
        serialization_format="cloudpickle",
    )
    return {"gittrack": root / "gittrack", "mlflow": root / "mlflow"}


def parsed(signature_dict: dict) -> dict:
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in signature_dict.items()}


# --------------------------------------------------------------------------- both ways


def test_a_gittrack_model_with_a_signature_loads_and_predicts_in_mlflow(
    saved_by_both, wine, regressor
) -> None:
    X, _ = wine
    path = saved_by_both["gittrack"]

    loaded = mlflow.pyfunc.load_model(str(path))

    np.testing.assert_allclose(loaded.predict(X), regressor.predict(X))
    theirs = loaded.metadata.signature.to_dict()
    assert parsed(theirs) == parsed(Model.load(path).signature.to_dict())


def test_a_logged_gittrack_model_keeps_its_model_id_in_mlflow(repo: Path, wine, regressor) -> None:
    X, _ = wine
    with gt.start_run():
        info = gittrack.sklearn.log_model(
            regressor, name="model", signature=infer_signature(X, regressor.predict(X))
        )
    local = gittrack.pyfunc.local_model_dir(f"models:/{info.model_id}")

    theirs = MlflowModel.load(str(local))

    assert theirs.model_id == info.model_id
    assert theirs.run_id == info.run_id
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(str(local)).predict(X), regressor.predict(X)
    )


def test_an_mlflow_model_with_a_signature_loads_in_gittrack(saved_by_both, wine, regressor) -> None:
    X, _ = wine
    path = saved_by_both["mlflow"]

    loaded = gittrack.pyfunc.load_model(path)
    model = Model.load(path)

    np.testing.assert_allclose(loaded.predict(X), regressor.predict(X))
    assert parsed(model.signature.to_dict()) == parsed(
        MlflowModel.load(str(path)).signature.to_dict()
    )
    assert model.mlflow_version == mlflow.__version__


# --------------------------------------------------------------------------- differential


BAD_INPUTS = {
    "missing column": lambda head: head.drop(columns=["magnesium"]),
    "text for long": lambda head: head.assign(magnesium=["a", "b", "c"]),
    "fraction for long": lambda head: head.assign(magnesium=[1.5, 2.0, 3.0]),
    "missing value for long": lambda head: head.assign(magnesium=[100.0, None, 90.0]),
    "bool for long": lambda head: head.assign(magnesium=[True, False, True]),
    "bool for double": lambda head: head.assign(alcohol=[True, False, True]),
    "text for double": lambda head: head.assign(alcohol=["1.0", "2.0", "3.0"]),
    "numeric text for long": lambda head: head.assign(magnesium=["100", "90", "80"]),
}
"""Each bad input, made from the first three rows of the wine data."""


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("saved_by", ["gittrack", "mlflow"])
def test_both_refuse_the_same_bad_input_with_the_same_error_code(
    saved_by_both, wine, case, saved_by
) -> None:
    X, _ = wine
    bad = BAD_INPUTS[case](X.head(3))
    path = saved_by_both[saved_by]

    with pytest.raises(MlflowException) as theirs:
        mlflow.pyfunc.load_model(str(path)).predict(bad)
    with pytest.raises(GittrackMlflowException) as ours:
        gittrack.pyfunc.load_model(path).predict(bad)

    assert ours.value.error_code == theirs.value.error_code == "INVALID_PARAMETER_VALUE"
    named = "magnesium" if "long" in case or case == "missing column" else "alcohol"
    assert named in str(ours.value)


@pytest.mark.parametrize(
    "case",
    ["reordered", "extra column", "int32 for long", "float32 for double", "records"],
)
def test_both_accept_the_same_safe_input_with_the_same_predictions(
    saved_by_both, wine, case
) -> None:
    X, _ = wine
    head = X.head(4)
    good = {
        "reordered": head[list(reversed(head.columns))],
        "extra column": head.assign(note="extra"),
        "int32 for long": head.astype({"magnesium": "int32"}),
        "float32 for double": head.astype({"ash": "float32"}),
        "records": head.to_dict(orient="records"),
    }[case]
    path = saved_by_both["mlflow"]

    theirs = mlflow.pyfunc.load_model(str(path)).predict(good)
    ours = gittrack.pyfunc.load_model(path).predict(good)

    np.testing.assert_allclose(ours, theirs)


@pytest.fixture(scope="module")
def tensor_models(tmp_path_factory, wine) -> tuple[dict[str, Path], np.ndarray]:
    from sklearn.linear_model import ElasticNet

    X, y = wine
    array = X.to_numpy(dtype="float64")
    model = ElasticNet().fit(array, y)
    root = tmp_path_factory.mktemp("tensors")
    gittrack.sklearn.save_model(
        model, root / "gittrack", signature=infer_signature(array, model.predict(array))
    )
    mlflow.sklearn.save_model(
        model,
        root / "mlflow",
        signature=mlflow.models.infer_signature(array, model.predict(array)),
        serialization_format="cloudpickle",
    )
    return {"gittrack": root / "gittrack", "mlflow": root / "mlflow"}, array


@pytest.mark.parametrize("case", ["too few columns", "one dimension", "text"])
@pytest.mark.parametrize("saved_by", ["gittrack", "mlflow"])
def test_both_refuse_a_tensor_of_the_wrong_shape_or_dtype(tensor_models, case, saved_by) -> None:
    paths, array = tensor_models
    bad = {
        "too few columns": array[:3, :3],
        "one dimension": array[0],
        "text": array[:3].astype(str),
    }[case]

    with pytest.raises(MlflowException) as theirs:
        mlflow.pyfunc.load_model(str(paths[saved_by])).predict(bad)
    with pytest.raises(GittrackMlflowException) as ours:
        gittrack.pyfunc.load_model(paths[saved_by]).predict(bad)

    assert ours.value.error_code == theirs.value.error_code == "INVALID_PARAMETER_VALUE"
