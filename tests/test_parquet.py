"""monitor export parquet: the history as Parquet, read back by DuckDB.

The claim's counts from DuckDB over an export, by the query docs/parquet.md gives, are
those of monitor claim; the rankings read back are the rankings view's, row for row;
and each export adds only what is new.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from helpers import query
from monitor import export
from monitor.locks import exclusive

DOCS = Path(__file__).parent.parent / "docs" / "parquet.md"
DEMO_APP, RIVAL = "6700000001", "6700000002"
RANKINGS_VIEW = (
    "SELECT snapshot_id, store, chart, country, device, genre, fetched_at, rank, app_id, "
    "app_name FROM rankings ORDER BY snapshot_id, rank"
)
RANKINGS_READ = """SELECT r.snapshot_id, r.store, r.chart, r.country, r.device, r.genre,
  strftime(r.fetched_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'), r.rank, r.app_id, n.name
FROM read_parquet('{dir}/rankings/**/*.parquet', hive_partitioning = true) r
JOIN read_parquet('{dir}/names/*.parquet') n ON n.id = r.name_id
ORDER BY r.snapshot_id, r.rank"""
FETCHES_VIEW = (
    "SELECT id, store, chart, country, device, genre, started_at, status, http_status, error, "
    "error_kind, snapshot_id FROM fetches ORDER BY coalesce(snapshot_id, 0), coalesce(id, 0)"
)
FETCHES_READ = """SELECT id, store, chart, country, device, genre,
  strftime(started_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'), status, http_status, error,
  error_kind, snapshot_id
FROM read_parquet('{dir}/fetches/**/*.parquet', hive_partitioning = true)
ORDER BY coalesce(snapshot_id, 0), coalesce(id, 0)"""


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo database (a weekend of 175 storefronts, three failing at the end), exported."""
    folder = tmp_path_factory.mktemp("demo")
    db, out = folder / "demo.db", folder / "export"
    assert monitor("demo", "--db", str(db)).returncode == 0
    result = monitor("export", "parquet", str(out), "--db", str(db))
    assert result.returncode == 0, result.stderr
    return db, out


def documented_claim() -> str:
    """The DuckDB claim of docs/parquet.md, as written there."""
    section = DOCS.read_text().split("## The claim in DuckDB", 1)[1]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


def duckdb_claim(folder: Path, app_id: str, at: str) -> list[tuple[object, ...]]:
    """Run the documented query against the export in folder, for app_id at the time at."""
    sql = documented_claim().replace("'export/", f"'{folder}/")
    sql = re.sub(r"app_id = '\d+'", f"app_id = '{app_id}'", sql, count=1)
    sql = re.sub(r"TIMESTAMPTZ '[^']+'", f"TIMESTAMPTZ '{at}'", sql, count=1)
    with duckdb.connect() as con:
        *settings, question = [s for s in sql.split(";\n") if s.strip()]
        for setting in settings:
            con.execute(setting)
        return con.execute(question).fetchall()


def cli_claim(db: Path, app_id: str, at: str) -> list[tuple[object, ...]]:
    result = monitor("claim", app_id, "--at", at, "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    return [
        (
            c["store"],
            c["chart"],
            c["device"],
            c["genre"],
            len(c["number_one"]),
            len(c["top_10"]),
            len(c["top_100"]),
            c["countries_observed"],
            len(c["not_observed"]),
        )
        for c in json.loads(result.stdout)["charts"]
    ]


@pytest.mark.parametrize(
    "at",
    [
        "2025-01-23T12:00:00Z",  # before the first sweep: never observed
        "2025-01-24T00:30:00Z",  # the first sweep
        "2025-01-25T12:00:00Z",  # half way up
        "2025-01-26T23:30:00Z",  # the last sweep, three storefronts failing (stale)
        "2025-01-27T04:00:00Z",  # later, within the max age
        "2025-01-27T06:00:00Z",  # past the max age: nothing observed
    ],
)
@pytest.mark.parametrize("app_id", [DEMO_APP, RIVAL])
def test_duckdb_over_the_export_counts_what_monitor_claim_counts(demo_export, app_id, at):
    db, folder = demo_export
    expected = cli_claim(db, app_id, at)
    assert expected and sum(row[7] + row[8] for row in expected) == 175
    assert duckdb_claim(folder, app_id, at.replace("T", " ").replace("Z", "+00")) == expected


def test_the_demo_export_holds_every_observation_and_rank(demo_export):
    db, folder = demo_export
    with duckdb.connect() as con:
        observations, rankings = con.execute(
            f"""SELECT (SELECT count(*) FROM read_parquet('{folder}/observations/**/*.parquet')),
                       (SELECT count(*) FROM read_parquet('{folder}/rankings/**/*.parquet'))"""
        ).fetchone()
        months = con.execute(
            f"""SELECT DISTINCT store, chart, month FROM read_parquet(
                  '{folder}/rankings/**/*.parquet', hive_partitioning = true)"""
        ).fetchall()
    assert (observations, rankings) == query(db, "SELECT COUNT(*), SUM(size) FROM snapshots")[0]
    assert months == [("apple", "top-free", "2025-01")]
    assert fetches_back(folder) == query(db, FETCHES_VIEW)


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "_export.lock"
    }


def read_back(folder: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(RANKINGS_READ.format(dir=folder)).fetchall()


def test_each_export_adds_only_what_is_new_and_reads_back_as_the_view(
    run_monitor, stand_in, db_path, tmp_path
):
    out = tmp_path / "export"
    assert run_monitor("collect").returncode == 0
    first = run_monitor("export", "parquet", str(out))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{out}: wrote 175 charts, ")
    before = files(out)

    stand_in.version += 1  # every chart changes
    stand_in.faults = {"jp": "500"}  # and one fails
    assert run_monitor("collect").returncode == 1
    second = run_monitor("export", "parquet", str(out))
    assert second.returncode == 0, second.stderr
    after = files(out)
    assert {name: after[name] for name in before if name != "_export.json"} == {
        name: data for name, data in before.items() if name != "_export.json"
    }
    added = sorted(set(after) - set(before))
    # The successful fetches' part is named by their snapshots; the failure's, by its attempt.
    assert added == [
        f"{table}/store=apple/chart=top-free/month={month_of(db_path)}/{part}.parquet"
        for table, part in (
            ("fetches", "ok-000000000176-000000000349"),
            ("fetches", "part-000000000001-000000000001"),
            ("observations", "part-000000000176-000000000349"),
            ("rankings", "part-000000000176-000000000349"),
        )
    ]
    assert second.stdout == (
        f"{out}: wrote 174 observations, 17,400 rankings, 175 fetches in 4 files\n"
    )
    assert read_back(out) == query(db_path, RANKINGS_VIEW)
    assert fetches_back(out) == query(db_path, FETCHES_VIEW)

    third = run_monitor("export", "parquet", str(out))
    assert third.stdout == f"{out}: nothing new to export\n"
    assert files(out) == after


def month_of(db_path: Path) -> str:
    return str(query(db_path, "SELECT substr(MAX(fetched_at), 1, 7) FROM snapshots")[0][0])


def fetches_back(folder: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(FETCHES_READ.format(dir=folder)).fetchall()


def test_an_export_cut_short_is_made_whole_by_the_next(run_monitor, db_path, tmp_path):
    out = tmp_path / "export"
    assert run_monitor("collect").returncode == 0
    assert run_monitor("export", "parquet", str(out)).returncode == 0
    whole = files(out)
    # What an export killed half way leaves: parts past _export.json, and a temporary file.
    partition = next((out / "rankings").rglob("part-*.parquet")).parent
    (partition / "part-000000000176-000000000350.parquet").write_bytes(b"half")
    (partition / "part-000000000176-000000000350.parquet.tmp").write_bytes(b"half")
    fetches = out / "fetches" / partition.relative_to(out / "rankings")
    (fetches / "ok-000000000176-000000000400.parquet").write_bytes(b"half")
    assert run_monitor("collect").returncode == 0
    assert run_monitor("export", "parquet", str(out)).returncode == 0
    assert set(files(out)) - set(whole) == {
        f"{kind}/{partition.relative_to(out / 'rankings')}/{part}-000000000176-000000000350.parquet"
        for kind, part in (("observations", "part"), ("rankings", "part"), ("fetches", "ok"))
    }
    assert read_back(out) == query(db_path, RANKINGS_VIEW)
    assert fetches_back(out) == query(db_path, FETCHES_VIEW)


def test_a_folder_that_is_no_export_or_is_in_use_is_refused(run_monitor, db_path, tmp_path):
    assert run_monitor("collect").returncode == 0
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    refused = run_monitor("export", "parquet", str(other))
    assert refused.returncode == 2
    assert f"{other} is not empty and holds no _export.json" in refused.stderr
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]

    busy = tmp_path / "export"
    busy.mkdir()
    with exclusive(busy / "_export.lock", lambda pid: AssertionError("held twice")):
        result = run_monitor("export", "parquet", str(busy))
    assert result.returncode == 2
    assert "is being exported to by another process (pid " in result.stderr
    assert not (busy / "_export.json").exists()


def test_a_folder_that_cannot_be_written_is_said_plainly(run_monitor, tmp_path):
    assert run_monitor("collect").returncode == 0
    (tmp_path / "a-file").write_text("")
    result = run_monitor("export", "parquet", str(tmp_path / "a-file" / "export"))
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: cannot write the export to {tmp_path / 'a-file' / 'export'}: Not a directory\n"
    )


def test_without_pyarrow_the_export_says_how_to_get_it(monkeypatch, db_path, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(export.ExportError, match=r"pip install 'monitor\[parquet\]'"):
        export.export_parquet(db_path, tmp_path / "export")
