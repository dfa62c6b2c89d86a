"""Storecast. The Flask application factory is app.factory.create_app.

This package's own module imports nothing: a Dask worker that unpickles a task of the core
(app.forecasting) imports that core alone, not Flask and the web layers above it.
"""
