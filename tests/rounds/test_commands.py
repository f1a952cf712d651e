import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from . import builders


def run(*args):
    out = StringIO()
    call_command("coverage", *args, stdout=out)
    return out.getvalue()


def test_coverage_command_prints_the_tree_and_json(city):
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    text = run(str(training_round.pk))
    assert "示范市委 (CITY)" in text and "  城关区委 (A)" in text and "50.0%" in text
    data = json.loads(run(str(training_round.pk), "--json"))
    city_row = data["organizations"][0]
    assert (city_row["in_scope"], city_row["completed"], city_row["coverage"]) == (2, 1, 50.0)
    county_a = next(c for c in city_row["children"] if c["code"] == "A")
    assert county_a["coverage"] == 100.0
    assert county_a["children"][0]["code"] == "A-01"
    data = json.loads(run(str(training_round.pk), "--json", "--org", "B", "--depth", "0"))
    assert data["organizations"][0]["children"] == []
    assert data["organizations"][0]["not_started"] == 1


def test_coverage_command_errors(city):
    with pytest.raises(CommandError):
        run("999")
    training_round = builders.training_round([city.root])
    with pytest.raises(CommandError):
        run(str(training_round.pk), "--org", "NOPE")
