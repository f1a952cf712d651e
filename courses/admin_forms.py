"""Admin forms of the courses app.

The course page's form, and the "owned by" field that courses and certificate templates share
(DESIGN.md: content and templates belong to the level that made them; see
members.access.may_change_content).

The upload forms of the admin: lesson videos (wagtailmedia), Wagtail images and documents. Every
file is judged by its content, not its name (see core.uploads): a video must be one ffprobe
reads as a real container; a picture is decoded in full and may carry no web code; a document's
bytes must be what its extension says (a PDF, an Office file, plain text). Settings wire these
forms in: WAGTAILIMAGES_IMAGE_FORM_BASE, WAGTAILDOCS_DOCUMENT_FORM_BASE and WAGTAILMEDIA's
MEDIA_FORM_BASE.
"""

import os
import tempfile
import zipfile

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.admin.forms import WagtailAdminPageForm
from wagtail.documents.forms import BaseDocumentForm
from wagtail.images.fields import WagtailImageField
from wagtail.images.forms import BaseImageForm
from wagtailmedia.forms import BaseMediaForm

from core import uploads
from members import access
from members.models import Organization, Role

from . import captions
from .services import video_captions_set, video_schedule
from .video import VideoRejected, validate_upload

OWNER_FIELD = "owner_organization"
# A superuser may give content to any of the top levels (a select of the whole tree's thousands
# of nodes would not do); a trainer to the levels where she is a trainer.
SUPERUSER_OWNER_DEPTH = 2


class OwnerChoiceField(forms.ModelChoiceField):
    """The organisation owning a piece of content. Left out of the posted data (a script, a
    form from before ownership), it keeps ``default``; left empty, it is the top of the tree
    only where ``allow_top``."""

    def __init__(self, *, default=None, allow_top=False, **kwargs):
        super().__init__(
            required=False,
            empty_label=gettext_lazy("The whole tree") if allow_top else None,
            **kwargs,
        )
        self.default = default
        self.allow_top = allow_top

    def clean(self, value):
        if value is None or (value in self.empty_values and not self.allow_top):
            return self.default
        return super().clean(value)


def add_owner_field(form, name=OWNER_FIELD):
    """Offer on ``form`` the levels its user may give the content to.

    A trainer picks one of the organisations where she is a trainer (the first by default),
    or keeps the current owner if it lies inside them: she never gives content away to a level
    she does not answer for. A superuser picks one of the top levels, or the whole tree.
    """
    user = form.for_user
    model_field = form._meta.model._meta.get_field(name)
    current = getattr(form.instance, name) if getattr(form.instance, f"{name}_id", None) else None
    roots = access.role_roots(user, (Role.TRAINER,))
    if roots is None:
        offered = Q(depth__lte=SUPERUSER_OWNER_DEPTH)
        default = current
    else:
        roots = sorted(roots, key=lambda root: root.path)
        offered = Q(pk__in=[root.pk for root in roots])
        keep = current is not None and access.may_change_content(user, current)
        default = current if keep else (roots[0] if roots else None)
    if default is not None:
        offered |= Q(pk=default.pk)
    field = OwnerChoiceField(
        queryset=Organization.objects.filter(offered).order_by("path"),
        default=default,
        allow_top=roots is None,
        label=model_field.verbose_name,
        help_text=model_field.help_text,
    )
    form.fields[name] = field
    form.initial[name] = default.pk if default is not None else None


class CoursePageForm(WagtailAdminPageForm):
    """A course names the level that owns it: that level's trainers (and those above) change
    it and its lessons; every other trainer uses it as it is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if OWNER_FIELD in self.fields and self.for_user is not None:
            add_owner_field(self)


# --- Uploads ------------------------------------------------------------------------------------

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
    """wagtailmedia's upload form, checking every video with ffprobe before it is stored.

    Captions (WebVTT or SRT) may come with the video or be added, replaced or removed later
    on the same form: checked by courses.captions, stored as WebVTT, and linked from the
    video's master playlist without transcoding again (courses.services.video_captions_set).
    """

    captions_file = forms.FileField(
        label=gettext_lazy("Captions (WebVTT or SRT)"),
        required=False,
        help_text=gettext_lazy(
            "Optional: a .vtt or .srt file, in UTF-8 (GBK is converted). Members can turn the "
            "captions on under the video; in large-type mode they are on from the start. "
            "Upload another file to replace them."
        ),
        widget=forms.FileInput(attrs={"accept": ".vtt,.srt,text/vtt"}),
    )
    remove_captions = forms.BooleanField(label=gettext_lazy("Remove the captions"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.captions:
            del self.fields["remove_captions"]

    def clean_captions_file(self):
        upload = self.cleaned_data.get("captions_file")
        if not upload:
            return upload
        try:
            captions.check_size(upload.size)  # before reading it
            data = upload.read()
            upload.seek(0)
            self.captions = captions.read(data)
        except captions.CaptionsRejected as error:
            raise forms.ValidationError(str(error)) from None
        return upload

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("captions_file") and cleaned.get("remove_captions"):
            self.add_error(
                "remove_captions",
                _("Upload new captions or remove them, not both."),
            )
        return cleaned

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
        probe = getattr(self, "probe", None)
        if probe is not None:
            video = self.instance
            video.duration = probe.duration
            video.width, video.height = probe.width, probe.height
            video.source_codec = probe.video_codec
        video = super().save(commit=commit)
        if commit and probe is not None:
            video_schedule(video=video)
        if commit:
            user = getattr(self, "user", None)
            new = getattr(self, "captions", None)
            if new is not None:
                video = video_captions_set(video=video, captions=new.vtt, user=user, note=new.note)
            elif self.cleaned_data.get("remove_captions"):
                video = video_captions_set(video=video, captions="", user=user)
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
