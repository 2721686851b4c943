"""Custom Python models (``gittrack.pyfunc.PythonModel``): save, log, register, load, predict.

Models saved by gittrack load in MLflow and the reverse; these tests run the real MLflow on
the same inputs where gittrack claims its behaviour.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import gittrack
import gittrack.pyfunc
from gittrack import Client
from gittrack.errors import ConflictError, InvalidInputError
from gittrack.models.resolve import UntrustedPickleWarning
from gittrack.models.signature import ModelSignature

from .conftest import git, make_repo, run_script, tree_fingerprint

pytest.importorskip("sklearn")


class AddOffset(gittrack.pyfunc.PythonModel):
    """Adds the number stored in the ``offset`` artifact, times ``params['scale']``."""

    def load_context(self, context):
        self.offset = float(Path(context.artifacts["offset"]).read_text())
        self.artifacts = dict(context.artifacts)
        self.config = context.model_config

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1)
        return model_input["x"] * scale + self.offset


class WithoutContext(gittrack.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return model_input["x"] * 2


class ContextUnderAnotherName(gittrack.pyfunc.PythonModel):
    def predict(self, ctx, model_input):
        return model_input["x"] * 3


class ScaledClassifier(gittrack.pyfunc.PythonModel):
    """A scikit-learn scaler and classifier, each saved as an artifact file."""

    def load_context(self, context):
        with open(context.artifacts["scaler"], "rb") as handle:
            self.scaler = pickle.load(handle)
        with open(context.artifacts["classifier"], "rb") as handle:
            self.classifier = pickle.load(handle)

    def predict(self, context, model_input, params=None):
        return self.classifier.predict(self.scaler.transform(model_input))


class NoPredict(gittrack.pyfunc.PythonModel):
    pass


@pytest.fixture
def offset_file(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "offset.txt"
    path.parent.mkdir()
    path.write_text("10")
    return path


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture
def classifier_files(tmp_path: Path, iris) -> dict[str, str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    scaler = StandardScaler().fit(X)
    classifier = LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
    files = {}
    for name, obj in (("scaler", scaler), ("classifier", classifier)):
        path = tmp_path / "inputs" / f"{name}.pkl"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(pickle.dumps(obj))
        files[name] = str(path)
    return files


@pytest.fixture
def real_mlflow():
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("mlflow.pyfunc")
    return mlflow


def frame(*values: float) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(v) for v in values]})


def mlmodel(model_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((model_dir / "MLmodel").read_text())


# --------------------------------------------------------------------------- save and load


def test_save_model_writes_mlflows_python_function_layout(tmp_path: Path, offset_file) -> None:
    target = tmp_path / "model"
    gittrack.pyfunc.save_model(
        target, python_model=AddOffset(), artifacts={"offset": str(offset_file)}
    )

    conf = mlmodel(target)["flavors"]["python_function"]
    assert conf["loader_module"] == "mlflow.pyfunc.model"
    assert conf["python_model"] == "python_model.pkl"
    assert conf["artifacts"] == {
        "offset": {"path": "artifacts/offset.txt", "uri": str(offset_file)}
    }
    assert conf["cloudpickle_version"] and conf["python_version"]
    assert (target / "artifacts" / "offset.txt").read_text() == "10"
    assert {"python_model.pkl", "requirements.txt", "python_env.yaml", "conda.yaml"} <= {
        p.name for p in target.iterdir()
    }
    requirements = (target / "requirements.txt").read_text().splitlines()
    assert [line.split("==")[0] for line in requirements] == ["cloudpickle", "gittrack"]


def test_load_context_gets_absolute_paths_of_the_copies_and_the_model_config(
    tmp_path: Path, offset_file
) -> None:
    target = tmp_path / "model"
    gittrack.pyfunc.save_model(
        target,
        python_model=AddOffset(),
        artifacts={"offset": str(offset_file)},
        model_config={"threshold": 0.5},
    )
    offset_file.unlink()  # the model holds its own copy

    loaded = gittrack.pyfunc.load_model(str(target))
    model = loaded.unwrap_python_model()
    assert isinstance(model, AddOffset) and model.offset == 10.0
    assert model.artifacts == {"offset": str(target.resolve() / "artifacts" / "offset.txt")}
    assert model.config == {"threshold": 0.5}
    assert loaded.get_raw_model() is model and "AddOffset" in repr(loaded)
    assert list(loaded.predict(frame(1, 2))) == [11.0, 12.0]


@pytest.mark.parametrize(
    ("model", "expected"),
    [(AddOffset(), [11.0]), (WithoutContext(), [2.0]), (ContextUnderAnotherName(), [3.0])],
    ids=["context", "no-context", "ctx"],
)
def test_predict_may_take_the_context_or_leave_it_out(
    tmp_path: Path, offset_file, model, expected
) -> None:
    target = tmp_path / "model"
    gittrack.pyfunc.save_model(target, python_model=model, artifacts={"offset": str(offset_file)})
    assert list(gittrack.pyfunc.load_model(str(target)).predict(frame(1))) == expected


def test_a_function_of_one_argument_is_a_model(tmp_path: Path) -> None:
    def double(model_input):
        return model_input["x"] * 2

    gittrack.pyfunc.save_model(tmp_path / "model", python_model=double)
    assert list(gittrack.pyfunc.load_model(str(tmp_path / "model")).predict(frame(4))) == [8.0]


def test_model_config_at_load_overrides_only_keys_saved_with_the_model(
    tmp_path: Path, offset_file
) -> None:
    target = tmp_path / "model"
    gittrack.pyfunc.save_model(
        target,
        python_model=AddOffset(),
        artifacts={"offset": str(offset_file)},
        model_config={"threshold": 0.5, "mode": "fast"},
    )
    with pytest.warns(UserWarning, match=r"\['unknown'\] are ignored"):
        loaded = gittrack.pyfunc.load_model(
            str(target), model_config={"threshold": 0.9, "unknown": 1}
        )
    assert loaded.unwrap_python_model().config == {"threshold": 0.9, "mode": "fast"}
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("mode: slow\n")
    from_file = gittrack.pyfunc.load_model(str(target), model_config=str(overrides))
    assert from_file.unwrap_python_model().config == {"threshold": 0.5, "mode": "slow"}


def test_params_reach_predict_as_the_signature_params_schema_allows(
    tmp_path: Path, offset_file
) -> None:
    schema = [{"name": "scale", "type": "long", "default": 5, "shape": None}]
    signature = ModelSignature.from_dict(
        {"inputs": '[{"type": "double", "name": "x", "required": true}]'}
    )
    signature = ModelSignature(signature.inputs, None, json.dumps(schema))
    artifacts = {"offset": str(offset_file)}
    gittrack.pyfunc.save_model(
        tmp_path / "with", python_model=AddOffset(), artifacts=artifacts, signature=signature
    )
    gittrack.pyfunc.save_model(tmp_path / "without", python_model=AddOffset(), artifacts=artifacts)

    declared = gittrack.pyfunc.load_model(str(tmp_path / "with"))
    assert list(declared.predict(frame(1), params={"scale": 2})) == [12.0]
    assert list(declared.predict(frame(1))) == [15.0]  # the schema's default
    with pytest.warns(UserWarning, match=r"\['other'\] are ignored"):
        assert list(declared.predict(frame(1), params={"other": 2})) == [15.0]
    undeclared = gittrack.pyfunc.load_model(str(tmp_path / "without"))
    with pytest.warns(UserWarning, match="defines no params schema"):
        assert list(undeclared.predict(frame(1), params={"scale": 2})) == [11.0]


def test_sources_sharing_a_file_name_are_kept_apart_and_a_shared_source_is_stored_once(
    tmp_path: Path,
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "weights.txt").write_text(folder)
    (tmp_path / "vocab.txt").write_text("v")
    artifacts = {
        "first": str(tmp_path / "a" / "weights.txt"),
        "second": str(tmp_path / "b" / "weights.txt"),
        "vocab": str(tmp_path / "vocab.txt"),
        "same_vocab": str(tmp_path / "vocab.txt"),
    }
    gittrack.pyfunc.save_model(
        tmp_path / "model", python_model=WithoutContext(), artifacts=artifacts
    )
    paths = {
        name: info["path"]
        for name, info in mlmodel(tmp_path / "model")["flavors"]["python_function"][
            "artifacts"
        ].items()
    }
    assert paths == {
        "first": "artifacts/0/weights.txt",
        "second": "artifacts/1/weights.txt",
        "vocab": "artifacts/vocab.txt",
        "same_vocab": "artifacts/vocab.txt",
    }
    assert (tmp_path / "model" / "artifacts" / "1" / "weights.txt").read_text() == "b"


class ReadsADirectory(gittrack.pyfunc.PythonModel):
    def load_context(self, context):
        folder = Path(context.artifacts["folder"])
        self.total = sum(float(p.read_text()) for p in sorted(folder.iterdir()))
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, model_input):
        return model_input["x"] + self.total + self.offset


def test_a_directory_and_a_file_uri_are_artifacts_too(tmp_path: Path, offset_file) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    for index in range(3):
        (folder / f"w{index}.txt").write_text(str(index))
    gittrack.pyfunc.save_model(
        tmp_path / "model",
        python_model=ReadsADirectory(),
        artifacts={"folder": str(folder), "offset": offset_file.as_uri()},
    )
    conf = mlmodel(tmp_path / "model")["flavors"]["python_function"]["artifacts"]
    assert conf["folder"]["path"] == "artifacts/weights"
    assert conf["offset"] == {"path": "artifacts/offset.txt", "uri": offset_file.as_uri()}
    assert list(gittrack.pyfunc.load_model(str(tmp_path / "model")).predict(frame(1))) == [14.0]


def test_code_paths_are_importable_when_the_model_loads_in_a_new_process(tmp_path: Path) -> None:
    helpers = tmp_path / "src" / "offset_helpers.py"
    helpers.parent.mkdir()
    helpers.write_text("def shift(values):\n    return values + 100\n")
    save = f"""
import sys
sys.path.insert(0, {str(helpers.parent)!r})
import pandas as pd
import gittrack.pyfunc

class Shift(gittrack.pyfunc.PythonModel):
    def load_context(self, context):
        import offset_helpers
        self.shift = offset_helpers.shift

    def predict(self, model_input):
        return self.shift(model_input["x"])

gittrack.pyfunc.save_model("model", python_model=Shift(), code_paths=[{str(helpers)!r}])
"""
    assert run_script(save, tmp_path).returncode == 0
    assert mlmodel(tmp_path / "model")["flavors"]["python_function"]["code"] == "code"
    helpers.unlink()
    load = """
import pandas as pd
import gittrack.pyfunc
print(list(gittrack.pyfunc.load_model("model").predict(pd.DataFrame({"x": [1.0]}))))
"""
    proc = run_script(load, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[101.0]"


# --------------------------------------------------------------------------- bad input


def test_a_python_model_of_the_wrong_type_is_rejected_by_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="PythonModel instance.*not dict"):
        gittrack.pyfunc.save_model(tmp_path / "model", python_model={"weights": 1})
    with pytest.raises(InvalidInputError, match="taking 2 arguments"):
        gittrack.pyfunc.save_model(tmp_path / "model", python_model=lambda a, b: a)
    with pytest.raises(InvalidInputError, match="NoPredict does not override predict"):
        gittrack.pyfunc.save_model(tmp_path / "model", python_model=NoPredict())
    assert not (tmp_path / "model").exists()


def test_a_missing_artifact_is_reported_before_anything_is_written(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.bin"
    with pytest.raises(InvalidInputError, match=f"artifact 'weights': {missing} does not exist"):
        gittrack.pyfunc.save_model(
            tmp_path / "model", python_model=AddOffset(), artifacts={"weights": str(missing)}
        )
    with pytest.raises(InvalidInputError, match="s3://bucket/w.bin.*not supported"):
        gittrack.pyfunc.save_model(
            tmp_path / "model", python_model=AddOffset(), artifacts={"w": "s3://bucket/w.bin"}
        )
    assert not (tmp_path / "model").exists()


class HoldsALock(gittrack.pyfunc.PythonModel):
    def __init__(self):
        import threading

        self.lock = threading.Lock()

    def predict(self, model_input):
        return model_input


def test_a_model_cloudpickle_cannot_store_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot serialize python_model HoldsALock"):
        gittrack.pyfunc.save_model(tmp_path / "model", python_model=HoldsALock())
    assert not (tmp_path / "model").exists()


def test_saving_into_a_non_empty_directory_fails_as_in_mlflow(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="already exists"):
        gittrack.pyfunc.save_model(target, python_model=WithoutContext())
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_pip_requirements_and_extra_pip_requirements_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="only one of pip_requirements"):
        gittrack.pyfunc.save_model(
            tmp_path / "m",
            python_model=WithoutContext(),
            pip_requirements=["numpy"],
            extra_pip_requirements=["scipy"],
        )
    gittrack.pyfunc.save_model(
        tmp_path / "m", python_model=WithoutContext(), extra_pip_requirements=["scipy==1.0"]
    )
    assert (tmp_path / "m" / "requirements.txt").read_text().splitlines()[-1] == "scipy==1.0"


def test_a_model_needing_a_module_that_is_not_installed_says_which(tmp_path: Path) -> None:
    gittrack.pyfunc.save_model(tmp_path / "model", python_model=WithoutContext())
    code = """
import sys
sys.modules["tests"] = None  # the module that defines the model's class is not installed
import gittrack.pyfunc
from gittrack.errors import InvalidStateError
try:
    gittrack.pyfunc.load_model("model")
except InvalidStateError as exc:
    print(exc)
"""
    proc = run_script(code, tmp_path)
    assert "needs the module 'tests.test_python_model', which is not installed" in proc.stdout, (
        proc.stderr
    )


# --------------------------------------------------------------------------- runs and registry


def test_log_model_copies_the_artifacts_into_the_run(repo: Path, offset_file) -> None:
    before = tree_fingerprint(repo)
    with gittrack.start_run() as run:
        info = gittrack.pyfunc.log_model(
            name="adder", python_model=AddOffset(), artifacts={"offset": str(offset_file)}
        )
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/adder"
    files = {f.path for f in Client().list_artifacts(run_id, "adder/artifacts")}
    assert files == {"adder/artifacts/offset.txt"}
    mlmodel_text = Client().download_artifacts(run_id, "adder/MLmodel", repo.parent / "dl")
    assert yaml.safe_load(Path(mlmodel_text).read_text())["run_id"] == run_id
    offset_file.write_text("99")  # the run keeps the file as it was logged
    assert list(gittrack.pyfunc.load_model(info.model_uri).predict(frame(1))) == [11.0]
    assert tree_fingerprint(repo) == before


def test_artifact_path_is_the_deprecated_spelling_of_name(repo: Path) -> None:
    with gittrack.start_run() as run:
        gittrack.pyfunc.log_model("old", python_model=WithoutContext())
        with pytest.raises(InvalidInputError, match="give one of them"):
            gittrack.pyfunc.log_model("a", python_model=WithoutContext(), name="b")
    assert "old/MLmodel" in {f.path for f in Client().list_artifacts(run.info.run_id, "old")}


def test_artifacts_may_come_from_runs_and_registered_models(repo: Path) -> None:
    client = Client()
    with gittrack.start_run() as source_run:
        gittrack.log_text("7", "offset.txt")
        gittrack.pyfunc.log_model(
            name="inner", python_model=WithoutContext(), registered_model_name="Inner"
        )
    runs_uri = f"runs:/{source_run.info.run_id}/offset.txt"
    gittrack.pyfunc.save_model(
        repo.parent / "model",
        python_model=AddOffset(),
        artifacts={"offset": runs_uri, "inner": "models:/Inner/1"},
    )
    conf = mlmodel(repo.parent / "model")["flavors"]["python_function"]["artifacts"]
    assert conf["offset"] == {"path": "artifacts/offset.txt", "uri": runs_uri}
    assert conf["inner"]["uri"] == "models:/Inner/1"
    assert (repo.parent / "model" / conf["inner"]["path"] / "MLmodel").is_file()
    assert list(gittrack.pyfunc.load_model(str(repo.parent / "model")).predict(frame(1))) == [8.0]
    assert client.get_registered_model("Inner").name == "Inner"


ACCEPTANCE_LOG = """
import pickle
import gittrack as mlflow
import gittrack.pyfunc
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

class ScaledIris(gittrack.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["scaler"], "rb") as handle:
            self.scaler = pickle.load(handle)
        with open(context.artifacts["classifier"], "rb") as handle:
            self.classifier = pickle.load(handle)

    def predict(self, context, model_input, params=None):
        return self.classifier.predict_proba(self.scaler.transform(model_input))

X, y = load_iris(return_X_y=True, as_frame=True)
scaler = StandardScaler().fit(X)
classifier = LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
with open("scaler.pkl", "wb") as out:
    pickle.dump(scaler, out)
with open("classifier.pkl", "wb") as out:
    pickle.dump(classifier, out)
with mlflow.start_run():
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=ScaledIris(),
        artifacts={"scaler": "scaler.pkl", "classifier": "classifier.pkl"},
        input_example=X.head(3),
        registered_model_name="ScaledIris",
    )
mlflow.MlflowClient().set_registered_model_alias("ScaledIris", "champion", 1)
with open("expected.json", "w") as out:
    out.write(repr(classifier.predict_proba(scaler.transform(X)).tolist()))
print(info.registered_model_version)
"""

ACCEPTANCE_LOAD = """
import sys
import gittrack.pyfunc
from sklearn.datasets import load_iris

X, _ = load_iris(return_X_y=True, as_frame=True)
model = gittrack.pyfunc.load_model(sys.argv[1] if len(sys.argv) > 1 else "{uri}")
print(repr(model.predict(X).tolist()))
"""


@pytest.mark.slow
def test_a_python_model_with_artifacts_round_trips_through_models_uris_after_registration(
    repo: Path,
) -> None:
    before = tree_fingerprint(repo)
    logged = run_script(ACCEPTANCE_LOG, repo)
    assert logged.returncode == 0, logged.stderr
    assert logged.stdout.strip() == "1"
    for name in ("scaler.pkl", "classifier.pkl"):
        (repo / name).unlink()  # the registered model holds its own copies
    expected = (repo / "expected.json").read_text()
    (repo / "expected.json").unlink()
    for uri in ("models:/ScaledIris/1", "models:/ScaledIris@champion"):
        loaded = run_script(ACCEPTANCE_LOAD.replace("{uri}", uri), repo)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip() == expected
    assert without_registry_tags(tree_fingerprint(repo)) == without_registry_tags(before)


def test_the_custom_model_example_registers_and_loads_its_model_by_alias(repo: Path) -> None:
    import subprocess
    import sys

    from .conftest import SRC

    before = tree_fingerprint(repo)
    example = Path(__file__).resolve().parents[1] / "examples" / "custom_python_model.py"
    proc = subprocess.run(
        [sys.executable, str(example)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "registered IrisScaled version 1 as @champion" in proc.stdout
    accuracy = float(proc.stdout.split("accuracy=")[1].split()[0])
    assert accuracy > 0.9
    assert "probability rows sum to one: True" in proc.stdout
    assert Client().get_model_version_by_alias("IrisScaled", "champion").version in (1, "1")
    assert without_registry_tags(tree_fingerprint(repo)) == without_registry_tags(before)


def without_registry_tags(fingerprint: dict[str, str]) -> dict[str, str]:
    """The registry is git tags: registering adds them, and nothing else may change."""
    return {key: value for key, value in fingerprint.items() if "/refs/tags/" not in key}


def test_someone_elses_python_model_is_loaded_with_an_untrusted_pickle_warning(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gittrack.fluent import _reset_state
    from gittrack.tracking.repository import forget_repositories

    alice = make_repo(tmp_path / "alice")
    git(alice, "config", "user.name", "Alice")
    git(alice, "config", "user.email", "alice@example.com")
    monkeypatch.chdir(alice)
    with gittrack.start_run() as run:
        gittrack.pyfunc.log_model(name="model", python_model=WithoutContext())
    monkeypatch.chdir(repo)
    _reset_state()
    forget_repositories()
    git(repo, "fetch", "-q", str(alice), "gittrack:gittrack")

    with pytest.warns(UntrustedPickleWarning, match="committed by Alice"):
        gittrack.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    with gittrack.start_run() as mine:
        gittrack.pyfunc.log_model(name="model", python_model=WithoutContext())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrustedPickleWarning)
        gittrack.pyfunc.load_model(f"runs:/{mine.info.run_id}/model")


# --------------------------------------------------------------------------- against MLflow


def test_mlflow_loads_a_gittrack_python_model_and_predicts_the_same(
    tmp_path: Path, real_mlflow, classifier_files, iris
) -> None:
    X, _ = iris
    target = tmp_path / "model"
    gittrack.pyfunc.save_model(
        target, python_model=ScaledClassifier(), artifacts=classifier_files, input_example=X.head(3)
    )
    ours = gittrack.pyfunc.load_model(str(target)).predict(X)
    theirs = real_mlflow.pyfunc.load_model(str(target))
    np.testing.assert_array_equal(theirs.predict(X), ours)
    assert theirs.metadata.signature.inputs.input_names() == list(X.columns)


def test_gittrack_loads_an_mlflow_python_model_and_predicts_the_same(
    tmp_path: Path, real_mlflow, classifier_files, iris
) -> None:
    X, _ = iris

    class MlflowScaledClassifier(real_mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.inner = ScaledClassifier()
            self.inner.load_context(context)

        def predict(self, model_input, params=None):
            return self.inner.predict(None, model_input)

    target = tmp_path / "model"
    real_mlflow.pyfunc.save_model(
        str(target),
        python_model=MlflowScaledClassifier(),
        artifacts=classifier_files,
        input_example=X.head(3),
    )
    expected = real_mlflow.pyfunc.load_model(str(target)).predict(X)
    loaded = gittrack.pyfunc.load_model(str(target))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert type(loaded.unwrap_python_model()).__name__ == "MlflowScaledClassifier"


class Echo(gittrack.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return type(model_input).__name__, repr(model_input)


def test_without_a_signature_a_custom_model_gets_its_input_as_mlflow_gives_it(
    tmp_path: Path, real_mlflow
) -> None:
    gittrack.pyfunc.save_model(tmp_path / "model", python_model=Echo())
    theirs = real_mlflow.pyfunc.load_model(str(tmp_path / "model"))
    ours = gittrack.pyfunc.load_model(str(tmp_path / "model"))
    inputs = [["a", "b"], {"x": [1, 2]}, [[1, 2], [3, 4]], [{"x": 1}], np.array([1.0]), "text"]
    for data in inputs:
        assert ours.predict(data) == theirs.predict(data)
    assert ours.predict(["a", "b"]) == ("list", "['a', 'b']")


def test_mlflow_and_gittrack_pass_params_the_same_way(
    tmp_path: Path, real_mlflow, offset_file
) -> None:
    from mlflow.models import ModelSignature as MlflowSignature
    from mlflow.models import infer_signature as mlflow_infer_signature

    mlflow_signature = mlflow_infer_signature(frame(1), frame(1)["x"], params={"scale": 5})
    signature = ModelSignature.from_dict(mlflow_signature.to_dict())
    assert MlflowSignature.from_dict(signature.to_dict()) == mlflow_signature
    cases = [{"scale": 2}, None, {"other": 3}]
    for label, sig in (("with", signature), ("without", None)):
        target = tmp_path / label
        gittrack.pyfunc.save_model(
            target, python_model=AddOffset(), artifacts={"offset": str(offset_file)}, signature=sig
        )
        theirs = real_mlflow.pyfunc.load_model(str(target))
        ours = gittrack.pyfunc.load_model(str(target))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for params in cases:
                assert list(ours.predict(frame(1), params=params)) == list(
                    theirs.predict(frame(1), params=params)
                ), (label, params)


class DescribeInput(gittrack.pyfunc.PythonModel):
    def predict(self, model_input):
        return [f"{column}:{model_input[column].dtype}" for column in model_input.columns]


def test_the_input_is_fitted_to_the_signature_as_mlflow_fits_it(
    tmp_path: Path, real_mlflow
) -> None:
    example = pd.DataFrame({"a": [1.5], "b": [2.5]})
    gittrack.pyfunc.save_model(
        tmp_path / "model", python_model=DescribeInput(), input_example=example
    )
    theirs = real_mlflow.pyfunc.load_model(str(tmp_path / "model"))
    ours = gittrack.pyfunc.load_model(str(tmp_path / "model"))
    reordered = pd.DataFrame({"b": [2.0], "a": [1.0]})
    expected = ["a:float64", "b:float64"]
    assert ours.predict(reordered) == theirs.predict(reordered) == expected


class EchoParams(gittrack.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return repr(sorted((k, type(v).__name__, v) for k, v in (params or {}).items()))


PARAM_CASES = [
    {},
    {"n": 2},
    {"n": 2.5},
    {"n": True},
    {"n": np.int64(3)},
    {"f": 3},
    {"f": np.float32(1.5)},
    {"f": "1.5"},
    {"s": 5},
    {"b": 1},
    {"b": False},
    {"xs": [3, 4]},
    {"xs": 3},
    {"xs": [1.5]},
    {"when": "2021-02-03"},
    {"when": "not a date"},
]


def test_params_are_converted_and_refused_as_mlflow_does(tmp_path: Path, real_mlflow) -> None:
    import datetime as dt

    defaults = {
        "n": 1,
        "f": 0.5,
        "s": "a",
        "b": True,
        "xs": [1, 2],
        "when": dt.datetime(2020, 1, 1),
    }
    mlflow_signature = real_mlflow.models.infer_signature(frame(1), ["out"], params=defaults)
    gittrack.pyfunc.save_model(
        tmp_path / "model",
        python_model=EchoParams(),
        signature=ModelSignature.from_dict(mlflow_signature.to_dict()),
    )
    theirs = real_mlflow.pyfunc.load_model(str(tmp_path / "model"))
    ours = gittrack.pyfunc.load_model(str(tmp_path / "model"))
    for params in PARAM_CASES:
        try:
            expected = theirs.predict(frame(1), params=params)
        except real_mlflow.exceptions.MlflowException:
            with pytest.raises(InvalidInputError, match="invalid params"):
                ours.predict(frame(1), params=params)
        else:
            assert ours.predict(frame(1), params=params) == expected, params


def test_mlflow_and_gittrack_lay_out_the_same_artifacts_and_signature(
    tmp_path: Path, real_mlflow, offset_file
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "offset.txt").write_text("1")
    artifacts = {
        "offset": str(offset_file),
        "again": str(offset_file),
        "other": str(tmp_path / "b" / "offset.txt"),
    }
    example = frame(1, 2)
    gittrack.pyfunc.save_model(
        tmp_path / "ours", python_model=AddOffset(), artifacts=artifacts, input_example=example
    )

    class MlflowAddOffset(real_mlflow.pyfunc.PythonModel):
        load_context = AddOffset.load_context

        def predict(self, context, model_input, params=None):
            return AddOffset.predict(self, context, model_input, params)

    real_mlflow.pyfunc.save_model(
        str(tmp_path / "theirs"),
        python_model=MlflowAddOffset(),
        artifacts=artifacts,
        input_example=example,
    )
    ours, theirs = mlmodel(tmp_path / "ours"), mlmodel(tmp_path / "theirs")
    conf, their_conf = ours["flavors"]["python_function"], theirs["flavors"]["python_function"]
    assert conf["artifacts"] == their_conf["artifacts"]
    for key in ("loader_module", "python_model", "cloudpickle_version", "env"):
        assert conf[key] == their_conf[key], key
    assert {k: json.loads(v) for k, v in ours["signature"].items() if v} == {
        k: json.loads(v) for k, v in theirs["signature"].items() if v
    }


def test_an_mlflow_python_model_saved_by_gittrack_lists_mlflow_and_loads_in_both(
    tmp_path: Path, real_mlflow
) -> None:
    class MlflowDouble(real_mlflow.pyfunc.PythonModel):
        def predict(self, model_input, params=None):
            return model_input["x"] * 2

    gittrack.pyfunc.save_model(tmp_path / "model", python_model=MlflowDouble())
    requirements = (tmp_path / "model" / "requirements.txt").read_text().splitlines()
    assert [line.split("==")[0] for line in requirements] == ["cloudpickle", "mlflow"]
    ours = gittrack.pyfunc.load_model(str(tmp_path / "model")).predict(frame(2))
    theirs = real_mlflow.pyfunc.load_model(str(tmp_path / "model")).predict(frame(2))
    assert list(ours) == list(theirs) == [4.0]


def test_a_model_saved_with_mlflow_needs_mlflow_installed_to_load(
    tmp_path: Path, real_mlflow
) -> None:
    save = """
import mlflow.pyfunc

class Plain(mlflow.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return model_input

mlflow.pyfunc.save_model("model", python_model=Plain())
"""
    assert run_script(save, tmp_path).returncode == 0
    load = """
import sys
sys.modules["mlflow"] = None  # as if mlflow were not installed
import gittrack.pyfunc
from gittrack.errors import InvalidStateError
try:
    gittrack.pyfunc.load_model("model")
except InvalidStateError as exc:
    print(exc)
"""
    proc = run_script(load, tmp_path)
    assert "needs the module 'mlflow.pyfunc'" in proc.stdout, proc.stderr
    assert "pip install mlflow" in proc.stdout
