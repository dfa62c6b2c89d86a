"""Training runs (training, backtest and experiment runs of the registry), newest first."""

from __future__ import annotations

from typing import Any

from app import extensions
from app.registry.training_runs import get_training_run, list_training_runs
from app.web.admin_auth import is_admin, public_row
from app.web.api import bp
from app.web.api.errors import ApiError, detail
from app.web.api.openapi import operation, query_args
from app.web.schemas import RunOut, RunsQuery, RunsResponse


@bp.get("/runs")
@operation(
    "Runs",
    "registry",
    description="Training, backtest and experiment runs, newest first.",
    query=RunsQuery,
    ok=RunsResponse,
    ok_description="The runs",
)
def runs() -> Any:
    query = query_args()
    runs = list_training_runs(extensions.storage(), limit=query.limit, run_type=query.type)
    admin = is_admin()
    return {"runs": [public_row(run, admin) for run in runs]}


@bp.get("/runs/<int:run_id>")
@operation(
    "One run",
    "registry",
    description="Parameters, data window and fingerprint, metrics, artifact and code version.",
    ok=RunOut,
    ok_description="The run",
)
def run(run_id: int) -> Any:
    run = get_training_run(extensions.storage(), run_id)
    if run is None:
        raise ApiError(404, f"run {run_id} does not exist", [detail("run_id", "no such run")])
    return public_row(run, is_admin())
