"""The one function a forecast run over many series goes through, on an engine.

`local` scores every series in this process. `dask` cuts the series into partitions and scores them
in Dask distributed workers: an embedded LocalCluster sized to the machine, or the cluster at
`scheduler_address`. A worker rebuilds the run's model itself from a ModelSource (the registered
artifact, its SHA-256 checked, rolled to the same sales) once per run and keeps it for the run's
other partitions; so on a cluster of machines only paths, hashes and the week's sales travel.
Each row depends only on its own series, so the partitions' rows, concatenated in order, are the
in-process run's rows.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from app.forecasting.artifacts import load_forecaster
from app.forecasting.forecaster import Forecaster
from app.forecasting.inputs import MAX_HORIZON

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")
DEFAULT_PARTITION_SERIES = 2_000  # about 104,000 rows a partition: seconds of work, a few MB back


@dataclass(frozen=True)
class Engine:
    """Where a run is computed: in this process, or on Dask (embedded cluster or a scheduler's address)."""

    kind: Literal["local", "dask"] = "local"
    scheduler_address: str | None = None  # None: an embedded LocalCluster for the run
    workers: int = 0  # embedded cluster's worker processes; 0: one per core
    partition_series: int = DEFAULT_PARTITION_SERIES

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.kind!r}")
        if self.partition_series < 1:
            raise ValueError("partition_series must be at least 1")

    @classmethod
    def from_config(cls, config: Any, kind: str | None = None) -> Engine:
        """The engine named (or FORECAST_ENGINE) with the Dask settings of a configuration mapping."""
        return cls(
            kind=(kind or config.get("FORECAST_ENGINE") or "local"),  # type: ignore[arg-type]
            scheduler_address=config.get("DASK_SCHEDULER_ADDRESS") or None,
            workers=int(config.get("DASK_WORKERS") or 0),
            partition_series=int(config.get("DASK_PARTITION_SERIES") or DEFAULT_PARTITION_SERIES),
        )


LOCAL = Engine()


@dataclass(frozen=True)
class ModelSource:
    """How a worker rebuilds the run's model: the registered artifact, hash-checked, rolled forward
    to the same sales and covariates (Forecaster.with_history) without refitting."""

    artifact_path: str
    artifact_sha256: str
    version: str
    sales: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # one per run: what workers cache by

    def build(self) -> Forecaster:
        forecaster = load_forecaster(self.artifact_path, expected_sha256=self.artifact_sha256)
        forecaster.version = self.version
        return forecaster if self.sales is None else forecaster.with_history(self.sales, self.features)

    def without_frames(self) -> ModelSource:
        """The same source with its frames left out (they travel once, scattered to every worker)."""
        return ModelSource(self.artifact_path, self.artifact_sha256, self.version, token=self.token)


def forecast_run(
    forecaster: Forecaster,
    weeks: int = MAX_HORIZON,
    engine: Engine = LOCAL,
    source: ModelSource | None = None,
) -> pd.DataFrame:
    """A run's rows (forecast_all's columns) for every series with history, on `engine`.

    With Dask and a `source`, workers load the artifact themselves; without one the fitted
    forecaster itself is sent to every worker once.
    """
    if engine.kind == "local":
        # One thread: the run shares the machine with the serving workers, and OpenMP threads that
        # oversubscribe 2 busy cores made it 2.4x slower than a single thread (10.6 s against 4.4 s).
        with threadpool_limits(1):
            return forecaster.forecast_all(weeks)
    parts = _partitions(forecaster, engine.partition_series)
    with dask_client(engine) as client:
        if source is not None:
            frames = client.scatter((source.sales, source.features), broadcast=True)
            model: Any = (source.without_frames(), frames)
        else:
            model = client.scatter(forecaster, broadcast=True)
        futures = client.map(_score_partition, parts, weeks=weeks, model=model, pure=False)
        frames_out = client.gather(futures)
    log.info("scored %d partitions of at most %d series on dask", len(parts), engine.partition_series)
    return pd.concat(frames_out, ignore_index=True) if frames_out else forecaster.forecast_all(weeks)[:0]


def _partitions(forecaster: Forecaster, size: int) -> list[np.ndarray]:
    """The series with history as store*1000+dept keys, in the in-process run's order, cut in parts."""
    rows = np.flatnonzero(forecaster.state.has_history)
    keys = forecaster.panel.store[rows] * 1000 + forecaster.panel.dept[rows]
    return [keys[start : start + size] for start in range(0, len(keys), size)]


_worker_models: dict[str, Forecaster] = {}  # a worker process's model of the current run, by token


def _worker_model(model: Any) -> Forecaster:
    if isinstance(model, Forecaster):
        return model
    source, (sales, features) = model
    cached = _worker_models.get(source.token)
    if cached is None:
        _worker_models.clear()  # one run at a time: never keep an earlier run's model
        built = ModelSource(source.artifact_path, source.artifact_sha256, source.version, sales, features)
        cached = _worker_models[source.token] = built.build()
        log.info("worker built model %s for run %s", source.version, source.token[:8])
    return cached


def _score_partition(keys: np.ndarray, *, weeks: int, model: Any) -> pd.DataFrame:
    """One partition's rows, in a worker: the model rebuilt (or reused) there, one thread per task."""
    forecaster = _worker_model(model)
    positions = forecaster.panel.positions(keys)
    if (positions < 0).any():  # the worker's model must be the publisher's, series for series
        raise RuntimeError(f"the worker's model lacks {int((positions < 0).sum())} series of the run")
    with threadpool_limits(1):
        return forecaster.forecast_all(weeks, series=positions)


def imported_packages() -> list[str]:
    """The top-level packages this process has imported. Run on the workers (Client.run) it shows that
    a worker holds the core only: unpickling a task of app.forecasting imports no Flask, no database."""
    return sorted({name.partition(".")[0] for name in sys.modules if not name.startswith("_")})


@contextmanager
def dask_client(engine: Engine) -> Iterator[Any]:
    """A Client on the engine's scheduler, or on an embedded LocalCluster closed afterwards."""
    # Deferred: distributed adds about 1 s and 60 MB to an import; serving workers never need it.
    from distributed import Client

    if engine.scheduler_address:
        with Client(engine.scheduler_address, set_as_default=False) as client:
            yield client
        return
    with local_cluster(engine.workers) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def local_cluster(workers: int = 0, **options: Any) -> Any:
    """An embedded cluster: `workers` processes (0: one per core) of one thread each, on loopback.

    Its HTTP server (the scheduler starts one even without a dashboard) takes a free port rather than
    8787, which another cluster on the machine may hold. `options` go to LocalCluster (the benchmark
    preloads modules with them).
    """
    # Deferred: distributed adds about 1 s and 60 MB to an import; serving workers never need it.
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.WARNING,
        **options,
    )
