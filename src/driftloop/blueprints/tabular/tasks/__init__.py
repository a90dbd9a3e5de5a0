"""What differs between the tabular blueprint's unsupervised and forecasting tasks.

``TabularBlueprint`` keeps classification and regression itself and hands every
contract question of the other tasks to one strategy object, chosen here by
the ``task`` option (:func:`strategy_for`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftloop.blueprints.tabular.tasks.base import TaskStrategy

# task option -> "module:class" (imported on use: a served model loads only its own task)
STRATEGIES = {
    "clustering": "driftloop.blueprints.tabular.tasks.clustering:ClusteringTask",
    "anomaly": "driftloop.blueprints.tabular.tasks.anomaly:AnomalyTask",
    "timeseries": "driftloop.blueprints.tabular.tasks.timeseries:TimeSeriesTask",
}


def strategy_for(task: str, options: dict) -> TaskStrategy | None:
    """The strategy of ``task`` (None: classification and regression, the blueprint's own)."""
    from importlib import import_module

    where = STRATEGIES.get(task)
    if where is None:
        return None
    module, name = where.split(":")
    return getattr(import_module(module), name)(options)
