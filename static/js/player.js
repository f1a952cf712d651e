/* Lunxun lesson player.
 *
 * Plays HLS through hls.js (or the browser's own HLS), records the segments actually played
 * while the page is visible, and reports them to the server, which decides what counts.
 * Every report carries the whole segment list of this viewing, so losing or repeating one
 * loses or doubles nothing. A member has one viewing at a time: when another page takes over,
 * this one stops counting until play is pressed here again; when the sign-in has ended, it
 * stops for good (reload after signing in).
 */
(function () {
  "use strict";

  var root = document.getElementById("lesson-player");
  if (!root) return;
  var config = JSON.parse(document.getElementById("player-config").textContent);
  var video = root.querySelector("video");
  var qualitySelect = root.querySelector("[data-quality]");
  var notice = root.querySelector("[data-notice]");
  var statusEl = document.querySelector("[data-lesson-status]");
  var csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  var text = JSON.parse(document.getElementById("player-text").textContent);

  var state = {
    viewing: null, reportUrl: null,
    segments: [],            // this viewing's played segments [[start, end], ...]
    current: null,           // the segment being played now
    furthest: 0,             // furthest point credited or played: seeking beyond is refused
    lastTime: 0,
    stopped: null,           // why this page no longer counts: "superseded" or "ended"
    starting: false,
    hls: null,
    source: "auto"
  };

  function say(message) {
    notice.textContent = message || "";
    notice.hidden = !message;
  }

  function closeSegment() {
    if (state.current && state.current[1] > state.current[0]) state.segments.push(state.current);
    state.current = null;
  }

  function allSegments() {
    var list = state.segments.slice();
    if (state.current && state.current[1] > state.current[0]) list.push(state.current.slice());
    return list.map(function (s) { return [Math.round(s[0] * 1000) / 1000, Math.round(s[1] * 1000) / 1000]; });
  }

  function body() {
    var data = new URLSearchParams();
    data.set("csrfmiddlewaretoken", csrf);
    data.set("viewing", state.viewing);
    data.set("segments", JSON.stringify(allSegments()));
    data.set("position", String(video.currentTime || 0));
    return data;
  }

  function showStatus(result) {
    if (result && result.status && statusEl) statusEl.textContent = result.status;
    if (result && typeof result.furthest === "number") state.furthest = Math.max(state.furthest, result.furthest);
    if (result && result.complete) root.dataset.complete = "true";
    document.dispatchEvent(new CustomEvent("lunxun:progress", { detail: result }));
  }

  function stop(reason) {
    closeSegment();
    state.stopped = reason;
    root.dataset.stopped = reason;
    video.pause();
    say(text[reason]);
  }

  function report() {
    if (!state.viewing || state.stopped) return Promise.resolve();
    var viewing = state.viewing;
    return fetch(state.reportUrl, {
      method: "POST", body: body(), credentials: "same-origin",
      headers: { "X-CSRFToken": csrf }
    }).then(function (response) {
      if (viewing !== state.viewing) return null;  // answered after this page took over again
      // 404: this viewing is unknown to whoever is signed in now, i.e. the sign-in ended.
      if (response.status === 404) { stop("ended"); return null; }
      if (response.status === 409) {
        return response.json().then(function (result) {
          stop(result.superseded ? "superseded" : "ended");
        });
      }
      if (!response.ok) return null;
      return response.json().then(showStatus);
    }).catch(function () { /* the next report carries everything again */ });
  }

  function beacon() {
    if (!state.viewing || state.stopped) return;
    if (navigator.sendBeacon) navigator.sendBeacon(state.reportUrl, body());
    else report();
  }

  function attach(url) {
    var position = video.currentTime || 0;
    if (state.hls) { state.hls.destroy(); state.hls = null; }
    if (window.Hls && window.Hls.isSupported()) {
      state.hls = new window.Hls({ startPosition: position, capLevelToPlayerSize: true });
      state.hls.loadSource(url);
      state.hls.attachMedia(video);
      state.hls.on(window.Hls.Events.MANIFEST_PARSED, fillQualities);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      video.addEventListener("loadedmetadata", function once() {
        video.removeEventListener("loadedmetadata", once);
        if (position) video.currentTime = position;
      });
    } else {
      video.src = config.mp4_url;
    }
  }

  function fillQualities() {
    if (!qualitySelect || !state.hls || state.source !== "auto") return;
    var keep = qualitySelect.querySelectorAll("[data-static]");
    qualitySelect.innerHTML = "";
    keep.forEach(function (option) { qualitySelect.appendChild(option); });
    state.hls.levels.forEach(function (level, index) {
      if (!level.height) return;
      var option = document.createElement("option");
      option.value = "level-" + index;
      option.textContent = level.height + "p";
      qualitySelect.insertBefore(option, qualitySelect.querySelector("[value=audio]"));
    });
  }

  function chooseQuality() {
    var value = qualitySelect.value;
    var wasPlaying = !video.paused;
    closeSegment();
    if (value === "audio") {
      state.source = "audio";
      root.classList.add("audio-only");
      attach(config.audio_url);
    } else {
      if (state.source === "audio") { state.source = "auto"; root.classList.remove("audio-only"); attach(config.master_url); }
      if (state.hls) state.hls.currentLevel = value === "auto" ? -1 : parseInt(value.slice(6), 10);
    }
    if (wasPlaying) video.play().catch(function () {});
  }

  // A new viewing of this lesson: the server ends the member's other one, whichever lesson.
  function openViewing() {
    var data = new URLSearchParams();
    data.set("csrfmiddlewaretoken", csrf);
    return fetch(config.start_url, {
      method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": csrf }
    }).then(function (response) {
      return response.json().then(function (result) {
        if (!response.ok) { say(result.error || text.unavailable); return null; }
        state.viewing = result.viewing;
        state.reportUrl = result.report_url;
        state.segments = [];
        state.current = null;
        state.stopped = null;
        delete root.dataset.stopped;
        state.furthest = Math.max(state.furthest, result.furthest || 0);
        showStatus(result);
        return result;
      });
    });
  }

  function start() {
    return openViewing().then(function (result) {
      if (!result) return;
      attach(config.master_url);
      if (result.position && result.position < result.duration - 3) {
        video.addEventListener("loadedmetadata", function once() {
          video.removeEventListener("loadedmetadata", once);
          video.currentTime = result.position;
        });
      }
    });
  }

  // Play pressed on a page another one took over from: count here again, from now on.
  function takeOver() {
    if (state.starting) return;
    state.starting = true;
    openViewing().then(function (result) {
      state.starting = false;
      if (!result) return;
      say("");
      state.lastTime = video.currentTime;
      video.play().catch(function () {});
    }).catch(function () {
      // Not JSON: the start was sent to the login page, so the sign-in has ended.
      state.starting = false;
      stop("ended");
    });
  }

  video.addEventListener("timeupdate", function () {
    var now = video.currentTime;
    if (!video.paused && !video.seeking && document.visibilityState === "visible" && !state.stopped) {
      var step = now - state.lastTime;
      if (state.current && step >= 0 && step < 1.5) {
        state.current[1] = now;
      } else {
        closeSegment();
        state.current = [now, now];
      }
      state.furthest = Math.max(state.furthest, now);
    }
    state.lastTime = now;
  });

  video.addEventListener("seeking", function () {
    closeSegment();
    if (config.block_seek_ahead && video.currentTime > state.furthest + 1) {
      video.currentTime = state.furthest;
      say(text.no_seek_ahead);
      root.dataset.seekRefused = "true";
    }
    state.lastTime = video.currentTime;
  });

  video.addEventListener("ratechange", function () {
    if (config.fixed_speed && video.playbackRate !== 1) {
      video.playbackRate = 1;
      say(text.fixed_speed);
    }
  });

  video.addEventListener("play", function () {
    if (state.stopped === "superseded") { video.pause(); takeOver(); return; }
    // Signed out: the lesson may still be watched, but the notice stays: nothing counts.
    if (state.stopped === "ended") { say(text.ended); return; }
    say("");
    state.lastTime = video.currentTime;
  });
  video.addEventListener("pause", function () { closeSegment(); report(); });
  video.addEventListener("ended", function () { closeSegment(); report(); });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      // Time counts only while the page is seen: hidden means paused.
      if (!video.paused) video.pause();
      closeSegment();
      beacon();
    }
  });
  window.addEventListener("pagehide", function () { closeSegment(); beacon(); });

  setInterval(function () { if (!video.paused) report(); }, config.report_seconds * 1000);
  // Reports do not touch the session; watching still counts as activity for the idle limit.
  setInterval(function () {
    if (!video.paused && config.is_member) {
      var data = new URLSearchParams();
      data.set("csrfmiddlewaretoken", csrf);
      fetch(config.keepalive_url, { method: "POST", body: data, credentials: "same-origin" });
    }
  }, 5 * 60 * 1000);

  if (qualitySelect) qualitySelect.addEventListener("change", chooseQuality);

  if (config.ready && config.is_member) start();
  else if (config.ready) attach(config.master_url);
})();
