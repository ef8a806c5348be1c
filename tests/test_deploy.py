"""The deployment files: the compose file against the Compose specification's schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.yml"


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


def test_compose_file_passes_the_compose_spec_schema():
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_compose_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace("restart: unless-stopped", "restart: [unless-stopped]", 1)
    )
    assert validate(broken).returncode != 0


def test_two_services_share_data_with_the_contracted_commands():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["collector"]["command"] == ["monitor", "run", "--no-serve"]
    assert services["datasette"]["command"][:4] == ["monitor", "serve", "--host", "0.0.0.0"]
    for service in services.values():
        assert "./data:/app/data" in service["volumes"]
        assert service["restart"] == "unless-stopped"
    assert "healthcheck" in services["datasette"]


def test_image_runs_as_a_non_root_user_on_a_slim_base():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert lines[0].startswith("FROM python:") and lines[0].endswith("-slim")
    assert "USER monitor" in lines
