"""The deployment: the compose file, the Dockerfile and the entrypoint script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from monitor import schema
from monitor.cli import cli

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker-entrypoint.sh"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
    )


def services() -> dict[str, Any]:
    """Read the compose file's services, with its YAML merge keys resolved."""
    return yaml.safe_load(COMPOSE.read_text())["services"]


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute ${NAME:-default} as Compose does; refuse any other substitution."""
    done = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], text)
    assert "$" not in done, text
    return done


def seconds(duration: str) -> int:
    """Read a Compose duration such as 30s, 5m or 1m30s."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, duration
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def given(instruction: str) -> list[str]:
    """Read the arguments of each of the Dockerfile's instructions of one kind."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == instruction:
            found.append(" ".join(arguments.split()))
    return found


def test_compose_file_passes_the_compose_spec_schema():
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_compose_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace("restart: unless-stopped", "restart: [unless-stopped]", 1)
    )
    assert validate(broken).returncode != 0


def test_collector_and_datasette_run_apart_with_the_contracted_commands():
    found = services()
    assert set(found) == {"collector", "datasette"}
    assert found["collector"]["command"] == ["monitor", "run", "--no-serve"]
    assert found["datasette"]["command"] == [
        *("monitor", "serve", "--host", "0.0.0.0", "--port", "8001", "--public")
    ]
    for service in found.values():
        assert service["volumes"] == ["./data:/app/data"]
        assert service["restart"] == "unless-stopped"
        assert service["environment"]["MONITOR_DB"] == "/app/data/rankings.db"


def test_one_image_is_built_once_and_run_by_both_services():
    found = services()
    assert [name for name, service in found.items() if "build" in service] == ["collector"]
    images = {service.get("image") for service in found.values()}
    assert len(images) == 1 and None not in images
    # No registry has the image: a pull would fail, where a build is what is needed.
    assert {service.get("pull_policy") for service in found.values()} == {"never"}


def test_datasette_is_published_on_loopback_unless_the_operator_says_otherwise():
    found = services()
    assert "ports" not in found["collector"]
    (port,) = found["datasette"]["ports"]
    assert interpolate(port, {}) == "127.0.0.1:8001:8001"
    assert interpolate(port, {"MONITOR_PUBLISH": "0.0.0.0:80"}) == "0.0.0.0:80:8001"


def test_both_services_have_health_checks_that_ask_monitor():
    found = services()
    collector = found["collector"]["healthcheck"]
    # Through the entrypoint: as monitor, not root, so a log SQLite makes stays monitor's.
    assert collector["test"] == ["CMD", "docker-entrypoint.sh", "monitor", "health"]
    # Long enough for the first sweep of a fresh database; then a look every few minutes.
    assert seconds(collector["start_period"]) >= 10 * 60
    assert 60 <= seconds(collector["interval"]) <= 10 * 60

    datasette = found["datasette"]["healthcheck"]
    assert datasette["test"] == ["CMD", "monitor", "health", "--server", "http://127.0.0.1:8001"]
    # The check asks the port Datasette serves on, inside the container.
    command = found["datasette"]["command"]
    served = int(command[command.index("--port") + 1])
    published = interpolate(found["datasette"]["ports"][0], {})
    assert urlsplit(datasette["test"][-1]).port == served == int(published.rsplit(":", 1)[1])


def test_a_config_named_in_the_environment_reaches_both_services_and_checks():
    config = "/app/data/monitor.toml"
    for service in services().values():
        given = service["environment"]["MONITOR_CONFIG"]
        assert interpolate(given, {}) == ""
        assert interpolate(given, {"MONITOR_CONFIG": config}) == config


def test_a_blank_monitor_config_means_no_config_file(tmp_path):
    # The compose file sets MONITOR_CONFIG to blank when the operator names no config.
    db = tmp_path / "rankings.db"
    schema.open_db(db).close()
    runner = CliRunner()
    blank = runner.invoke(cli, ["health", "--db", str(db)], env={"MONITOR_CONFIG": ""})
    assert blank.exit_code == 1, blank.output
    assert "no sweep has finished yet" in blank.output
    missing = str(tmp_path / "monitor.toml")
    named = runner.invoke(cli, ["health", "--db", str(db)], env={"MONITOR_CONFIG": missing})
    assert named.exit_code == 2, named.output


def test_the_image_is_pinned_and_starts_through_the_entrypoint():
    (base,) = given("FROM")
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-[a-z]+)?", base), base
    (entrypoint,) = [json.loads(arguments) for arguments in given("ENTRYPOINT")]
    assert len(entrypoint) == 1
    assert f"{ENTRYPOINT.name} {entrypoint[0]}" in given("COPY")
    (command,) = [json.loads(arguments) for arguments in given("CMD")]
    assert command == ["monitor", "run", "--no-serve"]


def test_the_image_creates_monitor_with_uid_1000_and_leaves_dropping_root_to_the_entrypoint():
    runs = " && ".join(given("RUN"))
    assert re.search(r"\buseradd\b[^&;]*--uid[ =]1000\b[^&;]*\bmonitor\b", runs), runs
    assert given("USER") == []


def test_the_entrypoint_is_an_executable_posix_script_for_the_mounted_folder():
    assert os.access(ENTRYPOINT, os.X_OK)
    lines = ENTRYPOINT.read_text().splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in lines
    default = re.search(r"\$\{MONITOR_DATA_DIR:-([^}]+)\}", ENTRYPOINT.read_text())
    assert default, "the data folder must be MONITOR_DATA_DIR, with a default"
    for service in services().values():
        assert service["volumes"][0].split(":")[1] == default[1]


def fake_tools(tmp_path: Path, uid: int, monitor_uid: int) -> Path:
    """Put stand-ins for id, setpriv and chown first on PATH; the last two log each call."""
    tools = tmp_path / "bin"
    tools.mkdir()
    scripts = {
        "id": (
            f'case "$*" in -u) echo {uid} ;; "-u monitor") echo {monitor_uid} ;; *) exit 9 ;; esac'
        ),
        "setpriv": f'printf "%s\\n" "$@" > "{tools}/setpriv.log"',
        "chown": f'printf "%s\\n" "$@" >> "{tools}/chown.log"; echo >> "{tools}/chown.log"',
    }
    for name, body in scripts.items():
        (tools / name).write_text(f"#!/bin/sh\n{body}\n")
        (tools / name).chmod(0o755)
    return tools


def run_entrypoint(tools: Path, data: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "MONITOR_DATA_DIR": str(data),
    }
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True
    )


def chown_calls(tools: Path) -> list[list[str]]:
    log = tools / "chown.log"
    if not log.exists():
        return []
    return [call.splitlines() for call in log.read_text().split("\n\n") if call]


def data_folder(tmp_path: Path) -> Path:
    """A data folder as a host leaves it: the database, a subfolder, a symlink out."""
    data = tmp_path / "data"
    (data / "backups").mkdir(parents=True)
    for name in ("rankings.db", "rankings.db-wal", "backups/rankings-2026-11-29.db"):
        (data / name).touch()
    (data / "elsewhere").symlink_to(tmp_path / "outside")
    return data


def test_started_as_another_user_the_entrypoint_runs_the_command_as_given(tmp_path):
    tools = fake_tools(tmp_path, uid=1000, monitor_uid=1000)
    data = data_folder(tmp_path)
    result = run_entrypoint(tools, data, "printf", "%s|", "two words", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "two words|hello|"
    assert run_entrypoint(tools, data, "sh", "-c", "exit 3").returncode == 3
    assert not (tools / "setpriv.log").exists()
    assert chown_calls(tools) == []


def test_started_as_root_it_hands_the_data_folder_to_monitor_then_drops_to_it(tmp_path):
    # monitor owns nothing here yet: everything at the top of the folder is handed over.
    tools = fake_tools(tmp_path, uid=0, monitor_uid=os.getuid() + 1)
    data = data_folder(tmp_path)
    result = run_entrypoint(tools, data, "monitor", "run", "--no-serve")
    assert result.returncode == 0, result.stderr

    calls = chown_calls(tools)
    assert calls and all(call[:2] == ["-h", "monitor:monitor"] for call in calls)
    handed = {path for call in calls for path in call[2:]}
    assert handed == {
        str(data),
        str(data / "rankings.db"),
        str(data / "rankings.db-wal"),
        str(data / "backups"),
        str(data / "elsewhere"),
    }
    setpriv = (tools / "setpriv.log").read_text().splitlines()
    assert setpriv == [
        *("--reuid=monitor", "--regid=monitor", "--init-groups"),
        *("monitor", "run", "--no-serve"),
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to uid 1000 takes root")
def test_started_as_root_it_leaves_what_monitor_already_owns(tmp_path):
    tools = fake_tools(tmp_path, uid=0, monitor_uid=1000)
    data = data_folder(tmp_path)
    for mine in (data, data / "rankings.db-wal", data / "backups"):
        os.chown(mine, 1000, 1000)
    result = run_entrypoint(tools, data, "monitor", "run", "--no-serve")
    assert result.returncode == 0, result.stderr
    handed = {path for call in chown_calls(tools) for path in call[2:]}
    assert handed == {str(data / "rankings.db"), str(data / "elsewhere")}
