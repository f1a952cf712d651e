"""Seals and signatures are the organisation's own: their renditions under /media/images/ go to
trainers only, where a course cover's stay public. Over real HTTP, through the media route the
embedded profile serves (config.urls)."""

from io import BytesIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.images import ImageFile
from PIL import Image as Picture
from wagtail.images.models import Image

from certificates import default_template as shipped
from certificates import services
from certificates.models import Certificate

from ..certificates.rounds_setup import completed_round
from . import builders

pytestmark = pytest.mark.django_db


def png(colour="#336699") -> bytes:
    out = BytesIO()
    Picture.new("RGB", (640, 360), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def pictures(city, settings, tmp_path):
    """A seal and a signature on the city's template, and a course's cover, with a rendition
    each as the admin's chooser would make."""
    assert settings.LUNXUN_SERVE_MEDIA
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # Wagtail caches renditions: an earlier test's are gone from disk
    builders.root_collection()
    made = {
        "seal": Image.objects.create(
            title="印章",
            file=ImageFile(BytesIO(shipped.sample_seal_png()), name="private-seal.png"),
        ),
        "signature": Image.objects.create(
            title="签名", file=ImageFile(BytesIO(png("#000000")), name="private-signature.png")
        ),
        "cover": Image.objects.create(
            title="封面", file=ImageFile(BytesIO(png()), name="public-cover.png")
        ),
    }
    template = services.default_template("completion")
    template.seal, template.signature = made["seal"], made["signature"]
    template.save()
    builders.course("有封面的课程", cover=made["cover"])
    renditions = {key: image.get_rendition("max-165x165") for key, image in made.items()}
    yield made, renditions
    cache.clear()


def users(city):
    superuser = get_user_model().objects.create_superuser("root", password="x" * 12)
    return {
        "member": city.member_a.user,
        "secretary": city.secretary_a,
        "operator": city.operator_a,
        "trainer": city.trainer,
        "county_trainer": city.trainer_a,
        "superuser": superuser,
    }


def test_seal_and_signature_renditions_go_to_trainers_only(city, client, client_for, pictures):
    _, renditions = pictures
    people = users(city)
    for key in ("seal", "signature"):
        url = renditions[key].url
        assert url.startswith(settings.MEDIA_URL + "images/")
        assert client.get(url).status_code == 404, key
        for who in ("member", "secretary", "operator"):
            assert client_for(people[who]).get(url).status_code == 404, (key, who)
        for who in ("trainer", "county_trainer", "superuser"):
            response = client_for(people[who]).get(url)
            assert response.status_code == 200, (key, who)
            assert response["Cache-Control"] == "private, no-store"
            assert response["Content-Type"] == "image/png"


def test_a_course_covers_rendition_stays_public(city, client, pictures):
    _, renditions = pictures
    response = client.get(renditions["cover"].url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "private" not in response.get("Cache-Control", "")


def test_a_seal_once_printed_stays_private_after_the_template_drops_it(
    city, client, client_for, pictures
):
    made, renditions = pictures
    services.certificates_issue(
        training_round=completed_round([city.root], city.member_a), render=False
    )
    template = services.default_template("completion")
    template.seal = template.signature = None
    template.save()
    assert client.get(renditions["seal"].url).status_code == 404
    assert client_for(city.member_a.user).get(renditions["signature"].url).status_code == 404
    assert client_for(city.trainer_a).get(renditions["seal"].url).status_code == 200

    # Neither the certificate's own copy nor the original is served by the media route.
    snapshot = Certificate.objects.get().snapshot
    for name in (snapshot.seal.name, made["seal"].file.name):
        assert client_for(city.trainer).get(settings.MEDIA_URL + name).status_code == 404
