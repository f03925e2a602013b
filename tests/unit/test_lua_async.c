/*
** test_lua_async.c: what tasks wait on (lua_async.c): sleep,
** plume.after/every/spawn, files on the thread pool, the HTTP client against a
** real listener on the same loop, and graceful shutdown (drain until tasks
** finish or the deadline, exit codes).
*/
#include <sys/stat.h>

#include "instance.h"

static char tmp[64];

static void make_tmp(void) {
  snprintf(tmp, sizeof(tmp), "/tmp/plume-async-XXXXXX");
  if (mkdtemp(tmp) == NULL)
    tmp[0] = '\0';
}

/* Runs a chunk with %s replaced by the temporary folder. */
static int run_fmt(plume_t *p, const char *fmt) {
  char code[2048];
  snprintf(code, sizeof(code), fmt, tmp, tmp, tmp, tmp);
  return run_lua(p, code);
}

/* ------------------------------------------------------------------------- */
/* A canned HTTP peer: accepts, reads once, writes `reply` (or nothing),
** closes. */

typedef struct peer_s {
  uv_tcp_t server;
  uv_tcp_t conn;
  const char *reply;
  int port;
  int accepted;
  int conn_open;
} peer_t;

static void on_peer_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char buf[4096];
  b->base = buf;
  b->len = sizeof(buf);
}

static void on_peer_closed(uv_handle_t *h) {
  peer_t *peer = h->data;
  peer->conn_open = 0;
}

static void on_peer_written(uv_write_t *w, int status) {
  peer_t *peer = w->data;
  free(w);
  if (peer->conn_open)
    uv_close((uv_handle_t *)&peer->conn, on_peer_closed);
}

static void on_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  peer_t *peer = s->data;
  uv_write_t *w;
  uv_buf_t out;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_peer_closed);
    return;
  }
  if (n == 0 || peer->reply == NULL)
    return;
  uv_read_stop(s);
  w = malloc(sizeof(*w));
  w->data = peer;
  out = uv_buf_init((char *)peer->reply, (unsigned)strlen(peer->reply));
  uv_write(w, s, &out, 1, on_peer_written);
}

static void on_peer_connection(uv_stream_t *server, int status) {
  peer_t *peer = server->data;
  if (status < 0 || peer->conn_open)
    return;
  uv_tcp_init(server->loop, &peer->conn);
  peer->conn.data = peer;
  peer->conn_open = 1;
  peer->accepted++;
  uv_accept(server, (uv_stream_t *)&peer->conn);
  uv_read_start((uv_stream_t *)&peer->conn, on_peer_alloc, on_peer_read);
}

static void peer_start(peer_t *peer, uv_loop_t *loop, const char *reply) {
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  memset(peer, 0, sizeof(*peer));
  peer->reply = reply;
  uv_tcp_init(loop, &peer->server);
  peer->server.data = peer;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&peer->server, (struct sockaddr *)&a, 0);
  uv_listen((uv_stream_t *)&peer->server, 16, on_peer_connection);
  uv_tcp_getsockname(&peer->server, (struct sockaddr *)&ss, &len);
  peer->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void peer_stop(peer_t *peer, plume_t *p) {
  if (peer->conn_open)
    uv_close((uv_handle_t *)&peer->conn, on_peer_closed);
  uv_close((uv_handle_t *)&peer->server, NULL);
  spin(p, 5);
}

/* The port plume_listen chose for port 0. */
static int listen_port(plume_t *p) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (p->listeners == NULL ||
      uv_tcp_getsockname(&p->listeners->tcp, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ------------------------------------------------------------------------- */

/* after runs once; every repeats until cancelled; a cancelled timer never
** fires. */
static void test_timers(void) {
  plume_t *p = instance_new(NULL);
  run_lua(p, "local plume = require 'plume' once, ticks, never = 0, 0, 0 "
             "plume.after(10, function() once = once + 1 end) "
             "local t t = plume.every(5, function() ticks = ticks + 1 "
             "if ticks == 4 then t:cancel() end end) "
             "local n = plume.after(5, function() never = 1 end) "
             "cancelled = n:cancel() and not n:active() "
             "plume.after(30, function() plume.sleep(5) late = true end)");
  CHECK(spin_until(p, "late", 2000));
  spin(p, 30);
  CHECK_EQ(lua_global_int(p, "once"), 1);
  CHECK_EQ(lua_global_int(p, "ticks"), 4);
  CHECK_EQ(lua_global_int(p, "never"), 0);
  run_lua(p, "c = cancelled and 1 or 0");
  CHECK_EQ(lua_global_int(p, "c"), 1);
  CHECK(p->timers == NULL);
  /* a handle dropped by Lua does not stop its timer */
  run_lua(p, "local plume = require 'plume' plume.every(5, function() "
             "gc_ticks = (gc_ticks or 0) + 1 end) collectgarbage()");
  spin(p, 40);
  CHECK(lua_global_int(p, "gc_ticks") >= 3);
  CHECK(p->timers != NULL); /* until shutdown */
  CHECK_EQ(run_lua(p, "require('plume').every(0, print)"), PLUME_ELUA);
  instance_free(p);
}

/* Files: write, append, read, stat, mkdir -p, and errors as nil, msg, code. */
static void test_files(void) {
  plume_t *p = instance_new(NULL);
  char buf[256];
  make_tmp();
  run_fmt(p,
          "local fs = require('plume').fs local dir = '%s' "
          "assert(fs.mkdir(dir .. '/a/b/c')) assert(fs.mkdir(dir .. '/a')) "
          "assert(fs.write(dir .. '/a/f.txt', 'hello')) "
          "assert(fs.append(dir .. '/a/f.txt', ' world')) "
          "text = fs.read(dir .. '/a/f.txt') "
          "local st = fs.stat(dir .. '/a/f.txt') size, kind = st.size, st.type "
          "dirkind = fs.stat(dir .. '/a/b').type "
          "local v, err, code = fs.read(dir .. '/missing') "
          "missing = (v == nil) and code "
          "local d, derr, dcode = fs.read(dir .. '/a') isdir = dcode "
          "done = true");
  CHECK(spin_until(p, "done", 2000));
  CHECK_STR(lua_global_str(p, "text", buf, sizeof(buf)), "hello world");
  CHECK_EQ(lua_global_int(p, "size"), 11);
  CHECK_STR(lua_global_str(p, "kind", buf, sizeof(buf)), "file");
  CHECK_STR(lua_global_str(p, "dirkind", buf, sizeof(buf)), "directory");
  CHECK_STR(lua_global_str(p, "missing", buf, sizeof(buf)), "ENOENT");
  CHECK_STR(lua_global_str(p, "isdir", buf, sizeof(buf)), "EISDIR");
  /* set-up code (the main thread) reads inline */
  snprintf(buf, sizeof(buf), "return require('plume').fs.read('%s/a/f.txt')",
           tmp);
  CHECK(luaL_dostring(plume_lua(p), buf) == LUA_OK);
  CHECK_STR(lua_tostring(plume_lua(p), -1), "hello world");
  lua_settop(plume_lua(p), 0);
  /* a file larger than the memory cap is refused before it is read */
  p->lua_mem_limit = 4;
  run_fmt(p, "local v, err, code = require('plume').fs.read('%s/a/f.txt') "
             "toobig = code");
  CHECK(spin_until(p, "toobig", 2000));
  CHECK_STR(lua_global_str(p, "toobig", buf, sizeof(buf)), "ETOOBIG");
  p->lua_mem_limit = 0;
  instance_free(p);
  snprintf(buf, sizeof(buf), "rm -rf %s", tmp);
  CHECK_EQ(system(buf), 0);
}

/* The HTTP client against Plume's own static files and canned peers:
** Content-Length, chunked, EOF-delimited, repeated headers, refused connections
** and timeouts. */
static void test_http_client(void) {
  plume_t *p;
  peer_t peer;
  char buf[512], code[1024];
  int port;
  make_tmp();
  snprintf(buf, sizeof(buf), "%s/public", tmp);
  mkdir(buf, 0755);
  snprintf(buf, sizeof(buf), "%s/public/hello.txt", tmp);
  write_file(buf, "hello from plume\n");
  p = instance_new(NULL);
  CHECK_EQ(plume_load_app(p, tmp), 0);
  CHECK_EQ(plume_listen(p, "127.0.0.1", 0), 0);
  port = listen_port(p);
  snprintf(code, sizeof(code),
           "local http = require('plume').http "
           "local s, h, b = http.request('http://127.0.0.1:%d/hello.txt') "
           "status, body, ctype = s, b, h['content-type'] "
           "local s2 = http.request{ url = 'http://127.0.0.1:%d/nope', "
           "method = 'GET' } missing = s2 "
           "local s3, h3, b3 = http.request{ method = 'HEAD', "
           "url = 'http://127.0.0.1:%d/hello.txt' } head = s3 .. ':' .. #b3 "
           "local s4, e4 = http.request{ max_body = 5, "
           "url = 'http://127.0.0.1:%d/hello.txt' } toobig = e4 "
           "done = true",
           port, port, port, port);
  run_lua(p, code);
  CHECK(spin_until(p, "done", 3000));
  CHECK(strstr(lua_global_str(p, "toobig", buf, sizeof(buf)),
               "response body too large") != NULL);
  CHECK_EQ(lua_global_int(p, "status"), 200);
  CHECK_STR(lua_global_str(p, "body", buf, sizeof(buf)), "hello from plume\n");
  CHECK(strncmp(lua_global_str(p, "ctype", buf, sizeof(buf)), "text/plain",
                10) == 0);
  CHECK_EQ(lua_global_int(p, "missing"), 404);
  CHECK_STR(lua_global_str(p, "head", buf, sizeof(buf)), "200:0");

  peer_start(&peer, plume_loop(p),
             "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
             "X-A: 1\r\nX-a: 2\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  snprintf(code, sizeof(code),
           "local s, h, b = require('plume').http.request{ method = 'post', "
           "url = 'http://127.0.0.1:%d/x?y=1', body = { a = 1 } } "
           "chunked = s .. ' ' .. b .. ' ' .. h['x-a'] done2 = true",
           peer.port);
  run_lua(p, code);
  CHECK(spin_until(p, "done2", 3000));
  CHECK_STR(lua_global_str(p, "chunked", buf, sizeof(buf)),
            "201 hello world 1, 2");
  peer_stop(&peer, p);

  peer_start(&peer, plume_loop(p), "HTTP/1.0 200 OK\r\n\r\nuntil eof");
  snprintf(code, sizeof(code),
           "local s, h, b = require('plume').http.request("
           "'http://127.0.0.1:%d/') eof = b done3 = true",
           peer.port);
  run_lua(p, code);
  CHECK(spin_until(p, "done3", 3000));
  CHECK_STR(lua_global_str(p, "eof", buf, sizeof(buf)), "until eof");
  peer_stop(&peer, p);

  peer_start(&peer, plume_loop(p), NULL); /* never answers */
  snprintf(
      code, sizeof(code),
      "local http = require('plume').http "
      "local s, err = http.request{ url = 'http://127.0.0.1:%d/', "
      "timeout = 50 } timeout = err "
      "local s2, err2 = http.request('http://127.0.0.1:1/') refused = err2 "
      "local s3, err3 = http.request('https://example.com/') tls = err3 "
      "local ok, e = pcall(http.request, { url = 'http://h/', "
      "headers = { ['X'] = 'a\\r\\nb' } }) injected = e "
      "done4 = true",
      peer.port);
  run_lua(p, code);
  CHECK(spin_until(p, "done4", 3000));
  CHECK(strstr(lua_global_str(p, "timeout", buf, sizeof(buf)), "timeout") !=
        NULL);
  CHECK(strstr(lua_global_str(p, "refused", buf, sizeof(buf)), "refused") !=
        NULL);
  CHECK(strstr(lua_global_str(p, "tls", buf, sizeof(buf)), "scheme") != NULL);
  CHECK(strstr(lua_global_str(p, "injected", buf, sizeof(buf)),
               "invalid header") != NULL);
  peer_stop(&peer, p);
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
  snprintf(buf, sizeof(buf), "rm -rf %s", tmp);
  CHECK_EQ(system(buf), 0);
}

/* A slow HTTP call on one task never delays a fast call on another. */
static void test_http_does_not_block(void) {
  plume_t *p = instance_new(NULL);
  peer_t peer;
  char code[512];
  peer_start(&peer, plume_loop(p), NULL);
  snprintf(code, sizeof(code),
           "local plume = require 'plume' order = '' "
           "plume.spawn(function() plume.http.request{ url = "
           "'http://127.0.0.1:%d/', timeout = 150 } order = order .. 's' "
           "slow = true end) "
           "plume.spawn(function() plume.sleep(1) order = order .. 'f' end)",
           peer.port);
  run_lua(p, code);
  CHECK(spin_until(p, "slow", 2000));
  CHECK_STR(lua_global_str(p, "order", code, sizeof(code)), "fs");
  peer_stop(&peer, p);
  instance_free(p);
}

/* Shutdown waits for calls in flight, then closes. */
static void test_shutdown_drains(void) {
  plume_t *p = instance_new(NULL);
  uint64_t t0;
  run_lua(p, "local plume = require 'plume' "
             "plume.every(5, function() ticks = (ticks or 0) + 1 end) "
             "plume.spawn(function() plume.sleep(80) finished = 1 end)");
  CHECK_EQ(plume_listen(p, "127.0.0.1", 0), 0);
  t0 = uv_hrtime();
  plume_close(p, on_instance_closed);
  CHECK(p->timers == NULL); /* no new ticks once closing */
  CHECK(p->listeners == NULL);
  plume_run(p);
  CHECK(uv_hrtime() - t0 >= 60 * 1000000u); /* loop time may lag */
  CHECK_EQ(lua_global_int(p, "finished"), 1);
  CHECK_EQ(p->lua_tasks, 0);
  CHECK_EQ(p->pending_closes, 0);
  plume_destroy(p);
}

/* Shutdown gives up on calls that outlive shutdown_timeout; their waits are
** cancelled. */
static void test_shutdown_deadline(void) {
  plume_options_t o;
  plume_t *p;
  uint64_t t0;
  plume_options_init(&o);
  plume_options_set(&o, "shutdown_timeout", "60");
  p = instance_new(&o);
  run_lua(p, "local plume = require 'plume' "
             "plume.spawn(function() plume.sleep(60000) finished = 1 end) "
             "plume.spawn(function() plume.http.request('http://127.0.0.1:1/') "
             "end) "
             "plume.spawn(function() plume.fs.read('/etc/hostname') end)");
  t0 = uv_hrtime();
  plume_close(p, on_instance_closed);
  plume_run(p);
  CHECK(uv_hrtime() - t0 < 2000 * 1000000u);
  CHECK_EQ(lua_global_int(p, "finished"), 0);
  CHECK(p->waits == NULL);
  CHECK_EQ(p->pending_closes, 0);
  plume_destroy(p);
}

/* plume.exit(code) shuts down gracefully and records the exit code. */
static void test_exit(void) {
  plume_t *p = instance_new(NULL);
  CHECK_EQ(plume_listen(p, "127.0.0.1", 0), 0);
  run_lua(p, "local plume = require 'plume' plume.sleep(5) plume.exit(7)");
  plume_run(p); /* returns once the exit has closed everything */
  CHECK_EQ(p->exit_code, 7);
  CHECK(p->closing);
  CHECK_EQ(p->pending_closes, 0);
  plume_destroy(p);
}

int main(void) {
  RUN(test_timers);
  RUN(test_files);
  RUN(test_http_client);
  RUN(test_http_does_not_block);
  RUN(test_shutdown_drains);
  RUN(test_shutdown_deadline);
  RUN(test_exit);
  return check_done();
}
