// A direct WebRTC connection between two pages (PROTOCOL.md §8.4), the page's part of it.
//
// RTCPeerConnection exists only on the page's main thread, so the engine worker (Python:
// hushdrop/transport/direct.py) drives one through a MessagePort: it asks for the offer or the
// answer (with every ICE candidate gathered, sent as one sealed signaling message), and the
// data channel's messages move between the channel and the port as transferred ArrayBuffers,
// never copied here. Each piece the engine sends is acknowledged with the channel's
// bufferedAmount, so the engine holds back while the channel's buffer is full. This module
// owns nothing else: what is sent, and when to give up, is the engine's.

const GATHER_TIMEOUT_MS = 3000; // to wait for ICE candidates before sending what we have
// Send-buffer threshold for `bufferedamountlow` (direct.py LOW_WATER: 2 × CREDIT_BATCH).
const LOW_WATER = 8 * 1024 * 1024;

function hasCandidates(sdp) {
  return sdp.includes("\na=candidate:") || sdp.startsWith("a=candidate:");
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function description(pc) {
  await gathered(pc);
  const local = pc.localDescription;
  return JSON.stringify({ type: local.type, sdp: local.sdp });
}

// One RTCPeerConnection with one negotiated data channel, driven over `port`.
export function open(iceServers, port) {
  const pc = new RTCPeerConnection({ iceServers });
  // Negotiated with a fixed id on both sides: no `datachannel` event to wait for.
  const dc = pc.createDataChannel("hushdrop", { negotiated: true, id: 0, ordered: true });
  dc.binaryType = "arraybuffer";
  dc.bufferedAmountLowThreshold = LOW_WATER;
  globalThis.hushdrop.directConnection = pc; // for tests that break it on purpose
  let through = 0; // bytes the engine sent that went to the channel
  let error = null;

  const state = () =>
    port.postMessage({
      type: "state",
      dc: dc.readyState,
      pc: pc.connectionState,
      maxMessageSize: pc.sctp?.maxMessageSize || 0,
      error,
    });
  const ack = () => port.postMessage({ type: "ack", through, buffered: dc.bufferedAmount });

  dc.addEventListener("open", state);
  dc.addEventListener("close", state);
  pc.addEventListener("connectionstatechange", state);
  dc.addEventListener("bufferedamountlow", ack);
  dc.addEventListener("message", (event) => port.postMessage(event.data, [event.data]));

  async function signal(payload) {
    let message = null;
    try {
      message = JSON.parse(payload);
    } catch {
      // not ours: a refusal
    }
    const kind = message?.type;
    const sdp = message?.sdp;
    if (kind === "offer" && typeof sdp === "string") {
      await pc.setRemoteDescription({ type: "offer", sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      return { answer: await description(pc), failed: false };
    }
    if (kind === "answer" && typeof sdp === "string") {
      await pc.setRemoteDescription({ type: "answer", sdp });
      // Neither side has an address to try (e.g. WebRTC told to use only TURN servers, and
      // none are configured): ICE would wait for nothing.
      const none = !hasCandidates(pc.localDescription.sdp) && !hasCandidates(sdp);
      return { answer: null, failed: none };
    }
    return { answer: null, failed: true };
  }

  async function call(message) {
    try {
      if (message.type === "offer") {
        await pc.setLocalDescription(await pc.createOffer());
        return { description: await description(pc) };
      }
      return await signal(message.payload);
    } catch (failure) {
      console.warn("Hushdrop: no direct connection:", failure);
      return { failed: true };
    }
  }

  port.onmessage = async (event) => {
    const message = event.data;
    if (message instanceof ArrayBuffer) {
      try {
        dc.send(message);
      } catch (failure) {
        // Whatever the channel refuses (a full queue, a closing channel): the engine carries
        // on through the relay.
        error = failure.name || String(failure);
        state();
        return;
      }
      through += message.byteLength;
      ack();
    } else if (message.type === "close") {
      dc.close();
      pc.close();
      port.close();
    } else {
      port.postMessage({ type: "reply", id: message.id, value: await call(message) });
    }
  };
  state();
}
