// The page's half of the engine: connects the page to the engine worker, which PyScript starts
// (index.html's `<script type="py" worker name="engine">`: Pyodide, engine-worker.js and the
// Hushdrop Python, see engine.py).
//
// This module owns: the channel to the engine; the page's commands to it (send, receive, open a
// link, the person's clicks in a view); its interface operations (views.js applies them); and the
// requests only the page can answer — a download stream through the service worker (its
// MessagePort goes to the engine), a file the person picks, a finished in-memory download, a
// direct connection (direct.js). The page's main thread never sees a transfer's bytes, except
// those of a direct connection, which it passes between the data channel and the engine without
// copying. No Python runs on this thread.

import { hooks } from "./vendor/pyscript/CURRENT/core.js";
import * as i18n from "./i18n.js";
import * as views from "./views.js";
import * as direct from "./direct.js";

const CODE_FRAGMENT = /^#\d{6}[-_ ]/; // a fragment meant as a code, not an in-page anchor

const $ = (id) => document.getElementById(id);

// The engine's messages come over a MessagePort of their own, which engine-worker.js posts once
// as PyScript's worker imports it; the worker's own port is PyScript's. Until it came, what the
// page tells the engine waits here.
let engine = null;
const waiting = [];

function post(message, transfer = []) {
  if (engine) engine.postMessage(message, transfer);
  else waiting.push([message, transfer]);
}

function failed(detail) {
  globalThis.hushdrop.engineFailed(detail);
}

// PyScript creates the worker once its custom types are defined, which is after this module has
// run (they wait for PyScript's plugins to load): the hook is in place before the worker exists,
// so its first message cannot be missed. The page starts no other PyScript worker.
hooks.main.onWorker.add((_, worker) => {
  worker.addEventListener("message", (event) => {
    if (event.data?.type !== "hushdrop-engine" || engine) return;
    engine = event.ports[0];
    engine.onmessage = (message) => receive(message.data);
    for (const [message, transfer] of waiting.splice(0)) engine.postMessage(message, transfer);
  });
  // The worker did not start (its script failed, or PyScript could not start Pyodide in it).
  worker.addEventListener("error", (event) => failed(event.message || "the engine worker failed"));
  worker.onerror = (event) => failed(String(event.error?.message || event.error || event.message));
});
if (document.querySelector('script[type="py"][worker]')?.xworker) {
  console.error("Hushdrop: the engine worker started before the page could listen to it");
}

function command(command, files) {
  post({ type: "command", command, files });
}

views.onEvent((event) => command(event));

// The engine formats what Python tells a peer (a local error) in the page's language.
function sendLanguage(code) {
  post({ type: "language", code, messages: i18n.catalog() });
}
i18n.onChange(sendLanguage);
if (i18n.catalog()) sendLanguage(i18n.language());

// Closing the tab says goodbye to the relay (PROTOCOL.md §8.1) from the engine's connection.
window.addEventListener("pagehide", () => post({ type: "pagehide" }));

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
    post({ type: "reply", id, value }, transfer);
  } catch (error) {
    post({ type: "reply", id, error: error.message || String(error) });
  }
}

function receive(message) {
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
      failed(message.detail);
      break;
    case "log":
      console[message.level === "error" ? "error" : "warn"](message.text);
      break;
  }
}

// The page's location, for links, the relay's address and config.json (the worker's own is a blob:
// URL of PyScript's).
command({
  kind: "start",
  origin: location.origin,
  pathname: location.pathname,
  capabilities: {
    saveAs: typeof window.showSaveFilePicker === "function",
    direct: typeof window.RTCPeerConnection === "function",
  },
});
