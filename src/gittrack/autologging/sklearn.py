"""scikit-learn autologging: patch ``fit`` (and ``fit_transform``/``fit_predict``) of every
estimator so that training logs itself.

On the outermost ``fit`` call the run (the active one, or one started for the call and ended
after it) receives the estimator's ``get_params(deep=True)``, the tags ``estimator_name`` and
``estimator_class``, training metrics on the training data, ``estimator.html`` (scikit-learn's
HTML diagram of the estimator, in MLflow's page), the training data as a dataset input with
context ``train`` (``log_datasets``) and the fitted model. As in MLflow, a run
autologging starts is tagged ``mlflow.autologging = sklearn`` (and with ``extra_tags``); a run
the user started is not. Inner fits, of
a pipeline's steps or a search's candidates, are not logged on their own: a meta-estimator logs
once. A hyperparameter search (``GridSearchCV``, ``RandomizedSearchCV``) also logs the best
parameters as ``best_<param>``, ``best_cv_score``, its ``cv_results.csv`` and one child run per
candidate. Logging problems become warnings: they never fail the user's ``fit``.

The patches are process-wide, as the methods they replace are; they and the options live in
one ``_Session``, and ``autolog(disable=True)`` puts every original method back.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gittrack.entities import Metric, Param, RunStatus
from gittrack.store.validation import MAX_VALUE_LENGTH
from gittrack.utils import clock
from gittrack.utils.mlflow_tags import MLFLOW_AUTOLOGGING, MLFLOW_DATASET_CONTEXT

AUTOLOGGING_INTEGRATION = "sklearn"  # the value of the ``mlflow.autologging`` tag

PATCHED_METHODS = ("fit", "fit_transform", "fit_predict")
SEARCH_CLASSES = (
    "GridSearchCV",
    "RandomizedSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
)


@dataclass
class Options:
    log_input_examples: bool = False
    log_model_signatures: bool = True
    log_models: bool = True
    log_datasets: bool = True
    silent: bool = False
    max_tuning_runs: int | None = None
    serialization_format: str = "cloudpickle"
    registered_model_name: str | None = None
    pos_label: Any = None
    extra_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any
    descriptor: Any = None  # set when the method sits inside an ``available_if`` descriptor


class _Session:
    """The installed patches, the options, and how deep in a patched fit we are."""

    def __init__(self) -> None:
        self.options = Options()
        self.patches: list[_Patch] = []
        self.depth = 0
        self.lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.patches)


_session = _Session()


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    disable: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = None,
    log_datasets: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> None:
    """Turn scikit-learn autologging on (again, with new options) or off (``disable=True``)."""
    if disable:
        _unpatch_all()
        return
    _session.options = Options(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        log_datasets=log_datasets,
        silent=silent,
        max_tuning_runs=max_tuning_runs,
        serialization_format=serialization_format,
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags={str(k): str(v) for k, v in (extra_tags or {}).items()},
    )
    if not _session.enabled:
        _patch_all()


def is_enabled() -> bool:
    return _session.enabled


# ------------------------------------------------------------------------------ patching


@functools.cache
def _estimator_classes() -> tuple[type, ...]:
    from sklearn.utils import all_estimators

    return tuple(cls for _name, cls in all_estimators())


def _patch_all() -> None:
    seen: set[tuple[int, str]] = set()
    for cls in _estimator_classes():
        for name in PATCHED_METHODS:
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or (id(owner), name) in seen:
                continue
            seen.add((id(owner), name))
            patch = _patch(owner, name)
            if patch is not None:
                _session.patches.append(patch)


def _patch(owner: type, name: str) -> _Patch | None:
    attr = owner.__dict__[name]
    if inspect.isfunction(attr):
        setattr(owner, name, _wrap(attr))
        return _Patch(owner, name, attr)
    inner = getattr(attr, "fn", None)
    if inspect.isfunction(inner):  # sklearn's available_if descriptor keeps the method in .fn
        attr.fn = _wrap(inner)
        return _Patch(owner, name, inner, descriptor=attr)
    return None


def _unpatch_all() -> None:
    for patch in reversed(_session.patches):
        if patch.descriptor is not None:
            patch.descriptor.fn = patch.original
        else:
            setattr(patch.owner, patch.name, patch.original)
    _session.patches.clear()


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _session.lock:
            outermost = _session.depth == 0
            _session.depth += 1
        try:
            if not outermost:
                return original(self, *args, **kwargs)
            return _logged_fit(self, original, args, kwargs)
        finally:
            with _session.lock:
                _session.depth -= 1

    patched.__gittrack_original__ = original  # type: ignore[attr-defined]
    return patched


# ------------------------------------------------------------------------------ logging


def _logged_fit(estimator: Any, original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    from gittrack import fluent

    options = _session.options
    started = fluent.active_run() is None
    try:
        run = fluent.active_run() or fluent.start_run(tags=_managed_run_tags(options))
    except Exception as exc:  # e.g. not inside a git repository: train anyway, log nothing
        _warn(options, f"gittrack autologging could not log anything (no run started): {exc}")
        return original(estimator, *args, **kwargs)
    run_id = run.info.run_id
    _guard(options, "params and tags", lambda: _log_params_and_tags(run_id, estimator, options))
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException:
        if started:
            fluent.end_run(RunStatus.FAILED)
        raise
    try:
        data = _training_data(original, estimator, args, kwargs)
        _guard(options, "training metrics", lambda: _log_training_metrics(run_id, estimator, data))
        _guard(options, "estimator.html", lambda: _log_estimator_html(run_id, estimator))
        if options.log_datasets:
            _guard(options, "the training dataset", lambda: _log_training_dataset(run_id, data))
        if _is_search(estimator):
            _guard(options, "search results", lambda: _log_search(run, estimator, options))
        if options.log_models:
            _guard(options, "the model", lambda: _log_model(run_id, estimator, data, options))
    finally:
        if started:
            fluent.end_run()
    return result


def _guard(options: Options, what: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as exc:
        _warn(options, f"gittrack autologging could not log {what}: {exc}")


def _warn(options: Options, message: str) -> None:
    if not options.silent:
        warnings.warn(message, RuntimeWarning, stacklevel=5)


def _client() -> Any:
    from gittrack import fluent
    from gittrack.client import Client

    return Client(fluent.get_tracking_uri())


def _managed_run_tags(options: Options) -> dict[str, str]:
    """The tags of a run autologging starts: ``extra_tags``, then ``mlflow.autologging``
    (reserved: an extra tag of that name does not replace it)."""
    return {**options.extra_tags, MLFLOW_AUTOLOGGING: AUTOLOGGING_INTEGRATION}


def _log_params_and_tags(run_id: str, estimator: Any, options: Options) -> None:
    client = _client()
    params = _params(estimator.get_params(deep=True))
    cls = type(estimator)
    tags = {
        "estimator_name": cls.__name__,
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
    }
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_batch(run_id, tags=[_tag(k, v) for k, v in tags.items()])


def _log_estimator_html(run_id: str, estimator: Any) -> None:
    """``estimator.html``: scikit-learn's diagram of the fitted estimator in a UTF-8 page."""
    from sklearn.utils import estimator_html_repr

    page = (
        '<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8"/>\n'
        f"  </head>\n  <body>\n    {estimator_html_repr(estimator)}\n  </body>\n</html>\n"
    )
    _client().log_text(run_id, page, "estimator.html")


def _log_training_dataset(run_id: str, data: _TrainingData) -> None:
    """The training data as the run's ``train`` input, described as MLflow's autolog does:
    a DataFrame alone, an array (a sparse matrix made dense) with the targets."""
    import numpy as np
    import pandas as pd

    from gittrack import data as datasets
    from gittrack.entities import DatasetInput, InputTag

    X, y = data.X, data.y
    if isinstance(X, pd.DataFrame):
        dataset = datasets.from_pandas(X)
    else:
        if hasattr(X, "toarray"):
            X = X.toarray()
        if not isinstance(X, np.ndarray):
            return  # MLflow skips other kinds of data too
        if y is not None and hasattr(y, "toarray"):
            y = y.toarray()
        dataset = datasets.from_numpy(X, targets=None if y is None else np.asarray(y))
    context = InputTag(MLFLOW_DATASET_CONTEXT, "train")
    _client().log_inputs(run_id, [DatasetInput(dataset.to_entity(), [context])])


def _tag(key: str, value: str) -> Any:
    from gittrack.entities import RunTag

    return RunTag(key, value)


def _params(raw: Mapping[str, Any]) -> dict[str, str]:
    from gittrack.tracking.validation import check_key

    out = {}
    for key, value in raw.items():
        try:
            check_key(key, "param")
        except ValueError:
            continue
        out[key] = str(value)[:MAX_VALUE_LENGTH]
    return out


@dataclass
class _TrainingData:
    X: Any
    y: Any
    sample_weight: Any


def _training_data(
    original: Callable[..., Any], estimator: Any, args: tuple, kwargs: dict
) -> _TrainingData:
    try:
        bound = inspect.signature(original).bind(estimator, *args, **kwargs).arguments
    except TypeError:
        bound = {}
    names = [n for n in bound if n != "self"]
    X = bound.get("X", bound[names[0]] if names else None)
    y = bound.get("y", bound.get("Y"))
    extra = bound.get("fit_params") or bound.get("kwargs") or {}
    weight = bound.get(
        "sample_weight", extra.get("sample_weight") if isinstance(extra, dict) else None
    )
    return _TrainingData(X, y, weight)


def _log_training_metrics(run_id: str, estimator: Any, data: _TrainingData) -> None:
    metrics = training_metrics(estimator, data.X, data.y, data.sample_weight)
    if metrics:
        now = clock.now_ms()
        _client().log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])


def training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """Training-set metrics of a fitted classifier or regressor (empty for other estimators)."""
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    if y is None or X is None or not hasattr(estimator, "predict"):
        return {}
    out: dict[str, float] = {}
    weights = {"sample_weight": sample_weight} if sample_weight is not None else {}
    if is_classifier(estimator):
        predicted = estimator.predict(X)
        averaged = {"average": "weighted", "zero_division": 0, **weights}
        out = {
            "training_accuracy_score": m.accuracy_score(y, predicted, **weights),
            "training_precision_score": m.precision_score(y, predicted, **averaged),
            "training_recall_score": m.recall_score(y, predicted, **averaged),
            "training_f1_score": m.f1_score(y, predicted, **averaged),
        }
    elif is_regressor(estimator):
        predicted = estimator.predict(X)
        mse = m.mean_squared_error(y, predicted, **weights)
        out = {
            "training_mean_squared_error": mse,
            "training_root_mean_squared_error": math.sqrt(mse),
            "training_mean_absolute_error": m.mean_absolute_error(y, predicted, **weights),
            "training_r2_score": m.r2_score(y, predicted, **weights),
        }
    else:
        return {}
    if hasattr(estimator, "score"):
        try:
            out["training_score"] = estimator.score(X, y, **weights)
        except TypeError:
            out["training_score"] = estimator.score(X, y)
    return {k: float(v) for k, v in out.items()}


def _log_model(run_id: str, estimator: Any, data: _TrainingData, options: Options) -> None:
    from gittrack import sklearn as gittrack_sklearn

    example = _head(data.X)
    signature = None
    if options.log_model_signatures and example is not None and hasattr(estimator, "predict"):
        signature = _signature(estimator, example)
    gittrack_sklearn.log_model(
        estimator,
        name="model",
        signature=signature if signature is not None else False,
        input_example=example if options.log_input_examples else None,
        serialization_format=options.serialization_format,
        registered_model_name=options.registered_model_name,
        run_id=run_id,
    )
    if _is_search(estimator) and hasattr(estimator, "best_estimator_"):
        gittrack_sklearn.log_model(
            estimator.best_estimator_,
            name="best_estimator",
            signature=signature if signature is not None else False,
            serialization_format=options.serialization_format,
            run_id=run_id,
        )


def _signature(estimator: Any, example: Any) -> Any:
    from gittrack.models.signature import infer_signature

    try:
        return infer_signature(example, estimator.predict(example))
    except Exception:
        return None


def _head(X: Any, rows: int = 5) -> Any:
    if X is None:
        return None
    if hasattr(X, "iloc"):
        return X.iloc[:rows]
    try:
        import numpy as np

        array = np.asarray(X)
    except Exception:
        return None
    return array[:rows] if array.ndim >= 1 else None


# ------------------------------------------------------------------------------ searches


def _is_search(estimator: Any) -> bool:
    return type(estimator).__name__ in SEARCH_CLASSES and hasattr(estimator, "cv_results_")


def _log_search(run: Any, search: Any, options: Options) -> None:
    import pandas as pd

    client = _client()
    run_id = run.info.run_id
    best = {f"best_{k}": v for k, v in (getattr(search, "best_params_", None) or {}).items()}
    client.log_batch(run_id, params=[Param(k, v) for k, v in _params(best).items()])
    now = clock.now_ms()
    if getattr(search, "best_score_", None) is not None:
        client.log_batch(run_id, metrics=[Metric("best_cv_score", float(search.best_score_), now)])
    results = pd.DataFrame(search.cv_results_)
    client.log_text(run_id, results.to_csv(index=False), "cv_results.csv")
    _log_candidates(client, run, results, options)


def _log_candidates(client: Any, run: Any, results: Any, options: Options) -> None:
    """One child run per candidate: its params, and its scores and times as metrics."""
    rows = results
    if options.max_tuning_runs is not None and "rank_test_score" in results:
        rows = results.sort_values("rank_test_score").head(options.max_tuning_runs)
    metric_columns = [
        c for c in results.columns if not c.startswith("param") and results[c].dtype.kind in "iuf"
    ]
    parent_name = run.info.run_name
    now = clock.now_ms()
    for index, row in rows.iterrows():
        child = client.create_run(
            run.info.experiment_id,
            run_name=f"{parent_name}-candidate-{int(index) + 1}",
            parent_run_id=run.info.run_id,
        )
        child_id = child.info.run_id
        params = _params(row["params"])
        metrics = [
            Metric(c, float(row[c]), now) for c in metric_columns if not math.isnan(float(row[c]))
        ]
        client.log_batch(child_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(child_id, RunStatus.FINISHED)
