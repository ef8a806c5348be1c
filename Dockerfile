FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MONITOR_DB=/app/data/rankings.db
WORKDIR /app

COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 monitor \
    && mkdir -p /app/data && chown monitor:monitor /app/data

USER monitor
VOLUME ["/app/data"]
EXPOSE 8001
CMD ["monitor", "run", "--host", "0.0.0.0"]
