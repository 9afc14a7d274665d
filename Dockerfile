# The image of the workers, of `dispatch submit` and of the test peer.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatch ./dispatch
COPY workers ./workers
COPY config ./config
RUN pip install . \
    && useradd --create-home --uid 1000 dispatch

USER dispatch
# Multiprocess metrics files of the pool processes; wiped at every worker start.
ENV PROMETHEUS_MULTIPROC_DIR=/home/dispatch/metrics
EXPOSE 9100
CMD ["dispatch", "worker", "--metrics-port", "9100"]
