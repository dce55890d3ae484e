// Node clients (rsocket-js 1.0.0-alpha.3 and 0.0.27) through the gateway's rsocket route to the demo
// service: request-response (users.{id}), request-stream (ticks.{n}, credit one by one), request-channel
// (chat echo). Usage: node test/node-clients.mjs ws://127.0.0.1:PORT/rsocket
// Prints "PASS name" / "FAIL name: reason" per check; exits 1 on any failure; a watchdog bounds the run.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const WebSocket = require("ws");

const url = process.argv[2];
if (!url) {
  console.error("usage: node test/node-clients.mjs ws://host:port/rsocket");
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: no result within 30s");
  process.exit(1);
}, 30000);

let failed = 0;
let passed = 0;
async function check(name, fn) {
  try {
    await withTimeout(name, 10000, fn());
    console.log("PASS " + name);
    passed++;
  } catch (e) {
    console.log("FAIL " + name + ": " + (e && e.stack ? e.stack : e));
    failed++;
  }
}
function withTimeout(name, ms, p) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(name + ": timeout")), ms)))]).finally(() => clearTimeout(t));
}
function eq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

// ---- rsocket-js 1.0.0-alpha.3 ----
async function v1() {
  const { RSocketConnector } = require("rsocket-core");
  const { WebsocketClientTransport } = require("rsocket-websocket-client");
  const { encodeCompositeMetadata, encodeRoute, WellKnownMimeType } = require("rsocket-composite-metadata");
  const route = (tag) => encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)]]);
  const rs = await new RSocketConnector({
    setup: {
      keepAlive: 10000, lifetime: 30000, dataMimeType: "application/json",
      metadataMimeType: WellKnownMimeType.MESSAGE_RSOCKET_COMPOSITE_METADATA.string,
    },
    transport: new WebsocketClientTransport({ url, wsCreator: (u) => new WebSocket(u) }),
  }).connect();

  await check("v1 request-response", () => new Promise((resolve, reject) => {
    rs.requestResponse({ data: Buffer.alloc(0), metadata: route("users.42") }, {
      onNext: (p) => { try { eq(p.data.toString(), '{"id":"42"}', "answer"); resolve(); } catch (e) { reject(e); } },
      onComplete: () => {}, onError: reject, onExtension: () => {},
    });
  }));
  await check("v1 request-stream one by one", () => new Promise((resolve, reject) => {
    const items = [];
    let outstanding = 1;
    const s = rs.requestStream({ data: Buffer.alloc(0), metadata: route("ticks.5") }, 1, {
      onNext: (p, done) => {
        if (--outstanding < 0) return reject(new Error("item beyond the granted credit"));
        items.push(JSON.parse(p.data.toString()).tick);
        if (done) return finish();
        outstanding++;
        setTimeout(() => s.request(1), 5);
      },
      onComplete: () => finish(), onError: reject, onExtension: () => {},
    });
    function finish() { try { eq(items, [0, 1, 2, 3, 4], "ticks"); resolve(); } catch (e) { reject(e); } }
  }));
  await check("v1 request-channel echo", () => new Promise((resolve, reject) => {
    const msgs = ["a", "b", "c", "d"].map((x) => JSON.stringify({ text: x }));
    const echoes = [];
    let next = 1;
    const req = rs.requestChannel({ data: Buffer.from(msgs[0]), metadata: route("chat") }, 100, false, {
      onNext: (p, done) => { echoes.push(p.data.toString()); if (done) finish(); },
      onComplete: () => finish(), onError: reject, onExtension: () => {},
      request: (n) => {
        while (n-- > 0 && next < msgs.length) {
          const last = next === msgs.length - 1;
          req.onNext({ data: Buffer.from(msgs[next++]) }, last);
        }
      },
      cancel: () => reject(new Error("canceled")),
    });
    function finish() { try { eq(echoes, msgs, "echoes"); resolve(); } catch (e) { reject(e); } }
  }));
  rs.close();
}

// ---- rsocket-js 0.0.27 (BufferEncoders) ----
async function v0() {
  const { RSocketClient, BufferEncoders, encodeCompositeMetadata, encodeRoute, MESSAGE_RSOCKET_ROUTING,
    MESSAGE_RSOCKET_COMPOSITE_METADATA } = require("rsocket-core-v0");
  const RSocketWebSocketClient = require("rsocket-websocket-client-v0").default;
  const { Flowable } = require("rsocket-flowable");
  const route = (tag) => encodeCompositeMetadata([[MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)]]);
  const client = new RSocketClient({
    setup: { keepAlive: 10000, lifetime: 30000, dataMimeType: "application/json",
      metadataMimeType: MESSAGE_RSOCKET_COMPOSITE_METADATA.string },
    transport: new RSocketWebSocketClient({ url, wsCreator: (u) => new WebSocket(u) }, BufferEncoders),
  });
  const socket = await new Promise((resolve, reject) => client.connect().subscribe({ onComplete: resolve, onError: reject }));

  await check("v0 request-response", () => new Promise((resolve, reject) => {
    socket.requestResponse({ data: Buffer.alloc(0), metadata: route("users.7") }).subscribe({
      onComplete: (p) => { try { eq(p.data.toString(), '{"id":"7"}', "answer"); resolve(); } catch (e) { reject(e); } },
      onError: reject,
    });
  }));
  await check("v0 request-stream", () => new Promise((resolve, reject) => {
    const items = [];
    let sub;
    socket.requestStream({ data: Buffer.alloc(0), metadata: route("ticks.4") }).subscribe({
      onSubscribe: (s) => { sub = s; s.request(1); },
      onNext: (p) => { items.push(JSON.parse(p.data.toString()).tick); sub.request(1); },
      onComplete: () => { try { eq(items, [0, 1, 2, 3], "ticks"); resolve(); } catch (e) { reject(e); } },
      onError: reject,
    });
  }));
  await check("v0 request-channel echo", () => new Promise((resolve, reject) => {
    const msgs = ["x", "y", "z"].map((t) => JSON.stringify({ text: t }));
    const echoes = [];
    const out = Flowable.just(...msgs.map((m, i) => (i === 0 ? { data: Buffer.from(m), metadata: route("chat") } : { data: Buffer.from(m) })));
    socket.requestChannel(out).subscribe({
      onSubscribe: (s) => s.request(100),
      onNext: (p) => echoes.push(p.data.toString()),
      onComplete: () => { try { eq(echoes, msgs, "echoes"); resolve(); } catch (e) { reject(e); } },
      onError: reject,
    });
  }));
  client.close();
}

try {
  await v1();
} catch (e) {
  console.log("FAIL v1 connect: " + e);
  failed++;
}
try {
  await v0();
} catch (e) {
  console.log("FAIL v0 connect: " + e);
  failed++;
}
clearTimeout(watchdog);
console.log(`node: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
