"""The forecasting core: plain Python over pandas and scikit-learn, no Flask, no database.

The CLI, the API, the pages and the scheduled jobs all call into this package.
"""
