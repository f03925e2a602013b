// Assertions shared by the Engine.IO suites; failures show what the server actually sent.
"use strict";

const assert = require("node:assert/strict");
const { show } = require("./peer");

function status(res, expected, what = "") {
  const got = `${res.status} ${JSON.stringify(res.text.slice(0, 200))}`;
  if (Array.isArray(expected)) assert.ok(expected.includes(res.status), `${what} expected status ${expected.join(" or ")}, got ${got}`);
  else assert.equal(res.status, expected, `${what} expected status ${expected}, got ${got}`);
}

function body(res, expected, what = "") {
  status(res, 200, what);
  assert.equal(res.text, expected, `${what} body`);
}

// An Engine.IO error answer: status, exact JSON body, JSON content type, CORS when configured.
function eioError(res, httpStatus, code, message, { cors = true, what = "" } = {}) {
  status(res, httpStatus, what);
  assert.equal(res.text, JSON.stringify({ code, message }), `${what} error body`);
  assert.match(String(res.headers["content-type"]), /^application\/json/, `${what} content-type`);
  if (cors) assert.equal(res.headers["access-control-allow-origin"], "*", `${what} CORS header`);
  else assert.equal(res.headers["access-control-allow-origin"], undefined, `${what} no CORS header`);
}

// The open packet of a v4 session, with the echo app's settings (protocol.md §2.4, §8).
function openPacket(text, upgrades, { pingInterval = 300, pingTimeout = 200 } = {}) {
  assert.equal(typeof text, "string", `open packet must be text, got ${show(text)}`);
  assert.ok(text.startsWith("0"), `open packet must start with 0: ${text}`);
  const open = JSON.parse(text.slice(1));
  assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.equal(typeof open.sid, "string");
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, pingInterval);
  assert.equal(open.pingTimeout, pingTimeout);
  assert.equal(open.maxPayload, 1000000);
  return open;
}

// The message is the expected text, or the expected bytes for a Buffer.
function message(got, expected, what = "message") {
  if (Buffer.isBuffer(expected)) {
    assert.ok(Buffer.isBuffer(got), `${what}: expected binary ${show(expected)}, got text ${JSON.stringify(got)}`);
    assert.equal(got.toString("hex"), expected.toString("hex"), what);
  } else {
    assert.equal(typeof got, "string", `${what}: expected text ${JSON.stringify(expected)}, got ${show(got)}`);
    assert.equal(got, expected, what);
  }
}

module.exports = { status, body, eioError, openPacket, message };
