"""The search engine shared by the API's embedded worker, the Celery worker and the CLI.

Importing it sets the thread policy's OpenMP/MKL variables (see ``nas.threads``) while
torch is not loaded yet, so every entry point gets them."""

from nas.threads import prepare_environment as _prepare_environment

_prepare_environment()
