"""Certificate downloads are named from a member's name, a round's title and an organisation's
name: whatever was typed there, the download gets one clean Content-Disposition header."""

import io
import re
import zipfile
from urllib.parse import unquote

import pytest
from django.core.cache import cache
from django.urls import reverse

from certificates import services
from certificates.models import Certificate

from .. import factories
from .rounds_setup import completed_round

pytestmark = pytest.mark.django_db

# attachment; filename="<printable ASCII, no quote>"; filename*=UTF-8''<RFC 5987 attr-chars>
HEADER = re.compile(
    r"attachment; filename=\"(?P<fallback>[\x20\x21\x23-\x7e]+)\"; "
    r"filename\*=UTF-8''(?P<encoded>[A-Za-z0-9%._~-]+)"
)
UNSAFE = re.compile(r'[\x00-\x1f\x7f"/\\\u202a-\u202e\u2066-\u2069]')


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    yield
    cache.clear()


def names_in(response):
    match = HEADER.fullmatch(response["Content-Disposition"])
    assert match, response["Content-Disposition"]
    fallback, name = match["fallback"], unquote(match["encoded"])
    assert not UNSAFE.search(fallback) and not UNSAFE.search(name)
    return fallback, name


def test_certificate_pdf_of_a_hostile_name_has_one_clean_header(city, client_for):
    member = factories.member(city.branch_a, name='王"芳\r\nX-A: 1/..\\\u202efdp.exe')
    training_round = completed_round([city.root], member)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=member, state="valid", kind="completion")

    response = client_for(member.user).get(reverse("certificates:pdf", args=[certificate.pk]))

    assert response.status_code == 200
    fallback, name = names_in(response)
    assert name == f"{certificate.number}-王芳X-A1..fdp.exe.pdf"
    assert fallback == f"{certificate.number}-_X-A1..fdp.exe.pdf"
    assert not any(header.lower().startswith("x-a") for header in response.headers)
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_certificate_zip_of_a_hostile_round_and_organisation_has_one_clean_header(city, client_for):
    city.branch_a.name = '幸福"社区\r\n/党支部'
    city.branch_a.save()
    training_round = completed_round(
        [city.root], city.member_a, title="=轮训\r\nSet-Cookie: x=1;\x07\u202e"
    )
    services.certificates_issue(training_round=training_round, render=False)
    url = reverse("certificates:round_zip", args=[training_round.pk])

    response = client_for(city.secretary_a).get(f"{url}?org={city.branch_a.pk}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    fallback, name = names_in(response)
    assert name == "=轮训Set-Cookiex=1;-幸福社区党支部.zip"
    assert fallback == "=_Set-Cookiex=1_-_.zip"
    assert "Set-Cookie" not in response.headers
    b"".join(response.streaming_content)


def test_the_files_inside_the_zip_carry_no_invisible_characters(city, client_for):
    member = factories.member(city.branch_a, name="王\u202e芳\x07\u200b 𠮷")
    training_round = completed_round([city.root], member)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=member, state="valid", kind="completion")
    url = reverse("certificates:round_zip", args=[training_round.pk])

    response = client_for(city.secretary_a).get(f"{url}?org={city.branch_a.pk}")

    assert response.status_code == 200
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = bundle.namelist()
    assert f"{certificate.number}-王芳𠮷.pdf" in names
    assert not any(UNSAFE.search(name) or "\u200b" in name for name in names)
