// Opens N idle WebSocket connections (Engine.IO, or Socket.IO joined to "/") to a server
// and reports the server's resident memory per connection: (RSS after - RSS before) / N.
// usage: node idle.js PID PORT N eio|sio
const WebSocket = require("ws");

const [pid, port, count, level] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] || 5000), process.argv[5] || "eio"];
const path = level === "sio" ? "/socket.io/" : "/engine.io/";

function rssKiB() {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?EIO=4&transport=websocket`, { perMessageDeflate: false });
    let opened = false;
    ws.on("message", (data) => {
      const s = data.toString();
      if (s === "2") ws.send("3");
      else if (s[0] === "0" && !opened) {
        opened = true;
        if (level === "sio") ws.send("40");
        else resolve(ws);
      } else if (s.startsWith("40") && level === "sio") resolve(ws);
    });
    ws.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  await sleep(300);
  const before = rssKiB();
  const sockets = [];
  for (let i = 0; i < count; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 100); j++) batch.push(open());
    sockets.push(...(await Promise.all(batch)));
  }
  await sleep(1000);
  const after = rssKiB();
  const perConn = ((after - before) * 1024) / count;
  console.log(JSON.stringify({ level, count, beforeKiB: before, afterKiB: after, bytesPerConnection: Math.round(perConn) }));
  for (const ws of sockets) ws.terminate();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
