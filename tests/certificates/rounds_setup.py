"""Rounds whose members completed them, for the certificate tests."""

import subprocess
from datetime import date

from rounds.models import Participation, Round

from ..rounds import builders


def complete(training_round, *members):
    """Record ``members`` as having completed ``training_round`` (what participation_refresh
    writes once the required lessons are done)."""
    for member in members:
        Participation.objects.update_or_create(
            round=training_round,
            member=member,
            defaults={
                "status": Participation.Status.COMPLETED,
                "method": Participation.Method.ONLINE,
                "lessons_done": 2,
                "lessons_required": 2,
                "completed_at": builders.aware(2026, 11, 5, 20, 0),
            },
        )


def completed_round(roots, *members, state=Round.State.CLOSED, **fields):
    """A round over ``roots`` (Q4 2026 by default) that ``members`` completed."""
    training_round = builders.training_round(roots, state=state, **fields)
    complete(training_round, *members)
    return training_round


def q3_round(roots, *members, **fields):
    return completed_round(
        roots,
        *members,
        opens_on=date(2026, 7, 1),
        closes_on=date(2026, 9, 30),
        makeup_deadline=date(2026, 10, 31),
        **fields,
    )


def pdf_text(path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    for line in info.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError(info.stdout)


def qr_payloads(pdf_path, tmp_path) -> list[str]:
    """Every QR code on the PDF's first page, decoded from a 200 dpi image with zbarimg."""
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", str(pdf_path), str(prefix)],
        check=True,
    )
    image = next(tmp_path.glob("page*.png"))
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
    )
    return [line for line in result.stdout.splitlines() if line]
