// The site terminal (站点终端): runs a site's group sessions from what it downloaded, with the
// link up or down, and sends what it recorded when the link is back.
//
// Kept in the browser, so a reload or a reboot loses nothing:
// - IndexedDB "lunxun-terminal": "meta" (the terminal's signing secret, handed once by the
//   server, and the downloaded package) and "records" (each record made offline, by its UUID,
//   signed with HMAC-SHA256 over the same text rounds/terminals.py record_message builds);
// - Cache Storage "lunxun-terminal-v1": the lessons' HLS files, this page and its scripts,
//   which the service worker (rounds/terminal/sw.js) serves when the link is down.
// The rotating check-in codes are made here from the sitting's key (WebCrypto HMAC), exactly
// as rounds.services.qr_token makes them, so members' phones check in as with the online screen.
(function () {
  "use strict";
  var root = document.getElementById("terminal");
  if (!root) return;
  var T = JSON.parse(document.getElementById("terminal-strings").textContent);
  var terminalId = root.dataset.terminal;
  var CACHE = "lunxun-terminal-v1";
  var enc = new TextEncoder();
  var db = null;
  var secret = null;
  var pkg = null;
  var running = null; // {sitting, roster: {id: member}, marks: {id: status}, scanned: {id: true}}
  var qrTimer = null;
  var camera = null;
  var hls = null;

  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return values[name] !== undefined ? values[name] : all;
    });
  }

  function el(id) {
    return document.getElementById(id);
  }

  function say(text) {
    var box = el("terminal-message");
    box.textContent = text;
    box.hidden = !text;
  }

  // --- IndexedDB -----------------------------------------------------------------------------

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open("lunxun-terminal", 1);
      request.onupgradeneeded = function () {
        var d = request.result;
        d.createObjectStore("meta");
        var records = d.createObjectStore("records", { keyPath: "uuid" });
        records.createIndex("state", "state");
      };
      request.onsuccess = function () {
        resolve(request.result);
      };
      request.onerror = function () {
        reject(request.error);
      };
    });
  }

  function tx(store, mode, work) {
    return new Promise(function (resolve, reject) {
      var t = db.transaction(store, mode);
      var result;
      var request = work(t.objectStore(store));
      if (request) {
        request.onsuccess = function () {
          result = request.result;
        };
      }
      t.oncomplete = function () {
        resolve(result);
      };
      t.onerror = t.onabort = function () {
        reject(t.error);
      };
    });
  }

  function metaGet(key) {
    return tx("meta", "readonly", function (s) {
      return s.get(key + ":" + terminalId);
    });
  }

  function metaPut(key, value) {
    return tx("meta", "readwrite", function (s) {
      return s.put(value, key + ":" + terminalId);
    });
  }

  function metaDelete(key) {
    return tx("meta", "readwrite", function (s) {
      return s.delete(key + ":" + terminalId);
    });
  }

  function allRecords() {
    return tx("records", "readonly", function (s) {
      return s.getAll();
    }).then(function (rows) {
      return (rows || []).filter(function (r) {
        return String(r.terminal) === String(terminalId);
      });
    });
  }

  function putRecord(record) {
    return tx("records", "readwrite", function (s) {
      return s.put(record);
    });
  }

  // --- Signatures and codes ---------------------------------------------------------------------

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function b64url(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_");
  }

  function fromB64url(text) {
    var raw = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function hmac(keyBytes, message) {
    return crypto.subtle
      .importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (key) {
        return crypto.subtle.sign("HMAC", key, enc.encode(message));
      });
  }

  var FIELDS = ["uuid", "kind", "sitting", "member", "code", "status", "at"];

  function recordMessage(record) {
    return (
      "lunxun-terminal-v1|" +
      FIELDS.map(function (f) {
        return record[f] === undefined || record[f] === null ? "" : String(record[f]);
      }).join("|")
    );
  }

  function sign(record) {
    return hmac(enc.encode(secret), recordMessage(record)).then(function (mac) {
      record.sig = hex(mac);
      return record;
    });
  }

  // rounds.services.qr_token: "<sitting>.<window>.<mac>", mac = the first 15 bytes of
  // HMAC-SHA256(sitting key, "lunxun-checkin:<sitting>:<window>"), base64url.
  function checkInToken(sitting, window) {
    var message = "lunxun-checkin:" + sitting.id + ":" + window;
    return hmac(fromB64url(sitting.key), message).then(function (mac) {
      return sitting.id + "." + window + "." + b64url(new Uint8Array(mac).slice(0, 15));
    });
  }

  function drawQr(box, text) {
    var qr = window.qrcode(0, "M");
    qr.addData(text);
    qr.make();
    var n = qr.getModuleCount();
    var border = 2;
    var size = n + 2 * border;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + size + " " + size);
    svg.setAttribute("role", "img");
    svg.setAttribute("shape-rendering", "crispEdges");
    var background = document.createElementNS(ns, "rect");
    background.setAttribute("width", size);
    background.setAttribute("height", size);
    background.setAttribute("fill", "#fff");
    svg.appendChild(background);
    var d = "";
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        if (qr.isDark(r, c)) d += "M" + (c + border) + " " + (r + border) + "h1v1h-1z";
      }
    }
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "#111");
    svg.appendChild(path);
    box.replaceChildren(svg);
    box.dataset.url = text;
  }

  // --- State on screen --------------------------------------------------------------------------

  function showLink() {
    var badge = el("terminal-link");
    badge.textContent = navigator.onLine ? badge.dataset.online : badge.dataset.offline;
    root.dataset.link = navigator.onLine ? "on" : "off";
  }

  function showSpace() {
    if (!navigator.storage || !navigator.storage.estimate) return Promise.resolve();
    return navigator.storage.estimate().then(function (estimate) {
      el("terminal-space").textContent = fmt(T.space, {
        mb: ((estimate.usage || 0) / 1048576).toFixed(1),
      });
    });
  }

  function memberName(sittingId, memberId) {
    var sitting = findSitting(sittingId);
    var member = sitting && sitting.roster.find(function (m) {
      return String(m.id) === String(memberId);
    });
    return member ? member.name : "#" + memberId;
  }

  function showRecords() {
    return allRecords().then(function (rows) {
      var waiting = rows.filter(function (r) {
        return r.state === "waiting";
      });
      var badge = el("terminal-waiting");
      badge.dataset.state = String(waiting.length);
      badge.textContent = waiting.length
        ? fmt(T.waiting, { n: waiting.length })
        : T.nothing_waiting;
      var list = el("terminal-result-list");
      list.replaceChildren();
      rows
        .sort(function (a, b) {
          return b.at - a.at;
        })
        .slice(0, 200)
        .forEach(function (r) {
          var li = document.createElement("li");
          li.dataset.uuid = r.uuid;
          li.dataset.state = r.state;
          li.dataset.reason = r.reason || "";
          var name = r.name || (r.member ? memberName(r.sitting, r.member) : "");
          var what =
            r.kind === "roll_call"
              ? fmt(T.record_roll_call, { name: name, status: T.statuses[r.status] || r.status })
              : fmt(T.record_personal, { name: name });
          li.textContent = what + " · " + (r.state === "waiting" ? T.waiting_label : r.message);
          list.appendChild(li);
        });
    });
  }

  function findSitting(id) {
    return pkg && pkg.sittings.find(function (s) {
      return String(s.id) === String(id);
    });
  }

  function showPanels() {
    el("terminal-setup").hidden = !!secret;
    el("terminal-download").hidden = !secret || !!running;
    el("terminal-sittings").hidden = !secret || !!running;
    el("terminal-run").hidden = !running;
    if (secret && !pkg) say(T.no_package);
    root.dataset.state = !secret ? "setup" : pkg ? "ready" : "empty";
  }

  function showSittings() {
    var list = el("terminal-sitting-list");
    list.replaceChildren();
    if (!pkg) return;
    if (!pkg.sittings.length) {
      var none = document.createElement("li");
      none.textContent = T.no_sittings;
      list.appendChild(none);
    }
    pkg.sittings.forEach(function (sitting) {
      var li = document.createElement("li");
      li.dataset.sitting = sitting.id;
      var start = new Date(sitting.start);
      var label = document.createElement("span");
      label.textContent =
        start.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }) +
        " " + sitting.title + " · " + (sitting.location || sitting.host);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button primary big";
      button.textContent = T.start;
      button.addEventListener("click", function () {
        start_(sitting);
      });
      li.appendChild(label);
      li.appendChild(button);
      list.appendChild(li);
    });
  }

  // --- Setting up and downloading ---------------------------------------------------------------

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": root.dataset.csrf, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : "{}",
      redirect: "manual",
    });
  }

  function claim() {
    post(root.dataset.claimUrl)
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || response.status);
          secret = data.secret;
          return metaPut("secret", secret);
        });
      })
      .then(function () {
        say("");
        showPanels();
      })
      .catch(function (error) {
        say(fmt(T.claim_failed, { why: error.message }));
      });
  }

  function download() {
    var progress = el("terminal-progress");
    var rung = el("terminal-rung").value;
    progress.dataset.state = "running";
    // Ask the browser not to evict what the site keeps when the disk runs low.
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist();
    var fresh;
    fetch(root.dataset.packageUrl + "?rung=" + encodeURIComponent(rung), {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual",
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        fresh = data;
        var urls = [location.pathname].concat(root.dataset.assets.split(" "));
        fresh.lessons.forEach(function (lesson) {
          lesson.files.forEach(function (file) {
            urls.push(file.url);
          });
        });
        return caches.open(CACHE).then(function (cache) {
          var done = 0;
          var next = 0;
          function worker() {
            if (next >= urls.length) return Promise.resolve();
            var url = urls[next++];
            return cache
              .match(url)
              .then(function (hit) {
                if (hit && url !== location.pathname) return null;
                return fetch(url, { credentials: "same-origin" }).then(function (response) {
                  if (!response.ok) throw new Error(url + " " + response.status);
                  return cache.put(url, response);
                });
              })
              .then(function () {
                done++;
                progress.textContent = fmt(T.downloading, { done: done, total: urls.length });
                return worker();
              });
          }
          return Promise.all([worker(), worker(), worker()]);
        });
      })
      .then(function () {
        pkg = fresh;
        return metaPut("package", pkg);
      })
      .then(function () {
        progress.dataset.state = "done";
        progress.textContent = fmt(T.downloaded, {
          sittings: pkg.sittings.length,
          mb: (pkg.media_bytes / 1048576).toFixed(1),
        });
        say("");
        showPanels();
        showSittings();
        showSpace();
      })
      .catch(function () {
        progress.dataset.state = "failed";
        progress.textContent = T.download_failed;
      });
  }

  function free() {
    caches
      .delete(CACHE)
      .then(function () {
        pkg = null;
        return metaDelete("package");
      })
      .then(function () {
        el("terminal-progress").textContent = T.freed;
        el("terminal-progress").dataset.state = "freed";
        showPanels();
        showSittings();
        showSpace();
      });
  }

  // --- Running a sitting ------------------------------------------------------------------------

  function start_(sitting) {
    running = { sitting: sitting, marks: {}, scanned: {} };
    el("run-title").textContent = sitting.title;
    root.dataset.running = sitting.id;
    var select = el("run-lesson");
    select.replaceChildren();
    sitting.lessons.forEach(function (id) {
      var lesson = pkg.lessons.find(function (l) {
        return l.id === id;
      });
      if (!lesson || !lesson.playlist) return;
      var option = document.createElement("option");
      option.value = lesson.playlist;
      option.textContent = lesson.title;
      select.appendChild(option);
    });
    if (!select.options.length) say(T.no_lesson);
    else play(select.value);
    allRecords().then(function (rows) {
      rows.forEach(function (r) {
        if (String(r.sitting) !== String(sitting.id)) return;
        if (r.kind === "roll_call") running.marks[r.member] = r.status;
        if (r.kind === "personal_code") running.scanned[r.member] = true;
      });
      showRoster();
    });
    showPanels();
    rotate();
  }

  function stop() {
    running = null;
    window.clearTimeout(qrTimer);
    stopCamera();
    el("run-video").pause();
    delete root.dataset.running;
    showPanels();
  }

  function play(url) {
    var video = el("run-video");
    var badge = el("run-played");
    badge.dataset.state = "playing";
    badge.textContent = "";
    if (hls) hls.destroy();
    hls = null;
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({ maxBufferLength: 30 });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else {
      video.src = url;
    }
  }

  function rotate() {
    window.clearTimeout(qrTimer);
    if (!running) return;
    var sitting = running.sitting;
    var seconds = pkg.rotate;
    var now = Date.now() / 1000;
    var window_ = Math.floor(now / seconds);
    checkInToken(sitting, window_).then(function (token) {
      if (!running || running.sitting !== sitting) return;
      drawQr(el("run-qr"), pkg.check_in_url.replace("{code}", token));
      var wait = ((window_ + 1) * seconds - Date.now() / 1000) * 1000;
      qrTimer = window.setTimeout(rotate, Math.max(200, wait + 50));
    });
  }

  function showRoster() {
    var list = el("run-roster");
    list.replaceChildren();
    running.sitting.roster.forEach(function (member) {
      var li = document.createElement("li");
      li.dataset.member = member.id;
      li.dataset.mark = running.marks[member.id] || (running.scanned[member.id] ? "scanned" : "");
      var name = document.createElement("span");
      name.className = "terminal-name";
      name.textContent = member.name + " " + member.phone;
      li.appendChild(name);
      ["present", "late", "absent"].forEach(function (status) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button" + (running.marks[member.id] === status ? " primary" : "");
        button.dataset.status = status;
        button.setAttribute("aria-pressed", running.marks[member.id] === status ? "true" : "false");
        button.textContent = T.statuses[status];
        button.addEventListener("click", function () {
          mark(member, status);
        });
        li.appendChild(button);
      });
      list.appendChild(li);
    });
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = hex(b);
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function keep(fields) {
    var record = Object.assign(
      { uuid: uuid(), terminal: terminalId, at: Date.now(), state: "waiting" },
      fields
    );
    return sign(record)
      .then(putRecord)
      .then(showRecords)
      .then(function () {
        sync();
        return record;
      });
  }

  function mark(member, status) {
    var sitting = running.sitting;
    running.marks[member.id] = status;
    showRoster();
    keep({ kind: "roll_call", sitting: sitting.id, member: member.id, status: status, name: member.name });
  }

  // --- Personal codes through the camera (jsQR) ----------------------------------------------------

  var PERSONAL = /^P(\d+)\.(\d+)\.[A-Za-z0-9_-]{20}$/;

  function personal(text) {
    var result = el("run-scan-result");
    var match = PERSONAL.exec(text || "");
    if (!match || match[1] !== String(running.sitting.id)) {
      result.dataset.state = "bad";
      result.textContent = T.personal_bad;
      return;
    }
    var member = running.sitting.roster.find(function (m) {
      return String(m.id) === match[2];
    });
    if (!member) {
      result.dataset.state = "unknown";
      result.textContent = T.personal_unknown;
      return;
    }
    if (running.scanned[member.id]) {
      if (result.dataset.member === String(member.id)) return; // still held up to the camera
      result.dataset.member = member.id;
      result.dataset.state = "again";
      result.textContent = fmt(T.personal_again, { name: member.name });
      return;
    }
    running.scanned[member.id] = true;
    keep({ kind: "personal_code", sitting: running.sitting.id, code: text, member: "", name: member.name }).then(
      function () {
        result.dataset.state = "ok";
        result.dataset.member = member.id;
        result.textContent = fmt(T.personal_ok, { name: member.name });
        showRoster();
      }
    );
  }

  function startCamera() {
    var video = el("run-camera");
    var result = el("run-scan-result");
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        camera = stream;
        video.srcObject = stream;
        video.hidden = false;
        el("run-scan-stop").hidden = false;
        result.dataset.state = "scanning";
        result.textContent = T.scanning;
        return video.play().then(scanFrame);
      })
      .catch(function (error) {
        result.dataset.state = "failed";
        result.textContent = fmt(T.camera_failed, { why: error.message });
      });
  }

  var canvas = document.createElement("canvas");

  function scanFrame() {
    if (!camera || !running) return;
    var video = el("run-camera");
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(video, 0, 0);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      if (found && found.data) {
        personal(found.data);
        if (el("run-scan-result").dataset.state === "ok") {
          window.setTimeout(scanFrame, 1500);
          return;
        }
      }
    }
    window.setTimeout(scanFrame, 250);
  }

  function stopCamera() {
    if (camera) camera.getTracks().forEach(function (track) {
      track.stop();
    });
    camera = null;
    el("run-camera").hidden = true;
    el("run-scan-stop").hidden = true;
  }

  // --- Sending ------------------------------------------------------------------------------------

  var sending = false;

  function sync() {
    if (sending || !navigator.onLine || !secret) return Promise.resolve();
    return allRecords().then(function (rows) {
      var waiting = rows.filter(function (r) {
        return r.state === "waiting";
      });
      if (!waiting.length) return;
      sending = true;
      var body = {
        records: waiting.map(function (r) {
          var out = {};
          FIELDS.concat(["sig"]).forEach(function (f) {
            if (r[f] !== undefined && r[f] !== "") out[f] = r[f];
          });
          return out;
        }),
      };
      return post(root.dataset.syncUrl, body)
        .then(function (response) {
          if (response.type === "opaqueredirect" || response.status === 403 || response.status === 404) {
            say(T.login);
            return null;
          }
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (data) {
          if (!data) return;
          var byUuid = {};
          data.results.forEach(function (r) {
            byUuid[r.uuid] = r;
          });
          var accepted = 0;
          var refused = 0;
          return Promise.all(
            waiting.map(function (r) {
              var answer = byUuid[r.uuid];
              if (!answer) return null;
              r.state = answer.result;
              r.reason = answer.reason;
              r.message = answer.message;
              if (answer.result === "accepted") accepted++;
              else refused++;
              return putRecord(r);
            })
          ).then(function () {
            say(fmt(T.sent, { accepted: accepted, refused: refused }));
          });
        })
        .catch(function () {
          say(T.send_failed);
        })
        .then(function () {
          sending = false;
          return showRecords();
        });
    });
  }

  // --- Start ---------------------------------------------------------------------------------------

  function wire() {
    el("terminal-claim").addEventListener("click", claim);
    el("terminal-fetch").addEventListener("click", download);
    el("terminal-free").addEventListener("click", free);
    el("terminal-sync").addEventListener("click", sync);
    el("run-back").addEventListener("click", stop);
    el("run-scan").addEventListener("click", startCamera);
    el("run-scan-stop").addEventListener("click", stopCamera);
    el("run-lesson").addEventListener("change", function () {
      play(el("run-lesson").value);
    });
    el("run-fullscreen").addEventListener("click", function () {
      var video = el("run-video");
      if (video.requestFullscreen) video.requestFullscreen();
    });
    el("run-video").addEventListener("ended", function () {
      var badge = el("run-played");
      badge.dataset.state = "ended";
      badge.textContent = T.played;
    });
    window.addEventListener("online", function () {
      showLink();
      sync();
    });
    window.addEventListener("offline", showLink);
    window.setInterval(sync, 20000);
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(root.dataset.swUrl, { scope: root.dataset.scope }).catch(function () {});
  }

  wire();
  showLink();
  openDb()
    .then(function (opened) {
      db = opened;
      return Promise.all([metaGet("secret"), metaGet("package")]);
    })
    .then(function (values) {
      secret = values[0] || null;
      pkg = values[1] || null;
      showPanels();
      showSittings();
      showSpace();
      return showRecords();
    })
    .then(sync)
    .catch(function (error) {
      say(String(error));
    });
})();
