"""The feature pipeline's settings: part of every model's params, so a model is rebuilt as it was trained."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The real data has 3,331 series: all of them are trained on. A chain of 20x trains on a sample of this
# size, so training's time and memory stop growing with the chain (max_rows already capped its rows).
DEFAULT_MAX_SERIES = 4_000


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the pipeline; part of a model's params (the backtest chose the defaults)."""

    align: bool = True  # aligned yearly lag (Thanksgiving/Christmas/Easter) instead of a plain 52-week lag
    svd_rank: int = 8  # rank of the per-department store x week denoising
    svd_weeks: int = 104  # history used by the denoising
    svd_row_power: float = 0.5  # each series enters the denoising divided by its size to this power
    origin_step: int = 4  # weeks between training origins
    min_origin_week: int = 13  # earliest training origin (week index since the start of the data)
    max_rows: int = 300_000  # training rows kept (drawn in proportion to their weight, deterministic)
    max_series: int = DEFAULT_MAX_SERIES  # series training builds features for (0: all); see sample_series
    holiday_weight: float = 5.0
    weight_power: float = 1.0  # sample weight = scale**power (1: the loss is in dollars, like WMAE)
    seed: int = 0
    growth_shrink: float = 0.5  # share of the recent year-over-year change (yoy4) carried into the base
    two_year_weight: float = 0.3  # share of the base from the week two years before, where the data has it
    neighbour_weight: float = 0.3  # share of a quiet week's base from last year's neighbouring weeks
    year_before_only: bool = True  # train on targets that have a week a year before in the data
    christmas_shift: bool = True  # December bases cover the same days before Christmas as last year's

    def to_dict(self) -> dict:
        return asdict(self)
