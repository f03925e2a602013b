// Echo throughput: C clients each keep W messages in flight over a raw WebSocket and the
// server echoes them (Engine.IO "message", or Socket.IO "message" -> "message-back").
// Reports messages per second and messages per server CPU-second (throughput per core,
// from /proc/PID/stat), so the client's own cost does not blur the comparison.
// usage: node throughput.js PID PORT eio|sio [clients] [seconds]
const fs = require("node:fs");
const WebSocket = require("ws");

const [pid, port, level] = [process.argv[2], Number(process.argv[3]), process.argv[4] || "eio"];
const clients = Number(process.argv[5] || 50);
const seconds = Number(process.argv[6] || 5);
const window = 16;
const path = level === "sio" ? "/socket.io/" : "/engine.io/";
const payload = level === "sio" ? '42["message",{"text":"hello","n":1}]' : "4hello world";
const echoPrefix = level === "sio" ? '42["message-back"' : "4";

function cpuSeconds() {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks
}

let received = 0;
let running = true;

function client() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?EIO=4&transport=websocket`, { perMessageDeflate: false });
    ws.on("message", (data) => {
      const s = data.toString();
      if (s === "2") return ws.send("3");
      if (s[0] === "0") {
        if (level === "sio") return ws.send("40");
        return resolve(ws);
      }
      if (s.startsWith("40")) return resolve(ws);
      if (s.startsWith(echoPrefix)) {
        received++;
        if (running) ws.send(payload);
      }
    });
    ws.on("error", reject);
  });
}

(async () => {
  const sockets = await Promise.all(Array.from({ length: clients }, client));
  const cpu0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  for (const ws of sockets) for (let i = 0; i < window; i++) ws.send(payload);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds() - cpu0;
  console.log(JSON.stringify({ level, clients, messages: received, perSecond: Math.round(received / elapsed), perCpuSecond: Math.round(received / Math.max(cpu, 0.01)), serverCpuSeconds: cpu }));
  for (const ws of sockets) ws.terminate();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
