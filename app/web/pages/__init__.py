"""The HTML pages (server-rendered, HTMX partials): forecast, store, chain and department totals, batch,
published forecast runs, the model card and the API's documentation, the registry, monitoring; with
the charts only pages draw.

Each module holds one area's blueprint; the web layer registers them all (BLUEPRINTS). The pages
compute nothing of their own: they call the same services as the API (app/web/context.py).
"""

from __future__ import annotations

from app.web.pages import batch, forecast, forecast_runs, model, monitoring, registry, store, totals

BLUEPRINTS = (
    forecast.bp,
    store.bp,
    totals.bp,
    batch.bp,
    model.bp,
    forecast_runs.bp,
    registry.bp,
    monitoring.bp,
)
