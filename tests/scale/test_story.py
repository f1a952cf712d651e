"""One whole story on the scale profile, over HTTP, against real processes.

PostgreSQL, Redis and an S3 endpoint (scripts/with-scale-stack.sh); two gunicorn instances, an
RQ worker and nginx started by the ``stack`` fixture (conftest.py): nginx sends each request to
either instance, so every step below also holds across them. A trainer uploads a video
through nginx; the worker transcodes it into the bucket; the trainer puts it on a lesson; a
member watches it (playlists and segments straight from object storage) and reports progress
until complete; the secretary's coverage shows the member complete; the trainer closes the
round; the worker issues the certificate and renders its PDF into the private store; the member
downloads it.
"""

import http.client
import re
import subprocess
import time
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.courses.clips import make_clip

from .helpers import Browser, find_form, json_script, wait_until

pytestmark = pytest.mark.scale

TRANSCODE_SECONDS = 180
CERTIFICATE_SECONDS = 180
# The default body limit of deploy/nginx/lunxun.conf; the clip is made larger than this, so
# its upload proves that the video upload URL has its own limit.
DEFAULT_BODY_LIMIT = 12 * 1024 * 1024


def clip(path):
    """An 8-second 640x360 clip with sound, padded (constant 16 Mbit/s with filler data) to
    about 16 MB: larger than nginx's default body limit, yet quick to transcode."""
    return make_clip(
        path,
        size="640x360",
        seconds=8,
        video_args=(
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-x264-params", "nal-hrd=cbr", "-b:v", "16M", "-minrate", "16M"),
            *("-maxrate", "16M", "-bufsize", "4M"),
        ),
        extra=("-movflags", "+faststart"),
    )


def anonymous_get(url, **kwargs):
    """A request with no cookies and no credentials, as a player's XHR to object storage."""
    return requests.get(url, timeout=30, **kwargs)


def playlist_entries(text):
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_city_story(stack, tmp_path):
    seed, timer = stack.seed, stack.timer
    s3_origin = stack.endpoint

    # --- 3. The trainer uploads a video through nginx -> gunicorn -> the private store -------
    trainer = Browser(stack.base_url, stack.origin)
    trainer.login(seed["trainer"], seed["password"])
    source = clip(tmp_path / "第一课.mp4")
    assert source.stat().st_size > DEFAULT_BODY_LIMIT
    add_url = "/admin/media/video/add/"
    form = find_form(trainer.get(add_url).text, action=add_url)
    form.set("title", "党章总纲讲解")
    with source.open("rb") as handle:
        uploaded = trainer.post(
            add_url,
            form.data(),
            files={"file": ("第一课.mp4", handle, "video/mp4")},
            timeout=120,
        )
    assert uploaded.status_code == 302, uploaded.text[-3000:]
    index = trainer.get("/admin/media/").text
    video_ids = sorted({int(pk) for pk in re.findall(r"/admin/media/edit/(\d+)/", index)})
    assert len(video_ids) == 1, video_ids
    video_id = video_ids[0]
    # It went through nginx to gunicorn ...
    access = (stack.workdir / "nginx" / "access.log").read_text()
    assert re.search(rf'"POST {add_url} HTTP/1.1" 302 ', access), access[-2000:]
    assert f"POST {add_url}" in stack.gunicorn_log()
    # ... and the source is in the bucket's private area, not on the web machine's disk.
    sources = stack.keys("private/videos/sources/")
    assert len(sources) == 1 and sources[0].endswith(".mp4"), sources
    stored = stack.s3().head_object(Bucket=stack.bucket, Key=sources[0])
    assert stored["ContentLength"] == source.stat().st_size
    media_root = stack.var_dir / "media"
    assert not media_root.exists() or not [p for p in media_root.rglob("*") if p.is_file()]
    timer.lap("3. trainer logs in, uploads a 16 MB video through nginx")

    # --- 4. The RQ worker transcodes it into the public store ------------------------------
    status_url = f"/admin/lesson-videos/{video_id}/status/"

    def transcoded():
        stack.worker.check_alive()
        state = trainer.get(status_url).json()
        assert state["state"] != "failed", state
        return state if state["state"] == "ready" else None

    wait_until("the RQ worker to transcode the video", transcoded, timeout=TRANSCODE_SECONDS)
    hls = stack.keys("public/videos/hls/")
    assert any(key.endswith("/master.m3u8") for key in hls), hls
    assert any(key.endswith(".ts") for key in hls), hls
    assert any(key.endswith("/fallback.mp4") for key in hls), hls
    assert "video_process_task" in stack.logs["rqworker"].read_text()
    timer.lap("4. RQ worker transcodes into object storage")

    # --- 5. The trainer attaches it to the lesson and publishes, in the page editor ---------
    edit_url = f"/admin/pages/{seed['lesson']}/edit/"
    form = find_form(trainer.get(edit_url).text, form_id="page-edit-form")
    assert form.get("video") == "", form.fields
    form.set("video", video_id)
    form.set("action-publish", "action-publish")
    published = trainer.post(edit_url, form.data())
    assert published.status_code == 302, published.text[-3000:]
    timer.lap("5. trainer attaches the video to the lesson and publishes")

    # --- 6. The member opens the lesson; video bytes come from object storage --------------
    member = Browser(stack.base_url, stack.origin)
    member.login(seed["member"], seed["password"])
    lesson = member.get(seed["lesson_url"])
    assert lesson.status_code == 200, lesson.status_code
    player = json_script(lesson.text, "player-config")
    assert player["ready"] and player["is_member"], player
    master_url = player["master_url"]
    assert master_url.startswith(f"{s3_origin}/{stack.bucket}/public/videos/hls/"), master_url
    assert urlsplit(master_url).netloc != urlsplit(stack.base_url).netloc
    assert "Signature" not in master_url and "X-Amz" not in master_url  # public, unsigned
    # The page lets the player fetch from there, and only there besides itself.
    csp = lesson.headers["Content-Security-Policy"]
    for directive in ("connect-src", "media-src"):
        sources_allowed = re.search(rf"{directive} ([^;]*)", csp).group(1).split()
        assert s3_origin in sources_allowed, csp
    # hls.js fetches cross-origin: the bucket's CORS rule (storage_setup) allows the site.
    preflight = requests.options(
        master_url,
        headers={"Origin": stack.origin, "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers.get("Access-Control-Allow-Origin") == stack.origin
    stranger = requests.options(
        master_url,
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    assert stranger.status_code == 403, stranger.status_code
    # Master playlist, a variant playlist and a segment, anonymously, from the object store.
    master = anonymous_get(master_url)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text[:300]
    variants = playlist_entries(master.text)
    assert any(entry.startswith("360p/") for entry in variants), master.text
    variant_url = urljoin(master_url, variants[0])
    variant = anonymous_get(variant_url)
    assert variant.status_code == 200 and "#EXTINF" in variant.text, variant.text[:300]
    segment = anonymous_get(urljoin(variant_url, playlist_entries(variant.text)[0]))
    assert segment.status_code == 200 and segment.content[:1] == b"\x47", segment.content[:16]
    assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert segment.headers["Content-Type"] == "video/mp2t"
    assert "immutable" in segment.headers.get("Cache-Control", ""), segment.headers
    fallback = anonymous_get(player["mp4_url"], stream=True)
    assert fallback.status_code == 200
    fallback.close()
    # The uploaded source stays private: no anonymous read.
    private_source = anonymous_get(f"{s3_origin}/{stack.bucket}/{sources[0]}")
    assert private_source.status_code == 403, private_source.status_code
    # The bucket policy (storage_setup) opens public/ and nothing else, whatever an object's ACL.
    s3 = stack.s3()
    for key, expected in (("public/policy-probe.txt", 200), ("private/policy-probe.txt", 403)):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"probe", ACL="private")
        assert anonymous_get(f"{s3_origin}/{stack.bucket}/{key}").status_code == expected, key
        s3.delete_object(Bucket=stack.bucket, Key=key)
    timer.lap("6. member opens the lesson; playlists and a segment from object storage")

    # --- 7. The member watches: progress reports like the player's, in real time ----------
    csrf = find_form(lesson.text, having="csrfmiddlewaretoken").get("csrfmiddlewaretoken")
    headers = {"X-CSRFToken": csrf}
    start_path = player["start_url"]
    started = member.post(
        start_path, {"csrfmiddlewaretoken": csrf}, headers=headers, referer=seed["lesson_url"]
    )
    assert started.status_code == 200, started.text
    viewing = started.json()
    assert not viewing["complete"]
    began = time.monotonic()
    reports = []
    while True:
        time.sleep(1)
        played = round(min(time.monotonic() - began, viewing["duration"]), 3)
        report = member.post(
            viewing["report_url"],
            {
                "csrfmiddlewaretoken": csrf,
                "viewing": viewing["viewing"],
                "segments": f"[[0, {played}]]",
                "position": str(played),
            },
            headers=headers,
            referer=seed["lesson_url"],
        )
        assert report.status_code == 200, report.text
        reports.append(report.json())
        if reports[-1]["complete"]:
            break
        assert time.monotonic() - began < viewing["duration"] + 15, reports
    watched = time.monotonic() - began
    # The server credits no more than real time allows: completion (90 %) took about 90 %
    # of the clip's length in wall-clock time.
    assert watched >= 0.9 * viewing["duration"] - 3.5, (watched, reports)
    assert reports[-1]["percent"] >= 90, reports[-1]
    timer.lap(
        f"7. member reports progress for {watched:.1f} s of an {viewing['duration']:.0f} s clip"
    )

    # --- 8. The secretary's coverage shows the member complete -----------------------------
    secretary = Browser(stack.base_url, stack.origin)
    secretary.login(seed["secretary"], seed["password"])
    coverage = secretary.get(
        f"/rounds/{seed['round']}/coverage/?org={seed['branch']}&status=all"
    ).text
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', coverage))
    assert figures["completed"] == "1" and figures["in_scope"] == "1", figures
    assert figures["coverage"] in ("100%", "100.0%"), figures
    row = re.search(r'<tr data-member="\d+" data-status="completed">(.*?)</tr>', coverage, re.S)
    assert row, re.findall(r"<tr data-member[^>]*>", coverage)
    assert seed["member_name"] in row.group(1) and "已完成" in row.group(1), row.group(1)
    assert "覆盖率" in coverage
    timer.lap("8. secretary sees 已完成 and 覆盖率 100%")

    # --- 9. Closing the round on the worker issues the certificate; the member downloads it -
    close_url = f"/admin/training_rounds/close/{seed['round']}/"
    form = find_form(trainer.get(close_url).text, action=close_url)
    closed = trainer.post(close_url, form.data())
    assert closed.status_code == 302, closed.text[-3000:]

    def certificate_listed():
        stack.worker.check_alive()
        page = member.get("/certificates/").text
        links = re.findall(r'href="(/certificates/\d+/pdf/)"', page)
        rendered = stack.keys("private/certificates/")
        return (page, links, rendered) if links and rendered else None

    page, links, rendered = wait_until(
        "the worker to close the round, issue the certificate and render its PDF",
        certificate_listed,
        timeout=CERTIFICATE_SECONDS,
    )
    assert len(set(links)) == 1 and len(rendered) == 1, (links, rendered)
    assert rendered[0].endswith(".pdf")
    log = stack.logs["rqworker"].read_text()
    for task in ("round_close_task", "certificates_issue_task", "certificates_render_task"):
        assert task in log, f"{task} did not run on the RQ worker:\n{log[-3000:]}"
    number = re.search(r"\d{4}-Q\d-\d{6}", page)
    assert number, page
    download = member.get(links[0])
    assert download.status_code == 200, download.status_code
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(download.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60
    ).stdout
    assert seed["member_name"] in text.replace(" ", ""), text
    assert number.group(0) in text, text
    timer.lap("9. round closed on the worker; certificate issued, rendered, downloaded")

    # --- 10. What nginx itself does -------------------------------------------------------
    # No media from this machine: neither private files by their storage names ...
    certificate_name = rendered[0].removeprefix("private/")
    source_name = sources[0].removeprefix("private/")
    for name in (certificate_name, source_name, "videos/hls/x/master.m3u8"):
        response = member.get(f"/media/{name}")
        assert response.status_code in (403, 404), (name, response.status_code)
    # ... static files from STATIC_ROOT by nginx, cached for a year, never reaching gunicorn.
    player_js = re.search(r'src="(/static/js/player\.[0-9a-f]{12}\.js)"', lesson.text).group(1)
    static = member.get(player_js, headers={"Accept-Encoding": "gzip"})
    assert static.status_code == 200, static.status_code
    assert static.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert static.headers.get("Content-Encoding") == "gzip"  # WhiteNoise's .gz, gzip_static
    assert "lesson-player" in static.text
    assert player_js not in stack.gunicorn_log()
    # A body over the default limit is refused by nginx before Django reads a byte.
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.base_url).port, timeout=30)
    connection.putrequest("POST", "/login/")
    connection.putheader("Content-Type", "application/x-www-form-urlencoded")
    connection.putheader("Content-Length", str(DEFAULT_BODY_LIMIT + 1024 * 1024))
    connection.endheaders()
    refused = connection.getresponse()
    assert refused.status == 413, refused.status
    connection.close()
    # Plain HTTP on the public port is sent to HTTPS.
    redirect = requests.get(stack.redirect_url + "/login/", allow_redirects=False, timeout=30)
    assert redirect.status_code == 301
    assert redirect.headers["Location"].startswith("https://127.0.0.1/login/")
    for proc in stack.procs:
        proc.check_alive()
    timer.lap("10. nginx: media refused, static cached, 413 over the limit, HTTPS redirect")
