// Hushdrop service worker: turns decrypted bytes from the page into a normal browser download.
//
// It owns exactly one thing: answering a fetch of its own download URLs
// (<scope>__hushdrop__/download/<id>) with a ReadableStream that the page feeds over a
// MessageChannel. Every other request is left alone: no caching, no rewriting, no fetch() of its
// own. Nothing is stored; a download id is forgotten as soon as its URL is fetched once.
//
// Page <-> worker messages (over the download's MessagePort):
//   worker -> page  {type: "registered"}   the id is known; the page may navigate to the URL
//   worker -> page  {type: "started"}      the browser fetched the URL: the download began
//   worker -> page  {type: "pull"}         room for one more chunk (pull-based backpressure)
//   worker -> page  {type: "cancel"}       the user cancelled the download in the browser
//   page -> worker  {type: "data", chunk}  one Uint8Array (transferred, never copied)
//   page -> worker  {type: "close"}        everything arrived and verified
//   page -> worker  {type: "error", message}  failed: error the stream so the browser marks the
//                                             download failed instead of saving a truncated file

const DOWNLOAD_PATH = "__hushdrop__/download/";
// How much the stream may queue inside the worker before it stops asking the page for more.
// The page only hands over a chunk per "pull", so this bounds the worker's memory.
const HIGH_WATER_BYTES = 2 * 1024 * 1024;
// A registered download whose URL is never fetched is forgotten after this long.
const REGISTRATION_TTL_MS = 60_000;
// How often a running download checks that the page feeding it still exists.
const WATCHDOG_MS = 3_000;

const pending = new Map();

self.addEventListener("install", (event) => {
  // A new version has no state worth waiting for: take over at once.
  self.skipWaiting();
  // Every request but a download goes straight to the network, without starting this worker or
  // passing through its fetch handler (static routing; Chromium): the page loads as fast as it
  // would with no worker at all. Elsewhere the fetch handler below lets those requests through.
  if (event.addRoutes && typeof URLPattern === "function") {
    const warn = (error) => console.warn("Hushdrop: no static routes:", error);
    try {
      // The downloads' path taken literally (a URLPattern gives meaning to :*?+(){}), then any id.
      const path = new URL(DOWNLOAD_PATH, self.registration.scope).pathname;
      const downloads = new URLPattern({ pathname: `${path.replace(/[\\:*?+(){}]/g, "\\$&")}*` });
      const rule = { condition: { not: { urlPattern: downloads } }, source: "network" };
      event.waitUntil(Promise.resolve(event.addRoutes(rule)).catch(warn));
    } catch (error) {
      warn(error);
    }
  }
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

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
    return; // not ours: the browser handles it exactly as without a service worker
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
