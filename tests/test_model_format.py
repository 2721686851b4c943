"""The model format layer: scikit-learn models saved in MLflow's layout and loaded back."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gittrack.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
)
from gittrack.models import pyfunc_model, sklearn_flavor
from gittrack.models.model_format import (
    ModelConfig,
    installed_version,
    read_input_example,
    read_model_config,
    write_model_config,
)
from gittrack.models.signature import (
    ColumnSpec,
    ModelSignature,
    Schema,
    TensorSpec,
    infer_signature,
)

TREE_TYPE = "sklearn.tree._tree.Tree"


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def logistic(iris) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="module")
def array_logistic(iris) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X.to_numpy(), y.to_numpy())


def make_model(kind: str, X: pd.DataFrame, y: pd.Series):
    models = {
        "random_forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "logistic_regression": lambda: LogisticRegression(max_iter=500),
        "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    }
    return models[kind]().fit(X, y)


def read_mlmodel(path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("serialization_format", ["cloudpickle", "pickle", "skops"])
@pytest.mark.parametrize("kind", ["random_forest", "logistic_regression", "pipeline"])
def test_saved_model_loads_back_with_identical_predictions(
    tmp_path, iris, kind, serialization_format
):
    X, y = iris
    model = make_model(kind, X, y)
    trusted = [TREE_TYPE] if kind == "random_forest" and serialization_format == "skops" else None

    sklearn_flavor.save_model(
        model,
        tmp_path / "model",
        serialization_format=serialization_format,
        skops_trusted_types=trusted,
    )
    loaded = sklearn_flavor.load_model(tmp_path / "model")

    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_save_returns_the_model_info(tmp_path, logistic, iris):
    info = sklearn_flavor.save_model(
        logistic, tmp_path / "model", input_example=iris[0].head(3), run_id="a" * 32
    )

    assert info.path == str((tmp_path / "model").resolve())
    assert info.model_uri == info.path
    assert set(info.flavors) == {"python_function", "sklearn"}
    assert len(info.model_uuid) == 32
    assert info.signature is not None
    assert info.signature_dict == read_mlmodel(tmp_path / "model")["signature"]
    assert info.saved_input_example_info["type"] == "dataframe"


def test_model_uri_is_a_runs_uri_when_run_and_artifact_path_are_given(tmp_path, logistic):
    info = sklearn_flavor.save_model(
        logistic, tmp_path / "model", run_id="b" * 32, artifact_path="classifier"
    )

    assert info.model_uri == f"runs:/{'b' * 32}/classifier"


# --------------------------------------------------------------------------- MLmodel layout


def test_mlmodel_has_the_python_function_and_sklearn_flavors(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")

    mlmodel = read_mlmodel(tmp_path / "model")

    assert mlmodel["flavors"]["python_function"] == {
        "loader_module": "mlflow.sklearn",
        "model_path": "model.pkl",
        "predict_fn": "predict",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "python_version": ".".join(map(str, sys.version_info[:3])),
    }
    assert mlmodel["flavors"]["sklearn"] == {
        "pickled_model": "model.pkl",
        "sklearn_version": installed_version("scikit-learn"),
        "serialization_format": "cloudpickle",
        "code": None,
    }
    assert len(mlmodel["model_uuid"]) == 32
    assert isinstance(mlmodel["utc_time_created"], str)


def test_mlmodel_carries_no_mlflow_version_and_no_run_fields_by_default(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")

    mlmodel = read_mlmodel(tmp_path / "model")

    assert "mlflow_version" not in mlmodel
    assert "run_id" not in mlmodel
    assert "artifact_path" not in mlmodel
    assert "signature" not in mlmodel


def test_mlmodel_records_run_artifact_path_and_metadata_when_given(tmp_path, logistic):
    sklearn_flavor.save_model(
        logistic,
        tmp_path / "model",
        run_id="c" * 32,
        artifact_path="model",
        metadata={"owner": "ana", "dataset": "iris"},
    )

    mlmodel = read_mlmodel(tmp_path / "model")

    assert mlmodel["run_id"] == "c" * 32
    assert mlmodel["artifact_path"] == "model"
    assert mlmodel["metadata"] == {"owner": "ana", "dataset": "iris"}


def test_skops_models_are_stored_as_model_skops_with_their_trusted_types(tmp_path, iris):
    X, y = iris
    forest = make_model("random_forest", X, y)

    sklearn_flavor.save_model(
        forest, tmp_path / "model", serialization_format="skops", skops_trusted_types=[TREE_TYPE]
    )

    flavors = read_mlmodel(tmp_path / "model")["flavors"]
    assert (tmp_path / "model" / "model.skops").is_file()
    assert flavors["python_function"]["model_path"] == "model.skops"
    assert flavors["sklearn"]["serialization_format"] == "skops"
    assert flavors["sklearn"]["skops_trusted_types"] == [TREE_TYPE]


def test_two_saves_of_one_model_differ_only_in_uuid_and_time(tmp_path, logistic, iris):
    example = iris[0].head(2)
    for name in ("first", "second"):
        sklearn_flavor.save_model(logistic, tmp_path / name, input_example=example)

    def stable_lines(path):
        return [
            line
            for line in (path / "MLmodel").read_text().splitlines()
            if not line.startswith(("model_uuid:", "utc_time_created:"))
        ]

    first, second = tmp_path / "first", tmp_path / "second"
    assert stable_lines(first) == stable_lines(second)
    for name in sorted(p.name for p in first.iterdir() if p.name != "MLmodel"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_mlmodel_keys_are_sorted_so_it_diffs_well(tmp_path, logistic, iris):
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=iris[0].head(2))

    text = (tmp_path / "model" / "MLmodel").read_text()
    top_level = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]

    assert top_level == sorted(top_level)


def test_unknown_keys_in_mlmodel_survive_a_read_write_round_trip(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")
    mlmodel = read_mlmodel(tmp_path / "model")
    mlmodel.update({"mlflow_version": "3.1.0", "model_size_bytes": 1234, "prompts": None})
    (tmp_path / "model" / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    config = read_model_config(tmp_path / "model")
    write_model_config(tmp_path / "model", config)

    assert config.mlflow_version == "3.1.0"
    assert read_mlmodel(tmp_path / "model") == mlmodel


# --------------------------------------------------------------------------- signature


def test_signature_is_inferred_from_a_dataframe_example(tmp_path, logistic, iris):
    X = iris[0]

    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(5))

    signature = read_mlmodel(tmp_path / "model")["signature"]
    inputs = json.loads(signature["inputs"])
    assert inputs == [{"name": column, "required": True, "type": "double"} for column in X.columns]
    assert json.loads(signature["outputs"]) == [{"required": True, "type": "long"}]


def test_signature_is_inferred_from_an_ndarray_example(tmp_path, array_logistic, iris):
    X = iris[0].to_numpy()

    sklearn_flavor.save_model(array_logistic, tmp_path / "model", input_example=X[:5])

    signature = read_mlmodel(tmp_path / "model")["signature"]
    assert json.loads(signature["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}
    ]
    assert json.loads(signature["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]


def test_signature_maps_column_dtypes_to_mlflow_types_and_missing_values_to_optional():
    frame = pd.DataFrame(
        {
            "height": [1.5, np.nan],
            "count": np.array([1, 2], dtype="int32"),
            "total": [10, 20],
            "city": ["Lyon", "Oslo"],
            "member": [True, False],
            "score": np.array([0.5, 0.25], dtype="float32"),
            "seen": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        }
    )

    signature = infer_signature(frame)

    assert signature.inputs == Schema(
        (
            ColumnSpec("double", "height", required=False),
            ColumnSpec("integer", "count"),
            ColumnSpec("long", "total"),
            ColumnSpec("string", "city"),
            ColumnSpec("boolean", "member"),
            ColumnSpec("float", "score"),
            ColumnSpec("datetime", "seen"),
        )
    )


def test_a_given_signature_is_stored_instead_of_an_inferred_one(tmp_path, logistic, iris):
    signature = ModelSignature(inputs=Schema((TensorSpec("float64", (-1, 4)),)))

    sklearn_flavor.save_model(
        logistic, tmp_path / "model", signature=signature, input_example=iris[0].head(2)
    )

    assert read_model_config(tmp_path / "model").signature == signature


def test_signature_false_stores_no_signature_even_with_an_example(tmp_path, logistic, iris):
    sklearn_flavor.save_model(
        logistic, tmp_path / "model", signature=False, input_example=iris[0].head(2)
    )

    assert "signature" not in read_mlmodel(tmp_path / "model")


def test_a_column_without_a_signature_type_is_rejected_with_its_name():
    frame = pd.DataFrame({"ok": [1.0], "weird": [complex(1, 2)]})

    with pytest.raises(InvalidInputError, match="'weird'"):
        infer_signature(frame)


# --------------------------------------------------------------------------- input example


def test_dataframe_example_is_stored_in_split_orient(tmp_path, logistic, iris):
    X = iris[0]

    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(2))

    model_dir = tmp_path / "model"
    stored = json.loads((model_dir / "input_example.json").read_text())
    assert stored == {"columns": list(X.columns), "data": X.head(2).to_numpy().tolist()}
    assert read_mlmodel(model_dir)["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "pandas_orient": "split",
        "serving_input_path": "serving_input_example.json",
        "type": "dataframe",
    }
    serving = json.loads((model_dir / "serving_input_example.json").read_text())
    assert serving == {"dataframe_split": stored}


def test_ndarray_example_is_stored_as_nested_lists(tmp_path, array_logistic, iris):
    X = iris[0].to_numpy()

    sklearn_flavor.save_model(array_logistic, tmp_path / "model", input_example=X[:2])

    model_dir = tmp_path / "model"
    assert json.loads((model_dir / "input_example.json").read_text()) == X[:2].tolist()
    assert read_mlmodel(model_dir)["saved_input_example_info"]["type"] == "ndarray"
    serving = json.loads((model_dir / "serving_input_example.json").read_text())
    assert serving == {"inputs": X[:2].tolist()}


def test_stored_example_reads_back_with_its_dtypes(tmp_path):
    frame = pd.DataFrame({"x": [1.5, 2.5], "n": [3, 4]})
    model = LogisticRegression().fit(frame, [0, 1])
    sklearn_flavor.save_model(model, tmp_path / "model", input_example=frame)
    model_dir = tmp_path / "model"

    example = read_input_example(model_dir, read_model_config(model_dir))

    pd.testing.assert_frame_equal(example, frame)


def test_missing_values_in_an_example_are_stored_as_null(tmp_path, logistic, iris):
    example = iris[0].head(2).copy()
    example.iloc[0, 0] = np.nan

    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=example, signature=False)

    stored = json.loads((tmp_path / "model" / "input_example.json").read_text())
    assert stored["data"][0][0] is None


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("serialization_format", "serializer"),
    [("cloudpickle", ["cloudpickle"]), ("pickle", []), ("skops", ["skops"])],
)
def test_requirements_pin_the_installed_versions(
    tmp_path, logistic, serialization_format, serializer
):
    sklearn_flavor.save_model(
        logistic, tmp_path / "model", serialization_format=serialization_format
    )

    lines = (tmp_path / "model" / "requirements.txt").read_text().splitlines()
    packages = sorted(["numpy", "pandas", "scikit-learn", *serializer])
    assert lines == [f"{name}=={installed_version(name)}" for name in packages]


def test_python_env_and_conda_yaml_point_at_the_requirements(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")
    model_dir = tmp_path / "model"
    python = ".".join(map(str, sys.version_info[:3]))

    python_env = yaml.safe_load((model_dir / "python_env.yaml").read_text())
    conda = yaml.safe_load((model_dir / "conda.yaml").read_text())

    assert python_env["python"] == python
    assert python_env["dependencies"] == ["-r requirements.txt"]
    assert any(dep.startswith("pip") for dep in python_env["build_dependencies"])
    assert conda["dependencies"][0] == f"python={python}"
    requirements = (model_dir / "requirements.txt").read_text().splitlines()
    assert conda["dependencies"][-1] == {"pip": requirements}


def test_explicit_pip_requirements_replace_the_defaults(tmp_path, logistic):
    requirements_file = tmp_path / "reqs.txt"
    requirements_file.write_text("# pinned by hand\nscikit-learn>=1.2\n\nnumpy\n")

    sklearn_flavor.save_model(logistic, tmp_path / "a", pip_requirements=["scikit-learn==1.5.0"])
    sklearn_flavor.save_model(logistic, tmp_path / "b", pip_requirements=requirements_file)

    assert (tmp_path / "a" / "requirements.txt").read_text() == "scikit-learn==1.5.0\n"
    assert (tmp_path / "b" / "requirements.txt").read_text() == "scikit-learn>=1.2\nnumpy\n"


# --------------------------------------------------------------------------- save errors


def test_an_unknown_serialization_format_names_the_allowed_ones(tmp_path, logistic):
    with pytest.raises(InvalidInputError) as error:
        sklearn_flavor.save_model(logistic, tmp_path / "model", serialization_format="joblib")

    assert "'joblib'" in str(error.value)
    assert "cloudpickle, pickle, skops" in str(error.value)
    assert not (tmp_path / "model").exists()


def test_skops_format_without_skops_installed_is_a_clear_error(tmp_path, logistic, monkeypatch):
    monkeypatch.setitem(sys.modules, "skops.io", None)

    with pytest.raises(InvalidInputError, match="'skops'.*pip install skops"):
        sklearn_flavor.save_model(logistic, tmp_path / "model", serialization_format="skops")


def test_skops_refuses_untrusted_types_unless_they_are_listed(tmp_path, iris):
    forest = make_model("random_forest", *iris)

    with pytest.raises(InvalidInputError, match=TREE_TYPE.replace(".", r"\.")):
        sklearn_flavor.save_model(forest, tmp_path / "model", serialization_format="skops")

    assert not (tmp_path / "model").exists()


def test_metadata_that_yaml_cannot_store_is_rejected_before_writing(tmp_path, logistic):
    with pytest.raises(InvalidInputError, match="metadata"):
        sklearn_flavor.save_model(logistic, tmp_path / "model", metadata={"when": object()})

    assert not (tmp_path / "model").exists()


def test_saving_over_an_existing_model_is_refused(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")

    with pytest.raises(ConflictError, match="already exists"):
        sklearn_flavor.save_model(logistic, tmp_path / "model")


def test_saving_into_an_empty_directory_is_allowed(tmp_path, logistic):
    (tmp_path / "model").mkdir()

    sklearn_flavor.save_model(logistic, tmp_path / "model")

    assert (tmp_path / "model" / "MLmodel").is_file()


def test_pickle_cannot_store_a_lambda_and_says_so(tmp_path, iris):
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    model = make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression(max_iter=500))
    model.fit(X, y)

    with pytest.raises(InvalidInputError, match="cloudpickle"):
        sklearn_flavor.save_model(model, tmp_path / "model", serialization_format="pickle")
    sklearn_flavor.save_model(model, tmp_path / "model", serialization_format="cloudpickle")

    np.testing.assert_array_equal(
        sklearn_flavor.load_model(tmp_path / "model").predict(X), model.predict(X)
    )


# --------------------------------------------------------------------------- load errors


def test_loading_a_missing_directory_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        sklearn_flavor.load_model(tmp_path / "nowhere")


def test_loading_a_directory_without_mlmodel_names_the_missing_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")

    with pytest.raises(NotFoundError) as error:
        sklearn_flavor.load_model(tmp_path)

    assert "MLmodel is missing" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_loading_a_model_whose_model_file_is_gone_names_the_file(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model")
    (tmp_path / "model" / "model.pkl").unlink()

    with pytest.raises(CorruptDataError, match=r"model\.pkl.*missing"):
        sklearn_flavor.load_model(tmp_path / "model")


def test_an_unreadable_mlmodel_is_corrupt_data(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: [unclosed\n")

    with pytest.raises(CorruptDataError, match="MLmodel"):
        sklearn_flavor.load_model(tmp_path)


def test_an_mlmodel_without_flavors_is_corrupt_data(tmp_path):
    (tmp_path / "MLmodel").write_text("model_uuid: abc\n")

    with pytest.raises(CorruptDataError, match="flavors"):
        sklearn_flavor.load_model(tmp_path)


def test_a_model_without_the_sklearn_flavor_is_not_found(tmp_path):
    write_model_config(tmp_path, ModelConfig(flavors={"onnx": {"data": "model.onnx"}}))

    with pytest.raises(NotFoundError, match=r"no 'sklearn' flavor.*onnx"):
        sklearn_flavor.load_model(tmp_path)


def test_a_truncated_pickle_is_corrupt_data(tmp_path, logistic):
    sklearn_flavor.save_model(logistic, tmp_path / "model", serialization_format="pickle")
    model_file = tmp_path / "model" / "model.pkl"
    model_file.write_bytes(model_file.read_bytes()[:20])

    with pytest.raises(CorruptDataError, match=r"model\.pkl"):
        sklearn_flavor.load_model(tmp_path / "model")


# --------------------------------------------------------------------------- pyfunc


def test_pyfunc_predicts_like_the_estimator_on_a_dataframe(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(3))

    model = pyfunc_model.load_model(tmp_path / "model")

    np.testing.assert_array_equal(model.predict(X), logistic.predict(X))


def test_pyfunc_predicts_like_the_estimator_on_an_ndarray(tmp_path, array_logistic, iris):
    X = iris[0].to_numpy()
    sklearn_flavor.save_model(array_logistic, tmp_path / "model", input_example=X[:3])

    model = pyfunc_model.load_model(tmp_path / "model")

    np.testing.assert_array_equal(model.predict(X), array_logistic.predict(X))


def test_pyfunc_maps_an_ndarray_onto_the_signature_columns(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(3))
    model = pyfunc_model.load_model(tmp_path / "model")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        predictions = model.predict(X.to_numpy())

    np.testing.assert_array_equal(predictions, logistic.predict(X))


def test_pyfunc_accepts_a_dict_of_columns_and_a_list_of_records(tmp_path, logistic, iris):
    X = iris[0].head(4)
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X)
    model = pyfunc_model.load_model(tmp_path / "model")
    expected = logistic.predict(X)

    np.testing.assert_array_equal(model.predict(X.to_dict(orient="list")), expected)
    np.testing.assert_array_equal(model.predict(X.to_dict(orient="records")), expected)
    np.testing.assert_array_equal(model.predict(X.iloc[0].to_dict()), expected[:1])


def test_pyfunc_accepts_a_list_of_rows_without_a_signature(tmp_path, array_logistic, iris):
    X = iris[0].to_numpy()
    sklearn_flavor.save_model(array_logistic, tmp_path / "model")

    model = pyfunc_model.load_model(tmp_path / "model")

    np.testing.assert_array_equal(model.predict(X[:5].tolist()), array_logistic.predict(X[:5]))


def test_pyfunc_reorders_columns_by_signature_and_drops_extra_ones(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(3))
    model = pyfunc_model.load_model(tmp_path / "model")
    shuffled = X[list(reversed(X.columns))].assign(note="extra")

    np.testing.assert_array_equal(model.predict(shuffled), logistic.predict(X))


def test_pyfunc_names_a_missing_column(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(3))
    model = pyfunc_model.load_model(tmp_path / "model")

    with pytest.raises(InvalidInputError, match=r"missing column\(s\) \['petal width \(cm\)'\]"):
        model.predict(X.drop(columns=["petal width (cm)"]))


def test_pyfunc_widens_integer_columns_where_the_signature_says_double(tmp_path):
    train = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "y": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(train, [0, 0, 1, 1])
    sklearn_flavor.save_model(model, tmp_path / "model", input_example=train)
    loaded = pyfunc_model.load_model(tmp_path / "model")
    seen = []
    loaded.get_raw_model().predict = lambda data: seen.append(data.dtypes.tolist())

    loaded.predict(pd.DataFrame({"x": [1, 2], "y": [0, 1]}))

    assert seen == [[np.dtype("float64"), np.dtype("float64")]]


def test_pyfunc_rejects_an_array_of_the_wrong_width(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=X.head(3))
    model = pyfunc_model.load_model(tmp_path / "model")

    with pytest.raises(InvalidInputError, match=r"shape \(n, 4\), got \(150, 3\)"):
        model.predict(X.to_numpy()[:, :3])


def test_pyfunc_rejects_a_tensor_of_the_wrong_shape(tmp_path, array_logistic, iris):
    X = iris[0].to_numpy()
    sklearn_flavor.save_model(array_logistic, tmp_path / "model", input_example=X[:3])
    model = pyfunc_model.load_model(tmp_path / "model")

    with pytest.raises(InvalidInputError, match=r"shape \(150, 2\).*\(-1, 4\)"):
        model.predict(X[:, :2])


def test_pyfunc_exposes_metadata_and_the_raw_estimator(tmp_path, logistic, iris):
    sklearn_flavor.save_model(logistic, tmp_path / "model", input_example=iris[0].head(2))

    model = pyfunc_model.load_model(f"file://{tmp_path / 'model'}")

    assert isinstance(model.metadata, ModelConfig)
    assert model.metadata.flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    assert model.metadata.get_input_schema().names() == list(iris[0].columns)
    assert model.loader_module == "mlflow.sklearn"
    assert isinstance(model.unwrap_python_model(), LogisticRegression)
    assert model.get_raw_model() is model.unwrap_python_model()


def test_pyfunc_calls_the_predict_fn_named_in_mlmodel(tmp_path, logistic, iris):
    X = iris[0]
    sklearn_flavor.save_model(logistic, tmp_path / "model", pyfunc_predict_fn="predict_proba")

    model = pyfunc_model.load_model(tmp_path / "model")

    np.testing.assert_allclose(model.predict(X), logistic.predict_proba(X))


def test_pyfunc_refuses_a_loader_module_it_does_not_know(tmp_path):
    flavors = {"python_function": {"loader_module": "mlflow.pytorch", "data": "data"}}
    write_model_config(tmp_path, ModelConfig(flavors=flavors))

    with pytest.raises(
        InvalidInputError, match="'mlflow.pytorch'.*supported: mlflow.pyfunc.model, mlflow.sklearn"
    ):
        pyfunc_model.load_model(tmp_path)


def test_pyfunc_needs_the_python_function_flavor(tmp_path, iris):
    scaler = StandardScaler().fit(iris[0])
    sklearn_flavor.save_model(scaler, tmp_path / "model")

    assert "python_function" not in read_mlmodel(tmp_path / "model")["flavors"]
    with pytest.raises(NotFoundError, match="'python_function'"):
        pyfunc_model.load_model(tmp_path / "model")


def test_pyfunc_refuses_remote_uris(tmp_path):
    with pytest.raises(InvalidInputError, match="runs:/"):
        pyfunc_model.load_model("runs:/abc/model")


def test_importing_the_model_modules_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "import gittrack.models.pyfunc_model, gittrack.models.sklearn_flavor\n"
        "print(sorted(m for m in ('sklearn', 'pandas', 'cloudpickle', 'skops') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- MLflow itself


@pytest.fixture
def mlflow():
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("mlflow.sklearn")
    return mlflow


@pytest.mark.slow
@pytest.mark.parametrize("serialization_format", ["cloudpickle", "pickle", "skops"])
@pytest.mark.parametrize("kind", ["random_forest", "pipeline"])
def test_mlflow_loads_a_gittrack_model_and_predicts_the_same(
    tmp_path, mlflow, iris, kind, serialization_format
):
    X, y = iris
    model = make_model(kind, X, y)
    trusted = [TREE_TYPE] if kind == "random_forest" and serialization_format == "skops" else None
    sklearn_flavor.save_model(
        model,
        tmp_path / "model",
        serialization_format=serialization_format,
        skops_trusted_types=trusted,
        input_example=X.head(5),
    )
    path = str(tmp_path / "model")

    via_pyfunc = mlflow.pyfunc.load_model(path).predict(X)
    via_sklearn = mlflow.sklearn.load_model(path).predict(X)

    expected = pyfunc_model.load_model(path).predict(X)
    np.testing.assert_array_equal(via_pyfunc, expected)
    np.testing.assert_array_equal(via_sklearn, expected)
    np.testing.assert_array_equal(expected, model.predict(X))


@pytest.mark.slow
def test_mlflow_reads_the_gittrack_signature_and_input_example(tmp_path, mlflow, iris):
    from mlflow.models import Model

    X, y = iris
    model = make_model("logistic_regression", X, y)
    sklearn_flavor.save_model(model, tmp_path / "model", input_example=X.head(3))

    mlflow_model = Model.load(str(tmp_path / "model"))

    assert mlflow_model.signature.inputs.input_names() == list(X.columns)
    assert mlflow_model.signature.to_dict()["outputs"] is not None
    pd.testing.assert_frame_equal(
        mlflow_model.load_input_example(str(tmp_path / "model")),
        X.head(3).reset_index(drop=True),
    )


@pytest.mark.slow
def test_mlflow_and_gittrack_infer_the_same_signature(tmp_path, mlflow, iris):
    from mlflow.models import ModelSignature as MlflowSignature
    from mlflow.models import infer_signature as mlflow_infer_signature

    X, y = iris
    for data in (X, X.to_numpy()):
        prediction = LogisticRegression(max_iter=500).fit(data, y).predict_proba(data)
        ours = infer_signature(data, prediction)

        assert MlflowSignature.from_dict(ours.to_dict()) == mlflow_infer_signature(data, prediction)


@pytest.mark.slow
@pytest.mark.parametrize("serialization_format", ["cloudpickle", "skops"])
def test_gittrack_loads_a_model_saved_by_mlflow(tmp_path, mlflow, iris, serialization_format):
    X, y = iris
    model = make_model("pipeline", X, y)
    path = str(tmp_path / "model")
    mlflow.sklearn.save_model(
        model, path, serialization_format=serialization_format, input_example=X.head(3)
    )

    loaded = pyfunc_model.load_model(path)

    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(sklearn_flavor.load_model(path).predict(X), model.predict(X))
    assert loaded.metadata.mlflow_version == mlflow.__version__
    assert read_input_example(path, loaded.metadata).shape == (3, 4)
