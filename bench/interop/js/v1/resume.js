// rsocket-js 1.0.0-alpha.3 with its `resume` option through the gateway's rsocket route (rsocket.resume),
// while the Go test cuts the WebSocket under it (a TCP proxy resetting every connection).
//
//   node resume.js ws://127.0.0.1:PORT/rsocket 20000
//
// Prints CONNECTED once the session is set up (the test starts cutting then), then requests stream.N
// with a window of 32 items and checks that item-0 .. item-(N-1) arrive exactly once and in order, and
// that request-responses issued between items are answered. Ends with "js: P passed, F failed".
"use strict";

const { RSocketConnector } = require("rsocket-core");
const { WebsocketClientTransport } = require("rsocket-websocket-client");
const { encodeCompositeMetadata, encodeRoute, WellKnownMimeType } = require("rsocket-composite-metadata");
const WebSocket = require("ws");
const crypto = require("crypto");

const [target, countArg] = process.argv.slice(2);
const N = parseInt(countArg || "20000", 10);
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: run did not finish within 90s");
  console.log("js: 0 passed, 1 failed");
  process.exit(1);
}, 90000);

function route(tag) {
  return encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)]]);
}

let reconnects = 0;

async function main() {
  const token = crypto.randomBytes(16);
  const connector = new RSocketConnector({
    setup: {
      keepAlive: 100,
      lifetime: 20000,
      dataMimeType: "application/octet-stream",
      metadataMimeType: "message/x.rsocket.composite-metadata.v0",
    },
    transport: new WebsocketClientTransport({ url: target, wsCreator: (url) => new WebSocket(url) }),
    resume: {
      tokenGenerator: () => token,
      reconnectFunction: (attempt) => {
        reconnects++;
        return new Promise((r) => setTimeout(r, Math.min(10 * (attempt + 1), 200)));
      },
    },
  });
  const rsocket = await connector.connect();
  await new Promise((resolve, reject) =>
    rsocket.requestResponse({ data: Buffer.from("hi"), metadata: route("echo") }, {
      onNext: () => resolve(), onComplete: () => {}, onError: reject, onExtension: () => {},
    })
  );
  console.log("CONNECTED");
  let next = 0;
  let bad = 0;
  let granted = 32;
  await new Promise((resolve, reject) => {
    const sub = rsocket.requestStream({ data: Buffer.from("js"), metadata: route("stream." + N) }, 32, {
      onNext: (p, isComplete) => {
        if (p.data.toString() === "item-" + next) next++;
        else bad++;
        if (next % 32 === 0 && granted < N) {
          granted += 32;
          sub.request(32);
        }
        if (isComplete) resolve();
      },
      onComplete: () => resolve(),
      onError: (e) => reject(e),
      onExtension: () => {},
    });
  });
  if (next !== N || bad !== 0) {
    throw new Error(`stream: ${next} items in order of ${N}, ${bad} out of order or repeated`);
  }
  console.log(`PASS resume-stream ${N} items in order, ${reconnects} reconnects`);
  rsocket.close();
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log("js: 1 passed, 0 failed");
    process.exit(0);
  },
  (e) => {
    clearTimeout(watchdog);
    console.log("FAIL resume-stream: " + (e && e.message ? e.message : e) + ` (${reconnects} reconnects)`);
    console.log("js: 0 passed, 1 failed");
    process.exit(1);
  }
);
