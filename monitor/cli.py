"""The ``monitor`` command: a thin click layer over the collector and the database."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from monitor import __version__, collector, schema, selection
from monitor.charts import CHARTS, DEVICES, STORES, FetchResult
from monitor.config import DEFAULT_DB, Endpoints, FetchPolicy, Settings
from monitor.errors import UsageError
from monitor.reference import apple_storefronts
from monitor.status import read_status

db_option = click.option(
    "--db",
    envvar="MONITOR_DB",
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The SQLite file (or set MONITOR_DB).",
)


def fetch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the store endpoints and the politeness settings to a command."""
    defaults, policy = Endpoints(), FetchPolicy()
    options = [
        click.option(
            "--apple-rss-url",
            envvar="MONITOR_APPLE_RSS_URL",
            default=defaults.apple_rss,
            show_default=True,
            help="Base URL of Apple RSS v2 (or set MONITOR_APPLE_RSS_URL).",
        ),
        click.option(
            "--itunes-url",
            envvar="MONITOR_ITUNES_URL",
            default=defaults.itunes,
            show_default=True,
            help="Base URL of the iTunes legacy RSS (or set MONITOR_ITUNES_URL).",
        ),
        click.option(
            "--play-url",
            envvar="MONITOR_PLAY_URL",
            default=defaults.play,
            show_default=True,
            help="Base URL of Google Play (or set MONITOR_PLAY_URL).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=policy.concurrency,
            show_default=True,
            help="Requests in flight at once.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1),
            default=policy.timeout,
            show_default=True,
            help="Seconds to wait for each request.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 10),
            default=policy.retries,
            show_default=True,
            help="Retries on connection errors, timeouts, 429 and 5xx.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def settings_from(options: dict[str, Any]) -> Settings:
    """Freeze the endpoint and politeness options into Settings."""
    return Settings(
        Endpoints(options.pop("apple_rss_url"), options.pop("itunes_url"), options.pop("play_url")),
        FetchPolicy(
            concurrency=options.pop("concurrency"),
            timeout=options.pop("timeout"),
            retries=options.pop("retries"),
        ),
    )


@click.group()
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """Snapshot the app-store top charts of every country into SQLite."""


@cli.command()
@click.option(
    "--store", type=click.Choice(STORES), default="apple", show_default=True, help="Which store."
)
@click.option(
    "--chart",
    type=click.Choice(CHARTS),
    default="top-free",
    show_default=True,
    help="Which top list.",
)
@click.option("--device", type=click.Choice(DEVICES), help="iphone (default) or ipad.")
@click.option("--genre", metavar="ID", help="A store category id, e.g. 6014 (Games).")
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="CC",
    help="Storefront code; repeat or comma-separate. Default: all 175.",
)
@click.option("--depth", type=int, default=100, show_default=True, help="How many ranks to fetch.")
@fetch_options
@db_option
def collect(db: str, countries: tuple[str, ...], **options: Any) -> None:
    """Take one sweep of the selected charts now, and store it.

    Exits 0 if every chart was stored, 1 if some failed (the others are stored),
    and 2 for usage errors.
    """
    settings = settings_from(options)
    try:
        requests = selection.select(countries=selection.parse_countries(countries), **options)
    except UsageError as error:
        raise click.UsageError(str(error)) from None
    database = schema.open_db(db)
    report = _sweep_with_progress(database, requests, settings)
    for failure in report.failures:
        click.echo(f"failed: {failure.req.label()}: {failure.error}", err=True)
    click.echo(report.summary())
    sys.exit(1 if report.failed else 0)


def _sweep_with_progress(
    database: Any, requests: list[Any], settings: Settings
) -> collector.SweepReport:
    if not sys.stderr.isatty():
        return collector.sweep(database, requests, settings)
    with click.progressbar(
        length=len(requests), label="Collecting", file=sys.stderr, show_pos=True
    ) as bar:

        def advance(result: FetchResult) -> None:
            bar.update(1)

        return collector.sweep(database, requests, settings, advance)


@cli.command()
@db_option
@click.option(
    "--sweeps",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="How many recent sweeps to show.",
)
def status(db: str, sweeps: int) -> None:
    """Show the last sweeps, failures by storefront and the database size."""
    state = read_status(schema.open_db(db), db, sweeps)
    click.echo(
        f"{state.path}: {state.size_bytes / 1e6:,.1f} MB, {state.snapshots:,} chart observations"
    )
    click.echo("\nLast sweeps:")
    click.echo(f"  {'id':>5}  {'started':20}  {'finished':20}  {'ok':>5}  {'failed':>6}  entries")
    for s in state.sweeps:
        click.echo(
            f"  {s['id']:>5}  {s['started_at']:20}  {s['finished_at'] or 'running':20}"
            f"  {s['charts_ok'] or 0:>5}  {s['charts_failed'] or 0:>6}"
            f"  {s['entries'] or 0:,}"
        )
    click.echo(
        "\nFailures in these sweeps, by storefront:"
        if state.failures
        else "\nNo failures in these sweeps."
    )
    for f in state.failures:
        click.echo(
            f"  {f['store']}/{f['country']}: {f['failures']} failed, last at "
            f"{f['last_at']}: {f['last_error']}"
        )


@cli.command()
def countries() -> None:
    """List the storefront codes that --country accepts."""
    for code, name in apple_storefronts().items():
        click.echo(f"{code}\t{name}")
