// The bench's plain-JavaScript reference client (bench/README.md, "Reference client").
//
// It does the data phase of a Hushdrop transfer the way a careful plain-JavaScript page would,
// on the same path as the real page: the file read in 8 MiB File.slice() blocks, SHA-256 of the
// file (sha256.js), Cobblestone-256 (PROTOCOL.md §7: HKDF-Expand-SHA-512, AES-256-GCM in 16 KiB
// chunks) through WebCrypto with many calls in flight, the relay's real rendezvous (§3) and
// framing (DATA messages of 1 MiB, SEALED control messages with PADMÉ padding, §6), credit-based
// flow control (ACCEPT, CREDIT, COMPLETE), and on the receiving side the site's own service worker
// (sw.js) streaming the download. What it leaves out is the key exchange: both sides derive the
// §5.3 key schedule from a test ISK the bench puts in the URL fragment (never sent anywhere).
// Everything runs on the page's main thread, as Hushdrop's engine does today.
//
// Driven by bench/page.py over the DevTools protocol: referenceSend() / referenceJoin(room) /
// referenceDownload(); `globalThis.reference` holds the state the bench polls. Never shipped.

"use strict";

const subtle = crypto.subtle;
const MiB = 1024 * 1024;
const MSG_SEALED = 0x10;
const MSG_DATA = 0x20;
const KIND_MANIFEST = 0x01;
const KIND_ACCEPT = 0x02;
const KIND_CREDIT = 0x04;
const KIND_COMPLETE = 0x05;
const KIND_CANCEL = 0x06;
const DATA_FRAME_SIZE = MiB;
const INITIAL_CREDIT = 16 * MiB;
const CREDIT_BATCH = 4 * MiB;
const HIGH_WATER = INITIAL_CREDIT + CREDIT_BATCH + 2 * DATA_FRAME_SIZE; // as transport/browser.py
const CHUNK = 16384;
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
const HEADER = 24 + 32; // salt, commitment
const DIGEST = 32;
const READ_BLOCK = 8 * MiB; // as app.js
const HASH_STEP = MiB; // hashed in steps, so no task of the page is one long hash
const IN_FLIGHT = 128; // WebCrypto calls started and not yet collected (Hushdrop: 64 per batch)
const encoder = new TextEncoder();

const reference = {
  state: "loading",
  error: null,
  room: null,
  size: null,
  bytes: 0,
  sha256MiBs: null,
};
globalThis.reference = reference;

function fail(error) {
  if (!reference.error) {
    reference.error = String(error && error.stack ? error.stack : error);
    reference.state = "failed";
    console.error("reference client:", error);
  }
}

// ------------------------------------------------------------------------- small helpers

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function u64(value) {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(value / 2 ** 32));
  view.setUint32(4, value >>> 0);
  return out;
}

function readU64(bytes, at) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  return new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// PADMÉ (PROTOCOL.md §7.1), exact for lengths below 2^53.
function padme(length) {
  if (length < 2) return length;
  const exponent = length.toString(2).length - 1;
  const sizeBits = exponent.toString(2).length;
  const step = 2 ** (exponent - sizeBits);
  return Math.ceil(length / step) * step;
}

function sealedLength(inner) {
  return Math.ceil(padme(Math.max(inner, 1)) / 256) * 256;
}

// Lets the browser run its other tasks (input, rendering, WebSocket events) once per MiB, so no
// task of the transfer grows long: awaiting promises that already settled never yields.
// scheduler.yield() where there is one; a MessageChannel round trip has no timer clamping.
const yieldChannel = new MessageChannel();
const yieldWaiters = [];
yieldChannel.port1.onmessage = () => yieldWaiters.shift()();
function yieldToBrowser() {
  if (globalThis.scheduler?.yield) return scheduler.yield();
  return new Promise((resolve) => {
    yieldWaiters.push(resolve);
    yieldChannel.port2.postMessage(null);
  });
}

// ------------------------------------------------------------------------- keys (§5.3, §7)

async function hkdfSha256(ikm, salt, label, length) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const info = encoder.encode(label);
  const params = { name: "HKDF", hash: "SHA-256", salt: encoder.encode(salt), info };
  return new Uint8Array(await subtle.deriveBits(params, key, length * 8));
}

async function aesKey(raw, usage) {
  return subtle.importKey("raw", raw, "AES-GCM", false, usage);
}

// The §5.3 key schedule from the test ISK in the URL fragment (#isk=<128 hex digits>).
async function sessionKeys() {
  const match = /isk=([0-9a-f]{128})/.exec(location.hash);
  if (!match) throw new Error("no test key in the URL fragment");
  const isk = fromHex(match[1]);
  const salt = "hushdrop/1 key schedule";
  const derive = (label) => hkdfSha256(isk, salt, label, 32);
  return {
    s2r: await derive("hushdrop/1 control sender->receiver"),
    r2s: await derive("hushdrop/1 control receiver->sender"),
    data: await derive("hushdrop/1 data"),
  };
}

// HKDF-Expand-SHA-512 (RFC 5869 §2.3) with `prk` as the PRK: what Cobblestone-256 uses.
async function hkdfExpandSha512(prk, info, length) {
  const hmac = { name: "HMAC", hash: "SHA-512" };
  const key = await subtle.importKey("raw", prk, hmac, false, ["sign"]);
  let block = new Uint8Array(0);
  const out = [];
  for (let i = 1; out.length * 64 < length; i++) {
    block = new Uint8Array(await subtle.sign("HMAC", key, concat(block, info, new Uint8Array([i]))));
    out.push(block);
  }
  return concat(...out).subarray(0, length);
}

// Cobblestone-256 for file 0 at offset 0: {key, baseNonce, commitment} (PROTOCOL.md §7).
async function fileKeys(dataKey, salt) {
  const context = concat(encoder.encode("hushdrop/1 file"), u64(0), u64(0));
  const info = concat(
    encoder.encode("c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM"),
    new Uint8Array([0]),
    salt,
    context,
  );
  const okm = await hkdfExpandSha512(dataKey, info, 76);
  return {
    key: await aesKey(okm.slice(0, 32), ["encrypt", "decrypt"]),
    baseNonce: okm.slice(32, 44),
    commitment: okm.slice(44, 76),
  };
}

function chunkNonce(base, j) {
  const nonce = base.slice();
  nonce[11] ^= j & 0xff;
  nonce[10] ^= (j >>> 8) & 0xff;
  nonce[9] ^= (j >>> 16) & 0xff;
  nonce[8] ^= (j >>> 24) & 0xff;
  nonce[7] ^= Math.floor(j / 2 ** 32) & 0xff;
  return nonce;
}

// ------------------------------------------------------------------------- sealed messages (§6)

class SealedChannel {
  constructor(sendKey, receiveKey) {
    this.sendKey = sendKey;
    this.receiveKey = receiveKey;
    this.sent = 0;
    this.received = 0;
  }

  static async create(sendRaw, receiveRaw) {
    return new SealedChannel(
      await aesKey(sendRaw, ["encrypt"]),
      await aesKey(receiveRaw, ["decrypt"]),
    );
  }

  nonce(counter) {
    return concat(new Uint8Array(4), u64(counter));
  }

  async seal(kind, body) {
    const inner = new Uint8Array(sealedLength(5 + body.length));
    inner[0] = kind;
    new DataView(inner.buffer).setUint32(1, body.length);
    inner.set(body, 5);
    const params = { name: "AES-GCM", iv: this.nonce(this.sent++), additionalData: new Uint8Array([MSG_SEALED]) };
    return concat(new Uint8Array([MSG_SEALED]), new Uint8Array(await subtle.encrypt(params, this.sendKey, inner)));
  }

  async open(message) {
    const params = { name: "AES-GCM", iv: this.nonce(this.received++), additionalData: new Uint8Array([MSG_SEALED]) };
    const inner = new Uint8Array(await subtle.decrypt(params, this.receiveKey, message.subarray(1)));
    const length = new DataView(inner.buffer).getUint32(1);
    return { kind: inner[0], body: inner.subarray(5, 5 + length) };
  }
}

// ------------------------------------------------------------------------- relay (§3)

// A relay connection: rendezvous as JSON text, then binary messages to `onBinary`.
function connectRelay(request, onBinary) {
  const url = new URL("/v1/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let paired = false;
  let onCreated = null;
  const created = new Promise((resolve) => (onCreated = resolve));
  let onPaired = null;
  const pairedPromise = new Promise((resolve) => (onPaired = resolve));
  ws.onopen = () => ws.send(JSON.stringify(request));
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      onBinary(new Uint8Array(event.data));
      return;
    }
    const notice = JSON.parse(event.data);
    if (reference.state === "done") return; // the peer leaving after COMPLETE
    if (notice.op === "created") onCreated(notice.room);
    else if (notice.op === "paired") {
      paired = true;
      onPaired();
    } else fail(new Error(`relay: ${event.data}`));
  };
  ws.onclose = (event) => {
    if (reference.state !== "done") fail(new Error(`relay connection closed (${event.code}), paired ${paired}`));
  };
  ws.onerror = () => fail(new Error("relay connection failed"));
  return { ws, created, paired: pairedPromise };
}

// ------------------------------------------------------------------------- sending

// The plaintext of file 0 is its bytes, its SHA-256 and the stream padding (§7, §7.1).
function plaintextLength(size) {
  return padme(size + DIGEST);
}

async function referenceSend() {
  const file = document.getElementById("file").files[0];
  if (!file) throw new Error("no file chosen");
  const keys = await sessionKeys();
  const control = await SealedChannel.create(keys.s2r, keys.r2s);
  const flow = { credit: 0, wake: null, complete: false };
  const onBinary = (message) => {
    if (message[0] !== MSG_SEALED) return fail(new Error(`unexpected message type ${message[0]}`));
    // Opened in arrival order: the counter is per message, and WebCrypto keeps call order.
    control.open(message).then(({ kind, body }) => {
      if (kind === KIND_ACCEPT) flow.credit += readU64(body, 0);
      else if (kind === KIND_CREDIT) {
        flow.credit += readU64(body, 0);
        reference.bytes = readU64(body, 8);
      } else if (kind === KIND_COMPLETE) {
        flow.complete = true;
        reference.state = "done";
        relay.ws.close();
      } else if (kind === KIND_CANCEL) fail(new Error("cancelled by the receiver"));
      if (flow.wake) flow.wake();
    }, fail);
  };
  const relay = connectRelay({ op: "create" }, onBinary);
  reference.room = await relay.created;
  reference.state = "waiting";
  relay.paired
    .then(async () => {
      const manifest = {
        version: 1,
        files: [{ path: file.name, size: file.size, mode: 0o644, mtime: Math.floor(file.lastModified / 1000) }],
        dirs: [],
      };
      relay.ws.send(await control.seal(KIND_MANIFEST, encoder.encode(JSON.stringify(manifest))));
      reference.state = "offered";
      await sendStream(relay.ws, file, keys.data, flow);
    })
    .catch(fail);
  return reference.room;
}

// One DATA message at a time is built in `frame` (0x20 || 1 MiB); send() copies it.
class Framer {
  constructor(ws, flow) {
    this.ws = ws;
    this.flow = flow;
    this.frame = new Uint8Array(1 + DATA_FRAME_SIZE);
    this.frame[0] = MSG_DATA;
    this.fill = 0;
    this.sent = 0;
  }

  async append(bytes) {
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(DATA_FRAME_SIZE - this.fill, bytes.length - at);
      this.frame.set(bytes.subarray(at, at + take), 1 + this.fill);
      this.fill += take;
      at += take;
      if (this.fill === DATA_FRAME_SIZE) await this.flush();
    }
  }

  async flush() {
    if (!this.fill) return;
    const flow = this.flow;
    while (this.sent + this.fill > flow.credit) {
      if (reference.error) throw new Error("stopped");
      await new Promise((resolve) => (flow.wake = resolve));
      flow.wake = null;
    }
    while (this.ws.bufferedAmount > HIGH_WATER) await new Promise((r) => setTimeout(r, 10));
    this.ws.send(this.fill === DATA_FRAME_SIZE ? this.frame : this.frame.subarray(0, 1 + this.fill));
    this.sent += this.fill;
    this.fill = 0;
  }
}

async function sendStream(ws, file, dataKey, flow) {
  const size = file.size;
  const total = plaintextLength(size);
  const chunks = Math.floor(total / CHUNK) + 1; // every full chunk, then a shorter last one
  const salt = crypto.getRandomValues(new Uint8Array(24));
  const fk = await fileKeys(dataKey, salt);
  const framer = new Framer(ws, flow);
  await framer.append(concat(salt, fk.commitment));

  // File blocks, the one in use and the next read ahead (as app.js does).
  const read = (start) =>
    file.slice(start, Math.min(start + READ_BLOCK, size)).arrayBuffer().then((b) => new Uint8Array(b));
  let blockStart = 0;
  let block = size ? read(0) : Promise.resolve(new Uint8Array(0));
  let nextBlock = size > READ_BLOCK ? read(READ_BLOCK) : null;
  let bytes = await block;
  const hash = new Sha256();
  let hashed = 0;
  let hashSeconds = 0;
  let tail = null; // the plaintext past the file's last full chunk: rest of file, digest, padding
  let tailStart = 0;

  const pending = [];
  const started = performance.now();
  for (let j = 0; j < chunks; j++) {
    const start = j * CHUNK;
    const end = Math.min(start + CHUNK, total);
    let plain;
    if (start < size && start >= blockStart + bytes.length) {
      blockStart += bytes.length;
      bytes = await nextBlock;
      nextBlock = blockStart + READ_BLOCK < size ? read(blockStart + READ_BLOCK) : null;
    }
    if (end <= size) {
      plain = bytes.subarray(start - blockStart, end - blockStart);
      // Hash ahead in 1 MiB steps, so each step is one short task between the encryptions.
      if (start >= hashed) {
        const stop = Math.min(hashed + HASH_STEP, blockStart + bytes.length);
        const t = performance.now();
        hash.update(bytes.subarray(hashed - blockStart, stop - blockStart));
        hashSeconds += (performance.now() - t) / 1000;
        hashed = stop;
        await yieldToBrowser();
      }
    } else {
      if (!tail) {
        // Everything of the file not yet hashed is in `bytes` (blocks end on chunk boundaries).
        if (hashed < size) hash.update(bytes.subarray(hashed - blockStart, size - blockStart));
        hashed = size;
        tail = new Uint8Array(total - start);
        tail.set(bytes.subarray(start - blockStart, size - blockStart));
        tail.set(hash.digest(), size - start);
        tailStart = start;
      }
      plain = tail.subarray(start - tailStart, end - tailStart);
    }
    pending.push(subtle.encrypt({ name: "AES-GCM", iv: chunkNonce(fk.baseNonce, j) }, fk.key, plain));
    if (pending.length >= IN_FLIGHT) await framer.append(new Uint8Array(await pending.shift()));
  }
  while (pending.length) await framer.append(new Uint8Array(await pending.shift()));
  await framer.flush();
  reference.sha256MiBs = hashSeconds ? size / MiB / hashSeconds : null;
  reference.sendSeconds = (performance.now() - started) / 1000;
  reference.state = "sent";
}

// ------------------------------------------------------------------------- receiving

async function referenceJoin(room) {
  const keys = await sessionKeys();
  const control = await SealedChannel.create(keys.r2s, keys.s2r);
  const receiver = new Receiver(keys.data, control);
  const relay = connectRelay({ op: "join", room }, (message) => receiver.onMessage(message));
  receiver.ws = relay.ws;
  globalThis.referenceReceiver = receiver;
  reference.state = "joining";
  await relay.paired;
  reference.state = "paired";
}

// The bench's "Download" click: start the service-worker download, then grant credit.
async function referenceDownload() {
  const receiver = globalThis.referenceReceiver;
  const { path, size } = receiver.manifest.files[0];
  const name = path.split("/").pop();
  receiver.download = await openStreamDownload({
    "Content-Type": "application/octet-stream",
    "Content-Disposition": `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\%]/g, "_")}"`,
    "Content-Length": String(size),
  });
  receiver.ws.send(await receiver.control.seal(KIND_ACCEPT, u64(INITIAL_CREDIT)));
  reference.state = "receiving";
  receiver.run().catch((error) => {
    fail(error);
    receiver.download.abort(String(error));
  });
}

class Receiver {
  constructor(dataKey, control) {
    this.dataKey = dataKey;
    this.control = control;
    this.manifest = null;
    this.ws = null;
    this.download = null;
    this.stream = []; // DATA payloads not yet cut into chunks
    this.wake = null;
    this.ended = false;
  }

  onMessage(message) {
    if (message[0] === MSG_DATA) {
      this.stream.push(message.subarray(1));
      if (this.wake) this.wake();
    } else if (message[0] === MSG_SEALED) {
      this.control.open(message).then(({ kind, body }) => {
        if (kind === KIND_MANIFEST) {
          this.manifest = JSON.parse(new TextDecoder().decode(body));
          reference.size = this.manifest.files[0].size;
          reference.state = "offered";
        } else fail(new Error(`unexpected sealed kind ${kind}`));
      }, fail);
    } else fail(new Error(`unexpected message type ${message[0]}`));
  }

  // Exactly `length` bytes of the stream, as one view (a copy only when they span messages).
  async take(length) {
    const parts = [];
    let need = length;
    while (need) {
      while (!this.stream.length) {
        if (reference.error) throw new Error("stopped");
        await new Promise((resolve) => (this.wake = resolve));
        this.wake = null;
      }
      const head = this.stream[0];
      if (head.length <= need) {
        parts.push(this.stream.shift());
        need -= head.length;
      } else {
        parts.push(head.subarray(0, need));
        this.stream[0] = head.subarray(need);
        need = 0;
      }
    }
    return parts.length === 1 ? parts[0] : concat(...parts);
  }

  async run() {
    const size = this.manifest.files[0].size;
    const total = plaintextLength(size);
    const chunks = Math.floor(total / CHUNK) + 1;
    const header = await this.take(HEADER);
    const fk = await fileKeys(this.dataKey, header.slice(0, 24));
    if (!equal(fk.commitment, header.subarray(24))) throw new Error("commitment mismatch");
    const hash = new Sha256();
    const digest = new Uint8Array(DIGEST);
    const out = new Output(this.download);
    let consumed = HEADER; // DATA payload bytes taken from the stream and written
    let credited = 0;
    let plainAt = 0;
    const pending = [];
    const collect = async () => {
      const plain = new Uint8Array(await pending.shift());
      consumed += plain.length + TAG;
      // File bytes go to the download and the hash; then the digest; then zero padding.
      const fileEnd = Math.max(0, Math.min(plain.length, size - plainAt));
      if (fileEnd) {
        hash.update(plain.subarray(0, fileEnd));
        await out.write(plain.subarray(0, fileEnd));
      }
      for (let i = fileEnd; i < plain.length; i++) {
        const p = plainAt + i;
        if (p < size + DIGEST) digest[p - size] = plain[i];
        else if (plain[i] !== 0) throw new Error("non-zero stream padding");
      }
      plainAt += plain.length;
      reference.bytes = Math.min(plainAt, size);
      if (consumed - credited >= CREDIT_BATCH) {
        const body = concat(u64(consumed - credited), u64(reference.bytes));
        credited = consumed;
        this.ws.send(await this.control.seal(KIND_CREDIT, body));
      }
    };
    for (let j = 0; j < chunks; j++) {
      if (j % 64 === 63) await yieldToBrowser();
      const length = (j < chunks - 1 ? CHUNK : total - j * CHUNK) + TAG;
      const sealed = await this.take(length);
      pending.push(subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(fk.baseNonce, j) }, fk.key, sealed));
      if (pending.length >= IN_FLIGHT) await collect();
    }
    while (pending.length) await collect();
    if (!equal(hash.digest(), digest)) throw new Error("the file's SHA-256 does not match");
    await out.close();
    this.ws.send(await this.control.seal(KIND_COMPLETE, new Uint8Array(0)));
    reference.state = "done";
  }
}

// Plaintext packed into 1 MiB pieces for the download, as Hushdrop's receiver hands over one
// message's plaintext per write.
class Output {
  constructor(download) {
    this.download = download;
    this.piece = new Uint8Array(DATA_FRAME_SIZE);
    this.fill = 0;
  }

  async write(bytes) {
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(this.piece.length - this.fill, bytes.length - at);
      this.piece.set(bytes.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill === this.piece.length) await this.flush();
    }
  }

  async flush() {
    if (!this.fill) return;
    const piece = this.fill === this.piece.length ? this.piece : this.piece.slice(0, this.fill);
    this.piece = new Uint8Array(DATA_FRAME_SIZE); // the full one is transferred to the worker
    this.fill = 0;
    await this.download.write(piece);
  }

  async close() {
    await this.flush();
    await this.download.close();
  }
}

// ------------------------------------------------------------------------- download (sw.js)

// The site's service worker, used exactly as app.js uses it: a download registered over a
// MessageChannel, a hidden frame navigating to its URL, one chunk handed over per "pull".
let serviceWorker = null;

function registerServiceWorker() {
  serviceWorker = navigator.serviceWorker
    .register("../sw.js", { scope: "../" })
    .then(() => navigator.serviceWorker.ready);
}

class StreamDownload {
  constructor(port) {
    this.port = port;
    this.credit = 0;
    this.failure = null;
    this.wake = null;
    this.signals = new Map();
    port.onmessage = (event) => {
      const message = event.data;
      if (message.type === "pull") this.credit += 1;
      else if (message.type === "cancel") this.failure = new Error("download cancelled");
      const signal = this.signals.get(message.type);
      if (signal) signal();
      if (this.wake) {
        this.wake();
        this.wake = null;
      }
    };
  }

  signal(type) {
    return new Promise((resolve) => this.signals.set(type, resolve));
  }

  async write(chunk) {
    while (!this.failure && this.credit === 0) await new Promise((r) => (this.wake = r));
    if (this.failure) throw this.failure;
    this.credit -= 1;
    this.port.postMessage({ type: "data", chunk }, [chunk.buffer]);
  }

  async close() {
    this.port.postMessage({ type: "close" });
  }

  abort(message) {
    this.port.postMessage({ type: "error", message });
  }
}

async function openStreamDownload(headers) {
  const registration = await serviceWorker;
  const id = hex(crypto.getRandomValues(new Uint8Array(16)));
  const channel = new MessageChannel();
  const download = new StreamDownload(channel.port1);
  const registered = download.signal("registered");
  registration.active.postMessage({ type: "hushdrop-download", id, headers }, [channel.port2]);
  await registered;
  const started = download.signal("started");
  const iframe = document.createElement("iframe");
  iframe.hidden = true;
  iframe.src = `../__hushdrop__/download/${id}`;
  document.body.append(iframe);
  await started;
  // A download longer than the worker's idle timeout needs the page's keep-alive, as in app.js.
  setInterval(() => registration.active?.postMessage({ type: "keepalive" }), 10_000);
  return download;
}

// ------------------------------------------------------------------------- start

registerServiceWorker();
serviceWorker.then(
  () => {
    if (reference.state === "loading") reference.state = "ready";
  },
  fail,
);
globalThis.referenceSend = referenceSend;
globalThis.referenceJoin = referenceJoin;
globalThis.referenceDownload = referenceDownload;
