// The real socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4) against
// tests/interop/apps/sio-features (allowEIO3) on port 3204, over websocket only and over
// polling only: "/" joined without a CONNECT, events, acks both ways, binary (octet-stream
// polling payloads), a custom namespace with query auth, middleware refusal as an `error`
// event carrying the data (spec/protocol.md §7), and a v2 client meeting a v4 client.
"use strict";

const assert = require("node:assert/strict");
const ioV2 = require("socket.io-client-v2");
const { io: ioV4 } = require("socket.io-client");
const h = require("./lib/harness");

const server = h.server({ app: "tests/interop/apps/sio-features", port: 3204 });
const URL = `http://127.0.0.1:${server.port}`;
const TRANSPORTS = ["websocket", "polling"];

let counter = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++counter}`;

function client(transport, nsp = "/", opts = {}) {
  const socket = ioV2(URL + nsp, { transports: [transport], forceNew: true, reconnection: false, ...opts });
  h.defer(() => socket.io.engine && socket.io.engine.close());
  return socket;
}

// v2 reports a refused namespace with `error`, an unreachable server with connect_error.
function connected(socket, ms = 3000) {
  if (socket.connected) return Promise.resolve(socket);
  return h.withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", reject);
      socket.once("error", (data) => reject(Object.assign(new Error("refused"), { data })));
    }),
    ms,
    "connect",
  );
}

const connect = (transport, nsp, opts) => connected(client(transport, nsp, opts));

// Binary arrives as Buffer or ArrayBuffer depending on the transport: compare as Buffer.
function norm(v) {
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

function once(socket, event, ms = 2000) {
  return h.withTimeout(new Promise((resolve) => socket.once(event, (...args) => resolve(norm(args)))), ms, `event ${event}`);
}

function call(socket, event, ...args) {
  return h.withTimeout(new Promise((resolve) => socket.emit(event, ...args, (...reply) => resolve(norm(reply)))), 3000, `ack of ${event}`);
}

async function until(check, what, ms = 2000) {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await h.sleep(10)) {
    if (await check()) return;
  }
  throw new Error(`timeout after ${ms} ms: ${what}`);
}

const ARGS = [1, -2.5, 0, "str", "", "héllo € 😀", true, false, null, [], {}, [1, [2, []]], { a: { b: {} }, list: [{}, []] }];
const BINARY = { top: Buffer.from([0, 1, 2, 255]), nested: { a: Buffer.from("abc"), list: [{ deep: Buffer.from([9]) }] } };

for (const T of TRANSPORTS) {
  const test = (name, fn, opts) => h.test(`[v2 ${T}] ${name}`, fn, opts);

  test("/ is joined without a CONNECT; the socket id is the Engine.IO sid; the server sees protocol 3", async () => {
    const socket = await connect(T, "/", { query: { custom: "x" }, extraHeaders: { "x-plume-test": "yes" } });
    assert.equal(socket.id, socket.io.engine.id);
    const [me] = await call(socket, "whoami");
    assert.deepEqual(me, {
      id: socket.id,
      conn_id: socket.io.engine.id,
      transport: T,
      protocol: 3,
      nsp: "/",
      auth: {},
      query_custom: "x",
      query_eio: "3",
      header: "yes",
      url_has_path: true,
      secure: false,
      issued_type: "number",
      time_type: "string",
      address_type: "string",
    });
  });

  test("events: many arguments of every JSON type come back exactly", async () => {
    const socket = await connect(T);
    const back = once(socket, "echo-back");
    socket.emit("echo", ...ARGS);
    assert.deepStrictEqual(await back, ARGS);
  });

  test("acks: client → server (callback and return values)", async () => {
    const socket = await connect(T);
    assert.deepStrictEqual(await call(socket, "echo-ack", ...ARGS), ARGS);
    assert.deepStrictEqual(await call(socket, "echo-return", "a", [], {}), ["a", [], {}]);
    assert.deepStrictEqual(await call(socket, "sum", 2, 3), [5]);
  });

  test("acks: server → client, answered and timed out", async () => {
    const socket = await connect(T);
    let answer = true;
    socket.on("question", (q, cb) => answer && cb(`${q}!`));
    assert.deepEqual(await call(socket, "ask", 1000, "cb"), [null, "q1!"]);
    assert.deepEqual(await call(socket, "ask", 1000, "wait"), [null, "q1!"]);
    answer = false;
    assert.deepEqual(await call(socket, "ask", 200, "wait"), ["operation has timed out", null]);
    assert.deepEqual(await call(socket, "calls"), [3]);
  });

  test("binary: Buffers nested in objects, both ways, as an event and as an ack", async () => {
    const socket = await connect(T);
    const back = once(socket, "echo-back");
    socket.emit("echo", BINARY, Buffer.from("tail"));
    assert.deepStrictEqual(await back, [BINARY, Buffer.from("tail")]);
    assert.deepStrictEqual(await call(socket, "echo-ack", BINARY), [BINARY]);
    const [values] = await call(socket, "server-values");
    assert.deepStrictEqual(values.nested, { deep: { bin: Buffer.from("xyz") } });
    assert.deepStrictEqual(values.bin, Buffer.from([0, 1, 2, 255]));
  });

  test("custom namespace: the ?token=abc query is the auth; the id is /custom#<sid>", async () => {
    const socket = client(T, "/custom?token=abc");
    const auth = once(socket, "auth");
    await connected(socket);
    assert.deepStrictEqual(await auth, [{ token: "abc" }]);
    assert.equal(socket.id, `/custom#${socket.io.engine.id}`);
    const [me] = await call(socket, "whoami");
    assert.deepStrictEqual(me, { id: socket.id, nsp: "/custom", auth: { token: "abc" } });
    const back = once(socket, "message-back");
    socket.emit("message", 1, "2", { 3: [true] });
    assert.deepStrictEqual(await back, [1, "2", { 3: [true] }]);
  });

  test("middleware refusal: an `error` event with the error data; the right token connects", async () => {
    const err = await connect(T, "/private", { query: { token: "wrong" } }).then(
      () => null,
      (e) => e,
    );
    assert.ok(err, "/private connected with a wrong token");
    assert.deepStrictEqual(err.data, { code: 42 });
    const ok = client(T, "/private?token=secret");
    const welcome = once(ok, "welcome");
    await connected(ok);
    assert.deepStrictEqual(await welcome, ["/private"]);
  });

  test("unknown namespace: an `error` event with {message: Invalid namespace}", async () => {
    const err = await connect(T, "/nope").then(
      () => null,
      (e) => e,
    );
    assert.ok(err, "/nope connected");
    assert.deepStrictEqual(err.data, { message: "Invalid namespace" }); // what socket.io 4.8 sends v3 peers
  });

  test("rooms: socket:to reaches the other v2 client in the room only", async () => {
    const [A, B, C] = await Promise.all([connect(T), connect(T), connect(T)]);
    const r = unique("v2room");
    await call(A, "join", r);
    await call(B, "join", r);
    const got = [A, B, C].map(() => []);
    [A, B, C].forEach((s, i) => s.on("room-msg", (...args) => got[i].push(norm(args))));
    await call(A, "to", r, "hi", Buffer.from([1]));
    await until(() => got[1].length === 1, "B got the message");
    await h.sleep(150);
    assert.deepStrictEqual(got, [[], [[r, "hi", Buffer.from([1])]], []]);
  });

  test('disconnect: socket:disconnect() → "io server disconnect"; a client disconnect is seen by the server', async () => {
    const [A, B, C] = await Promise.all([connect(T), connect(T), connect(T)]);
    const gone = once(A, "disconnect");
    A.emit("kick");
    assert.deepEqual(await gone, ["io server disconnect"]);
    const id = C.id;
    C.disconnect();
    let reason;
    await until(async () => (reason = (await call(B, "reason-of", id))[0]) !== null, "the server saw C leave");
    assert.equal(reason, "client namespace disconnect");
  });

  test("a v2 client and a v4 client share a room, binary included", async () => {
    const v2 = await connect(T);
    const v4 = ioV4(URL, { transports: [T], forceNew: true, reconnection: false });
    h.defer(() => v4.disconnect());
    await h.withTimeout(new Promise((resolve) => v4.once("connect", resolve)), 3000, "v4 connect");
    const r = unique("mixed");
    await call(v2, "join", r);
    await new Promise((resolve) => v4.emit("join", r, resolve));
    const toV4 = h.withTimeout(new Promise((resolve) => v4.once("room-msg", (...a) => resolve(a))), 2000, "v4 room-msg");
    const toV2 = once(v2, "room-msg");
    await call(v2, "to", r, { from: "v2", b: Buffer.from([2]) });
    await new Promise((resolve) => v4.emit("to", r, { from: "v4", b: Buffer.from([4]) }, resolve));
    assert.deepStrictEqual(await toV4, [r, { from: "v2", b: Buffer.from([2]) }]);
    assert.deepStrictEqual(await toV2, [r, { from: "v4", b: Buffer.from([4]) }]);
  });
}

h.run("socketio-client-v2");
