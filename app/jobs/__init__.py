"""Scheduled work over the services: monitoring jobs, the weekly loop's turn, retraining."""
