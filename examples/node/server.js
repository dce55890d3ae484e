// An RSocket service for rsgate, written with rsocket-js 1.0 (rsocket-core, rsocket-tcp-server,
// rsocket-composite-metadata 1.0.0-alpha.3). docs/BACKENDS.md explains it; examples/node/gateway.yaml maps
// HTTP routes onto it.
//
//   npm ci && node server.js [port]        (default 7980, on 127.0.0.1)
//
// Routes (the routing tag of each request, from composite metadata):
//   users.{id}   request-response: {"id":"<id>","name":"user <id>"}; id 0 -> APPLICATION_ERROR "not found: ..."
//   echo         request-response: the gateway's HTTP entry (method, target, forwarded headers) and the body,
//                answered 201 with a Location header through the gateway's response entry
//   ticks.{n}    request-stream: n items {"tick":i}, sent only as the gateway grants credit (REQUEST_N)
//   log          fire-and-forget: prints the body
"use strict";

const { RSocketServer, RSocketError, ErrorCodes } = require("rsocket-core");
const { TcpServerTransport } = require("rsocket-tcp-server");
const {
  decodeCompositeMetadata,
  decodeRoutes,
  encodeCompositeMetadata,
  WellKnownMimeType,
} = require("rsocket-composite-metadata");

const port = Number(process.argv[2] || 7980);
const GATEWAY_HTTP = "message/x.rsgate.http.v0"; // docs/METADATA.md

// entries returns the composite metadata entries as {mime, content}.
function entries(metadata) {
  const out = [];
  if (!metadata) return out;
  for (const e of decodeCompositeMetadata(metadata)) {
    out.push({ mime: typeof e.type === "string" ? e.type : e.mimeType, content: e.content });
  }
  return out;
}

function routingTag(md) {
  const e = md.find((x) => x.mime === WellKnownMimeType.MESSAGE_RSOCKET_ROUTING.string);
  if (!e) return "";
  for (const tag of decodeRoutes(e.content)) return tag;
  return "";
}

// parseHTTPRequest decodes the gateway's request entry (docs/METADATA.md: version 1, kind 1).
function parseHTTPRequest(b) {
  let o = 0;
  if (b[o++] !== 1 || b[o++] !== 1) throw new Error("not a v1 request entry");
  const ml = b[o++];
  const method = b.toString("latin1", o, o + ml); o += ml;
  const tl = b.readUInt16BE(o); o += 2;
  const target = b.toString("latin1", o, o + tl); o += tl;
  const n = b.readUInt16BE(o); o += 2;
  const headers = [];
  for (let i = 0; i < n; i++) {
    const nl = b[o++];
    const name = b.toString("latin1", o, o + nl); o += nl;
    const vl = b.readUInt16BE(o); o += 2;
    headers.push([name, b.toString("latin1", o, o + vl)]); o += vl;
  }
  return { method, target, headers };
}

// httpResponseEntry encodes the gateway's response entry (version 1, kind 2): status and headers.
function httpResponseEntry(status, headers) {
  const parts = [Buffer.from([1, 2, status >> 8, status & 0xff, headers.length >> 8, headers.length & 0xff])];
  for (const [name, value] of headers) {
    const n = Buffer.from(name.toLowerCase(), "latin1");
    const v = Buffer.from(value, "latin1");
    parts.push(Buffer.from([n.length]), n, Buffer.from([v.length >> 8, v.length & 0xff]), v);
  }
  return encodeCompositeMetadata([[GATEWAY_HTTP, Buffer.concat(parts)]]);
}

const json = (v) => Buffer.from(JSON.stringify(v));

function requestResponse(payload, responder) {
  const md = entries(payload.metadata);
  const tag = routingTag(md);
  let m;
  if ((m = /^users\.([^.]+)$/.exec(tag))) {
    if (m[1] === "0") {
      responder.onError(new RSocketError(ErrorCodes.APPLICATION_ERROR, "not found: user 0"));
    } else {
      responder.onNext({ data: json({ id: m[1], name: "user " + m[1] }) }, true);
    }
  } else if (tag === "echo") {
    const e = md.find((x) => x.mime === GATEWAY_HTTP);
    const req = e ? parseHTTPRequest(e.content) : null;
    const body = payload.data ? payload.data.toString() : "";
    responder.onNext({
      data: json({ method: req && req.method, target: req && req.target, headers: req && req.headers, body }),
      metadata: httpResponseEntry(201, [["Location", "/api/echo/1"], ["X-Backend", "node"]]),
    }, true);
  } else {
    responder.onError(new RSocketError(ErrorCodes.APPLICATION_ERROR, `no handler for request-response "${tag}"`));
  }
  return { cancel() {}, onExtension() {} };
}

// requestStream sends items only under the credit the requester (the gateway) granted.
function requestStream(payload, initialN, responder) {
  const tag = routingTag(entries(payload.metadata));
  const m = /^ticks\.(\d+)$/.exec(tag);
  if (!m) {
    responder.onError(new RSocketError(ErrorCodes.INVALID, `no handler for request-stream "${tag}"`));
    return { cancel() {}, request() {}, onExtension() {} };
  }
  const total = Number(m[1]);
  let next = 0, credit = initialN, done = false;
  const pump = () => {
    while (!done && credit > 0 && next < total) {
      credit--;
      const last = next === total - 1;
      responder.onNext({ data: json({ tick: next++ }) }, last);
      if (last) done = true;
    }
    if (!done && next >= total) { done = true; responder.onComplete(); }
  };
  setImmediate(pump);
  return {
    cancel() { done = true; },
    request(n) { credit += n; setImmediate(pump); },
    onExtension() {},
  };
}

function fireAndForget(payload, responder) {
  const tag = routingTag(entries(payload.metadata));
  if (tag === "log") console.log("log: " + (payload.data ? payload.data.toString() : ""));
  responder.onComplete();
  return { cancel() {} };
}

const server = new RSocketServer({
  transport: new TcpServerTransport({ listenOptions: { host: "127.0.0.1", port } }),
  acceptor: {
    accept: async () => ({ requestResponse, requestStream, fireAndForget }),
  },
});

server.bind().then(
  () => console.log(`node example listening on 127.0.0.1:${port}`),
  (err) => { console.error(err); process.exit(1); }
);
