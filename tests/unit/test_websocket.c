/*
** test_websocket.c: websocket.c over an in-memory loopback (h2o style): the
** layer below is stubbed to capture output, under renamed symbols so that this
** copy never meets the archive's tcp.o and http.o. Client frames are fed whole,
** byte by byte and split at every offset. test_e2e then runs the real layers
** (tcp, http, engineio, websocket from the archive) over loopback sockets.
*/
#define plume__conn_write lb_conn_write
#define plume__conn_write_shared lb_conn_write_shared
#define plume__conn_close lb_conn_close
#define plume__http_current lb_http_current
#define plume__http_leftover lb_http_leftover
#define plume__http_free lb_http_free
#define plume__log lb_log
#define plume__ws_accept lb_ws_accept
#define plume__ws_send lb_ws_send
#define plume__ws_close lb_ws_close
#define plume__ws_on_data lb_ws_on_data
#define plume__ws_free lb_ws_free
#define plume__ws_sweep lb_ws_sweep
#include "../../runtime/websocket.c"

#include <stdarg.h>
#include <stdio.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define LB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LB_ASAN 1
#endif
#endif
#ifdef LB_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_bytes(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#define HEAP_SLACK 0
#else
#include <malloc.h>
static size_t heap_bytes(void) {
  return mallinfo2().uordblks;
}
/* glibc's per-thread cache keeps a few freed chunks that mallinfo still counts
** as used; the ASan build measures exactly. */
#define HEAP_SLACK 64
#endif

/* ------------------------------------------------------------------------- */
/* The loopback connection */

typedef struct lb_s {
  plume__conn_t c; /* first: stubs cast back */
  plume__http_req_t req;
  plume__header_t headers[16];
  int has_req, http_freed;
  plume_slice_t leftover;
  plume__buf_t out;          /* every byte written, in order */
  plume__shared_t *refs[64]; /* shared blocks "in flight" */
  int nrefs;
  int closes, drain;
  plume__buf_t log; /* messages as "T:text|" or "B:hex|" */
  int on_close_calls, close_code;
  int close_in_message; /* the handler calls plume__ws_close */
} lb_t;

static plume_t lb_plume;
static lb_t lb;

/* The loop turn that fed input, then one without: the flusher's sweeps. */
static void idle_turn(void) {
  plume__ws_sweep(&lb_plume);
  plume__ws_sweep(&lb_plume);
}

int plume__conn_write(plume__conn_t *c, const void *p, size_t n) {
  lb_t *l = (lb_t *)c;
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  return plume__buf_append(&l->out, p, n) == 0 ? 0 : UV_ENOMEM;
}

int plume__conn_write_shared(plume__conn_t *c, plume__shared_t *sh, size_t off,
                             size_t n) {
  lb_t *l = (lb_t *)c;
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  if (l->nrefs < (int)(sizeof(l->refs) / sizeof(l->refs[0])))
    l->refs[l->nrefs++] = plume__shared_ref(sh);
  return plume__buf_append(&l->out, sh->data + off, n) == 0 ? 0 : UV_ENOMEM;
}

void plume__conn_close(plume__conn_t *c, int drain) {
  lb_t *l = (lb_t *)c;
  c->flags |= PLUME__CONN_CLOSING;
  l->closes++;
  l->drain = drain;
}

plume__http_req_t *plume__http_current(plume__conn_t *c) {
  lb_t *l = (lb_t *)c;
  return l->has_req ? &l->req : NULL;
}

plume_slice_t plume__http_leftover(plume__conn_t *c) {
  return ((lb_t *)c)->leftover;
}

void plume__http_free(plume__conn_t *c) {
  lb_t *l = (lb_t *)c;
  l->http_freed++;
  l->has_req = 0;
  l->leftover.p = "poisoned: freed with the HTTP state";
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

static void h_message(plume__conn_t *c, int binary, const char *p, size_t n) {
  lb_t *l = (lb_t *)c;
  size_t i;
  plume__buf_append(&l->log, binary ? "B:" : "T:", 2);
  if (binary) {
    for (i = 0; i < n; i++)
      plume__buf_appendf(&l->log, "%02x", (unsigned char)p[i]);
  } else {
    plume__buf_append(&l->log, p, n);
  }
  plume__buf_appendc(&l->log, '|');
  if (l->close_in_message)
    plume__ws_close(c, 1000);
}

static void h_close(plume__conn_t *c, int code) {
  lb_t *l = (lb_t *)c;
  l->on_close_calls++;
  l->close_code = code;
}

static const plume__ws_handler_t handler = {h_message, h_close};

static void lb_header(lb_t *l, const char *name, const char *value) {
  plume__header_t *h = &l->headers[l->req.nheaders++];
  h->name.p = name;
  h->name.n = strlen(name);
  h->value.p = value;
  h->value.n = strlen(value);
}

/* A fresh connection holding a valid upgrade request (RFC 6455 §1.3 key). */
static void lb_reset(int max_len, int max_frags) {
  plume__buf_free(&lb.out);
  plume__buf_free(&lb.log);
  memset(&lb, 0, sizeof(lb));
  plume_options_init(&lb_plume.opts);
  if (max_len)
    lb_plume.opts.max_http_buffer_size = max_len;
  if (max_frags)
    lb_plume.opts.ws_max_fragments = max_frags;
  lb.c.p = &lb_plume;
  lb.c.id = 7;
  lb.has_req = 1;
  lb.req.method = HTTP_GET;
  lb.req.headers = lb.headers;
  lb_header(&lb, "Host", "localhost");
  lb_header(&lb, "Upgrade", "websocket");
  lb_header(&lb, "Connection", "Upgrade");
  lb_header(&lb, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  lb_header(&lb, "Sec-WebSocket-Version", "13");
}

/* Upgrades the connection; returns the output length after the 101. */
static size_t lb_open(int max_len, int max_frags) {
  lb_reset(max_len, max_frags);
  if (plume__ws_accept(&lb.c, &handler, NULL) != 0)
    return (size_t)-1;
  return lb.out.len;
}

/* The close path of tcp.c: frees the WebSocket state, releases the in-flight
 * blocks. */
static void lb_finish(void) {
  int i;
  plume__ws_free(&lb.c);
  for (i = 0; i < lb.nrefs; i++)
    plume__shared_unref(lb.refs[i]);
  lb.nrefs = 0;
}

static void lb_teardown(void) {
  lb_finish();
  plume__buf_free(&lb.out);
  plume__buf_free(&lb.log);
}

/* Feeds n bytes, each chunk from its own exact-size copy so ASan sees any
 * over-read. */
static void lb_feed(const void *p, size_t n) {
  char *copy = malloc(n ? n : 1);
  memcpy(copy, p, n);
  plume__ws_on_data(&lb.c, copy, n);
  free(copy);
}

static int out_is(size_t base, const char *p, size_t n) {
  return lb.out.len - base == n &&
         (n == 0 || memcmp(lb.out.p + base, p, n) == 0);
}

static const char *log_str(void) {
  if (plume__buf_reserve(&lb.log, 1) != 0)
    return "";
  lb.log.p[lb.log.len] = '\0';
  return lb.log.p;
}

/* ------------------------------------------------------------------------- */
/* Frame script rows. Client frames use the mask key 00 00 00 00 (mask bit
** set, payload unchanged) so rows stay readable; test_masked_payloads covers
** real keys. */

#define K "\0\0\0\0"
#define B(s) s, sizeof(s) - 1

typedef struct row_s {
  const char *name;
  const char *in;
  size_t in_n;
  const char *log; /* messages delivered */
  const char *out; /* server output after the 101 */
  size_t out_n;
  int code; /* on_close code, 0: still open */
  int max_len, max_frags;
} row_t;

static const row_t rows[] = {
    {"text", B("\x81\x85" K "hello"), "T:hello|", B(""), 0, 0, 0},
    {"binary", B("\x82\x84" K "\x01\x02\x03\x04"), "B:01020304|", B(""), 0, 0,
     0},
    {"empty text", B("\x81\x80" K), "T:|", B(""), 0, 0, 0},
    {"two messages",
     B("\x81\x82" K "hi"
       "\x82\x81" K "\x7f"),
     "T:hi|B:7f|", B(""), 0, 0, 0},
    {"fragmented",
     B("\x01\x83" K "hel"
       "\x80\x82" K "lo"),
     "T:hello|", B(""), 0, 0, 0},
    {"fragmented binary, empty middle",
     B("\x02\x81" K "\x01"
       "\x00\x80" K "\x80\x81" K "\x02"),
     "B:0102|", B(""), 0, 0, 0},
    {"ping inside a fragmented message",
     B("\x01\x83" K "hel"
       "\x89\x82" K "hi"
       "\x80\x82" K "lo"),
     "T:hello|",
     B("\x8a\x02"
       "hi"),
     0, 0, 0},
    {"ping", B("\x89\x83" K "abc"), "",
     B("\x8a\x03"
       "abc"),
     0, 0, 0},
    {"empty ping", B("\x89\x80" K), "", B("\x8a\x00"), 0, 0, 0},
    {"pong ignored", B("\x8a\x81" K "x"), "", B(""), 0, 0, 0},
    {"close 1000 bye",
     B("\x88\x85" K "\x03\xe8"
       "bye"),
     "",
     B("\x88\x05\x03\xe8"
       "bye"),
     1000, 0, 0},
    {"close without status", B("\x88\x80" K), "", B("\x88\x00"), 1005, 0, 0},
    {"close reason ends inside a character",
     B("\x88\x86" K "\x0f\xa0"
       "\xc3\xa9\xe2\x82"),
     "", B("\x88\x02\x03\xef"), 1007, 0, 0},
    {"close with two-byte reason",
     B("\x88\x84" K "\x03\xe8"
       "\xc3\xa9"),
     "",
     B("\x88\x04\x03\xe8"
       "\xc3\xa9"),
     1000, 0, 0},
    {"data after close ignored", B("\x88\x80" K "\x81\x81" K "x"), "",
     B("\x88\x00"), 1005, 0, 0},
    {"unmasked",
     B("\x81\x05"
       "hello"),
     "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"message then unmasked",
     B("\x81\x82" K "ok"
       "\x81\x01"
       "x"),
     "T:ok|", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"RSV1", B("\xc1\x81" K "x"), "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"RSV2", B("\xa1\x81" K "x"), "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"RSV3", B("\x91\x81" K "x"), "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"RSV1 on a continuation",
     B("\x01\x81" K "a"
       "\xc0\x81" K "b"),
     "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"opcode 3", B("\x83\x80" K), "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"opcode 0xB", B("\x8b\x80" K), "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"ping of 126 bytes", B("\x89\xfe\x00\x7e" K), "", B("\x88\x02\x03\xea"),
     1002, 0, 0},
    {"ping without FIN", B("\x09\x80" K), "", B("\x88\x02\x03\xea"), 1002, 0,
     0},
    {"close with 1-byte payload", B("\x88\x81" K "\x03"), "",
     B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"close code 999", B("\x88\x82" K "\x03\xe7"), "", B("\x88\x02\x03\xea"),
     1002, 0, 0},
    {"close code 1005", B("\x88\x82" K "\x03\xed"), "", B("\x88\x02\x03\xea"),
     1002, 0, 0},
    {"close code 1006", B("\x88\x82" K "\x03\xee"), "", B("\x88\x02\x03\xea"),
     1002, 0, 0},
    {"close reason not UTF-8",
     B("\x88\x84" K "\x03\xe8"
       "\xc3\x28"),
     "", B("\x88\x02\x03\xef"), 1007, 0, 0},
    {"text not UTF-8", B("\x81\x82" K "\xc3\x28"), "", B("\x88\x02\x03\xef"),
     1007, 0, 0},
    {"text ends inside a character", B("\x81\x82" K "\xe2\x82"), "",
     B("\x88\x02\x03\xef"), 1007, 0, 0},
    {"surrogate in text", B("\x81\x83" K "\xed\xa0\x80"), "",
     B("\x88\x02\x03\xef"), 1007, 0, 0},
    {"bad UTF-8 across fragments",
     B("\x01\x81" K "\xe2"
       "\x80\x81" K "\x28"),
     "", B("\x88\x02\x03\xef"), 1007, 0, 0},
    {"UTF-8 across fragments",
     B("\x01\x81" K "\xe2"
       "\x80\x82" K "\x82\xac"),
     "T:\xe2\x82\xac|", B(""), 0, 0, 0},
    {"binary is not UTF-8 checked", B("\x82\x82" K "\xc3\x28"), "B:c328|",
     B(""), 0, 0, 0},
    {"continuation without start", B("\x80\x82" K "lo"), "",
     B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"text inside a fragmented message",
     B("\x01\x83" K "hel"
       "\x81\x82" K "lo"),
     "", B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"16-bit length under 126", B("\x81\xfe\x00\x05" K "hello"), "",
     B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"64-bit length under 65536", B("\x82\xff\0\0\0\0\0\0\0\x05" K "hello"), "",
     B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"64-bit length with the top bit", B("\x82\xff\x80\0\0\0\0\0\0\0" K), "",
     B("\x88\x02\x03\xea"), 1002, 0, 0},
    {"announced 2^62 bytes", B("\x82\xff\x40\0\0\0\0\0\0\0" K), "",
     B("\x88\x02\x03\xf1"), 1009, 0, 0},
    {"message over the limit", B("\x81\x89" K "123456789"), "",
     B("\x88\x02\x03\xf1"), 1009, 8, 0},
    {"message at the limit", B("\x81\x88" K "12345678"), "T:12345678|", B(""),
     0, 8, 0},
    {"fragments summing over the limit",
     B("\x01\x85" K "12345"
       "\x80\x84" K "6789"),
     "", B("\x88\x02\x03\xf1"), 1009, 8, 0},
    {"fragments at the cap",
     B("\x01\x81" K "a"
       "\x00\x81" K "b"
       "\x80\x81" K "c"),
     "T:abc|", B(""), 0, 0, 3},
    {"fragments over the cap",
     B("\x01\x81" K "a"
       "\x00\x81" K "b"
       "\x00\x81" K "c"
       "\x80\x81" K "d"),
     "", B("\x88\x02\x03\xf0"), 1008, 0, 3},
    {"empty continuations over the cap",
     B("\x01\x80" K "\x00\x80" K "\x00\x80" K "\x00\x80" K), "",
     B("\x88\x02\x03\xf0"), 1008, 0, 3},
    {"pings do not count as fragments",
     B("\x01\x81" K "a"
       "\x89\x80" K "\x89\x80" K "\x89\x80" K "\x80\x81" K "b"),
     "T:ab|", B("\x8a\x00\x8a\x00\x8a\x00"), 0, 0, 2},
};

/* Runs one row with the input cut at the given offsets. Returns 1 when all
 * matches. */
static int run_row(const row_t *rw, const size_t *cuts, int ncuts) {
  size_t base = lb_open(rw->max_len, rw->max_frags), prev = 0;
  int i, ok;
  for (i = 0; i <= ncuts; i++) {
    size_t e = i < ncuts ? cuts[i] : rw->in_n;
    lb_feed(rw->in + prev, e - prev);
    prev = e;
  }
  ok = strcmp(log_str(), rw->log) == 0 && out_is(base, rw->out, rw->out_n);
  if (rw->code == 0)
    ok = ok && lb.on_close_calls == 0 && lb.closes == 0;
  else
    ok = ok && lb.on_close_calls == 1 && lb.close_code == rw->code &&
         lb.closes >= 1 && lb.drain == 1;
  lb_finish();
  ok = ok && lb.on_close_calls == 1; /* exactly once, whatever happened */
  if (!ok) {
    fprintf(stdout, "#   row \"%s\" cut", rw->name);
    for (i = 0; i < ncuts; i++)
      fprintf(stdout, " %zu", cuts[i]);
    fprintf(stdout, ": log \"%s\", %zu bytes out, on_close %d x%d\n", log_str(),
            lb.out.len - base, lb.close_code, lb.on_close_calls);
  }
  plume__buf_free(&lb.out);
  plume__buf_free(&lb.log);
  return ok;
}

static void test_rows_whole(void) {
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    CHECK(run_row(&rows[i], NULL, 0));
}

static void test_rows_byte_by_byte(void) {
  size_t i, k, cuts[512];
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    for (k = 1; k < rows[i].in_n; k++)
      cuts[k - 1] = k;
    CHECK(run_row(&rows[i], cuts, (int)rows[i].in_n - 1));
  }
}

/* Every split into two and into three pieces. */
static void test_rows_every_split(void) {
  size_t i, a, b, cuts[2];
  int bad = 0;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    for (a = 1; a < rows[i].in_n && bad < 5; a++) {
      cuts[0] = a;
      if (!run_row(&rows[i], cuts, 1))
        bad++;
      for (b = a + 1; b < rows[i].in_n && bad < 5; b++) {
        cuts[1] = b;
        if (!run_row(&rows[i], cuts, 2))
          bad++;
      }
    }
  }
  CHECK_EQ(bad, 0);
}

/* ------------------------------------------------------------------------- */
/* Frames with real masks and larger payloads */

/* Appends one masked client frame. */
static void client_frame(plume__buf_t *b, int b0, const void *p, size_t n,
                         uint32_t seed) {
  uint8_t head[14], key[4];
  size_t hl = 2, i;
  head[0] = (uint8_t)b0;
  if (n < 126) {
    head[1] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    head[1] = 0x80 | 126;
    head[2] = (uint8_t)(n >> 8);
    head[3] = (uint8_t)n;
    hl = 4;
  } else {
    head[1] = 0x80 | 127;
    for (i = 0; i < 8; i++)
      head[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  for (i = 0; i < 4; i++)
    key[i] = (uint8_t)(seed >> (8 * i)) | 1;
  memcpy(head + hl, key, 4);
  plume__buf_append(b, head, hl + 4);
  for (i = 0; i < n; i++)
    plume__buf_appendc(b, (char)(((const uint8_t *)p)[i] ^ key[i % 4]));
}

static void test_masked_payloads(void) {
  /* RFC 6455 §5.7: a masked "Hello". */
  static const char hello[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  plume__buf_t in = {NULL, 0, 0};
  char *big = malloc(70000);
  size_t i, base, step, heads[4];
  base = lb_open(0, 0);
  lb_feed(hello, sizeof(hello) - 1);
  CHECK_STR(log_str(), "T:Hello|");
  lb_teardown();

  for (i = 0; i < 70000; i++)
    big[i] = (char)('a' + i % 26);
  heads[0] = in.len;
  client_frame(&in, 0x81, big, 200, 0x12345678);
  heads[1] = in.len;
  client_frame(&in, 0x82, big, 70000, 0x9abcdef0);
  heads[2] = in.len;
  client_frame(&in, 0x01, big, 3, 1);
  heads[3] = in.len;
  client_frame(&in, 0x80, big + 3, 65535, 2);
  /* Whole, in 4093-byte reads, then byte by byte within 40 bytes of each head.
   */
  for (step = 0; step < 3; step++) {
    size_t at = 0;
    base = lb_open(0, 0);
    while (at < in.len) {
      size_t k = step == 0 ? in.len : 4093, h;
      if (step == 2) {
        k = 1000;
        for (h = 0; h < 4; h++)
          if (at + 40 >= heads[h] && at < heads[h] + 40)
            k = 1;
          else if (at < heads[h] && heads[h] - at - 40 < k)
            k = heads[h] - at - 40;
      }
      if (k > in.len - at)
        k = in.len - at;
      lb_feed(in.p + at, k);
      at += k;
    }
    CHECK_EQ(lb.out.len, base);
    CHECK_EQ(lb.on_close_calls, 0);
    CHECK(lb.log.len == 2 + 200 + 1 + 2 + 140000 + 1 + 2 + 65538 + 1);
    CHECK(lb.log.len > 205 && memcmp(lb.log.p, "T:", 2) == 0 &&
          memcmp(lb.log.p + 2, big, 200) == 0);
    CHECK(lb.log.len > 210 + 140000 &&
          memcmp(lb.log.p + 203, "B:6162636465", 12) == 0);
    CHECK(lb.log.len > 65538 &&
          memcmp(lb.log.p + lb.log.len - 65539, big, 65538) == 0);
    lb_teardown();
  }
  plume__buf_free(&in);
  free(big);
}

/* Thousands of frames in one read, and a ping flood answered pong by pong. */
static void test_many_frames(void) {
  plume__buf_t in = {NULL, 0, 0};
  size_t i, base;
  for (i = 0; i < 5000; i++)
    client_frame(&in, 0x81, "x", 1, (uint32_t)i);
  base = lb_open(0, 0);
  lb_feed(in.p, in.len);
  CHECK_EQ(lb.log.len, 5000 * 4);
  CHECK_EQ(lb.out.len, base);
  CHECK(lb.c.ws->ctx != NULL); /* warm for the turn */
  idle_turn();
  CHECK(lb.c.ws->ctx == NULL);
  lb_teardown();
  in.len = 0;
  for (i = 0; i < 10000; i++)
    client_frame(&in, 0x89, "pp", 2, (uint32_t)i);
  base = lb_open(0, 0);
  lb_feed(in.p, in.len);
  CHECK_EQ(lb.out.len - base, 10000 * 4);
  CHECK(out_is(lb.out.len - 4,
               "\x8a\x02"
               "pp",
               4));
  CHECK_EQ(lb.on_close_calls, 0);
  lb_teardown();
  plume__buf_free(&in);
}

/* ------------------------------------------------------------------------- */
/* Handshake */

static void test_handshake_rfc_example(void) {
  static const char want[] =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "Access-Control-Allow-Origin: *\r\n\r\n";
  lb_reset(0, 0);
  lb_header(&lb, "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits");
  lb_header(&lb, "Sec-WebSocket-Protocol", "chat");
  CHECK_EQ(
      plume__ws_accept(&lb.c, &handler, "Access-Control-Allow-Origin: *\r\n"),
      0);
  CHECK_MEM(lb.out.p, lb.out.len, want);
  CHECK(lb.c.flags & PLUME__CONN_WS);
  CHECK(lb.c.ws != NULL && lb.c.ws->ctx == NULL);
  CHECK_EQ(lb.http_freed, 1);
  CHECK_EQ(lb.closes, 0);
  lb_teardown();
}

static void test_handshake_token_lists(void) {
  lb_reset(0, 0);
  lb.headers[1].value.p = "h2c, WebSocket";
  lb.headers[1].value.n = strlen(lb.headers[1].value.p);
  lb.headers[2].value.p = "keep-alive,\tUPGRADE ";
  lb.headers[2].value.n = strlen(lb.headers[2].value.p);
  CHECK_EQ(plume__ws_accept(&lb.c, &handler, NULL), 0);
  CHECK(lb.out.len > 12 && memcmp(lb.out.p, "HTTP/1.1 101", 12) == 0);
  lb_teardown();
  /* Connection split over two header lines. */
  lb_reset(0, 0);
  lb.headers[2].value.p = "keep-alive";
  lb.headers[2].value.n = strlen("keep-alive");
  lb_header(&lb, "connection", "upgrade");
  CHECK_EQ(plume__ws_accept(&lb.c, &handler, NULL), 0);
  lb_teardown();
}

typedef struct refusal_s {
  const char *name;
  int method;
  int drop;          /* index of a default header to remove, -1: none */
  const char *hname; /* a header to add (after the drop) */
  const char *hvalue;
  int status;
} refusal_t;

static const refusal_t refusals[] = {
    {"POST", HTTP_POST, -1, NULL, NULL, 400},
    {"no Upgrade", HTTP_GET, 1, NULL, NULL, 400},
    {"Upgrade: h2c", HTTP_GET, 1, "Upgrade", "h2c", 400},
    {"Upgrade: websockets", HTTP_GET, 1, "Upgrade", "websockets", 400},
    {"no Connection", HTTP_GET, 2, NULL, NULL, 400},
    {"Connection: keep-alive", HTTP_GET, 2, "Connection", "keep-alive", 400},
    {"no key", HTTP_GET, 3, NULL, NULL, 400},
    {"key not base64", HTTP_GET, 3, "Sec-WebSocket-Key",
     "!!!!!!!!!!!!!!!!!!!!!!==", 400},
    {"key of 15 bytes", HTTP_GET, 3, "Sec-WebSocket-Key",
     "AAAAAAAAAAAAAAAAAAAA", 400},
    {"key of 17 bytes", HTTP_GET, 3, "Sec-WebSocket-Key",
     "AAAAAAAAAAAAAAAAAAAAAAA=", 400},
    {"two keys", HTTP_GET, -1, "Sec-WebSocket-Key",
     "AAAAAAAAAAAAAAAAAAAAAA==", 400},
    {"no version", HTTP_GET, 4, NULL, NULL, 426},
    {"version 8", HTTP_GET, 4, "Sec-WebSocket-Version", "8", 426},
    {"version 13, 8", HTTP_GET, 4, "Sec-WebSocket-Version", "13, 8", 426},
};

static void test_handshake_refusals(void) {
  size_t i;
  for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
    const refusal_t *f = &refusals[i];
    char want[64];
    int rv;
    lb_reset(0, 0);
    lb.req.method = f->method;
    if (f->drop >= 0) {
      memmove(&lb.headers[f->drop], &lb.headers[f->drop + 1],
              (lb.req.nheaders - (uint32_t)f->drop - 1) *
                  sizeof(lb.headers[0]));
      lb.req.nheaders--;
    }
    if (f->hname != NULL)
      lb_header(&lb, f->hname, f->hvalue);
    rv = plume__ws_accept(&lb.c, &handler, "X-Extra: 1\r\n");
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", f->status);
    plume__buf_appendc(&lb.out, '\0');
    if (rv != PLUME_EPROTO || strncmp(lb.out.p, want, strlen(want)) != 0)
      fprintf(stdout, "#   refusal \"%s\": rv %d, got %.40s\n", f->name, rv,
              lb.out.p);
    CHECK_EQ(rv, PLUME_EPROTO);
    CHECK(strncmp(lb.out.p, want, strlen(want)) == 0);
    CHECK(strstr(lb.out.p, "\r\nConnection: close\r\n") != NULL);
    CHECK((strstr(lb.out.p, "\r\nSec-WebSocket-Version: 13\r\n") != NULL) ==
          (f->status == 426));
    CHECK(strstr(lb.out.p, "Sec-WebSocket-Accept") == NULL);
    CHECK(lb.c.ws == NULL && !(lb.c.flags & PLUME__CONN_WS));
    CHECK_EQ(lb.http_freed, 0);
    CHECK(lb.closes == 1 && lb.drain == 1);
    CHECK_EQ(lb.on_close_calls, 0);
    lb_teardown();
  }
}

/* Frames sent along with the upgrade request reach the handler. */
static void test_handshake_leftover(void) {
  static const char early[] = "\x81\x82" K "hi"
                              "\x89\x80" K "\x81";
  size_t head;
  lb_reset(0, 0);
  lb.leftover.p = early;
  lb.leftover.n = sizeof(early) - 1;
  CHECK_EQ(plume__ws_accept(&lb.c, &handler, NULL), 0);
  CHECK_STR(log_str(), "T:hi|");
  head = (size_t)(strstr(lb.out.p, "\r\n\r\n") - lb.out.p) + 4;
  CHECK(out_is(head, "\x8a\x00", 2));
  CHECK_EQ(lb.c.ws->pend_len, 1); /* the lone byte waits for more */
  lb_feed("\x81" K "!", 6);
  CHECK_STR(log_str(), "T:hi|T:!|");
  lb_teardown();
}

/* ------------------------------------------------------------------------- */
/* Sending */

static void test_send_encoding(void) {
  static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
  static const char heads[][11] = {"\x81\x00",
                                   "\x81\x01",
                                   "\x81\x7d",
                                   "\x81\x7e\x00\x7e",
                                   "\x81\x7e\xff\xff",
                                   "\x81\x7f\0\0\0\0\0\x01\0\0",
                                   "\x81\x7f\0\0\0\0\0\x01\x11\x70"};
  static const size_t hls[] = {2, 2, 2, 4, 4, 10, 10};
  plume__shared_t *sh = plume__shared_alloc(70000 + 5);
  size_t i, base;
  for (i = 0; i < sh->len; i++)
    sh->data[i] = (char)i;
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    base = lb_open(0, 0);
    CHECK_EQ(
        plume__ws_send(&lb.c, 0, NULL, 0, sizes[i] ? sh : NULL, 5, sizes[i]),
        0);
    CHECK_EQ(lb.out.len - base, hls[i] + sizes[i]);
    CHECK(memcmp(lb.out.p + base, heads[i], hls[i]) == 0);
    CHECK(sizes[i] == 0 ||
          memcmp(lb.out.p + base + hls[i], sh->data + 5, sizes[i]) == 0);
    /* Zero copy: the block itself is queued, holding a reference. */
    CHECK_EQ(lb.nrefs, sizes[i] ? 1 : 0);
    CHECK_EQ(sh->refs, sizes[i] ? 2 : 1);
    lb_teardown();
  }
  plume__shared_unref(sh);
}

static void test_send_prefix(void) {
  plume__shared_t *sh = plume__shared_new("\x01\x02\x03", 3);
  char prefix[40];
  size_t base;
  memset(prefix, 'p', sizeof(prefix));
  base = lb_open(0, 0);
  CHECK_EQ(plume__ws_send(&lb.c, 1, "\x04", 1, sh, 0, 3), 0);
  CHECK(out_is(base, "\x82\x04\x04\x01\x02\x03", 6));
  base = lb.out.len;
  CHECK_EQ(plume__ws_send(&lb.c, 1, prefix, sizeof(prefix), sh, 1, 2), 0);
  CHECK_EQ(lb.out.len - base, 2 + 40 + 2);
  CHECK(memcmp(lb.out.p + base,
               "\x82\x2a"
               "pppp",
               6) == 0);
  CHECK(memcmp(lb.out.p + lb.out.len - 2, "\x02\x03", 2) == 0);
  base = lb.out.len;
  CHECK_EQ(plume__ws_send(&lb.c, 0, "4", 1, NULL, 0, 0), 0);
  CHECK(out_is(base,
               "\x81\x01"
               "4",
               3));
  lb_teardown();
  plume__shared_unref(sh);
}

static void test_close_frames(void) {
  plume__shared_t *sh = plume__shared_new("x", 1);
  size_t base = lb_open(0, 0);
  plume__ws_close(&lb.c, 0);
  CHECK(out_is(base, "\x88\x00", 2));
  CHECK(lb.closes == 1 && lb.drain == 1);
  CHECK_EQ(plume__ws_send(&lb.c, 0, NULL, 0, sh, 0, 1), PLUME_ECLOSED);
  plume__ws_close(&lb.c, 1000); /* twice: nothing more written */
  CHECK(out_is(base, "\x88\x00", 2));
  lb_feed("\x81\x81" K "x", 7); /* input after close is ignored */
  CHECK_STR(log_str(), "");
  lb_finish();
  CHECK_EQ(lb.on_close_calls, 0); /* the caller asked: no callback */
  lb_teardown();

  base = lb_open(0, 0);
  plume__ws_close(&lb.c, 1001);
  CHECK(out_is(base, "\x88\x02\x03\xe9", 4));
  lb_teardown();
  base = lb_open(0, 0);
  plume__ws_close(&lb.c, 1005); /* never on the wire */
  CHECK(out_is(base, "\x88\x00", 2));
  lb_teardown();
  CHECK_EQ(lb.on_close_calls, 0);
  plume__shared_unref(sh);
}

/* A TCP close without a close frame reports 1006 once, from the close path. */
static void test_abnormal_close(void) {
  lb_open(0, 0);
  lb_feed("\x01\x81" K "a", 7); /* leaves a message open: wslay context alive */
  CHECK(lb.c.ws->ctx != NULL);
  CHECK_EQ(lb.on_close_calls, 0);
  lb_finish();
  CHECK_EQ(lb.on_close_calls, 1);
  CHECK_EQ(lb.close_code, 1006);
  CHECK(lb.c.ws == NULL);
  lb_teardown();
  CHECK_EQ(lb.on_close_calls, 1);
}

/* The upper layer closes from inside on_message: nothing after that message
 * runs. */
static void test_close_inside_message(void) {
  static const char in[] = "\x81\x81" K "a"
                           "\x89\x80" K "\x81\x81" K "b";
  size_t base = lb_open(0, 0);
  lb.close_in_message = 1;
  lb_feed(in, sizeof(in) - 1);
  CHECK_STR(log_str(), "T:a|");
  CHECK(out_is(base, "\x88\x02\x03\xe8", 4));
  CHECK_EQ(lb.on_close_calls, 0);
  lb_teardown();
  CHECK_EQ(lb.on_close_calls, 0);
}

/* plume__ws_free arriving while wslay runs waits for it to unwind. */
static void free_in_message(plume__conn_t *c, int binary, const char *p,
                            size_t n) {
  h_message(c, binary, p, n);
  plume__ws_free(c);
}

static void test_free_inside_message(void) {
  static const plume__ws_handler_t h = {free_in_message, h_close};
  static const char in[] = "\x81\x81" K "a"
                           "\x81\x81" K "b";
  lb_reset(0, 0);
  CHECK_EQ(plume__ws_accept(&lb.c, &h, NULL), 0);
  lb_feed(in, sizeof(in) - 1);
  CHECK_STR(log_str(), "T:a|");
  CHECK(lb.c.ws == NULL);
  CHECK_EQ(lb.on_close_calls, 1);
  lb_teardown();
}

/* ------------------------------------------------------------------------- */
/* wslay's own checks (behind the scanner), and memory */

/* Bypassing the scanner: wslay alone still answers an unmasked frame with
** 1002 and an oversized one with 1009 (its default cap would be 2 GiB;
** make_ctx sets ours). */
static void test_wslay_alone(void) {
  static const uint8_t unmasked[] = "\x81\x02"
                                    "hi";
  static const uint8_t big[] = "\x82\x85" K "12345";
  size_t base = lb_open(0, 0);
  CHECK(feed(&lb.c, lb.c.ws, unmasked, 4) != 0);
  CHECK(out_is(base, "\x88\x02\x03\xea", 4));
  CHECK_EQ(lb.close_code, 1002);
  lb_teardown();
  base = lb_open(4, 0);
  CHECK(feed(&lb.c, lb.c.ws, big, 11) != 0);
  CHECK(out_is(base, "\x88\x02\x03\xf1", 4));
  CHECK_EQ(lb.close_code, 1009);
  lb_teardown();
}

static void test_idle_memory(void) {
  size_t h0, idle, busy;
  lb_reset(0, 0);
  plume__buf_reserve(&lb.out, 1 << 16);
  plume__buf_reserve(&lb.log, 1 << 16);
  h0 = heap_bytes();
  CHECK_EQ(plume__ws_accept(&lb.c, &handler, NULL), 0);
  idle = heap_bytes() - h0;
  lb_feed("\x01\x81" K "a", 7);
  busy = heap_bytes() - h0;
  CHECK(lb.c.ws->ctx != NULL);
  lb_feed("\x80\x81" K "b", 7);
  CHECK(lb.c.ws->ctx != NULL);
  idle_turn();
  CHECK(lb.c.ws->ctx == NULL);
  CHECK(heap_bytes() - h0 <= idle + HEAP_SLACK);
  CHECK_STR(log_str(), "T:ab|");
  fprintf(stdout,
          "# sizeof(plume__ws_t) %zu, sizeof(plume__conn_t) %zu; heap of an "
          "idle WebSocket %zu bytes, with a message in progress %zu bytes\n",
          sizeof(plume__ws_t), sizeof(plume__conn_t), idle, busy);
  CHECK(idle <= 256);
  CHECK(sizeof(plume__conn_t) + idle < 1024);
  lb_teardown();
}

/* A fragment flood stops at the cap with the heap bounded by the fragments
 * allowed. */
static void test_fragment_flood_memory(void) {
  plume__buf_t in = {NULL, 0, 0};
  size_t h0, peak = 0, i, base;
  client_frame(&in, 0x02, "a", 1, 9);
  for (i = 0; i < 100000; i++)
    client_frame(&in, 0x00, "a", 1, (uint32_t)i);
  base = lb_open(0, 0);
  plume__buf_reserve(&lb.out, 1 << 16);
  h0 = heap_bytes();
  for (i = 0; i < in.len && !lb.closes; i += 7) {
    size_t now;
    lb_feed(in.p + i, in.len - i < 7 ? in.len - i : 7);
    now = heap_bytes();
    if (now > peak)
      peak = now;
  }
  CHECK(out_is(base, "\x88\x02\x03\xf0", 4));
  CHECK_EQ(lb.close_code, 1008);
  CHECK(i < 1025 * 7 + 8);
  fprintf(stdout, "# 1024 one-byte fragments held %zu bytes at peak\n",
          peak - h0);
  CHECK(peak - h0 < 256 * 1024);
  lb_teardown();
  plume__buf_free(&in);
}

#ifndef PLUME_TEST_NO_E2E /* -D to build against buf.c and options.c alone */
/* ------------------------------------------------------------------------- */
/* End to end: the real tcp.c, http.c and engineio.c over loopback sockets. The
** renames above keep the real plume__ws_* of the archive apart from the copy
** under test; these tests reach them only through sockets. */

typedef struct cl_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  plume__buf_t in; /* every byte received */
  size_t at;       /* parse position in in (after the HTTP head) */
  int connected, eof, closed;
} cl_t;

typedef struct cl_write_s {
  uv_write_t req;
  char data[];
} cl_write_t;

static uv_loop_t e2e_loop;
static plume_t *e2e_p;
static int e2e_port, eio_opens, eio_closes, e2e_done;
static char cl_read_buf[65536];

static void e2e_open(plume__eio_session_t *s) {
  eio_opens++;
}

static void e2e_message(plume__eio_session_t *s, int binary, const char *p,
                        size_t n) {
  plume__eio_send(s, binary, p, n); /* echo */
}

static void e2e_close(plume__eio_session_t *s, const char *reason) {
  eio_closes++;
}

static const plume__eio_handler_t e2e_handler = {e2e_open, e2e_message,
                                                 e2e_close};

static void cl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  *buf = uv_buf_init(cl_read_buf, sizeof(cl_read_buf));
}

static void cl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cl_t *cl = s->data;
  if (nread > 0)
    plume__buf_append(&cl->in, buf->base, (size_t)nread);
  else if (nread < 0)
    cl->eof = 1;
}

static void cl_connected(uv_connect_t *req, int status) {
  cl_t *cl = req->data;
  cl->connected = status == 0 ? 1 : -1;
  if (status == 0)
    uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc, cl_read);
}

static void cl_written(uv_write_t *req, int status) {
  free(req);
}

static void cl_send(cl_t *cl, const void *p, size_t n) {
  cl_write_t *w = malloc(sizeof(*w) + n);
  uv_buf_t b;
  memcpy(w->data, p, n);
  b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&cl->tcp, &b, 1, cl_written) != 0)
    free(w);
}

static void cl_tick(uv_timer_t *t) {}

/* Runs the loop until pred(cl) holds or two seconds pass. */
static int wait_for(int (*pred)(cl_t *), cl_t *cl) {
  uv_timer_t tick;
  uint64_t end;
  int ok;
  uv_timer_init(&e2e_loop, &tick);
  uv_timer_start(&tick, cl_tick, 5, 5);
  uv_update_time(&e2e_loop);
  end = uv_now(&e2e_loop) + 2000;
  while (!(ok = pred(cl)) && uv_now(&e2e_loop) < end)
    uv_run(&e2e_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&e2e_loop, UV_RUN_NOWAIT);
  return ok;
}

/* The next server frame at cl->at: 1 with its opcode and payload, 0 if
** incomplete. Server frames are unmasked and never fragmented. */
static int cl_frame(cl_t *cl, int *op, const char **p, size_t *n) {
  const uint8_t *h = (const uint8_t *)cl->in.p + cl->at;
  size_t avail = cl->in.len - cl->at, hl = 2, len, i;
  if (cl->at == 0 || avail < 2)
    return 0;
  len = h[1] & 0x7f;
  if (len == 126) {
    if (avail < 4)
      return 0;
    len = (size_t)h[2] << 8 | h[3];
    hl = 4;
  } else if (len == 127) {
    if (avail < 10)
      return 0;
    for (len = 0, i = 0; i < 8; i++)
      len = len << 8 | h[2 + i];
    hl = 10;
  }
  if (avail < hl + len)
    return 0;
  *op = h[0] & 0x0f;
  *p = (const char *)h + hl;
  *n = len;
  cl->at += hl + len;
  return 1;
}

static int has_head(cl_t *cl) {
  size_t i;
  for (i = 0; i + 4 <= cl->in.len; i++)
    if (memcmp(cl->in.p + i, "\r\n\r\n", 4) == 0) {
      cl->at = i + 4;
      return 1;
    }
  return cl->eof;
}

static int has_frame(cl_t *cl) {
  size_t at = cl->at;
  int op;
  const char *p;
  size_t n;
  if (cl_frame(cl, &op, &p, &n)) {
    cl->at = at;
    return 1;
  }
  return cl->eof;
}

/* Waits for the next server frame; op is -1 when none came. */
static void next_frame(cl_t *cl, int *op, const char **p, size_t *n) {
  *op = -1;
  *p = "";
  *n = 0;
  if (!wait_for(has_frame, cl) || !cl_frame(cl, op, p, n))
    *op = -1;
}

static int is_connected(cl_t *cl) {
  return cl->connected != 0;
}
static int is_eof(cl_t *cl) {
  return cl->eof;
}
static int is_closed(cl_t *cl) {
  return cl->closed;
}

static void cl_closed(uv_handle_t *h) {
  ((cl_t *)h->data)->closed = 1;
}

/* Connects, upgrades and reads the Engine.IO open packet. */
static int cl_open(cl_t *cl) {
  static const char req[] =
      "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
      "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  struct sockaddr_in sa;
  int op;
  const char *p;
  size_t n;
  plume__buf_t in = cl->in; /* keeps a reservation made by the caller */
  memset(cl, 0, sizeof(*cl));
  cl->in = in;
  cl->in.len = 0;
  uv_tcp_init(&e2e_loop, &cl->tcp);
  cl->tcp.data = cl;
  cl->connect.data = cl;
  uv_ip4_addr("127.0.0.1", e2e_port, &sa);
  if (uv_tcp_connect(&cl->connect, &cl->tcp, (struct sockaddr *)&sa,
                     cl_connected) != 0 ||
      !wait_for(is_connected, cl) || cl->connected != 1)
    return 0;
  cl_send(cl, req, sizeof(req) - 1);
  if (!wait_for(has_head, cl) || cl->at == 0 ||
      memcmp(cl->in.p, "HTTP/1.1 101 ", 13) != 0)
    return 0;
  return wait_for(has_frame, cl) && cl_frame(cl, &op, &p, &n) && op == 1 &&
         n > 2 && memcmp(p, "0{", 2) == 0;
}

static void cl_close(cl_t *cl) {
  uv_close((uv_handle_t *)&cl->tcp, cl_closed);
  wait_for(is_closed, cl);
  plume__buf_free(&cl->in);
}

static void e2e_closed(plume_t *p) {
  e2e_done = 1;
}

#define FLOOD_PINGS 8192
static uint32_t flood_conns;

static int flushed(cl_t *cl) {
  return cl->tcp.write_queue_size == 0 || e2e_p->nconns < flood_conns;
}

/* Lets the loop run for a while (close callbacks, deferred frees). */
static void settle(void) {
  uv_timer_t t;
  uv_timer_init(&e2e_loop, &t);
  uv_timer_start(&t, cl_tick, 100, 0);
  while (uv_is_active((uv_handle_t *)&t))
    uv_run(&e2e_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&e2e_loop, UV_RUN_NOWAIT);
}

static void test_e2e(void) {
  static cl_t cl, cl2, many[200];
  plume_options_t o;
  plume__eio_config_t cfg;
  plume__eio_server_t *srv;
  struct sockaddr_storage ss;
  int sslen = sizeof(ss), op, i, opened = 0;
  char *flood;
  const char *p;
  size_t n, h0, h1, h2;
  CHECK_EQ(uv_loop_init(&e2e_loop), 0);
  plume_options_init(&o);
  plume_options_set(&o, "lua_path", "lua");
  plume_options_set(&o, "log_level", "error");
  plume_options_set(&o, "max_output_bytes", "262144");
  if (plume_new(&e2e_p, &e2e_loop, &o) != 0) {
    CHECK(!"plume_new (run from the repository root)");
    return;
  }
  plume__eio_config_init(&cfg, &e2e_p->opts);
  CHECK_EQ(plume__eio_server_new(e2e_p, &cfg, &e2e_handler, NULL, &srv), 0);
  CHECK_EQ(plume_listen(e2e_p, "127.0.0.1", 0), 0);
  uv_tcp_getsockname(&e2e_p->listeners->tcp, (struct sockaddr *)&ss, &sslen);
  e2e_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

  /* Upgrade, echo through Engine.IO, ping, close handshake. */
  CHECK(cl_open(&cl));
  CHECK(cl.in.len > 0 &&
        memmem(cl.in.p, cl.in.len,
               "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
               54) != NULL);
  CHECK_EQ(eio_opens, 1);
  cl_send(&cl,
          "\x81\x86\x01\x02\x03\x04"
          "5jfhmm",
          12); /* "4hello" */
  next_frame(&cl, &op, &p, &n);
  CHECK(op == 1 && n == 6 && memcmp(p, "4hello", 6) == 0);
  cl_send(&cl,
          "\x89\x81\x01\x02\x03\x04"
          "y",
          7); /* ping "x" */
  next_frame(&cl, &op, &p, &n);
  CHECK(op == 10 && n == 1 && p[0] == 'x');
  cl_send(&cl, "\x88\x82\0\0\0\0\x03\xe8", 8);
  next_frame(&cl, &op, &p, &n);
  CHECK(op == 8 && n == 2 && memcmp(p, "\x03\xe8", 2) == 0);
  CHECK(wait_for(is_eof, &cl));
  CHECK_EQ(eio_closes, 1);
  cl_close(&cl);

  /* A protocol error: 1002, then the server closes. */
  CHECK(cl_open(&cl2));
  cl_send(&cl2,
          "\x81\x01"
          "x",
          3);
  next_frame(&cl2, &op, &p, &n);
  CHECK(op == 8 && n == 2 && memcmp(p, "\x03\xea", 2) == 0);
  CHECK(wait_for(is_eof, &cl2));
  CHECK_EQ(eio_closes, 2);
  cl_close(&cl2);

  /* Server-side heap per idle WebSocket (connection, Engine.IO session,
  ** WebSocket state), then back down once they close. */
  for (i = 0; i < 200; i++)
    plume__buf_reserve(&many[i].in, 4096);
  settle();
  h0 = heap_bytes();
  for (i = 0; i < 200; i++) { /* open, then one echo so wslay has run */
    if (!cl_open(&many[i]))
      continue;
    cl_send(&many[i],
            "\x81\x82\0\0\0\0"
            "4x",
            8);
    next_frame(&many[i], &op, &p, &n);
    opened += op == 1 && n == 2;
  }
  settle();
  h1 = heap_bytes();
  CHECK_EQ(opened, 200);
  fprintf(stdout,
          "# end to end: %zu bytes of server heap per idle Engine.IO "
          "WebSocket (%d open)\n",
          (h1 - h0) / 200, opened);
  CHECK((h1 - h0) / 200 < 4096);
  for (i = 0; i < 200; i++)
    cl_close(&many[i]);
  settle();
  h2 = heap_bytes();
  CHECK_EQ(eio_closes, 202);
  CHECK(h2 < h0 + 16384);

  /* A ping flood from a client that never reads: pongs pile up to the output
  ** cap, then the server drops the connection (reliability.md §4.3 #22). */
  CHECK(cl_open(&cl));
  uv_read_stop((uv_stream_t *)&cl.tcp);
  flood_conns = e2e_p->nconns;
  flood = malloc(FLOOD_PINGS * 131);
  for (i = 0; i < FLOOD_PINGS; i++) {
    memcpy(flood + i * 131, "\x89\xfd\0\0\0\0", 6);
    memset(flood + i * 131 + 6, 'p', 125);
  }
  for (i = 0; i < 64 && e2e_p->nconns == flood_conns; i++) {
    cl_send(&cl, flood, FLOOD_PINGS * 131);
    wait_for(flushed, &cl);
  }
  fprintf(stdout, "# ping flood: dropped after %d x %d pings\n", i,
          FLOOD_PINGS);
  CHECK_EQ(e2e_p->nconns, flood_conns - 1);
  free(flood);
  cl_close(&cl);

  plume_close(e2e_p, e2e_closed);
  uv_run(&e2e_loop, UV_RUN_DEFAULT);
  CHECK_EQ(e2e_done, 1);
  plume_destroy(e2e_p);
  CHECK_EQ(uv_loop_close(&e2e_loop), 0);
}

#endif

int main(void) {
  RUN(test_rows_whole);
  RUN(test_rows_byte_by_byte);
  RUN(test_rows_every_split);
  RUN(test_masked_payloads);
  RUN(test_many_frames);
  RUN(test_handshake_rfc_example);
  RUN(test_handshake_token_lists);
  RUN(test_handshake_refusals);
  RUN(test_handshake_leftover);
  RUN(test_send_encoding);
  RUN(test_send_prefix);
  RUN(test_close_frames);
  RUN(test_abnormal_close);
  RUN(test_close_inside_message);
  RUN(test_free_inside_message);
  RUN(test_wslay_alone);
  RUN(test_idle_memory);
  RUN(test_fragment_flood_memory);
#ifndef PLUME_TEST_NO_E2E
  RUN(test_e2e);
#endif
  plume__shared_pool_drain();
  return check_done();
}
