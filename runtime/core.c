/*
** core.c: the plume_t lifecycle (owned or borrowed uv_loop_t), the
** once-per-turn output flush, graceful shutdown and logging (levels, text or
** JSON lines, per-subsystem debug, the access log). The layers hang off this
** instance: tcp.c (connections), engineio.c (servers at paths), lua_bridge.c
** (the Lua state), reload.c (the watcher).
*/
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ------------------------------------------------------------------------- */
/* {====== Logging */

static const char *level_names[] = {"error", "warn", "info", "debug"};

/* The level named s; -1 for a name that is none. */
static int parse_level(const char *s) {
  int i;
  for (i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

/* 1 when subsystem is a word of list ("http,socketio", "http socketio"), or
** list names "all" or "*". */
static int listed(const char *list, const char *subsystem) {
  size_t n = strlen(subsystem);
  const char *s = list;
  while (*s != '\0') {
    size_t k = strcspn(s, ", ");
    if ((k == n && strncmp(s, subsystem, n) == 0) ||
        (k == 3 && strncmp(s, "all", 3) == 0) || (k == 1 && *s == '*'))
      return 1;
    s += k;
    s += strspn(s, ", ");
  }
  return 0;
}

int plume__log_enabled(plume_t *p, int level, const char *subsystem) {
  if (p == NULL || level <= p->log_level)
    return 1;
  return level == PLUME__LOG_DEBUG && p->opts.debug[0] != '\0' &&
         listed(p->opts.debug, subsystem);
}

/* Appends the line's time stamp, ISO 8601 in UTC with milliseconds. */
static void append_time(plume__buf_t *b) {
  char when[32];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  plume__buf_appendf(b, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}

/* Appends n bytes for a text line: control characters become '?', so that
** nothing a client sends can forge a line of its own. */
static void append_text(plume__buf_t *b, const char *s, size_t n) {
  size_t i;
  if (plume__buf_reserve(b, n) != 0)
    return;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    b->p[b->len++] = (char)(ch < 0x20 && ch != '\t' ? '?' : ch);
  }
}

/* Starts a line: the time, level and subsystem, as text or as the first JSON
** members. */
static void begin_line(plume_t *p, plume__buf_t *b, int level,
                       const char *subsystem) {
  if (p != NULL && p->log_json) {
    plume__buf_append(b, "{\"time\":\"", 9);
    append_time(b);
    plume__buf_appendf(
        b, "\",\"level\":\"%s\",\"subsystem\":", level_names[level]);
    plume__json_write_string(b, subsystem, strlen(subsystem));
  } else {
    append_time(b);
    plume__buf_appendf(b, " %-5s %-8s ", level_names[level], subsystem);
  }
}

/* Ends the line and writes it with one call, so lines never interleave. */
static void end_line(plume_t *p, plume__buf_t *b) {
  if (p != NULL && p->log_json)
    plume__buf_appendc(b, '}');
  plume__buf_appendc(b, '\n');
  if (b->p != NULL)
    fwrite(b->p, 1, b->len, stderr);
  plume__buf_free(b);
}

void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) {
  char msg[2048];
  plume__buf_t b = {NULL, 0, 0};
  va_list ap;
  int n;
  if (!plume__log_enabled(p, level, subsystem))
    return;
  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(msg))
    n = sizeof(msg) - 1;
  begin_line(p, &b, level, subsystem);
  if (p != NULL && p->log_json) {
    plume__buf_append(&b, ",\"message\":", 11);
    plume__json_write_string(&b, msg, (size_t)n);
  } else {
    /* Multi-line messages (tracebacks) keep their newlines. */
    plume__buf_append(&b, msg, (size_t)n);
  }
  end_line(p, &b);
}

void plume__log_access(plume_t *p, const char *kind, const char *method,
                       plume_slice_t path, int status, size_t bytes,
                       uint64_t start_ns) {
  plume__buf_t b = {NULL, 0, 0};
  double ms;
  if (p == NULL || !p->opts.access_log ||
      !plume__log_enabled(p, PLUME__LOG_INFO, "access"))
    return;
  ms = start_ns != 0 ? (double)(uv_hrtime() - start_ns) / 1e6 : 0.0;
  begin_line(p, &b, PLUME__LOG_INFO, "access");
  if (p->log_json) {
    plume__buf_appendf(&b, ",\"kind\":\"%s\",\"method\":", kind);
    plume__json_write_string(&b, method, strlen(method));
    plume__buf_append(&b, ",\"path\":", 8);
    plume__json_write_string(&b, path.p != NULL ? path.p : "", path.n);
    plume__buf_appendf(&b, ",\"status\":%d,\"bytes\":%zu,\"duration_ms\":%.3f",
                       status, bytes, ms);
  } else {
    plume__buf_appendf(&b, "%s %s ", kind, method);
    append_text(&b, path.p != NULL ? path.p : "", path.n);
    if (strcmp(kind, "http") == 0)
      plume__buf_appendf(&b, " %d %zuB %.3fms", status, bytes, ms);
    else
      plume__buf_appendf(&b, " %d %.3fms", status, ms);
  }
  end_line(p, &b);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Lifecycle */

static void on_flush(uv_check_t *h) {
  plume_t *p = plume__container_of(h, plume_t, flusher);
  plume__flush_all(p);
  plume__ws_sweep(p);
}

int plume_new(plume_t **out, uv_loop_t *loop, const plume_options_t *o) {
  return plume__new(out, loop, o, NULL);
}

int plume__new(plume_t **out, uv_loop_t *loop, const plume_options_t *o,
               lua_State *L) {
  plume_t *p;
  int err;
  *out = NULL;
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  if (o != NULL)
    p->opts = *o;
  else
    plume_options_init(&p->opts);
  p->log_level = parse_level(p->opts.log_level);
  p->log_json = strcmp(p->opts.log_format, "json") == 0;
  if (p->log_level < 0) {
    p->log_level = PLUME__LOG_INFO;
    plume__log(p, PLUME__LOG_WARN, "core", "unknown log_level '%s': info",
               p->opts.log_level);
  }
  if (loop == NULL) {
    err = uv_loop_init(&p->own_loop);
    if (err != 0)
      goto fail;
    p->loop = &p->own_loop;
    p->owns_loop = 1;
  } else {
    p->loop = loop;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_check_init(p->loop, &p->flusher);
  uv_check_start(&p->flusher, on_flush);
  uv_unref((uv_handle_t *)&p->flusher);
  err = L != NULL ? plume__lua_borrow(p, L) : plume__lua_init(p);
  if (err != 0) {
    uv_close((uv_handle_t *)&p->flusher, NULL);
    uv_run(p->loop, UV_RUN_NOWAIT);
    if (p->owns_loop)
      uv_loop_close(&p->own_loop);
    goto fail;
  }
  *out = p;
  return 0;
fail:
  plume__buf_free(&p->lua_warn);
  free(p);
  return err;
}

int plume_listen(plume_t *p, const char *host, int port) {
  int err;
  if (p->closing)
    return PLUME_ESTATE;
  err = plume__tcp_listen(p, host, port);
  if (err == 0)
    plume__log(p, PLUME__LOG_INFO, "http", "listening on http://%s:%d", host,
               port);
  else
    plume__log(p, PLUME__LOG_ERROR, "http", "cannot listen on %s:%d: %s", host,
               port, plume_strerror(err));
  return err;
}

int plume_load_app(plume_t *p, const char *dir) {
  char pub[sizeof(p->public_dir)];
  uv_fs_t req;
  int err;
  if (p->closing)
    return PLUME_ESTATE;
  if (uv_fs_stat(NULL, &req, dir, NULL) != 0 || !S_ISDIR(req.statbuf.st_mode)) {
    uv_fs_req_cleanup(&req);
    plume__log(p, PLUME__LOG_ERROR, "app", "%s: not a folder", dir);
    return PLUME_ENOAPP;
  }
  uv_fs_req_cleanup(&req);
  if (snprintf(pub, sizeof(pub), "%s/public", dir) < (int)sizeof(pub) &&
      uv_fs_stat(NULL, &req, pub, NULL) == 0 && S_ISDIR(req.statbuf.st_mode))
    memcpy(p->public_dir, pub, sizeof(pub));
  uv_fs_req_cleanup(&req);
  err = plume__lua_load_app(p, dir);
  if (err == 0 && p->opts.watch) {
    int werr = plume__reload_watch(p, dir);
    if (werr != 0)
      plume__log(p, PLUME__LOG_WARN, "reload", "cannot watch %s: %s", dir,
                 plume_strerror(werr));
  }
  return err;
}

int plume_run(plume_t *p) {
  if (!p->owns_loop)
    return PLUME_ESTATE;
  uv_run(p->loop, UV_RUN_DEFAULT);
  return 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Graceful shutdown
** 1. stop accepting: listeners, the watcher and plume.after/every timers go;
** 2. drain: connections stay open so that calls in flight (p->lua_tasks) can
**    finish and answer, until they are done or shutdown_timeout has passed;
** 3. tell clients: the framework disconnects Socket.IO clients and tears
**    services down, Engine.IO servers close their sessions ("server shutting
**    down"), connections close once their output is written, and waits still
**    pending are cancelled;
** 4. once every connection and handle is gone, the close callback runs.
*/

static void on_handle_freed(uv_handle_t *h) {
  plume_t *p = h->data;
  p->pending_closes--;
  free(h);
}

static void on_closed_flusher(uv_handle_t *h) {
  plume_t *p = plume__container_of((uv_check_t *)h, plume_t, flusher);
  p->pending_closes--;
}

/* Step 4: polls every 5 ms until connections and handles are gone. */
static void on_close_poll(uv_timer_t *t) {
  plume_t *p = t->data;
  if (p->nconns > 0 || p->pending_closes > 1)
    return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, on_handle_freed);
  p->drain = NULL;
  if (p->close_cb != NULL)
    p->close_cb(p);
}

static void on_listener_closed(uv_handle_t *h) {
  plume__listener_t *l = plume__container_of(h, plume__listener_t, tcp);
  l->p->pending_closes--;
  free(l);
}

/* Step 1: no new connections (existing keep-alive connections stay). */
static void close_listeners(plume_t *p) {
  plume__listener_t *l;
  while ((l = p->listeners) != NULL) {
    p->listeners = l->next;
    p->pending_closes++;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
  }
}

/* Step 3, second half, one loop turn after the framework's shutdown, so that
** the servers it closed (Socket.IO closes its Engine.IO server on its next
** turn) are gone: the Engine.IO servers left close their sessions, and
** connections close once their output is written. */
static void on_final(uv_timer_t *t) {
  plume_t *p = t->data;
  plume__eio_server_t *srv;
  while ((srv = p->eio_servers) != NULL)
    plume__eio_server_free(srv);
  plume__tcp_close_all(p);
  plume__flush_all(p);
  uv_check_stop(&p->flusher);
  p->pending_closes++;
  uv_close((uv_handle_t *)&p->flusher, on_closed_flusher);
  uv_timer_start(t, on_close_poll, 0, 5);
}

/* Step 3, first half: the framework disconnects clients and tears services
** down; waits still pending are cancelled. */
static void finish_close(plume_t *p) {
  p->drain_deadline = 0;
  if (p->lua_tasks > 0)
    plume__log(p, PLUME__LOG_WARN, "core",
               "shutdown: %d call(s) still running after %d ms, abandoned",
               p->lua_tasks, p->opts.shutdown_timeout);
  plume__lua_shutdown(p);
  plume__async_cancel_all(p);
  plume__embed_cancel_all(p);
  uv_timer_start(p->drain, on_final, 0, 0);
}

/* Step 2: checks every 10 ms (and at once when a task ends, see
** plume__drain_check). */
static void on_drain(uv_timer_t *t) {
  plume_t *p = t->data;
  if (p->lua_tasks > 0 && uv_now(p->loop) < p->drain_deadline) {
    uv_timer_start(t, on_drain, 10, 0);
    return;
  }
  finish_close(p);
}

void plume__drain_check(plume_t *p) {
  /* Never on the caller's stack: it may be in a layer that shutdown frees. */
  if (p->drain != NULL && p->drain_deadline != 0 && p->lua_tasks == 0)
    uv_timer_start(p->drain, on_drain, 0, 0);
}

void plume_close(plume_t *p, void (*cb)(plume_t *p)) {
  if (p->closing)
    return;
  p->closing = 1;
  p->close_cb = cb;
  close_listeners(p);
  plume__reload_stop(p);
  plume__async_stop_timers(p);
  p->drain = malloc(sizeof(*p->drain));
  if (p->drain == NULL) {
    /* Without a timer nothing can wait: close what can be closed now. */
    plume__tcp_close_all(p);
    return;
  }
  uv_timer_init(p->loop, p->drain);
  p->drain->data = p;
  p->pending_closes++;
  if (p->lua_tasks > 0 && p->opts.shutdown_timeout > 0) {
    plume__log(p, PLUME__LOG_INFO, "core",
               "shutting down: %d call(s) in flight, waiting up to %d ms",
               p->lua_tasks, p->opts.shutdown_timeout);
    p->drain_deadline = uv_now(p->loop) + (uint64_t)p->opts.shutdown_timeout;
    uv_timer_start(p->drain, on_drain, 10, 0);
    return;
  }
  finish_close(p);
}

void plume_destroy(plume_t *p) {
  if (p == NULL)
    return;
  plume__lua_close(p);
  if (p->owns_loop) {
    uv_run(p->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(p->loop) != 0)
      plume__log(p, PLUME__LOG_WARN, "core", "loop closed with live handles");
  }
  plume__buf_free(&p->lua_warn);
  plume__static_free(p);
  free(p);
}

/* }====== */

uv_loop_t *plume_loop(plume_t *p) {
  return p->loop;
}
lua_State *plume_lua(plume_t *p) {
  return p->L;
}
