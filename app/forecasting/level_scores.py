"""A backtest's totals above a series: the chain, each department across stores and each store,
scored beside the seasonal naive's totals, with the coverage and interval scores of their calibrated
bands (totals.py), over all horizons, per report bucket and, for departments and stores, per quarter
of their totals' volatility (a calm department's band can be far too wide while a seasonal one's is
too narrow, and the two average out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.forecasting import totals
from app.forecasting.forecaster import Forecaster
from app.forecasting.holdout import wmae
from app.forecasting.scores import QUARTERS, interval_score, row_quarters, series_profile
from app.forecasting.totals import LEVELS, REPORT_BUCKET_LABELS

QUARTERED_LEVELS = ("department", "store")  # levels whose totals are also scored by quarter of volatility
TOTALS_COLUMNS = ["level", "key", "Date", "prediction", "lower_80", "upper_80", "lower_95", "upper_95"]


def level_scores(
    fc: Forecaster, rows: pd.DataFrame, y: np.ndarray, res: pd.DataFrame, naive: np.ndarray
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Accuracy beside the seasonal naive's totals, and coverage of the calibrated intervals, of the
    totals at every level (totals.py), over all horizons and per report bucket; and those totals."""
    store, dept = rows["store"].to_numpy(), rows["dept"].to_numpy()
    served = (res["upper_80"] - res["prediction"]).to_numpy()
    frame = pd.DataFrame(
        {
            "store": rows["store"].to_numpy(),
            "dept": rows["dept"].to_numpy(),
            "date": rows["date"].to_numpy(),
            "horizon": res["horizon"].to_numpy(),
            "prediction": res["prediction"].to_numpy(),
            "half80": fc.bucket_only_half_width(store, dept, res["horizon"].to_numpy(), served),
            "actual": y,
        }
    )
    holiday = rows.groupby("date")["is_holiday"].max()
    scores: dict[str, Any] = {}
    frames = []
    for level in LEVELS:
        got = totals.level_totals(fc.calibrator, level, frame)
        base = totals.sum_totals(level, frame.assign(prediction=naive))["prediction"].to_numpy()
        hol = holiday.reindex(got["date"]).to_numpy(bool)
        bucket = totals.report_bucket(got["horizon"].to_numpy())
        scores[level] = total_figures(got, base, hol, np.ones(len(got), bool)) | {
            "by_bucket": {
                b: total_figures(got, base, hol, bucket == b)
                for b in REPORT_BUCKET_LABELS
                if (bucket == b).any()
            }
        }
        if level in QUARTERED_LEVELS:
            quarter = row_quarters(key_volatility(fc, level).reindex(got["key"]).to_numpy(float))
            scores[level]["by_volatility_quarter"] = {
                name: total_figures(got, base, hol, quarter == k)
                for k, name in enumerate(QUARTERS)
                if (quarter == k).any()
            }
        frames.append(got.assign(level=level))
    return scores, pd.concat(frames, ignore_index=True)


def key_volatility(fc: Forecaster, level: str) -> pd.Series:
    """Per key of `level`, the coefficient of variation of its total over the 52 weeks to the origin
    (scores.series_profile of the summed history): the quarters a level's totals are scored by."""
    key = totals.level_key(level, fc.panel.store, fc.panel.dept)
    keys, inverse = np.unique(key, return_inverse=True)
    raw = fc.state.raw
    history, seen = np.zeros((len(keys), raw.shape[1])), np.zeros((len(keys), raw.shape[1]))
    np.add.at(history, inverse, np.nan_to_num(raw))
    np.add.at(seen, inverse, ~np.isnan(raw))
    cv, _ = series_profile(np.where(seen > 0, history, np.nan))  # a week no series sold: unknown
    return pd.Series(cv, index=keys)


def total_figures(got: pd.DataFrame, base: np.ndarray, hol: np.ndarray, m: np.ndarray) -> dict[str, Any]:
    """WMAE beside the naive's and coverage of the totals `got` (with bounds and actuals) selected by m."""
    actual, pred = got["actual"].to_numpy()[m], got["prediction"].to_numpy()[m]
    model, seasonal = wmae(actual, pred, hol[m]), wmae(actual, base[m], hol[m])
    inside = {
        lv: (actual >= got[f"lower_{lv}"].to_numpy()[m]) & (actual <= got[f"upper_{lv}"].to_numpy()[m])
        for lv in ("80", "95")
    }
    return {
        "totals": int(m.sum()),
        "wmae": model,
        "baseline_wmae": seasonal,
        "ratio_to_baseline": model / seasonal if seasonal else None,
        "coverage_80": float(np.mean(inside["80"])),
        "coverage_95": float(np.mean(inside["95"])),
        **{
            f"interval_score_{lv}": interval_score(
                actual, got[f"lower_{lv}"].to_numpy()[m], got[f"upper_{lv}"].to_numpy()[m], alpha
            )
            for lv, alpha in (("80", 0.2), ("95", 0.05))
        },
    }


def totals_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Backtest totals (every level) with exactly TOTALS_COLUMNS: the chain's key is empty."""
    return pd.DataFrame(
        {
            "level": frame["level"].to_numpy(),
            "key": np.where(frame["level"] == "chain", "", frame["key"].astype(int).astype(str)),
            "Date": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            **{c: frame[c].round(2).to_numpy() for c in ("prediction", *totals.BAND_COLUMNS)},
        }
    )[TOTALS_COLUMNS]


def mean_of_known(values: list[float]) -> float:
    """Mean over the folds that had such weeks (a window may have no holiday week): NaN if none."""
    known = [v for v in values if v == v]
    return float(np.mean(known)) if known else float("nan")


def level_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The folds' level figures (overall, by report bucket and by quarter of volatility), each the mean
    over the folds that had such totals."""
    keys = (
        "wmae",
        "baseline_wmae",
        "ratio_to_baseline",
        "coverage_80",
        "coverage_95",
        "interval_score_80",
        "interval_score_95",
    )

    def mean(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"totals": int(sum(e["totals"] for e in entries))} | {
            k: mean_of_known([e[k] for e in entries if e.get(k) is not None]) for k in keys
        }

    out = {}
    for level in LEVELS:
        folds = [f["levels"][level] for f in results]
        out[level] = mean(folds)
        for group, labels in (("by_bucket", REPORT_BUCKET_LABELS), ("by_volatility_quarter", QUARTERS)):
            found = {
                label: mean([f[group][label] for f in folds if label in f.get(group, {})])
                for label in labels
                if any(label in f.get(group, {}) for f in folds)
            }
            if found:
                out[level][group] = found
    return out


def level_table(levels: dict[str, Any]) -> list[list[str]]:
    """Rows of level x horizon bucket (and x quarter of the totals' volatility, where a level has them):
    totals scored, WMAE, the naive's, ratio, coverage 80 and 95 and the interval scores of both bands (a
    band too wide for its coverage scores worse)."""

    def pct(v: float | None) -> str:
        return "-" if v is None or v != v else f"{100 * v:.1f}%"

    def num(v: float | None, fmt: str = ",.0f") -> str:
        return "-" if v is None or v != v else format(v, fmt)

    head = ["level", "weeks ahead", "totals", "WMAE", "naive WMAE", "ratio", "cov 80", "cov 95", "IS 80 / 95"]
    rows = [head]
    for level in LEVELS:
        entry = levels.get(level)
        if not entry:
            continue
        quarters = [(f"volatility {q}", e) for q, e in entry.get("by_volatility_quarter", {}).items()]
        for label, e in [("all", entry), *entry.get("by_bucket", {}).items(), *quarters]:
            rows.append(
                [
                    level,
                    label,
                    f"{e['totals']:,}",
                    num(e.get("wmae")),
                    num(e.get("baseline_wmae")),
                    num(e.get("ratio_to_baseline"), ".3f"),
                    pct(e.get("coverage_80")),
                    pct(e.get("coverage_95")),
                    f"{num(e.get('interval_score_80'))} / {num(e.get('interval_score_95'))}",
                ]
            )
    return rows
