"""Prometheus metrics for Datasette's ``/-/metrics``, read from the database at each scrape.

Every figure comes from tables the collector already keeps, through indexed lookups
and the small ``sweeps`` table, so a scrape costs the same on a year of history as on
a day of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.health import LAST_FINISHED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LAST_SWEEP_CHARTS = """SELECT store, status, coalesce(error_kind, ''), COUNT(*)
FROM fetches WHERE sweep_id = ? GROUP BY 1, 2, 3"""
# One indexed lookup per chart: the newest observation of each.
_LAST_SUCCESS = """SELECT store, MAX(latest) FROM (
  SELECT c.store, (SELECT MAX(s.fetched_at) FROM snapshots s WHERE s.chart_id = c.id) AS latest
  FROM charts c) GROUP BY store"""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _sweeps(conn: sqlite3.Connection) -> Iterator[Metric]:
    sweeps = CounterMetricFamily(
        "monitor_sweeps", "Sweeps recorded, by how they ended", labels=["status"]
    )
    for status, count in conn.execute("SELECT status, COUNT(*) FROM sweeps GROUP BY status"):
        sweeps.add_metric([status or "unknown"], count)
    yield sweeps
    charts = CounterMetricFamily(
        "monitor_charts", "Charts fetched by every sweep, stored (ok) or failed", labels=["result"]
    )
    ok, failed = conn.execute(
        "SELECT coalesce(SUM(charts_ok), 0), coalesce(SUM(charts_failed), 0) FROM sweeps"
    ).fetchone()
    charts.add_metric(["ok"], ok)
    charts.add_metric(["failed"], failed)
    yield charts


def _last_sweep(conn: sqlite3.Connection) -> Iterator[Metric]:
    row = conn.execute(LAST_FINISHED).fetchone()
    if row is None:
        return
    sweep_id, started_at, finished_at, *_ = row
    yield GaugeMetricFamily(
        "monitor_last_sweep_finished_timestamp_seconds",
        "When the last finished sweep ended, in Unix time",
        value=_epoch(finished_at),
    )
    yield GaugeMetricFamily(
        "monitor_last_sweep_duration_seconds",
        "How long the last finished sweep took",
        value=_epoch(finished_at) - _epoch(started_at),
    )
    charts = GaugeMetricFamily(
        "monitor_last_sweep_charts",
        "Charts of the last finished sweep, by store, result (ok or error) and error kind",
        labels=["store", "result", "error_kind"],
    )
    for store, status, kind, count in conn.execute(_LAST_SWEEP_CHARTS, [sweep_id]):
        charts.add_metric([store, status, kind], count)
    yield charts


def _stores(conn: sqlite3.Connection) -> Iterator[Metric]:
    success = GaugeMetricFamily(
        "monitor_last_success_timestamp_seconds",
        "When a chart of the store was last observed, in Unix time",
        labels=["store"],
    )
    for store, latest in conn.execute(_LAST_SUCCESS):
        if latest is not None:
            success.add_metric([store], _epoch(latest))
    yield success


def _files(db_path: Path) -> Iterator[Metric]:
    for suffix, name, what in (("", "database", "The database file"), ("-wal", "wal", "Its log")):
        path = db_path.with_name(db_path.name + suffix)
        size = path.stat().st_size if path.exists() else 0
        yield GaugeMetricFamily(f"monitor_{name}_bytes", f"{what}, in bytes", value=size)


class _Scrape(Collector):
    """A registry collector holding the metrics read for one scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def exposition(conn: sqlite3.Connection, db_path: str | Path) -> bytes:
    """Read the metrics from the database and return them in Prometheus's text format."""
    metrics = [*_sweeps(conn), *_last_sweep(conn), *_stores(conn), *_files(Path(db_path))]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(metrics))
    return generate_latest(registry)
