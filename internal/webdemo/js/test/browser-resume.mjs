// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the demo page's clock stream
// (and its chat channel) survives server-side cuts of its WebSocket. Loads the page, waits for clock ticks, then cuts twice: once
// with the page's "cut connection" button (POST /demo/cut, served in -demo mode) and once with a POST to
// CUT_URL (the handler the admin listener mounts at /debug/cut-clients). After each cut the page must show
// a resume (RESUME_OK counted in #resumes, state "resumed") and the clock must go on: every tick the
// previous one plus one, none lost or repeated (data-gaps on #clock unset, the listed ticks consecutive).
// Then the control: POST RELOAD_URL (a configuration reload: the gateway forgets the session) and a cut;
// the resume is refused, and the page must show a new session and the gap (the clock restarts at 0).
//
//   node test/browser-resume.mjs http://127.0.0.1:PORT/ http://127.0.0.1:PORT2/debug/cut-clients \
//        http://127.0.0.1:PORT2/reload [screenshot.png]
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, cutURL, reloadURL, shot] = process.argv.slice(2);
if (!base || !cutURL || !reloadURL) {
  console.error("usage: node test/browser-resume.mjs http://host:port/ http://admin/debug/cut-clients http://admin/reload [screenshot.png]");
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: no result within 90s");
  process.exit(1);
}, 90000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
let ok = false;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const count = () => page.$eval("#clock", (l) => Number(l.dataset.count || 0));
  const waitTicks = async (n, what) => {
    const want = (await count()) + n;
    await page.waitForFunction((w) => Number(document.getElementById("clock").dataset.count || 0) >= w, want, { timeout: 15000 })
      .catch(() => { throw new Error(`no ${n} clock ticks ${what}`); });
  };
  const waitResumes = async (n, what) => {
    await page.waitForFunction((w) => Number(document.getElementById("resumes").textContent) >= w &&
      document.getElementById("conn-state").dataset.state === "resumed", n, { timeout: 15000 })
      .catch(async () => {
        const st = await page.$eval("#conn-state", (e) => e.dataset.state + " " + e.textContent);
        const rs = await page.$eval("#rs-status", (e) => e.textContent);
        throw new Error(`no resume after ${what}: state ${st}, resumes ${await page.$eval("#resumes", (e) => e.textContent)}, ${rs}`);
      });
  };

  // KEEPALIVEs the page sends on its /rsocket sockets after the first one (resumed sockets): rsocket-js
  // stops its own sender when the first socket closes, the page sends them instead (with its position).
  let sockets = 0;
  const resumedKeepalives = [];
  page.on("websocket", (ws) => {
    if (!ws.url().endsWith("/rsocket")) return;
    const n = sockets++;
    ws.on("framesent", ({ payload }) => {
      if (n > 0 && typeof payload !== "string" && payload.length >= 14 && payload[4] >> 2 === 3) {
        resumedKeepalives.push(payload.readBigUInt64BE(6));
      }
    });
  });
  await page.goto(base, { waitUntil: "load" });
  await page.waitForSelector("#rs-status.ok", { timeout: 10000 });
  await waitTicks(2, "before the cuts");
  // The chat channel too: opened before the cuts, used again after them.
  const chat = async (text, n) => {
    await page.fill("#rs-input", text);
    await page.click("#rs-form button");
    await page.waitForFunction((w) => document.getElementById("rs-chat").children.length >= w, n, { timeout: 10000 })
      .catch(() => { throw new Error("no echo of " + JSON.stringify(text)); });
  };
  await page.waitForSelector("#rs-form[data-ready]");
  await chat("before the cuts", 1);

  // Cut 1: the page's button (POST /demo/cut). The time to the resume is logged, not asserted.
  let t0 = Date.now();
  await page.click("#cut");
  await page.waitForFunction(() => /^cut [1-9]/.test(document.getElementById("cut-result").textContent), null, { timeout: 10000 })
    .catch(async () => { throw new Error("button: " + (await page.$eval("#cut-result", (e) => e.textContent))); });
  console.log("button: " + (await page.$eval("#cut-result", (e) => e.textContent)));
  await waitResumes(1, "the button's cut");
  console.log(`resumed ${Date.now() - t0} ms after the button's click`);
  await waitTicks(2, "after the button's cut");

  // Cut 2: the admin endpoint, from outside the page.
  t0 = Date.now();
  const r = await fetch(cutURL, { method: "POST" });
  const body = await r.text();
  console.log("admin cut: " + r.status + " " + body.trim());
  if (r.status !== 200 || !/"cut": [1-9]/.test(body)) throw new Error("admin cut answered " + r.status + " " + body);
  await waitResumes(2, "the admin cut");
  console.log(`resumed ${Date.now() - t0} ms after the admin cut`);
  await waitTicks(2, "after the admin cut");

  await chat("after the cuts", 2);
  const echoes = await page.$$eval("#rs-chat li", (lis) => lis.map((l) => l.textContent).reverse());
  console.log("rsocket chat across the cuts: " + JSON.stringify(echoes));
  if (JSON.stringify(echoes) !== JSON.stringify(["echo: before the cuts", "echo: after the cuts"])) {
    throw new Error("chat channel across the cuts: " + JSON.stringify(echoes));
  }

  // The resumed session keeps confirming what it received (the gateway drops it from its resume buffer).
  for (let i = 0; i < 150 && resumedKeepalives.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  if (resumedKeepalives.length === 0) throw new Error("no KEEPALIVE sent on the resumed socket");
  const pos = resumedKeepalives[resumedKeepalives.length - 1];
  console.log(`keepalives after the resume: ${resumedKeepalives.length}, last received position ${pos}`);
  if (pos === 0n) throw new Error("KEEPALIVE on the resumed socket carries position 0");
  const state = await page.$eval("#conn-state", (e) => e.dataset.state);
  if (state !== "resumed") throw new Error("after the keepalive the state is " + state);

  const st = await page.evaluate(() => {
    const l = document.getElementById("clock");
    return {
      count: Number(l.dataset.count || 0),
      gaps: l.dataset.gaps,
      items: [...l.querySelectorAll("li")].map((li) => li.textContent).reverse(),
      resumes: document.getElementById("resumes").textContent,
      state: document.getElementById("conn-state").textContent,
    };
  });
  console.log("clock items: " + JSON.stringify(st.items));
  console.log(`resumes: ${st.resumes}, state: ${st.state}, ticks: ${st.count}, gaps: ${st.gaps || 0}`);
  const ticks = st.items.map((t) => {
    const m = /^tick (\d+) +\d\d:\d\d:\d\d\.\d{3}$/.exec(t);
    if (!m) throw new Error("clock line " + JSON.stringify(t));
    return Number(m[1]);
  });
  for (let i = 1; i < ticks.length; i++) {
    if (ticks[i] !== ticks[i - 1] + 1) throw new Error(`ticks not consecutive: ${ticks[i - 1]} then ${ticks[i]}`);
  }
  if (st.gaps) throw new Error(`${st.gaps} ticks were not the previous one plus one`);
  if (st.count < 6 || ticks.length !== Math.min(st.count, 12)) throw new Error(`${st.count} ticks counted, ${ticks.length} listed`);
  if (st.resumes !== "2") throw new Error("resumes " + st.resumes + ", want 2");
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  if (shot) await page.screenshot({ path: shot });

  // The control: a resume the gateway refuses is seen as such (new session, gap), not as a resume.
  const rr = await fetch(reloadURL, { method: "POST" });
  if (rr.status !== 200) throw new Error("reload answered " + rr.status);
  await page.click("#cut");
  await page.waitForFunction(() => document.getElementById("conn-state").dataset.state === "new-session", null, { timeout: 15000 })
    .catch(async () => { throw new Error("no new session after a refused resume: " + (await page.$eval("#conn-state", (e) => e.textContent))); });
  await page.waitForFunction(() => Number(document.getElementById("clock").dataset.gaps || 0) >= 1, null, { timeout: 15000 })
    .catch(() => { throw new Error("no tick gap counted after a refused resume"); });
  const after = await page.evaluate(() => ({
    resumes: document.getElementById("resumes").textContent,
    last: document.getElementById("clock").dataset.last,
    status: document.getElementById("rs-status").textContent,
  }));
  console.log(`control (resume refused after a reload): state new-session, resumes ${after.resumes}, clock restarted at tick ${after.last}`);
  if (after.resumes !== "2" || Number(after.last) > 2) throw new Error("control: " + JSON.stringify(after));
  console.log("PASS browser resume");
  ok = true;
} catch (e) {
  console.log("FAIL browser resume: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
process.exit(ok ? 0 : 1);
