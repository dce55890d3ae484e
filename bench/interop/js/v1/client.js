// rsocket-js 1.0.0-alpha.3 client against rsgate's RSocket server (bench/interop/cmd/jspeer).
//
//   node client.js tcp 127.0.0.1:7878
//   node client.js ws ws://127.0.0.1:7879/
//
// Every request carries composite metadata with a routing tag (encodeCompositeMetadata + encodeRoute).
// Prints one "PASS name" / "FAIL name: reason" line per check, then "js: N passed, M failed"; exits 1 on
// any failure. A watchdog bounds the whole run.
"use strict";

const { RSocketConnector } = require("rsocket-core");
const { TcpClientTransport } = require("rsocket-tcp-client");
const { WebsocketClientTransport } = require("rsocket-websocket-client");
const {
  encodeCompositeMetadata,
  encodeRoute,
  WellKnownMimeType,
} = require("rsocket-composite-metadata");
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
  return encodeCompositeMetadata([
    [WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)],
  ]);
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

function requestResponse(rsocket, tag, data) {
  return new Promise((resolve, reject) => {
    rsocket.requestResponse(
      { data, metadata: route(tag) },
      {
        onNext: (payload) => resolve(payload),
        onComplete: () => {},
        onError: (e) => reject(e),
        onExtension: () => {},
      }
    );
  });
}

// requestStream with initial N = 1 and request(1) after every item.
function streamOneByOne(rsocket, tag) {
  return new Promise((resolve, reject) => {
    const items = [];
    let requester;
    let outstanding = 1;
    requester = rsocket.requestStream({ data: Buffer.from("js"), metadata: route(tag) }, 1, {
      onNext: (payload, isComplete) => {
        outstanding--;
        if (outstanding < 0) {
          reject(new Error(`item ${items.length} arrived beyond the granted credit`));
          return;
        }
        items.push(payload.data.toString());
        if (isComplete) {
          resolve(items);
          return;
        }
        outstanding++;
        requester.request(1);
      },
      onComplete: () => resolve(items),
      onError: (e) => reject(e),
      onExtension: () => {},
    });
  });
}

// requestChannel: first element (with the route) in REQUEST_CHANNEL, the rest sent as the responder
// grants credit; collects all echoes.
function channel(rsocket, tag, elements) {
  return new Promise((resolve, reject) => {
    const echoes = [];
    let next = 1;
    let requester;
    const responderStream = {
      onNext: (payload, isComplete) => {
        echoes.push(payload.data.toString());
        if (isComplete) resolve(echoes);
      },
      onComplete: () => resolve(echoes),
      onError: (e) => reject(e),
      onExtension: () => {},
      // The responder asks for n more elements (REQUEST_N).
      request: (n) => {
        while (n-- > 0 && next < elements.length) {
          const last = next === elements.length - 1;
          requester.onNext({ data: Buffer.from(elements[next]) }, last);
          next++;
        }
      },
      cancel: () => reject(new Error("responder cancelled the channel")),
    };
    requester = rsocket.requestChannel(
      { data: Buffer.from(elements[0]), metadata: route(tag) },
      2 * elements.length,
      elements.length === 1,
      responderStream
    );
  });
}

async function main() {
  const transport =
    kind === "tcp"
      ? new TcpClientTransport({
          connectionOptions: { host: target.split(":")[0], port: Number(target.split(":")[1]) },
        })
      : new WebsocketClientTransport({ url: target, wsCreator: (url) => new WebSocket(url) });
  const connector = new RSocketConnector({
    setup: {
      keepAlive: 10000,
      lifetime: 30000,
      dataMimeType: "application/octet-stream",
      metadataMimeType: WellKnownMimeType.MESSAGE_RSOCKET_COMPOSITE_METADATA.string,
      payload: { data: Buffer.from("hello-js") },
    },
    fragmentation: { maxOutboundFragmentSize: 64 * 1024 },
    transport,
  });
  const rsocket = await withTimeout("connect", 5000, connector.connect());

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
    const p = await requestResponse(rsocket, "echo", Buffer.from("hello from rsocket-js 1.0"));
    expectEqual(p.data.toString(), "hello from rsocket-js 1.0", "echo");
  });
  await check("request-response echo 1 MiB (fragmented both ways at 64 KiB)", async () => {
    const big = crypto.randomBytes(1 << 20);
    const p = await requestResponse(rsocket, "echo", big);
    if (!p.data || !big.equals(p.data)) {
      throw new Error(`echo of 1 MiB came back as ${p.data ? p.data.length : 0} bytes, different`);
    }
  });
  await check("request-response APPLICATION_ERROR", async () => {
    try {
      await requestResponse(rsocket, "fail", Buffer.from("js"));
    } catch (e) {
      expectEqual([e.code, e.message], [0x201, "fail: js"], "error");
      return;
    }
    throw new Error("no error");
  });
  await check("request-stream stream.5, request(1) at a time", async () => {
    const items = await streamOneByOne(rsocket, "stream.5");
    expectEqual(items, ["item-0", "item-1", "item-2", "item-3", "item-4"], "items");
  });
  await check("request-channel echo", async () => {
    const elements = ["a", "b", "c", "d", "e"];
    const echoes = await channel(rsocket, "channel", elements);
    expectEqual(echoes, elements.map((e) => "echo:" + e), "echoes");
  });

  rsocket.close();
  console.log(`js: ${passed} passed, ${failed} failed`);
  clearTimeout(watchdog);
  // Let the close frame flush, then exit (keepalive timers would keep node alive).
  setTimeout(() => process.exit(failed === 0 ? 0 : 1), 100);
}

main().catch((e) => {
  console.log(`FAIL connect: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
