"""The TOML config: what it sets, how it is checked, and that options win over it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config import ChartSpec, parse_duration, parse_size
from monitor.errors import UsageError
from monitor.selection import requests_for_all
from monitor.settings import BY_KEY, SETTINGS, build, load_file

EXAMPLE = Path(__file__).parent.parent / "docs" / "config.example.toml"


def write(tmp_path, text):
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def test_the_documented_example_is_valid():
    file = load_file(EXAMPLE)
    config = build(file.values, file.charts)
    assert (config.schedule.interval, config.schedule.jitter) == (3600, 30)
    policy = config.settings.policy
    assert (policy.concurrency, policy.timeout, policy.retries) == (8, 30, 3)
    assert config.charts[1] == ChartSpec(
        "apple", "top-grossing", "ipad", "6014", ("us", "gb", "jp", "kr", "cn"), 50
    )
    assert (policy.play_interval, policy.max_body) == (1.0, 4 * 2**20)
    assert config.charts[2] == ChartSpec(
        "play", "top-free", None, "GAME", ("us", "jp", "de", "br", "in"), 100
    )
    requests = requests_for_all(config.charts)
    assert len(requests) == 175 + 5 + 5


def test_the_example_names_every_setting():
    text = EXAMPLE.read_text(encoding="utf-8")
    unset = [s.key for s in SETTINGS if not re.search(rf"^#? ?{s.key} = ", text, re.M)]
    assert unset == []


@pytest.mark.parametrize(
    ("option", "key", "value", "expected"),
    [
        ("--timeout", "timeout", "99999", "a number of seconds from 0.1 to 3600, not "),
        ("--concurrency", "concurrency", "0", "an integer from 1 to 64, not "),
        ("--interval", "interval", "'0.5s'", "interval '0.5s' is too short"),
        ("--play-url", "play_url", "'ftp://x'", "an http(s) URL with a host, not "),
        ("--milestones", "milestones", "'1,0'", "storefront counts from 1 to 1000"),
    ],
)
def test_options_and_the_file_refuse_the_same_values(
    tmp_path, run_monitor, stand_in, option, key, value, expected
):
    from_file = run_monitor("run", "--config", str(write(tmp_path, f"{key} = {value}")))
    from_option = run_monitor("run", option, value.strip("'"))
    assert (from_file.returncode, from_option.returncode) == (2, 2)
    assert expected in from_file.stderr
    assert expected in from_option.stderr
    assert stand_in.requests == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("intervall = '1h'", "unknown key(s) 'intervall'; allowed keys are interval, jitter"),
        (
            "interval = 60",
            "'interval': must be a duration such as 90s, 15m or 1h, at least 1s, not 60",
        ),
        ("interval = 'soon'", "invalid duration 'soon'"),
        ("concurrency = 0", "'concurrency': must be an integer from 1 to 64, not 0"),
        ("retries = 2.5", "'retries': must be an integer from 0 to 10, not 2.5"),
        ("timeout = 99999", "'timeout': must be a number of seconds from 0.1 to 3600, not 99999"),
        ("max_body = 4", "'max_body': must be a size such as 4MB or 512KB, not 4"),
        ("charts = []", "'charts' must be a list of [[charts]] tables"),
        ("[[charts]]\nchrt = 'top-free'", "charts[0]: unknown key(s) 'chrt'"),
        ("[[charts]]\ncountries = 'us'", "charts[0]: 'countries' must be \"all\" or a list"),
        ("[[charts]]\ngenre = 6014", "charts[0]: 'genre' must be a store category id, as text"),
        ("[[charts]]\ndepth = '10'", "charts[0]: 'depth' must be an integer"),
        ("interval = ", "is not valid TOML"),
        ("public = 'yes'", "'public': must be true or false"),
    ],
)
def test_bad_config_names_the_key_and_the_allowed_values(tmp_path, text, message):
    with pytest.raises(UsageError) as error:
        load_file(write(tmp_path, text))
    assert message in str(error.value)


def test_milestones_read_alike_from_an_option_and_the_file(tmp_path):
    assert BY_KEY["milestones"].read("50, 1,10,10") == (1, 10, 50)
    assert load_file(write(tmp_path, "milestones = [25, 5]")).values["milestones"] == (5, 25)
    assert build({}).settings.events.milestones == (1, 10, 25, 50, 100)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read config .*nope.toml: No such file"):
        load_file(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("0.5s", 0.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h 30m", "-1s"])
def test_bad_durations(text):
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4MB", 4 * 2**20), ("512KB", 512 * 1024), ("1.5 MiB", 3 * 2**19), ("2048", 2048)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "message"), [("lots", "invalid size"), ("100", "too small")])
def test_bad_sizes(text, message):
    with pytest.raises(UsageError, match=message):
        parse_size(text)


def test_collect_uses_the_configured_charts(tmp_path, run_monitor, stand_in):
    path = write(tmp_path, '[[charts]]\nchart = "top-paid"\ncountries = ["us", "jp"]\ndepth = 20\n')
    result = run_monitor("collect", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert sorted(stand_in.requests) == [
        "/api/v2/jp/apps/top-paid/20/apps.json",
        "/api/v2/us/apps/top-paid/20/apps.json",
    ]


def test_selection_flags_win_over_the_configured_charts(tmp_path, run_monitor, stand_in):
    path = write(tmp_path, '[[charts]]\ncountries = ["us", "jp"]\n')
    result = run_monitor("collect", "--config", str(path), "--country", "fr", "--depth", "5")
    assert result.returncode == 0, result.stderr
    assert stand_in.requests == ["/api/v2/fr/apps/top-free/5/apps.json"]


def test_a_config_chart_the_store_lacks_exits_2_naming_it(tmp_path, run_monitor, stand_in):
    path = write(tmp_path, '[[charts]]\nchart = "top-grossing"\ncountries = ["us", "zz"]\n')
    result = run_monitor("collect", "--config", str(path))
    assert result.returncode == 2
    assert "config charts: unknown country code(s) for App Store: zz" in result.stderr
    assert stand_in.requests == []


def test_bad_config_exits_2_before_fetching(tmp_path, run_monitor, stand_in):
    result = run_monitor("run", "--config", str(write(tmp_path, "jitter = 5")), timeout=30)
    assert result.returncode == 2
    assert "'jitter': must be a duration such as 90s, 15m or 1h, not 5" in result.stderr
    assert stand_in.requests == []


def test_config_can_come_from_monitor_config(tmp_path, run_monitor, stand_in, monitor_env):
    monitor_env["MONITOR_CONFIG"] = str(write(tmp_path, '[[charts]]\ncountries = ["gb"]\n'))
    assert run_monitor("collect").returncode == 0
    assert stand_in.requests == ["/api/v2/gb/apps/top-free/100/apps.json"]
