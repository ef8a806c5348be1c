"""Claim semantics on built histories: phases, gaps, stale observations and renames."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import scenario
from helpers import chart
from history import filler, observe, ranked
from monitor import claims, schema, storage
from monitor.cli import cli


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return scenario.build(tmp_path_factory.mktemp("claims") / "rankings.db")


@pytest.fixture
def db(db_path):
    return schema.open_db(db_path)


def chart_key(answer):
    return (answer["store"], answer["chart"], answer["device"], answer["genre"])


def claim_at(db, at):
    app = claims.find_app(db, scenario.APP_ID)
    return {chart_key(c): c for c in claims.claim(db, app, at).to_json()["charts"]}


IPHONE_FREE = ("apple", "top-free", "iphone", None)


def test_between_the_phases_the_claim_is_phase_one(db):
    free = claim_at(db, scenario.T1)[IPHONE_FREE]
    assert free["countries_observed"] == 5
    assert free["observed"] == ["ca", "fr", "gb", "jp", "us"]
    assert free["not_observed"] == ["de"]
    assert free["number_one"] == ["ca", "gb", "us"]
    assert free["top_10"] == ["ca", "gb", "jp", "us"]
    assert free["top_100"] == ["ca", "gb", "jp", "us"]
    assert free["ranks"] == {"ca": 1, "gb": 1, "jp": 5, "us": 1}


def test_after_phase_two_a_stale_country_is_not_observed(db):
    free = claim_at(db, scenario.T2)[IPHONE_FREE]
    assert free["not_observed"] == ["ca"]
    assert free["countries_observed"] == 5
    assert free["number_one"] == ["de", "jp", "us"]
    assert free["top_10"] == ["de", "fr", "jp", "us"]
    assert free["top_100"] == ["de", "fr", "gb", "jp", "us"]


def test_a_rename_does_not_break_a_stretch_at_number_one(db):
    # us was renamed at T1, and stayed No. 1.
    free = claim_at(db, scenario.T1)[IPHONE_FREE]
    assert free["number_one_since"] == {"ca": scenario.T0, "gb": scenario.T0, "us": scenario.T0}
    assert free["longest_number_one"]["us"] == {
        "from": scenario.T0,
        "to": scenario.T1,
        "hours": 1.0,
    }


def test_a_gap_longer_than_max_age_ends_a_stretch(db):
    # Nothing was observed for the 24 hours between T1 and T2.
    free = claim_at(db, scenario.T2)[IPHONE_FREE]
    assert free["number_one_since"] == {"de": scenario.T2, "jp": scenario.T2, "us": scenario.T2}
    assert free["longest_number_one"]["us"] == {
        "from": scenario.T0,
        "to": scenario.T1,
        "hours": 1.0,
    }
    assert free["longest_number_one"]["gb"] == {
        "from": scenario.T0,
        "to": scenario.T1,
        "hours": 1.0,
    }
    app = claims.find_app(db, scenario.APP_ID)
    patient = claims.claim(db, app, scenario.T2, max_age=25 * 3600).to_json()["charts"]
    us = next(c for c in patient if chart_key(c) == IPHONE_FREE)
    assert us["number_one_since"]["us"] == scenario.T0
    assert us["longest_number_one"]["us"]["hours"] == 25.0


def test_peak_is_the_sweep_with_most_countries_at_number_one_earliest_first(db):
    assert claim_at(db, scenario.T2)[IPHONE_FREE]["peak_number_one"] == {
        "countries": 3,
        "at": scenario.T0,
    }
    assert claim_at(db, "2025-01-26T08:30:00Z")[IPHONE_FREE]["peak_number_one"] == {
        "countries": 3,
        "at": scenario.T0,
    }


def test_each_chart_is_answered_on_its_own(db):
    charts = claim_at(db, scenario.T2)
    ipad = charts[("apple", "top-free", "ipad", None)]
    assert (ipad["countries_observed"], ipad["number_one"], ipad["top_10"]) == (1, [], ["us"])
    paid = charts[("apple", "top-paid", "iphone", None)]
    assert (paid["countries_observed"], paid["top_100"]) == (1, [])


def test_before_anything_was_observed_nothing_is_claimed(db):
    free = claim_at(db, "2025-01-01T00:00:00Z")[IPHONE_FREE]
    assert free["countries_observed"] == 0
    assert free["number_one"] == []
    assert sorted(free["not_observed"]) == ["ca", "de", "fr", "gb", "jp", "us"]


def test_a_shorter_max_age_observes_fewer_countries(db):
    app = claims.find_app(db, scenario.APP_ID)
    late = claims.claim(db, app, "2025-01-26T09:30:00Z", max_age=3600).to_json()
    free = next(c for c in late["charts"] if c["device"] == "iphone" and c["chart"] == "top-free")
    assert free["not_observed"] == ["ca", "de"]


def test_apps_are_found_by_id_or_any_name_they_had(db):
    assert claims.find_app(db, scenario.APP_ID).app_id == scenario.APP_ID
    assert claims.find_app(db, "deepseek - ai").app_id == scenario.APP_ID
    assert claims.find_app(db, "helper").app_id == scenario.OTHER[0]
    with pytest.raises(claims.AmbiguousApp) as error:
        claims.find_app(db, "deepseek")
    assert scenario.APP_ID in str(error.value) and scenario.OTHER[0] in str(error.value)
    with pytest.raises(claims.AppNotFound):
        claims.find_app(db, "nothing like it")
    with pytest.raises(claims.AppNotFound):
        claims.find_app(db, "%")


def test_claim_json_from_the_command_line(db_path):
    result = CliRunner().invoke(
        cli,
        ["claim", scenario.APP_ID, "--at", "2025-01-26T09:00:00", "--json", "--db", str(db_path)],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["app"] == {"store": "apple", "app_id": scenario.APP_ID, "name": scenario.NEW_NAME}
    assert answer["at"] == scenario.T1
    free = next(c for c in answer["charts"] if chart_key(c) == IPHONE_FREE)
    assert free["number_one"] == ["ca", "gb", "us"]
    assert (free["top_10"], free["top_100"]) == (["ca", "gb", "jp", "us"], ["ca", "gb", "jp", "us"])


def test_claim_table_for_people(db_path):
    result = CliRunner().invoke(
        cli, ["claim", "DeepSeek - AI", "--at", scenario.T2, "--db", str(db_path)]
    )
    assert result.exit_code == 0, result.output
    assert "observed in 5 countries, not observed in 1" in result.output
    assert "No. 1 in 3: de, jp, us" in result.output
    assert "Peak at No. 1: 3 countries, in the sweep of 2025-01-26T08:00:00Z" in result.output
    assert f"us United States            1  {scenario.T2}  {scenario.T2}  1h, {scenario.T0} to" in (
        result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deepseek"], "2 apps match 'deepseek'"),
        (["nope"], "no app has the id 'nope'"),
        ([scenario.APP_ID, "--at", "yesterday"], "invalid time 'yesterday'"),
    ],
)
def test_claim_usage_errors_exit_2(db_path, args, message):
    result = CliRunner().invoke(cli, ["claim", *args, "--db", str(db_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_a_shallow_observation_says_how_deep_it_went(tmp_path):
    db = schema.open_db(tmp_path / "rankings.db")
    sweep = storage.begin_sweep(db, scenario.T0)
    app = ("555", "Pokémon GO")
    observe(db, sweep, chart("us"), scenario.T0, ranked(app, 50, size=60))
    observe(db, sweep, chart("us", depth=10), scenario.T1, filler(10))
    free = claim_at_app(db, "555", scenario.T1)
    assert free["observed"] == ["us"]
    assert free["ranks"] == {}
    assert free["shallow"] == {"us": 10}
    assert free["top_100"] == []


def test_names_match_case_insensitively_beyond_ascii(tmp_path):
    db = schema.open_db(tmp_path / "rankings.db")
    sweep = storage.begin_sweep(db, scenario.T0)
    observe(db, sweep, chart("fr"), scenario.T0, [("555", "Pokémon GO"), ("556", "ÉCLAIR")])
    assert claims.find_app(db, "POKÉMON").app_id == "555"
    assert claims.find_app(db, "éclair").app_id == "556"
    with pytest.raises(claims.AppNotFound):
        claims.find_app(db, "pokemon")


def claim_at_app(db, app_id, at):
    answer = claims.claim(db, claims.find_app(db, app_id), at).to_json()
    return next(c for c in answer["charts"] if chart_key(c) == IPHONE_FREE)
