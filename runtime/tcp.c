/*
** tcp.c: listeners, accepted connections and the write path. Below it is libuv;
** above it http.c (and websocket.c once a connection is upgraded). Output is
** queued as segments and flushed once per loop turn with one vectored write per
** connection; the connection cap and the per-connection output cap
** (spec/reliability.md §3.3, §4.7) are enforced here.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Private flags, above the PLUME__CONN_* bits that internal.h hands out. */
enum {
  CONN_EOF = 1 << 12,             /* the peer sent FIN: no need to linger */
  CONN_LINGER = 1 << 13,          /* output written, FIN sent: input dropped */
  CONN_HANDLES_CLOSING = 1 << 14, /* uv_close ran on both handles */
  CONN_ONE_CLOSED = 1 << 15,      /* one of the two close callbacks ran */
};

#define LISTEN_BACKLOG 511
#define DRAIN_TIMEOUT_MS                                                       \
  5000                     /* a draining peer that never reads is cut off      \
                            */
#define SCRATCH_KEEP 16384 /* larger scratch buffers are released when idle */
#define STACK_BUFS 64

/* A lingering close waits this long for the peer's FIN: long enough for a peer
** still sending a refused body or frame to read our last answer, short enough
** that lingering cannot hold connections (Apache lingers 2 s too). */
#define LINGER_MS 2000
/* Bytes a lingering close drops beyond one maximal request (linger_cap). */
#define LINGER_SLACK 65536

/* A uv_write in flight: it owns the scratch bytes and the shared references
** it sends. */
typedef struct write_req_s {
  uv_write_t req;
  plume__buf_t scratch;
  plume__seg_t *segs;
  uint32_t nsegs;
  size_t bytes; /* still counted in the connection's queued_bytes */
} write_req_t;

static void flush_conn(plume__conn_t *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ------------------------------------------------------------------------- */
/* Closing. A connection holds two handles (tcp, timer); it is freed once
** both close callbacks ran, never on the stack of whoever asked for the
** close. */

static void release_segs(plume__seg_t *segs, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++)
    if (segs[i].sh != NULL)
      plume__shared_unref(segs[i].sh);
}

static void unlink_dirty(plume__conn_t *c) {
  plume__conn_t **pp = &c->p->dirty;
  while (*pp != NULL && *pp != c)
    pp = &(*pp)->next_dirty;
  if (*pp == c)
    *pp = c->next_dirty;
  c->next_dirty = NULL;
  c->flags &= ~PLUME__CONN_DIRTY;
}

static void free_conn(plume__conn_t *c) {
  plume_t *p = c->p;
  /* Upper layers let go first; their upcalls may queue output on other
  ** connections. */
  if (c->ws != NULL)
    plume__ws_free(c);
  if (c->http != NULL)
    plume__http_free(c);
  if (c->flags & PLUME__CONN_DIRTY)
    unlink_dirty(c);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    p->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  p->nconns--;
  release_segs(c->segs, c->nsegs);
  free(c->segs);
  plume__buf_free(&c->scratch);
  free(c);
  /* Close callbacks run after the flusher in a loop turn: flush what they
  ** queued now. */
  if (p->dirty != NULL)
    plume__flush_all(p);
}

static void on_handle_closed(uv_handle_t *h) {
  plume__conn_t *c = h->data;
  c->p->pending_closes--;
  if (!(c->flags & CONN_ONE_CLOSED)) {
    c->flags |= CONN_ONE_CLOSED;
    return;
  }
  free_conn(c);
}

static void close_handles(plume__conn_t *c) {
  plume_t *p = c->p;
  c->flags |= CONN_HANDLES_CLOSING | PLUME__CONN_CLOSING;
  c->flags &= ~PLUME__CONN_DRAIN;
  release_segs(c->segs, c->nsegs);
  c->nsegs = 0;
  c->scratch.len = 0;
  c->queued_bytes = 0;
  p->pending_closes += 2;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_drain_timeout(uv_timer_t *t) {
  plume__conn_t *c = t->data;
  plume__log(c->p, PLUME__LOG_DEBUG, "tcp", "conn %u: drain timed out", c->id);
  plume__conn_close(c, 0);
}

/* Lingering (see close_written). A peer may have one maximal request (head
** and body, or a WebSocket message) in flight when we answer; more than that
** is not worth reading. */
static size_t linger_cap(const plume_options_t *o) {
  size_t body = (size_t)(o->max_body_bytes > o->max_http_buffer_size
                             ? o->max_body_bytes
                             : o->max_http_buffer_size);
  return (size_t)o->max_header_bytes + body + LINGER_SLACK;
}

static void on_linger_timeout(uv_timer_t *t) {
  plume__conn_t *c = t->data;
  plume__log(c->p, PLUME__LOG_DEBUG, "tcp", "conn %u: linger timed out", c->id);
  close_handles(c);
}

/* Input of a lingering connection: dropped until EOF, an error or the cap. */
static void linger_read(plume__conn_t *c, ssize_t nread) {
  if (nread == UV_ENOBUFS || nread == 0)
    return;
  if (nread > 0) {
    c->lingered += (size_t)nread;
    if (c->lingered <= linger_cap(&c->p->opts))
      return;
    plume__log(c->p, PLUME__LOG_DEBUG, "tcp",
               "conn %u: %zu bytes while lingering, closed", c->id,
               c->lingered);
  }
  close_handles(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  plume__conn_t *c = req->handle->data;
  free(req);
  /* Cancelled by uv_close, or no FIN could be sent: nothing to wait for. */
  if (status < 0 && !(c->flags & CONN_HANDLES_CLOSING))
    close_handles(c);
}

/*
** Ends a connection whose output is all written. Closing a socket with input
** still unread makes the kernel send RST, which can destroy the answer before
** the peer reads it (a 413 sent before the body, a close frame 1009 sent
** before the rest of the message). So, unless the peer already sent FIN or the
** server is shutting down: send FIN (uv_shutdown), read and drop input until
** the peer's FIN, at most LINGER_MS and linger_cap bytes, then close.
*/
static void close_written(plume__conn_t *c) {
  uv_shutdown_t *req;
  c->flags &= ~PLUME__CONN_DRAIN;
  if ((c->flags & CONN_EOF) || c->p->closing ||
      (req = malloc(sizeof(*req))) == NULL) {
    close_handles(c);
    return;
  }
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    close_handles(c);
    return;
  }
  c->flags |= CONN_LINGER;
  c->lingered = 0;
  uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    close_handles(c); /* the pending shutdown is cancelled and freed */
}

void plume__conn_close(plume__conn_t *c, int drain) {
  if (c->flags & CONN_HANDLES_CLOSING)
    return;
  if (!(c->flags & PLUME__CONN_CLOSING)) {
    c->flags |= PLUME__CONN_CLOSING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (c->owner != NULL) {
      plume__eio_conn_closed(c);
      c->owner = NULL;
    }
    if (c->flags & CONN_HANDLES_CLOSING)
      return; /* the upcall closed us without draining */
  }
  /* Already draining or lingering: an abort, or shutdown, cuts it short. */
  if (drain && (c->flags & PLUME__CONN_DRAIN))
    return;
  if (drain && (c->flags & CONN_LINGER) && !c->p->closing)
    return;
  if (!drain || (c->flags & CONN_LINGER)) {
    close_handles(c);
    return;
  }
  if (c->nsegs > 0 || (c->flags & PLUME__CONN_WRITING)) {
    c->flags |= PLUME__CONN_DRAIN;
    uv_timer_start(&c->timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
    /* Nothing more joins this output: write it now, not at the flusher,
    ** which can be a whole poll away when the close comes from a timer.
    ** Left on p->dirty, c gives the flusher nothing more to do. */
    flush_conn(c);
    return;
  }
  close_written(c);
}

/* ------------------------------------------------------------------------- */
/* Output. Small bytes are copied into c->scratch; shared blocks are
** referenced. */

void plume__conn_mark_dirty(plume__conn_t *c) {
  if (c->flags & PLUME__CONN_DIRTY)
    return;
  c->flags |= PLUME__CONN_DIRTY;
  c->next_dirty = c->p->dirty;
  c->p->dirty = c;
}

/* Checks the output cap before n more bytes are queued; closes the slow
** reader. */
static int admit(plume__conn_t *c, size_t n) {
  size_t cap =
      (size_t)(c->p->opts.max_output_bytes > 0 ? c->p->opts.max_output_bytes
                                               : 0);
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  if (cap > 0 && (c->queued_bytes + n > cap || n > UINT32_MAX)) {
    plume__log(
        c->p, PLUME__LOG_WARN, "tcp",
        "conn %u: output backlog over %zu bytes, dropping the slow reader",
        c->id, cap);
    plume__conn_close(c, 0);
    return PLUME_ETOOBIG;
  }
  return 0;
}

static plume__seg_t *push_seg(plume__conn_t *c) {
  if (c->nsegs == c->segs_cap) {
    uint32_t cap = c->segs_cap ? c->segs_cap * 2 : 4;
    plume__seg_t *s = realloc(c->segs, cap * sizeof(*s));
    if (s == NULL)
      return NULL;
    c->segs = s;
    c->segs_cap = cap;
  }
  return &c->segs[c->nsegs++];
}

int plume__conn_write(plume__conn_t *c, const void *p, size_t n) {
  plume__seg_t *last;
  int err = admit(c, n);
  if (err != 0 || n == 0)
    return err;
  if (c->scratch.len + n > UINT32_MAX ||
      plume__buf_reserve(&c->scratch, n) != 0)
    goto oom;
  last = c->nsegs > 0 ? &c->segs[c->nsegs - 1] : NULL;
  if (last != NULL && last->sh == NULL &&
      last->off + last->len == c->scratch.len) {
    last->len += (uint32_t)n;
  } else {
    plume__seg_t *s = push_seg(c);
    if (s == NULL)
      goto oom;
    s->sh = NULL;
    s->off = (uint32_t)c->scratch.len;
    s->len = (uint32_t)n;
  }
  memcpy(c->scratch.p + c->scratch.len, p, n);
  c->scratch.len += n;
  c->queued_bytes += n;
  plume__conn_mark_dirty(c);
  return 0;
oom:
  plume__log(c->p, PLUME__LOG_ERROR, "tcp", "conn %u: out of memory", c->id);
  plume__conn_close(c, 0);
  return UV_ENOMEM;
}

int plume__conn_write_shared(plume__conn_t *c, plume__shared_t *sh, size_t off,
                             size_t n) {
  plume__seg_t *s;
  int err = admit(c, n);
  if (err != 0 || n == 0)
    return err;
  if (off > sh->len || n > sh->len - off)
    return UV_EINVAL;
  s = push_seg(c);
  if (s == NULL) {
    plume__conn_close(c, 0);
    return UV_ENOMEM;
  }
  s->sh = plume__shared_ref(sh);
  s->off = (uint32_t)off;
  s->len = (uint32_t)n;
  c->queued_bytes += n;
  plume__conn_mark_dirty(c);
  return 0;
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = plume__container_of(req, write_req_t, req);
  plume__conn_t *c = req->handle->data;
  release_segs(w->segs, w->nsegs);
  free(w->segs);
  plume__buf_free(&w->scratch);
  c->flags &= ~PLUME__CONN_WRITING;
  if (!(c->flags & CONN_HANDLES_CLOSING))
    c->queued_bytes -= w->bytes;
  free(w);
  if (c->flags & CONN_HANDLES_CLOSING)
    return; /* cancelled by uv_close */
  if (status < 0) {
    plume__log(c->p, PLUME__LOG_DEBUG, "tcp", "conn %u: write: %s", c->id,
               uv_strerror(status));
    plume__conn_close(c, 0);
    return;
  }
  /* Output queued meanwhile goes now: the flusher may be stopped during
  ** shutdown. */
  flush_conn(c);
}

/* Hands whatever uv_try_write left over to one uv_write, moving the buffers
** with it. */
static void queue_rest(plume__conn_t *c, uv_buf_t *bufs, uint32_t nbufs) {
  write_req_t *w = malloc(sizeof(*w));
  uint32_t i;
  int err;
  if (w == NULL) {
    plume__conn_close(c, 0);
    return;
  }
  w->scratch = c->scratch;
  w->segs = c->segs;
  w->nsegs = c->nsegs;
  w->bytes = 0;
  for (i = 0; i < nbufs; i++)
    w->bytes += bufs[i].len;
  memset(&c->scratch, 0, sizeof(c->scratch));
  c->segs = NULL;
  c->nsegs = c->segs_cap = 0;
  err = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
  if (err != 0) {
    release_segs(w->segs, w->nsegs);
    free(w->segs);
    plume__buf_free(&w->scratch);
    c->queued_bytes -= w->bytes;
    free(w);
    plume__conn_close(c, 0);
    return;
  }
  c->flags |= PLUME__CONN_WRITING;
}

static void flush_conn(plume__conn_t *c) {
  uv_buf_t small[STACK_BUFS], *bufs = small;
  uint32_t i, n = c->nsegs;
  size_t done;
  int r;
  if (c->flags & (CONN_HANDLES_CLOSING | PLUME__CONN_WRITING))
    return;
  if (n == 0) {
    if (c->flags & PLUME__CONN_DRAIN)
      close_written(c);
    return;
  }
  if (n > STACK_BUFS && (bufs = malloc(n * sizeof(*bufs))) == NULL) {
    plume__conn_close(c, 0);
    return;
  }
  for (i = 0; i < n; i++) {
    plume__seg_t *s = &c->segs[i];
    char *base = s->sh != NULL ? s->sh->data : c->scratch.p;
    bufs[i] = uv_buf_init(base + s->off, s->len);
  }
  r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (r == UV_EAGAIN || r == UV_ENOSYS) {
    r = 0;
  } else if (r < 0) {
    plume__log(c->p, PLUME__LOG_DEBUG, "tcp", "conn %u: write: %s", c->id,
               uv_strerror(r));
    plume__conn_close(c, 0);
    goto done;
  }
  done = (size_t)r;
  c->queued_bytes -= done;
  for (i = 0; i < n && done >= bufs[i].len; i++)
    done -= bufs[i].len;
  if (i == n) {
    release_segs(c->segs, n);
    c->nsegs = 0;
    c->scratch.len = 0;
    if (c->scratch.cap > SCRATCH_KEEP)
      plume__buf_free(&c->scratch);
    if (c->flags & PLUME__CONN_DRAIN)
      close_written(c);
    goto done;
  }
  bufs[i].base += done;
  bufs[i].len -= done;
  queue_rest(c, bufs + i, n - i);
done:
  if (bufs != small)
    free(bufs);
}

void plume__flush_all(plume_t *p) {
  plume__conn_t *c;
  /* flush_conn never marks a connection dirty again, so this ends. */
  while ((c = p->dirty) != NULL) {
    p->dirty = c->next_dirty;
    c->next_dirty = NULL;
    c->flags &= ~PLUME__CONN_DIRTY;
    flush_conn(c);
  }
}

/* ------------------------------------------------------------------------- */
/* Reading. Every connection reads into p->read_buf; layers above copy what
** they keep. */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  plume__conn_t *c = h->data;
  plume_t *p = c->p;
  if (p->read_buf_busy) {
    *buf = uv_buf_init(NULL, 0); /* libuv retries on the next turn */
    return;
  }
  *buf = uv_buf_init(p->read_buf, sizeof(p->read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  plume__conn_t *c = s->data;
  plume_t *p = c->p;
  if (c->flags & CONN_LINGER) {
    linger_read(c, nread);
    return;
  }
  if (nread == UV_EOF)
    c->flags |= CONN_EOF; /* a later drained close need not linger */
  if (nread > 0) {
    if (c->flags & PLUME__CONN_CLOSING)
      return;
    p->read_buf_busy = 1;
    if (c->flags & PLUME__CONN_WS)
      plume__ws_on_data(c, buf->base, (size_t)nread);
    else if (c->http != NULL)
      plume__http_on_data(c, buf->base, (size_t)nread);
    p->read_buf_busy = 0;
  } else if (nread == UV_EOF && !(c->flags & PLUME__CONN_WS) &&
             c->http != NULL) {
    plume__http_on_eof(c); /* a request may still be owed its answer */
  } else if (nread < 0 && nread != UV_ENOBUFS) {
    /* EOF: answers already queued still go out; a reset drops them. */
    plume__conn_close(c, nread == UV_EOF);
  }
}

void plume__conn_read(plume__conn_t *c, int on) {
  if (c->flags & PLUME__CONN_CLOSING)
    return;
  if (on) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->flags &= ~PLUME__CONN_READ_OFF;
  } else {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->flags |= PLUME__CONN_READ_OFF;
  }
}

void plume__conn_peer(plume__conn_t *c, char *buf, size_t len) {
  struct sockaddr_storage ss;
  char host[64];
  int n = sizeof(ss), port;
  if (len == 0)
    return;
  buf[0] = '\0';
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n) != 0)
    return;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, host, sizeof(host));
    port = ntohs(a->sin6_port);
    snprintf(buf, len, "[%s]:%d", host, port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, host, sizeof(host));
    port = ntohs(a->sin_port);
    snprintf(buf, len, "%s:%d", host, port);
  }
}

/* ------------------------------------------------------------------------- */
/* Listening and accepting. */

static void on_connection(uv_stream_t *server, int status) {
  plume__listener_t *l = plume__container_of(server, plume__listener_t, tcp);
  plume_t *p = l->p;
  plume__conn_t *c;
  if (status < 0) {
    plume__log(p, PLUME__LOG_WARN, "tcp", "accept: %s", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    /* Without memory for a connection, take it off the backlog and drop it. */
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t != NULL) {
      uv_tcp_init(p->loop, t);
      uv_accept(server, (uv_stream_t *)t);
      uv_close((uv_handle_t *)t, (uv_close_cb)free);
    }
    return;
  }
  c->p = p;
  c->id = ++p->next_conn_id;
  uv_tcp_init(p->loop, &c->tcp);
  uv_timer_init(p->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->next = p->conns;
  if (p->conns != NULL)
    p->conns->prev = c;
  p->conns = c;
  p->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    plume__conn_close(c, 0);
    return;
  }
  if (p->closing || (p->opts.max_connections > 0 &&
                     p->nconns > (uint32_t)p->opts.max_connections)) {
    plume__log(p, PLUME__LOG_WARN, "tcp",
               "conn %u: over max_connections (%d), closed", c->id,
               p->opts.max_connections);
    plume__conn_close(c, 0);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 60);
  if (plume__http_init(c) != 0) {
    plume__conn_close(c, 0);
    return;
  }
  plume__conn_read(c, 1);
}

static void on_listener_closed(uv_handle_t *h) {
  plume__listener_t *l = plume__container_of(h, plume__listener_t, tcp);
  l->p->pending_closes--;
  free(l);
}

/* Fills ss with host:port: a numeric address, or the first name resolution
** result. */
static int resolve(plume_t *p, const char *host, int port,
                   struct sockaddr_storage *ss) {
  struct addrinfo hints, *res;
  uv_getaddrinfo_t req;
  int err;
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  err = uv_getaddrinfo(p->loop, &req, NULL, host, NULL, &hints);
  if (err != 0)
    return err;
  res = req.addrinfo;
  if (res == NULL || res->ai_addrlen > sizeof(*ss)) {
    uv_freeaddrinfo(res);
    return UV_EAI_NONAME;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  return 0;
}

int plume__tcp_listen(plume_t *p, const char *host, int port) {
  struct sockaddr_storage ss;
  plume__listener_t *l;
  int err;
  if (port < 0 || port > 65535)
    return UV_EINVAL;
  err = resolve(p, host, port, &ss);
  if (err != 0)
    return err;
  l = calloc(1, sizeof(*l));
  if (l == NULL)
    return UV_ENOMEM;
  l->p = p;
  uv_tcp_init(p->loop, &l->tcp);
  err = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
  if (err != 0) {
    p->pending_closes++;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    return err;
  }
  l->next = p->listeners;
  p->listeners = l;
  return 0;
}

void plume__tcp_close_all(plume_t *p) {
  plume__listener_t *l;
  plume__conn_t *c;
  while ((l = p->listeners) != NULL) {
    p->listeners = l->next;
    p->pending_closes++;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
  }
  /* Closing unlinks nothing until the close callbacks, so the walk is
  ** stable. */
  for (c = p->conns; c != NULL; c = c->next)
    plume__conn_close(c, 1);
}
