// The site terminal's service worker (served by rounds.views.terminal at /site-terminals/sw.js,
// so its scope covers the terminal pages). The terminal page fills the cache "lunxun-terminal-v1"
// when it downloads the coming sessions: the lessons' HLS files, the page and its scripts.
// Pages: the network first, the kept copy when the link is down. Everything else the page asks
// for: the kept copy first (lessons play from the computer's disk), the network otherwise.
// The package, claim and sync addresses are never answered from the cache.
"use strict";
var CACHE = "lunxun-terminal-v1";
var LIVE = /\/(package|sync|claim)\/$/;

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin === self.location.origin && LIVE.test(url.pathname)) return;
  if (request.mode === "navigate") {
    event.respondWith(
      fetch(request).then(
        function (response) {
          if (response.ok && !response.redirected) {
            var copy = response.clone();
            caches.open(CACHE).then(function (cache) {
              cache.match(url.pathname).then(function (kept) {
                if (kept) cache.put(url.pathname, copy);
              });
            });
          }
          return response;
        },
        function () {
          return caches.match(url.pathname).then(function (kept) {
            return kept || Response.error();
          });
        }
      )
    );
    return;
  }
  event.respondWith(
    caches.match(request, { ignoreSearch: true }).then(function (kept) {
      return kept || fetch(request);
    })
  );
});
