/*
** core.c: the plume_t lifecycle (owned or borrowed uv_loop_t), the once-per-turn output
** flush, shutdown and logging. The layers hang off this instance: tcp.c (connections),
** engineio.c (servers at paths), lua_bridge.c (the Lua state).
*/
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char *level_names[] = {"error", "warn", "info", "debug"};

static int parse_level(const char *s) {
  int i;
  for (i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0)
      return i;
  return PLUME__LOG_INFO;
}

/* Writes s as a JSON string body (without quotes). */
static void json_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
}

void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) {
  char msg[2048], when[32];
  va_list ap;
  struct timespec ts;
  struct tm tm;
  if (p != NULL && level > p->log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  if (p != NULL && p->log_json) {
    fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"subsystem\":\"",
            when, ts.tv_nsec / 1000000, level_names[level]);
    json_escape(stderr, subsystem);
    fputs("\",\"message\":\"", stderr);
    json_escape(stderr, msg);
    fputs("\"}\n", stderr);
  } else {
    fprintf(stderr, "%s.%03ldZ %-5s %-8s %s\n", when, ts.tv_nsec / 1000000,
            level_names[level], subsystem, msg);
  }
}

static void on_flush(uv_check_t *h) {
  plume__flush_all(plume__container_of(h, plume_t, flusher));
}

static void on_pre_flush(uv_prepare_t *h) {
  plume__flush_all(plume__container_of(h, plume_t, pre_flusher));
}

int plume_new(plume_t **out, uv_loop_t *loop, const plume_options_t *o) {
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
  uv_prepare_init(p->loop, &p->pre_flusher);
  uv_prepare_start(&p->pre_flusher, on_pre_flush);
  uv_unref((uv_handle_t *)&p->pre_flusher);
  err = plume__lua_init(p);
  if (err != 0) {
    uv_close((uv_handle_t *)&p->flusher, NULL);
    uv_close((uv_handle_t *)&p->pre_flusher, NULL);
    uv_run(p->loop, UV_RUN_NOWAIT);
    if (p->owns_loop)
      uv_loop_close(&p->own_loop);
    goto fail;
  }
  *out = p;
  return 0;
fail:
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
  return plume__lua_load_app(p, dir);
}

int plume_run(plume_t *p) {
  if (!p->owns_loop)
    return PLUME_ESTATE;
  uv_run(p->loop, UV_RUN_DEFAULT);
  return 0;
}

/* Shutdown waits for connections and handles to go, checking each loop turn. */
static void on_closed_flusher(uv_handle_t *h) {
  plume_t *p = h->data;
  p->pending_closes--;
}

static void on_close_poll(uv_timer_t *t) {
  plume_t *p = t->data;
  if (p->nconns > 0 || p->pending_closes > 1)
    return;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
  p->pending_closes--;
  if (p->close_cb != NULL)
    p->close_cb(p);
}

void plume_close(plume_t *p, void (*cb)(plume_t *p)) {
  uv_timer_t *poll;
  plume__eio_server_t *srv;
  if (p->closing)
    return;
  p->closing = 1;
  p->close_cb = cb;
  while ((srv = p->eio_servers) != NULL)
    plume__eio_server_free(srv);
  plume__tcp_close_all(p);
  plume__flush_all(p);
  poll = malloc(sizeof(*poll));
  if (poll != NULL) {
    uv_timer_init(p->loop, poll);
    poll->data = p;
    p->pending_closes++;
    uv_timer_start(poll, on_close_poll, 0, 5);
  }
  uv_check_stop(&p->flusher);
  uv_prepare_stop(&p->pre_flusher);
  p->flusher.data = p->pre_flusher.data = p;
  p->pending_closes += 2;
  uv_close((uv_handle_t *)&p->flusher, on_closed_flusher);
  uv_close((uv_handle_t *)&p->pre_flusher, on_closed_flusher);
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
  free(p);
}

uv_loop_t *plume_loop(plume_t *p) { return p->loop; }
lua_State *plume_lua(plume_t *p) { return p->L; }
