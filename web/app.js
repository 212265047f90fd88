// Hushdrop page bootstrap: everything that works before (and beside) Python.
//
// This module owns: the WebAssembly check and the "starting" state; the file selection (pickers,
// drag and drop with folder traversal, the list the user sees); the service worker and opening
// the download streams the Python receiver writes to; and small conveniences (copy buttons, the
// leave-page warning). Every protocol decision is made in Python (hushdrop.page drives
// hushdrop.protocol), which runs in the engine worker (PyScript starts it, engine.js connects to
// it, engine-worker.js is its side): this file keeps the page usable, and never touches a
// transfer's bytes.
//
// engine.js uses it through `globalThis.hushdrop` (see the bottom of this file). Every text it
// shows is a message of the page's language catalog (i18n.js).

import * as i18n from "./i18n.js";

const ENGINE_SLOW_MS = 20_000;
const ENGINE_TIMEOUT_MS = 180_000;
const SW_READY_TIMEOUT_MS = 10_000;
const DOWNLOAD_START_TIMEOUT_MS = 20_000;
const KEEPALIVE_MS = 10_000;
const LIST_LIMIT = 200; // rows shown in the selection list; the rest is summarised

const $ = (id) => document.getElementById(id);

const { t } = i18n;

function showAlert(key, args) {
  i18n.setText($("alert"), key, args);
}

// A transfer this tab was running when it was reloaded (or navigated away): Python keeps its
// description in sessionStorage while it runs, and removes it when it ends.
const INTERRUPTED_KEY = "hushdrop-running";

function sayIfInterrupted() {
  const running = sessionStorage.getItem(INTERRUPTED_KEY);
  if (running === null) return;
  sessionStorage.removeItem(INTERRUPTED_KEY);
  let what; // the transfer's heading as a message, {"$message": key, "args": {...}}
  try {
    what = JSON.parse(running);
  } catch {
    return; // written by an older version of the page: nothing sure to say
  }
  showAlert("alert.interrupted", { what });
}

// ------------------------------------------------------------------------- engine state

const engine = { ready: false, handlers: null, failed: false, platformFailed: false };

function setEngineText(key, failed = false) {
  const box = $("engine");
  i18n.setText($("engine-text"), key);
  box.classList.toggle("failed", failed);
}

function checkPlatform() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    engine.failed = true;
    setEngineText("engine.cannot-start", true);
    showAlert("alert.no-wasm");
    return false;
  }
  if (!globalThis.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle) {
    engine.failed = engine.platformFailed = true;
    setEngineText("engine.cannot-start", true);
    const command = "hushdrop serve --tls-cert FILE --tls-key FILE"; // i18n: name
    showAlert("alert.insecure", { command });
    return false;
  }
  return true;
}

function updateButtons() {
  const ready = engine.ready && !engine.failed;
  // Nothing chosen and no text, nothing to send: the button says so by being off.
  home.createLink.disabled =
    !ready || !(globalThis.hushdrop.hasSelection() || globalThis.hushdrop.hasText());
  home.receive.disabled = !ready;
}

function watchEngineStart() {
  setTimeout(() => {
    if (!engine.ready && !engine.failed) {
      setEngineText("engine.starting-slow");
    }
  }, ENGINE_SLOW_MS);
  setTimeout(() => {
    if (!engine.ready && !engine.failed) {
      engine.failed = true;
      setEngineText("engine.did-not-start", true);
      showAlert("alert.engine-timeout");
    }
  }, ENGINE_TIMEOUT_MS);
}

// ------------------------------------------------------------------------- the selection

class Selection {
  constructor() {
    this.files = []; // {path, file}, in the order they will be sent
    this.dirs = []; // directory paths, including empty ones
    this.frozen = null; // the list being sent (see snapshot())
  }

  get size() {
    return this.files.reduce((sum, entry) => sum + entry.file.size, 0);
  }

  topName(path) {
    return path.split("/")[0];
  }

  // Add what one pick or drop produced. Top-level names already taken get " (2)", " (3)"… so two
  // picks of different "report.pdf" files never collide on the receiving side.
  addBatch(files, dirs) {
    const tops = [...this.files.map((e) => e.path), ...this.dirs].map((p) => this.topName(p));
    // Compared case-insensitively, as the receiver's file system may be.
    const taken = new Set(tops.map((name) => name.toLowerCase()));
    const renames = new Map();
    const rename = (path) => {
      const top = this.topName(path);
      if (!renames.has(top)) {
        let name = top;
        if (taken.has(top.toLowerCase())) {
          const dot = top.lastIndexOf(".");
          const isFile = !path.includes("/") && dot > 0;
          const stem = isFile ? top.slice(0, dot) : top;
          const ext = isFile ? top.slice(dot) : "";
          for (let i = 2; taken.has(name.toLowerCase()); i++) {
            name = `${stem} (${i})${ext}`;
          }
        }
        renames.set(top, name);
      }
      return renames.get(top) + path.slice(top.length);
    };
    const newDirs = dirs.map(rename);
    const newFiles = files.map(({ path, file }) => ({ path: rename(path), file }));
    for (const name of renames.values()) {
      taken.add(name.toLowerCase());
    }
    this.dirs.push(...newDirs);
    this.files.push(...newFiles);
    render();
  }

  removeTop(name) {
    this.files = this.files.filter((e) => this.topName(e.path) !== name);
    this.dirs = this.dirs.filter((d) => this.topName(d) !== name);
    render();
  }

  clear() {
    this.files = [];
    this.dirs = [];
    render();
  }

  // Top-level items as the user thinks of them: each file, and each folder with its totals.
  groups() {
    const groups = new Map();
    for (const dir of this.dirs) {
      const top = this.topName(dir);
      if (!groups.has(top)) groups.set(top, { name: top, folder: true, count: 0, size: 0 });
    }
    for (const { path, file } of this.files) {
      const top = this.topName(path);
      const folder = path.includes("/");
      if (!groups.has(top)) groups.set(top, { name: top, folder, count: 0, size: 0 });
      const group = groups.get(top);
      group.count += 1;
      group.size += file.size;
    }
    return [...groups.values()];
  }

  // Freeze what is sent, so later picks do not change a running transfer; return its manifest
  // data as JSON (one crossing for any number of files).
  snapshot() {
    this.frozen = this.files.slice();
    return JSON.stringify({
      files: this.frozen.map(({ path, file }) => ({
        path,
        size: file.size,
        mtime: Math.floor((file.lastModified || 0) / 1000),
      })),
      dirs: this.dirs.slice(),
    });
  }
}

const selection = new Selection();

// The home screen's elements, found once: Python takes the home screen out of the document during
// a transfer, and getElementById does not see detached elements.
const home = {};

function render() {
  if (home.createLink) updateButtons();
  const box = home.selection;
  const list = home.list;
  const groups = selection.groups();
  box.hidden = groups.length === 0;
  list.replaceChildren();
  for (const group of groups.slice(0, LIST_LIMIT)) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = group.folder ? `${group.name}/` : group.name;
    name.title = group.name;
    const icon = document.createElement("span");
    icon.className = group.folder ? "icon icon-folder" : "icon icon-file";
    icon.setAttribute("aria-hidden", "true");
    const size = document.createElement("span");
    size.className = "file-size";
    // Messages kept on the elements: a change of language repaints them in place (focus stays).
    if (group.folder) {
      i18n.setText(size, "files.summary", { count: group.count, size: { $size: group.size } });
    } else {
      i18n.setText(size, "files.size", { size: { $size: group.size } });
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    i18n.setAttributes(remove, { "aria-label": "home.remove" }, { name: group.name });
    remove.addEventListener("click", () => {
      const index = [...list.querySelectorAll("button.remove")].indexOf(remove);
      selection.removeTop(group.name);
      focusAfterRemoval(index);
    });
    item.append(icon, name, size, remove);
    list.append(item);
  }
  if (groups.length > LIST_LIMIT) {
    const more = document.createElement("li");
    more.className = "more";
    i18n.setText(more, "files.more", { count: groups.length - LIST_LIMIT });
    list.append(more);
  }
  const count = selection.files.length;
  const emptyDirs = count === 0 && selection.dirs.length > 0;
  if (emptyDirs) {
    i18n.setText(home.summary, "files.empty-folders", { count: selection.dirs.length });
  } else {
    i18n.setText(home.summary, "files.summary", { count, size: { $size: selection.size } });
  }
}

// The removed row's button is gone: focus goes to the next row's (or the last), or to the file
// picker once the list is empty, never back to <body>.
function focusAfterRemoval(index) {
  const buttons = home.list.querySelectorAll("button.remove");
  const next = buttons[Math.min(index, buttons.length - 1)];
  (next || $("file-input")).focus();
}

function addPickedFiles(fileList, useRelativePaths) {
  const files = [];
  const dirs = new Set();
  for (const file of fileList) {
    const path = (useRelativePaths && file.webkitRelativePath) || file.name;
    files.push({ path, file });
    // The folder picker lists files only; their folders (and the top folder) are implied.
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  selection.addBatch(files, [...dirs].sort());
}

// Drag and drop: folders are walked with the (widely supported) FileSystemEntry API so relative
// paths and empty directories survive.
function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function entryFile(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function walkEntry(entry, path, files, dirs) {
  if (entry.isFile) {
    files.push({ path, file: await entryFile(entry) });
  } else if (entry.isDirectory) {
    dirs.push(path);
    const reader = entry.createReader();
    const children = [];
    // readEntries returns the directory in batches (about 100 entries) until an empty one.
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      children.push(...batch);
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) {
      await walkEntry(child, `${path}/${child.name}`, files, dirs);
    }
  }
}

async function addDropped(dataTransfer) {
  // Entries must be taken synchronously: the DataTransfer is emptied once the event returns.
  const items = [...(dataTransfer.items || [])].filter((item) => item.kind === "file");
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  const plainFiles = [...(dataTransfer.files || [])];
  if (!entries.length || entries.some((entry) => !entry)) {
    addPickedFiles(plainFiles, false);
    return;
  }
  const files = [];
  const dirs = [];
  try {
    for (const entry of entries) {
      await walkEntry(entry, entry.name, files, dirs);
    }
  } catch (error) {
    showAlert("alert.drop-failed", { reason: error.message || String(error) });
    return;
  }
  selection.addBatch(files, dirs);
}

function setUpSelection() {
  const fileInput = $("file-input");
  const folderInput = $("folder-input");
  fileInput.addEventListener("change", () => {
    addPickedFiles(fileInput.files, false);
    fileInput.value = "";
  });
  folderInput.addEventListener("change", () => {
    addPickedFiles(folderInput.files, true);
    folderInput.value = "";
  });
  $("clear-selection").addEventListener("click", () => {
    selection.clear();
    fileInput.focus(); // the Clear button itself is hidden now
  });

  const zone = $("drop-zone");
  let depth = 0;
  const onHome = () => Boolean(document.getElementById("home")?.isConnected);
  // The whole window accepts drops while the home screen shows, so a near miss never makes the
  // browser navigate away to the dropped file.
  window.addEventListener("dragenter", (event) => {
    if (!onHome()) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  window.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = onHome() ? "copy" : "none";
  });
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (onHome() && event.dataTransfer) addDropped(event.dataTransfer);
  });
}

// ------------------------------------------------------------------------- the installable app

// A new version of the site installs in the background (sw.js) and takes over only while no
// transfer runs in any tab: each page holds this Web Lock (shared) while its transfer runs, and
// the new worker checks it before it takes over. The page running now keeps its code; the next
// load is the new version's.
const TRANSFER_LOCK = "hushdrop-transfer"; // sw.js TRANSFER_LOCK
let transferLock = null; // {release, released}: held while this page's transfer runs

function holdTransferLock(busy) {
  if (!navigator.locks) return;
  if (busy && !transferLock) {
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    // Settles once the lock is given back (the worker asks for it only after that).
    const released = navigator.locks.request(TRANSFER_LOCK, { mode: "shared" }, () => held);
    transferLock = { release, released };
  } else if (!busy && transferLock) {
    const { release, released } = transferLock;
    transferLock = null;
    release();
    released.then(offerUpdate, offerUpdate);
  }
}

let registrationForUpdates = null;

// Tell a waiting new version that it may take over (it checks that no transfer runs).
function offerUpdate() {
  const waiting = registrationForUpdates && registrationForUpdates.waiting;
  if (waiting && !transferLock) waiting.postMessage({ type: "hushdrop-update" });
}

function watchForUpdates(registration) {
  registrationForUpdates = registration;
  offerUpdate(); // one that installed while a transfer ran, in this tab or another
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    if (!worker) return;
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed") offerUpdate();
    });
  });
}

// Files shared into the installed app (manifest.webmanifest's share_target): sw.js keeps them in
// Cache Storage and opens this page with ?shared=<batch>; here they join the files to send, and
// a shared text (or link) fills "Text to send".
const SHARED_CACHE = "hushdrop-shared"; // sw.js SHARED_CACHE

async function pickUpSharedFiles() {
  const params = new URLSearchParams(location.search);
  const batch = params.get("shared");
  if (batch === null) return;
  // The address goes back to the plain page at once: a reload must not pick them up again, and
  // links are made from this address.
  history.replaceState(history.state, "", `${location.pathname}${location.hash}`);
  if (!/^[0-9a-f]{16}$/.test(batch) || !("caches" in self)) return;
  try {
    const cache = await caches.open(SHARED_CACHE);
    const keys = (await cache.keys()).filter((request) =>
      new URL(request.url).pathname.includes(`/__hushdrop__/shared/${batch}/`),
    );
    const indexOf = (request) => Number(request.url.slice(request.url.lastIndexOf("/") + 1));
    const texts = keys.filter((request) => request.url.endsWith("/text"));
    const fileKeys = keys.filter((request) => Number.isInteger(indexOf(request)));
    fileKeys.sort((a, b) => indexOf(a) - indexOf(b));
    let text = "";
    for (const request of texts) text = await (await cache.match(request)).text();
    const files = [];
    for (const request of fileKeys) {
      const response = await cache.match(request);
      const name = decodeURIComponent(response.headers.get("X-Hushdrop-Name") || "shared");
      const modified = Number(response.headers.get("X-Hushdrop-Modified")) || Date.now();
      const type = response.headers.get("Content-Type") || "";
      files.push(new File([await response.blob()], name, { type, lastModified: modified }));
    }
    await caches.delete(SHARED_CACHE);
    if (!files.length && !text) {
      showAlert("alert.share-gone");
      return;
    }
    if (text && home.text) {
      home.text.value = text;
      home.text.dispatchEvent(new Event("input", { bubbles: true }));
    }
    if (files.length) addPickedFiles(files, false);
  } catch (error) {
    showAlert("alert.share-failed", { reason: error.message || String(error) });
  }
}

// ------------------------------------------------------------------------- downloads

let serviceWorker = null; // Promise<ServiceWorkerRegistration | null>

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) {
    serviceWorker = Promise.resolve(null);
    return;
  }
  serviceWorker = navigator.serviceWorker
    .register("sw.js", { scope: "./" })
    .then((registration) => {
      watchForUpdates(registration);
      return navigator.serviceWorker.ready;
    })
    .catch((error) => {
      console.warn("Hushdrop: no service worker, downloads cannot stream:", error);
      return null;
    });
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const activeDownloads = new Map(); // id → its frame
let keepAliveTimer = null;

function updateKeepAlive(registration) {
  // Browsers stop an idle service worker after about 30 s; messages count as activity, and a
  // worker that is streaming a download must stay up until the end.
  if (activeDownloads.size && !keepAliveTimer) {
    keepAliveTimer = setInterval(() => {
      registration.active?.postMessage({ type: "keepalive" });
    }, KEEPALIVE_MS);
  } else if (!activeDownloads.size && keepAliveTimer) {
    clearInterval(keepAliveTimer);
    keepAliveTimer = null;
  }
}

// A download streamed through the service worker: registered with it, started (a hidden frame
// navigates to its URL), then its MessagePort goes to the engine, which writes the chunks. The
// first "pull" (room for one chunk) came before, and is handed over with it.
async function openStreamDownload(headers) {
  const registration = await withTimeout(
    serviceWorker || Promise.resolve(null),
    SW_READY_TIMEOUT_MS,
    t("error.worker-did-not-start"),
  );
  if (!registration || !registration.active) {
    throw new Error(t("error.worker-blocked"));
  }
  const id = [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  const channel = new MessageChannel();
  const port = channel.port1;
  const signals = new Map();
  let credit = 0;
  let cancelled = false;
  port.onmessage = (event) => {
    const { type } = event.data;
    if (type === "pull") credit += 1;
    if (type === "cancel") cancelled = true;
    signals.get(type)?.();
  };
  const signal = (type) => new Promise((resolve) => signals.set(type, resolve));
  const registered = signal("registered");
  registration.active.postMessage({ type: "hushdrop-download", id, headers: headers }, [
    channel.port2,
  ]);
  await withTimeout(registered, SW_READY_TIMEOUT_MS, t("error.worker-no-answer"));
  const started = signal("started");
  // A hidden frame navigating to the URL makes it an ordinary download (Content-Disposition:
  // attachment); the page itself stays put.
  const iframe = document.createElement("iframe");
  iframe.hidden = true;
  iframe.title = t("download.frame");
  iframe.src = `__hushdrop__/download/${id}`;
  document.body.append(iframe);
  try {
    await withTimeout(started, DOWNLOAD_START_TIMEOUT_MS, t("error.download-not-started"));
    // The service worker's stream asks for its first chunk at once, and asks for no more until
    // it got one: after that first "pull" nothing is on its way, so the port moves to the
    // engine with no message in flight (WebKit loses messages sent to a port in transit).
    const pulled = signal("pull");
    if (!credit && !cancelled) {
      await withTimeout(pulled, SW_READY_TIMEOUT_MS, t("error.worker-no-answer"));
    }
  } catch (error) {
    port.postMessage({ type: "error", message: error.message });
    setTimeout(() => iframe.remove(), 60_000);
    throw error;
  }
  port.onmessage = null;
  activeDownloads.set(id, iframe);
  updateKeepAlive(registration);
  return { id, port, credit, cancelled };
}

// The engine finished writing download `id` (either way).
async function downloadEnded(id) {
  const iframe = activeDownloads.get(id);
  activeDownloads.delete(id);
  // The download lives on without its frame; removing it later just tidies the DOM.
  if (iframe) setTimeout(() => iframe.remove(), 60_000);
  const registration = await serviceWorker;
  if (registration) updateKeepAlive(registration);
}

// Whether downloads can stream through the service worker (not in some private windows).
async function streamingAvailable() {
  try {
    const ready = serviceWorker || Promise.resolve(null);
    const registration = await withTimeout(ready, SW_READY_TIMEOUT_MS, "no service worker");
    return Boolean(registration && registration.active);
  } catch {
    return false;
  }
}

// The fallback without a service worker: the engine collected the (verified) bytes in a Blob,
// saved now. Python only offers it for transfers small enough to hold in memory.
function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The File System Access alternative (Chromium): the user picks the file (only the page can
// ask); the engine writes it. Null if the user closed the dialog.
async function pickSaveFile(name) {
  try {
    return await window.showSaveFilePicker({ suggestedName: name });
  } catch (error) {
    if (error && error.name === "AbortError") return null;
    throw error;
  }
}

// ------------------------------------------------------------------------- page glue

function setUpCopyButtons() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    // A received text is shown with its invisible characters marked (receive.py); Copy takes
    // the exact text the sender sent.
    const text = source.hushdropExact ?? source.value ?? source.textContent;
    const label = button.dataset.i18n;
    try {
      await navigator.clipboard.writeText(text);
      i18n.setText(button, "copy.done");
    } catch {
      // Clipboard refused (permissions, insecure context): select it for a manual copy.
      source.focus();
      source.select?.();
      i18n.setText(button, "copy.manual");
    }
    setTimeout(() => i18n.setText(button, label), 2000);
  });
  // The whole received text copied by hand (select all, Ctrl+C; also Copy's fallback above) is
  // the exact text too, not the form with its invisible characters marked; a part of it is
  // copied as shown.
  document.addEventListener("copy", (event) => {
    const field = event.target;
    if (field?.hushdropExact === undefined || !event.clipboardData) return;
    if (field.selectionStart !== 0 || field.selectionEnd !== field.value.length) return;
    event.clipboardData.setData("text/plain", field.hushdropExact);
    event.preventDefault();
  });
}

function setUpShareButtons() {
  // The system share sheet (phones, some desktops); the button is hidden where there is none.
  if (typeof navigator.share === "function") document.documentElement.classList.add("can-share");
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-share]");
    if (!button) return;
    const source = document.getElementById(button.dataset.share);
    if (!source) return;
    try {
      await navigator.share({ title: "Hushdrop", url: source.value });
    } catch (error) {
      // AbortError: the person closed the share sheet. Anything else: Copy still works.
      if (error && error.name !== "AbortError") console.warn("Hushdrop: share failed:", error);
    }
  });
}

// ------------------------------------------------------------------------- announcements

const ANNOUNCE_INTERVAL_MS = 10_000;
const ANNOUNCE_STEP = 0.25;

function announce(text) {
  $("announcer").textContent = text;
}

// The progress line that Python repaints (≤ 4×/s) becomes the progress bar's aria-valuetext, and
// the polite live region says the percentage at each 25 % step, or after 10 s without news:
// often enough to follow, rarely enough not to drown out everything else.
function watchProgress() {
  const spoken = new WeakMap(); // progress bar → {at, step}
  const observer = new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      const target = mutation.target;
      const node = target.nodeType === Node.ELEMENT_NODE ? target : target.parentElement;
      const line = node?.closest?.("[data-part=progress-text]");
      if (!line) continue;
      const bar = line.parentElement.querySelector("progress");
      if (!bar) continue;
      const now = performance.now();
      const last = spoken.get(bar) || { at: now, step: 0 };
      if (!bar.hasAttribute("value")) {
        // A stream of unknown size (PROTOCOL §7.2): no percentage, the bytes so far instead.
        bar.setAttribute("aria-valuetext", line.textContent);
        if (now - last.at >= ANNOUNCE_INTERVAL_MS) {
          announce(line.textContent.split(" · ")[0]);
          spoken.set(bar, { at: now, step: 0 });
        } else if (!spoken.has(bar)) {
          spoken.set(bar, last);
        }
        continue;
      }
      const fraction = bar.max > 0 ? Math.min(1, bar.value / bar.max) : 0;
      const percent = Math.floor(fraction * 100);
      const shown = { $percent: percent / 100 };
      const valuetext = t("progress.valuetext", { percent: shown, line: line.textContent });
      bar.setAttribute("aria-valuetext", valuetext);
      const step = Math.floor(fraction / ANNOUNCE_STEP);
      if (fraction < 1 && (step > last.step || now - last.at >= ANNOUNCE_INTERVAL_MS)) {
        announce(t("announce.percent", { percent: shown })); // speed and time left: on the bar
        spoken.set(bar, { at: now, step });
      } else if (!spoken.has(bar)) {
        spoken.set(bar, last);
      }
    }
  });
  observer.observe($("view"), { subtree: true, childList: true, characterData: true });
}

// The "Text to send" box: a text that is only white space is no text.
function hasText() {
  return Boolean(home.text && home.text.value.trim());
}

function setUpForms() {
  // Forms never submit anywhere (the CSP forbids it too): Enter and buttons go to Python.
  document.addEventListener("submit", (event) => event.preventDefault(), true);
  $("send-form").addEventListener("submit", () => {
    if (!engine.ready) return;
    if (!selection.files.length && !selection.dirs.length && !hasText()) {
      showAlert("alert.no-files");
      return;
    }
    engine.handlers.send($("send-password").value);
  });
  home.text.addEventListener("input", () => {
    if (home.createLink) updateButtons();
  });
  $("receive-form").addEventListener("submit", () => {
    if (engine.ready) engine.handlers.receive($("receive-code").value);
  });
  window.addEventListener("hashchange", () => {
    if (engine.ready && location.hash.length > 1) engine.handlers.link(location.href);
  });
  window.addEventListener("beforeunload", (event) => {
    if (document.body.dataset.busy === "true") {
      event.preventDefault();
      event.returnValue = "";
    }
  });
}

// The language control in the header: every language by its own name; a choice applies at once
// (i18n.js repaints the page in place) and is remembered.
function setUpLanguage() {
  const select = $("language");
  for (const { code, name } of i18n.LANGUAGES) {
    const option = document.createElement("option");
    option.value = code;
    option.lang = code;
    option.textContent = name;
    select.append(option);
  }
  select.addEventListener("change", () => {
    i18n.useLanguage(select.value).catch((error) => {
      console.warn("Hushdrop: language not loaded:", error);
      select.value = i18n.language();
    });
  });
  i18n.onChange((code) => {
    select.value = code;
  });
  i18n.keep($("home")); // taken out of the document during a transfer
  i18n.start();
}

function start() {
  document.documentElement.classList.remove("no-js");
  setUpLanguage();
  home.selection = $("selection");
  home.list = $("selection-list");
  home.summary = $("selection-summary");
  home.createLink = $("create-link");
  home.text = $("send-text"); // kept: the home screen leaves the document during a transfer
  home.receive = $("receive-button");
  // Opened with a link (#<room>-<secret>): show only the loading state until Python takes over,
  // so the home screen's forms never flash up (Python shows them again if the link is bad).
  if (/^#\d{6}[-_ ]/.test(location.hash)) $("home").hidden = true;
  setUpSelection();
  setUpCopyButtons();
  setUpShareButtons();
  setUpForms();
  watchProgress();
  render();
  sayIfInterrupted();
  if (!checkPlatform()) return;
  registerServiceWorker();
  pickUpSharedFiles();
  watchEngineStart();
}

// The interface engine.js uses (for Python, in the engine worker).
globalThis.hushdrop = {
  // Python is up: `handlers` has send(password), receive(text) and link(href).
  ready(handlers) {
    engine.handlers = handlers;
    engine.ready = true;
    $("engine").classList.add("ready");
    setEngineText("engine.ready");
    updateButtons();
  },
  // Python could not start; `detail` is the error (a developer's words, not translated).
  engineFailed(detail) {
    engine.failed = true;
    updateButtons();
    if (engine.platformFailed) return; // its reason, already shown, is the one that helps
    setEngineText("engine.failed", true);
    showAlert("alert.engine-failed", { detail });
  },
  // The page's language for Python: messages are painted from keys and JSON arguments.
  i18n: {
    setText: (element, key, args) => i18n.setText(element, key, args ? JSON.parse(args) : {}),
    setAttributes: (element, attributes, args) =>
      i18n.setAttributes(element, JSON.parse(attributes), args ? JSON.parse(args) : {}),
    setTitle: (key, args) => i18n.setTitle(key, args ? JSON.parse(args) : {}),
    format: (key, args) => t(key, args ? JSON.parse(args) : {}),
    formatSize: i18n.formatSize,
    formatDuration: i18n.formatDuration,
    language: i18n.language,
    // As the language control does, without moving focus (tests switch the page this way).
    use: (code) => i18n.useLanguage(code),
  },
  announce,
  setBusy(busy) {
    document.body.dataset.busy = busy ? "true" : "false";
    holdTransferLock(busy);
  },
  snapshot: () => selection.snapshot(),
  clearSelection: () => selection.clear(),
  hasSelection: () => selection.files.length + selection.dirs.length > 0,
  hasText,
  // The files of the last snapshot, handed to the engine (which reads them).
  frozenFiles: () => (selection.frozen || []).map(({ file }) => file),
  streamingAvailable,
  openStreamDownload,
  downloadEnded,
  saveBlob,
  pickSaveFile,
};

start();
