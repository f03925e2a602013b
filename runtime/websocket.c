/*
** websocket.c: the WebSocket transport (RFC 6455) between http.c, which hands
** over an upgrade request, and engineio.c, which gets whole messages
** (protocol.md §2.7). Handshake §4.2; frames §5: a small head scanner enforces
** the limits of reliability.md §4.3 before wslay sees a byte, wslay unmasks,
** reassembles, checks UTF-8 and answers pings; data frames are written here
** without wslay, payloads shared, never copied.
*/
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "internal.h"

enum {
  OP_CONT = 0,
  OP_TEXT = 1,
  OP_BINARY = 2,
  OP_CLOSE = 8,
  OP_PING = 9,
  OP_PONG = 10
};

/* Close codes (RFC 6455 §7.4.1). */
enum {
  CLOSE_NO_STATUS = 1005,
  CLOSE_ABNORMAL = 1006,
  CLOSE_PROTOCOL = 1002,
  CLOSE_POLICY = 1008,
  CLOSE_TOO_BIG = 1009,
  CLOSE_INTERNAL = 1011
};

/* A control frame is at most 2 + 4 + 125 bytes, a data frame head 2 + 8 + 4. */
#define PEND_MAX 131

/*
** The WebSocket state of one connection, owned by it (c->ws). wslay's context
** holds two 4 KiB buffers, so an idle WebSocket goes without: the context is
** made on the first input and, once input stops at a message boundary, kept
** warm on p->ws_warm until a whole loop turn passes without input
** (plume__ws_sweep). A busy connection reuses it instead of paying a calloc,
** a memset and a free per read.
**
** on_close contract: called once when the peer closes, on a protocol error, or
** when the TCP connection goes away (from plume__ws_free, code 1006); never
** after the upper layer asked for the close itself with plume__ws_close.
*/
struct plume__ws_s {
  const plume__ws_handler_t *h;
  wslay_event_context_ptr ctx; /* NULL while idle */
  plume__ws_t *warm_next;      /* p->ws_warm list, while warm_pprev is set */
  plume__ws_t **warm_pprev;
  const uint8_t *in_p; /* what recv_cb serves wslay during feed() */
  size_t in_n;
  uint64_t left;    /* payload bytes of the current data frame still to come */
  uint64_t msg_len; /* payload bytes of the current message so far */
  uint32_t frags;   /* frames of the current message */
  uint16_t code;    /* close code sent or received, for on_close */
  uint8_t in_msg;   /* a fragmented message is open */
  uint8_t closed;   /* close frame sent or connection failed: no more I/O */
  uint8_t reported; /* on_close ran, or is not owed */
  uint8_t busy;     /* inside plume__ws_on_data: freeing must wait */
  uint8_t dead;     /* plume__ws_free came while busy */
  uint8_t fed;      /* input since the last sweep: the context stays */
  uint8_t pend_len;
  uint8_t pend[PEND_MAX]; /* a head or a control frame split across reads */
};

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------------------- */
/* {====== Output: frames written without wslay */

/* Writes a server frame head (FIN set, unmasked) into h; returns its length. */
static size_t encode_head(uint8_t *h, int opcode, uint64_t n) {
  int i;
  h[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    h[1] = (uint8_t)n;
    return 2;
  }
  if (n < 65536) {
    h[1] = 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    return 4;
  }
  h[1] = 127;
  for (i = 0; i < 8; i++)
    h[2 + i] = (uint8_t)(n >> (56 - 8 * i));
  return 10;
}

/* Writes a close frame; codes that may not appear on the wire (RFC 6455 §7.4:
** 1005, 1006, 1015, out of range) go out as a close without status. */
static int write_close(plume__conn_t *c, int code) {
  uint8_t f[4] = {0x80 | OP_CLOSE, 0, 0, 0};
  if (code < 1000 || code > 4999 || code == 1004 || code == CLOSE_NO_STATUS ||
      code == CLOSE_ABNORMAL || code == 1015)
    return plume__conn_write(c, f, 2);
  f[1] = 2;
  f[2] = (uint8_t)(code >> 8);
  f[3] = (uint8_t)code;
  return plume__conn_write(c, f, 4);
}

int plume__ws_send(plume__conn_t *c, int binary, const void *prefix,
                   size_t prefix_n, plume__shared_t *sh, size_t off, size_t n) {
  uint8_t head[10 + 16];
  size_t hl;
  int rv;
  if (c->ws == NULL || c->ws->closed || (c->flags & PLUME__CONN_CLOSING))
    return PLUME_ECLOSED;
  hl = encode_head(head, binary ? OP_BINARY : OP_TEXT, (uint64_t)prefix_n + n);
  /* A short prefix (the v3 binary type byte) rides in the head's write. */
  if (prefix_n <= sizeof(head) - hl) {
    if (prefix_n > 0)
      memcpy(head + hl, prefix, prefix_n);
    rv = plume__conn_write(c, head, hl + prefix_n);
  } else {
    rv = plume__conn_write(c, head, hl);
    if (rv == 0)
      rv = plume__conn_write(c, prefix, prefix_n);
  }
  if (rv == 0 && n > 0)
    rv = plume__conn_write_shared(c, sh, off, n);
  return rv;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Ending */

static void report_close(plume__conn_t *c, plume__ws_t *ws, int code) {
  if (ws->reported)
    return;
  ws->reported = 1;
  if (ws->h != NULL && ws->h->on_close != NULL)
    ws->h->on_close(c, code);
}

/* Stops wslay where it stands; safe from inside its callbacks. */
static void stop_wslay(plume__ws_t *ws) {
  if (ws->ctx != NULL) {
    wslay_event_shutdown_read(ws->ctx);
    wslay_event_shutdown_write(ws->ctx);
  }
}

/* Fails the connection: close frame with code, drain, close, tell the upper
** layer. */
static void fail(plume__conn_t *c, plume__ws_t *ws, int code) {
  if (!ws->closed) {
    plume__log(c->p, PLUME__LOG_DEBUG, "websocket", "conn %u: closing with %d",
               c->id, code);
    ws->closed = 1;
    ws->code = (uint16_t)code;
    write_close(c, code);
  }
  stop_wslay(ws);
  plume__conn_close(c, 1);
  report_close(c, ws, code);
}

void plume__ws_close(plume__conn_t *c, int code) {
  plume__ws_t *ws = c->ws;
  if (ws != NULL && !ws->closed) {
    ws->closed = 1;
    ws->reported = 1; /* the caller knows */
    ws->code = (uint16_t)(code ? code : CLOSE_NO_STATUS);
    if (!(c->flags & PLUME__CONN_CLOSING))
      write_close(c, code);
    stop_wslay(ws);
  }
  plume__conn_close(c, 1);
}

static void warm_unlink(plume__ws_t *ws) {
  if (ws->warm_pprev == NULL)
    return;
  *ws->warm_pprev = ws->warm_next;
  if (ws->warm_next != NULL)
    ws->warm_next->warm_pprev = ws->warm_pprev;
  ws->warm_next = NULL;
  ws->warm_pprev = NULL;
}

static void free_ws(plume__conn_t *c, plume__ws_t *ws) {
  ws->closed = 1;
  report_close(c, ws, ws->code ? ws->code : CLOSE_ABNORMAL);
  c->ws = NULL;
  warm_unlink(ws);
  if (ws->ctx != NULL)
    wslay_event_context_free(ws->ctx);
  free(ws);
}

void plume__ws_free(plume__conn_t *c) {
  plume__ws_t *ws = c->ws;
  if (ws == NULL)
    return;
  if (ws->busy) { /* never free wslay under its own stack */
    ws->dead = 1;
    ws->closed = 1;
    stop_wslay(ws);
    return;
  }
  free_ws(c, ws);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Input: wslay callbacks */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  plume__conn_t *c = ud;
  plume__ws_t *ws = c->ws;
  size_t k;
  if (ws->in_n == 0 || ws->closed || (c->flags & PLUME__CONN_CLOSING)) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  k = len < ws->in_n ? len : ws->in_n;
  memcpy(buf, ws->in_p, k);
  ws->in_p += k;
  ws->in_n -= k;
  return (ssize_t)k;
}

/* Pongs and close frames. Taking every byte each time keeps wslay's frames
** whole in the output queue, so our data frames only ever land between them. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  plume__conn_t *c = ud;
  if (plume__conn_write(c, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  plume__conn_t *c = ud;
  plume__ws_t *ws = c->ws;
  if (ws->closed || (c->flags & PLUME__CONN_CLOSING))
    return;
  if ((arg->opcode != OP_TEXT && arg->opcode != OP_BINARY) || ws->h == NULL ||
      ws->h->on_message == NULL)
    return; /* close and ping are answered by wslay, see after_recv */
  ws->h->on_message(c, arg->opcode == OP_BINARY,
                    arg->msg ? (const char *)arg->msg : "", arg->msg_length);
  if (ws->closed || (c->flags & PLUME__CONN_CLOSING))
    wslay_event_shutdown_read(ctx);
}

static const struct wslay_event_callbacks ws_callbacks = {
    recv_cb, send_cb, NULL, NULL, NULL, NULL, on_msg};

static int make_ctx(plume__conn_t *c, plume__ws_t *ws) {
  int max = c->p->opts.max_http_buffer_size;
  if (wslay_event_context_server_init(&ws->ctx, &ws_callbacks, c) != 0) {
    ws->ctx = NULL;
    return UV_ENOMEM;
  }
  wslay_event_config_set_max_recv_msg_length(ws->ctx,
                                             max > 0 ? (uint64_t)max : 0);
  return 0;
}

/* After wslay_event_recv: sends what wslay queued and ends the WebSocket
** when wslay stopped reading (close received, or an error it answered).
** Returns -1 once ended. */
static int after_recv(plume__conn_t *c, plume__ws_t *ws, int rv) {
  wslay_event_context_ptr ctx = ws->ctx;
  if (ws->closed || (c->flags & PLUME__CONN_CLOSING))
    return -1;
  if (rv < 0) { /* wslay queued a close without status: send ours instead */
    fail(c, ws, rv == WSLAY_ERR_NOMEM ? CLOSE_INTERNAL : CLOSE_PROTOCOL);
    return -1;
  }
  if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) {
    ws->closed = 1;
    plume__conn_close(c, 0);
    report_close(c, ws, CLOSE_ABNORMAL);
    return -1;
  }
  if (wslay_event_get_read_enabled(ctx))
    return 0;
  ws->closed = 1;
  ws->code = wslay_event_get_close_received(ctx)
                 ? wslay_event_get_status_code_received(ctx)
                 : wslay_event_get_status_code_sent(ctx);
  plume__conn_close(c, 1);
  report_close(c, ws, ws->code);
  return -1;
}

/* Hands n bytes to wslay and lets it run. Returns -1 once the WebSocket has
** ended. */
static int feed(plume__conn_t *c, plume__ws_t *ws, const uint8_t *p, size_t n) {
  int rv;
  if (n == 0)
    return 0;
  if (ws->ctx == NULL && make_ctx(c, ws) != 0) {
    fail(c, ws, CLOSE_INTERNAL);
    return -1;
  }
  ws->in_p = p;
  ws->in_n = n;
  rv = wslay_event_recv(ws->ctx);
  ws->in_n = 0; /* what wslay left unread (after a close) is dropped */
  return after_recv(c, ws, rv);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Input: the head scanner */

/*
** The bytes of the frame at h that must reach wslay in one piece: the head of a
** data frame, or the whole of a control frame, so that wslay never sees a close
** payload split (it checks the reason's UTF-8 per chunk from offset 2 of each
** chunk). 0 when fewer than two bytes are known; minus a close code when those
** two bytes already break RFC 6455 §5.
*/
static int unit_size(const uint8_t *h, size_t avail) {
  int op, len7;
  if (avail < 2)
    return 0;
  op = h[0] & 0x0f;
  len7 = h[1] & 0x7f;
  if ((h[0] & 0x70) != 0 || (h[1] & 0x80) == 0) /* RSV bits, unmasked */
    return -CLOSE_PROTOCOL;
  if (op & 8) {
    if (op > OP_PONG || !(h[0] & 0x80) || len7 > 125 ||
        (op == OP_CLOSE && len7 == 1))
      return -CLOSE_PROTOCOL;
    return 6 + len7;
  }
  if (op > OP_BINARY)
    return -CLOSE_PROTOCOL;
  return 6 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

/*
** Checks a complete unit against the message state and the limits, before wslay
** allocates anything for it: a length is refused as soon as it is announced,
** and every fragment counts, empty ones too (wslay keeps one chunk per
** fragment). Returns 0 or a close code.
*/
static int begin_frame(plume__conn_t *c, plume__ws_t *ws, const uint8_t *h) {
  int op = h[0] & 0x0f, len7 = h[1] & 0x7f, i;
  int max_frags = c->p->opts.ws_max_fragments;
  int max_len = c->p->opts.max_http_buffer_size;
  uint64_t len = (uint64_t)len7, max = max_len > 0 ? (uint64_t)max_len : 0;
  if (op & 8)
    return 0; /* whole in the unit */
  if (len7 == 126) {
    len = (uint64_t)h[2] << 8 | h[3];
    if (len < 126)
      return CLOSE_PROTOCOL;
  } else if (len7 == 127) {
    for (len = 0, i = 0; i < 8; i++)
      len = len << 8 | h[2 + i];
    if (len < 65536 || len >> 63)
      return CLOSE_PROTOCOL;
  }
  if (op == OP_CONT) {
    if (!ws->in_msg)
      return CLOSE_PROTOCOL;
    if (++ws->frags > (uint32_t)(max_frags > 0 ? max_frags : 1))
      return CLOSE_POLICY;
  } else {
    if (ws->in_msg)
      return CLOSE_PROTOCOL;
    ws->frags = 1;
    ws->msg_len = 0;
  }
  if (len > max - ws->msg_len)
    return CLOSE_TOO_BIG;
  ws->msg_len += len;
  ws->in_msg = !(h[0] & 0x80);
  ws->left = len;
  return 0;
}

/* Completes the unit held in pend from input. Returns its size when
** complete, 0 when the input ran out first, minus a close code on a bad
** head. */
static int fill_pending(plume__ws_t *ws, const uint8_t **pp,
                        const uint8_t *end) {
  for (;;) {
    int unit = unit_size(ws->pend, ws->pend_len);
    size_t need = unit > 0 ? (size_t)unit : 2, take;
    if (unit < 0 || ws->pend_len >= need)
      return unit;
    if (*pp == end)
      return 0;
    take = need - ws->pend_len;
    if (take > (size_t)(end - *pp))
      take = (size_t)(end - *pp);
    memcpy(ws->pend + ws->pend_len, *pp, take);
    ws->pend_len = (uint8_t)(ws->pend_len + take);
    *pp += take;
  }
}

/*
** Validates every frame head of the input, then passes the bytes to wslay in
** runs: all bytes of consecutive data frames at once, each control frame on its
** own.
*/
static void scan(plume__conn_t *c, plume__ws_t *ws, const uint8_t *p,
                 size_t n) {
  const uint8_t *end = p + n, *run = p;
  int unit, code;
  if (ws->pend_len > 0) {
    size_t len;
    unit = fill_pending(ws, &p, end);
    if (unit == 0)
      return;
    code = unit < 0 ? -unit : begin_frame(c, ws, ws->pend);
    if (code != 0) {
      fail(c, ws, code);
      return;
    }
    len = ws->pend_len;
    ws->pend_len = 0;
    if (feed(c, ws, ws->pend, len) != 0)
      return;
    run = p;
  }
  while (p < end) {
    if (ws->left > 0) {
      size_t k = (size_t)(end - p);
      if (k > ws->left)
        k = (size_t)ws->left;
      p += k;
      ws->left -= k;
      continue;
    }
    unit = unit_size(p, (size_t)(end - p));
    if (unit > 0 && (size_t)unit <= (size_t)(end - p)) {
      if ((code = begin_frame(c, ws, p)) != 0)
        goto bad;
      if (p[0] & 8) { /* control: alone, so wslay sees it whole */
        if (feed(c, ws, run, (size_t)(p - run)) != 0 ||
            feed(c, ws, p, (size_t)unit) != 0)
          return;
        run = p + unit;
      }
      p += unit;
      continue;
    }
    if (unit < 0) {
      code = -unit;
      goto bad;
    }
    if (feed(c, ws, run, (size_t)(p - run)) != 0)
      return;
    ws->pend_len = (uint8_t)(end - p);
    memcpy(ws->pend, p, ws->pend_len);
    return;
  }
  feed(c, ws, run, (size_t)(p - run));
  return;
bad:
  if (feed(c, ws, run, (size_t)(p - run)) == 0)
    fail(c, ws, code);
}

void plume__ws_on_data(plume__conn_t *c, const char *p, size_t n) {
  plume__ws_t *ws = c->ws;
  if (ws == NULL || ws->closed || (c->flags & PLUME__CONN_CLOSING))
    return;
  ws->busy = 1;
  scan(c, ws, (const uint8_t *)p, n);
  ws->busy = 0;
  if (ws->dead) {
    free_ws(c, ws);
    return;
  }
  if (ws->ctx != NULL && !ws->closed) {
    ws->fed = 1;
    if (ws->warm_pprev == NULL) {
      plume__ws_t **head = &c->p->ws_warm;
      ws->warm_next = *head;
      if (*head != NULL)
        (*head)->warm_pprev = &ws->warm_next;
      ws->warm_pprev = head;
      *head = ws;
    }
  }
}

/* At a message boundary with nothing queued wslay holds no state worth 8
** KiB. */
static int at_boundary(const plume__ws_t *ws) {
  return !ws->busy && !ws->closed && ws->pend_len == 0 && ws->left == 0 &&
         !ws->in_msg && !wslay_event_want_write(ws->ctx);
}

void plume__ws_sweep(plume_t *p) {
  plume__ws_t *ws = p->ws_warm, *next;
  for (; ws != NULL; ws = next) {
    next = ws->warm_next;
    if (ws->fed) {
      ws->fed = 0;
      continue;
    }
    /* Idle for a turn. Mid-message input relinks it when the message ends. */
    warm_unlink(ws);
    if (ws->ctx != NULL && at_boundary(ws)) {
      wslay_event_context_free(ws->ctx);
      ws->ctx = NULL;
    }
  }
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Handshake (RFC 6455 §4.2) */

static int slice_ieq(plume_slice_t s, const char *lit) {
  return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

/* Whether the comma-separated list v holds tok (case-insensitive). */
static int has_token(plume_slice_t v, const char *tok) {
  size_t i = 0, n = strlen(tok);
  while (i < v.n) {
    size_t b, e;
    while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
      i++;
    b = i;
    while (i < v.n && v.p[i] != ',')
      i++;
    e = i;
    while (e > b && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
      e--;
    if (e - b == n && strncasecmp(v.p + b, tok, n) == 0)
      return 1;
  }
  return 0;
}

/* Checks the upgrade request. Returns 0 (key set) or the HTTP status to
** refuse with. */
static int check_request(const plume__http_req_t *r, plume_slice_t *key) {
  plume_slice_t ver = {NULL, 0};
  unsigned char raw[24];
  int upgrade = 0, connection = 0, nkey = 0, nver = 0;
  uint32_t i;
  if (r->method != HTTP_GET)
    return 400;
  for (i = 0; i < r->nheaders; i++) {
    const plume__header_t *h = &r->headers[i];
    if (slice_ieq(h->name, "upgrade"))
      upgrade |= has_token(h->value, "websocket");
    else if (slice_ieq(h->name, "connection"))
      connection |= has_token(h->value, "upgrade");
    else if (slice_ieq(h->name, "sec-websocket-key") && ++nkey == 1)
      *key = h->value;
    else if (slice_ieq(h->name, "sec-websocket-version") && ++nver == 1)
      ver = h->value;
  }
  if (!upgrade || !connection)
    return 400;
  if (nver != 1 || !slice_ieq(ver, "13"))
    return 426;
  if (nkey != 1 || key->n != 24 ||
      plume__base64_decode(raw, key->p, key->n) != 16)
    return 400;
  return 0;
}

static void refuse(plume__conn_t *c, int status) {
  char buf[256];
  const char *reason = status == 426 ? "Upgrade Required" : "Bad Request";
  int n = snprintf(buf, sizeof(buf),
                   "HTTP/1.1 %d %s\r\n%sConnection: close\r\n"
                   "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                   status, reason,
                   status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                   strlen(reason), reason);
  plume__log(c->p, PLUME__LOG_DEBUG, "websocket",
             "conn %u: upgrade refused with %d", c->id, status);
  plume__conn_write(c, buf, (size_t)n);
  plume__conn_close(c, 1);
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)), 28 characters and a NUL. */
static void accept_value(plume_slice_t key, char out[29]) {
  unsigned char in[24 + sizeof(ws_guid) - 1], md[SHA_DIGEST_LENGTH];
  memcpy(in, key.p, 24);
  memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
  SHA1(in, sizeof(in), md);
  out[plume__base64_encode(out, md, sizeof(md))] = '\0';
}

/* Frames that came with the request are fed before this returns, so the
** handler may run first: the caller binds its session beforehand. */
int plume__ws_accept(plume__conn_t *c, const plume__ws_handler_t *h,
                     const char *extra_headers) {
  plume__http_req_t *r = plume__http_current(c);
  plume_slice_t key = {NULL, 0}, rest;
  plume__buf_t head = {NULL, 0, 0};
  plume__ws_t *ws;
  char accept[29], *early = NULL;
  int status, rv;
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  if (r == NULL || c->ws != NULL) {
    plume__conn_close(c, 1);
    return PLUME_EPROTO;
  }
  if ((status = check_request(r, &key)) != 0) {
    refuse(c, status);
    return PLUME_EPROTO;
  }
  accept_value(key, accept);
  rest = plume__http_leftover(c);
  if (rest.n > 0 && (early = malloc(rest.n)) != NULL)
    memcpy(early, rest.p, rest.n); /* it lives in the HTTP state freed below */
  ws = calloc(1, sizeof(*ws));
  if (ws == NULL || (rest.n > 0 && early == NULL) ||
      plume__buf_appendf(&head,
                         "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                         accept, extra_headers ? extra_headers : "") != 0) {
    free(ws);
    free(early);
    plume__buf_free(&head);
    plume__conn_close(c, 0);
    return UV_ENOMEM;
  }
  rv = plume__conn_write(c, head.p, head.len);
  plume__buf_free(&head);
  if (rv != 0) {
    free(ws);
    free(early);
    return rv;
  }
  ws->h = h;
  c->ws = ws;
  c->flags |= PLUME__CONN_WS;
  plume__http_free(c);
  if (early != NULL) {
    plume__ws_on_data(c, early, rest.n);
    free(early);
  }
  return 0;
}

/* }====== */
