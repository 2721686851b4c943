"""The helper MLflow's scikit-learn autolog examples import (their ``utils.py``), on gittrack:
what one run logged, with MLflow's ``mlflow.*`` system tags left out."""

from gittrack.tracking import MlflowClient


def artifact_files(client, run_id, path=None):
    """Every artifact file of the run, descending into directories."""
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            yield from artifact_files(client, run_id, item.path)
        else:
            yield item.path


def fetch_logged_data(run_id):
    """The run's params, metrics, user tags and artifact files, by kind."""
    client = MlflowClient()
    data = client.get_run(run_id).data
    return {
        "params": data.params,
        "metrics": data.metrics,
        "tags": {key: value for key, value in data.tags.items() if not key.startswith("mlflow.")},
        "artifacts": list(artifact_files(client, run_id)),
    }
