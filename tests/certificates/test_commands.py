"""The operators' commands: issue_certificates and export_certificates."""

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from certificates import services
from certificates.models import Certificate

from .. import factories
from .rounds_setup import complete, completed_round, pdf_pages

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_issue_certificates_issues_and_renders_with_progress_then_only_what_is_new(city):
    training_round = completed_round([city.root], city.member_a, city.member_b)

    output = run("issue_certificates", str(training_round.pk))

    assert "Issued 2: 2026-Q4-000001 … 2026-Q4-000002" in output
    assert "rendered 2/2" in output
    certificates = list(Certificate.objects.order_by("sequence"))
    assert len(certificates) == 2
    for certificate in certificates:
        assert certificate.pdf_rendered_at is not None
        with certificate.pdf.open("rb") as handle:
            assert handle.read(5) == b"%PDF-"

    late = factories.member(city.branch_a, name="迟到者", phone="13800000021")
    complete(training_round, late)
    again = run("issue_certificates", str(training_round.pk), "--no-render")
    assert "Issued 1: 2026-Q4-000003 … 2026-Q4-000003" in again
    assert "rendered" not in again
    assert Certificate.objects.get(member=late).pdf_rendered_at is None
    assert "Nothing new to issue." in run("issue_certificates", str(training_round.pk))
    assert Certificate.objects.get(member=late).pdf_rendered_at is not None


def test_issue_certificates_refuses_unknown_and_draft_rounds(city):
    with pytest.raises(CommandError):
        run("issue_certificates", "999999")
    draft = completed_round([city.root], city.member_a, state="draft")
    with pytest.raises(CommandError):
        run("issue_certificates", str(draft.pk))
    assert not Certificate.objects.exists()


def test_export_certificates_writes_the_secretarys_zip(city, tmp_path):
    training_round = completed_round([city.root], city.member_a, city.member_b)
    services.certificates_issue(training_round=training_round, render=False)
    target = tmp_path / "out" / "a.zip"
    target.parent.mkdir()

    output = run("export_certificates", str(training_round.pk), "--org", "A", "-o", str(target))

    assert "Wrote 1 certificate(s)" in output
    bundle = zipfile.ZipFile(target)
    a = Certificate.objects.get(member=city.member_a)
    merged = services.merged_filename()
    assert sorted(bundle.namelist()) == sorted([f"{a.number}-王芳.pdf", merged])
    (tmp_path / "merged.pdf").write_bytes(bundle.read(merged))
    assert pdf_pages(tmp_path / "merged.pdf") == 1
    assert list(tmp_path.joinpath("out").iterdir()) == [target]  # no partial file left

    whole = tmp_path / "all.zip"
    run("export_certificates", str(training_round.pk), "-o", str(whole))
    assert len(zipfile.ZipFile(whole).namelist()) == 3


def test_export_certificates_refuses_what_it_cannot_export(city, tmp_path):
    training_round = completed_round([city.root], city.member_a)
    target = tmp_path / "x.zip"
    with pytest.raises(CommandError):
        run("export_certificates", str(training_round.pk), "-o", str(target))  # none issued
    services.certificates_issue(training_round=training_round, render=False)
    with pytest.raises(CommandError):
        run("export_certificates", str(training_round.pk), "--org", "NOPE", "-o", str(target))
    with pytest.raises(CommandError):
        run("export_certificates", "999999", "-o", str(target))
    assert not target.exists()
