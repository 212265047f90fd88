// Hushdrop service worker. It owns three things, each in its own part below:
//
// 1. Downloads: turns decrypted bytes from the page into a normal browser download.
// 2. The app offline: a versioned copy of the app shell (the page, PyScript, Pyodide, our Python)
//    in Cache Storage, so that after one visit the page starts, and is ready to send, with the
//    network off; new versions are taken at the next load, never while a transfer runs.
// 3. The share target: files shared into the installed app (manifest.webmanifest's share_target)
//    are kept until the page picks them up.
//
// Downloads: answering a fetch of its own download URLs (<scope>__hushdrop__/download/<id>) with
// a ReadableStream that the page feeds over a MessageChannel. Nothing is stored; a download id is
// forgotten as soon as its URL is fetched once.
//
// Page <-> worker messages (over the download's MessagePort):
//   worker -> page  {type: "registered"}   the id is known; the page may navigate to the URL
//   worker -> page  {type: "started"}      the browser fetched the URL: the download began
//   worker -> page  {type: "pull"}         room for one more chunk (pull-based backpressure)
//   worker -> page  {type: "cancel"}       the user cancelled the download in the browser
//   page -> worker  {type: "data", chunk}  one Uint8Array (copied, not transferred: a copy is
//                                          allocated by this worker's heap, which collects it
//                                          soon after the stream consumed it)
//   page -> worker  {type: "close"}        everything arrived and verified
//   page -> worker  {type: "error", message}  failed: error the stream so the browser marks the
//                                             download failed instead of saving a truncated file

// ------------------------------------------------------------------------- 1. downloads

const DOWNLOAD_PATH = "__hushdrop__/download/";
// How much the stream may queue inside the worker before it stops asking the page for more.
// The page only hands over a chunk per "pull", so this bounds the worker's memory.
const HIGH_WATER_BYTES = 2 * 1024 * 1024;
// A registered download whose URL is never fetched is forgotten after this long.
const REGISTRATION_TTL_MS = 60_000;
// How often a running download checks that the page feeding it still exists.
const WATCHDOG_MS = 3_000;

const pending = new Map();

self.addEventListener("message", (event) => {
  const message = event.data;
  if (!message || message.type !== "hushdrop-download") {
    return; // keep-alive pings land here too: receiving them is all they are for
  }
  const port = event.ports[0];
  if (!port || typeof message.id !== "string" || !/^[0-9a-f]{32}$/.test(message.id)) {
    return;
  }
  const timer = setTimeout(() => pending.delete(message.id), REGISTRATION_TTL_MS);
  const clientId = event.source && event.source.id;
  pending.set(message.id, { port, headers: message.headers, timer, clientId });
  port.postMessage({ type: "registered" });
});

self.addEventListener("fetch", (event) => {
  const prefix = new URL(DOWNLOAD_PATH, self.registration.scope).href;
  const url = event.request.url;
  if (!url.startsWith(prefix)) {
    return; // not a download: see the app's own fetch handler below
  }
  const id = url.slice(prefix.length).split(/[?#]/)[0];
  const entry = pending.get(id);
  pending.delete(id);
  if (!entry) {
    event.respondWith(
      new Response("This download link has expired. Downloads can only be started from the page.", {
        status: 404,
        headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
      }),
    );
    return;
  }
  clearTimeout(entry.timer);
  event.respondWith(streamResponse(entry));
});

function streamResponse({ port, headers, clientId }) {
  let pullDone = null;
  let finished = false;
  let watchdog = null;
  const finish = () => {
    finished = true;
    clearInterval(watchdog);
    if (pullDone) {
      pullDone();
      pullDone = null;
    }
  };
  const stream = new ReadableStream(
    {
      start(controller) {
        // A closed page sends no error: without this the browser would show the download as
        // in progress until it gave up on the worker. Fail it instead, as a truncated download.
        if (clientId) {
          let misses = 0;
          watchdog = setInterval(async () => {
            const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
            // Two checks in a row, so a page that is only busy or being restored never counts.
            misses = pages.some((page) => page.id === clientId) ? 0 : misses + 1;
            if (misses >= 2 && !finished) {
              controller.error(new Error("The Hushdrop page was closed during the download."));
              finish();
              port.close();
            }
          }, WATCHDOG_MS);
        }
        port.onmessage = (event) => {
          const message = event.data;
          if (finished) {
            return;
          }
          if (message.type === "data") {
            controller.enqueue(message.chunk);
            if (pullDone) {
              pullDone();
              pullDone = null;
            }
          } else if (message.type === "close") {
            controller.close();
            finish();
            port.close();
          } else if (message.type === "error") {
            controller.error(new Error(message.message || "The transfer failed."));
            finish();
            port.close();
          }
        };
      },
      pull() {
        // Resolved when the page's next chunk arrives; the stream calls pull() again only then,
        // and only while it holds less than HIGH_WATER_BYTES.
        return new Promise((resolve) => {
          pullDone = resolve;
          port.postMessage({ type: "pull" });
        });
      },
      cancel() {
        finish();
        port.postMessage({ type: "cancel" });
        port.close();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }),
  );
  port.postMessage({ type: "started" });
  return new Response(stream, { status: 200, headers: responseHeaders(headers) });
}

function responseHeaders(requested) {
  const headers = new Headers({
    "Content-Type": "application/octet-stream",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    // Should a browser ever render instead of saving, the bytes get no privileges at all.
    "Content-Security-Policy": "default-src 'none'; sandbox",
  });
  for (const name of ["Content-Type", "Content-Disposition", "Content-Length"]) {
    const value = requested && requested[name];
    if (typeof value === "string" && value && !/[\r\n]/.test(value)) {
      headers.set(name, value);
    }
  }
  return headers;
}

// ------------------------------------------------------------------------- 2. the app offline

// Filled in by build_site.py: the version of the site (its fingerprint, sw.js left out) and the
// files a start of the page needs, each with whether its bytes never change at that address
// (hash-named, or under vendor/) or it is revalidated at every load (the page, config.json).
const SITE_VERSION = "development";
const APP_SHELL = [];
const CACHE_PREFIX = "hushdrop-app-";
const APP_CACHE = CACHE_PREFIX + SITE_VERSION;
// Held (shared) by every page while it runs a transfer (app.js): a new version of this worker
// takes over only when nobody holds it, so no running transfer loses its worker mid-way.
const TRANSFER_LOCK = "hushdrop-transfer";
// How long a page's address may take on the network before the copy in the cache is used: a
// network that lets requests hang (a captive portal, a dead Wi-Fi) must not hang the app.
const NETWORK_PATIENCE_MS = 4_000;

self.addEventListener("install", (event) => {
  event.waitUntil(keepAppShell().then(takeOverIfIdle));
});

self.addEventListener("activate", (event) => {
  // The first version controls the page that installed it at once, so downloads work there.
  event.waitUntil(Promise.all([deleteOldVersions(), self.clients.claim()]));
});

self.addEventListener("message", (event) => {
  // A page asks a waiting new version to take over (at its load, and when its transfer ends).
  // (Said to the active worker, it is a no-op.)
  if (event.data && event.data.type === "hushdrop-update") {
    event.waitUntil(takeOverIfIdle());
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.href.startsWith(scoped(DOWNLOAD_PATH))) {
    return; // another origin (the network's), or a download (answered above)
  }
  if (request.method === "POST" && url.pathname === new URL(scoped(SHARE_PATH)).pathname) {
    event.respondWith(receiveShare(request));
  } else if (request.method === "GET" && shellEntry(url)) {
    event.respondWith(fromAppShell(request, shellEntry(url)));
  }
});

function scoped(path) {
  return new URL(path, self.registration.scope).href;
}

// The shell entry answering `url`: the page itself under any query (e.g. ?shared=...), and the
// other files exactly.
function shellEntry(url) {
  const page = new URL(scoped("./"));
  const path = url.pathname === `${page.pathname}index.html` ? page.pathname : url.pathname;
  const wanted = path === page.pathname ? page.href : url.origin + path + url.search;
  return APP_SHELL.find((entry) => scoped(entry.path) === wanted) || null;
}

async function keepAppShell() {
  const cache = await caches.open(APP_CACHE);
  // Unchanging files may come from the HTTP cache (the visit that installs this worker has just
  // fetched them); the others must be this deployment's.
  const results = await Promise.allSettled(
    APP_SHELL.map((entry) =>
      cache.add(new Request(scoped(entry.path), { cache: entry.immutable ? "default" : "no-cache" })),
    ),
  );
  const failure = results.find((result) => result.status === "rejected");
  // An update takes over only complete (the version it replaces works offline); installing
  // again is tried at the next load. The first version installs anyway, as downloads need it,
  // and keeps the unchanging files it missed as the page fetches them (fromAppShell).
  if (failure && self.registration.active) throw failure.reason;
}

async function fromAppShell(request, entry) {
  const cache = await caches.open(APP_CACHE);
  const key = scoped(entry.path);
  if (entry.immutable) {
    const kept = await cache.match(key);
    if (kept) return kept;
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  }
  // The page and config.json: this deployment's, from the network while it answers; the copy of
  // the version this worker belongs to otherwise.
  const network = fetch(request);
  let timer;
  const patience = new Promise((resolve) => {
    timer = setTimeout(resolve, NETWORK_PATIENCE_MS);
  });
  try {
    const response = await Promise.race([network, patience]);
    // A server error (a proxy whose backend is down) is no better than no answer.
    if (response && response.status < 500) return response;
  } catch {
    // offline, or the server is gone: the kept copy below
  } finally {
    clearTimeout(timer);
  }
  const kept = await cache.match(key);
  return kept || network;
}

async function takeOverIfIdle() {
  if (await transferRunning()) {
    return; // a page takes it up again when its transfer ends (app.js)
  }
  await self.skipWaiting();
}

// Whether a page of this site runs a transfer. Without Web Locks no page can say so: a new
// version then waits for every page of the site to close, as browsers do by default.
async function transferRunning() {
  if (!self.navigator.locks) return true;
  return self.navigator.locks.request(
    TRANSFER_LOCK,
    { mode: "exclusive", ifAvailable: true },
    (lock) => lock === null,
  );
}

async function deleteOldVersions() {
  const names = await caches.keys();
  await Promise.all(
    names
      .filter((name) => name.startsWith(CACHE_PREFIX) && name !== APP_CACHE)
      .map((name) => caches.delete(name)),
  );
}

// ------------------------------------------------------------------------- 3. the share target

// manifest.webmanifest's share_target.action, relative to the scope.
const SHARE_PATH = "share";
// Where shared files wait for the page: one batch at a time, under <scope>__hushdrop__/shared/.
const SHARED_CACHE = "hushdrop-shared";
const SHARED_PATH = "__hushdrop__/shared/";

// The operating system's share sheet navigates to the share action with the files (and any
// text) as a multipart form. They are kept in Cache Storage (bodies on disk, not in this worker's memory,
// and safe if the browser stops the worker before the page starts), then the page is opened
// with ?shared=<batch>, and app.js adds them to the files to send.
async function receiveShare(request) {
  let form;
  try {
    form = await request.formData();
  } catch {
    return Response.redirect(scoped("./"), 303);
  }
  // A form whose files field is empty still sends one nameless, empty File: not a file shared.
  const files = form
    .getAll("files")
    .filter((value) => value instanceof File && (value.name !== "" || value.size > 0));
  // A shared text, link or page (title, text, url: as the share sheet fills them) goes into the
  // page's "Text to send", each part on its own line.
  const parts = ["title", "text", "url"].map((name) => form.get(name));
  const text = [...new Set(parts.filter((part) => typeof part === "string" && part.trim()))].join(
    "\n",
  );
  if (!files.length && !text) {
    return Response.redirect(scoped("./"), 303);
  }
  const batch = [...crypto.getRandomValues(new Uint8Array(8))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  await caches.delete(SHARED_CACHE); // an earlier share never picked up is dropped
  const cache = await caches.open(SHARED_CACHE);
  await Promise.all(
    files.map((file, index) =>
      cache.put(
        scoped(`${SHARED_PATH}${batch}/${index}`),
        new Response(file, {
          headers: {
            "Content-Type": file.type || "application/octet-stream",
            "X-Hushdrop-Name": encodeURIComponent(file.name || `shared-${index + 1}`),
            "X-Hushdrop-Modified": String(file.lastModified || Date.now()),
          },
        }),
      ),
    ),
  );
  if (text) {
    const headers = { "Content-Type": "text/plain; charset=utf-8" };
    await cache.put(scoped(`${SHARED_PATH}${batch}/text`), new Response(text, { headers }));
  }
  return Response.redirect(scoped(`./?shared=${batch}`), 303);
}
