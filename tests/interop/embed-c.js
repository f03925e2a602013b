// examples/embed-c (a C program on the installed libplume, built by embed-c.sh) on port
// 3321, checked with the real Feathers client and socket.io-client: the "sensors" service
// written in C (answers at once and later, errors from C, the Lua hook in front of it,
// many calls waiting at once), the readings its own timer pushes (service events through
// the app's channels, raw Socket.IO events to the "dashboard" room only) and the Lua
// service next to it that reads the host's Lua module and calls the C service.
// PLUME_BIN is the example binary (embed-c.sh sets it).
"use strict";

const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const feathers = require("@feathersjs/feathers");
const socketio = require("@feathersjs/socketio-client");
const h = require("./lib/harness");
const { Queued } = require("./lib/client");

const INTERVAL = 100; // ms between the readings of the example's timer
const server = h.server({ app: "examples/embed-c/app", port: 3321, args: ["--interval", String(INTERVAL)] });

function socket(transports = ["websocket"]) {
  const s = io(`http://127.0.0.1:${server.port}`, { transports, forceNew: true, reconnection: false });
  h.defer(() => s.disconnect());
  return s;
}

function client(transports) {
  const s = socket(transports);
  const app = feathers.feathers();
  app.configure(socketio(s));
  return { app, socket: s, sensors: app.service("sensors") };
}

// The next "sensors patched" event for which accept(sensor) is true.
function nextPatched(service, accept, ms = 2000) {
  return h.withTimeout(
    new Promise((resolve) => {
      const listener = (sensor) => {
        if (accept(sensor)) {
          service.removeListener("patched", listener);
          resolve(sensor);
        }
      };
      service.on("patched", listener);
    }),
    ms,
    "a matching sensors patched event",
  );
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("the call succeeded");
}

function checkSensor(s) {
  assert.equal(typeof s.id, "number");
  assert.ok(["temperature", "humidity", "pressure"].includes(s.name), `name ${s.name}`);
  assert.equal(typeof s.value, "number");
  assert.equal(typeof s.offset, "number");
}

h.test("find: the C method answers at once with every sensor (websocket and polling)", async () => {
  for (const transports of [["websocket"], ["polling"]]) {
    const { sensors } = client(transports);
    const list = await sensors.find();
    assert.deepEqual(list.map((s) => s.id), [1, 2, 3]);
    assert.deepEqual(list.map((s) => s.name), ["temperature", "humidity", "pressure"]);
    list.forEach(checkSensor);
  }
});

h.test("get: one sensor; an unknown id is a NotFound raised in C", async () => {
  const { sensors } = client();
  const s = await sensors.get(2);
  assert.equal(s.name, "humidity");
  assert.equal(s.unit, "%");
  assert.equal((await sensors.get("3")).name, "pressure");
  const err = await rejection(sensors.get(99));
  assert.equal(err.name, "NotFound");
  assert.equal(err.code, 404);
  assert.equal(err.className, "not-found");
  assert.equal(err.message, "No sensor with this id");
});

h.test("patch: answered later by C; every client gets the patched event", async () => {
  const a = client();
  const b = client();
  const offset = Math.round(Math.random() * 40 * 4) / 4 - 20; // a multiple of 0.25
  const seen = nextPatched(b.sensors, (s) => s.id === 1 && s.offset === offset);
  const result = await a.sensors.patch(1, { offset });
  assert.equal(result.id, 1);
  assert.equal(result.offset, offset);
  checkSensor(await seen);
  assert.equal((await a.sensors.get(1)).offset, offset);
});

h.test("patch: the Lua hook refuses bad data before the C method runs", async () => {
  const { sensors } = client();
  const before = (await sensors.get(2)).offset;
  for (const data of [{ offset: "warm" }, { offset: 99 }, {}]) {
    const err = await rejection(sensors.patch(2, data));
    assert.equal(err.name, "BadRequest", JSON.stringify(data));
    assert.equal(err.code, 400);
    assert.equal(err.message, "offset must be a number between -50 and 50");
    assert.deepEqual(err.data, { field: "offset" });
  }
  assert.equal((await sensors.get(2)).offset, before);
});

h.test("patch: 30 calls waiting on C at once all get their own answer", async () => {
  const { sensors } = client();
  const offsets = Array.from({ length: 30 }, (_, i) => (i % 10) - 5);
  const results = await Promise.all(offsets.map((offset, i) => sensors.patch((i % 3) + 1, { offset })));
  results.forEach((r, i) => {
    assert.equal(r.id, (i % 3) + 1);
    assert.equal(r.offset, offsets[i]);
  });
  for (const id of [1, 2, 3]) await sensors.patch(id, { offset: 0 });
});

h.test("readings from the C timer arrive as sensors patched events through the channels", async () => {
  const { sensors } = client();
  await sensors.find(); // connected and in the "everybody" channel
  const q = new Queued(sensors, ["patched"]);
  const ids = new Set();
  for (let i = 0; i < 6; i++) {
    const s = await q.next("patched", 1000);
    checkSensor(s);
    ids.add(s.id);
  }
  assert.deepEqual([...ids].sort(), [1, 2, 3]);
});

h.test("raw Socket.IO: reading events go to the dashboard room only", async () => {
  const watcher = socket();
  const other = socket(["polling"]);
  const readings = new Queued(watcher, ["reading"]);
  const elsewhere = new Queued(other, ["reading"]);
  await new Promise((resolve) => other.on("connect", resolve));
  const joined = await h.withTimeout(new Promise((resolve) => watcher.emit("watch", resolve)), 2000, "watch ack");
  assert.equal(joined, true);
  const first = await readings.next("reading", 1000);
  const second = await readings.next("reading", 1000);
  assert.ok(second.reading > first.reading, `${second.reading} after ${first.reading}`);
  assert.equal(first.sensors.length, 3);
  first.sensors.forEach(checkSensor);
  await h.sleep(INTERVAL);
  assert.equal(elsewhere.count("reading"), 0);
});

h.test("the Lua service next to it reads the host's module and calls the C service", async () => {
  const { app } = client();
  const status = await app.service("status").find();
  assert.equal(status.interval, INTERVAL);
  assert.equal(status.sensors, 3);
  assert.ok(Number.isInteger(status.readings) && status.readings > 0, `readings ${status.readings}`);
});

h.run("embed-c");
