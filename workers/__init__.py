"""Celery worker: the app, the job task and the reaper."""
