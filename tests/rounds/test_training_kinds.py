"""Training kinds on one engine: a 书记专题培训 or a 发展对象培训 is a round like the quarterly
one, started with its usual scope, chosen on the tree (whose questions stay inside the
trainer's subtree), counted before publishing, and covered, exported and printed by
``manage.py coverage`` like every round."""

import io
import json
from datetime import date

import pytest
from django.core.management import call_command
from django.urls import reverse
from openpyxl import load_workbook

from members.models import Member, Organization
from rounds.models import KIND_PRESETS, Round

from .. import factories
from . import builders

pytestmark = pytest.mark.django_db


def test_each_kind_starts_with_its_usual_scope(city, client_for):
    client = client_for(city.trainer)
    page = client.get(reverse("training_rounds:add"), {"kind": "new_secretary"})
    form = page.context["form"]
    assert form["kind"].value() == "new_secretary"
    assert form["positions"].value() == ["secretary"]
    assert str(form["new_in_position_months"].value()) == "6"
    candidates = client.get(reverse("training_rounds:add"), {"kind": "candidate"})
    assert candidates.context["form"]["statuses"].value() == ["candidate"]
    # An unknown kind starts a plain form.
    plain = client.get(reverse("training_rounds:add"), {"kind": "nonsense"})
    assert plain.context["form"]["positions"].value() in ([], None)
    index = client.get(reverse("training_rounds:index")).content.decode()
    for kind in Round.Kind.values:
        assert f"?kind={kind}" in index
    assert set(KIND_PRESETS) == set(Round.Kind.values)


def test_the_tree_shows_only_the_trainers_subtree(city, client_for):
    county = client_for(city.trainer_a)
    top = county.get(reverse("training_rounds:scope_children")).json()["nodes"]
    assert [n["code"] for n in top] == ["A"]
    assert top[0]["has_children"] is True
    below = county.get(reverse("training_rounds:scope_children"), {"parent": city.county_a.pk})
    assert [n["code"] for n in below.json()["nodes"]] == ["A-01"]
    outside = county.get(reverse("training_rounds:scope_children"), {"parent": city.county_b.pk})
    assert outside.status_code == 404
    found = county.get(reverse("training_rounds:scope_search"), {"q": "党支部"}).json()
    assert [n["code"] for n in found["nodes"]] == ["A-01"]
    assert found["nodes"][0]["detail"].startswith("城关区委")
    # Not trainers: nothing.
    for user in (city.secretary_a, city.member_a.user):
        response = client_for(user).get(reverse("training_rounds:scope_children"))
        assert response.status_code in (302, 404)


def test_the_form_counts_who_a_scope_covers_before_saving(city, client_for):
    factories.member(city.branch_a, name="书记甲", position="secretary")
    factories.member(city.branch_b, name="书记乙", position="secretary")
    factories.member(city.branch_a, name="发展对象", status=Member.Status.CANDIDATE)
    client = client_for(city.trainer)
    url = reverse("training_rounds:scope_count")

    def count(**params):
        return client.get(url, {"opens_on": "2026-10-01", **params}).json()

    assert count(scope_roots="CITY")["count"] == 4
    assert count(scope_roots="CITY", positions=["secretary"])["count"] == 2
    assert count(scope_roots="A", positions=["secretary"])["count"] == 1
    assert count(scope_roots="CITY", statuses=["candidate"])["count"] == 1
    answer = count(scope_roots="CITY")
    assert answer["text"] == "按目前的范围，共 4 人参训。"
    refused = client_for(city.trainer_a).get(url, {"scope_roots": "B"}).json()
    assert refused["count"] is None and "B" in refused["text"]
    assert Round.objects.count() == 0


def test_a_secretaries_training_runs_on_the_same_engine(city, client_for, tmp_path):
    """Created, published with its count said, covered, exported and printed like a round."""
    Organization.objects.filter(pk=city.branch_b.pk).update(domain="rural")
    Member.objects.filter(pk=city.member_b.pk).update(position="secretary")
    lesson = builders.training_round([city.root]).lessons.first()
    client = client_for(city.trainer)
    response = client.post(
        reverse("training_rounds:add"),
        {
            "title": "2026年村书记专题培训",
            "kind": "secretary",
            "opens_on": "2026-10-01",
            "closes_on": "2026-12-31",
            "makeup_deadline": "2027-01-31",
            "scope_roots": "CITY",
            "positions": ["secretary", "deputy_secretary"],
            "domains": ["rural"],
            "lessons": [lesson.pk],
            "completion_rule": "either",
            "hours": "8",
            "state": "published",
        },
        follow=True,
    )
    messages = " ".join(str(m) for m in response.context["messages"])
    assert "“2026年村书记专题培训”已发布，共 1 人参训。" in messages
    training = Round.objects.get(title="2026年村书记专题培训")
    assert training.kind == Round.Kind.SECRETARY
    builders.complete_online(city.member_b, lesson)
    page = client.get(reverse("rounds:coverage", args=[training.pk])).content.decode()
    assert 'data-figure="coverage">100.0%<' in page
    export = client.get(reverse("rounds:coverage_export", args=[training.pk]))
    cells = [
        str(c.value)
        for row in load_workbook(io.BytesIO(export.content)).active.iter_rows()
        for c in row
    ]
    assert cells[0] == "2026年村书记专题培训" and "青山县委" in cells
    out = io.StringIO()
    call_command("coverage", str(training.pk), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["round"]["kind"] == "secretary"
    city_row = data["organizations"][0]
    assert (city_row["in_scope"], city_row["completed"], city_row["coverage"]) == (1, 1, 100.0)
    # The member sees it among their trainings, by its name.
    mine = client_for(city.member_b.user).get(reverse("rounds:list")).content.decode()
    assert "2026年村书记专题培训" in mine
    assert date(2026, 10, 1) == training.opens_on
