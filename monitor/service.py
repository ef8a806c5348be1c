"""``monitor run``: sweeps on a schedule, with Datasette beside them, until a signal."""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import alerts, collector, estimate, publish, schema
from monitor.charts import ChartRequest, FetchResult
from monitor.config import Alert, Config, Settings
from monitor.diagnosis import Tally
from monitor.errors import Stopped
from monitor.locks import service_lock
from monitor.publish import Listen
from monitor.stopping import Stop, stop_on_signals

log = logging.getLogger("monitor")


def run_service(
    db_path: str | Path,
    requests: tuple[ChartRequest, ...],
    config: Config,
    listen: Listen | None,
) -> None:
    """Sweep on schedule (and serve Datasette) until SIGTERM or SIGINT."""
    with service_lock(db_path):
        schema.open_db(db_path).close()  # created or migrated before Datasette reads it
        _say_how_long(db_path, requests, config)
        stop = stop_on_signals()
        # Datasette binds its port first, so that a busy port stops the service at once.
        with _serving(db_path, listen), alerts.Poster() as http:
            if config.alerts:  # each new destination starts with the events from now on
                alerts.take_new(db_path, config.alerts)
            scheduler = _start_scheduler(db_path, requests, config, stop)
            if config.alerts:
                _schedule_deliveries(scheduler, db_path, config.alerts, http, stop)
            try:
                _wait_for(stop)
            finally:
                stop.set()
                scheduler.shutdown(wait=True)
        log.info("stopped")


def _say_how_long(db_path: str | Path, requests: tuple[ChartRequest, ...], config: Config) -> None:
    """Estimate each sweep's duration, and warn if it cannot fit in the interval."""
    expected = estimate.for_sweep(db_path, requests, config.settings)
    log.info("%s", expected.describe())
    overrun = expected.overrun(config.schedule.interval)
    if overrun:
        log.warning("%s", overrun)


def serve_forever(db_path: str | Path, listen: Listen) -> None:
    """Serve Datasette alone until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    with _serving(db_path, listen):
        _wait_for(stop)


def _serving(db_path: str | Path, listen: Listen | None) -> AbstractContextManager[object]:
    if listen is None:
        return nullcontext()
    log.info("Datasette at http://%s:%s/", listen.host, listen.port)
    return publish.serving(db_path, listen)


def _wait_for(stop: threading.Event) -> None:
    while not stop.wait(0.5):
        pass


def _start_scheduler(
    db_path: str | Path, requests: tuple[ChartRequest, ...], config: Config, stop: Stop
) -> BackgroundScheduler:
    # One sweep at a time: a run that falls due while a sweep goes on is skipped, and runs
    # missed while the process was stalled are coalesced into one.
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        _scheduled_sweep,
        IntervalTrigger(seconds=config.schedule.interval, jitter=config.schedule.jitter or None),
        args=[db_path, requests, config.settings, stop, FailureLog()],
        next_run_time=datetime.now(UTC),
        id="sweep",
        name="sweep",
    )
    scheduler.start()
    return scheduler


# How often the webhooks' outbox is filled and what is due is sent, in seconds.
DELIVERY_EVERY = 5.0


def _schedule_deliveries(
    scheduler: BackgroundScheduler,
    db_path: str | Path,
    destinations: tuple[Alert, ...],
    http: alerts.Poster,
    stop: Stop,
) -> None:
    """Send events to the webhooks beside the sweeps, in a thread of their own: a
    destination that is down or slow never delays a sweep, and a stop waits at most for
    the try under way."""
    scheduler.add_job(
        alerts.deliver_pass,
        IntervalTrigger(seconds=DELIVERY_EVERY),
        args=[db_path, destinations, http, stop],
        next_run_time=datetime.now(UTC),
        id="deliveries",
        name="deliveries",
    )


class FailureLog:
    """Log sweeps' failures without repeating them: a few of each cause one by one, the
    rest as a count, and what to check once per outage, not once per sweep."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.hinted: dict[str, str] = {}

    def begin(self) -> None:
        self.tally = Tally()

    def result(self, result: FetchResult) -> None:
        if self.tally.add(result):
            log.warning("failed: %s: %s", result.req.label(), result.error)

    def end(self) -> None:
        for line in self.tally.unlogged():
            log.warning("%s", line)
        hints = self.tally.hints()
        for store, text in hints.items():
            if self.hinted.get(store) != text:
                log.warning("%s", text)
        for store in self.hinted.keys() - hints.keys():
            if self.tally.ok[store]:
                log.info("%s charts are stored again", store)
        self.hinted = hints


def _scheduled_sweep(
    db_path: str | Path,
    requests: tuple[ChartRequest, ...],
    settings: Settings,
    stop: Stop,
    failures: FailureLog,
) -> None:
    failures.begin()
    try:
        report = collector.sweep_once(db_path, requests, settings, failures.result, log.info, stop)
    except Stopped:
        return
    except collector.SweepNotRecorded as error:
        # The next sweep tries again: a full disk may have room by then.
        log.error("%s", error)
        return
    failures.end()
    (log.info if report.status == "finished" else log.warning)(report.summary())
    for line in report.politeness():
        log.info("  %s", line)
