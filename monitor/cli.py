"""The ``monitor`` command: a thin click layer over the collector, service and database."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import httpx

from monitor import __version__, claims, collector, estimate, events, notes, schema, selection
from monitor import alerts as webhooks
from monitor import demo as demo_data
from monitor import export as parquet
from monitor.backup import Backup, back_up
from monitor.charts import ChartRequest, FetchResult
from monitor.config import DEFAULT_DB, Alert, ChartSpec, Config, Settings, parse_duration
from monitor.errors import MonitorError, NotMonitorDatabase, Stopped, UsageError
from monitor.health import max_sweep_age, read_health
from monitor.locks import AlreadyRunning
from monitor.politeness import HostReport
from monitor.settings import (
    ACCESS_KEYS,
    BOOLEAN,
    BY_KEY,
    FETCH_KEYS,
    SCHEDULE_KEYS,
    FileConfig,
    Setting,
    build,
    load_file,
)
from monitor.sources import CHARTS, DEFAULT_STORE, DEVICES, STORES
from monitor.status import RawKept, Status, read_status
from monitor.stopping import Stop, stop_on_signals
from monitor.terminal import PrintableFormatter, printable

# monitor collect's exit code when the sweep failed, or its record could not be completed.
EXIT_SWEEP_FAILED = 3

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Refused(click.ClickException):
    """The command cannot start as asked; exits 2 like a usage error."""

    exit_code = 2


class Parsed(click.ParamType):
    """An option value read by one of config's parsers: a duration, an interval, a size."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except UsageError as error:
            self.fail(str(error), param, ctx)


Duration = Parsed("duration", parse_duration)


def options(*decorators: Decorator) -> Decorator:
    """Apply several click decorators in reading order."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


db_option = click.option(
    "--db",
    envvar="MONITOR_DB",
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The SQLite file (or set MONITOR_DB).",
)
config_option = click.option(
    "--config",
    "config_path",
    envvar="MONITOR_CONFIG",
    type=click.Path(dir_okay=False),
    help="A TOML config file (or set MONITOR_CONFIG), where each setting's key is its "
    "option's name with underscores: see docs/config.example.toml.",
)
log_option = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much to log.",
)


class SettingType(click.ParamType):
    """An option's value, read and checked as its setting reads the config file's."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.key

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value  # already read
        try:
            return self.setting.read(value)
        except UsageError as error:
            self.fail(str(error), param, ctx)


def setting_options(*keys: str) -> Decorator:
    """The options of these settings, as SETTINGS defines them."""
    return options(*(_setting_option(BY_KEY[key]) for key in keys))


def _setting_option(setting: Setting) -> Decorator:
    if setting.reader is BOOLEAN:
        return click.option(setting.option, setting.key, is_flag=True, help=setting.help)
    return click.option(
        setting.option,
        setting.key,
        envvar=setting.envvar,
        type=SettingType(setting),
        metavar=setting.reader.metavar,
        default=setting.reader.show(setting.default),
        show_default=True,
        help=setting.help,
    )


fetch_options = options(setting_options(*FETCH_KEYS), config_option, db_option)


def configured(given: dict[str, Any]) -> Config:
    """Return the Config: options given explicitly, else the config file, else defaults."""
    ctx = click.get_current_context()
    try:
        file = load_file(given["config_path"]) if given.get("config_path") else FileConfig({})
    except UsageError as error:
        raise click.BadParameter(str(error), param_hint="--config") from None
    values = dict(file.values)
    for key in BY_KEY.keys() & given.keys():
        if ctx.get_parameter_source(key) not in (click.core.ParameterSource.DEFAULT, None):
            values[key] = given[key]
    return build(values, file.charts, file.alerts)


def require_file(db: str) -> None:
    """Refuse a database that does not exist yet, saying what creates it."""
    if not Path(db).is_file():
        raise Refused(f"no database at {db}; 'monitor collect' or 'monitor run' creates it")


def open_existing(db: str) -> Any:
    """Open a database that must already exist, as the read-only commands need."""
    require_file(db)
    try:
        return schema.open_for_reading(db)
    except NotMonitorDatabase as error:
        raise Refused(str(error)) from None


def check_database(db: str) -> None:
    """Refuse, before any work, a file that monitor cannot use as its database."""
    try:
        schema.open_db(db).close()
    except NotMonitorDatabase as error:
        raise Refused(str(error)) from None
    except OSError as error:
        raise Refused(f"cannot use {db}: {error.strerror}") from None
    except sqlite3.Error as error:
        raise Refused(f"cannot use {db}: {error}") from None


def chart_requests(specs: tuple[ChartSpec, ...], where: str) -> tuple[ChartRequest, ...]:
    """Expand chart specs into requests, or exit 2 saying what is wrong and where."""
    try:
        return tuple(selection.requests_for_all(specs))
    except UsageError as error:
        raise click.UsageError(f"{where}: {error}") from None


def configured_charts(config: Config) -> tuple[ChartRequest, ...]:
    """Expand the config file's charts, or the default selection."""
    return chart_requests(config.charts or selection.DEFAULT_CHARTS, "config charts")


@click.group()
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """Snapshot the app-store top charts of every country into SQLite, and publish them."""


@cli.command()
@click.option(
    "--store", type=click.Choice(list(STORES)), help=f"Which store (default {DEFAULT_STORE})."
)
@click.option(
    "--chart",
    type=click.Choice([*CHARTS, selection.ALL]),
    help=f"Which top list (default {ChartSpec.chart}), or all of the store's."
    + "".join(
        f" {s.title} has only {', '.join(s.charts)}."
        for s in STORES.values()
        if set(s.charts) != set(CHARTS)
    ),
)
@click.option(
    "--device",
    type=click.Choice([*DEVICES, selection.ALL]),
    help="all, or "
    + "; ".join(
        f"{s.title}: {', '.join(s.devices)} (default {s.devices[0]})"
        for s in STORES.values()
        if s.devices
    )
    + ". Other stores have no devices.",
)
@click.option(
    "--genre",
    metavar="ID",
    help="A category id: "
    + ", ".join(f"{s.genre_example} on {s.title}" for s in STORES.values())
    + "...; or all: the overall chart and every genre with top charts. "
    + "--chart all --device all --genre all collects everything in the store.",
)
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="CC",
    help="Storefront code; repeat or comma-separate. Default: all.",
)
@click.option(
    "--depth",
    type=int,
    help=f"How many ranks to fetch (default {selection.DEFAULT_DEPTH}; at most "
    + ", ".join(f"{s.max_depth} on {s.title}" for s in STORES.values())
    + ").",
)
@fetch_options
def collect(
    store: str | None,
    chart: str | None,
    device: str | None,
    genre: str | None,
    countries: tuple[str, ...],
    depth: int | None,
    **given: Any,
) -> None:
    """Take one sweep now and store it.

    With no selection flags it collects the configured charts: by default the
    iPhone top-free chart in all 175 App Store storefronts. Exits 0 if every chart
    was stored, 1 if some failed (the others are stored), 2 for usage errors, 3 if
    the sweep failed (e.g. the disk is full), and 130 or 143 if SIGINT or SIGTERM
    stopped it (what was stored stays).
    """
    config = configured(given)
    flags = (store, chart, device, genre, depth)
    if countries or any(flag is not None for flag in flags):
        spec = ChartSpec(
            store,
            chart or ChartSpec.chart,
            device,
            genre,
            selection.split_countries(countries) or None,
            depth,
        )
        requests = chart_requests((spec,), "selection")
    else:
        requests = configured_charts(config)
    check_database(given["db"])
    sys.exit(_collect(given["db"], requests, config.settings, config.alerts))


# The longest monitor collect spends posting events to webhooks after its sweep (a signal
# ends it after the try under way); what is left waits in the outbox for the next
# collect or monitor run.
WEBHOOK_SECONDS = 30.0


def _collect(
    db: str, requests: tuple[ChartRequest, ...], settings: Settings, destinations: tuple[Alert, ...]
) -> int:
    """Sweep, say how it went, send its events to the webhooks, and return the exit code."""
    stop = stop_on_signals()
    if destinations:  # each new destination starts with the events from now on
        webhooks.take_new(db, destinations)
    expected = estimate.for_sweep(db, requests, settings)
    if expected.seconds >= estimate.WORTH_SAYING:
        click.echo(expected.describe(), err=True)
    try:
        report = _sweep_with_progress(db, requests, settings, stop)
    except Stopped as error:
        click.echo(str(error), err=True)
        return stop.exit_code
    except collector.SweepNotRecorded as error:
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_SWEEP_FAILED
    for failure in report.failures:
        click.echo(f"failed: {failure.req.label()}: {printable(failure.error)}", err=True)
    click.echo(printable(report.summary()))
    for line in report.politeness():
        click.echo(f"  {printable(line)}")
    if destinations and report.status != "stopped":
        _send_events(db, destinations, stop)
        if stop.signal:  # one came while the events were sent: the rest wait
            return stop.exit_code
    if report.status == "stopped":
        return stop.exit_code
    if report.status != "finished":
        return EXIT_SWEEP_FAILED
    return 1 if report.failed else 0


def _send_events(db: str, destinations: tuple[Alert, ...], stop: Stop) -> None:
    """Post what is due to the webhooks until a signal, for at most WEBHOOK_SECONDS (which
    then set stop, with no signal), and say how it went."""
    timer = threading.Timer(WEBHOOK_SECONDS, stop.set)
    timer.start()
    try:
        with webhooks.Poster() as http:
            done = webhooks.deliver_pass(db, destinations, http, stop)
    finally:
        timer.cancel()
    if done is None:
        click.echo("webhooks: none sent, as the database failed (above); they wait", err=True)
    else:
        click.echo(f"webhooks: {done.delivered} events delivered, {done.waiting} waiting", err=True)


def _sweep_with_progress(
    db: str, requests: tuple[ChartRequest, ...], settings: Settings, stop: threading.Event
) -> collector.SweepReport:
    def wait(message: str) -> None:
        click.echo(message, err=True)

    if not sys.stderr.isatty():
        return collector.sweep_once(db, requests, settings, lambda result: None, wait, stop)
    with click.progressbar(
        length=len(requests), label="Collecting", file=sys.stderr, show_pos=True
    ) as bar:

        def advance(result: FetchResult) -> None:
            bar.update(1)

        return collector.sweep_once(db, requests, settings, advance, wait, stop)


listen_options = options(
    click.option("--host", default="127.0.0.1", show_default=True, help="Datasette's address."),
    click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8001,
        show_default=True,
        help="Datasette's port.",
    ),
    setting_options(*ACCESS_KEYS),
)
schedule_options = setting_options(*SCHEDULE_KEYS)


@cli.command()
@schedule_options
@click.option("--serve/--no-serve", default=True, show_default=True, help="Also serve Datasette.")
@listen_options
@log_option
@fetch_options
def run(serve: bool, host: str, port: int, log_level: str, **given: Any) -> None:
    """Run the service: a sweep now and every --interval, with Datasette beside it.

    Stops cleanly on SIGTERM or SIGINT. Only one 'monitor run' may use a database.
    """
    _configure_logging(log_level)
    config = configured(given)
    requests = configured_charts(config)
    from monitor import service  # Datasette and the scheduler load only for the service

    listen = service.Listen(host, port, config.access, max_sweep_age(config.schedule))
    check_database(given["db"])
    try:
        service.run_service(given["db"], requests, config, listen if serve else None)
    except AlreadyRunning as error:
        raise Refused(str(error)) from None
    except MonitorError as error:
        raise click.ClickException(str(error)) from None


@cli.command()
@listen_options
@schedule_options
@log_option
@config_option
@db_option
def serve(db: str, host: str, port: int, log_level: str, **given: Any) -> None:
    """Serve the database with Datasette alone, with monitor's metadata.

    A database on a read-only mount is served as it is. --interval and --jitter are
    the collector's: /-/health answers 503 once no sweep finished within twice the
    interval (plus the jitter).
    """
    _configure_logging(log_level)
    config = configured(given)
    if Path(db).is_file():
        open_existing(db).close()
    else:
        check_database(db)
    from monitor import service  # Datasette loads only when serving

    try:
        listen = service.Listen(host, port, config.access, max_sweep_age(config.schedule))
        service.serve_forever(db, listen)
    except MonitorError as error:
        raise click.ClickException(str(error)) from None


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if level != "debug":
        for chatty in ("apscheduler", "httpx"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


@cli.command()
@click.argument("app")
@click.option(
    "--at",
    metavar="TIME",
    help="When, in ISO 8601; naive is UTC (default: the end of the latest complete sweep).",
)
@click.option(
    "--max-age",
    type=Duration,
    default="6h",
    show_default=True,
    help="Oldest observation that still counts a country as observed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@db_option
def claim(app: str, at: str | None, max_age: float, as_json: bool, db: str) -> None:
    """Say where APP ranks: per chart, the countries where it is No. 1, top 10, top 100.

    APP is a store id, or part of a name (any storefront's, at any time). Every answer
    says which countries were observed, since a country not observed is not the same
    as a country where the app is not ranked.
    """
    database = open_existing(db)
    try:
        found = claims.find_app(database, app)
        result = claims.claim(database, found, claims.answer_time(database, at), max_age)
    except UsageError as error:
        raise Refused(printable(str(error))) from None
    finally:
        database.close()
    click.echo(
        json.dumps(result.to_json(), ensure_ascii=False, indent=2)
        if as_json
        else claims.describe(result)
    )


@cli.command()
@click.option(
    "--db",
    default=demo_data.DEFAULT_PATH,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write it: a new file, or an earlier demo, never a database of yours.",
)
def demo(db: str) -> None:
    """Build a demo database to try monitor on without network.

    It replays a weekend of the App Store's iPhone top-free charts in the 175
    storefronts, in which one app climbs to No. 1 in 50 of them. Datasette and its
    tables say it is a demo. It never writes over a database that is not a demo, nor
    over MONITOR_DB.
    """
    real = os.environ.get("MONITOR_DB")
    if real and Path(real).resolve() == Path(db).resolve():
        raise Refused(f"{db} is MONITOR_DB: monitor demo writes only a file of its own")
    try:
        observed = _demo_with_progress(db)
    except demo_data.NotADemo as error:
        raise Refused(str(error)) from None
    click.echo(f"demo database at {db}: {demo_data.HOURS} hourly sweeps, {observed:,} charts")
    click.echo(f'try: monitor claim "Example AI" --db {db}')
    click.echo(f"     monitor serve --db {db}")


def _demo_with_progress(db: str) -> int:
    if not sys.stderr.isatty():
        return demo_data.build(db)
    with click.progressbar(length=demo_data.HOURS, label="Sweeps", file=sys.stderr) as bar:
        return demo_data.build(db, lambda done: bar.update(done - bar.pos))


@cli.command()
@click.argument("app")
@click.argument("text")
@click.option(
    "--at", metavar="TIME", help="When it happened, in ISO 8601; naive is UTC (default: now)."
)
@click.option("--url", metavar="URL", help="Where to read more: an http(s) link.")
@db_option
def note(app: str, text: str, at: str | None, url: str | None, db: str) -> None:
    """Note on APP's timeline what happened at a time: an update, a story, a price change.

    APP is a store id or part of a name, as for claim. Notes are published in the notes
    table, and the dashboard's rank chart draws them at their time.
    """
    require_file(db)
    database = schema.open_db(db)
    try:
        found = claims.find_app(database, app)
        when = claims.answer_time(database, at) if at else collector.now()
        note_id = notes.add_note(database, found, when, text, url, collector.now())
    except UsageError as error:
        raise Refused(printable(str(error))) from None
    finally:
        database.close()
    click.echo(
        f"note {note_id} on {printable(found.name or found.app_id)} ({found.store} "
        f"{found.app_id}) at {when}"
    )


@cli.command("events")
@click.option("--app", metavar="APP", help="Only this app: a store id or part of a name.")
@click.option("--country", metavar="CODE", help="Only this storefront, e.g. us.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([*events.KINDS, *events.MILESTONES]),
    help="Only events of this kind (repeat for several).",
)
@click.option("--since", metavar="TIME", help="Only events at or after TIME, in ISO 8601.")
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="The latest N."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines for scripts.")
@db_option
def list_events(
    app: str | None,
    country: str | None,
    kinds: tuple[str, ...],
    since: str | None,
    limit: int,
    as_json: bool,
    db: str,
) -> None:
    """List what changed: apps entering and leaving No. 1, the top 10 and the charts, in
    each storefront, and milestones across storefronts, oldest first.

    A storefront whose fetch failed shows no change: the next observation is compared
    with the last successful one.
    """
    database = open_existing(db)
    try:
        found = claims.find_app(database, app) if app else None
        wanted = events.Wanted(
            store=found.store if found else None,
            app_id=found.app_id if found else None,
            country=country,
            kinds=kinds,
            since=claims.answer_time(database, since) if since else None,
            limit=limit,
        )
        rows = events.listed(database, wanted)
    except UsageError as error:
        raise Refused(printable(str(error))) from None
    finally:
        database.close()
    for row in rows:
        click.echo(
            json.dumps(row, ensure_ascii=False) if as_json else printable(events.describe(row))
        )


@cli.group()
def alerts() -> None:
    """Webhooks: the [[alerts]] tables of the config file (see docs/config.example.toml)."""


@alerts.command("test")
@click.argument("name", required=False)
@config_option
def alerts_test(name: str | None, config_path: str | None) -> None:
    """Send a test event to the webhook NAME (default: every one) and print its answer.

    Exits 1 when a destination does not answer with a 2xx status.
    """
    destinations = configured({"config_path": config_path}).alerts
    chosen = [d for d in destinations if name in (None, d.name)]
    if not destinations:
        raise Refused("no webhook is configured: add [[alerts]] tables to the --config file")
    if not chosen:
        known = ", ".join(d.name for d in destinations)
        raise Refused(f"no webhook named {name!r}; configured: {known}")
    event = webhooks.sample_event(collector.now())
    failed = 0
    with webhooks.Poster() as http:
        for destination in chosen:
            try:
                answer = http.post(destination, event)
                said = f"HTTP {answer.status} {answer.text}"
                failed += not answer.ok
            except httpx.HTTPError as error:
                said = f"{type(error).__name__}: no answer"
                failed += 1
            click.echo(f"{printable(destination.name)}: {printable(said)}")
    if failed:
        sys.exit(1)


@cli.command()
@db_option
@click.option(
    "--sweeps",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="How many recent sweeps to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@config_option
def status(db: str, sweeps: int, as_json: bool, **given: Any) -> None:
    """Show the last sweeps, their failures by store and cause, and the database size.

    When every chart of a store failed the same way in the last sweep, it says what
    to check: the network, the base URL, a proxy. The caps on kept failed bodies are
    the config file's (--config), or the defaults.
    """
    caps = configured(given).settings.raw
    database = open_existing(db)
    try:
        state = read_status(database, db, sweeps, caps)
    finally:
        database.close()
    if as_json:
        click.echo(json.dumps(state.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{state.path}: {state.size_bytes / 1e6:,.1f} MB, {state.snapshots:,} chart observations"
    )
    _echo_sweeps(state.sweeps)
    _echo_hosts(state.hosts)
    _echo_failures(state)
    _echo_raw(state.raw)
    for destination, states in state.deliveries.items():
        counts = ", ".join(f"{count:,} {name}" for name, count in states.items())
        click.echo(f"webhook {printable(destination)}: {counts}")
    if state.milestones_due:
        due = ", ".join(str(sweep) for sweep in state.milestones_due)
        click.echo(
            f"milestones of sweeps {due} not recorded yet: the next sweep's end records them"
        )


def _echo_sweeps(sweeps: list[dict[str, Any]]) -> None:
    click.echo("\nLast sweeps:")
    click.echo(
        f"  {'id':>5}  {'started':20}  {'finished':20}  {'ended':11}  {'ok':>5}  {'failed':>6}"
        "  entries"
    )
    for s in sweeps:
        click.echo(
            f"  {s['id']:>5}  {s['started_at']:20}  {s['finished_at'] or '-':20}"
            f"  {s['status'] or '-':11}  {s['charts_ok'] or 0:>5}  {s['charts_failed'] or 0:>6}"
            f"  {s['entries'] or 0:,}"
        )
        if s["reason"]:
            click.echo(f"         {printable(s['reason'])}")


def _echo_hosts(hosts: list[dict[str, Any]]) -> None:
    if not hosts:
        return
    click.echo(f"\nHosts in sweep {hosts[0]['sweep_id']}:")
    for host in hosts:
        report = HostReport(**{k: v for k, v in host.items() if k not in ("sweep_id", "rate")})
        click.echo(f"  {printable(report.describe())}")


def _echo_raw(raw: RawKept) -> None:
    def mb(size: int) -> str:  # as the config counts them: 1 MB = 2**20 bytes
        return f"{size / 2**20:,.1f} MB"

    today = ", ".join(f"{store} {mb(size)}" for store, size in raw.today.items())
    click.echo(
        f"\nFailed bodies kept: {raw.count:,}, {mb(raw.bytes)} of {mb(raw.caps.total)}; "
        f"today {today or 'none'} (at most {mb(raw.caps.per_store_day)} a store)"
    )


def _echo_failures(state: Status) -> None:
    if not state.failures:
        click.echo("\nNo failures in these sweeps.")
        return
    click.echo("\nFailures in these sweeps, by store and cause:")
    for group in state.failures:
        click.echo(f"  {group.store} {group.kind}: {group.failures} failed in {state.where(group)}")
        click.echo(f"    last at {group.last_at}: {printable(group.last_error)}")
    for text in state.hints.values():
        click.echo(f"\nHint: {text}.")


@cli.command()
@schedule_options
@click.option(
    "--server",
    metavar="URL",
    help="Ask the Datasette at URL instead: healthy when its /-/health answers at all.",
)
@config_option
@db_option
def health(db: str, server: str | None, **given: Any) -> None:
    """Exit 0 if a sweep finished within twice --interval (plus --jitter), else 1.

    For health checks of a collector: pass the interval it runs with, or the config
    file it reads. With --server, check a Datasette instead: 0 when it answers, fresh
    (200) or stale (503), and 1 when it cannot be reached.
    """
    if server:
        sys.exit(_ask_server(server))
    schedule = configured(given).schedule
    require_file(db)
    try:
        # Read-only: a health check never migrates the schema or takes a lock. SQLite may
        # still make the log files beside a database that has none (see docs/deploy.md).
        with closing(sqlite3.connect(schema.read_only_uri(db), uri=True)) as conn:
            state = read_health(conn, max_sweep_age(schedule))
    except (NotMonitorDatabase, sqlite3.Error) as error:
        raise Refused(f"cannot read {db}: {error}") from None
    click.echo(state.describe())
    sys.exit(0 if state.healthy else 1)


def _ask_server(url: str) -> int:
    import httpx

    try:
        answer = httpx.get(url.rstrip("/") + "/-/health", timeout=10)
    except httpx.HTTPError as error:
        click.echo(f"{url} did not answer: {error}", err=True)
        return 1
    click.echo(f"{answer.status_code} {printable(answer.text[:1000])}")
    return 0 if answer.status_code in (200, 503) else 1


@cli.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@db_option
def backup(dest: str, force: bool, db: str) -> None:
    """Write a consistent copy of the database to DEST, also while a service writes it.

    The copy is the database as it stood when the backup began: one self-contained
    SQLite file, checked with PRAGMA integrity_check. It is written beside DEST and
    renamed into place only when whole. DEST must not be the database itself.
    """
    try:
        done = _back_up_with_progress(db, dest, force)
    except MonitorError as error:
        raise Refused(str(error)) from None
    click.echo(
        f"backed up {done.size_bytes / 1e6:,.1f} MB ({done.snapshots:,} chart observations)"
        f" to {dest} in {done.seconds:.1f}s"
    )
    click.echo(
        f"to restore: stop monitor (run and serve), copy {dest} over {db},"
        f" delete any {db}-wal and -shm, and start monitor again"
    )


def _back_up_with_progress(db: str, dest: str, force: bool) -> Backup:
    if not sys.stderr.isatty():
        return back_up(db, dest, force=force)
    with click.progressbar(length=1, label="Backing up", file=sys.stderr) as bar:

        def advance(copied: int, total: int) -> None:
            bar.length = total  # known once the copy has begun
            bar.update(copied - bar.pos)

        return back_up(db, dest, force=force, progress=advance)


store_option = click.option(
    "--store",
    type=click.Choice(list(STORES)),
    default=DEFAULT_STORE,
    show_default=True,
    help="Which store.",
)


@cli.group()
def export() -> None:
    """Write the history in formats that other engines read."""


@export.command("parquet")
@click.argument("folder", type=click.Path(file_okay=False))
@db_option
def export_parquet(folder: str, db: str) -> None:
    """Write the history to FOLDER as Parquet, partitioned by store, chart and month.

    Each run adds only what was stored since the last run into the same FOLDER. DuckDB,
    Spark and Trino read it where it lies (see docs/parquet.md). Needs pyarrow:
    pip install 'monitor[parquet]'.
    """
    open_existing(db).close()  # brought up to date where it can be, or refused
    try:
        done = _export_with_progress(db, folder)
    except MonitorError as error:
        raise Refused(str(error)) from None
    except OSError as error:
        raise Refused(f"cannot write the export to {folder}: {error.strerror or error}") from None
    click.echo(f"{folder}: {done.describe()}")


def _export_with_progress(db: str, folder: str) -> parquet.Exported:
    if not sys.stderr.isatty():
        return parquet.export_parquet(db, folder)
    with click.progressbar(length=1, label="Charts", file=sys.stderr) as bar:

        def advance(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        return parquet.export_parquet(db, folder, advance)


@cli.command()
@store_option
@db_option
def countries(store: str, db: str) -> None:
    """List the storefront codes that --country accepts, for the store (default: apple)."""
    for code, name in STORES[store].storefronts().items():
        click.echo(f"{code}\t{name}")


@cli.command()
@store_option
@db_option
def genres(store: str, db: str) -> None:
    """List the genre (category) ids that --genre accepts, for the store (default: apple)."""
    for genre_id, name in STORES[store].categories().items():
        click.echo(f"{genre_id}\t{name}")
