/*
** test_engineio.c: the Engine.IO codec (engineio_codec.c) as tables, fed whole
** and split at every offset, and the sessions of engineio.c over an in-memory
** loopback on a real uv loop (h2o style): http.c, websocket.c and tcp.c are
** replaced by stubs, renamed so the archive's copies never link in. protocol.md
** §2, §7 and §9.1; reliability.md §4.2.
*/
#define plume__http_respond lb_http_respond
#define plume__http_respond_shared lb_http_respond_shared
#define plume__http_park lb_http_park
#define plume__http_current lb_http_current
#define plume__http_header lb_http_header
#define plume__conn_close lb_conn_close
#define plume__conn_peer lb_conn_peer
#define plume__ws_accept lb_ws_accept
#define plume__ws_send lb_ws_send
#define plume__ws_close lb_ws_close
#define plume__log lb_log
#define plume__flush_all lb_flush_all
#include "../../runtime/engineio.c"

#include <stdarg.h>
#include <strings.h>

#include "check.h"

#define B(s) s, sizeof(s) - 1

/* ------------------------------------------------------------------------- */
/* {====== Codec */

/* Decodes a payload into "T<type>:<text>|" / "B<type>:<hex>|" items, then "E"
** on an error. */
static void decode_all(int proto, int binary, const char *p, size_t n,
                       plume__buf_t *out) {
  plume__eio_reader_t r;
  plume__eio_packet_t pkt;
  unsigned char bytes[512];
  int rc;
  size_t i;
  out->len = 0;
  plume__eio_reader_init(&r, proto, binary, p, n);
  while ((rc = plume__eio_reader_next(&r, &pkt)) == 1) {
    if (pkt.binary) {
      long k =
          pkt.n <= sizeof(bytes) ? plume__eio_packet_bytes(&pkt, bytes) : -1;
      if (k < 0) {
        plume__buf_appendc(out, 'E');
        break;
      }
      plume__buf_appendf(out, "B%d:", pkt.type);
      for (i = 0; i < (size_t)k; i++)
        plume__buf_appendf(out, "%02x", bytes[i]);
    } else {
      plume__buf_appendf(out, "T%d:", pkt.type);
      plume__buf_append(out, pkt.data, pkt.n);
    }
    plume__buf_appendc(out, '|');
  }
  if (rc < 0)
    plume__buf_appendc(out, 'E');
  plume__buf_appendc(out, '\0');
  out->len--;
}

typedef struct prow_s {
  int proto, binary;
  const char *in;
  size_t n;
  const char *want;
} prow_t;

static const prow_t payload_rows[] = {
    {4, 0, B("4hello"), "T4:hello|"},
    {4, 0,
     B("4hello\x1e"
       "2\x1e"
       "4world"),
     "T4:hello|T2:|T4:world|"},
    {4, 0,
     B("4test1\x1e"
       "4test2\x1e"
       "4test3"),
     "T4:test1|T4:test2|T4:test3|"},
    {4, 0,
     B("4hello\x1e"
       "bAQIDBA=="),
     "T4:hello|B4:01020304|"},
    {4, 0, B("3"), "T3:|"},
    {4, 0, B("2probe"), "T2:probe|"},
    {4, 0, B("4"), "T4:|"},
    {4, 0, B("4\xe2\x82\xac"), "T4:\xe2\x82\xac|"},
    {4, 0, B("b"), "B4:|"},
    {4, 0, B("bAQ=="), "B4:01|"},
    {4, 0, B("bAQI="), "B4:0102|"},
    {4, 0, B(""), "E"},
    {4, 0, B("abc"), "E"},
    {4, 0, B("7"), "E"},
    {4, 0, B("4a\x1e"), "T4:a|E"},
    {4, 0, B("\x1e"), "E"},
    {4, 0,
     B("4a\x1e\x1e"
       "4b"),
     "T4:a|E"},
    {4, 0,
     B("4a\x1e"
       "9"),
     "T4:a|E"},
    {4, 0, B("bAQID="), "E"},
    {4, 0, B("bA==="), "E"},
    {4, 0, B("b===="), "E"},
    {4, 0, B("b@@@@"), "E"},
    {4, 0, B("bAR=="), "E"},
    {4, 0, B("bAQ=A"), "E"},
    {4, 0, B("4\xc3\x28"), "E"},
    {4, 0,
     B("4ok\x1e"
       "4\xed\xa0\x80"),
     "T4:ok|E"},
    {4, 0, B("4\xf4\x90\x80\x80"), "E"},
    {3, 0, B("6:4hello"), "T4:hello|"},
    {3, 0, B("6:4hello1:2"), "T4:hello|T2:|"},
    {3, 0, B("2:4\xe2\x82\xac"), "T4:\xe2\x82\xac|"},
    {3, 0, B("3:4\xf0\x9f\x98\x80"), "T4:\xf0\x9f\x98\x80|"},
    {3, 0, B("2:4\xf0\x9f\x98\x80"), "E"},
    {3, 0, B("1:4\xe2\x82\xac"), "T4:|E"},
    {3, 0, B("10:b4AQIDBA=="), "B4:01020304|"},
    {3, 0, B("2:b4"), "B4:|"},
    {3, 0, B("0:"), ""},
    {3, 0, B("0:1:3"), "T3:|"},
    {3, 0, B("01:6"), "T6:|"},
    {3, 0, B(""), "E"},
    {3, 0, B(":4"), "E"},
    {3, 0, B("2:4"), "E"},
    {3, 0, B("1:"), "E"},
    {3, 0, B("a:4"), "E"},
    {3, 0, B("-1:4"), "E"},
    {3, 0, B("1:41"), "T4:|E"},
    {3, 0, B("1:9"), "E"},
    {3, 0, B("1:b"), "E"},
    {3, 0, B("2:b9"), "E"},
    {3, 0, B("3:b4A"), "E"},
    {3, 0, B("9999999999:4"), "E"},
    {3, 0, B("2:4\xc3"), "E"},
    {3, 1,
     B("\x00\x06\xff"
       "4hello"
       "\x01\x05\xff\x04\x01\x02\x03\x04"),
     "T4:hello|B4:01020304|"},
    {3, 1,
     B("\x00\x01\xff"
       "2"),
     "T2:|"},
    {3, 1,
     B("\x00\x01\x00\xff"
       "4hello1234"
       "\x00\x03\xff"
       "4\xc3\xa9"),
     "T4:hello1234|T4:\xc3\xa9|"},
    {3, 1, B("\x01\x01\xff\x04"), "B4:|"},
    {3, 1,
     B("\x00\x04\xff"
       "b4AQ"),
     "E"},
    {3, 1,
     B("\x00\x06\xff"
       "b4AQ=="),
     "B4:01|"},
    {3, 1, B(""), "E"},
    {3, 1,
     B("\x02\x01\xff"
       "2"),
     "E"},
    {3, 1, B("\x00\x01"), "E"},
    {3, 1,
     B("\x00\xff"
       "2"),
     "E"},
    {3, 1,
     B("\x00\x0a\xff"
       "2"),
     "E"},
    {3, 1, B("\x00\x00\xff"), "E"},
    {3, 1,
     B("\x00\x05\xff"
       "2"),
     "E"},
    {3, 1, B("\x01\x01\xff\x09"), "E"},
    {3, 1,
     B("\x00\x02\xff"
       "4\xc3"),
     "E"},
    {3, 1, B("\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\xff"), "E"},
    {3, 1,
     B("\x00\x01\xff"
       "4"
       "\x00"),
     "T4:|E"},
};

static void test_payload_table(void) {
  plume__buf_t out = {NULL, 0, 0};
  size_t i;
  for (i = 0; i < sizeof(payload_rows) / sizeof(payload_rows[0]); i++) {
    const prow_t *r = &payload_rows[i];
    /* An exact-size copy: ASan sees any read past the end. */
    char *copy = malloc(r->n ? r->n : 1);
    memcpy(copy, r->in, r->n);
    decode_all(r->proto, r->binary, copy, r->n, &out);
    if (strcmp(out.p, r->want) != 0)
      fprintf(stdout, "#   row %zu: got \"%s\", want \"%s\"\n", i, out.p,
              r->want);
    CHECK(strcmp(out.p, r->want) == 0);
    free(copy);
  }
  plume__buf_free(&out);
}

/* Every prefix of every row decodes without harm, and the packets before the
** last one it returns are packets of the whole payload, in order (a cut can
** only shorten the end). */
static void test_payload_every_split(void) {
  plume__buf_t whole = {NULL, 0, 0}, part = {NULL, 0, 0};
  size_t i, k;
  for (i = 0; i < sizeof(payload_rows) / sizeof(payload_rows[0]); i++) {
    const prow_t *r = &payload_rows[i];
    decode_all(r->proto, r->binary, r->in, r->n, &whole);
    for (k = 0; k < r->n; k++) {
      char *copy = malloc(k ? k : 1), *last;
      memcpy(copy, r->in, k);
      decode_all(r->proto, r->binary, copy, k, &part);
      last = part.len > 1 ? memrchr(part.p, '|', part.len - 1) : NULL;
      if (last != NULL)
        CHECK(strncmp(whole.p, part.p, (size_t)(last - part.p) + 1) == 0);
      free(copy);
    }
  }
  plume__buf_free(&whole);
  plume__buf_free(&part);
}

/* v3 payloads concatenate: split between two packets, each half decodes to its
** share. */
static void test_v3_payload_concatenation(void) {
  static const char text[] = "6:4hello2:4\xe2\x82\xac"
                             "10:b4AQIDBA==1:3";
  static const char bin[] = "\x00\x06\xff"
                            "4hello"
                            "\x01\x05\xff\x04\x01\x02\x03\x04"
                            "\x00\x01\xff"
                            "6";
  plume__buf_t whole = {NULL, 0, 0}, a = {NULL, 0, 0}, b = {NULL, 0, 0},
               ab = {NULL, 0, 0};
  const char *in[2] = {text, bin};
  size_t len[2] = {sizeof(text) - 1, sizeof(bin) - 1}, k;
  int j, boundaries;
  for (j = 0; j < 2; j++) {
    decode_all(3, j, in[j], len[j], &whole);
    boundaries = 0;
    for (k = 1; k < len[j]; k++) {
      decode_all(3, j, in[j], k, &a);
      decode_all(3, j, in[j] + k, len[j] - k, &b);
      if (strchr(a.p, 'E') != NULL || strchr(b.p, 'E') != NULL)
        continue;
      if (getenv("LB_VERBOSE"))
        fprintf(stderr, "split %zu: %s + %s\n", k, a.p, b.p);
      ab.len = 0;
      plume__buf_appendf(&ab, "%s%s", a.p, b.p);
      CHECK_STR(ab.p, whole.p);
      boundaries++;
    }
    CHECK_EQ(boundaries, j == 0 ? 3 : 2); /* exactly the packet boundaries */
  }
  plume__buf_free(&whole);
  plume__buf_free(&a);
  plume__buf_free(&b);
  plume__buf_free(&ab);
}

static void test_single_packets(void) {
  plume__eio_packet_t pkt;
  CHECK_EQ(plume__eio_decode_packet(4, B("4hello"), &pkt), 0);
  CHECK_EQ(pkt.type, 4);
  CHECK_MEM(pkt.data, pkt.n, "hello");
  /* A text frame is never split on \x1e. */
  CHECK_EQ(plume__eio_decode_packet(4,
                                    B("4a\x1e"
                                      "4b"),
                                    &pkt),
           0);
  CHECK_EQ(pkt.n, 4);
  CHECK_EQ(plume__eio_decode_packet(4, B("bAQIDBA=="), &pkt), 0);
  CHECK(pkt.binary && pkt.b64 && pkt.type == 4);
  CHECK_EQ(plume__eio_decode_packet(3, B("b4AQIDBA=="), &pkt), 0);
  CHECK(pkt.binary && pkt.b64 && pkt.type == 4);
  CHECK_EQ(plume__eio_decode_packet(3, B("b2"), &pkt), 0);
  CHECK_EQ(pkt.type, 2);
  CHECK_EQ(plume__eio_decode_packet(4, B(""), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_packet(4, B("abc"), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_packet(4, B("/"), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_packet(4, B("bAQID"), &pkt), 0);
  CHECK_EQ(plume__eio_decode_packet(4, B("bAQ"), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_packet(3, B("b"), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_packet(3, B("b7AA=="), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_binary_frame(4, B("\x01\x02"), &pkt), 0);
  CHECK(pkt.binary && pkt.type == 4 && pkt.n == 2 && !pkt.b64);
  CHECK_EQ(plume__eio_decode_binary_frame(4, "", 0, &pkt), 0);
  CHECK_EQ(plume__eio_decode_binary_frame(3, B("\x04\x01\x02"), &pkt), 0);
  CHECK(pkt.type == 4 && pkt.n == 2 && pkt.data[0] == 1);
  CHECK_EQ(plume__eio_decode_binary_frame(3, "", 0, &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_binary_frame(3, B("\x07"), &pkt), PLUME_EPROTO);
  CHECK_EQ(plume__eio_decode_binary_frame(3, B("4"), &pkt), PLUME_EPROTO);
}

static void test_utf8_and_utf16(void) {
  CHECK_EQ(plume__eio_utf16_len(B("4hello")), 6);
  CHECK_EQ(plume__eio_utf16_len(B("4\xe2\x82\xac")), 2);
  CHECK_EQ(plume__eio_utf16_len(B("\xf0\x9f\x98\x80")), 2);
  CHECK_EQ(plume__eio_utf16_len(B("\xc3\xa9\xc3\xa9")), 2);
  CHECK_EQ(plume__eio_utf16_len(B("\xc0\x80")), -1);         /* overlong */
  CHECK_EQ(plume__eio_utf16_len(B("\xe0\x80\x80")), -1);     /* overlong */
  CHECK_EQ(plume__eio_utf16_len(B("\xed\xa0\x80")), -1);     /* surrogate */
  CHECK_EQ(plume__eio_utf16_len(B("\xf4\x90\x80\x80")), -1); /* > U+10FFFF */
  CHECK_EQ(plume__eio_utf16_len(B("\xe2\x82")), -1);         /* truncated */
  CHECK_EQ(plume__eio_utf16_len(B("\x80")), -1);
  CHECK(plume__eio_utf8_valid(B("\xef\xbf\xbf\xf4\x8f\xbf\xbf")));
  CHECK(!plume__eio_utf8_valid(B("\xff")));
  CHECK(plume__eio_utf8_valid("", 0));
}

static plume__eio_qent_t qent(int binary, const char *p, size_t n) {
  plume__eio_qent_t q;
  q.sh = plume__shared_new(p, n);
  q.binary = (uint8_t)binary;
  return q;
}

static void encode_check(int kind, const plume__eio_qent_t *q, size_t nq,
                         const char *want, size_t want_n) {
  size_t size = plume__eio_payload_size(kind, q, nq), n;
  char *dst = malloc(size ? size : 1);
  n = plume__eio_payload_encode(kind, q, nq, dst);
  CHECK_EQ(n, size);
  CHECK(n == want_n && memcmp(dst, want, n) == 0);
  if (n != want_n || memcmp(dst, want, n) != 0)
    fprintf(stdout, "#   got %zu bytes \"%.*s\"\n", n, (int)n, dst);
  free(dst);
}

static void test_payload_encode(void) {
  plume__eio_qent_t q[4];
  plume__buf_t out = {NULL, 0, 0};
  int i;
  q[0] = qent(0, B("4hello"));
  q[1] = qent(1, B("\x01\x02\x03\x04"));
  q[2] = qent(0, B("4\xe2\x82\xac"));
  q[3] = qent(1, "", 0);
  encode_check(PLUME__EIO_PAYLOAD_V4, q, 2,
               B("4hello\x1e"
                 "bAQIDBA=="));
  encode_check(PLUME__EIO_PAYLOAD_V4, q, 1, B("4hello"));
  encode_check(PLUME__EIO_PAYLOAD_V4, q, 0, "", 0);
  encode_check(PLUME__EIO_PAYLOAD_V4, q + 2, 2,
               B("4\xe2\x82\xac\x1e"
                 "b"));
  encode_check(PLUME__EIO_PAYLOAD_V3_TEXT, q, 3,
               B("6:4hello10:b4AQIDBA==2:4\xe2\x82\xac"));
  encode_check(PLUME__EIO_PAYLOAD_V3_TEXT, q, 0, B("0:"));
  encode_check(PLUME__EIO_PAYLOAD_V3_TEXT, q + 3, 1, B("2:b4"));
  encode_check(PLUME__EIO_PAYLOAD_V3_BINARY, q, 2,
               B("\x00\x06\xff"
                 "4hello"
                 "\x01\x05\xff\x04\x01\x02\x03\x04"));
  encode_check(PLUME__EIO_PAYLOAD_V3_BINARY, q + 2, 2,
               B("\x00\x04\xff"
                 "4\xe2\x82\xac"
                 "\x01\x01\xff\x04"));
  /* Whatever is encoded decodes back to the same packets. */
  for (i = 0; i < 3; i++) {
    size_t size = plume__eio_payload_size(i, q, 4);
    char *dst = malloc(size);
    plume__eio_payload_encode(i, q, 4, dst);
    decode_all(i == 0 ? 4 : 3, i == 2, dst, size, &out);
    CHECK_STR(out.p, "T4:hello|B4:01020304|T4:\xe2\x82\xac|B4:|");
    free(dst);
  }
  for (i = 0; i < 4; i++)
    plume__shared_unref(q[i].sh);
  plume__buf_free(&out);
}

/* A 10 KB packet: lengths with several digits in both v3 formats. */
static void test_payload_long(void) {
  plume__eio_qent_t q[2];
  plume__buf_t out = {NULL, 0, 0};
  char *text = malloc(10001), *dst;
  size_t size;
  int kind;
  memset(text, 'x', 10001);
  text[0] = '4';
  q[0] = qent(0, text, 10001);
  q[1] = qent(1, text, 300);
  for (kind = 0; kind < 3; kind++) {
    size = plume__eio_payload_size(kind, q, 2);
    dst = malloc(size);
    CHECK_EQ(plume__eio_payload_encode(kind, q, 2, dst), size);
    if (kind == PLUME__EIO_PAYLOAD_V3_TEXT)
      CHECK(memcmp(dst, "10001:4xx", 9) == 0);
    if (kind == PLUME__EIO_PAYLOAD_V3_BINARY)
      CHECK(memcmp(dst,
                   "\x00\x01\x00\x00\x00\x01\xff"
                   "4x",
                   9) == 0);
    decode_all(kind == 0 ? 4 : 3, kind == 2, dst, size, &out);
    CHECK(out.len > 10000 && strchr(out.p, 'E') == NULL);
    free(dst);
  }
  plume__shared_unref(q[0].sh);
  plume__shared_unref(q[1].sh);
  plume__buf_free(&out);
  free(text);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The loopback below the sessions */

/* One client connection as the stubs see it: its current request and what it
** got. */
typedef struct lb_conn_s {
  plume__conn_t c; /* first: stubs cast back */
  plume__http_req_t req;
  plume__header_t headers[16];
  char buf[8192]; /* request bytes: url, header lines, body */
  int has_req;    /* a request waits for its answer */
  int parked;
  int answers; /* HTTP answers written */
  int bad;     /* an answer without a request, or after the close */
  int status;
  char ctype[64];
  char hdrs[2048];
  plume__buf_t body;
  int closed;             /* plume__conn_close ran */
  int ws;                 /* upgraded */
  int ws_closed, ws_code; /* plume__ws_close ran */
  int peer_closed;        /* the client went away */
  const plume__ws_handler_t *wh;
  plume__buf_t frames; /* "T:text\n" / "B:hex\n" per message sent */
  int nframes;
  struct lb_conn_s *next;
} lb_conn_t;

static uv_loop_t loop;
static plume_t *P;
static plume__eio_server_t *srv;
static lb_conn_t *conns;
static uint32_t next_id;
static int fail_accept;
static int peer_v6;

int plume__http_respond(plume__conn_t *c, int status, const char *content_type,
                        const char *extra, const void *body, size_t n) {
  lb_conn_t *l = (lb_conn_t *)c;
  if (!l->has_req || l->closed) {
    l->bad++;
    return PLUME_ESTATE;
  }
  l->answers++;
  l->status = status;
  snprintf(l->ctype, sizeof(l->ctype), "%s", content_type ? content_type : "");
  snprintf(l->hdrs, sizeof(l->hdrs), "%s", extra ? extra : "");
  l->body.len = 0;
  plume__buf_append(&l->body, body, n);
  plume__buf_appendc(&l->body, '\0');
  l->body.len--;
  l->has_req = 0;
  l->parked = 0;
  /* Poison the request: nothing may keep pointers into it after the answer. */
  memset(l->buf, 'X', sizeof(l->buf));
  if (l->req.upgrade)
    plume__conn_close(c, 1);
  return 0;
}

int plume__http_respond_shared(plume__conn_t *c, int status,
                               const char *content_type, const char *extra,
                               plume__shared_t *body) {
  return plume__http_respond(c, status, content_type, extra, body->data,
                             body->len);
}

void plume__http_park(plume__conn_t *c) {
  ((lb_conn_t *)c)->parked = 1;
}

plume__http_req_t *plume__http_current(plume__conn_t *c) {
  lb_conn_t *l = (lb_conn_t *)c;
  return l->has_req ? &l->req : NULL;
}

plume_slice_t plume__http_header(const plume__http_req_t *r, const char *name) {
  plume_slice_t none = {NULL, 0};
  uint32_t i;
  for (i = 0; i < r->nheaders; i++)
    if (r->headers[i].name.n == strlen(name) &&
        strncasecmp(r->headers[i].name.p, name, strlen(name)) == 0)
      return r->headers[i].value;
  return none;
}

/* As tcp.c: the session holding the connection hears of the close first. */
void plume__conn_close(plume__conn_t *c, int drain) {
  lb_conn_t *l = (lb_conn_t *)c;
  if (l->closed)
    return;
  l->closed = 1;
  c->flags |= PLUME__CONN_CLOSING;
  if (c->owner != NULL) {
    plume__eio_conn_closed(c);
    c->owner = NULL;
  }
}

void plume__conn_peer(plume__conn_t *c, char *buf, size_t len) {
  snprintf(buf, len, "%s", peer_v6 ? "[::1]:6000" : "127.0.0.1:5000");
}

int plume__ws_accept(plume__conn_t *c, const plume__ws_handler_t *h,
                     const char *extra) {
  lb_conn_t *l = (lb_conn_t *)c;
  if (!l->has_req || !l->req.upgrade || fail_accept) {
    plume__conn_close(c, 1);
    return PLUME_EPROTO;
  }
  l->answers++;
  l->status = 101;
  snprintf(l->hdrs, sizeof(l->hdrs), "%s", extra ? extra : "");
  l->has_req = 0;
  memset(l->buf, 'X', sizeof(l->buf));
  l->ws = 1;
  l->wh = h;
  c->flags |= PLUME__CONN_WS;
  return 0;
}

int plume__ws_send(plume__conn_t *c, int binary, const void *prefix,
                   size_t prefix_n, plume__shared_t *sh, size_t off, size_t n) {
  lb_conn_t *l = (lb_conn_t *)c;
  const unsigned char *pre = prefix;
  size_t i;
  if (!l->ws || l->ws_closed || l->closed)
    return PLUME_ECLOSED;
  plume__buf_append(&l->frames, binary ? "B:" : "T:", 2);
  for (i = 0; i < prefix_n; i++) {
    if (binary)
      plume__buf_appendf(&l->frames, "%02x", pre[i]);
    else
      plume__buf_appendc(&l->frames, (char)pre[i]);
  }
  for (i = 0; i < n; i++) {
    if (binary)
      plume__buf_appendf(&l->frames, "%02x", (unsigned char)sh->data[off + i]);
    else
      plume__buf_appendc(&l->frames, sh->data[off + i]);
  }
  plume__buf_appendc(&l->frames, '\n');
  plume__buf_appendc(&l->frames, '\0');
  l->frames.len--;
  l->nframes++;
  return 0;
}

void plume__ws_close(plume__conn_t *c, int code) {
  lb_conn_t *l = (lb_conn_t *)c;
  if (!l->ws_closed) {
    l->ws_closed = 1;
    l->ws_code = code;
  }
  plume__conn_close(c, 1);
}

void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) {
  if (getenv("LB_VERBOSE") != NULL) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", subsystem);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
}

static int flushes;
void plume__flush_all(plume_t *p) {
  flushes++;
}

static lb_conn_t *lb_new(void) {
  lb_conn_t *l = calloc(1, sizeof(*l));
  l->c.p = P;
  l->c.id = ++next_id;
  l->next = conns;
  conns = l;
  return l;
}

/*
** Puts a request on l without sending it: "GET /engine.io/?EIO=4", header
** lines "Name: value\n" (may be NULL), a body. A request whose headers hold
** "Upgrade: websocket" is an upgrade.
*/
static void lb_build(lb_conn_t *l, int method, const char *url,
                     const char *headers, const char *body, size_t n) {
  plume__http_req_t *r = &l->req;
  char *d = l->buf;
  const char *q;
  CHECK(!l->has_req && !l->closed && !l->ws);
  memset(r, 0, sizeof(*r));
  r->method = method;
  r->url.p = d;
  r->url.n = strlen(url);
  memcpy(d, url, r->url.n);
  d += r->url.n;
  q = memchr(r->url.p, '?', r->url.n);
  r->path.p = r->url.p;
  r->path.n = q != NULL ? (size_t)(q - r->url.p) : r->url.n;
  if (q != NULL) {
    r->query.p = q + 1;
    r->query.n = r->url.n - r->path.n - 1;
  }
  r->headers = l->headers;
  while (headers != NULL && *headers != '\0') {
    const char *colon = strchr(headers, ':'), *end = strchr(headers, '\n');
    plume__header_t *h = &l->headers[r->nheaders++];
    h->name.p = d;
    h->name.n = (size_t)(colon - headers);
    memcpy(d, headers, h->name.n);
    d += h->name.n;
    h->value.p = d;
    h->value.n = (size_t)(end - colon - 2);
    memcpy(d, colon + 2, h->value.n);
    d += h->value.n;
    if (h->name.n == 7 && strncasecmp(h->name.p, "upgrade", 7) == 0)
      r->upgrade = 1;
    headers = end + 1;
  }
  r->body.p = d;
  r->body.n = n;
  if (n > 0)
    memcpy(d, body, n);
  r->keep_alive = 1;
  l->has_req = 1;
  l->parked = 0;
}

/* Hands l's request, complete, to its server as http.c does. */
static void lb_dispatch(lb_conn_t *l) {
  plume__eio_server_t *s = plume__eio_server_match(P, l->req.path);
  CHECK(s != NULL);
  if (s != NULL)
    plume__eio_handle_request(s, &l->c, &l->req);
}

static void lb_request(lb_conn_t *l, int method, const char *url,
                       const char *headers, const char *body, size_t n) {
  lb_build(l, method, url, headers, body, n);
  lb_dispatch(l);
}

/* A POST whose head has arrived and whose body has not: http.c's
** plume__eio_handle_head. lb_dispatch(l) delivers it whole later. */
static lb_conn_t *post_head(const char *url, const char *body, size_t n) {
  lb_conn_t *l = lb_new();
  lb_build(l, HTTP_POST, url, "Content-Type: text/plain;charset=UTF-8\n", body,
           n);
  l->req.body.n = 0;
  plume__eio_handle_head(srv, &l->c, &l->req);
  l->req.body.n = n;
  return l;
}

static lb_conn_t *get(const char *url) {
  lb_conn_t *l = lb_new();
  lb_request(l, HTTP_GET, url, NULL, NULL, 0);
  return l;
}

static lb_conn_t *post(const char *url, const char *body, size_t n) {
  lb_conn_t *l = lb_new();
  lb_request(l, HTTP_POST, url, "Content-Type: text/plain;charset=UTF-8\n",
             body, n);
  return l;
}

static lb_conn_t *ws_open(const char *url) {
  lb_conn_t *l = lb_new();
  lb_request(l, HTTP_GET, url,
             "Connection: Upgrade\nUpgrade: websocket\n"
             "Sec-WebSocket-Version: 13\n",
             NULL, 0);
  return l;
}

/* A client message on an upgraded connection. */
static void ws_recv(lb_conn_t *l, int binary, const char *p, size_t n) {
  char *copy = malloc(n ? n : 1);
  memcpy(copy, p, n);
  if (l->ws && !l->ws_closed && !l->closed && l->wh != NULL)
    l->wh->on_message(&l->c, binary, copy, n);
  free(copy);
}

/* The client goes away, as tcp.c then websocket.c report it. */
static void lb_drop(lb_conn_t *l) {
  l->peer_closed = 1;
  plume__conn_close(&l->c, 0);
  if (l->ws && !l->ws_closed && l->wh != NULL)
    l->wh->on_close(&l->c, 1006);
}

static void on_stop(uv_timer_t *t) {
  uv_stop(t->loop);
}

/* Runs the loop for ms of real time (0: one turn). */
static void run_ms(int ms) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_stop, (uint64_t)ms, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

/* The sid of an open packet in a body or frame. */
static const char *sid_of(const char *text, char *sid) {
  const char *p = strstr(text, "\"sid\":\"");
  size_t n = 0;
  sid[0] = '\0';
  if (p != NULL) {
    p += 7;
    while (p[n] != '"' && n < 63)
      n++;
    memcpy(sid, p, n);
    sid[n] = '\0';
  }
  return sid;
}

static char url_buf[256];
static const char *url(const char *fmt, const char *sid) {
  snprintf(url_buf, sizeof(url_buf), fmt, sid);
  return url_buf;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The layer above: an echo server that counts */

typedef struct up_s {
  int opens, closes, messages;
  int echo;          /* send every message back (the suite's EIO server) */
  int close_in_open; /* plume__eio_close from on_open */
  int close_in_message;
  int send_in_open;
  char reason[64];
  plume__eio_session_t *last;
  plume__buf_t log; /* "T:text|" / "B:hex|" */
} up_t;

static up_t up;

/* Per session: open and close calls, checked to be exactly one each. */
typedef struct up_mark_s {
  int closes;
} up_mark_t;

static void up_open(plume__eio_session_t *s) {
  up_mark_t *m = calloc(1, sizeof(*m));
  up.opens++;
  up.last = s;
  plume__eio_set_ud(s, m);
  if (up.send_in_open)
    plume__eio_send(s, 0, B("hi"));
  if (up.close_in_open)
    plume__eio_close(s, "forced close");
}

static void up_message(plume__eio_session_t *s, int binary, const char *p,
                       size_t n) {
  size_t i;
  up.messages++;
  plume__buf_append(&up.log, binary ? "B:" : "T:", 2);
  for (i = 0; i < n; i++) {
    if (binary)
      plume__buf_appendf(&up.log, "%02x", (unsigned char)p[i]);
    else
      plume__buf_appendc(&up.log, p[i]);
  }
  plume__buf_appendc(&up.log, '|');
  plume__buf_appendc(&up.log, '\0');
  up.log.len--;
  if (up.echo)
    plume__eio_send(s, binary, p, n);
  if (up.close_in_message)
    plume__eio_close(s, "forced close");
}

static void up_close(plume__eio_session_t *s, const char *reason) {
  up_mark_t *m = plume__eio_get_ud(s);
  up.closes++;
  snprintf(up.reason, sizeof(up.reason), "%s", reason);
  CHECK(m != NULL);
  if (m != NULL) {
    m->closes++;
    CHECK_EQ(m->closes, 1);
    free(m);
  }
  plume__eio_set_ud(s, NULL);
  /* Sends after the close are refused, never crash. */
  CHECK_EQ(plume__eio_send(s, 0, B("late")), PLUME_ECLOSED);
}

static const plume__eio_handler_t up_handler = {up_open, up_message, up_close};

/* A fresh instance: loop, options, one server at /engine.io/ with the suite's
** setup. */
static void setup_with(int ping_interval, int ping_timeout, int cors) {
  plume__eio_config_t cfg;
  static char *origins[] = {"*", NULL};
  memset(&up, 0, sizeof(up));
  up.echo = 1;
  uv_loop_init(&loop);
  P = calloc(1, sizeof(*P));
  P->loop = &loop;
  plume_options_init(&P->opts);
  plume__eio_config_init(&cfg, &P->opts);
  cfg.ping_interval = ping_interval;
  cfg.ping_timeout = ping_timeout;
  cfg.allow_eio3 = 1;
  if (cors) {
    cfg.cors = 1;
    cfg.cors_origins = origins;
  }
  CHECK_EQ(plume__eio_server_new(P, &cfg, &up_handler, NULL, &srv), 0);
  conns = NULL;
  fail_accept = 0;
}

static void setup(void) {
  setup_with(10000, 5000, 1);
}

/* Frees everything and checks that nothing is left: sessions, handles,
** callbacks. */
static void teardown(void) {
  lb_conn_t *l, *n;
  plume__eio_server_free(srv);
  srv = NULL;
  run_ms(0);
  CHECK_EQ(P->pending_closes, 0);
  CHECK(P->eio_servers == NULL);
  CHECK_EQ(up.opens, up.closes);
  for (l = conns; l != NULL; l = n) {
    n = l->next;
    CHECK_EQ(l->bad, 0);
    CHECK(l->c.owner == NULL);
    plume__buf_free(&l->body);
    plume__buf_free(&l->frames);
    free(l);
  }
  conns = NULL;
  CHECK_EQ(uv_loop_close(&loop), 0);
  plume__buf_free(&up.log);
  free(P);
  P = NULL;
}

/* Opens a polling session; returns the handshake connection. */
static lb_conn_t *handshake_polling(const char *query, char *sid) {
  lb_conn_t *l = get(url("/engine.io/?%s&transport=polling", query));
  sid_of(l->body.p, sid);
  return l;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Handshake and validation (§2.2, §2.4, §9.1 #1-7) */

static void test_handshake_polling(void) {
  char sid[64], want[256];
  lb_conn_t *l;
  setup_with(300, 200, 1);
  l = handshake_polling("EIO=4", sid);
  CHECK_EQ(l->status, 200);
  CHECK_EQ(strlen(sid), 20);
  snprintf(want, sizeof(want),
           "0{\"sid\":\"%s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,"
           "\"pingTimeout\":200,\"maxPayload\":1000000}",
           sid);
  CHECK_STR(l->body.p, want);
  CHECK_STR(l->ctype, "text/plain; charset=UTF-8");
  CHECK(strstr(l->hdrs, "cache-control: no-store\r\n") != NULL);
  CHECK(strstr(l->hdrs, "Access-Control-Allow-Origin: *\r\n") != NULL);
  CHECK_EQ(up.opens, 1);
  CHECK_STR(plume__eio_sid(up.last), sid);
  CHECK_EQ(plume__eio_protocol(up.last), 4);
  CHECK_EQ(plume__eio_transport(up.last), PLUME__EIO_POLLING);
  CHECK(plume__eio_session_server(up.last) == srv);
  teardown();
}

/* The handshake request outlives its HTTP buffer (the stubs poison it on
** answer). */
static void test_handshake_data(void) {
  const plume__http_req_t *hs;
  lb_conn_t *l = NULL;
  setup();
  l = lb_new();
  peer_v6 = 1;
  lb_request(l, HTTP_GET, "/engine.io/?EIO=4&transport=polling&x=%20y",
             "Host: example\nX-Token: abc\n", NULL, 0);
  CHECK_EQ(l->status, 200);
  hs = plume__eio_handshake(up.last);
  CHECK(hs != NULL);
  CHECK_MEM(hs->url.p, hs->url.n, "/engine.io/?EIO=4&transport=polling&x=%20y");
  CHECK_MEM(hs->path.p, hs->path.n, "/engine.io/");
  CHECK_MEM(hs->query.p, hs->query.n, "EIO=4&transport=polling&x=%20y");
  CHECK_EQ(hs->nheaders, 2);
  CHECK_MEM(hs->headers[1].name.p, hs->headers[1].name.n, "X-Token");
  CHECK_MEM(hs->headers[1].value.p, hs->headers[1].value.n, "abc");
  CHECK_EQ(hs->method, HTTP_GET);
  CHECK_STR(plume__eio_remote_address(up.last), "::1");
  peer_v6 = 0;
  get(url("/engine.io/?EIO=4&transport=polling", ""));
  CHECK_STR(plume__eio_remote_address(up.last), "127.0.0.1");
  teardown();
}

typedef struct vrow_s {
  int method;
  const char *url;
  const char *headers;
  int status;
  const char *body;
} vrow_t;

#define EIOP "/engine.io/"
static const vrow_t validation_rows[] = {
    {HTTP_GET, EIOP "?transport=polling", NULL, 400,
     "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
    {HTTP_GET, EIOP "?EIO=abc&transport=polling", NULL, 400,
     "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
    {HTTP_GET, EIOP "?EIO=5&transport=polling", NULL, 400,
     "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
    {HTTP_GET, EIOP "?EIO=44&transport=polling", NULL, 400,
     "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
    {HTTP_GET, EIOP "?EIO=4&EIO=4&transport=polling", NULL, 400,
     "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
    {HTTP_GET, EIOP "?EIO=4", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=abc", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=tobi", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=__proto__", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=constructor", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling&transport=polling", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling%00", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=Polling", NULL, 400,
     "{\"code\":0,\"message\":\"Transport unknown\"}"},
    {HTTP_POST, EIOP "?EIO=4&transport=polling", NULL, 400,
     "{\"code\":2,\"message\":\"Bad handshake method\"}"},
    {HTTP_PUT, EIOP "?EIO=4&transport=polling", NULL, 400,
     "{\"code\":2,\"message\":\"Bad handshake method\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling&sid=nope", NULL, 400,
     "{\"code\":1,\"message\":\"Session ID unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling&sid=__proto__", NULL, 400,
     "{\"code\":1,\"message\":\"Session ID unknown\"}"},
    {HTTP_POST, EIOP "?EIO=4&transport=polling&sid=x&sid=y", NULL, 400,
     "{\"code\":1,\"message\":\"Session ID unknown\"}"},
    {HTTP_GET,
     EIOP
     "?EIO=4&transport=polling&sid="
     "0123456789012345678901234567890123456789012345678901234567890123456789",
     NULL, 400, "{\"code\":1,\"message\":\"Session ID unknown\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=websocket", NULL, 400,
     "{\"code\":3,\"message\":\"Bad request\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling", "Origin: http://a\x01\n", 400,
     "{\"code\":3,\"message\":\"Bad request\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling", "Origin: http://a\x7f\n", 400,
     "{\"code\":3,\"message\":\"Bad request\"}"},
    {HTTP_GET, EIOP "?EIO=4&transport=polling&sid=", NULL, 200, NULL},
    {HTTP_GET, EIOP "?transport=polling&EIO=4&t=burst&j=0", NULL, 200, NULL},
    {HTTP_GET, EIOP "?EIO=4&transport=polling", "Origin: http://\xc3\xa9\n",
     200, NULL},
};

static void test_validation(void) {
  size_t i;
  setup();
  for (i = 0; i < sizeof(validation_rows) / sizeof(validation_rows[0]); i++) {
    const vrow_t *v = &validation_rows[i];
    lb_conn_t *l = lb_new();
    lb_request(l, v->method, v->url, v->headers, NULL, 0);
    if (l->status != v->status)
      fprintf(stdout, "#   row %zu: status %d\n", i, l->status);
    CHECK_EQ(l->status, v->status);
    if (v->body != NULL) {
      CHECK_STR(l->body.p, v->body);
      CHECK_STR(l->ctype, "application/json");
      CHECK(strstr(l->hdrs, "Access-Control-Allow-Origin: *\r\n") != NULL);
    }
    CHECK(!l->closed);
  }
  CHECK_EQ(up.opens, 3);
  teardown();
}

/* EIO=3 is refused unless allow_eio3, and then only "3" exactly. */
static void test_eio3_gate(void) {
  plume__eio_config_t cfg;
  plume__eio_server_t *other;
  lb_conn_t *l;
  setup();
  plume__eio_config_init(&cfg, &P->opts);
  memcpy(cfg.path, "/strict/", 9);
  cfg.allow_eio3 = 0;
  CHECK_EQ(plume__eio_server_new(P, &cfg, &up_handler, NULL, &other), 0);
  l = get("/strict/?EIO=3&transport=polling");
  CHECK_EQ(l->status, 400);
  CHECK_STR(l->body.p, "{\"code\":5,\"message\":\"Unsupported protocol "
                       "version\"}");
  CHECK(strstr(l->hdrs, "Access-Control") == NULL); /* no CORS configured */
  l = get("/engine.io/?EIO=3&transport=polling");
  CHECK_EQ(l->status, 200);
  CHECK(strstr(l->body.p, ":0{\"sid\":\"") != NULL);
  CHECK(plume__eio_server_match(P, (plume_slice_t){"/engine.io", 10}) == NULL);
  CHECK(plume__eio_server_match(P, (plume_slice_t){"/strict/x", 9}) == other);
  plume__eio_server_free(other);
  teardown();
}

/* Upgrade requests that fail get a raw 400 with the message and the connection
** closes. */
static void test_upgrade_refusals(void) {
  static const struct {
    const char *url;
    const char *body;
  } rows[] = {
      {EIOP "?transport=websocket", "Unsupported protocol version"},
      {EIOP "?EIO=abc&transport=websocket", "Unsupported protocol version"},
      {EIOP "?EIO=4", "Transport unknown"},
      {EIOP "?EIO=4&transport=abc", "Transport unknown"},
      {EIOP "?EIO=4&transport=__proto__", "Transport unknown"},
      {EIOP "?EIO=4&transport=polling", "Bad request"},
      {EIOP "?EIO=4&transport=websocket&sid=unknown", "Session ID unknown"},
  };
  size_t i;
  setup();
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    lb_conn_t *l = ws_open(rows[i].url);
    CHECK_EQ(l->status, 400);
    CHECK_STR(l->body.p, rows[i].body);
    CHECK_STR(l->ctype, "text/html");
    CHECK(l->closed && !l->ws);
  }
  CHECK_EQ(up.opens, 0);
  teardown();
}

static const char *deny_all(void *ud, plume__conn_t *c,
                            const plume__http_req_t *r) {
  return plume__http_header(r, "x-deny").p != NULL ? "go \"away\"" : NULL;
}

static int make_id(void *ud, char *out, size_t len) {
  static int n;
  snprintf(out, len, "custom-%d", ++n);
  return n == 3 ? -1 : 0; /* the third call fails */
}

static void test_hooks(void) {
  lb_conn_t *l;
  char sid[64];
  setup();
  srv->cfg.allow_request = deny_all;
  srv->cfg.generate_id = make_id;
  l = lb_new();
  lb_request(l, HTTP_GET, EIOP "?EIO=4&transport=polling", "X-Deny: 1\n", NULL,
             0);
  CHECK_EQ(l->status, 403);
  CHECK_STR(l->body.p, "{\"code\":4,\"message\":\"go \\\"away\\\"\"}");
  l = handshake_polling("EIO=4", sid);
  CHECK_STR(sid, "custom-1");
  l = handshake_polling("EIO=4", sid);
  CHECK_STR(sid, "custom-2");
  l = get(EIOP "?EIO=4&transport=polling");
  CHECK_EQ(l->status, 400); /* the generator failed */
  CHECK_EQ(up.opens, 2);
  l = get(EIOP "?EIO=4&transport=polling&sid=custom-1");
  CHECK_EQ(l->parked, 1);
  teardown();
}

static void test_cors(void) {
  static char *list[] = {"http://good", NULL};
  char **own, sid[64];
  lb_conn_t *l;
  setup();
  own = srv->cfg.cors_origins;
  l = lb_new();
  lb_request(l, HTTP_OPTIONS, EIOP "?EIO=4&transport=polling&sid=whatever",
             "Origin: http://x\nAccess-Control-Request-Headers: content-type\n",
             NULL, 0);
  CHECK_EQ(l->status, 204);
  CHECK_STR(l->hdrs, "Access-Control-Allow-Origin: *\r\n"
                     "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,"
                     "DELETE\r\n"
                     "Access-Control-Allow-Headers: content-type\r\n"
                     "Vary: Access-Control-Request-Headers\r\n"
                     "Content-Length: 0\r\n");
  /* An origin list echoes the allowed origin only, with credentials. */
  srv->cfg.cors_origins = list;
  srv->cfg.cors_credentials = 1;
  l = lb_new();
  lb_request(l, HTTP_GET, EIOP "?EIO=4&transport=polling",
             "Origin: http://good\n", NULL, 0);
  CHECK(strstr(l->hdrs,
               "Access-Control-Allow-Origin: http://good\r\nVary: "
               "Origin\r\nAccess-Control-Allow-Credentials: true\r\n") != NULL);
  l = lb_new();
  lb_request(l, HTTP_GET, EIOP "?EIO=4&transport=polling",
             "Origin: http://bad\n", NULL, 0);
  CHECK(strstr(l->hdrs, "Allow-Origin") == NULL);
  CHECK(strstr(l->hdrs, "Vary: Origin\r\n") != NULL);
  srv->cfg.cors_origins = NULL;
  /* "*" with credentials echoes the origin: browsers refuse "*" there. */
  l = lb_new();
  lb_request(l, HTTP_GET, EIOP "?EIO=4&transport=polling",
             "Origin: http://any\n", NULL, 0);
  CHECK(strstr(l->hdrs, "Access-Control-Allow-Origin: http://any\r\n") != NULL);
  /* The WebSocket 101 carries CORS too. */
  srv->cfg.cors_credentials = 0;
  l = ws_open(EIOP "?EIO=4&transport=websocket");
  CHECK_EQ(l->status, 101);
  CHECK_STR(l->hdrs, "Access-Control-Allow-Origin: *\r\n");
  /* Without CORS: no headers, and OPTIONS falls through to validation. */
  srv->cfg.cors = 0;
  l = lb_new();
  lb_request(l, HTTP_OPTIONS, EIOP "?EIO=4&transport=polling", NULL, NULL, 0);
  CHECK_EQ(l->status, 400);
  CHECK_STR(l->body.p, "{\"code\":2,\"message\":\"Bad handshake method\"}");
  CHECK_STR(l->hdrs, "");
  handshake_polling("EIO=4", sid);
  l = lb_new();
  lb_request(l, HTTP_OPTIONS, url(EIOP "?EIO=4&transport=polling&sid=%s", sid),
             NULL, NULL, 0);
  CHECK_EQ(l->status, 500); /* another method with a sid: the session stays */
  l = get(url(EIOP "?EIO=4&transport=polling&sid=%s", sid));
  CHECK(l->parked);
  srv->cfg.cors_origins = own;
  teardown();
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Polling (§2.6, §9.1 #8-13, #17, #18, #21) */

#define POLL EIOP "?EIO=4&transport=polling&sid=%s"

static void test_polling_echo(void) {
  char sid[64];
  lb_conn_t *l;
  setup();
  handshake_polling("EIO=4", sid);
  l = post(url(POLL, sid), B("4hello"));
  CHECK_EQ(l->status, 200);
  CHECK_STR(l->body.p, "ok");
  CHECK_STR(l->ctype, "text/html");
  CHECK(strstr(l->hdrs, "cache-control: no-store") != NULL);
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4hello");
  post(url(POLL, sid), B("4test1\x1e"
                         "4test2\x1e"
                         "4test3"));
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4test1\x1e"
                       "4test2\x1e"
                       "4test3");
  post(url(POLL, sid), B("4hello\x1e"
                         "bAQIDBA=="));
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4hello\x1e"
                       "bAQIDBA==");
  CHECK_STR(up.log.p, "T:hello|T:test1|T:test2|T:test3|T:hello|B:01020304|");
  /* A parked GET gets what is sent later, in one payload per loop turn. */
  up.echo = 0;
  l = get(url(POLL, sid));
  CHECK(l->parked && l->answers == 0);
  plume__eio_send(up.last, 0, B("a"));
  plume__eio_send(up.last, 1, B("\xff"));
  plume__eio_send(up.last, 0, B("\xe2\x82\xac"));
  CHECK_EQ(l->answers, 0);
  run_ms(0);
  CHECK_EQ(l->answers, 1);
  CHECK_STR(l->body.p, "4a\x1e"
                       "b/w==\x1e"
                       "4\xe2\x82\xac");
  /* 5, 6 and 0 from the client are ignored; an unasked pong does no harm. */
  l = post(url(POLL, sid), B("5\x1e"
                             "6\x1e"
                             "0\x1e"
                             "3"));
  CHECK_STR(l->body.p, "ok");
  CHECK_EQ(up.closes, 0);
  teardown();
}

static void test_polling_parse_errors(void) {
  static const struct {
    const char *body;
    size_t n;
    int delivered;
  } rows[] = {
      {B("abc"), 0},
      {B(""), 0},
      {B("\x1e\x1e"), 0},
      {B("9"), 0},
      {B("bA@=="), 0},
      {B("4\xc3\x28"), 0},
      {B("4ok\x1e"
         "4a\x1e"),
       2},
      {B("4a\x1e"
         "bAQ"),
       1},
  };
  size_t i;
  char sid[64];
  setup();
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    lb_conn_t *l, *g;
    int before = up.messages;
    handshake_polling("EIO=4", sid);
    g = get(url(POLL, sid));
    l = post(url(POLL, sid), rows[i].body, rows[i].n);
    CHECK_EQ(l->status, 400);
    CHECK_EQ(up.messages - before, rows[i].delivered);
    CHECK_STR(g->body.p, "1"); /* the parked GET gets the close packet */
    l = get(url(POLL, sid));
    CHECK_EQ(l->status, 400);
    CHECK_STR(l->body.p, "{\"code\":1,\"message\":\"Session ID unknown\"}");
    run_ms(0);
    CHECK_STR(up.reason, "parse error");
  }
  CHECK_EQ(up.closes, (int)i);
  teardown();
}

static void test_polling_duplicate_get(void) {
  char sid[64];
  lb_conn_t *g1, *g2, *l;
  setup();
  handshake_polling("EIO=4", sid);
  g1 = get(url(POLL, sid));
  CHECK(g1->parked);
  g2 = get(url(EIOP "?EIO=4&transport=polling&sid=%s&t=burst", sid));
  CHECK_EQ(g2->status, 400);
  CHECK_STR(g2->body.p, "");
  CHECK_EQ(g1->status, 200);
  CHECK_STR(g1->body.p, "1");
  CHECK(g1->c.owner == NULL);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  CHECK_EQ(up.closes, 0); /* on_close waits for a clean stack */
  run_ms(0);
  CHECK_EQ(up.closes, 1);
  CHECK_STR(up.reason, "transport error");
  teardown();
}

static void test_polling_aborted_get(void) {
  char sid[64];
  lb_conn_t *g, *l;
  setup();
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  lb_drop(g);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  CHECK_EQ(g->answers, 0);
  teardown();
}

static void test_polling_close_packet(void) {
  char sid[64];
  lb_conn_t *g, *l;
  setup();
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  l = post(url(POLL, sid), B("4a\x1e"
                             "1\x1e"
                             "4b"));
  CHECK_STR(l->body.p, "ok");
  CHECK_STR(g->body.p, "6");
  CHECK_STR(up.log.p, "T:a|"); /* packets after the close are ignored */
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  run_ms(0);
  CHECK_STR(up.reason, "transport close");
  teardown();
}

static void test_polling_bad_requests(void) {
  char sid[64];
  lb_conn_t *l, *g;
  char *big;
  setup();
  handshake_polling("EIO=4", sid);
  l = lb_new();
  lb_request(l, HTTP_PUT, url(POLL, sid), NULL, NULL, 0);
  CHECK_EQ(l->status, 500);
  CHECK_STR(l->body.p, "");
  l = lb_new();
  lb_request(l, HTTP_DELETE, url(POLL, sid), NULL, NULL, 0);
  CHECK_EQ(l->status, 500);
  /* The session is still there. */
  post(url(POLL, sid), B("4x"));
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4x");
  /* octet-stream on v4: 400 and the session closes (CVE-2026-59725). */
  g = get(url(POLL, sid));
  l = lb_new();
  lb_request(l, HTTP_POST, url(POLL, sid),
             "Content-Type: application/octet-stream\n", B("4x"));
  CHECK_EQ(l->status, 400);
  CHECK_STR(g->body.p, "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* A body over maxPayload: 413, the session stays (as in the reference). */
  srv->cfg.max_payload = 100;
  handshake_polling("EIO=4", sid);
  big = malloc(101);
  memset(big, 'x', 101);
  big[0] = '4';
  l = post(url(POLL, sid), big, 100);
  CHECK_EQ(l->status, 200);
  l = post(url(POLL, sid), big, 101);
  CHECK_EQ(l->status, 413);
  CHECK_STR(l->body.p, "");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 200);
  CHECK_EQ(l->body.len, 100); /* the echo of the first POST */
  free(big);
  /* A polling request for a websocket session: transport mismatch. */
  ws_open(EIOP "?EIO=4&transport=websocket");
  l = get(url(POLL, plume__eio_sid(up.last)));
  CHECK_EQ(l->status, 400);
  CHECK_STR(l->body.p, "{\"code\":3,\"message\":\"Bad request\"}");
  teardown();
}

/* A POST being read is in progress on its session (§2.6). */
static void test_polling_post_overlap(void) {
  char sid[64];
  lb_conn_t *a, *b, *g, *l;
  setup();
  handshake_polling("EIO=4", sid);
  a = post_head(url(POLL, sid), B("4one"));
  CHECK(a->c.owner == up.last);
  CHECK_EQ(a->answers, 0);
  lb_dispatch(a);
  CHECK_STR(a->body.p, "ok");
  CHECK(a->c.owner == NULL);
  CHECK_STR(up.log.p, "T:one|");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4one");
  /* A second POST meanwhile gets 400 (empty) at its head; the session closes,
  ** dropping the first POST's connection unanswered, and a parked GET gets
  ** the close packet. */
  g = get(url(POLL, sid));
  CHECK(g->parked);
  a = post_head(url(POLL, sid), B("4ab"));
  b = post_head(url(POLL, sid), B("4cd"));
  CHECK_EQ(b->status, 400);
  CHECK_STR(b->body.p, "");
  CHECK(a->closed && a->answers == 0 && a->c.owner == NULL);
  CHECK_STR(g->body.p, "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  CHECK_EQ(up.messages, 1);
  /* The same for a POST without a body, which has no head of its own. */
  handshake_polling("EIO=4", sid);
  a = post_head(url(POLL, sid), B("4ab"));
  b = lb_new();
  lb_request(b, HTTP_POST, url(POLL, sid), NULL, NULL, 0);
  CHECK_EQ(b->status, 400);
  CHECK_STR(b->body.p, "");
  CHECK(a->closed && a->answers == 0);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  /* The connection of a POST in progress goes away: its body never comes. */
  handshake_polling("EIO=4", sid);
  a = post_head(url(POLL, sid), B("4ab"));
  lb_drop(a);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  /* A head that the whole request will refuse marks nothing. */
  handshake_polling("EIO=4", sid);
  a = post_head(url(EIOP "?EIO=4&transport=websocket&sid=%s", sid), B("4x"));
  CHECK(a->c.owner == NULL);
  l = post(url(POLL, sid), B("4fine"));
  CHECK_STR(l->body.p, "ok");
  lb_dispatch(a);
  CHECK_STR(a->body.p, "{\"code\":3,\"message\":\"Bad request\"}");
  /* The session closing for another reason drops a POST in progress. */
  a = post_head(url(POLL, sid), B("4x"));
  g = get(url(POLL, sid));
  CHECK_STR(g->body.p, "4fine");
  g = get(url(POLL, sid));
  plume__eio_close(up.last, "forced close");
  CHECK_STR(g->body.p, "1");
  CHECK(a->closed && a->answers == 0 && a->c.owner == NULL);
  run_ms(0);
  CHECK_STR(up.reason, "forced close");
  CHECK_EQ(up.closes, 4);
  teardown();
}

/* A body over max_payload that http.c did not read (over_limit): 413. */
static void test_polling_post_over_limit(void) {
  char sid[64];
  lb_conn_t *a, *l;
  setup();
  CHECK_EQ(plume__eio_server_max_payload(srv), 1000000);
  srv->cfg.max_payload = 100;
  CHECK_EQ(plume__eio_server_max_payload(srv), 100);
  handshake_polling("EIO=4", sid);
  a = post_head(url(POLL, sid), B("4x"));
  a->req.body.n = 0;
  a->req.over_limit = 1;
  lb_dispatch(a);
  CHECK_EQ(a->status, 413);
  CHECK_STR(a->body.p, "");
  CHECK(strstr(a->hdrs, "Access-Control-Allow-Origin: *\r\n") != NULL);
  CHECK(a->c.owner == NULL);
  /* The session stays, and its POST is no longer in progress. */
  l = post(url(POLL, sid), B("4alive"));
  CHECK_STR(l->body.p, "ok");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4alive");
  /* Another method with such a body: 413 too. */
  l = lb_new();
  lb_build(l, HTTP_GET, url(POLL, sid), NULL, NULL, 0);
  l->req.over_limit = 1;
  lb_dispatch(l);
  CHECK_EQ(l->status, 413);
  /* The checks of §2.2 still come first. */
  l = lb_new();
  lb_build(l, HTTP_POST, url(POLL, "nope"), NULL, NULL, 0);
  l->req.over_limit = 1;
  lb_dispatch(l);
  CHECK_STR(l->body.p, "{\"code\":1,\"message\":\"Session ID unknown\"}");
  CHECK_EQ(up.closes, 0);
  teardown();
}

static void test_polling_heartbeat(void) {
  char sid[64];
  lb_conn_t *g, *l;
  int i;
  setup_with(100, 100, 1);
  handshake_polling("EIO=4", sid);
  for (i = 0; i < 3; i++) {
    g = get(url(POLL, sid));
    CHECK(g->parked);
    run_ms(140);
    CHECK_EQ(g->answers, 1);
    CHECK_STR(g->body.p, "2"); /* the ping alone */
    l = post(url(POLL, sid), B("3"));
    CHECK_STR(l->body.p, "ok");
  }
  CHECK_EQ(up.closes, 0);
  /* No pong: the session dies by ping timeout; the parked GET gets "1". */
  g = get(url(POLL, sid));
  run_ms(300);
  CHECK_STR(g->body.p, "2");
  CHECK_EQ(up.closes, 1);
  CHECK_STR(up.reason, "ping timeout");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* Heartbeat timeout without any GET (§9.1 #18). */
  handshake_polling("EIO=4", sid);
  run_ms(300);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  CHECK_STR(up.reason, "ping timeout");
  /* A client ping is an error in v4. */
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  post(url(POLL, sid), B("2"));
  CHECK_STR(g->body.p, "1");
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  teardown();
}

/*
** The server closes a polling session as the reference does (§2.6, §4.3): the
** queued packets go out alone, the close ("6\x1e1") on the GET after them, so
** that socket.io-client handles a DISCONNECT before the close.
*/
static void test_server_close_polling(void) {
  char sid[64];
  lb_conn_t *g, *l;
  setup();
  /* A parked GET gets the queued packets (from the timer, in one payload),
  ** without the close; the next GET gets noop + close. */
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  up.echo = 0;
  plume__eio_send(up.last, 0, B("41"));
  plume__eio_send(up.last, 0, B("bye"));
  plume__eio_close(up.last, "forced close");
  CHECK_EQ(plume__eio_send(up.last, 0, B("x")), PLUME_ECLOSED);
  CHECK_EQ(g->answers, 0);
  run_ms(0);
  CHECK_EQ(g->answers, 1);
  CHECK_STR(g->body.p, "441\x1e"
                       "4bye");
  CHECK_EQ(up.closes, 1); /* on_close is due at once */
  CHECK_STR(up.reason, "forced close");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6\x1e"
                       "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* A parked GET and nothing queued: that GET gets the close at once. */
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  plume__eio_close(up.last, "forced close");
  CHECK_STR(g->body.p, "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* No GET parked: the next one gets noop + close, then the sid is gone. */
  handshake_polling("EIO=4", sid);
  plume__eio_close(up.last, "forced close");
  CHECK_EQ(plume__eio_send(up.last, 0, B("x")), PLUME_ECLOSED);
  run_ms(0);
  CHECK_EQ(up.closes,
           3); /* on_close comes at once, the sid lingers for a GET */
  l = post(url(POLL, sid), B("4ignored"));
  CHECK_STR(l->body.p, "ok");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6\x1e"
                       "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* Queued packets and no GET parked: the next GET gets them alone, the one
  ** after it the close. */
  handshake_polling("EIO=4", sid);
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, NULL);
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4q");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6\x1e"
                       "1");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* The client's own close packet ends a closing session at once. */
  handshake_polling("EIO=4", sid);
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, "forced close");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4q");
  l = post(url(POLL, sid), B("4late\x1e"
                             "1"));
  CHECK_STR(l->body.p, "ok");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* A second GET while the first waits for the queued packets: 400, the first
  ** gets the close; an aborted one ends the session. Either way the reason
  ** stays the server's. */
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, "forced close");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  CHECK_STR(g->body.p, "1");
  run_ms(0);
  CHECK_STR(up.reason, "forced close");
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, "forced close");
  lb_drop(g);
  CHECK_EQ(g->answers, 0);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  run_ms(0);
  CHECK_STR(up.reason, "forced close");
  /* Nobody polls: closeTimeout ends it, with or without packets queued. */
  srv->cfg.close_timeout = 30;
  handshake_polling("EIO=4", sid);
  plume__eio_close(up.last, "forced close");
  run_ms(60);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  handshake_polling("EIO=4", sid);
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, "forced close");
  run_ms(60);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  /* The GET that took the packets was the last: closeTimeout (counted from
  ** then) ends the session. */
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  plume__eio_send(up.last, 0, B("q"));
  plume__eio_close(up.last, "forced close");
  run_ms(0);
  CHECK_STR(g->body.p, "4q");
  run_ms(60);
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  srv->cfg.close_timeout = 30000;
  /* Closing from inside on_open: the handshake gets the open packet alone. */
  up.close_in_open = 1;
  l = get(EIOP "?EIO=4&transport=polling");
  CHECK(strncmp(l->body.p, "0{", 2) == 0 && l->body.p[l->body.len - 1] == '}');
  up.close_in_open = 0;
  sid_of(l->body.p, sid);
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6\x1e"
                       "1");
  /* From on_message: the rest of the payload is ignored, the echo goes out,
  ** then the close. */
  up.close_in_message = 1;
  up.echo = 1;
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  l = post(url(POLL, sid), B("4a\x1e"
                             "4b"));
  CHECK_STR(l->body.p, "ok");
  run_ms(0);
  CHECK_STR(g->body.p, "4a");
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6\x1e"
                       "1");
  CHECK_EQ(up.opens, up.closes);
  teardown();
}

/* A client that never polls is dropped at max_output_bytes. */
static void test_output_cap(void) {
  char sid[64], chunk[1000];
  int i, err = 0;
  setup();
  P->opts.max_output_bytes = 10000;
  memset(chunk, 'x', sizeof(chunk));
  handshake_polling("EIO=4", sid);
  for (i = 0; i < 20 && err == 0; i++)
    err = plume__eio_send(up.last, 0, chunk, sizeof(chunk));
  CHECK_EQ(err, PLUME_ECLOSED);
  CHECK(i <= 11);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  teardown();
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== WebSocket (§2.7, §9.1 #5, #14-16, #19, #20, #22) */

#define WS EIOP "?EIO=4&transport=websocket"

static void test_ws_session(void) {
  lb_conn_t *w;
  char sid[64], want[256];
  setup_with(300, 200, 1);
  w = ws_open(WS);
  CHECK_EQ(w->status, 101);
  CHECK(w->ws && !w->closed);
  sid_of(w->frames.p, sid);
  snprintf(want, sizeof(want),
           "T:0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":300,"
           "\"pingTimeout\":200,\"maxPayload\":1000000}\n",
           sid);
  CHECK_STR(w->frames.p, want);
  CHECK_EQ(plume__eio_transport(up.last), PLUME__EIO_WEBSOCKET);
  w->frames.len = 0;
  ws_recv(w, 0, B("4hello"));
  ws_recv(w, 1, B("\x01\x02\x03\x04"));
  ws_recv(w, 0, B("bAQI="));
  ws_recv(w, 0,
          B("4a\x1e"
            "4b")); /* one packet: never split */
  CHECK_STR(w->frames.p, "T:4hello\nB:01020304\nB:0102\nT:4a\x1e"
                         "4b\n");
  ws_recv(w, 0, B("abc"));
  CHECK(w->ws_closed && w->closed);
  CHECK_EQ(w->ws_code, 0);
  run_ms(0);
  CHECK_STR(up.reason, "parse error");
  /* A close packet closes at once. */
  w = ws_open(WS);
  ws_recv(w, 0, B("1"));
  CHECK(w->ws_closed);
  run_ms(0);
  CHECK_STR(up.reason, "transport close");
  /* The client goes away. */
  w = ws_open(WS);
  lb_drop(w);
  run_ms(0);
  CHECK_STR(up.reason, "transport close");
  /* A client ping, even "2probe", is an error on a websocket-only session. */
  w = ws_open(WS);
  ws_recv(w, 0, B("2probe"));
  CHECK(w->ws_closed);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  /* Server close: a close frame without a status code. */
  w = ws_open(WS);
  plume__eio_close(up.last, "forced close");
  CHECK(w->ws_closed && w->ws_code == 0);
  run_ms(0);
  CHECK_STR(up.reason, "forced close");
  /* A message over maxPayload: 1009. */
  srv->cfg.max_payload = 10;
  w = ws_open(WS);
  ws_recv(w, 0, B("4hello world"));
  CHECK_EQ(w->ws_code, 1009);
  /* A failed accept leaves nothing behind. */
  fail_accept = 1;
  w = ws_open(WS);
  CHECK(w->closed && !w->ws);
  run_ms(0);
  CHECK_EQ(up.opens, up.closes);
  teardown();
}

static void test_ws_heartbeat(void) {
  lb_conn_t *w;
  setup_with(100, 100, 1);
  w = ws_open(WS);
  w->frames.len = 0;
  w->nframes = 0;
  flushes = 0;
  run_ms(140);
  CHECK(flushes > 0); /* the ping is written from the timer, not a turn later */
  CHECK_STR(w->frames.p, "T:2\n");
  ws_recv(w, 0, B("3"));
  run_ms(120);
  CHECK_EQ(w->nframes, 2);
  ws_recv(w, 0, B("3"));
  CHECK(!w->ws_closed);
  run_ms(300);
  CHECK(w->ws_closed);
  CHECK_STR(up.reason, "ping timeout");
  teardown();
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Upgrade (§2.8, §9.1 #23-25) */

#define UPG EIOP "?EIO=4&transport=websocket&sid=%s"

static void test_upgrade(void) {
  char sid[64];
  lb_conn_t *g, *w, *w2, *l;
  setup();
  handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  w = ws_open(url(UPG, sid));
  CHECK_EQ(w->status, 101);
  CHECK(!w->ws_closed);
  ws_recv(w, 0, B("2probe"));
  CHECK_STR(w->frames.p, "T:3probe\n");
  CHECK_STR(g->body.p, "6"); /* released at once */
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "6"); /* and every GET during the upgrade */
  /* Packets sent during the upgrade wait for the WebSocket. */
  l = post(url(POLL, sid), B("4queued"));
  CHECK_STR(l->body.p, "ok");
  ws_recv(w, 0, B("5"));
  CHECK_EQ(plume__eio_transport(up.last), PLUME__EIO_WEBSOCKET);
  CHECK_STR(w->frames.p, "T:3probe\nT:4queued\n");
  ws_recv(w, 0, B("4hello"));
  CHECK_STR(w->frames.p, "T:3probe\nT:4queued\nT:4hello\n");
  l = get(url(POLL, sid));
  CHECK_EQ(l->status, 400);
  CHECK_STR(l->body.p, "{\"code\":3,\"message\":\"Bad request\"}");
  l = post(url(POLL, sid), B("4x"));
  CHECK_EQ(l->status, 400);
  /* A second WebSocket with the sid is closed after its 101. */
  w2 = ws_open(url(UPG, sid));
  CHECK_EQ(w2->status, 101);
  CHECK(w2->ws_closed);
  ws_recv(w, 0, B("4still"));
  CHECK_STR(w->frames.p, "T:3probe\nT:4queued\nT:4hello\nT:4still\n");
  /* 2probe on the upgraded transport is a v4 client ping: an error. */
  ws_recv(w, 0, B("2probe"));
  CHECK(w->ws_closed);
  run_ms(0);
  CHECK_STR(up.reason, "transport error");
  CHECK_EQ(up.closes, 1);
  teardown();
}

static void test_upgrade_failures(void) {
  char sid[64];
  lb_conn_t *w, *w2, *l, *g;
  setup();
  /* Any other packet on the candidate closes only the candidate. */
  handshake_polling("EIO=4", sid);
  w = ws_open(url(UPG, sid));
  ws_recv(w, 0, B("4notprobe"));
  CHECK(w->ws_closed);
  post(url(POLL, sid), B("4fine"));
  l = get(url(POLL, sid));
  CHECK_STR(l->body.p, "4fine");
  /* A second candidate while one waits is closed. */
  w = ws_open(url(UPG, sid));
  w2 = ws_open(url(UPG, sid));
  CHECK(!w->ws_closed && w2->ws_closed);
  /* The candidate goes away after the probe: polling parks again. */
  ws_recv(w, 0, B("2probe"));
  lb_drop(w);
  g = get(url(POLL, sid));
  CHECK(g->parked);
  /* A binary frame on the candidate. */
  w = ws_open(url(UPG, sid));
  ws_recv(w, 1, B("\x01"));
  CHECK(w->ws_closed);
  CHECK_EQ(up.closes, 0);
  /* Upgrade timeout: the stalled candidate is closed, polling goes on. */
  srv->cfg.upgrade_timeout = 20;
  w = ws_open(url(UPG, sid));
  ws_recv(w, 0, B("2probe"));
  CHECK_EQ(g->answers, 1); /* got its noop */
  run_ms(50);
  CHECK(w->ws_closed);
  g = get(url(POLL, sid));
  CHECK(g->parked);
  /* The session ends while a candidate waits: both go. */
  w = ws_open(url(UPG, sid));
  lb_drop(g);
  CHECK(w->ws_closed);
  run_ms(0);
  CHECK_EQ(up.closes, 1);
  /* Upgrading a websocket-only session is refused after the 101. */
  w = ws_open(WS);
  sid_of(w->frames.p, sid);
  w2 = ws_open(url(UPG, sid));
  CHECK(w2->ws_closed && !w->ws_closed);
  /* With upgrades off, polling offers none and refuses before the 101. */
  srv->cfg.allow_upgrades = 0;
  l = handshake_polling("EIO=4", sid);
  CHECK(strstr(l->body.p, "\"upgrades\":[]") != NULL);
  w = ws_open(url(UPG, sid));
  CHECK_EQ(w->status, 400);
  teardown();
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Engine.IO v3 (§7) */

#define POLL3 EIOP "?EIO=3&transport=polling&sid=%s"

static void test_v3_polling(void) {
  char sid[64];
  lb_conn_t *l, *g;
  size_t n;
  setup_with(100, 100, 1);
  l = handshake_polling("EIO=3", sid);
  n = strlen(l->body.p) - (size_t)(strchr(l->body.p, ':') - l->body.p) - 1;
  CHECK_EQ((size_t)atoi(l->body.p), n);
  CHECK(strstr(l->body.p, ":0{\"sid\":\"") != NULL);
  CHECK_EQ(plume__eio_protocol(up.last), 3);
  l = post(url(POLL3, sid), B("6:4hello2:4\xe2\x82\xac"));
  CHECK_STR(l->body.p, "ok");
  l = get(url(POLL3, sid));
  CHECK_STR(l->body.p, "6:4hello2:4\xe2\x82\xac");
  CHECK_STR(l->ctype, "text/plain; charset=UTF-8");
  /* Binary: an octet-stream body, answered as a binary payload. */
  l = lb_new();
  lb_request(l, HTTP_POST, url(POLL3, sid),
             "Content-Type: application/octet-stream\n",
             B("\x01\x05\xff\x04\x01\x02\x03\x04"
               "\x00\x02\xff"
               "4a"));
  CHECK_STR(l->body.p, "ok");
  l = get(url(POLL3, sid));
  CHECK_STR(l->ctype, "application/octet-stream");
  CHECK(l->body.len == 13 && memcmp(l->body.p,
                                    "\x01\x05\xff\x04\x01\x02\x03\x04"
                                    "\x00\x02\xff"
                                    "4a",
                                    13) == 0);
  /* base64 in a text payload works too. */
  post(url(POLL3, sid), B("10:b4AQIDBA=="));
  l = get(url(POLL3, sid));
  CHECK(l->body.len == 8 && l->body.p[0] == 1);
  /* The client pings; the server answers at once with a pong. */
  g = get(url(POLL3, sid));
  post(url(POLL3, sid), B("1:2"));
  run_ms(0);
  CHECK_STR(g->body.p, "1:3");
  /* Within pingInterval + pingTimeout, else ping timeout. */
  run_ms(90);
  post(url(POLL3, sid), B("1:2"));
  run_ms(90);
  CHECK_EQ(up.closes, 0);
  run_ms(160);
  CHECK_EQ(up.closes, 1);
  CHECK_STR(up.reason, "ping timeout");
  /* b64=1: binary goes as base64 in text payloads. */
  handshake_polling("EIO=3&b64=1", sid);
  post(url(POLL3, sid), B("10:b4AQIDBA=="));
  l = get(url(POLL3, sid));
  CHECK_STR(l->body.p, "10:b4AQIDBA==");
  /* A client pong is an error in v3; so is a bad length. */
  g = get(url(POLL3, sid));
  post(url(POLL3, sid), B("1:3"));
  CHECK_STR(g->body.p, "1:1");
  handshake_polling("EIO=3", sid);
  l = post(url(POLL3, sid), B("5:4a"));
  CHECK_EQ(l->status, 400);
  /* The deferred server close in v3 framing. */
  handshake_polling("EIO=3", sid);
  plume__eio_close(up.last, "forced close");
  l = get(url(POLL3, sid));
  CHECK_STR(l->body.p, "1:61:1");
  teardown();
}

static void test_v3_websocket(void) {
  char sid[64];
  lb_conn_t *w, *g;
  setup();
  w = ws_open(EIOP "?EIO=3&transport=websocket");
  CHECK(strncmp(w->frames.p, "T:0{", 4) == 0);
  w->frames.len = 0;
  ws_recv(w, 1, B("\x04\x01\x02\x03"));
  ws_recv(w, 0, B("b4AQI="));
  ws_recv(w, 0, B("2"));
  CHECK_STR(w->frames.p, "B:04010203\nB:040102\nT:3\n");
  ws_recv(w, 1, B("\x09"));
  CHECK(w->ws_closed);
  run_ms(0);
  CHECK_STR(up.reason, "parse error");
  /* b64=1 on the WebSocket: binary goes out as text. */
  w = ws_open(EIOP "?EIO=3&transport=websocket&b64=1");
  w->frames.len = 0;
  ws_recv(w, 1, B("\x04\xff"));
  CHECK_STR(w->frames.p, "T:b4/w==\n");
  /* Upgrade from v3 polling: the queue moves to the WebSocket, typed. */
  handshake_polling("EIO=3", sid);
  g = get(url(POLL3, sid));
  w = ws_open(url(EIOP "?EIO=3&transport=websocket&sid=%s", sid));
  ws_recv(w, 0, B("2probe"));
  CHECK_STR(g->body.p, "1:6");
  up.echo = 0;
  plume__eio_send(up.last, 1, B("\x07"));
  ws_recv(w, 0, B("5"));
  CHECK_STR(w->frames.p, "T:3probe\nB:0407\n");
  teardown();
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Sharing, shutdown, the sid table */

static void test_send_shared(void) {
  char sid[64];
  lb_conn_t *w, *g;
  plume__eio_session_t *a, *b;
  plume__shared_t *sh = plume__shared_new(B("4broadcast"));
  setup();
  up.echo = 0;
  w = ws_open(WS);
  a = up.last;
  handshake_polling("EIO=4", sid);
  b = up.last;
  g = get(url(POLL, sid));
  CHECK_EQ(plume__eio_send_shared(a, 0, sh), 0);
  CHECK_EQ(plume__eio_send_shared(b, 0, sh), 0);
  CHECK_EQ(sh->refs, 2); /* the polling queue holds one */
  run_ms(0);
  CHECK_STR(g->body.p, "4broadcast");
  CHECK(strstr(w->frames.p, "T:4broadcast\n") != NULL);
  CHECK_EQ(sh->refs, 1);
  plume__shared_unref(sh);
  teardown();
}

/* Freeing the server closes every session, calls on_close for each, answers
** parked GETs. */
static void test_server_free(void) {
  char sid[64];
  lb_conn_t *g, *w;
  int i;
  setup();
  for (i = 0; i < 5; i++)
    handshake_polling("EIO=4", sid);
  g = get(url(POLL, sid));
  w = ws_open(WS);
  handshake_polling("EIO=4", sid);
  plume__eio_close(up.last, "forced close"); /* one closing, on_close pending */
  plume__eio_server_free(srv);
  srv = NULL;
  CHECK_EQ(up.closes, 7);
  CHECK_STR(g->body.p, "1");
  CHECK(w->ws_closed);
  /* teardown frees a NULL server */
  teardown();
}

/* The table grows and shrinks through 2000 sessions; every sid is found. */
static void test_sid_table(void) {
  plume__eio_session_t **all = calloc(2000, sizeof(*all));
  int i, found = 0;
  setup();
  up.echo = 0;
  for (i = 0; i < 2000; i++) {
    get(EIOP "?EIO=4&transport=polling");
    all[i] = up.last;
  }
  CHECK_EQ(srv->table.count, 2000);
  for (i = 0; i < 2000; i += 2)
    plume__eio_close(all[i], "forced close"); /* closing: still findable */
  for (i = 0; i < 2000; i++)
    if (table_find(&srv->table, all[i]->sid, all[i]->sid_len) == all[i])
      found++;
  CHECK_EQ(found, 2000);
  for (i = 0; i < 2000; i += 2) {
    lb_conn_t *l = get(url(POLL, all[i]->sid));
    CHECK_STR(l->body.p, "6\x1e"
                         "1");
  }
  CHECK_EQ(srv->table.count, 1000);
  found = 0;
  for (i = 1; i < 2000; i += 2)
    if (table_find(&srv->table, all[i]->sid, all[i]->sid_len) == all[i])
      found++;
  CHECK_EQ(found, 1000);
  CHECK(table_find(&srv->table, "nope", 4) == NULL);
  free(all);
  teardown();
}

static void test_session_size(void) {
  fprintf(stdout, "# sizeof(plume__eio_session_t) %zu (uv_timer_t %zu)\n",
          sizeof(plume__eio_session_t), sizeof(uv_timer_t));
  CHECK(sizeof(plume__eio_session_t) < 512);
}

/* }====== */

int main(void) {
  RUN(test_payload_table);
  RUN(test_payload_every_split);
  RUN(test_v3_payload_concatenation);
  RUN(test_single_packets);
  RUN(test_utf8_and_utf16);
  RUN(test_payload_encode);
  RUN(test_payload_long);
  RUN(test_handshake_polling);
  RUN(test_handshake_data);
  RUN(test_validation);
  RUN(test_eio3_gate);
  RUN(test_upgrade_refusals);
  RUN(test_hooks);
  RUN(test_cors);
  RUN(test_polling_echo);
  RUN(test_polling_parse_errors);
  RUN(test_polling_duplicate_get);
  RUN(test_polling_aborted_get);
  RUN(test_polling_close_packet);
  RUN(test_polling_bad_requests);
  RUN(test_polling_post_overlap);
  RUN(test_polling_post_over_limit);
  RUN(test_polling_heartbeat);
  RUN(test_server_close_polling);
  RUN(test_output_cap);
  RUN(test_ws_session);
  RUN(test_ws_heartbeat);
  RUN(test_upgrade);
  RUN(test_upgrade_failures);
  RUN(test_v3_polling);
  RUN(test_v3_websocket);
  RUN(test_send_shared);
  RUN(test_server_free);
  RUN(test_sid_table);
  RUN(test_session_size);
  plume__shared_pool_drain();
  return check_done();
}
