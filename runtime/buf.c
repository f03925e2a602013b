/*
** buf.c: growable buffers, reference-counted shared packet bytes, base64 and
** random ids. Used by every layer; knows nothing about protocols.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "internal.h"

int plume__buf_reserve(plume__buf_t *b, size_t n) {
  size_t cap;
  char *np;
  if (b->cap - b->len >= n && b->p != NULL)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2)
      return UV_ENOMEM;
    cap *= 2;
  }
  np = realloc(b->p, cap);
  if (np == NULL)
    return UV_ENOMEM;
  b->p = np;
  b->cap = cap;
  return 0;
}

int plume__buf_append(plume__buf_t *b, const void *p, size_t n) {
  if (plume__buf_reserve(b, n) != 0)
    return UV_ENOMEM;
  if (n > 0)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

int plume__buf_appendc(plume__buf_t *b, char c) {
  if (plume__buf_reserve(b, 1) != 0)
    return UV_ENOMEM;
  b->p[b->len++] = c;
  return 0;
}

int plume__buf_appendf(plume__buf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || plume__buf_reserve(b, (size_t)n + 1) != 0)
    return UV_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void plume__buf_free(plume__buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------- */
/* Shared blocks. Sizes up to 4 KiB come in four classes kept on free lists, so
** that encoding a packet costs no malloc once the loop is warm. The lists are
** bounded. */

#define POOL_CLASSES 4
#define POOL_MAX_FREE 1024

static const uint32_t pool_sizes[POOL_CLASSES] = {128, 512, 1536, 4096};

typedef struct pool_s {
  void *free[POOL_MAX_FREE];
  uint32_t nfree;
} pool_t;

/* The pool is process-wide but holds only free memory, never state: two
** instances in one process share it safely on one thread. Hosts running
** instances on several threads build with -DPLUME_NO_POOL. */
#ifndef PLUME_NO_POOL
static pool_t pools[POOL_CLASSES];
#endif

plume__shared_t *plume__shared_alloc(size_t n) {
  plume__shared_t *s = NULL;
  uint32_t cap = 0;
  int k;
  if (n > UINT32_MAX - sizeof(plume__shared_t))
    return NULL;
#ifndef PLUME_NO_POOL
  for (k = 0; k < POOL_CLASSES; k++) {
    if (n <= pool_sizes[k]) {
      cap = pool_sizes[k];
      if (pools[k].nfree > 0)
        s = pools[k].free[--pools[k].nfree];
      break;
    }
  }
#else
  (void)k;
#endif
  if (s == NULL) {
    if (cap == 0)
      cap = (uint32_t)n;
    s = malloc(sizeof(*s) + cap);
    if (s == NULL)
      return NULL;
  }
  s->refs = 1;
  s->len = (uint32_t)n;
  s->cap = cap;
  return s;
}

plume__shared_t *plume__shared_new(const void *p, size_t n) {
  plume__shared_t *s = plume__shared_alloc(n);
  if (s != NULL && n > 0)
    memcpy(s->data, p, n);
  return s;
}

void plume__shared_unref(plume__shared_t *s) {
  int k;
  if (s == NULL || --s->refs > 0)
    return;
#ifndef PLUME_NO_POOL
  for (k = 0; k < POOL_CLASSES; k++) {
    if (s->cap == pool_sizes[k]) {
      if (pools[k].nfree < POOL_MAX_FREE) {
        pools[k].free[pools[k].nfree++] = s;
        return;
      }
      break;
    }
  }
#else
  (void)k;
#endif
  free(s);
}

void plume__shared_pool_drain(void) {
#ifndef PLUME_NO_POOL
  int k;
  for (k = 0; k < POOL_CLASSES; k++)
    while (pools[k].nfree > 0)
      free(pools[k].free[--pools[k].nfree]);
#endif
}

/* ------------------------------------------------------------------------- */
/* Base64 (RFC 4648 §4), standard alphabet with padding (Engine.IO polling "b"
** packets, WebSocket keys), and base64url (§5) without padding (ids,
** tokens). */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes with the alphabet chars; pad: '=' up to a multiple of 4. */
static size_t b64_encode(char *dst, const unsigned char *src, size_t n,
                         const char *chars, int pad) {
  size_t i, o = 0;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v =
        (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
    dst[o++] = chars[v >> 18];
    dst[o++] = chars[(v >> 12) & 63];
    dst[o++] = chars[(v >> 6) & 63];
    dst[o++] = chars[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)src[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)src[i + 1] << 8;
    dst[o++] = chars[v >> 18];
    dst[o++] = chars[(v >> 12) & 63];
    if (i + 1 < n)
      dst[o++] = chars[(v >> 6) & 63];
    else if (pad)
      dst[o++] = '=';
    if (pad)
      dst[o++] = '=';
  }
  return o;
}

/* The value of digit c, where 62 and 63 are written c62 and c63; -1 for
** none. */
static int b64_value(char c, char c62, char c63) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == c62)
    return 62;
  if (c == c63)
    return 63;
  return -1;
}

/* Decodes n digits (no padding) into dst; the bits past the last whole byte go
** to *rest. Returns the byte count, or -1 for a character outside the
** alphabet. */
static long b64_decode(unsigned char *dst, const char *src, size_t n, char c62,
                       char c63, uint32_t *rest) {
  size_t i, o = 0;
  uint32_t v = 0;
  int bits = 0;
  for (i = 0; i < n; i++) {
    int d = b64_value(src[i], c62, c63);
    if (d < 0)
      return -1;
    v = v << 6 | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      dst[o++] = (unsigned char)(v >> bits);
      v &= (1u << bits) - 1;
    }
  }
  *rest = v;
  return (long)o;
}

size_t plume__base64_len(size_t n) {
  return (n + 2) / 3 * 4;
}

size_t plume__base64_encode(char *dst, const unsigned char *src, size_t n) {
  return b64_encode(dst, src, n, b64_chars, 1);
}

long plume__base64_decode(unsigned char *dst, const char *src, size_t n) {
  size_t pad = 0;
  uint32_t rest;
  long o;
  if (n % 4 != 0)
    return -1;
  while (pad < 2 && n > 0 && src[n - 1] == '=') {
    n--;
    pad++;
  }
  o = b64_decode(dst, src, n, '+', '/', &rest);
  /* Leftover bits must be zero and match the padding, or the input was not
  ** canonical. */
  if (o < 0 || rest != 0 || (pad > 0 && (n + pad) % 4 != 0))
    return -1;
  return o;
}

size_t plume__base64url_len(size_t n) {
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t plume__base64url_encode(char *dst, const unsigned char *src, size_t n) {
  return b64_encode(dst, src, n, b64url_chars, 0);
}

int plume__base64url_valid(const char *src, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (b64_value(src[i], '-', '_') < 0)
      return 0;
  return 1;
}

/* Leftover bits after the last whole byte are ignored, as Node's Buffer.from(s,
** "base64") does: a token jsonwebtoken accepts decodes here too. A length of
** 4k+1 cannot come from an encoder and is refused. */
long plume__base64url_decode(unsigned char *dst, const char *src, size_t n) {
  uint32_t rest;
  if (n % 4 == 1)
    return -1;
  return b64_decode(dst, src, n, '-', '_', &rest);
}

/* ------------------------------------------------------------------------- */

int plume__random(void *buf, size_t n) {
  return RAND_bytes(buf, (int)n) == 1 ? 0 : PLUME_EPROTO;
}

int plume__random_id(char out[21]) {
  unsigned char raw[15];
  if (plume__random(raw, sizeof(raw)) != 0)
    return PLUME_EPROTO;
  plume__base64url_encode(out, raw, sizeof(raw));
  out[20] = '\0';
  return 0;
}
