"""The registry's pages: model versions and their stages, a version's card, training runs side by side.

The stage-change form is checked by app.web.admin_auth (the admin token); reading needs no token.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from app import extensions
from app.forecasting.artifacts import artifact_problem, read_metadata
from app.forecasting.intervals import bucket_sort_key
from app.registry import promotion, versions
from app.registry.training_runs import get_training_run, list_training_runs
from app.storage import parse_row_id
from app.web.admin_auth import (
    AdminDenied,
    admin_actor,
    check_admin_token,
)
from app.web.charts import grouped_bar_chart
from app.web.model_card import bucket_figures, model_card_context
from app.web.registry_actions import STAGE_CHANGES, change_stage, serving

log = logging.getLogger(__name__)

bp = Blueprint("registry", __name__)

HISTORY_ON_PAGE = 12


def _name() -> str:
    return current_app.config["MODEL_NAME"]


_actor = admin_actor


def _models_context(full_history: bool = False) -> dict[str, Any]:
    storage, name = extensions.storage(), _name()
    rows = versions.list_versions(storage, name)
    history = versions.stage_history(storage, name)
    return {
        "name": name,
        "versions": rows,
        "production": next((row for row in rows if row["stage"] == "production"), None),
        "history": history if full_history else history[:HISTORY_ON_PAGE],
        "history_total": len(history),
        "serving": serving(),
        "admin_enabled": bool(current_app.config.get("STORECAST_ADMIN_TOKEN")),
        "refresh_seconds": current_app.config["MODEL_REFRESH_SECONDS"],
        "staleness": extensions.staleness(),
    }


def _promotion_warning(action: str, version: str) -> dict[str, Any] | None:
    """The backtest regression the page asks the admin to confirm before promoting `version`."""
    if action != "promote" or not version:
        return None
    source_file = current_app.config.get("DATA_SOURCE_FILE")
    return promotion.warning(extensions.storage(), _name(), version, source_file)


@bp.get("/models")
def models_page() -> Any:
    selected = request.args.get("version", "")
    action = request.args.get("action", "promote")
    return render_template(
        "registry/models.html",
        **_models_context(full_history=request.args.get("history") == "all"),
        selected=selected,
        action=action,
        error=None,
        reason="",
        warning=_promotion_warning(action, selected),
    )


@bp.post("/models/action")
def models_action() -> Any:
    """Promote, roll back or archive from the page: CSRF-checked (Flask-WTF) and token-gated."""
    form = request.form
    action = form.get("action", "")
    version = form.get("version", "").strip()
    reason = form.get("reason", "").strip()[:500]

    def fail(status: int, message: str, warning: dict[str, Any] | None = None) -> tuple[str, int]:
        page = render_template(
            "registry/models.html",
            **_models_context(),
            selected=version,
            action=action,
            error=message,
            reason=reason,
            warning=warning,
        )
        return page, status

    try:
        check_admin_token(form.get("token", ""))
    except AdminDenied as denied:
        return fail(denied.status, denied.message)
    if action not in STAGE_CHANGES:
        return fail(422, "choose promote, rollback or archive")
    if action != "rollback" and not version:
        return fail(422, f"choose the version to {action}")
    # the confirmation names the version it was given for: it cannot carry over to another choice
    confirmed = form.get("force", "").strip().lower().removeprefix("v") == version.lower().removeprefix("v")
    try:
        row = change_stage(
            action,
            version or None,
            by=_actor(form.get("by")),
            reason=reason,
            force=action == "promote" and confirmed,
        )
    except versions.WorseThanProduction as worse:
        return fail(worse.status, "Confirm the promotion: its backtest is worse.", worse.comparison)
    except versions.RegistryError as error:
        return fail(error.status, str(error))
    verb = {"promote": "promoted to production", "rollback": "back in production", "archive": "archived"}[
        action
    ]
    comparison = row.get("comparison")
    flash(f"{row['label']} {verb}" + (f". {comparison['message']}" if comparison else ""), "success")
    return redirect(url_for("registry.models_page"), code=303)


_CARD_METADATA: dict[str, dict[str, Any]] = {}  # artifact sha256 -> metadata (small; versions are immutable)


def _version_metadata(version: dict[str, Any]) -> dict[str, Any]:
    """The artifact's metadata: from the forecaster this worker serves, else from its JSON sidecar."""
    sha = version["artifact_sha256"]
    if sha not in _CARD_METADATA:
        holder = extensions.holder()
        if holder.version == version["label"]:
            metadata = dict(holder.get().metadata or {})
        else:  # the metadata sidecar: display only, nothing from it is executed
            metadata = dict(read_metadata(version["artifact_path"]))
        _CARD_METADATA[sha] = metadata
    return _CARD_METADATA[sha]


def _model_card(version: dict[str, Any]) -> dict[str, Any] | None:
    """The same card as /model (the web package's card context), or {"card_error": why}."""
    try:
        card = model_card_context(_version_metadata(version))
    except Exception as error:  # noqa: BLE001 - a card that cannot be built is reported on the page
        log.warning("model card of %s unavailable: %s", version["label"], error)
        return {"card_error": artifact_problem(error, version["artifact_path"])}
    card["version"] = version["label"]
    return card


@bp.get("/models/<version>")
def model_card_page(version: str) -> Any:
    try:
        row = versions.get_version(extensions.storage(), _name(), version)
    except versions.RegistryError as error:
        return render_template("error.html", status=404, title="No such version", message=str(error)), 404
    run = get_training_run(extensions.storage(), row["run_id"]) if row["run_id"] else None
    return render_template(
        "registry/model_card.html",
        version=row,
        run=run,
        history=versions.stage_history(extensions.storage(), _name(), row["version"]),
        card=_model_card(row),
        staleness=extensions.staleness() if row["stage"] == "production" else None,
    )


def wmae_by_bucket_chart(runs: list[dict[str, Any]]) -> str | None:
    """Grouped bars: WMAE per horizon bucket (weeks ahead), one colour per run."""
    records = []
    for run in runs:
        for bucket, figures in bucket_figures(run["metrics"])[0].items():
            wmae = figures.get("wmae") if isinstance(figures, dict) else figures
            if wmae is not None:
                records.append(
                    {"bucket": bucket, "run": f"#{run['id']} {run['model_kind']}", "wmae": float(wmae)}
                )
    if not records:
        return None
    frame = pd.DataFrame(records)
    order = sorted(pd.unique(frame["bucket"]), key=bucket_sort_key)  # by weeks ahead: "5-13" before "14-26"
    return grouped_bar_chart(
        frame,
        group="bucket",
        series="run",
        value="wmae",
        value_title="WMAE",
        series_order=list(pd.unique(frame["run"])),
        group_order=order,
        description=f"Backtest WMAE by weeks ahead ({', '.join(order)}), one bar per run",
    )


@bp.get("/runs")
def runs_page() -> Any:
    """Runs side by side: a table of all, a chart of the chosen ones (default: the newest with metrics)."""
    storage = extensions.storage()
    runs = list_training_runs(storage, limit=100)
    chosen_ids = [n for n in map(parse_row_id, request.args.getlist("run")) if n is not None]
    if chosen_ids:
        chosen = [run for run in runs if run["id"] in chosen_ids] or list_training_runs(
            storage, ids=chosen_ids
        )
    else:
        chosen = [run for run in runs if bucket_figures(run["metrics"])[0]][:6]
    chosen = chosen[:6]  # a chart with more colours than that is unreadable
    try:
        chart = wmae_by_bucket_chart(chosen)
    except Exception:  # noqa: BLE001 - the table is still useful without the chart
        log.exception("runs chart failed")
        chart = None
    return render_template(
        "registry/runs.html", runs=runs, chosen=chosen, chosen_ids={run["id"] for run in chosen}, chart=chart
    )


@bp.get("/runs/<int:run_id>")
def run_page(run_id: int) -> Any:
    run = get_training_run(extensions.storage(), run_id)
    if run is None:
        return render_template(
            "error.html", status=404, title="No such run", message=f"run {run_id} does not exist"
        ), 404
    return render_template("registry/run.html", run=run)
