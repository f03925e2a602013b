// The real @feathersjs/authentication-client v5 (with @feathersjs/feathers and
// @feathersjs/socketio-client over socket.io-client v4) against tests/interop/apps/auth on
// port 3301: spec/feathers.md §9 and §10.4, reliability.md §4.5 #37. Local login, a wrong
// password, jwt re-authentication after a forced reconnect, logout, an expired token (the
// server disconnects), authentication from the handshake's Authorization header,
// passwords never on the wire, channels switching on login. Tokens are checked with Node's
// jsonwebtoken and the app's secret.
"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const authClient = require("@feathersjs/authentication-client");
const errors = require("@feathersjs/errors");
const jwt = require("jsonwebtoken");
const h = require("./lib/harness");
const { connected: socketConnected, rejects } = require("./lib/client");

const server = h.server({ app: "tests/interop/apps/auth", port: 3301 });
const URL = `http://127.0.0.1:${server.port}`;
const SECRET = "plume-interop-auth-secret-4b1d";
const VERIFY = { algorithms: ["HS256"], audience: "https://yourdomain.com", issuer: "feathers" };

let counter = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now()}-${++counter}@example.com`;

// A Feathers client app of its own: socket (websocket unless told), memory storage,
// every raw packet the socket receives recorded in app.raw. Closed when the run ends.
function client({ transports = ["websocket"], extraHeaders, reconnection = true } = {}) {
  const socket = io(URL, {
    transports,
    forceNew: true,
    reconnection,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    extraHeaders,
  });
  const app = feathers.feathers();
  app.configure(socketio(socket));
  app.configure(authClient({ storage: new authClient.MemoryStorage() }));
  app.raw = [];
  socket.io.on("open", () => socket.io.engine.on("packet", (p) => app.raw.push(String(p.data ?? ""))));
  h.defer(() => socket.disconnect());
  return app;
}

const connected = (app, ms) => socketConnected(app.io, ms).then(() => app);

// Resolves with the arguments of the next `event` on emitter.
function once(emitter, event, ms = 3000) {
  return h.withTimeout(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), ms, `event ${event}`);
}

// A new user through the (unauthenticated) users.create of a fresh client.
async function signUp(password = "correct horse") {
  const app = await connected(client());
  const email = unique("user");
  const user = await app.service("users").create({ email, password });
  return { email, password, user };
}

async function loggedIn(opts) {
  const account = await signUp();
  const app = await connected(client(opts));
  const result = await app.authenticate({ strategy: "local", email: account.email, password: account.password });
  return { app, result, ...account };
}

function noPasswords(app) {
  for (const packet of app.raw) {
    assert.ok(!/\$2[aby]\$/.test(packet), `a bcrypt hash went over the wire: ${packet.slice(0, 200)}`);
    assert.ok(!packet.includes("correct horse"), `a password went over the wire: ${packet.slice(0, 200)}`);
  }
}

// ---- tests -----------------------------------------------------------------------------

h.test("§9.2 local login: Feathers' result, a token jsonwebtoken accepts", async () => {
  const { app, result, user, email } = await loggedIn();
  assert.equal(typeof result.accessToken, "string");
  assert.equal(result.authentication.strategy, "local");
  assert.deepEqual(result.user, { email, id: user.id });
  const payload = jwt.verify(result.accessToken, SECRET, VERIFY);
  assert.deepEqual(result.authentication.payload, payload);
  assert.equal(payload.sub, String(user.id));
  assert.equal(payload.exp - payload.iat, 86400);
  assert.match(payload.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(jwt.decode(result.accessToken, { complete: true }).header, { alg: "HS256", typ: "access" });
  assert.equal(await app.authentication.getAccessToken(), result.accessToken);
  assert.deepEqual(await app.service("whoami").find(), { email, authenticated: true, strategy: "jwt" });
  noPasswords(app);
});

h.test("§9.2 wrong password and unknown user: NotAuthenticated 'Invalid login'", async () => {
  const { email } = await signUp();
  const app = await connected(client());
  for (const data of [
    { strategy: "local", email, password: "wrong" },
    { strategy: "local", email: unique("nobody"), password: "correct horse" },
    { strategy: "local", email },
  ]) {
    const err = await rejects(app.authenticate(data));
    assert.ok(err instanceof errors.NotAuthenticated, `got ${err && err.name}`);
    assert.equal(err.message, "Invalid login");
    assert.equal(err.code, 401);
    assert.equal(err.className, "not-authenticated");
  }
  assert.equal(await app.authentication.getAccessToken(), null);
  const err = await rejects(app.service("messages").find());
  assert.ok(err instanceof errors.NotAuthenticated);
  assert.equal(err.message, "Not authenticated");
  const bad = await rejects(app.authenticate({ strategy: "github" }));
  assert.equal(bad.message, "Invalid authentication information (strategy not allowed in authStrategies)");
});

h.test("§10.4 jwt re-authentication after a forced reconnect", async () => {
  const { app, result, email } = await loggedIn();
  const socket = app.io;
  const firstId = socket.id;
  const reauthenticated = once(app, "authenticated", 5000);
  const reconnected = once(socket, "connect", 5000);
  socket.io.engine.close(); // transport loss: the client reconnects on its own
  await reconnected;
  const [again] = await reauthenticated;
  assert.notEqual(socket.id, firstId);
  assert.equal(again.accessToken, result.accessToken);
  assert.equal(again.authentication.strategy, "jwt");
  assert.deepEqual(again.authentication.payload, result.authentication.payload);
  assert.equal(again.user.email, email);
  // The new connection is logged in: a protected call works without another login.
  assert.deepEqual(await app.service("whoami").find(), { email, authenticated: true, strategy: "jwt" });
  noPasswords(app);
}, { timeout: 10000 });

h.test("§9.3 logout: remove(null), the token forgotten, protected calls refused", async () => {
  const { app, result, email } = await loggedIn();
  const loggedOut = once(app, "logout");
  const removed = await app.logout();
  await loggedOut;
  assert.equal(removed.accessToken, result.accessToken);
  assert.equal(removed.user.email, email);
  assert.equal(await app.authentication.getAccessToken(), null);
  const err = await rejects(app.service("whoami").find());
  assert.equal(err.message, "Not authenticated");
  // Logging in again works on the same connection.
  const { password } = { password: "correct horse" };
  await app.authenticate({ strategy: "local", email, password });
  assert.equal((await app.service("whoami").find()).email, email);
});

h.test("§9.6 an expired token: the server disconnects the socket", async () => {
  const account = await signUp();
  const app = await connected(client({ reconnection: false }));
  const disconnected = once(app.io, "disconnect", 6000);
  const result = await app.authenticate(
    { strategy: "local", email: account.email, password: account.password },
    { query: { expiresIn: "2s" } },
  );
  const payload = jwt.decode(result.accessToken);
  assert.equal(payload.exp - payload.iat, 2);
  const [reason] = await disconnected;
  assert.equal(reason, "io server disconnect");
  assert.ok(Date.now() / 1000 >= payload.exp - 1, "disconnected before the token expired");

  // The expired token no longer authenticates a new connection.
  const other = await connected(client());
  const err = await rejects(other.authenticate({ strategy: "jwt", accessToken: result.accessToken }));
  assert.ok(err instanceof errors.NotAuthenticated);
  assert.equal(err.message, "jwt expired");
  assert.equal(err.data.name, "TokenExpiredError");
  assert.equal(err.data.expiredAt, new Date(payload.exp * 1000).toJSON());
}, { timeout: 10000 });

h.test("§9.2 forged and foreign tokens: NotAuthenticated with jsonwebtoken's message", async () => {
  const { user } = await signUp();
  const app = await connected(client());
  const claims = { sub: String(user.id) };
  const good = { algorithm: "HS256", header: { typ: "access" }, audience: "https://yourdomain.com", issuer: "feathers", expiresIn: "1h" };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const cases = [
    [jwt.sign(claims, "another secret", good), "invalid signature"],
    [jwt.sign(claims, SECRET, { ...good, audience: "https://elsewhere.example" }), "jwt audience invalid. expected: https://yourdomain.com"],
    [jwt.sign(claims, SECRET, { ...good, issuer: "someone" }), "jwt issuer invalid. expected: feathers"],
    [jwt.sign(claims, SECRET, { ...good, notBefore: "1h" }), "jwt not active"],
    [`${b64({ alg: "none", typ: "access" })}.${b64({ ...claims, aud: "https://yourdomain.com", iss: "feathers" })}.`, "jwt signature is required"],
    [jwt.sign(claims, SECRET, { ...good, algorithm: "HS512" }), "invalid algorithm"],
    ["not-a-token", "jwt malformed"],
    ["a".repeat(10240), "jwt malformed"],
  ];
  for (const [accessToken, message] of cases) {
    const err = await rejects(app.authenticate({ strategy: "jwt", accessToken }));
    assert.ok(err instanceof errors.NotAuthenticated, `${message}: got ${err && err.name}`);
    assert.equal(err.message, message);
  }
  // A token Node's jsonwebtoken made with the app's secret is as good as Plume's own.
  const node = jwt.sign(claims, SECRET, good);
  const result = await app.authenticate({ strategy: "jwt", accessToken: node });
  assert.equal(result.user.id, user.id);
});

h.test("§2.1 Authorization: Bearer in the handshake authenticates the connection", async () => {
  const { result, email } = await loggedIn();
  for (const transports of [["websocket"], ["polling"]]) {
    for (const value of [`Bearer ${result.accessToken}`, `JWT ${result.accessToken}`, result.accessToken]) {
      const app = await connected(client({ transports, extraHeaders: { Authorization: value } }));
      assert.deepEqual(await app.service("whoami").find(), { email, authenticated: true, strategy: "jwt" }, `${transports} ${value.slice(0, 6)}`);
      app.io.disconnect();
    }
  }
  // Another scheme is ignored: the connection is anonymous.
  const basic = await connected(client({ extraHeaders: { Authorization: "Basic dXNlcjpwYXNz" } }));
  assert.equal((await rejects(basic.service("whoami").find())).message, "Not authenticated");
});

h.test("§2.4 a bad token in the handshake refuses the connection", async () => {
  const app = client({ reconnection: false, extraHeaders: { Authorization: "Bearer not.a.token" } });
  const err = await rejects(connected(app));
  assert.equal(err.message, "invalid token");
  assert.deepEqual(err.data, { name: "JsonWebTokenError" });
});

h.test("§9.5 protected fields never sent: results, pages, events, login results", async () => {
  const watcher = await loggedIn();
  const created = once(watcher.app.service("users"), "created");
  const { app, user, email } = await loggedIn();
  assert.equal(user.password, undefined);
  const [event] = await created;
  assert.equal(event.password, undefined);
  const page = await app.service("users").find({ query: { email } });
  assert.equal(page.total, 1);
  assert.deepEqual(page.data[0], { email, id: user.id });
  assert.deepEqual(await app.service("users").get(user.id), { email, id: user.id });
  const patched = await app.service("users").patch(user.id, { password: "correct horse battery" });
  assert.equal(patched.password, undefined);
  // The new password works, the old one does not.
  const fresh = await connected(client());
  await fresh.authenticate({ strategy: "local", email, password: "correct horse battery" });
  const other = await connected(client());
  assert.equal((await rejects(other.authenticate({ strategy: "local", email, password: "correct horse" }))).message, "Invalid login");
  noPasswords(app);
  noPasswords(watcher.app);
});

h.test("§9.6 channels switch on login and logout", async () => {
  const anonymous = await connected(client());
  const member = await loggedIn();
  const late = await signUp();
  const lateApp = await connected(client());
  const seen = { anonymous: [], member: [], late: [] };
  anonymous.service("messages").on("created", (m) => seen.anonymous.push(m.text));
  member.app.service("messages").on("created", (m) => seen.member.push(m.text));
  lateApp.service("messages").on("created", (m) => seen.late.push(m.text));

  const first = await member.app.service("messages").create({ text: "one" });
  assert.equal(first.userId, member.user.id);
  await h.sleep(100);
  assert.deepEqual(seen, { anonymous: [], member: ["one"], late: [] });

  await lateApp.authenticate({ strategy: "local", email: late.email, password: late.password });
  await member.app.service("messages").create({ text: "two" });
  await h.sleep(100);
  assert.deepEqual(seen, { anonymous: [], member: ["one", "two"], late: ["two"] });

  await lateApp.logout();
  await member.app.service("messages").create({ text: "three" });
  await h.sleep(100);
  assert.deepEqual(seen, { anonymous: [], member: ["one", "two", "three"], late: ["two"] });
});

h.run("feathers-auth");
