// Real Engine.IO clients against examples/engineio-echo: engine.io-client v6 (EIO=4) over
// polling, websocket and the polling → websocket upgrade, and engine.io-client 3.x (EIO=3,
// the server's allowEIO3) over the same, with the v3 heartbeat driven by the client.
"use strict";

const assert = require("node:assert/strict");
const h = require("./lib/harness");
const { eio } = require("./lib/peer");
const { queued, eventually } = require("./lib/client");
const expect = require("./lib/expect");
const { Socket } = require("engine.io-client");
const SocketV3 = require("engine.io-client-v3");

const { test, sleep } = h;
const E = eio(h.server({ app: "examples/engineio-echo", port: 3103 }));
const URL = `http://127.0.0.1:${E.port}`;
const EVENTS = ["open", "message", "close", "upgrade", "ping", "pong", "error"];

async function v4(transports, options = {}) {
  const socket = new Socket(URL, { path: "/engine.io/", transports, ...options });
  const c = queued(socket, EVENTS);
  await c.next("open", 3000);
  return { socket, c };
}

async function v3(transports, options = {}) {
  const socket = new SocketV3(URL, { path: "/engine.io/", transports, ...options });
  const c = queued(socket, EVENTS);
  await c.next("open", 3000);
  return { socket, c };
}

const bytesOf = (x) => (x instanceof ArrayBuffer ? Buffer.from(x) : Buffer.isBuffer(x) ? x : null);

function sameBytes(got, expected, what = "binary message") {
  const b = bytesOf(got);
  assert.ok(b, `${what}: expected binary, got ${typeof got} ${String(got).slice(0, 60)}`);
  assert.ok(b.equals(expected), `${what}: got ${b.length} bytes ${b.subarray(0, 16).toString("hex")}…`);
}

async function echoText(socket, c, text) {
  socket.send(text);
  const got = await c.next("message", 3000);
  assert.equal(typeof got, "string", `expected text, got ${typeof got}`);
  assert.ok(got === text, `echo of ${text.length} chars differs: ${got.slice(0, 40)}…`);
}

// The server has forgotten the session: a GET with its sid gets 400 code 1.
async function sessionGone(sid) {
  await eventually(async () => {
    const res = await E.get(`EIO=4&transport=polling&sid=${sid}`);
    expect.eioError(res, 400, 1, "Session ID unknown");
  });
}

const payload = (n, ch = "x") => ch.repeat(n);
const randomBytes = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919 + 13) & 0xff));

// ---------------------------------------------------------------------------------------------
// engine.io-client v6

for (const transport of ["polling", "websocket"]) {
  test(`engine.io-client v6 ${transport} only: opens on ${transport}, text echo (ASCII and UTF-8)`, async () => {
    const { socket, c } = await v4([transport]);
    assert.equal(socket.transport.name, transport);
    await echoText(socket, c, "hello");
    await echoText(socket, c, "héllo € ✓ 😀");
    assert.equal(socket.transport.name, transport);
  });

  test(`engine.io-client v6 ${transport} only: binary echo as Buffer and as ArrayBuffer`, async () => {
    const { socket, c } = await v4([transport]);
    socket.send(Buffer.from([1, 2, 3, 4]));
    const got = await c.next("message");
    assert.ok(Buffer.isBuffer(got), `default binaryType gives a Buffer, got ${got && got.constructor.name}`);
    sameBytes(got, Buffer.from([1, 2, 3, 4]));
    socket.binaryType = "arraybuffer";
    socket.send(Uint8Array.from([0, 255, 128, 10]).buffer);
    const ab = await c.next("message");
    assert.ok(ab instanceof ArrayBuffer, `binaryType arraybuffer gives an ArrayBuffer, got ${ab && ab.constructor.name}`);
    sameBytes(ab, Buffer.from([0, 255, 128, 10]));
  });

  test(`engine.io-client v6 ${transport}: 200 messages back to back arrive in order`, async () => {
    const { socket, c } = await v4([transport]);
    for (let i = 0; i < 200; i++) socket.send(i % 10 === 9 ? Buffer.from([i]) : `m${i}`);
    for (let i = 0; i < 200; i++) {
      const got = await c.next("message", 3000);
      if (i % 10 === 9) sameBytes(got, Buffer.from([i]), `message ${i}`);
      else assert.equal(got, `m${i}`);
    }
  });

  test(`engine.io-client v6 ${transport}: large text (998000 bytes) and binary (700000) messages`, async () => {
    const { socket, c } = await v4([transport]);
    await echoText(socket, c, payload(249000, "é") + payload(500000));
    const big = randomBytes(700000);
    socket.send(big);
    sameBytes(await c.next("message", 3000), big, "700000-byte echo");
  });

  test(`engine.io-client v6 ${transport}: heartbeat keeps the session over 4 ping intervals`, async () => {
    const { socket, c } = await v4([transport]);
    await sleep(1300);
    assert.ok(c.count("ping") >= 3, `${c.count("ping")} pings in 1.3 s, pingInterval is 300`);
    assert.equal(c.count("close"), 0, "closed during the heartbeat");
    await echoText(socket, c, "still here");
  });

  test(`engine.io-client v6 ${transport}: close from the client ends the session on the server`, async () => {
    const { socket, c } = await v4([transport]);
    const sid = socket.id;
    socket.close();
    const [reason] = await c.next("close");
    assert.equal(reason, "forced close");
    await sessionGone(sid);
  });
}

test("engine.io-client v6 polling → websocket upgrade, then echo over websocket", async () => {
  const { socket, c } = await v4(["polling", "websocket"]);
  assert.equal(socket.transport.name, "polling");
  await c.next("upgrade", 3000);
  assert.equal(socket.transport.name, "websocket");
  await echoText(socket, c, "after upgrade");
  socket.send(Buffer.from([9, 8, 7]));
  sameBytes(await c.next("message"), Buffer.from([9, 8, 7]));
  expect.eioError(await E.get(`EIO=4&transport=polling&sid=${socket.id}`), 400, 3, "Bad request");
});

test("engine.io-client v6: messages sent during the upgrade all arrive, in order", async () => {
  const { socket, c } = await v4(["polling", "websocket"]);
  const n = 50;
  const sender = (async () => {
    for (let i = 0; i < n; i++) {
      socket.send(`u${i}`);
      await sleep(10);
    }
  })();
  for (let i = 0; i < n; i++) assert.equal(await c.next("message", 3000), `u${i}`);
  await sender;
  assert.ok(c.count("upgrade") === 1 || socket.transport.name === "websocket", "upgrade did not happen");
});

// ---------------------------------------------------------------------------------------------
// engine.io-client 3.x (EIO=3) against allowEIO3

for (const [label, transports, options] of [
  ["polling (binary payloads)", ["polling"], {}],
  ["polling (forceBase64)", ["polling"], { forceBase64: true }],
  ["websocket", ["websocket"], {}],
]) {
  test(`engine.io-client 3.x ${label}: text and binary echo`, async () => {
    const { socket, c } = await v3(transports, options);
    assert.equal(socket.transport.name, transports[0]);
    await echoText(socket, c, "hello");
    await echoText(socket, c, "héllo € ✓ 😀");
    socket.send(Buffer.from([1, 2, 3, 4]));
    sameBytes(await c.next("message"), Buffer.from([1, 2, 3, 4]));
    socket.send("after binary");
    assert.equal(await c.next("message"), "after binary");
  });
}

test("engine.io-client 3.x polling → websocket upgrade, then echo", async () => {
  const { socket, c } = await v3(["polling", "websocket"]);
  await c.next("upgrade", 3000);
  assert.equal(socket.transport.name, "websocket");
  await echoText(socket, c, "after upgrade");
  socket.send(Buffer.from([5, 6]));
  sameBytes(await c.next("message"), Buffer.from([5, 6]));
});

for (const transport of ["polling", "websocket"]) {
  test(`engine.io-client 3.x ${transport}: the client's pings are answered, session kept`, async () => {
    const { socket, c } = await v3([transport]);
    await sleep(1300);
    assert.ok(c.count("pong") >= 3, `${c.count("pong")} pongs for ${c.count("ping")} pings in 1.3 s`);
    assert.equal(c.count("close"), 0, "closed during the heartbeat");
    await echoText(socket, c, "still here");
  });

  test(`engine.io-client 3.x ${transport}: close from the client ends the session on the server`, async () => {
    const { socket, c } = await v3([transport]);
    const sid = socket.id;
    socket.close();
    await c.next("close");
    await sessionGone(sid);
  });
}

h.run("engineio-client");
