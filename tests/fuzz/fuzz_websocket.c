/*
** fuzz_websocket.c: the WebSocket receive path (head scanner, wslay, close and
** limits) over an in-memory connection. The first input byte picks the read
** size (0: all at once), the rest is client bytes. Checks: text messages are
** UTF-8, messages respect the limit, on_close runs exactly once.
** -DPLUME_FUZZ_MAIN replays files given on the command line.
*/
#define plume__conn_write fz_conn_write
#define plume__conn_write_shared fz_conn_write_shared
#define plume__conn_close fz_conn_close
#define plume__http_current fz_http_current
#define plume__http_leftover fz_http_leftover
#define plume__http_free fz_http_free
#define plume__log fz_log
#define plume__ws_accept fz_ws_accept
#define plume__ws_send fz_ws_send
#define plume__ws_close fz_ws_close
#define plume__ws_on_data fz_ws_on_data
#define plume__ws_free fz_ws_free
#define plume__ws_sweep fz_ws_sweep
#include "../../runtime/websocket.c"

#include <stdio.h>

#define FZ_MAX_MSG 4096
#define FZ_MAX_OUT (1 << 20)

static struct {
  plume__conn_t c;
  plume__http_req_t req;
  plume__header_t headers[4];
  size_t out;
  int on_close_calls, messages;
} fz;

static plume_t fz_plume;
static int fz_failed;

static void fz_fail(const char *why) {
  fprintf(stderr, "fuzz_websocket: %s\n", why);
#ifdef PLUME_FUZZ_MAIN
  fz_failed = 1;
#else
  abort();
#endif
}

int plume__conn_write(plume__conn_t *c, const void *p, size_t n) {
  if (c->flags & PLUME__CONN_CLOSING)
    return PLUME_ECLOSED;
  if (fz.out + n > FZ_MAX_OUT) { /* tcp.c's output cap */
    plume__conn_close(c, 0);
    return PLUME_ETOOBIG;
  }
  fz.out += n;
  return 0;
}

int plume__conn_write_shared(plume__conn_t *c, plume__shared_t *sh, size_t off,
                             size_t n) {
  return plume__conn_write(c, sh->data + off, n);
}

void plume__conn_close(plume__conn_t *c, int drain) {
  c->flags |= PLUME__CONN_CLOSING;
}

plume__http_req_t *plume__http_current(plume__conn_t *c) {
  return &fz.req;
}

plume_slice_t plume__http_leftover(plume__conn_t *c) {
  plume_slice_t s = {NULL, 0};
  return s;
}

void plume__http_free(plume__conn_t *c) {}

void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) {}

/* RFC 3629: shortest forms only, no surrogates, nothing past U+10FFFF. */
static int is_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], need, min, cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      need = 1, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
      need = 2, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
      need = 3, min = 0x10000, cp = c & 0x07;
    else
      return 0;
    if (n - i <= need)
      return 0;
    for (i++; need > 0; need--, i++) {
      if ((s[i] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
  }
  return 1;
}

static void fz_message(plume__conn_t *c, int binary, const char *p, size_t n) {
  fz.messages++;
  if (n > FZ_MAX_MSG)
    fz_fail("message over the limit delivered");
  if (!binary && !is_utf8((const unsigned char *)p, n))
    fz_fail("invalid UTF-8 delivered as text");
  if (fz.messages % 3 == 0) { /* answer some, as Engine.IO would */
    plume__shared_t *sh = plume__shared_new(p, n);
    if (sh != NULL) {
      plume__ws_send(c, binary, "4", 1, sh, 0, n);
      plume__shared_unref(sh);
    }
  }
}

static void fz_close(plume__conn_t *c, int code) {
  fz.on_close_calls++;
  if (code < 1000 || code > 4999)
    fz_fail("close code out of range");
}

static const plume__ws_handler_t fz_handler = {fz_message, fz_close};

static void fz_header(const char *name, const char *value) {
  plume__header_t *h = &fz.headers[fz.req.nheaders++];
  h->name.p = name;
  h->name.n = strlen(name);
  h->value.p = value;
  h->value.n = strlen(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t chunk, at;
  if (size == 0)
    return 0;
  memset(&fz, 0, sizeof(fz));
  plume_options_init(&fz_plume.opts);
  fz_plume.opts.max_http_buffer_size = FZ_MAX_MSG;
  fz_plume.opts.ws_max_fragments = 8;
  fz.c.p = &fz_plume;
  fz.req.method = HTTP_GET;
  fz.req.headers = fz.headers;
  fz_header("Upgrade", "websocket");
  fz_header("Connection", "Upgrade");
  fz_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  fz_header("Sec-WebSocket-Version", "13");
  if (plume__ws_accept(&fz.c, &fz_handler, NULL) != 0) {
    fz_fail("upgrade refused");
    return 0;
  }
  chunk = data[0] ? data[0] : size;
  for (at = 1; at < size; at += chunk) {
    size_t k = size - at < chunk ? size - at : chunk;
    uint8_t *copy = malloc(k); /* exact size: ASan sees any over-read */
    if (copy == NULL)
      break;
    memcpy(copy, data + at, k);
    plume__ws_on_data(&fz.c, (const char *)copy, k);
    free(copy);
  }
  /* The flusher's sweeps: the turn that fed input, then one without. */
  plume__ws_sweep(&fz_plume);
  plume__ws_sweep(&fz_plume);
  if (fz.c.ws != NULL && fz.c.ws->ctx != NULL && !fz.c.ws->closed &&
      !fz.c.ws->in_msg && fz.c.ws->left == 0 && fz.c.ws->pend_len == 0)
    fz_fail("wslay context kept while idle");
  plume__ws_free(&fz.c);
  if (fz.on_close_calls != 1)
    fz_fail("on_close not called exactly once");
  return 0;
}

#ifdef PLUME_FUZZ_MAIN
static int replay_failed(void) {
  int was = fz_failed;
  fz_failed = 0;
  return was;
}

static int replay_done(void) {
  return 0;
}

#include "replay.h"
#endif
