"""The lesson page around the player: it says in words which mode counts how, offers listening
and (only when the video has them) captions, carries what the lock screen shows, plays inline
in WeChat's and other Android in-app browsers, and shows the lesson's text beside the video."""

import json
import re

from wagtail.rich_text import RichText

from .builders import lesson


def player_page(client, page):
    response = client.get(page.url)
    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(
        re.search(
            r'<script id="player-config" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    return html, config


def test_the_page_says_how_each_mode_counts_and_offers_listening(city, client_for):
    page = lesson(title="第一课")
    html, config = player_page(client_for(city.member_a.user), page)
    text = json.loads(
        re.search(
            r'<script id="player-text" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert "锁屏" in text["rule_audio"] and "锁屏" in text["rule_video"]
    assert text["rule_audio"] != text["rule_video"]
    assert "data-mode-rule" in html and text["rule_video"] in html  # before any script runs
    assert "data-listen" in html
    assert "x5-playsinline" in html and "webkit-playsinline" in html
    assert config["title"] == "第一课"
    assert config["course"] == page.get_parent().title
    assert config["poster_url"].endswith("poster.jpg")
    # No captions on this video: no button, no track.
    assert config["captions_url"] == ""
    assert "data-captions-button" not in html


def test_a_video_with_captions_offers_the_captions_button(city, client_for):
    page = lesson()
    video = page.video
    video.captions = "WEBVTT\n\n00:00.000 --> 00:02.000\n你好\n"
    video.captions_vtt = "videos/hls/x/subs-a/captions.vtt"
    video.save()
    html, config = player_page(client_for(city.member_a.user), page)
    assert config["captions_url"].endswith("videos/hls/x/subs-a/captions.vtt")
    assert "data-captions-button" in html


def test_the_lesson_text_is_shown_beside_the_video(city, client_for):
    page = lesson()
    page.body = [("text", RichText("<p>讲稿第一段</p>"))]
    page.save()
    html, _config = player_page(client_for(city.member_a.user), page)
    assert 'class="lesson-layout with-text"' in html
    assert "data-lesson-text" in html
    text_at = html.index("讲稿第一段")
    assert html.index('id="lesson-player"') < text_at < html.index("</section>")
