// examples/socketio-chat in headless Debian chromium, driven by playwright-core, on port 3206:
// the page loads the client Plume serves at /socket.io/socket.io.js, gets "hello world" as the
// ack of `req`, sees others join (`hi`), and a message typed in one page shows in the other.
// The last run's screenshot is tests/artifacts/chat.png.
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("./lib/harness");
const { request } = require("./lib/peer");
const { launch } = require("./lib/browser");

const server = h.server({ app: "examples/socketio-chat", port: 3206 });
const URL = `http://127.0.0.1:${server.port}/`;
const SCREENSHOT = path.join(h.ROOT, "tests/artifacts/chat.png");

// Opens the chat in a fresh browser context; resolves once the page's socket is connected
// and the `req` ack has been shown. Page errors fail the test.
async function openChat(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(URL);
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("server says: hello world"), null, {
    timeout: 5000,
  });
  assert.deepEqual(errors, []);
  page.socketId = await page.evaluate(() => socket.id);
  return page;
}

const messages = (page) => page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));

h.test("serveClient: /socket.io/socket.io.js is the socket.io-client v4 browser bundle", async () => {
  const res = await request(server.port, "/socket.io/socket.io.js");
  assert.equal(res.status, 200);
  assert.match(res.headers["content-type"], /javascript/);
  assert.match(res.text, /^\/\*!\n \* Socket\.IO v4\.\d+\.\d+\n/);
});

h.test(
  "the page connects, its req is acked with hello world, and the browser upgrades to websocket",
  async () => {
    const page = await openChat(await launch());
    assert.match(await page.textContent("#status"), /^connected as [\w-]+, server says: hello world$/);
    await page.waitForFunction(() => socket.io.engine.transport.name === "websocket", null, { timeout: 5000 });
  },
  { timeout: 20000 },
);

h.test(
  "two pages: the first sees the second join, a message typed in one appears in both",
  async () => {
    const browser = await launch();
    const a = await openChat(browser);
    const b = await openChat(browser);
    const joined = `new client: I'm coming, my name: client_${b.socketId}.`;
    await a.waitForFunction((text) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === text), joined, {
      timeout: 3000,
    });

    const text = `hello from A ${Date.now()}`;
    await a.fill("#input", text);
    await a.click("#send");
    const line = `client_${a.socketId} says: ${text}`;
    for (const page of [b, a]) {
      await page.waitForFunction((want) => document.querySelector("#messages li")?.textContent === want, line, { timeout: 3000 });
    }
    assert.equal(await a.inputValue("#input"), "");
    assert.deepEqual(await messages(b), [line]);
    assert.deepEqual(await messages(a), [line, joined]);
    await b.screenshot({ path: SCREENSHOT, fullPage: true });
  },
  { timeout: 30000 },
);

h.run("chat-browser");
