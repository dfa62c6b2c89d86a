"""The production model (its card's data, its inputs and features) and the registry of model versions:
reads are open, stage changes need the admin token (app.web.admin_auth)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app

from app import extensions
from app.registry import versions
from app.web import context
from app.web.admin_auth import admin_actor, is_admin, public_row, require_admin
from app.web.api import bp
from app.web.api.errors import ApiError, detail
from app.web.api.openapi import json_body, operation
from app.web.model_card import model_features as features_of
from app.web.model_card import model_summary
from app.web.registry_actions import change_stage, serving
from app.web.schemas import (
    AdminActionRequest,
    FeaturesResponse,
    ModelResponse,
    ModelsResponse,
    ModelVersionDetail,
    input_features,
)

F = TypeVar("F", bound=Callable[..., Any])
VERSION_PATH = "a version number, with or without its `v` (3 or v3)"


def _name() -> str:
    return current_app.config["MODEL_NAME"]


@bp.get("/model")
@operation(
    "The production model",
    "model",
    description="Version, kind, parameters, training window, backtest, importances.",
    ok=ModelResponse,
)
def model() -> Any:
    """The production model: version, kind, parameters, training window, backtest, feature importances."""
    return model_summary(context.forecaster())


@bp.get("/model/features")
@operation(
    "Inputs and features",
    "model",
    description="Request fields with types and valid ranges; the features the model computes.",
    ok=FeaturesResponse,
)
def model_features() -> Any:
    """The request fields (types, valid ranges) and the features the model computes (with importances)."""
    model = context.forecaster()
    return {"model_version": str(model.version), "inputs": input_features(), "features": features_of(model)}


@bp.get("/models")
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
def models() -> Any:
    """Every version with its stage, the stage history (newest first) and what this worker serves."""
    storage, name = extensions.storage(), _name()
    rows = versions.list_versions(storage, name)
    production = next((row["label"] for row in rows if row["stage"] == "production"), None)
    admin = is_admin()
    return {
        "name": name,
        "production": production,
        "serving": serving().get("serving"),
        "versions": [public_row(row, admin) for row in rows],
        "history": versions.stage_history(storage, name),
    }


@bp.get("/models/<version>")
@operation(
    "One model version",
    "registry",
    description="The version and its own stage history (newest first).",
    ok=ModelVersionDetail,
    path_descriptions={"version": VERSION_PATH},
)
def model_version(version: str) -> Any:
    try:
        row = versions.get_version(extensions.storage(), _name(), version)
    except versions.RegistryError as error:
        raise ApiError(error.status, str(error), [detail("version", str(error))]) from None
    return {
        **public_row(row, is_admin()),
        "history": versions.stage_history(extensions.storage(), _name(), version),
    }


def _admin_action(action: str, version: str | None = None) -> Any:
    require_admin()
    parsed = json_body()
    try:
        row = change_stage(
            action, version, by=admin_actor(parsed.by), reason=parsed.reason, force=parsed.force
        )
    except versions.RegistryError as error:
        field = (
            "force" if isinstance(error, versions.WorseThanProduction) else "version" if version else "body"
        )
        raise ApiError(error.status, str(error), [detail(field, str(error))]) from None
    comparison = row.pop("comparison", None)
    return {
        **row,
        "history": versions.stage_history(extensions.storage(), _name())[:10],
        "comparison": comparison["message"] if comparison else None,
    }


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
                "(promote) the version scores worse than production on the same weeks and `force` is not "
                "true: the message says by how much and on which weeks"
            ),
        },
        path_descriptions={"version": VERSION_PATH} if with_version else {},
    )


@bp.post("/models/<version>/promote")
@_admin_operation(
    "Promote a version",
    "Makes the version production; the production version is archived (both or neither). The artifact's "
    "SHA-256 is checked first.",
)
def promote(version: str) -> Any:
    return _admin_action("promote", version)


@bp.post("/models/rollback")
@_admin_operation(
    "Roll back",
    "Puts back the version that was production before the current one, which is archived.",
    with_version=False,
)
def rollback() -> Any:
    return _admin_action("rollback")


@bp.post("/models/<version>/archive")
@_admin_operation(
    "Archive a version", "Retires a staging version (production cannot be archived: promote or roll back)."
)
def archive(version: str) -> Any:
    return _admin_action("archive", version)
