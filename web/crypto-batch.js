// Batched AES-GCM for the Pyodide crypto backend (web/hushdrop/crypto/webcrypto.py).
//
// Python hands over one buffer holding many chunks plus their nonces; every WebCrypto call of
// the batch is started at once (WebCrypto runs them off the main thread) and the results are
// packed into one output buffer. One Python<->JS crossing per batch instead of per 16 KiB chunk.
//
// `data` may be a Python buffer (a PyProxy): the calls then read it where it lies in Pyodide's
// memory, with no copy into JavaScript first. That is safe because WebCrypto copies its input
// when a call is made, and the view is released before this function returns.

const subtle = globalThis.crypto.subtle;
const NONCE = 12;
const TAG = 16;

function start(op, key, nonces, data, lengths) {
  const count = lengths.length;
  const calls = new Array(count);
  const borrowed = typeof data.getBuffer === "function" ? data.getBuffer("u8") : null;
  const bytes = borrowed ? borrowed.data : data;
  let offset = 0;
  try {
    for (let i = 0; i < count; i++) {
      const iv = nonces.subarray(i * NONCE, (i + 1) * NONCE);
      const input = bytes.subarray(offset, offset + lengths[i]);
      calls[i] = subtle[op]({ name: "AES-GCM", iv }, key, input);
      offset += lengths[i];
    }
  } finally {
    borrowed?.release();
  }
  return { calls, offset };
}

// `output`, if given, is a Python buffer of exactly the packed size: the results are written
// straight into it (no packed copy in JavaScript, so less garbage for the collector). It is
// looked up again after the calls finish, because Pyodide's memory may have grown meanwhile.
async function run(op, key, nonces, data, lengths, outputDelta, output) {
  const count = lengths.length;
  const { calls, offset } = start(op, key, nonces, data, lengths);
  // allSettled, not all: a failed call must not leave others running unobserved.
  const results = await Promise.allSettled(calls);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  const borrowed = output ? output.getBuffer("u8") : null;
  try {
    const out = borrowed ? borrowed.data : new Uint8Array(offset + outputDelta * count);
    if (out.byteLength !== offset + outputDelta * count) throw new Error("wrong output size");
    let position = 0;
    for (const result of results) {
      const bytes = new Uint8Array(result.value);
      out.set(bytes, position);
      position += bytes.length;
    }
    return borrowed ? null : out;
  } finally {
    borrowed?.release();
  }
}

globalThis.hushdropCrypto = {
  sealMany: (key, nonces, data, lengths, output) =>
    run("encrypt", key, nonces, data, lengths, TAG, output),
  openMany: (key, nonces, data, lengths, output) =>
    run("decrypt", key, nonces, data, lengths, -TAG, output),
};
