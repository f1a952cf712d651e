import os
import tempfile

from django import forms
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.utils.translation import gettext as _
from wagtailmedia.forms import BaseMediaForm

from .video import VideoRejected, validate_upload


def probe_upload(upload):
    """Probe an uploaded file where it lies (or in a temporary copy); raise ValidationError."""
    if isinstance(upload, TemporaryUploadedFile):
        return validate_upload(upload.temporary_file_path(), upload.name, upload.size)
    suffix = os.path.splitext(upload.name)[1][:8]
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        upload.seek(0)
        return validate_upload(copy.name, upload.name, upload.size)


class LessonVideoForm(BaseMediaForm):
    """wagtailmedia's upload form, checking every video with ffprobe before it is stored."""

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is None or not hasattr(upload, "chunks") or "file" not in self.changed_data:
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
