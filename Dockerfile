# The ml-monitor service: `docker build -t ml-monitor .` (docker-compose.yml builds it too).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/ml-monitor monitor

USER monitor
WORKDIR /var/lib/ml-monitor
ENV MONITOR_DATA_DIR=/var/lib/ml-monitor
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["monitor", "serve", "--host", "0.0.0.0"]
