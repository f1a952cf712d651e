"""The Content-Security-Policy, checked against the HTML every view actually sends.

The URL conf is walked: every pattern outside the admin either has visits here (who asks,
for what) or is listed in NOT_HTML with the reason, so a new page cannot slip past. Each
HTML response must carry the policy, strict as config/settings/csp.py means it:

* script-src is 'self' plus the request's nonce, nothing else (no 'unsafe-inline', no
  'unsafe-eval', no hosts); object-src and base-uri 'none'; style-src 'self' plus the nonce;
* every executable <script> either loads a file from this site or carries that nonce;
* no inline event handler (on*=), no javascript: URL, no style attribute, no <style> element
  without the nonce, no plugin element.

The Wagtail admin gets the same checks (its inline scripts, written by Wagtail's widgets, must
carry the nonce too) plus exactly the allowances of LUNXUN_CSP_ADMIN_UPDATE. The browser side
(no violation while pages are used, the video plays) is tests/e2e/test_csp_browser.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from certificates import services as certificate_services
from certificates.models import Certificate
from core.csp import CSPMiddleware, nonce_trailing_script
from courses import services as course_services
from courses.models import LessonPage
from members import importing
from quizzes import importing as quiz_importing
from quizzes import services as quiz_services
from rounds import services as round_services
from rounds import terminals

from . import factories
from .certificates.rounds_setup import complete, q3_round
from .courses import builders as course_builders
from .members.spreadsheets import csv_bytes
from .quizzes import builders as quiz_builders
from .rounds import builders

NOW = builders.aware(2026, 11, 12, 9, 30)  # the group session below is running
HEADER = "Content-Security-Policy"
SELF, NONE = "'self'", "'none'"
JS_TYPES = {"", "text/javascript", "application/javascript", "module"}
FETCHED = {"img": "img-src", "iframe": "default-src", "video": "media-src", "source": "media-src"}

# --- Reading a policy and a page ----------------------------------------------------------------


def parse_policy(header):
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


def nonce_of(policy):
    nonces = [
        s[len("'nonce-") : -1] for s in policy.get("script-src", []) if s.startswith("'nonce-")
    ]
    return nonces[0] if nonces else None


class PageAudit(HTMLParser):
    """What in a page a Content-Security-Policy governs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts = []  # (attributes, body)
        self.style_elements = []  # attributes
        self.handlers = []
        self.style_attributes = []
        self.javascript_urls = []
        self.stylesheets = []
        self.plugins = []
        self.fetched = []  # (directive, URL) of images, frames and media the page loads
        self._script = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") and name[2:].isalpha():
                self.handlers.append(f"<{tag} {name}={value!r}>")
            elif name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.javascript_urls.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            self._script = (attributes, [])
        elif tag == "style":
            self.style_elements.append(attributes)
        elif tag == "link" and "stylesheet" in (attributes.get("rel") or "").split():
            self.stylesheets.append(attributes.get("href") or "")
        elif tag in ("object", "embed", "applet"):
            self.plugins.append(tag)
        directive = FETCHED.get(tag)
        for name in ("src", "poster") if directive else ():
            if attributes.get(name):
                self.fetched.append(
                    ("img-src" if name == "poster" else directive, attributes[name])
                )

    def handle_data(self, data):
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None


def _same_origin(url):
    return url.startswith("/") and not url.startswith("//")


def policy_problems(policy, *, admin):
    """What is wrong with the policy itself."""
    problems = []
    allowances = settings.LUNXUN_CSP_ADMIN_UPDATE if admin else {}
    for directive, sources in policy.items():
        extra = set(allowances.get(directive, ()))
        for source in sources:
            if source in extra:
                continue
            if source in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*"):
                problems.append(f"{directive} allows {source}")
            if source in ("http:", "https:", "data:"):
                problems.append(f"{directive} allows any {source} URL")
    for directive in ("script-src", "style-src"):
        others = [s for s in policy.get(directive, []) if s != SELF and not s.startswith("'nonce-")]
        if others or SELF not in policy.get(directive, []):
            problems.append(f"{directive} is {policy.get(directive)}, not 'self' and the nonce")
    for directive, expected in {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [SELF],
        "form-action": [SELF],
    }.items():
        if policy.get(directive) != expected:
            problems.append(f"{directive} is {policy.get(directive)}, not {expected}")
    for directive in ("script-src-elem", "script-src-attr", "style-src-elem", "style-src-attr"):
        if directive in policy and policy[directive] != allowances.get(directive):
            problems.append(f"{directive} is {policy[directive]}: only an admin allowance may be")
    return problems


def page_problems(response, *, admin=False):
    """Everything in this HTML response that its Content-Security-Policy would refuse."""
    if HEADER not in response:
        return ["no Content-Security-Policy header"]
    policy = parse_policy(response[HEADER])
    problems = policy_problems(policy, admin=admin)
    nonce = nonce_of(policy)
    audit = PageAudit()
    audit.feed(response.content.decode())
    audit.close()
    for attributes, body in audit.scripts:
        if (attributes.get("type") or "").strip().lower() not in JS_TYPES:
            continue  # a data block (json_script), never run
        if "src" in attributes:
            if not _same_origin(attributes["src"] or ""):
                problems.append(f"script from {attributes['src']}")
        elif nonce is None or attributes.get("nonce") != nonce:
            problems.append(f"inline script without the nonce: {body.strip()[:80]!r}")
    for attributes in audit.style_elements:
        inline_styles = admin and "'unsafe-inline'" in policy.get("style-src-elem", [])
        if not inline_styles and (nonce is None or attributes.get("nonce") != nonce):
            problems.append("<style> element without the nonce")
    problems += [f"stylesheet from {href}" for href in audit.stylesheets if not _same_origin(href)]
    problems += [f"inline event handler {h}" for h in audit.handlers]
    problems += [f"style attribute {s}" for s in audit.style_attributes]
    problems += [f"javascript: URL {u}" for u in audit.javascript_urls]
    problems += [f"plugin element <{p}>" for p in audit.plugins]
    for directive, url in audit.fetched:
        allowed = policy.get(directive, policy["default-src"])
        scheme = url.split(":", 1)[0] + ":" if ":" in url else ""
        if (
            not _same_origin(url)
            and scheme not in allowed
            and not any(url.startswith(source + "/") for source in allowed)
        ):
            problems.append(f"{directive} refuses {url}")
    return problems


def is_html(response):
    return response.get("Content-Type", "").startswith("text/html")


# --- The policy itself ----------------------------------------------------------------------------


def test_front_end_policy_is_strict(db):
    response = Client().get(reverse("members:login"))
    policy = parse_policy(response[HEADER])
    assert policy_problems(policy, admin=False) == []
    assert policy["script-src"] == [SELF]  # no inline script on this page: no nonce either
    assert not {"script-src-attr", "style-src-elem", "style-src-attr"} & set(policy)
    assert policy["media-src"] == [SELF, "blob:"]  # hls.js: MediaSource
    assert policy["worker-src"] == [SELF, "blob:"]  # hls.js: its transmuxing worker
    assert policy["img-src"] == [SELF]


def test_the_admin_gets_exactly_its_allowances(city, client_for):
    front = parse_policy(client_for(city.trainer).get(reverse("rounds:list"))[HEADER])
    admin = parse_policy(client_for(city.trainer).get(reverse("wagtailadmin_home"))[HEADER])
    expected = {k: list(v) for k, v in front.items()}
    for directive, sources in settings.LUNXUN_CSP_ADMIN_UPDATE.items():
        expected[directive] = [*expected.get(directive, []), *sources]
    for policy in (admin, expected):  # nonces differ from page to page
        policy["script-src"] = [s for s in policy["script-src"] if not s.startswith("'nonce")]
        policy["style-src"] = [s for s in policy["style-src"] if not s.startswith("'nonce")]
    assert admin == expected
    assert "'unsafe-inline'" not in admin["script-src"] + admin["style-src"]
    assert admin["style-src-elem"] == [SELF, "'unsafe-inline'"]
    assert admin["img-src"] == [SELF, "data:", "blob:"]


def test_pdfs_carry_no_policy(city, client_for, settings, tmp_path):
    """Chromium shows a PDF in a plugin, which object-src 'none' would refuse."""
    settings.MEDIA_ROOT = tmp_path
    training_round = q3_round([city.county_a], city.member_a)
    certificate_services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=city.member_a)
    certificate.pdf.save("c.pdf", ContentFile(b"%PDF-1.4\n"), save=True)
    certificate.pdf_rendered_at = timezone.now()
    certificate.save()
    response = client_for(city.member_a.user).get(
        reverse("certificates:pdf", args=[certificate.pk])
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert HEADER not in response


def test_a_trailing_widget_script_gets_the_nonce_and_nothing_else_does():
    """core.csp gives the nonce to the one script a Wagtail widget appends, inside a request;
    a script elsewhere in the widget's HTML (say, a value that escaped escaping) stays bare."""
    widget = '<input value="x"><script>new ImageChooser("id_cover", {});</script>'
    injected = '<b><script>alert(1)</script></b><input><script>initDateChooser("id");</script>'
    assert nonce_trailing_script(widget) == widget  # outside a request: unchanged

    seen = {}

    def view(request):
        from django.http import HttpResponse

        seen["widget"] = nonce_trailing_script(widget)
        seen["injected"] = nonce_trailing_script(injected)
        seen["attributes"] = nonce_trailing_script('<script type="module">x()</script>')
        seen["open"] = nonce_trailing_script("<script>x()</script><p>after</p>")
        return HttpResponse("ok")

    request = RequestFactory().get("/admin/")
    response = CSPMiddleware(view)(request)
    nonce = nonce_of(parse_policy(response[HEADER]))
    assert nonce
    assert seen["widget"] == widget.replace("<script>", f'<script nonce="{nonce}">')
    assert seen["injected"].count("nonce") == 1 and "<script>alert(1)" in seen["injected"]
    assert seen["attributes"] == '<script type="module">x()</script>'
    assert seen["open"] == "<script>x()</script><p>after</p>"
    assert nonce_trailing_script(widget) == widget  # the request is over


# --- The site's pages, one visit or more per view -----------------------------------------------


class World:
    """The city fixture with a round under way over the whole city, a group session running
    now in branch A, and the objects the pages name."""

    def __init__(self, city):
        self.city = city
        self.users = {
            "member_a": city.member_a.user,
            "secretary_a": city.secretary_a,
            "operator_a": city.operator_a,
            "trainer": city.trainer,
        }
        self._clients = {}

    def client(self, key) -> Client:
        if key not in self._clients:
            client = Client(raise_request_exception=False)
            if key != "anonymous":
                client.force_login(
                    self.users[key], backend="members.backends.PhoneOrUsernameBackend"
                )
            self._clients[key] = client
        return self._clients[key]

    @cached_property
    def round(self):
        made = builders.training_round([self.city.root])
        complete(made, factories.member(self.city.branch_b, name="孙丽"))
        builders.complete_online(self.city.member_a, made.lessons.order_by("path").first())
        return made

    @cached_property
    def lesson(self) -> LessonPage:
        return self.round.lessons.order_by("path").first()

    @cached_property
    def sitting(self):
        return builders.sitting(builders.session(self.round, self.city.branch_a))

    @cached_property
    def terminal(self):
        return terminals.terminal_register(
            name="幸福社区活动室", host=self.city.branch_a, user=self.city.trainer
        )

    @cached_property
    def live_session(self):
        """A group session that is a live lecture of the round's lesson."""
        session = builders.session(self.round, self.city.branch_a)
        session.live_stream = course_services.live_stream_create(lesson=self.lesson)
        session.save(update_fields=["live_stream"])
        return session

    def live_lesson(self, *, on_air: bool) -> LessonPage:
        """A lesson of the course given live: on air now, or not started yet."""
        course = self.lesson.get_parent()
        slug = "live-on-air" if on_air else "live-waiting"
        page = LessonPage.objects.filter(slug=slug).first()
        if page is None:
            page = LessonPage(title="直播党课", slug=slug)
            course.add_child(instance=page)
            stream = course_services.live_stream_create(lesson=page)
            if on_air:
                course_services.live_publish_begin(key=stream.key)
        return page

    @cached_property
    def leave(self):
        other = factories.member(self.city.branch_a, name="周杰")
        return round_services.leave_request(member=other, training_round=self.round, reason="外出")

    @cached_property
    def certificate(self) -> Certificate:
        training_round = q3_round([self.city.county_a], self.city.member_a, title="第三季度轮训")
        certificate_services.certificates_issue(training_round=training_round, render=False)
        return Certificate.objects.get(member=self.city.member_a, round=training_round)

    @cached_property
    def plan(self):
        """The city's plan with a target of each kind, for the chart and the missing names."""
        from rounds.models import PlanTarget, StudyPlan

        plan = StudyPlan.objects.create(
            title="五年规划", organization=self.city.root, first_year=2025
        )
        for order, (kind, audience, number, training) in enumerate(
            (
                ("hours", "members", 32, ""),
                ("trained", "village_secretaries", None, "secretary"),
                ("new_in_position", "secretaries", 6, "new_secretary"),
                ("hours_before_admission", "candidates", 24, ""),
            )
        ):
            PlanTarget.objects.create(
                plan=plan,
                sort_order=order,
                kind=kind,
                audience=audience,
                number=number,
                training_kind=training,
            )
        return plan

    @cached_property
    def roster_import(self):
        data = csv_bytes([["姓名", "手机号码", "党组织编码"], ["钱明", "13700000099", "A-01"]])
        return importing.roster_check(data=data, file_name="roster.csv", user=self.city.secretary_a)

    @cached_property
    def quiz(self):
        return quiz_builders.quiz(course_builders.course(title="测验课程"), size=3, pass_mark=2)

    @cached_property
    def attempt(self):
        """member_a's open attempt at the quiz."""
        return quiz_services.attempt_start(quiz=self.quiz, member=self.city.member_a)

    @cached_property
    def answered(self):
        """member_a's answered attempt at a second quiz (failed: the retake button shows)."""
        quiz = quiz_builders.quiz(course_builders.course(title="另一课程"), size=2, pass_mark=2)
        attempt = quiz_services.attempt_start(quiz=quiz, member=self.city.member_a)
        quiz_services.attempt_submit(attempt=attempt, answers=quiz_builders.wrong_answers(attempt))
        return attempt

    @cached_property
    def paper_attempt(self):
        """member_a's sheet for the test on paper at a third course's test."""
        quiz = quiz_builders.quiz(course_builders.course(title="纸质课程"), size=2, pass_mark=2)
        return quiz_services.attempt_start(
            quiz=quiz, member=self.city.member_a, on_paper=True, user=self.city.operator_a
        )

    @cached_property
    def question_import(self):
        data = csv_bytes(
            [["题型", "题目", "选项A", "选项B", "答案"], ["单选", "一题", "甲", "乙", "A"]]
        )
        return quiz_importing.questions_check(
            course=self.quiz.course, data=data, file_name="bank.csv", user=self.city.trainer
        )


@dataclass
class Visit:
    user: str
    kwargs: Callable = lambda w: {}
    method: str = "GET"
    data: Callable = lambda w: {}
    query: str = ""
    status: tuple = (200,)
    args: Callable | None = None
    path: Callable | None = None  # for Wagtail's pages


def _round(w):
    return {"pk": w.round.pk}


def _sitting(w):
    return {"pk": w.sitting.pk}


def _asked_for_code(purpose):
    """Kwargs for a code page that ask for a code first, as the anonymous visitor: the page then
    has a number to show (without one it sends the visitor back to ask)."""
    start = {"login": "members:sms_login", "reset": "members:sms_reset"}.get(
        purpose, "members:sms_activate"
    )

    def kwargs(w):
        w.client("anonymous").post(reverse(start), {"phone": w.city.member_a.phone})
        return {}

    return kwargs


def _sms_visits(purpose):
    """The page asking for the number (blank, and refused), and the code page (blank, and with
    a wrong code)."""
    wrong = {"code": "12"} if purpose == "login" else {"code": "12", "password1": "x"}
    return [
        Visit("anonymous", kwargs=_asked_for_code(purpose)),
        Visit("anonymous", method="POST", data=lambda w: wrong),
    ]


VISITS = {
    "members:login": [
        Visit("anonymous"),
        Visit("anonymous", method="POST", data=lambda w: {"username": "x", "password": "y"}),
    ],
    "members:activate": [Visit("anonymous")],
    "members:sms_login": [
        Visit("anonymous", query="?next=/rounds/"),
        Visit("anonymous", method="POST", data=lambda w: {"phone": "123"}),
    ],
    "members:sms_login_code": _sms_visits("login"),
    "members:sms_reset": [Visit("anonymous")],
    "members:sms_reset_code": _sms_visits("reset"),
    "members:sms_activate": [Visit("anonymous")],
    "members:sms_activate_code": _sms_visits("activate"),
    "members:roster": [Visit("secretary_a"), Visit("trainer", query="?q=王")],
    "members:activation_slips": [
        Visit(
            "secretary_a",
            method="POST",
            # Only an account never in use gets an activation slip.
            data=lambda w: {
                "member": [factories.member(w.city.branch_a, name="新人", password=None).pk]
            },
        )
    ],
    "members:member_detail": [Visit("secretary_a", lambda w: {"pk": w.city.member_a.pk})],
    "members:member_categories": [
        Visit("secretary_a", lambda w: {"pk": w.city.member_a.pk}),
        # A refused form: the page again with the errors.
        Visit(
            "secretary_a",
            lambda w: {"pk": w.city.member_a.pk},
            method="POST",
            data=lambda w: {"status": "full", "position": "member", "activity_organization": "X"},
        ),
    ],
    "members:member_password_reset": [
        Visit(
            "secretary_a",
            lambda w: {"pk": w.city.member_a.pk},
            method="POST",
            data=lambda w: {"confirm": "on"},
        )
    ],
    "members:password_change": [Visit("member_a"), Visit("secretary_a")],
    "members:organization_detail": [Visit("trainer", lambda w: {"pk": w.city.branch_a.pk})],
    "members:import_upload": [
        Visit("secretary_a", lambda w: {"kind": "roster"}),
        Visit("trainer", lambda w: {"kind": "organizations"}),
    ],
    "members:import_detail": [Visit("secretary_a", lambda w: {"pk": w.roster_import.pk})],
    "rounds:list": [Visit("member_a"), Visit("secretary_a")],
    "rounds:detail": [Visit("member_a", _round)],
    "rounds:coverage": [
        Visit("trainer", _round),  # the bars of the counties
        Visit("secretary_a", _round, query="?status=missing"),
    ],
    "rounds:member_status": [
        Visit("secretary_a", lambda w: {"pk": w.round.pk, "member_pk": w.city.member_a.pk})
    ],
    "rounds:leave_list": [Visit("secretary_a", lambda w: {"pk": w.leave.round_id})],
    "rounds:sitting": [Visit("secretary_a", _sitting)],
    "rounds:sitting_screen": [Visit("operator_a", _sitting)],
    "rounds:roll_call": [Visit("operator_a", _sitting)],
    "rounds:paper_entry": [
        Visit("operator_a", _sitting),
        Visit(
            "operator_a",
            _sitting,
            method="POST",
            data=lambda w: {"code": "1-AAAAAA", "tick": [str(w.city.member_a.pk)]},
        ),
    ],
    "rounds:paper_find": [Visit("operator_a"), Visit("operator_a", query="?code=1-AAAAAA")],
    "rounds:terminals": [Visit("trainer"), Visit("operator_a")],
    "rounds:terminal": [Visit("operator_a", lambda w: {"pk": w.terminal.pk})],
    "rounds:personal_codes": [Visit("member_a", lambda w: (w.sitting, {})[1])],
    "rounds:check_in": [
        Visit("member_a", lambda w: {"token": round_services.qr_token(sitting=w.sitting).token})
    ],
    "rounds:calendar": [Visit("member_a"), Visit("secretary_a")],
    "rounds:calendar_agenda": [Visit("member_a")],
    "rounds:calendar_feed": [Visit("member_a")],
    "rounds:notices": [Visit("member_a")],
    "rounds:ledger_mine": [Visit("member_a")],
    "rounds:ledger_org": [Visit("secretary_a")],
    "rounds:ledger_member": [Visit("secretary_a", lambda w: {"member_pk": w.city.member_a.pk})],
    "rounds:record_new": [
        Visit("secretary_a", lambda w: {"member_pk": w.city.member_a.pk}),
        Visit(
            "secretary_a",
            lambda w: {"member_pk": w.city.member_a.pk},
            method="POST",
            data=lambda w: {"kind": "door_to_door", "title": "", "hours": "x"},
        ),
    ],
    "rounds:records": [Visit("secretary_a"), Visit("trainer")],
    "rounds:plans": [Visit("secretary_a")],
    "rounds:plan": [Visit("trainer", lambda w: {"pk": w.plan.pk})],
    "quizzes:list": [Visit("secretary_a")],
    "quizzes:detail": [Visit("member_a", lambda w: {"pk": w.quiz.pk})],
    "quizzes:results": [
        Visit("trainer", lambda w: {"pk": w.answered.quiz_id}),
        Visit("secretary_a", lambda w: {"pk": w.answered.quiz_id}),
    ],
    "quizzes:attempt": [
        Visit("member_a", lambda w: {"pk": w.attempt.pk}),
        # A refused form: the page again with the errors.
        Visit("member_a", lambda w: {"pk": w.attempt.pk}, method="POST"),
    ],
    # The page's form posts here: refused answers show the page again.
    "quizzes:submit": [Visit("member_a", lambda w: {"pk": w.attempt.pk}, method="POST")],
    "quizzes:result": [Visit("member_a", lambda w: {"pk": w.answered.pk})],
    "quizzes:paper": [Visit("operator_a", lambda w: {"pk": w.quiz.pk})],
    "quizzes:paper_enter": [
        Visit("operator_a", lambda w: {"pk": w.paper_attempt.pk}),
        Visit("operator_a", lambda w: {"pk": w.paper_attempt.pk}, method="POST"),
    ],
    "quizzes:import_upload": [Visit("trainer")],
    "quizzes:import_detail": [Visit("trainer", lambda w: {"pk": w.question_import.pk})],
    "certificates:mine": [Visit("member_a")],
    "certificates:org": [Visit("secretary_a")],
    "certificates:verify": [
        Visit("anonymous", lambda w: {"code": w.certificate.code}),
        Visit("anonymous", lambda w: {"code": "0" * 12}, status=(404,)),
    ],
    "wagtail_serve": [
        Visit("member_a", path=lambda w: "/"),
        Visit("member_a", path=lambda w: w.lesson.get_parent().get_parent().url),
        Visit("member_a", path=lambda w: w.lesson.get_parent().url),
        Visit("member_a", path=lambda w: w.lesson.url),
        Visit("trainer", path=lambda w: w.lesson.url),
        # A lesson given live: the player in live mode, and the page waiting for the lecture.
        Visit("member_a", path=lambda w: w.live_lesson(on_air=True).url),
        Visit("member_a", path=lambda w: w.live_lesson(on_air=False).url),
    ],
    "wagtailcore_login": [Visit("anonymous")],
}

# Patterns outside the admin that never answer with a page of their own, and why.
NOT_HTML = {
    "set_language": "POST, then a redirect",
    "display_mode": "POST, then a redirect (the large-type switch, tests/core/test_display.py)",
    "members:logout": "POST, then a redirect",
    "rounds:record_decide": "POST, then a redirect",
    "rounds:plan_export": "a spreadsheet",
    "members:roster_export": "a spreadsheet",
    "members:deactivate": "POST, then a redirect",
    "members:import_template": "a spreadsheet",
    "members:import_apply": "POST, then a redirect",
    "courses:viewing_start": "JSON for the player",
    "courses:reading_start": "POST, then back to the lesson page",
    "courses:reading_done": "POST, then back to the lesson page",
    "courses:progress_report": "JSON for the player",
    "courses:live_status": "JSON for the live player",
    "courses:live_viewing_start": "JSON for the live player",
    "courses:live_report": "JSON for the live player",
    "courses:live_publish": "nginx-rtmp's callback (text)",
    "courses:live_publish_done": "nginx-rtmp's callback (text)",
    "courses.live.serve_live_hls": "the live ladder (playlists and segments)",
    "courses:keepalive": "JSON for the player",
    "rounds:leave_create": "POST, then a redirect",
    "rounds:leave_withdraw": "POST, then a redirect",
    "rounds:coverage_export": "a spreadsheet",
    "rounds:exemption_create": "POST, then a redirect",
    "rounds:exemption_revoke": "POST, then a redirect",
    "rounds:leave_decide": "POST, then a redirect",
    "rounds:sitting_open": "a redirect to the sitting",
    "rounds:sitting_code": "JSON for the check-in screen",
    "rounds:sitting_close": "POST, then a redirect",
    "rounds:sign_in_sheet": "a PDF (tests/rounds/test_paper_sign_in.py: no policy on it)",
    "rounds:terminal_sw": "the site terminal's service worker (a script)",
    "rounds:terminal_revoke": "POST, then a redirect",
    "rounds:terminal_claim": "JSON for the site terminal",
    "rounds:terminal_package": "JSON for the site terminal",
    "rounds:terminal_sync": "JSON for the site terminal",
    "rounds:check_in_resume": "a redirect after logging in",
    "rounds:calendar_feed_reset": "POST, then a redirect",
    "rounds:ical_feed": "an iCalendar feed",
    "rounds:remind": "POST, then a redirect",
    "rounds:notices_read": "POST, then a redirect",
    "rounds:ledger_org_export": "a spreadsheet",
    "quizzes:start": "POST, then a redirect to the attempt",
    "quizzes:import_template": "a spreadsheet",
    "quizzes:import_apply": "POST, then a redirect",
    "certificates:statement_request": "POST, then a redirect",
    "certificates:pdf": "a PDF (test_pdfs_carry_no_policy)",
    "certificates:round_zip": "a ZIP file",
    "wagtaildocs_serve": "a document file",
    "wagtaildocs_authenticate_with_password": "document privacy (unused)",
    "wagtailcore_authenticate_with_password": "page privacy (unused)",
    "certificates.media.serve_public_media": "media files",
}


def site_routes():
    """The key (namespaced name, or the view for an unnamed pattern) of every pattern outside
    the admin."""
    keys = set()

    def walk(patterns, namespaces, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                spaces = namespaces + ([pattern.namespace] if pattern.namespace else [])
                walk(pattern.url_patterns, spaces, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and not (prefix + str(pattern.pattern)).startswith(
                "admin/"
            ):
                callback = pattern.callback
                keys.add(
                    ":".join([*namespaces, pattern.name])
                    if pattern.name
                    else f"{callback.__module__}.{callback.__qualname__}"
                )

    walk(get_resolver().url_patterns, [], "")
    return keys


def test_every_page_of_the_site_is_visited():
    routes = site_routes()
    assert not routes - set(VISITS) - set(NOT_HTML), "add visits (or a reason) for these"
    assert not (set(VISITS) | set(NOT_HTML)) - routes, "these are gone from the URL conf"


@pytest.fixture
def world(city, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()  # rate limits
    with time_machine.travel(NOW, tick=False):
        yield World(city)
    cache.clear()


def _url(name, visit, world):
    if visit.path is not None:
        return visit.path(world)
    if visit.args is not None:
        return reverse(name, args=visit.args(world))
    return reverse(name, kwargs=visit.kwargs(world)) + visit.query


@pytest.mark.parametrize("name", sorted(VISITS))
def test_page_obeys_the_policy(world, name):
    failures = []
    for visit in VISITS[name]:
        url = _url(name, visit, world)
        client = world.client(visit.user)
        response = (
            client.post(url, visit.data(world)) if visit.method == "POST" else client.get(url)
        )
        where = f"{visit.user} {visit.method} {url}"
        if response.status_code not in visit.status or not is_html(response):
            failures.append(f"{where}: {response.status_code} {response.get('Content-Type')}")
            continue
        failures += [f"{where}: {problem}" for problem in page_problems(response)]
    assert not failures, "\n".join(failures)


def test_the_coverage_bars_are_meters(world):
    """The bars' widths were style attributes; now they are <meter> values."""
    response = world.client("trainer").get(reverse("rounds:coverage", kwargs=_round(world)))
    content = response.content.decode()
    assert content.count('<meter class="bar-meter" min="0" max="100" value="') == 2
    assert 'value="50.0"' in content  # county B: one of its two members completed


def test_error_pages_obey_the_policy(world, settings):
    failures = []
    for who in ("anonymous", "member_a"):
        response = world.client(who).get("/no-such-page/")
        assert response.status_code == 404
        failures += page_problems(response)
    # The verification page's rate limit (429).
    settings.LUNXUN_VERIFY_RATE = "1/m"
    url = reverse("certificates:verify", kwargs={"code": "0" * 12})
    world.client("anonymous").get(url)
    response = world.client("anonymous").get(url)
    assert response.status_code == 429
    failures += page_problems(response)
    # A form sent without its CSRF token (an expired login page).
    response = Client(enforce_csrf_checks=True).post(reverse("members:login"), {"username": "x"})
    assert response.status_code == 403
    assert "/static/css/site.css" in response.content.decode()  # ours, not Django's own
    failures += page_problems(response)
    assert not failures, "\n".join(failures)


# --- The Wagtail admin --------------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", password=factories.PASSWORD)


def _admin_client(user):
    client = Client(raise_request_exception=False)
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


@dataclass
class AdminPage:
    url: Callable
    user: str = "trainer"
    contains: str = ""  # proof the page is the one meant (and has inline scripts where noted)


ADMIN_PAGES = {
    "admin login": AdminPage(lambda w: reverse("wagtailadmin_login"), user="anonymous"),
    "dashboard": AdminPage(lambda w: reverse("wagtailadmin_home")),
    "lesson page edit": AdminPage(
        lambda w: reverse("wagtailadmin_pages:edit", args=[w.lesson.pk]),
        contains="initDateTimeChooser",  # go-live and expiry pickers
    ),
    "course page edit": AdminPage(
        lambda w: reverse("wagtailadmin_pages:edit", args=[w.lesson.get_parent().pk]),
        contains="new ImageChooser",
    ),
    "lesson page add": AdminPage(
        lambda w: reverse(
            "wagtailadmin_pages:add", args=["courses", "lessonpage", w.lesson.get_parent().pk]
        )
    ),
    "page explorer": AdminPage(
        lambda w: reverse("wagtailadmin_explore", args=[w.lesson.get_parent().pk])
    ),
    "round edit": AdminPage(lambda w: reverse("training_rounds:edit", args=[w.round.pk])),
    "round inspect": AdminPage(lambda w: reverse("training_rounds:inspect", args=[w.round.pk])),
    "round add": AdminPage(lambda w: reverse("training_rounds:add")),
    "group session add": AdminPage(
        lambda w: reverse("group_sessions:add"), contains="initDateChooser"
    ),
    "group session edit": AdminPage(
        lambda w: reverse("group_sessions:edit", args=[w.sitting.session_id])
    ),
    "live lecture (trainer)": AdminPage(
        lambda w: reverse("group_sessions:live", args=[w.live_session.pk]),
        contains="data-stream-key",
    ),
    "member edit": AdminPage(lambda w: reverse("party_members:edit", args=[w.city.member_a.pk])),
    "posting add": AdminPage(lambda w: reverse("postings:add")),
    "plan add": AdminPage(lambda w: reverse("study_plans:add")),
    "plan edit": AdminPage(lambda w: reverse("study_plans:edit", args=[w.plan.pk])),
    "organisation edit": AdminPage(lambda w: reverse("org_tree:edit", args=[w.city.branch_a.pk])),
    "video edit": AdminPage(lambda w: reverse("wagtailmedia:edit", args=[w.lesson.video_id])),
    "video upload": AdminPage(lambda w: reverse("wagtailmedia:add", args=["video"])),
    "question add": AdminPage(lambda w: reverse("question_banks:add")),
    "question edit": AdminPage(
        lambda w: reverse("question_banks:edit", args=[w.quiz.course.questions.first().pk])
    ),
    "quiz edit": AdminPage(lambda w: reverse("course_quizzes:edit", args=[w.quiz.pk])),
    "certificates issued": AdminPage(lambda w: reverse("issued_certificates:index")),
    "site history report": AdminPage(
        lambda w: reverse("wagtailadmin_reports:site_history"), contains="initDateChooser"
    ),
}


@pytest.mark.parametrize("label", sorted(ADMIN_PAGES))
def test_admin_page_obeys_the_policy(world, label):
    page = ADMIN_PAGES[label]
    url = page.url(world)
    response = world.client(page.user).get(url)
    assert response.status_code == 200 and is_html(response), (url, response.status_code)
    assert page.contains in response.content.decode()
    problems = page_problems(response, admin=True)
    assert not problems, "\n".join(problems)


SKIPPED_ADMIN = {"admin/failwhale/"}  # Wagtail's deliberate 500


def fragment_problems(response):
    """HTML that the admin's scripts put into a page already open (listing results, modals):
    the page's nonce is not this response's, so an inline script there could never run."""
    if is_html(response):
        html = response.content.decode()
    else:
        data = response.json()
        html = str(data.get("html", "")) if isinstance(data, dict) else ""
    audit = PageAudit()
    audit.feed(html)
    audit.close()
    return [
        f"inline script in a fragment: {body.strip()[:80]!r}"
        for attributes, body in audit.scripts
        if "src" not in attributes and (attributes.get("type") or "").lower() in JS_TYPES
    ]


def test_every_admin_page_without_arguments_obeys_the_policy(world, superuser):
    """All of the admin's own pages a superuser can open (listings, add forms, reports)."""
    client = _admin_client(superuser)
    failures, pages = [], 0

    def walk(patterns, prefix):
        nonlocal pages
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif not any(c in route for c in "<(^") and route not in SKIPPED_ADMIN:
                response = client.get("/" + route)
                if response.status_code != 200:
                    continue
                if is_html(response):
                    pages += 1
                    failures.extend(f"/{route}: {p}" for p in page_problems(response, admin=True))
                    if route.endswith("results/"):
                        failures.extend(f"/{route}: {p}" for p in fragment_problems(response))
                elif response.get("Content-Type", "").startswith("application/json"):
                    failures.extend(f"/{route}: {p}" for p in fragment_problems(response))

    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) == "admin/":
            walk(pattern.url_patterns, "admin/")
    assert pages > 25
    assert not failures, "\n".join(failures)


def test_the_admin_loads_nothing_from_elsewhere(world, superuser):
    """No Gravatar picture for staff with an e-mail address, no release check."""
    superuser.email = "root@example.org"
    superuser.save()
    content = _admin_client(superuser).get(reverse("wagtailadmin_home")).content.decode()
    assert "gravatar" not in content
    assert "w-upgrade" not in content


# --- The scale profile's stores ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "video", "private"),
    [
        ({}, [], []),
        (
            {"LUNXUN_S3_BUCKET": "lunxun", "LUNXUN_S3_ENDPOINT_URL": "http://10.0.0.5:9000/"},
            ["http://10.0.0.5:9000"],
            ["http://10.0.0.5:9000"],
        ),
        (
            {
                "LUNXUN_S3_BUCKET": "lunxun",
                "LUNXUN_S3_ENDPOINT_URL": "https://oss-cn-beijing.aliyuncs.com",
                "LUNXUN_S3_ADDRESSING_STYLE": "virtual",
                "LUNXUN_VIDEO_CDN_DOMAIN": "video.example.cn",
            },
            ["https://video.example.cn"],
            ["https://lunxun.oss-cn-beijing.aliyuncs.com"],
        ),
        (
            {"LUNXUN_S3_BUCKET": "lunxun", "LUNXUN_S3_REGION": "cn-north-1"},
            ["https://s3.cn-north-1.amazonaws.com"],
            ["https://s3.cn-north-1.amazonaws.com"],
        ),
    ],
)
def test_the_stores_origins_join_the_policy(monkeypatch, env, video, private):
    """Posters and HLS come from the video store (a CDN if there is one), images through
    signed URLs from the private store: the browser must be allowed to fetch from both."""
    from config.settings import csp

    for name in (
        "LUNXUN_S3_BUCKET",
        "LUNXUN_S3_ENDPOINT_URL",
        "LUNXUN_S3_REGION",
        "LUNXUN_S3_ADDRESSING_STYLE",
        "LUNXUN_VIDEO_CDN_DOMAIN",
        "LUNXUN_VIDEO_CDN_PROTOCOL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert csp._store_origins() == (video, private)
