// The real socket.io-client v4 against tests/interop/apps/sio-features on port 3203, each
// scenario over websocket only and over polling only (the `transports` option), plus the
// polling → websocket upgrade. Exact comparisons: deepStrictEqual tells [] from {}, a Buffer
// from an array, 1 from "1".
"use strict";

const assert = require("node:assert/strict");
const { io, Manager } = require("socket.io-client");
const h = require("./lib/harness");
const { connected } = require("./lib/client");

const server = h.server({ app: "tests/interop/apps/sio-features", port: 3203 });
const URL = `http://127.0.0.1:${server.port}`;
const TRANSPORTS = ["websocket", "polling"];

let counter = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++counter}`;

// A client of its own (forceNew), disconnected when the test run ends.
function client(transport, nsp = "/", opts = {}) {
  const socket = io(URL + nsp, { transports: [transport], forceNew: true, reconnection: false, ...opts });
  h.defer(() => socket.disconnect());
  return socket;
}

async function connect(transport, nsp, opts) {
  return connected(client(transport, nsp, opts));
}

// Resolves with the arguments of the next `event`.
function once(socket, event, ms = 2000) {
  return h.withTimeout(new Promise((resolve) => socket.once(event, (...args) => resolve(args))), ms, `event ${event}`);
}

// Emits with an ack callback and resolves with every argument of the ack.
function call(socket, event, ...args) {
  return h.withTimeout(new Promise((resolve) => socket.emit(event, ...args, (...reply) => resolve(reply))), 3000, `ack of ${event}`);
}

// Records every `event` a socket receives.
function record(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

async function until(check, what, ms = 2000) {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await h.sleep(10)) {
    if (await check()) return;
  }
  throw new Error(`timeout after ${ms} ms: ${what}`);
}

const sortedRooms = (socket, ...rooms) => [socket.id, ...rooms].sort();

// Every JSON type, nested, with the empty array and object that must not swap.
const ARGS = [
  1,
  -2.5,
  0,
  9007199254740991,
  "str",
  "",
  "héllo € 😀",
  true,
  false,
  null,
  [],
  {},
  [1, [2, [3, []]]],
  { a: { b: { c: {} } }, list: [{}, []], order: { z: 1, a: 2 } },
];

const BINARY = {
  top: Buffer.from([0, 1, 2, 255]),
  nested: { a: Buffer.from("abc"), list: [Buffer.alloc(0), { deep: Buffer.from([9]) }], n: 1 },
};

const SERVER_VALUES = {
  int: 42,
  float: 1.5,
  negative: -7,
  text: "héllo €",
  yes: true,
  no: false,
  none: null,
  list: [1, "two", { three: 3 }],
  bin: Buffer.from([0, 1, 2, 255]),
  nested: { deep: { bin: Buffer.from("xyz") } },
};

for (const T of TRANSPORTS) {
  const test = (name, fn, opts) => h.test(`[${T}] ${name}`, fn, opts);

  test("connect: the server sees auth, query, headers, protocol 4 and the transport", async () => {
    const socket = await connect(T, "/", {
      auth: { name: "ann", token: "ok" },
      query: { custom: "x" },
      extraHeaders: { "x-plume-test": "yes" },
    });
    const [me] = await call(socket, "whoami");
    assert.deepEqual(me, {
      id: socket.id,
      conn_id: socket.io.engine.id,
      transport: T,
      protocol: 4,
      nsp: "/",
      auth: { name: "ann", token: "ok" },
      query_custom: "x",
      query_eio: "4",
      header: "yes",
      url_has_path: true,
      secure: false,
      issued_type: "number",
      time_type: "string",
      address_type: "string",
    });
    assert.notEqual(socket.id, socket.io.engine.id);
  });

  test("events: many arguments of every JSON type come back exactly", async () => {
    const socket = await connect(T);
    const back = once(socket, "echo-back");
    socket.emit("echo", ...ARGS);
    assert.deepStrictEqual(await back, ARGS);
  });

  test("acks: client → server ack with many arguments", async () => {
    const socket = await connect(T);
    assert.deepStrictEqual(await call(socket, "echo-ack", ...ARGS), ARGS);
    assert.deepStrictEqual(await call(socket, "echo-ack"), []);
  });

  test("acks: a handler's return values become the ack", async () => {
    const socket = await connect(T);
    assert.deepStrictEqual(await call(socket, "echo-return", ...ARGS), ARGS);
    assert.equal(await socket.emitWithAck("sum", 2, 3), 5);
    assert.equal(await socket.emitWithAck("sum", 0.5, 0.25), 0.75);
  });

  test("values: the Lua side sees integer, float, string, boolean, null, table and binary", async () => {
    const socket = await connect(T);
    const kinds = await call(socket, "kinds", 1, 1.5, "s", true, null, [], {}, Buffer.from([1]));
    assert.deepEqual(kinds, ["integer", "float", "string", "boolean", "null", "table", "table", "binary"]);
  });

  test("binary: Buffers nested in objects and arrays round trip as an event and as an ack", async () => {
    const socket = await connect(T);
    const back = once(socket, "echo-back");
    socket.emit("echo", BINARY, Buffer.from("tail"));
    assert.deepStrictEqual(await back, [BINARY, Buffer.from("tail")]);
    assert.deepStrictEqual(await call(socket, "echo-ack", BINARY, "text", Buffer.from([7])), [BINARY, "text", Buffer.from([7])]);
  });

  test("binary: values built in Lua (nested binaries included) arrive intact", async () => {
    const socket = await connect(T);
    assert.deepStrictEqual(await call(socket, "server-values"), [SERVER_VALUES]);
    const event = once(socket, "server-values");
    assert.deepEqual(await call(socket, "server-emit"), [true]);
    assert.deepStrictEqual(await event, [SERVER_VALUES, Buffer.from("top")]);
  });

  test("payload: a 500 kB string survives both directions", async () => {
    const socket = await connect(T);
    const big = "x".repeat(250000) + "é".repeat(125000);
    const [back] = await call(socket, "echo-ack", big);
    assert.equal(back.length, big.length);
    assert.ok(back === big, "the string changed on the way");
  });

  for (const mode of ["cb", "wait"]) {
    test(`server → client ack (${mode}): the client's answer reaches the server`, async () => {
      const socket = await connect(T);
      socket.on("question", (q, answer) => answer(`${q}!`));
      assert.deepEqual(await call(socket, "ask", 1000, mode), [null, "q1!"]);
      assert.deepEqual(await call(socket, "calls"), [1]);
    });

    test(`server → client ack (${mode}): a client that never answers gives "operation has timed out"`, async () => {
      const socket = await connect(T);
      const asked = once(socket, "question");
      const start = Date.now();
      assert.deepEqual(await call(socket, "ask", 300, mode), ["operation has timed out", null]);
      assert.ok(Date.now() - start >= 280, `timed out after ${Date.now() - start} ms, wanted 300`);
      const [q, answer] = await asked;
      assert.equal(q, "q1");
      answer("too late");
      assert.deepEqual(await call(socket, "calls"), [1]);
    });
  }

  test("socket middleware: a refused packet never reaches its handler, another one is rewritten", async () => {
    const socket = await connect(T);
    await assert.rejects(socket.timeout(300).emitWithAck("forbidden"), /operation has timed out/);
    assert.equal(await socket.emitWithAck("shout", "hey"), "HEY");
    assert.ok(socket.connected);
  });

  test("rooms: join and leave update socket.rooms (which holds the socket's own id)", async () => {
    const socket = await connect(T);
    const a = unique("a");
    const b = unique("b");
    assert.deepEqual(await call(socket, "join", a), [sortedRooms(socket, a)]);
    assert.deepEqual(await call(socket, "join", b), [sortedRooms(socket, a, b)]);
    assert.deepEqual(await call(socket, "leave", a), [sortedRooms(socket, b)]);
    assert.deepEqual(await call(socket, "leave", "never-joined"), [sortedRooms(socket, b)]);
  });

  test("rooms: socket:to, io:to():except(), socket:to():to() and io:in_ reach exactly the right sockets", async () => {
    const [A, B, C, D] = await Promise.all([connect(T), connect(T), connect(T), connect(T)]);
    const r1 = unique("r1");
    const r2 = unique("r2");
    await call(A, "join", r1);
    await call(B, "join", r1);
    await call(B, "join", r2);
    await call(C, "join", r2);
    const got = [A, B, C, D].map((s) => record(s, "room-msg"));

    await call(A, "to", r1, "from A", { n: 1 });
    await call(A, "io-to-except", r1, r2, "r1 but not r2");
    await call(D, "to-two", r1, r2, "both rooms, once");
    await call(D, "io-in", r2, "io:in_");
    await until(() => got[2].length === 2, "C got its messages");
    await h.sleep(150);

    assert.deepStrictEqual(got[0], [
      [`${r1}-${r2}`, "r1 but not r2"],
      [`${r1}+${r2}`, "both rooms, once"],
    ]);
    assert.deepStrictEqual(got[1], [
      [r1, "from A", { n: 1 }],
      [`${r1}+${r2}`, "both rooms, once"],
      [r2, "io:in_"],
    ]);
    assert.deepStrictEqual(got[2], [
      [`${r1}+${r2}`, "both rooms, once"],
      [r2, "io:in_"],
    ]);
    assert.deepStrictEqual(got[3], []);
  });

  test("rooms: after leave, a socket gets nothing sent to the room", async () => {
    const [A, B] = await Promise.all([connect(T), connect(T)]);
    const r = unique("r");
    await call(A, "join", r);
    await call(B, "join", r);
    const got = record(B, "room-msg");
    await call(A, "to", r, 1);
    await until(() => got.length === 1, "B got the first message");
    await call(B, "leave", r);
    await call(A, "to", r, 2);
    await call(A, "io-in", r, 3);
    await h.sleep(150);
    assert.deepStrictEqual(got, [[r, 1]]);
  });

  test("broadcast: socket.broadcast reaches the others but not the sender; io:emit reaches everyone", async () => {
    const [A, B, C] = await Promise.all([connect(T), connect(T), connect(T)]);
    const bcast = [A, B, C].map((s) => record(s, "bcast"));
    const all = [A, B, C].map((s) => record(s, "all"));
    const tag = unique("msg");
    await call(A, "broadcast", tag);
    await call(B, "all", tag);
    await until(() => bcast[1].length && bcast[2].length && all.every((g) => g.length), "broadcasts arrived");
    await h.sleep(150);
    const mine = (g) => g.filter(([m]) => m === tag);
    assert.deepStrictEqual(bcast.map(mine), [[], [[tag]], [[tag]]]);
    assert.deepStrictEqual(all.map(mine), [[[tag]], [[tag]], [[tag]]]);
  });

  test("flags: volatile, compress(false) and local emits are delivered to a connected client", async () => {
    const socket = await connect(T);
    const events = ["volatile", "uncompressed", "local"].map((e) => once(socket, e));
    assert.deepEqual(await call(socket, "flags", "f"), [true]);
    assert.deepStrictEqual(await Promise.all(events), [["f"], ["f"], ["f"]]);
  });

  test("namespaces: / and /custom share one Engine.IO connection, events stay in their namespace", async () => {
    const manager = new Manager(URL, { transports: [T], reconnection: false });
    h.defer(() => manager.engine && manager.engine.close());
    const main = manager.socket("/");
    const custom = manager.socket("/custom", { auth: { token: "abc" } });
    const auth = once(custom, "auth");
    await Promise.all([connected(main), connected(custom)]);
    assert.deepStrictEqual(await auth, [{ token: "abc" }]);
    const [me] = await call(main, "whoami");
    const [them] = await call(custom, "whoami");
    assert.equal(me.conn_id, manager.engine.id);
    assert.deepStrictEqual(them, { id: custom.id, nsp: "/custom", auth: { token: "abc" } });
    const onMain = record(main, "message-back");
    const back = once(custom, "message-back");
    custom.emit("message", "to custom", []);
    assert.deepStrictEqual(await back, ["to custom", []]);
    await h.sleep(100);
    assert.deepStrictEqual(onMain, []);
  });

  test("namespaces: a Lua-pattern namespace creates /dyn-N children; nsp:emit stays in its child", async () => {
    const n = 1000 + (counter++ % 1000);
    const welcome = [];
    const sockets = [`/dyn-${n}`, `/dyn-${n}`, `/dyn-${n + 1}`].map((nsp) => {
      const s = client(T, nsp);
      welcome.push(once(s, "welcome"));
      return s;
    });
    await Promise.all(sockets.map((s) => connected(s)));
    assert.deepStrictEqual(await Promise.all(welcome), [[`/dyn-${n}`], [`/dyn-${n}`], [`/dyn-${n + 1}`]]);
    const got = sockets.map((s) => record(s, "nsp-news"));
    assert.deepEqual(await call(sockets[0], "nsp-emit", "hi"), [true]);
    await until(() => got[0].length && got[1].length, "both /dyn-N sockets got the news");
    await h.sleep(100);
    assert.deepStrictEqual(got, [[[`/dyn-${n}`, "hi"]], [[`/dyn-${n}`, "hi"]], []]);
  });

  test("namespaces: a function parent accepts /fn-*; unknown namespaces get connect_error Invalid namespace", async () => {
    const fn = client(T, "/fn-abc");
    const welcome = once(fn, "welcome");
    await connected(fn);
    assert.deepStrictEqual(await welcome, ["/fn-abc"]);
    for (const nsp of ["/nope", "/dyn-x", "/fnx"]) {
      const err = await connected(client(T, nsp)).then(
        () => null,
        (e) => e,
      );
      assert.ok(err, `${nsp} connected`);
      assert.equal(err.message, "Invalid namespace", nsp);
    }
  });

  test("middleware: a refusal reaches connect_error with err.message and err.data", async () => {
    for (const [nsp, auth] of [
      ["/", { token: "bad" }],
      ["/private", {}],
      ["/private", { token: "wrong" }],
    ]) {
      const err = await connected(client(T, nsp, { auth })).then(
        () => null,
        (e) => e,
      );
      assert.ok(err, `${nsp} ${JSON.stringify(auth)} connected`);
      assert.equal(err.message, "not authorized");
      assert.deepStrictEqual(err.data, { code: 42 });
    }
    const ok = client(T, "/private", { auth: { token: "secret" } });
    const welcome = once(ok, "welcome");
    await connected(ok);
    assert.deepStrictEqual(await welcome, ["/private"]);
  });

  test('disconnect: a client disconnect is "client namespace disconnect" on the server', async () => {
    const [A, B] = await Promise.all([connect(T), connect(T)]);
    const id = A.id;
    A.disconnect();
    let reason;
    await until(async () => (reason = (await call(B, "reason-of", id))[0]) !== null, "the server saw the disconnect");
    assert.equal(reason, "client namespace disconnect");
  });

  test('disconnect: closing the client transport is "transport close" on the server', async () => {
    const [A, B] = await Promise.all([connect(T), connect(T)]);
    const id = A.id;
    A.io.engine.close();
    let reason;
    await until(async () => (reason = (await call(B, "reason-of", id))[0]) !== null, "the server saw the close");
    assert.equal(reason, "transport close");
  });

  test('disconnect: socket:disconnect() → the client sees "io server disconnect" and stays disconnected', async () => {
    const [A, B] = await Promise.all([connect(T, "/", { reconnection: true, reconnectionDelay: 50 }), connect(T)]);
    const id = A.id;
    const gone = once(A, "disconnect");
    A.emit("kick");
    assert.deepEqual((await gone)[0], "io server disconnect");
    await h.sleep(300);
    assert.equal(A.connected, false);
    assert.equal((await call(B, "reason-of", id))[0], "server namespace disconnect");
  });

  test('disconnect: socket:disconnect(true) → "io server disconnect", the connection closes, no reconnect', async () => {
    const [A, B] = await Promise.all([connect(T, "/", { reconnection: true, reconnectionDelay: 50 }), connect(T)]);
    const id = A.id;
    const engine = A.io.engine;
    const engineClosed = h.withTimeout(new Promise((resolve) => engine.once("close", resolve)), 2000, "engine close");
    const gone = once(A, "disconnect");
    A.emit("kick-close");
    assert.deepEqual((await gone)[0], "io server disconnect");
    await engineClosed;
    await h.sleep(300);
    assert.equal(A.connected, false);
    assert.equal((await call(B, "reason-of", id))[0], "server namespace disconnect");
  });

  test("reconnection: socket.conn:close() on the server → the client reconnects by itself", async () => {
    const A = await connect(T, "/", { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    const B = await connect(T);
    const oldId = A.id;
    const gone = once(A, "disconnect");
    const back = once(A, "connect", 3000);
    A.emit("drop-transport");
    assert.equal((await gone)[0], "transport close");
    await back;
    assert.ok(A.connected);
    assert.notEqual(A.id, oldId);
    assert.deepStrictEqual(await call(A, "echo-ack", "after reconnect"), ["after reconnect"]);
    assert.equal((await call(B, "reason-of", oldId))[0], "forced close");
  });

  test("server utilities: fetchSockets, socketsJoin, socketsLeave and disconnectSockets on a room", async () => {
    const tag = unique("tag");
    const names = ["ann", "bob", "cy"];
    const sockets = await Promise.all(names.map((name) => connect(T, "/", { auth: { name } })));
    for (const s of sockets) await call(s, "join", tag);
    const [A] = sockets;
    const expected = (...rooms) => sockets.map((s, i) => ({ id: s.id, name: names[i], rooms: sortedRooms(s, tag, ...rooms) }));

    assert.deepStrictEqual(await call(A, "fetch", tag), [expected()]);
    const [all] = await call(A, "fetch-all");
    for (const s of sockets) assert.ok(all.includes(s.id), `fetchSockets() lacks ${s.id}`);

    await call(A, "sockets-join", tag, `${tag}-x`);
    assert.deepStrictEqual(await call(A, "fetch", `${tag}-x`), [expected(`${tag}-x`)]);
    await call(A, "sockets-leave", tag, `${tag}-x`);
    assert.deepStrictEqual(await call(A, "fetch", tag), [expected()]);
    assert.deepStrictEqual(await call(A, "fetch", `${tag}-x`), [[]]);

    const reasons = sockets.map((s) => once(s, "disconnect"));
    A.emit("disconnect-sockets", tag, false);
    assert.deepStrictEqual((await Promise.all(reasons)).map(([reason]) => reason), names.map(() => "io server disconnect"));
    const probe = await connect(T);
    assert.deepStrictEqual(await call(probe, "fetch", tag), [[]]);
  });
}

h.test("upgrade: a default client starts on polling, upgrades, and the server sees websocket", async () => {
  const socket = io(URL, { forceNew: true, reconnection: false });
  h.defer(() => socket.disconnect());
  await connected(socket);
  if (socket.io.engine.transport.name !== "websocket") {
    await h.withTimeout(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), 3000, "upgrade");
  }
  assert.equal(socket.io.engine.transport.name, "websocket");
  const [me] = await call(socket, "whoami");
  assert.equal(me.transport, "websocket");
  assert.deepStrictEqual(await call(socket, "echo-ack", ...ARGS), ARGS);
});

h.test("mixed transports: a polling client and a websocket client share rooms and binary", async () => {
  const [P, W] = await Promise.all([connect("polling"), connect("websocket")]);
  const r = unique("mixed");
  await call(P, "join", r);
  await call(W, "join", r);
  const toW = once(W, "room-msg");
  const toP = once(P, "room-msg");
  await call(P, "to", r, Buffer.from([1, 2]), { b: Buffer.from("p") });
  await call(W, "to", r, Buffer.from([3, 4]), { b: Buffer.from("w") });
  assert.deepStrictEqual(await toW, [r, Buffer.from([1, 2]), { b: Buffer.from("p") }]);
  assert.deepStrictEqual(await toP, [r, Buffer.from([3, 4]), { b: Buffer.from("w") }]);
});

h.run("socketio-client");
