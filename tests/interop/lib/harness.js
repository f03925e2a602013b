// A small test runner for the interop suites.
//
//   const h = require("./lib/harness");
//   const echo = h.server({ app: "examples/engineio-echo", port: 3101 });
//   h.test("§2.2 #1 unknown transport → 400 code 0", async () => { ... });
//   h.run("engineio-conformance");
//
// Every test runs twice against the same servers (style.md H: repeat_each(2)), each run
// bounded by its timeout. Output is TAP-ish ("ok N - name", "not ok N - name", "#   why")
// and ends with "N passed, N failed"; the exit status is non-zero when anything failed.
// TEST=<substring of a test name> runs only those tests.
// Servers are started from PLUME_BIN, their output goes to tests/artifacts/<suite>*.server.log,
// and that log is scanned for sanitizer (or valgrind, with VALGRIND=1) reports once they have exited.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "../../..");
const ARTIFACTS = path.join(ROOT, "tests/artifacts");
const REPEAT = 2;
const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ERROR SUMMARY: [1-9]|definitely lost: [1-9]/;
// VALGRIND=1 (make valgrind) runs the server under memcheck; its report goes to the same log.
const VALGRIND = process.env.VALGRIND === "1"
  ? ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99"]
  : [];

const tests = [];
const servers = [];
let cleanups = [];

// TEST=substring runs only the tests whose name contains it.
function test(name, fn, { timeout = 5000 } = {}) {
  if (!process.env.TEST || name.includes(process.env.TEST)) tests.push({ name, fn, timeout });
}

// Registers fn to run when the current test run ends (pass, fail or timeout).
function defer(fn) {
  cleanups.push(fn);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

class Server {
  constructor({ name = "", app, port, args = [] }) {
    Object.assign(this, { name, app, port, args, proc: null, exit: null });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(suite) {
    const bin = process.env.PLUME_BIN;
    if (!bin || !fs.existsSync(bin)) throw new Error(`PLUME_BIN is not a file: ${bin}`);
    if (await portOpen(this.port)) throw new Error(`port ${this.port} is already in use`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    this.logPath = path.join(ARTIFACTS, `${suite}${this.name ? "." + this.name : ""}.server.log`);
    const log = fs.openSync(this.logPath, "w");
    const args = [...VALGRIND.slice(1), bin, path.join(ROOT, this.app), "--port", String(this.port), "--no-watch", ...this.args];
    this.proc = spawn(VALGRIND[0] || args.shift(), args, { cwd: ROOT, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code, signal) => resolve((this.exit = { code, signal }))),
    );
    for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(50)) {
      if (this.exit) throw new Error(`server exited at start (${describeExit(this.exit)}), see ${this.logPath}`);
      if (await portOpen(this.port)) return;
    }
    throw new Error(`server did not accept connections on port ${this.port} within 15 s`);
  }

  // Stops the server; returns a list of problems (crash, no exit, sanitizer reports).
  async stop() {
    const problems = [];
    if (!this.proc) return problems;
    if (this.exit) problems.push(`server ${this.app} died during the suite (${describeExit(this.exit)})`);
    else {
      this.proc.kill("SIGTERM");
      const done = await Promise.race([this.exited, sleep(12000)]);
      if (!done) {
        this.proc.kill("SIGKILL");
        await this.exited;
        problems.push(`server ${this.app} did not exit within 12 s of SIGTERM`);
      }
    }
    const text = fs.readFileSync(this.logPath, "utf8");
    const reports = text.split("\n").filter((l) => SANITIZER.test(l));
    if (reports.length) problems.push(`sanitizer report in ${this.logPath}:\n${reports.slice(0, 5).join("\n")}`);
    return problems;
  }
}

function describeExit({ code, signal }) {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

function server(opts) {
  const s = new Server(opts);
  servers.push(s);
  return s;
}

function indent(text) {
  return String(text)
    .split("\n")
    .slice(0, 12)
    .map((l) => `#   ${l}`)
    .join("\n");
}

// The error's message and where in a suite file (not the lib) it was raised.
function explain(err) {
  if (!(err instanceof Error)) return String(err);
  const where = (err.stack || "")
    .split("\n")
    .map((l) => /\((\/[^)]*\/tests\/interop\/[^/)]+\.js:\d+):\d+\)|at (\/[^ ]*\/tests\/interop\/[^/ ]+\.js:\d+)/.exec(l))
    .find(Boolean);
  const msg = err.message.split("\n").filter((l) => l.trim() !== "").slice(0, 6).join("\n");
  return where ? `${msg}\n(at ${path.relative(ROOT, where[1] || where[2])})` : msg;
}

async function runOnce(t) {
  cleanups = [];
  try {
    await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
    return null;
  } catch (err) {
    return err;
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // a failed cleanup must not hide the test's own result
      }
    }
    cleanups = [];
  }
}

async function run(suite) {
  let passed = 0;
  let failed = 0;
  const stray = [];
  process.on("unhandledRejection", (err) => stray.push(err));
  process.on("uncaughtException", (err) => stray.push(err));
  // Never leave a server behind, however this process ends.
  process.on("exit", () => servers.forEach((s) => s.proc && !s.exit && s.proc.kill("SIGKILL")));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => process.exit(1));
  console.log(`# ${suite}: ${tests.length} tests, each run ${REPEAT} times`);
  try {
    for (const s of servers) await s.start(suite);
  } catch (err) {
    console.log(`not ok 1 - start the server\n${indent(err.message)}`);
    for (const s of servers) await s.stop();
    console.log(`0 passed, 1 failed`);
    process.exit(1);
  }
  let n = 0;
  for (const t of tests) {
    const errors = [];
    for (let i = 1; i <= REPEAT; i++) {
      const err = await runOnce(t);
      if (!err) continue;
      const text = explain(err);
      errors.push(`run ${i}/${REPEAT}: ${errors.some((e) => e.endsWith(`: ${text}`)) ? "the same" : text}`);
    }
    n++;
    if (errors.length) {
      failed++;
      console.log(`not ok ${n} - ${t.name}\n${indent(errors.join("\n"))}`);
    } else {
      passed++;
      console.log(`ok ${n} - ${t.name}`);
    }
  }
  for (const s of servers) {
    const problems = await s.stop();
    n++;
    if (problems.length) {
      failed++;
      console.log(`not ok ${n} - server ${s.app} ran clean\n${indent(problems.join("\n"))}`);
    } else {
      passed++;
      console.log(`ok ${n} - server ${s.app} ran clean`);
    }
  }
  for (const err of stray) console.log(`# stray error after a test: ${String(err).split("\n")[0]}`);
  for (const s of servers) console.log(`# server log: ${path.relative(ROOT, s.logPath)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { test, run, server, defer, sleep, withTimeout, ROOT };
