// rsocket-js 0.0.27 client (BufferEncoders) against rsgate's RSocket server (bench/interop/cmd/jspeer).
//
//   node client.js tcp 127.0.0.1:7878
//   node client.js ws ws://127.0.0.1:7879/
//
// Every request carries composite metadata with a routing tag (encodeCompositeMetadata + encodeRoute).
// Prints one "PASS name" / "FAIL name: reason" line per check, then "js: N passed, M failed"; exits 1 on
// any failure. A watchdog bounds the whole run.
"use strict";

const {
  RSocketClient,
  BufferEncoders,
  encodeCompositeMetadata,
  encodeRoute,
  MESSAGE_RSOCKET_ROUTING,
  MESSAGE_RSOCKET_COMPOSITE_METADATA,
} = require("rsocket-core");
const RSocketTcpClient = require("rsocket-tcp-client").default;
const RSocketWebSocketClient = require("rsocket-websocket-client").default;
const { Flowable } = require("rsocket-flowable");
const WebSocket = require("ws");
const crypto = require("crypto");

const [kind, target] = process.argv.slice(2);
if (!["tcp", "ws"].includes(kind) || !target) {
  console.error("usage: node client.js tcp|ws <host:port | ws://url>");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: run did not finish within 30s");
  process.exit(1);
}, 30000);

function route(tag) {
  return encodeCompositeMetadata([[MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)]]);
}

function withTimeout(name, ms, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function requestResponse(socket, tag, data) {
  return new Promise((resolve, reject) => {
    socket.requestResponse({ data, metadata: route(tag) }).subscribe({
      onComplete: (payload) => resolve(payload),
      onError: (e) => reject(e),
    });
  });
}

// requestStream with request(1) first and after every item.
function streamOneByOne(socket, tag) {
  return new Promise((resolve, reject) => {
    const items = [];
    let subscription;
    let outstanding = 0;
    socket.requestStream({ data: Buffer.from("js0"), metadata: route(tag) }).subscribe({
      onSubscribe: (s) => {
        subscription = s;
        outstanding = 1;
        s.request(1);
      },
      onNext: (payload) => {
        outstanding--;
        if (outstanding < 0) {
          reject(new Error(`item ${items.length} arrived beyond the granted credit`));
          return;
        }
        items.push(payload.data.toString());
        outstanding++;
        subscription.request(1);
      },
      onComplete: () => resolve(items),
      onError: (e) => reject(e),
    });
  });
}

// requestChannel over a Flowable of payloads; the first carries the route.
function channel(socket, tag, elements) {
  return new Promise((resolve, reject) => {
    const echoes = [];
    const payloads = elements.map((e, i) =>
      i === 0 ? { data: Buffer.from(e), metadata: route(tag) } : { data: Buffer.from(e) }
    );
    socket.requestChannel(Flowable.just(...payloads)).subscribe({
      onSubscribe: (s) => s.request(2 * elements.length),
      onNext: (payload) => echoes.push(payload.data.toString()),
      onComplete: () => resolve(echoes),
      onError: (e) => reject(e),
    });
  });
}

function connect(client) {
  return new Promise((resolve, reject) => {
    client.connect().subscribe({ onComplete: resolve, onError: reject });
  });
}

async function main() {
  const transport =
    kind === "tcp"
      ? new RSocketTcpClient(
          { host: target.split(":")[0], port: Number(target.split(":")[1]) },
          BufferEncoders
        )
      : new RSocketWebSocketClient(
          { url: target, wsCreator: (url) => new WebSocket(url) },
          BufferEncoders
        );
  const client = new RSocketClient({
    setup: {
      keepAlive: 10000,
      lifetime: 30000,
      dataMimeType: "application/octet-stream",
      metadataMimeType: MESSAGE_RSOCKET_COMPOSITE_METADATA.string,
      payload: { data: Buffer.from("hello-js0") },
    },
    transport,
  });
  const socket = await withTimeout("connect", 5000, connect(client));

  let passed = 0;
  let failed = 0;
  async function check(name, fn) {
    try {
      await withTimeout(name, 10000, fn());
      console.log(`PASS ${name}`);
      passed++;
    } catch (e) {
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
      failed++;
    }
  }
  function expectEqual(got, want, what) {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }

  await check("request-response echo", async () => {
    const p = await requestResponse(socket, "echo", Buffer.from("hello from rsocket-js 0.0.27"));
    expectEqual(p.data.toString(), "hello from rsocket-js 0.0.27", "echo");
  });
  await check("request-response echo 1 MiB (our server fragments the answer at 64 KiB)", async () => {
    const big = crypto.randomBytes(1 << 20);
    const p = await requestResponse(socket, "echo", big);
    if (!p.data || !big.equals(p.data)) {
      throw new Error(`echo of 1 MiB came back as ${p.data ? p.data.length : 0} bytes, different`);
    }
  });
  await check("request-response APPLICATION_ERROR", async () => {
    try {
      await requestResponse(socket, "fail", Buffer.from("js0"));
    } catch (e) {
      expectEqual([e.source && e.source.code, e.source && e.source.message], [0x201, "fail: js0"], "error");
      return;
    }
    throw new Error("no error");
  });
  await check("request-stream stream.5, request(1) at a time", async () => {
    const items = await streamOneByOne(socket, "stream.5");
    expectEqual(items, ["item-0", "item-1", "item-2", "item-3", "item-4"], "items");
  });
  await check("request-channel echo", async () => {
    const elements = ["a", "b", "c", "d", "e"];
    const echoes = await channel(socket, "channel", elements);
    expectEqual(echoes, elements.map((e) => "echo:" + e), "echoes");
  });

  client.close();
  console.log(`js: ${passed} passed, ${failed} failed`);
  clearTimeout(watchdog);
  setTimeout(() => process.exit(failed === 0 ? 0 : 1), 100);
}

main().catch((e) => {
  console.log(`FAIL connect: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
