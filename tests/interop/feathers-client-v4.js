// A Feathers v4 client (@feathersjs/feathers 4.5 + @feathersjs/socketio-client 4.5 over
// socket.io-client 2.5, i.e. Engine.IO v3, accepted through allowEIO3) against
// tests/interop/apps/feathers, and raw Feathers v2-era calls ("messages::create").
//
// What the v4 client sends: its transport-commons client emits
// `emit(method, path, ...args, cb)` (feathers.md §1: "as v3"), the same format as v5, so
// it needs no server option. The legacy `path::method` format (§3.8) is what v2 clients
// sent; Plume accepts it only when the app sets legacy_socket_calls (transport.lua), which
// config/legacy.lua does: port 3314 runs `--env legacy`, port 3313 runs the default
// (legacy off: such calls get no handler, hence no ack, as on a v5 server).
"use strict";

const assert = require("node:assert/strict");
const io2 = require("socket.io-client-v2");
const feathers4 = require("feathers-v4");
const socketio4 = require("feathers-socketio-client-v4");
const errors4 = require("feathers-socketio-client-v4/node_modules/@feathersjs/errors");
const { io } = require("socket.io-client");
const feathers5 = require("@feathersjs/feathers");
const socketio5 = require("@feathersjs/socketio-client");
const h = require("./lib/harness");
const { Queued, call, noAck, rejects, quiet } = require("./lib/client");

const server = h.server({ app: "tests/interop/apps/feathers", port: 3313 });
const legacy = h.server({ name: "legacy", app: "tests/interop/apps/feathers", port: 3314, args: ["--env", "legacy"] });

const TRANSPORTS = ["websocket", "polling"];
const QUIET_MS = 300;
const CLASSES = [
  ["BadRequest", 400, "bad-request"],
  ["NotAuthenticated", 401, "not-authenticated"],
  ["PaymentError", 402, "payment-error"],
  ["Forbidden", 403, "forbidden"],
  ["NotFound", 404, "not-found"],
  ["MethodNotAllowed", 405, "method-not-allowed"],
  ["NotAcceptable", 406, "not-acceptable"],
  ["Timeout", 408, "timeout"],
  ["Conflict", 409, "conflict"],
  ["Gone", 410, "gone"],
  ["LengthRequired", 411, "length-required"],
  ["Unprocessable", 422, "unprocessable"],
  ["TooManyRequests", 429, "too-many-requests"],
  ["GeneralError", 500, "general-error"],
  ["NotImplemented", 501, "not-implemented"],
  ["BadGateway", 502, "bad-gateway"],
  ["Unavailable", 503, "unavailable"],
];

let counter = 0;
const tag = (prefix = "v4") => `${prefix}-${process.pid}-${Date.now()}-${++counter}`;

// ---- clients ---------------------------------------------------------------------------

// A raw socket.io-client 2 socket (EIO=3), connected.
async function raw2({ port = server.port, transports = ["websocket"], query } = {}) {
  const socket = io2(`http://127.0.0.1:${port}`, { transports, forceNew: true, reconnection: false, query });
  h.defer(() => socket.close());
  await h.withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
      socket.once("error", reject);
    }),
    3000,
    "connect (socket.io-client 2)",
  );
  return socket;
}

// A Feathers v4 client app on a connected socket.io-client 2 socket; one round trip done
// so the server has put the connection in its channels.
async function client4(opts = {}) {
  const socket = await raw2(opts);
  const app = feathers4();
  app.configure(socketio4(socket, { timeout: 3000 }));
  await app.service("echo").find();
  return app;
}

async function client5({ port = server.port } = {}) {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
  h.defer(() => socket.disconnect());
  const app = feathers5.feathers();
  app.configure(socketio5(socket));
  await app.service("echo").find();
  return app;
}

const watch = (emitter, names) => new Queued(emitter, names);

function wireError(name, message, extra = {}) {
  const [, code, className] = CLASSES.find(([n]) => n === name);
  return { name, message, code, className, ...extra };
}

// A v4 client error: an instance of the v4 class (v4's converter knows Gone), errors {}
// when the server sent none (v4's constructor default; its Gone constructor calls
// FeathersError without `.call`, so a Gone keeps only the wire fields).
function checkError4(err, name, message, { data, errors: errs = name === "Gone" ? undefined : {} } = {}) {
  const [, code, className] = CLASSES.find(([n]) => n === name);
  assert.ok(err instanceof errors4[name], `expected v4 ${name}, got ${err && err.name}: ${err && err.message}`);
  assert.equal(err.name, name);
  assert.equal(err.message, message);
  assert.equal(err.code, code);
  assert.equal(err.className, className);
  assert.deepEqual(err.data, data);
  assert.deepEqual(err.errors, errs);
}

// ---- the v4 client ---------------------------------------------------------------------

for (const transport of TRANSPORTS) {
  h.test(`v4 client over Engine.IO v3: standard methods (${transport})`, async () => {
    const app = await client4({ transports: [transport] });
    assert.equal(app.io.io.engine.transport.query.EIO, 3);
    assert.equal(app.io.io.engine.transport.name, transport);
    const messages = app.service("messages");
    const run = tag();
    const created = await messages.create({ text: "v4", run });
    const id = created.id;
    assert.equal(typeof id, "number");
    assert.deepEqual(created, { text: "v4", run, id });
    assert.deepEqual(await messages.get(id), created);
    assert.deepEqual(await messages.find({ query: { run } }), [created]);
    assert.deepEqual(await messages.update(id, { text: "v4 again", run }), { text: "v4 again", run, id });
    assert.deepEqual(await messages.patch(id, { seen: true }), { text: "v4 again", run, id, seen: true });
    assert.deepEqual(await messages.remove(id), { text: "v4 again", run, id, seen: true });
    checkError4(await rejects(messages.get(id)), "NotFound", `No record found for id '${id}'`);

    const many = await messages.create([{ n: 1, run }, { n: 2, run }]);
    assert.deepEqual(many.map((m) => m.n), [1, 2]);
    assert.deepEqual(await messages.patch(null, { all: true }, { query: { run } }), many.map((m) => ({ ...m, all: true })));
    assert.deepEqual(await messages.remove(null, { query: { run } }), many.map((m) => ({ ...m, all: true })));
    assert.deepEqual(await messages.find({ query: { run } }), []);
  });

  h.test(`v4 client: params.query types, pagination, query operators (${transport})`, async () => {
    const app = await client4({ transports: [transport] });
    const query = { yes: true, no: false, n: 0, f: 2.5, s: "1", nul: null, list: [1, "a"], obj: { deep: { x: [true] } } };
    const echoed = await app.service("echo").find({ query });
    assert.deepEqual(echoed.query, query);
    assert.equal(echoed.provider, "socketio");
    const page = await app.service("paged").find({ query: { active: true, $sort: { age: -1 }, $select: ["name"] } });
    assert.deepEqual(page, { total: 4, limit: 2, skip: 0, data: [{ id: 6, name: "Frank" }, { id: 3, name: "Carol" }] });
    assert.deepEqual((await app.service("people").find({ query: { age: { $gte: 30 }, tags: "dev" } })).map((p) => p.id), [1, 5]);
  });
}

h.test("v4 client: errors of the call algorithm, the adapter and plain Lua errors", async () => {
  const app = await client4();
  checkError4(await rejects(app.service("nope").find()), "NotFound", "Service 'nope' not found");
  checkError4(await rejects(app.service("people").create({})), "MethodNotAllowed", "Method 'create' not allowed on service 'people'");
  checkError4(await rejects(app.service("people").remove(1)), "MethodNotAllowed", "Method 'remove' not allowed on service 'people'");
  checkError4(
    await rejects(app.service("messages").update(null, {})),
    "BadRequest",
    "You can not replace multiple instances. Did you mean 'patch'?",
  );
  checkError4(await rejects(app.service("pubsel").remove(null)), "MethodNotAllowed", "Can not remove multiple entries");
  checkError4(await rejects(app.service("people").find({ query: { $foo: 1 } })), "BadRequest", "Invalid filter value $foo");
  checkError4(await rejects(app.service("people").find({ query: { age: { $regex: "x" } } })), "BadRequest", "Invalid query parameter $regex", {
    data: { $regex: "x" },
  });
  // A plain error is no Feathers error: the v4 client makes a plain Error of it.
  const plain = await rejects(app.service("raise").send("plain", {}, {}));
  assert.ok(!(plain instanceof errors4.FeathersError));
  assert.equal(plain.message, "boom");
  assert.equal(plain.code, undefined);
});

h.test("v4 client: every error class (sent as raw calls, v4 has no custom methods)", async () => {
  const app = await client4();
  const raise = app.service("raise");
  for (const [name] of CLASSES) {
    const err = await rejects(raise.send(name, { args: [`Thrown ${name}`, { field: "f", errors: { f: "bad" } }] }, {}));
    checkError4(err, name, `Thrown ${name}`, { data: { field: "f" }, errors: { f: "bad" } });
    checkError4(await rejects(raise.send(name, { args: [`Bare ${name}`] }, {})), name, `Bare ${name}`);
  }
});

h.test("v4 client: events from v4 and v5 clients, custom events, channels", async () => {
  const app = await client4();
  const watcher = await client4({ transports: ["polling"] });
  const v5 = await client5();
  const names = ["created", "updated", "patched", "removed"];
  const seen = watch(watcher.service("messages"), names);
  const messages = app.service("messages");
  const run = tag();

  const created = await messages.create({ text: "a", run });
  const id = created.id;
  await messages.update(id, { text: "b", run });
  await messages.patch(id, { p: 1 });
  await messages.remove(id);
  assert.deepEqual(await seen.next("created"), created);
  assert.deepEqual(await seen.next("updated"), { text: "b", run, id });
  assert.deepEqual(await seen.next("patched"), { text: "b", run, id, p: 1 });
  assert.deepEqual(await seen.next("removed"), { text: "b", run, id, p: 1, publishedBy: "app removed" });

  // A v5 client's call reaches the v4 client, and the other way round.
  const v5seen = watch(v5.service("messages"), ["created"]);
  const fromV5 = await v5.service("messages").create({ text: "from v5", run });
  assert.deepEqual(await seen.next("created"), fromV5);
  assert.deepEqual(await v5seen.next("created"), fromV5);

  // A custom event emitted by the service.
  const status = watch(watcher.service("echo"), ["status"]);
  assert.deepEqual(await app.service("echo").send("notify", { message: "v4" }, {}), { sent: true, status: { message: "v4", provider: "socketio" } });
  assert.deepEqual(await status.next("status"), { message: "v4", provider: "socketio" });

  // Channels: a room's message reaches that room only.
  const red = await client4({ query: { room: "red" } });
  const blue = await client4({ query: { room: "blue" } });
  const redSeen = watch(red.service("rooms"), ["created"]);
  const blueSeen = watch(blue.service("rooms"), ["created"]);
  const message = await app.service("rooms").create({ room: "red", text: "v4 red" });
  assert.deepEqual(await redSeen.next("created"), message);
  await quiet(blueSeen, ["created"]);
  await quiet(seen, names, 0);
});

h.test("v4 client: a call nobody answers times out on the client (§2.2: no handler, no ack)", async () => {
  const app = await client4();
  const echo = app.service("echo");
  echo.timeout = 300;
  const err = await rejects(echo.send("notAMethodAnywhere", {}, {}));
  assert.ok(err instanceof errors4.Timeout);
  assert.equal(err.message, "Timeout of 300ms exceeded calling notAMethodAnywhere on echo");
  assert.deepEqual(err.data, { timeout: 300, method: "notAMethodAnywhere", path: "echo" });
  // The socket is still usable.
  assert.equal((await echo.get(1)).id, 1);
});

// ---- legacy "path::method" calls (§3.8) ------------------------------------------------

h.test("§3.8 legacy off (default): 'messages::create' has no handler, no ack, no record", async () => {
  const socket = await raw2();
  const run = tag("legacy-off");
  await noAck(socket, QUIET_MS, "messages::create", { text: "legacy", run }, {});
  await noAck(socket, 0, "messages::find", {});
  assert.deepEqual(await call(socket, "find", "messages", { run }), [null, []]);
});

for (const transport of TRANSPORTS) {
  h.test(`§3.8 legacy on: every standard method as 'path::method', events as usual (${transport})`, async () => {
    const socket = await raw2({ port: legacy.port, transports: [transport] });
    const watcher = await raw2({ port: legacy.port });
    await call(watcher, "find", "echo", {});
    const events = watch(watcher, ["messages created", "messages updated", "messages patched", "messages removed"]);
    const run = tag("legacy");

    const [err, created] = await call(socket, "messages::create", { text: "legacy", run }, {});
    assert.equal(err, null);
    const id = created.id;
    assert.deepEqual(created, { text: "legacy", run, id });
    assert.deepEqual(await call(socket, "messages::get", id, {}), [null, created]);
    assert.deepEqual(await call(socket, "messages::find", { run }), [null, [created]]);
    assert.deepEqual(await call(socket, "messages::update", id, { text: "replaced", run }, {}), [null, { text: "replaced", run, id }]);
    assert.deepEqual(await call(socket, "messages::patch", id, { p: true }, {}), [null, { text: "replaced", run, id, p: true }]);
    assert.deepEqual(await call(socket, "messages::remove", id, {}), [null, { text: "replaced", run, id, p: true }]);
    assert.deepEqual(await events.next("messages created"), created);
    assert.deepEqual(await events.next("messages updated"), { text: "replaced", run, id });
    assert.deepEqual(await events.next("messages patched"), { text: "replaced", run, id, p: true });
    assert.deepEqual(await events.next("messages removed"), { text: "replaced", run, id, p: true, publishedBy: "app removed" });

    // Multi calls with a null id, and a query in the query position.
    const [, many] = await call(socket, "messages::create", [{ k: 1, run }, { k: 2, run }], {});
    assert.deepEqual(await call(socket, "messages::patch", null, { all: 1 }, { run }), [null, many.map((m) => ({ ...m, all: 1 }))]);
    assert.deepEqual(await call(socket, "messages::remove", null, { run }), [null, many.map((m) => ({ ...m, all: 1 }))]);
    // The call format of v3+ clients keeps working next to it.
    assert.deepEqual(await call(socket, "find", "messages", { run }), [null, []]);
  });
}

h.test("§3.8 legacy on: errors, no argument count check, no custom methods", async () => {
  const socket = await raw2({ port: legacy.port });
  assert.deepEqual(await call(socket, "messages::get", -1, {}), [wireError("NotFound", "No record found for id '-1'")]);
  assert.deepEqual(await call(socket, "people::create", { name: "X" }, {}), [wireError("MethodNotAllowed", "Method 'create' not allowed on service 'people'")]);
  assert.deepEqual(await call(socket, "messages::update", null, {}, {}), [
    wireError("BadRequest", "You can not replace multiple instances. Did you mean 'patch'?"),
  ]);
  assert.deepEqual(await call(socket, "people::find", { $foo: 1 }), [wireError("BadRequest", "Invalid filter value $foo")]);
  // v4 servers did not count arguments: extra ones are ignored.
  const [err, found] = await call(socket, "people::find", { id: 2 }, { extra: true }, "more");
  assert.equal(err, null);
  assert.deepEqual(found.map((p) => p.id), [2]);
  // Handlers exist for the standard methods of registered services only.
  await noAck(socket, QUIET_MS, "nope::find", {});
  await noAck(socket, 0, "echo::shout", { text: "x" }, {});
  assert.deepEqual((await call(socket, "echo::get", 5, { q: 1 }))[1].query, { q: 1 });
});

h.test("§3.8 legacy on: the Feathers v4 client works unchanged", async () => {
  const app = await client4({ port: legacy.port });
  const run = tag("legacy-v4");
  const created = await app.service("messages").create({ run });
  assert.deepEqual(await app.service("messages").find({ query: { run } }), [created]);
  checkError4(await rejects(app.service("nope").get(1)), "NotFound", "Service 'nope' not found");
  await app.service("messages").remove(created.id);
});

h.run("feathers-client-v4");
