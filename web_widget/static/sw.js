// The app shell only: pages' scripts, styles and icons, for opening the app from a home screen. Chat data,
// API answers, media and sessions are never cached (they always go to the network).
// Named here plainly; the server writes each file's content-hashed address in their place, so a new build is a
// new worker (and a new cache). Only what /app itself loads, so installing fetches nothing the page did not.
const SHELL = "billi-shell-v2";
const FILES = ["/static/app.css", "/static/app.js", "/static/vendor/socket.io.min.js", "/static/icons/icon-192.png",
               "/manifest.webmanifest"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  // other caches, and this one's files of an earlier build (their hashed names are no longer listed), go
  const stale = (c) => c.keys().then((reqs) => Promise.all(reqs.filter((r) => !FILES.includes(new URL(r.url).pathname))
    .map((r) => c.delete(r))));
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => caches.open(SHELL)).then(stale).then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (FILES.includes(url.pathname)) {
    // the shell: the network (the HTTP cache keeps hashed files a year), this cache when offline
    e.respondWith(fetch(e.request).then((res) => {
      const copy = res.clone();
      caches.open(SHELL).then((c) => c.put(url.pathname, copy));
      return res;
    }).catch(() => caches.match(url.pathname)));
  }
  // everything else (/api, /socket.io, /media, pages with a person's data): the browser's own fetch
});
