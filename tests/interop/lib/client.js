// Wraps a real client (engine.io-client, socket.io-client, …: anything with on(event, fn))
// so that its events are queued: next("message") awaits the next one even if it arrived
// before the call, and nothing that arrives back to back is lost.
"use strict";

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

module.exports = { Queued, queued, eventually };
