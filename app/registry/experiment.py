"""The experiment runner and its promotion gate.

Every candidate model goes through the same rolling-origin backtest (same data, origin, horizon and
folds). Each backtest is a run. The best candidate is trained on all the data, recorded as a training
run and registered as staging. It is promoted only when its WMAE beats production's by the margin:

    challenger_wmae < production_wmae * (1 - margin)        (margin 0.01 = 1 % better)

Production's WMAE is measured under the same backtest (its kind and parameters, re-run on this data),
never taken from an older backtest on other data: the two figures must be comparable. When production
was trained on other data (another lineage) there is no gate and no promotion: the best model of this
data stays in staging (`flask models switch-data` changes a deployment's data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.forecasting.backtest import run_backtest
from app.forecasting.data import Dataset
from app.forecasting.estimators import KINDS
from app.forecasting.holdout import HOLDOUT_WEEKS
from app.forecasting.training import save_model, train
from app.registry import lineage, versions
from app.registry.training_runs import track_run
from app.storage import Run, Storage

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class Candidate:
    """One model's backtest within an experiment."""

    kind: str
    run_id: int | None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    role: str = "candidate"  # candidate, production-baseline

    @property
    def wmae(self) -> float | None:
        value = self.metrics.get("wmae")
        return float(value) if value is not None else None


@dataclass
class ExperimentResult:
    candidates: list[Candidate]
    best: Candidate | None
    production_before: dict[str, Any] | None
    production_wmae: float | None
    margin: float
    version: dict[str, Any] | None = None
    promoted: bool = False
    decision: str = ""

    def format_table(self) -> str:
        """The comparison as a fixed-width text table (the CLI prints it)."""
        header = (
            f"{'model':<10} {'role':<20} {'run':>5} {'WMAE':>12} {'MAE':>12} "
            f"{'baseline':>12} {'cov80':>6} {'cov95':>6} {'secs':>6}"
        )
        lines = [header, "-" * len(header)]
        for candidate in self.candidates:
            metrics = candidate.metrics
            marker = " *" if self.best is candidate else ""
            if candidate.error:
                lines.append(
                    f"{candidate.kind:<10} {candidate.role:<20} {candidate.run_id or '-':>5} "
                    f"failed: {candidate.error}"
                )
                continue
            lines.append(
                f"{candidate.kind + marker:<10} {candidate.role:<20} {candidate.run_id or '-':>5} "
                f"{_num(metrics.get('wmae')):>12} {_num(metrics.get('mae')):>12} "
                f"{_num(metrics.get('baseline_wmae')):>12} {_pct(metrics.get('coverage_80')):>6} "
                f"{_pct(metrics.get('coverage_95')):>6} {candidate.seconds:>6.1f}"
            )
        lines.append("")
        lines.append(self.decision)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [
                {"kind": c.kind, "role": c.role, "run_id": c.run_id, "wmae": c.wmae, "error": c.error}
                for c in self.candidates
            ],
            "best": self.best.kind if self.best else None,
            "production_before": self.production_before,
            "production_wmae": self.production_wmae,
            "margin": self.margin,
            "version": self.version,
            "promoted": self.promoted,
            "decision": self.decision,
        }


def _num(value: Any) -> str:
    return f"{float(value):,.1f}" if value is not None else "-"


def _pct(value: Any) -> str:
    return f"{100 * float(value):.0f}%" if value is not None else "-"


def backtest(
    dataset: Dataset,
    kind: str,
    *,
    origin: Any = None,
    horizon: int | None = None,
    folds: int = 1,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The core's rolling-origin backtest as a dict (what a run stores as metrics).

    Without an origin, the last `horizon` weeks of the data are held out.
    """
    horizon = horizon or HOLDOUT_WEEKS
    if origin is None:
        origin = dataset.last_week - pd.Timedelta(weeks=horizon)
    result = run_backtest(dataset, origin, horizon, kind=kind, folds=folds, params=params)
    return result.to_dict()


def _production_params(storage: Storage, production: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters production was trained with (from its run), so its baseline is the same recipe."""
    if not production or not production.get("run_id"):
        return {}
    with storage.session() as session:
        run = session.get(Run, production["run_id"])
        params = dict(run.params or {}) if run is not None else {}
    return params.get("model_params", params) if isinstance(params.get("model_params", params), dict) else {}


def _evaluate(
    storage: Storage,
    dataset: Dataset,
    kind: str,
    *,
    role: str,
    protocol: dict[str, Any],
    params: dict[str, Any] | None,
    progress: Progress,
) -> Candidate:
    progress(f"backtesting {kind} ({role})...")
    started = time.perf_counter()
    run_params = {**protocol, "role": role, "model_params": params or {}}
    try:
        with track_run(storage, "experiment", kind, params=run_params, dataset=dataset) as run:
            metrics = backtest(
                dataset,
                kind,
                origin=protocol.get("origin"),
                horizon=protocol.get("horizon"),
                folds=protocol.get("folds", 1),
                params=params,
            )
            run.log_metrics(metrics)
    except Exception as error:  # one failing model must not stop the comparison; the run keeps the error
        log.exception("backtest of %s failed", kind)
        return Candidate(kind, run.id, seconds=time.perf_counter() - started, error=str(error), role=role)
    candidate = Candidate(kind, run.id, metrics=run.metrics, seconds=time.perf_counter() - started, role=role)
    progress(f"  {kind}: WMAE {_num(candidate.wmae)} in {candidate.seconds:.1f}s")
    return candidate


def train_and_register(
    storage: Storage,
    dataset: Dataset,
    kind: str,
    *,
    model_name: str,
    models_dir: str | Path,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    stage: str | None = None,
    by: str | None = None,
    reason: str = "",
    run_params: dict[str, Any] | None = None,
    retire_reason: str | None = None,
    also: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Train on all of `dataset`, save the artifact, record the training run and register the version.

    stage=None: production when there is none yet, otherwise staging (what every `train` does).
    `retire_reason` and `also`: see versions.register_version (a data switch).
    """
    with track_run(
        storage, "train", kind, params={**(run_params or {}), "model_params": params or {}}, dataset=dataset
    ) as run:
        kwargs: dict[str, Any] = {"kind": kind}
        if params:
            kwargs["params"] = params
        trained = train(dataset, **kwargs)
        artifact = save_model(trained, Path(models_dir), name=model_name)
        run.log_artifact(artifact)
        run.log_metrics(metrics or artifact.metadata.get("backtest") or {})
    return versions.register_version(
        storage,
        model_name,
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        model_kind=kind,
        metrics=metrics or artifact.metadata.get("backtest") or {},
        run_id=run.id,
        stage=stage,
        by=by,
        reason=reason,
        data_source=artifact.metadata.get("data_source"),
        data_lineage=artifact.metadata.get("data_lineage"),
        retire_reason=retire_reason,
        also=also,
    )


def run_experiment(
    storage: Storage,
    dataset: Dataset,
    *,
    model_name: str,
    models_dir: str | Path,
    kinds: Sequence[str] = KINDS,
    folds: int = 3,
    origin: Any = None,
    horizon: int | None = None,
    margin: float = 0.01,
    params: dict[str, dict[str, Any]] | None = None,
    by: str | None = None,
    progress: Progress | None = None,
) -> ExperimentResult:
    """Compare `kinds` under one backtest, register the best as staging and promote it past the gate."""
    say = progress or (lambda message: log.info("%s", message))
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"unknown model kind(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KINDS)}"
        )
    params = params or {}
    protocol = {
        "folds": folds,
        "origin": str(origin) if origin is not None else None,
        "horizon": horizon,
        "models": list(kinds),
    }
    production = versions.production_version(storage, model_name)
    data_check = lineage.check_data(storage, model_name, dataset.lineage(), dataset.source)
    data_changed = data_check["status"] == "different"  # production's data is not this: no gate

    candidates = [
        _evaluate(
            storage, dataset, kind, role="candidate", protocol=protocol, params=params.get(kind), progress=say
        )
        for kind in kinds
    ]
    scored = [c for c in candidates if c.error is None and c.wmae is not None]
    best = min(scored, key=lambda c: c.wmae) if scored else None

    production_wmae: float | None = None
    if production is not None and not data_changed:
        production_kind = production["model_kind"]
        production_params = _production_params(storage, production)
        same = next(
            (
                c
                for c in scored
                if c.kind == production_kind and (params.get(c.kind) or {}) == production_params
            ),
            None,
        )
        if same is None:
            baseline = _evaluate(
                storage,
                dataset,
                production_kind,
                role=f"production-baseline v{production['version']}",
                protocol=protocol,
                params=production_params,
                progress=say,
            )
            candidates.append(baseline)
            same = baseline if baseline.error is None else None
        production_wmae = same.wmae if same is not None else None

    result = ExperimentResult(candidates, best, production, production_wmae, margin)
    if best is None:
        result.decision = "no candidate finished its backtest: nothing registered"
        return result

    say(f"training {best.kind} on all the data...")
    run_ids = ",".join(str(c.run_id) for c in candidates)
    reason = f"experiment runs {run_ids}: best of {', '.join(kinds)} with WMAE {_num(best.wmae)}"
    result.version = train_and_register(
        storage,
        dataset,
        best.kind,
        model_name=model_name,
        models_dir=models_dir,
        params=params.get(best.kind),
        metrics=best.metrics,
        stage=None if production is None else "staging",
        by=by,
        reason=reason,
        run_params={"experiment_runs": [c.run_id for c in candidates]},
    )
    label = result.version["label"]
    if production is None:
        result.promoted = True
        result.decision = f"{best.kind} registered as {label} in production (there was no production model)"
    elif data_changed:
        result.decision = (
            f"{best.kind} registered as {label} in staging, not compared: production "
            f"v{production['version']} was trained on other data "
            f"({lineage.source_name(data_check['production_source'])})"
        )
    elif production_wmae is None:
        result.decision = (
            f"{best.kind} registered as {label} in staging; "
            "production could not be backtested, so no promotion"
        )
    elif best.wmae < production_wmae * (1 - margin):
        gain = 1 - best.wmae / production_wmae
        versions.promote(
            storage,
            model_name,
            result.version["version"],
            by=by,
            reason=f"experiment gate: WMAE {_num(best.wmae)} beats production v{production['version']} "
            f"{_num(production_wmae)} by {gain:.1%} (margin {margin:.1%})",
            force=True,  # the gate backtested both on the same folds; the stored figures may differ
        )
        result.version = versions.get_version(storage, model_name, result.version["version"])
        result.promoted = True
        result.decision = (
            f"{best.kind} {label} promoted to production: WMAE {_num(best.wmae)} vs production "
            f"v{production['version']} {_num(production_wmae)} ({gain:.1%} better, margin {margin:.1%})"
        )
    else:
        result.decision = (
            f"{best.kind} registered as {label} in staging, not promoted: "
            f"WMAE {_num(best.wmae)} does not beat "
            f"production v{production['version']} {_num(production_wmae)} by the {margin:.1%} margin"
        )
    say(result.decision)
    return result
