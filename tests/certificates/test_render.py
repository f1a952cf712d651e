"""Certificate PDFs, read back: real WeasyPrint, real poppler and zbar tools."""

import logging
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.images import ImageFile
from wagtail.images.models import Image

from certificates import default_template as shipped
from certificates import fonts, render
from certificates.models import Certificate, CertificateTemplate
from certificates.render import Content

from . import pdfs

RARE_NAME = "王𠮷䶮赟堃"  # Extension B, Extension A, and two outside GB 2312
URL = "https://lunxun.example.cn/certificates/verify/Zq3xK9mP2vB7nR4t/"


def content(name="张三", number="2026-Q3-000123", **changes) -> Content:
    values = {
        "kind": "completion",
        "number": number,
        "code": "Zq3xK9mP2vB7nR4t",
        "verify_url": URL,
        "name": name,
        "organization_name": "城关区幸福社区党支部",
        "round_title": "2026年第三季度全市党员专题轮训",
        "opens_on": date(2026, 7, 1),
        "closes_on": date(2026, 9, 30),
        "hours": Decimal("12.5"),
        "year": 2026,
        "issued_on": date(2026, 10, 8),
    }
    values.update(changes)
    return Content(**values)


@pytest.fixture
def seal(tmp_path):
    path = tmp_path / "seal.png"
    path.write_bytes(shipped.sample_seal_png("示范市委组织部"))
    # Unsaved, in no database: the collection is named, not looked up.
    return Image(
        title="seal", file=ImageFile(path.open("rb")), width=480, height=480, collection_id=1
    )


def template(kind="completion", seal=None, **changes) -> CertificateTemplate:
    completion = kind == "completion"
    values = {
        "name": "test",
        "kind": kind,
        "title": shipped.COMPLETION_TITLE if completion else shipped.HOURS_TITLE,
        "body": shipped.COMPLETION_BODY if completion else shipped.HOURS_BODY,
        "issuer_lines": "中共示范市委组织部\n示范市委党校",
        "seal": seal,
        "border": "classic",
    }
    values.update(changes)
    return CertificateTemplate(**values)


def test_text_reads_back_name_number_round_and_issuer(seal):
    pdf = render.render_one(content(), template(seal=seal))

    text = pdfs.text(pdf)
    assert "张三" in text
    assert "2026-Q3-000123" in text
    assert "2026年第三季度全市党员专题轮训" in text
    assert "中共示范市委组织部示范市委党校2026年10月8日" in text
    assert "2026年7月1日至2026年9月30日" in text
    assert "累计12.5学时" in text
    assert pdfs.pages(pdf) == 1
    assert pdfs.image_count(pdf) == 1  # the seal


def test_the_serif_face_is_embedded_in_every_pdf(seal):
    one = render.render_one(content(), template(seal=seal))
    many = render.render_many([content("李四"), content(RARE_NAME)], template(seal=seal))

    for pdf in (one, *many):
        rows = pdfs.fonts(pdf)
        assert rows, "no fonts"
        assert any(row["name"].split("+")[-1].startswith("Noto-Serif-CJK-SC") for row in rows)
        assert all(row["emb"] == "yes" and row["sub"] == "yes" for row in rows), rows
        assert all(row["uni"] == "yes" for row in rows), rows
        assert not any("Type 3" in row["type"] for row in rows), rows


def test_qr_code_decodes_to_the_verification_url(seal):
    pdf = render.render_one(content(), template(seal=seal))

    assert pdfs.qr_codes(pdf) == [URL]


@pytest.mark.parametrize("name", [RARE_NAME, "欧阳堃𠮷"])
def test_rare_characters_print_with_glyphs_not_boxes(name, seal):
    assert fonts.missing(name) == ""

    pdf = render.render_one(content(name), template(seal=seal))

    assert name in pdfs.text(pdf)
    drawn = pdfs.drawn_characters(pdf)
    for character in name:
        assert drawn.get(character), f"{character} has no outline"
    assert not any("Type 3" in row["type"] for row in pdfs.fonts(pdf))


def test_extension_b_characters_beyond_noto_come_from_hanamin(seal):
    # make test installs fonts-hanazono (scripts/system-deps.sh); without it this must fail.
    assert (fonts.HANAZONO / "HanaMinB.ttf").exists(), "apt-get install fonts-hanazono"
    name = "李𡒄"  # U+21484: not in Noto Serif CJK
    assert [face.family for face in fonts.extra_faces(name)] == [fonts.EXT_B]

    pdf = render.render_one(content(name), template(seal=seal))

    assert pdfs.drawn_characters(pdf)["𡒄"]
    assert any("HanaMin-B" in row["name"] for row in pdfs.fonts(pdf))


def test_a_character_no_font_has_is_reported_and_logged(caplog):
    private = "\U000f0001"  # private use: no font has it
    assert fonts.missing(f"张{private}") == private

    with caplog.at_level(logging.WARNING, logger="certificates.render"):
        render.render_one(content(f"张{private}"), template())

    assert "2026-Q3-000123" in caplog.text


def test_render_many_one_standalone_pdf_each_in_order(seal):
    names = ["张伟", "李娜", RARE_NAME, "欧阳芳", "赵磊"]
    items = [content(name, number=f"2026-Q3-{i:06d}") for i, name in enumerate(names, 1)]

    out = render.render_many(items, template(seal=seal))

    assert len(out) == len(items)
    for i, (item, pdf) in enumerate(zip(items, out, strict=True)):
        assert pdf.startswith(b"%PDF") and len(pdf) <= 300 * 1024
        assert pdfs.pages(pdf) == 1
        text = pdfs.text(pdf)
        assert item.name in text and item.number in text
        # Standalone: only its own name, and only its own glyphs.
        others = [name for j, name in enumerate(names) if j != i]
        assert not any(other in text for other in others)
        assert set(pdfs.drawn_characters(pdf)) <= set(text) | {" "}


def test_render_merged_is_one_print_file_in_order(seal, monkeypatch):
    monkeypatch.setattr(render, "MERGE_CHUNK", 2)  # three WeasyPrint documents joined
    items = [content(f"学员{i}", number=f"2026-Q3-{i:06d}") for i in range(1, 6)]

    pdf = render.render_merged(items, template(seal=seal))

    assert pdfs.pages(pdf) == 5
    text = pdfs.text(pdf)
    positions = [text.index(item.number) for item in items]
    assert positions == sorted(positions)
    assert pdfs.qr_codes(pdf, page=5) == [URL]
    assert all(row["emb"] == "yes" for row in pdfs.fonts(pdf))


def test_hours_statement_with_a_long_table_continues_on_more_sheets(seal):
    entries = tuple(
        (date(2026, 1 + i % 12, 1 + i % 28), f"第{i + 1}次集中学习", Decimal("2.5"))
        for i in range(30)
    )
    item = content(kind="hours", hours=Decimal(75), entries=entries)

    pdf = render.render_one(item, template("hours", seal=seal))

    assert pdfs.pages(pdf) == render.page_count(item) == 3
    text = pdfs.text(pdf)
    assert "学时证明" in text and "累计75学时" in text
    assert "第1次集中学习" in text and "第30次集中学习" in text
    assert text.count("2026-Q3-000123") == 3  # every sheet names the certificate


@pytest.mark.parametrize("with_seal", [True, False])
def test_sample_preview_with_and_without_seal(with_seal, seal):
    pdf = render.render_sample(template(seal=seal if with_seal else None, border="simple"))

    assert pdfs.pages(pdf) == 2
    text = pdfs.text(pdf)
    assert "张三" in text and "王𠮷䶮" in text
    assert pdfs.image_count(pdf) == (2 if with_seal else 0)
    drawn = pdfs.drawn_characters(pdf)
    assert drawn["𠮷"] and drawn["䶮"]


def test_template_text_is_escaped_and_unknown_placeholders_stay():
    look = template(body="{name}同志：\n\n<b>{unknown}</b> {round}", border="none")

    pdf = render.render_one(content("<i>张三</i>"), look)

    text = pdfs.text(pdf)
    assert "<i>张三</i>同志：" in text
    assert "<b>{unknown}</b>2026年第三季度" in text


def test_iter_rendered_in_recycled_child_processes(seal):
    items = [content(name, number=f"2026-Q3-{i:06d}") for i, name in enumerate("甲乙丙丁", 1)]
    stats = {}

    out = list(
        render.iter_rendered(
            iter(items), template(seal=seal), batch=2, recycle_after=2, stats=stats
        )
    )

    assert [item for item, _ in out] == items
    assert stats["children"] == 2
    assert 0 < stats["child_peak_rss_kb"]
    for item, pdf in out:
        assert item.number in pdfs.text(pdf)


def test_content_for_copies_the_printed_facts():
    certificate = Certificate(
        kind="completion",
        number="2026-Q3-000007",
        code="abc",
        name="张三",
        organization_name="幸福社区党支部",
        round_title="第三季度轮训",
        opens_on=date(2026, 7, 1),
        closes_on=date(2026, 9, 30),
        hours=Decimal("8.0"),
        year=2026,
        issued_on=date(2026, 10, 1),
    )

    printed = render.content_for(certificate, URL)

    assert printed == content(
        "张三",
        number="2026-Q3-000007",
        code="abc",
        organization_name="幸福社区党支部",
        round_title="第三季度轮训",
        hours=Decimal("8.0"),
        issued_on=date(2026, 10, 1),
    )
    assert render.hours_text(printed.hours) == "8"
    assert render.hours_text(Decimal("7.50")) == "7.5"


@pytest.mark.django_db
def test_default_templates_are_created_once():
    first = shipped.ensure_default_templates(issuer_lines="中共示范市委组织部")
    again = shipped.ensure_default_templates()

    assert [t.pk for t in first] == [t.pk for t in again]
    assert sorted(t.kind for t in first) == ["completion", "hours"]
    assert all(t.is_default and t.issuer_lines == "中共示范市委组织部" for t in first)
    assert CertificateTemplate.objects.count() == 2
    assert "{name}" in first[0].body and "{round}" in first[0].body
