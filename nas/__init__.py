"""The search engine shared by the API's embedded worker, the Celery worker and the CLI."""
