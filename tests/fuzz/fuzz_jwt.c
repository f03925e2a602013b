/*
** fuzz_jwt.c: libFuzzer target for the token code of crypto.c (reliability.md
** §4.5 #37). The input is a compact token: splitting never reads outside it,
** the parts decode into their bounds and re-encode to the same bytes, nothing
** verifies without the key's signature, and the input split in two and signed
** comes back whole. With -DPLUME_FUZZ_MAIN, main() replays the files given as
** arguments and prints "N passed, N failed".
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "fuzz-secret";
static int failed;

static void violated(const char *what, const uint8_t *p, size_t n) {
  fprintf(stderr, "invariant broken: %s on %.*s\n", what,
          (int)(n > 200 ? 200 : n), (const char *)p);
  failed++;
#ifndef PLUME_FUZZ_MAIN
  abort();
#endif
}

static int inside(plume_slice_t s, const uint8_t *p, size_t n) {
  return s.p >= (const char *)p && s.p + s.n <= (const char *)p + n;
}

/* Decodes a part and checks that the bytes encode and decode back alike. */
static void check_part(plume_slice_t part, const uint8_t *p, size_t n) {
  unsigned char *bytes = malloc(part.n / 4 * 3 + 3);
  unsigned char *again = malloc(part.n / 4 * 3 + 3);
  char *text = malloc(part.n + 4);
  long len = plume__base64url_decode(bytes, part.p, part.n);
  if (len >= 0) {
    size_t tn;
    long len2;
    if ((size_t)len > part.n / 4 * 3 + 2)
      violated("decoded past its bound", p, n);
    tn = plume__base64url_encode(text, bytes, (size_t)len);
    if (tn != plume__base64url_len((size_t)len) || tn > part.n)
      violated("encoded length", p, n);
    len2 = plume__base64url_decode(again, text, tn);
    if (len2 != len || memcmp(again, bytes, (size_t)len) != 0)
      violated("base64url round trip", p, n);
  } else if (part.n % 4 != 1) {
    violated("a base64url part did not decode", p, n);
  }
  free(bytes);
  free(again);
  free(text);
}

static void check_resign(const plume__jws_t *j, const uint8_t *p, size_t n) {
  unsigned char *h = malloc(j->header.n / 4 * 3 + 3);
  unsigned char *pl = malloc(j->payload.n / 4 * 3 + 3);
  long hn = plume__base64url_decode(h, j->header.p, j->header.n);
  long pn = plume__base64url_decode(pl, j->payload.p, j->payload.n);
  plume__buf_t again = {NULL, 0, 0};
  if (hn >= 0 && pn >= 0 && plume__base64url_len((size_t)hn) == j->header.n &&
      plume__base64url_len((size_t)pn) == j->payload.n &&
      plume__jws_hs256_sign(&again, (const char *)h, (size_t)hn,
                            (const char *)pl, (size_t)pn, key,
                            sizeof(key) - 1) == 0) {
    /* Canonical parts re-encode to the same text: the token must come back. */
    if (again.len == n && memcmp(again.p, p, n) != 0 &&
        memcmp(again.p, p, j->input.n) == 0)
      violated("a verified token signs differently", p, n);
  }
  plume__buf_free(&again);
  free(h);
  free(pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  plume__jws_t j;
  plume__buf_t out = {NULL, 0, 0};
  const char *tok = (const char *)data;
  size_t half = size / 2;
  if (plume__jws_split(tok, size, &j) == 0) {
    if (!inside(j.header, data, size) || !inside(j.payload, data, size) ||
        !inside(j.signature, data, size) || !inside(j.input, data, size) ||
        j.header.n == 0 || j.payload.n == 0 ||
        j.input.n != j.header.n + 1 + j.payload.n ||
        j.header.n + j.payload.n + j.signature.n + 2 != size)
      violated("split slices", data, size);
    check_part(j.header, data, size);
    check_part(j.payload, data, size);
    check_part(j.signature, data, size);
    /* A token that verifies under the key is what signing its decoded parts
    ** gives, whenever those parts are canonical base64url. */
    if (plume__jws_hs256_verify(&j, key, sizeof(key) - 1))
      check_resign(&j, data, size);
    if (j.signature.n == 0 && plume__jws_hs256_verify(&j, "", 0))
      violated("an unsigned token verified", data, size);
  } else if (j.error == NULL) {
    violated("a refused token has no message", data, size);
  }

  /* The input as header and payload texts: signed, split, verified, decoded. */
  if (plume__jws_hs256_sign(&out, tok, half, tok + half, size - half, key,
                            sizeof(key) - 1) != 0) {
    violated("sign failed", data, size);
  } else if (half > 0 && size - half > 0) {
    unsigned char *h = malloc(half + 3), *pl = malloc(size - half + 3);
    if (plume__jws_split(out.p, out.len, &j) != 0 ||
        !plume__jws_hs256_verify(&j, key, sizeof(key) - 1) ||
        plume__jws_hs256_verify(&j, key, sizeof(key) - 2))
      violated("a signed token does not verify", data, size);
    else if (plume__base64url_decode(h, j.header.p, j.header.n) != (long)half ||
             memcmp(h, tok, half) != 0 ||
             plume__base64url_decode(pl, j.payload.p, j.payload.n) !=
                 (long)(size - half) ||
             memcmp(pl, tok + half, size - half) != 0)
      violated("signed parts do not decode back", data, size);
    free(h);
    free(pl);
  }
  plume__buf_free(&out);
  return 0;
}

#ifdef PLUME_FUZZ_MAIN
static int replay_failed(void) {
  int was = failed;
  failed = 0;
  return was;
}

static int replay_done(void) {
  return 0;
}

#include "replay.h"
#endif
