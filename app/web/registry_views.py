"""The registry over HTTP: JSON under /api/v1 (reads open, admin actions behind a bearer token) and pages.

Admin actions, API and forms alike, are checked by app.web.admin_auth; reading needs no token.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

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
from app.registry import versions
from app.registry.runs import get_run, list_runs
from app.storage import parse_row_id
from app.web.admin_auth import (
    AdminDenied,
    admin_actor,
    check_admin_token,
    is_admin,
    public_row,
    require_admin,
)
from app.web.apidoc import json_body, operation, query_args
from app.web.charts import grouped_bar_chart
from app.web.errors import ApiError, detail
from app.web.model_card import model_card_context
from app.web.schemas import (
    AdminActionRequest,
    ModelsResponse,
    ModelVersionDetail,
    RunOut,
    RunsQuery,
    RunsResponse,
)

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
VERSION_PATH = "a version number, with or without its `v` (3 or v3)"

api_bp = Blueprint("registry_api", __name__)
pages_bp = Blueprint("registry", __name__)

HISTORY_ON_PAGE = 12


def _name() -> str:
    return current_app.config["MODEL_NAME"]


_actor = admin_actor


def _refresh_holder() -> None:
    """This worker switches at once; the others within MODEL_REFRESH_SECONDS."""
    try:
        extensions.holder().refresh()
    except Exception:  # the stage change is committed; a load problem is the holder's to report
        log.exception("refresh after a stage change failed")


def _serving() -> dict[str, Any]:
    holder = extensions.holder()
    with contextlib.suppress(Exception):  # ModelUnavailable: nothing to serve yet; status() says why
        holder.get()
    return holder.status()


# API


@api_bp.get("/models")
@operation(
    "Model versions",
    "registry",
    description=(
        "Every registered version (newest first) with its stage, the stage history (newest first) and "
        "the version this worker serves. No token needed."
    ),
    ok=ModelsResponse,
    ok_description="The registry",
)
def api_models() -> Any:
    """Every version with its stage, the stage history (newest first) and what this worker serves."""
    storage, name = extensions.storage(), _name()
    rows = versions.list_versions(storage, name)
    production = next((row["label"] for row in rows if row["stage"] == "production"), None)
    admin = is_admin()
    return {
        "name": name,
        "production": production,
        "serving": _serving().get("serving"),
        "versions": [public_row(row, admin) for row in rows],
        "history": versions.stage_history(storage, name),
    }


@api_bp.get("/models/<version>")
@operation(
    "One model version",
    "registry",
    description="The version and its own stage history (newest first).",
    ok=ModelVersionDetail,
    path_descriptions={"version": VERSION_PATH},
)
def api_model(version: str) -> Any:
    try:
        row = versions.get_version(extensions.storage(), _name(), version)
    except versions.RegistryError as error:
        raise ApiError(error.status, str(error), [detail("version", str(error))]) from None
    return {
        **public_row(row, is_admin()),
        "history": versions.stage_history(extensions.storage(), _name(), version),
    }


def _admin_action(action, *args: Any) -> Any:
    require_admin()
    parsed = json_body()
    try:
        options = {"force": parsed.force} if action is versions.promote else {}
        row = action(
            extensions.storage(), _name(), *args, by=_actor(parsed.by), reason=parsed.reason, **options
        )
    except versions.RegistryError as error:
        field = "force" if isinstance(error, versions.WorseThanProduction) else "version" if args else "body"
        raise ApiError(error.status, str(error), [detail(field, str(error))]) from None
    _refresh_holder()
    return {**row, "history": versions.stage_history(extensions.storage(), _name())[:10]}


def _admin_operation(summary: str, description: str, with_version: bool = True) -> Callable[[F], F]:
    return operation(
        summary,
        "registry",
        description=(
            f"{description} Needs the admin token. The JSON body is optional. Answers with the version now "
            "in the stage and the 10 newest stage changes of the registry."
        ),
        body=AdminActionRequest,
        body_required=False,
        body_example={"reason": "better backtest", "by": "ana"},
        ok=ModelVersionDetail,
        ok_description="The version after the change",
        admin="required",
        errors={
            404: "No such version (or not a version number such as 3 or v3), or unknown route",
            409: (
                "Not possible as asked: already in production or archived, production cannot be archived, "
                "nothing to roll back to, the artifact file is missing or not the one registered, or "
                "(promote) the version's backtest WMAE is worse than production's and `force` is not true: "
                "the message says by how much"
            ),
        },
        path_descriptions={"version": VERSION_PATH} if with_version else {},
    )


@api_bp.post("/models/<version>/promote")
@_admin_operation(
    "Promote a version",
    "Makes the version production; the production version is archived (both or neither). The artifact's "
    "SHA-256 is checked first.",
)
def api_promote(version: str) -> Any:
    return _admin_action(versions.promote, version)


@api_bp.post("/models/rollback")
@_admin_operation(
    "Roll back",
    "Puts back the version that was production before the current one, which is archived.",
    with_version=False,
)
def api_rollback() -> Any:
    return _admin_action(versions.rollback)


@api_bp.post("/models/<version>/archive")
@_admin_operation(
    "Archive a version", "Retires a staging version (production cannot be archived: promote or roll back)."
)
def api_archive(version: str) -> Any:
    return _admin_action(versions.archive, version)


@api_bp.get("/runs")
@operation(
    "Runs",
    "registry",
    description="Training, backtest and experiment runs, newest first.",
    query=RunsQuery,
    ok=RunsResponse,
    ok_description="The runs",
)
def api_runs() -> Any:
    query = query_args()
    runs = list_runs(extensions.storage(), limit=query.limit, run_type=query.type)
    admin = is_admin()
    return {"runs": [public_row(run, admin) for run in runs]}


@api_bp.get("/runs/<int:run_id>")
@operation(
    "One run",
    "registry",
    description="Parameters, data window and fingerprint, metrics, artifact and code version.",
    ok=RunOut,
    ok_description="The run",
)
def api_run(run_id: int) -> Any:
    run = get_run(extensions.storage(), run_id)
    if run is None:
        raise ApiError(404, f"run {run_id} does not exist", [detail("run_id", "no such run")])
    return public_row(run, is_admin())


# pages

ACTIONS = {"promote": versions.promote, "rollback": versions.rollback, "archive": versions.archive}


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
        "serving": _serving(),
        "admin_enabled": bool(current_app.config.get("STORECAST_ADMIN_TOKEN")),
        "refresh_seconds": current_app.config["MODEL_REFRESH_SECONDS"],
        "staleness": extensions.staleness(),
    }


def _promotion_warning(action: str, version: str) -> dict[str, Any] | None:
    """The backtest regression the page asks the admin to confirm before promoting `version`."""
    if action != "promote" or not version:
        return None
    return versions.promotion_warning(extensions.storage(), _name(), version)


@pages_bp.get("/models")
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


@pages_bp.post("/models/action")
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
    if action not in ACTIONS:
        return fail(422, "choose promote, rollback or archive")
    if action != "rollback" and not version:
        return fail(422, f"choose the version to {action}")
    args = () if action == "rollback" else (version,)
    # the confirmation names the version it was given for: it cannot carry over to another choice
    confirmed = form.get("force", "").strip().lower().removeprefix("v") == version.lower().removeprefix("v")
    options = {"force": confirmed} if action == "promote" else {}
    try:
        row = ACTIONS[action](
            extensions.storage(), _name(), *args, by=_actor(form.get("by")), reason=reason, **options
        )
    except versions.WorseThanProduction as worse:
        return fail(worse.status, "Confirm the promotion: its backtest is worse.", worse.comparison)
    except versions.RegistryError as error:
        return fail(error.status, str(error))
    _refresh_holder()
    verb = {"promote": "promoted to production", "rollback": "back in production", "archive": "archived"}[
        action
    ]
    flash(f"{row['label']} {verb}", "success")
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


@pages_bp.get("/models/<version>")
def model_card_page(version: str) -> Any:
    try:
        row = versions.get_version(extensions.storage(), _name(), version)
    except versions.RegistryError as error:
        return render_template("error.html", status=404, title="No such version", message=str(error)), 404
    run = get_run(extensions.storage(), row["run_id"]) if row["run_id"] else None
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
        for bucket, figures in (run["metrics"].get("by_bucket") or {}).items():
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


@pages_bp.get("/runs")
def runs_page() -> Any:
    """Runs side by side: a table of all, a chart of the chosen ones (default: the newest with metrics)."""
    storage = extensions.storage()
    runs = list_runs(storage, limit=100)
    chosen_ids = [n for n in map(parse_row_id, request.args.getlist("run")) if n is not None]
    if chosen_ids:
        chosen = [run for run in runs if run["id"] in chosen_ids] or list_runs(storage, ids=chosen_ids)
    else:
        chosen = [run for run in runs if run["metrics"].get("by_bucket")][:6]
    chosen = chosen[:6]  # a chart with more colours than that is unreadable
    try:
        chart = wmae_by_bucket_chart(chosen)
    except Exception:  # noqa: BLE001 - the table is still useful without the chart
        log.exception("runs chart failed")
        chart = None
    return render_template(
        "registry/runs.html", runs=runs, chosen=chosen, chosen_ids={run["id"] for run in chosen}, chart=chart
    )


@pages_bp.get("/runs/<int:run_id>")
def run_page(run_id: int) -> Any:
    run = get_run(extensions.storage(), run_id)
    if run is None:
        return render_template(
            "error.html", status=404, title="No such run", message=f"run {run_id} does not exist"
        ), 404
    return render_template("registry/run.html", run=run)
