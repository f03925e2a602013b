// The chat apps in headless Debian chromium (playwright-core) and through @feathersjs/client
// in Node: the default app (the repository root, what `make run` serves) on port 3331 and
// examples/chat on port 3332 go through the same tests. Each page loads socket.io-client and
// @feathersjs/client from Plume (/socket.io/socket.io.js, /feathers/feathers.js); two users
// sign up in two browser contexts, see each other online, chat live, keep the history
// across a reload, page back through older messages; anonymous connections get neither
// messages nor their events (the generated channels). Screenshots: tests/artifacts/chat-app.png
// (examples/chat) and tests/artifacts/chat-app.default.png (the default app).
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/client");
const h = require("./lib/harness");
const { request } = require("./lib/peer");
const { rejects } = require("./lib/client");
const { launch } = require("./lib/browser");

const APPS = [
  { name: "default", app: ".", port: 3331, screenshot: "chat-app.default.png" },
  { name: "chat", app: "examples/chat", port: 3332, screenshot: "chat-app.png" },
];
const PAGE_SIZE = 20; // the pages' page size (public/chat.js)
const PASSWORD = "correct horse";

let counter = 0;
const unique = (who) => `${who}.${(Date.now() % 1e6).toString(36)}${++counter}@example.com`;
const nameOf = (email) => email.split("@")[0];

// A page of the app in a fresh browser context (its own localStorage: its own login).
// Page errors are collected in page.errors.
async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err.message));
  await page.goto(url);
  return page;
}

// Fills the login form and presses "Sign up" (or "Log in"); resolves in the chat view.
async function enter(page, email, { signUp = true } = {}) {
  await page.waitForSelector("#login-view:not([hidden])", { timeout: 5000 });
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await page.click(signUp ? "#signup" : "#login");
  await page.waitForSelector("#chat-view:not([hidden])", { timeout: 5000 });
}

const texts = (page, selector) => page.$$eval(selector, (els) => els.map((el) => el.textContent));

// Waits until the texts of selector's elements satisfy check (a function of the list).
async function waitTexts(page, selector, check, what) {
  const deadline = Date.now() + 5000;
  let last;
  while (Date.now() < deadline) {
    last = await texts(page, selector);
    if (check(last)) return last;
    await h.sleep(50);
  }
  throw new Error(`${what}: ${selector} shows ${JSON.stringify(last)}`);
}

const includesAll = (wanted) => (list) => wanted.every((w) => list.includes(w));

async function send(page, text) {
  await page.fill("#text", text);
  await page.click("#send");
}

// A Feathers client in Node (@feathersjs/client, as the page uses it), closed after the run.
function client(port) {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true });
  h.defer(() => socket.disconnect());
  const app = feathers();
  app.configure(feathers.socketio(socket));
  app.configure(feathers.authentication({ storage: new feathers.authentication.MemoryStorage() }));
  return app;
}

for (const spec of APPS) {
  const server = h.server({ name: spec.name, app: spec.app, port: spec.port });
  const URL = `http://127.0.0.1:${spec.port}/`;

  h.test(`${spec.name}: the page, /socket.io/socket.io.js and /feathers/feathers.js are served`, async () => {
    const page = await request(server.port, "/");
    assert.equal(page.status, 200);
    assert.match(page.headers["content-type"], /^text\/html/);
    assert.match(page.text, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
    assert.match(page.text, /<script src="\/feathers\/feathers\.js"><\/script>/);
    const bundle = await request(server.port, "/feathers/feathers.js");
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers["content-type"], /javascript/);
    assert.match(bundle.text, /webpackUniversalModuleDefinition/);
    assert.match(bundle.text, /"feathers"/);
    assert.equal((await request(server.port, "/socket.io/socket.io.js")).status, 200);
    // The mounted folder is all that is served there, and nothing outside it.
    assert.equal((await request(server.port, "/feathers/feathers.min.js")).status, 200);
    assert.equal((await request(server.port, "/feathers/")).status, 404);
    assert.equal((await request(server.port, "/feathers/../package.json")).status, 400);
    assert.equal((await request(server.port, "/feathers/%2e%2e/package.json")).status, 400);
  });

  h.test(
    `${spec.name}: two users sign up, see each other online, chat live, and a reload keeps the history`,
    async () => {
      const browser = await launch();
      const alice = unique("alice");
      const bob = unique("bob");
      const a = await openPage(browser, URL);
      await enter(a, alice);
      const b = await openPage(browser, URL);
      await enter(b, bob);
      assert.equal(await a.textContent("#me"), alice);

      const both = [nameOf(alice), nameOf(bob)];
      await waitTexts(a, "#online li", includesAll(both), "alice sees both online");
      await waitTexts(b, "#online li", includesAll(both), "bob sees both online");

      const hello = `Hello from Alice, ${Date.now()}`;
      await send(a, hello);
      await waitTexts(b, "#messages li p", (l) => l.at(-1) === hello, "bob sees alice's message live");
      assert.equal(await a.inputValue("#text"), "");
      const reply = `Hi Alice! Bob here, ${Date.now()}`;
      await send(b, reply);
      await waitTexts(a, "#messages li p", (l) => l.at(-2) === hello && l.at(-1) === reply, "alice sees bob's reply");
      assert.deepEqual((await texts(a, "#messages li .author")).slice(-2), both);

      await b.reload();
      await b.waitForSelector("#chat-view:not([hidden])", { timeout: 5000 });
      await waitTexts(b, "#messages li p", (l) => l.at(-2) === hello && l.at(-1) === reply, "bob's history after a reload");
      assert.equal(await b.textContent("#me"), bob);
      await waitTexts(a, "#online li", includesAll(both), "alice sees bob online again");
      await waitTexts(b, "#online li", includesAll(both), "bob sees both after the reload");
      await a.screenshot({ path: path.join(h.ROOT, "tests/artifacts", spec.screenshot) });

      await b.click("#logout");
      await b.waitForSelector("#login-view:not([hidden])", { timeout: 5000 });
      await waitTexts(a, "#online li", (l) => l.includes(nameOf(alice)) && !l.includes(nameOf(bob)), "bob left");
      assert.deepEqual([...a.errors, ...b.errors], []);
    },
    { timeout: 40000 },
  );

  h.test(
    `${spec.name}: a returning user logs in and pages back through older messages`,
    async () => {
      const email = unique("carol");
      const carol = client(server.port);
      await carol.service("users").create({ email, password: PASSWORD });
      await carol.authenticate({ strategy: "local", email, password: PASSWORD });
      const bulk = Array.from({ length: PAGE_SIZE + 5 }, (_, i) => `bulk ${i} ${email}`);
      for (const text of bulk) await carol.service("messages").create({ text });

      const page = await openPage(await launch(), URL);
      await enter(page, email, { signUp: false });
      const first = await waitTexts(page, "#messages li p", (l) => l.length === PAGE_SIZE, "one page shown");
      assert.deepEqual(first, bulk.slice(5));
      assert.equal(await page.isVisible("#older"), true);

      await page.click("#older");
      const more = await waitTexts(page, "#messages li p", (l) => l.length > PAGE_SIZE, "an older page shown");
      assert.deepEqual(more.slice(-bulk.length), bulk);
      const { total } = await carol.service("messages").find({ query: { $limit: 0 } });
      assert.equal(more.length, Math.min(total, 2 * PAGE_SIZE));
      assert.equal(await page.isVisible("#older"), total > 2 * PAGE_SIZE);
      assert.deepEqual(page.errors, []);
    },
    { timeout: 40000 },
  );

  h.test(`${spec.name}: anonymous connections may not read messages and get no message events`, async () => {
    const anonymous = client(server.port);
    const err = await rejects(anonymous.service("messages").find());
    assert.equal(err.name, "NotAuthenticated");
    assert.equal(err.code, 401);
    assert.equal((await rejects(anonymous.service("online").find())).code, 401);
    assert.equal((await rejects(anonymous.service("messages").create({ text: "sneaky" }))).code, 401);

    const email = unique("dave");
    const dave = client(server.port);
    await dave.service("users").create({ email, password: PASSWORD });
    await dave.authenticate({ strategy: "local", email, password: PASSWORD });
    const seen = { anonymous: [], dave: [] };
    anonymous.service("messages").on("created", (m) => seen.anonymous.push(m.text));
    dave.service("messages").on("created", (m) => seen.dave.push(m.text));
    const text = `for members only ${Date.now()}`;
    const created = await dave.service("messages").create({ text });
    assert.equal(created.user.email, email);
    assert.equal(created.password, undefined);
    for (const deadline = Date.now() + 2000; !seen.dave.includes(text) && Date.now() < deadline; ) await h.sleep(20);
    assert.ok(seen.dave.includes(text), "the logged-in client gets the event");
    await h.sleep(200);
    assert.deepEqual(seen.anonymous, []);

    const users = await dave.service("users").find();
    assert.ok(users.data.length > 0);
    assert.ok(users.data.every((u) => u.password === undefined), "no password leaves the server");
  });
}

h.run("chat-app");
