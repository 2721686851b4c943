"""``gittrack.models``: signatures, ``Model``, ``ModelInfo``, model ids and signature enforcement.

MLflow scripts import ``infer_signature``/``ModelSignature``/``Model`` from ``mlflow.models``
and ``Schema``/``ColSpec`` from ``mlflow.types.schema``; these tests hold gittrack's names to
what MLflow writes and does (MLflow runs alongside where it is installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import gittrack as mlflow
from gittrack import Client
from gittrack.errors import InvalidInputError, NotFoundError
from gittrack.exceptions import MlflowException
from gittrack.tracking.repository import forget_repositories

from .conftest import tree_fingerprint

pytest.importorskip("sklearn")

import gittrack.pyfunc  # noqa: E402
import gittrack.sklearn  # noqa: E402
from gittrack.models import Model, ModelInfo, ModelSignature, infer_signature  # noqa: E402


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


def parsed(signature_dict: dict) -> dict:
    """A signature's stored form with each JSON string decoded (key order is not meaning)."""
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in signature_dict.items()}


def read_mlmodel(directory: Path) -> dict:
    return yaml.safe_load((directory / "MLmodel").read_text())


# --------------------------------------------------------------------------- imports


def test_mlflow_import_paths_for_signatures_exist_in_gittrack() -> None:
    import gittrack.models.signature as signature_module
    from gittrack.types import TensorSpec
    from gittrack.types.schema import ColSpec, Schema

    assert signature_module.infer_signature is infer_signature
    assert mlflow.models.Model is Model
    assert mlflow.types.schema.Schema is Schema
    assert Schema([ColSpec("double", "x")]).input_names() == ["x"]
    assert TensorSpec(np.dtype("float32"), (-1, 3)).dtype == "float32"


# --------------------------------------------------------------------------- inference


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(lambda X: X, id="dataframe"),
        pytest.param(lambda X: X.to_numpy(), id="ndarray"),
        pytest.param(lambda X: X.head(3).to_dict(orient="records"), id="list-of-dicts"),
        pytest.param(lambda X: X["alcohol"], id="series"),
    ],
)
def test_infer_signature_matches_mlflow_for_each_input_kind(wine, regressor, make_input) -> None:
    mlflow_models = pytest.importorskip("mlflow.models")
    X, _ = wine
    model_input = make_input(X)
    output = regressor.predict(X.head(3))

    ours = infer_signature(model_input, output)
    theirs = mlflow_models.infer_signature(model_input, output)

    assert parsed(ours.to_dict()) == parsed(theirs.to_dict())


def test_infer_signature_of_a_prediction_series_and_params_matches_mlflow(wine) -> None:
    mlflow_models = pytest.importorskip("mlflow.models")
    X, _ = wine
    prediction = pd.Series(np.zeros(len(X)), name="quality")
    params = {"threshold": 0.5, "top_k": 3, "label": "red", "strict": True, "ids": [1, 2]}

    ours = infer_signature(X, prediction, params=params)
    theirs = mlflow_models.infer_signature(X, prediction, params=params)

    assert parsed(ours.to_dict()) == parsed(theirs.to_dict())


def test_a_signature_built_by_hand_equals_the_inferred_one(wine) -> None:
    from gittrack.types import ColSpec, DataType, Schema, TensorSpec

    X, _ = wine
    by_hand = ModelSignature(
        inputs=Schema([ColSpec(DataType.double, "alcohol"), ColSpec("double", "malic_acid")]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )

    inferred = infer_signature(X[["alcohol", "malic_acid"]], np.zeros(3))

    assert by_hand == inferred
    assert by_hand.to_dict() == inferred.to_dict()


def test_a_param_default_of_no_signature_type_is_named_in_the_error(wine) -> None:
    X, _ = wine
    with pytest.raises(InvalidInputError, match=r"param 'when'.*not a str, bool, int, float"):
        infer_signature(X, params={"when": object()})


# --------------------------------------------------------------------------- log_model


def test_log_model_stores_signature_and_input_example_as_mlflow_keys(
    repo: Path, wine, regressor
) -> None:
    X, _ = wine
    signature = infer_signature(X, regressor.predict(X))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            regressor, name="model", signature=signature, input_example=X.head(2)
        )

    local = gittrack.pyfunc.local_model_dir(info.model_uri)
    mlmodel = read_mlmodel(local)
    assert set(mlmodel["signature"]) == {"inputs", "outputs", "params"}
    assert parsed(mlmodel["signature"]) == parsed(signature.to_dict())
    assert mlmodel["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        "type": "dataframe",
        "pandas_orient": "split",
    }
    assert mlmodel["model_id"] == info.model_id


def test_log_model_returns_mlflow_3_model_info_fields(repo: Path, wine, regressor) -> None:
    X, _ = wine
    signature = infer_signature(X, regressor.predict(X))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            regressor,
            name="model",
            signature=signature,
            input_example=X.head(2),
            registered_model_name="WineNet",
            metadata={"team": "cellar"},
        )

    assert isinstance(info, ModelInfo)
    assert info.model_id.startswith("m-") and len(info.model_id) == 34
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert info.run_id == run.info.run_id
    assert info.artifact_path == "model"
    assert info.signature == signature
    assert set(info.flavors) == {"python_function", "sklearn"}
    assert len(info.model_uuid) == 32 and info.utc_time_created
    assert info.gittrack_version and info.mlflow_version is None
    assert info.registered_model_version == 1
    assert info.metadata == {"team": "cellar"}
    assert info.saved_input_example_info["type"] == "dataframe"


# --------------------------------------------------------------------------- model ids


def test_models_uri_with_a_model_id_loads_the_model_live_and_committed(
    repo: Path, wine, regressor
) -> None:
    X, _ = wine
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(regressor, name="model")
        live = gittrack.pyfunc.load_model(f"models:/{info.model_id}")
        np.testing.assert_array_equal(live.predict(X), regressor.predict(X))

    committed = gittrack.sklearn.load_model(f"models:/{info.model_id}")

    np.testing.assert_array_equal(committed.predict(X), regressor.predict(X))


def test_model_ids_are_unique_per_logged_model(repo: Path, regressor) -> None:
    with mlflow.start_run():
        first = mlflow.sklearn.log_model(regressor, name="first")
        second = mlflow.sklearn.log_model(regressor, name="second")

    assert first.model_id != second.model_id
    assert Model.load(f"models:/{second.model_id}").artifact_path == "second"


def test_an_unknown_model_id_is_a_not_found_error_naming_it(repo: Path, regressor) -> None:
    with mlflow.start_run():
        mlflow.sklearn.log_model(regressor, name="model")
    unknown = "m-" + "0" * 32

    with pytest.raises(NotFoundError, match=f"no logged model has id '{unknown}'") as caught:
        gittrack.pyfunc.load_model(f"models:/{unknown}")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_an_unreadable_mlmodel_is_reported_and_skipped_by_the_id_lookup(
    repo: Path, regressor
) -> None:
    from gittrack.errors import CorruptDataWarning

    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(regressor, name="model")
        mlflow.log_text(f"model_id: {info.model_id}\nflavors: [unclosed\n", "broken/MLmodel")

        with pytest.warns(CorruptDataWarning, match="broken/MLmodel"):
            model = Model.load(f"models:/{info.model_id}")

    assert model.run_id == run.info.run_id
    assert model.artifact_path == "model"
    with pytest.warns(CorruptDataWarning, match="broken/MLmodel"):
        committed = Model.load(f"models:/{info.model_id}")
    assert committed.artifact_path == "model"


def test_registering_a_models_uri_with_a_model_id_points_at_the_run(repo: Path, regressor) -> None:
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(regressor, name="model")

    version = mlflow.register_model(f"models:/{info.model_id}", "ById")

    assert version.source == f"runs:/{run.info.run_id}/model"
    assert version.run_id == run.info.run_id
    assert version.model_id == info.model_id


def test_model_version_has_the_model_id_of_its_source_and_no_run_link(
    repo: Path, regressor, tmp_path: Path
) -> None:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(regressor, name="model", registered_model_name="Wine")
        mlflow.log_text("not a model", "notes/readme.txt")
        plain = mlflow.register_model(f"runs:/{info.run_id}/notes", "Notes")

    stored = Client().get_model_version("Wine", "1")
    assert stored.model_id == info.model_id
    assert stored.run_link is None
    assert plain.model_id is None
    assert Client().get_model_version("Notes", "1").model_id is None


def test_model_id_lookup_leaves_the_users_repository_untouched(repo: Path, regressor) -> None:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(regressor, name="model")
    forget_repositories()  # the ended run's staging directory is removed in the background
    before = tree_fingerprint(repo)

    Model.load(f"models:/{info.model_id}")
    gittrack.pyfunc.load_model(f"models:/{info.model_id}")
    forget_repositories()

    assert tree_fingerprint(repo) == before


# --------------------------------------------------------------------------- last_logged_model


def test_last_logged_model_names_the_model_just_logged(repo: Path, regressor) -> None:
    assert mlflow.last_logged_model() is None
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(regressor, name="first")
        info = mlflow.sklearn.log_model(regressor, name="second")

    logged = mlflow.last_logged_model()

    assert logged.model_id == info.model_id
    assert logged.name == "second"
    assert logged.source_run_id == run.info.run_id
    assert logged.model_uri == f"models:/{info.model_id}"
    assert logged.experiment_id == run.info.experiment_id
    assert gittrack.sklearn.load_model(logged.model_uri).get_params() == regressor.get_params()


# --------------------------------------------------------------------------- Model


def test_model_load_reads_mlmodel_from_a_directory_file_or_uri(repo: Path, wine, regressor) -> None:
    X, _ = wine
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            regressor, name="model", input_example=X.head(3), metadata={"a": 1}
        )
    local = gittrack.pyfunc.local_model_dir(info.model_uri)

    for source in (local, local / "MLmodel", info.model_uri, f"models:/{info.model_id}"):
        model = Model.load(source)
        assert model.model_id == info.model_id
        assert model.run_id == run.info.run_id
        assert model.artifact_path == "model"
        assert model.model_uuid == info.model_uuid
        assert model.utc_time_created == info.utc_time_created
        assert set(model.flavors) == {"python_function", "sklearn"}
        assert model.signature == info.signature
        assert model.get_input_schema().names() == list(X.columns)
        assert model.get_output_schema() == info.signature.outputs
        assert model.saved_input_example_info == info.saved_input_example_info
        assert model.metadata == {"a": 1}


def test_model_to_yaml_and_to_dict_are_the_mlmodel_file(repo: Path, wine, regressor) -> None:
    X, _ = wine
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(regressor, name="model", input_example=X.head(3))
    local = gittrack.pyfunc.local_model_dir(info.model_uri)

    model = Model.load(local)

    assert model.to_yaml() == (local / "MLmodel").read_text()
    assert model.to_dict() == read_mlmodel(local)


def test_model_load_input_example_returns_the_saved_example(repo: Path, wine, regressor) -> None:
    X, _ = wine
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(regressor, name="model", input_example=X.head(3))
    local = gittrack.pyfunc.local_model_dir(info.model_uri)
    model = Model.load(local)

    pd.testing.assert_frame_equal(model.load_input_example(local), X.head(3))
    pd.testing.assert_frame_equal(model.load_input_example(), X.head(3))


def test_model_load_of_a_missing_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        Model.load(tmp_path / "nowhere")


# --------------------------------------------------------------------------- enforcement


@pytest.fixture
def served(tmp_path: Path, wine, regressor):
    X, _ = wine
    path = tmp_path / "served"
    gittrack.sklearn.save_model(regressor, path, signature=infer_signature(X, regressor.predict(X)))
    return gittrack.pyfunc.load_model(path)


def test_predict_names_a_missing_required_column(served, wine) -> None:
    X, _ = wine
    with pytest.raises(MlflowException, match=r"missing column\(s\) \['magnesium'\]") as caught:
        served.predict(X.drop(columns=["magnesium"]))
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("column", "values", "shown"),
    [
        ("magnesium", ["high", "low"], "str"),
        ("magnesium", [1.5, 2.0], "float64"),
        ("magnesium", [True, False], "bool"),
        ("alcohol", [True, False], "bool"),
        ("alcohol", ["13.2", "12.1"], "str"),
    ],
)
def test_predict_refuses_a_column_that_cannot_be_converted_safely(
    served, wine, column, values, shown
) -> None:
    X, _ = wine
    bad = X.head(2).copy()
    bad[column] = values

    with pytest.raises(MlflowException, match=f"column '{column}': cannot safely convert") as err:
        served.predict(bad)
    assert shown in str(err.value)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_float_column_with_missing_values_for_a_long_gets_a_hint(served, wine) -> None:
    X, _ = wine
    bad = X.head(2).copy()
    bad["magnesium"] = [100.0, None]

    with pytest.raises(InvalidInputError, match="missing values turn an integer column"):
        served.predict(bad)


def test_predict_widens_columns_as_mlflow_does(served, wine, regressor) -> None:
    X, _ = wine
    narrow = X.head(5).copy()
    narrow["magnesium"] = narrow["magnesium"].astype("int32")
    narrow["alcohol"] = narrow["alcohol"].astype("float32").astype("float64")
    narrow["ash"] = narrow["ash"].astype("float32")
    expected = regressor.predict(narrow.astype({"magnesium": "int64", "ash": "float64"}))

    np.testing.assert_allclose(served.predict(narrow), expected)


def test_integer_values_that_convert_exactly_are_accepted_for_double(served, wine) -> None:
    X, _ = wine
    ints = X.head(2).copy()
    ints["alcohol"] = [13, 12]
    huge = ints.copy()
    huge["alcohol"] = [2**60, 1]

    assert served.predict(ints).shape == (2,)
    with pytest.raises(InvalidInputError, match="column 'alcohol'.*int64.*'double'"):
        served.predict(huge)


def test_predict_refuses_a_tensor_of_the_wrong_shape_or_dtype(tmp_path: Path, wine) -> None:
    from sklearn.linear_model import ElasticNet

    X, y = wine
    array = X.to_numpy(dtype="float64")
    model = ElasticNet().fit(array, y)
    gittrack.sklearn.save_model(
        model, tmp_path / "t", signature=infer_signature(array, model.predict(array))
    )
    loaded = gittrack.pyfunc.load_model(tmp_path / "t")

    with pytest.raises(MlflowException, match=r"shape \(3, 3\).*\(-1, 5\)"):
        loaded.predict(array[:3, :3])
    with pytest.raises(MlflowException, match="dtype <U"):
        loaded.predict(array[:3].astype(str))
    np.testing.assert_allclose(loaded.predict(array[:3]), model.predict(array[:3]))
