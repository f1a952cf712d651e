"""The README and the docs link only to what exists, and the README stays inside the repository.

Every relative link in README.md, CONTRIBUTING.md and docs/*.md must name a file or folder of
the repository (never one outside it), and an ``#anchor`` must name a heading of the Markdown
file it points to, slugged the way GitHub does. README.md may leave the repository only for
http(s) addresses of the local demo or of a few well-known public sites.
"""

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Hosts README.md may link to: the local demo, and well-known public sites.
PUBLIC_HOSTS = {
    "127.0.0.1",
    "localhost",
    "github.com",
    "www.djangoproject.com",
    "docs.djangoproject.com",
    "wagtail.org",
    "docs.wagtail.org",
    "www.python.org",
    "docs.python.org",
    "pypi.org",
    "www.debian.org",
    "www.postgresql.org",
    "redis.io",
    "nginx.org",
    "ffmpeg.org",
}

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); the target may carry a "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
AUTOLINK = re.compile(r"<((?:https?|ftp|file)://[^>\s]+)>")
BARE_URL = re.compile(r"(?<![(<\w])((?:https?|ftp|file)://[^\s)<>`|\]]+)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents():
    paths = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [path for path in paths if path.exists()]


def prose_lines(text):
    """The lines outside fenced code blocks, with inline code removed."""
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield INLINE_CODE.sub("", line)


def links(text):
    """Every link target written in Markdown prose (not in code)."""
    found = []
    for line in prose_lines(text):
        found += INLINE_LINK.findall(line)
        match = REFERENCE_DEFINITION.match(line)
        if match:
            found.append(match.group(1))
        found += AUTOLINK.findall(line)
        found += BARE_URL.findall(line)
    return found


def github_slug(heading):
    """The anchor GitHub gives a heading: its text, lowercased, punctuation dropped (letters of
    any script, digits, ``-`` and ``_`` kept), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in " -_" or category[0] in "LN" or category in ("Mn", "Mc"):
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(path):
    """The anchors of a Markdown file's headings (duplicates numbered as GitHub does)."""
    seen = {}
    result = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(path, *, root=ROOT, public_hosts=None):
    """What is wrong with the links of one Markdown file, one sentence each."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        where = f"{path.relative_to(root)}: {target}"
        if SCHEME.match(target) or target.startswith("//"):
            if public_hosts is not None:
                parts = urlsplit(target)
                if parts.scheme not in ("http", "https") or parts.hostname not in public_hosts:
                    problems.append(f"{where}: leaves the repository")
            continue
        file_part, _, anchor = target.partition("#")
        if file_part.startswith("/"):
            resolved = (root / unquote(file_part).lstrip("/")).resolve()
        else:
            resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            problems.append(f"{where}: no heading with this anchor in {resolved.name}")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_point_to_what_exists(path):
    hosts = PUBLIC_HOSTS if path.name == "README.md" and path.parent == ROOT else None
    assert broken_links(path, public_hosts=hosts) == []


def test_the_docs_are_linked_from_the_readme():
    readme_links = {target.partition("#")[0] for target in links((ROOT / "README.md").read_text())}
    for path in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{path.name}" in readme_links, f"README.md does not link docs/{path.name}"


def test_the_check_finds_what_is_broken(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("# Running a city (scale profile)\n\n## Tested\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/here.md#running-a-city-scale-profile) [ok](docs/here.md#tested)\n"
        "[ok](#title) [ok](docs/) [ok](http://127.0.0.1:8000/)\n"
        "[missing](docs/gone.md) [anchor](docs/here.md#nowhere) [outside](../shared/DESIGN.md)\n"
        "[away](https://example.com/) see http://example.org/x and `[code](nowhere.md)`\n"
        "# Title\n"
        "```\n[fenced](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(readme, root=tmp_path, public_hosts={"127.0.0.1"}) == [
        "README.md: docs/gone.md: no such file",
        "README.md: docs/here.md#nowhere: no heading with this anchor in here.md",
        "README.md: ../shared/DESIGN.md: points outside the repository",
        "README.md: https://example.com/: leaves the repository",
        "README.md: http://example.org/x: leaves the repository",
    ]


def test_github_slugs():
    assert github_slug("Training rounds (专题轮训)") == "training-rounds-专题轮训"
    assert github_slug("Certificates (结业证书 / 学时证明)") == "certificates-结业证书--学时证明"
    assert github_slug("The `make` commands") == "the-make-commands"
    assert github_slug("A city (scale profile)") == "a-city-scale-profile"
