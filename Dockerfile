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
CMD ["hwnas", "serve", "--host", "0.0.0.0"]
