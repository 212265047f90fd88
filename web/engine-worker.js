// The page's engine, in the worker PyScript starts for it (index.html's
// `<script type="py" worker name="engine">`, configured by pyscript.json): Pyodide runs the
// Hushdrop Python here (protocol, framing, crypto calls, the relay WebSocket, file reading and the
// download stream), so the page's main thread only keeps the interface, and what only it can do
// (RTCPeerConnection).
//
// PyScript imports this module in its worker (pyscript.json's js_modules.worker) before it runs
// engine.py, which starts the Python. This module owns: its own channel to the page (below); the
// `globalThis.hushdrop` interface the Python uses here (posting interface operations to the page,
// requests the page answers, the files' read-ahead, download streams, the bridge to a data
// channel on the page); and passing the page's commands to Python. engine.js is its other half,
// on the page.

import * as i18n from "./i18n.js";
import "./crypto-batch.js";

const MiB = 1024 * 1024;

// ------------------------------------------------------------------------- talking to the page

// Our messages go over a MessageChannel of their own, not the worker's global port: PyScript
// uses that one (its start, its errors, and every message posted to the worker goes to its
// `xworker.onmessage`). The page's half of the channel is posted once, now, before Python runs;
// engine.js listens for it from the moment PyScript creates the worker. Nothing is posted to the
// page's port while it travels (WebKitGTK loses messages sent to a port in transit): what the
// engine says before the page's first message (its "start" command) waits here.
const channel = new MessageChannel();
const page = channel.port1;
self.postMessage({ type: "hushdrop-engine" }, [channel.port2]);
let early = []; // [message, transfer] until the page spoke; then null

const pending = new Map(); // request id → {resolve, reject}
let nextRequest = 1;
let commandHandler = null; // Python's, once it started
const queued = []; // commands that came before it

function post(message, transfer = []) {
  if (operations.length && message.type !== "ui") flushOperations(); // in the order made
  if (early) early.push([message, transfer]);
  else page.postMessage(message, transfer);
}

// Warnings and errors show in the page's console, where whoever looks at the page looks; so do
// errors nobody caught.
for (const level of ["warn", "error"]) {
  console[level] = (...args) => post({ type: "log", level, text: args.map(String).join(" ") });
}
self.addEventListener("error", (event) => console.error(event.message));
self.addEventListener("unhandledrejection", (event) => console.error(String(event.reason)));

// Interface operations (JSON) for the page (views.js). Those Python makes in one step go over
// together once it yields, so the page applies them at once, as one change (a share link is
// never shown before the part it is in).
let operations = [];

function ui(operation) {
  if (!operations.length) queueMicrotask(flushOperations);
  operations.push(operation);
}

function flushOperations() {
  if (!operations.length) return;
  const batch = operations;
  operations = [];
  post({ type: "ui", operations: batch });
}

// Ask the page for something only it can do; resolves with its answer.
function request(kind, args = {}, transfer = []) {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    post({ type: "request", id, kind, args }, transfer);
  });
}

page.onmessage = (event) => {
  if (early) {
    for (const [message, transfer] of early) page.postMessage(message, transfer);
    early = null;
  }
  const message = event.data;
  if (message.type === "reply") {
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (!waiting) return;
    if (message.error !== undefined) waiting.reject(new Error(message.error));
    else waiting.resolve(message.value);
  } else if (message.type === "language") {
    i18n.useCatalog(message.code, message.messages);
  } else if (message.type === "pagehide") {
    // The page is going away: what listens for it here (the relay connection) says goodbye.
    self.dispatchEvent(new Event("pagehide"));
  } else if (message.type === "command") {
    if (message.files) offered = message.files;
    if (commandHandler) commandHandler(JSON.stringify(message.command));
    else queued.push(message);
  }
};

// ------------------------------------------------------------------------- the sender's files

// The files of the selection being sent (File objects from the page; reading them here keeps
// their bytes off the page's thread). Read in blocks of a few MiB, read ahead while Python
// encrypts: at most two blocks (16 MiB) per reader. A link for several receivers has a reader
// per receiver (each reads the files at its own pace), at most 10.
const READ_BLOCK = 8 * MiB;
let files = []; // those being sent
let offered = []; // those chosen when "Create link" was pressed: sent if Python starts
const readers = new Map(); // reader → [{index, start, end, promise, value}] in the order of use

// A failed read; its message is the browser's reason, which Python shows with the file's path.
class ReadError extends Error {
  constructor(reason) {
    super(reason);
    this.name = "ReadError";
  }
}

function readBlock(index, start) {
  const file = files[index];
  const end = Math.min(start + READ_BLOCK, file.size);
  const block = { index, start, end, value: undefined };
  block.promise = file
    .slice(start, end)
    .arrayBuffer()
    .then(
      (buffer) => {
        block.value = new Uint8Array(buffer);
        return block.value;
      },
      (error) => {
        throw new ReadError(error.name || String(error));
      },
    );
  block.promise.catch(() => {}); // reported when (if) the block is actually used
  return block;
}

// The block that follows `block` in sending order (skipping empty files), or null at the end.
function nextBlock(block) {
  let [index, start] = [block.index, block.end];
  while (index < files.length && start >= files[index].size) {
    index += 1;
    start = 0;
  }
  return index < files.length ? readBlock(index, start) : null;
}

// The block holding [offset, offset + length) of file `index`, with the next one read ahead.
function blockFor(index, offset, length, reader) {
  if (!readers.has(reader)) readers.set(reader, []);
  const blocks = readers.get(reader);
  const holds = (b) => b.index === index && b.start <= offset && offset + length <= b.end;
  while (blocks.length && !holds(blocks[0])) blocks.shift(); // passed (or off the plan)
  if (!blocks.length) {
    const start = offset - (offset % READ_BLOCK);
    const block = readBlock(index, start);
    if (!holds(block)) return null; // a range across blocks: never asked by the session
    blocks.push(block);
  }
  if (blocks.length === 1) {
    const next = nextBlock(blocks[0]);
    if (next) blocks.push(next);
  }
  return blocks[0];
}

function piece(block, offset, length) {
  return block.value.subarray(offset - block.start, offset - block.start + length);
}

// The requested bytes if their block is already in memory, else undefined (Python then awaits
// read()): bytes that are ready need no trip through the event loop.
function readNow(index, offset, length, reader = 0) {
  const block = blockFor(index, offset, length, reader);
  return block && block.value ? piece(block, offset, length) : undefined;
}

async function read(index, offset, length, reader = 0) {
  const block = blockFor(index, offset, length, reader);
  if (!block) {
    // Not on a block boundary (the session never asks this): read exactly what was asked.
    const single = readBlock(index, offset);
    await single.promise;
    return single.value.subarray(0, length);
  }
  await block.promise;
  return piece(block, offset, length);
}

// ------------------------------------------------------------------------- Python buffers

// Python hands over bytes as a buffer (a PyProxy) in Pyodide's memory. A WebSocket copies what
// it is given when send() is called, so it can read the buffer in place: no copy first.
function sendBytes(target, buffer) {
  const borrowed = buffer.getBuffer("u8");
  try {
    target.send(borrowed.data);
  } finally {
    borrowed.release();
  }
}

// A Uint8Array of its own with the Python buffer's bytes: one plain copy.
function ownedBytes(buffer) {
  const borrowed = buffer.getBuffer("u8");
  try {
    return borrowed.data.slice();
  } finally {
    borrowed.release();
  }
}

// ------------------------------------------------------------------------- downloads
//
// Every download target takes the Python buffer itself: write(buffer) copies its bytes out
// before it returns, then answers true (handed over) or a promise to await (the target's
// backpressure). Python never makes a JavaScript copy of its own first.

// Chunks below this size are copied into a buffer of their own; larger ones go through a
// reused staging buffer of their exact size (see StreamDownload.hand).
const STAGED_MIN = 256 * 1024;
const STAGING_SLOTS = 2; // a transfer's chunks come in one or two sizes (whole 16 KiB chunks)

// One download streamed through the service worker, over the MessagePort the page opened to it.
// A chunk is only handed over after the service worker asked for one ("pull"): write() does so
// at once when a request is pending, else once the next comes. So at most one chunk is in
// flight, and memory stays bounded end to end.
//
// A chunk is copied (structured clone) to the service worker, not transferred. A transferred
// buffer is foreign to the service worker's JavaScript heap: its collector only counts it as
// external memory, and the consumed chunks piled up to 240 MB there before they were collected
// (bench/page.py, 2 GiB). A cloned buffer is allocated by that heap, whose young generation
// collects it soon. On this side the bytes are staged in a reused buffer, so handing a chunk
// over allocates nothing here.
class StreamDownload {
  constructor({ port, id, credit, cancelled }) {
    this.port = port;
    this.id = id;
    this.credit = credit; // "pull"s that came while the page opened the download
    this.failure = cancelled ? new Error(i18n.t("error.download-cancelled")) : null;
    this.wake = null;
    this.ended = false;
    this.staging = []; // reused buffers, most recently used first
    port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "pull") {
      this.credit += 1;
    } else if (message.type === "cancel") {
      this.failure = new Error(i18n.t("error.download-cancelled"));
      this.finish();
    }
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
  }

  // The Python buffer's bytes in a buffer of exactly their size (the clone copies a view's whole
  // buffer): a staging buffer reused for chunks of the same size, else a new one.
  stage(buffer) {
    const borrowed = buffer.getBuffer("u8");
    try {
      const bytes = borrowed.data;
      if (bytes.byteLength < STAGED_MIN) return bytes.slice();
      let staged = this.staging.find((b) => b.byteLength === bytes.byteLength);
      if (!staged) staged = new Uint8Array(bytes.byteLength);
      this.staging = [staged, ...this.staging.filter((b) => b !== staged)];
      this.staging.length = Math.min(this.staging.length, STAGING_SLOTS);
      staged.set(bytes);
      return staged;
    } finally {
      borrowed.release();
    }
  }

  hand(chunk) {
    this.credit -= 1;
    this.port.postMessage({ type: "data", chunk });
  }

  write(buffer) {
    if (this.failure) throw this.failure;
    if (!buffer.length) return true;
    const chunk = this.stage(buffer);
    if (this.credit > 0) {
      this.hand(chunk);
      return true;
    }
    return this.handLater(chunk);
  }

  // Python awaits this before its next write, so the staged chunk is not reused meanwhile.
  async handLater(chunk) {
    while (!this.failure && this.credit === 0) {
      await new Promise((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.failure) throw this.failure;
    this.hand(chunk);
  }

  async close() {
    if (this.failure) throw this.failure;
    this.port.postMessage({ type: "close" });
    this.finish();
  }

  async abort(message) {
    if (!this.failure) {
      this.failure = new Error(message);
      this.port.postMessage({ type: "error", message: String(message) });
    }
    this.finish();
  }

  finish() {
    if (this.ended) return;
    this.ended = true;
    this.staging = [];
    post({ type: "download-ended", id: this.id }); // the page stops keeping the worker awake
  }
}

async function openStreamDownload(headers) {
  const download = await request("stream-download", { headers: JSON.parse(headers) });
  return new StreamDownload(download);
}

// Without a service worker: the (verified) bytes are collected in a Blob, which the page saves
// at the end. Python only offers it for transfers small enough to hold in memory.
function openMemoryDownload(name, type) {
  let parts = [];
  return {
    write: (buffer) => {
      if (buffer.length) parts.push(ownedBytes(buffer));
      return true;
    },
    close: async () => {
      const blob = new Blob(parts, { type });
      parts = [];
      await request("save-blob", { blob, name });
    },
    abort: async () => {
      parts = [];
    },
  };
}

// The File System Access alternative (Chromium): the page asks the user for the file; writes go
// to a temporary file that only replaces the target on close(), and abort() discards it.
async function openSaveAs(name) {
  const handle = await request("save-as", { name });
  if (!handle) return undefined; // the user closed the dialog
  const writable = await handle.createWritable();
  let failed = false;
  return {
    // Every write is awaited: the writable's own backpressure.
    write: (buffer) => (buffer.length ? writable.write(ownedBytes(buffer)) : true),
    close: () => writable.close(),
    abort: (message) => {
      if (failed) return Promise.resolve();
      failed = true;
      return writable.abort(message).catch(() => {});
    },
  };
}

// ------------------------------------------------------------------------- direct connections

// The page's end of one RTCPeerConnection and its data channel (direct.js), seen from here: the
// channel's messages arrive as transferred ArrayBuffers; what Python sends goes over as pieces,
// and the page acknowledges each with the channel's bufferedAmount, so Python can hold back.
class DirectBridge {
  constructor(iceServers) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.dc = "connecting"; // the data channel's readyState, as the page last said
    this.pc = "new"; // the connection's connectionState
    this.maxMessageSize = 0;
    this.error = ""; // why the page could not send a piece (the exception's name)
    this.sent = 0; // bytes posted to the page
    this.through = 0; // ... of which the page has handed this many to the channel
    this.buffered = 0; // the channel's bufferedAmount then
    this.onData = null;
    this.onChange = null; // state or acknowledgement: Python looks again
    this.calls = new Map();
    this.nextCall = 1;
    this.port.onmessage = (event) => this.onMessage(event.data);
    post({ type: "direct-open", iceServers: JSON.parse(iceServers), port: channel.port2 }, [
      channel.port2,
    ]);
  }

  onMessage(message) {
    if (message instanceof ArrayBuffer) {
      this.onData?.(message);
      return;
    }
    if (message.type === "reply") {
      const resolve = this.calls.get(message.id);
      this.calls.delete(message.id);
      resolve?.(message.value);
      return;
    }
    if (message.type === "state") {
      this.dc = message.dc;
      this.pc = message.pc;
      this.maxMessageSize = message.maxMessageSize || 0;
      if (message.error) this.error = String(message.error);
    } else if (message.type === "ack") {
      this.through = message.through;
      this.buffered = message.buffered;
    }
    this.onChange?.();
  }

  call(kind, args = {}) {
    const id = this.nextCall++;
    return new Promise((resolve) => {
      this.calls.set(id, resolve);
      this.port.postMessage({ type: kind, id, ...args });
    });
  }

  // The description to send the peer (ICE gathered), as JSON.
  offer() {
    return this.call("offer");
  }

  // The peer's offer, answer or refusal: {answer: JSON or null, failed: bool}.
  signal(payload) {
    return this.call("signal", { payload });
  }

  // What the channel holds, as far as is known here: its bufferedAmount at the last
  // acknowledgement, plus what was posted since.
  get bufferedAmount() {
    return this.buffered + (this.sent - this.through);
  }

  // One piece: its flag byte, then `length` bytes of the Python buffer from `start`.
  sendPiece(flag, buffer, start, length) {
    const borrowed = buffer.getBuffer("u8");
    let piece;
    try {
      piece = new Uint8Array(1 + length);
      piece[0] = flag;
      piece.set(borrowed.data.subarray(start, start + length), 1);
    } finally {
      borrowed.release();
    }
    this.sent += piece.byteLength;
    this.port.postMessage(piece.buffer, [piece.buffer]);
  }

  close() {
    this.port.postMessage({ type: "close" });
    this.dc = "closed";
  }
}

// ------------------------------------------------------------------------- the interface

globalThis.hushdrop = {
  ui,
  // A request the page answers (JSON arguments); resolves with its answer.
  ask: (kind, args) => request(kind, JSON.parse(args)),
  // Python is ready for commands: those that came meanwhile are given now.
  listen(handler) {
    commandHandler = handler;
    for (const message of queued.splice(0)) handler(JSON.stringify(message.command));
  },
  ready: (info) => post({ type: "ready", info }),
  engineFailed: (detail) => post({ type: "failed", detail }),
  format: (key, args) => i18n.t(key, args ? JSON.parse(args) : {}),
  // The files chosen with the last send command are the ones sent now.
  takeFiles() {
    files = offered;
    readers.clear();
  },
  read,
  readNow,
  dropReader: (reader) => readers.delete(reader),
  sendBytes,
  openStreamDownload,
  openMemoryDownload,
  openSaveAs,
  openDirect: (iceServers) => new DirectBridge(iceServers),
};
