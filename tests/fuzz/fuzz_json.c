/*
** fuzz_json.c: libFuzzer target for json.c (reliability.md §4.4 #30, §6). The
** input is JSON text, checked with and without two attachments: the scanner and
** the Lua decoder must agree, a decoded value must encode, its keys must come
** out in the order they came in (protocol.md §3.3), and the encoder's output
** must scan and come back unchanged through decode -> encode. With
** -DPLUME_FUZZ_MAIN, main() replays the files given as arguments and prints
** "N passed, N failed".
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEPTH 64
#define MAX_KEYS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static plume__json_enc_t enc, enc2;
static int violations;

static void violated(const char *what, const char *s, size_t n) {
  fprintf(stderr, "invariant broken: %s on %.*s\n", what,
          (int)(n > 200 ? 200 : n), s);
  violations++;
#ifndef PLUME_FUZZ_MAIN
  abort();
#endif
}

/*
** Collects the key tokens (quotes kept) of valid JSON text in document order
** into keys. With in_scope, returns -1 for text beyond the order check: a key
** with an escape (the encoder may write it otherwise), an array-index key (it
** moves first, as in JavaScript), a key twice in one object, too many keys.
** Otherwise returns the count.
*/
static int key_tokens(const char *s, size_t n, plume_slice_t *keys,
                      int in_scope) {
  int first[DEPTH + 2]; /* per open object: the index of its first key */
  int depth = 0, nkeys = 0, i, escaped, index;
  size_t at = 0, start, k;
  while (at < n) {
    char c = s[at];
    if (c == '{' || c == '[') {
      if (depth > DEPTH)
        return -1;
      first[++depth] = nkeys;
      at++;
      continue;
    }
    if (c == '}' || c == ']') {
      depth--;
      at++;
      continue;
    }
    if (c != '"') {
      at++;
      continue;
    }
    start = at++;
    escaped = 0;
    while (at < n && s[at] != '"') {
      if (s[at] == '\\') {
        escaped = 1;
        at++;
      }
      at++;
    }
    at++; /* the closing quote */
    k = at;
    while (k < n &&
           (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
      k++;
    if (k >= n || s[k] != ':')
      continue; /* a string value */
    if (nkeys == MAX_KEYS)
      return -1;
    keys[nkeys].p = s + start;
    keys[nkeys].n = at - start;
    if (in_scope) {
      /* "0".."4294967294" without leading zeros is an array index */
      index = keys[nkeys].n >= 3 && keys[nkeys].n <= 12 &&
              (keys[nkeys].n == 3 || s[start + 1] != '0');
      for (k = start + 1; index && k < at - 1; k++)
        index = s[k] >= '0' && s[k] <= '9';
      if (index && strtoull(s + start + 1, NULL, 10) < 4294967295ULL)
        return -1;
      if (escaped || depth < 1)
        return -1;
      for (i = first[depth]; i < nkeys; i++)
        if (keys[i].n == keys[nkeys].n &&
            memcmp(keys[i].p, keys[nkeys].p, keys[i].n) == 0)
          return -1;
    }
    nkeys++;
  }
  return nkeys;
}

/* Decoding then encoding keeps every object's keys in their order. */
static void check_order(const char *in, size_t n, const char *out,
                        size_t out_n) {
  static plume_slice_t a[MAX_KEYS], b[MAX_KEYS];
  int na = key_tokens(in, n, a, 1), nb, i;
  if (na < 0)
    return;
  nb = key_tokens(out, out_n, b, 0);
  if (nb != na) {
    violated("keys lost or gained", in, n);
    return;
  }
  for (i = 0; i < na; i++)
    if (a[i].n != b[i].n || memcmp(a[i].p, b[i].p, a[i].n) != 0) {
      violated("key order not kept", in, n);
      return;
    }
}

/* Re-encoding the encoder's own output is the identity. */
static void check_stable(const char *text, size_t n) {
  plume__json_dec_t d;
  int base = lua_gettop(L);
  memset(&d, 0, sizeof(d));
  d.max_depth = DEPTH;
  d.natt = -1;
  if (plume__json_scan(text, n, DEPTH, -1, NULL) != 0) {
    violated("encoder output does not scan", text, n);
    return;
  }
  if (plume__json_decode(L, text, n, &d) != 0 || d.count != 1) {
    violated("encoder output does not decode", text, n);
    return;
  }
  plume__json_enc_reset(&enc2);
  if (plume__json_encode(L, -1, &enc2) != 0)
    violated("re-encoding failed", text, n);
  else if (enc2.out.len != n || memcmp(enc2.out.p, text, n) != 0)
    violated("decode -> encode is not stable", text, n);
  lua_settop(L, base);
}

static void check(const char *s, size_t n, int natt) {
  plume__json_info_t info;
  plume__json_dec_t d;
  int scan, dec, i;
  lua_settop(L, 0);
  scan = plume__json_scan(s, n, DEPTH, natt, &info);
  for (i = 0; i < natt; i++)
    plume__binary_push(L, i == 0 ? "\x01\x02" : "", i == 0 ? 2 : 0);
  memset(&d, 0, sizeof(d));
  d.max_depth = DEPTH;
  d.natt = natt;
  d.att_base = 1;
  dec = plume__json_decode(L, s, n, &d);
  if ((scan == 0) != (dec == 0)) {
    violated("scanner and decoder disagree", s, n);
    return;
  }
  if (dec != 0) {
    if (lua_gettop(L) != (natt > 0 ? natt : 0))
      violated("a failed decode left values", s, n);
    return;
  }
  plume__json_enc_reset(&enc);
  if (plume__json_encode(L, -1, &enc) != 0) {
    violated("a decoded value does not encode", s, n);
    return;
  }
  if (natt < 0)
    check_order(s, n, enc.out.p, enc.out.len);
  check_stable(enc.out.p, enc.out.len);
  /* Spread: a top-level array pushes as many values as it has elements. */
  if (natt < 0 && info.type == PLUME__JSON_ARRAY) {
    lua_settop(L, 0);
    d.spread = 1;
    if (plume__json_decode(L, s, n, &d) != 0 || d.count != (int)info.count ||
        lua_gettop(L) != d.count)
      violated("spread decode", s, n);
  }
  lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    plume__json_enc_init(&enc, DEPTH);
    plume__json_enc_init(&enc2, DEPTH);
  }
  check((const char *)data, size, -1);
  check((const char *)data, size, 2);
  return 0;
}

#ifdef PLUME_FUZZ_MAIN
static int replay_failed(void) {
  int was = violations;
  violations = 0;
  return was;
}

static int replay_done(void) {
  if (L != NULL) {
    lua_close(L);
    plume__json_enc_free(&enc);
    plume__json_enc_free(&enc2);
  }
  return 0;
}

#include "replay.h"
#endif
