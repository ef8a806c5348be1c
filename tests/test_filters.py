"""Every filter of the rankings view is served by an index: none scans the history."""

from __future__ import annotations

import pytest

import scenario
from monitor import schema


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = schema.open_db(scenario.build(tmp_path_factory.mktemp("filters") / "r.db"))
    yield database
    database.close()


def columns(db):
    return [row[1] for row in db.execute("PRAGMA table_info(rankings)")]


def plan(db, where):
    sql = f"EXPLAIN QUERY PLAN SELECT * FROM rankings WHERE {where}"
    return [row[3] for row in db.execute(sql)]


def test_the_view_has_the_columns_these_tests_filter_on(db):
    assert len(columns(db)) == 11


@pytest.mark.parametrize("operator", ["= 'x'", "IN ('x', 'y')"])
def test_no_equality_filter_scans_a_table(db, operator):
    for column in columns(db):
        steps = plan(db, f'"{column}" {operator}')
        assert not [step for step in steps if step.startswith("SCAN")], (column, steps)


@pytest.mark.parametrize("operator", [">", "<"])
@pytest.mark.parametrize("column", ["snapshot_id", "fetched_at", "rank"])
def test_no_range_filter_on_an_ordered_column_scans_a_table(db, operator, column):
    steps = plan(db, f'"{column}" {operator} 7')
    assert not [step for step in steps if step.startswith("SCAN")], steps


def test_without_the_migrations_indexes_a_filter_scans_the_runs(db):
    db.execute("DROP INDEX idx_charts_country")
    try:
        assert any(step.startswith("SCAN r") for step in plan(db, "country = 'x'"))
    finally:
        target = schema.RANKINGS_FILTER_INDEXES["idx_charts_country"]
        db.execute(f"CREATE INDEX idx_charts_country ON {target}")
