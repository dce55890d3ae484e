// rsgate browser demo: rsocket-js 1.0.0-alpha.3 over ws://<host>/rsocket (a live clock stream and a chat
// channel, relayed by the gateway to the demo RSocket service) and a plain WebSocket chat on /ws/chat
// (each message one REQUEST_CHANNEL payload). Bundled by esbuild into ../static/app.js.
//
// The RSocket connection is resumable (rsocket-js `resume` option; the route has rsocket.resume): when the
// WebSocket is cut (the "cut connection" button, POST /debug/cut-clients on the admin listener, or a network
// flap), rsocket-js reconnects and sends RESUME with its token, the gateway answers RESUME_OK, and the
// clock goes on with the next tick: the page counts the resumes and any tick that is not the previous one
// plus one (data-gaps on #clock). A refused resume (REJECTED_RESUME: the session expired or the gateway
// restarted) starts a new session, and the clock starts again at tick 0.
import { Flags, FrameTypes, RSocketConnector } from "rsocket-core";
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

// connState shows the state of the RSocket connection: connected, cut (resuming), resumed, new session.
function connState(state, text) {
  const el = $("conn-state");
  el.textContent = text;
  el.dataset.state = state;
  el.className = state === "cut" ? "bad" : "ok";
}

// resumable wraps a client transport to watch the resumable session (rsocket-js 1.0.0-alpha.3 gives no
// callbacks for it): the first socket's multiplexer is the session; RESUME_OK on a later socket runs
// onResumed; the session's own close (a refused resume, an expired session) runs onEnd. The library's
// RSocket.onClose is no use here: it fires when the *first socket* closes, resumed or not, and also stops
// the library's KEEPALIVE sender, so after the first resume the page sends the KEEPALIVEs itself (they
// carry the client's received position, which lets the gateway drop what it holds for a resume).
function resumable(transport, keepAlive, onResumed, onEnd) {
  let session = null;
  let keepalives = null;
  return {
    connect(factory) {
      return transport.connect((outbound) => {
        const mux = factory(outbound);
        if (!session) {
          session = mux;
          mux.onClose((e) => {
            clearInterval(keepalives);
            onEnd(e);
          });
        }
        const handle = mux.handle.bind(mux);
        mux.handle = (frame) => {
          handle(frame);
          if (frame.type !== FrameTypes.RESUME_OK) return;
          if (!keepalives) {
            keepalives = setInterval(() => {
              if (!session.done) {
                session.send({ type: FrameTypes.KEEPALIVE, streamId: 0, flags: Flags.RESPOND, lastReceivedPosition: 0, data: undefined });
              }
            }, keepAlive);
          }
          onResumed();
        };
        return mux;
      });
    },
  };
}

let resumes = 0; // RESUME_OK answers received
let sessions = 0; // RSocket sessions set up (more than one: a resume was refused)
let sendChat = null; // sends a chat message on the current session's channel

async function startRSocket() {
  sessions++;
  const token = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  const keepAlive = 5000;
  const transport = new WebsocketClientTransport({ url: wsBase + "/rsocket" });
  const connector = new RSocketConnector({
    setup: {
      keepAlive,
      lifetime: 60000,
      dataMimeType: "application/json",
      metadataMimeType: WellKnownMimeType.MESSAGE_RSOCKET_COMPOSITE_METADATA.string,
    },
    transport: resumable(
      transport,
      keepAlive,
      () => {
        resumes++;
        $("resumes").textContent = String(resumes);
        connState("resumed", "resumed");
        status("rs-status", "RSocket connected to " + wsBase + "/rsocket (session resumed)", true);
      },
      (e) => {
        // The session is gone (e.g. REJECTED_RESUME after session_duration): start a new one.
        status("rs-status", "RSocket session ended" + (e ? ": " + e.message : "") + "; starting a new one", false);
        setTimeout(startRSocket, 1000);
      }
    ),
    // Resumption: the gateway keeps the session (rsocket.resume.session_duration) while the socket is
    // gone; rsocket-js redials after the delay below and sends RESUME with this token.
    resume: {
      tokenGenerator: () => token,
      reconnectFunction: (attempt) => {
        connState("cut", attempt === 0 ? "cut, resuming…" : `cut, resuming (attempt ${attempt + 1})…`);
        status("rs-status", "RSocket: WebSocket lost, resuming the session", false);
        return new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5000)));
      },
    },
  });
  let rsocket;
  try {
    rsocket = await connector.connect();
  } catch (e) {
    status("rs-status", "RSocket connection failed: " + e, false);
    setTimeout(startRSocket, 2000);
    return;
  }
  status("rs-status", "RSocket connected to " + wsBase + "/rsocket", true);
  connState(sessions > 1 ? "new-session" : "connected", sessions > 1 ? "new session (the old one ended)" : "connected");

  // The clock: an endless stream, 8 items requested at a time (the gateway passes REQUEST_N through).
  // Ticks are numbered by the service: after a resume the next one is the previous plus one.
  const list = $("clock");
  const window = 8;
  let outstanding = window;
  const clock = rsocket.requestStream({ data: Buffer.alloc(0), metadata: route("clock.1000") }, window, {
    onNext(p) {
      const item = JSON.parse(dec.decode(p.data));
      const hms = item.time.slice(11, 23); // HH:MM:SS.mmm (UTC)
      const last = list.dataset.last === undefined ? item.tick - 1 : Number(list.dataset.last);
      if (item.tick !== last + 1) list.dataset.gaps = String(Number(list.dataset.gaps || 0) + 1);
      list.dataset.last = String(item.tick);
      $("clock-now").textContent = hms + " UTC";
      append(list, `tick ${item.tick}  ${hms}` + (item.tick !== last + 1 ? `  (expected ${last + 1})` : ""));
      if (--outstanding <= window / 2) {
        clock.request(window - outstanding);
        outstanding = window;
      }
    },
    onComplete() {
      status("rs-status", "clock completed", false);
    },
    onError(e) {
      append(list, "error: " + e.message);
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
  // One form listener per page; a new session (after a refused resume) takes over the sending.
  sendChat = (msg) => {
    if (!requester) open(msg);
    else {
      pending.push(msg);
      flush();
    }
  };
  if (sessions === 1) {
    $("rs-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("rs-input").value;
      $("rs-input").value = "";
      sendChat({ text, at: new Date().toISOString() });
    });
  }
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

// The "cut connection" button: POST /demo/cut, which `gateway -demo` serves (and only it): the gateway
// closes the page's WebSocket abruptly, as a network flap would. Elsewhere, cut with the admin listener's
// POST /debug/cut-clients.
function cutButton() {
  $("cut").addEventListener("click", async () => {
    try {
      const r = await fetch("/demo/cut", { method: "POST" });
      const body = await r.json();
      $("cut-result").textContent = r.ok ? `cut ${body.cut} connection(s)` : "no demo cut endpoint: curl -X POST http://127.0.0.1:9901/debug/cut-clients";
    } catch (e) {
      $("cut-result").textContent = "cut failed: " + e;
    }
  });
}

cutButton();
startRSocket();
startWebSocketChat();
