// The real Feathers v5 client (@feathersjs/feathers + @feathersjs/socketio-client over
// socket.io-client v4) against tests/interop/apps/feathers: spec/feathers.md §3 (calls,
// acks, the call algorithm and its errors, edge cases), §4 (events, channels,
// publishers), §5 (custom methods, route placeholders), §6.3 (hook order), §7 (errors),
// §8 (memory adapter: pagination, operators, sorting, sanitising). Calls go through the
// Feathers client where it can express them and through a raw socket.io-client socket
// where the wire itself is the point. Expected values are exact; the hook orders, sort
// orders, $select and sanitising errors are also computed with Feathers' own code
// (@feathersjs/feathers, @feathersjs/adapter-commons) to show the expectation is
// Feathers'. Port 3311 runs the app in development, 3312 in production (no stacks).
"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const errors = require("@feathersjs/errors");
const commons = require("@feathersjs/adapter-commons");
const h = require("./lib/harness");
const { Queued, call, noAck, rejects, quiet } = require("./lib/client");

const server = h.server({ app: "tests/interop/apps/feathers", port: 3311 });
const production = h.server({ name: "production", app: "tests/interop/apps/feathers", port: 3312, args: ["--env", "production"] });

const TRANSPORTS = ["websocket", "polling"];
const QUIET_MS = 300; // how long "nothing arrives" is watched

// feathers.md §7.1
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

const ECHO_METHODS = ["find", "get", "create", "update", "patch", "remove", "shout", "touch", "notify", "nothing", "inspect"];
const RAISE_METHODS = [...CLASSES.map(([name]) => name), "plain", "hookFailure"];

// The records of tests/interop/apps/feathers/lib/people.lua.
const PEOPLE = [
  { id: 1, name: "Alice", age: 30, active: true, tags: ["admin", "dev"], address: { city: "Paris", zip: "75001" } },
  { id: 2, name: "Bob", age: 25, active: false, tags: ["dev"], address: { city: "Berlin", zip: "10115" } },
  { id: 3, name: "Carol", age: 35, active: true, tags: ["ops"], address: { city: "Paris", zip: "75002" } },
  { id: 4, name: "Dave", age: 25, active: true, tags: ["qa"], address: { city: "Lyon", zip: "69001" } },
  { id: 5, name: "Eve", age: 41, active: false, tags: ["dev", "ops"], address: { city: "Berlin", zip: "10117" } },
  { id: 6, name: "Frank", age: "30", active: true, address: { city: "Rome" } },
];
const person = (id) => PEOPLE.find((p) => p.id === id);

let counter = 0;
const tag = (prefix = "run") => `${prefix}-${process.pid}-${Date.now()}-${++counter}`;

// ---- clients ---------------------------------------------------------------------------

function socket({ transports = ["websocket"], query, port = server.port, extraHeaders } = {}) {
  const s = io(`http://127.0.0.1:${port}`, { transports, forceNew: true, reconnection: false, query, extraHeaders });
  h.defer(() => s.disconnect());
  return s;
}

// A Feathers client app on its own socket, with echo's and raise's custom methods.
function client(opts = {}) {
  const s = socket(opts);
  const app = feathers.feathers();
  const connection = socketio(s);
  app.configure(connection);
  app.use("echo", connection.service("echo"), { methods: ECHO_METHODS });
  app.use("raise", connection.service("raise"), { methods: RAISE_METHODS });
  return app;
}

// Resolves once the socket is connected and the server has answered one call, so the
// connection has joined its channels before anybody else acts.
async function connected(app) {
  const s = app.io;
  if (!s.connected) {
    await h.withTimeout(
      new Promise((resolve, reject) => {
        s.once("connect", resolve);
        s.once("connect_error", reject);
      }),
      3000,
      "connect",
    );
  }
  await app.service("echo").find();
  return app;
}

async function rawConnected(opts) {
  const s = socket(opts);
  await h.withTimeout(new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", reject);
  }), 3000, "connect");
  return s;
}

// Queues events of a client service (service.on(name) = socket.on('<path> <name>')).
const watch = (service, names) => new Queued(service, names);

// The wire JSON of a Feathers error (feathers.md §7.3).
function wireError(name, message, extra = {}) {
  const [, code, className] = CLASSES.find(([n]) => n === name);
  return { name, message, code, className, ...extra };
}

// A converted client error has the class's fields (feathers.md §7.4).
function checkClientError(err, name, message, { data, errors: errs } = {}) {
  const [, code, className] = CLASSES.find(([n]) => n === name);
  if (name === "Gone") {
    // The v5 converter does not know Gone: a plain Error carrying the wire fields.
    assert.ok(!(err instanceof errors.FeathersError), "Gone arrives as a plain Error");
    assert.ok(err instanceof Error);
  } else {
    assert.ok(err instanceof errors[name], `expected ${name}, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
  }
  assert.equal(err.name, name);
  assert.equal(err.message, message);
  assert.equal(err.code, code);
  assert.equal(err.className, className);
  assert.deepEqual(err.data, data);
  assert.deepEqual(err.errors, errs);
}

// ---- §3.1 standard methods, §5.1 custom methods, §7 errors, over both transports -------

for (const transport of TRANSPORTS) {
  h.test(`§3.1 standard methods on the memory adapter (${transport})`, async () => {
    const app = await connected(client({ transports: [transport] }));
    const messages = app.service("messages");
    const run = tag();
    const created = await messages.create({ text: "first", run });
    assert.equal(typeof created.id, "number");
    const id = created.id;
    assert.deepEqual(created, { text: "first", run, id });
    assert.deepEqual(await messages.get(id), { text: "first", run, id });
    assert.deepEqual(await messages.find({ query: { run } }), [{ text: "first", run, id }]);
    assert.deepEqual(await messages.update(id, { text: "second", run }), { text: "second", run, id });
    assert.deepEqual(await messages.patch(id, { done: true }), { text: "second", run, id, done: true });
    assert.deepEqual(await messages.get(id, { query: { done: true } }), { text: "second", run, id, done: true });
    // §8.6: a get whose query does not match is NotFound; update with a string id keeps
    // the record's numeric id.
    checkClientError(await rejects(messages.get(id, { query: { done: false } })), "NotFound", `No record found for id '${id}'`);
    assert.deepEqual(await messages.update(String(id), { text: "third", run }), { text: "third", run, id });
    assert.deepEqual(await messages.remove(id), { text: "third", run, id });
    checkClientError(await rejects(messages.get(id)), "NotFound", `No record found for id '${id}'`);
    checkClientError(await rejects(messages.remove(id)), "NotFound", `No record found for id '${id}'`);
    assert.deepEqual(await messages.find({ query: { run } }), []);
  });

  h.test(`§3.1 multi: array create, patch and remove with a null id (${transport})`, async () => {
    const app = await connected(client({ transports: [transport] }));
    const messages = app.service("messages");
    const run = tag();
    const created = await messages.create([{ n: 1, run }, { n: 2, run }, { n: 3, run, skip: true }]);
    assert.equal(created.length, 3);
    const [a, b, c] = created.map((m) => m.id);
    assert.ok(a < b && b < c, `ids in creation order: ${a}, ${b}, ${c}`);
    assert.deepEqual(created, [{ n: 1, run, id: a }, { n: 2, run, id: b }, { n: 3, run, skip: true, id: c }]);
    const patched = await messages.patch(null, { flag: "x" }, { query: { run, skip: { $ne: true } } });
    assert.deepEqual(patched, [{ n: 1, run, id: a, flag: "x" }, { n: 2, run, id: b, flag: "x" }]);
    checkClientError(
      await rejects(messages.update(null, { n: 0 }, { query: { run } })),
      "BadRequest",
      "You can not replace multiple instances. Did you mean 'patch'?",
    );
    const removed = await messages.remove(null, { query: { run, n: { $gte: 2 } } });
    assert.deepEqual(removed, [{ n: 2, run, id: b, flag: "x" }, { n: 3, run, skip: true, id: c }]);
    assert.deepEqual(await messages.find({ query: { run } }), [{ n: 1, run, id: a, flag: "x" }]);
    assert.deepEqual(await messages.remove(null, { query: { run } }), [{ n: 1, run, id: a, flag: "x" }]);
  });

  h.test(`§5.1 custom methods declared with methods (${transport})`, async () => {
    const app = await connected(client({ transports: [transport] }));
    const echo = app.service("echo");
    assert.deepEqual(await echo.shout({ text: "hi there" }, { query: { loud: true, times: 3 } }), {
      shouted: "HI THERE",
      query: { loud: true, times: 3 },
      provider: "socketio",
    });
    assert.deepEqual(await echo.touch({ x: [1, 2] }), {
      method: "touch", id: null, data: { x: [1, 2] }, query: {}, route: {}, provider: "socketio", room: null,
    });
    assert.equal(await echo.nothing({}), null);
  });

  h.test(`§7 every error class on the wire and in the client (${transport})`, async () => {
    const app = await connected(client({ transports: [transport] }));
    const raise = app.service("raise");
    for (const [name] of CLASSES) {
      const data = { field: "email", errors: { email: "taken" } };
      const err = await rejects(raise[name]({ args: [`Thrown ${name}`, data] }));
      checkClientError(err, name, `Thrown ${name}`, { data: { field: "email" }, errors: { email: "taken" } });
      // Without data: no data, no errors.
      checkClientError(await rejects(raise[name]({ args: [`Bare ${name}`] })), name, `Bare ${name}`);
    }
  });
}

// ---- §7.2, §7.3 error JSON on the wire --------------------------------------------------

h.test("§7.3 error JSON of every class, exactly, on the wire", async () => {
  const s = await rawConnected();
  for (const [name] of CLASSES) {
    const ack = await call(s, name, "raise", { args: [`Thrown ${name}`, { field: "email", errors: { email: "taken" } }] }, {});
    assert.deepEqual(ack, [wireError(name, `Thrown ${name}`, { data: { field: "email" }, errors: { email: "taken" } })]);
    assert.deepEqual(await call(s, name, "raise", { args: [`Bare ${name}`] }, {}), [wireError(name, `Bare ${name}`)]);
  }
});

h.test("§7.2 constructor rules: message and data combinations", async () => {
  const s = await rawConnected();
  const cases = [
    // [args, expected wire fields]
    [["m", {}], { message: "m", data: {} }],
    [["m", [1, "two"]], { message: "m", data: [1, "two"] }],
    [[{ message: "From object", errors: { a: 1 }, id: 3 }], { message: "From object", data: { id: 3 }, errors: { a: 1 } }],
    [[{ message: "ignored" }, [9]], { message: "Error", data: [9] }],
    [["Thrown", { message: "From data", id: 3 }], { message: "From data", data: { id: 3 } }],
    [["kept", { message: "" }], { message: "kept", data: {} }],
    [[null, null], { message: "Error" }],
    [[], { message: "Error" }],
    [[42], { message: "Error" }],
  ];
  for (const [args, fields] of cases) {
    const ack = await call(s, "Conflict", "raise", { args }, {});
    assert.deepEqual(ack, [{ name: "Conflict", code: 409, className: "conflict", ...fields }], `Conflict(${JSON.stringify(args)})`);
    // Feathers' own constructor gives the same JSON.
    const reference = new errors.Conflict(...args.map((a) => (a === null ? undefined : a))).toJSON();
    assert.deepEqual(ack[0], JSON.parse(JSON.stringify(reference)), `Feathers' Conflict(${JSON.stringify(args)})`);
  }
});

h.test("§6.4 an error hook mutates the error raised in a before hook", async () => {
  const app = await connected(client());
  checkClientError(await rejects(app.service("raise").hookFailure({})), "Forbidden", "refused in a hook", {
    data: { stage: "before", method: "hookFailure", hadResult: false },
  });
});

h.test("§3.6 a plain Lua error: { message, stack } without the position, no class fields", async () => {
  const app = await connected(client());
  const err = await rejects(app.service("raise").plain({}));
  assert.ok(err instanceof Error);
  assert.ok(!(err instanceof errors.FeathersError), "a plain error is no Feathers error");
  assert.equal(err.message, "boom");
  assert.equal(err.code, undefined);
  assert.equal(err.className, undefined);

  const s = await rawConnected();
  const ack = await call(s, "plain", "raise", {}, {});
  assert.equal(ack.length, 1);
  assert.deepEqual(Object.keys(ack[0]).sort(), ["message", "stack"]);
  assert.equal(ack[0].message, "boom");
  assert.equal(typeof ack[0].stack, "string");
  // The traceback stays in `stack`: the message is the text given to error() only.
  assert.ok(!/stack traceback|\.lua:\d+/.test(ack[0].message), `message with a position: ${ack[0].message}`);
});

h.test("§3.6 in production a plain Lua error is exactly { message } (no stack)", async () => {
  const s = await rawConnected({ port: production.port });
  assert.deepEqual(await call(s, "plain", "raise", {}, {}), [{ message: "boom" }]);
  // Feathers errors are unchanged in production.
  assert.deepEqual(await call(s, "NotFound", "raise", { args: ["gone", { id: 1 }] }, {}), [wireError("NotFound", "gone", { data: { id: 1 } })]);
  assert.deepEqual(await call(s, "get", "nope", 1, {}), [wireError("NotFound", "Service 'nope' not found")]);
});

// ---- §3.2 acknowledgements, §3.4 params -------------------------------------------------

h.test("§3.2 ack shapes: [null, result] on success, [error] on failure, [null, null] for nil", async () => {
  const s = await rawConnected();
  const ok = await call(s, "find", "echo", { a: 1 });
  assert.deepEqual(ok, [null, { method: "find", id: null, data: null, query: { a: 1 }, route: {}, provider: "socketio", room: null }]);
  assert.deepEqual(await call(s, "nothing", "echo", {}, {}), [null, null]);
  assert.deepEqual(await call(s, "get", "messages", -12345, {}), [wireError("NotFound", "No record found for id '-12345'")]);
  // Calls in flight on one socket each get their own ack.
  const many = await Promise.all([1, 2, 3, 4, 5].map((i) => call(s, "get", "echo", i, { i })));
  many.forEach((ack, k) => assert.deepEqual(ack, [null, { method: "get", id: k + 1, data: null, query: { i: k + 1 }, route: {}, provider: "socketio", room: null }]));
});

h.test("§3.4 params.query keeps JSON types over sockets", async () => {
  const app = await connected(client());
  const query = {
    yes: true,
    no: false,
    zero: 0,
    int: 42,
    neg: -3,
    float: 1.5,
    tenth: 0.1,
    max: Number.MAX_SAFE_INTEGER,
    str: "true",
    numstr: "1",
    empty: "",
    nul: null,
    list: [1, "1", true, null, { a: [] }],
    nested: { a: { b: [{}] }, c: false },
    unicode: "ünïcødé ✓ \u{1F600}",
  };
  const result = await app.service("echo").find({ query });
  assert.deepEqual(result.query, query);
  assert.equal(typeof result.query.yes, "boolean");
  assert.equal(typeof result.query.int, "number");
  assert.equal(typeof result.query.numstr, "string");
});

h.test("§3.1 every method's arguments as the service receives them", async () => {
  const app = await connected(client({ query: { room: "green" } }));
  const echo = app.service("echo");
  const base = { data: null, id: null, query: {}, route: {}, provider: "socketio", room: "green" };
  assert.deepEqual(await echo.find({ query: { q: 1 } }), { ...base, method: "find", query: { q: 1 } });
  assert.deepEqual(await echo.get("abc", { query: { q: 2 } }), { ...base, method: "get", id: "abc", query: { q: 2 } });
  assert.deepEqual(await echo.get(0), { ...base, method: "get", id: 0 });
  assert.deepEqual(await echo.create({ x: 1 }, { query: { q: 3 } }), { ...base, method: "create", data: { x: 1 }, query: { q: 3 } });
  assert.deepEqual(await echo.create([{ x: 1 }, { x: 2 }]), { ...base, method: "create", data: [{ x: 1 }, { x: 2 }] });
  assert.deepEqual(await echo.update(7, { y: 2 }), { ...base, method: "update", id: 7, data: { y: 2 } });
  assert.deepEqual(await echo.patch(null, { z: 3 }, { query: { all: true } }), { ...base, method: "patch", data: { z: 3 }, query: { all: true } });
  assert.deepEqual(await echo.remove(null, { query: { gone: true } }), { ...base, method: "remove", query: { gone: true } });
  assert.deepEqual(await echo.remove(1.5), { ...base, method: "remove", id: 1.5 });
});

for (const transport of TRANSPORTS) {
  h.test(`§3.4 params: handshake headers, one connection object per socket (${transport})`, async () => {
    const app = await connected(client({ transports: [transport], extraHeaders: { "X-Test": "yes" } }));
    const echo = app.service("echo");
    const expected = { host: `127.0.0.1:${server.port}`, test: "yes", provider: "socketio", same: true };
    // connected() made one call already; the counter lives on the connection object.
    assert.deepEqual(await echo.inspect({}), { ...expected, calls: 1 });
    assert.deepEqual(await echo.inspect({}), { ...expected, calls: 2 });
    const other = await connected(client({ transports: [transport] }));
    assert.deepEqual(await other.service("echo").inspect({}), { ...expected, test: null, calls: 1 });
    assert.deepEqual(await echo.inspect({}), { ...expected, calls: 3 });
  });
}

// ---- §5.2 route placeholders ------------------------------------------------------------

h.test("§5.2 route placeholders: params.route from the client's route, as strings", async () => {
  const app = await connected(client());
  const watcher = await connected(client());
  const events = watch(watcher.service("users/:userId/messages"), ["created"]);
  const service = app.service("users/:userId/messages");
  assert.deepEqual(await service.find({ route: { userId: 42 }, query: { a: 1 } }), { route: { userId: "42" }, query: { a: 1 } });
  assert.deepEqual(await service.get(7, { route: { userId: "abc" } }), { id: 7, route: { userId: "abc" }, query: {} });
  const created = await service.create({ text: "x" }, { route: { userId: 5 } });
  assert.deepEqual(created, { data: { text: "x" }, route: { userId: "5" } });
  // The event is named after the registered path, placeholder included.
  assert.deepEqual(await events.next("created"), created);
});

// ---- §3.3 the call algorithm's errors, §3.5 edge cases -----------------------------------

h.test("§3.3 unknown service, invalid path, method not allowed, too many arguments", async () => {
  const app = await connected(client());
  checkClientError(await rejects(app.service("nope").find()), "NotFound", "Service 'nope' not found");
  checkClientError(await rejects(app.service("people").create({ name: "X" })), "MethodNotAllowed", "Method 'create' not allowed on service 'people'");

  const s = await rawConnected();
  const cases = [
    [["find", "nope", {}], wireError("NotFound", "Service 'nope' not found")],
    [["get", "nope/deeper", 1, {}], wireError("NotFound", "Service 'nope/deeper' not found")],
    [["find", 42, {}], wireError("NotFound", "Invalid service path")],
    [["find", null, {}], wireError("NotFound", "Invalid service path")],
    [["find", { path: "echo" }, {}], wireError("NotFound", "Invalid service path")],
    [["find", "Echo", {}], wireError("NotFound", "Service 'Echo' not found")],
    [["create", "people", {}, {}], wireError("MethodNotAllowed", "Method 'create' not allowed on service 'people'")],
    [["remove", "people", 1, {}], wireError("MethodNotAllowed", "Method 'remove' not allowed on service 'people'")],
    [["shout", "people", {}, {}], wireError("MethodNotAllowed", "Method 'shout' not allowed on service 'people'")],
    [["shout", "messages", {}, {}], wireError("MethodNotAllowed", "Method 'shout' not allowed on service 'messages'")],
    [["find", "echo", {}, {}], wireError("BadRequest", "Too many arguments for 'find' method")],
    [["get", "echo", 1, {}, {}], wireError("BadRequest", "Too many arguments for 'get' method")],
    [["create", "echo", {}, {}, {}], wireError("BadRequest", "Too many arguments for 'create' method")],
    [["update", "echo", 1, {}, {}, {}], wireError("BadRequest", "Too many arguments for 'update' method")],
    [["patch", "echo", 1, {}, {}, {}], wireError("BadRequest", "Too many arguments for 'patch' method")],
    [["remove", "echo", 1, {}, {}], wireError("BadRequest", "Too many arguments for 'remove' method")],
    [["shout", "echo", {}, {}, {}], wireError("BadRequest", "Too many arguments for 'shout' method")],
    // The service lookup comes before the argument count.
    [["find", "nope", {}, {}], wireError("NotFound", "Service 'nope' not found")],
  ];
  for (const [args, expected] of cases) {
    assert.deepEqual(await call(s, ...args), [expected], JSON.stringify(args));
  }
});

h.test("§3.3 an event that is no method of any service: no ack, the socket stays usable", async () => {
  const s = await rawConnected();
  await noAck(s, QUIET_MS, "notAMethodAnywhere", "echo", {});
  await noAck(s, QUIET_MS, "messages::find", {});
  assert.equal(s.connected, true);
  const ack = await call(s, "find", "echo", {});
  assert.equal(ack[1].method, "find");
});

h.test("§3.5 edge cases: missing id, ids in the path, slashes, null and missing queries", async () => {
  const s = await rawConnected();
  const base = { data: null, id: null, query: {}, route: {}, provider: "socketio", room: null };
  assert.deepEqual(await call(s, "get", "messages"), [wireError("NotFound", "No record found for id 'undefined'")]);
  assert.deepEqual(await call(s, "find", "echo/0", {}), [null, { ...base, method: "find", route: { __id: "0" } }]);
  assert.deepEqual(await call(s, "get", "users/5/messages/9", 1, {}), [null, { id: 1, route: { userId: "5", __id: "9" }, query: {} }]);
  assert.deepEqual(await call(s, "find", "users/5/messages", {}), [null, { route: { userId: "5" }, query: {} }]);
  assert.deepEqual(await call(s, "find", "/echo/", {}), [null, { ...base, method: "find" }]);
  assert.deepEqual(await call(s, "find", "echo", null), [null, { ...base, method: "find" }]);
  assert.deepEqual(await call(s, "find", "echo"), [null, { ...base, method: "find" }]);
  assert.deepEqual(await call(s, "get", "echo", 3), [null, { ...base, method: "get", id: 3 }]);
  assert.deepEqual(await call(s, "create", "echo"), [null, { ...base, method: "create" }]);
  assert.deepEqual(await call(s, "patch", "echo", null, { a: 1 }), [null, { ...base, method: "patch", data: { a: 1 } }]);
});

h.test("§3.2 a call without ack still runs: hooks, store and events", async () => {
  const s = await rawConnected();
  const watcher = await connected(client());
  const events = watch(watcher.service("messages"), ["created"]);
  const run = tag();
  s.emit("create", "messages", { text: "fire and forget", run }, {});
  const event = await events.next("created");
  assert.deepEqual(event, { text: "fire and forget", run, id: event.id });
  assert.deepEqual(await watcher.service("messages").find({ query: { run } }), [event]);
});

// ---- §4 events ---------------------------------------------------------------------------

for (const transport of TRANSPORTS) {
  h.test(`§4.2 created, updated, patched, removed reach a second client (${transport})`, async () => {
    const app = await connected(client({ transports: [transport] }));
    const watcher = await connected(client({ transports: [transport] }));
    const names = ["created", "updated", "patched", "removed"];
    const seen = watch(watcher.service("messages"), names);
    const own = watch(app.service("messages"), names);
    const messages = app.service("messages");
    const run = tag();

    const created = await messages.create({ text: "a", run });
    const id = created.id;
    await messages.update(id, { text: "b", run });
    await messages.patch(id, { extra: 1 });
    await messages.remove(id);
    for (const events of [seen, own]) {
      assert.deepEqual(await events.next("created"), { text: "a", run, id });
      assert.deepEqual(await events.next("updated"), { text: "b", run, id });
      assert.deepEqual(await events.next("patched"), { text: "b", run, id, extra: 1 });
      // The app's "removed" publisher marks what it sends (see the publisher test).
      assert.deepEqual(await events.next("removed"), { text: "b", run, id, extra: 1, publishedBy: "app removed" });
    }

    // Multi calls: one event per element, in order.
    const many = await messages.create([{ k: 1, run }, { k: 2, run }]);
    await messages.patch(null, { seen: true }, { query: { run } });
    await messages.remove(null, { query: { run } });
    for (const m of many) {
      assert.deepEqual(await seen.next("created"), m);
    }
    for (const m of many) {
      assert.deepEqual(await seen.next("patched"), { ...m, seen: true });
    }
    for (const m of many) {
      assert.deepEqual(await seen.next("removed"), { ...m, seen: true, publishedBy: "app removed" });
    }
    // Failed calls publish nothing.
    await rejects(messages.patch(-1, { x: 1 }));
    await rejects(messages.remove(-1));
    await quiet(seen, names);
  });
}

h.test("§4.2 custom event, context.event on a custom method, custom methods silent by default", async () => {
  const app = await connected(client());
  const watcher = await connected(client());
  const names = ["status", "patched", "created", "updated", "removed"];
  const seen = watch(watcher.service("echo"), names);
  const echo = app.service("echo");

  const result = await echo.notify({ message: "hello" });
  assert.deepEqual(result, { sent: true, status: { message: "hello", provider: "socketio" } });
  assert.deepEqual(await seen.next("status"), { message: "hello", provider: "socketio" });

  const touched = await echo.touch({ t: 1 });
  assert.deepEqual(await seen.next("patched"), touched);

  await echo.shout({ text: "no event" });
  await echo.find();
  await echo.get(1);
  await quiet(seen, names);
});

h.test("§4.3 context.dispatch is what the ack and the event carry", async () => {
  const app = await connected(client());
  const watcher = await connected(client());
  const seen = watch(watcher.service("echo"), ["created"]);
  const hidden = await app.service("echo").create({ hide: true, secret: "s3cr3t" });
  assert.deepEqual(hidden, { hidden: true, method: "create" });
  assert.deepEqual(await seen.next("created"), { hidden: true, method: "create" });
  const shown = await app.service("echo").create({ shown: 1 });
  assert.deepEqual(shown.data, { shown: 1 });
  assert.deepEqual(await seen.next("created"), shown);
});

h.test("§4.4 channels: a room, the lobby's notice, nothing outside", async () => {
  const red = await connected(client({ query: { room: "red" } }));
  const blue = await connected(client({ query: { room: "blue" } }));
  const lobby = await connected(client({ query: { lobby: "1" } }));
  const both = await connected(client({ query: { room: "red", lobby: "1" } }));
  const nobody = await connected(client());
  const names = ["created", "patched", "removed"];
  const seen = Object.fromEntries(
    Object.entries({ red, blue, lobby, both, nobody }).map(([k, app]) => [k, watch(app.service("rooms"), names)]),
  );

  const message = await red.service("rooms").create({ room: "red", text: "hi red" });
  assert.deepEqual(message, { room: "red", text: "hi red", id: message.id });
  assert.deepEqual(await seen.red.next("created"), message);
  // In the room and in the lobby: the room's channel comes first and sends the message.
  assert.deepEqual(await seen.both.next("created"), message);
  assert.deepEqual(await seen.lobby.next("created"), { notice: "a message in red" });
  await quiet(seen.blue, names);
  await quiet(seen.nobody, names);
  await quiet(seen.red, names, 0);
  await quiet(seen.both, names, 0);
  await quiet(seen.lobby, names, 0);

  // The last connection of "room/blue" leaves it on disconnect (the channel goes away);
  // a new connection in that room gets a fresh channel, and only its own events.
  blue.io.disconnect();
  const blue2 = await connected(client({ query: { room: "blue" } }));
  const seen2 = watch(blue2.service("rooms"), names);
  const again = await lobby.service("rooms").create({ room: "blue", text: "to blue" });
  assert.deepEqual(await seen2.next("created"), again);
  assert.deepEqual(await seen.lobby.next("created"), { notice: "a message in blue" });
  assert.deepEqual(await seen.both.next("created"), { notice: "a message in blue" });
  await quiet(seen.red, names);
  assert.equal(seen.blue.count("created"), 0);
});

h.test("§4.3 a failing publisher: the call succeeds, nobody gets the event", async () => {
  const app = await connected(client({ query: { lobby: "1", room: "boom" } }));
  const watcher = await connected(client({ query: { lobby: "1", room: "boom" } }));
  const seen = watch(watcher.service("rooms"), ["created"]);
  const own = watch(app.service("rooms"), ["created"]);
  const message = await app.service("rooms").create({ room: "boom", text: "x" });
  assert.deepEqual(message, { room: "boom", text: "x", id: message.id });
  await quiet(seen, ["created"]);
  await quiet(own, ["created"], 0);
  // The next event is published as usual.
  const next = await app.service("rooms").create({ room: "boom2", text: "y" });
  assert.deepEqual(await seen.next("created"), { notice: "a message in boom2" });
  assert.equal(typeof next.id, "number");
});

h.test("§4.2 a service that lists 'created' in its events emits it itself (no automatic event)", async () => {
  const app = await connected(client());
  const watcher = await connected(client());
  const seen = watch(watcher.service("selfemit"), ["created"]);
  const record = await app.service("selfemit").create({ text: "mine" });
  assert.deepEqual(record, { text: "mine", id: record.id });
  // Only the service's own event, never the record. It arrives twice, as from Feathers
  // 5.0.50: serviceEvents = the four standard events concatenated with `events`, so
  // "created" is listed twice and the channels mixin publishes each listing.
  assert.deepEqual(await seen.next("created"), { manual: true, id: record.id });
  assert.deepEqual(await seen.next("created"), { manual: true, id: record.id });
  await quiet(seen, ["created"]);
});

h.test("§4.3 publisher choice: service event, service all, app event, app all", async () => {
  const app = await connected(client());
  const watcher = await connected(client());
  const names = ["created", "patched", "removed"];
  const pubsel = watch(watcher.service("pubsel"), names);
  const messages = watch(watcher.service("messages"), names);
  const run = tag();

  const p = await app.service("pubsel").create({ run });
  assert.deepEqual(await pubsel.next("created"), { run, id: p.id, publishedBy: "service created" });
  await app.service("pubsel").patch(p.id, { more: 1 });
  assert.deepEqual(await pubsel.next("patched"), { run, id: p.id, more: 1, publishedBy: "service all" });
  await app.service("pubsel").remove(p.id);
  // The service's all-events publisher wins over the app's "removed" publisher.
  assert.deepEqual(await pubsel.next("removed"), { run, id: p.id, more: 1, publishedBy: "service all" });

  const m = await app.service("messages").create({ run });
  assert.deepEqual(await messages.next("created"), m);
  await app.service("messages").remove(m.id);
  assert.deepEqual(await messages.next("removed"), { ...m, publishedBy: "app removed" });
  await quiet(pubsel, names);
  await quiet(messages, names, 0);
});

// ---- §6.3 hook order ---------------------------------------------------------------------

const SUCCESS_START = [
  "app around all before (around)",
  "app around create before (around)",
  "app before all (before)",
  "app before create (before)",
  "svc around list before (around)",
  "svc around table create before (around)",
  "svc around all before (around)",
  "svc around create before (around)",
  "svc before all (before)",
  "svc before create (before)",
];
const SUCCESS_END = [
  "svc around create after (around)",
  "svc around all after (around)",
  "svc around table create after (around)",
  "svc around list after (around)",
  "app after all (after)",
  "app after create (after)",
  "app around create after (around)",
  "app around all after (around)",
];
const EXPECTED_ORDERS = {
  ok: [...SUCCESS_START, "create method", "svc after all (after)", "svc after create (after)", ...SUCCESS_END],
  skip: [...SUCCESS_START, "svc after all (after)", "svc after create (after)", ...SUCCESS_END],
  recover: [...SUCCESS_START, "create method", "svc error create (error)", ...SUCCESS_END],
  fail: [
    ...SUCCESS_START,
    "create method",
    "svc error create (error)",
    "svc error all (error)",
    "svc around create error (around)",
    "svc around all error (around)",
    "svc around table create error (around)",
    "svc around list error (around)",
    "app error create (error)",
    "app error all (error)",
    "app around create error (around)",
    "app around all error (around)",
  ],
  find: [
    "app around all before (around)",
    "app before all (before)",
    "svc around list before (around)",
    "svc around all before (around)",
    "svc before all (before)",
    "find method",
    "svc after all (after)",
    "svc around all after (around)",
    "svc around list after (around)",
    "app after all (after)",
    "app around all after (around)",
  ],
};

// The app of tests/interop/apps/feathers (app hooks, services/traced.lua, lib/trace.lua)
// rebuilt in-process with Feathers itself.
async function feathersOrders() {
  const add = (ctx, label) => (ctx.params.trace ||= []).push(`${label} (${ctx.type})`);
  const regular = (label) => (ctx) => {
    if (ctx.path === "traced") add(ctx, label);
  };
  const around = (label) => async (ctx, next) => {
    if (ctx.path !== "traced") return next();
    add(ctx, `${label} before`);
    try {
      await next();
    } catch (err) {
      add(ctx, `${label} error`);
      throw err;
    }
    add(ctx, `${label} after`);
  };
  const app = feathers.feathers();
  app.use("traced", {
    async find(params) {
      params.trace.push("find method");
      return { trace: params.trace };
    },
    async create(data, params) {
      params.trace.push("create method");
      if (data.mode === "fail" || data.mode === "recover") throw new errors.Unprocessable("method failed", { trace: params.trace });
      return { trace: params.trace };
    },
  });
  const kinds = (prefix) => ({
    around: { all: [around(`${prefix} around all`)], create: [around(`${prefix} around create`)] },
    before: { all: [regular(`${prefix} before all`)] },
    after: { all: [regular(`${prefix} after all`)], create: [regular(`${prefix} after create`)] },
    error: { all: [regular(`${prefix} error all`)] },
  });
  const appHooks = kinds("app");
  appHooks.before.create = [regular("app before create")];
  appHooks.error.create = [regular("app error create")];
  app.hooks(appHooks);
  const traced = app.service("traced");
  traced.hooks([around("svc around list")]);
  traced.hooks({ create: [around("svc around table create")] });
  const svcHooks = kinds("svc");
  svcHooks.before.create = [(ctx) => {
    add(ctx, "svc before create");
    if (ctx.data.mode === "skip") ctx.result = { trace: ctx.params.trace, skipped: true };
  }];
  svcHooks.error.create = [(ctx) => {
    add(ctx, "svc error create");
    if (ctx.data.mode === "recover") ctx.result = { trace: ctx.params.trace, recovered: true };
  }];
  traced.hooks(svcHooks);
  const orders = {};
  for (const mode of ["ok", "skip", "recover"]) orders[mode] = (await traced.create({ mode })).trace;
  orders.find = (await traced.find()).trace;
  orders.fail = (await rejects(traced.create({ mode: "fail" }))).data.trace;
  return orders;
}

h.test("§6.3 the expected hook orders are Feathers' own", async () => {
  assert.deepEqual(await feathersOrders(), EXPECTED_ORDERS);
});

h.test("§6.3 hook order end to end: success, skip, recover, failure, another method", async () => {
  const app = await connected(client());
  const traced = app.service("traced");
  assert.deepEqual(await traced.create({ mode: "ok" }), { trace: EXPECTED_ORDERS.ok });
  assert.deepEqual(await traced.create({ mode: "skip" }), { trace: EXPECTED_ORDERS.skip, skipped: true });
  assert.deepEqual(await traced.create({ mode: "recover" }), { trace: EXPECTED_ORDERS.recover, recovered: true });
  assert.deepEqual(await traced.find(), { trace: EXPECTED_ORDERS.find });
  const err = await rejects(traced.create({ mode: "fail" }));
  checkClientError(err, "Unprocessable", "method failed", { data: { trace: EXPECTED_ORDERS.fail } });
});

// ---- §8 memory adapter: multi, queries, sorting, pagination, sanitising -----------------

h.test("§8.6 multi refused where the service does not allow it", async () => {
  const app = await connected(client());
  const pubsel = app.service("pubsel");
  checkClientError(await rejects(pubsel.create([{ a: 1 }, { a: 2 }])), "MethodNotAllowed", "Can not create multiple entries");
  checkClientError(await rejects(pubsel.patch(null, { a: 1 })), "MethodNotAllowed", "Can not patch multiple entries");
  checkClientError(await rejects(pubsel.remove(null)), "MethodNotAllowed", "Can not remove multiple entries");
});

const OPERATOR_CASES = [
  [{}, [1, 2, 3, 4, 5, 6]],
  [{ age: 25 }, [2, 4]],
  [{ age: 30 }, [1]],
  [{ age: "30" }, [6]],
  [{ active: true }, [1, 3, 4, 6]],
  [{ active: false }, [2, 5]],
  [{ name: "Alice", age: 30 }, [1]],
  [{ name: "Alice", age: 31 }, []],
  [{ age: { $in: [25, 41] } }, [2, 4, 5]],
  [{ age: { $in: ["30"] } }, [6]],
  [{ age: { $nin: [25, 41] } }, [1, 3, 6]],
  [{ age: { $lt: 30 } }, [2, 4]],
  [{ age: { $lte: 30 } }, [1, 2, 4]],
  [{ age: { $gt: 30 } }, [3, 5]],
  [{ age: { $gte: 30 } }, [1, 3, 5]],
  [{ age: { $gt: 25, $lt: 41 } }, [1, 3]],
  [{ age: { $ne: 25 } }, [1, 3, 5, 6]],
  [{ age: { $lt: "4" } }, [6]],
  [{ name: { $gt: "C" } }, [3, 4, 5, 6]],
  [{ tags: "dev" }, [1, 2, 5]],
  [{ tags: { $in: ["ops", "qa"] } }, [3, 4, 5]],
  [{ tags: { $nin: ["dev"] } }, [3, 4, 6]],
  [{ tags: { $ne: "dev" } }, [3, 4, 6]],
  [{ tags: null }, [6]],
  [{ "address.city": "Paris" }, [1, 3]],
  [{ "address.zip": { $gte: "10116", $lt: "70000" } }, [4, 5]],
  [{ $or: [{ name: "Alice" }, { age: { $gt: 40 } }] }, [1, 5]],
  [{ $and: [{ active: true }, { "address.city": "Paris" }] }, [1, 3]],
  [{ $or: [{ $or: [{ active: false, age: 25 }, { age: 35 }] }, { name: "Frank" }] }, [2, 3, 6]],
  [{ $and: [{ $or: [{ age: 25 }, { age: 41 }] }, { active: false }] }, [2, 5]],
  [{ active: true, $or: [{ age: 25 }, { age: 35 }] }, [3, 4]],
];

h.test("§8.4 query operators on the memory adapter", async () => {
  const app = await connected(client());
  const people = app.service("people");
  assert.deepEqual(await people.find(), PEOPLE, "the fixed records");
  for (const [query, ids] of OPERATOR_CASES) {
    assert.equal(feathersRefusal(query), null, `Feathers accepts ${JSON.stringify(query)}`);
    assert.deepEqual(await people.find({ query }), ids.map(person), JSON.stringify(query));
  }
  assert.deepEqual(await people.get(3), person(3));
  assert.deepEqual(await people.get("3"), person(3));
  checkClientError(await rejects(people.get(3, { query: { active: false } })), "NotFound", "No record found for id '3'");
  checkClientError(await rejects(people.get(99)), "NotFound", "No record found for id '99'");
});

const SORTS = [
  { age: 1, name: -1 },
  { age: -1, name: 1 },
  { "address.city": 1, id: -1 },
  { name: -1 },
  { active: 1, id: -1 },
  { tags: 1, id: 1 },
  { "address.zip": -1 },
];

h.test("§8.5 $sort: multi-key precedence, dotted keys, value kinds (Feathers' sorter)", async () => {
  const app = await connected(client());
  const people = app.service("people");
  const expected = {
    '{"age":1,"name":-1}': [4, 2, 1, 3, 5, 6],
    '{"age":-1,"name":1}': [6, 5, 3, 1, 2, 4],
    '{"address.city":1,"id":-1}': [5, 2, 4, 3, 1, 6],
    '{"name":-1}': [6, 5, 4, 3, 2, 1],
    '{"active":1,"id":-1}': [5, 2, 6, 4, 3, 1],
    '{"tags":1,"id":1}': [6, 1, 2, 5, 3, 4],
    '{"address.zip":-1}': [3, 1, 4, 5, 2, 6],
  };
  for (const sort of SORTS) {
    const ids = expected[JSON.stringify(sort)];
    assert.deepEqual([...PEOPLE].sort(commons.sorter(sort)).map((p) => p.id), ids, `Feathers' sorter for ${JSON.stringify(sort)}`);
    assert.deepEqual((await people.find({ query: { $sort: sort } })).map((p) => p.id), ids, JSON.stringify(sort));
  }
  // Directions given as strings are parsed (§8.2).
  assert.deepEqual((await people.find({ query: { $sort: { age: "-1", name: "1" } } })).map((p) => p.id), [6, 5, 3, 1, 2, 4]);
  // $skip and $limit without pagination.
  assert.deepEqual((await people.find({ query: { $sort: { id: -1 }, $skip: 1, $limit: 2 } })).map((p) => p.id), [5, 4]);
  assert.deepEqual(await people.find({ query: { $limit: 0 } }), []);
  assert.deepEqual((await people.find({ query: { active: true, $skip: 2 } })).map((p) => p.id), [4, 6]);
});

h.test("§8.6 $select keeps the id field (Feathers' select)", async () => {
  const app = await connected(client());
  const people = app.service("people");
  const selects = [["name"], ["age", "tags"], ["address.city"], ["id"], []];
  for (const fields of selects) {
    const expected = commons.select({ query: { $select: fields } }, "id")(PEOPLE);
    assert.deepEqual(await people.find({ query: { $select: fields } }), expected, JSON.stringify(fields));
  }
  assert.deepEqual(await people.get(6, { query: { $select: ["age", "tags"] } }), { id: 6, age: "30" });
  assert.deepEqual(await people.find({ query: { $select: ["name"], $sort: { name: -1 }, $limit: 2 } }), [
    { id: 6, name: "Frank" },
    { id: 5, name: "Eve" },
  ]);
});

h.test("§8.3 pagination: default, max, $limit, $skip, total", async () => {
  const app = await connected(client());
  const paged = app.service("paged");
  const page = (total, limit, skip, ids) => ({ total, limit, skip, data: ids.map(person) });
  const cases = [
    [{}, page(6, 2, 0, [1, 2])],
    [{ $limit: 10 }, page(6, 4, 0, [1, 2, 3, 4])],
    [{ $limit: 3, $skip: 2 }, page(6, 3, 2, [3, 4, 5])],
    [{ $skip: 5 }, page(6, 2, 5, [6])],
    [{ $skip: 6 }, page(6, 2, 6, [])],
    [{ $limit: 0 }, page(6, 0, 0, [])],
    [{ $limit: -1 }, page(6, 2, 0, [1, 2])],
    [{ $limit: "3" }, page(6, 3, 0, [1, 2, 3])],
    [{ active: true, $limit: 1 }, page(4, 1, 0, [1])],
    [{ active: true, $skip: 1 }, page(4, 2, 1, [3, 4])],
    [{ age: { $gt: 100 } }, page(0, 2, 0, [])],
    [{ $sort: { age: -1 }, $limit: 3 }, page(6, 3, 0, [6, 5, 3])],
  ];
  for (const [query, expected] of cases) {
    assert.deepEqual(await paged.find({ query }), expected, JSON.stringify(query));
    // The limit is Feathers' getLimit of the paginate option.
    assert.equal(expected.limit, commons.getLimit(query.$limit, { default: 2, max: 4 }), `getLimit ${JSON.stringify(query)}`);
  }
  assert.deepEqual(await paged.find({ query: { $select: ["name"], $sort: { id: -1 } } }), {
    total: 6,
    limit: 2,
    skip: 0,
    data: [{ id: 6, name: "Frank" }, { id: 5, name: "Eve" }],
  });
});

// Queries Feathers' filterQuery refuses (feathers.md §8.2); the wire error must be
// exactly Feathers' (message, and data = the offending object for operators).
const BAD_QUERIES = [
  { $foo: 1 },
  { $regex: "A" },
  { age: { $regex: "A" } },
  { name: { $like: "A%" }, age: 30 },
  { address: { city: { $exists: true } } },
  { $or: [{ age: 30 }, { age: { $bad: 1 } }] },
  { $and: [{ name: { $like: "x" } }] },
  { tags: [{ $bad: 1 }] },
  // $and is a filter, not an operator: it is not allowed inside $or.
  { $or: [{ $and: [{ active: false }, { age: 25 }] }, { name: "Frank" }] },
];

// Feathers' own answer to a query: the error's JSON, or null when it accepts it.
function feathersRefusal(query) {
  try {
    commons.filterQuery(structuredClone(query), { paginate: false });
  } catch (err) {
    return JSON.parse(JSON.stringify(err.toJSON()));
  }
  return null;
}

h.test("§8.2 sanitising errors: exact messages and data (Feathers' filterQuery)", async () => {
  const app = await connected(client());
  const s = await rawConnected();
  for (const query of BAD_QUERIES) {
    const reference = feathersRefusal(query);
    assert.ok(reference, `Feathers refuses ${JSON.stringify(query)}`);
    assert.equal(reference.name, "BadRequest");
    for (const path of ["people", "paged"]) {
      assert.deepEqual(await call(s, "find", path, query), [reference], `${path} ${JSON.stringify(query)}`);
    }
    assert.deepEqual(await call(s, "get", "people", 1, query), [reference], `get ${JSON.stringify(query)}`);
    const err = await rejects(app.service("people").find({ query }));
    checkClientError(err, "BadRequest", reference.message, { data: reference.data });
  }
  assert.deepEqual(feathersRefusal({ $foo: 1 }), wireError("BadRequest", "Invalid filter value $foo"));
  assert.deepEqual(feathersRefusal({ age: { $regex: "A" } }), wireError("BadRequest", "Invalid query parameter $regex", { data: { $regex: "A" } }));
  // A multi remove with a bad query changes nothing.
  const messages = app.service("messages");
  const run = tag();
  const m = await messages.create({ run });
  checkClientError(await rejects(messages.remove(null, { query: { run, $where: "1" } })), "BadRequest", "Invalid filter value $where");
  checkClientError(await rejects(messages.patch(null, { x: 1 }, { query: { run, n: { $bad: 1 } } })), "BadRequest", "Invalid query parameter $bad", { data: { $bad: 1 } });
  assert.deepEqual(await messages.find({ query: { run } }), [m]);
  await messages.remove(m.id);
});

h.test("§8.2 operators inside $sort and $select objects are checked as Feathers does", async () => {
  const s = await rawConnected();
  for (const query of [{ $sort: { name: { $bad: 1 } } }, { $select: { $bad: 1 } }]) {
    const reference = feathersRefusal(query);
    assert.deepEqual(reference, wireError("BadRequest", "Invalid query parameter $bad", { data: { $bad: 1 } }));
    assert.deepEqual(await call(s, "find", "people", query), [reference], JSON.stringify(query));
  }
});

h.run("feathers-client");
