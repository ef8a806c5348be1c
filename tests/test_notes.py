"""monitor note: what happened when, on an app's timeline, published in the notes table."""

from __future__ import annotations

import pytest

import scenario
from helpers import query


@pytest.fixture
def scenario_db(db_path):
    return scenario.build(db_path)


def test_a_note_is_stored_for_the_app_a_name_means(run_monitor, scenario_db):
    result = run_monitor(
        "note", "deepseek - ai", "Version 2 out", "--at", "2025-01-26T12:00:00+02:00",
        "--url", "https://example.com/v2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"note 1 on DeepSeek (apple {scenario.APP_ID}) at 2025-01-26T10:00:00Z\n"
    )
    assert query(scenario_db, "SELECT store, app_id, at, text, url FROM notes") == [
        (
            "apple",
            scenario.APP_ID,
            "2025-01-26T10:00:00Z",
            "Version 2 out",
            "https://example.com/v2",
        )
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nothing like it", "text"), "no app has the id 'nothing like it' or a name containing"),
        (("deepseek", "text"), "2 apps match 'deepseek'"),
        ((scenario.APP_ID, "   "), "a note needs some text"),
        ((scenario.APP_ID, "x" * 1001), "a note holds at most 1000 characters, not 1001"),
        ((scenario.APP_ID, "text", "--url", "javascript:alert(1)"), "--url must be an http(s)"),
        ((scenario.APP_ID, "text", "--at", "yesterday"), "invalid time 'yesterday'"),
    ],
)
def test_a_note_that_cannot_be_kept_is_refused_and_nothing_stored(
    run_monitor, scenario_db, args, message
):
    result = run_monitor("note", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert query(scenario_db, "SELECT COUNT(*) FROM notes") == [(0,)]


def test_a_note_needs_a_database(run_monitor, tmp_path):
    result = run_monitor("note", "x", "text", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "no database at" in result.stderr
    assert not (tmp_path / "none.db").exists()
