"""What the loop knows of the weeks since training: ingested actual sales and covariates, per lineage."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from app.forecasting.artifacts import load_forecaster
from app.forecasting.engine import ModelSource
from app.forecasting.forecaster import Forecaster
from app.monitoring.actual_features import features_frame
from app.registry import versions
from app.registry.actual_history import actuals_frame
from app.storage import ActualFeature, ActualSale, Storage


def lineage_of(forecaster: Forecaster) -> str | None:
    """The dataset lineage a model was trained on (None for models trained before lineages existed)."""
    return forecaster.metadata.get("data_lineage")


def actuals_stamp(storage: Storage) -> tuple:
    """A cheap token that changes whenever actuals are ingested (two indexed MAX lookups)."""
    with storage.session() as session:
        sales = session.execute(select(func.max(ActualSale.ingested_at), func.max(ActualSale.week))).one()
        features = session.execute(select(func.max(ActualFeature.ingested_at))).one()
    return (*sales, *features)


def production_forecaster(storage: Storage, model_name: str) -> Forecaster:
    """The registry's production model as trained (its artifact, hash checked); LookupError if none."""
    return _production(storage, model_name)[0]


def _production(storage: Storage, model_name: str) -> tuple[Forecaster, dict]:
    row = versions.production_version(storage, model_name)
    if row is None:
        raise LookupError(f"no production version of {model_name}")
    forecaster = load_forecaster(row["artifact_path"], expected_sha256=row["artifact_sha256"])
    forecaster.version = row["label"]
    return forecaster, row


def roll_forward(forecaster: Forecaster, storage: Storage) -> Forecaster:
    """The production model at the newest week of known sales of its lineage, without refitting."""
    return forecaster.with_history(*_since_training(forecaster, storage))  # itself when nothing is new


def _since_training(forecaster: Forecaster, storage: Storage) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The actual sales of the model's lineage and the covariates since its origin."""
    sales = actuals_frame(storage, lineage_of(forecaster), untagged=False)
    return sales, features_frame(storage, since=forecaster.data_through)


def rolled_production(storage: Storage, model_name: str) -> tuple[Forecaster, ModelSource]:
    """The production model rolled to the newest actuals, and how a distributed worker rebuilds it
    (artifact path and hash, the same sales and covariates); LookupError if there is none."""
    base, row = _production(storage, model_name)
    sales, features = _since_training(base, storage)
    source = ModelSource(row["artifact_path"], row["artifact_sha256"], row["label"], sales, features)
    return base.with_history(sales, features), source
