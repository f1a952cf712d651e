"""The typefaces certificates are printed in, given to WeasyPrint as files, never by name.

Noto Serif CJK SC (Debian's fonts-noto-cjk, installed by scripts/system-deps.sh) is a Song/Ming
face covering GB 18030's characters, CJK Extension A and 2,000-odd characters of Extensions
B-G: 𠮷 䶮 赟 堃 among them. Its licence, the SIL Open Font License 1.1, allows embedding
the font (here, subsets of it) in documents. The rarer Extension B-F characters it lacks come
from HanaMin (Debian's fonts-hanazono), licensed under the SIL OFL 1.1 as well (or the
Hanazono Font License); without that package such a character prints as an empty box, and
`missing` names it beforehand.

Why subsets, made here once: WeasyPrint subsets every font a PDF uses while keeping glyph
ids, so the cost of each PDF, in time and size, follows the number of glyphs in the font, not
the few dozen the certificate prints. Noto Serif CJK has 65,535 glyphs (JP, KR, SC, TC and HK
forms together); one certificate took 0.2 s and 250 KB, most of it font work. So the SC face
is cut, with libharfbuzz-subset, into

- Core: GB 2312 (the 6,763 common hanzi), ASCII and punctuation, 7,700 glyphs, which prints
  nearly every single certificate;
- Plus: every other character of the SC face, registered only once a document needs one;
- Title: Core in bold, behind a face of the template's title alone (`title_face`);
- Run: for a bulk run, a face of exactly the run's characters (`run_face`), put in front;
- Ext A/B from HanaMin, for what Noto lacks, registered only when needed.

Each is an ``@font-face`` with a local file URL, listed in one family list: a character is
taken from the first face that has it, and fontconfig's search through the system's fonts
(WeasyPrint's slow fallback path) is never needed for a character `missing` does not name.
The files live in ``VAR_DIR/fonts`` and take a few seconds to make, the first time only.
"""

import functools
import hashlib
import logging
import os
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cffi
from django.conf import settings
from fontTools.ttLib import TTFont

logger = logging.getLogger(__name__)

NOTO = Path("/usr/share/fonts/opentype/noto")
HANAZONO = Path("/usr/share/fonts/truetype/hanazono")
NOTO_SC_INDEX = 2  # faces in Debian's NotoSerifCJK-*.ttc: JP, KR, SC, TC, HK
VERSION = 1  # bump to remake the cached files after changing how they are cut

# Family names used by the stylesheet; pdffonts shows them as e.g. "ABCDEF+Noto-Serif-CJK-SC-Core".
CORE = "Noto Serif CJK SC Core"
PLUS = "Noto Serif CJK SC Plus"
TITLE = "Noto Serif CJK SC Title"
EXT_A = "HanaMin A Ext"
EXT_B = "HanaMin B Ext"
UNPRINTED = {"Cc", "Cf", "Zs", "Zl", "Zp"}  # controls, format characters, spaces: no glyph


def _gb2312() -> set[int]:
    codes = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                codes.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                pass
    return codes


def core_codepoints() -> set[int]:
    ranges = [
        (0x20, 0x7E),  # ASCII
        (0xA0, 0xFF),  # Latin-1: ·, ×, °
        (0x2000, 0x206F),  # general punctuation: — … ‘ ’ “ ”
        (0x2100, 0x215F),  # letterlike: №, ℃
        (0x2460, 0x24FF),  # enclosed numbers
        (0x3000, 0x303F),  # CJK punctuation: 、。《》「」〇
        (0xFE30, 0xFE4F),  # CJK compatibility forms
        (0xFF00, 0xFFEF),  # full-width forms
    ]
    codes = _gb2312()
    for first, last in ranges:
        codes.update(range(first, last + 1))
    return codes


@dataclass(frozen=True)
class Face:
    family: str
    path: Path
    weight: int = 400

    @property
    def css(self) -> str:
        return (
            f"@font-face {{ font-family: '{self.family}'; src: url('{self.path.as_uri()}'); "
            f"font-weight: {self.weight}; }}"
        )


def cache_dir() -> Path:
    folder = Path(getattr(settings, "VAR_DIR", tempfile.gettempdir())) / "fonts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _HarfBuzz:
    """The few libharfbuzz-subset calls needed to cut a font, through cffi (a WeasyPrint
    dependency); the same library WeasyPrint subsets with."""

    CDEF = """
        typedef struct hb_blob_t hb_blob_t;
        typedef struct hb_face_t hb_face_t;
        typedef struct hb_set_t hb_set_t;
        typedef struct hb_subset_input_t hb_subset_input_t;
        typedef uint32_t hb_codepoint_t;
        typedef uint32_t hb_tag_t;
        hb_blob_t *hb_blob_create_from_file_or_fail (const char *file_name);
        void hb_blob_destroy (hb_blob_t *blob);
        const char *hb_blob_get_data (hb_blob_t *blob, unsigned int *length);
        hb_face_t *hb_face_create (hb_blob_t *blob, unsigned int index);
        void hb_face_destroy (hb_face_t *face);
        hb_blob_t *hb_face_reference_blob (hb_face_t *face);
        void hb_set_add (hb_set_t *set, hb_codepoint_t codepoint);
        void hb_set_clear (hb_set_t *set);
        hb_tag_t hb_tag_from_string (const char *str, int len);
        hb_subset_input_t *hb_subset_input_create_or_fail (void);
        void hb_subset_input_destroy (hb_subset_input_t *input);
        hb_set_t *hb_subset_input_set (hb_subset_input_t *input, int set_type);
        void hb_subset_input_set_flags (hb_subset_input_t *input, unsigned value);
        hb_face_t *hb_subset_or_fail (hb_face_t *source, const hb_subset_input_t *input);
    """
    SETS_UNICODE, SETS_DROP_TABLE_TAG, SETS_LAYOUT_FEATURE_TAG = 1, 3, 6
    FLAGS_NOTDEF_OUTLINE = 0x40

    def __init__(self):
        self.ffi = cffi.FFI()
        self.ffi.cdef(self.CDEF)
        self.hb = self.ffi.dlopen("libharfbuzz.so.0")
        self.subset_lib = self.ffi.dlopen("libharfbuzz-subset.so.0")

    def subset(self, source: Path, index: int, codepoints, drop=(), features=()) -> bytes:
        hb, hbs, ffi = self.hb, self.subset_lib, self.ffi
        blob = hb.hb_blob_create_from_file_or_fail(os.fsencode(source))
        if blob == ffi.NULL:
            raise OSError(f"cannot read {source}")
        face = hb.hb_face_create(blob, index)
        request = hbs.hb_subset_input_create_or_fail()
        result = out = ffi.NULL
        try:
            wanted = hbs.hb_subset_input_set(request, self.SETS_UNICODE)
            for code in sorted(codepoints):
                hb.hb_set_add(wanted, code)
            dropped = hbs.hb_subset_input_set(request, self.SETS_DROP_TABLE_TAG)
            for tag in drop:
                hb.hb_set_add(dropped, hb.hb_tag_from_string(tag.encode(), -1))
            kept = hbs.hb_subset_input_set(request, self.SETS_LAYOUT_FEATURE_TAG)
            hb.hb_set_clear(kept)
            for tag in features:
                hb.hb_set_add(kept, hb.hb_tag_from_string(tag.encode(), -1))
            hbs.hb_subset_input_set_flags(request, self.FLAGS_NOTDEF_OUTLINE)
            result = hbs.hb_subset_or_fail(face, request)
            if result == ffi.NULL:
                raise OSError(f"libharfbuzz-subset could not subset {source}")
            out = hb.hb_face_reference_blob(result)
            length = ffi.new("unsigned int *")
            return ffi.unpack(hb.hb_blob_get_data(out, length), length[0])
        finally:
            if out != ffi.NULL:
                hb.hb_blob_destroy(out)
            if result != ffi.NULL:
                hb.hb_face_destroy(result)
            hbs.hb_subset_input_destroy(request)
            hb.hb_face_destroy(face)
            hb.hb_blob_destroy(blob)


@functools.cache
def _harfbuzz() -> _HarfBuzz:
    return _HarfBuzz()


def _charmap(path: Path, index: int = 0) -> frozenset[int]:
    with TTFont(str(path), fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap())


# Horizontal Chinese text needs no glyph substitution (GSUB would pull in the other regions'
# forms) and no vertical metrics; kerning is kept for Latin text.
NOTO_DROP = ("GSUB", "BASE", "VORG", "vhea", "vmtx", "DSIG")
HANAZONO_DROP = ("GSUB", "vhea", "vmtx", "DSIG")


def _make(name: str, source: Path, index: int, codepoints, drop) -> Path:
    """Cut the characters `codepoints()` lists out of face `index` of `source` into the
    cache, once."""
    stat = source.stat()
    target = cache_dir() / f"{name}-v{VERSION}-{stat.st_size}-{int(stat.st_mtime)}.otf"
    if target.exists():
        return target
    data = _harfbuzz().subset(source, index, codepoints(), drop=drop, features=("kern",))
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    logger.info("Made certificate font %s (%d bytes)", target.name, len(data))
    return target


@functools.cache
def noto_charmap() -> frozenset[int]:
    return _charmap(NOTO / "NotoSerifCJK-Regular.ttc", NOTO_SC_INDEX)


@functools.cache
def faces() -> tuple[Face, ...]:
    """Every face a certificate may use, made on first call (the font files are cached)."""
    regular = NOTO / "NotoSerifCJK-Regular.ttc"
    bold = NOTO / "NotoSerifCJK-Bold.ttc"

    def core():
        return core_codepoints() & noto_charmap()

    def plus():
        return noto_charmap() - core()

    made = [
        Face(CORE, _make("noto-serif-sc-core", regular, NOTO_SC_INDEX, core, NOTO_DROP)),
        Face(PLUS, _make("noto-serif-sc-plus", regular, NOTO_SC_INDEX, plus, NOTO_DROP)),
        Face(TITLE, _make("noto-serif-sc-bold-core", bold, NOTO_SC_INDEX, core, NOTO_DROP), 700),
    ]
    hana_a, hana_b = HANAZONO / "HanaMinA.ttf", HANAZONO / "HanaMinB.ttf"
    if hana_a.exists():

        def extra():
            return _charmap(hana_a) - noto_charmap()

        made.append(Face(EXT_A, _make("hanamin-a-ext", hana_a, 0, extra, HANAZONO_DROP)))
    if hana_b.exists():
        # As it is: libharfbuzz-subset 6.0 fails to cut more than about 7,400 of its glyphs.
        # Only the rare certificate with an Extension B-F character outside Noto uses it.
        made.append(Face(EXT_B, hana_b))
    return tuple(made)


@functools.cache
def _coverage() -> tuple[tuple[Face, frozenset[int]], ...]:
    return tuple((face, _charmap(face.path)) for face in faces())


def base_faces() -> tuple[Face, ...]:
    """The faces every certificate uses: Core and Core Bold."""
    return tuple(face for face in faces() if face.family in (CORE, TITLE))


def extra_faces(text: str) -> tuple[Face, ...]:
    """The further faces `text` needs (Plus, Ext A, Ext B), in order; usually none.

    They are registered with WeasyPrint only when first needed: each registered face is
    copied into WeasyPrint's folder (HanaMin B is 30 MB) and scanned by fontconfig.
    """
    codes = {ord(c) for c in text if not c.isspace()}
    needed = []
    for face, charmap in _coverage():
        found = codes & charmap
        if found:
            codes -= found
            if face.family not in (CORE, TITLE):
                needed.append(face)
        if not codes:
            break
    return tuple(needed)


def missing(text: str) -> str:
    """The characters of `text` that no certificate face has a glyph for: they would print as
    empty boxes. Issuing can warn about a name with such a character."""
    codes = {ord(c) for c in text if unicodedata.category(c) not in UNPRINTED}
    for _, charmap in _coverage():
        codes -= charmap
    return "".join(chr(c) for c in sorted(codes))


FALLBACKS = (PLUS, EXT_A, EXT_B)


def family_list(*first: str) -> str:
    """A CSS font-family value: `first`, then the faces for rarer characters."""
    return ", ".join(f"'{family}'" for family in (*first, *FALLBACKS))


def title_face(text: str) -> Face:
    """A bold face with only the characters of `text`, the title of a template: the Core Bold
    face has 7,700 glyphs and WeasyPrint's work on it would be repeated in every PDF. Made
    once per title (about 0.1 s) and cached; characters outside fall back to Title."""
    source = NOTO / "NotoSerifCJK-Bold.ttc"
    codes = sorted({ord(c) for c in text} | {0x20, 0x3000})
    digest = hashlib.sha1(",".join(map(str, codes)).encode(), usedforsecurity=False).hexdigest()
    path = _make(
        f"noto-serif-sc-bold-title-{digest[:12]}",
        source,
        NOTO_SC_INDEX,
        lambda: set(codes) & noto_charmap(),
        NOTO_DROP,
    )
    return Face(f"{TITLE} {digest[:12]}", path, 700)


RUN = "Noto Serif CJK SC Run"
RUN_FACES_KEPT_SECONDS = 24 * 3600


def run_face(text: str) -> Face:
    """A regular face with exactly the characters of `text`: all the certificates of one
    bulk run. WeasyPrint then subsets a few hundred glyphs per PDF instead of Core's 7,700
    (6 ms and 25 KB less a certificate); each PDF still holds only its own glyphs. About
    0.2 s to make; kept a day in ``VAR_DIR/fonts/run``."""
    codes = sorted({ord(c) for c in text} & noto_charmap() | {0x20, 0x3000})
    digest = hashlib.sha1(",".join(map(str, codes)).encode(), usedforsecurity=False).hexdigest()
    folder = cache_dir() / "run"
    folder.mkdir(exist_ok=True)
    now = time.time()
    for old in folder.glob("*.otf"):
        try:
            if now - old.stat().st_mtime > RUN_FACES_KEPT_SECONDS:
                old.unlink()
        except FileNotFoundError:
            pass
    path = _make(
        f"run/noto-serif-sc-{digest[:16]}",
        NOTO / "NotoSerifCJK-Regular.ttc",
        NOTO_SC_INDEX,
        lambda: codes,
        NOTO_DROP,
    )
    os.utime(path)  # in use: kept another day
    return Face(f"{RUN} {digest[:16]}", path)
