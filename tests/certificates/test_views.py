"""Getting certificates: members' own downloads, secretaries' ZIPs, the public verification
page, and the trainers' admin (templates, listing, revoke, re-issue, issue now) — in scope."""

import io
import zipfile
from datetime import date
from urllib.parse import quote

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from certificates import services
from certificates.models import Certificate, CertificateTemplate

from .. import factories
from .rounds_setup import complete, completed_round, pdf_pages, pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Stored PDFs in a fresh folder; rate-limit counters from other tests forgotten."""
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def issued(city):
    training_round = completed_round([city.root], city.member_a, city.member_b)
    services.certificates_issue(training_round=training_round, render=False)
    return training_round


def certificate_of(member):
    return Certificate.objects.get(member=member, state="valid", kind="completion")


def logged_events(name):
    return [e.additional_data for e in LogEntry.objects.filter(additional_data__event=name)]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


# --- A member's own ------------------------------------------------------------------------------


def test_my_certificates_lists_own_ones_with_revoked_and_superseded_marked(
    city, issued, client_for
):
    second = completed_round([city.root], city.member_a, title="第二期专题轮训")
    services.certificates_issue(training_round=second, render=False)
    revoked = Certificate.objects.get(round=second)
    services.certificate_revoke(certificate=revoked, reason="误发", user=city.trainer)
    valid = certificate_of(city.member_a)

    page = client_for(city.member_a.user).get(reverse("certificates:mine"))

    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-certificate="{valid.pk}"' in html
    assert f'data-certificate="{revoked.pk}"' in html
    assert 'class="certificate-revoked"' in html
    assert reverse("certificates:pdf", args=[valid.pk]) in html
    assert reverse("certificates:pdf", args=[revoked.pk]) not in html
    assert f'data-certificate="{certificate_of(city.member_b).pk}"' not in html


def test_member_downloads_own_certificate_rendered_once_then_served_from_storage(
    city, issued, client_for, tmp_path
):
    certificate = certificate_of(city.member_a)
    assert not certificate.pdf
    client = client_for(city.member_a.user)

    response = client.get(reverse("certificates:pdf", args=[certificate.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert quote(f"{certificate.number}-王芳.pdf") in disposition
    data = body_of(response)
    assert data.startswith(b"%PDF-")
    path = tmp_path / "download.pdf"
    path.write_bytes(data)
    text = pdf_text(path)
    assert "王芳" in text and certificate.number in text
    certificate.refresh_from_db()
    stored, rendered_at = certificate.pdf.name, certificate.pdf_rendered_at
    assert stored and rendered_at is not None

    again = client.get(reverse("certificates:pdf", args=[certificate.pk]))
    assert body_of(again) == data
    certificate.refresh_from_db()
    assert (certificate.pdf.name, certificate.pdf_rendered_at) == (stored, rendered_at)


def test_downloads_are_scoped(city, issued, client_for):
    mine = certificate_of(city.member_a)
    url = reverse("certificates:pdf", args=[mine.pk])
    assert client_for(city.member_b.user).get(url).status_code == 404
    assert client_for(city.secretary_b).get(url).status_code == 404
    assert client_for(city.operator_a).get(url).status_code == 404
    assert (
        client_for(city.member_a.user).get(reverse("certificates:pdf", args=[0])).status_code == 404
    )
    secretary = client_for(city.secretary_a).get(url)
    assert secretary.status_code == 200
    body_of(secretary)
    assert logged_events("certificate_downloaded")[0]["number"] == mine.number
    assert logged_events("certificate_downloaded")[0]["event"] == "certificate_downloaded"
    assert Client().get(url).status_code == 302  # anonymous: to the login page


def test_a_member_cannot_download_a_revoked_certificate(city, issued, client_for):
    mine = certificate_of(city.member_a)
    services.certificate_revoke(certificate=mine, reason="误发", user=city.trainer)
    url = reverse("certificates:pdf", args=[mine.pk])
    assert client_for(city.member_a.user).get(url).status_code == 404
    assert client_for(city.secretary_a).get(url).status_code == 200


# --- A secretary's ZIP ---------------------------------------------------------------------------


def read_zip(response):
    return zipfile.ZipFile(io.BytesIO(body_of(response)))


def test_secretary_zip_holds_one_pdf_per_member_and_a_merged_print_pdf(
    city, issued, client_for, tmp_path
):
    extra = factories.member(city.branch_a, name="张小三", phone="13800000011")
    complete(issued, extra)
    services.certificates_issue(training_round=issued, render=False)
    url = reverse("certificates:round_zip", args=[issued.pk]) + f"?org={city.branch_a.pk}"

    response = client_for(city.secretary_a).get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    bundle = read_zip(response)
    a, extra_certificate = certificate_of(city.member_a), certificate_of(extra)
    merged = services.merged_filename()
    assert sorted(bundle.namelist()) == sorted(
        [f"{a.number}-王芳.pdf", f"{extra_certificate.number}-张小三.pdf", merged]
    )
    (tmp_path / "merged.pdf").write_bytes(bundle.read(merged))
    assert pdf_pages(tmp_path / "merged.pdf") == 2
    merged_text = pdf_text(tmp_path / "merged.pdf")
    assert "王芳" in merged_text and "张小三" in merged_text and "李强" not in merged_text
    (tmp_path / "one.pdf").write_bytes(bundle.read(f"{a.number}-王芳.pdf"))
    assert pdf_pages(tmp_path / "one.pdf") == 1
    assert a.number in pdf_text(tmp_path / "one.pdf")
    exported = logged_events("certificates_exported")
    assert [(e["count"], e["organization"]) for e in exported] == [(2, "A-01")]


def test_a_trainer_of_the_city_gets_the_whole_round(city, issued, client_for):
    response = client_for(city.trainer).get(reverse("certificates:round_zip", args=[issued.pk]))
    names = read_zip(response).namelist()
    assert len(names) == 3
    assert any(name.endswith("-李强.pdf") for name in names)


def test_zip_is_scoped_to_the_secretarys_subtree(city, issued, client_for):
    zip_url = reverse("certificates:round_zip", args=[issued.pk])
    assert client_for(city.secretary_b).get(f"{zip_url}?org={city.branch_a.pk}").status_code == 404
    assert (
        client_for(city.member_a.user).get(f"{zip_url}?org={city.branch_a.pk}").status_code == 404
    )
    elsewhere = completed_round([city.county_a], city.member_a, title="城关区专题")
    services.certificates_issue(training_round=elsewhere, render=False)
    other_url = reverse("certificates:round_zip", args=[elsewhere.pk])
    assert client_for(city.secretary_b).get(other_url).status_code == 404
    assert not logged_events("certificates_exported")


def test_the_org_page_lists_rounds_with_counts_and_zip_links(city, issued, client_for):
    page = client_for(city.secretary_a).get(reverse("certificates:org"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-round="{issued.pk}"' in html
    assert reverse("certificates:round_zip", args=[issued.pk]) + f"?org={city.branch_a.pk}" in html
    assert client_for(city.member_a.user).get(reverse("certificates:org")).status_code == 404


# --- Public verification -------------------------------------------------------------------------


def test_verification_shows_valid_with_masked_name_round_date_and_issuer(city, client):
    member = factories.member(city.branch_a, name="张小三", phone="13800000012")
    training_round = completed_round([city.root], member)
    with time_machine.travel(date(2027, 1, 6), tick=False):
        services.certificates_issue(training_round=training_round, render=False)
    certificate = certificate_of(member)

    page = client.get(reverse("certificates:verify", args=[certificate.code]))

    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-state="valid"' in html
    assert "张*三" in html and "张小三" not in html
    assert training_round.title in html
    assert certificate.number in html
    assert "2027-01-06" in html
    for line in certificate.template.issuer_lines.splitlines():
        assert line.strip() in html
    assert page["X-Robots-Tag"] == "noindex"


def test_revoked_and_superseded_certificates_verify_as_such(city, issued, client):
    revoked = certificate_of(city.member_a)
    services.certificate_revoke(certificate=revoked, reason="误发", user=city.trainer)
    old = certificate_of(city.member_b)
    new = services.certificate_reissue(certificate=old, user=city.trainer)

    def state_of(certificate):
        html = client.get(reverse("certificates:verify", args=[certificate.code])).content
        return html.decode().split('data-state="')[1].split('"')[0]

    assert state_of(revoked) == "revoked"
    assert state_of(old) == "superseded"
    assert state_of(new) == "valid"
    assert (
        "误发"
        not in client.get(reverse("certificates:verify", args=[revoked.code])).content.decode()
    )


def test_an_unknown_code_is_a_plain_not_found_page(client, db):
    page = client.get(reverse("certificates:verify", args=["NoSuchCode123456"]))
    assert page.status_code == 404
    assert "certificates/verify_not_found.html" in [t.name for t in page.templates]


def test_verification_is_rate_limited_per_address(city, issued, client, settings):
    settings.LUNXUN_VERIFY_RATE = "3/m"
    url = reverse("certificates:verify", args=[certificate_of(city.member_a).code])
    statuses = [client.get(url, REMOTE_ADDR="203.0.113.7").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(url, REMOTE_ADDR="203.0.113.7")
    assert "certificates/verify_limited.html" in [t.name for t in limited.templates]
    assert 'lang="zh-hans"' in limited.content.decode()
    assert client.get(url, REMOTE_ADDR="203.0.113.8").status_code == 200
    # Unknown codes count too: guessing codes is what the limit is for.
    guesses = [
        client.get(reverse("certificates:verify", args=[f"guess{i}"]), REMOTE_ADDR="198.51.100.1")
        for i in range(4)
    ]
    assert [g.status_code for g in guesses] == [404, 404, 404, 429]


# --- Study-hours statements ----------------------------------------------------------------------


def test_a_member_asks_for_a_statement_of_a_year(city, client_for, tmp_path):
    with time_machine.travel(date(2026, 11, 3), tick=False):
        client = client_for(city.member_a.user)
        response = client.post(reverse("certificates:statement_request"), {"year": "2026"})
        assert response.status_code == 302
        statement = Certificate.objects.get(kind="hours", member=city.member_a)
        assert statement.year == 2026
        again = client.post(reverse("certificates:statement_request"), {"year": "2026"})
        assert again.status_code == 302
        assert Certificate.objects.filter(kind="hours").count() == 1
        refused = client.post(reverse("certificates:statement_request"), {"year": "2027"})
        assert refused.status_code == 302
        assert not Certificate.objects.filter(year=2027).exists()
        page = client.get(reverse("certificates:mine"))
        assert statement.number in page.content.decode()
        download = client.get(reverse("certificates:pdf", args=[statement.pk]))
        assert download.status_code == 200
        (tmp_path / "statement.pdf").write_bytes(body_of(download))
        verified = Client().get(reverse("certificates:verify", args=[statement.code]))
        assert 'data-state="valid"' in verified.content.decode()
        assert statement.number in verified.content.decode()
        assert "王*" in verified.content.decode()
    text = pdf_text(tmp_path / "statement.pdf")
    assert statement.number in text and "王芳" in text


def test_statement_request_needs_post_and_a_member(city, client_for):
    assert (
        client_for(city.member_a.user).get(reverse("certificates:statement_request")).status_code
        == 405
    )
    assert (
        client_for(city.trainer)
        .post(reverse("certificates:statement_request"), {"year": "2026"})
        .status_code
        == 404
    )


# --- The trainers' admin -------------------------------------------------------------------------


def test_trainers_list_only_certificates_of_their_subtree(city, issued, client_for):
    a, b = certificate_of(city.member_a), certificate_of(city.member_b)
    county = client_for(city.trainer_a)
    listing = county.get(reverse("issued_certificates:index")).content.decode()
    assert a.number in listing and b.number not in listing
    assert county.get(reverse("issued_certificates:inspect", args=[a.pk])).status_code == 200
    assert county.get(reverse("issued_certificates:inspect", args=[b.pk])).status_code == 404
    assert county.get(reverse("issued_certificates:revoke", args=[b.pk])).status_code == 404
    assert county.post(reverse("issued_certificates:reissue", args=[b.pk])).status_code == 404
    assert client_for(city.secretary_a).get(reverse("issued_certificates:index")).status_code in (
        302,
        403,
    )


def test_no_add_edit_or_delete_of_certificates_in_the_admin(city, issued, client_for):
    trainer = client_for(city.trainer)
    a = certificate_of(city.member_a)
    assert trainer.get(reverse("issued_certificates:add")).status_code in (302, 403)
    assert trainer.get(reverse("issued_certificates:edit", args=[a.pk])).status_code in (302, 403)
    assert trainer.post(reverse("issued_certificates:delete", args=[a.pk])).status_code in (
        302,
        403,
    )
    assert Certificate.objects.filter(pk=a.pk, state="valid").exists()


def test_trainer_revokes_and_reissues_in_the_admin(city, issued, client_for):
    trainer = client_for(city.trainer_a)
    a = certificate_of(city.member_a)
    refused = trainer.post(reverse("issued_certificates:revoke", args=[a.pk]), {"reason": ""})
    assert refused.status_code == 200
    assert Certificate.objects.get(pk=a.pk).state == "valid"

    assert trainer.get(reverse("issued_certificates:revoke", args=[a.pk])).status_code == 200

    city.member_a.name = "王芳菲"
    city.member_a.save()
    confirm = trainer.get(reverse("issued_certificates:reissue", args=[a.pk]))
    assert confirm.status_code == 200
    assert "王芳" in confirm.content.decode() and "王芳菲" in confirm.content.decode()
    response = trainer.post(reverse("issued_certificates:reissue", args=[a.pk]))
    new = Certificate.objects.get(supersedes=a)
    assert response.status_code == 302
    assert new.name == "王芳菲" and Certificate.objects.get(pk=a.pk).state == "superseded"
    assert new.issued_by == city.trainer_a

    response = trainer.post(
        reverse("issued_certificates:revoke", args=[new.pk]), {"reason": "重复发放"}
    )
    assert response.status_code == 302
    new.refresh_from_db()
    assert (new.state, new.revoke_reason, new.revoked_by) == ("revoked", "重复发放", city.trainer_a)


def test_issue_now_per_round_in_the_admin(city, client_for):
    training_round = completed_round([city.root], city.member_a, city.member_b)
    trainer = client_for(city.trainer)
    page = trainer.get(reverse("issued_certificates:issue"))
    assert page.status_code == 200
    assert f'data-round="{training_round.pk}"' in page.content.decode()

    # A county's trainer cannot issue for the city's round.
    refused = client_for(city.trainer_a).post(
        reverse("issued_certificates:issue"), {"round": training_round.pk}
    )
    assert refused.status_code == 404
    assert not Certificate.objects.exists()

    response = trainer.post(reverse("issued_certificates:issue"), {"round": training_round.pk})
    assert response.status_code == 302
    assert Certificate.objects.filter(round=training_round).count() == 2
    assert logged_events("certificates_issue_requested")


def test_template_snippet_previews_a_sample_pdf(city, client_for, tmp_path):
    services.default_template("completion")
    template = CertificateTemplate.objects.get(kind="completion", is_default=True)
    trainer = client_for(city.trainer)
    listing = trainer.get(reverse("wagtailsnippets_certificates_certificatetemplate:list"))
    assert listing.status_code == 200
    preview_url = reverse(
        "wagtailsnippets_certificates_certificatetemplate:preview_pdf", args=[template.pk]
    )
    assert preview_url in listing.content.decode()
    edit = trainer.get(
        reverse("wagtailsnippets_certificates_certificatetemplate:edit", args=[template.pk])
    )
    assert edit.status_code == 200 and preview_url in edit.content.decode()
    response = trainer.get(preview_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    (tmp_path / "sample.pdf").write_bytes(response.content)
    assert pdf_pages(tmp_path / "sample.pdf") == 2  # a common name and a rare one
    assert client_for(city.secretary_a).get(preview_url).status_code in (302, 403, 404)


def test_saving_a_new_default_template_takes_the_mark_from_the_old_one(city, client_for):
    services.default_template("completion")
    old = CertificateTemplate.objects.get(kind="completion", is_default=True)
    trainer = client_for(city.trainer)
    response = trainer.post(
        reverse("wagtailsnippets_certificates_certificatetemplate:add"),
        {
            "name": "新版结业证书",
            "kind": "completion",
            "is_default": "on",
            "title": "结业证书",
            "body": "{name}同志参加{round}，成绩合格，准予结业。",
            "issuer_lines": "中共示范市委组织部",
            "border": "simple",
        },
    )
    assert response.status_code == 302
    new = CertificateTemplate.objects.get(name="新版结业证书")
    old.refresh_from_db()
    assert new.is_default and not old.is_default
