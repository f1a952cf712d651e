"""Two application servers behind the one nginx upstream (issue 18): nothing that matters is
held by one instance.

The ``stack`` fixture (conftest.py) runs two gunicorn instances (A and B, each with its own port
and pid file) behind deploy/nginx/lunxun.conf's ``lunxun_app`` upstream. Every check below
talks to A and B directly (as nginx does: the public Host, X-Forwarded-Proto and X-Real-IP set)
and through nginx, whose access log names the instance that answered (``upstream=``):

* sessions: logged in on A, recognised on B and through nginx on both; logged out on B, gone
  on A;
* the rotating QR check-in: a code shown by A is accepted by B, for a member who scanned on B
  (the pending check-in kept in the session), logged in on A and came back to B;
* rate limits: wrong current passwords split across A and B lock the password check; tries of
  the activation page through nginx (both instances answering) hit the address limit; failed
  logins split across A and B lock the account;
* the offline terminal: claimed once when A and B are asked at the same moment; a personal code
  shown by A is genuine on B; records synced through B are replays on A and through nginx;
* live-lecture callbacks: nginx-rtmp's on_publish and on_publish_done accepted by either
  instance, the lecture's state the same on both;
* the cache: Wagtail's site root paths, warmed on A and B, dropped by a change made in a third
  process (``manage.py shell``): both instances show the new page URLs at once.
"""

import json
import re
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.utils.crypto import salted_hmac

from rounds.terminals import record_sign

from .helpers import Browser, find_form

pytestmark = pytest.mark.scale

WORLD = """
import json
from datetime import timedelta
from django.utils import timezone
from courses.models import LessonPage
from courses.services import live_stream_create
from members.models import Member, Organization, Role
from rounds import terminals
from rounds.models import Round
from tests import factories
from tests.rounds import builders

branch = Organization.objects.get(pk={branch})
training_round = Round.objects.get(pk={round})
start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
session = builders.session(training_round, branch, start=start, title="两实例集中学习")
sitting = builders.sitting(session)
coder = factories.member(branch, name="李强", phone="13800000002")
locked = factories.member(branch, name="赵敏", phone="13800000003")
trainer = factories.staff("trainer_two", Role.TRAINER, branch)
terminal = terminals.terminal_register(name="幸福社区活动室", host=branch, user=trainer)
stream = live_stream_create(lesson=LessonPage.objects.get(pk={lesson}))
print("WORLD " + json.dumps({{
    "sitting": sitting.pk,
    "coder": coder.phone,
    "coder_id": coder.pk,
    "locked": locked.phone,
    "locked_id": locked.pk,
    "terminal": terminal.pk,
    "stream": stream.pk,
    "stream_name": stream.name,
    "stream_key": stream.key,
}}))
"""

SITE_ROOT = """
from wagtail.models import Page, Site
site = Site.objects.get(is_default_site=True)
site.root_page = Page.objects.get(url_path="{url_path}")
site.save()
print("ROOT " + site.root_page.url_path)
"""


def make_world(stack) -> dict:
    seed = stack.seed
    script = WORLD.format(branch=seed["branch"], round=seed["round"], lesson=seed["lesson"])
    out = stack.manage("shell", "-c", script, log_name="shell-two-instances")
    lines = [line for line in out.splitlines() if line.startswith("WORLD ")]
    assert len(lines) == 1, out
    return json.loads(lines[0][6:])


def set_site_root(stack, url_path):
    out = stack.manage("shell", "-c", SITE_ROOT.format(url_path=url_path), log_name="shell-root")
    assert f"ROOT {url_path}" in out, out


def browser(stack, address="127.0.0.1") -> Browser:
    """A client for A, B (absolute URLs) and nginx, sending what nginx sends an instance: the
    public Host, X-Forwarded-Proto and the client's address in X-Real-IP. Its cookies are the
    host's, so they go to every port: one browser, whichever instance answers."""
    client = Browser(stack.base_url, stack.origin)
    client.session.headers.update(
        {
            "Host": urlsplit(stack.base_url).netloc,
            "X-Forwarded-Proto": "https",
            "X-Real-IP": address,
        }
    )
    return client


def login(client, base, username, password, *, next_url=None):
    query = f"?next={next_url}" if next_url else ""
    page = client.get(f"{base}/login/{query}")
    assert page.status_code == 200, page.status_code
    form = find_form(page.text, having="password")
    form.set("username", username)
    form.set("password", password)
    return client.post(f"{base}/login/{query}", form.data(), referer=f"/login/{query}")


def answered_by(stack, marker) -> dict:
    """{request line: (status, instance port)} for the requests through nginx whose URL holds
    ``marker``."""
    found = {}
    for line in (stack.workdir / "nginx" / "access.log").read_text().splitlines():
        match = re.search(r'"(\w+ \S+) HTTP/[\d.]+" (\d+) .* upstream=127\.0\.0\.1:(\d+)', line)
        if match and marker in match.group(1):
            found[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return found


def ports(stack) -> set:
    return {urlsplit(instance).port for instance in stack.instances}


def json_post(client, url, payload=None):
    return client.post(
        url,
        data=json.dumps(payload or {}),
        headers={"X-CSRFToken": client.cookie("csrftoken"), "Content-Type": "application/json"},
        referer="/site-terminals/",
    )


def test_two_instances_share_every_state_that_matters(stack):
    seed, timer = stack.seed, stack.timer
    a, b = stack.instances
    nginx = stack.base_url
    password = seed["password"]
    # Two instances indeed: each its own master process, named in its own pid file.
    pids = [int((stack.workdir / f"gunicorn-{x}.pid").read_text()) for x in "ab"]
    assert pids == [proc.process.pid for proc in stack.gunicorns], pids
    world = make_world(stack)
    timer.lap("two instances: world made (a sitting now, a terminal, a lecture)")

    # --- Sessions --------------------------------------------------------------------------
    secretary = browser(stack)
    assert login(secretary, a, seed["secretary"], password).status_code == 302
    assert secretary.get(f"{b}/rounds/").status_code == 200  # recognised on B
    for n in range(6):
        assert secretary.get(f"{nginx}/rounds/?probe=session-{n}").status_code == 200
    served = answered_by(stack, "probe=session-")
    assert len(served) == 6 and {status for status, _ in served.values()} == {200}, served
    assert {port for _, port in served.values()} == ports(stack), served
    # Logged out on B: gone on A too.
    home = secretary.get(f"{b}/rounds/")
    csrf = find_form(home.text, having="csrfmiddlewaretoken").get("csrfmiddlewaretoken")
    out = secretary.post(f"{b}/logout/", {"csrfmiddlewaretoken": csrf}, referer="/rounds/")
    assert out.status_code == 302, out.status_code
    gone = secretary.get(f"{a}/rounds/")
    assert gone.status_code == 302 and "/login/" in gone.headers["Location"]
    assert login(secretary, b, seed["secretary"], password).status_code == 302
    timer.lap("two instances: a session from A on B and through nginx; logout on B ends it on A")

    # --- The rotating QR check-in: shown by A, scanned on B, logged in on A, back on B ------
    code_url = f"/sittings/{world['sitting']}/code/"
    code = secretary.get(f"{a}{code_url}").json()
    if code["expires_in"] < 5:  # a code with time to spare, not one about to rotate
        time.sleep(code["expires_in"] + 0.5)
        code = secretary.get(f"{a}{code_url}").json()
    scan_path = urlsplit(code["url"]).path
    assert scan_path.startswith("/check-in/"), code
    member = browser(stack)
    scanned = member.get(f"{b}{scan_path}")
    assert scanned.status_code == 302 and "/login/" in scanned.headers["Location"], scanned.text
    logged_in = login(member, a, seed["member"], password, next_url="/check-in/resume/")
    assert logged_in.status_code == 302, logged_in.text
    assert logged_in.headers["Location"] == "/check-in/resume/"
    resumed = member.get(f"{b}/check-in/resume/")
    assert resumed.status_code == 200, resumed.text
    assert 'id="check-in-ok"' in resumed.text, resumed.text
    assert secretary.get(f"{a}{code_url}").json()["checked_in"] == 1
    assert secretary.get(f"{b}{code_url}").json()["checked_in"] == 1
    # A code made by B is genuine on A (the same SECRET_KEY, the same per-sitting key).
    again = member.get(f"{a}{urlsplit(secretary.get(f'{b}{code_url}').json()['url']).path}")
    assert again.status_code == 200 and 'id="check-in-ok"' in again.text, again.text
    assert secretary.get(f"{b}{code_url}").json()["checked_in"] == 1  # once, not twice
    timer.lap("two instances: QR code from A accepted by B, across a login on A")

    # --- Rate limits -----------------------------------------------------------------------
    # Wrong current passwords, per user in the cache (LUNXUN_PASSWORD_CHECK_RATE=5/h in the
    # stack): five split across A and B lock the check on both.
    attempts = []
    for n in range(5):
        base = (a, b)[n % 2]
        page = member.get(f"{base}/password/")
        form = find_form(page.text, having="old_password")
        form.set("old_password", f"wrong-{n}")
        form.set("new_password1", "Another-pass-2026")
        form.set("new_password2", "Another-pass-2026")
        attempts.append(member.post(f"{base}/password/", form.data()).status_code)
    assert attempts == [200] * 5, attempts
    for base in (a, b):
        page = member.get(f"{base}/password/")
        form = find_form(page.text, having="old_password")
        form.set("old_password", password)  # even the right one is not checked now
        form.set("new_password1", "Another-pass-2026")
        form.set("new_password2", "Another-pass-2026")
        locked = member.post(f"{base}/password/", form.data())
        assert locked.status_code == 429, (base, locked.status_code)
    # Tries of the activation page per address (LUNXUN_ACTIVATE_RATE=5/h in the stack),
    # through nginx, which sends them to A and B in turn: the sixth is refused.
    visitor = Browser(nginx, stack.origin)
    form = find_form(visitor.get("/activate/").text, having="code")
    form.set("phone", "13900000000")
    form.set("code", "WRONG")
    form.set("password1", "Another-pass-2026")
    form.set("password2", "Another-pass-2026")
    statuses = []
    for n in range(6):
        tried = visitor.post(f"/activate/?probe=activate-{n}", form.data(), referer="/activate/")
        statuses.append(tried.status_code)
    assert statuses == [200] * 5 + [429], statuses
    served = answered_by(stack, "POST /activate/?probe=activate-")
    assert {port for _, port in served.values()} == ports(stack), served
    # Failed logins split across A and B lock the account (django-axes, in the database).
    failures = browser(stack, address="198.51.100.7")
    for n in range(5):
        wrong = login(failures, (a, b)[n % 2], world["locked"], f"wrong-{n}")
        assert wrong.status_code in (200, 429), wrong.status_code
    for base in (a, b, nginx):
        refused = login(browser(stack, address="198.51.100.8"), base, world["locked"], password)
        assert refused.status_code == 429, (base, refused.status_code)
        assert "sessionid" not in refused.cookies
    timer.lap("two instances: rate limits and lockout count across A and B")

    # --- The offline terminal --------------------------------------------------------------
    claims = {}
    claim_url = f"/site-terminals/{world['terminal']}/claim/"
    secretary.get(f"{a}/site-terminals/{world['terminal']}/")  # a csrftoken cookie

    def claim(base):
        own = browser(stack)
        own.session.cookies.update(secretary.session.cookies)
        claims[base] = json_post(own, f"{base}{claim_url}")

    threads = [threading.Thread(target=claim, args=(base,)) for base in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    answers = sorted(response.status_code for response in claims.values())
    assert answers == [200, 409], {base: r.text for base, r in claims.items()}
    secret = next(r.json()["secret"] for r in claims.values() if r.status_code == 200)
    assert json_post(secretary, f"{nginx}{claim_url}").status_code == 409
    # A personal code shown by A, read offline, synced through B (which finds it genuine), then
    # sent again through A and nginx: replays, nothing recorded twice.
    coder = browser(stack)
    assert login(coder, a, world["coder"], password).status_code == 302
    codes = coder.get(f"{a}/check-in/mine/").text
    personal = re.search(rf'data-code="(P{world["sitting"]}\.{world["coder_id"]}\.[^"]+)"', codes)
    assert personal, codes
    records = []
    for n, fields in enumerate(
        (
            {"kind": "personal_code", "code": personal.group(1)},
            {"kind": "roll_call", "member": world["locked_id"], "status": "present"},
        )
    ):
        record = {
            "uuid": f"00000000-0000-4000-8000-00000000000{n}",
            "sitting": world["sitting"],
            "at": int(time.time() * 1000),
            **fields,
        }
        record["sig"] = record_sign(secret=secret, record=record)
        records.append(record)
    sync_url = f"/site-terminals/{world['terminal']}/sync/"
    first = json_post(secretary, f"{b}{sync_url}", {"records": records})
    assert first.status_code == 200, first.text
    assert [(r["result"], r["replayed"]) for r in first.json()["results"]] == [
        ("accepted", False),
        ("accepted", False),
    ], first.json()
    for base in (a, nginx, nginx):
        replay = json_post(secretary, f"{base}{sync_url}", {"records": records})
        assert replay.status_code == 200, replay.text
        results = replay.json()["results"]
        assert [(r["result"], r["replayed"]) for r in results] == [
            ("accepted", True),
            ("accepted", True),
        ], (base, results)
    assert secretary.get(f"{b}{code_url}").json()["checked_in"] == 3
    timer.lap("two instances: terminal claimed once; records synced on B are replays on A")

    # --- Live-lecture callbacks ------------------------------------------------------------
    callback_secret = salted_hmac(
        "lunxun.live.callback", "nginx-rtmp", secret=stack.env["SECRET_KEY"]
    ).hexdigest()

    def callback(base, what, name):
        return secretary.session.post(
            f"{base}/live/callbacks/{what}/?secret={callback_secret}",
            data={"call": "publish", "app": "live", "name": name},
            allow_redirects=False,
            timeout=30,
        )

    def state(base):
        return member.get(f"{base}/live/{world['stream']}/status/").json()["state"]

    assert {state(a), state(b)} == {"scheduled"}, (state(a), state(b))
    on_a = callback(a, "publish", world["stream_key"])
    assert on_a.status_code == 302 and on_a.headers["Location"] == world["stream_name"]
    assert state(b) == state(a) == "live"
    assert callback(b, "publish-done", world["stream_name"]).status_code == 200
    assert state(a) == state(b) == "interrupted"
    on_b = callback(b, "publish", world["stream_key"])
    assert on_b.status_code == 302 and on_b.headers["Location"] == world["stream_name"]
    assert state(a) == state(b) == "live"
    assert callback(a, "publish", "not-the-key").status_code == 403
    assert callback(b, "publish", "not-the-key").status_code == 403
    assert callback(a, "publish-done", world["stream_name"]).status_code == 200
    timer.lap("two instances: live callbacks on either, the lecture's state seen from both")

    # --- The cache: Wagtail's site root paths, dropped by another process ------------------
    course = "/courses/party-constitution/"
    for base in (a, b, a, b):  # warm both instances' view of the site root paths
        assert f'href="{course}"' in member.get(f"{base}/courses/").text
    set_site_root(stack, "/home/courses/")  # the last check: the stack goes with the test
    for base in (a, b, nginx, nginx):
        page = member.get(f"{base}/")
        assert page.status_code == 200, (base, page.status_code)
        assert 'href="/party-constitution/"' in page.text, base
        assert f'href="{course}"' not in page.text, base
    for proc in stack.procs:
        proc.check_alive()
    timer.lap("two instances: a cache invalidation from a third process seen by both")
