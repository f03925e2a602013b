// Raw peers for wire-level checks: HTTP over a keep-alive agent, raw TCP for bytes node:http
// will not send or for watching the connection close, and a WebSocket whose messages are
// queued so that back-to-back messages are never lost (protocol.md §9.3).
// Everything a helper opens is closed when the current test run ends (harness.defer).
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const net = require("node:net");
const WebSocket = require("ws");
const { defer, withTimeout } = require("./harness");

const agents = new Map();
function agentFor(port) {
  if (!agents.has(port)) agents.set(port, new http.Agent({ keepAlive: true, maxSockets: Infinity }));
  return agents.get(port);
}

// One HTTP request; resolves to { status, headers, body (Buffer), text }.
// opts: method, headers, body (string or Buffer), signal-like abort via the returned promise's
// .request (the ClientRequest), timeout (ms, default 3000).
function request(port, pathAndQuery, { method = "GET", headers = {}, body, timeout = 3000 } = {}) {
  let req;
  const p = new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined || method === "POST" || method === "PUT") {
      h["Content-Length"] = body === undefined ? 0 : Buffer.byteLength(body);
    }
    req = http.request(
      { host: "127.0.0.1", port, path: pathAndQuery, method, headers: h, agent: agentFor(port) },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(timeout, () => req.destroy(new Error(`no response within ${timeout} ms: ${method} ${pathAndQuery}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
  p.request = req;
  defer(() => req.destroy());
  return p;
}

// Sends raw bytes on a fresh TCP connection and collects everything until the peer closes
// or `timeout` ms pass. Resolves to { data (Buffer), closed, head: { status, headers }, body }.
function raw(port, bytes, { timeout = 2000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: "127.0.0.1" });
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      resolve({ data, closed, ...parseHead(data) });
    };
    const timer = setTimeout(() => finish(false), timeout);
    sock.on("data", (c) => chunks.push(c));
    sock.on("end", () => finish(true));
    sock.on("close", () => finish(true));
    sock.on("error", () => finish(true));
    sock.write(bytes);
    defer(() => sock.destroy());
  });
}

// An open TCP connection for requests sent piece by piece.
function tcp(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: "127.0.0.1" }, () => resolve(sock));
    sock.on("error", reject);
    defer(() => sock.destroy());
  });
}

function parseHead(data) {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return { head: null, body: null };
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { head: { status: m ? Number(m[1]) : null, statusLine: lines[0], headers }, body: data.subarray(end + 4) };
}

function upgradeRequest(pathAndQuery, extra = "") {
  const key = crypto.randomBytes(16).toString("base64");
  return (
    `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n${extra}\r\n`
  );
}

// A WebSocket client with a message queue. Text arrives as string, binary as Buffer.
class Ws {
  constructor(url, options = {}) {
    this.queue = [];
    this.waiters = [];
    this.upgradeStatus = null; // the HTTP status when the server refused the upgrade
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("close", () => reject(new Error(`closed before open (${this.describeRefusal()})`)));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`closed (code ${code}) while waiting for a message`));
      });
    });
    this.ws.on("error", (err) => {
      this.error = err;
      const m = /Unexpected server response: (\d+)/.exec(err.message);
      if (m) this.upgradeStatus = Number(m[1]);
    });
    this.ws.on("message", (data, isBinary) => {
      const msg = isBinary ? Buffer.from(data) : data.toString();
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    defer(() => this.ws.terminate());
  }

  describeRefusal() {
    if (this.upgradeStatus) return `HTTP ${this.upgradeStatus}`;
    return this.error ? this.error.message : "no response";
  }

  // The next message, waiting at most ms.
  next(ms = 2000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`closed (code ${this.closeInfo.code}) while waiting for a message`));
    let w;
    const p = new Promise((resolve, reject) => (w = { resolve, reject }));
    this.waiters.push(w);
    return withTimeout(p, ms, "next WebSocket message").catch((err) => {
      this.waiters = this.waiters.filter((x) => x !== w);
      throw err;
    });
  }

  // Resolves with { code, reason } once closed; fails if that takes more than ms.
  waitClose(ms = 2000) {
    return withTimeout(this.closed, ms, "WebSocket close");
  }

  // Fails if any message arrives within ms; the socket may close meanwhile.
  async quiet(ms) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length) throw new Error(`expected no message, got ${JSON.stringify(show(this.queue[0]))}`);
  }

  send(data) {
    this.ws.send(data);
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }
}

function show(msg) {
  return Buffer.isBuffer(msg) ? `<binary ${msg.toString("hex")}>` : msg;
}

// Engine.IO helpers bound to one server and path.
function eio(server, prefix = "/engine.io/") {
  const port = server.port;
  const q = (query) => `${prefix}?${query}`;
  const api = {
    port,
    path: q,
    get: (query, opts) => request(port, q(query), opts),
    post: (query, body, opts = {}) => request(port, q(query), { ...opts, method: "POST", body }),
    request: (query, opts) => request(port, q(query), opts),
    raw: (bytes, opts) => raw(port, bytes, opts),
    upgradeRaw: (query, extra, opts) => raw(port, upgradeRequest(q(query), extra), opts),
    tcp: () => tcp(port),
    ws: (query, opts) => new Ws(`ws://127.0.0.1:${port}${q(query)}`, opts),

    // GET handshake (polling, v4): returns the sid, after checking the open packet shape.
    async open(query = "EIO=4&transport=polling") {
      const res = await api.get(query);
      if (res.status !== 200 || !res.text.startsWith("0")) {
        throw new Error(`handshake failed: ${res.status} ${res.text}`);
      }
      return JSON.parse(res.text.slice(1)).sid;
    },

    // WebSocket-only session: returns { ws, sid, open } after consuming the open packet.
    async openWs(query = "EIO=4&transport=websocket", opts) {
      const ws = api.ws(query, opts);
      const first = await ws.next();
      if (typeof first !== "string" || !first.startsWith("0")) throw new Error(`expected open packet, got ${show(first)}`);
      const open = JSON.parse(first.slice(1));
      return { ws, sid: open.sid, open };
    },

    // Polling session upgraded to WebSocket (2probe, 3probe, 5): returns { ws, sid }.
    async upgraded() {
      const sid = await api.open();
      const ws = api.ws(`EIO=4&transport=websocket&sid=${sid}`);
      await ws.opened;
      ws.send("2probe");
      const probe = await ws.next();
      if (probe !== "3probe") throw new Error(`expected 3probe, got ${show(probe)}`);
      ws.send("5");
      return { ws, sid };
    },
  };
  return api;
}

module.exports = { eio, request, raw, tcp, Ws, parseHead, upgradeRequest, show };
