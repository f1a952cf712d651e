"""Upload attacks, refused where a person uploads: lesson videos (wagtailmedia admin), rosters
(the import page), Wagtail images and documents (admin), and the seal and signature a
certificate template names (snippet edit).

The attacks: a web page or an SVG with script under another name; a polyglot (a real MP4,
PNG, JPEG, GIF, ZIP or PDF that carries HTML or script); an HLS or concat playlist that points
at a local file or a URL; files over the size limits. Each refusal leaves the database and the
storage as they were. Real ffprobe/ffmpeg, real generated files; nothing of ours is mocked.
"""

import io
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from PIL import Image as PILImage
from PIL import PngImagePlugin
from wagtail.documents.models import Document
from wagtail.images.models import Image
from wagtail.models import Collection

from certificates.models import CertificateTemplate
from certificates.services import default_template
from core import uploads
from courses import video
from courses.models import LessonVideo
from courses.services import video_process
from courses.video import ProbeResult, TranscodeError
from members.models import SpreadsheetImport

from .courses.clips import ffmpeg_run, make_clip
from .members.spreadsheets import csv_bytes, xlsx

pytestmark = pytest.mark.django_db

SCRIPT = b"<script>alert(document.cookie)</script>"
HTML_PAGE = b"<!DOCTYPE html><html><body>" + SCRIPT + b"</body></html>"
SVG_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<circle r="30" fill="red"/>' + SCRIPT + b"</svg>"
)
MP4_BOX = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
SECRET = "LUNXUN-SECRET-7f3a9c"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def stored_files() -> dict:
    """Every file under MEDIA_ROOT, with its content."""
    root = Path(django_settings.MEDIA_ROOT)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def form_errors(response, field="file") -> list[str]:
    form = response.context["form"]
    return [str(error) for error in form.errors.get(field, [])]


@pytest.fixture
def listener():
    """A TCP socket on 127.0.0.1 that must never be contacted: a connection, even one closed
    at once, waits in its backlog and accept() finds it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def assert_never_contacted(server):
    with pytest.raises(BlockingIOError):
        connection, _address = server.accept()
        connection.close()


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "private" / "secret.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"{SECRET}\n" * 200)
    return path


class OpenWatch:
    """A named pipe standing for a private file: whoever opens it to read is seen (a writer
    can open a pipe only while a reader has it open), then let go with an empty read."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.is_set():
            try:
                handle = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open
                time.sleep(0.005)
                continue
            self.opened += 1
            os.close(handle)

    def close(self):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def watched_file(tmp_path):
    path = tmp_path / "private" / "watched.ts"
    path.parent.mkdir(exist_ok=True)
    watch = OpenWatch(path)
    yield watch
    watch.close()


@pytest.fixture
def secret_video(tmp_path):
    """A real video (MPEG-TS, what an HLS segment is) somewhere private on the server."""
    path = tmp_path / "private" / "secret-video.ts"
    path.parent.mkdir(exist_ok=True)
    return make_clip(path, size="160x90", seconds=2, audio=False, extra=("-f", "mpegts"))


# --- Lesson videos: the wagtailmedia upload in the admin ---------------------------------------


@pytest.fixture
def trainer(city, client_for):
    return client_for(city.trainer)


def upload_video(client, name, data):
    return client.post(
        reverse("wagtailmedia:add", args=["video"]),
        {"title": "第一讲", "file": SimpleUploadedFile(name, data), "collection": 1},
    )


def assert_video_refused(response, before, *fragments):
    assert response.status_code == 200
    errors = form_errors(response)
    assert errors, "the upload was not refused"
    for fragment in fragments:
        assert fragment in " ".join(errors)
    assert not LessonVideo.objects.exists()
    assert stored_files() == before


def playlists(url_or_path):
    """The ways a text file asks ffmpeg to open something else."""
    return {
        "hls": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{url_or_path}\n#EXT-X-ENDLIST\n",
        "hls-bom": f"\ufeff\r\n#EXTM3U\n#EXTINF:10,\n{url_or_path}\n#EXT-X-ENDLIST\n",
        "ffconcat": f"ffconcat version 1.0\nfile '{url_or_path}'\n",
        "concat": f"file '{url_or_path}'\n",
    }


@pytest.mark.parametrize("kind", ["hls", "hls-bom", "ffconcat", "concat"])
@pytest.mark.parametrize("name", ["lecture.mp4", "lecture.ts", "lecture.mkv"])
def test_playlist_pointing_at_a_url_is_refused_and_the_url_never_fetched(
    trainer, listener, kind, name
):
    port = listener.getsockname()[1]
    before = stored_files()
    text = playlists(f"http://127.0.0.1:{port}/segment.ts")[kind]
    response = upload_video(trainer, name, text.encode())
    assert_video_refused(response, before)
    assert_never_contacted(listener)


@pytest.mark.parametrize("name", ["lecture.m3u8", "lecture.m3u", "lecture.txt"])
def test_playlist_extensions_are_refused(trainer, listener, name):
    port = listener.getsockname()[1]
    before = stored_files()
    text = playlists(f"http://127.0.0.1:{port}/segment.ts")["hls"]
    assert_video_refused(upload_video(trainer, name, text.encode()), before, f".{name[8:]}")
    assert_never_contacted(listener)


@pytest.mark.parametrize("kind", ["hls", "ffconcat"])
@pytest.mark.parametrize("target", ["path", "file-url", "video"])
def test_playlist_pointing_at_a_local_file_is_refused_and_nothing_of_it_kept(
    trainer, secret_file, secret_video, kind, target
):
    path = {"path": secret_file, "file-url": secret_file, "video": secret_video}[target]
    reference = path.as_uri() if target == "file-url" else str(path)
    before = stored_files()
    response = upload_video(trainer, "lecture.mp4", playlists(reference)[kind].encode())
    assert_video_refused(response, before)
    assert SECRET not in response.content.decode()
    assert not any(SECRET.encode() in data for data in stored_files().values())


@pytest.mark.parametrize("kind", ["hls", "hls-bom", "ffconcat", "concat"])
@pytest.mark.parametrize("form", ["path", "file-url"])
def test_playlist_pointing_at_a_local_file_never_opens_it(trainer, watched_file, kind, form):
    reference = watched_file.path.as_uri() if form == "file-url" else str(watched_file.path)
    before = stored_files()
    response = upload_video(trainer, "lecture.mp4", playlists(reference)[kind].encode())
    assert_video_refused(response, before)
    time.sleep(0.05)
    assert watched_file.opened == 0


def test_the_worker_refuses_a_stored_playlist_without_opening_what_it_names(
    city, listener, secret_file, watched_file
):
    """A source already in storage (put there before these checks, or by hand) goes through
    the worker's own probe: refused, nothing fetched or opened, nothing written."""
    port = listener.getsockname()[1]
    text = (
        f"#EXTM3U\n#EXTINF:5,\n{watched_file.path}\n#EXTINF:5,\nhttp://127.0.0.1:{port}/a.ts\n"
        f"#EXTINF:5,\n{secret_file}\n#EXT-X-ENDLIST\n"
    )
    lesson_video = LessonVideo(title="旧视频", collection_id=1)
    lesson_video.file.save("old.mp4", ContentFile(text.encode()), save=True)
    before = stored_files()
    video_process(video_id=lesson_video.pk)
    lesson_video.refresh_from_db()
    assert lesson_video.state == LessonVideo.State.FAILED
    assert not lesson_video.output_prefix and not lesson_video.master_playlist
    assert stored_files() == before
    assert SECRET not in lesson_video.failure_reason
    assert_never_contacted(listener)
    assert watched_file.opened == 0


@pytest.mark.parametrize("kind", ["hls", "ffconcat"])
def test_ffmpeg_itself_reads_no_playlist_even_when_told_it_is_a_video(
    tmp_path, listener, secret_video, watched_file, kind
):
    """The transcode command, run on a playlist as if it had been probed: its own format and
    protocol whitelists stop it. Without them, ffmpeg would transcode the private video into
    the public ladder."""
    port = listener.getsockname()[1]
    references = [
        str(secret_video),
        secret_video.as_uri(),
        str(watched_file.path),
        f"http://127.0.0.1:{port}/x.ts",
    ]
    for reference in references:
        source = tmp_path / "source.mp4"
        source.write_text(playlists(reference)[kind])
        pretend = ProbeResult(
            duration=2.0, width=160, height=90, video_codec="h264", has_audio=False,
            format_name="mpegts", frame_rate=25.0,
        )  # fmt: skip
        out = tmp_path / "out"
        with pytest.raises(TranscodeError):
            video.transcode(source, out, probe=pretend)
        assert not out.exists()
    assert_never_contacted(listener)
    assert watched_file.opened == 0


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", size="160x90", seconds=2)


def with_title(tmp_path, clip, title):
    """The clip with a title tag, its index (and the tag) moved to the front."""
    out = tmp_path / "tagged.mp4"
    ffmpeg_run("-i", clip, "-c", "copy", "-metadata", f"title={title}", "-movflags", "+faststart",
               out)  # fmt: skip
    return out.read_bytes()


@pytest.mark.parametrize(
    "attack",
    [
        "html-named-mp4",
        "svg-named-mp4",
        "html-after-mp4-box",
        "mp4-then-html",
        "script-in-mp4-title",
        "gif-header-then-html",
        "utf16-html",
    ],
)
def test_web_pages_and_polyglots_are_refused_as_videos(trainer, tmp_path, clip, attack):
    data = {
        "html-named-mp4": lambda: HTML_PAGE,
        "svg-named-mp4": lambda: SVG_SCRIPT,
        "html-after-mp4-box": lambda: MP4_BOX + HTML_PAGE,
        # A real, playable MP4 that carries a web page after its last box: ffprobe accepts it.
        "mp4-then-html": lambda: clip.read_bytes() + HTML_PAGE,
        "script-in-mp4-title": lambda: with_title(tmp_path, clip, SCRIPT.decode()),
        "gif-header-then-html": lambda: b"GIF89a" + HTML_PAGE,
        "utf16-html": lambda: "\ufeff<html><script>alert(1)</script></html>".encode("utf-16"),
    }[attack]()
    before = stored_files()
    assert_video_refused(upload_video(trainer, "lecture.mp4", data), before)


def test_a_real_video_is_still_accepted(trainer, clip):
    response = upload_video(trainer, "lecture.mp4", clip.read_bytes())
    assert response.status_code == 302, form_errors(response)
    assert LessonVideo.objects.count() == 1


def test_an_oversized_video_is_refused_with_the_limit(trainer, settings, clip):
    settings.LUNXUN_VIDEO_MAX_BYTES = 5000
    before = stored_files()
    response = upload_video(trainer, "lecture.mp4", clip.read_bytes())
    assert_video_refused(response, before, filesizeformat(5000))


# --- Rosters: the import page ---------------------------------------------------------------------

ROSTER = [["姓名", "手机号码", "党组织编码"], ["新人甲", "13700009001", "A-01"]]


def upload_roster(client, name, data):
    return client.post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile(name, data)},
    )


@pytest.fixture
def secretary(city, client_for):
    return client_for(city.secretary_a)


def assert_roster_refused(response, *fragments):
    assert response.status_code == 200
    errors = form_errors(response)
    assert errors, "the file was not refused"
    for fragment in fragments:
        assert fragment in " ".join(errors)
    assert not SpreadsheetImport.objects.exists()


def zip_with_comment(data: bytes, comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry.filename))
        target.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "attack"),
    [
        ("roster.xlsx", "html"),
        ("roster.csv", "html"),
        ("roster.csv", "svg"),
        ("roster.xlsx", "html-then-workbook"),
        ("roster.xlsx", "workbook-then-html"),
        ("roster.csv", "script-in-a-cell"),
        ("roster.csv", "gbk-page"),
    ],
)
def test_web_pages_and_polyglots_are_refused_as_rosters(secretary, name, attack):
    workbook = xlsx(ROSTER)
    data = {
        "html": lambda: HTML_PAGE,
        "svg": lambda: SVG_SCRIPT,
        # A ZIP may carry anything before its first entry or in its closing comment; openpyxl
        # reads both of these as the roster they contain.
        "html-then-workbook": lambda: HTML_PAGE + workbook,
        "workbook-then-html": lambda: zip_with_comment(workbook, HTML_PAGE),
        "script-in-a-cell": lambda: csv_bytes(
            [*ROSTER, ["<img src=x onerror=alert(1)>", "1", "2"]]
        ),
        "gbk-page": lambda: "<html><body>党员名册<script>alert(1)</script>".encode("gbk"),
    }[attack]()
    assert_roster_refused(upload_roster(secretary, name, data), uploads.web_code_message())


def test_a_real_roster_is_still_accepted(secretary):
    for name, data in [("roster.xlsx", xlsx(ROSTER)), ("roster.csv", csv_bytes(ROSTER, "gbk"))]:
        response = upload_roster(secretary, name, data)
        assert response.status_code == 302, form_errors(response)
    assert SpreadsheetImport.objects.count() == 2


def test_an_oversized_roster_is_refused_with_the_limit(secretary, settings):
    settings.LUNXUN_IMPORT_MAX_BYTES = 2000
    data = xlsx(ROSTER)
    assert len(data) > 2000
    assert_roster_refused(upload_roster(secretary, "roster.xlsx", data), filesizeformat(2000))


def test_a_workbook_that_unpacks_to_far_more_is_refused(secretary, settings):
    """A zip bomb: a small, valid workbook with a part that unpacks to 50 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx(ROSTER))) as source:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                target.writestr(entry, source.read(entry.filename))
            target.writestr("xl/media/padding.bin", bytes(50 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 200_000
    settings.LUNXUN_IMPORT_MAX_BYTES = 200_000
    assert_roster_refused(upload_roster(secretary, "roster.xlsx", data), filesizeformat(4_000_000))


def test_a_csv_that_breaks_the_reader_is_refused_with_a_reason(secretary):
    data = b'\xe5\xa7\x93\xe5\x90\x8d,x\n"' + b"a" * 200_000 + b'",1\n'
    assert_roster_refused(upload_roster(secretary, "roster.csv", data), "CSV")


# --- Pictures: Wagtail images, certificate seals and signatures --------------------------------


def png(text=None, compressed=False, after=b"", size=(96, 96)) -> bytes:
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("Comment", text, zip=compressed)
    buffer = io.BytesIO()
    PILImage.new("RGBA", size, (200, 20, 20, 160)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue() + after


def jpeg(comment=None) -> bytes:
    buffer = io.BytesIO()
    extra = {"comment": comment} if comment is not None else {}
    PILImage.new("RGB", (96, 96), "red").save(buffer, "JPEG", **extra)
    return buffer.getvalue()


def gif(comment=None) -> bytes:
    buffer = io.BytesIO()
    extra = {"comment": comment} if comment is not None else {}
    PILImage.new("P", (96, 96), 1).save(buffer, "GIF", **extra)
    return buffer.getvalue()


PICTURE_ATTACKS = {
    "svg-with-script.svg": lambda: SVG_SCRIPT,
    "svg-named.png": lambda: SVG_SCRIPT,
    "html-named.png": lambda: HTML_PAGE,
    "html-after-png-header.png": lambda: b"\x89PNG\r\n\x1a\n" + HTML_PAGE,
    "png-text-chunk.png": lambda: png(text=HTML_PAGE.decode()),
    "png-compressed-text.png": lambda: png(text=HTML_PAGE.decode(), compressed=True),
    "png-then-html.png": lambda: png(after=HTML_PAGE),
    "jpeg-comment.jpg": lambda: jpeg(comment=HTML_PAGE),
    "gif-comment.gif": lambda: gif(comment=SCRIPT),
}


@pytest.fixture
def root_collection(db):
    return Collection.get_first_root_node()


def upload_image(client, collection, name, data, multiple):
    if multiple:
        return client.post(
            reverse("wagtailimages:add_multiple"),
            {"files[]": SimpleUploadedFile(name, data), "collection": collection.pk},
        )
    return client.post(
        reverse("wagtailimages:add"),
        {"title": "图片", "file": SimpleUploadedFile(name, data), "collection": collection.pk},
    )


def image_refused(response, multiple) -> bool:
    if multiple:
        return response.status_code == 200 and response.json()["success"] is False
    return response.status_code == 200 and bool(form_errors(response))


@pytest.mark.parametrize("multiple", [False, True], ids=["single", "multiple"])
@pytest.mark.parametrize("name", list(PICTURE_ATTACKS))
def test_web_pages_and_polyglots_are_refused_as_wagtail_images(
    trainer, root_collection, name, multiple
):
    before = stored_files()
    response = upload_image(trainer, root_collection, name, PICTURE_ATTACKS[name](), multiple)
    assert image_refused(response, multiple), response.content[:500]
    assert not Image.objects.exists()
    assert stored_files() == before


@pytest.mark.parametrize("multiple", [False, True], ids=["single", "multiple"])
def test_real_pictures_are_still_accepted_as_wagtail_images(trainer, root_collection, multiple):
    for name, data in [("seal.png", png()), ("photo.jpg", jpeg()), ("icon.gif", gif())]:
        response = upload_image(trainer, root_collection, name, data, multiple)
        assert not image_refused(response, multiple), response.content[:500]
    assert Image.objects.count() == 3


def test_image_settings_never_allow_svg():
    from wagtail.images.utils import get_allowed_image_extensions

    assert django_settings.WAGTAILIMAGES_IMAGE_FORM_BASE == "courses.admin_forms.ImageForm"
    assert "svg" not in get_allowed_image_extensions()


def stored_image(name, data) -> Image:
    """A picture already in the image library (uploaded before these checks, say)."""
    stored = default_storage.save(f"original_images/{name}", ContentFile(data))
    return Image.objects.create(title=name, file=stored, width=96, height=96)


def template_form(template, **changes) -> dict:
    data = {
        "name": template.name,
        "kind": template.kind,
        "title": template.title,
        "body": template.body,
        "issuer_lines": template.issuer_lines,
        "border": template.border,
        "seal": template.seal_id or "",
        "signature": template.signature_id or "",
    }
    if template.is_default:
        data["is_default"] = "on"
    data.update(changes)
    return data


@pytest.fixture
def template(db):
    return default_template("completion")


def edit_template(client, template, **changes):
    return client.post(
        reverse("wagtailsnippets_certificates_certificatetemplate:edit", args=[template.pk]),
        template_form(template, **changes),
    )


CERTIFICATE_ATTACKS = {**PICTURE_ATTACKS, "plain-gif.gif": gif, "webp.webp": None}


def webp() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (96, 96), "red").save(buffer, "WEBP")
    return buffer.getvalue()


@pytest.mark.parametrize("field", ["seal", "signature"])
@pytest.mark.parametrize("name", list(CERTIFICATE_ATTACKS))
def test_a_template_refuses_a_seal_or_signature_that_is_not_a_plain_png_or_jpeg(
    trainer, template, field, name
):
    data = webp() if name == "webp.webp" else CERTIFICATE_ATTACKS[name]()
    image = stored_image(name, data)
    before = CertificateTemplate.objects.values().get(pk=template.pk)
    response = edit_template(trainer, template, **{field: image.pk})
    assert response.status_code == 200
    assert form_errors(response, field), "the picture was accepted"
    assert CertificateTemplate.objects.values().get(pk=template.pk) == before


@pytest.mark.parametrize("data", [png, jpeg], ids=["png", "jpeg"])
def test_a_template_takes_a_real_png_or_jpeg_seal(trainer, template, data):
    seal, signature = stored_image("seal", data()), stored_image("signature", data())
    response = edit_template(trainer, template, seal=seal.pk, signature=signature.pk)
    assert response.status_code == 302, response.context and response.context["form"].errors
    template.refresh_from_db()
    assert (template.seal_id, template.signature_id) == (seal.pk, signature.pk)


def test_an_oversized_seal_is_refused_with_the_limit(trainer, template, settings):
    settings.LUNXUN_CERTIFICATE_IMAGE_MAX_BYTES = 1000
    big = png(text="x" * 3000)
    seal = stored_image("big.png", big)
    response = edit_template(trainer, template, seal=seal.pk)
    assert response.status_code == 200
    assert filesizeformat(1000) in " ".join(form_errors(response, "seal"))
    template.refresh_from_db()
    assert template.seal_id != seal.pk


# --- Documents: the Wagtail document library ----------------------------------------------------


def pdf() -> bytes:
    """A minimal, valid one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (4, xref))
    return out.getvalue()


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>学习材料</w:t></w:r></w:p>'
            "</w:body></w:document>",
        )
    return buffer.getvalue()


DOCUMENT_ATTACKS = {
    "html-named.pdf": lambda: HTML_PAGE,
    "pdf-header-then-html.pdf": lambda: b"%PDF-1.4\n" + HTML_PAGE + pdf()[9:],
    "pdf-then-html.pdf": lambda: pdf() + HTML_PAGE,
    "html-named.docx": lambda: HTML_PAGE,
    "html-then-docx.docx": lambda: HTML_PAGE + docx(),
    "xlsx-named.docx": lambda: xlsx(ROSTER),
    "html-named.doc": lambda: HTML_PAGE,
    "html-named.xlsx": lambda: HTML_PAGE,
    "page.txt": lambda: HTML_PAGE,
    "notes-with-a-tag.txt": lambda: "学习笔记\n第二段 <img src=x onerror=alert(1)>\n".encode(),
    "svg.txt": lambda: SVG_SCRIPT,
    "page.html": lambda: HTML_PAGE,
    "drawing.svg": lambda: SVG_SCRIPT,
}


def upload_document(client, collection, name, data, multiple):
    if multiple:
        return client.post(
            reverse("wagtaildocs:add_multiple"),
            {"files[]": SimpleUploadedFile(name, data), "collection": collection.pk},
        )
    return client.post(
        reverse("wagtaildocs:add"),
        {"title": "材料", "file": SimpleUploadedFile(name, data), "collection": collection.pk},
    )


@pytest.mark.parametrize("multiple", [False, True], ids=["single", "multiple"])
@pytest.mark.parametrize("name", list(DOCUMENT_ATTACKS))
def test_web_pages_and_polyglots_are_refused_as_documents(trainer, root_collection, name, multiple):
    before = stored_files()
    response = upload_document(trainer, root_collection, name, DOCUMENT_ATTACKS[name](), multiple)
    assert image_refused(response, multiple), response.content[:500]
    assert not Document.objects.exists()
    assert stored_files() == before


def test_real_documents_are_still_accepted_and_served_safely(trainer, root_collection):
    files = [
        ("材料.pdf", pdf()),
        ("材料.docx", docx()),
        ("名册.xlsx", xlsx(ROSTER)),
        ("笔记.txt", "学习笔记：a < b 且 c > d。\n".encode("gbk")),
    ]
    for name, data in files:
        response = upload_document(trainer, root_collection, name, data, multiple=False)
        assert response.status_code == 302, form_errors(response)
    assert Document.objects.count() == len(files)
    for document in Document.objects.all():
        served = trainer.get(document.url)
        assert served.status_code == 200
        assert served["X-Content-Type-Options"] == "nosniff"
        assert served["Content-Security-Policy"] == "default-src 'none'"
        if not document.filename.endswith(".pdf"):
            assert served["Content-Disposition"].startswith("attachment")


def test_an_oversized_document_is_refused_with_the_limit(trainer, root_collection, settings):
    settings.LUNXUN_DOCUMENT_MAX_BYTES = 300
    response = upload_document(trainer, root_collection, "材料.pdf", pdf() + b" " * 400, False)
    assert filesizeformat(300) in " ".join(form_errors(response))
    assert not Document.objects.exists()


def test_document_settings():
    assert django_settings.WAGTAILDOCS_DOCUMENT_FORM_BASE == "courses.admin_forms.DocumentForm"
    allowed = {extension.lower() for extension in django_settings.WAGTAILDOCS_EXTENSIONS}
    assert not allowed & {"html", "htm", "xhtml", "svg", "xml", "js", "mht", "shtml", "swf"}
    assert getattr(django_settings, "WAGTAILDOCS_SERVE_METHOD", None) == "serve_view"


def test_markup_messages_are_translated():
    assert uploads.web_code_message() != (
        "This file contains web page code (HTML, SVG or script) and is not accepted. "
        "Please upload the original file."
    )
