import os
import secrets
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.paginator import Paginator
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalManyToManyField
from wagtail import blocks
from wagtail.admin.panels import FieldPanel, HelpPanel
from wagtail.documents.blocks import DocumentChooserBlock
from wagtail.fields import RichTextField, StreamField
from wagtail.images.blocks import ImageChooserBlock
from wagtail.models import Page
from wagtail.search import index
from wagtail.snippets.models import register_snippet
from wagtailmedia.models import AbstractMedia

from members.access import may_change_content

from .permissions import OwnedPagePermissions, may_change_course


class HomePage(Page):
    """The site root: a welcome text, and each person's own starting points."""

    intro = RichTextField(_("introduction"), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["courses.CourseIndexPage"]
    max_count = 1

    class Meta:
        verbose_name = _("home page")

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        user = request.user
        member = getattr(user, "member", None) if user.is_authenticated else None
        context["member"] = member
        context["course_index"] = CourseIndexPage.objects.live().first()
        if member is not None:
            context["recent_progress"] = (
                LessonProgress.objects.filter(member=member)
                .select_related("lesson")
                .order_by("completed_at", "-updated_at")[:5]
            )
            # Outside any round, "continue" opens the lesson last watched and not finished.
            unfinished = (
                LessonProgress.objects.filter(member=member, completed_at__isnull=True)
                .select_related("lesson")
                .order_by("-updated_at")
                .first()
            )
            context["continue_lesson"] = unfinished.lesson if unfinished else None
        return context


# --- Video ---------------------------------------------------------------------------------------


def video_source_path(instance, filename):
    """Stored under a generated name, never the uploader's."""
    extension = os.path.splitext(filename)[1].lower()[:8]
    return f"videos/sources/{uuid.uuid4().hex}{extension}"


class LessonVideo(AbstractMedia):
    """A lecture video (wagtailmedia media model) and what the pipeline made of it."""

    class State(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        PROBING = "probing", _("Checking")
        TRANSCODING = "transcoding", _("Transcoding")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    file = models.FileField(_("file"), upload_to=video_source_path)
    state = models.CharField(
        _("processing state"), max_length=20, choices=State.choices, default=State.UPLOADED
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    failure_reason = models.TextField(_("why processing failed"), blank=True)
    source_codec = models.CharField(max_length=40, blank=True)
    output_prefix = models.CharField(max_length=255, blank=True)
    master_playlist = models.CharField(max_length=255, blank=True)
    audio_playlist = models.CharField(max_length=255, blank=True)
    mp4_fallback = models.CharField(max_length=255, blank=True)
    poster = models.CharField(max_length=255, blank=True)
    renditions = models.JSONField(default=list, blank=True)
    # The captions as WebVTT (checked by courses.captions), and where the stored copy the
    # master playlist links lies in the video store ("" until the video is ready).
    captions = models.TextField(_("captions (WebVTT)"), blank=True)
    captions_vtt = models.CharField(max_length=255, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    admin_form_fields = ("title", "file", "collection", "tags")

    class Meta:
        verbose_name = _("lesson video")
        verbose_name_plural = _("lesson videos")

    @property
    def is_ready(self):
        return self.state == self.State.READY

    @property
    def is_stale(self):
        """Processing that has not moved for a long time: its worker died; it may be retried."""
        if self.state not in (self.State.PROBING, self.State.TRANSCODING):
            return False
        started = self.processing_started_at
        limit = settings.LUNXUN_VIDEO_STALE_MINUTES * 60
        return started is None or (timezone.now() - started).total_seconds() > limit

    @property
    def can_reprocess(self):
        return bool(self.file) and (self.state == self.State.FAILED or self.is_stale)

    def _url(self, name):
        # The public video store: object storage or a CDN in the scale profile.
        return storages["video"].url(name) if name else ""

    @property
    def master_url(self):
        return self._url(self.master_playlist)

    @property
    def audio_url(self):
        return self._url(self.audio_playlist)

    @property
    def mp4_url(self):
        return self._url(self.mp4_fallback)

    @property
    def poster_url(self):
        return self._url(self.poster)

    @property
    def captions_url(self):
        return self._url(self.captions_vtt)


# --- Courses ------------------------------------------------------------------------------------


@register_snippet
class Topic(models.Model):
    """A subject a course belongs to (党史, 党章党规, 理论学习 …), for filtering the course list."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    slug = models.SlugField(_("slug"), max_length=50, unique=True, allow_unicode=True)

    panels = [FieldPanel("name"), FieldPanel("slug")]

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["name"]

    def __str__(self):
        return self.name


def hours_for_seconds(seconds) -> Decimal:
    """Study hours (学时) for a duration: LUNXUN_MINUTES_PER_STUDY_HOUR minutes each, to 0.1."""
    minutes = Decimal(str(seconds or 0)) / 60
    hours = minutes / Decimal(settings.LUNXUN_MINUTES_PER_STUDY_HOUR)
    return hours.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


class CourseIndexPage(Page):
    """课程中心: every published course, with topic filters and search."""

    intro = RichTextField(_("introduction"), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["courses.HomePage"]
    subpage_types = ["courses.CoursePage"]
    max_count = 1

    class Meta:
        verbose_name = _("course centre")

    def permissions_for_user(self, user):
        """The course centre is the top's: every trainer adds her own courses under it, only a
        trainer at the top changes it (courses.permissions)."""
        return OwnedPagePermissions(
            user, self, may_change=may_change_content(user, None), may_add=True
        )

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        courses = (
            CoursePage.objects.live()
            .child_of(self)
            .select_related("cover")
            .prefetch_related("topics")
            .order_by("-first_published_at")
        )
        topic = Topic.objects.filter(slug=request.GET.get("topic", "")).first()
        if topic is not None:
            courses = courses.filter(topics=topic)
        query = request.GET.get("q", "").strip()
        if query:
            courses = courses.filter(
                models.Q(title__icontains=query)
                | models.Q(summary__icontains=query)
                | models.Q(lecturer__icontains=query)
            )
        context.update(
            {
                "courses": Paginator(courses, 12).get_page(request.GET.get("page")),
                "topics": Topic.objects.all(),
                "topic": topic,
                "query": query,
            }
        )
        return context


class CoursePage(Page):
    summary = models.TextField(_("summary"), blank=True)
    cover = models.ForeignKey(
        "wagtailimages.Image",
        verbose_name=_("cover image"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    topics = ParentalManyToManyField(Topic, verbose_name=_("topics"), blank=True)
    lecturer = models.CharField(_("lecturer"), max_length=100, blank=True)
    owner_organization = models.ForeignKey(
        "members.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owned by"),
        help_text=_(
            "Its trainers (and those above) may change this course and its lessons; every "
            "other trainer uses it as it is."
        ),
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("summary"),
        FieldPanel("cover"),
        FieldPanel("topics"),
        FieldPanel("lecturer"),
        FieldPanel("owner_organization"),
        HelpPanel(content=_("Lessons are the child pages of a course, in the order shown.")),
    ]
    # base_form_class (courses.admin_forms.CoursePageForm) is set in CoursesConfig.ready():
    # admin_forms also holds the upload forms, whose Wagtail bases import models still loading.
    search_fields = [
        *Page.search_fields,
        index.SearchField("summary"),
        index.SearchField("lecturer"),
    ]
    parent_page_types = ["courses.CourseIndexPage"]
    subpage_types = ["courses.LessonPage"]

    class Meta:
        verbose_name = _("course")

    def lessons(self):
        return LessonPage.objects.live().child_of(self).select_related("video")

    def permissions_for_user(self, user):
        """Changed only by the trainers of the level that owns it (courses.permissions)."""
        return OwnedPagePermissions(user, self, may_change=may_change_course(user, self.path))

    @cached_property
    def total_hours(self) -> Decimal:
        return sum((lesson.hours for lesson in self.lessons()), Decimal("0"))

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        lessons = list(self.lessons())
        context["lessons"] = lessons
        context["progress"] = progress_by_lesson(request.user, lessons)
        return context


class LessonPage(Page):
    video = models.ForeignKey(
        LessonVideo,
        verbose_name=_("video"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lessons",
    )
    body = StreamField(
        [
            ("text", blocks.RichTextBlock(label=_("Text"))),
            ("image", ImageChooserBlock(label=_("Image"))),
            ("document", DocumentChooserBlock(label=_("Document"))),
        ],
        blank=True,
        verbose_name=_("body"),
    )
    hours_override = models.DecimalField(
        _("study hours (override)"),
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        help_text=_("Leave empty to derive study hours from the video's duration."),
    )

    reading_minutes = models.PositiveSmallIntegerField(
        _("reading time (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text=_(
            "For a lesson to read (读原著学原文), text or a document and no video: the member "
            "completes it by saying they have read it, once the lesson has been open this "
            "many minutes. Its study hours follow from this time unless set below."
        ),
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("video"),
        FieldPanel("body"),
        FieldPanel("reading_minutes"),
        FieldPanel("hours_override"),
    ]
    parent_page_types = ["courses.CoursePage"]
    subpage_types = []

    class Meta:
        verbose_name = _("lesson")

    def clean(self):
        super().clean()
        if self.video_id and self.reading_minutes:
            raise ValidationError(
                {
                    "reading_minutes": _(
                        "A lesson is watched or read, not both: remove the video or the "
                        "reading time."
                    )
                }
            )

    @property
    def is_reading(self) -> bool:
        """A lesson to read: completed by saying so after the reading time (读原著学原文)."""
        return not self.video_id and bool(self.reading_minutes)

    @property
    def reading_seconds(self) -> int:
        return (self.reading_minutes or 0) * 60

    @property
    def completable_online(self) -> bool:
        """Can a member complete it online at all? A reading lesson, or one whose video has
        not failed (a video being processed will be ready). Text or a document alone, with no
        reading time, can never be completed: a training must not require it."""
        if self.is_reading:
            return True
        return self.video_id is not None and self.video.state != LessonVideo.State.FAILED

    @property
    def duration(self) -> float:
        if self.is_reading:
            return float(self.reading_seconds)
        return float(self.video.duration) if self.video_id and self.video.duration else 0.0

    @property
    def hours(self) -> Decimal:
        if self.hours_override is not None:
            return self.hours_override
        return hours_for_seconds(self.duration)

    def permissions_for_user(self, user):
        """A lesson belongs to its course: changed by whoever may change the course."""
        course_path = self.path[: -self.steplen]
        return OwnedPagePermissions(user, self, may_change=may_change_course(user, course_path))

    def serve(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().serve(request, *args, **kwargs)

    def get_context(self, request, *args, **kwargs):
        from .lesson_page import lesson_context  # cycle: courses.lesson_page imports courses.models

        context = super().get_context(request, *args, **kwargs)
        context.update(lesson_context(request, self))
        return context


# --- Watch progress -----------------------------------------------------------------------------


class LessonProgress(models.Model):
    """One row per member and lesson: the union of seconds actually played, validated.

    ``segments`` is the merged list of [start, end] seconds credited so far. A viewing is one
    play of a lesson on one page, bound to the login session that started it. A member has
    at most one open viewing, whichever lesson: starting one supersedes the other (the
    ``viewing`` token of the old row is cleared). The open viewing's row carries the member's
    watch clock (``watch_clock``): the wall-clock time up to which credit has been granted.
    Credit never passes the present, and a new viewing starts its clock where the old one's
    left off, so across all of a member's lessons no more seconds are credited than have
    passed. Reports carry the viewing's whole segment list; seconds already credited cost
    nothing, so a report can be re-applied any number of times, in any order.
    """

    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="lesson_progress"
    )
    lesson = models.ForeignKey(LessonPage, on_delete=models.CASCADE, related_name="progress")
    duration = models.FloatField(_("lesson duration (s)"), default=0)
    segments = models.JSONField(default=list)
    watched_seconds = models.FloatField(_("seconds watched"), default=0)
    furthest = models.FloatField(_("furthest point (s)"), default=0)
    last_position = models.FloatField(_("last position (s)"), default=0)
    viewing = models.UUIDField(null=True, blank=True)
    viewing_started_at = models.DateTimeField(null=True, blank=True)
    viewing_session = models.CharField(max_length=40, blank=True)
    credited_until = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    hours_earned = models.DecimalField(
        _("study hours earned"), max_digits=4, decimal_places=1, default=Decimal("0")
    )
    # Every write to a row sets it (saves by auto_now, queryset updates by hand): a report's
    # write applies only while it is the one read or signed (courses/progress_state.py).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("lesson progress")
        verbose_name_plural = _("lesson progress")
        constraints = [
            models.UniqueConstraint(fields=["member", "lesson"], name="one_progress_per_lesson"),
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(viewing__isnull=False),
                name="one_open_viewing_per_member",
            ),
        ]

    def __str__(self):
        return f"{self.member} · {self.lesson}"

    @property
    def percent(self) -> int:
        if not self.duration:
            return 0
        return min(100, int(self.watched_seconds * 100 // self.duration))

    @property
    def is_complete(self):
        return self.completed_at is not None

    @property
    def watch_clock(self):
        """Up to when the open viewing has been credited: its start until a report credits."""
        return self.credited_until or self.viewing_started_at


def progress_by_lesson(user, lessons):
    """{lesson id: LessonProgress} for the member behind ``user`` (empty for anyone else)."""
    member = getattr(user, "member", None) if user.is_authenticated else None
    if member is None or not lessons:
        return {}
    rows = LessonProgress.objects.filter(
        member=member, lesson__in=[lesson.pk for lesson in lessons]
    )
    return {row.lesson_id: row for row in rows}


# --- Live lectures ------------------------------------------------------------------------------


def _new_stream_key():
    return secrets.token_urlsafe(18)


class LiveStream(models.Model):
    """A lesson given live from the main hall (直播课堂): its stream key, its state, the
    pushes it received, and the recording that becomes the lesson's video.

    The lecture's timeline is the recording's: the pushes one after another, the gaps between
    them left out (nginx appends a resumed push to the same recording). ``pushes`` holds each
    push as [start, end] wall-clock ISO times (end None while it lasts), which maps a moment
    a player played (its program date-time) onto that timeline. Scheduling, sittings and the
    calendar are the round's (rounds.Session.live_stream)."""

    class State(models.TextChoices):
        # The words members and sites see (直播状态).
        SCHEDULED = "scheduled", _("Live lecture not started")
        LIVE = "live", _("Live now")
        INTERRUPTED = "interrupted", _("Signal lost, please wait")
        PROCESSING = (
            "processing",
            _("The live lecture has ended; the recording is being processed"),
        )
        REPLAY = "replay", _("Replay available")

    WATCHABLE = (State.LIVE, State.INTERRUPTED)
    ENDED = (State.PROCESSING, State.REPLAY)

    lesson = models.ForeignKey(
        LessonPage,
        on_delete=models.PROTECT,
        related_name="live_streams",
        verbose_name=_("counts as lesson"),
    )
    key = models.CharField(max_length=64, unique=True, default=_new_stream_key, editable=False)
    # The key the push on air now was accepted with: nginx names the stream by it when the
    # push ends, and the trainer may have made a new key meanwhile.
    on_air_key = models.CharField(max_length=64, blank=True, editable=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.SCHEDULED)
    pushes = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    recording = models.ForeignKey(
        LessonVideo, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("live lecture stream")
        verbose_name_plural = _("live lecture streams")

    def __str__(self):
        return f"{self.name} · {self.lesson}"

    @property
    def name(self) -> str:
        return f"lecture-{self.pk}"

    @property
    def status_text(self) -> str:
        return self.get_state_display()

    @property
    def is_watchable(self) -> bool:
        return self.state in self.WATCHABLE

    def push_intervals(self, now=None):
        """[(start, end)] of every push, as aware datetimes; the open one ends ``now``."""
        now = now or timezone.now()
        result = []
        for start, end in self.pushes:
            begin = datetime.fromisoformat(start)
            finish = datetime.fromisoformat(end) if end else now
            if finish > begin:
                result.append((begin, finish))
        return result

    def pushed_seconds(self, now=None) -> float:
        return sum((end - start).total_seconds() for start, end in self.push_intervals(now))

    def timeline_segments(self, played, now=None) -> list[list[float]]:
        """Wall-clock segments a player played ([[epoch start, epoch end], ...], untrusted)
        as seconds of the lecture's timeline: only what overlaps a push, never past now."""
        intervals = self.push_intervals(now)
        result = []
        if not isinstance(played, list):
            return result
        for item in played[:5000]:
            try:
                start, end = float(item[0]), float(item[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            if not (start == start and end == end) or end <= start:  # NaN, empty
                continue
            offset = 0.0
            for push_start, push_end in intervals:
                a, b = push_start.timestamp(), push_end.timestamp()
                lo, hi = max(start, a), min(end, b)
                if hi > lo:
                    result.append([offset + lo - a, offset + hi - a])
                offset += b - a
        return result
