"""Help text and usage errors of every command, in process."""

from __future__ import annotations

import subprocess
import sys

import click
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
