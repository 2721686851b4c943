"""``gittrack.evaluate``: MLflow's default evaluator for classifiers and regressors.

The model (a fitted scikit-learn estimator, a pyfunc model or a model URI) predicts on the
data; the metrics MLflow's default evaluator computes are logged to the active run (or to a
new run, ended afterwards) under MLflow's names, with step 0, and its plots are logged as PNG
artifacts under MLflow's names:

* every classifier: ``example_count``, ``accuracy_score``, ``recall_score``,
  ``precision_score``, ``f1_score``, ``log_loss`` (when the model has ``predict_proba``),
  ``score`` (a scikit-learn model's own ``score``) and the plot ``confusion_matrix``
  (normalized per true class);
* two classes (the larger label positive unless ``evaluator_config={"pos_label": ...}``):
  ``true_negatives``, ``false_positives``, ``false_negatives``, ``true_positives``,
  ``roc_auc``, ``precision_recall_auc`` (average precision), and the plots ``roc_curve_plot``,
  ``precision_recall_curve_plot``, ``lift_curve_plot``, ``calibration_curve_plot``;
* more classes: precision, recall and F1 weighted by class support, ``roc_auc`` one-vs-rest
  weighted, the same plots one curve per class but no lift curve, and ``per_class_metrics.csv``;
* regressors: ``example_count``, ``mean_absolute_error``, ``mean_squared_error``,
  ``root_mean_squared_error``, ``sum_on_target``, ``mean_on_target``, ``r2_score``,
  ``max_error``, ``mean_absolute_percentage_error`` and ``score``; no plot (MLflow draws the
  regressor's plots with SHAP explainers, which gittrack does not run).

Plots are drawn on matplotlib ``Figure`` objects with the Agg canvas, so no display is needed
and pyplot's global state is never touched. Explainers (SHAP), custom and extra metrics,
``mlflow.datasets`` tags and served models are out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gittrack import fluent
from gittrack.errors import InvalidInputError

__all__ = ["EvaluationArtifact", "EvaluationResult", "evaluate"]

MODEL_TYPES = ("classifier", "regressor")


@dataclass(frozen=True)
class EvaluationArtifact:
    """One artifact ``evaluate`` logged, by its ``runs:/`` URI."""

    uri: str


@dataclass
class EvaluationResult:
    """What ``evaluate`` returns: ``metrics`` (name -> value) and ``artifacts``
    (name -> ``EvaluationArtifact``), as MLflow's ``EvaluationResult``."""

    metrics: dict[str, float]
    artifacts: dict[str, EvaluationArtifact]
    run_id: str


def evaluate(
    model: Any = None,
    data: Any = None,
    *,
    model_type: str | None = None,
    targets: Any = None,
    predictions: str | None = None,
    feature_names: list[str] | None = None,
    evaluators: str | list[str] | None = None,
    evaluator_config: dict[str, Any] | None = None,
    **unsupported: Any,
) -> EvaluationResult:
    """Evaluate a model on data as MLflow's default evaluator does, logging to the active run
    (or to a new run, ended afterwards).

    Args:
        model: a fitted scikit-learn estimator, a pyfunc model, a model URI (``runs:/``,
            ``models:/``, a path), or None with ``predictions``.
        data: a DataFrame (``targets`` names the label column), an array or list (``targets``
            holds the labels), or a ``gittrack.data`` pandas dataset (recorded as an input of
            the run; its ``targets`` and ``predictions`` apply).
        model_type: ``"classifier"`` or ``"regressor"``.
        targets: the label column of a DataFrame, or the labels of array data.
        predictions: the column of ``data`` holding predictions, when ``model`` is None.
        feature_names: column names for array data.
        evaluators: None, ``"default"`` or ``["default"]``.
        evaluator_config: ``pos_label``, ``label_list``, ``average`` (multiclass,
            ``"weighted"`` by default), ``max_classes_for_multiclass_roc_pr`` (10).
        **unsupported: MLflow's other options (``extra_metrics``, ``custom_artifacts``...):
            refused when given.

    Returns:
        An ``EvaluationResult`` with ``metrics``, ``artifacts`` and ``run_id``.

    Raises:
        InvalidInputError: an unknown model type or evaluator, a missing target, fewer than
            two classes, or an option gittrack does not support; nothing is logged then.
    """
    _check_options(model_type, evaluators, unsupported)
    config = dict(evaluator_config or {})
    dataset = data if hasattr(data, "to_entity") and hasattr(data, "df") else None
    if dataset is not None:
        data, targets = dataset.df, targets if targets is not None else dataset.targets
        predictions = predictions or dataset.predictions
    features, y_true, given = _split(data, targets, predictions, feature_names)
    model, raw = _resolve_model(model)
    if model is None and given is None:
        raise InvalidInputError("evaluate needs a model, or predictions= naming a column of data")
    y_pred = np.asarray(model.predict(features) if model is not None else given)
    if y_pred.ndim > 1 and y_pred.shape[1] == 1:
        y_pred = y_pred.ravel()
    if model_type == "classifier":
        report = _classifier(raw, features, y_true, y_pred, config)
    else:
        report = _regressor(y_true, y_pred)
    score = _model_score(raw, features, y_true)
    if score is not None:
        report.metrics["score"] = score
    return _log(report, dataset)


@dataclass
class _Report:
    metrics: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _check_options(model_type: Any, evaluators: Any, unsupported: dict[str, Any]) -> None:
    if model_type not in MODEL_TYPES:
        raise InvalidInputError(
            f"evaluate: model_type {model_type!r} is not supported; use one of "
            f"{', '.join(MODEL_TYPES)}"
        )
    names = [evaluators] if isinstance(evaluators, str) else list(evaluators or ["default"])
    if names != ["default"]:
        raise InvalidInputError(
            f"evaluate: evaluators {evaluators!r} are not supported; only the default "
            "evaluator is (SHAP explainers are out of scope)"
        )
    given = {k: v for k, v in unsupported.items() if v is not None and k != "env_manager"}
    if given:
        raise InvalidInputError(
            f"evaluate: {', '.join(sorted(given))} not supported by gittrack's evaluate"
        )


def _split(
    data: Any, targets: Any, predictions: str | None, feature_names: list[str] | None
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """(features, labels, given predictions) of the data."""
    if isinstance(data, pd.DataFrame):
        if not isinstance(targets, str) or targets not in data.columns:
            raise InvalidInputError(
                f"evaluate: targets {targets!r} must name a column of the DataFrame "
                f"(columns: {', '.join(map(str, data.columns))})"
            )
        if predictions is not None and predictions not in data.columns:
            raise InvalidInputError(f"evaluate: predictions column {predictions!r} is missing")
        given = data[predictions].to_numpy() if predictions is not None else None
        dropped = [c for c in (targets, predictions) if c is not None]
        return data.drop(columns=dropped), data[targets].to_numpy(), given
    if isinstance(data, (np.ndarray, list)):
        array = np.asarray(data)
        if targets is None or len(np.asarray(targets)) != len(array):
            raise InvalidInputError("evaluate: array data needs targets= holding one label per row")
        if feature_names is not None:
            return pd.DataFrame(array, columns=feature_names), np.asarray(targets), None
        return array, np.asarray(targets), None
    raise InvalidInputError(
        f"evaluate: data must be a DataFrame, an array or a gittrack.data dataset, "
        f"not {type(data).__name__}"
    )


def _resolve_model(model: Any) -> tuple[Any, Any]:
    """(the model to predict with, the scikit-learn estimator under it or None)."""
    if model is None:
        return None, None
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from gittrack.pyfunc import load_model

        model = load_model(model)
    raw = model.get_raw_model() if hasattr(model, "get_raw_model") else model
    if not callable(getattr(model, "predict", None)):
        raise InvalidInputError(f"evaluate: model {type(model).__name__} has no predict method")
    return model, raw if _is_sklearn(raw) else None


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def _model_score(raw: Any, features: Any, y_true: np.ndarray) -> float | None:
    """A scikit-learn model's own ``score`` on the data, as MLflow logs it."""
    if raw is None or not callable(getattr(raw, "score", None)):
        return None
    try:
        return float(raw.score(features, y_true))
    except Exception:  # MLflow logs a warning and leaves the metric out
        return None


# --------------------------------------------------------------------- classifier
def _classifier(
    raw: Any, features: Any, y_true: np.ndarray, y_pred: np.ndarray, config: dict[str, Any]
) -> _Report:
    from sklearn import metrics as sk

    labels = np.array(config.get("label_list") or np.unique(np.concatenate([y_true, y_pred])))
    labels.sort()
    if len(labels) < 2:
        raise InvalidInputError(
            f"evaluate: a classifier needs at least two classes, found {len(labels)}; "
            "give evaluator_config={'label_list': [...]}"
        )
    probs = (
        raw.predict_proba(features) if raw is not None and hasattr(raw, "predict_proba") else None
    )
    if len(labels) == 2:
        report = _binary(sk, y_true, y_pred, probs, labels, config.get("pos_label"))
    else:
        report = _multiclass(sk, y_true, y_pred, probs, labels, config)
    matrix = sk.confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    figure, ax = _figure()
    sk.ConfusionMatrixDisplay(matrix, display_labels=labels).plot(cmap="Blues", ax=ax)
    ax.set_title("Normalized confusion matrix")
    report.figures["confusion_matrix"] = figure
    return report


def _common(sk: Any, y_true, y_pred, probs, labels, average: str, pos_label: Any) -> dict:
    metrics = {
        "example_count": len(y_true),
        "accuracy_score": sk.accuracy_score(y_true, y_pred),
        "recall_score": sk.recall_score(y_true, y_pred, average=average, pos_label=pos_label),
        "precision_score": sk.precision_score(y_true, y_pred, average=average, pos_label=pos_label),
        "f1_score": sk.f1_score(y_true, y_pred, average=average, pos_label=pos_label),
    }
    if probs is not None:
        metrics["log_loss"] = sk.log_loss(y_true, probs, labels=labels)
    return metrics


def _binary(sk: Any, y_true, y_pred, probs, labels, pos_label: Any) -> _Report:
    pos_index = int(np.where(labels == pos_label)[0][0]) if pos_label in labels else 1
    pos_label = labels[-1] if pos_label is None else pos_label
    ordered = np.append(labels[labels != pos_label], pos_label)
    tn, fp, fn, tp = sk.confusion_matrix(y_true, y_pred, labels=ordered).ravel()
    metrics = {
        "true_negatives": int(tn),
        "false_positives": int(fp),
        "false_negatives": int(fn),
        "true_positives": int(tp),
        **_common(sk, y_true, y_pred, probs, ordered, "binary", pos_label),
    }
    report = _Report(metrics)
    if probs is None:
        return report
    score = probs[:, pos_index]
    positive = y_true == pos_label
    metrics["roc_auc"] = sk.roc_auc_score(positive, score)
    metrics["precision_recall_auc"] = sk.average_precision_score(y_true, score, pos_label=pos_label)
    report.figures["roc_curve_plot"] = _curves(sk, "roc", [(positive, score, None)], pos_label)
    report.figures["precision_recall_curve_plot"] = _curves(
        sk, "pr", [(positive, score, None)], pos_label
    )
    report.figures["lift_curve_plot"] = _lift_curve(positive, score, pos_label)
    report.figures["calibration_curve_plot"] = _calibration(sk, [(positive, score, None)])
    return report


def _multiclass(sk: Any, y_true, y_pred, probs, labels, config: dict[str, Any]) -> _Report:
    average = config.get("average", "weighted")
    metrics = _common(sk, y_true, y_pred, probs, labels, average, None)
    if probs is not None and average in ("macro", "weighted"):
        metrics["roc_auc"] = sk.roc_auc_score(
            y_true, probs, average=average, multi_class="ovr", labels=labels
        )
    report = _Report(metrics)
    per_class = _per_class_metrics(sk, y_true, y_pred, labels)
    if probs is not None:
        ovr = [(y_true == label, probs[:, i], str(label)) for i, label in enumerate(labels)]
        report.figures["calibration_curve_plot"] = _calibration(sk, ovr)
        if len(labels) <= config.get("max_classes_for_multiclass_roc_pr", 10):
            report.figures["roc_curve_plot"] = _curves(sk, "roc", ovr, None)
            report.figures["precision_recall_curve_plot"] = _curves(sk, "pr", ovr, None)
            per_class["roc_auc"] = [sk.roc_auc_score(t, s) for t, s, _ in ovr]
            per_class["precision_recall_auc"] = [
                sk.average_precision_score(t, s) for t, s, _ in ovr
            ]
    report.tables["per_class_metrics"] = per_class
    return report


def _per_class_metrics(sk: Any, y_true, y_pred, labels) -> pd.DataFrame:
    rows = []
    for label in labels:
        truth, guess = (y_true == label).astype(int), (y_pred == label).astype(int)
        tn, fp, fn, tp = sk.confusion_matrix(truth, guess, labels=[0, 1]).ravel()
        rows.append(
            {
                "positive_class": label,
                "true_negatives": tn,
                "false_positives": fp,
                "false_negatives": fn,
                "true_positives": tp,
                **_common(sk, truth, guess, None, [0, 1], "binary", 1),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- plots
def _figure() -> tuple[Any, Any]:
    """A figure of MLflow's size and resolution on the Agg canvas (no display, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.0), dpi=175, layout="tight")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _curves(sk: Any, kind: str, series: list[tuple], pos_label: Any) -> Any:
    """ROC or precision-recall curves, one per (truth, score, name)."""
    figure, ax = _figure()
    for truth, score, name in series:
        if kind == "roc":
            fpr, tpr, _ = sk.roc_curve(truth, score)
            value = sk.roc_auc_score(truth, score)
            ax.plot(fpr, tpr, label=_label(name, f"AUC={value:.3f}"))
        else:
            precision, recall, _ = sk.precision_recall_curve(truth, score)
            value = sk.average_precision_score(truth, score)
            ax.plot(
                recall, precision, drawstyle="steps-post", label=_label(name, f"AP={value:.3f}")
            )
    suffix = f" (Positive label: {pos_label})" if pos_label is not None else ""
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k:", label="chance level")
        ax.set(xlabel=f"False Positive Rate{suffix}", ylabel=f"True Positive Rate{suffix}")
        ax.set_title("ROC curve")
    else:
        ax.set(xlabel=f"Recall{suffix}", ylabel=f"Precision{suffix}")
        ax.set_title("Precision recall curve")
    ax.legend(loc="best")
    return figure


def _label(name: str | None, value: str) -> str:
    return value if name is None else f"label={name},{value}"


def _lift_curve(positive: np.ndarray, score: np.ndarray, pos_label: Any) -> Any:
    """Lift of the positives found by taking the highest scores first, against chance."""
    order = np.argsort(-score, kind="stable")
    found = np.cumsum(positive[order])
    share = np.arange(1, len(order) + 1) / len(order)
    lift = found / (share * max(int(positive.sum()), 1))
    figure, ax = _figure()
    ax.plot(share * 100, lift, label=f"Class {pos_label}")
    ax.plot([0, 100], [1, 1], "k--", label="Baseline")
    ax.set(xlabel="Percentage of sample", ylabel="Lift", title="Lift Curve")
    ax.legend(loc="best")
    return figure


def _calibration(sk: Any, series: list[tuple]) -> Any:
    from sklearn.calibration import calibration_curve

    figure, ax = _figure()
    ax.plot([0, 1], [0, 1], "k:", label="Perfectly calibrated")
    for truth, score, name in series:
        fraction, mean = calibration_curve(truth, score, n_bins=10)
        ax.plot(mean, fraction, "s-", label=name or "Positive class")
    ax.set(xlabel="Mean predicted probability", ylabel="Fraction of positives")
    ax.set_title("Calibration Curve")
    ax.legend(loc="best")
    return figure


# ------------------------------------------------------------------- regressor
def _regressor(y_true: np.ndarray, y_pred: np.ndarray) -> _Report:
    from sklearn import metrics as sk

    y_true, y_pred = y_true.astype(float), y_pred.astype(float)
    total = float(np.sum(y_true))
    return _Report(
        {
            "example_count": len(y_true),
            "mean_absolute_error": sk.mean_absolute_error(y_true, y_pred),
            "mean_squared_error": sk.mean_squared_error(y_true, y_pred),
            "root_mean_squared_error": float(np.sqrt(sk.mean_squared_error(y_true, y_pred))),
            "sum_on_target": total,
            "mean_on_target": total / len(y_true),
            "r2_score": sk.r2_score(y_true, y_pred),
            "max_error": sk.max_error(y_true, y_pred),
            "mean_absolute_percentage_error": sk.mean_absolute_percentage_error(y_true, y_pred),
        }
    )


# ---------------------------------------------------------------------- logging
def _log(report: _Report, dataset: Any) -> EvaluationResult:
    """Log the metrics and artifacts to the active run, or to a new run ended afterwards."""
    started = fluent.active_run() is None
    run = fluent.active_run() or fluent.start_run()
    try:
        run_id = run.info.run_id
        if dataset is not None:
            fluent.log_input(dataset)
        metrics = {k: float(v) for k, v in report.metrics.items()}
        fluent.log_metrics(metrics, step=0)
        artifacts = {}
        for name, figure in report.figures.items():
            fluent.log_figure(figure, f"{name}.png")
            artifacts[name] = EvaluationArtifact(f"runs:/{run_id}/{name}.png")
        for name, table in report.tables.items():
            fluent.log_text(table.to_csv(index=False), f"{name}.csv")
            artifacts[name] = EvaluationArtifact(f"runs:/{run_id}/{name}.csv")
    except BaseException:
        if started:
            fluent.end_run("FAILED")
        raise
    if started:
        fluent.end_run()
    return EvaluationResult(metrics, artifacts, run_id)
