// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against a running gateway in
// -demo mode: loads the demo page, waits for clock items from the RSocket stream, sends a message on the
// RSocket chat channel and on the plain WebSocket chat, asserts the echoes in the DOM, and saves a
// screenshot. Usage: node test/browser.mjs http://127.0.0.1:PORT/ screenshot.png [more.png ...]
import { createRequire } from "node:module";
import { copyFileSync } from "node:fs";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, shot, ...copies] = process.argv.slice(2);
if (!base || !shot) {
  console.error("usage: node test/browser.mjs http://host:port/ screenshot.png [copy.png ...]");
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: no result within 60s");
  process.exit(1);
}, 60000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
let ok = false;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(base, { waitUntil: "load" });
  await page.waitForSelector("#rs-status.ok", { timeout: 10000 });
  await page.waitForSelector("#ws-status.ok", { timeout: 10000 });
  // At least 3 clock items (one per second).
  await page.waitForFunction(() => Number(document.getElementById("clock").dataset.count || 0) >= 3, null, { timeout: 15000 });
  // RSocket chat: two messages, two echoes in order.
  await page.waitForSelector("#rs-form[data-ready]");
  for (const text of ["hello over rsocket", "second rsocket message"]) {
    await page.fill("#rs-input", text);
    await page.click("#rs-form button");
  }
  await page.waitForFunction(() => document.getElementById("rs-chat").children.length >= 2, null, { timeout: 10000 });
  const rsEchoes = await page.$$eval("#rs-chat li", (lis) => lis.map((l) => l.textContent).reverse());
  // WebSocket chat.
  await page.waitForSelector("#ws-form[data-ready]");
  await page.fill("#ws-input", "hello over websocket");
  await page.click("#ws-form button");
  await page.waitForFunction(() => document.getElementById("ws-chat").children.length >= 1, null, { timeout: 10000 });
  const wsEchoes = await page.$$eval("#ws-chat li", (lis) => lis.map((l) => l.textContent));
  const clock = await page.$$eval("#clock li", (lis) => lis.map((l) => l.textContent));
  console.log("clock items: " + JSON.stringify(clock.slice(0, 3)));
  console.log("rsocket chat: " + JSON.stringify(rsEchoes));
  console.log("websocket chat: " + JSON.stringify(wsEchoes));
  const want = ["echo: hello over rsocket", "echo: second rsocket message"];
  if (JSON.stringify(rsEchoes) !== JSON.stringify(want)) throw new Error("rsocket echoes " + JSON.stringify(rsEchoes));
  if (wsEchoes[0] !== "echo: hello over websocket") throw new Error("websocket echo " + JSON.stringify(wsEchoes));
  if (!/^tick \d+ +\d\d:\d\d:\d\d\.\d{3}$/.test(clock[0])) throw new Error("clock item " + clock[0]);
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  await page.screenshot({ path: shot });
  for (const c of copies) copyFileSync(shot, c);
  console.log("PASS browser demo; screenshot " + shot);
  ok = true;
} catch (e) {
  console.log("FAIL browser demo: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
process.exit(ok ? 0 : 1);
