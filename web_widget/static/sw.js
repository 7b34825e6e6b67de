// The app shell only: pages' scripts, styles and icons, for opening the app from a home screen. Chat data,
// API answers, media and sessions are never cached (they always go to the network).
const SHELL = "billi-shell-v1";
const FILES = ["/static/app.css", "/static/app.js", "/static/login.js", "/static/me.js",
               "/static/vendor/socket.io.min.js", "/static/icons/icon-192.png", "/static/icons/icon-512.png",
               "/manifest.webmanifest"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (FILES.includes(url.pathname)) {
    // the shell: network first (fresh code), the cache when offline
    e.respondWith(fetch(e.request).then((res) => {
      const copy = res.clone();
      caches.open(SHELL).then((c) => c.put(url.pathname, copy));
      return res;
    }).catch(() => caches.match(url.pathname)));
  }
  // everything else (/api, /socket.io, /media, pages with a person's data): the browser's own fetch
});
