// The Node.js peer Plume is measured against: the same server as examples/conformance
// (bare Engine.IO echo at /engine.io/, Socket.IO at /socket.io/ with message-back and
// message-with-ack), using the engine.io and socket.io npm packages.
const http = require("node:http");
const engine = require("engine.io");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3300);
const pingInterval = Number(process.env.PING_INTERVAL || 25000);
const pingTimeout = Number(process.env.PING_TIMEOUT || 20000);

const eioHttp = http.createServer();
const eio = engine.attach(eioHttp, { path: "/engine.io/", pingInterval, pingTimeout, maxHttpBufferSize: 1e6, cors: { origin: "*" } });
eio.on("connection", (socket) => socket.on("message", (data) => socket.send(data)));

const io = new Server(eioHttp, { pingInterval, pingTimeout, maxHttpBufferSize: 1e6, cors: { origin: "*" } });
io.on("connection", (socket) => {
  socket.on("message", (...args) => socket.emit("message-back", ...args));
  socket.on("message-with-ack", (...args) => args.pop()(...args));
  socket.on("join", (room) => socket.join(room));
  socket.on("broadcast", (room, ...args) => io.to(room).emit("message-back", ...args));
});

eioHttp.listen(port, "127.0.0.1", () => console.log(`node peer on ${port}`));
