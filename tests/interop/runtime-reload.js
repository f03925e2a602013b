// Hot reload with real clients (DESIGN.md §5, reliability.md §4.8): the Feathers client
// (@feathersjs/feathers + socketio-client over socket.io-client v4) stays connected to
// a copy of tests/interop/apps/runtime-reload while the suite edits its service files.
// An edit runs on the next call over the same connection; a syntax error leaves the old
// version serving and the log names file and line; channel membership, socket.feathers
// data and memory-adapter data survive; new files add services, deleted ones remove
// them. A second server runs with --no-watch and reloads on SIGHUP.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const h = require("./lib/harness");
const { eventually } = require("./lib/client");

const SOURCE = path.join(h.ROOT, "tests/interop/apps/runtime-reload");

// Each server gets a fresh copy of the app: the suite edits its files.
function copyApp(name) {
  const rel = `tests/artifacts/${name}`;
  const dir = path.join(h.ROOT, rel);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(SOURCE, dir, { recursive: true });
  return { rel, dir };
}

const watched = copyApp("runtime-reload-app");
const hup = copyApp("runtime-reload-hup");
const server = h.server({ name: "watch", app: watched.rel, port: 3401, args: ["--watch"] });
const hupServer = h.server({ name: "hup", app: hup.rel, port: 3402 });

function write(app, file, text) {
  // Write then rename, as editors do: the watcher sees one change, never a half file.
  const target = path.join(app.dir, file);
  fs.writeFileSync(target + ".tmp~", text);
  fs.renameSync(target + ".tmp~", target);
}

const greeter = (version) => `return {\n  find = function()\n    return "${version}"\n  end,\n}\n`;

function client(port) {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
  const app = feathers.feathers();
  app.configure(socketio(socket));
  app.disconnects = 0;
  socket.on("disconnect", () => app.disconnects++);
  h.defer(() => socket.disconnect());
  return app;
}

async function connected(app) {
  if (!app.io.connected) {
    await h.withTimeout(new Promise((resolve, reject) => {
      app.io.once("connect", resolve);
      app.io.once("connect_error", reject);
    }), 3000, "connect");
  }
  return app;
}

// Waits until find() on the greeter answers version (reloads are debounced ~100 ms).
async function greets(app, version, ms = 3000) {
  await eventually(async () => assert.equal(await app.service("greeter").find(), version), ms, 50);
}

const logOf = (s) => fs.readFileSync(s.logPath, "utf8");

h.test("§5 an edited service file runs its new code on the next call, same connection", async () => {
  const app = await connected(client(server.port));
  write(watched, "services/greeter.lua", greeter("one"));
  await greets(app, "one");
  const id = app.io.id;
  write(watched, "services/greeter.lua", greeter("two"));
  await greets(app, "two");
  assert.equal(app.io.id, id, "the same Socket.IO connection");
  assert.equal(app.disconnects, 0, "no disconnect");
  assert.match(logOf(server), /services\/greeter\.lua reloaded: service 'greeter'/);
});

h.test("§4.8 a syntax error keeps the old version serving; the log names file and line", async () => {
  const app = await connected(client(server.port));
  write(watched, "services/greeter.lua", greeter("good"));
  await greets(app, "good");
  const before = logOf(server).length;
  write(watched, "services/greeter.lua", "return {\n  find = function()\n    return 'bad' +\n  end,\n}\n");
  await eventually(() => assert.match(logOf(server).slice(before), /services\/greeter\.lua:4: unexpected symbol/), 2000);
  assert.match(logOf(server).slice(before), /not reloaded, the old version keeps serving/);
  assert.equal(await app.service("greeter").find(), "good");
  // a runtime error at load and a file returning nothing usable: the same
  write(watched, "services/greeter.lua", "local t = nil\nreturn t.field\n");
  await eventually(() => assert.match(logOf(server).slice(before), /services\/greeter\.lua:2: attempt to index a nil value/), 2000);
  assert.equal(await app.service("greeter").find(), "good");
  write(watched, "services/greeter.lua", greeter("fixed"));
  await greets(app, "fixed");
  assert.equal(app.disconnects, 0);
});

h.test("§5 channel membership, socket.feathers data and memory data survive a reload", async () => {
  const a = await connected(client(server.port));
  const b = await connected(client(server.port));
  const session = fs.readFileSync(path.join(SOURCE, "services/session.lua"), "utf8");
  write(watched, "services/session.lua", session);
  await eventually(async () => assert.match(await a.service("session").get(0), /^v1:/), 3000);
  await a.service("session").create({ name: "ada" });
  assert.equal(await a.service("session").get(0), "v1:ada");

  const created = [];
  a.service("messages").on("created", (m) => created.push(m));
  const first = await b.service("messages").create({ text: "before" });
  await eventually(() => assert.ok(created.some((m) => m.id === first.id)), 2000);
  const count = (await b.service("messages").find()).total;

  write(watched, "services/session.lua", session.replace('"v1"', '"v2"'));
  write(watched, "services/messages.lua",
    'local memory = require "plume.adapters.memory"\n-- edited\nreturn memory.new({ paginate = { default = 50, max = 100 } })\n');
  await eventually(async () => assert.equal(await a.service("session").get(0), "v2:ada"), 3000);
  await eventually(() => assert.match(logOf(server), /services\/messages\.lua reloaded/), 2000);

  const second = await b.service("messages").create({ text: "after" });
  await eventually(() => assert.ok(created.some((m) => m.id === second.id), "a still hears created"), 2000);
  const page = await b.service("messages").find();
  assert.equal(page.total, count + 1, "records kept across the reload");
  assert.ok(page.data.some((m) => m.id === first.id && m.text === "before"));
  assert.equal(second.id, first.id + 1, "the id counter went on");
  assert.equal(a.disconnects + b.disconnects, 0);
});

h.test("§5 a new file becomes a service; a deleted file removes it", async () => {
  const app = await connected(client(server.port));
  write(watched, "services/extra.lua", "return { find = function() return 'extra' end }\n");
  await eventually(async () => assert.equal(await app.service("extra").find(), "extra"), 3000);
  fs.unlinkSync(path.join(watched.dir, "services/extra.lua"));
  await eventually(async () => {
    const err = await app.service("extra").find().then(() => null, (e) => e);
    assert.ok(err, "the call must fail once the file is gone");
    assert.equal(err.name, "NotFound");
  }, 3000);
  assert.equal(app.disconnects, 0);
});

h.test("§5 SIGHUP reloads everything (--no-watch)", async () => {
  const app = await connected(client(hupServer.port));
  write(hup, "services/greeter.lua", greeter("before-hup"));
  hupServer.proc.kill("SIGHUP");
  await greets(app, "before-hup");
  write(hup, "services/greeter.lua", greeter("after-hup"));
  await h.sleep(400);
  assert.equal(await app.service("greeter").find(), "before-hup", "not watching");
  hupServer.proc.kill("SIGHUP");
  await greets(app, "after-hup");
  assert.equal(app.disconnects, 0);
});

h.run("runtime-reload");
