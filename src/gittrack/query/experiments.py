"""``search_experiments``: filter and order experiments by name, id, time and tags."""

from __future__ import annotations

from gittrack.entities import Experiment


def search_experiments(
    experiments: list[Experiment], filter_string: str | None, order_by: list[str] | None
) -> list[Experiment]:
    """Experiments matching ``filter_string`` (``name``, ``tags.<key>``, times), ordered.

    The default order is ``last_update_time DESC`` then id, as MLflow returns them.
    """
    if not filter_string and not order_by:
        return sorted(experiments, key=lambda e: (-(e.last_update_time or 0), e.experiment_id))
    from gittrack.query.experiment_filter import filter_and_order

    return filter_and_order(experiments, filter_string, order_by)
