"""Certificates as PDF, with WeasyPrint.

Where the time went (cProfile of write_pdf, WeasyPrint 70, one core). A certificate set in
the full Noto Serif CJK SC took 0.18-0.23 s and 250 KB, and most of it was font work redone
for every PDF: WeasyPrint subsets each embedded font keeping glyph ids, so the subsetting
(libharfbuzz-subset, twice per font) and the embedded file grow with the font's 65,535
glyphs, not with the 80 a certificate prints; the bold title face doubled it, and each
FontConfiguration copied the 26 MB collection again. Laying out 100 certificates in one
document showed the rest: about 25 ms a page of style, layout and drawing, plus, in every
PDF, segno's mask search (4 ms), the seal (a PNG with transparency, which WeasyPrint splits
into colour and alpha and compresses again each time: 15 ms) and 50 KB of base64 for the
HTML parser (5 ms).

What is done about it, each step measured (``bench/bench_certificates.py``):

- the font is cut once into small faces (``fonts.py``): Core (GB 2312, 7,700 glyphs) for
  single certificates, a face of exactly the run's characters for bulk runs, a face of the
  template's title, and Plus / HanaMin for rarer characters, registered only when a
  document needs them;
- one FontConfiguration and the parsed stylesheets live as long as the process;
- the seal and signature become JPEGs on white once per image, embedded as they are and
  served from memory; the seal is painted first, so the lines print over its red;
- the QR code (segno, SVG) uses a fixed mask: any of the eight is valid.

Every certificate stays its own WeasyPrint document: a standalone PDF holding only its own
glyphs. Laying out batches and splitting the pages saves a few milliseconds more per
certificate, but would leave in each member's PDF the glyphs (and text map) of the batch's
other names.

Memory: with one engine per process the resident size stays flat over thousands of
certificates (the naive loop grows by megabytes per certificate); ``iter_rendered`` still
writes in a child process replaced every ``recycle_after`` certificates, so that a run of
any length holds memory bounded by what one child reaches.
"""

import atexit
import calendar
import hashlib
import html
import io
import itertools
import logging
import multiprocessing
import multiprocessing.util
import os
import re
import resource
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pikepdf
import segno
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from PIL import Image
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from . import fonts

logger = logging.getLogger(__name__)

CSS_FILE = Path(settings.BASE_DIR) / "templates" / "certificates" / "pdf" / "certificate.css"
DOCUMENT_TEMPLATE = "certificates/pdf/document.html"
# Rows of a study-hours statement's table on its first sheet, and on each further sheet.
FIRST_SHEET_ROWS = 5
NEXT_SHEET_ROWS = 18
# Seal: 40 mm printed, 480 px is 300 dpi. Signature: 16 mm high.
SEAL_PIXELS = 480
SIGNATURE_PIXELS = (720, 190)
MERGE_CHUNK = 100  # sheets laid out together in one WeasyPrint document by render_merged


@dataclass(frozen=True)
class Content:
    """What is printed on one certificate."""

    kind: str  # "completion" | "hours"
    number: str
    code: str
    verify_url: str
    name: str
    organization_name: str
    round_title: str
    opens_on: date | None
    closes_on: date | None
    hours: Decimal
    year: int
    issued_on: date
    entries: tuple = ()  # study-hours statements: ((date, title, hours), ...)


def content_for(certificate, verify_url: str) -> Content:
    """The printed facts of a certificates.models.Certificate (copied at issue)."""
    return Content(
        kind=certificate.kind,
        number=certificate.number,
        code=certificate.code,
        verify_url=verify_url,
        name=certificate.name,
        organization_name=certificate.organization_name,
        round_title=certificate.round_title,
        opens_on=certificate.opens_on,
        closes_on=certificate.closes_on,
        hours=certificate.hours,
        year=certificate.year,
        issued_on=certificate.issued_on,
    )


# --- text ---------------------------------------------------------------------------------


def chinese_date(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def hours_text(value) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return f"{value.normalize():f}"


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def body_paragraphs(body: str, content: Content) -> list[dict]:
    """The template's text with its placeholders filled, one dict per paragraph."""
    values = {
        "name": f'<span class="name">{html.escape(content.name)}</span>',
        "organization": html.escape(content.organization_name),
        "round": html.escape(content.round_title),
        "opens": f'<span class="date">{chinese_date(content.opens_on)}</span>',
        "closes": f'<span class="date">{chinese_date(content.closes_on)}</span>',
        "hours": hours_text(content.hours),
        "year": str(content.year),
        "number": html.escape(content.number),
    }
    paragraphs = []
    for block in re.split(r"\n\s*\n", body.strip()):
        text = "".join(line.strip() for line in block.splitlines())
        if not text:
            continue
        filled = PLACEHOLDER.sub(
            lambda m: values.get(m.group(1), m.group(0)), html.escape(text, quote=False)
        )
        css = " salutation" if text.endswith(("：", ":")) else ""
        paragraphs.append({"html": mark_safe(filled), "css": css})
    return paragraphs


def qr_svg(url: str) -> bytes:
    """The verification URL as a QR code, SVG. A fixed mask: any of the eight makes a valid
    code, and segno's search for the best costs 4 ms a certificate."""
    out = io.BytesIO()
    segno.make(url, error="m", mask=0).save(out, kind="svg", border=0, dark="#000", xmldecl=False)
    return out.getvalue()


# --- images -------------------------------------------------------------------------------


_IMAGE_CACHE: "OrderedDict[tuple, tuple[str, bytes]]" = OrderedDict()
# One render at a time in a process: Pango's font map is not thread-safe, and the engine's
# fetcher serves each document's QR code under the same URL.
_lock = threading.RLock()


def image_resource(picture, box: tuple[int, int]) -> tuple[str, bytes] | None:
    """A picture file (a seal, a signature) as a JPEG on white, at most `box` pixels: (its
    lunxun: URL, bytes).

    Cached per file name (a replaced picture is stored under a new name). WeasyPrint embeds a
    JPEG as it is, where a PNG with transparency is split into colour and alpha and compressed
    again in every PDF (15 ms for a seal); and a URL served from memory keeps 50 KB of base64
    out of the HTML parser.
    """
    if not picture:
        return None
    key = (picture.name, box)
    with _lock:
        if key in _IMAGE_CACHE:
            _IMAGE_CACHE.move_to_end(key)
            return _IMAGE_CACHE[key]
    try:
        with picture.open("rb") as file:
            data = jpeg_on_white(file.read(), box)
    except (OSError, ValueError) as error:
        logger.warning("Certificate image %s cannot be used: %s", picture.name, error)
        return None
    resource = (f"lunxun:image/{hashlib.sha1(data, usedforsecurity=False).hexdigest()}", data)
    with _lock:
        _IMAGE_CACHE[key] = resource
        while len(_IMAGE_CACHE) > 32:
            _IMAGE_CACHE.popitem(last=False)
    return resource


def jpeg_on_white(data: bytes, box: tuple[int, int]) -> bytes:
    with Image.open(io.BytesIO(data)) as source:
        picture = source.convert("RGBA")
    picture.thumbnail(box, Image.LANCZOS)
    flat = Image.new("RGB", picture.size, "white")
    flat.paste(picture, mask=picture.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, "JPEG", quality=90, subsampling=0, optimize=True)
    return out.getvalue()


# --- sheets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """What a template prints the same on every certificate, worked out once (picklable:
    child processes get it as it is)."""

    kind: str
    title: str
    body: str
    issuer_lines: tuple
    border: str
    seal: str | None = None  # lunxun: URL
    signature: str | None = None
    images: tuple = ()  # ((URL, JPEG bytes), ...)
    title_face: fonts.Face | None = None


def look_of(template) -> Look:
    """The look of a certificates.models.CertificateTemplate (a preview) or TemplateSnapshot
    (certificates as issued): anything with the template's text fields and printed_pictures()."""
    seal_file, signature_file = template.printed_pictures()
    seal = image_resource(seal_file, (SEAL_PIXELS, SEAL_PIXELS))
    signature = image_resource(signature_file, SIGNATURE_PIXELS)
    with translation.override(settings.LANGUAGE_CODE):
        continued = gettext("(continued)")
    return Look(
        kind=template.kind,
        title=template.title,
        body=template.body,
        issuer_lines=tuple(
            line.strip() for line in (template.issuer_lines or "").splitlines() if line.strip()
        ),
        border=template.border,
        seal=seal and seal[0],
        signature=signature and signature[0],
        images=tuple(image for image in (seal, signature) if image),
        title_face=fonts.title_face(template.title + continued),
    )


def entry_rows(entries) -> list[tuple[str, str, str]]:
    return [
        (chinese_date(when) if isinstance(when, date) else str(when), str(what), hours_text(h))
        for when, what, h in entries
    ]


def sheets_for(content: Content, look: Look, anchor: str) -> list[dict]:
    """The pages of one certificate: one, or more for a long study-hours statement."""
    rows = entry_rows(content.entries)
    first = {
        "kind": content.kind,
        "anchor": anchor,
        "title": look.title,
        "paragraphs": body_paragraphs(look.body, content),
        "issuer_lines": look.issuer_lines,
        "issued_on": chinese_date(content.issued_on),
        "number": content.number,
        "qr": f"lunxun:qr/{anchor}",
        "seal": look.seal,
        "signature": look.signature,
        "entries": rows[:FIRST_SHEET_ROWS],
    }
    sheets = [first]
    for start in range(FIRST_SHEET_ROWS, len(rows), NEXT_SHEET_ROWS):
        sheets.append(
            {
                "kind": content.kind,
                "anchor": f"{anchor}-{len(sheets)}",
                "continued": True,
                "title": look.title,
                "name": content.name,
                "number": content.number,
                "entries": rows[start : start + NEXT_SHEET_ROWS],
            }
        )
    return sheets


def page_count(content: Content) -> int:
    extra = max(0, len(content.entries) - FIRST_SHEET_ROWS)
    return 1 + -(-extra // NEXT_SHEET_ROWS)


@dataclass(frozen=True)
class Job:
    """One PDF ready for WeasyPrint: made here, with Django, written by an Engine (which
    needs no Django, so a child process can write it)."""

    page: str
    look: Look
    codes: tuple  # ((URL, QR code SVG), ...)
    faces: tuple  # the further faces the text needs, beyond Core and Core Bold
    run_face: fonts.Face | None = None  # the face of a bulk run, in front of Core


def prepare(contents, look: Look) -> Job:
    """The HTML of `contents`, one after another, and what it refers to."""
    sheets, codes = [], []
    for i, content in enumerate(contents):
        warn_missing_glyphs(content)
        sheets.extend(sheets_for(content, look, f"c{i}"))
        codes.append((f"lunxun:qr/c{i}", qr_svg(content.verify_url)))
    with translation.override(settings.LANGUAGE_CODE):
        page = render_to_string(DOCUMENT_TEMPLATE, {"sheets": sheets, "title": look.title})
    return Job(page=page, look=look, codes=tuple(codes), faces=fonts.extra_faces(page))


def prepare_run(contents, look: Look) -> list[Job]:
    """Jobs for a bulk run, sharing one face cut to exactly the run's characters."""
    jobs = [prepare([content], look) for content in contents]
    if not jobs:
        return jobs
    face = fonts.run_face("".join(job.page for job in jobs))
    return [
        replace(job, run_face=face, faces=tuple(f for f in job.faces if f.family != fonts.PLUS))
        for job in jobs
    ]


def warn_missing_glyphs(content: Content):
    text = content.name + content.organization_name + content.round_title
    if absent := fonts.missing(text):
        logger.warning(
            "Certificate %s: no font has a glyph for %r; it prints as an empty box.",
            content.number,
            absent,
        )


# --- WeasyPrint ---------------------------------------------------------------------------

BORDERS = {
    # The frame, drawn as the page background: one SVG, parsed once per document.
    "classic": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="297mm" height="210mm" '
        'viewBox="0 0 297 210" fill="none" stroke="#a8141c">'
        '<rect x="10.2" y="10.2" width="276.6" height="189.6" stroke-width="2.4"/>'
        '<rect x="13.4" y="13.4" width="270.2" height="183.2" stroke-width="0.5"/>'
        '<path stroke-width="1.2" d="M5 17V5H17M280 5H292V17M292 193V205H280M17 205H5V193"/>'
        '<path stroke-width="0.5" d="M7.5 14V7.5H14M283 7.5H289.5V14M289.5 196V202.5H283'
        'M14 202.5H7.5V196"/>'
        "</svg>"
    ),
    "simple": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="297mm" height="210mm" '
        'viewBox="0 0 297 210" fill="none" stroke="#7a1016">'
        '<rect x="10" y="10" width="277" height="190" stroke-width="0.5"/>'
        "</svg>"
    ),
    "none": None,
}


def _fetcher_class():
    class Fetcher(URLFetcher):
        """Serves lunxun: URLs (QR codes, seal, signature, border) from memory; fetches
        local files (the fonts) and data: URLs; never the network."""

        def __init__(self):
            super().__init__(allowed_protocols={"file", "data", "lunxun"})
            self.resources = {}
            self._headers = {}

        def fetch(self, url, headers=None):
            if url.startswith("lunxun:"):
                body, mime_type = self.resources[url]
                return URLFetcherResponse(url, body, self.headers_for(mime_type))
            return super().fetch(url, headers)

        def headers_for(self, mime_type):
            # Built once: parsing an email header costs 1.5 ms, three times a certificate.
            if mime_type not in self._headers:
                message = EmailMessage()
                message["Content-Type"] = mime_type
                self._headers[mime_type] = message
            return self._headers[mime_type]

    return Fetcher


class Engine:
    """What one process keeps between certificates: WeasyPrint's font configuration (each
    face registered once), the parsed stylesheets, and the images it serves."""

    def __init__(self):
        self.font_config = FontConfiguration()
        self.fetcher = _fetcher_class()()
        faces = fonts.base_faces()
        self.stylesheet = self.css(
            "\n".join(face.css for face in faces) + "\n" + CSS_FILE.read_text(encoding="utf-8")
        )
        self._registered = {face.family for face in faces}
        self._looks = {}
        self._runs = OrderedDict()
        self.documents = 0

    def css(self, text: str):
        return CSS(string=text, font_config=self.font_config, url_fetcher=self.fetcher)

    def register(self, faces):
        for face in faces:
            if face.family not in self._registered:
                self.css(face.css)
                self._registered.add(face.family)

    def look_stylesheet(self, look: Look):
        """The border and the title's own small bold face, once per look."""
        key = (look.border, look.title, look.title_face)
        if key not in self._looks:
            rules = []
            if face := look.title_face:
                rules.append(face.css)
                rules.append(
                    f"h1 {{ font-family: {fonts.family_list(face.family, fonts.TITLE)}; }}"
                )
            if svg := BORDERS.get(look.border, BORDERS["classic"]):
                url = f"lunxun:border/{look.border}"
                self.fetcher.resources[url] = (svg.encode(), "image/svg+xml")
                rules.append(f"@page {{ background: url({url}) no-repeat 0 0 / 297mm 210mm; }}")
            self._looks[key] = self.css("\n".join(rules) or "@page {}")
        return self._looks[key]

    def run_stylesheet(self, face):
        """A bulk run's face, put in front of Core."""
        if face.family not in self._runs:
            self._runs[face.family] = self.css(
                f"{face.css}\nhtml {{ font-family: {fonts.family_list(face.family, fonts.CORE)}; }}"
            )
            self._registered.add(face.family)
            while len(self._runs) > 4:
                self._runs.popitem(last=False)
        return self._runs[face.family]

    @property
    def worn(self) -> bool:
        """Fontconfig keeps every face registered: start afresh after many bulk runs."""
        return len(self._registered) > 24

    def write(self, job: Job) -> bytes:
        self.documents += 1
        self.register(job.faces)
        stylesheets = [self.stylesheet, self.look_stylesheet(job.look)]
        if job.run_face:
            stylesheets.append(self.run_stylesheet(job.run_face))
        resources = self.fetcher.resources
        for url, data in job.look.images:
            resources[url] = (data, "image/jpeg")
        for url, svg in job.codes:
            resources[url] = (svg, "image/svg+xml")
        try:
            rendered = HTML(
                string=job.page, base_url=CSS_FILE.parent.as_uri() + "/", url_fetcher=self.fetcher
            ).render(stylesheets=stylesheets, font_config=self.font_config)
            return rendered.write_pdf()
        finally:
            for url, _ in job.codes:
                resources.pop(url, None)

    def close(self):
        """Remove WeasyPrint's copies of the fonts now (FontConfiguration removes them when
        collected, which a child process ending with os._exit never is)."""
        folder = getattr(self.font_config, "_folder", None)
        self.font_config = self.stylesheet = self._looks = None
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


_engine: Engine | None = None


def engine() -> Engine:
    """This process's engine, made on first use (about 0.2 s; the font files, the first time
    on a machine, about 4 s more)."""
    global _engine
    with _lock:
        if _engine is not None and _engine.worn:
            reset_engine()
        if _engine is None:
            _engine = Engine()
        return _engine


def reset_engine():
    """Drop this process's WeasyPrint state, caches included; the next render starts anew."""
    global _engine
    with _lock:
        if _engine is not None:
            _engine.close()
        _engine = None


def write(job: Job) -> bytes:
    """The PDF of `job`, written by this process's engine."""
    with _lock:
        return engine().write(job)


atexit.register(reset_engine)


# --- the API ------------------------------------------------------------------------------


def render_one(content: Content, template) -> bytes:
    """One standalone PDF (the on-demand path: about 40 ms once the process is warm)."""
    return write(prepare([content], look_of(template)))


def render_many(contents, template) -> list[bytes]:
    """Standalone PDFs, one per content, in order: each its own WeasyPrint document with
    only its own glyphs, sharing this process's fonts, stylesheets and images, and a face
    cut for the run (fonts.run_face)."""
    return [write(job) for job in prepare_run(contents, look_of(template))]


def render_merged(contents, template) -> bytes:
    """One print-ready PDF of all `contents`, in order.

    Laid out MERGE_CHUNK certificates per WeasyPrint document (fonts and seal embedded once
    per chunk), the chunks joined with pikepdf, so memory stays bounded however many pages.
    """
    look = look_of(template)
    contents = list(contents)
    chunks = [
        write(prepare(contents[start : start + MERGE_CHUNK], look))
        for start in range(0, max(1, len(contents)), MERGE_CHUNK)
    ]
    if len(chunks) == 1:
        return chunks[0]
    with pikepdf.new() as merged:
        parts = [pikepdf.open(io.BytesIO(chunk)) for chunk in chunks]
        try:
            for part in parts:
                merged.pages.extend(part.pages)
            out = io.BytesIO()
            merged.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
        finally:
            for part in parts:
                part.close()
    return out.getvalue()


SAMPLE_NAMES = ("张三", "王𠮷䶮")


def sample_content(kind: str, name: str = SAMPLE_NAMES[0]) -> Content:
    today = timezone.localdate()
    year = today.year
    quarter = (today.month - 1) // 3 + 1
    entries = ()
    if kind == "hours":
        entries = (
            (date(year, 3, 20), "第一季度全市党员专题轮训", Decimal(8)),
            (date(year, 5, 12), "支部主题党日集中学习", Decimal("2.5")),
            (date(year, 6, 28), "第二季度全市党员专题轮训", Decimal(8)),
        )
    return Content(
        kind=kind,
        number=f"{year}-Q{quarter}-000001",
        code="SAMPLE",
        verify_url=f"https://example.com/certificates/verify/{'S' * 16}/",
        name=name,
        organization_name="示范市城关区幸福社区党支部",
        round_title=f"{year}年第{'一二三四'[quarter - 1]}季度全市党员专题轮训",
        opens_on=date(year, quarter * 3 - 2, 1),
        closes_on=date(year, quarter * 3, calendar.monthrange(year, quarter * 3)[1]),
        hours=Decimal("18.5") if kind == "hours" else Decimal(12),
        year=year,
        issued_on=today,
        entries=entries,
    )


def render_sample(template) -> bytes:
    """A preview with sample data: two pages, a common name (张三) and a rare one (王𠮷䶮)."""
    contents = [sample_content(template.kind, name) for name in SAMPLE_NAMES]
    return write(prepare(contents, look_of(template)))


# --- long runs ----------------------------------------------------------------------------


def iter_rendered(contents_iterable, template, *, batch=50, recycle_after=1000, stats=None):
    """Yield (content, pdf) for every content, in order, with bounded memory.

    A rendering process's memory creeps up (registered faces, WeasyPrint's and Pango's
    caches; much more with a fresh WeasyPrint set-up per PDF), so the PDFs are written in
    one child process at a time, replaced after `recycle_after` certificates.
    This process reads `recycle_after` contents ahead, prepares their HTML (Django
    templates, QR codes) and their run face, and sends them `batch` at a time; the child
    needs no Django and no database. recycle_after=0 renders here instead.
    `stats`, a dict, receives the children's count and their peak RSS (KB).
    """
    look = look_of(template)  # images and fonts made here, once
    contents = iter(contents_iterable)
    if not recycle_after:
        while chunk := list(itertools.islice(contents, 500)):
            for content, job in zip(chunk, prepare_run(chunk, look), strict=True):
                yield content, write(job)
        return
    tasks_per_child = max(1, recycle_after // max(1, batch))
    context = multiprocessing.get_context("forkserver" if _can_forkserver() else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["weasyprint"])  # imported once, not in every child
    children, peak = set(), 0
    with context.Pool(1, initializer=_child_init, maxtasksperchild=tasks_per_child) as pool:
        # One child's worth at a time, so that each child registers one run face.
        while chunk := list(itertools.islice(contents, tasks_per_child * batch)):
            jobs = prepare_run(chunk, look)
            for start in range(0, len(chunk), batch):
                pid, rss, pdfs = pool.apply(_child_write, (jobs[start : start + batch],))
                children.add(pid)
                peak = max(peak, rss)
                if stats is not None:
                    stats.update(children=len(children), child_peak_rss_kb=peak)
                yield from zip(chunk[start : start + batch], pdfs, strict=True)
        # Let the last child end as the others did, running its finalizer; leaving the
        # block early (an error, the caller stopping) terminates it instead.
        pool.close()
        pool.join()


def _can_forkserver() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()


def _child_init():
    # Pool workers end with os._exit: clean WeasyPrint's font folder through a finalizer.
    multiprocessing.util.Finalize(None, reset_engine, exitpriority=10)


def _child_write(jobs):
    pdfs = [write(job) for job in jobs]
    return os.getpid(), peak_rss_kb(), pdfs


def peak_rss_kb() -> int:
    """This process's peak resident size (VmHWM: unlike ru_maxrss, not inherited)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


__all__ = [
    "Content",
    "content_for",
    "iter_rendered",
    "render_many",
    "render_merged",
    "render_one",
    "render_sample",
]
