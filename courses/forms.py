"""The upload forms of the admin: lesson videos (wagtailmedia), Wagtail images and documents.

Every file is judged by its content, not its name (see core.uploads): a video must be one
ffprobe reads as a real container; a picture is decoded in full and may carry no web code; a
document's bytes must be what its extension says (a PDF, an Office file, plain text).
Settings wire the image and document forms in: WAGTAILIMAGES_IMAGE_FORM_BASE,
WAGTAILDOCS_DOCUMENT_FORM_BASE.
"""

import os
import tempfile
import zipfile

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.utils.translation import gettext as _
from wagtail.documents.forms import BaseDocumentForm
from wagtail.images.fields import WagtailImageField
from wagtail.images.forms import BaseImageForm
from wagtailmedia.forms import BaseMediaForm

from core import uploads

from .video import VideoRejected, validate_upload

# What the first bytes of each document type are. Office files are ZIPs holding their main
# part; the old binary ones are OLE compound files.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OFFICE_PARTS = {
    "docx": "word/document.xml",
    "xlsx": "xl/workbook.xml",
    "pptx": "ppt/presentation.xml",
}
OLE_EXTENSIONS = {"doc", "xls", "ppt"}
TEXT_EXTENSIONS = {"txt", "csv"}


def probe_upload(upload):
    """Probe an uploaded file where it lies (or in a temporary copy); raise VideoRejected."""
    if isinstance(upload, TemporaryUploadedFile):
        return validate_upload(upload.temporary_file_path(), upload.name, upload.size)
    suffix = os.path.splitext(upload.name)[1][:8]
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        upload.seek(0)
        return validate_upload(copy.name, upload.name, upload.size)


def _new_upload(form, name="file"):
    """The file just uploaded in ``form``, or None when the field keeps its stored file."""
    upload = form.cleaned_data.get(name)
    if isinstance(upload, UploadedFile) and name in form.changed_data:
        return upload
    return None


class LessonVideoForm(BaseMediaForm):
    """wagtailmedia's upload form, checking every video with ffprobe before it is stored."""

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if _new_upload(self) is None:
            return upload
        if self.instance.type != "video":
            raise forms.ValidationError(_("Only video files can be uploaded here."))
        try:
            self.probe = probe_upload(upload)
        except VideoRejected as error:
            raise forms.ValidationError(str(error)) from None
        return upload

    def save(self, commit=True):
        from .services import video_schedule

        probe = getattr(self, "probe", None)
        if probe is not None:
            video = self.instance
            video.duration = probe.duration
            video.width, video.height = probe.width, probe.height
            video.source_codec = probe.video_codec
        video = super().save(commit=commit)
        if commit and probe is not None:
            video_schedule(video=video)
        return video


# --- Images ---------------------------------------------------------------------------------------


class CheckedImageField(WagtailImageField):
    """Wagtail's image field, refusing rather than failing on a file that has a picture's first
    bytes and nothing readable after them (Pillow raises while Wagtail reads its size)."""

    def to_python(self, data):
        try:
            return super().to_python(data)
        except forms.ValidationError:
            raise
        except Exception:  # as Wagtail does when Willow cannot open a file
            raise forms.ValidationError(uploads.unreadable_picture_message()) from None


class ImageForm(BaseImageForm):
    """Wagtail's image form (single, multiple and chooser uploads): besides Wagtail's checks of
    extension, format and size, the picture is decoded in full and refused if it is SVG or
    carries HTML or script (in a comment, a text chunk, EXIF/XMP, or before or after the
    picture data)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("file")
        if type(field) is WagtailImageField:
            field.__class__ = CheckedImageField  # keeps the label, help text and widget

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if _new_upload(self) is None:
            return upload
        try:
            # Wagtail decodes the whole picture for its renditions anyway; so does this.
            uploads.check_picture(
                upload,
                max_pixels=getattr(settings, "WAGTAILIMAGES_MAX_IMAGE_PIXELS", 128 * 1000000),
            )
        except uploads.UploadRefused as error:
            raise forms.ValidationError(str(error)) from None
        return upload


# --- Documents --------------------------------------------------------------------------------


def _not_what_it_says(extension) -> uploads.UploadRefused:
    return uploads.UploadRefused(
        _("This file is not a real .%(extension)s file: its content does not match its name.")
        % {"extension": extension}
    )


def _decode_text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def check_document(upload) -> None:
    """Refuse a document whose content is not what its extension says, or that is or carries
    a web page; raise UploadRefused."""
    limit = settings.LUNXUN_DOCUMENT_MAX_BYTES
    uploads.check_size(upload.size, limit)
    extension = os.path.splitext(upload.name)[1].lower().lstrip(".")
    head = uploads.check_ends(upload)
    if not head:
        raise uploads.UploadRefused(_("The file is empty."))
    if extension == "pdf":
        if not head.startswith(b"%PDF-"):
            raise _not_what_it_says(extension)
    elif extension in OFFICE_PARTS:
        if not head.startswith(b"PK\x03\x04"):
            raise _not_what_it_says(extension)
        try:
            with zipfile.ZipFile(upload) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            raise _not_what_it_says(extension) from None
        finally:
            upload.seek(0)
        if not {"[Content_Types].xml", OFFICE_PARTS[extension]} <= names:
            raise _not_what_it_says(extension)
    elif extension in OLE_EXTENSIONS:
        if not head.startswith(OLE_MAGIC):
            raise _not_what_it_says(extension)
    elif extension in TEXT_EXTENSIONS:
        data = upload.read()
        upload.seek(0)
        text = _decode_text(data)
        if text is None or "\x00" in text:
            raise _not_what_it_says(extension)
        if uploads.text_has_markup(text):
            raise uploads.UploadRefused(uploads.web_code_message())


class DocumentForm(BaseDocumentForm):
    """Wagtail's document form (single, multiple and chooser uploads), checking content."""

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if _new_upload(self) is None:
            return upload
        try:
            check_document(upload)
        except uploads.UploadRefused as error:
            raise forms.ValidationError(str(error)) from None
        return upload
