"""Real processes and a plain HTTP client for the scale story.

``Proc`` runs one server process in its own process group with its output in a log file.
``Browser`` is a requests session that talks plain HTTP to nginx while the site believes it is
served over HTTPS (nginx says so in X-Forwarded-Proto, standing in for TLS termination):
Django's cookies carry the Secure flag, which the client notes and then drops so that it sends
them over plain HTTP, and every request carries the Origin a browser on that HTTPS page
would send.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import requests

TAIL_LINES = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, predicate, *, timeout, interval=0.5):
    """Call ``predicate`` until it returns something true; return that, or fail after timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (requests.RequestException, OSError) as error:
            result, last_error = None, error
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last error: {last_error})"
    )


def tail(path, lines=TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as error:
        return f"({error})"
    return "\n".join(text.splitlines()[-lines:])


class Proc:
    """One long-running process of the stack."""

    def __init__(self, name, argv, *, env, cwd, log_path):
        self.name, self.argv, self.log_path = name, argv, Path(log_path)
        self.log = open(self.log_path, "ab")  # closed in stop()
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self):
        if not self.alive():
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{tail(self.log_path)}"
            )

    def stop(self, grace=10):
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # Whatever is left of the group (RQ's work horse, ffmpeg) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


# --- HTML forms ----------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Every <form> of a page with the fields a browser would submit (no JavaScript run)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = None
        self._select = None
        self._option = None
        self._textarea = None
        self._textarea_started = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"attrs": a, "fields": [], "files": []}
            self.forms.append(self._form)
            return
        if self._form is None or "disabled" in a:
            return
        if "w-block" in (a.get("data-controller") or "").split():
            self._stream_field(a)
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind == "file":
                self._form["files"].append(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form["fields"].append([name, a.get("value", "on")])
            else:
                self._form["fields"].append([name, a.get("value", "")])
        elif tag == "textarea" and name:
            self._textarea = [name, ""]
            self._textarea_started = False
            self._form["fields"].append(self._textarea)
        elif tag == "select" and name:
            self._select = {"name": name, "first": None, "chosen": [], "multiple": "multiple" in a}
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]

    def _stream_field(self, a):
        """A Wagtail StreamField: its JavaScript writes the inputs. For an empty one it
        submits only the block count, which is all this reader can stand in for."""
        value = json.loads(a.get("data-w-block-arguments-value") or "[[], null]")[0]
        assert value == [], f"StreamField {a.get('id')} has content; replaying it needs JS"
        self._form["fields"].append([f"{a['id']}-count", "0"])

    def handle_data(self, data):
        if self._textarea is not None:
            # Browsers drop one newline right after <textarea>.
            if not self._textarea[1] and not self._textarea_started and data.startswith("\n"):
                data = data[1:]
            self._textarea_started = True
            self._textarea[1] += data
        if self._option is not None:
            self._option[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "option" and self._option is not None:
            self._close_option()
        elif tag == "select" and self._select is not None:
            self._close_option()
            select = self._select
            values = select["chosen"] or (
                [] if select["multiple"] or select["first"] is None else [select["first"]]
            )
            for value in values:
                self._form["fields"].append([select["name"], value])
            self._select = None

    def _close_option(self):
        if self._option is None:
            return
        value, selected, text = self._option
        value = text.strip() if value is None else value
        if self._select["first"] is None:
            self._select["first"] = value
        if selected:
            self._select["chosen"].append(value)
        self._option = None


class Form:
    def __init__(self, attrs, fields, files):
        self.attrs, self.fields, self.files = attrs, fields, files

    def get(self, name, default=None):
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def names(self):
        return [key for key, _value in self.fields]

    def set(self, name, value):
        """Replace every value of ``name`` with one (or add it)."""
        self.fields = [[k, v] for k, v in self.fields if k != name] + [[name, str(value)]]

    def data(self):
        return [(k, v) for k, v in self.fields]


def find_form(html, *, action=None, form_id=None, having=None) -> Form:
    """The page's form whose id is ``form_id``, or whose action contains ``action``, or that has
    a field named ``having``."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        attrs = form["attrs"]
        names = {name for name, _value in form["fields"]} | set(form["files"])
        if form_id is not None and attrs.get("id") != form_id:
            continue
        if action is not None and action not in (attrs.get("action") or ""):
            continue
        if having is not None and having not in names:
            continue
        return Form(attrs, form["fields"], form["files"])
    summary = [(f["attrs"].get("id"), f["attrs"].get("action")) for f in parser.forms]
    raise AssertionError(f"no form id={form_id} action={action} having={having}: {summary}")


def json_script(html, element_id):
    match = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no json_script #{element_id} in the page"
    return json.loads(match.group(1))


# --- The browser ---------------------------------------------------------------------------------


class Browser:
    def __init__(self, base_url, origin, *, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.origin = origin
        self.timeout = timeout
        self.session = requests.Session()
        self.secure_cookies = set()  # names of the cookies the site set with the Secure flag
        self.session.headers.update({"Origin": origin, "Accept-Language": "zh-hans"})

    def url(self, path):
        return path if path.startswith("http") else self.base_url + path

    def _received(self, response):
        """The client speaks HTTP to nginx, which tells Django the request came over HTTPS (as
        behind TLS termination), so Django's cookies carry the Secure flag and a cookie jar
        would keep them from plain HTTP. A browser on the HTTPS page would send them: note
        which were Secure, then let the jar send them."""
        for cookie in self.session.cookies:
            if cookie.secure:
                self.secure_cookies.add(cookie.name)
                cookie.secure = False
        return response

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return self._received(self.session.get(self.url(path), **kwargs))

    def post(self, path, data=None, *, referer=None, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        headers = {"Referer": self.origin + (referer or path), **kwargs.pop("headers", {})}
        return self._received(
            self.session.post(self.url(path), data=data, headers=headers, **kwargs)
        )

    def cookie(self, name):
        return self.session.cookies.get(name)

    def login(self, username, password):
        page = self.get("/login/")
        assert page.status_code == 200, page.status_code
        form = find_form(page.text, having="password")
        form.set("username", username)
        form.set("password", password)
        done = self.post("/login/", form.data())
        assert done.status_code == 302, f"login of {username}: {done.status_code}\n{done.text}"
        assert self.cookie("sessionid"), "no session cookie after logging in"
        assert {"sessionid", "csrftoken"} <= self.secure_cookies, self.secure_cookies
        return done
