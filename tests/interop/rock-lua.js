// The rock (rockspec/plume-scm-1.rockspec) as rock-lua.sh installed it into a luarocks
// tree: stock lua5.4 runs require("plume").run on tests/interop/apps/rock, port 3322,
// checked with the real Feathers client: calls and real-time events of a Lua service,
// and the facts of the state it runs in (Lua 5.4, plume.core from the tree, the
// launcher's own state). PLUME_BIN is the launcher and ROCK_TREE the tree (rock-lua.sh).
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const h = require("./lib/harness");

h.server({ app: "tests/interop/apps/rock", port: 3322 });

function client(transports = ["websocket"]) {
  const s = io("http://127.0.0.1:3322", { transports, forceNew: true, reconnection: false });
  h.defer(() => s.disconnect());
  const app = feathers.feathers();
  app.configure(socketio(s));
  return app;
}

h.test("the app runs in the launcher's stock lua5.4 state, on plume.core from the tree", async () => {
  const state = await client().service("state").find();
  const tree = process.env.ROCK_TREE;
  assert.equal(state.lua, "Lua 5.4");
  assert.equal(state.core, path.join(tree, "lib/lua/5.4/plume/core.so"));
  assert.equal(state.framework, path.join(tree, "share/lua/5.4/plume/init.lua"));
  assert.equal(state.shared, "set by the launcher before plume.run");
});

h.test("create and find on a Lua service; created reaches every client (websocket, polling)", async () => {
  const a = client();
  const b = client(["polling"]);
  const text = `hello ${process.pid} ${Date.now()}`;
  const created = h.withTimeout(
    new Promise((resolve) => b.service("messages").on("created", (m) => m.text === text && resolve(m))),
    2000,
    "messages created on the other client",
  );
  await b.service("messages").find(); // b is connected, in the channel
  const m = await a.service("messages").create({ text });
  assert.equal(m.text, text);
  assert.deepEqual(await created, m);
  const page = await b.service("messages").find({ query: { text } });
  assert.equal(page.total, 1);
  assert.deepEqual(page.data[0], m);
});

h.test("errors from hooks reach the client as Feathers errors", async () => {
  await assert.rejects(client().service("messages").create({}), (err) => {
    assert.equal(err.name, "BadRequest");
    assert.equal(err.code, 400);
    return true;
  });
});

h.run("rock-lua");
