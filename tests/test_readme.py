"""The README's examples say what the commands print today."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import scenario

README = Path(__file__).parent.parent / "README.md"


def example(command: str) -> list[str]:
    """Return the lines the README shows under ``$ monitor COMMAND`` ('...' elides)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(rf"^\$ monitor {re.escape(command)}\n(.*?)^```", text, re.M | re.S)
    assert block, f"no example of 'monitor {command}' in the README"
    return block.group(1).splitlines()


def in_order(shown: list[str], printed: list[str]) -> list[str]:
    """Return the shown lines missing from what was printed, or printed out of order."""
    missing, at = [], 0
    for line in shown:
        if line == "...":
            continue
        try:
            at = printed.index(line, at) + 1
        except ValueError:
            missing.append(line)
    return missing


def test_the_claim_example_is_what_claim_prints_on_the_scenario(run_monitor, db_path):
    scenario.build(db_path)
    command = 'claim "deepseek - ai" --at 2025-01-27T09:00:00Z'
    result = run_monitor(*shlex.split(command))
    assert result.returncode == 0, result.stderr
    assert in_order(example(command), result.stdout.splitlines()) == []


def test_a_line_the_claim_does_not_print_is_caught(run_monitor, db_path):
    scenario.build(db_path)
    result = run_monitor("claim", "deepseek - ai", "--at", "2025-01-27T09:00:00Z")
    stale = "  us          1  2025-01-27T09:00:00Z  2025-01-26T08:00:00Z  25h, 2025-01-26T08:00:00Z"
    assert in_order([stale], result.stdout.splitlines()) == [stale]
