"""Issuing: who gets a certificate, its number and code, the facts printed on it; revoking,
re-issuing, yearly statements; numbering without gaps or duplicates under concurrency."""

import re
import threading
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection

from certificates import services
from certificates.models import Certificate, NumberSequence
from members.services import trainer_group
from rounds import services as round_services
from rounds.models import Participation, Round

from .. import factories
from ..rounds import builders
from .rounds_setup import complete, completed_round, pdf_text, q3_round

pytestmark = pytest.mark.django_db


def events(name):
    entries = LogEntry.objects.filter(additional_data__event=name).order_by("pk")
    return [entry.additional_data for entry in entries]


def test_issue_to_members_who_completed_with_numbers_codes_and_printed_facts(city):
    third = factories.member(city.branch_b, name="欧阳䶮", phone="13900000003")
    busy = factories.member(city.branch_a, name="没完成", phone="13800000004")
    training_round = q3_round([city.root], city.member_a, city.member_b, third, hours=Decimal("6"))
    Participation.objects.create(
        round=training_round, member=busy, status=Participation.Status.IN_PROGRESS
    )
    with time_machine.travel(date(2026, 10, 9), tick=False):
        result = services.certificates_issue(
            training_round=training_round, user=city.trainer, render=False
        )

    assert result.count == 3
    certificates = list(Certificate.objects.order_by("sequence"))
    # In organisation-tree order: county A's branch first, then county B's (by name).
    assert [c.member for c in certificates] == [city.member_a, city.member_b, third]
    assert [c.number for c in certificates] == [
        "2026-Q3-000001",
        "2026-Q3-000002",
        "2026-Q3-000003",
    ]
    assert (result.first, result.last) == ("2026-Q3-000001", "2026-Q3-000003")
    first = certificates[0]
    assert first.kind == "completion" and first.state == "valid"
    assert (first.name, first.organization_name) == ("王芳", "幸福社区党支部")
    assert first.round_title == training_round.title
    assert (first.opens_on, first.closes_on) == (date(2026, 7, 1), date(2026, 9, 30))
    assert first.hours == Decimal("6.0")
    assert (first.year, first.issued_on, first.issued_by) == (2026, date(2026, 10, 9), city.trainer)
    assert first.template.kind == "completion" and first.template.is_default
    codes = {c.code for c in certificates}
    assert len(codes) == 3
    for code in codes:
        # 16 URL-safe base64 characters: 96 random bits.
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", code)
    assert not Certificate.objects.filter(member=busy).exists()
    assert events("certificates_issued") == [
        {
            "event": "certificates_issued",
            "result": "ok",
            "count": 3,
            "first": "2026-Q3-000001",
            "last": "2026-Q3-000003",
            "certificate_ids": [c.pk for c in certificates],
        }
    ]


def test_issuing_again_issues_only_what_is_new(city):
    training_round = completed_round([city.root], city.member_a)
    assert services.certificates_issue(training_round=training_round, render=False).count == 1
    assert services.certificates_issue(training_round=training_round, render=False).count == 0
    late = factories.member(city.branch_b, name="补学者", phone="13900000005")
    complete(training_round, late, city.member_b)
    again = services.certificates_issue(training_round=training_round, render=False)
    assert again.count == 2
    assert (again.first, again.last) == ("2026-Q4-000002", "2026-Q4-000003")
    assert Certificate.objects.count() == 3
    assert set(Certificate.objects.values_list("member", flat=True)) == {
        city.member_a.pk,
        city.member_b.pk,
        late.pk,
    }
    assert NumberSequence.objects.get(key="2026-Q4-#").last == 3


def test_a_revoked_certificate_is_not_issued_again(city):
    training_round = completed_round([city.root], city.member_a)
    services.certificates_issue(training_round=training_round, render=False)
    services.certificate_revoke(
        certificate=Certificate.objects.get(), reason="材料不实", user=city.trainer
    )
    assert services.certificates_issue(training_round=training_round, render=False).count == 0
    assert Certificate.objects.count() == 1


def test_a_draft_round_has_no_certificates(city):
    training_round = completed_round([city.root], city.member_a, state=Round.State.DRAFT)
    with pytest.raises(services.CertificateError):
        services.certificates_issue(training_round=training_round, render=False)
    assert not Certificate.objects.exists()


def test_rounds_of_one_quarter_share_the_series_so_numbers_stay_unique(city):
    first = completed_round([city.county_a], city.member_a, title="城关区专题")
    second = completed_round([city.county_b], city.member_b, title="青山县专题")
    services.certificates_issue(training_round=first, render=False)
    services.certificates_issue(training_round=second, render=False)
    assert Certificate.objects.get(round=first).number == "2026-Q4-000001"
    assert Certificate.objects.get(round=second).number == "2026-Q4-000002"


def test_the_number_pattern_is_configurable_and_a_round_placeholder_numbers_each_round(
    city, settings
):
    settings.LUNXUN_CERTIFICATE_NUMBER = "LX{year}{quarter}-R{round}-{seq:04d}"
    first = completed_round([city.county_a], city.member_a)
    second = completed_round([city.county_b], city.member_b)
    services.certificates_issue(training_round=first, render=False)
    services.certificates_issue(training_round=second, render=False)
    assert Certificate.objects.get(round=first).number == f"LX20264-R{first.pk}-0001"
    assert Certificate.objects.get(round=second).number == f"LX20264-R{second.pk}-0001"


def test_a_pattern_without_a_sequence_is_refused(city, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.LUNXUN_CERTIFICATE_NUMBER = "{year}-Q{quarter}"
    training_round = completed_round([city.root], city.member_a)
    with pytest.raises(ImproperlyConfigured):
        services.certificates_issue(training_round=training_round, render=False)


# --- Revoking and re-issuing -------------------------------------------------------------------


def test_revoke_records_who_when_and_why(city):
    training_round = completed_round([city.root], city.member_a)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get()
    services.certificate_revoke(certificate=certificate, reason="重复发放", user=city.trainer)
    certificate.refresh_from_db()
    assert certificate.state == "revoked"
    assert certificate.revoked_by == city.trainer and certificate.revoked_at is not None
    assert certificate.revoke_reason == "重复发放"
    assert events("certificate_revoked")[0]["number"] == certificate.number
    with pytest.raises(services.CertificateError):
        services.certificate_revoke(certificate=certificate, reason="again", user=city.trainer)


def test_revoke_needs_a_reason(city):
    training_round = completed_round([city.root], city.member_a)
    services.certificates_issue(training_round=training_round, render=False)
    with pytest.raises(services.CertificateError):
        services.certificate_revoke(
            certificate=Certificate.objects.get(), reason="  ", user=city.trainer
        )
    assert Certificate.objects.get().state == "valid"


def test_reissue_after_a_name_correction_supersedes_the_old_one(city):
    training_round = completed_round([city.root], city.member_a, city.member_b)
    services.certificates_issue(training_round=training_round, render=False)
    old = Certificate.objects.get(member=city.member_a)
    city.member_a.name = "王芳芳"
    city.member_a.save()

    new = services.certificate_reissue(certificate=old, user=city.trainer)

    old.refresh_from_db()
    assert old.state == "superseded" and old.name == "王芳"
    assert new.state == "valid" and new.name == "王芳芳"
    assert new.supersedes == old and old.superseded_by == new
    assert new.number == "2026-Q4-000003" and new.number != old.number
    assert new.code != old.code
    assert (new.round, new.round_title, new.hours) == (old.round, old.round_title, old.hours)
    assert Certificate.objects.valid().filter(member=city.member_a).get() == new
    logged = events("certificate_reissued")[0]
    assert (logged["number"], logged["supersedes"]) == (new.number, old.number)
    with pytest.raises(services.CertificateError):
        services.certificate_reissue(certificate=old, user=city.trainer)


# --- Study-hours statements ---------------------------------------------------------------------


@pytest.fixture
def studied(city):
    parent = builders.course_builders.course()
    lessons = [
        builders.course_builders.lesson(parent, title=f"第{i}课", hours=Decimal("1.5"))
        for i in range(3)
    ]
    for lesson in lessons[:2]:
        builders.complete_online(city.member_a, lesson, at=builders.aware(2026, 3, 5, 20, 0))
    return lessons


def test_statement_carries_the_years_total_and_is_reused_while_nothing_changed(city, studied):
    with time_machine.travel(date(2026, 6, 1), tick=False):
        statement = services.statement_issue(member=city.member_a, year=2026)
        again = services.statement_issue(member=city.member_a, year=2026)
    assert again.pk == statement.pk
    assert statement.kind == "hours" and statement.round is None
    assert statement.hours == Decimal("3.0")
    assert statement.number == "2026-XS-000001"
    assert (statement.opens_on, statement.closes_on) == (date(2026, 1, 1), date(2026, 6, 1))
    assert statement.template.kind == "hours"


def test_new_hours_supersede_the_statement_with_a_new_number(city, studied):
    with time_machine.travel(date(2026, 6, 1), tick=False):
        first = services.statement_issue(member=city.member_a, year=2026)
        builders.complete_online(city.member_a, studied[2], at=builders.aware(2026, 5, 20, 20, 0))
        second = services.statement_issue(member=city.member_a, year=2026)
    first.refresh_from_db()
    assert second.hours == Decimal("4.5")
    assert (first.state, second.state) == ("superseded", "valid")
    assert second.supersedes == first
    assert second.number == "2026-XS-000002"


def test_statements_of_a_past_year_and_refusal_of_a_future_one(city, studied):
    with time_machine.travel(date(2027, 2, 1), tick=False):
        past = services.statement_issue(member=city.member_a, year=2026)
        assert past.closes_on == date(2026, 12, 31)
        empty = services.statement_issue(member=city.member_b, year=2026)
        assert empty.hours == Decimal("0")
        with pytest.raises(services.CertificateError):
            services.statement_issue(member=city.member_a, year=2028)
    assert (past.number, empty.number) == ("2026-XS-000001", "2026-XS-000002")


def test_the_statement_pdf_lists_the_entries_it_counted(city, studied, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    with time_machine.travel(builders.aware(2026, 6, 1, 12, 0), tick=False):
        statement = services.statement_issue(member=city.member_a, year=2026)
    # Studied after the statement was issued: not on it (its total stays 3.0).
    builders.complete_online(city.member_a, studied[2], at=builders.aware(2026, 6, 10, 20, 0))
    pdf = services.certificate_pdf(certificate=statement)
    (tmp_path / "statement.pdf").write_bytes(pdf.open("rb").read())
    pdf.close()
    text = pdf_text(tmp_path / "statement.pdf")
    assert "第0课" in text and "第1课" in text and "第2课" not in text
    assert statement.number in text


# --- Background issuing and permissions ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_closing_a_round_issues_its_certificates_in_the_background(city):
    """round_closed enqueues the issuing task (run at once by the tests' immediate backend),
    which queues the rendering of the PDFs once the certificates are committed."""
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    round_services.round_close(training_round=training_round, user=city.trainer)
    certificate = Certificate.objects.get()
    assert certificate.member == city.member_a
    assert certificate.pdf and certificate.pdf_rendered_at is not None
    with certificate.pdf.open("rb") as handle:
        assert handle.read(5) == b"%PDF-"


def test_trainers_may_manage_templates_and_certificates():
    codenames = set(
        trainer_group()
        .permissions.filter(content_type__app_label="certificates")
        .values_list("codename", flat=True)
    )
    assert {
        "add_certificatetemplate",
        "change_certificatetemplate",
        "view_certificate",
        "change_certificate",
    } <= codenames
    assert "delete_certificate" not in codenames
    assert Permission.objects.filter(codename="delete_certificate").exists()


# --- Concurrency ---------------------------------------------------------------------------------


def _run_threads(target, args_list):
    errors = []

    def run(*args):
        try:
            target(*args)
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_numbers_without_gaps_or_duplicates(city):
    """Six issuers run at once while members keep completing the round: every member gets one
    certificate, and the numbers are exactly 1..N."""
    members = [
        factories.member(city.branch_a if i % 2 else city.branch_b, name=f"并发{i:02d}")
        for i in range(36)
    ]
    training_round = completed_round([city.root], state=Round.State.PUBLISHED)
    batches = [members[i::6] for i in range(6)]

    def issuer(batch):
        for member in batch:
            complete(training_round, member)
            services.certificates_issue(training_round=training_round, render=False)

    assert _run_threads(issuer, [(batch,) for batch in batches]) == []
    services.certificates_issue(training_round=training_round, render=False)

    certificates = list(Certificate.objects.filter(round=training_round))
    assert sorted(c.member_id for c in certificates) == sorted(m.pk for m in members)
    assert sorted(c.sequence for c in certificates) == list(range(1, 37))
    assert len({c.number for c in certificates}) == 36
    assert NumberSequence.objects.get(key="2026-Q4-#").last == 36


@pytest.mark.django_db(transaction=True)
def test_concurrent_statements_share_one_series_without_gaps(city, settings):
    members = [factories.member(city.branch_a, name=f"学员{i:02d}") for i in range(16)]

    def requester(chunk):
        for member in chunk:
            services.statement_issue(member=member, year=2026)
            services.statement_issue(member=member, year=2026)  # unchanged: no new number

    with time_machine.travel(date(2026, 12, 1), tick=False):
        errors = _run_threads(requester, [(members[i::4],) for i in range(4)])
    assert errors == []
    sequences = sorted(Certificate.objects.filter(kind="hours").values_list("sequence", flat=True))
    assert sequences == list(range(1, 17))
    assert Certificate.objects.filter(kind="hours", state="valid").count() == 16
