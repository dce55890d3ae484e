// rsgate browser demo: rsocket-js 1.0.0-alpha.3 over ws://<host>/rsocket (a live clock stream and a chat
// channel, relayed by the gateway to the demo RSocket service) and a plain WebSocket chat on /ws/chat
// (each message one REQUEST_CHANNEL payload). Bundled by esbuild into ../static/app.js.
import { RSocketConnector } from "rsocket-core";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import { encodeCompositeMetadata, encodeRoute, WellKnownMimeType } from "rsocket-composite-metadata";

const $ = (id) => document.getElementById(id);
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const enc = new TextEncoder();
const dec = new TextDecoder();

function route(tag) {
  return encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute(tag)]]);
}

function json(data) {
  return Buffer.from(enc.encode(JSON.stringify(data)));
}

// append adds a line to a list, keeping the newest `keep` lines.
function append(list, text, keep = 12) {
  const li = document.createElement("li");
  li.textContent = text;
  list.prepend(li);
  while (list.children.length > keep) list.lastChild.remove();
  list.dataset.count = String(Number(list.dataset.count || 0) + 1);
}

function status(id, text, ok) {
  const el = $(id);
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

async function startRSocket() {
  const connector = new RSocketConnector({
    setup: {
      keepAlive: 20000,
      lifetime: 60000,
      dataMimeType: "application/json",
      metadataMimeType: WellKnownMimeType.MESSAGE_RSOCKET_COMPOSITE_METADATA.string,
    },
    transport: new WebsocketClientTransport({ url: wsBase + "/rsocket" }),
  });
  let rsocket;
  try {
    rsocket = await connector.connect();
  } catch (e) {
    status("rs-status", "RSocket connection failed: " + e, false);
    return;
  }
  status("rs-status", "RSocket connected to " + wsBase + "/rsocket", true);
  rsocket.onClose((e) => status("rs-status", "RSocket closed" + (e ? ": " + e : ""), false));

  // The clock: an endless stream, 8 items requested at a time (the gateway passes REQUEST_N through).
  const window = 8;
  let outstanding = window;
  const clock = rsocket.requestStream({ data: Buffer.alloc(0), metadata: route("clock.1000") }, window, {
    onNext(p) {
      const item = JSON.parse(dec.decode(p.data));
      const hms = item.time.slice(11, 23); // HH:MM:SS.mmm (UTC)
      $("clock-now").textContent = hms + " UTC";
      append($("clock"), `tick ${item.tick}  ${hms}`);
      if (--outstanding <= window / 2) {
        clock.request(window - outstanding);
        outstanding = window;
      }
    },
    onComplete() {
      status("rs-status", "clock completed", false);
    },
    onError(e) {
      append($("clock"), "error: " + e.message);
    },
    onExtension() {},
  });

  // The chat channel: the first message opens it; later ones go out as the backend grants credit.
  let requester = null;
  let credit = 0;
  const pending = [];
  const flush = () => {
    while (requester && credit > 0 && pending.length > 0) {
      credit--;
      requester.onNext({ data: json(pending.shift()) }, false);
    }
  };
  const open = (first) => {
    requester = rsocket.requestChannel({ data: json(first), metadata: route("chat") }, 2147483647, false, {
      onNext(p) {
        append($("rs-chat"), "echo: " + JSON.parse(dec.decode(p.data)).text);
      },
      onComplete() {
        append($("rs-chat"), "(channel completed)");
        requester = null;
      },
      onError(e) {
        append($("rs-chat"), "error: " + e.message);
        requester = null;
      },
      onExtension() {},
      request(n) {
        credit += n;
        flush();
      },
      cancel() {
        requester = null;
      },
    });
  };
  $("rs-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("rs-input").value;
    $("rs-input").value = "";
    const msg = { text, at: new Date().toISOString() };
    if (!requester) open(msg);
    else {
      pending.push(msg);
      flush();
    }
  });
  $("rs-form").dataset.ready = "1";
}

function startWebSocketChat() {
  const ws = new WebSocket(wsBase + "/ws/chat");
  ws.onopen = () => {
    status("ws-status", "WebSocket connected to " + wsBase + "/ws/chat", true);
    $("ws-form").dataset.ready = "1";
  };
  ws.onmessage = (ev) => {
    let text = ev.data;
    try {
      text = JSON.parse(ev.data).text;
    } catch (_) {}
    append($("ws-chat"), "echo: " + text);
  };
  ws.onclose = (ev) => status("ws-status", `WebSocket closed: ${ev.code} ${ev.reason}`, false);
  $("ws-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    ws.send(JSON.stringify({ text: $("ws-input").value }));
    $("ws-input").value = "";
  });
}

startRSocket();
startWebSocketChat();
