"""The Forecaster: what the CLI, the API, the pages and the jobs call.

It holds one origin's state (origin_state.origin_state, computed once when the model is built), the
resolved covariate grid, the fitted estimator and the interval calibrator. Every predict path
goes through `_predict_arrays`, vectorised over rows, which calls the same feature assembly as
training.

One store-department with the model's own covariates (a /predict, a forecast of up to 52 weeks, a
store's departments) is read from that series' block: its 52 weeks after the origin, computed once by
`_predict_arrays` and kept (SERIES_BLOCKS of them, least recently used out). Every row is computed on
its own, so a slice of the block is the very numbers the vectorised path gives for those weeks, while a
request pays for a lookup instead of assembling features and walking the trees again. A lone row (a
plain /predict) is also kept as its Prediction (ROWS of them) and copied, without numpy at all.

One module over 550 lines on purpose: the Forecaster is the one object an artifact holds and every
caller reads, and its paths (a row, a series, a store, a level's total, a frame) share one validation
of weeks, stores and departments and one `_predict_arrays`; what does not need its state lives beside
it (features, intervals, totals, prediction, panel).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import calendar, scores, totals
from app.forecasting.cold_start import ColdStart
from app.forecasting.covariates import Covariates
from app.forecasting.data import COVARIATE_COLUMNS
from app.forecasting.estimators import Estimator, seasonal_naive
from app.forecasting.explain import COMPONENTS, cold_components, components
from app.forecasting.feature_config import FeatureConfig
from app.forecasting.features import aligned_weeks, assemble, resolve_covariates
from app.forecasting.inputs import MAX_HORIZON, QUANTILE_RANGE
from app.forecasting.intervals import (
    IntervalCalibrator,
    difficulty_features,
    interval_denominator,
)
from app.forecasting.metadata import ModelMetadata
from app.forecasting.origin_state import OriginState, origin_state
from app.forecasting.panel import Panel
from app.forecasting.prediction import Prediction, StoreForecast, TotalForecast, quantile_name, to_predictions

SERIES_BLOCKS = 1024  # store-departments whose 52 weeks a Forecaster keeps computed (~10 kB each)
ROWS = 4096  # one-week Predictions a Forecaster keeps ready for lone rows (~1 kB each)
_OVERRIDES = (*COVARIATE_COLUMNS, "is_holiday")  # a row's covariates the caller may give
_EPOCH_DAY = dt.date.fromisoformat(str(calendar.EPOCH))
# Totals above a store (the chain, a department across stores) a Forecaster keeps computed: one adds up
# every series it covers, and every planner asks for the same few weeks of the same model and origin.
TOTALS_KEPT = 64


class ForecastError(ValueError):
    """A request the model cannot answer; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Forecaster:
    """Forecasts 1..52 weeks after `origin` for any store-department of known stores."""

    def __init__(
        self,
        *,
        estimator: Estimator,
        config: FeatureConfig,
        panel: Panel,
        covariates: Covariates,
        calibrator: IntervalCalibrator,
        metadata: ModelMetadata | None = None,
    ) -> None:
        self.estimator = estimator
        self.config = config
        self.panel = panel
        self.covariates = covariates
        self.calibrator = calibrator
        self.metadata: ModelMetadata = dict(metadata or {})  # type: ignore[assignment]
        self.origin_week = panel.last_week
        self.state: OriginState = origin_state(panel, self.origin_week, config)
        self.cold_start = ColdStart(panel, self.state)
        # Per series, known at the origin: what predicts its error (the intervals' difficulty) and the
        # floor of its lower bounds (0 unless it ever sold below 0, as returns can make it).
        self.difficulty_features = difficulty_features(self.state.raw, self.state.scale)
        with np.errstate(invalid="ignore"):
            ever_negative = np.any(panel.values < 0, axis=1)
        self.floor = np.where(ever_negative, -np.inf, 0.0)
        self._store_set = {int(x) for x in self.cold_start.stores}
        self.version: str = str(self.metadata.get("version", f"{estimator.kind}-{self.origin.date()}"))

    def __getstate__(self) -> dict[str, Any]:
        """What an artifact holds: the series blocks are a cache, recomputed after loading."""
        state = self.__dict__.copy()
        state.pop("_blocks", None)
        state.pop("_rows", None)
        state.pop("_totals", None)
        return state

    def with_history(self, sales: pd.DataFrame, features: pd.DataFrame | None = None) -> Forecaster:
        """The same fitted model at the newest origin, without refitting (rolling origin).

        `sales` (store, dept, date, weekly_sales) join the history, a row for a week already known
        replacing it; `features` (a features table's rows) replace the covariates the model assumed.
        The features are recomputed at the new origin by the one pipeline, so nothing after the newest
        week of known sales reaches a forecast.
        """
        covariates = self.covariates
        if features is not None and not features.empty:
            covariates = covariates.with_observed(features)
        sales = sales[covariates.store_pos(sales["store"].to_numpy(np.int64)) >= 0]
        week = calendar.week_index(sales["date"])
        sales, week = sales[week >= self.panel.first_week], week[week >= self.panel.first_week]
        if sales.empty:
            if covariates is self.covariates:
                return self
            panel = self.panel
        else:
            panel = self.panel.merged(sales, week)
        covariates = covariates.extended(panel.last_week + MAX_HORIZON)
        return Forecaster(
            estimator=self.estimator,
            config=self.config,
            panel=panel,
            covariates=covariates,
            calibrator=self.calibrator,
            metadata={**self.metadata, "version": self.version},
        )

    # info
    @functools.cached_property
    def origin(self) -> pd.Timestamp:
        """The week the forecasts are made from (fixed for a Forecaster: read on every request)."""
        return calendar.week_date(self.origin_week)[0]

    @functools.cached_property
    def data_through(self) -> dt.date:
        """The last week of known sales: forecasts start the week after."""
        return self.origin.date()

    def stores(self) -> list[int]:
        return sorted(int(s) for s in np.unique(self.panel.store[self.state.has_history]))

    def departments(self, store: int) -> list[int]:
        self._check_store(store)
        mask = (self.panel.store == int(store)) & self.state.has_history
        return sorted(int(d) for d in self.panel.dept[mask])

    def history(self, store: int, dept: int, weeks: int = 104) -> pd.DataFrame:
        """Observed weekly sales up to the origin (for charts)."""
        self._check_store(store)
        i = int(self.panel.positions(np.array([int(store) * 1000 + int(dept)]))[0])
        if i < 0:
            return pd.DataFrame(
                {"date": pd.Series(dtype="datetime64[ns]"), "weekly_sales": pd.Series(dtype=float)}
            )
        values = self.panel.values[i, -weeks:]
        first = self.panel.last_week - len(values) + 1
        dates = calendar.week_date(np.arange(first, self.panel.last_week + 1))
        frame = pd.DataFrame({"date": dates, "weekly_sales": values})
        return frame[~np.isnan(values)].reset_index(drop=True)

    def total_history(self, level: str, key: int | None = None, weeks: int = 104) -> pd.DataFrame:
        """Observed weekly sales of the chain, a department or a store, summed over its series up to the
        origin (for charts); weeks without any sale are left out."""
        keys = totals.level_key(level, self.panel.store, self.panel.dept)
        mask = np.ones(len(keys), bool) if level == "chain" else keys == int(key)  # type: ignore[arg-type]
        block = self.panel.values[mask, -weeks:]
        first = self.panel.last_week - block.shape[1] + 1
        dates = calendar.week_date(np.arange(first, self.panel.last_week + 1))
        known = ~np.isnan(block).all(axis=0) if len(block) else np.zeros(block.shape[1], bool)
        frame = pd.DataFrame({"date": dates, "weekly_sales": np.nansum(block, axis=0) if len(block) else 0.0})
        return frame[known].reset_index(drop=True)

    def difficulty(self, store: np.ndarray, dept: np.ndarray, horizon: np.ndarray) -> np.ndarray:
        """Each row's series' interval difficulty at its horizon (the calibrator's; typical for a series
        without history)."""
        key = np.asarray(store, dtype=np.int64) * 1000 + np.asarray(dept, dtype=np.int64)
        series = self.panel.positions(key)
        features = np.full((len(series), self.difficulty_features.shape[1]), np.nan)
        features[series >= 0] = self.difficulty_features[series[series >= 0]]
        return self.calibrator.difficulty(features, horizon)

    def bucket_only_half_width(
        self, store: np.ndarray, dept: np.ndarray, horizon: np.ndarray, half: np.ndarray, level: float = 0.8
    ) -> np.ndarray:
        """The bucket-only conformal half-widths at `level` (every series alike, without its difficulty)
        of rows whose served ones (upper - prediction) are `half`: what a store total reads of its
        departments at 80% (totals.with_bounds), and the yardstick the backtest scores against."""
        difficulty = self.difficulty(store, dept, horizon)
        return self.calibrator.plain_half_width(horizon, half, difficulty, level)

    def series_profile(self, store: np.ndarray, dept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's series' volatility and size at the origin (scores.series_profile; NaN for a
        series without history): the groups the scores are given by."""
        cv, size = scores.series_profile(self.state.raw)
        key = np.asarray(store, dtype=np.int64) * 1000 + np.asarray(dept, dtype=np.int64)
        series = self.panel.positions(key)
        known = series >= 0
        out_cv, out_size = np.full(len(series), np.nan), np.full(len(series), np.nan)
        out_cv[known], out_size[known] = cv[series[known]], size[series[known]]
        return out_cv, out_size

    def valid_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return (
            calendar.week_date(self.origin_week + 1)[0],
            calendar.week_date(self.origin_week + MAX_HORIZON)[0],
        )

    # predict
    def predict_rows(
        self, rows: list[dict[str, Any]], explain: bool = False, quantiles: list[float] | None = None
    ) -> list[Prediction]:
        """Predictions for rows of store, dept, date and optional covariates (`explain`: with their
        components and last year's sales, at about twice the cost; `quantiles`: with those quantiles,
        each in QUANTILE_RANGE)."""
        if not rows:
            return []
        if len(rows) == 1 and not explain and not quantiles:
            found = self._one_row(rows[0])
            if found is not None:
                return [found]
        try:
            store = np.array([int(r["store"]) for r in rows], dtype=np.int64)
            dept = np.array([int(r["dept"]) for r in rows], dtype=np.int64)
        except KeyError as exc:
            raise ForecastError(str(exc.args[0]), "is required") from None
        except (TypeError, ValueError):
            raise ForecastError("store", "store and dept must be integers") from None
        week = self._weeks([r.get("date") for r in rows])
        overrides = self._overrides(rows)
        return self._predictions(store, dept, week, overrides, explain, quantiles)

    def forecast(
        self,
        store: int,
        dept: int,
        start: object,
        weeks: int,
        covariates: list[dict[str, Any]] | None = None,
        explain: bool = False,
        quantiles: list[float] | None = None,
    ) -> list[Prediction]:
        """`weeks` consecutive weekly forecasts for one store-department from `start` (`explain`: with
        their components and last year's sales; `quantiles`: with those quantiles)."""
        first = int(self._weeks([start])[0])
        weeks = int(weeks)
        if weeks < 1 or first + weeks - 1 > self.origin_week + MAX_HORIZON:
            lo, hi = self.valid_range()
            raise ForecastError("weeks", f"the forecast must stay within {lo.date()}..{hi.date()}")
        week = np.arange(first, first + weeks)
        n = len(week)
        overrides = self._overrides(covariates or [], n) if covariates else None
        store_arr, dept_arr = np.full(n, int(store)), np.full(n, int(dept))
        return self._predictions(store_arr, dept_arr, week, overrides, explain, quantiles)

    def forecast_store(self, store: int, start: object, weeks: int) -> StoreForecast:
        """Every department of a store, plus the store total (totals.py)."""
        depts = self.departments(store)
        span = self._week_range(start, weeks)
        weeks = len(span)
        blocks = [self._series_arrays(int(store), d, span) for d in depts]
        res = {key: np.concatenate([block[key] for block in blocks]) for key in blocks[0]}
        preds = to_predictions(res, self.version, self.data_through)
        departments = {d: preds[k * weeks : (k + 1) * weeks] for k, d in enumerate(depts)}
        bounded = totals.level_totals(self.calibrator, "store", self._rows_frame(res))
        total = []
        for j, row in enumerate(bounded.itertuples(index=False)):
            first_pred = preds[j]
            total.append(
                Prediction(
                    store=int(store),
                    dept=0,
                    week=first_pred.week,
                    horizon=first_pred.horizon,
                    prediction=float(row.prediction),
                    lower_80=float(row.lower_80),
                    upper_80=float(row.upper_80),
                    lower_95=float(row.lower_95),
                    upper_95=float(row.upper_95),
                    inputs=first_pred.inputs,
                    assumed=first_pred.assumed,
                    cold_start=False,
                    model_version=self.version,
                    data_through=first_pred.data_through,
                )
            )
        return StoreForecast(store=int(store), departments=departments, total=total)

    def all_departments(self) -> list[int]:
        """The departments with sales history in any store."""
        return sorted(self._dept_set)

    @functools.cached_property
    def _dept_set(self) -> set[int]:
        """Departments with sales history in some store: only those have a share and a season to borrow
        for a store new to them (cold_start.py); a department no store sells has neither."""
        return {int(d) for d in np.unique(self.panel.dept[self.state.has_history])}

    def forecast_total(self, level: str, key: int | None, start: object, weeks: int) -> TotalForecast:
        """The chain's total (`level` "chain") or a department's across stores ("department", `key`
        its number), week by week with intervals calibrated for that level, and its parts' totals: the
        chain's departments, or the department's stores (totals.py). Kept per level, key and weeks
        (TOTALS_KEPT): a Forecaster is one model at one origin, so a kept total never goes stale; the
        frames are shared, read only."""
        if level == "department":
            self._check_department(key)
            key = int(key)  # type: ignore[arg-type]
        elif level != "chain":
            raise ForecastError("level", f"not a level above a store: {level!r}; use chain or department")
        else:
            key = None
        week = self._week_range(start, weeks)
        cache = self.__dict__.get("_totals")
        if cache is None:  # made on first use: a loaded artifact arrives without one
            cache = self.__dict__["_totals"] = functools.lru_cache(maxsize=TOTALS_KEPT)(self._total)
        return cache(level, key, int(week[0]), len(week))

    def _total(self, level: str, key: int | None, first: int, weeks: int) -> TotalForecast:
        """forecast_total of checked arguments, `weeks` weeks from week index `first`."""
        series = self.state.has_history.copy()
        if level == "department":
            series &= self.panel.dept == key
        week = np.arange(first, first + weeks)
        rows = np.repeat(np.flatnonzero(series), len(week))
        res = self._predict_arrays(
            self.panel.store[rows], self.panel.dept[rows], np.tile(week, int(series.sum())), None
        )
        frame = self._rows_frame(res)
        if level == "chain":
            part_level, parts = "department", totals.level_totals(self.calibrator, "department", frame)
        else:  # a department's part in a store is one series: its own served band
            part_level, parts = "store", self._series_parts(frame, res)
        return TotalForecast(
            level=level,
            key=key,
            part_level=part_level,
            total=totals.level_totals(self.calibrator, level, frame),
            parts=parts,
            model_version=self.version,
            data_through=self.data_through,
        )

    def predict_frame(self, frame: pd.DataFrame, quantiles: list[float] | None = None) -> pd.DataFrame:
        """Vectorised predictions for a DataFrame with store, dept, date (+ optional covariates);
        used by the backtest and the submission. Returns prediction and interval columns (and a
        `q<level>` column per requested quantile, e.g. q0.9)."""
        week = self._weeks(list(frame["date"]))
        overrides = {c: frame[c].to_numpy(float) for c in (*COVARIATE_COLUMNS, "is_holiday") if c in frame}
        res = self._predict_arrays(
            frame["store"].to_numpy(np.int64), frame["dept"].to_numpy(np.int64), week, overrides
        )
        out = pd.DataFrame(
            {k: res[k] for k in ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")},
            index=frame.index,
        )
        out["horizon"] = res["horizon"]
        out["cold_start"] = res["cold"]
        for q in check_quantiles(quantiles):
            out[quantile_name(q)] = self.quantile_values(res, q)
        return out

    def quantile_values(self, res: dict[str, np.ndarray], q: float) -> np.ndarray:
        """The `q` quantile of each row of `_predict_arrays`' answer (calibrator.quantile)."""
        return self.calibrator.quantile(
            q, res["horizon"], res["prediction"], res["denominator"], res["cold"], res["floor"]
        )

    # internals
    @staticmethod
    def _series_parts(frame: pd.DataFrame, res: dict[str, np.ndarray]) -> pd.DataFrame:
        """One department's rows as its stores' parts (totals.sum_totals) with each series' served
        bounds, which a one-series total has no reason to widen or narrow."""
        parts = totals.sum_totals("store", frame)
        served = pd.DataFrame(
            {"key": res["store"], "date": frame["date"], **{c: res[c] for c in totals.BAND_COLUMNS}}
        )
        return parts.merge(served, on=["key", "date"], how="left", validate="one_to_one")

    def _rows_frame(self, res: dict[str, np.ndarray]) -> pd.DataFrame:
        """_predict_arrays' answer as the rows totals.py sums, each with its bucket-only 80% half-width
        (the size its totals' calibration reads, as the held-out rows' are)."""
        return pd.DataFrame(
            {
                "store": res["store"],
                "dept": res["dept"],
                "date": calendar.week_date(res["week"]),
                "horizon": res["horizon"],
                "prediction": res["prediction"],
                "half80": self.calibrator.plain_half_width(
                    res["horizon"], res["upper_80"] - res["prediction"], res["difficulty"]
                ),
            }
        )

    def _week_range(self, start: object, weeks: int) -> np.ndarray:
        """`weeks` consecutive weeks from `start`, all within the horizon, or a ForecastError."""
        first = int(self._weeks([start])[0])
        weeks = int(weeks)
        if weeks < 1 or first + weeks - 1 > self.origin_week + MAX_HORIZON:
            lo, hi = self.valid_range()
            raise ForecastError("weeks", f"the forecast must stay within {lo.date()}..{hi.date()}")
        return np.arange(first, first + weeks)

    def _check_department(self, dept: object) -> None:
        try:
            d = int(dept)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ForecastError("dept", f"not a department number: {dept!r}") from None
        if d not in self._dept_set:
            raise ForecastError("dept", f"unknown department {d}: no store has sales history in it")

    def _check_store(self, store: object) -> None:
        try:
            s = int(store)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ForecastError("store", f"not a store number: {store!r}") from None
        if s not in self._store_set:
            raise ForecastError(
                "store", f"unknown store {s}; known stores: {min(self._store_set)}..{max(self._store_set)}"
            )

    def _weeks(self, dates: list[object]) -> np.ndarray:
        try:
            if any(d is None for d in dates):
                raise ValueError
            try:  # fast path: ISO strings, dates, datetimes, Timestamps
                days = np.array([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]")
            except (ValueError, TypeError):
                days = pd.to_datetime(pd.Index(dates)).values.astype("datetime64[D]")
        except (ValueError, TypeError):
            raise ForecastError("date", "dates must be ISO dates (YYYY-MM-DD)") from None
        weekday = (days.astype(np.int64) - 1) % 7  # days since the last Friday (1970-01-02 was one)
        fridays = days + ((7 - weekday) % 7).astype("timedelta64[D]")
        week = ((fridays - calendar.EPOCH).astype(np.int64) // 7).astype(np.int64)
        h = week - self.origin_week
        if h.min() < 1 or h.max() > MAX_HORIZON:
            lo, hi = self.valid_range()
            raise ForecastError(
                "date",
                f"dates must be weeks 1..{MAX_HORIZON} after the model's origin {self.origin.date()}: "
                f"{lo.date()}..{hi.date()}",
            )
        return week

    @staticmethod
    def _overrides(rows: list[dict[str, Any]], n: int | None = None) -> dict[str, np.ndarray] | None:
        names = [c for c in _OVERRIDES if any(r.get(c) is not None for r in rows)]
        if not names:
            return None
        n = len(rows) if n is None else n
        out = {}
        for c in names:
            arr = np.full(n, np.nan)
            for j, r in enumerate(rows[:n]):
                v = r.get(c)
                if v is not None:
                    try:
                        arr[j] = float(v)
                    except (TypeError, ValueError):
                        raise ForecastError(c, f"not a number: {v!r}") from None
            out[c] = arr
        return out

    def forecast_all(
        self, weeks: int = MAX_HORIZON, series: np.ndarray | None = None, quantiles: list[float] | None = None
    ) -> pd.DataFrame:
        """Weeks 1..`weeks` after the origin for every series with history (or the panel rows
        `series`, a partition of them), beside the seasonal naive known at the origin: a published
        forecast run's rows (with a `q<level>` column per requested quantile)."""
        levels = check_quantiles(quantiles)
        if not 1 <= weeks <= MAX_HORIZON:
            raise ForecastError("weeks", f"must be 1..{MAX_HORIZON}")
        if series is None:
            series = np.flatnonzero(self.state.has_history)
        lag = np.tile(np.arange(1, weeks + 1), len(series))
        rows = np.repeat(series, weeks)
        res = self._predict_arrays(
            self.panel.store[rows], self.panel.dept[rows], self.origin_week + lag, None, naive=True
        )
        return pd.DataFrame(
            {
                "store": res["store"],
                "dept": res["dept"],
                "date": calendar.week_date(res["week"]),
                "lag": lag,
                **{
                    k: res[k] for k in ("prediction", "lower_80", "upper_80", "lower_95", "upper_95", "naive")
                },
                **{quantile_name(q): self.quantile_values(res, q) for q in levels},
            }
        )

    def _predict_arrays(
        self,
        store: np.ndarray,
        dept: np.ndarray,
        week: np.ndarray,
        overrides: dict[str, np.ndarray] | None,
        naive: bool = False,
        explain: bool = False,
    ) -> dict[str, np.ndarray]:
        known = self._store_set
        unknown = next((s for s in store.tolist() if s not in known), None)
        if unknown is not None:
            self._check_store(unknown)
        cov = self.covariates
        store_pos = cov.store_pos(store)
        values, source, holiday, holiday_source = resolve_covariates(cov, store_pos, week)
        holiday = holiday.astype(float)
        if overrides:
            for j, c in enumerate(COVARIATE_COLUMNS):
                if c in overrides:
                    given = ~np.isnan(overrides[c])
                    values[given, j] = overrides[c][given]
                    source[given, j] = 4
            if "is_holiday" in overrides:
                given = ~np.isnan(overrides["is_holiday"])
                holiday[given] = overrides["is_holiday"][given]
                holiday_source[given] = 4
        series = self.panel.positions(store * 1000 + dept)
        has = series >= 0
        has[has] = self.state.has_history[series[has]]
        n = len(store)
        pred, base, scale = np.zeros(n), np.zeros(n), np.ones(n)
        naive_pred = np.zeros(n) if naive else None
        parts: dict[str, np.ndarray] | None = None
        if has.any():
            r = series[has]
            X, b, s = assemble(
                self.state, r, week[has], cov, store_pos[has], values[has], holiday[has], self.config
            )
            learned = self.estimator.predict(X)
            pred[has] = b + s * learned
            base[has], scale[has] = b, s
            if naive_pred is not None:
                naive_pred[has] = s * seasonal_naive(X)
            if explain:
                parts = components(
                    self.estimator,
                    X,
                    learned,
                    b,
                    s,
                    pred[has],
                    self.state,
                    r,
                    cov,
                    store_pos[has],
                    week[has],
                    self.config,
                )
        cold = ~has
        if cold.any():
            pred[cold] = self.cold_start.predict(store[cold], dept[cold], week[cold])
            if naive_pred is not None:
                naive_pred[cold] = pred[cold]
            base[cold] = pred[cold]
            scale[cold] = np.maximum(np.abs(pred[cold]), 10.0)
        explained = {}
        if explain:
            explained = self._explained(series, has, week, pred, parts)
        horizon = week - self.origin_week
        features = np.full((n, self.difficulty_features.shape[1]), np.nan)
        floor = np.zeros(n)
        if has.any():
            features[has] = self.difficulty_features[series[has]]
            floor[has] = self.floor[series[has]]
        difficulty = self.calibrator.difficulty(features, week - self.origin_week)
        denom = interval_denominator(scale, base, self.calibrator.mix) * difficulty
        bounds = self.calibrator.bounds(horizon, pred, denom, cold, floor)
        return {
            "store": store,
            "dept": dept,
            "week": week,
            "horizon": horizon,
            "prediction": pred,
            **bounds,
            "cold": cold,
            "denominator": denom,
            "difficulty_features": features,
            "difficulty": difficulty,
            "floor": floor,
            "values": values,
            "source": source,
            "holiday": holiday,
            "holiday_source": holiday_source,
            **({"naive": naive_pred} if naive_pred is not None else {}),
            **explained,
        }

    def _explained(
        self,
        series: np.ndarray,
        has: np.ndarray,
        week: np.ndarray,
        pred: np.ndarray,
        parts: dict[str, np.ndarray] | None,
    ) -> dict[str, np.ndarray]:
        """Components of every row (cold starts: all `model`) and last year's actual sales of the
        aligned week the model read (NaN where the series has none)."""
        cold = cold_components(pred)
        table = np.column_stack([cold[name] for name in COMPONENTS])
        if parts is not None:
            table[has] = np.column_stack([parts[name] for name in COMPONENTS])
        last_week = aligned_weeks(self.covariates, week, self.origin_week, self.config)
        col = last_week - self.panel.first_week
        ok = (series >= 0) & (col >= 0) & (col < self.panel.values.shape[1])
        sales = np.full(len(week), np.nan)
        sales[ok] = self.panel.values[series[ok], col[ok]]
        return {"components": table, "last_year_week": last_week, "last_year_sales": sales}

    def _predictions(
        self,
        store: np.ndarray,
        dept: np.ndarray,
        week: np.ndarray,
        overrides: dict[str, np.ndarray] | None,
        explain: bool = False,
        quantiles: list[float] | None = None,
    ) -> list[Prediction]:
        levels = check_quantiles(quantiles)
        unknown = next((d for d in np.unique(dept).tolist() if d not in self._dept_set), None)
        if unknown is not None:  # a cold start borrows a department's share and season: none to borrow
            self._check_department(unknown)
        one_series = (
            overrides is None
            and not explain
            and 0 < len(week) <= MAX_HORIZON
            and (store == store[0]).all()
            and (dept == dept[0]).all()
        )
        if one_series:
            arrays = self._series_arrays(int(store[0]), int(dept[0]), week)
        else:
            arrays = self._predict_arrays(store, dept, week, overrides, explain=explain)
        if levels:  # a new dict either way: the series block's cache is left as it is
            arrays = {
                **arrays,
                "quantiles": np.column_stack([self.quantile_values(arrays, q) for q in levels]),
                "quantile_levels": np.array(levels),
            }
        return to_predictions(arrays, self.version, self.data_through)

    def _series_arrays(self, store: int, dept: int, week: np.ndarray) -> dict[str, np.ndarray]:
        """`_predict_arrays` of one store-department at `week` (weeks 1..52 after the origin, the
        model's own covariates), sliced from the series' block."""
        self._check_store(store)
        block = self._block_cache()(store, dept)
        rows = week - (self.origin_week + 1)
        return {key: values[rows] for key, values in block.items()}

    def _one_row(self, row: dict[str, Any]) -> Prediction | None:
        """A lone row of a known store with an ISO date and the model's own covariates (a plain
        /predict), read from its series' block in plain Python; None for anything else, which the
        vectorised path answers (or refuses with its own message).

        The arrays of one row cost more in numpy's per-call overhead than in arithmetic: this is the
        same week rule and the same block, without building them.
        """
        store, dept, day = row.get("store"), row.get("dept"), row.get("date")
        if type(store) is not int or type(dept) is not int or store not in self._store_set:
            return None
        if dept not in self._dept_set:
            return None
        if type(day) is str and len(day) == 10 and day[4] == day[7] == "-":
            try:
                day = dt.date.fromisoformat(day)
            except ValueError:
                return None
        if type(day) is not dt.date or any(row.get(name) is not None for name in _OVERRIDES):
            return None
        week = (calendar.friday_on_or_after(day) - _EPOCH_DAY).days // 7
        horizon = week - self.origin_week
        if not 1 <= horizon <= MAX_HORIZON:
            return None
        template = self._row_cache()(store, dept, horizon)
        # A fresh Prediction with its own dicts: callers may add to it (components, quantiles).
        return Prediction(
            **{**template.__dict__, "inputs": dict(template.inputs), "assumed": dict(template.assumed)}
        )

    def _row_cache(self) -> Any:
        """This Forecaster's bounded cache of one-week Predictions (made on first use, as the blocks)."""
        cache = self.__dict__.get("_rows")
        if cache is None:
            cache = self.__dict__["_rows"] = functools.lru_cache(maxsize=ROWS)(self._series_row)
        return cache

    def _series_row(self, store: int, dept: int, horizon: int) -> Prediction:
        """Week `horizon` (1..52) of one store-department's block as a Prediction."""
        block = self._block_cache()(store, dept)
        week = {key: values[horizon - 1 : horizon] for key, values in block.items()}
        return to_predictions(week, self.version, self.data_through)[0]

    def _block_cache(self) -> Any:
        """This Forecaster's bounded cache of series blocks (made on first use: a loaded artifact
        arrives without one)."""
        cache = self.__dict__.get("_blocks")
        if cache is None:
            cache = self.__dict__["_blocks"] = functools.lru_cache(maxsize=SERIES_BLOCKS)(self._series_block)
        return cache

    def _series_block(self, store: int, dept: int) -> dict[str, np.ndarray]:
        """The vectorised path's arrays for weeks 1..52 after the origin of one store-department; read
        only, since every request of that series shares them."""
        week = np.arange(self.origin_week + 1, self.origin_week + MAX_HORIZON + 1)
        n = len(week)
        block = self._predict_arrays(
            np.full(n, store, dtype=np.int64), np.full(n, dept, dtype=np.int64), week, None
        )
        for values in block.values():
            values.setflags(write=False)
        return block


def check_quantiles(quantiles: list[float] | None) -> list[float]:
    """The requested quantile levels as floats, sorted and distinct; ForecastError("quantiles") for a
    level that is not a number within QUANTILE_RANGE."""
    if not quantiles:
        return []
    lo, hi = QUANTILE_RANGE
    out = set()
    for q in quantiles:
        try:
            value = float(q)
        except (TypeError, ValueError):
            raise ForecastError("quantiles", f"not a number: {q!r}") from None
        if not lo <= value <= hi:
            raise ForecastError("quantiles", f"each quantile must be within {lo}..{hi}, not {q!r}")
        out.add(round(value, 4))
    return sorted(out)
