// The `plume` command (DESIGN.md §6, ecosystem.md §1.1 and §3, reliability.md §3.4):
// --help and --version, option precedence (config/default.lua < config/<env>.lua <
// PLUME_* < flags), plume new + plume test, graceful shutdown (calls in flight finish,
// the deadline bounds the wait, exit 0), and the logs (access lines for HTTP requests
// and service calls, JSON lines, per-subsystem debug). Each test starts its own plume
// processes on ports 3411-3419 with tests/interop/apps/runtime-cli.
"use strict";

const assert = require("node:assert/strict");
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const h = require("./lib/harness");

const APP = "tests/interop/apps/runtime-cli";
const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/;

function bin() {
  const b = process.env.PLUME_BIN;
  if (!b || !fs.existsSync(b)) throw new Error(`PLUME_BIN is not a file: ${b}`);
  return b;
}

// The environment without PLUME_* variables and NODE_ENV, plus extra.
function env(extra = {}) {
  const e = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PLUME_") && k !== "NODE_ENV") e[k] = v;
  return { ...e, ...extra };
}

function runSync(args, extra = {}) {
  const r = spawnSync(bin(), args, { cwd: h.ROOT, env: env(extra), encoding: "utf8", timeout: 20000 });
  assert.ok(!SANITIZER.test(r.stderr), `sanitizer report:\n${r.stderr.slice(0, 2000)}`);
  return r;
}

// Starts plume with args; resolves once a stderr line matches ready. The process is
// killed when the test ends; p.lines holds its stderr lines, p.exited its exit.
async function start(args, extra = {}, ready = /listening on http:\/\/[^:]+:(\d+)/) {
  const p = spawn(bin(), args, { cwd: h.ROOT, env: env(extra), stdio: ["ignore", "pipe", "pipe"] });
  p.lines = [];
  p.out = "";
  p.exited = new Promise((resolve) => p.once("exit", (code, signal) => resolve({ code, signal })));
  h.defer(async () => {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGKILL");
      await p.exited;
    }
    const text = p.lines.join("\n");
    assert.ok(!SANITIZER.test(text), `sanitizer report:\n${text.slice(0, 2000)}`);
  });
  let buffered = "";
  const waiters = [];
  p.stdout.on("data", (d) => (p.out += d));
  p.stderr.on("data", (d) => {
    buffered += d;
    let i;
    while ((i = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      p.lines.push(line);
      for (const w of waiters.slice()) if (w.re.test(line)) w.resolve(line.match(w.re));
    }
  });
  p.waitFor = (re, ms = 10000) => {
    const found = p.lines.find((l) => re.test(l));
    if (found) return Promise.resolve(found.match(re));
    return h.withTimeout(new Promise((resolve) => waiters.push({ re, resolve })), ms, `log line ${re}`);
  };
  const m = await Promise.race([
    p.waitFor(ready, 15000),
    p.exited.then((e) => { throw new Error(`plume exited at start (${JSON.stringify(e)}):\n${p.lines.join("\n")}`); }),
  ]);
  p.port = m && m[1] ? Number(m[1]) : undefined;
  return p;
}

async function stop(p, ms = 12000) {
  p.kill("SIGTERM");
  return h.withTimeout(p.exited, ms, "exit after SIGTERM");
}

async function client(port) {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
  const app = feathers.feathers();
  app.configure(socketio(socket, { timeout: 15000 }));
  h.defer(() => socket.disconnect());
  await h.withTimeout(new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), 3000, "connect");
  return app;
}

function get(port, url) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: url, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    }).on("error", reject);
  });
}

function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => { s.destroy(); resolve(false); });
    s.once("error", () => resolve(true));
  });
}

// ---- tests -------------------------------------------------------------------------

h.test("§6 --help lists every option, --version, bad flags exit 2", async () => {
  const help = runSync(["--help"]);
  assert.equal(help.status, 0);
  for (const flag of ["--port", "--host", "--no-watch", "--watch", "--log-level", "--log-format", "--env",
    "--debug", "--access-log", "--lua-call-timeout", "--lua-memory-limit", "--shutdown-timeout"]) {
    assert.ok(help.stdout.includes(flag.replace("--no-", "--")), `--help lacks ${flag}`);
  }
  assert.match(help.stdout, /plume new NAME/);
  assert.match(help.stdout, /plume test/);
  const version = runSync(["--version"]);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^plume \d+\.\d+\.\d+\n$/);
  const unknown = runSync([APP, "--no-such-option"]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option --no-such-option/);
  assert.equal(runSync([APP, "--port", "many"]).status, 2);
  assert.equal(runSync([APP, "--log-level", "loud"]).status, 2);
  assert.equal(runSync([APP, "--log-format", "xml"]).status, 2);
  const badEnv = runSync([APP], { PLUME_PORT: "x" });
  assert.equal(badEnv.status, 2);
  assert.match(badEnv.stderr, /PLUME_PORT/);
  assert.equal(runSync(["tests/interop/apps/no-such-app", "--port", "3419"]).status, 1);
});

h.test("§6 precedence: config/default.lua < config/<env>.lua < PLUME_* < flags", async () => {
  const cases = [
    { args: [APP], env: {}, port: 3411, envName: "development", greeting: "from default.lua", limits: { a: 1, b: 2 } },
    { args: [APP], env: { PLUME_ENV: "test" }, port: 3412, envName: "test", greeting: "from test.lua", limits: { a: 1, b: 20 } },
    { args: [APP], env: { PLUME_ENV: "test", PLUME_PORT: "3413" }, port: 3413, envName: "test" },
    { args: [APP, "--port", "3414"], env: { PLUME_ENV: "test", PLUME_PORT: "3413" }, port: 3414, envName: "test" },
    { args: [APP, "--env=development"], env: { PLUME_ENV: "test" }, port: 3411, envName: "development" },
    { args: [APP], env: { NODE_ENV: "test" }, port: 3412, envName: "test" },
    { args: [APP], env: { NODE_ENV: "test", PLUME_ENV: "development" }, port: 3411, envName: "development" },
  ];
  for (const c of cases) {
    const p = await start([...c.args, "--no-watch"], c.env);
    assert.equal(p.port, c.port, `${JSON.stringify(c)} listens on ${p.port}`);
    const info = await (await client(p.port)).service("info").find();
    assert.equal(info.env, c.envName);
    assert.equal(info.port, c.port);
    if (c.greeting) assert.equal(info.greeting, c.greeting);
    if (c.limits) assert.deepEqual(info.limits, c.limits);
    assert.deepEqual(await stop(p), { code: 0, signal: null });
  }
  // a bad config file stops the start, naming the file
  const dir = path.join(h.ROOT, "tests/artifacts/runtime-cli-badconfig");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "config"), { recursive: true });
  fs.writeFileSync(path.join(dir, "config/default.lua"), "return { port = 'high' }\n");
  const bad = runSync([dir]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /config\/default\.lua: invalid value for port/);
}, { timeout: 30000 });

h.test("§6 plume new scaffolds an app that starts and passes its own test", async () => {
  const dir = "tests/artifacts/runtime-cli-newapp";
  fs.rmSync(path.join(h.ROOT, dir), { recursive: true, force: true });
  const made = runSync(["new", dir]);
  assert.equal(made.status, 0, made.stderr);
  for (const f of ["app.lua", "config/default.lua", "config/test.lua", "services/messages.lua",
    "public/index.html", "test/messages_test.lua", "README.md"]) {
    assert.ok(fs.existsSync(path.join(h.ROOT, dir, f)), `plume new made no ${f}`);
  }
  assert.match(fs.readFileSync(path.join(h.ROOT, dir, "public/index.html"), "utf8"), /<title>runtime-cli-newapp<\/title>/);
  assert.notEqual(runSync(["new", dir]).status, 0, "plume new refuses a folder that is not empty");
  const tested = runSync(["test", dir], { PLUME_PORT: "3415" });
  assert.equal(tested.status, 0, tested.stdout + tested.stderr);
  assert.match(tested.stdout, /^3 passed, 0 failed$/m);
  const p = await start([dir, "--port", "3416", "--no-watch"]);
  const app = await client(p.port);
  const created = await app.service("messages").create({ text: "hello" });
  assert.equal(created.text, "hello");
  assert.equal((await app.service("messages").find()).total, 1);
  const bad = await app.service("messages").create({}).then(() => null, (e) => e);
  assert.equal(bad && bad.name, "BadRequest");
  const page = await get(p.port, "/");
  assert.equal(page.status, 200);
  assert.match(page.body, /socket\.io\.js/);
  assert.deepEqual(await stop(p), { code: 0, signal: null });
  // a failing test makes plume test fail
  fs.appendFileSync(path.join(h.ROOT, dir, "test/messages_test.lua"), "");
  fs.writeFileSync(path.join(h.ROOT, dir, "test/broken_test.lua"),
    "return { ['fails'] = function() error('on purpose') end }\n");
  const failing = runSync(["test", dir], { PLUME_PORT: "3415" });
  assert.equal(failing.status, 1);
  assert.match(failing.stdout, /^not ok \d+ - broken_test\.lua: fails/m);
  assert.match(failing.stdout, /^3 passed, 1 failed$/m);
}, { timeout: 30000 });

h.test("§3.4 SIGTERM: stop accepting, calls in flight finish, clients are told, exit 0", async () => {
  const p = await start([APP, "--port", "3417", "--no-watch"]);
  const app = await client(p.port);
  const disconnected = new Promise((resolve) => app.io.once("disconnect", resolve));
  const t0 = Date.now();
  const slow = app.service("slow").find({ query: { ms: 800 } });
  await h.sleep(100);
  p.kill("SIGTERM");
  await p.waitFor(/shutting down: 1 call\(s\) in flight/, 2000);
  assert.ok(await refused(p.port), "no new connections once shutting down");
  assert.equal(await slow, "slow", "the call in flight finished and was answered");
  assert.ok(Date.now() - t0 >= 700);
  await h.withTimeout(disconnected, 3000, "the client is told");
  assert.deepEqual(await h.withTimeout(p.exited, 5000, "exit"), { code: 0, signal: null });
}, { timeout: 15000 });

h.test("§3.4 shutdown_timeout bounds the wait for calls in flight", async () => {
  const p = await start([APP, "--port", "3418", "--no-watch", "--shutdown-timeout", "300"]);
  const app = await client(p.port);
  const disconnected = new Promise((resolve) => app.io.once("disconnect", resolve));
  let answered = false;
  app.service("slow").find({ query: { ms: 60000 } }).then(() => (answered = true), () => null);
  await h.sleep(100);
  const t0 = Date.now();
  p.kill("SIGTERM");
  assert.deepEqual(await h.withTimeout(p.exited, 5000, "exit"), { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 3000, `exited after ${Date.now() - t0} ms`);
  await p.waitFor(/1 call\(s\) still running after 300 ms, abandoned/, 1000);
  await h.withTimeout(disconnected, 3000, "the client is told");
  assert.equal(answered, false, "the abandoned call gets no answer");
}, { timeout: 15000 });

h.test("§6 logs: access lines for requests and calls, JSON lines, PLUME_DEBUG", async () => {
  const p = await start([APP, "--port", "3419", "--no-watch", "--log-format", "json"],
    { PLUME_DEBUG: "engineio,feathers" }, /"message":"listening on http:\/\/[^:]+:(\d+)"/);
  const missing = await get(p.port, "/missing?x=1");
  assert.equal(missing.status, 404);
  const app = await client(p.port);
  await app.service("info").find();
  await app.service("nope").find().catch(() => null);
  await stop(p);
  const records = p.lines.filter((l) => l.trim()).map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`not a JSON line: ${l}`);
    }
  });
  for (const r of records) {
    assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(["error", "warn", "info", "debug"].includes(r.level));
    assert.equal(typeof r.subsystem, "string");
  }
  const http404 = records.find((r) => r.subsystem === "access" && r.kind === "http" && r.path === "/missing?x=1");
  assert.ok(http404, "an access line for the HTTP request");
  assert.equal(http404.method, "GET");
  assert.equal(http404.status, 404);
  assert.equal(typeof http404.duration_ms, "number");
  assert.ok(http404.bytes > 0);
  const call = records.find((r) => r.kind === "call" && r.path === "info");
  assert.ok(call, "an access line for the service call");
  assert.equal(call.method, "find");
  assert.equal(call.status, 200);
  assert.ok(records.some((r) => r.level === "debug" && r.subsystem === "feathers" && /internal call slow find 200/.test(r.message)),
    "PLUME_DEBUG=feathers: the internal call");
  assert.ok(records.some((r) => r.level === "debug" && r.subsystem === "engineio" && /session \S+ open/.test(r.message)),
    "PLUME_DEBUG=engineio: sessions");
  assert.ok(!records.some((r) => r.level === "debug" && r.subsystem === "http"), "no debug lines of other subsystems");
  // --no-access-log and --log-level warn silence the access lines
  const quiet = await start([APP, "--port", "3419", "--no-watch", "--no-access-log"]);
  await get(quiet.port, "/missing");
  await (await client(quiet.port)).service("info").find();
  await stop(quiet);
  assert.ok(!quiet.lines.some((l) => / access /.test(l)), quiet.lines.join("\n"));
}, { timeout: 20000 });

h.run("runtime-cli");
