// The page's half of the engine: starts the engine worker (engine-worker.js: Pyodide and the
// Hushdrop Python) and connects it to the page.
//
// This module owns: the worker; the page's commands to it (send, receive, open a link, the
// person's clicks in a view); its interface operations (views.js applies them); and the requests
// only the page can answer — a download stream through the service worker (its MessagePort goes
// to the engine), a file the person picks, a finished in-memory download, a direct connection
// (direct.js). The page's main thread never sees a transfer's bytes, except those of a direct
// connection, which it passes between the data channel and the engine without copying.

import * as i18n from "./i18n.js";
import * as views from "./views.js";
import * as direct from "./direct.js";

const CODE_FRAGMENT = /^#\d{6}[-_ ]/; // a fragment meant as a code, not an in-page anchor

const worker = new Worker(new URL("./engine-worker.js", import.meta.url), { type: "module" });
const $ = (id) => document.getElementById(id);

function command(command, files) {
  worker.postMessage({ type: "command", command, files });
}

views.onEvent((event) => command(event));

// The engine formats what Python tells a peer (a local error) in the page's language.
function sendLanguage(code) {
  worker.postMessage({ type: "language", code, messages: i18n.catalog() });
}
i18n.onChange(sendLanguage);
if (i18n.catalog()) sendLanguage(i18n.language());

// Closing the tab says goodbye to the relay (PROTOCOL.md §8.1) from the engine's connection.
window.addEventListener("pagehide", () => worker.postMessage({ type: "pagehide" }));

// What the engine gets when the person starts something (app.js calls these).
const handlers = {
  send(password) {
    const page = globalThis.hushdrop;
    const field = (id) => $(id)?.value ?? "";
    command(
      {
        kind: "send",
        password,
        text: field("send-text"),
        expiry: field("send-expiry"),
        receivers: field("send-receivers"),
        selection: page.hasSelection() ? page.snapshot() : null,
      },
      page.frozenFiles(),
    );
  },
  receive(text) {
    command({ kind: "receive", text });
  },
  // The page was opened with (or navigated to) `#<room>-<secret>`.
  link(href) {
    if (!CODE_FRAGMENT.test(location.hash)) return;
    // The secret leaves the address bar and the history: the code works only once anyway.
    history.replaceState(null, "", location.pathname + location.search);
    command({ kind: "link", href });
  },
};

const REQUESTS = {
  streaming: () => globalThis.hushdrop.streamingAvailable(),
  "stream-download": async ({ headers }) => {
    const download = await globalThis.hushdrop.openStreamDownload(headers);
    return { value: download, transfer: [download.port] };
  },
  "save-as": ({ name }) => globalThis.hushdrop.pickSaveFile(name),
  "save-blob": ({ blob, name }) => globalThis.hushdrop.saveBlob(blob, name),
};

async function answer({ id, kind, args }) {
  try {
    const result = await REQUESTS[kind](args);
    const { value, transfer } =
      result && result.transfer ? result : { value: result ?? null, transfer: [] };
    worker.postMessage({ type: "reply", id, value }, transfer);
  } catch (error) {
    worker.postMessage({ type: "reply", id, error: error.message || String(error) });
  }
}

worker.addEventListener("message", (event) => {
  const message = event.data;
  switch (message.type) {
    case "ui":
      for (const operation of message.operations) views.apply(operation);
      break;
    case "request":
      answer(message);
      break;
    case "download-ended":
      globalThis.hushdrop.downloadEnded(message.id);
      break;
    case "direct-open":
      direct.open(message.iceServers, message.port);
      break;
    case "ready":
      globalThis.hushdrop.ready(handlers);
      if (location.hash) handlers.link(location.href);
      break;
    case "failed":
      globalThis.hushdrop.engineFailed(message.detail);
      break;
    case "log":
      console[message.level === "error" ? "error" : "warn"](message.text);
      break;
  }
});

worker.addEventListener("error", (event) => {
  globalThis.hushdrop.engineFailed(event.message || "the engine worker failed");
});

// The page's location, for links and the relay's address (the worker's is its script's).
command({
  kind: "start",
  origin: location.origin,
  pathname: location.pathname,
  capabilities: {
    saveAs: typeof window.showSaveFilePicker === "function",
    direct: typeof window.RTCPeerConnection === "function",
  },
});
