// The field app's Service Worker. The server fills in CACHE and PRECACHE from the files on disk (with a
// content hash in the name), so a new deployment is a new cache and the old one is deleted.
// It caches only the shell (code, styles, catalogue, vocabulary): never an /api answer, which holds
// children's data and lives sealed in IndexedDB instead.
const CACHE = __CACHE_NAME__;
const PRECACHE = __PRECACHE__;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE.map((u) => new Request(u, {cache: 'reload'}))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith('homecoming-field-') && n !== CACHE)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin || !url.pathname.startsWith('/field/')) {
    return;  // the sync API goes to the network, always
  }
  // Shell first from the cache (it works offline); the network only for what the cache lacks.
  event.respondWith(caches.open(CACHE).then((cache) =>
    cache.match(event.request, {ignoreSearch: true}).then((hit) => hit || fetch(event.request))));
});
