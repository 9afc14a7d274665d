# The image of the workers, of `dispatch submit` and of the test peer.
# The base image is pinned by version; rebuild to take its security updates.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 dispatch \
    && mkdir -p /received \
    && chown dispatch:dispatch /received

WORKDIR /app
# The dependencies first, from the pinned list: this layer is rebuilt only when the list
# changes, not on every change of the source.
COPY constraints.txt ./
RUN pip install --requirement constraints.txt

COPY pyproject.toml README.md LICENSE ./
COPY dispatch ./dispatch
COPY workers ./workers
COPY config ./config
RUN pip install --no-deps --constraint constraints.txt .

USER dispatch
# Multiprocess metrics files of the pool processes; wiped at every worker start.
ENV PROMETHEUS_MULTIPROC_DIR=/home/dispatch/metrics
EXPOSE 9100
# A worker is healthy while it serves its metrics (the endpoint also reads the queue).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9100/metrics', timeout=4)"]
CMD ["dispatch", "worker", "--metrics-port", "9100"]
