FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# CPU build of torch first, so the range in pyproject.toml pulls nothing bigger
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY client ./client
RUN pip install ./client
COPY pyproject.toml README.md ./
COPY api ./api
COPY workers ./workers
COPY nas ./nas
COPY search_spaces ./search_spaces
COPY latency_tables ./latency_tables
COPY storage ./storage
COPY migrations ./migrations
COPY hwnas ./hwnas
RUN pip install .
EXPOSE 8000
# Authenticated: needs HWNAS_DATABASE_URL (PostgreSQL) and HWNAS_BROKER_URL (Redis), and refuses
# to start without them (embedded mode, which has no keys, never listens on 0.0.0.0).
# Workers run as root here so that command evaluators, when an operator enables them, drop to `nobody`.
ENV HWNAS_EMBEDDED=false HWNAS_ALLOW_COMMAND_EVALUATOR=false
CMD ["hwnas", "serve", "--host", "0.0.0.0"]
