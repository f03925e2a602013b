// Wraps a real client (engine.io-client, socket.io-client, …: anything with on(event, fn))
// so that its events are queued: next("message") awaits the next one even if it arrived
// before the call, and nothing that arrives back to back is lost. Also the socket helpers
// the client suites share: connected, call, noAck, rejects, quiet.
"use strict";

const assert = require("node:assert/strict");
const { defer, withTimeout, sleep } = require("./harness");

class Queued {
  constructor(emitter, events) {
    this.emitter = emitter;
    this.queues = {};
    this.waiters = {};
    for (const ev of events) {
      this.queues[ev] = [];
      this.waiters[ev] = [];
      emitter.on(ev, (...args) => {
        const value = args.length > 1 ? args : args[0];
        const w = this.waiters[ev].shift();
        if (w) w(value);
        else this.queues[ev].push(value);
      });
    }
  }

  // The next occurrence of ev (its argument, or the argument list when there are several).
  next(ev, ms = 2000) {
    if (!this.queues[ev]) throw new Error(`event ${ev} is not queued`);
    if (this.queues[ev].length) return Promise.resolve(this.queues[ev].shift());
    let resolve;
    const p = new Promise((r) => (resolve = r));
    this.waiters[ev].push(resolve);
    return withTimeout(p, ms, `event ${ev}`).catch((err) => {
      this.waiters[ev] = this.waiters[ev].filter((x) => x !== resolve);
      throw err;
    });
  }

  // How many times ev has occurred and not been taken by next().
  count(ev) {
    return this.queues[ev].length;
  }
}

// Retries fn (an async assertion) until it passes or ms have gone by.
async function eventually(fn, ms = 1000, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(every);
    }
  }
}

// Queues the events of a client and closes it when the test run ends.
function queued(client, events, close = () => client.close()) {
  defer(close);
  return new Queued(client, events);
}

// Resolves with a socket.io-client socket once it is connected; rejects on connect_error.
function connected(socket, ms = 3000) {
  if (socket.connected) return Promise.resolve(socket);
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", reject);
    }),
    ms,
    "connect",
  );
}

// Emits on a socket and resolves with the acknowledgement's argument list.
function call(socket, ...args) {
  return withTimeout(new Promise((resolve) => socket.emit(...args, (...ack) => resolve(ack))), 3000, `ack of ${JSON.stringify(args).slice(0, 80)}`);
}

// Emits with an ack callback and checks that no ack comes within ms.
async function noAck(socket, ms, ...args) {
  let acked = null;
  socket.emit(...args, (...ack) => (acked = ack));
  await sleep(ms);
  assert.equal(acked, null, `${JSON.stringify(args)} was acknowledged: ${JSON.stringify(acked)}`);
}

// Resolves with the error the promise rejects with; throws when it resolves.
async function rejects(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

// Checks that none of the queued events names arrives within ms.
async function quiet(queued, names, ms = 300) {
  await sleep(ms);
  for (const name of names) assert.equal(queued.count(name), 0, `unexpected '${name}' event: ${JSON.stringify(queued.queues[name])}`);
}

module.exports = { Queued, queued, eventually, connected, call, noAck, rejects, quiet };
