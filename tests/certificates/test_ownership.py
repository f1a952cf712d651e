"""Certificate templates belong to the level that made them, and an issued certificate keeps
what it said (DESIGN.md). Over real admin HTTP: a county's trainer uses the city's templates
and cannot change them, never sees another county's, and makes and changes her own; a
certificate issued before its template changed still verifies and prints as it was issued."""

from io import BytesIO

import pytest
from django.core.cache import cache
from django.core.files.images import ImageFile
from django.urls import reverse
from wagtail.images.models import Image

from certificates import default_template as shipped
from certificates import services
from certificates.models import Certificate, CertificateTemplate, RoundTemplate

from .. import factories
from ..courses import builders as course_builders
from . import pdfs
from .rounds_setup import completed_round

pytestmark = pytest.mark.django_db

ADMIN_HOME = "/admin/"
CITY_ISSUER = "中共示范市委组织部"
NEW_ISSUER = "示范市人民政府办公室"
COUNTY_ISSUER = "中共城关区委组织部"


def url(name, *args):
    prefix = (
        "wagtailsnippetchoosers_certificates_certificatetemplate"
        if name in ("choose", "choose_results", "chosen")
        else "wagtailsnippets_certificates_certificatetemplate"
    )
    return reverse(f"{prefix}:{name}", args=args)


def refused(response) -> bool:
    """Wagtail's answer to a permission it refuses: back to the admin's home page."""
    return response.status_code == 302 and response["Location"] == ADMIN_HOME


def seal(text="示范市委组织部") -> Image:
    course_builders.root_collection()
    png = ImageFile(BytesIO(shipped.sample_seal_png(text)), name="seal.png")
    return Image.objects.create(title=f"{text}印", file=png)


def template_data(template=None, **changes):
    """The template form as the admin posts it."""
    data = {
        "name": "结业证书（城关区）",
        "kind": "completion",
        "title": "结业证书",
        "body": shipped.COMPLETION_BODY,
        "issuer_lines": COUNTY_ISSUER,
        "border": "classic",
        "seal": "",
        "signature": "",
    }
    if template is not None:
        data.update(
            {
                "name": template.name,
                "kind": template.kind,
                "title": template.title,
                "body": template.body,
                "issuer_lines": template.issuer_lines,
                "border": template.border,
                "seal": template.seal_id or "",
                "owner_organization": template.owner_organization_id or "",
            }
        )
        if template.is_default:
            data["is_default"] = "on"
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def city_template(city):
    """The city's default completion template, with its seal."""
    template = services.default_template("completion")
    template.issuer_lines = CITY_ISSUER
    template.seal = seal()
    template.save()
    assert template.owner_organization == city.root
    return template


def county_template(owner, name="结业证书（区）", issuer=COUNTY_ISSUER):
    return CertificateTemplate.objects.create(
        name=name,
        kind="completion",
        title="结业证书",
        body=shipped.COMPLETION_BODY,
        issuer_lines=issuer,
        owner_organization=owner,
    )


# --- Who changes what ---------------------------------------------------------------------------


def test_a_county_trainer_cannot_change_or_delete_the_citys_template(
    city, client_for, city_template
):
    county = client_for(city.trainer_a)
    edit = url("edit", city_template.pk)
    assert refused(county.get(edit))
    assert refused(county.post(edit, template_data(city_template, issuer_lines=NEW_ISSUER)))
    assert refused(county.get(url("delete", city_template.pk)))
    assert refused(county.post(url("delete", city_template.pk)))

    city_template.refresh_from_db()
    assert city_template.issuer_lines == CITY_ISSUER
    assert CertificateTemplate.objects.filter(pk=city_template.pk).exists()


def test_a_county_trainer_uses_the_citys_template_as_it_is(city, client_for, city_template):
    county = client_for(city.trainer_a)
    listing = county.get(url("list"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert city_template.name in html
    assert url("edit", city_template.pk) not in html  # listed, but not to be edited
    assert county.get(url("preview_pdf", city_template.pk)).status_code == 200
    assert county.get(url("history", city_template.pk)).status_code == 200
    assert county.get(url("usage", city_template.pk)).status_code == 200
    assert county.get(url("chosen", city_template.pk)).status_code == 200
    assert city_template.name in county.get(url("choose")).json()["html"]
    # A copy of it becomes hers.
    copy = county.get(url("copy", city_template.pk))
    assert copy.status_code == 200
    form = copy.context["form"]
    assert form.initial["owner_organization"] == city.county_a.pk
    assert not form.instance.is_default


def test_another_countys_template_is_not_there_for_her(city, client_for, city_template):
    theirs = county_template(city.county_b, name="青山县结业证书", issuer="中共青山县委组织部")
    county = client_for(city.trainer_a)
    for name in ("edit", "delete", "copy", "history", "history_results", "usage", "preview_pdf"):
        assert county.get(url(name, theirs.pk)).status_code == 404, name
    assert county.post(url("edit", theirs.pk), template_data(theirs)).status_code == 404
    assert county.get(url("chosen", theirs.pk)).status_code == 404
    assert theirs.name not in county.get(url("list")).content.decode()
    chooser = county.get(url("choose")).json()["html"]
    assert theirs.name not in chooser and "结业证书（默认）" in chooser
    # The city's trainer, above both, sees and changes it.
    assert client_for(city.trainer).get(url("edit", theirs.pk)).status_code == 200


def test_a_county_trainer_makes_her_own_template_and_changes_it(city, client_for, city_template):
    county = client_for(city.trainer_a)
    form = county.get(url("add"))
    assert form.context["form"].initial["owner_organization"] == city.county_a.pk
    response = county.post(url("add"), template_data(owner_organization=city.county_a.pk))
    assert response.status_code == 302 and not refused(response)
    mine = CertificateTemplate.objects.get(name="结业证书（城关区）")
    assert mine.owner_organization == city.county_a and not mine.is_default

    response = county.post(url("edit", mine.pk), template_data(mine, title="结业证明"))
    assert response.status_code == 302 and not refused(response)
    mine.refresh_from_db()
    assert mine.title == "结业证明"


def test_her_template_is_neither_given_away_nor_made_the_citys_default(
    city, client_for, city_template
):
    county = client_for(city.trainer_a)
    mine = county_template(city.county_a)
    response = county.post(
        url("edit", mine.pk), template_data(mine, owner_organization=city.county_b.pk)
    )
    assert response.status_code == 200
    assert "owner_organization" in response.context["form"].errors
    response = county.post(url("edit", mine.pk), template_data(mine, is_default="on"))
    assert response.status_code == 200
    assert "is_default" in response.context["form"].errors
    mine.refresh_from_db()
    assert mine.owner_organization == city.county_a and not mine.is_default
    assert CertificateTemplate.objects.get(kind="completion", is_default=True) == city_template


def test_the_city_trainer_changes_the_citys_template(city, client_for, city_template):
    own = client_for(city.trainer)
    response = own.post(
        url("edit", city_template.pk), template_data(city_template, issuer_lines=NEW_ISSUER)
    )
    assert response.status_code == 302 and not refused(response)
    city_template.refresh_from_db()
    assert city_template.issuer_lines == NEW_ISSUER and city_template.is_default


def test_a_township_trainer_uses_what_is_above_her_not_what_is_beside_her(city, client_for):
    township = factories.org("城关区东街道党工委", city.county_a, code="A-T1", kind="committee")
    sibling = factories.org("城关区西街道党工委", city.county_a, code="A-T2", kind="committee")
    trainer = factories.staff("trainer_t1", "trainer", township)
    above = county_template(city.county_a)
    beside = county_template(sibling, name="西街道结业证书")
    client = client_for(trainer)
    html = client.get(url("list")).content.decode()
    assert above.name in html and beside.name not in html
    assert refused(client.get(url("edit", above.pk)))
    assert client.get(url("edit", beside.pk)).status_code == 404


# --- Seals and signatures in the image library --------------------------------------------------


def test_a_county_trainer_cannot_replace_or_delete_the_citys_seal(city, client_for, city_template):
    county = client_for(city.trainer_a)
    picture = city_template.seal
    assert refused(county.get(reverse("wagtailimages:edit", args=[picture.pk])))
    replacement = ImageFile(BytesIO(shipped.sample_seal_png("伪造印章")), name="fake.png")
    assert refused(
        county.post(
            reverse("wagtailimages:edit", args=[picture.pk]),
            {"title": "伪造", "file": replacement, "collection": picture.collection_id},
        )
    )
    assert refused(county.post(reverse("wagtailimages:delete", args=[picture.pk])))
    picture.refresh_from_db()
    assert picture.title == "示范市委组织部印"
    # Her image library lists her own pictures, not the city's seal.
    own = Image.objects.create(
        title="城关区活动照片",
        file=ImageFile(BytesIO(shipped.sample_seal_png("照片")), name="photo.png"),
        uploaded_by_user=city.trainer_a,
    )
    library = county.get(reverse("wagtailimages:index")).context["page_obj"].object_list
    assert own in library and picture not in library
    # The city's trainer may.
    assert (
        client_for(city.trainer).get(reverse("wagtailimages:edit", args=[picture.pk])).status_code
        == 200
    )


# --- The round's template -----------------------------------------------------------------------


def round_data(**overrides):
    data = {
        "title": "城关区第四季度轮训",
        "opens_on": "2026-10-01",
        "closes_on": "2026-12-31",
        "makeup_deadline": "2027-01-31",
        "scope_roots": "A",
        "lessons": [],
        "completion_rule": "either",
        "hours": "2",
        "state": "draft",
    }
    data.update(overrides)
    return data


def test_the_round_form_offers_the_templates_she_may_use(city, client_for, city_template):
    mine = county_template(city.county_a)
    theirs = county_template(city.county_b, name="青山县结业证书")
    branch = county_template(city.branch_a, name="幸福社区结业证书")
    county = client_for(city.trainer_a)
    form = county.get(reverse("training_rounds:add"))
    assert 'name="certificate_template"' in form.content.decode()
    offered = set(form.context["form"].fields["certificate_template"].queryset)
    assert offered == {city_template, mine, branch}

    response = county.post(
        reverse("training_rounds:add"), round_data(certificate_template=theirs.pk)
    )
    assert response.status_code == 200
    assert "certificate_template" in response.context["form"].errors
    # A branch's template is not for a county-wide round.
    response = county.post(
        reverse("training_rounds:add"), round_data(certificate_template=branch.pk)
    )
    assert response.status_code == 200
    assert "certificate_template" in response.context["form"].errors
    assert not RoundTemplate.objects.exists()

    response = county.post(reverse("training_rounds:add"), round_data(certificate_template=mine.pk))
    assert response.status_code == 302
    chosen = RoundTemplate.objects.get()
    assert chosen.template == mine and chosen.round.title == "城关区第四季度轮训"
    # Back to the default.
    edit = reverse("training_rounds:edit", args=[chosen.round.pk])
    assert county.get(edit).context["form"].initial["certificate_template"] == mine.pk
    response = county.post(edit, round_data(certificate_template=""))
    assert response.status_code == 302
    assert not RoundTemplate.objects.exists()


def test_a_round_issues_with_its_own_template(city, client, city_template):
    mine = county_template(city.county_a)
    training_round = completed_round([city.county_a], city.member_a)
    services.round_template_set(training_round=training_round, template=mine)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=city.member_a)
    assert certificate.template == mine and certificate.snapshot.issuer == [COUNTY_ISSUER]
    page = client.get(reverse("certificates:verify", args=[certificate.code]))
    assert COUNTY_ISSUER in page.content.decode() and CITY_ISSUER not in page.content.decode()


# --- An issued certificate keeps what it said ---------------------------------------------------


def test_an_issued_certificate_keeps_its_issuer_text_and_seal_after_the_template_changes(
    city, client, client_for, city_template
):
    training_round = completed_round([city.root], city.member_a)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=city.member_a)
    original_seal = city_template.seal

    # The city's trainer rewrites the template and drops its seal; the seal's file is gone.
    response = client_for(city.trainer).post(
        url("edit", city_template.pk),
        template_data(city_template, issuer_lines=NEW_ISSUER, title="结业证明书", seal=""),
    )
    assert response.status_code == 302 and not refused(response)
    original_seal.file.delete(save=False)

    page = client.get(reverse("certificates:verify", args=[certificate.code]))
    html = page.content.decode()
    assert CITY_ISSUER in html and NEW_ISSUER not in html

    certificate = Certificate.objects.get(pk=certificate.pk)
    assert certificate.needs_rendering
    pdf = services.certificate_pdf(certificate=certificate).read()
    text = pdfs.text(pdf)
    assert CITY_ISSUER in text and NEW_ISSUER not in text
    assert "结业证书" in text and "结业证明书" not in text
    assert pdfs.image_count(pdf) == 1  # the seal, from the certificate's own copy

    # Rendered again from scratch, the same.
    Certificate.objects.filter(pk=certificate.pk).update(pdf="", pdf_rendered_at=None)
    again = services.certificate_pdf(certificate=Certificate.objects.get(pk=certificate.pk))
    assert CITY_ISSUER in pdfs.text(again.read())

    # A re-issued correction prints as the original did; a new issue prints the new template.
    corrected = services.certificate_reissue(certificate=certificate, user=city.trainer)
    assert corrected.snapshot == certificate.snapshot
    services.certificates_issue(
        training_round=completed_round([city.root], city.member_b, title="第二期"), render=False
    )
    later = Certificate.objects.get(member=city.member_b)
    assert later.snapshot.issuer == [NEW_ISSUER] and later.snapshot.title == "结业证明书"
    page = client.get(reverse("certificates:verify", args=[later.code]))
    assert NEW_ISSUER in page.content.decode()


def test_certificates_issued_alike_share_one_copy_of_their_template(city, city_template):
    first = completed_round([city.root], city.member_a)
    second = completed_round([city.root], city.member_b, title="第二期")
    services.certificates_issue(training_round=first, render=False)
    services.certificates_issue(training_round=second, render=False)
    snapshots = {c.snapshot_id for c in Certificate.objects.all()}
    assert len(snapshots) == 1
    snapshot = Certificate.objects.first().snapshot
    assert snapshot.seal.name.startswith("certificates/pictures/")
    assert snapshot.seal_image == city_template.seal
    with snapshot.seal.open("rb") as copy, city_template.seal.file.open("rb") as original:
        assert copy.read() == original.read()


# --- The migration ------------------------------------------------------------------------------


def migrate(target):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_certificates_issued_before_it_their_templates_copy(
    city, city_template
):
    services.certificates_issue(
        training_round=completed_round([city.root], city.member_a), render=False
    )
    certificate = Certificate.objects.get()
    latest = ("certificates", "0002_template_ownership_and_snapshots")
    try:
        before = migrate(("certificates", "0001_initial"))
        # Before ownership and snapshots: the template as it stands is all there is.
        before.get_model("certificates", "CertificateTemplate").objects.update(
            issuer_lines=f"{CITY_ISSUER}\n示范市委党校"
        )
    finally:
        migrate(latest)

    certificate = Certificate.objects.select_related("snapshot").get(pk=certificate.pk)
    snapshot = certificate.snapshot
    assert snapshot.fingerprint == f"backfill:{city_template.pk}"
    assert snapshot.issuer == [CITY_ISSUER, "示范市委党校"]
    assert (snapshot.title, snapshot.body) == (city_template.title, city_template.body)
    assert snapshot.seal_image_id == city_template.seal_id
    with snapshot.seal.open("rb") as copy, city_template.seal.file.open("rb") as original:
        assert copy.read() == original.read()
    template = CertificateTemplate.objects.get(pk=city_template.pk)
    assert template.owner_organization == city.root
    # The next issue takes its own snapshot; the backfilled one stays with its certificates.
    services.certificates_issue(
        training_round=completed_round([city.root], city.member_b, title="第二期"), render=False
    )
    assert Certificate.objects.get(member=city.member_b).snapshot != snapshot
