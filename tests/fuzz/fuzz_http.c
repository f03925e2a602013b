/*
** fuzz_http.c: the HTTP glue (llhttp, our callbacks, the head scanner, header
** and body accumulation, query parsing, answers) fed through a connection
** without a socket, so output stays in its scratch buffer. Byte 0 picks the
** chunk size and the limits; the rest is the byte stream. -DPLUME_FUZZ_MAIN
** adds a main() that replays files.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "internal.h"

/*
** The neighbouring layers, weak: the replay build links the archive, where
** these keep engineio.o, websocket.o and core.o out; `make fuzz` links every
** source, where the real ones win (no Engine.IO server is attached, so every
** request is static there).
*/
__attribute__((weak)) void plume__log(plume_t *p, int level,
                                      const char *subsystem, const char *fmt,
                                      ...) {}

__attribute__((weak)) void plume__log_access(plume_t *p, const char *kind,
                                             const char *method,
                                             plume_slice_t path, int status,
                                             size_t bytes, uint64_t start_ns) {}

static int fake_server, fake_session;
static plume__conn_t *parked;
static plume_t *inst;

__attribute__((weak)) plume__eio_server_t *
plume__eio_server_match(plume_t *p, plume_slice_t path) {
  return path.n >= 11 && memcmp(path.p, "/engine.io/", 11) == 0
             ? (plume__eio_server_t *)&fake_server
             : NULL;
}

__attribute__((weak)) void plume__eio_handle_request(plume__eio_server_t *srv,
                                                     plume__conn_t *c,
                                                     plume__http_req_t *r) {
  static const char *const names[] = {"EIO", "transport", "sid", "t", ""};
  char buf[64];
  size_t i;
  plume_slice_t s;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    plume__http_query(r, names[i], buf, sizeof(buf));
  plume__http_query(r, "sid", buf, 1);
  s = plume__http_header(r, "host");
  if (r->upgrade) {
    s = plume__http_leftover(c);
    plume__conn_write(c, s.p, s.n);
    c->flags |= PLUME__CONN_WS; /* the driver stops feeding HTTP */
    plume__http_free(c);
  } else if (r->path.n == 15 && memcmp(r->path.p, "/engine.io/park", 15) == 0) {
    plume__http_park(c);
    c->owner = (plume__eio_session_t *)&fake_session;
    parked = c;
  } else if (r->body.n > 0) {
    plume__shared_t *sh = plume__shared_new(r->body.p, r->body.n);
    if (sh != NULL) {
      plume__http_respond_shared(c, 200, "text/plain", "X-A: b\r\n", sh);
      plume__shared_unref(sh);
    }
  } else {
    plume__http_respond(c, s.p != NULL ? 200 : 204, NULL, NULL, r->url.p,
                        r->url.n);
  }
}

__attribute__((weak)) size_t
plume__eio_server_max_payload(const plume__eio_server_t *srv) {
  return (size_t)inst->opts.max_http_buffer_size;
}

/* The head of a request with a body: /engine.io/busy is answered there, as
** Engine.IO answers an overlapping POST. An over_limit request goes on to
** plume__eio_handle_request like any other. */
__attribute__((weak)) void plume__eio_handle_head(plume__eio_server_t *srv,
                                                  plume__conn_t *c,
                                                  plume__http_req_t *r) {
  char sid[32];
  plume__http_query(r, "sid", sid, sizeof(sid));
  if (r->path.n == 15 && memcmp(r->path.p, "/engine.io/busy", 15) == 0)
    plume__http_respond(c, 400, NULL, NULL, NULL, 0);
}

__attribute__((weak)) void plume__eio_conn_closed(plume__conn_t *c) {
  if (parked == c)
    parked = NULL;
  c->owner = NULL;
}

__attribute__((weak)) void plume__ws_on_data(plume__conn_t *c, const char *p,
                                             size_t n) {}
__attribute__((weak)) void plume__ws_free(plume__conn_t *c) {}

/* ------------------------------------------------------------------------- */

static uv_loop_t loop;

/* What tcp.c does on accept, minus the socket. */
static plume__conn_t *fake_conn(plume_t *p) {
  plume__conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
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
  if (plume__http_init(c) != 0) {
    plume__conn_close(c, 0);
    return NULL;
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  plume__conn_t *c;
  size_t chunk, off = 1;
  if (size < 1)
    return 0;
  if (inst == NULL) {
    uv_loop_init(&loop);
    inst = calloc(1, sizeof(*inst));
    inst->loop = &loop;
  }
  plume_options_init(&inst->opts);
  /* Deadlines far away: nothing here depends on the clock. */
  inst->opts.header_timeout = 1 << 30;
  inst->opts.keepalive_timeout = 1 << 30;
  inst->opts.max_output_bytes = 1 << 16;
  if (data[0] & 0x40) {
    inst->opts.max_header_bytes = 256;
    inst->opts.max_headers = 8;
    inst->opts.max_body_bytes = 64;
    inst->opts.max_http_buffer_size = 128;
  }
  chunk = data[0] & 0x3f;
  if (chunk == 0)
    chunk = size;
  parked = NULL;
  c = fake_conn(inst);
  if (c == NULL)
    return 0;
  while (c != NULL && off < size &&
         !(c->flags & (PLUME__CONN_CLOSING | PLUME__CONN_WS))) {
    size_t n = size - off < chunk ? size - off : chunk;
    plume__http_on_data(c, (const char *)data + off, n);
    off += n;
    /* A parked request is answered between reads, as a session would; held
    ** input then resumes from a zero timer. */
    if (parked != NULL && (data[0] & 0x80)) {
      parked->owner = NULL;
      plume__http_respond(parked, 200, "text/plain", NULL, "6", 1);
      parked = NULL;
      uv_run(&loop, UV_RUN_NOWAIT);
      if (inst->nconns == 0)
        c = NULL; /* closed and freed during that turn */
    }
  }
  if (c != NULL)
    plume__conn_close(c, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

#ifdef PLUME_FUZZ_MAIN
/* A connection left behind fails the input; handles left on the loop fail the
** run. */
static int replay_failed(void) {
  if (inst != NULL &&
      (inst->nconns != 0 || inst->conns != NULL || inst->pending_closes != 0)) {
    fprintf(stderr, "fuzz_http: connection left behind\n");
    return 1;
  }
  return 0;
}

static int replay_done(void) {
  int bad = 0;
  if (inst != NULL) {
    if (uv_loop_close(&loop) != 0) {
      printf("not ok: handles left on the loop\n");
      bad = 1;
    }
    free(inst);
  }
  return bad;
}

#include "replay.h"
#endif
