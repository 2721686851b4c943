"""MLflow's ``mlflow.utils`` module paths that scripts import names from (``mlflow_tags``)."""
