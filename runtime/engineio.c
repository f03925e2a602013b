/*
** engineio.c: Engine.IO v4 and v3 sessions: request validation, handshake,
** long-polling, the WebSocket transport, the upgrade, heartbeat, the sid table.
** Below: http.c and websocket.c; above: socketio.c or the Lua seam, through
** plume__eio_handler_t. The wire codec is engineio_codec.c. Implements
** protocol.md §2.1-§2.12, §6, §7 and reliability.md §1.1, §4.2.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "internal.h"

#define SID_MAX 64     /* generate_id may write up to 63 characters */
#define ORIGIN_MAX 512 /* longer Origin values are never echoed back */
#define ACRH_MAX 1024  /* longer Access-Control-Request-Headers: not copied */

enum { S_OPEN, S_CLOSING, S_CLOSED };

enum {
  SF_OWED = 1 << 0,      /* on_open ran, so one on_close is owed */
  SF_NOTIFY = 1 << 1,    /* on_close due at the next timer run (clean stack) */
  SF_FLUSH = 1 << 2,     /* packets wait for the parked GET: one flush a turn */
  SF_UPGRADING = 1 << 3, /* the probe was answered: GETs get a noop at once */
  SF_POLL_B64 = 1 << 4,  /* v3 polling client sent b64=1: no binary payloads */
  SF_WS_B64 = 1 << 5,    /* v3 WebSocket client sent b64=1: binary as text */
  SF_RELEASED = 1 << 6,  /* the timer is closing; freed in its callback */
};

/* Sessions by sid: open addressing with linear probing and backward-shift
** deletion, so a lookup allocates nothing and deletions leave no tombstones.
** Kept at most half full. */
typedef struct sid_table_s {
  plume__eio_session_t **slots;
  uint32_t mask; /* capacity - 1; slots is NULL until the first insert */
  uint32_t count;
} sid_table_t;

/* One Engine.IO endpoint. Owned by p (p->eio_servers); owns its sessions. */
struct plume__eio_server_s {
  plume_t *p;
  plume__eio_server_t *next; /* p->eio_servers */
  plume__eio_config_t cfg;   /* cors_origins are our own copies */
  size_t path_len;
  plume__eio_handler_t h;
  void *ud;
  sid_table_t table;              /* open and closing sessions */
  plume__eio_session_t *sessions; /* every session not yet freed */
};

/*
** One Engine.IO session. Owned by its server; freed only in its timer's close
** callback, never on a stack that may still use it. Connections point to it
** through c->owner while it holds them (get, post, ws, probe); it clears those
** links whenever it lets go.
*/
struct plume__eio_session_s {
  plume_t *p;
  plume__eio_server_t *srv;          /* NULL once the server is freed */
  void *ud;                          /* the layer above */
  plume__eio_session_t *prev, *next; /* srv->sessions */
  /* The one timer: heartbeat, upgrade and close deadlines, and deferred work
  ** (flush, on_close, release). */
  uv_timer_t timer;
  plume__conn_t *get;   /* the parked polling GET */
  plume__conn_t *post;  /* the polling POST whose body is being read */
  plume__conn_t *ws;    /* the WebSocket transport */
  plume__conn_t *probe; /* the upgrade candidate */
  plume__eio_qent_t *q; /* packets waiting for a GET or the upgrade's end */
  uint32_t nq, qcap;
  size_t qbytes;
  uint64_t ping_at;    /* v4: the next ping; 0 while a pong is due */
  uint64_t timeout_at; /* v4: pong deadline; v3: ping deadline */
  uint64_t upgrade_at; /* the candidate must finish by then */
  uint64_t close_at;   /* S_CLOSING: stop waiting for a GET (closeTimeout) */
  uint32_t hash;       /* of sid */
  uint8_t sid_len, proto, transport, state, flags;
  char reason[32];
  char sid[SID_MAX];
  plume__http_req_t hs; /* the handshake request, copied after the struct */
  char *remote;         /* peer address without the port */
};

static void on_timer(uv_timer_t *t);
static void close_session(plume__eio_session_t *s, const char *reason,
                          int flush);
static void ws_message(plume__conn_t *c, int binary, const char *p, size_t n);
static void ws_closed(plume__conn_t *c, int code);

static const plume__ws_handler_t ws_handler = {ws_message, ws_closed};

static const char *const error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version"};

/* ------------------------------------------------------------------------- */
/* {====== The sid table */

static uint32_t hash_sid(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

static plume__eio_session_t *table_find(const sid_table_t *t, const char *sid,
                                        size_t n) {
  uint32_t h, i;
  if (t->slots == NULL)
    return NULL;
  h = hash_sid(sid, n);
  for (i = h & t->mask; t->slots[i] != NULL; i = (i + 1) & t->mask) {
    plume__eio_session_t *s = t->slots[i];
    if (s->hash == h && s->sid_len == n && memcmp(s->sid, sid, n) == 0)
      return s;
  }
  return NULL;
}

static void place(plume__eio_session_t **slots, uint32_t mask,
                  plume__eio_session_t *s) {
  uint32_t i = s->hash & mask;
  while (slots[i] != NULL)
    i = (i + 1) & mask;
  slots[i] = s;
}

/* Makes room for one more session. Returns 0 or UV_ENOMEM. */
static int table_reserve(sid_table_t *t) {
  uint32_t cap = t->slots != NULL ? t->mask + 1 : 0, ncap, i;
  plume__eio_session_t **slots;
  if ((t->count + 1) * 2 <= cap)
    return 0;
  if (cap > UINT32_MAX / 4)
    return UV_ENOMEM;
  ncap = cap != 0 ? cap * 2 : 16;
  slots = calloc(ncap, sizeof(*slots));
  if (slots == NULL)
    return UV_ENOMEM;
  for (i = 0; i < cap; i++)
    if (t->slots[i] != NULL)
      place(slots, ncap - 1, t->slots[i]);
  free(t->slots);
  t->slots = slots;
  t->mask = ncap - 1;
  return 0;
}

static void table_remove(sid_table_t *t, plume__eio_session_t *s) {
  uint32_t i, j, k;
  if (t->slots == NULL)
    return;
  for (i = s->hash & t->mask; t->slots[i] != s; i = (i + 1) & t->mask)
    if (t->slots[i] == NULL)
      return; /* not in the table (already removed) */
  /* Pull back every later entry of the run that may sit at i. */
  for (j = i;;) {
    j = (j + 1) & t->mask;
    if (t->slots[j] == NULL)
      break;
    k = t->slots[j]->hash & t->mask;
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
      continue; /* its home lies between the hole and it: it must stay */
    t->slots[i] = t->slots[j];
    i = j;
  }
  t->slots[i] = NULL;
  t->count--;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Requests: query, headers, error answers */

/* Response headers built per answer; sized so that the capped values always
** fit. */
typedef struct hdrs_s {
  char b[2048];
  size_t n;
} hdrs_t;

static void hdrs_add(hdrs_t *h, const char *a, size_t n) {
  if (h->n + n < sizeof(h->b)) {
    memcpy(h->b + h->n, a, n);
    h->n += n;
    h->b[h->n] = '\0';
  }
}

#define HDRS_LIT(h, lit) hdrs_add((h), lit, sizeof(lit) - 1)

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/*
** Finds name in the query string and percent-decodes its first value into buf
** (NUL- terminated). Returns how many times name occurs; *len gets the value's
** length, or -1 when it does not fit in cap - 1 bytes. Invalid escapes stay as
** they are (as in URLSearchParams).
*/
static int query_param(plume_slice_t q, const char *name, char *buf, size_t cap,
                       int *len) {
  size_t i = 0, nlen = strlen(name);
  int count = 0;
  *len = -1;
  buf[0] = '\0';
  while (i < q.n) {
    size_t start = i, eq, end, k, o = 0;
    while (i < q.n && q.p[i] != '&')
      i++;
    end = i++;
    for (eq = start; eq < end && q.p[eq] != '=';)
      eq++;
    if (eq - start != nlen || memcmp(q.p + start, name, nlen) != 0 ||
        count++ > 0)
      continue;
    for (k = eq + 1; k < end; k++) {
      char ch = q.p[k];
      if (ch == '+') {
        ch = ' ';
      } else if (ch == '%' && k + 2 < end && hex_value(q.p[k + 1]) >= 0 &&
                 hex_value(q.p[k + 2]) >= 0) {
        ch = (char)(hex_value(q.p[k + 1]) * 16 + hex_value(q.p[k + 2]));
        k += 2;
      }
      if (o + 1 >= cap)
        break;
      buf[o++] = ch;
    }
    buf[o] = '\0';
    *len = k < end ? -1 : (int)o;
  }
  return count;
}

static int slice_is(plume_slice_t s, const char *lit) {
  size_t n = strlen(lit);
  return s.p != NULL && s.n == n && memcmp(s.p, lit, n) == 0;
}

/* The reference rejects Origin values holding characters outside \t, 0x20-0x7E,
** 0x80-0xFF. */
static int origin_valid(plume_slice_t o) {
  size_t i;
  for (i = 0; i < o.n; i++) {
    unsigned char ch = (unsigned char)o.p[i];
    if (ch != '\t' && (ch < 0x20 || ch == 0x7F))
      return 0;
  }
  return 1;
}

/* Adds the CORS headers for a request (protocol.md §2.10); nothing when CORS is
** off. */
static void add_cors(const plume__eio_server_t *srv, const plume__http_req_t *r,
                     hdrs_t *h) {
  const plume__eio_config_t *cfg = &srv->cfg;
  plume_slice_t origin = {NULL, 0};
  int echo = 0, star = 0, vary = 0;
  char **o;
  if (!cfg->cors)
    return;
  if (r != NULL)
    origin = plume__http_header(r, "origin");
  if (origin.n > ORIGIN_MAX || !origin_valid(origin))
    origin.p = NULL;
  if (cfg->allow_origin != NULL) {
    vary = 1;
    echo = origin.p != NULL &&
           cfg->allow_origin(cfg->hook_ud, origin.p, origin.n) == 1;
  } else {
    star = cfg->cors_origins == NULL;
    for (o = cfg->cors_origins; o != NULL && *o != NULL && !star; o++) {
      if (strcmp(*o, "*") == 0)
        star = 1;
      else if (origin.p != NULL && slice_is(origin, *o))
        echo = 1;
    }
    vary = !star;
    /* Browsers refuse "*" with credentials, so echo the origin instead. */
    if (star && cfg->cors_credentials && origin.p != NULL) {
      star = 0;
      echo = vary = 1;
    }
  }
  if (star)
    HDRS_LIT(h, "Access-Control-Allow-Origin: *\r\n");
  if (echo) {
    HDRS_LIT(h, "Access-Control-Allow-Origin: ");
    hdrs_add(h, origin.p, origin.n);
    HDRS_LIT(h, "\r\n");
  }
  if (vary)
    HDRS_LIT(h, "Vary: Origin\r\n");
  if (cfg->cors_credentials && (star || echo))
    HDRS_LIT(h, "Access-Control-Allow-Credentials: true\r\n");
}

static void init_headers(const plume__eio_server_t *srv, plume__conn_t *c,
                         hdrs_t *h, int no_store) {
  h->n = 0;
  h->b[0] = '\0';
  add_cors(srv, plume__http_current(c), h);
  if (no_store)
    HDRS_LIT(h, "cache-control: no-store\r\n");
}

/* Writes s as the inside of a JSON string; returns the bytes written (dst needs
** 6n). */
static size_t json_escape(char *dst, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      dst[o++] = '\\';
      dst[o++] = (char)ch;
    } else if (ch < 0x20) {
      memcpy(dst + o, "\\u00", 4);
      dst[o + 4] = hex[ch >> 4];
      dst[o + 5] = hex[ch & 15];
      o += 6;
    } else {
      dst[o++] = (char)ch;
    }
  }
  return o;
}

/* An empty answer (400 on overlap, 413, 500 for other methods) with CORS
** headers. */
static void respond_status(const plume__eio_server_t *srv, plume__conn_t *c,
                           int status) {
  hdrs_t h;
  init_headers(srv, c, &h, 0);
  plume__http_respond(c, status, NULL, h.b, NULL, 0);
}

/*
** Refuses a request (protocol.md §2.2): polling gets 400 (403 for code 4) and a
** JSON body; an upgrade request gets a raw 400 and its connection is closed.
*/
static void refuse(const plume__eio_server_t *srv, plume__conn_t *c,
                   const plume__http_req_t *r, int code, const char *msg) {
  char body[64 + 6 * 200];
  size_t n, mlen;
  hdrs_t h;
  if (msg == NULL)
    msg = error_messages[code];
  mlen = strlen(msg);
  plume__log(srv->p, PLUME__LOG_DEBUG, "engineio", "conn %u: refused (%d %s)",
             c->id, code, msg);
  if (r->upgrade) { /* http.c adds Connection: close to an upgrade's answer */
    plume__http_respond(c, 400, "text/html", NULL, msg, mlen);
    plume__conn_close(c, 1);
    return;
  }
  n = (size_t)snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"", code);
  n += json_escape(body + n, msg, mlen > 200 ? 200 : mlen);
  memcpy(body + n, "\"}", 2);
  init_headers(srv, c, &h, 0);
  plume__http_respond(c, code == 4 ? 403 : 400, "application/json", h.b, body,
                      n + 2);
}

/* OPTIONS with CORS on: answered before any protocol check (§2.10). */
static void preflight(const plume__eio_server_t *srv, plume__conn_t *c,
                      const plume__http_req_t *r) {
  plume_slice_t acrh = plume__http_header(r, "access-control-request-headers");
  hdrs_t h;
  init_headers(srv, c, &h, 0);
  HDRS_LIT(&h,
           "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
  if (acrh.p != NULL && acrh.n > 0 && acrh.n <= ACRH_MAX) {
    HDRS_LIT(&h, "Access-Control-Allow-Headers: ");
    hdrs_add(&h, acrh.p, acrh.n);
    HDRS_LIT(&h, "\r\n");
  }
  /* http.c writes no Content-Length on a 204; the cors module sends 0. */
  HDRS_LIT(&h, "Vary: Access-Control-Request-Headers\r\nContent-Length: 0\r\n");
  plume__http_respond(c, 204, NULL, h.b, NULL, 0);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Session lifetime: timer, close, release */

static uint64_t now_ms(const plume__eio_session_t *s) {
  return uv_now(s->p->loop);
}

/* Arms the one timer at the nearest deadline, or at once for deferred work. */
static void arm_timer(plume__eio_session_t *s) {
  uint64_t when = 0, now, d[4];
  size_t i;
  if (s->flags & SF_RELEASED)
    return;
  if (s->state == S_CLOSED || (s->flags & (SF_NOTIFY | SF_FLUSH))) {
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return;
  }
  d[0] = s->ping_at;
  d[1] = s->timeout_at;
  d[2] = s->upgrade_at;
  d[3] = s->close_at;
  for (i = 0; i < 4; i++)
    if (d[i] != 0 && (when == 0 || d[i] < when))
      when = d[i];
  if (when == 0) {
    uv_timer_stop(&s->timer);
    return;
  }
  now = now_ms(s);
  uv_timer_start(&s->timer, on_timer, when > now ? when - now : 0, 0);
}

static void queue_clear(plume__eio_session_t *s) {
  uint32_t i;
  for (i = 0; i < s->nq; i++)
    plume__shared_unref(s->q[i].sh);
  s->nq = 0;
  s->qbytes = 0;
}

static void on_timer_closed(uv_handle_t *h) {
  plume__eio_session_t *s =
      plume__container_of((uv_timer_t *)h, plume__eio_session_t, timer);
  s->p->pending_closes--;
  if (s->srv != NULL) {
    if (s->prev != NULL)
      s->prev->next = s->next;
    else
      s->srv->sessions = s->next;
    if (s->next != NULL)
      s->next->prev = s->prev;
  }
  queue_clear(s);
  free(s->q);
  free(s);
}

/* Starts freeing a closed session: the memory goes in the timer's close
** callback. */
static void release(plume__eio_session_t *s) {
  if (s->flags & SF_RELEASED)
    return;
  s->flags |= SF_RELEASED;
  uv_timer_stop(&s->timer);
  s->p->pending_closes++;
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void notify_close(plume__eio_session_t *s) {
  s->flags &= ~SF_NOTIFY;
  if (s->srv != NULL && s->srv->h.on_close != NULL)
    s->srv->h.on_close(s, s->reason);
}

static void set_reason(plume__eio_session_t *s, const char *reason) {
  if (reason != NULL)
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* Marks the session as closing for the layer above: on_close runs from the
** timer. */
static void owe_notify(plume__eio_session_t *s) {
  if (s->flags & SF_OWED)
    s->flags = (uint8_t)((s->flags & ~SF_OWED) | SF_NOTIFY);
}

/* Drops the upgrade candidate; polling goes on as before. */
static void drop_probe(plume__eio_session_t *s) {
  plume__conn_t *c = s->probe;
  s->flags &= ~SF_UPGRADING;
  s->upgrade_at = 0;
  if (c == NULL)
    return;
  s->probe = NULL;
  c->owner = NULL;
  plume__ws_close(c, 0);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Output: the queue, polling payloads, WebSocket frames */

/* Writes one packet as one WebSocket message (zero copy; v3 binary gets its
** type byte). */
static int ws_write(const plume__eio_session_t *s, plume__conn_t *c, int binary,
                    plume__shared_t *sh) {
  plume__shared_t *b;
  int err;
  if (!binary)
    return plume__ws_send(c, 0, NULL, 0, sh, 0, sh->len);
  if (s->proto == 4)
    return plume__ws_send(c, 1, NULL, 0, sh, 0, sh->len);
  if (!(s->flags & SF_WS_B64))
    return plume__ws_send(c, 1, "\x04", 1, sh, 0, sh->len);
  b = plume__shared_alloc(plume__base64_len(sh->len));
  if (b == NULL)
    return UV_ENOMEM;
  b->len = (uint32_t)plume__base64_encode(
      b->data, (const unsigned char *)sh->data, sh->len);
  err = plume__ws_send(c, 0, "b4", 2, b, 0, b->len);
  plume__shared_unref(b);
  return err;
}

static int queue_append(plume__eio_session_t *s, int binary,
                        plume__shared_t *sh) {
  if (s->nq == s->qcap) {
    uint32_t ncap = s->qcap != 0 ? s->qcap * 2 : 4;
    plume__eio_qent_t *q = realloc(s->q, ncap * sizeof(*q));
    if (q == NULL) {
      plume__shared_unref(sh);
      return UV_ENOMEM;
    }
    s->q = q;
    s->qcap = ncap;
  }
  s->q[s->nq].sh = sh;
  s->q[s->nq].binary = (uint8_t)binary;
  s->nq++;
  s->qbytes += sh->len;
  return 0;
}

/*
** Sends one packet (consumes the caller's reference): straight to the WebSocket
** when that is the transport, else into the queue, flushed to a parked GET once
** per loop turn so that packets sent together leave in one payload.
*/
static int push(plume__eio_session_t *s, int binary, plume__shared_t *sh) {
  int err;
  if (s->transport == PLUME__EIO_WEBSOCKET && s->ws != NULL) {
    err = ws_write(s, s->ws, binary, sh);
    plume__shared_unref(sh);
    if (err != 0) {
      close_session(s, "transport error", 0);
      return PLUME_ECLOSED;
    }
    return 0;
  }
  err = queue_append(s, binary, sh);
  if (err == 0 && s->get != NULL && !(s->flags & SF_FLUSH)) {
    s->flags |= SF_FLUSH;
    arm_timer(s);
  }
  return err;
}

static int push_text(plume__eio_session_t *s, const char *p, size_t n) {
  plume__shared_t *sh;
  if (s->transport == PLUME__EIO_WEBSOCKET && s->ws != NULL) {
    if (plume__ws_send(s->ws, 0, p, n, NULL, 0, 0) != 0) {
      close_session(s, "transport error", 0);
      return PLUME_ECLOSED;
    }
    return 0;
  }
  sh = plume__shared_new(p, n);
  return sh != NULL ? push(s, 0, sh) : UV_ENOMEM;
}

/*
** Encodes the queue plus the one-character packets of tail ("1", "6", "61") as
** one payload and empties the queue. A lone v4 text packet goes out as is,
** without a copy. Returns NULL on OOM.
*/
static plume__shared_t *take_payload(plume__eio_session_t *s, const char *tail,
                                     const char **ct) {
  plume__shared_t *body = NULL;
  int kind = PLUME__EIO_PAYLOAD_V4;
  uint32_t i;
  for (; *tail != '\0'; tail++) {
    plume__shared_t *sh = plume__shared_new(tail, 1);
    if (sh == NULL || queue_append(s, 0, sh) != 0) {
      queue_clear(s);
      return NULL;
    }
  }
  if (s->proto == 3) {
    kind = PLUME__EIO_PAYLOAD_V3_TEXT;
    for (i = 0; i < s->nq && !(s->flags & SF_POLL_B64); i++)
      if (s->q[i].binary)
        kind = PLUME__EIO_PAYLOAD_V3_BINARY;
  }
  *ct = kind == PLUME__EIO_PAYLOAD_V3_BINARY ? "application/octet-stream"
                                             : "text/plain; charset=UTF-8";
  if (kind == PLUME__EIO_PAYLOAD_V4 && s->nq == 1 && !s->q[0].binary) {
    body = plume__shared_ref(s->q[0].sh);
  } else {
    body = plume__shared_alloc(plume__eio_payload_size(kind, s->q, s->nq));
    if (body != NULL)
      body->len =
          (uint32_t)plume__eio_payload_encode(kind, s->q, s->nq, body->data);
  }
  queue_clear(s);
  s->flags &= ~SF_FLUSH;
  return body;
}

/* Answers a polling GET with a payload (consumes body; NULL means OOM: 500). */
static void answer_get(const plume__eio_server_t *srv, plume__conn_t *c,
                       plume__shared_t *body, const char *ct) {
  hdrs_t h;
  init_headers(srv, c, &h, 1);
  if (body == NULL) {
    plume__http_respond(c, 500, NULL, h.b, NULL, 0);
    return;
  }
  plume__http_respond_shared(c, 200, ct, h.b, body);
  plume__shared_unref(body);
}

/* Sends the queue (plus tail) to GET c, unparking it first. */
static void poll_respond(plume__eio_session_t *s, plume__conn_t *c,
                         const char *tail) {
  const char *ct = NULL;
  plume__shared_t *body = take_payload(s, tail, &ct);
  if (c == s->get) {
    s->get = NULL;
    c->owner = NULL;
  }
  answer_get(s->srv, c, body, ct);
}

/*
** Ends the session: forgets the sid at once (later requests get 400 code 1),
** lets go of every connection and owes on_close. A parked GET gets the close
** packet, or the noop when the client closed (reason "transport close", §2.6).
** flush sends queued packets first: on a WebSocket as frames before the close
** frame; to a parked GET in the payload that ends in "1", which only the server
** shutdown still does (plume__eio_close defers the close instead, see there).
*/
static void close_session(plume__eio_session_t *s, const char *reason,
                          int flush) {
  plume__conn_t *c;
  if (s->state == S_CLOSED)
    return;
  if (s->state == S_OPEN) /* a deferred close keeps the reason it was given */
    set_reason(s, reason);
  plume__log(s->p, PLUME__LOG_DEBUG, "engineio", "session %s closed: %s",
             s->sid, s->reason);
  s->state = S_CLOSED;
  table_remove(&s->srv->table, s);
  owe_notify(s);
  s->ping_at = s->timeout_at = s->close_at = 0;
  drop_probe(s);
  if ((c = s->post) != NULL) { /* the reference aborts a POST being read */
    s->post = NULL;
    c->owner = NULL;
    plume__conn_close(c, 0);
  }
  if (!flush)
    queue_clear(s);
  if ((c = s->ws) != NULL) {
    uint32_t i;
    for (i = 0; i < s->nq; i++)
      ws_write(s, c, s->q[i].binary, s->q[i].sh);
    queue_clear(s);
    s->ws = NULL;
    c->owner = NULL;
    plume__ws_close(c, 0);
  }
  arm_timer(s);
  /* Last: answering may parse a pipelined request that looks the sid up. */
  if ((c = s->get) != NULL)
    poll_respond(s, c, strcmp(s->reason, "transport close") == 0 ? "6" : "1");
  queue_clear(s);
}

/*
** A GET during the deferred server close (plume__eio_close on polling). As the
** reference (its socket waits for "drain", then the polling transport appends
** the close to the next payload): the queued packets go out alone, and the
** close comes on the GET after them as "6\x1e1" (noop, close), which ends the
** session. Sending both in one payload would make socket.io-client handle the
** close before a DISCONNECT in it ("transport close", then a reconnection,
** instead of "io server disconnect"). protocol.md §2.6 says a parked GET gets
** the queued packets followed by "1"; the reference does not, so neither do
** we. closeTimeout starts again once the packets are out.
*/
static void closing_respond(plume__eio_session_t *s, plume__conn_t *c) {
  const char *ct = NULL;
  plume__shared_t *body;
  if (s->nq > 0) {
    s->close_at = now_ms(s) + (uint64_t)s->srv->cfg.close_timeout;
    arm_timer(s);
    poll_respond(s, c, ""); /* may parse a pipelined GET: the close */
    return;
  }
  if (c == s->get) {
    s->get = NULL;
    c->owner = NULL;
  }
  body = take_payload(s, "61", &ct);
  close_session(s, NULL, 0);
  answer_get(s->srv, c, body, ct);
}

static void on_timer(uv_timer_t *t) {
  plume__eio_session_t *s = plume__container_of(t, plume__eio_session_t, timer);
  uint64_t now = now_ms(s);
  if (s->state == S_OPEN) {
    if (s->timeout_at != 0 && now >= s->timeout_at) {
      close_session(s, "ping timeout", 0);
    } else {
      if (s->ping_at != 0 && now >= s->ping_at) {
        s->ping_at = 0;
        s->timeout_at = now + (uint64_t)s->srv->cfg.ping_timeout;
        push_text(s, "2", 1);
      }
      if (s->upgrade_at != 0 && now >= s->upgrade_at)
        drop_probe(s);
      if (s->flags & SF_FLUSH) {
        s->flags &= ~SF_FLUSH;
        if (s->state == S_OPEN && s->get != NULL)
          poll_respond(s, s->get, "");
      }
    }
  } else if (s->state == S_CLOSING) {
    if (s->flags & SF_FLUSH) { /* what was queued before the close */
      s->flags &= ~SF_FLUSH;
      if (s->get != NULL)
        closing_respond(s, s->get);
    }
    if (s->state == S_CLOSING && now >= s->close_at)
      close_session(s, NULL, 0);
  }
  if (s->flags & SF_NOTIFY)
    notify_close(s);
  if (s->state == S_CLOSED)
    release(s);
  else
    arm_timer(s);
  /* Write now what this run queued (pings, payloads, close frames): the
  ** once-per-turn flush runs after the poll, which may sleep until the next
  ** timer, so a ping would leave only when its pong deadline comes. */
  plume__flush_all(s->p);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Input: packets from either transport */

/* Hands a message to the layer above. Returns 1 when the session is no longer
** open. */
static int deliver(plume__eio_session_t *s, const plume__eio_packet_t *pkt) {
  const plume__eio_handler_t *h = &s->srv->h;
  plume__shared_t *tmp;
  long n;
  if (!pkt->b64) {
    if (h->on_message != NULL)
      h->on_message(s, pkt->binary, pkt->data, pkt->n);
    return s->state != S_OPEN;
  }
  /* A pooled block holds the decoded bytes: no malloc for small binaries. */
  tmp = plume__shared_alloc(pkt->n);
  if (tmp == NULL) {
    close_session(s, "transport error", 0);
    return 1;
  }
  n = plume__eio_packet_bytes(pkt, (unsigned char *)tmp->data);
  if (n < 0)
    close_session(s, "parse error", 0);
  else if (h->on_message != NULL)
    h->on_message(s, 1, tmp->data, (size_t)n);
  plume__shared_unref(tmp);
  return s->state != S_OPEN;
}

/* Handles one packet on the session's transport. Returns 1 to stop reading the
** payload. */
static int handle_packet(plume__eio_session_t *s,
                         const plume__eio_packet_t *pkt) {
  const plume__eio_config_t *cfg = &s->srv->cfg;
  switch (pkt->type) {
  case PLUME__EIO_CLOSE:
    close_session(s, "transport close", 0);
    return 1;
  case PLUME__EIO_PING:
    if (s->proto == 4) { /* v4 heartbeats go server to client only */
      plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
                 "session %s: invalid heartbeat direction", s->sid);
      close_session(s, "transport error", 0);
      return 1;
    }
    s->timeout_at =
        now_ms(s) + (uint64_t)cfg->ping_interval + (uint64_t)cfg->ping_timeout;
    push_text(s, "3", 1);
    arm_timer(s);
    break;
  case PLUME__EIO_PONG:
    if (s->proto == 3) {
      plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
                 "session %s: invalid heartbeat direction", s->sid);
      close_session(s, "transport error", 0);
      return 1;
    }
    s->timeout_at = 0;
    s->ping_at = now_ms(s) + (uint64_t)cfg->ping_interval;
    arm_timer(s);
    break;
  case PLUME__EIO_MESSAGE:
    return deliver(s, pkt);
  default: /* open, upgrade and noop from a client are ignored */
    break;
  }
  return s->state != S_OPEN;
}

/* The candidate socket becomes the transport; queued packets leave on it
** (§2.8). */
static void finish_upgrade(plume__eio_session_t *s, plume__conn_t *c) {
  plume__conn_t *g = s->get;
  uint32_t i;
  int err = 0;
  if (g != NULL) { /* the polling transport is discarded: its GET gets "1" */
    s->get = NULL;
    g->owner = NULL;
  }
  s->probe = NULL;
  s->ws = c;
  s->transport = PLUME__EIO_WEBSOCKET;
  s->flags &= ~(SF_UPGRADING | SF_FLUSH);
  s->upgrade_at = 0;
  for (i = 0; i < s->nq; i++)
    if (err == 0)
      err = ws_write(s, c, s->q[i].binary, s->q[i].sh);
  queue_clear(s);
  plume__log(s->p, PLUME__LOG_DEBUG, "engineio", "session %s upgraded", s->sid);
  if (err != 0)
    close_session(s, "transport error", 0);
  else
    arm_timer(s);
  if (g != NULL)
    answer_get(s->srv, g, plume__shared_new("1", 1),
               "text/plain; charset=UTF-8");
}

static void probe_message(plume__eio_session_t *s, plume__conn_t *c,
                          const plume__eio_packet_t *pkt) {
  if (pkt != NULL && !pkt->b64 && pkt->type == PLUME__EIO_PING && pkt->n == 5 &&
      memcmp(pkt->data, "probe", 5) == 0) {
    if (plume__ws_send(c, 0, "3probe", 6, NULL, 0, 0) != 0) {
      drop_probe(s);
      return;
    }
    s->flags |= SF_UPGRADING;
    /* Release the poller now so that it can send the upgrade packet. */
    if (s->get != NULL)
      poll_respond(s, s->get, s->nq > 0 ? "" : "6");
    return;
  }
  if (pkt != NULL && !pkt->b64 && pkt->type == PLUME__EIO_UPGRADE) {
    finish_upgrade(s, c);
    return;
  }
  plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
             "session %s: unexpected packet on the upgrade candidate", s->sid);
  drop_probe(s);
}

static void ws_message(plume__conn_t *c, int binary, const char *p, size_t n) {
  plume__eio_session_t *s = c->owner;
  plume__eio_packet_t pkt;
  int err;
  if (s == NULL || s->state != S_OPEN)
    return;
  if (n > (size_t)s->srv->cfg.max_payload) {
    if (c == s->probe) {
      drop_probe(s);
    } else if (c == s->ws) {
      s->ws = NULL;
      c->owner = NULL;
      plume__ws_close(c, 1009);
      close_session(s, "transport error", 0);
    }
    return;
  }
  err = binary ? plume__eio_decode_binary_frame(s->proto, p, n, &pkt)
               : plume__eio_decode_packet(s->proto, p, n, &pkt);
  if (c == s->probe) {
    probe_message(s, c, err == 0 && !binary ? &pkt : NULL);
  } else if (c == s->ws) {
    if (err != 0) {
      plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
                 "conn %u: session %s: parse error", c->id, s->sid);
      close_session(s, "parse error", 0);
    } else {
      handle_packet(s, &pkt);
    }
  }
}

/* A connection the session holds went away (TCP close, WebSocket end). */
static void conn_gone(plume__conn_t *c) {
  plume__eio_session_t *s = c->owner;
  if (s == NULL)
    return;
  c->owner = NULL;
  if (c == s->get) {
    s->get = NULL;
    s->flags &= ~SF_FLUSH;
    close_session(s, "transport error", 0);
  } else if (c == s->post) { /* its body will never be complete */
    s->post = NULL;
    close_session(s, "transport error", 0);
  } else if (c == s->ws) {
    s->ws = NULL;
    close_session(s, "transport close", 0);
  } else if (c == s->probe) {
    s->probe = NULL;
    drop_probe(s);
    arm_timer(s);
  }
}

static void ws_closed(plume__conn_t *c, int code) {
  conn_gone(c);
}

void plume__eio_conn_closed(plume__conn_t *c) {
  conn_gone(c);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Polling requests (§2.6) */

static void poll_get(plume__eio_session_t *s, plume__conn_t *c) {
  if (s->state == S_CLOSING) {
    if (s->get != NULL) { /* overlapping GET: the parked one gets "1" */
      close_session(s, NULL, 0);
      respond_status(s->srv, c, 400);
    } else {
      closing_respond(s, c);
    }
    return;
  }
  if (s->state != S_OPEN) {
    refuse(s->srv, c, plume__http_current(c), 1, NULL);
    return;
  }
  if (s->get != NULL) {
    plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
               "conn %u: session %s: overlapping GET", c->id, s->sid);
    close_session(s, "transport error", 0);
    respond_status(s->srv, c, 400);
    return;
  }
  if (s->nq > 0) {
    poll_respond(s, c, "");
  } else if (s->flags & SF_UPGRADING) {
    poll_respond(s, c, "6");
  } else {
    s->get = c;
    c->owner = s;
    plume__http_park(c);
  }
}

/* A second POST while one is being read (§2.6): 400, and the session closes,
** which drops the first one's connection too, as the reference does. */
static void refuse_overlap(plume__eio_session_t *s, plume__conn_t *c) {
  plume__eio_server_t *srv = s->srv;
  plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
             "conn %u: session %s: overlapping POST", c->id, s->sid);
  close_session(s, "transport error", 0);
  respond_status(srv, c, 400);
}

/* c's request is complete (or answered): the POST it held in progress, if any,
** is over, whatever its answer turns out to be. */
static void release_post(plume__conn_t *c) {
  plume__eio_session_t *s = c->owner;
  if (s != NULL && s->post == c) {
    s->post = NULL;
    c->owner = NULL;
  }
}

static void poll_post(plume__eio_session_t *s, plume__conn_t *c,
                      const plume__http_req_t *r) {
  plume__eio_server_t *srv = s->srv;
  int binary = slice_is(plume__http_header(r, "content-type"),
                        "application/octet-stream");
  plume__eio_reader_t rd;
  plume__eio_packet_t pkt;
  hdrs_t h;
  int rc = 0;
  if (s->post != NULL) { /* a POST without a body, during another */
    refuse_overlap(s, c);
    return;
  }
  if (binary && s->proto == 4) {
    plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
               "conn %u: session %s: octet-stream POST", c->id, s->sid);
    close_session(s, "transport error", 0);
    respond_status(srv, c, 400);
    return;
  }
  if (r->over_limit || r->body.n > (size_t)srv->cfg.max_payload) {
    /* The session stays, as in the reference. http.c stopped reading the
    ** body (over_limit): the connection closes after this answer. */
    plume__log(s->p, PLUME__LOG_INFO, "engineio",
               "conn %u: session %s: POST body over maxPayload (%d), 413",
               c->id, s->sid, srv->cfg.max_payload);
    respond_status(srv, c, 413);
    return;
  }
  if (s->state == S_OPEN) {
    plume__eio_reader_init(&rd, s->proto, binary, r->body.p, r->body.n);
    while ((rc = plume__eio_reader_next(&rd, &pkt)) == 1)
      if (handle_packet(s, &pkt))
        break;
    if (rc < 0) {
      plume__log(s->p, PLUME__LOG_DEBUG, "engineio",
                 "conn %u: session %s: parse error", c->id, s->sid);
      close_session(s, "parse error", 0);
      respond_status(srv, c, 400);
      return;
    }
  } else if (s->state == S_CLOSING) {
    /* The deferred server close: only a close packet from the client counts,
    ** and it ends the session now (on_close is already owed, with its
    ** reason). */
    plume__eio_reader_init(&rd, s->proto, binary, r->body.p, r->body.n);
    while (plume__eio_reader_next(&rd, &pkt) == 1)
      if (pkt.type == PLUME__EIO_CLOSE) {
        close_session(s, NULL, 0);
        break;
      }
  }
  init_headers(srv, c, &h, 1);
  plume__http_respond(c, 200, "text/html", h.b, "ok", 2);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Handshake and upgrade (§2.4, §2.8) */

/* Keeps the address, not the port: "127.0.0.1:5000" -> "127.0.0.1", "[::1]:80"
** -> "::1". */
static void strip_port(char *a) {
  char *colon = strrchr(a, ':'), *q;
  if (a[0] == '[') {
    q = strchr(a, ']');
    if (q != NULL) {
      memmove(a, a + 1, (size_t)(q - a) - 1);
      a[q - a - 1] = '\0';
    }
    return;
  }
  /* One colon: IPv4 with a port. More: a bare IPv6 address, kept whole. */
  if (colon != NULL && strchr(a, ':') == colon)
    *colon = '\0';
}

static plume_slice_t copy_slice(char **dst, plume_slice_t src) {
  plume_slice_t out;
  out.p = *dst;
  out.n = src.n;
  if (src.n > 0)
    memcpy(*dst, src.p, src.n);
  *dst += src.n;
  return out;
}

/* A new session (not started) with its own copy of the handshake request. */
static plume__eio_session_t *session_alloc(plume__eio_server_t *srv,
                                           plume__conn_t *c,
                                           const plume__http_req_t *r,
                                           const char *sid, size_t sid_len) {
  plume__eio_session_t *s;
  plume__header_t *hdrs;
  char peer[128], *d;
  size_t bytes = r->url.n + r->path.n + r->query.n, i, peer_n;
  peer[0] = '\0';
  plume__conn_peer(c, peer, sizeof(peer));
  peer[sizeof(peer) - 1] = '\0';
  strip_port(peer);
  peer_n = strlen(peer) + 1;
  for (i = 0; i < r->nheaders; i++)
    bytes += r->headers[i].name.n + r->headers[i].value.n;
  s = calloc(1, sizeof(*s) + r->nheaders * sizeof(plume__header_t) + bytes +
                    peer_n);
  if (s == NULL)
    return NULL;
  s->p = srv->p;
  s->srv = srv;
  hdrs = (plume__header_t *)(s + 1);
  d = (char *)(hdrs + r->nheaders);
  s->hs.method = r->method;
  s->hs.url = copy_slice(&d, r->url);
  s->hs.path = copy_slice(&d, r->path);
  s->hs.query = copy_slice(&d, r->query);
  for (i = 0; i < r->nheaders; i++) {
    hdrs[i].name = copy_slice(&d, r->headers[i].name);
    hdrs[i].value = copy_slice(&d, r->headers[i].value);
  }
  s->hs.headers = hdrs;
  s->hs.nheaders = r->nheaders;
  s->hs.keep_alive = r->keep_alive;
  s->hs.upgrade = r->upgrade;
  s->remote = d;
  memcpy(d, peer, peer_n);
  memcpy(s->sid, sid, sid_len);
  s->sid[sid_len] = '\0';
  s->sid_len = (uint8_t)sid_len;
  s->hash = hash_sid(sid, sid_len);
  return s;
}

/* Registers a new session and sends its open packet (JSON keys in the
** reference's order). */
static int session_start(plume__eio_session_t *s) {
  plume__eio_server_t *srv = s->srv;
  const plume__eio_config_t *cfg = &srv->cfg;
  char buf[6 * SID_MAX + 160];
  size_t n;
  int upgrades = s->transport == PLUME__EIO_POLLING && cfg->allow_upgrades &&
                 (cfg->transports & PLUME__EIO_WEBSOCKET);
  if (table_reserve(&srv->table) != 0)
    return UV_ENOMEM;
  place(srv->table.slots, srv->table.mask, s);
  srv->table.count++;
  uv_timer_init(s->p->loop, &s->timer);
  s->next = srv->sessions;
  if (s->next != NULL)
    s->next->prev = s;
  srv->sessions = s;
  s->state = S_OPEN;
  if (s->proto == 4)
    s->ping_at = now_ms(s) + (uint64_t)cfg->ping_interval;
  else
    s->timeout_at =
        now_ms(s) + (uint64_t)cfg->ping_interval + (uint64_t)cfg->ping_timeout;
  memcpy(buf, "0{\"sid\":\"", 9);
  n = 9 + json_escape(buf + 9, s->sid, s->sid_len);
  n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                        "\",\"upgrades\":%s,\"pingInterval\":%d,"
                        "\"pingTimeout\":%d,\"maxPayload\":%d}",
                        upgrades ? "[\"websocket\"]" : "[]", cfg->ping_interval,
                        cfg->ping_timeout, cfg->max_payload);
  push_text(s, buf, n);
  arm_timer(s);
  plume__log(s->p, PLUME__LOG_DEBUG, "engineio", "session %s open (v%d %s)",
             s->sid, s->proto,
             s->transport == PLUME__EIO_POLLING ? "polling" : "websocket");
  return 0;
}

/* Writes a fresh sid into sid. Returns its length, or 0 when none could be
** made. */
static size_t make_sid(plume__eio_server_t *srv, char sid[SID_MAX]) {
  const plume__eio_config_t *cfg = &srv->cfg;
  size_t n;
  int tries;
  if (cfg->generate_id != NULL) {
    memset(sid, 0, SID_MAX);
    if (cfg->generate_id(cfg->hook_ud, sid, SID_MAX) != 0)
      return 0;
    sid[SID_MAX - 1] = '\0';
    n = strlen(sid);
    return n > 0 && table_find(&srv->table, sid, n) == NULL ? n : 0;
  }
  for (tries = 0; tries < 4; tries++)
    if (plume__random_id(sid) == 0 && table_find(&srv->table, sid, 20) == NULL)
      return 20;
  return 0;
}

static void handshake(plume__eio_server_t *srv, plume__conn_t *c,
                      plume__http_req_t *r, int proto, int transport, int b64) {
  plume__eio_session_t *s;
  char sid[SID_MAX];
  size_t n = make_sid(srv, sid);
  hdrs_t h;
  if (n == 0 || (s = session_alloc(srv, c, r, sid, n)) == NULL) {
    refuse(srv, c, r, 3, NULL);
    return;
  }
  s->proto = (uint8_t)proto;
  s->transport = (uint8_t)transport;
  if (proto == 3 && b64)
    s->flags |= transport == PLUME__EIO_POLLING ? SF_POLL_B64 : SF_WS_B64;
  if (transport == PLUME__EIO_WEBSOCKET) {
    /* Not linked during the accept: frames pipelined behind the request are
    ** dropped. */
    init_headers(srv, c, &h, 0);
    if (plume__ws_accept(c, &ws_handler, h.b) != 0 ||
        (c->flags & PLUME__CONN_CLOSING)) {
      free(s);
      return;
    }
    s->ws = c;
    c->owner = s;
  }
  if (session_start(s) != 0) {
    if (transport == PLUME__EIO_WEBSOCKET) {
      c->owner = NULL;
      plume__ws_close(c, 0);
    } else {
      refuse(srv, c, r, 3, NULL);
    }
    free(s);
    return;
  }
  if (s->state == S_OPEN) {
    s->flags |= SF_OWED;
    if (srv->h.on_open != NULL)
      srv->h.on_open(s);
  }
  if (transport == PLUME__EIO_POLLING)
    poll_get(s, c);
}

/* A WebSocket with a sid: the upgrade candidate (§2.8). */
static void upgrade(plume__eio_server_t *srv, plume__eio_session_t *s,
                    plume__conn_t *c, plume__http_req_t *r, int b64) {
  hdrs_t h;
  int ok;
  if (s->state != S_OPEN || !srv->cfg.allow_upgrades) {
    refuse(srv, c, r, 3, NULL);
    return;
  }
  ok = s->transport == PLUME__EIO_POLLING && s->probe == NULL;
  init_headers(srv, c, &h, 0);
  if (plume__ws_accept(c, &ws_handler, h.b) != 0 ||
      (c->flags & PLUME__CONN_CLOSING))
    return;
  if (!ok || s->state != S_OPEN || s->probe != NULL) {
    /* Upgrading, upgraded or websocket-only: the reference's suite wants it
    ** closed. */
    plume__log(srv->p, PLUME__LOG_DEBUG, "engineio",
               "conn %u: session %s: second WebSocket closed", c->id, s->sid);
    plume__ws_close(c, 0);
    return;
  }
  s->probe = c;
  c->owner = s;
  if (s->proto == 3 && b64)
    s->flags |= SF_WS_B64;
  s->upgrade_at = now_ms(s) + (uint64_t)srv->cfg.upgrade_timeout;
  arm_timer(s);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Entry points */

/*
** The checks of §2.2 made before the method matters, in the reference's order:
** the transport (#1), an upgrade asking for another transport, the Origin
** (#2), the sid (#3a, #3b). Answers nothing. Returns -1 when r may go on, with
** *tr its transport and *s its session (NULL when r has no sid), else the
** error code to refuse it with.
*/
static int check_request(plume__eio_server_t *srv, const plume__http_req_t *r,
                         int *tr, plume__eio_session_t **s) {
  char tbuf[16], sid[SID_MAX];
  int tlen, slen, ns;
  plume_slice_t origin;
  *tr = 0;
  *s = NULL;
  /* Exact names only: "__proto__", "constructor" and repeats are unknown. */
  if (query_param(r->query, "transport", tbuf, sizeof(tbuf), &tlen) == 1) {
    if (tlen == 7 && memcmp(tbuf, "polling", 7) == 0)
      *tr = PLUME__EIO_POLLING;
    else if (tlen == 9 && memcmp(tbuf, "websocket", 9) == 0)
      *tr = PLUME__EIO_WEBSOCKET;
  }
  if (!(*tr & srv->cfg.transports))
    return 0;
  if (r->upgrade && *tr != PLUME__EIO_WEBSOCKET)
    return 3;
  origin = plume__http_header(r, "origin");
  if (origin.p != NULL && !origin_valid(origin))
    return 3;
  ns = query_param(r->query, "sid", sid, sizeof(sid), &slen);
  if (ns == 0 || slen == 0)
    return -1; /* an empty sid counts as none, as in the reference */
  *s = ns == 1 && slen > 0 ? table_find(&srv->table, sid, (size_t)slen) : NULL;
  if (*s == NULL)
    return 1;
  if (!r->upgrade && *tr != (*s)->transport)
    return 3;
  return -1;
}

void plume__eio_handle_head(plume__eio_server_t *srv, plume__conn_t *c,
                            plume__http_req_t *r) {
  plume__eio_session_t *s;
  int tr;
  /* Anything but a valid polling POST is checked and answered once complete. */
  if (r->method != HTTP_POST || r->upgrade ||
      check_request(srv, r, &tr, &s) >= 0 || s == NULL || s->state != S_OPEN ||
      s->transport != PLUME__EIO_POLLING)
    return;
  if (s->post != NULL) {
    refuse_overlap(s, c);
    return;
  }
  s->post = c;
  c->owner = s;
}

void plume__eio_handle_request(plume__eio_server_t *srv, plume__conn_t *c,
                               plume__http_req_t *r) {
  char eio[8], b64[8];
  int elen, blen, ne, code, tr, proto = 0, b64_on;
  plume__eio_session_t *s;
  const char *msg;
  release_post(c);
  if (srv->cfg.serve != NULL && r->path.n > srv->path_len && !r->upgrade &&
      srv->cfg.serve(srv->cfg.hook_ud, c, r))
    return;
  if (srv->cfg.cors && r->method == HTTP_OPTIONS && !r->upgrade) {
    preflight(srv, c, r);
    return;
  }
  code = check_request(srv, r, &tr, &s);
  if (code >= 0) {
    refuse(srv, c, r, code, NULL);
    return;
  }
  b64_on =
      query_param(r->query, "b64", b64, sizeof(b64), &blen) > 0 && blen != 0;
  if (s != NULL) {
    if (r->upgrade)
      upgrade(srv, s, c, r, b64_on);
    else if (r->method == HTTP_POST)
      poll_post(s, c, r);
    else if (r->over_limit)
      respond_status(srv, c, 413); /* the session stays */
    else if (r->method == HTTP_GET)
      poll_get(s, c);
    else
      respond_status(srv, c, 500); /* the session stays */
    return;
  }
  if (r->method != HTTP_GET) {
    refuse(srv, c, r, 2, NULL);
    return;
  }
  if (tr == PLUME__EIO_WEBSOCKET && !r->upgrade) {
    refuse(srv, c, r, 3, NULL);
    return;
  }
  if (srv->cfg.allow_request != NULL &&
      (msg = srv->cfg.allow_request(srv->cfg.hook_ud, c, r)) != NULL) {
    refuse(srv, c, r, 4, msg);
    return;
  }
  ne = query_param(r->query, "EIO", eio, sizeof(eio), &elen);
  if (ne == 1 && elen == 1 && eio[0] == '4')
    proto = 4;
  else if (ne == 1 && elen == 1 && eio[0] == '3' && srv->cfg.allow_eio3)
    proto = 3;
  if (proto == 0) {
    refuse(srv, c, r, 5, NULL);
    return;
  }
  handshake(srv, c, r, proto, tr, b64_on);
}

void plume__eio_config_init(plume__eio_config_t *cfg,
                            const plume_options_t *o) {
  memset(cfg, 0, sizeof(*cfg));
  memcpy(cfg->path, "/engine.io/", sizeof("/engine.io/"));
  cfg->ping_interval = o->ping_interval;
  cfg->ping_timeout = o->ping_timeout;
  cfg->upgrade_timeout = o->upgrade_timeout;
  cfg->close_timeout = o->close_timeout;
  cfg->max_payload = o->max_http_buffer_size;
  cfg->transports = PLUME__EIO_POLLING | PLUME__EIO_WEBSOCKET;
  cfg->allow_upgrades = 1;
  cfg->allow_eio3 = o->allow_eio3;
}

static void free_origins(char **o) {
  char **i;
  for (i = o; i != NULL && *i != NULL; i++)
    free(*i);
  free(o);
}

int plume__eio_server_new(plume_t *p, const plume__eio_config_t *cfg,
                          const plume__eio_handler_t *h, void *ud,
                          plume__eio_server_t **out) {
  plume__eio_server_t *srv;
  size_t i, n = 0;
  *out = NULL;
  if (cfg->path[0] != '/' ||
      memchr(cfg->path, '\0', sizeof(cfg->path)) == NULL ||
      cfg->ping_interval <= 0 || cfg->ping_timeout <= 0 ||
      cfg->max_payload <= 0)
    return PLUME_EOPTION;
  srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return UV_ENOMEM;
  srv->p = p;
  srv->cfg = *cfg;
  srv->cfg.cors_origins = NULL;
  if (cfg->cors_origins != NULL) {
    while (cfg->cors_origins[n] != NULL)
      n++;
    srv->cfg.cors_origins = calloc(n + 1, sizeof(char *));
    if (srv->cfg.cors_origins == NULL)
      goto fail;
    for (i = 0; i < n; i++)
      if ((srv->cfg.cors_origins[i] = strdup(cfg->cors_origins[i])) == NULL)
        goto fail;
  }
  srv->path_len = strlen(srv->cfg.path);
  if (h != NULL)
    srv->h = *h;
  srv->ud = ud;
  srv->next = p->eio_servers;
  p->eio_servers = srv;
  *out = srv;
  return 0;
fail:
  free_origins(srv->cfg.cors_origins);
  free(srv);
  return UV_ENOMEM;
}

void plume__eio_server_free(plume__eio_server_t *srv) {
  plume__eio_server_t **link;
  plume__eio_session_t *s;
  if (srv == NULL)
    return;
  for (link = &srv->p->eio_servers; *link != NULL; link = &(*link)->next) {
    if (*link == srv) {
      *link = srv->next;
      break;
    }
  }
  while ((s = srv->sessions) != NULL) {
    close_session(s, "server shutting down", 1);
    if (s->flags & SF_NOTIFY)
      notify_close(s); /* now: the handler goes with the server */
    srv->sessions = s->next;
    if (s->next != NULL)
      s->next->prev = NULL;
    s->srv = NULL;
    s->prev = s->next = NULL;
    release(s);
  }
  free(srv->table.slots);
  free_origins(srv->cfg.cors_origins);
  free(srv);
}

void *plume__eio_server_ud(plume__eio_server_t *srv) {
  return srv->ud;
}

size_t plume__eio_server_max_payload(const plume__eio_server_t *srv) {
  return (size_t)srv->cfg.max_payload;
}

plume__eio_server_t *plume__eio_server_match(plume_t *p, plume_slice_t path) {
  plume__eio_server_t *srv;
  for (srv = p->eio_servers; srv != NULL; srv = srv->next)
    if (path.n >= srv->path_len &&
        memcmp(path.p, srv->cfg.path, srv->path_len) == 0)
      return srv;
  return NULL;
}

/* Output cap of the polling queue: a client that never polls is dropped
** (style.md D.8). */
static int over_cap(plume__eio_session_t *s, size_t n) {
  int cap = s->p->opts.max_output_bytes;
  if (s->transport == PLUME__EIO_WEBSOCKET && s->ws != NULL)
    return 0; /* the connection's own output cap applies */
  if (cap <= 0 || s->qbytes + n <= (size_t)cap)
    return 0;
  plume__log(s->p, PLUME__LOG_INFO, "engineio",
             "session %s: %zu queued bytes over max_output_bytes", s->sid,
             s->qbytes + n);
  close_session(s, "transport error", 0);
  return 1;
}

int plume__eio_send(plume__eio_session_t *s, int binary, const void *p,
                    size_t n) {
  plume__shared_t *sh;
  if (s == NULL || s->state != S_OPEN || over_cap(s, n + 1))
    return PLUME_ECLOSED;
  if (binary) {
    sh = plume__shared_new(p, n);
  } else {
    sh = plume__shared_alloc(n + 1);
    if (sh != NULL) {
      sh->data[0] = '4';
      if (n > 0)
        memcpy(sh->data + 1, p, n);
    }
  }
  return sh != NULL ? push(s, binary, sh) : UV_ENOMEM;
}

int plume__eio_send_shared(plume__eio_session_t *s, int binary,
                           plume__shared_t *sh) {
  if (s == NULL || s->state != S_OPEN || over_cap(s, sh->len))
    return PLUME_ECLOSED;
  return push(s, binary, plume__shared_ref(sh));
}

/*
** The server closes the session once what is queued reached the client
** (§2.6, §4.3). WebSocket: the queued frames, then the close frame. Polling
** with a parked GET and nothing queued: that GET gets "1". Otherwise polling
** closes in steps (closing_respond): the queued packets go to the parked GET
** (from the timer) or to the next GET alone, the GET after them gets "6\x1e1";
** closeTimeout ends the session when no GET comes. on_close is due at once.
*/
void plume__eio_close(plume__eio_session_t *s, const char *reason) {
  if (s == NULL || s->state != S_OPEN)
    return;
  set_reason(s, reason != NULL ? reason : "forced close");
  if (s->transport == PLUME__EIO_WEBSOCKET || (s->get != NULL && s->nq == 0)) {
    close_session(s, NULL, 1);
    return;
  }
  s->state = S_CLOSING;
  s->ping_at = s->timeout_at = 0;
  s->close_at = now_ms(s) + (uint64_t)s->srv->cfg.close_timeout;
  drop_probe(s);
  owe_notify(s);
  if (s->get != NULL)
    s->flags |= SF_FLUSH;
  arm_timer(s);
}

const char *plume__eio_sid(const plume__eio_session_t *s) {
  return s->sid;
}
int plume__eio_protocol(const plume__eio_session_t *s) {
  return s->proto;
}
int plume__eio_transport(const plume__eio_session_t *s) {
  return s->transport;
}
plume__eio_server_t *plume__eio_session_server(const plume__eio_session_t *s) {
  return s->srv;
}
const plume__http_req_t *plume__eio_handshake(const plume__eio_session_t *s) {
  return &s->hs;
}
const char *plume__eio_remote_address(const plume__eio_session_t *s) {
  return s->remote;
}
void *plume__eio_get_ud(const plume__eio_session_t *s) {
  return s->ud;
}
void plume__eio_set_ud(plume__eio_session_t *s, void *ud) {
  s->ud = ud;
}

/* }====== */
