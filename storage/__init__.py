"""Persistence: SQLAlchemy models, sessions and queries (no FastAPI, no Celery)."""
