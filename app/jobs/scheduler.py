"""The APScheduler that runs the jobs: one interval job per task, ticking just after each slot starts."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.jobs.tasks import (
    START_DELAY_SECONDS,
    JobContext,
    enabled_jobs,
    interval_minutes,
    run_job,
    slot_for,
    worker_name,
)
from app.storage import utcnow

log = logging.getLogger(__name__)


def make_scheduler(ctx: JobContext, *, blocking: bool) -> Any:
    """A scheduler with one interval job per monitoring job, ticking just after each slot starts."""
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    now = utcnow()
    for job in enabled_jobs(ctx.config):
        minutes = interval_minutes(ctx.config, job)
        first = slot_for(now, minutes) + dt.timedelta(seconds=START_DELAY_SECONDS)
        scheduler.add_job(
            run_job,
            IntervalTrigger(minutes=minutes, start_date=first.replace(tzinfo=dt.UTC), timezone="UTC"),
            args=(ctx, job),
            id=job,
            name=f"monitoring {job}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(minutes * 30),
            next_run_time=dt.datetime.now(dt.UTC),  # catch up on the current slot at start
        )
    return scheduler


def start_background_scheduler(ctx: JobContext) -> Any:
    """Start an in-process scheduler (SCHEDULER_ENABLED); the slot claims keep runs unique across workers."""
    scheduler = make_scheduler(ctx, blocking=False)
    scheduler.start()
    log.info("background monitoring scheduler started in %s", worker_name())
    return scheduler
