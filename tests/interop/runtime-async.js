// Async Lua with real Feathers clients (DESIGN.md §4, reliability.md §3.5 and §4.6
// #39-40) against tests/interop/apps/runtime-async on port 3403, served with a 300 ms
// call budget and a 64 MiB memory cap. A slow call (plume.sleep, an HTTP request to a
// local server) never delays a fast call on another connection; an endless loop and a
// runaway allocation each fail only their own call with a GeneralError, and the server
// carries on; waiting from a coroutine of one's own is a clear error.
"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const h = require("./lib/harness");

const server = h.server({
  app: "tests/interop/apps/runtime-async",
  port: 3403,
  args: ["--lua-call-timeout", "300", "--lua-memory-limit", String(64 * 1024 * 1024)],
});

function client() {
  const socket = io(`http://127.0.0.1:${server.port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
  const app = feathers.feathers();
  app.configure(socketio(socket, { timeout: 10000 }));
  app.disconnects = 0;
  socket.on("disconnect", () => app.disconnects++);
  h.defer(() => socket.disconnect());
  return app;
}

async function connected() {
  const app = client();
  await h.withTimeout(new Promise((resolve, reject) => {
    app.io.once("connect", resolve);
    app.io.once("connect_error", reject);
  }), 3000, "connect");
  return app;
}

async function rejects(promise) {
  return promise.then(() => assert.fail("expected the call to fail"), (err) => err);
}

// Runs fast calls on b, one after the other, until done() is true; returns their latencies.
async function fastCalls(b, done) {
  const latencies = [];
  while (!done()) {
    const t = Date.now();
    assert.equal(await b.service("fast").find(), "fast");
    latencies.push(Date.now() - t);
    await h.sleep(20);
  }
  return latencies;
}

async function slowAndFast(slowCall) {
  const a = await connected();
  const b = await connected();
  let finished = false;
  const t0 = Date.now();
  const slow = slowCall(a).finally(() => (finished = true));
  const latencies = await fastCalls(b, () => finished);
  const result = await slow;
  return { result, elapsed: Date.now() - t0, latencies };
}

h.test("§4 a slow call (plume.sleep) never delays a fast call on another connection", async () => {
  const { result, elapsed, latencies } = await slowAndFast((a) => a.service("slow").find({ query: { ms: 600 } }));
  assert.equal(result, "slow");
  assert.ok(elapsed >= 550, `the slow call took ${elapsed} ms`);
  assert.ok(latencies.length >= 5, `only ${latencies.length} fast calls meanwhile`);
  assert.ok(Math.max(...latencies) < 150, `fast calls took up to ${Math.max(...latencies)} ms`);
});

h.test("§4 an HTTP request to a slow local server never delays a fast call", async () => {
  const peer = http.createServer((req, res) => {
    setTimeout(() => {
      res.setHeader("Content-Type", "text/plain");
      res.end(`late ${req.method} ${req.url}`);
    }, 600);
  });
  await new Promise((resolve) => peer.listen(0, "127.0.0.1", resolve));
  h.defer(() => peer.close());
  const url = `http://127.0.0.1:${peer.address().port}/path?x=1`;
  const { result, elapsed, latencies } = await slowAndFast((a) => a.service("fetch").find({ query: { url } }));
  assert.deepEqual(result, { status: 200, body: "late GET /path?x=1", type: "text/plain" });
  assert.ok(elapsed >= 550, `the request took ${elapsed} ms`);
  assert.ok(latencies.length >= 5 && Math.max(...latencies) < 150, `fast latencies ${latencies}`);
  const refused = await rejects((await connected()).service("fetch").find({ query: { url: "http://127.0.0.1:1/" } }));
  assert.equal(refused.name, "BadGateway");
  assert.match(refused.message, /refused/);
});

h.test("§4.6 #39 an endless loop fails only its own call, with a GeneralError", async () => {
  const a = await connected();
  const b = await connected();
  const t0 = Date.now();
  const err = await rejects(a.service("spin").find());
  const elapsed = Date.now() - t0;
  assert.equal(err.name, "GeneralError");
  assert.equal(err.code, 500);
  assert.match(err.message, /time budget of 300 ms at services\/spin\.lua:\d+/);
  assert.ok(elapsed >= 250 && elapsed < 3000, `stopped after ${elapsed} ms`);
  assert.equal(await a.service("fast").find(), "fast", "the same connection goes on");
  assert.equal(await b.service("fast").find(), "fast");
  assert.equal(a.disconnects + b.disconnects, 0);
});

h.test("§4.6 #40 a runaway allocation fails only its own call (memory cap)", async () => {
  const a = await connected();
  const b = await connected();
  for (const kind of ["string", "table"]) {
    const err = await rejects(a.service("hog").find({ query: { kind } }));
    assert.equal(err.name, "GeneralError", `${kind}: ${err.name} ${err.message}`);
    assert.equal(err.code, 500);
    assert.equal(err.message, "not enough memory");
    assert.equal(await a.service("fast").find(), "fast");
    assert.equal(await b.service("fast").find(), "fast");
  }
  assert.equal(await a.service("slow").find({ query: { ms: 10 } }), "slow");
  assert.equal(a.disconnects + b.disconnects, 0);
});

h.test("§4 waiting from a coroutine of one's own is a clear error, not a hang", async () => {
  const a = await connected();
  const err = await rejects(a.service("nested").find());
  assert.match(err.message, /cannot wait here/);
  assert.equal(await a.service("fast").find(), "fast");
});

h.run("runtime-async");
