/*
** http.c: HTTP/1.1 requests on a connection, parsed by llhttp 8.1.0. Below it
** is tcp.c; complete requests go to engineio.c (Engine.IO paths) or static.c,
** upgrades to websocket.c through engineio.c; on Engine.IO paths the head of a
** request with a body goes up first, and a body over the limit goes up unread.
** Keep-alive, pipelining, limits and deadlines, and the framing checks llhttp
** 8.1.0 lacks (spec/reliability.md §1.6, §3.2, §4.1; protocol.md §2.6, §5).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "internal.h"

/* Where a connection is between requests. */
enum {
  H_IDLE, /* no byte of the next request yet (keep-alive or header deadline) */
  H_HEAD, /* reading the request head (header deadline from its first byte) */
  H_BODY, /* reading the body (idle deadline between reads) */
  H_WAIT, /* routed, waiting for the answer; later input is held in pending */
  H_DONE, /* no further requests: error answered, upgrade, or closing */
};

/* The head scanner: one state per position in a line. */
enum { SC_START, SC_REQLINE, SC_LINESTART, SC_NAME, SC_VALUE, SC_DONE };

#define BUF_KEEP                                                               \
  65536 /* larger request buffers are released between requests */
#define PENDING_SLACK                                                          \
  65536 /* pipelined bytes allowed beyond one maximal request */

/* Offsets of one header in the request buffer while it may still move. */
typedef struct hdr_off_s {
  uint32_t name_off, name_len, value_off, value_len;
} hdr_off_t;

/*
** The HTTP state of one connection, owned by it (c->http) until
** plume__http_free. The current request lives in buf (url, then header names
** and values, then the body); its slices are built once the request is complete
** and stay valid until the next request starts, which never happens on the
** stack of whoever answered.
*/
struct plume__http_s {
  llhttp_t parser;
  plume__conn_t *c;
  plume__buf_t buf; /* current request bytes */
  plume__buf_t
      pending;     /* received, not parsed: pipelined input or upgrade bytes */
  hdr_off_t *hoff; /* header offsets while parsing */
  plume__header_t *headers; /* header slices, built at completion */
  uint32_t hcap, nheaders;
  uint32_t url_len; /* the url is at offset 0 of buf */
  uint32_t body_off;
  size_t head_bytes; /* raw head bytes so far, against max_header_bytes */
  size_t body_limit; /* max body bytes for this request */
  size_t ext_bytes;  /* chunk-extension bytes: llhttp never bounds them */
  plume__http_req_t req;
  const char *why;       /* reason of a rejected request, for the log */
  int error;             /* status to answer when a parser callback failed */
  uint8_t state;         /* H_* */
  uint8_t scan;          /* SC_* */
  uint8_t cr;            /* the previous head byte was CR: LF must follow */
  uint8_t field;         /* 1 inside a header name, 2 inside a value */
  uint8_t complete;      /* on_message_complete ran */
  uint8_t head_done;     /* on_headers_complete ran for a request with a body */
  uint8_t body_unread;   /* answered before its body was read: close after */
  uint8_t upgrade_ready; /* an upgrade request waits to be routed */
  uint8_t close_after;   /* answer with Connection: close, then close */
  uint8_t stale;         /* answered: reset before the next request */
  uint8_t rearm;         /* answered inside feed: arm keep-alive after it */
  uint8_t parked;        /* the current request is a parked long-poll */
  uint8_t eof;           /* the peer finished sending: close once answered */
  uint8_t depth;         /* inside feed: plume__http_free must defer */
  uint8_t dead;          /* plume__http_free ran while depth > 0 */
  uint8_t cl_count, te_count;
  uint64_t started; /* uv_hrtime() at the request's first byte (access log) */
};

static void feed(plume__http_t *h, const char *data, size_t n,
                 int from_pending);
static void on_timer(uv_timer_t *t);

static void arm(plume__conn_t *c, int ms) {
  if (ms > 0)
    uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&c->timer);
}

/* ------------------------------------------------------------------------- */
/* Answers. */

static const struct {
  int status;
  const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

const char *plume__http_reason(int status) {
  size_t i;
  for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
    if (reasons[i].status == status)
      return reasons[i].text;
  return "Unknown";
}

/* Queues status line and headers. 1xx, 204 and 304 carry no Content-Length. */
static int write_head(plume__conn_t *c, int status, const char *content_type,
                      const char *extra, size_t n, int close_conn) {
  char line[96];
  int k;
  int err;
  if ((status >= 100 && status < 200) || status == 204 || status == 304)
    k = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
                 plume__http_reason(status));
  else
    k = snprintf(line, sizeof(line),
                 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status,
                 plume__http_reason(status), n);
  err = plume__conn_write(c, line, (size_t)k);
  if (err == 0 && content_type != NULL) {
    plume__conn_write(c, "Content-Type: ", 14);
    plume__conn_write(c, content_type, strlen(content_type));
    err = plume__conn_write(c, "\r\n", 2);
  }
  if (err == 0 && extra != NULL)
    err = plume__conn_write(c, extra, strlen(extra));
  if (err == 0)
    err = close_conn
              ? plume__conn_write(c, "Connection: close\r\n\r\n", 21)
              : plume__conn_write(c, "Connection: keep-alive\r\n\r\n", 26);
  return err;
}

/* Answers a request we refuse (or one that timed out) and closes after the
** answer. */
static void send_error(plume__http_t *h, int status, const char *why) {
  plume__conn_t *c = h->c;
  const char *text = plume__http_reason(status);
  char body[64];
  int n = snprintf(body, sizeof(body), "%s\n", text);
  if (h->state == H_DONE || (c->flags & PLUME__CONN_CLOSING))
    return;
  plume__log(c->p, status == 408 ? PLUME__LOG_DEBUG : PLUME__LOG_INFO, "http",
             "conn %u: %d %s (%s)", c->id, status, text, why ? why : "");
  h->state = H_DONE;
  if (write_head(c, status, "text/plain; charset=utf-8", NULL, (size_t)n, 1) ==
      0)
    plume__conn_write(c, body, (size_t)n);
  plume__conn_close(c, 1);
}

static int respond(plume__conn_t *c, int status, const char *content_type,
                   const char *extra, const void *body, size_t n,
                   plume__shared_t *sh) {
  plume__http_t *h = c->http;
  int close_conn, err;
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  if (h == NULL || h->state != H_WAIT)
    return PLUME_ESTATE;
  close_conn = !h->req.keep_alive || h->close_after || h->body_unread ||
               (h->eof && h->pending.len == 0);
  err = write_head(c, status, content_type, extra, n, close_conn);
  plume__log_access(c->p, "http", llhttp_method_name(h->req.method), h->req.url,
                    status, n, h->started);
  /* A HEAD answer states the length of the body it leaves out. */
  if (err == 0 && n > 0 && h->req.method != HTTP_HEAD && status != 304 &&
      status != 204)
    err = sh != NULL ? plume__conn_write_shared(c, sh, 0, n)
                     : plume__conn_write(c, body, n);
  if (close_conn) {
    h->state = H_DONE;
    plume__conn_close(c, 1);
    return err;
  }
  h->state = H_IDLE;
  h->stale = 1;
  if (h->depth > 0) {
    h->rearm = 1; /* feed goes on with the next request and arms the timer */
  } else if (!(c->flags & PLUME__CONN_CLOSING)) {
    /* Answered later (a parked request): held input resumes on the next
    ** turn, never on the stack of whoever answered. */
    if (h->pending.len > 0)
      uv_timer_start(&c->timer, on_timer, 0, 0);
    else
      arm(c, c->p->opts.keepalive_timeout);
  }
  return err;
}

int plume__http_respond(plume__conn_t *c, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t n) {
  return respond(c, status, content_type, extra_headers, body, n, NULL);
}

int plume__http_respond_shared(plume__conn_t *c, int status,
                               const char *content_type,
                               const char *extra_headers,
                               plume__shared_t *body) {
  return respond(c, status, content_type, extra_headers,
                 body != NULL ? body->data : NULL, body != NULL ? body->len : 0,
                 body);
}

void plume__http_park(plume__conn_t *c) {
  plume__http_t *h = c->http;
  if (h != NULL && h->state == H_WAIT && !(c->flags & PLUME__CONN_CLOSING)) {
    h->parked = 1;
    uv_timer_stop(&c->timer);
  }
}

plume__http_req_t *plume__http_current(plume__conn_t *c) {
  plume__http_t *h = c->http;
  return h != NULL && h->state == H_WAIT ? &h->req : NULL;
}

plume_slice_t plume__http_leftover(plume__conn_t *c) {
  plume__http_t *h = c->http;
  plume_slice_t s = {NULL, 0};
  if (h != NULL && h->req.upgrade && h->pending.len > 0) {
    s.p = h->pending.p;
    s.n = h->pending.len;
  }
  return s;
}

/* ------------------------------------------------------------------------- */
/* Requests: headers and query. */

plume_slice_t plume__http_header(const plume__http_req_t *r, const char *name) {
  plume_slice_t none = {NULL, 0};
  size_t n = strlen(name);
  uint32_t i;
  for (i = 0; i < r->nheaders; i++)
    if (r->headers[i].name.n == n &&
        strncasecmp(r->headers[i].name.p, name, n) == 0)
      return r->headers[i].value;
  return none;
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Decodes one character of a query component at *s: %XX, '+' as a space
** (form encoding, as Node's querystring), anything else as is, including a
** bad escape. */
static char decode_char(const char **s, const char *end) {
  const char *p = *s;
  if (*p == '%' && end - p >= 3 && hex_value(p[1]) >= 0 &&
      hex_value(p[2]) >= 0) {
    *s = p + 3;
    return (char)(hex_value(p[1]) << 4 | hex_value(p[2]));
  }
  *s = p + 1;
  return *p == '+' ? ' ' : *p;
}

static int key_equals(const char *k, const char *end, const char *name) {
  while (k < end && *name != '\0')
    if (decode_char(&k, end) != *name++)
      return 0;
  return k == end && *name == '\0';
}

int plume__http_query(const plume__http_req_t *r, const char *name, char *buf,
                      size_t len) {
  const char *q, *end;
  if (r->query.n == 0 || len == 0)
    return -1;
  q = r->query.p;
  end = q + r->query.n;
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *eq, *v;
    size_t k = 0;
    if (amp == NULL)
      amp = end;
    eq = memchr(q, '=', (size_t)(amp - q));
    if (eq == NULL)
      eq = amp;
    if (key_equals(q, eq, name)) {
      v = eq < amp ? eq + 1 : amp;
      while (v < amp) {
        if (k + 1 >= len)
          return -1;
        buf[k++] = decode_char(&v, amp);
      }
      buf[k] = '\0';
      return k > (size_t)0x7fffffff ? -1 : (int)k;
    }
    q = amp + 1;
  }
  return -1;
}

/* ------------------------------------------------------------------------- */
/* Parser callbacks: they only record. A failure sets h->error and returns
** -1. */

static int fail_cb(plume__http_t *h, int status, const char *why) {
  h->error = status;
  h->why = why;
  return -1;
}

static int append(plume__http_t *h, const char *at, size_t n) {
  if (plume__buf_append(&h->buf, at, n) != 0)
    return fail_cb(h, 503, "out of memory");
  return 0;
}

static int on_url(llhttp_t *lp, const char *at, size_t n) {
  plume__http_t *h = lp->data;
  h->url_len += (uint32_t)n;
  return append(h, at, n);
}

/* Trailers of a chunked body come through the header callbacks after the
** body: they are not kept, only counted like chunk extensions. */
static int on_trailer(plume__http_t *h, size_t n) {
  h->ext_bytes += n;
  if (h->ext_bytes > (size_t)h->c->p->opts.max_header_bytes)
    return fail_cb(h, 431, "trailers too long");
  return 0;
}

static int on_header_field(llhttp_t *lp, const char *at, size_t n) {
  plume__http_t *h = lp->data;
  if (h->state == H_BODY)
    return on_trailer(h, n);
  if (h->field != 1) {
    plume_t *p = h->c->p;
    uint32_t max = p->opts.max_headers > 0 &&
                           p->opts.max_headers < PLUME__HTTP_MAX_HEADERS_HARD
                       ? (uint32_t)p->opts.max_headers
                       : PLUME__HTTP_MAX_HEADERS_HARD;
    if (h->nheaders >= max)
      return fail_cb(h, 431, "too many headers");
    if (h->nheaders == h->hcap) {
      uint32_t cap = h->hcap ? h->hcap * 2 : 16;
      hdr_off_t *o = realloc(h->hoff, cap * sizeof(*o));
      plume__header_t *s;
      if (o == NULL)
        return fail_cb(h, 503, "out of memory");
      h->hoff = o;
      s = realloc(h->headers, cap * sizeof(*s));
      if (s == NULL)
        return fail_cb(h, 503, "out of memory");
      h->headers = s;
      h->hcap = cap;
    }
    memset(&h->hoff[h->nheaders], 0, sizeof(hdr_off_t));
    h->hoff[h->nheaders++].name_off = (uint32_t)h->buf.len;
    h->field = 1;
  }
  h->hoff[h->nheaders - 1].name_len += (uint32_t)n;
  return append(h, at, n);
}

static int on_header_field_complete(llhttp_t *lp) {
  plume__http_t *h = lp->data;
  if (h->state == H_BODY)
    return 0;
  if (h->nheaders > 0)
    h->hoff[h->nheaders - 1].value_off = (uint32_t)h->buf.len;
  h->field = 2;
  return 0;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t n) {
  plume__http_t *h = lp->data;
  if (h->state == H_BODY)
    return on_trailer(h, n);
  if (h->nheaders == 0)
    return fail_cb(h, 400, "header value without a name");
  h->hoff[h->nheaders - 1].value_len += (uint32_t)n;
  return append(h, at, n);
}

static int name_is(plume__http_t *h, const hdr_off_t *o, const char *name) {
  size_t n = strlen(name);
  return o->name_len == n && strncasecmp(h->buf.p + o->name_off, name, n) == 0;
}

static int on_header_value_complete(llhttp_t *lp) {
  plume__http_t *h = lp->data;
  hdr_off_t *o;
  h->field = 0;
  if (h->state == H_BODY || h->nheaders == 0)
    return 0;
  o = &h->hoff[h->nheaders - 1];
  while (o->value_len > 0 &&
         (h->buf.p[o->value_off + o->value_len - 1] == ' ' ||
          h->buf.p[o->value_off + o->value_len - 1] == '\t'))
    o->value_len--;
  if (name_is(h, o, "content-length"))
    h->cl_count++;
  else if (name_is(h, o, "transfer-encoding"))
    h->te_count++;
  return 0;
}

static plume_slice_t url_path(plume__http_t *h) {
  plume_slice_t s = {h->buf.p, h->url_len};
  const char *q = s.n > 0 ? memchr(s.p, '?', s.n) : NULL;
  if (q != NULL)
    s.n = (size_t)(q - s.p);
  return s;
}

static int header_has(plume__http_t *h, const char *name, const char *value) {
  uint32_t i;
  size_t n = strlen(value);
  for (i = 0; i < h->nheaders; i++) {
    const hdr_off_t *o = &h->hoff[i];
    if (name_is(h, o, name) && o->value_len == n &&
        strncasecmp(h->buf.p + o->value_off, value, n) == 0)
      return 1;
  }
  return 0;
}

static int on_headers_complete(llhttp_t *lp) {
  plume__http_t *h = lp->data;
  plume__conn_t *c = h->c;
  plume__eio_server_t *srv = plume__eio_server_match(c->p, url_path(h));
  int has_body = (lp->flags & F_CHUNKED) || lp->content_length > 0;
  /* llhttp refuses these too; checked again so no lenient build can let them
  ** by. */
  if (h->cl_count > 1 || (h->cl_count > 0 && h->te_count > 0))
    return fail_cb(h, 400, "conflicting body framing");
  h->body_off = (uint32_t)h->buf.len;
  h->body_limit = srv != NULL ? plume__eio_server_max_payload(srv)
                              : (size_t)c->p->opts.max_body_bytes;
  if ((lp->flags & F_CONTENT_LENGTH) && lp->content_length > h->body_limit)
    return fail_cb(h, 413, "declared body over the limit");
  if (has_body && !(lp->flags & F_CHUNKED) &&
      plume__buf_reserve(&h->buf, (size_t)lp->content_length) != 0)
    return fail_cb(h, 503, "out of memory");
  h->state = H_BODY;
  if (!has_body)
    return 0;
  /* begin_body runs once llhttp has returned, before any body byte. */
  h->head_done = 1;
  return HPE_PAUSED;
}

static int on_body(llhttp_t *lp, const char *at, size_t n) {
  plume__http_t *h = lp->data;
  if (h->buf.len - h->body_off + n > h->body_limit)
    return fail_cb(h, 413, "body over the limit");
  return append(h, at, n);
}

static int on_chunk_extension(llhttp_t *lp, const char *at, size_t n) {
  plume__http_t *h = lp->data;
  h->ext_bytes += n;
  if (h->ext_bytes > (size_t)h->c->p->opts.max_header_bytes)
    return fail_cb(h, 400, "chunk extensions too long");
  return 0;
}

static int on_message_complete(llhttp_t *lp) {
  plume__http_t *h = lp->data;
  h->complete = 1;
  h->req.keep_alive = (uint8_t)llhttp_should_keep_alive(lp);
  return HPE_PAUSED; /* one request at a time: the rest waits for its answer */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

/* ------------------------------------------------------------------------- */
/* The head scanner: llhttp 8.1.0 accepts obs-fold and whitespace before a
** colon, and predates the bare-CR fix (CVE-2023-30589, CVE-2024-27982), so
** raw head bytes are checked here before llhttp sees them. Every line must
** end in CRLF. */

/* Returns how many bytes of p[0..n) belong to the head (h->scan is SC_DONE
** when the head ended there), or -1 with h->error set. */
static long scan_head(plume__http_t *h, const char *p, size_t n) {
  size_t i, max = (size_t)h->c->p->opts.max_header_bytes;
  for (i = 0; i < n; i++) {
    char ch = p[i];
    if (++h->head_bytes > max)
      return fail_cb(h, 431, "head too large");
    if (h->cr) {
      if (ch != '\n')
        return fail_cb(h, 400, "bare CR");
      h->cr = 0;
      if (h->scan == SC_LINESTART) {
        h->scan = SC_DONE;
        return (long)i + 1;
      }
      if (h->scan == SC_NAME)
        return fail_cb(h, 400, "header line without a colon");
      if (h->scan != SC_START)
        h->scan = SC_LINESTART;
      continue;
    }
    if (ch == '\r') {
      h->cr = 1;
      continue;
    }
    if (ch == '\n')
      return fail_cb(h, 400, "bare LF");
    switch (h->scan) {
    case SC_START:
      h->scan = SC_REQLINE;
      break;
    case SC_LINESTART:
      if (ch == ' ' || ch == '\t')
        return fail_cb(h, 400, "obs-fold");
      h->scan = ch == ':' ? SC_VALUE : SC_NAME;
      break;
    case SC_NAME:
      if (ch == ':')
        h->scan = SC_VALUE;
      else if (ch == ' ' || ch == '\t')
        return fail_cb(h, 400, "whitespace before a colon");
      break;
    default:
      break;
    }
  }
  return (long)n;
}

/* ------------------------------------------------------------------------- */
/* Requests, one at a time. */

static void reset_request(plume__http_t *h) {
  if (h->buf.cap > BUF_KEEP)
    plume__buf_free(&h->buf);
  h->buf.len = 0;
  h->nheaders = 0;
  h->url_len = 0;
  h->body_off = 0;
  h->head_bytes = 0;
  h->ext_bytes = 0;
  h->why = NULL;
  h->error = 0;
  h->scan = SC_START;
  h->cr = h->field = h->complete = h->close_after = h->stale = h->parked = 0;
  h->head_done = h->body_unread = 0;
  h->cl_count = h->te_count = 0;
  memset(&h->req, 0, sizeof(h->req));
}

static void build_request(plume__http_t *h) {
  plume__http_req_t *r = &h->req;
  const char *base = h->buf.p;
  plume_slice_t up;
  uint32_t i;
  r->method = h->parser.method;
  r->url.p = base;
  r->url.n = h->url_len;
  r->path = url_path(h);
  if (r->path.n < r->url.n) {
    r->query.p = base + r->path.n + 1;
    r->query.n = r->url.n - r->path.n - 1;
  }
  for (i = 0; i < h->nheaders; i++) {
    const hdr_off_t *o = &h->hoff[i];
    h->headers[i].name.p = base + o->name_off;
    h->headers[i].name.n = o->name_len;
    h->headers[i].value.p = base + o->value_off;
    h->headers[i].value.n = o->value_len;
  }
  r->headers = h->headers;
  r->nheaders = h->nheaders;
  r->body.p = base != NULL ? base + h->body_off : NULL;
  r->body.n = h->buf.len - h->body_off;
  if (h->parser.upgrade) {
    up = plume__http_header(r, "upgrade");
    r->upgrade = r->method != HTTP_CONNECT && up.n == 9 &&
                 strncasecmp(up.p, "websocket", 9) == 0;
    /* Whatever follows an upgrade head is not HTTP: this request is the
    ** last. */
    h->close_after = 1;
  }
}

/* Hands a complete request to its route; the answer may come now or later. */
static void route(plume__http_t *h) {
  plume__conn_t *c = h->c;
  plume__http_req_t *r = &h->req;
  plume__eio_server_t *srv;
  h->complete = 0;
  h->state = H_WAIT;
  uv_timer_stop(&c->timer);
  if (r->method == HTTP_CONNECT) {
    send_error(h, 400, "CONNECT");
    return;
  }
  srv = plume__eio_server_match(c->p, r->path);
  if (srv != NULL)
    plume__eio_handle_request(srv, c, r);
  else if (r->upgrade)
    send_error(h, 400, "upgrade outside Engine.IO");
  else
    plume__static_serve(c->p, c, r);
}

/*
** The head of a request with a body is complete. On an Engine.IO path it goes
** up now, before the body is read, so that the session knows a POST is in
** progress (protocol.md §2.6); an answer given there leaves the body unread
** and ends the connection. Then Expect: 100-continue gets its interim answer.
*/
static void begin_body(plume__http_t *h) {
  plume__conn_t *c = h->c;
  plume__eio_server_t *srv =
      h->parser.upgrade ? NULL : plume__eio_server_match(c->p, url_path(h));
  h->head_done = 0;
  if (srv != NULL) {
    build_request(h);
    h->state = H_WAIT; /* plume__http_current and the answers see the head */
    h->body_unread = 1;
    plume__eio_handle_head(srv, c, &h->req);
    if (h->state != H_WAIT || h->dead || (c->flags & PLUME__CONN_CLOSING))
      return;
    h->state = H_BODY;
    h->body_unread = 0;
  }
  if (header_has(h, "expect", "100-continue"))
    plume__conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/*
** A body over an Engine.IO server's max_payload is that server's to answer
** (413 with an empty body and its CORS headers, the session kept: protocol.md
** §2.6). The request goes up without its body, marked over_limit; the rest of
** the body stays unread and the connection closes after the answer. Returns 0
** off Engine.IO paths, where send_error answers.
*/
static int route_over_limit(plume__http_t *h) {
  plume__conn_t *c = h->c;
  if (h->parser.upgrade || plume__eio_server_match(c->p, url_path(h)) == NULL)
    return 0;
  plume__log(c->p, PLUME__LOG_INFO, "http", "conn %u: 413 (%s)", c->id, h->why);
  build_request(h);
  h->req.body.n = 0;
  h->req.over_limit = 1;
  h->body_unread = 1;
  route(h);
  return 1;
}

/* Parses and routes requests from data until one waits for its answer, the
** connection closes or the data ends. Returns the bytes consumed. */
static size_t consume(plume__http_t *h, const char *data, size_t n) {
  plume__conn_t *c = h->c;
  size_t off = 0;
  while (off < n && h->state != H_WAIT && h->state != H_DONE && !h->dead &&
         !(c->flags & PLUME__CONN_CLOSING)) {
    const char *p = data + off;
    size_t k = n - off;
    llhttp_errno_t err;
    if (h->state == H_IDLE && h->stale)
      reset_request(h);
    if (h->state == H_IDLE || h->state == H_HEAD) {
      long sk = scan_head(h, p, k);
      if (sk < 0)
        break;
      if (h->state == H_IDLE && h->scan != SC_START) {
        h->state = H_HEAD; /* the header deadline runs from the first byte */
        h->started = uv_hrtime();
        arm(c, c->p->opts.header_timeout);
      }
      k = (size_t)sk;
    }
    err = llhttp_execute(&h->parser, p, k);
    if (err == HPE_OK) {
      if (h->scan == SC_DONE && h->state == H_HEAD) {
        fail_cb(h, 400, "head ends differently for llhttp");
        break;
      }
      off += k;
      continue;
    }
    if (err == HPE_PAUSED && h->head_done) {
      off += (size_t)(llhttp_get_error_pos(&h->parser) - p);
      llhttp_resume(&h->parser);
      begin_body(h);
      continue;
    }
    if (err != HPE_PAUSED || !h->complete) {
      if (h->error == 0)
        fail_cb(h, 400, llhttp_get_error_reason(&h->parser));
      break;
    }
    off += (size_t)(llhttp_get_error_pos(&h->parser) - p);
    llhttp_resume(&h->parser);
    build_request(h);
    if (h->parser.upgrade) {
      /* Routed by feed once the bytes after the head are stored for
      ** websocket.c. */
      h->state = H_WAIT;
      h->upgrade_ready = 1;
      return off;
    }
    route(h);
  }
  if (h->error != 0 && !h->dead) {
    if (h->error != 413 || !route_over_limit(h))
      send_error(h, h->error, h->why);
    return n;
  }
  return off;
}

static size_t pending_cap(const plume_options_t *o) {
  size_t body = (size_t)(o->max_body_bytes > o->max_http_buffer_size
                             ? o->max_body_bytes
                             : o->max_http_buffer_size);
  return (size_t)o->max_header_bytes + body + PENDING_SLACK;
}

static void destroy(plume__http_t *h) {
  plume__buf_free(&h->buf);
  plume__buf_free(&h->pending);
  free(h->hoff);
  free(h->headers);
  free(h);
}

/* Runs consume over fresh bytes or over h->pending, keeps what is left,
** routes a waiting upgrade, and sets the deadline for the state it ends in. */
static void feed(plume__http_t *h, const char *data, size_t n,
                 int from_pending) {
  plume__conn_t *c = h->c;
  size_t k;
  h->depth++;
  if (from_pending) {
    data = h->pending.p;
    n = h->pending.len;
  }
  k = consume(h, data, n);
  if (h->dead || (c->flags & PLUME__CONN_CLOSING) || h->state == H_DONE) {
    if (!h->dead)
      h->pending.len = 0;
  } else if (from_pending) {
    if (k > 0 && k < n)
      memmove(h->pending.p, h->pending.p + k, n - k);
    h->pending.len = n - k;
  } else if (k < n && plume__buf_append(&h->pending, data + k, n - k) != 0) {
    plume__conn_close(c, 0);
  }
  if (h->upgrade_ready && !h->dead && !(c->flags & PLUME__CONN_CLOSING)) {
    h->upgrade_ready = 0;
    route(h);
  }
  if (!h->dead && !(c->flags & PLUME__CONN_CLOSING) && h->eof &&
      h->state != H_WAIT) {
    /* Nothing more will come: whatever is left is an incomplete request. */
    plume__conn_close(c, 1);
  } else if (!h->dead && !(c->flags & PLUME__CONN_CLOSING)) {
    if (h->state == H_BODY)
      arm(c, c->p->opts.header_timeout);
    else if (h->state == H_IDLE &&
             (h->rearm || !uv_is_active((uv_handle_t *)&c->timer)))
      arm(c, c->p->opts.keepalive_timeout);
    h->rearm = 0;
  }
  if (--h->depth == 0 && h->dead)
    destroy(h);
}

static void on_timer(uv_timer_t *t) {
  plume__conn_t *c = t->data;
  plume__http_t *h = c->http;
  if (h == NULL || (c->flags & PLUME__CONN_CLOSING))
    return;
  switch (h->state) {
  case H_IDLE:
    if (h->pending.len > 0) {
      feed(h, NULL, 0, 1);
    } else {
      plume__log(c->p, PLUME__LOG_DEBUG, "http", "conn %u: idle, closed",
                 c->id);
      plume__conn_close(c, 0);
    }
    break;
  case H_HEAD:
  case H_BODY:
    send_error(h, 408, h->state == H_HEAD ? "head deadline" : "body stalled");
    break;
  default:
    break;
  }
  /* Timers run before the poll; the per-turn flusher runs after it. */
  plume__flush_all(c->p);
}

void plume__http_on_data(plume__conn_t *c, const char *p, size_t n) {
  plume__http_t *h = c->http;
  if (h == NULL || h->state == H_DONE)
    return;
  if (h->state == H_WAIT || h->pending.len > 0) {
    /* Held until the current request is answered; reading goes on so EOF is
    ** seen. */
    if (h->pending.len + n > pending_cap(&c->p->opts) ||
        plume__buf_append(&h->pending, p, n) != 0) {
      plume__log(c->p, PLUME__LOG_INFO, "http",
                 "conn %u: too much pipelined input, closed", c->id);
      plume__conn_close(c, 0);
      return;
    }
    if (h->state != H_WAIT)
      feed(h, NULL, 0, 1);
    return;
  }
  feed(h, p, n, 0);
}

void plume__http_on_eof(plume__conn_t *c) {
  plume__http_t *h = c->http;
  int answering =
      h != NULL && ((h->state == H_WAIT && !h->parked && !h->req.upgrade) ||
                    (h->state == H_IDLE && h->pending.len > 0));
  if (!answering) {
    plume__conn_close(c, 1);
    return;
  }
  h->eof = 1;
  plume__conn_read(c, 0);
}

int plume__http_init(plume__conn_t *c) {
  plume__http_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return UV_ENOMEM;
  llhttp_init(&h->parser, HTTP_REQUEST, &settings);
  h->parser.data = h;
  h->c = c;
  h->state = H_IDLE;
  c->http = h;
  arm(c, c->p->opts.header_timeout);
  return 0;
}

void plume__http_free(plume__conn_t *c) {
  plume__http_t *h = c->http;
  if (h == NULL)
    return;
  c->http = NULL;
  /* The timer is left alone: route stopped it, and after an upgrade it is
  ** not ours. */
  if (h->depth > 0)
    h->dead = 1; /* freed when feed unwinds */
  else
    destroy(h);
}
