// Engine.IO v3 on the wire (spec/protocol.md §7), raw against examples/engineio-echo with
// allowEIO3 on: length-prefixed text payloads (lengths in UTF-16 code units), b<type><base64>
// with b64=1, the binary payload format without it, octet-stream POSTs, the client-driven
// heartbeat, binary WebSocket frames with a type byte, the upgrade; and EIO=3 refused by
// tests/interop/apps/engineio-strict (allowEIO3 off).
"use strict";

const assert = require("node:assert/strict");
const h = require("./lib/harness");
const { eio } = require("./lib/peer");
const expect = require("./lib/expect");

const { test, sleep } = h;
const E = eio(h.server({ app: "examples/engineio-echo", port: 3104 }));
const S = eio(
  h.server({ name: "strict", app: "tests/interop/apps/engineio-strict", port: 3105, args: ["--allow-eio3", "false"] }),
);

const POLL = "EIO=3&transport=polling";
const WS = "EIO=3&transport=websocket";
const hex = (s) => Buffer.from(s.replace(/\s+/g, ""), "hex");

// v3 polling handshake; returns the sid after checking the length-prefixed open packet.
async function open(query = POLL) {
  const res = await E.get(query);
  expect.status(res, 200);
  const m = /^(\d+):(0\{.*\})$/.exec(res.text);
  assert.ok(m, `open payload not <length>:0{...}: ${JSON.stringify(res.text)}`);
  assert.equal(Number(m[1]), m[2].length, "length prefix of the open packet");
  const o = JSON.parse(m[2].slice(1));
  assert.deepEqual(o.upgrades, ["websocket"]);
  assert.equal(o.pingInterval, 300);
  assert.equal(o.pingTimeout, 200);
  assert.equal(typeof o.sid, "string");
  return o.sid;
}
const onSid = (sid, extra = "") => `${POLL}&sid=${sid}${extra}`;

test("§7 v3 polling handshake: <length>:0{…} as text/plain", async () => {
  const res = await E.get(POLL);
  assert.match(String(res.headers["content-type"]), /^text\/plain; charset=UTF-8$/);
  await open();
});

test("§7 v3 polling: 6:4hello round-trips", async () => {
  const sid = await open();
  expect.body(await E.post(onSid(sid), "6:4hello"), "ok");
  expect.body(await E.get(onSid(sid)), "6:4hello");
});

test("§7 v3 lengths count UTF-16 code units: 2:4€ and 3:4😀 (byte Content-Length)", async () => {
  const sid = await open();
  expect.body(await E.post(onSid(sid), "2:4€3:4😀"), "ok");
  const res = await E.get(onSid(sid));
  expect.body(res, "2:4€3:4😀");
  assert.equal(res.headers["content-length"], String(Buffer.byteLength("2:4€3:4😀")));
});

test("§7 v3 b64=1: binary travels as 10:b4AQIDBA== in text payloads", async () => {
  const sid = await open(`${POLL}&b64=1`);
  expect.body(await E.post(onSid(sid, "&b64=1"), "6:4hello10:b4AQIDBA=="), "ok");
  const res = await E.get(onSid(sid, "&b64=1"));
  expect.body(res, "6:4hello10:b4AQIDBA==");
  assert.match(String(res.headers["content-type"]), /^text\/plain/);
});

test("§7 v3 without b64: a response holding binary uses the binary payload format", async () => {
  const sid = await open();
  expect.body(await E.post(onSid(sid), "6:4hello10:b4AQIDBA=="), "ok");
  const res = await E.get(onSid(sid));
  expect.status(res, 200);
  assert.equal(res.headers["content-type"], "application/octet-stream");
  assert.equal(res.body.toString("hex"), "0006ff3468656c6c6f0105ff0401020304");
});

test("§7 v3 an octet-stream POST is parsed as a binary payload", async () => {
  const sid = await open(`${POLL}&b64=1`);
  const body = hex("00 06 ff 34 68 65 6c 6c 6f 01 05 ff 04 01 02 03 04");
  const res = await E.post(onSid(sid, "&b64=1"), body, { headers: { "Content-Type": "application/octet-stream" } });
  expect.body(res, "ok");
  expect.body(await E.get(onSid(sid, "&b64=1")), "6:4hello10:b4AQIDBA==");
});

test("§7 v3 heartbeat: the server never pings; a client ping 1:2 is answered 1:3", async () => {
  const sid = await open();
  const parked = E.get(onSid(sid));
  await sleep(150);
  expect.body(await E.post(onSid(sid), "1:2"), "ok");
  expect.body(await parked, "1:3");
});

test("§7 v3 heartbeat: a pong from the client closes the session", async () => {
  const sid = await open();
  await E.post(onSid(sid), "1:3").catch(() => null);
  expect.status(await E.get(onSid(sid)), 400);
});

test("§7 v3 heartbeat: no client ping within pingInterval+pingTimeout → session closed", async () => {
  const sid = await open();
  await sleep(300 + 200 + 100);
  expect.status(await E.get(onSid(sid)), 400);
});

test("§7 v3 heartbeat: client pings keep the session past pingInterval+pingTimeout", async () => {
  const sid = await open();
  for (let i = 0; i < 4; i++) {
    await sleep(200);
    expect.body(await E.post(onSid(sid), "1:2"), "ok");
    expect.body(await E.get(onSid(sid)), "1:3");
  }
  expect.body(await E.post(onSid(sid), "6:4alive"), "ok");
  expect.body(await E.get(onSid(sid)), "6:4alive");
});

test("§7 v3 a wrong length prefix is a parse error, session closed", async () => {
  const sid = await open();
  await E.post(onSid(sid), "9:4hello").catch(() => null);
  expect.status(await E.get(onSid(sid)), 400);
});

test("§7 v3 WebSocket: open packet, text echo, binary frames carry the type byte", async () => {
  const ws = E.ws(WS);
  const first = await ws.next();
  assert.match(first, /^0\{/);
  assert.deepEqual(JSON.parse(first.slice(1)).upgrades, []);
  ws.send("4hello");
  expect.message(await ws.next(), "4hello");
  ws.send(hex("04 01 02 03 04"));
  expect.message(await ws.next(), hex("04 01 02 03 04"));
});

test("§7 v3 WebSocket: client 2 → 3, and a client 3 closes the socket", async () => {
  const ws = E.ws(WS);
  await ws.next();
  ws.send("2");
  expect.message(await ws.next(), "3");
  ws.send("3");
  await ws.waitClose(1000);
});

test("§7 v3 upgrade: 2probe → 3probe, GET → 1:6, 5, then echo over WebSocket", async () => {
  const sid = await open();
  const ws = E.ws(`${WS}&sid=${sid}`);
  await ws.opened;
  ws.send("2probe");
  expect.message(await ws.next(), "3probe");
  expect.body(await E.get(onSid(sid)), "1:6", "GET during upgrade:");
  ws.send("5");
  ws.send("4hello");
  expect.message(await ws.next(), "4hello");
  ws.send(hex("04 0a 0b"));
  expect.message(await ws.next(), hex("04 0a 0b"));
});

test("§7 EIO=3 with allowEIO3 off: polling → 400 code 5", async () => {
  expect.eioError(await S.get(POLL), 400, 5, "Unsupported protocol version", { cors: false });
  expect.eioError(await S.get(`${POLL}&b64=1`), 400, 5, "Unsupported protocol version", { cors: false });
});

test("§7 EIO=3 with allowEIO3 off: WebSocket closed without an open packet", async () => {
  const ws = S.ws(WS);
  await ws.waitClose();
  assert.deepEqual(ws.queue, [], "messages before the close");
});

h.run("engineio-v3-raw");
