"""Help text and usage errors of every command, in process."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from monitor.cli import cli


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
    assert "is not an http(s) URL with a host" in result.output
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("command", [["status"], ["claim", "anything"]])
def test_read_commands_refuse_a_missing_database(tmp_path, command):
    missing = tmp_path / "typo" / "rankings.db"
    result = CliRunner().invoke(cli, [*command, "--db", str(missing)])
    assert result.exit_code == 2
    assert f"no database at {missing}" in result.output
    assert not missing.parent.exists()
