"""A synthetic Walmart-like Dataset, so the service runs, trains and is tested without the Kaggle files.

The structure imitates the real data where it matters to a forecaster: store types and sizes, sparse
department codes, yearly seasonality with holiday peaks on the calendar dates of each year (so they move
across ISO weeks), the four holiday flags, patchy markdowns from 2011-11-11, negative sales, gaps, late
starts, and a features table that runs past the last sales week with CPI/unemployment missing at its end.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from app.forecasting import calendar
from app.forecasting.data import (
    FEATURE_COLUMNS,
    FEATURES_FILE,
    KAGGLE_COVARIATES,
    SALES_COLUMNS,
    STORES_FILE,
    TEST_FILE,
    TRAIN_FILE,
    Dataset,
    load_dataset,
    summarise,
)

logger = logging.getLogger(__name__)

MARKDOWN_START = pd.Timestamp("2011-11-11")
_STORE_TYPES = np.array(["A", "B", "C"])
_TYPE_SHARE = [0.49, 0.38, 0.13]  # 22 / 17 / 6 of the 45 real stores
_SIZE_RANGE = {"A": (150_000, 220_000), "B": (35_000, 140_000), "C": (39_000, 43_000)}
_DEPT_PRESENCE = {"A": 0.97, "B": 0.88, "C": 0.72}
_MARKDOWN_SCALE = np.array([7000.0, 2500.0, 600.0, 3000.0, 4500.0])


def _calendar_effects(weeks: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per week: the holiday flag, a holiday-shopping weight (0..1) and the annual phase (radians)."""
    flags = np.zeros(len(weeks), dtype=bool)
    weight = np.zeros(len(weeks))
    day = weeks.to_numpy(dtype="datetime64[D]")
    for year in range(weeks.min().year - 1, weeks.max().year + 2):
        holidays = calendar.flagged_holiday_weeks(year)
        flags |= weeks.isin(list(holidays.values()))
        thanksgiving = np.datetime64(holidays["thanksgiving"].date())
        weight = np.maximum(weight, np.where(day == thanksgiving, 0.9, 0.0))
        weight = np.maximum(weight, np.where(day == thanksgiving + 7, 0.25, 0.0))
        # Pre-Christmas peak: the last full week before Christmas is the biggest of the year.
        before = (np.datetime64(f"{year}-12-25") - day).astype("int64")
        peak = np.select(
            [(before >= 1) & (before <= 7), (before >= 8) & (before <= 14), (before >= 15) & (before <= 21)],
            [1.0, 0.45, 0.2],
            0.0,
        )
        weight = np.maximum(weight, peak)
    phase = 2 * np.pi * (weeks.day_of_year.to_numpy() - 1) / 365.25
    return flags, weight, phase


def _stores(rng: np.random.Generator, n_stores: int) -> pd.DataFrame:
    types = rng.choice(_STORE_TYPES, size=n_stores, p=_TYPE_SHARE)
    low = np.array([_SIZE_RANGE[t][0] for t in types])
    high = np.array([_SIZE_RANGE[t][1] for t in types])
    size = rng.integers(low, high + 1).astype("int64")
    return pd.DataFrame(
        {
            "store": np.arange(1, n_stores + 1, dtype="int64"),
            "type": pd.Series(types, dtype=str),
            "size": size,
        }
    )


def _features(
    rng: np.random.Generator,
    stores: pd.DataFrame,
    weeks: pd.DatetimeIndex,
    flags: np.ndarray,
    weight: np.ndarray,
    phase: np.ndarray,
    last_sales_week: pd.Timestamp,
) -> pd.DataFrame:
    n_stores, n_weeks = len(stores), len(weeks)
    years = (weeks - weeks[0]).days.to_numpy() / 365.25
    latitude = rng.uniform(26.0, 47.0, n_stores)[:, None]
    coldest = 2 * np.pi * 20 / 365.25
    temperature = (100 - 1.3 * latitude) - 0.9 * (latitude - 15) * np.cos(phase - coldest)
    temperature = temperature + rng.normal(0, 4.0, (n_stores, n_weeks))

    common = 2.65 + np.cumsum(rng.normal(0.004, 0.035, n_weeks))
    fuel = common + rng.normal(0, 0.12, (n_stores, 1)) + rng.normal(0, 0.01, (n_stores, n_weeks))
    fuel = np.clip(fuel, 2.3, 4.6)

    base_cpi = rng.choice([126.0, 131.0, 182.0, 211.0, 214.0], size=(n_stores, 1)) + rng.normal(
        0, 1.5, (n_stores, 1)
    )
    cpi = base_cpi * (1 + 0.021 * years) + np.cumsum(rng.normal(0, 0.08, (n_stores, n_weeks)), axis=1)

    quarter = (weeks.year.to_numpy() - weeks[0].year) * 4 + (weeks.quarter.to_numpy() - 1)
    quarter = quarter - quarter.min()
    steps = rng.normal(-0.06, 0.18, (n_stores, quarter.max() + 1))
    steps[:, 0] = 0.0
    unemployment = np.clip(
        rng.uniform(4.0, 12.0, (n_stores, 1)) + np.cumsum(steps, axis=1)[:, quarter], 3.5, 15.0
    )

    # Markdowns exist from 2011-11-11 only, and are patchy after: each store/column has its own fill rate.
    size_factor = (stores["size"].to_numpy() / 150_000.0)[:, None, None]
    scale = _MARKDOWN_SCALE[None, :, None] * size_factor * (1 + 3.0 * weight + 2.0 * flags)[None, None, :]
    markdowns = scale * rng.lognormal(0, 0.9, (n_stores, 5, n_weeks))
    fill_rate = rng.uniform(0.45, 0.95, (n_stores, 5, 1))
    present = (rng.random((n_stores, 5, n_weeks)) < fill_rate) & np.asarray(weeks >= MARKDOWN_START)[
        None, None, :
    ]
    markdowns = np.where(present, np.round(markdowns + 0.01, 2), np.nan)

    # Like the real file: CPI and unemployment unknown for the last 13 future weeks.
    unknown = np.asarray((weeks > weeks[-1] - pd.Timedelta(weeks=13)) & (weeks > last_sales_week))[None, :]
    cpi = np.where(unknown, np.nan, cpi)
    unemployment = np.where(unknown, np.nan, unemployment)

    columns = {
        "store": np.repeat(stores["store"].to_numpy(), n_weeks),
        "date": np.tile(weeks.to_numpy(dtype="datetime64[ns]"), n_stores),
        "temperature": np.round(temperature, 2).ravel(),
        "fuel_price": np.round(fuel, 3).ravel(),
    }
    for k in range(5):
        columns[f"markdown{k + 1}"] = markdowns[:, k, :].ravel()
    columns["cpi"] = np.round(cpi, 7).ravel()
    columns["unemployment"] = np.round(unemployment, 3).ravel()
    columns["is_holiday"] = np.tile(flags, n_stores)
    return pd.DataFrame(columns, columns=FEATURE_COLUMNS)


def _shared_shocks(seed: int, sigma: float, n_stores: int, n_weeks: int) -> np.ndarray:
    """Per store and week, the factor of the chain's shock times the store's (AR(1) in logs, so a
    shock lasts a few weeks); drawn from a stream of their own, leaving the rest of the data as it is."""
    rng = np.random.default_rng([seed, 1])

    def ar1(shape: tuple[int, ...]) -> np.ndarray:
        steps = rng.normal(0.0, sigma * np.sqrt(1 - 0.7**2), shape)
        out = np.empty(shape)
        out[..., 0] = rng.normal(0.0, sigma, shape[:-1])
        for t in range(1, shape[-1]):
            out[..., t] = 0.7 * out[..., t - 1] + steps[..., t]
        return out

    return np.exp(ar1((1, n_weeks)) + ar1((n_stores, n_weeks)))


def generate_dataset(
    seed: int = 0,
    n_stores: int = 45,
    n_depts: int = 80,
    start: str = "2010-02-05",
    end: str = "2012-10-26",
    features_end: str = "2013-07-26",
    noise: tuple[float, float] = (0.04, 0.2),
    shared_noise: float = 0.0,
) -> Dataset:
    """A deterministic (for a seed) Walmart-like Dataset with the same schema as load_dataset's; each
    series' weekly noise is log-normal with a sigma drawn uniformly from `noise` (calm to volatile).

    `shared_noise` (a log standard deviation) makes series err together, as real ones do: a weekly
    shock every series shares (the chain's) and one per store and week, each drifting from week to
    week, so that totals stray from their forecasts more than their series' errors added as
    independent ones would say. 0 leaves every series' noise its own (and the data as without it).
    """
    started = time.perf_counter()
    if not 1 <= n_depts <= 99:
        raise ValueError("n_depts must be between 1 and 99 (department codes are 1..99)")
    if n_stores < 1:
        raise ValueError("n_stores must be at least 1")
    rng = np.random.default_rng(seed)
    weeks_all = pd.date_range(start, max(pd.Timestamp(end), pd.Timestamp(features_end)), freq="W-FRI")
    weeks_all = pd.DatetimeIndex(weeks_all.to_numpy(dtype="datetime64[ns]"))
    sales_weeks = weeks_all[weeks_all <= pd.Timestamp(end)]
    if len(sales_weeks) < 2:
        raise ValueError("start..end must contain at least two Fridays")
    flags_all, weight_all, phase_all = _calendar_effects(weeks_all)
    n_weeks = len(sales_weeks)
    flags, weight, phase = flags_all[:n_weeks], weight_all[:n_weeks], phase_all[:n_weeks]

    stores = _stores(rng, n_stores)
    features = _features(rng, stores, weeks_all, flags_all, weight_all, phase_all, sales_weeks[-1])

    # Departments: sparse codes in 1..99, levels spread over two orders of magnitude, three seasonal kinds.
    codes = np.sort(rng.choice(np.arange(1, 100), size=n_depts, replace=False)).astype("int64")
    dept_level = rng.lognormal(np.log(7000.0), 1.1, n_depts)
    kind = rng.choice(3, size=n_depts, p=[0.4, 0.4, 0.2])  # flat, mild, highly seasonal
    smooth_amp = np.array([0.03, 0.12, 0.3])[kind] * rng.uniform(0.5, 1.5, n_depts)
    holiday_amp = np.array([0.03, 0.35, 1.1])[kind] * rng.uniform(0.7, 1.3, n_depts)
    dept_phase = rng.uniform(0, 2 * np.pi, n_depts)

    types = stores["type"].to_numpy(dtype=object)
    presence = np.array([_DEPT_PRESENCE[t] for t in types])
    has = rng.random((n_stores, n_depts)) < presence[:, None]
    has[np.arange(n_stores), rng.integers(0, n_depts, n_stores)] = True
    store_idx, dept_idx = np.nonzero(has)  # row-major: sorted by store, then department
    n_series = len(store_idx)

    store_level = (stores["size"].to_numpy() / 150_000.0) ** 0.8 * rng.lognormal(0, 0.25, n_stores)
    slope = rng.normal(0.0, 0.04, n_stores)
    years = (sales_weeks - sales_weeks[0]).days.to_numpy() / 365.25
    season = np.exp(
        smooth_amp[:, None] * np.sin(phase[None, :] + dept_phase[:, None])
        + holiday_amp[:, None] * weight[None, :]
    )
    # Markdowns lift sales weakly (a few percent in heavy markdown weeks).
    md_total = np.nan_to_num(features[[f"markdown{k}" for k in range(1, 6)]].to_numpy()).sum(axis=1)
    lift = (1 + 0.015 * np.log1p(md_total / 5000.0)).reshape(n_stores, len(weeks_all))[:, :n_weeks]
    sigma = rng.uniform(*noise, n_series)[:, None]
    noise = rng.lognormal(0, 1, (n_series, n_weeks)) ** sigma
    sales = (
        (store_level[store_idx] * dept_level[dept_idx])[:, None]
        * season[dept_idx]
        * np.exp(slope[store_idx][:, None] * years[None, :])
        * lift[store_idx]
        * noise
    )
    if shared_noise > 0:
        sales = sales * _shared_shocks(seed, shared_noise, n_stores, n_weeks)[store_idx]
    sales = np.round(np.maximum(sales, 0.01), 2)

    # Which weeks each series has: ~5% start late, ~15% have gaps (never the first week of the series).
    keep = np.ones((n_series, n_weeks), dtype=bool)
    late = rng.random(n_series) < 0.05
    first_week = np.where(late, rng.integers(8, max(9, int(n_weeks * 0.7)), n_series), 0)
    first_week = np.minimum(first_week, n_weeks // 2)  # short ranges: every series keeps some weeks
    keep &= np.arange(n_weeks)[None, :] >= first_week[:, None]
    gappy = rng.random(n_series) < 0.15
    drop_rate = rng.uniform(0.03, 0.3, n_series)[:, None]
    dropped = gappy[:, None] & (rng.random((n_series, n_weeks)) < drop_rate)
    dropped[np.arange(n_series), np.minimum(first_week, n_weeks - 1)] = False
    keep &= ~dropped

    # Returns: ~0.3% of rows are small negative amounts.
    negative = rng.random((n_series, n_weeks)) < 0.003
    sales = np.where(negative, -np.round(rng.gamma(1.2, 25.0, (n_series, n_weeks)) + 0.01, 2), sales)

    rows_series, rows_week = np.nonzero(keep)
    frame = pd.DataFrame(
        {
            "store": stores["store"].to_numpy()[store_idx[rows_series]],
            "dept": codes[dept_idx[rows_series]],
            "date": sales_weeks.to_numpy(dtype="datetime64[ns]")[rows_week],
            "weekly_sales": sales[rows_series, rows_week],
            "is_holiday": flags[rows_week],
        },
        columns=SALES_COLUMNS,
    )
    dataset = Dataset(
        sales=frame,
        features=features,
        stores=stores,
        source=f"synthetic(seed={seed}, n_stores={n_stores}, n_depts={n_depts})",
        report=summarise(frame, features, stores),
    )
    logger.info(
        "generated %s: %d sales rows in %.2fs", dataset.source, len(frame), time.perf_counter() - started
    )
    return dataset


def _kaggle_bool(values: pd.Series) -> np.ndarray:
    return np.where(values.to_numpy(dtype=bool), "TRUE", "FALSE")


def write_kaggle_csvs(dataset: Dataset, directory: str | Path, *, test_csv: bool = True) -> dict[str, Path]:
    """Write a Dataset as Kaggle ships it (column names, TRUE/FALSE, NA, CR-terminated stores.csv).

    With test_csv, also writes test.csv: every store/department series for each features week after the
    last sales week (the weeks a Kaggle submission forecasts). Floats are written at full precision, so
    load_dataset reads back exactly the same tables.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    sales = dataset.sales
    train = pd.DataFrame(
        {
            "Store": sales["store"],
            "Dept": sales["dept"],
            "Date": sales["date"].dt.strftime("%Y-%m-%d"),
            "Weekly_Sales": sales["weekly_sales"],
            "IsHoliday": _kaggle_bool(sales["is_holiday"]),
        }
    )
    paths[TRAIN_FILE] = directory / TRAIN_FILE
    train.to_csv(paths[TRAIN_FILE], index=False, lineterminator="\n")

    features = dataset.features
    kaggle = pd.DataFrame({"Store": features["store"], "Date": features["date"].dt.strftime("%Y-%m-%d")})
    for name, column in KAGGLE_COVARIATES.items():
        kaggle[column] = features[name]
    kaggle["IsHoliday"] = _kaggle_bool(features["is_holiday"])
    paths[FEATURES_FILE] = directory / FEATURES_FILE
    kaggle.to_csv(paths[FEATURES_FILE], index=False, na_rep="NA", lineterminator="\n")

    stores = dataset.stores.rename(columns={"store": "Store", "type": "Type", "size": "Size"})
    paths[STORES_FILE] = directory / STORES_FILE
    stores.to_csv(paths[STORES_FILE], index=False, lineterminator="\r")

    if test_csv:
        future = np.sort(features.loc[features["date"] > sales["date"].max(), "date"].unique())
        if len(future):
            pairs = sales[["store", "dept"]].drop_duplicates().to_numpy()
            test = pd.DataFrame(
                {
                    "Store": np.repeat(pairs[:, 0], len(future)),
                    "Dept": np.repeat(pairs[:, 1], len(future)),
                    "Date": np.tile(pd.DatetimeIndex(future).strftime("%Y-%m-%d").to_numpy(), len(pairs)),
                }
            )
            flagged = features.drop_duplicates("date").set_index("date")["is_holiday"]
            test["IsHoliday"] = np.tile(_kaggle_bool(flagged.reindex(future).fillna(False)), len(pairs))
            paths[TEST_FILE] = directory / TEST_FILE
            test.to_csv(paths[TEST_FILE], index=False, lineterminator="\n")
    return paths


def load_or_generate(data_dir: str | Path | None, seed: int = 0) -> Dataset:
    """The real files when a directory is given; otherwise the embedded synthetic default."""
    if data_dir:
        return load_dataset(data_dir)
    return generate_dataset(seed=seed)
