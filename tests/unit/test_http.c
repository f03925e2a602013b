/*
** test_http.c: tcp.c, http.c and static.c against a real listener on 127.0.0.1,
** driven by a blocking client on a second thread, plus in-process feeding split
** at every offset. The Engine.IO and WebSocket seams are faked here (their
** files have their own tests), so the archive members engineio.o, websocket.o
** and core.o are never linked in.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llhttp.h>

#include "check.h"
#include "internal.h"

/* ------------------------------------------------------------------------- */
/* Stand-ins for the layers around HTTP. They run on the loop thread; the client
** thread only reads what they recorded after pthread_join. */

static int fake_server;  /* its address stands for the Engine.IO server */
static int fake_session; /* its address stands for a session owning a conn */
static int eio_requests, eio_closed_calls, flood_result;
static int eio_heads, eio_over_limit;
static size_t eio_max_payload; /* the fake server's own limit */
static char eio_order[64];     /* 'H' per head, 'R' per complete request */
static plume__conn_t *parked;
static uv_timer_t *answer_timer;
static char last_warning[512];
static int linger_timeouts, linger_capped;

void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (level == PLUME__LOG_WARN)
    snprintf(last_warning, sizeof(last_warning), "%s", msg);
  if (strstr(msg, "linger timed out") != NULL)
    linger_timeouts++;
  if (strstr(msg, "while lingering") != NULL)
    linger_capped++;
  if (getenv("PLUME_TEST_LOG") != NULL)
    fprintf(stderr, "# [%s] %s\n", subsystem, msg);
}

void plume__log_access(plume_t *p, const char *kind, const char *method,
                       plume_slice_t path, int status, size_t bytes,
                       uint64_t start_ns) {}

plume__eio_server_t *plume__eio_server_match(plume_t *p, plume_slice_t path) {
  return path.n >= 11 && memcmp(path.p, "/engine.io/", 11) == 0
             ? (plume__eio_server_t *)&fake_server
             : NULL;
}

static int path_is(const plume__http_req_t *r, const char *s) {
  return r->path.n == strlen(s) && memcmp(r->path.p, s, r->path.n) == 0;
}

size_t plume__eio_server_max_payload(const plume__eio_server_t *srv) {
  return eio_max_payload;
}

static void note_order(char ch) {
  size_t n = strlen(eio_order);
  if (n + 1 < sizeof(eio_order)) {
    eio_order[n] = ch;
    eio_order[n + 1] = '\0';
  }
}

/* The head alone, while the body is still being read: /engine.io/busy answers
** it at once, as Engine.IO does an overlapping POST. */
void plume__eio_handle_head(plume__eio_server_t *srv, plume__conn_t *c,
                            plume__http_req_t *r) {
  __atomic_add_fetch(&eio_heads, 1, __ATOMIC_SEQ_CST); /* the client peeks */
  note_order('H');
  CHECK(plume__http_current(c) == r);
  CHECK_EQ(r->body.n, 0);
  CHECK(!r->over_limit);
  CHECK(plume__http_header(r, "content-length").p != NULL ||
        plume__http_header(r, "transfer-encoding").p != NULL);
  if (path_is(r, "/engine.io/busy"))
    plume__http_respond(c, 400, NULL, NULL, NULL, 0);
}

static void on_answer(uv_timer_t *t) {
  if (parked != NULL) {
    parked->owner = NULL;
    plume__http_respond(parked, 200, "text/plain", NULL, "late", 4);
    parked = NULL;
  }
}

void plume__eio_handle_request(plume__eio_server_t *srv, plume__conn_t *c,
                               plume__http_req_t *r) {
  char q[64], out[512];
  if (r->over_limit) { /* Engine.IO's answer: 413, empty */
    eio_over_limit++;
    CHECK_EQ(r->body.n, 0);
    plume__http_respond(c, 413, NULL, NULL, NULL, 0);
    return;
  }
  eio_requests++;
  note_order('R');
  if (path_is(r, "/engine.io/echo")) {
    int n;
    if (plume__http_query(r, "q", q, sizeof(q)) < 0)
      strcpy(q, "-");
    n = snprintf(out, sizeof(out), "%s q=%s body=%.*s",
                 llhttp_method_name((llhttp_method_t)r->method), q,
                 (int)r->body.n, r->body.p);
    plume__http_respond(c, 200, "text/plain", "X-Echo: 1\r\n", out, (size_t)n);
  } else if (path_is(r, "/engine.io/park")) {
    plume__http_park(c);
    c->owner = (plume__eio_session_t *)&fake_session;
    parked = c;
    if (plume__http_query(r, "answer", q, sizeof(q)) >= 0)
      uv_timer_start(answer_timer, on_answer, 50, 0);
  } else if (path_is(r, "/engine.io/flood")) {
    static char chunk[16384];
    int i;
    memset(chunk, 'x', sizeof(chunk));
    for (i = 0; i < 64 && flood_result == 0; i++)
      flood_result = plume__conn_write(c, chunk, sizeof(chunk));
  } else if (path_is(r, "/engine.io/ws") && r->upgrade) {
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    plume_slice_t left = plume__http_leftover(c);
    plume__conn_write(c, ok, sizeof(ok) - 1);
    plume__conn_write(c, "[", 1);
    plume__conn_write(c, left.p, left.n);
    plume__conn_write(c, "]", 1);
    c->flags |= PLUME__CONN_WS;
    plume__http_free(c);
  } else {
    plume__http_respond(c, 400, "text/plain", NULL, "bad", 3);
  }
}

void plume__eio_conn_closed(plume__conn_t *c) {
  eio_closed_calls++;
  if (parked == c)
    parked = NULL;
  c->owner = NULL;
}

void plume__ws_on_data(plume__conn_t *c, const char *p, size_t n) {
  plume__conn_write(c, p, n); /* echo */
}

void plume__ws_free(plume__conn_t *c) {}

/* ------------------------------------------------------------------------- */
/* The server side: a hand-made instance with the flusher core.c would
** install. */

typedef struct env_s {
  uv_loop_t loop;
  plume_t *p;
  int port;
  uv_async_t done;
  uv_timer_t timer;
  uv_prepare_t prepare;
  void (*client)(struct env_s *);
} env_t;

static void on_flush(uv_check_t *h) {
  plume__flush_all(plume__container_of(h, plume_t, flusher));
}

/* Output queued by timer callbacks must go before the loop blocks in poll,
** so the instance flushes in a prepare handle too (the uv_check alone runs
** after the poll). */
static void on_prepare(uv_prepare_t *h) {
  plume__flush_all(h->data);
}

static void on_done(uv_async_t *a) {
  uv_stop(a->loop);
}

static void env_start(env_t *e, void (*setup)(plume_options_t *),
                      const char *public_dir) {
  struct sockaddr_in sa;
  int n = sizeof(sa);
  memset(e, 0, sizeof(*e));
  uv_loop_init(&e->loop);
  e->p = calloc(1, sizeof(plume_t));
  plume_options_init(&e->p->opts);
  if (setup != NULL)
    setup(&e->p->opts);
  e->p->loop = &e->loop;
  e->p->log_level = PLUME__LOG_DEBUG;
  if (public_dir != NULL)
    snprintf(e->p->public_dir, sizeof(e->p->public_dir), "%s", public_dir);
  uv_check_init(&e->loop, &e->p->flusher);
  uv_check_start(&e->p->flusher, on_flush);
  uv_prepare_init(&e->loop, &e->prepare);
  e->prepare.data = e->p;
  uv_prepare_start(&e->prepare, on_prepare);
  CHECK_EQ(plume__tcp_listen(e->p, "127.0.0.1", 0), 0);
  uv_tcp_getsockname(&e->p->listeners->tcp, (struct sockaddr *)&sa, &n);
  e->port = ntohs(sa.sin_port);
  uv_async_init(&e->loop, &e->done, on_done);
  uv_timer_init(&e->loop, &e->timer);
  answer_timer = &e->timer;
  eio_requests = eio_closed_calls = flood_result = 0;
  eio_heads = eio_over_limit = 0;
  eio_max_payload = (size_t)e->p->opts.max_http_buffer_size;
  eio_order[0] = '\0';
  parked = NULL;
  last_warning[0] = '\0';
  linger_timeouts = linger_capped = 0;
}

static void *client_main(void *arg) {
  env_t *e = arg;
  e->client(e);
  uv_async_send(&e->done);
  return NULL;
}

static void env_run(env_t *e, void (*client)(env_t *)) {
  pthread_t t;
  e->client = client;
  pthread_create(&t, NULL, client_main, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
}

/* Closes everything and checks that nothing is left: no connection, no
** handle. */
static void env_finish(env_t *e) {
  plume__tcp_close_all(e->p);
  plume__flush_all(e->p);
  uv_close((uv_handle_t *)&e->p->flusher, NULL);
  uv_close((uv_handle_t *)&e->done, NULL);
  uv_close((uv_handle_t *)&e->timer, NULL);
  uv_close((uv_handle_t *)&e->prepare, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  CHECK_EQ(e->p->nconns, 0);
  CHECK(e->p->conns == NULL);
  CHECK(e->p->dirty == NULL);
  CHECK_EQ(e->p->pending_closes, 0);
  CHECK_EQ(uv_loop_close(&e->loop), 0);
  free(e->p);
}

/* ------------------------------------------------------------------------- */
/* The client side: blocking sockets with a receive timeout. */

typedef struct client_s {
  int fd;
  size_t len;
  char buf[1 << 18];
} client_t;

typedef struct resp_s {
  int status;
  char head[4096];
  char body[1 << 16];
  size_t body_n;
} resp_t;

static client_t *cl_open(env_t *e) {
  client_t *k = calloc(1, sizeof(*k));
  struct sockaddr_in sa;
  struct timeval tv = {3, 0};
  int one = 1;
  k->fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)e->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return k;
}

static void cl_close(client_t *k) {
  close(k->fd);
  free(k);
}

/* Returns 0 once every byte is sent, -1 when the connection failed first. */
static int cl_sendn(client_t *k, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void cl_send(client_t *k, const char *s) {
  cl_sendn(k, s, strlen(s));
}

/* Reads more bytes: > 0 read, 0 EOF, -1 error or timeout. */
static int cl_fill(client_t *k) {
  ssize_t r;
  if (k->len == sizeof(k->buf))
    return -1;
  r = recv(k->fd, k->buf + k->len, sizeof(k->buf) - k->len, 0);
  if (r > 0)
    k->len += (size_t)r;
  return r > 0 ? 1 : r == 0 ? 0 : -1;
}

static void cl_consume(client_t *k, size_t n) {
  memmove(k->buf, k->buf + n, k->len - n);
  k->len -= n;
}

static const char *resp_header(resp_t *r, const char *name) {
  static char value[256];
  const char *p = r->head;
  size_t n = strlen(name);
  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1, *end = strstr(v, "\r\n");
      while (*v == ' ')
        v++;
      snprintf(value, sizeof(value), "%.*s", (int)(end - v), v);
      return value;
    }
  }
  return NULL;
}

/* Reads one response (its body per Content-Length unless head_only). Returns
** the status, or -1 if the connection ended or timed out first. */
static int cl_response(client_t *k, resp_t *r, int head_only) {
  char *end;
  const char *cl;
  size_t hn, bn = 0;
  memset(r, 0, sizeof(*r));
  r->status = -1;
  while ((end = memmem(k->buf, k->len, "\r\n\r\n", 4)) == NULL)
    if (cl_fill(k) <= 0)
      return -1;
  hn = (size_t)(end - k->buf) + 4;
  if (hn >= sizeof(r->head))
    return -1;
  memcpy(r->head, k->buf, hn);
  r->head[hn] = '\0';
  cl_consume(k, hn);
  sscanf(r->head, "HTTP/1.1 %d", &r->status);
  cl = resp_header(r, "content-length");
  if (cl != NULL && !head_only)
    bn = (size_t)strtoul(cl, NULL, 10);
  while (k->len < bn)
    if (cl_fill(k) <= 0)
      return -1;
  if (bn >= sizeof(r->body))
    return -1;
  memcpy(r->body, k->buf, bn);
  r->body[bn] = '\0';
  r->body_n = bn;
  cl_consume(k, bn);
  return r->status;
}

/* 1 when the server closes the connection (after any bytes still unread). */
static int cl_eof(client_t *k) {
  int r;
  k->len = 0;
  while ((r = cl_fill(k)) > 0)
    k->len = 0;
  return r == 0 || (r < 0 && errno == ECONNRESET);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One request on a fresh connection; returns the status and keeps the
** response. */
static int one_shot(env_t *e, const char *req, resp_t *r) {
  client_t *k = cl_open(e);
  int status;
  cl_send(k, req);
  status = cl_response(k, r, 0);
  cl_close(k);
  return status;
}

/* ------------------------------------------------------------------------- */
/* Routing, keep-alive, pipelining, bodies. */

static void client_not_found(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  cl_send(k, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 404);
  CHECK_STR(r.body, "Not Found\n");
  CHECK_STR(resp_header(&r, "connection"), "keep-alive");
  /* The answer was complete, so the connection goes on. */
  cl_send(k, "GET /engine.io/echo?q=again HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=again body=");
  cl_close(k);
}

static void test_not_found(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_not_found);
  env_finish(&e);
}

static void client_keepalive_pipelining(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  cl_send(k, "GET /engine.io/echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=1 body=");
  CHECK_STR(resp_header(&r, "x-echo"), "1");
  CHECK_STR(resp_header(&r, "content-type"), "text/plain");
  cl_send(k, "GET /engine.io/echo?q=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=2 body=");
  /* Three requests in one segment, with a stray CRLF after a body (old
  ** clients). */
  cl_send(k,
          "GET /engine.io/echo?q=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n"
          "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\r\n"
          "GET /engine.io/echo?x=1&q=3&q=4 HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=a b c body=");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "POST q=- body=hello");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=3 body=");
  /* HTTP/1.0 without keep-alive: answered, then closed. */
  cl_send(k, "GET /engine.io/echo HTTP/1.0\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(resp_header(&r, "connection"), "close");
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_keepalive_pipelining(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_keepalive_pipelining);
  CHECK_EQ(eio_requests, 6);
  env_finish(&e);
}

static void client_bodies(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  cl_send(k,
          "POST /engine.io/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "POST q=- body=Wikipedia");
  /* A body split across segments. */
  cl_send(k, "PUT /engine.io/echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234");
  usleep(20000);
  cl_send(k, "56789");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "PUT q=- body=0123456789");
  /* Expect: 100-continue gets its interim answer before the body is sent. */
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 3\r\n"
             "Expect: 100-continue\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 1), 100);
  cl_send(k, "abc");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "POST q=- body=abc");
  cl_close(k);
}

static void test_bodies(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_bodies);
  env_finish(&e);
}

/* ------------------------------------------------------------------------- */
/* Limits. */

static void small_limits(plume_options_t *o) {
  o->max_body_bytes = 100;
  o->max_http_buffer_size = 200;
  o->max_header_bytes = 1024;
  o->max_headers = 10;
}

static void client_body_limits(env_t *e) {
  static resp_t r;
  static char big[300];
  client_t *k;
  /* Declared over the limit: 413 at once, before any body byte is sent. */
  k = cl_open(e);
  cl_send(k, "POST /upload HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_STR(resp_header(&r, "connection"), "close");
  CHECK(cl_eof(k));
  cl_close(k);
  k = cl_open(e);
  cl_send(k, "POST /x HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413);
  cl_close(k);
  /* Engine.IO paths have their own limit (maxHttpBufferSize). */
  memset(big, 'b', 150);
  k = cl_open(e);
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 150\r\n\r\n");
  cl_sendn(k, big, 150);
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_EQ(r.body_n, strlen("POST q=- body=") + 150);
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 201\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413); /* Engine.IO's answer, see the fake */
  CHECK_EQ(r.body_n, 0);
  CHECK_STR(resp_header(&r, "connection"), "close");
  CHECK(cl_eof(k));
  cl_close(k);
  /* Chunked bodies are counted as they stream in. */
  k = cl_open(e);
  cl_send(k,
          "POST /engine.io/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "64\r\n");
  memset(big, 'c', 100);
  cl_sendn(k, big, 100);
  cl_send(k, "\r\n64\r\n");
  cl_sendn(k, big, 100);
  cl_send(k, "\r\n64\r\n");
  cl_sendn(k, big, 100);
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_EQ(r.body_n, 0);
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_body_limits(void) {
  env_t e;
  env_start(&e, small_limits, NULL);
  env_run(&e, client_body_limits);
  CHECK_EQ(eio_requests, 1);
  CHECK_EQ(eio_over_limit, 2);
  env_finish(&e);
}

/* A peer whose refused input is still arriving gets the answer and a clean
** EOF: the close lingers (tcp.c), bounded in bytes and in time. */
static void linger_limits(plume_options_t *o) {
  o->max_body_bytes = 100;
  o->max_http_buffer_size = 200000; /* a request in flight: < 300 KB */
}

static void client_linger(env_t *e) {
  static resp_t r;
  static char body[150000], chunk[65536];
  client_t *k;
  int i;
  /* The body follows the head at once, so the 413 goes out while most of it
  ** is still unread; the peer then goes on sending. Closed at once, the
  ** socket would answer that with RST, and a client (Node's) that sees its
  ** write fail drops the answer it has not parsed yet. */
  k = cl_open(e);
  cl_send(k, "POST /upload HTTP/1.1\r\nContent-Length: 150000\r\n\r\n");
  CHECK_EQ(cl_sendn(k, body, 100000), 0);
  CHECK_EQ(cl_response(k, &r, 0), 413);
  usleep(20000);
  CHECK_EQ(cl_sendn(k, body, 50000), 0);
  CHECK_EQ(cl_fill(k), 0);
  cl_close(k);
  /* More than one request's worth is not read to the end. */
  k = cl_open(e);
  cl_send(k, "POST /upload HTTP/1.1\r\nContent-Length: 9000000\r\n\r\n");
  for (i = 0; i < 32; i++)
    cl_sendn(k, chunk, sizeof(chunk));
  CHECK(cl_eof(k));
  cl_close(k);
  /* A peer that never sends its FIN is cut off after 2 s. */
  k = cl_open(e);
  cl_send(k, "POST /upload HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_EQ(cl_fill(k), 0); /* our FIN comes at once */
  usleep(2300000);
  cl_close(k);
}

static void test_linger(void) {
  env_t e;
  env_start(&e, linger_limits, NULL);
  env_run(&e, client_linger);
  CHECK_EQ(linger_capped, 1);
  CHECK_EQ(linger_timeouts, 1);
  env_finish(&e);
}

static void client_header_limits(env_t *e) {
  static resp_t r;
  static char req[4096];
  client_t *k;
  int i;
  size_t n;
  k = cl_open(e);
  n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
  memset(req + n, 'a', 2000);
  memcpy(req + n + 2000, "\r\n\r\n", 5);
  cl_send(k, req);
  CHECK_EQ(cl_response(k, &r, 0), 431);
  CHECK(cl_eof(k));
  cl_close(k);
  k = cl_open(e);
  n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
  for (i = 0; i < 11; i++)
    n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
  snprintf(req + n, sizeof(req) - n, "\r\n");
  cl_send(k, req);
  CHECK_EQ(cl_response(k, &r, 0), 431);
  CHECK(cl_eof(k));
  cl_close(k);
  /* Ten headers are fine. */
  k = cl_open(e);
  n = (size_t)snprintf(req, sizeof(req), "GET /engine.io/echo HTTP/1.1\r\n");
  for (i = 0; i < 10; i++)
    n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
  snprintf(req + n, sizeof(req) - n, "\r\n");
  cl_send(k, req);
  CHECK_EQ(cl_response(k, &r, 0), 200);
  cl_close(k);
}

static void test_header_limits(void) {
  env_t e;
  env_start(&e, small_limits, NULL);
  env_run(&e, client_header_limits);
  env_finish(&e);
}

/* Framing that a proxy in front could read differently: 400 and close. */
static const char *const bad_requests[] = {
    "GET / HTTP/1.1\r\nHost: a\rX-Y: b\r\n\r\n", /* bare CR */
    "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",       /* CR CR LF */
    "GET / HTTP/1.1\nHost: a\n\n",               /* bare LF */
    "GET / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\nhello", /* obs-fold
                                                                     */
    "GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n",          /* obs-fold */
    "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", /* SP before : */
    "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",               /* HT before : */
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    "0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    "0\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: "
    "chunked\r\n\r\nffffffffffffffffff\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET / HTTP/1.1\r\nNo-Colon\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\001b\r\n\r\n",
    "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
};

static void client_smuggling(env_t *e) {
  static resp_t r;
  size_t i;
  for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
    client_t *k = cl_open(e);
    cl_send(k, bad_requests[i]);
    if (cl_response(k, &r, 0) != 400)
      fprintf(stdout, "#   request %zu: status %d\n", i, r.status);
    CHECK_EQ(r.status, 400);
    CHECK_STR(resp_header(&r, "connection"), "close");
    CHECK(cl_eof(k));
    cl_close(k);
  }
}

static void test_smuggling(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_smuggling);
  CHECK_EQ(eio_requests, 0);
  env_finish(&e);
}

/* ------------------------------------------------------------------------- */
/* Deadlines and connection limits. */

static void short_timeouts(plume_options_t *o) {
  o->header_timeout = 100;
  o->keepalive_timeout = 150;
}

static void client_timeouts(env_t *e) {
  static resp_t r;
  client_t *k;
  double t0;
  /* Slowloris: the head must arrive within header_timeout of its first byte. */
  k = cl_open(e);
  t0 = now_ms();
  cl_send(k, "GET / HTTP/1.1\r\nHo");
  usleep(50000);
  cl_send(k, "st: x\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 408);
  CHECK(now_ms() - t0 >= 90);
  CHECK(cl_eof(k));
  cl_close(k);
  /* A stalled body gets 408 too. */
  k = cl_open(e);
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n12");
  CHECK_EQ(cl_response(k, &r, 0), 408);
  cl_close(k);
  /* An idle keep-alive connection is closed without an answer. */
  k = cl_open(e);
  cl_send(k, "GET /engine.io/echo HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  t0 = now_ms();
  CHECK(cl_eof(k));
  CHECK(now_ms() - t0 >= 100);
  CHECK_EQ(k->len, 0);
  cl_close(k);
  /* So is a connection that never sends a byte. */
  k = cl_open(e);
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_timeouts(void) {
  env_t e;
  env_start(&e, short_timeouts, NULL);
  env_run(&e, client_timeouts);
  env_finish(&e);
}

static void two_connections(plume_options_t *o) {
  o->max_connections = 2;
}

static void client_max_connections(env_t *e) {
  static resp_t r;
  client_t *a = cl_open(e), *b = cl_open(e), *c;
  CHECK_EQ(one_shot(e, "GET /engine.io/echo HTTP/1.1\r\n\r\n", &r), -1);
  cl_send(a, "GET /engine.io/echo?q=a HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(a, &r, 0), 200);
  cl_send(b, "GET /engine.io/echo?q=b HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(b, &r, 0), 200);
  /* A slot frees once a connection is gone. */
  cl_close(a);
  usleep(50000);
  c = cl_open(e);
  cl_send(c, "GET /engine.io/echo?q=c HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(c, &r, 0), 200);
  CHECK_STR(r.body, "GET q=c body=");
  cl_close(b);
  cl_close(c);
}

static void test_max_connections(void) {
  env_t e;
  env_start(&e, two_connections, NULL);
  env_run(&e, client_max_connections);
  CHECK(strstr(last_warning, "max_connections") != NULL);
  env_finish(&e);
}

static void small_output(plume_options_t *o) {
  o->max_output_bytes = 65536;
}

static void client_output_cap(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  cl_send(k, "GET /engine.io/flood HTTP/1.1\r\n\r\n");
  CHECK(cl_eof(k));
  cl_close(k);
  /* Others are unaffected. */
  CHECK_EQ(one_shot(e, "GET /engine.io/echo?q=ok HTTP/1.1\r\n\r\n", &r), 200);
}

static void test_output_cap(void) {
  env_t e;
  env_start(&e, small_output, NULL);
  env_run(&e, client_output_cap);
  CHECK_EQ(flood_result, PLUME_ETOOBIG);
  CHECK(strstr(last_warning, "slow reader") != NULL);
  env_finish(&e);
}

/* ------------------------------------------------------------------------- */
/* Parked requests and upgrades: the Engine.IO side of HTTP. */

static void client_park(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  double t0;
  /* A parked request holds the pipelined one behind it until it is answered. */
  cl_send(k, "GET /engine.io/park?answer=1 HTTP/1.1\r\n\r\n"
             "GET /engine.io/echo?q=next HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "late");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "GET q=next body=");
  /* Answered from a timer with nothing else going on (an Engine.IO ping):
  ** the answer must not wait for the next unrelated wake-up of the loop. */
  t0 = now_ms();
  cl_send(k, "GET /engine.io/park?answer=1 HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "late");
  CHECK(now_ms() - t0 < 1000);
  cl_close(k);
  /* EOF on a parked request reaches the session. */
  k = cl_open(e);
  cl_send(k, "GET /engine.io/park HTTP/1.1\r\n\r\n");
  usleep(50000);
  cl_close(k);
  usleep(50000);
}

static void test_park(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_park);
  CHECK_EQ(eio_closed_calls, 1);
  CHECK(parked == NULL);
  env_finish(&e);
}

/* Engine.IO hears of a request with a body at its head (protocol.md §2.6: a
** POST in progress), and its own max_payload bounds the body. */
static void client_eio_head(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n012");
  usleep(50000);
  CHECK_EQ(__atomic_load_n(&eio_heads, __ATOMIC_SEQ_CST), 1);
  cl_send(k, "3456789");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "POST q=- body=0123456789");
  CHECK_STR(resp_header(&r, "connection"), "keep-alive");
  /* Chunked too; a request without a body has no head of its own. */
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
             "\r\n3\r\nabc\r\n0\r\n\r\nGET /engine.io/echo HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "POST q=- body=abc");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  /* Outside Engine.IO paths nobody hears of the head. */
  cl_send(k, "POST /nothing HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
  CHECK_EQ(cl_response(k, &r, 0), 405);
  cl_close(k);
  /* An answer to the head: the body is never read and the connection ends,
  ** even with more of the body on its way. */
  k = cl_open(e);
  cl_send(k, "POST /engine.io/busy HTTP/1.1\r\nContent-Length: 10\r\n\r\n012");
  CHECK_EQ(cl_response(k, &r, 0), 400);
  CHECK_STR(resp_header(&r, "connection"), "close");
  cl_send(k, "3456789");
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_eio_head(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_eio_head);
  CHECK_EQ(eio_heads, 3);
  CHECK_EQ(eio_requests, 3);
  CHECK_STR(eio_order, "HRHRRH");
  env_finish(&e);
}

static void eio_limits(plume_options_t *o) {
  o->max_body_bytes = 100;
  o->max_http_buffer_size = 1000;
}

static void client_eio_limits(env_t *e) {
  static resp_t r;
  static char big[64];
  client_t *k = cl_open(e);
  memset(big, 'x', sizeof(big));
  /* The server's own max_payload (50), not max_http_buffer_size (1000). */
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 50\r\n\r\n");
  cl_sendn(k, big, 50);
  CHECK_EQ(cl_response(k, &r, 0), 200);
  /* Declared over it: 413 from Engine.IO (empty), then the connection ends. */
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nContent-Length: 51\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_EQ(r.body_n, 0);
  CHECK_STR(resp_header(&r, "connection"), "close");
  cl_sendn(k, big, 51);
  CHECK(cl_eof(k));
  cl_close(k);
  /* Over it as it streams in (two chunks of 30): the head went up first. */
  k = cl_open(e);
  cl_send(k, "POST /engine.io/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
             "\r\n1e\r\n");
  cl_sendn(k, big, 30);
  cl_send(k, "\r\n1e\r\n");
  cl_sendn(k, big, 30);
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_EQ(r.body_n, 0);
  CHECK(cl_eof(k));
  cl_close(k);
  /* Elsewhere the generic answer stays. */
  k = cl_open(e);
  cl_send(k, "POST /upload HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 413);
  CHECK_STR(r.body, "Payload Too Large\n");
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_eio_limits(void) {
  env_t e;
  env_start(&e, eio_limits, NULL);
  eio_max_payload = 50;
  env_run(&e, client_eio_limits);
  CHECK_EQ(eio_requests, 1);
  CHECK_EQ(eio_over_limit, 2);
  CHECK_EQ(eio_heads, 2); /* a declared excess is refused before the head */
  env_finish(&e);
}

static void client_upgrade(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  char got[16];
  /* The bytes after the head go to websocket.c, here an echo. */
  cl_send(k, "GET /engine.io/ws HTTP/1.1\r\nConnection: Upgrade\r\n"
             "Upgrade: websocket\r\n\r\nFRAME");
  CHECK_EQ(cl_response(k, &r, 1), 101);
  while (k->len < 7 && cl_fill(k) > 0)
    ;
  CHECK_MEM(k->buf, k->len, "[FRAME]");
  k->len = 0;
  cl_send(k, "GET / HTTP/1.1\r\n\r\n");
  while (k->len < 18 && cl_fill(k) > 0)
    ;
  snprintf(got, sizeof(got), "%.*s", (int)(k->len < 15 ? k->len : 15), k->buf);
  CHECK_STR(got, "GET / HTTP/1.1\r");
  cl_close(k);
  /* An upgrade to anything else is answered as plain HTTP, then closed. */
  k = cl_open(e);
  cl_send(k, "GET /engine.io/echo HTTP/1.1\r\nConnection: Upgrade\r\n"
             "Upgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(resp_header(&r, "connection"), "close");
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_upgrade(void) {
  env_t e;
  env_start(&e, NULL, NULL);
  env_run(&e, client_upgrade);
  env_finish(&e);
}

/* ------------------------------------------------------------------------- */
/* Static files. */

static char tmp_dir[64], public_dir[128];

static void write_file(const char *rel, const char *text) {
  char path[256];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", tmp_dir, rel);
  f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void make_site(void) {
  char path[256];
  strcpy(tmp_dir, "/tmp/plume-http-XXXXXX");
  CHECK(mkdtemp(tmp_dir) != NULL);
  snprintf(public_dir, sizeof(public_dir), "%s/public", tmp_dir);
  mkdir(public_dir, 0755);
  snprintf(path, sizeof(path), "%s/public/sub", tmp_dir);
  mkdir(path, 0755);
  write_file("public/index.html", "<h1>home</h1>");
  write_file("public/app.js", "console.log(1)");
  write_file("public/sub/index.html", "sub");
  write_file("public/empty.txt", "");
  write_file("secret.txt", "secret");
  {
    /* Larger than any socket buffer write: exercises partial and queued
    ** writes. */
    static char big[900 * 1024 + 1];
    size_t i;
    for (i = 0; i < sizeof(big) - 1; i++)
      big[i] = (char)('a' + i % 26);
    write_file("public/big.bin", big);
  }
  snprintf(path, sizeof(path), "%s/public/link.txt", tmp_dir);
  CHECK_EQ(symlink("../secret.txt", path), 0);
}

static void remove_site(void) {
  static const char *const files[] = {"public/index.html",
                                      "public/app.js",
                                      "public/sub/index.html",
                                      "public/empty.txt",
                                      "public/link.txt",
                                      "public/big.bin",
                                      "secret.txt",
                                      "public/sub",
                                      "public",
                                      ""};
  char path[256];
  size_t i;
  for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, files[i]);
    remove(path);
  }
}

static void client_static(env_t *e) {
  static resp_t r;
  static char req[512];
  char etag[64];
  client_t *k = cl_open(e);
  size_t i;
  static const char *const refused[] = {"/../secret.txt",
                                        "/%2e%2e/secret.txt",
                                        "/sub/..%2f..%2fsecret.txt",
                                        "/a%00b",
                                        "/%zz",
                                        "/sub/%2E%2E/%2E%2E/secret.txt"};
  cl_send(k, "GET / HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "<h1>home</h1>");
  CHECK_STR(resp_header(&r, "content-type"), "text/html; charset=utf-8");
  cl_send(k, "GET /app.js HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "console.log(1)");
  CHECK_STR(resp_header(&r, "content-type"), "text/javascript; charset=utf-8");
  snprintf(etag, sizeof(etag), "%s", resp_header(&r, "etag"));
  CHECK(etag[0] == '"');
  /* HEAD: the same headers, no body (the next answer would be garbled
  ** otherwise). */
  cl_send(k, "HEAD /app.js HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 1), 200);
  CHECK_STR(resp_header(&r, "content-length"), "14");
  snprintf(req, sizeof(req),
           "GET /app.js HTTP/1.1\r\nIf-None-Match: %s\r\n\r\n", etag);
  cl_send(k, req);
  CHECK_EQ(cl_response(k, &r, 0), 304);
  CHECK(resp_header(&r, "content-length") == NULL);
  CHECK_STR(resp_header(&r, "etag"), etag);
  cl_send(k, "GET /app.js HTTP/1.1\r\nIf-None-Match: \"other\"\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  cl_send(k, "GET /sub/ HTTP/1.1\r\n\r\nGET /sub HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "sub");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "sub");
  cl_send(k, "GET /empty.txt HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_EQ(r.body_n, 0);
  cl_send(k, "GET /missing.css HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 404);
  /* A symlink out of the folder is not followed. */
  cl_send(k, "GET /link.txt HTTP/1.1\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 404);
  cl_send(k, "POST /app.js HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK_EQ(cl_response(k, &r, 0), 405);
  CHECK_STR(resp_header(&r, "allow"), "GET, HEAD");
  /* A client that half-closes after its requests still gets every answer,
  ** even one read from disk after the EOF arrived, and then the connection
  ** ends. */
  cl_send(k, "GET /app.js HTTP/1.1\r\n\r\nGET /sub/ HTTP/1.1\r\n\r\n");
  shutdown(k->fd, SHUT_WR);
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "console.log(1)");
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "sub");
  CHECK(cl_eof(k));
  cl_close(k);
  k = cl_open(e);
  for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", refused[i]);
    cl_send(k, req);
    CHECK_EQ(cl_response(k, &r, 0), 400);
    CHECK(strstr(r.body, "secret") == NULL);
  }
  cl_close(k);
}

static void client_big_files(env_t *e) {
  static resp_t r;
  client_t *k = cl_open(e);
  size_t i, total = 0, want = 900 * 1024;
  int rcvbuf = 16384, status = 0;
  /* A big answer, and a small one queued while the big one is still being
  ** written. */
  cl_send(k, "GET /big.bin HTTP/1.1\r\n\r\nGET /app.js HTTP/1.1\r\n\r\n");
  while (k->len < 256 && cl_fill(k) > 0)
    ;
  CHECK_EQ(sscanf(k->buf, "HTTP/1.1 %d", &status), 1);
  CHECK_EQ(status, 200);
  {
    char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
    size_t hn = end != NULL ? (size_t)(end - k->buf) + 4 : k->len;
    cl_consume(k, hn);
  }
  while (total < want) {
    size_t n = k->len < want - total ? k->len : want - total;
    for (i = 0; i < n; i++)
      if (k->buf[i] != (char)('a' + (total + i) % 26))
        break;
    CHECK_EQ(i, n);
    total += n;
    cl_consume(k, n);
    if (total < want && cl_fill(k) <= 0)
      break;
  }
  CHECK_EQ(total, want);
  CHECK_EQ(cl_response(k, &r, 0), 200);
  CHECK_STR(r.body, "console.log(1)");
  cl_close(k);
  /* A reader that stops reading: the backlog passes max_output_bytes and the
  ** connection is dropped instead of buffered without end. */
  k = calloc(1, sizeof(*k));
  k->fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  {
    struct sockaddr_in sa;
    struct timeval tv = {3, 0};
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)e->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CHECK_EQ(connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  }
  for (i = 0; i < 40; i++)
    cl_send(k, "GET /big.bin HTTP/1.1\r\n\r\n");
  usleep(500000);
  CHECK(cl_eof(k));
  cl_close(k);
}

static void test_big_files(void) {
  env_t e;
  make_site();
  env_start(&e, NULL, public_dir);
  env_run(&e, client_big_files);
  CHECK(strstr(last_warning, "slow reader") != NULL);
  env_finish(&e);
  remove_site();
}

static void test_static(void) {
  env_t e;
  make_site();
  env_start(&e, NULL, public_dir);
  env_run(&e, client_static);
  env_finish(&e);
  remove_site();
}

/* ------------------------------------------------------------------------- */
/* In-process feeding: a connection without a socket, output left in its
** scratch. */

static plume__conn_t *fake_conn(plume_t *p) {
  plume__conn_t *c = calloc(1, sizeof(*c));
  c->p = p;
  c->id = ++p->next_conn_id;
  uv_tcp_init(p->loop, &c->tcp);
  uv_timer_init(p->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->next = p->conns;
  if (p->conns != NULL)
    p->conns->prev = c;
  p->conns = c;
  p->nconns++;
  plume__http_init(c);
  return c;
}

/* Feeds input in pieces at the given offsets; returns the output as text. */
static void feed_split(const char *in, size_t n, size_t cut, char *out,
                       size_t cap) {
  uv_loop_t loop;
  plume_t *p = calloc(1, sizeof(plume_t));
  plume__conn_t *c;
  size_t len;
  uv_loop_init(&loop);
  plume_options_init(&p->opts);
  p->loop = &loop;
  eio_max_payload = (size_t)p->opts.max_http_buffer_size;
  c = fake_conn(p);
  plume__http_on_data(c, in, cut);
  plume__http_on_data(c, in + cut, n - cut);
  len = c->scratch.len < cap - 1 ? c->scratch.len : cap - 1;
  memcpy(out, c->scratch.p, len);
  out[len] = '\0';
  plume__conn_close(c, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(p->nconns, 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
  free(p);
}

static void test_split_everywhere(void) {
  static const char in[] =
      "GET /engine.io/echo?q=%41%42 HTTP/1.1\r\nHost: x\r\nX-Long-Name: "
      "v\r\n\r\n"
      "POST /engine.io/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2;e=1\r\nde\r\n0\r\n\r\n"
      "PATCH /engine.io/echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nwxyz"
      "GET /nope HTTP/1.1\r\n\r\n";
  static char whole[4096], piece[4096];
  size_t cut, n = sizeof(in) - 1;
  feed_split(in, n, n, whole, sizeof(whole));
  CHECK(strstr(whole, "GET q=AB body=") != NULL);
  CHECK(strstr(whole, "POST q=- body=abcde") != NULL);
  CHECK(strstr(whole, "PATCH q=- body=wxyz") != NULL);
  CHECK(strstr(whole, "404 Not Found") != NULL);
  for (cut = 0; cut < n; cut++) {
    feed_split(in, n, cut, piece, sizeof(piece));
    if (strcmp(piece, whole) != 0) {
      fprintf(stdout, "#   split at %zu differs\n", cut);
      CHECK(0);
      break;
    }
  }
}

static void test_query(void) {
  plume__http_req_t r;
  char buf[16];
  memset(&r, 0, sizeof(r));
  r.query.p = "a=1&b=x%20y+z&a=2&c&d=%zz&e=&%73id=s&long=0123456789abcdef";
  r.query.n = strlen(r.query.p);
  CHECK_EQ(plume__http_query(&r, "a", buf, sizeof(buf)), 1);
  CHECK_STR(buf, "1");
  CHECK_EQ(plume__http_query(&r, "b", buf, sizeof(buf)), 5);
  CHECK_STR(buf, "x y z");
  CHECK_EQ(plume__http_query(&r, "c", buf, sizeof(buf)), 0);
  CHECK_EQ(plume__http_query(&r, "d", buf, sizeof(buf)), 3);
  CHECK_STR(buf, "%zz");
  CHECK_EQ(plume__http_query(&r, "e", buf, sizeof(buf)), 0);
  CHECK_EQ(plume__http_query(&r, "sid", buf, sizeof(buf)), 1);
  CHECK_EQ(plume__http_query(&r, "long", buf, sizeof(buf)), -1);
  CHECK_EQ(plume__http_query(&r, "zz", buf, sizeof(buf)), -1);
  CHECK_EQ(plume__http_query(&r, "", buf, sizeof(buf)), -1);
  CHECK_STR(plume__http_reason(431), "Request Header Fields Too Large");
}

int main(void) {
  RUN(test_query);
  RUN(test_split_everywhere);
  RUN(test_not_found);
  RUN(test_keepalive_pipelining);
  RUN(test_bodies);
  RUN(test_body_limits);
  RUN(test_linger);
  RUN(test_header_limits);
  RUN(test_smuggling);
  RUN(test_timeouts);
  RUN(test_max_connections);
  RUN(test_output_cap);
  RUN(test_park);
  RUN(test_eio_head);
  RUN(test_eio_limits);
  RUN(test_upgrade);
  RUN(test_static);
  RUN(test_big_files);
  plume__shared_pool_drain();
  return check_done();
}
