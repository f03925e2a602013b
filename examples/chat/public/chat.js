// The chat's page: the unchanged Feathers browser client (@feathersjs/client) over
// Socket.IO, talking to the services of this app folder:
//
//   authentication  client.authenticate(), reAuthenticate(), logout()
//   users           create: sign up
//   messages        find: the newest PAGE_SIZE, then older pages; create; "created" events
//   online          find: who is online; "joined" and "left" events
//
// A login is kept in localStorage, so a reload logs in again by itself.
"use strict";

const PAGE_SIZE = 20;

const $ = (id) => document.getElementById(id);

// What the page shows: the messages (id -> <li>) and the users online (id -> user).
const shown = new Map();
const onlineUsers = new Map();
let me = null;

if (typeof io === "undefined" || typeof feathers === "undefined") {
  setStatus("The Socket.IO or Feathers client is missing: run `make npm` (or `npm install " +
    "@feathersjs/client socket.io-client` in the app folder) and reload.", true);
} else {
  start();
}

function start() {
  const socket = io();
  const client = feathers();
  client.configure(feathers.socketio(socket));
  client.configure(feathers.authentication({ storage: window.localStorage }));

  const users = client.service("users");
  const messages = client.service("messages");
  const online = client.service("online");

  // A page of messages, newest first: the latest, or those before the id `before`.
  function findMessages(before) {
    const query = { $sort: { id: -1 }, $limit: PAGE_SIZE };
    if (before !== undefined) query.id = { $lt: before };
    return messages.find({ query });
  }

  // Everything the chat view shows, fetched afresh (after a login or a reconnect).
  async function refresh() {
    const [page, whoIsOnline] = await Promise.all([findMessages(), online.find()]);
    shown.clear();
    $("messages").replaceChildren();
    page.data.forEach(showMessage);
    $("older").hidden = page.total <= page.data.length;
    onlineUsers.clear();
    whoIsOnline.forEach((user) => onlineUsers.set(user.id, user));
    showOnline();
    scrollToEnd();
  }

  async function enter(user) {
    me = user;
    $("me").textContent = user.email;
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("logout").hidden = false;
    await refresh();
    $("text").focus();
  }

  function showLogin(message = "") {
    me = null;
    shown.clear();
    onlineUsers.clear();
    $("messages").replaceChildren();
    $("me").textContent = "";
    $("chat-view").hidden = true;
    $("logout").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message;
    $("email").focus();
  }

  async function logIn() {
    const { user } = await client.authenticate({
      strategy: "local",
      email: $("email").value,
      password: $("password").value,
    });
    $("password").value = "";
    await enter(user);
  }

  // Runs a login or sign-up step; its error goes under the form.
  async function attempt(step) {
    $("login-error").textContent = "";
    $("login-form").classList.add("busy");
    try {
      await step();
    } catch (err) {
      $("login-error").textContent = err.message;
    } finally {
      $("login-form").classList.remove("busy");
    }
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(logIn);
  });

  $("signup").addEventListener("click", () => {
    if (!$("login-form").reportValidity()) return;
    attempt(async () => {
      await users.create({ email: $("email").value, password: $("password").value });
      await logIn();
    });
  });

  $("logout").addEventListener("click", async () => {
    await client.logout();
    showLogin();
  });

  $("compose").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try {
      showMessage(await messages.create({ text }));
      scrollToEnd();
      if (socket.connected) setStatus("connected");
    } catch (err) {
      input.value = text;
      setStatus(err.message, true);
    }
  });

  $("older").addEventListener("click", async () => {
    const scroller = $("scroller");
    const fromEnd = scroller.scrollHeight - scroller.scrollTop;
    const page = await findMessages(Math.min(...shown.keys()));
    page.data.forEach(showMessage);
    $("older").hidden = page.total <= page.data.length;
    scroller.scrollTop = scroller.scrollHeight - fromEnd;
  });

  // Live updates: what others do arrives as service events.
  messages.on("created", (message) => {
    const atEnd = isAtEnd();
    showMessage(message);
    if (atEnd) scrollToEnd();
  });
  online.on("joined", (user) => {
    onlineUsers.set(user.id, user);
    showOnline();
  });
  online.on("left", (user) => {
    onlineUsers.delete(user.id);
    showOnline();
  });

  // After a reconnect the client logs in again by itself; then the page catches up.
  socket.on("connect", () => {
    setStatus("connected");
    if (me) refresh().catch(() => showLogin("Please log in again."));
  });
  socket.on("disconnect", () => setStatus("reconnecting…", true));

  client.reAuthenticate().then(({ user }) => enter(user), () => showLogin());
}

function setStatus(text, problem = false) {
  $("status").textContent = text;
  $("status").classList.toggle("problem", problem);
}

function nameOf(user) {
  return user ? user.email.split("@")[0] : "someone";
}

// Adds a message in id order (a new one goes last); one already shown is left alone.
function showMessage(message) {
  if (shown.has(message.id)) return;
  const li = document.createElement("li");
  li.dataset.id = message.id;
  li.classList.toggle("mine", me !== null && message.userId === me.id);
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = nameOf(message.user);
  const time = document.createElement("time");
  time.textContent = new Date(message.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const text = document.createElement("p");
  text.textContent = message.text;
  li.append(author, time, text);

  const list = $("messages");
  const next = [...list.children].find((el) => Number(el.dataset.id) > message.id);
  list.insertBefore(li, next || null);
  shown.set(message.id, li);
}

function showOnline() {
  const users = [...onlineUsers.values()].sort((a, b) => a.email.localeCompare(b.email));
  $("online").replaceChildren(
    ...users.map((user) => {
      const li = document.createElement("li");
      li.textContent = nameOf(user);
      li.title = user.email;
      li.classList.toggle("me", me !== null && user.id === me.id);
      return li;
    }),
  );
  $("online-count").textContent = `(${users.length})`;
}

function isAtEnd() {
  const scroller = $("scroller");
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
}

function scrollToEnd() {
  $("scroller").scrollTop = $("scroller").scrollHeight;
}
