/*
** socketio_codec.c: the pure Socket.IO packet codec (protocol.md §3.3 encoding,
** §3.4 decoding and attachment reassembly, §7 v3 replies; reliability.md §1.2,
** §4.4 #24-#30) and the Lua glue that turns payloads into Lua values and back
** through json.c. No loop, fuzzed. The sessions above it are socketio.c;
** engineio.c below hands up the messages.
*/
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "internal.h"

/* ------------------------------------------------------------------------- */
/* {====== Decoding one packet */

/* Event names a client may not emit: the server's own lifecycle events
** (socket.io-parser RESERVED_EVENTS). "error" is not among them; the session
** layer must cope with it. */
static const char *const reserved_events[] = {
    "connect",     "connect_error",  "disconnect", "disconnecting",
    "newListener", "removeListener", NULL};

static int decode_fail(const char **err, const char *msg, int code) {
  if (err != NULL)
    *err = msg;
  return code;
}

static int is_binary_type(int type) {
  return type == PLUME__SIO_BINARY_EVENT || type == PLUME__SIO_BINARY_ACK;
}

/* Checks the payload's shape against the packet type (§3.4 step 6). */
static int check_shape(plume__sio_packet_t *pkt, const plume__json_info_t *info,
                       const char **err) {
  int i;
  switch (pkt->type) {
  case PLUME__SIO_CONNECT:
    if (pkt->data.n == 0 || info->type == PLUME__JSON_OBJECT)
      return 0;
    break;
  case PLUME__SIO_DISCONNECT:
    if (pkt->data.n == 0)
      return 0;
    break;
  case PLUME__SIO_EVENT:
  case PLUME__SIO_BINARY_EVENT:
    if (pkt->data.n == 0 || info->type != PLUME__JSON_ARRAY || info->count == 0)
      break;
    if (info->first_type == PLUME__JSON_NUMBER) {
      pkt->event = info->first;
      return 0;
    }
    if (info->first_type != PLUME__JSON_STRING)
      break;
    for (i = 0; reserved_events[i] != NULL; i++)
      if (plume__json_string_eq(info->first, reserved_events[i]))
        return decode_fail(err, "reserved event name", PLUME_EPROTO);
    pkt->event = info->first;
    return 0;
  default: /* ACK, BINARY_ACK */
    if (pkt->data.n > 0 && info->type == PLUME__JSON_ARRAY)
      return 0;
    break;
  }
  return decode_fail(err, "invalid payload", PLUME_EPROTO);
}

int plume__sio_decode(const char *p, size_t n, int max_attachments,
                      int max_depth, plume__sio_packet_t *pkt,
                      const char **err) {
  const char *s = p, *end = p + n, *start;
  plume__json_info_t info;
  int64_t v;
  int r;
  memset(pkt, 0, sizeof(*pkt));
  memset(&info, 0, sizeof(info));
  pkt->nsp.p = "/";
  pkt->nsp.n = 1;
  pkt->id = -1;
  if (max_attachments <= 0)
    max_attachments = 10;
  if (n == 0 || *s < '0' || *s > '6')
    return decode_fail(err, "unknown packet type", PLUME_EPROTO);
  pkt->type = *s++ - '0';
  if (pkt->type == PLUME__SIO_CONNECT_ERROR)
    return decode_fail(err, "CONNECT_ERROR from a client", PLUME_EPROTO);

  if (is_binary_type(pkt->type)) { /* "<count>-": 1..max_attachments */
    start = s;
    v = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++)
      if (v <= 1000000000) /* saturate: any such count is too many */
        v = v * 10 + (*s - '0');
    if (s == start || s == end || *s != '-' || v < 1)
      return decode_fail(err, "illegal attachments", PLUME_EPROTO);
    if (v > max_attachments)
      return decode_fail(err, "too many attachments", PLUME_ETOOBIG);
    pkt->attachments = (int)v;
    s++;
  }

  /* The namespace runs to the first ',' or to the end. */
  if (s < end && *s == '/') {
    start = s;
    while (s < end && *s != ',')
      s++;
    pkt->nsp.p = start;
    pkt->nsp.n = (size_t)(s - start);
    if (s < end)
      s++;
  }

  /* The ack id: digits, as long as they stay a JavaScript-safe integer. */
  if (s < end && *s >= '0' && *s <= '9') {
    v = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
      v = v * 10 + (*s - '0');
      if (v > PLUME__SIO_MAX_ID)
        return decode_fail(err, "invalid ack id", PLUME_EPROTO);
    }
    pkt->id = v;
  }

  pkt->data.p = s;
  pkt->data.n = (size_t)(end - s);
  if (pkt->data.n > 0) {
    r = plume__json_scan(s, pkt->data.n, max_depth,
                         is_binary_type(pkt->type) ? pkt->attachments : -1,
                         &info);
    if (r != 0)
      return decode_fail(err,
                         r == PLUME_ETOOBIG ? "payload nested too deep"
                         : info.error != NULL &&
                                 strcmp(info.error, "illegal attachments") == 0
                             ? "illegal attachments"
                             : "invalid payload",
                         r);
  }
  return check_shape(pkt, &info, err);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Reassembling binary packets */

/* Buffers above this size are released once their packet is done, not kept per
** client. */
#define KEEP_BYTES 65536

void plume__sio_decoder_init(plume__sio_decoder_t *d, int max_attachments,
                             int max_depth) {
  memset(d, 0, sizeof(*d));
  d->max_attachments = max_attachments > 0 ? max_attachments : 10;
  d->max_depth = max_depth;
}

void plume__sio_decoder_free(plume__sio_decoder_t *d) {
  plume__buf_free(&d->text);
  plume__buf_free(&d->bin);
  free(d->att);
  d->att = NULL;
  d->expected = d->received = 0;
}

static int feed_fail(plume__sio_decoder_t *d, const char *msg, int code) {
  d->error = msg;
  d->expected = d->received = 0;
  memset(&d->pkt, 0, sizeof(d->pkt));
  return code;
}

int plume__sio_feed(plume__sio_decoder_t *d, int binary, const char *p,
                    size_t n) {
  size_t off;
  int i, r;
  if (d->expected == 0) {
    if (binary)
      return feed_fail(d, "got binary data when not reconstructing a packet",
                       PLUME_EPROTO);
    if (d->text.cap > KEEP_BYTES)
      plume__buf_free(&d->text);
    d->text.len = 0;
    if (plume__buf_append(&d->text, p, n) != 0)
      return feed_fail(d, "not enough memory", UV_ENOMEM);
    r = plume__sio_decode(d->text.p, n, d->max_attachments, d->max_depth,
                          &d->pkt, &d->error);
    if (r != 0)
      return feed_fail(d, d->error, r);
    if (d->pkt.attachments == 0)
      return PLUME__SIO_PACKET;
    if (d->att == NULL &&
        (d->att = malloc((size_t)d->max_attachments * sizeof(*d->att))) == NULL)
      return feed_fail(d, "not enough memory", UV_ENOMEM);
    if (d->bin.cap > KEEP_BYTES)
      plume__buf_free(&d->bin);
    d->bin.len = 0;
    d->expected = d->pkt.attachments; /* >= 1 by plume__sio_decode */
    d->received = 0;
    return PLUME__SIO_MORE;
  }
  if (!binary)
    return feed_fail(d, "got plaintext data when reconstructing a packet",
                     PLUME_EPROTO);
  if (plume__buf_append(&d->bin, p, n) != 0)
    return feed_fail(d, "not enough memory", UV_ENOMEM);
  d->att[d->received++].n = n;
  if (d->received < d->expected)
    return PLUME__SIO_MORE;
  for (i = 0, off = 0; i < d->received; i++) {
    d->att[i].p = d->bin.p != NULL ? d->bin.p + off : "";
    off += d->att[i].n;
  }
  d->expected = 0; /* disarmed before the packet is handed out */
  return PLUME__SIO_PACKET;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Encoding server packets */

/* Copies n bytes to dst + *len when dst is not NULL; always advances *len. */
static void put(char *dst, size_t *len, const void *s, size_t n) {
  if (dst != NULL && n > 0)
    memcpy(dst + *len, s, n);
  *len += n;
}

static size_t put_uint(char *dst, size_t *len, uint64_t v) {
  char tmp[24];
  size_t n = sizeof(tmp);
  do {
    tmp[--n] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(dst, len, tmp + n, sizeof(tmp) - n);
  return sizeof(tmp) - n;
}

static int is_root(plume_slice_t nsp) {
  return nsp.n == 0 || (nsp.n == 1 && nsp.p[0] == '/');
}

/* Writes "<type>[<att>-][<nsp>,][<id>]" to dst (NULL: only measures); returns
** the length. */
static size_t put_head(char *dst, const plume__sio_packet_t *pkt) {
  size_t len = 0;
  char c = (char)('0' + pkt->type);
  put(dst, &len, &c, 1);
  if (is_binary_type(pkt->type)) {
    put_uint(dst, &len, (uint64_t)pkt->attachments);
    put(dst, &len, "-", 1);
  }
  if (!is_root(pkt->nsp)) {
    put(dst, &len, pkt->nsp.p, pkt->nsp.n);
    put(dst, &len, ",", 1);
  }
  if (pkt->id >= 0)
    put_uint(dst, &len, (uint64_t)pkt->id);
  return len;
}

static int append_head(plume__buf_t *b, const plume__sio_packet_t *pkt) {
  size_t n = put_head(NULL, pkt);
  if (plume__buf_reserve(b, n) != 0)
    return UV_ENOMEM;
  b->len += put_head(b->p + b->len, pkt);
  return 0;
}

int plume__sio_encode(plume__buf_t *b, const plume__sio_packet_t *pkt) {
  size_t n = put_head(NULL, pkt) + pkt->data.n;
  if (plume__buf_reserve(b, n) != 0)
    return UV_ENOMEM;
  b->len += put_head(b->p + b->len, pkt);
  put(b->p, &b->len, pkt->data.p, pkt->data.n);
  return 0;
}

plume__shared_t *plume__sio_encode_shared(const plume__sio_packet_t *pkt,
                                          int eio_prefix) {
  size_t len = eio_prefix ? 1 : 0;
  size_t n = len + put_head(NULL, pkt) + pkt->data.n;
  plume__shared_t *sh = plume__shared_alloc(n);
  if (sh == NULL)
    return NULL;
  if (eio_prefix)
    sh->data[0] = '4';
  len += put_head(sh->data + len, pkt);
  put(sh->data, &len, pkt->data.p, pkt->data.n);
  return sh;
}

int plume__sio_encode_connect(plume__buf_t *b, plume_slice_t nsp,
                              const char *sid, int eio) {
  plume__sio_packet_t pkt;
  size_t mark = b->len;
  memset(&pkt, 0, sizeof(pkt));
  pkt.type = PLUME__SIO_CONNECT;
  pkt.nsp = nsp;
  pkt.id = -1;
  if (append_head(b, &pkt) != 0)
    return UV_ENOMEM;
  if (eio >= 4 && (plume__buf_append(b, "{\"sid\":", 7) != 0 ||
                   plume__json_write_string(b, sid, strlen(sid)) != 0 ||
                   plume__buf_appendc(b, '}') != 0)) {
    b->len = mark;
    return UV_ENOMEM;
  }
  return 0;
}

int plume__sio_encode_connect_error(plume__buf_t *b, plume_slice_t nsp,
                                    const char *message, plume_slice_t data,
                                    int eio) {
  plume__sio_packet_t pkt;
  size_t mark = b->len;
  int r;
  memset(&pkt, 0, sizeof(pkt));
  pkt.type = PLUME__SIO_CONNECT_ERROR;
  pkt.nsp = nsp;
  pkt.id = -1;
  if (append_head(b, &pkt) != 0)
    return UV_ENOMEM;
  if (eio < 4) /* v3 clients get the data itself, or the message */
    r = data.n > 0 ? plume__buf_append(b, data.p, data.n)
                   : plume__json_write_string(b, message, strlen(message));
  else {
    r = plume__buf_append(b, "{\"message\":", 11);
    if (r == 0)
      r = plume__json_write_string(b, message, strlen(message));
    if (r == 0 && data.n > 0) {
      r = plume__buf_append(b, ",\"data\":", 8);
      if (r == 0)
        r = plume__buf_append(b, data.p, data.n);
    }
    if (r == 0)
      r = plume__buf_appendc(b, '}');
  }
  if (r != 0) {
    b->len = mark;
    return UV_ENOMEM;
  }
  return 0;
}

int plume__sio_encode_disconnect(plume__buf_t *b, plume_slice_t nsp) {
  plume__sio_packet_t pkt;
  memset(&pkt, 0, sizeof(pkt));
  pkt.type = PLUME__SIO_DISCONNECT;
  pkt.nsp = nsp;
  pkt.id = -1;
  return append_head(b, &pkt);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Lua glue: payloads <-> Lua values */

int plume__sio_push_data(lua_State *L, const plume__sio_packet_t *pkt,
                         const plume_slice_t *att, int max_depth, int spread,
                         const char **err) {
  plume__json_dec_t d;
  int base = lua_gettop(L), natt = 0, i, r;
  if (pkt->data.n == 0)
    return 0;
  memset(&d, 0, sizeof(d));
  d.max_depth = max_depth;
  d.natt = -1;
  d.spread = spread;
  if (is_binary_type(pkt->type) && att != NULL) {
    natt = pkt->attachments;
    if (!lua_checkstack(L, natt + 8))
      return decode_fail(err, "too many attachments", PLUME_ETOOBIG);
    for (i = 0; i < natt; i++)
      plume__binary_push(L, att[i].p, att[i].n); /* ..., bin0 .. binN-1 */
    d.att_base = base + 1;
    d.natt = natt;
  }
  r = plume__json_decode(L, pkt->data.p, pkt->data.n, &d);
  if (r != 0) {
    lua_settop(L, base);
    return decode_fail(err, d.error, r);
  }
  if (natt > 0) {
    lua_rotate(L, base + 1, -natt); /* the attachments to the top ... */
    lua_pop(L, natt);               /* ... and away */
  }
  return d.count;
}

int plume__sio_encode_args(lua_State *L, int first, int n,
                           plume__sio_packet_t *pkt, plume__json_enc_t *e) {
  int r;
  plume__json_enc_reset(e);
  e->binary = 1;
  e->att_table = 0;
  if ((r = plume__json_encode_list(L, first, n, e)) != 0)
    return r;
  pkt->data.p = e->out.p;
  pkt->data.n = e->out.len;
  pkt->attachments = e->natt;
  if (pkt->type == PLUME__SIO_EVENT || pkt->type == PLUME__SIO_BINARY_EVENT)
    pkt->type = e->natt > 0 ? PLUME__SIO_BINARY_EVENT : PLUME__SIO_EVENT;
  else if (pkt->type == PLUME__SIO_ACK || pkt->type == PLUME__SIO_BINARY_ACK)
    pkt->type = e->natt > 0 ? PLUME__SIO_BINARY_ACK : PLUME__SIO_ACK;
  return 0;
}

/* }====== */
