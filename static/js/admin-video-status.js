/* Wagtail admin: keep every [data-video-status] element up to date while a video is processed. */
(function () {
  "use strict";
  function poll(el) {
    fetch(el.dataset.videoStatus, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var label = el.querySelector("[data-state-label]");
        var bar = el.querySelector("progress");
        var percent = el.querySelector("[data-percent]");
        var reason = el.querySelector("[data-failure-reason]");
        if (label) label.textContent = data.state_label;
        if (bar) bar.value = data.progress;
        if (percent) percent.textContent = data.progress + "%";
        if (reason) { reason.textContent = data.failure_reason; reason.hidden = !data.failure_reason; }
        el.dataset.state = data.state;
        if (data.state === "ready" || data.state === "failed") {
          if (el.dataset.reloadOnDone === "true") window.location.reload();
          return;
        }
        setTimeout(function () { poll(el); }, 2000);
      })
      .catch(function () { setTimeout(function () { poll(el); }, 5000); });
  }
  function init() {
    document.querySelectorAll("[data-video-status]").forEach(function (el) {
      if (el.dataset.state !== "ready" && el.dataset.state !== "failed") poll(el);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
