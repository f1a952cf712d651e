"""Scoped power, proven over the whole URL conf (DESIGN.md: "checked on every object a URL
names, not only in menus").

The URL conf is walked: every pattern that names an object (an id, a code, a token, or a
positional group) must have a case here, or be listed in SKIPPED with the reason, so a new
object URL cannot slip past the matrix. Each case builds its object in branch A, which sits
in a township of county A, and then asks:

* users at every level whose roles do not reach branch A (``OUTSIDE``: the sibling branch of
  the same township, the sibling township of the same county, county B, and users holding two
  roles neither of which covers branch A) and the case's other outsiders (a plain member who is
  not the owner, staff of A without the role the view needs) get 404 for every method the view
  takes; one of them also tries the method it does not take (405, or the same 404);
* every user the case names has a two-role twin: the same role at the same node, and, assigned
  first, a role elsewhere that covers nothing of branch A (an operator of branch A who is
  secretary of the sibling branch, a secretary of branch A who is trainer of the sibling
  township, ...). The twin gets what the user gets: a 404 where the user gets one, so a power
  held elsewhere never leaks in; the insider's answer otherwise, so the role that covers the
  object counts even when it is not the first;
* an anonymous visitor is sent to log in, with ``next=`` the URL;
* the case's insiders (the owner, staff of A) get something else than 404, so the object is
  real and the 404s above prove scope, not a broken factory.

The one public object URL is the certificate verification page. Two URLs hold their credential
in a secret rather than in the session (capabilities): the calendar feed (the token in the URL)
and the player's progress report (the viewing token in the body); the QR check-in code is signed
and sends an anonymous visitor to log in. For those, whoever lacks the secret gets exactly what
an unknown object gets.

The Wagtail admin views our apps add are walked the same way: trainers whose trainer roles do
not reach the object (of another county, of the sibling township, of the sibling branch, and a
secretary of branch A whose trainer role is in the sibling township) get what a missing id gets
(404, or Wagtail's permission-denied redirect when no trainer may do that at all), non-admin
users and anonymous visitors are sent to the admin login, and the object's own trainer and
their two-role twin get in.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from wagtail.documents.models import Document

from certificates import services as certificate_services
from certificates.models import Certificate
from courses import services as course_services
from courses.models import LessonPage, Topic
from members import importing
from members import services as member_services
from members.models import Organization, Posting, Role, RoleAssignment
from quizzes import importing as quiz_importing
from quizzes import services as quiz_services
from rounds import ical, paper, records, terminals
from rounds import services as round_services
from rounds.models import Exemption, PlanTarget, Round, StudyPlan

from . import factories
from .certificates.rounds_setup import q3_round
from .courses import builders as course_builders
from .members.spreadsheets import csv_bytes
from .quizzes import builders as quiz_builders
from .rounds import builders

OUR_APPS = {"members", "courses", "quizzes", "rounds", "certificates"}
ADMIN_PREFIX = "admin/"
# The moment every request is made: the group session below is running, so its check-in
# code is current and it accepts check-ins.
NOW = builders.aware(2026, 11, 12, 9, 30)
MISSING = 987_654_321  # an id no object has

# --- The URL conf, walked -----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" ("" for an unnamed pattern)
    route: str  # the full pattern, for messages
    arguments: tuple  # named arguments, sorted
    positional: int  # unnamed regex groups
    view: str  # "module.qualname" of the callback
    model: str  # "app_label.model" of a class-based view's model, if it names one

    @property
    def key(self):
        return self.name or self.view


def _view_of(callback):
    view_class = getattr(callback, "view_class", None)
    target = view_class or callback
    model = (getattr(callback, "view_initkwargs", None) or {}).get("model") or getattr(
        view_class, "model", None
    )
    meta = getattr(model, "_meta", None)  # a model class, not a cached_property or None
    label = f"{meta.app_label}.{meta.model_name}" if meta is not None else ""
    return f"{target.__module__}.{target.__qualname__}", label


def all_routes():
    found = []

    def walk(patterns, namespaces, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                spaces = namespaces + ([pattern.namespace] if pattern.namespace else [])
                walk(pattern.url_patterns, spaces, prefix + str(pattern.pattern))
                continue
            assert isinstance(pattern, URLPattern)
            regex = pattern.pattern.regex
            named = tuple(sorted(regex.groupindex))
            view, model = _view_of(pattern.callback)
            name = ":".join([*namespaces, pattern.name]) if pattern.name else ""
            found.append(
                Route(
                    name=name,
                    route=prefix + str(pattern.pattern),
                    arguments=named,
                    positional=regex.groups - len(regex.groupindex),
                    view=view,
                    model=model,
                )
            )

    walk(get_resolver().url_patterns, [], "")
    return found


def _ours(route) -> bool:
    return route.view.split(".")[0] in OUR_APPS or route.model.split(".")[0] in OUR_APPS


def site_object_routes():
    """Every non-admin pattern that takes an argument, by key (unique per name)."""
    routes = {}
    for route in all_routes():
        if route.route.startswith(ADMIN_PREFIX) or not (route.arguments or route.positional):
            continue
        routes.setdefault(route.key, route)
    return routes


def admin_object_routes():
    """The Wagtail admin patterns our apps add (our views, or views of our models) that take
    an argument."""
    routes = {}
    for route in all_routes():
        if route.route.startswith(ADMIN_PREFIX) and route.arguments and _ours(route):
            routes.setdefault(route.key, route)
    return routes


# Patterns with arguments that are not object URLs of ours, and why.
SKIPPED = {
    "certificates.media.serve_public_media": (
        "media files: only the public prefixes (HLS, renditions); seals' renditions only to "
        "trainers (tests/courses/test_private_images.py)"
    ),
    "wagtail_serve": "Wagtail's page catch-all; lesson pages are checked below",
    "courses.live.serve_live_hls": (
        "the live ladder of a lecture: public like a lesson's HLS (media files)"
    ),
    "wagtailcore_authenticate_with_password": "Wagtail's page-privacy password form (unused)",
    "wagtaildocs_authenticate_with_password": "Wagtail's document-privacy form (unused)",
    "members:import_upload": "the argument is a file kind (roster/organizations)",
    "members:import_template": "the argument is a file kind (roster/organizations)",
}


def test_the_walk_finds_the_object_urls_of_every_app():
    keys = set(site_object_routes())
    assert {
        "members:member_detail",
        "courses:progress_report",
        "rounds:sitting",
        "rounds:ical_feed",
        "rounds:ledger_member",
        "certificates:pdf",
        "certificates:verify",
        "wagtaildocs_serve",
    } <= keys
    assert not any(key.startswith(("wagtailadmin", "set_language")) for key in keys)
    admin = set(admin_object_routes())
    assert {
        "party_members:edit",
        "training_rounds:close",
        "group_sessions:delete",
        "issued_certificates:revoke",
        "lesson_video_status",
    } <= admin
    assert not any(key.startswith(("wagtailusers", "wagtailimages")) for key in admin)


# --- The objects, all in county A's subtree -----------------------------------------------------


class World:
    """The city fixture one level deeper, with users at every level around branch A, and
    objects of branch A's, built when a case first asks for them::

        city ─ county A ─ township A-T1 ─ branch A (A-01): every object
              │         │               └ branch A-02: the sibling branch
              │         └ township A-T2: the sibling township ─ branch A-T2-01
              └ county B ─ branch B-01
    """

    def __init__(self, city):
        self.city = city
        committee = Organization.Kind.COMMITTEE
        township = factories.org("幸福街道党工委", city.county_a, code="A-T1", kind=committee)
        city.branch_a.move(township, pos="sorted-child")
        for node in (city.county_a, city.branch_a, city.member_a):
            node.refresh_from_db()
        self.township_a = township
        self.branch_sibling = factories.org("和平社区党支部", township, code="A-02")
        self.township_sibling = factories.org(
            "东关街道党工委", city.county_a, code="A-T2", kind=committee
        )
        branch_t2 = factories.org("东关社区党支部", self.township_sibling, code="A-T2-01")
        branch_a, sibling, township_2 = city.branch_a, self.branch_sibling, self.township_sibling
        self.users = {
            "secretary_a": city.secretary_a,
            "operator_a": city.operator_a,
            "trainer_a": city.trainer_a,
            "trainer_city": city.trainer,
            "member_a": city.member_a.user,
            "secretary_b": city.secretary_b,
            "member_b": city.member_b.user,
        }
        self.member_a2 = factories.member(city.branch_a, name="赵敏")
        self.users["member_a2"] = self.member_a2.user
        # The other users, built when a case first asks for them: the branch they are a member
        # of (None: staff only), and their roles in the order they were assigned.
        self._wanted = {
            "operator_b": (None, [(Role.OPERATOR, city.branch_b)]),
            "trainer_b": (None, [(Role.TRAINER, city.county_b)]),
            "secretary_sib": (None, [(Role.SECRETARY, sibling)]),
            "operator_sib": (None, [(Role.OPERATOR, sibling)]),
            "trainer_sib": (None, [(Role.TRAINER, sibling)]),
            "member_sib": (sibling, []),
            "secretary_t2": (None, [(Role.SECRETARY, township_2)]),
            "trainer_t2": (None, [(Role.TRAINER, township_2)]),
            "member_t2": (branch_t2, []),
            # Two roles, neither of which reaches branch A.
            "secretary_sib+trainer_t2": (
                None,
                [(Role.SECRETARY, sibling), (Role.TRAINER, township_2)],
            ),
            "member_t2+operator_sib": (branch_t2, [(Role.OPERATOR, sibling)]),
            # The twins (TWINS): a role elsewhere first, then the user's own role at their node.
            "operator_a+secretary_sib": (
                None,
                [(Role.SECRETARY, sibling), (Role.OPERATOR, branch_a)],
            ),
            "secretary_a+trainer_t2": (
                None,
                [(Role.TRAINER, township_2), (Role.SECRETARY, branch_a)],
            ),
            "trainer_a+operator_b": (
                None,
                [(Role.OPERATOR, city.branch_b), (Role.TRAINER, city.county_a)],
            ),
            # Another plain member of branch A, who is also the sibling branch's site operator.
            "member_a2+operator_sib": (branch_a, [(Role.OPERATOR, sibling)]),
        }
        assert set(TWINS.values()) <= set(self._wanted)
        self._clients = {}

    def user(self, key):
        if key not in self.users:
            member_of, roles = self._wanted[key]
            if member_of is None:
                user = get_user_model().objects.create_user(username=key)
            else:
                user = factories.member(member_of).user
            for role, organization in roles:
                member_services.role_assign(user=user, role=role, organization=organization)
            self.users[key] = user
        return self.users[key]

    def client(self, key) -> Client:
        if key not in self._clients:
            client = Client(raise_request_exception=False)
            if key != "anonymous":
                client.force_login(
                    self.user(key), backend="members.backends.PhoneOrUsernameBackend"
                )
            self._clients[key] = client
        return self._clients[key]

    @cached_property
    def round(self):
        """A round for branch A alone: nobody at the levels around it is in it."""
        return builders.training_round([self.city.branch_a])

    @cached_property
    def lesson(self):
        return self.round.lessons.order_by("path").first()

    @cached_property
    def live_stream(self):
        """A live lecture of the round's lesson, on air."""
        stream = course_services.live_stream_create(lesson=self.lesson)
        return course_services.live_publish_begin(key=stream.key)

    @cached_property
    def live_progress(self):
        """member_a watching the live lecture, from a session of her own."""
        return course_services.live_viewing_start(
            member=self.city.member_a,
            stream=self.live_stream,
            session_key=course_builders.session_of(self.city.member_a),
        )

    @cached_property
    def reading_lesson(self):
        """A live lesson to read, in the round's course."""
        course = self.lesson.get_parent()
        page = LessonPage(title="原文选读", slug="reading", reading_minutes=5)
        course.add_child(instance=page)
        page.save_revision().publish()
        return page

    @cached_property
    def plan(self):
        """Branch A's own plan, with one target."""
        plan = StudyPlan.objects.create(
            title="支部学习计划", organization=self.city.branch_a, first_year=2026
        )
        PlanTarget.objects.create(plan=plan, kind="hours", audience="members", number=32)
        return plan

    @cached_property
    def study_record(self):
        """A 送学上门 visit to member_a, recorded by the city's trainer, waiting for approval."""
        record, _created = records.record_create(
            member=self.city.member_a,
            kind="door_to_door",
            title="送学上门",
            studied_on=NOW.date(),
            hours=2,
            user=self.city.trainer,
            form_token="matrix",
        )
        return record

    @cached_property
    def posting(self) -> Posting:
        """member_b of county B posted to branch A as its 第一书记: the posting is branch A's."""
        return Posting.objects.create(
            member=self.city.member_b,
            organization=self.city.branch_a,
            title="第一书记",
            starts_on=NOW.date(),
        )

    @cached_property
    def session(self):
        return builders.session(self.round, self.city.branch_a)

    @cached_property
    def sitting(self):
        return builders.sitting(self.session)

    @cached_property
    def terminal(self):
        """A site terminal of branch A's, registered by county A's trainer."""
        return terminals.terminal_register(
            name="幸福社区活动室", host=self.city.branch_a, user=self.city.trainer_a
        )

    @cached_property
    def leave(self):
        """member_a's pending leave request."""
        return round_services.leave_request(
            member=self.city.member_a, training_round=self.round, reason="外出务工"
        )

    @cached_property
    def exemption(self) -> Exemption:
        """member_a2 is exempt from the round."""
        return round_services.exemption_grant(
            member=self.member_a2,
            training_round=self.round,
            reason="长期卧病",
            user=self.city.trainer,
        )

    @cached_property
    def progress(self):
        """member_a's current viewing of the first lesson, bound to member_a's login session."""
        return course_services.progress_start(
            member=self.city.member_a,
            lesson=self.lesson,
            session_key=self.client("member_a").session.session_key,
        )

    @cached_property
    def feed(self):
        return ical.feed_for(self.city.member_a)

    @cached_property
    def roster_import(self):
        """A checked roster file that secretary_a uploaded (nobody else may see it)."""
        data = csv_bytes([["姓名", "手机号码", "党组织编码"], ["钱明", "13700000099", "A-01"]])
        return importing.roster_check(data=data, file_name="roster.csv", user=self.city.secretary_a)

    @cached_property
    def quiz(self):
        """A quiz on a course branch A owns: members anywhere take it (course content is the
        city's to use), only trainers over branch A change it."""
        course = course_builders.course(title="支部课程", owner_organization=self.city.branch_a)
        return quiz_builders.quiz(course, size=3, pass_mark=2)

    @cached_property
    def question(self):
        return self.quiz.course.questions.first()

    @cached_property
    def attempt(self):
        """member_a's attempt at the quiz, open (hers alone to see)."""
        return quiz_services.attempt_start(quiz=self.quiz, member=self.city.member_a)

    @cached_property
    def paper_attempt(self):
        """member_a's sheet for the test on paper, printed by branch A's operator."""
        quiz = quiz_builders.quiz(
            course_builders.course(title="纸质测试课程", owner_organization=self.city.branch_a),
            size=2,
            pass_mark=2,
        )
        return quiz_services.attempt_start(
            quiz=quiz, member=self.city.member_a, on_paper=True, user=self.city.operator_a
        )

    @cached_property
    def question_import(self):
        """A checked 题库 file that trainer_a uploaded (nobody else may see it)."""
        data = csv_bytes(
            [["题型", "题目", "选项A", "选项B", "答案"], ["单选", "一题", "甲", "乙", "A"]]
        )
        return quiz_importing.questions_check(
            course=self.quiz.course, data=data, file_name="bank.csv", user=self.city.trainer_a
        )

    @cached_property
    def certificate(self) -> Certificate:
        """member_a's completion certificate of a closed round of county A, with a stored PDF
        (a stand-in: rendering is tested in tests/certificates)."""
        training_round = q3_round([self.city.county_a], self.city.member_a, title="第三季度轮训")
        certificate_services.certificates_issue(training_round=training_round, render=False)
        certificate = Certificate.objects.get(member=self.city.member_a)
        certificate.pdf.save(f"matrix-{certificate.pk}.pdf", ContentFile(b"%PDF-1.4\n"), save=False)
        Certificate.objects.filter(pk=certificate.pk).update(
            pdf=certificate.pdf.name, pdf_rendered_at=timezone.now()
        )
        return Certificate.objects.get(pk=certificate.pk)

    @cached_property
    def role(self) -> RoleAssignment:
        return self.city.secretary_a.role_assignments.get()

    @cached_property
    def template(self):
        """A certificate template branch A made: the levels above it use it too, the sibling
        levels do not see it (the city's own templates are tested in tests/certificates)."""
        template = certificate_services.default_template("completion")
        template.pk = None
        template.is_default = False
        template.owner_organization = self.city.branch_a
        template.save()
        return template

    @cached_property
    def topic(self):
        return Topic.objects.create(name="党史学习", slug="dangshi")

    @cached_property
    def document(self) -> Document:
        course_builders.root_collection()
        return Document.objects.create(
            title="学习资料", file=ContentFile(b"study notes", name="notes.txt")
        )


# --- The cases ----------------------------------------------------------------------------------

# Users whose roles do not reach branch A, at every level around it (see World).
B_SIDE = ("secretary_b", "operator_b", "trainer_b", "member_b")  # another county
SIBLING_TOWNSHIP = ("secretary_t2", "member_t2")  # the township committee next door
SIBLING_BRANCH = ("secretary_sib", "operator_sib", "trainer_sib", "member_sib")
TWO_ROLES_ELSEWHERE = ("secretary_sib+trainer_t2", "member_t2+operator_sib")
OUTSIDE = B_SIDE + SIBLING_TOWNSHIP + SIBLING_BRANCH + TWO_ROLES_ELSEWHERE
# Each user's two-role twin: a role elsewhere (assigned first) and the user's own role.
TWINS = {
    "operator_a": "operator_a+secretary_sib",
    "secretary_a": "secretary_a+trainer_t2",
    "trainer_a": "trainer_a+operator_b",
    "member_a2": "member_a2+operator_sib",
}
STAFF_B = ("secretary_b", "operator_b", "trainer_b")
STAFF_A = ("secretary_a", "operator_a", "trainer_a")
PLAIN_A = ("member_a", "member_a2")


@dataclass
class Case:
    """One object URL. ``kwargs`` and ``data`` build the object (and the POST body) in the
    world; ``insiders`` maps a user to the statuses they may get (never 404)."""

    kwargs: Callable
    insiders: dict
    methods: tuple = ("GET",)
    outsiders: tuple = OUTSIDE
    data: Callable = lambda w: {}
    insider_data: Callable | None = None
    # "login": anonymous visitors are sent to log in (with next= the URL, or anonymous_next);
    # "public": the verification page; "capability": the secret is the credential (see the
    # module docstring). For the last two, the anonymous visitor is one of the users above.
    anonymous: str = "login"
    anonymous_next: Callable | None = None
    # For capabilities: the same URL with the secret forged, and what it answers to anyone.
    forged: Callable | None = None
    forged_status: int = 404
    # What outsiders get (404 unless the URL holds a credential they were handed), and a text
    # of the object that must not appear in what they get.
    outsider_status: tuple = (404,)
    hidden: Callable | None = None
    args: Callable | None = None  # positional arguments instead of kwargs
    # Where an outsider may get something else than 404: the kwargs of a missing object, whose
    # answer theirs must equal (so the id reveals nothing).
    missing: Callable | None = None
    xfail: str = ""
    # The object is its insiders' own (an upload): their twins, other users, are outsiders.
    personal: bool = False


def _round(w):
    return {"pk": w.round.pk}


def _sitting(w):
    return {"pk": w.sitting.pk}


def _terminal(w):
    return {"pk": w.terminal.pk}


SITE_CASES = {
    # members
    "members:member_detail": Case(
        kwargs=lambda w: {"pk": w.city.member_a.pk},
        insiders={"secretary_a": (200,), "operator_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "members:member_password_reset": Case(
        kwargs=lambda w: {"pk": w.city.member_a.pk},
        methods=("POST",),
        data=lambda w: {"confirm": "on"},
        # The slip is shown to who may reset (a secretary or trainer above the member);
        # site operators do not reset passwords.
        insiders={"secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "members:member_categories": Case(
        kwargs=lambda w: {"pk": w.city.member_a.pk},
        methods=("GET", "POST"),
        data=lambda w: {"status": "full", "position": "member"},
        # Secretaries and trainers above the member keep her categories; operators do not.
        insiders={"secretary_a": (200, 302), "trainer_a": (200, 302)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "members:organization_detail": Case(
        kwargs=lambda w: {"pk": w.city.branch_a.pk},
        insiders={"secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "members:import_detail": Case(
        kwargs=lambda w: {"pk": w.roster_import.pk},
        insiders={"secretary_a": (200,)},
        # An import is its uploader's alone: not even the trainers above see it, nor a
        # secretary of the same branch who is not the uploader.
        outsiders=(*OUTSIDE, "trainer_a", "trainer_city", "member_a"),
        personal=True,
    ),
    "members:import_apply": Case(
        kwargs=lambda w: {"pk": w.roster_import.pk},
        methods=("POST",),
        insiders={"secretary_a": (302,)},
        outsiders=(*OUTSIDE, "trainer_a", "trainer_city", "member_a"),
        personal=True,
    ),
    # courses
    "courses:viewing_start": Case(
        kwargs=lambda w: {"lesson_id": w.lesson.pk},
        methods=("POST",),
        # Lessons are the city's shared course content, not a subtree's: every member may
        # watch every live lesson. Accounts without a member record get 404.
        insiders={"member_a": (200,), "member_b": (200,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "courses:reading_start": Case(
        kwargs=lambda w: {"lesson_id": w.reading_lesson.pk},
        methods=("POST",),
        # Like watching: every member may read every live lesson to read.
        insiders={"member_a": (302,), "member_b": (302,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "courses:reading_done": Case(
        kwargs=lambda w: {"lesson_id": w.reading_lesson.pk},
        methods=("POST",),
        insiders={"member_a": (302,), "member_b": (302,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "courses:progress_report": Case(
        kwargs=lambda w: {"progress_id": w.progress.pk},
        methods=("POST",),
        data=lambda w: {"viewing": "", "segments": "[[0, 5]]", "position": "5"},
        insider_data=lambda w: {
            "viewing": str(w.progress.viewing),
            "segments": "[[0, 5]]",
            "position": "5",
        },
        insiders={"member_a": (200,)},
        outsiders=(*OUTSIDE, "member_a2", "anonymous", *STAFF_A),
        anonymous="capability",
    ),
    "courses:live_status": Case(
        kwargs=lambda w: {"stream_id": w.live_stream.pk},
        # A lecture is the city's shared content, like its lesson: anyone signed in sees its
        # state.
        insiders={
            "member_a": (200,),
            "member_b": (200,),
            "secretary_a": (200,),
            "trainer_b": (200,),
        },
        outsiders=(),
    ),
    "courses:live_viewing_start": Case(
        kwargs=lambda w: {"stream_id": w.live_stream.pk},
        methods=("POST",),
        # Like a lesson: every member may watch every live lecture; no member record, 404.
        insiders={"member_a": (200,), "member_b": (200,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "courses:live_report": Case(
        kwargs=lambda w: {"stream_id": w.live_stream.pk, "progress_id": w.live_progress.pk},
        methods=("POST",),
        data=lambda w: {"viewing": "", "segments": "[[0, 5]]", "position": "5"},
        insider_data=lambda w: {
            "viewing": str(w.live_progress.viewing),
            "segments": "[[0, 5]]",
            "position": "5",
        },
        insiders={"member_a": (200,)},
        outsiders=(*OUTSIDE, "member_a2", "anonymous", *STAFF_A),
        anonymous="capability",
    ),
    # rounds: a member's own pages
    "rounds:detail": Case(
        kwargs=_round,
        insiders={"member_a": (200,), "member_a2": (200,), "secretary_a": (302,)},
    ),
    "rounds:leave_create": Case(
        kwargs=_round,
        methods=("POST",),
        data=lambda w: {"reason": "外出务工"},
        insiders={"member_a": (302,)},
    ),
    "rounds:leave_withdraw": Case(
        kwargs=lambda w: {"pk": w.leave.round_id},
        methods=("POST",),
        insiders={"member_a": (302,)},
        # member_a2 is in the round but the leave request is member_a's.
        outsiders=(*OUTSIDE, "member_a2", "secretary_a"),
    ),
    # rounds: secretaries' pages
    "rounds:coverage": Case(
        kwargs=_round,
        insiders={"secretary_a": (200,), "operator_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:coverage_export": Case(
        kwargs=_round,
        insiders={"secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:member_status": Case(
        kwargs=lambda w: {"pk": w.round.pk, "member_pk": w.city.member_a.pk},
        insiders={"secretary_a": (200,), "operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:exemption_create": Case(
        kwargs=lambda w: {"pk": w.round.pk, "member_pk": w.city.member_a.pk},
        methods=("POST",),
        data=lambda w: {"reason": "长期卧病"},
        insiders={"secretary_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "rounds:exemption_revoke": Case(
        kwargs=lambda w: {"pk": w.exemption.round_id, "member_pk": w.exemption.member_id},
        methods=("POST",),
        insiders={"secretary_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "rounds:leave_list": Case(
        kwargs=_round,
        insiders={"secretary_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "rounds:leave_decide": Case(
        kwargs=lambda w: {"pk": w.leave.round_id, "leave_pk": w.leave.pk},
        methods=("POST",),
        data=lambda w: {"decision": "approve"},
        insiders={"secretary_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "rounds:remind": Case(
        kwargs=lambda w: {"round_pk": w.round.pk},
        methods=("POST",),
        data=lambda w: {"org": w.city.branch_a.pk},
        insiders={"secretary_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    # rounds: sittings (the site PC)
    "rounds:sitting_open": Case(
        kwargs=lambda w: {
            "session_pk": w.session.pk,
            "timestamp": int(w.session.event.start.timestamp()),
        },
        insiders={"secretary_a": (302,), "operator_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:sitting": Case(
        kwargs=_sitting,
        insiders={"secretary_a": (200,), "operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:sitting_screen": Case(
        kwargs=_sitting,
        insiders={"operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:sitting_code": Case(
        kwargs=_sitting,
        insiders={"operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:roll_call": Case(
        kwargs=_sitting,
        methods=("GET", "POST"),
        insiders={"operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:sign_in_sheet": Case(
        kwargs=_sitting,
        insiders={"operator_a": (200,), "secretary_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:paper_entry": Case(
        kwargs=_sitting,
        methods=("GET", "POST"),
        # The sheet's genuine code and a tick: outsiders are refused before the code is read.
        data=lambda w: {
            "code": paper.sheet_code_for(sitting=w.sitting),
            "tick": [str(w.city.member_a.pk)],
        },
        insiders={"operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:sitting_close": Case(
        kwargs=_sitting,
        methods=("POST",),
        insiders={"secretary_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    # rounds: site terminals
    "rounds:terminal": Case(
        kwargs=_terminal,
        insiders={"operator_a": (200,), "secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:terminal_revoke": Case(
        kwargs=_terminal,
        methods=("POST",),
        insiders={"trainer_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a", "secretary_a"),
    ),
    "rounds:terminal_claim": Case(
        kwargs=_terminal,
        methods=("POST",),
        # The first browser gets the secret, every later one is told it is taken.
        insiders={"operator_a": (200, 409)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:terminal_package": Case(
        kwargs=_terminal,
        insiders={"operator_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:terminal_sync": Case(
        kwargs=_terminal,
        methods=("POST",),
        # A form body is no sync: refused as unreadable, after the scope check.
        insiders={"operator_a": (400,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:check_in": Case(
        kwargs=lambda w: {"token": round_services.qr_token(sitting=w.sitting).token},
        insiders={"member_a": (200,)},
        # The signed code is the credential (the member scanned it at the site). A forged one
        # is refused like a code of a sitting that does not exist.
        # Whoever scans the code but is not in the round, or is no member at all, is refused
        # without a word about the session.
        outsiders=OUTSIDE + STAFF_A,
        outsider_status=(400, 403),
        hidden=lambda w: w.session.event.title,
        # A visitor not logged in logs in first, then is checked in.
        anonymous_next=lambda w: reverse("rounds:check_in_resume"),
        forged=lambda w: {"token": f"{w.sitting.pk}.{round_services._window(NOW)}.forged"},
        forged_status=400,
    ),
    "rounds:ical_feed": Case(
        kwargs=lambda w: {"token": w.feed.token},
        insiders={"anonymous": (200,), "member_a": (200,)},
        outsiders=(),
        anonymous="capability",
        forged=lambda w: {"token": "x" * len(w.feed.token)},
    ),
    "rounds:ledger_member": Case(
        kwargs=lambda w: {"member_pk": w.city.member_a.pk},
        insiders={"secretary_a": (200,), "operator_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:plan": Case(
        kwargs=lambda w: {"pk": w.plan.pk},
        # A plan set at branch A: staff whose subtree meets it see it (trainers and
        # secretaries above it too); plain members never.
        insiders={"secretary_a": (200,), "operator_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:plan_export": Case(
        kwargs=lambda w: {"pk": w.plan.pk},
        insiders={"secretary_a": (200,), "operator_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "rounds:record_new": Case(
        kwargs=lambda w: {"member_pk": w.city.member_a.pk},
        # Secretaries and trainers above the member record study; site operators do not.
        insiders={"secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    "rounds:record_decide": Case(
        kwargs=lambda w: {"pk": w.study_record.pk},
        methods=("POST",),
        data=lambda w: {"decision": "approve"},
        insiders={"secretary_a": (302,), "trainer_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
    ),
    # quizzes
    "quizzes:detail": Case(
        kwargs=lambda w: {"pk": w.quiz.pk},
        # Like lessons: every member may take every quiz; accounts without a member record 404.
        insiders={"member_a": (200,), "member_b": (200,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "quizzes:start": Case(
        kwargs=lambda w: {"pk": w.quiz.pk},
        methods=("POST",),
        insiders={"member_a": (302,), "member_b": (302,)},
        outsiders=STAFF_B + STAFF_A,
    ),
    "quizzes:results": Case(
        kwargs=lambda w: {"pk": w.quiz.pk},
        # A test is the city's, like its course: every secretary and trainer follows it within
        # their own subtree (the ?org= scope is tests/quizzes/test_results.py); members and site
        # operators never.
        insiders={"secretary_a": (200,), "trainer_a": (200,), "secretary_b": (200,)},
        outsiders=(*PLAIN_A, "member_b", "operator_b"),
    ),
    "quizzes:paper": Case(
        kwargs=lambda w: {"pk": w.quiz.pk},
        # Like the results: the city's test, each staff user's own site (?org= checked in
        # tests/quizzes/test_paper.py); members never.
        insiders={"operator_a": (200,), "secretary_a": (200,), "trainer_a": (200,)},
        outsiders=("member_a", "member_b"),
    ),
    "quizzes:paper_enter": Case(
        kwargs=lambda w: {"pk": w.paper_attempt.pk},
        methods=("GET", "POST"),
        insiders={"operator_a": (200,), "secretary_a": (200,), "trainer_a": (200,)},
        outsiders=OUTSIDE + PLAIN_A,
    ),
    "quizzes:attempt": Case(
        kwargs=lambda w: {"pk": w.attempt.pk},
        methods=("GET", "POST"),
        # An attempt is its member's alone: no secretary or trainer sees it either.
        insiders={"member_a": (200, 302)},
        outsiders=(*OUTSIDE, "member_a2", *STAFF_A, "trainer_city"),
    ),
    "quizzes:submit": Case(
        kwargs=lambda w: {"pk": w.attempt.pk},
        methods=("POST",),
        # The page's token is its credential (tests/quizzes/test_submit_token.py); without it,
        # as here, the member's own login decides, as on the attempt's page.
        insiders={"member_a": (200, 302)},
        outsiders=(*OUTSIDE, "member_a2", *STAFF_A, "trainer_city"),
    ),
    "quizzes:result": Case(
        kwargs=lambda w: {"pk": w.attempt.pk},
        insiders={"member_a": (200, 302)},
        outsiders=(*OUTSIDE, "member_a2", *STAFF_A, "trainer_city"),
    ),
    "quizzes:import_detail": Case(
        kwargs=lambda w: {"pk": w.question_import.pk},
        insiders={"trainer_a": (200,)},
        outsiders=(*OUTSIDE, "trainer_city", "secretary_a", "member_a"),
        personal=True,
    ),
    "quizzes:import_apply": Case(
        kwargs=lambda w: {"pk": w.question_import.pk},
        methods=("POST",),
        insiders={"trainer_a": (302,)},
        outsiders=(*OUTSIDE, "trainer_city", "secretary_a", "member_a"),
        personal=True,
    ),
    # certificates
    "certificates:pdf": Case(
        kwargs=lambda w: {"pk": w.certificate.pk},
        insiders={"member_a": (200,), "secretary_a": (200,), "trainer_a": (200,)},
        # Site operators do not hand out certificates.
        outsiders=(*OUTSIDE, "member_a2", "operator_a"),
    ),
    "certificates:round_zip": Case(
        kwargs=lambda w: {"round_pk": w.round.pk},
        # No certificates yet: the secretary is sent to the list page (a 404 outside scope).
        insiders={"secretary_a": (302,), "trainer_a": (302,)},
        outsiders=OUTSIDE + PLAIN_A + ("operator_a",),
        # Whoever holds certificate roles in several subtrees picks one first, whatever the id.
        outsider_status=(404, 302),
        missing=lambda w: {"round_pk": MISSING},
    ),
    "certificates:verify": Case(
        kwargs=lambda w: {"code": w.certificate.code},
        insiders={"anonymous": (200,), "member_b": (200,), "secretary_b": (200,)},
        outsiders=(),
        anonymous="public",
        forged=lambda w: {"code": "0" * len(w.certificate.code)},
    ),
    # Wagtail documents: lesson attachments (course content, city-wide, like the lessons).
    "wagtaildocs_serve": Case(
        kwargs=None,
        args=lambda w: [w.document.pk, w.document.filename],
        insiders={"member_b": (200,)},
        outsiders=(),
    ),
}

PUBLIC = {name for name, case in SITE_CASES.items() if case.anonymous == "public"}
CAPABILITIES = {
    name
    for name, case in SITE_CASES.items()
    if (case.anonymous == "capability" or case.forged is not None) and name not in PUBLIC
}


def _reverse(name, case, world, *, forged=False):
    if case.args is not None:
        return reverse(name, args=case.args(world))
    kwargs = case.forged(world) if forged else case.kwargs(world)
    return reverse(name, kwargs=kwargs)


def _with_twins(users) -> tuple:
    return tuple(users) + tuple(TWINS[who] for who in users if who in TWINS)


def _send(client, method, url, data):
    return client.get(url) if method == "GET" else client.post(url, data)


def _is_login_redirect(response, next_url, login_url) -> bool:
    if response.status_code != 302:
        return False
    parts = urlsplit(response["Location"])
    return parts.path == login_url and parse_qs(parts.query).get("next") == [next_url]


@pytest.fixture
def world(city, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # the verification page's rate limit
    with time_machine.travel(NOW, tick=False):
        yield World(city)
    cache.clear()


def test_every_object_url_has_a_case():
    found = set(site_object_routes())
    uncovered = found - set(SITE_CASES) - set(SKIPPED)
    assert not uncovered, f"object URLs without a case in the access matrix: {sorted(uncovered)}"
    stale = (set(SITE_CASES) | set(SKIPPED)) - found
    assert not stale, f"cases for URLs that no longer exist: {sorted(stale)}"


def test_the_verification_page_is_the_only_public_object_url():
    assert PUBLIC == {"certificates:verify"}
    assert CAPABILITIES == {
        "courses:progress_report",
        "courses:live_report",
        "rounds:check_in",
        "rounds:ical_feed",
    }


def test_cases_name_the_outsiders_of_every_level():
    """Where county B's users are outsiders, so are the users of every level around branch A."""
    partial = [
        name
        for name, case in SITE_CASES.items()
        if set(B_SIDE) <= set(case.outsiders) and not set(OUTSIDE) <= set(case.outsiders)
    ]
    assert not partial, f"name OUTSIDE, not only county B's users, as outsiders of: {partial}"


def _site_params():
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=SITE_CASES[name].xfail))
        if name in SITE_CASES and SITE_CASES[name].xfail
        else name
        for name in sorted(set(site_object_routes()) - set(SKIPPED))
    ]


@pytest.mark.parametrize("name", _site_params())
def test_object_url_is_scoped(world, name):
    case = SITE_CASES.get(name)
    assert case is not None, f"{name}: add a case to SITE_CASES"
    url = _reverse(name, case, world)
    login_url = reverse("members:login")
    failures = []

    def check(who, method, response, expected):
        if response.status_code not in expected:
            failures.append(f"{who} {method} {url}: {response.status_code}, expected {expected}")
        elif response.status_code == 302 and urlsplit(response["Location"]).path == login_url:
            failures.append(f"{who} {method} {url}: sent to log in")

    # Every user named has a twin with a second role elsewhere, who gets what the user gets.
    outsiders = _with_twins(case.outsiders)
    insiders = dict(case.insiders)
    twin_insiders = {TWINS[who]: expected for who, expected in insiders.items() if who in TWINS}
    if case.personal:
        outsiders += tuple(twin_insiders)
        twin_insiders = {}

    # Outsiders: 404 for every method the view takes; one of them tries the other method too,
    # and is refused as such (the view does not look at the object for a method it refuses).
    hidden = case.hidden(world) if case.hidden else None
    other = tuple(method for method in ("GET", "POST") if method not in case.methods)
    for index, who in enumerate(outsiders):
        client = world.client(who)
        for method in case.methods + (other if index == 0 else ()):
            expected = case.outsider_status + (() if method in case.methods else (405,))
            response = _send(client, method, url, case.data(world))
            check(who, method, response, expected)
            if case.missing is not None and response.status_code != 404:
                missing = reverse(name, kwargs=case.missing(world))
                if not _same(response, _send(client, method, missing, case.data(world))):
                    failures.append(f"{who} {method} {url}: not what a missing id gets")
            if hidden and hidden in response.content.decode():
                failures.append(f"{who} {method} {url}: shows {hidden!r}")

    # Anonymous visitors are sent to log in.
    if case.anonymous == "login":
        next_url = case.anonymous_next(world) if case.anonymous_next else url
        anonymous = world.client("anonymous")
        for method in ("GET", "POST"):
            response = _send(anonymous, method, url, case.data(world))
            if _is_login_redirect(response, next_url, login_url):
                continue
            if method in case.methods or response.status_code != 405:
                failures.append(f"anonymous {method} {url}: {response.status_code}, not to log in")

    # Capabilities and the public page: without the secret, nothing is revealed.
    if case.forged is not None:
        forged = _reverse(name, case, world, forged=True)
        for who in ("anonymous", *case.outsiders, *case.insiders):
            response = _send(world.client(who), case.methods[0], forged, case.data(world))
            if response.status_code != case.forged_status:
                failures.append(f"{who} {forged}: {response.status_code} for a forged secret")

    # Insiders see the object (last: their POSTs change it); their twins first, with whatever
    # they change rolled back.
    method = case.methods[0]
    for who, expected in twin_insiders.items():
        data = (case.insider_data or case.data)(world)
        with transaction.atomic():
            check(who, method, _send(world.client(who), method, url, data), expected)
            transaction.set_rollback(True)
    for who, expected in insiders.items():
        data = (case.insider_data or case.data)(world)
        check(who, method, _send(world.client(who), method, url, data), expected)

    assert not failures, "\n".join(failures)


# --- Pages without an object -------------------------------------------------------------------

# The pages without an object that an anonymous visitor may open, and why: logging in, and the
# ways into one's own account without a password (a slip's code, a code by SMS). Every other
# site page without an object sends an anonymous visitor to log in, with next= the page.
ANONYMOUS_PAGES = {
    "set_language": "choosing the language, before logging in",
    "display_mode": "large type on or off, before logging in (POST only)",
    "members:login": "logging in",
    "members:logout": "logging out (POST only)",
    "members:activate": "setting a password with the code on a slip",
    "members:sms_login": "asking for a login code by SMS",
    "members:sms_login_code": "entering the login code (none asked for: back to asking)",
    "members:sms_reset": "asking for a code by SMS to reset a forgotten password",
    "members:sms_reset_code": "entering it with the new password (none asked for: back)",
    "members:sms_activate": "asking for a code by SMS to activate an account",
    "members:sms_activate_code": "entering it with the new password (none asked for: back)",
    "wagtailcore_login": "Wagtail's page-privacy login (unused)",
}
# Machine endpoints, not pages: nginx-rtmp's callbacks carry a shared secret in their URL
# (courses.live); without it they are not there (404) for anyone, signed in or not.
MACHINE_ENDPOINTS = {
    "courses:live_publish": "nginx-rtmp's on_publish (the stream key check)",
    "courses:live_publish_done": "nginx-rtmp's on_publish_done",
}
# The code pages without a number asked for in this session: back to asking, nothing shown.
SMS_CODE_PAGES = {
    "members:sms_login_code": "members:sms_login",
    "members:sms_reset_code": "members:sms_reset",
    "members:sms_activate_code": "members:sms_activate",
}


def site_plain_routes():
    """Every named non-admin pattern that takes no argument, by name."""
    return {
        route.name: route
        for route in all_routes()
        if route.name
        and not route.route.startswith(ADMIN_PREFIX)
        and not (route.arguments or route.positional)
    }


def test_pages_without_an_object_send_anonymous_visitors_to_log_in_but_the_listed_ones(city):
    routes = site_plain_routes()
    assert not set(ANONYMOUS_PAGES) - set(routes), "anonymous pages gone from the URL conf"
    login_url = reverse("members:login")
    failures = []
    cache.clear()
    for name in sorted(routes):
        url = reverse(name)
        for method in ("GET", "POST"):
            response = _send(Client(raise_request_exception=False), method, url, {})
            to_login = _is_login_redirect(response, url, login_url)
            if name in MACHINE_ENDPOINTS:
                if response.status_code not in (404, 405):
                    failures.append(f"anonymous {method} {url}: {response.status_code}")
                continue
            if name not in ANONYMOUS_PAGES:
                if not (to_login or response.status_code == 405):
                    failures.append(f"anonymous {method} {url}: {response.status_code}")
                continue
            if to_login or response.status_code in (403, 404, 500):
                failures.append(f"anonymous {method} {url}: {response.status_code}")
            elif name in SMS_CODE_PAGES and response["Location"] != reverse(SMS_CODE_PAGES[name]):
                failures.append(f"anonymous {method} {url}: {response['Location']}")
    cache.clear()
    assert not failures, "\n".join(failures)


def test_lesson_pages_need_a_login_and_are_the_whole_citys(world):
    """Lessons are served by Wagtail's page catch-all (skipped above). They are course content
    for every member of the city, not a subtree's: a login is all they need."""
    lesson = world.lesson
    url = lesson.get_url()
    response = world.client("anonymous").get(url)
    assert _is_login_redirect(response, url, reverse("members:login"))
    for who in ("member_a", "member_b", "secretary_b"):
        assert world.client(who).get(url).status_code == 200, who
    LessonPage.objects.get(pk=lesson.pk).unpublish()
    assert world.client("member_a").get(url).status_code == 404
    response = world.client("member_a").post(reverse("courses:viewing_start", args=[lesson.pk]))
    assert response.status_code == 404


# --- The Wagtail admin views our apps add -------------------------------------------------------

# The object each admin viewset of ours names, in county A's subtree, and whether it is scoped
# to a subtree (False: the city's shared content: topics, videos).
ADMIN_OBJECTS = {
    "org_tree": (lambda w: w.city.branch_a, True),
    "party_members": (lambda w: w.city.member_a, True),
    "org_roles": (lambda w: w.role, True),
    "postings": (lambda w: w.posting, True),
    "study_plans": (lambda w: w.plan, True),
    "training_rounds": (lambda w: w.round, True),
    "group_sessions": (lambda w: w.session, True),
    "issued_certificates": (lambda w: w.certificate, True),
    "wagtailsnippets_certificates_certificatetemplate": (lambda w: w.template, True),
    "wagtailsnippetchoosers_certificates_certificatetemplate": (lambda w: w.template, True),
    "wagtailsnippets_courses_topic": (lambda w: w.topic, False),
    "wagtailsnippetchoosers_courses_topic": (lambda w: w.topic, False),
    "question_banks": (lambda w: w.question, True),
    "course_quizzes": (lambda w: w.quiz, True),
    "lesson_video_status": (lambda w: w.lesson.video, False),
    "lesson_video_reprocess": (lambda w: w.lesson.video, False),
}
# Views no trainer may use (no permission, or the certificates' policy): Wagtail answers with
# its permission-denied redirect; out of scope, the 404 comes first.
ADMIN_DENIED_TO_TRAINERS = {
    "org_tree:delete",
    "party_members:delete",
    "training_rounds:delete",
    "study_plans:delete",  # a plan is kept: its years are history
    "issued_certificates:delete",
    "issued_certificates:edit",
    "issued_certificates:history",
    "issued_certificates:history_results",
    "issued_certificates:usage",
    "wagtailsnippets_certificates_certificatetemplate:delete",
}
ADMIN_BROKEN = {}
NO_ADMIN = ("secretary_b", "operator_b", "member_b", "secretary_a", "operator_a", "member_a")
# Trainers whose trainer roles do not reach branch A, at every level around it; the first also
# tries to POST. A secretary of branch A who is trainer elsewhere is one of them: the admin
# works with trainer roles alone.
ADMIN_OUTSIDERS = (
    "trainer_b",
    "trainer_t2",
    "trainer_sib",
    TWINS["secretary_a"],
    "secretary_sib+trainer_t2",
)


def _viewset(key):
    return key.split(":")[0]


def test_every_admin_object_url_has_an_object():
    found = {_viewset(key) for key in admin_object_routes()}
    assert found == set(ADMIN_OBJECTS), "add the viewset's object to ADMIN_OBJECTS"
    assert ADMIN_DENIED_TO_TRAINERS | set(ADMIN_BROKEN) <= set(admin_object_routes())


def _admin_params():
    params = []
    for key in sorted(admin_object_routes()):
        marks = (
            [pytest.mark.xfail(strict=True, reason=ADMIN_BROKEN[key])]
            if key in ADMIN_BROKEN
            else []
        )
        params.append(pytest.param(key, marks=marks))
    return params


def _admin_url(key, pk):
    route = admin_object_routes()[key]
    (argument,) = route.arguments
    return reverse(key, kwargs={argument: pk})


def _denied_or_404(response) -> bool:
    """Wagtail's permission-denied answer is a redirect to the admin's home page."""
    if response.status_code == 404:
        return True
    return response.status_code == 302 and response["Location"] == reverse("wagtailadmin_home")


def _same(response, other) -> bool:
    location = response.get("Location", "").replace(str(MISSING), "#")
    return response.status_code == other.status_code and (
        response.status_code != 302
        or location == other.get("Location", "").replace(str(MISSING), "#")
    )


@pytest.mark.parametrize("key", _admin_params())
def test_admin_object_url_is_scoped(world, key):
    make, scoped = ADMIN_OBJECTS[_viewset(key)]
    obj = make(world)
    url, missing = _admin_url(key, obj.pk), _admin_url(key, MISSING)
    admin_login = reverse("wagtailadmin_login")
    failures = []

    # No admin access: sent to the admin's login, like for any id.
    for who in ("anonymous", *NO_ADMIN):
        for method in ("GET", "POST"):
            response = _send(world.client(who), method, url, {})
            parts = urlsplit(response.get("Location", ""))
            if not (
                response.status_code == 302
                and parts.path == admin_login
                and parse_qs(parts.query).get("next") == [url]
            ):
                failures.append(f"{who} {method} {url}: {response.status_code}, not to log in")

    # Trainers who do not reach the object: what a missing id gets, a 404 or permission denied.
    outsider = world.client("trainer_b")
    own = world.client("trainer_a")
    if scoped:
        for index, who in enumerate(ADMIN_OUTSIDERS):
            for method in ("GET", "POST") if index == 0 else ("GET",):
                client = world.client(who)
                response = _send(client, method, url, {})
                if not _denied_or_404(response):
                    failures.append(f"{who} {method} {url}: {response.status_code}")
                if not _same(response, _send(client, method, missing, {})):
                    failures.append(f"{who} {method} {url}: not what a missing id gets")
        if not type(obj)._default_manager.filter(pk=obj.pk).exists():
            failures.append(f"{url}: the object is gone after trainer_b's POST")
        if isinstance(obj, Round) and Round.objects.get(pk=obj.pk).state != Round.State.PUBLISHED:
            failures.append(f"{url}: the round changed after trainer_b's POST")
        if isinstance(obj, Certificate) and not Certificate.objects.get(pk=obj.pk).is_valid:
            failures.append(f"{url}: the certificate changed after trainer_b's POST")
    else:
        # The city's shared content: every trainer gets the same, whatever their county.
        response, theirs = outsider.get(url), own.get(url)
        if response.status_code != theirs.status_code:
            failures.append(f"trainer_b GET {url}: {response.status_code} ≠ {theirs.status_code}")

    # The object's own trainer gets in (the object is real), or is denied like everyone; so does
    # their twin, whose trainer role is the second.
    for who in (TWINS["trainer_a"], "trainer_a"):
        response = world.client(who).get(url)
        if key in ADMIN_DENIED_TO_TRAINERS:
            ok = _denied_or_404(response) and response.status_code == 302
        else:
            ok = response.status_code == 200 if scoped else response.status_code in (200, 302, 405)
        if not ok:
            failures.append(f"{who} GET {url}: {response.status_code}")
    if scoped and _same(response, own.get(missing)) and key != "issued_certificates:edit":
        failures.append(f"trainer_a GET {url}: the same as for a missing id")

    assert not failures, "\n".join(failures)
