"""``search_experiments``: filter and order experiments by name, id, time and tags."""

from __future__ import annotations

from collections.abc import Sequence

from gittrack.entities import Experiment
from gittrack.query.experiment_filter import filter_and_order


def search_experiments(
    experiments: list[Experiment],
    filter_string: str | None,
    order_by: Sequence[str] | str | None,
) -> list[Experiment]:
    """Experiments matching ``filter_string`` (``name``, ``tags.<key>``, times), ordered.

    The default order is MLflow's: ``creation_time DESC``, then ``experiment_id``.
    """
    return filter_and_order(experiments, filter_string, order_by)
