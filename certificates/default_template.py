"""The two templates Lunxun ships: a completion certificate (结业证书) and a study-hours
statement (学时证明), and a drawn sample seal for demos and benchmarks.

The texts are Chinese on purpose: they are what is printed, and trainers edit them in the
admin. The issuing organisation must be set by the deployment (or by the demo); the shipped
line is a visible placeholder, and no seal is shipped: an official seal is the
organisation's own, uploaded by its trainer.
"""

import io
import math

from PIL import Image, ImageDraw, ImageFont

from members.models import Organization

from . import fonts
from .models import CertificateTemplate

COMPLETION_NAME = "结业证书（默认）"
COMPLETION_TITLE = "结业证书"
COMPLETION_BODY = (
    "兹证明{organization}{name}同志于{opens}至{closes}参加{round}，"
    "完成全部规定学习内容，累计{hours}学时，准予结业。\n"
    "\n"
    "特发此证。"
)

HOURS_NAME = "学时证明（默认）"
HOURS_TITLE = "学时证明"
HOURS_BODY = (
    "兹证明{organization}{name}同志{year}年度参加党员教育集中学习培训，累计{hours}学时。\n"
    "\n"
    "特此证明。"
)

ISSUER_LINES = "中共××市委组织部"


def ensure_default_templates(*, issuer_lines: str | None = None, seal=None, model=None):
    """Create the default completion and hours templates where a kind has no default.

    Returns the default template of each kind, created or not. `model` lets a data
    migration pass its historical CertificateTemplate; `seal` is a wagtail image or None.
    They are the city's: owned by the first root of the organisation tree (none yet: the top).
    """
    owner = None
    if model is None:
        model = CertificateTemplate
        owner = Organization.objects.filter(depth=1).order_by("path").first()
    defaults = [
        ("completion", COMPLETION_NAME, COMPLETION_TITLE, COMPLETION_BODY),
        ("hours", HOURS_NAME, HOURS_TITLE, HOURS_BODY),
    ]
    templates = []
    for kind, name, title, body in defaults:
        template = model.objects.filter(kind=kind, is_default=True).first()
        if template is None:
            template = model.objects.create(
                name=name,
                kind=kind,
                title=title,
                body=body,
                issuer_lines=issuer_lines or ISSUER_LINES,
                seal=seal,
                border="classic",
                is_default=True,
                owner_organization=owner,
            )
        templates.append(template)
    return templates


def sample_seal_png(text: str = "示范市委组织部", *, size: int = 480) -> bytes:
    """A round red seal drawn with Pillow: a star, `text` along the top of the ring.

    For demos, benchmarks and tests only; a PNG with a transparent background like the
    ones trainers upload, about 40 KB.
    """
    scale = 2  # drawn at twice the size, then reduced: smooth edges
    side = size * scale
    ink = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(ink)
    centre = side / 2
    ring = side * 0.035
    draw.ellipse(
        (ring / 2, ring / 2, side - ring / 2, side - ring / 2), outline=255, width=int(ring)
    )
    outer, inner = side * 0.17, side * 0.17 * 0.382
    star = [
        (
            centre + (outer if i % 2 == 0 else inner) * math.cos(-math.pi / 2 + i * math.pi / 5),
            centre + (outer if i % 2 == 0 else inner) * math.sin(-math.pi / 2 + i * math.pi / 5),
        )
        for i in range(10)
    ]
    draw.polygon(star, fill=255)
    face = ImageFont.truetype(
        str(fonts.NOTO / "NotoSerifCJK-Bold.ttc"), int(side * 0.12), index=fonts.NOTO_SC_INDEX
    )
    count = len(text)
    span = math.radians(min(250, 28 * count))
    radius = side * 0.36
    for i, character in enumerate(text):
        angle = -math.pi / 2 - span / 2 + span * (i + 0.5) / count
        glyph = Image.new("L", (int(side * 0.16), int(side * 0.16)), 0)
        ImageDraw.Draw(glyph).text(
            (glyph.width / 2, glyph.height / 2), character, font=face, fill=255, anchor="mm"
        )
        glyph = glyph.rotate(-math.degrees(angle + math.pi / 2), resample=Image.BICUBIC)
        x = centre + radius * math.cos(angle) - glyph.width / 2
        y = centre + radius * math.sin(angle) - glyph.height / 2
        ink.paste(255, (int(x), int(y)), glyph)
    alpha = ink.resize((size, size), Image.LANCZOS).point(lambda v: v * 9 // 10)
    seal = Image.new("RGBA", (size, size), (200, 16, 30, 0))
    seal.putalpha(alpha)
    out = io.BytesIO()
    seal.save(out, "PNG", optimize=True)
    return out.getvalue()
