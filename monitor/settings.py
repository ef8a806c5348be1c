"""Every setting, defined once: its option, config key, variable, check, default and help.

``SETTINGS`` serves the command line (``cli.setting_options``), the TOML config file
(``load_file``) and the frozen ``Config`` the collector and the service receive
(``build``). A value is checked by the same reader wherever it comes from: options and
their environment variables win over the file, and the file over the defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from monitor import alerts
from monitor.config import (
    MIN_INTERVAL,
    Access,
    Alert,
    ChartSpec,
    Config,
    EventRules,
    FetchPolicy,
    RawCaps,
    Schedule,
    Settings,
    format_duration,
    format_size,
    parse_cap,
    parse_duration,
    parse_interval,
    parse_size,
)
from monitor.errors import UsageError
from monitor.sources import CHARTS, DEVICES, ENDPOINTS, STORES


@dataclass(frozen=True)
class Reader:
    """How a setting's value is read: from an option's text or from a TOML value."""

    metavar: str  # its kind, in the help: INTEGER, DURATION...
    expects: str  # what a valid value is, for errors: "an integer from 1 to 64"
    read: Callable[[Any], Any]  # raises ValueError, or UsageError with its own message
    show: Callable[[Any], str] = str  # how a value is written as an option's text


def _integer(low: int, high: int) -> Reader:
    def read(value: Any) -> int:
        number = int(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise ValueError
        return number

    return Reader("INTEGER", f"an integer from {low} to {high}", read)


def _seconds(low: float, high: float) -> Reader:
    def read(value: Any) -> float:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError
        if not low <= number <= high:
            raise ValueError
        return float(number)

    expects = f"a number of seconds from {low:g} to {high:g}"
    return Reader("SECONDS", expects, read, lambda value: f"{value:g}")


def _number(low: float, high: float) -> Reader:
    seconds = _seconds(low, high)
    return Reader("NUMBER", f"a number from {low:g} to {high:g}", seconds.read, seconds.show)


def _text(
    metavar: str, expects: str, parse: Callable[[str], Any], show: Callable[[Any], str]
) -> Reader:
    def read(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError
        return parse(value)

    return Reader(metavar, expects, read, show)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    parts = urlsplit(value)  # ValueError for a malformed URL
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    return value


_EXAMPLES = "a duration such as 90s, 15m or 1h"
DURATION = _text("DURATION", _EXAMPLES, parse_duration, format_duration)
INTERVAL = _text(
    "DURATION", f"{_EXAMPLES}, at least {MIN_INTERVAL:g}s", parse_interval, format_duration
)
SIZE = _text("SIZE", "a size such as 4MB or 512KB", parse_size, format_size)
CAP = _text("SIZE", "a size such as 4MB, or 0 for none", parse_cap, format_size)
BOOLEAN = Reader("", "true or false", _boolean)


def _counts(value: Any) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError
    count = _integer(1, 1000).read
    return tuple(sorted({count(item.strip() if isinstance(item, str) else item) for item in items}))


COUNTS = Reader(
    "COUNTS",
    "storefront counts from 1 to 1000, such as 1,10,50 (in the file, a list)",
    _counts,
    lambda value: ",".join(map(str, value)),
)
URL = Reader("URL", "an http(s) URL with a host", _url)


@dataclass(frozen=True)
class Setting:
    """One setting: --KEY on the command line, KEY in the config file."""

    key: str
    owner: type | None  # the frozen dataclass it is a field of; None for a base URL
    reader: Reader
    help: str
    envvar: str | None = None
    field: str | None = None  # the owner's field, where it is not named as the key
    url_default: str | None = None  # a base URL's default

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--play-interval``."""
        return "--" + self.key.replace("_", "-")

    @property
    def default(self) -> Any:
        """The value when neither an option nor the file sets it: its owner's default."""
        if self.owner is None:
            return self.url_default
        found = next(f for f in fields(self.owner) if f.name == (self.field or self.key))
        assert found.default is not MISSING, f"{self.key} has no default"
        return found.default

    def read(self, value: Any) -> Any:
        """Check and convert a value, or raise UsageError naming what is expected."""
        try:
            return self.reader.read(value)
        except (ValueError, TypeError):
            raise UsageError(f"must be {self.reader.expects}, not {value!r}") from None


def _endpoint_settings() -> tuple[Setting, ...]:
    return tuple(
        Setting(
            e.key,
            None,
            URL,
            f"Base URL of {e.describes} (or {e.envvar}).",
            envvar=e.envvar,
            url_default=e.default,
        )
        for e in ENDPOINTS
    )


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "interval",
        Schedule,
        INTERVAL,
        f"Time between sweeps: 90s, 15m, 1h... (at least {MIN_INTERVAL:g}s).",
    ),
    Setting("jitter", Schedule, DURATION, "Delay each sweep by a random time up to this."),
    Setting(
        "concurrency",
        FetchPolicy,
        _integer(1, 64),
        "Requests in flight at once, to each store that takes concurrent requests.",
    ),
    Setting(
        "rate",
        FetchPolicy,
        _number(0, 1000),
        "Requests started a second, at most, to each host of a store that takes concurrent "
        "requests (0: no limit but --concurrency).",
    ),
    Setting(
        "timeout",
        FetchPolicy,
        _seconds(0.1, 3600),
        "Seconds allowed for each attempt at a request, from connecting to its last byte.",
    ),
    Setting(
        "retries",
        FetchPolicy,
        _integer(0, 10),
        "Retries on connection errors, timeouts, 429 and 5xx.",
    ),
    Setting(
        "play_interval",
        FetchPolicy,
        _seconds(0, 60),
        "Seconds from each Google Play answer to the next request; they go one at a time.",
    ),
    Setting(
        "max_body",
        FetchPolicy,
        SIZE,
        "The most a response may hold once decompressed: 512KB, 4MB...",
    ),
    Setting(
        "raw_per_day",
        RawCaps,
        CAP,
        "Failed response bodies kept, compressed, per store and day (0: none).",
        field="per_store_day",
    ),
    Setting(
        "raw_total",
        RawCaps,
        CAP,
        "Failed response bodies kept in all; the oldest make room (0: none).",
        field="total",
    ),
    Setting(
        "milestones",
        EventRules,
        COUNTS,
        "Storefront counts at No. 1 (or in the top 10) whose crossing is a milestone event.",
    ),
    Setting(
        "public",
        Access,
        BOOLEAN,
        "Serve readers you do not know: no arbitrary SQL, no raw bodies, no downloads "
        "of the whole file.",
    ),
    Setting(
        "public_sql",
        Access,
        BOOLEAN,
        "In public mode, allow arbitrary SQL all the same (bounded by the time limit).",
    ),
    *_endpoint_settings(),
)
BY_KEY: Mapping[str, Setting] = MappingProxyType({s.key: s for s in SETTINGS})
FETCH_KEYS = tuple(s.key for s in SETTINGS if s.owner in (FetchPolicy, RawCaps, EventRules, None))
SCHEDULE_KEYS = tuple(s.key for s in SETTINGS if s.owner is Schedule)
ACCESS_KEYS = tuple(s.key for s in SETTINGS if s.owner is Access)

_CHART_KEYS = {
    "store": " or ".join(STORES),
    "chart": f"{', '.join(CHARTS)}, or all",
    "device": f"{', '.join(DEVICES)} or all, where the store has devices",
    "genre": "a store category id, as text, or all",
    "countries": '"all" or a list of storefront codes',
    "depth": "an integer, the number of ranks",
}


@dataclass(frozen=True)
class FileConfig:
    """What a config file set: settings by key, checked, its charts if it has any, and
    its webhook destinations."""

    values: Mapping[str, Any]
    charts: tuple[ChartSpec, ...] | None = None
    alerts: tuple[Alert, ...] = ()


def load_file(path: str | Path) -> FileConfig:
    """Read and check a TOML config file."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"config {path} is not UTF-8 text: {error.reason}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config {path} is not valid TOML: {error}") from None
    _check_keys(data, [*BY_KEY, "charts", "alerts"], f"config {path}")
    values = {}
    for key, value in data.items():
        if key in BY_KEY:
            try:
                values[key] = BY_KEY[key].read(value)
            except UsageError as error:
                raise UsageError(f"config {path}: '{key}': {error}") from None
    found = alerts.parse(data["alerts"], f"config {path}") if "alerts" in data else ()
    return FileConfig(MappingProxyType(values), _charts(data, path), found)


def build(
    values: Mapping[str, Any],
    charts: tuple[ChartSpec, ...] | None = None,
    destinations: tuple[Alert, ...] = (),
) -> Config:
    """Make the frozen Config from checked values by key; a missing one takes its default."""

    def part(owner: type) -> Any:
        return owner(
            **{s.field or s.key: values.get(s.key, s.default) for s in SETTINGS if s.owner is owner}
        )

    endpoints = {s.key: values.get(s.key, s.default) for s in SETTINGS if s.owner is None}
    return Config(
        Settings(MappingProxyType(endpoints), part(FetchPolicy), part(RawCaps), part(EventRules)),
        part(Schedule),
        part(Access),
        charts,
        destinations,
    )


def _charts(data: dict[str, Any], path: str | Path) -> tuple[ChartSpec, ...] | None:
    if "charts" not in data:
        return None
    charts = data["charts"]
    if not isinstance(charts, list) or not charts:
        raise UsageError(f"config {path}: 'charts' must be a list of [[charts]] tables")
    return tuple(_chart(item, f"{path}: charts[{i}]") for i, item in enumerate(charts))


def _chart(item: Any, where: str) -> ChartSpec:
    if not isinstance(item, dict):
        raise UsageError(f"config {where} must be a table")
    _check_keys(item, list(_CHART_KEYS), f"config {where}")
    countries = item.get("countries", "all")
    if countries != "all" and not (
        isinstance(countries, list) and countries and all(isinstance(c, str) for c in countries)
    ):
        raise UsageError(f"config {where}: 'countries' must be {_CHART_KEYS['countries']}")
    depth = item.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
        raise UsageError(f"config {where}: 'depth' must be {_CHART_KEYS['depth']}")
    spec = ChartSpec()
    return ChartSpec(
        store=_text_key(item, "store", where) or spec.store,
        chart=_text_key(item, "chart", where) or spec.chart,
        device=_text_key(item, "device", where),
        genre=_text_key(item, "genre", where),
        countries=None if countries == "all" else tuple(countries),
        depth=depth,
    )


def _text_key(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"config {where}: '{key}' must be {_CHART_KEYS[key]}, not {value!r}")
    return value


def _check_keys(data: dict[str, Any], allowed: list[str], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed keys are {', '.join(allowed)}"
        )
