/* Lunxun lesson player.
 *
 * Plays HLS through hls.js (or the browser's own HLS, or the MP4 fallback), records the
 * segments actually played, and reports them to the server, which decides what counts.
 * Watching the video counts only while the page is seen: hidden means paused. Listening
 * (audio only) goes on counting with the screen off or another app in front, at normal speed
 * only; the lock screen gets play/pause and "back 10 s" (Media Session). The segments come
 * from the media's own clock (currentTime between timeupdate events), never the wall clock,
 * and the server still grants no more seconds than have passed.
 * Every report carries the whole segment list of this viewing, so losing or repeating one
 * loses or doubles nothing. A member has one viewing at a time: when another page takes over,
 * this one stops counting until play is pressed here again; when the sign-in has ended, it
 * stops for good (reload after signing in).
 *
 * Live mode (config.live, a live lecture): the same player on the live ladder. Segments are
 * counted on the stream's own clock, the program date-time of what is playing (seconds since
 * the epoch), which the server maps onto the lecture's timeline (the recording's). No seeking
 * ahead of the live edge. The lecture's state is asked every few seconds and shown in words;
 * a lost signal is a state ("please wait"), not an error, and play resumes when it is back.
 */
(function () {
  "use strict";

  var root = document.getElementById("lesson-player");
  if (!root) {
    // A live lecture not on air yet (or being processed): say its state, and open the player
    // by reloading the page once it is on air or its replay is ready.
    var waiting = document.getElementById("player-config");
    var settings = waiting ? JSON.parse(waiting.textContent) : {};
    if (!settings.live || !settings.status_url) return;
    setInterval(function () {
      fetch(settings.status_url, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (result) {
          if (!result) return;
          var words = document.querySelector("[data-live-words]");
          if (words) words.textContent = result.status;
          if (result.watchable || result.state === "replay") window.location.reload();
        }).catch(function () { /* asked again in a moment */ });
    }, 5000);
    return;
  }
  var config = JSON.parse(document.getElementById("player-config").textContent);
  var video = root.querySelector("video");
  var qualitySelect = root.querySelector("[data-quality]");
  var notice = root.querySelector("[data-notice]");
  var statusEl = document.querySelector("[data-lesson-status]");
  var csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  var text = JSON.parse(document.getElementById("player-text").textContent);
  var modeRule = root.querySelector("[data-mode-rule]");
  var listenButton = root.querySelector("[data-listen]");
  var captionsButton = root.querySelector("[data-captions-button]");
  var MODE_KEY = "lunxun.player.mode";
  // Timeupdate fires about 4 times a second; a hidden page may get it less often, and a jump
  // made by seeking closes the segment first (the "seeking" event), so only a forward step
  // this small (or, listening in the background, this large) continues a segment.
  var STEP_SECONDS = 1.5;
  var BACKGROUND_STEP_SECONDS = 30;
  var LIVE = !!config.live;
  var LIVE_POLL_MS = 3000;
  var liveWords = document.querySelector("[data-live-words]");
  var liveBox = document.querySelector("[data-live-status]");

  var state = {
    viewing: null, reportUrl: null,
    row: null,               // the server's last answer's signed row, sent back: no read needed
    segments: [],            // this viewing's played segments [[start, end], ...]
    current: null,           // the segment being played now
    furthest: 0,             // furthest point credited or played: seeking beyond is refused
    lastTime: 0,
    stopped: null,           // why this page no longer counts: "superseded" or "ended"
    starting: false,
    hls: null,
    source: "auto",          // "auto" (video, hls.js picks the quality) or "audio"
    captions: document.documentElement.classList.contains("large-type"),
    captionsChosen: false    // the member pressed the captions button: large type no longer decides
  };

  function remembered() {
    try { return window.localStorage.getItem(MODE_KEY); } catch (e) { return null; }
  }

  function remember(mode) {
    try { window.localStorage.setItem(MODE_KEY, mode); } catch (e) { /* private mode */ }
  }

  function listening() { return state.source === "audio"; }

  // Where the media is, on the clock segments are counted in: the lesson's own seconds, or
  // live, the program date-time of the frame playing (null until hls.js knows it).
  function mediaClock() {
    if (!LIVE) return video.currentTime;
    var date = state.hls && state.hls.playingDate;
    return date ? date.getTime() / 1000 : null;
  }

  // Does the media playing now count? Video: while the page is seen. Audio: also hidden, at 1x.
  function counting() {
    if (video.paused || video.seeking || state.stopped) return false;
    if (listening()) return video.playbackRate === 1;
    return document.visibilityState === "visible";
  }

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
    data.set("position", String((LIVE ? mediaClock() : video.currentTime) || 0));
    if (state.row) data.set("state", state.row);
    return data;
  }

  function showStatus(result) {
    if (result && result.state) state.row = result.state;
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
    // Some in-app browsers lack sendBeacon or refuse it (it returns false): send it plainly.
    var sent = false;
    try { sent = !!(navigator.sendBeacon && navigator.sendBeacon(state.reportUrl, body())); } catch (e) { sent = false; }
    if (!sent) report();
  }

  // --- Captions: the HLS subtitle rendition (hls.js or native HLS) or, on the MP4 fallback, a
  // <track> of the same WebVTT. Off by default, on by default in large-type mode.
  function showCaptions() {
    var on = state.captions;
    if (state.hls) {
      state.hls.subtitleDisplay = on;
      if (on && state.hls.subtitleTrack < 0 && state.hls.subtitleTracks.length) state.hls.subtitleTrack = 0;
    }
    for (var i = 0; i < video.textTracks.length; i++) {
      var track = video.textTracks[i];
      if (track.kind === "subtitles" || track.kind === "captions") track.mode = on ? "showing" : "hidden";
    }
    root.dataset.captions = on ? "on" : "off";
    if (captionsButton) {
      captionsButton.setAttribute("aria-pressed", on ? "true" : "false");
      captionsButton.textContent = on ? text.captions_on : text.captions_off;
    }
  }

  function addCaptionTrack() {
    if (!config.captions_url || video.querySelector("track")) return;
    var track = document.createElement("track");
    track.kind = "captions";
    track.srclang = "zh";
    track.label = text.captions_label;
    track.src = config.captions_url;
    video.appendChild(track);
  }

  function playMp4() {
    if (state.hls) { state.hls.destroy(); state.hls = null; }
    var position = video.currentTime || 0;
    root.dataset.source = "mp4";
    video.src = config.mp4_url;
    addCaptionTrack();
    if (position) {
      video.addEventListener("loadedmetadata", function once() {
        video.removeEventListener("loadedmetadata", once);
        video.currentTime = position;
      });
    }
    showCaptions();
  }

  function attach(url) {
    var position = video.currentTime || 0;
    if (state.hls) { state.hls.destroy(); state.hls = null; }
    if (window.Hls && window.Hls.isSupported()) {
      root.dataset.source = "hls.js";
      state.hls = new window.Hls(LIVE ? {
        liveDurationInfinity: true,
        liveSyncDurationCount: 2,
        capLevelToPlayerSize: true
      } : {
        startPosition: position,
        capLevelToPlayerSize: true,
        // Subtitles become the video's text tracks, drawn by the browser (styled by ::cue).
        renderTextTracksNatively: true,
        subtitleDisplay: state.captions
      });
      state.hls.loadSource(url);
      state.hls.attachMedia(video);
      state.hls.on(window.Hls.Events.MANIFEST_PARSED, fillQualities);
      state.hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, showCaptions);
      // An in-app browser whose Media Source fails on our streams: play the MP4 instead.
      state.hls.on(window.Hls.Events.ERROR, function (event, data) {
        if (!data || !data.fatal) return;
        if (LIVE) { liveLost(); return; }  // no MP4 of a live lecture: wait and try again
        playMp4();
      });
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      // Several Android browsers answer "maybe" here and then cannot play HLS after all.
      root.dataset.source = "native-hls";
      video.src = url;
      video.addEventListener("error", function failed() {
        video.removeEventListener("error", failed);
        if (root.dataset.source === "native-hls") playMp4();
      });
      video.addEventListener("loadedmetadata", function once() {
        video.removeEventListener("loadedmetadata", once);
        if (position) video.currentTime = position;
      });
    } else {
      playMp4();
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

  // Say in words which mode counts how, next to the choice.
  function showMode() {
    root.dataset.mode = listening() ? "audio" : "video";
    root.classList.toggle("audio-only", listening());
    if (modeRule) modeRule.textContent = listening() ? text.rule_audio : text.rule_video;
    if (listenButton) {
      listenButton.textContent = listening() ? text.watch : text.listen;
      listenButton.setAttribute("aria-pressed", listening() ? "true" : "false");
    }
    if (qualitySelect && listening()) qualitySelect.value = "audio";
    if (captionsButton) captionsButton.hidden = listening();  // the audio rendition has none
  }

  function sourceUrl() { return listening() ? config.audio_url : config.master_url; }

  function chooseQuality() {
    var value = qualitySelect.value;
    var wasPlaying = !video.paused;
    closeSegment();
    if (value === "audio") {
      if (!listening()) { state.source = "audio"; attach(config.audio_url); }
    } else {
      if (listening()) { state.source = "auto"; attach(config.master_url); }
      if (state.hls) state.hls.currentLevel = value === "auto" ? -1 : parseInt(value.slice(6), 10);
    }
    state.lastTime = video.currentTime;
    remember(listening() ? "audio" : "video");
    showMode();
    if (wasPlaying) video.play().catch(function () {});
  }

  // --- The lock screen and the notification shade (Media Session), where the browser has it.
  function mediaSession() {
    var session = navigator.mediaSession;
    if (!session) return;
    try {
      if (typeof window.MediaMetadata === "function") {
        session.metadata = new window.MediaMetadata({
          title: config.title, artist: config.course, album: text.site,
          artwork: config.poster_url ? [{ src: config.poster_url, type: "image/jpeg" }] : []
        });
      }
    } catch (e) { /* an old browser's MediaMetadata */ }
    function handle(action, handler) {
      try { session.setActionHandler(action, handler); } catch (e) { /* action not supported */ }
    }
    handle("play", function () { video.play().catch(function () {}); });
    handle("pause", function () { video.pause(); });
    handle("seekbackward", function (details) {
      video.currentTime = Math.max(0, video.currentTime - ((details && details.seekOffset) || 10));
    });
    handle("seekforward", function (details) {
      var target = video.currentTime + ((details && details.seekOffset) || 10);
      if (config.block_seek_ahead) target = Math.min(target, state.furthest);
      if (video.duration) target = Math.min(target, video.duration);
      if (target > video.currentTime) video.currentTime = target;
    });
    // No seekto (a scrubber could skip ahead), no other tracks, no speed: time counts at 1x.
    handle("seekto", null);
    handle("previoustrack", null);
    handle("nexttrack", null);
  }

  function sessionState() {
    var session = navigator.mediaSession;
    if (!session) return;
    try { session.playbackState = video.paused ? "paused" : "playing"; } catch (e) { /* old */ }
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
        state.row = null;
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
      attach(sourceUrl());
      if (LIVE) { video.play().catch(function () {}); return; }
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
    var now = mediaClock();
    if (now === null) return;
    if (counting()) {
      var step = now - state.lastTime;
      var limit = listening() && document.visibilityState !== "visible" ? BACKGROUND_STEP_SECONDS : STEP_SECONDS;
      if (state.current && step >= 0 && step < limit) {
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
    if (LIVE) {
      var edge = state.hls && state.hls.liveSyncPosition;
      if (edge && video.currentTime > edge + 1) {
        video.currentTime = edge;
        say(text.live_no_seek_ahead);
      }
      state.lastTime = mediaClock() || 0;
      return;
    }
    if (config.block_seek_ahead && video.currentTime > state.furthest + 1) {
      video.currentTime = state.furthest;
      say(text.no_seek_ahead);
      root.dataset.seekRefused = "true";
    }
    state.lastTime = video.currentTime;
  });

  video.addEventListener("ratechange", function () {
    // A segment is played at one speed: a change starts a new one.
    closeSegment();
    state.lastTime = video.currentTime;
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
    state.lastTime = LIVE ? (mediaClock() || 0) : video.currentTime;
    sessionState();
  });
  video.addEventListener("pause", function () { closeSegment(); report(); sessionState(); });
  video.addEventListener("ended", function () { closeSegment(); report(); });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      if (listening()) {
        // Listening goes on with the screen off: report what was played so far, keep counting.
        beacon();
        return;
      }
      // Watching counts only while the page is seen: hidden means paused.
      if (!video.paused) video.pause();
      closeSegment();
      beacon();
    } else if (listening()) {
      report();
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
  if (listenButton) {
    listenButton.addEventListener("click", function () {
      qualitySelect.value = listening() ? "auto" : "audio";
      chooseQuality();
    });
  }
  if (captionsButton) {
    captionsButton.addEventListener("click", function () {
      state.captions = !state.captions;
      state.captionsChosen = true;
      showCaptions();
    });
  }
  if (video.textTracks && video.textTracks.addEventListener) {
    video.textTracks.addEventListener("addtrack", showCaptions);
  }
  // Large type switched on or off while here: captions follow, unless the member chose.
  if (window.MutationObserver) {
    new MutationObserver(function () {
      var large = document.documentElement.classList.contains("large-type");
      if (!state.captionsChosen && large !== state.captions) { state.captions = large; showCaptions(); }
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
  }

  // --- Live: the lecture's state in words, asked every few seconds.
  function showLive(result) {
    if (liveWords && result.status) liveWords.textContent = result.status;
    if (liveBox) liveBox.dataset.liveStatus = result.state;
    root.dataset.liveState = result.state;
  }

  function liveLost() {
    closeSegment();
    root.dataset.liveState = "interrupted";
    say(text.live_interrupted);
  }

  function livePoll() {
    fetch(config.status_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) {
        if (!result) return;
        var before = root.dataset.liveState;
        showLive(result);
        if (result.state === "interrupted") {
          liveLost();
        } else if (result.state === "live" && before === "interrupted") {
          // The hall is back: pick the stream up again where it continues.
          say("");
          attach(sourceUrl());
          video.play().catch(function () {});
        } else if (result.ended) {
          closeSegment();
          report();
          video.pause();
          if (state.hls) { state.hls.destroy(); state.hls = null; }
          say(text.live_over);
          clearInterval(poller);
        }
      }).catch(function () { /* asked again in a moment */ });
  }
  var poller = null;
  if (LIVE) {
    root.dataset.liveState = config.live_state;
    poller = setInterval(livePoll, LIVE_POLL_MS);
  }

  if (remembered() === "audio" && config.audio_url) state.source = "audio";
  showMode();
  showCaptions();
  mediaSession();
  if (config.ready && config.is_member) start();
  else if (config.ready) attach(sourceUrl());
})();
