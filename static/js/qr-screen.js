// The site PC's check-in screen: replace the QR code just before it expires.
(function () {
  "use strict";
  var screen = document.getElementById("qr-screen");
  if (!screen) return;
  var box = document.getElementById("qr-code");
  var count = document.getElementById("qr-checked-in");
  var url = screen.dataset.codeUrl;

  function schedule(seconds) {
    window.setTimeout(refresh, Math.max(500, seconds * 1000 + 100));
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        box.innerHTML = data.svg;
        box.dataset.url = data.url;
        count.textContent = data.checked_in;
        schedule(data.expires_in);
      })
      .catch(function () {
        schedule(3);
      });
  }

  schedule(parseFloat(screen.dataset.expiresIn || "1"));
})();
