"""Reading certificate PDFs back with the tools a person would use: poppler's pdftotext,
pdffonts, pdfinfo, pdfimages and pdftoppm, zbar's zbarimg, and the embedded fonts
themselves (pikepdf and fontTools)."""

import io
import re
import subprocess
import tempfile
from pathlib import Path


def _run(*command, pdf: bytes, suffix=".pdf") -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"doc{suffix}"
        path.write_bytes(pdf)
        result = subprocess.run(
            [*command, str(path)], capture_output=True, check=True, text=True, timeout=60
        )
        return result.stdout


def text(pdf: bytes) -> str:
    """The text as pdftotext reads it, whitespace removed (Chinese lines break anywhere)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.pdf"
        path.write_bytes(pdf)
        result = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            check=True,
            text=True,
            timeout=60,
        )
    return re.sub(r"\s+", "", result.stdout)


def fonts(pdf: bytes) -> list[dict]:
    """pdffonts' table: name, type, embedded, subset, unicode map."""
    rows = []
    for line in _run("pdffonts", pdf=pdf).splitlines()[2:]:
        match = re.match(
            r"(?P<name>\S+)\s+(?P<type>.+?)\s+(?P<encoding>Identity-H|Custom|WinAnsi|Builtin|"
            r"MacRoman|Standard|\S+)\s+(?P<emb>yes|no)\s+(?P<sub>yes|no)\s+(?P<uni>yes|no)",
            line,
        )
        if match:
            rows.append(match.groupdict())
    return rows


def pages(pdf: bytes) -> int:
    return int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", pdf=pdf), re.M).group(1))


def image_count(pdf: bytes) -> int:
    return len(_run("pdfimages", "-list", pdf=pdf).splitlines()[2:])


def qr_codes(pdf: bytes, *, page: int = 1, dpi: int = 150) -> list[str]:
    """The QR codes zbarimg finds on `page`, rendered by pdftoppm at `dpi`."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "doc.pdf"
        source.write_bytes(pdf)
        image = Path(folder) / "page"
        subprocess.run(
            [
                *("pdftoppm", "-r", str(dpi), "-png", "-singlefile"),
                *("-f", str(page), "-l", str(page), str(source), str(image)),
            ],
            check=True,
            timeout=60,
        )
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", f"{image}.png"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return [line for line in result.stdout.splitlines() if line]


def drawn_characters(pdf: bytes) -> dict[str, bool]:
    """Every character the PDF's fonts map (ToUnicode), and whether the embedded font has an
    outline for its glyph: False is an empty box (.notdef) or a blank glyph."""
    import pikepdf
    from fontTools.pens.boundsPen import BoundsPen
    from fontTools.ttLib import TTFont

    drawn = {}
    with pikepdf.open(io.BytesIO(pdf)) as document:
        seen = set()
        for page in document.pages:
            for font in page.Resources.get("/Font", {}).values():
                if font.objgen in seen or "/DescendantFonts" not in font:
                    continue
                seen.add(font.objgen)
                descriptor = font.DescendantFonts[0].FontDescriptor
                program = descriptor.get("/FontFile3") or descriptor.get("/FontFile2")
                ttfont = TTFont(io.BytesIO(program.read_bytes()))
                order = ttfont.getGlyphOrder()
                glyphs = ttfont.getGlyphSet()
                cmap = font.ToUnicode.read_bytes().decode("latin-1")
                pairs = "".join(re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S))
                for gid, utf16 in re.findall(r"<([0-9a-fA-F]{4})>\s*<([0-9a-fA-F]+)>", pairs):
                    character = bytes.fromhex(utf16).decode("utf-16-be")
                    gid = int(gid, 16)
                    pen = BoundsPen(glyphs)
                    if gid and gid < len(order):
                        glyphs[order[gid]].draw(pen)
                    drawn[character] = drawn.get(character, False) or pen.bounds is not None
    return drawn
