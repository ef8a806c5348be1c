# The exact Python the test suite runs on, so that a rebuild months later runs the same.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MONITOR_DB=/app/data/rankings.db
WORKDIR /app

COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 monitor \
    && mkdir -p /app/data && chown monitor:monitor /app/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

VOLUME ["/app/data"]
EXPOSE 8001
# No USER: the entrypoint starts as root only to hand a bind-mounted data folder to
# monitor (uid 1000), then drops to that user before the command runs.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
# The collector alone: a bare `docker run` of the image does the image's main work and
# listens on no port. Datasette is its own process and service, started with the
# address and mode it is published with (docker-compose.yml).
CMD ["monitor", "run", "--no-serve"]
