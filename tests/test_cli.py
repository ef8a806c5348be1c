"""Help text and usage errors of every command, in process."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from contextlib import closing

import click
import pytest
from click.testing import CliRunner

from helpers import chart
from monitor import schema, storage
from monitor.charts import FetchResult
from monitor.cli import cli
from monitor.terminal import PrintableFormatter


def all_commands():
    yield "monitor", cli
    for name, command in cli.commands.items():
        yield f"monitor {name}", command


def test_every_command_and_option_has_help():
    for name, command in all_commands():
        assert command.help, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts}"
        result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
        assert result.exit_code == 0, name


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("monitor, version ")


def test_countries_lists_all_175_storefronts():
    result = CliRunner().invoke(cli, ["countries"])
    lines = result.output.splitlines()
    assert len(lines) == 175
    assert "us\tUnited States" in lines


def test_bad_depth_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["collect", "--depth", "101", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "depth must be between 1 and 100" in result.output


def test_unknown_genre_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["collect", "--genre", "99", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "unknown App Store genre '99'; run 'monitor genres --store apple'" in result.output


def test_depth_zero_is_a_usage_error_not_a_default(tmp_path):
    result = CliRunner().invoke(cli, ["collect", "--depth", "0", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "depth must be between 1 and 100" in result.output


@pytest.mark.parametrize("url", ["rss.example.invalid", "http://[bad", "ftp://host/x"])
def test_a_bad_store_url_is_a_configuration_error(tmp_path, url):
    result = CliRunner().invoke(
        cli, ["collect", "--db", str(tmp_path / "x.db")], env={"MONITOR_APPLE_RSS_URL": url}
    )
    assert result.exit_code == 2
    assert "must be an http(s) URL with a host, not " in result.output
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("command", [["status"], ["claim", "anything"]])
def test_read_commands_refuse_a_missing_database(tmp_path, command):
    missing = tmp_path / "typo" / "rankings.db"
    result = CliRunner().invoke(cli, [*command, "--db", str(missing)])
    assert result.exit_code == 2
    assert f"no database at {missing}" in result.output
    assert not missing.parent.exists()


def test_an_interval_below_the_minimum_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--interval", "0s", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "interval '0s' is too short: sweeps are at least 1s apart" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"interval = \xff\xfe", "is not UTF-8 text"),
        (b'interval = "0.5s"', "'interval': interval '0.5s' is too short"),
        (b'max_body = "lots"', "'max_body': invalid size 'lots'"),
    ],
)
def test_a_bad_config_file_exits_2_naming_it(tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_bytes(content)
    result = CliRunner().invoke(
        cli, ["collect", "--config", str(config), "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 2
    assert str(config) in result.output and message in result.output
    assert not (tmp_path / "x.db").exists()


def foreign_database(path):
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.commit()


@pytest.mark.parametrize("command", [["collect"], ["status"], ["claim", "x"], ["serve"]])
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.write_bytes(b"not a database at all" * 100), "is not a SQLite database"),
        (foreign_database, "is a SQLite database, but not monitor's (it holds invoices)"),
    ],
)
def test_a_file_that_is_not_a_monitor_database_exits_2_naming_it(tmp_path, command, make, message):
    path = tmp_path / "other.db"
    make(path)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, [*command, "--db", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path} {message}" in result.output
    assert path.read_bytes() == before


def test_status_escapes_control_characters_from_the_stores(tmp_path):
    db = schema.open_db(tmp_path / "r.db")
    req = chart("us")
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    hostile = "feed link says \x1b]0;pwned\x07\x1b[2J"
    storage.record(db, sweep, FetchResult(req, "t", "t", error=hostile, error_kind="invalid_feed"))
    db.close()
    result = CliRunner().invoke(cli, ["status", "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert r"feed link says \x1b]0;pwned\x07\x1b[2J" in result.output


def test_log_lines_escape_control_characters_but_keep_tracebacks():
    formatter = PrintableFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "monitor", logging.ERROR, __file__, 1, "failed: %s", ("\x1b[31mred",), sys.exc_info()
        )
    text = formatter.format(record)
    assert text.startswith(r"failed: \x1b[31mred" + "\n")
    assert "Traceback (most recent call last):\n" in text
