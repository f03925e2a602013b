/*
** crypto.c: the primitives under authentication (feathers.md §9.2,
** reliability.md §4.5 #37). A pure part: HMAC-SHA256 and compact JWS tokens
** (base64url parts, buf.c's codec) signed with HS256 (RFC 7515 §7.1, split and
** checked as jsonwebtoken does; fuzzed). Then random bytes and UUID v4 over
** OpenSSL, bcrypt through libxcrypt, and plume.core.crypto, whose bcrypt calls
** run on libuv's thread pool. Above: lua/plume/authentication (claims,
** strategies).
*/
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"

/* ------------------------------------------------------------------------- */
/* {====== HMAC-SHA256 and HS256 tokens */

int plume__hmac_sha256(const void *key, size_t keylen, const void *msg,
                       size_t n, unsigned char out[PLUME__HS256_LEN]) {
  static const unsigned char empty = 0;
  unsigned int len = 0;
  if (keylen > INT32_MAX)
    return PLUME_ETOOBIG;
  if (HMAC(EVP_sha256(), keylen > 0 ? key : &empty, (int)keylen,
           n > 0 ? msg : &empty, n, out, &len) == NULL ||
      len != PLUME__HS256_LEN)
    return PLUME_EPROTO;
  return 0;
}

int plume__crypto_equal(const void *a, size_t an, const void *b, size_t bn) {
  if (an != bn)
    return 0;
  return an == 0 || CRYPTO_memcmp(a, b, an) == 0;
}

static int jws_fail(plume__jws_t *j, const char *msg) {
  j->error = msg;
  return PLUME_EPROTO;
}

static int all_b64url(plume_slice_t s) {
  return plume__base64url_valid(s.p, s.n);
}

int plume__jws_split(const char *tok, size_t n, plume__jws_t *j) {
  const char *d1, *d2;
  memset(j, 0, sizeof(*j));
  d1 = memchr(tok, '.', n);
  d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
  if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL)
    return jws_fail(j, "jwt malformed"); /* not exactly three parts */
  j->header.p = tok;
  j->header.n = (size_t)(d1 - tok);
  j->payload.p = d1 + 1;
  j->payload.n = (size_t)(d2 - d1 - 1);
  j->signature.p = d2 + 1;
  j->signature.n = n - (size_t)(d2 + 1 - tok);
  j->input.p = tok;
  j->input.n = (size_t)(d2 - tok);
  /* jws's JWS_REGEX: non-empty header and payload, every part base64url
  ** characters. */
  if (j->header.n == 0 || j->payload.n == 0 || !all_b64url(j->header) ||
      !all_b64url(j->payload) || !all_b64url(j->signature))
    return jws_fail(j, "invalid token");
  return 0;
}

/* Compares the signature text with the expected base64url text, as jwa does: a
** signature whose unused trailing bits differ is not the same signature. */
int plume__jws_hs256_verify(const plume__jws_t *j, const void *key,
                            size_t keylen) {
  unsigned char mac[PLUME__HS256_LEN];
  char expected[64];
  size_t n;
  int ok;
  if (plume__hmac_sha256(key, keylen, j->input.p, j->input.n, mac) != 0)
    return 0;
  n = plume__base64url_encode(expected, mac, sizeof(mac));
  ok = plume__crypto_equal(expected, n, j->signature.p, j->signature.n);
  OPENSSL_cleanse(mac, sizeof(mac));
  return ok;
}

int plume__jws_hs256_sign(plume__buf_t *out, const char *header, size_t hn,
                          const char *payload, size_t pn, const void *key,
                          size_t keylen) {
  unsigned char mac[PLUME__HS256_LEN];
  size_t start = out->len, need;
  int err;
  need = plume__base64url_len(hn) + plume__base64url_len(pn) +
         plume__base64url_len(sizeof(mac)) + 2;
  if ((err = plume__buf_reserve(out, need)) != 0)
    return err;
  out->len += plume__base64url_encode(out->p + out->len,
                                      (const unsigned char *)header, hn);
  out->p[out->len++] = '.';
  out->len += plume__base64url_encode(out->p + out->len,
                                      (const unsigned char *)payload, pn);
  if ((err = plume__hmac_sha256(key, keylen, out->p + start, out->len - start,
                                mac)) != 0) {
    out->len = start;
    return err;
  }
  out->p[out->len++] = '.';
  out->len += plume__base64url_encode(out->p + out->len, mac, sizeof(mac));
  OPENSSL_cleanse(mac, sizeof(mac));
  return 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== UUID v4 and bcrypt */

int plume__uuid4(char out[37]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  size_t i, o = 0;
  if (plume__random(b, sizeof(b)) != 0)
    return PLUME_EPROTO;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
  return 0;
}

/* Hashes Plume checks passwords against: bcrypt (what Feathers stores) and
** yescrypt. */
static int hash_accepted(const char *hash, size_t n) {
  return (n > 4 &&
          (memcmp(hash, "$2a$", 4) == 0 || memcmp(hash, "$2b$", 4) == 0 ||
           memcmp(hash, "$2y$", 4) == 0)) ||
         (n > 3 && memcmp(hash, "$y$", 3) == 0);
}

int plume__bcrypt_hash(const char *pw, size_t n, int cost,
                       char out[PLUME__BCRYPT_HASH_SIZE]) {
  unsigned char salt[16];
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  struct crypt_data *data;
  const char *h;
  int err = PLUME_EPROTO;
  if (cost < PLUME__BCRYPT_MIN_COST || cost > PLUME__BCRYPT_MAX_COST ||
      memchr(pw, '\0', n) != NULL || pw[n] != '\0')
    return UV_EINVAL;
  if (plume__random(salt, sizeof(salt)) != 0)
    return PLUME_EPROTO;
  if (crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)salt,
                       (int)sizeof(salt), setting, sizeof(setting)) == NULL)
    return PLUME_EPROTO;
  if ((data = calloc(1, sizeof(*data))) == NULL)
    return UV_ENOMEM;
  h = crypt_rn(pw, setting, data, (int)sizeof(*data));
  if (h != NULL && h[0] != '*' && strlen(h) < PLUME__BCRYPT_HASH_SIZE) {
    memcpy(out, h, strlen(h) + 1);
    err = 0;
  }
  OPENSSL_cleanse(data, sizeof(*data));
  free(data);
  OPENSSL_cleanse(salt, sizeof(salt));
  return err;
}

int plume__bcrypt_check(const char *pw, size_t n, const char *hash, size_t hn) {
  struct crypt_data *data;
  const char *h;
  int ok = 0;
  if (memchr(pw, '\0', n) != NULL || pw[n] != '\0' ||
      memchr(hash, '\0', hn) != NULL || hash[hn] != '\0' ||
      !hash_accepted(hash, hn))
    return 0;
  if ((data = calloc(1, sizeof(*data))) == NULL)
    return UV_ENOMEM;
  h = crypt_rn(pw, hash, data, (int)sizeof(*data));
  if (h != NULL && h[0] != '*')
    ok = plume__crypto_equal(h, strlen(h), hash, hn);
  OPENSSL_cleanse(data, sizeof(*data));
  free(data);
  return ok;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== plume.core.crypto */

/* crypto.hmac_sha256(key, message) -> the 32 raw bytes. */
static int l_hmac_sha256(lua_State *L) {
  size_t kn, n;
  const char *key = luaL_checklstring(L, 1, &kn);
  const char *msg = luaL_checklstring(L, 2, &n);
  unsigned char mac[PLUME__HS256_LEN];
  if (plume__hmac_sha256(key, kn, msg, n, mac) != 0)
    return luaL_error(L, "HMAC-SHA256 failed");
  lua_pushlstring(L, (const char *)mac, sizeof(mac));
  return 1;
}

/* crypto.equal(a, b) -> true when the strings are equal, in time independent of
** where they differ. */
static int l_equal(lua_State *L) {
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an);
  const char *b = luaL_checklstring(L, 2, &bn);
  lua_pushboolean(L, plume__crypto_equal(a, an, b, bn));
  return 1;
}

static int l_base64url_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *dst = luaL_buffinitsize(L, &b, plume__base64url_len(n) + 1);
  luaL_pushresultsize(
      &b, plume__base64url_encode(dst, (const unsigned char *)s, n));
  return 1;
}

/* crypto.base64url_decode(text) -> bytes, or nil when text is not base64url. */
static int l_base64url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *dst = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
  long len = plume__base64url_decode(dst, s, n);
  if (len < 0) {
    luaL_pushresultsize(&b, 0);
    lua_pushnil(L);
    return 1;
  }
  luaL_pushresultsize(&b, (size_t)len);
  return 1;
}

/* crypto.random(n) -> n bytes from OpenSSL's CSPRNG. */
static int l_random(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_Buffer b;
  char *dst;
  luaL_argcheck(L, n >= 0 && n <= 65536, 1, "must be in [0, 65536]");
  dst = luaL_buffinitsize(L, &b, (size_t)n + 1);
  if (plume__random(dst, (size_t)n) != 0)
    return luaL_error(L, "no random bytes available");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* crypto.uuid() -> a random UUID (version 4), lower-case text. */
static int l_uuid(lua_State *L) {
  char out[37];
  if (plume__uuid4(out) != 0)
    return luaL_error(L, "no random bytes available");
  lua_pushstring(L, out);
  return 1;
}

/* Pushes the decoded bytes of a token part; 0 when it is not base64url. */
static int push_part(lua_State *L, plume_slice_t part) {
  luaL_Buffer b;
  unsigned char *dst =
      (unsigned char *)luaL_buffinitsize(L, &b, part.n / 4 * 3 + 3);
  long len = plume__base64url_decode(dst, part.p, part.n);
  luaL_pushresultsize(&b, len < 0 ? 0 : (size_t)len);
  return len >= 0;
}

/*
** crypto.jws_decode(token, key) -> header, payload, signed, valid | nil,
** message. header and payload are the decoded texts (JSON still to parse);
** signed is false for an empty signature part; valid is true only when the
** signature is HS256 under key. The message on failure is jsonwebtoken's ("jwt
** malformed", "invalid token").
*/
static int l_jws_decode(lua_State *L) {
  size_t n, kn;
  const char *tok = luaL_checklstring(L, 1, &n);
  const char *key = luaL_checklstring(L, 2, &kn);
  plume__jws_t j;
  if (plume__jws_split(tok, n, &j) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, j.error);
    return 2;
  }
  if (!push_part(L, j.header) || !push_part(L, j.payload)) { /* h p */
    lua_pushnil(L);
    lua_pushliteral(L, "invalid token");
    return 2;
  }
  lua_pushboolean(L, j.signature.n > 0); /* h p signed */
  lua_pushboolean(L, j.signature.n > 0 && plume__jws_hs256_verify(&j, key, kn));
  return 4;
}

/* crypto.jws_sign(header_json, payload_json, key) -> an HS256 token. */
static int l_jws_sign(lua_State *L) {
  size_t hn, pn, kn;
  const char *h = luaL_checklstring(L, 1, &hn);
  const char *pl = luaL_checklstring(L, 2, &pn);
  const char *key = luaL_checklstring(L, 3, &kn);
  plume__buf_t out = {NULL, 0, 0};
  int err = plume__jws_hs256_sign(&out, h, hn, pl, pn, key, kn);
  if (err != 0) {
    plume__buf_free(&out);
    return luaL_error(L, "cannot sign the token: %s", plume_strerror(err));
  }
  lua_pushlstring(L, out.p, out.len);
  plume__buf_free(&out);
  return 1;
}

/* One bcrypt call on the thread pool; owns a copy of its inputs (freed in
** after_work). */
typedef struct bcrypt_work_s {
  uv_work_t req;
  plume_t *p;
  plume__task_ref_t task; /* the waiting task (it may end meanwhile) */
  int check;              /* 1: compare with hash, 0: make a hash */
  int cost;
  int result; /* check: 1 match; hash: 0 or an error */
  size_t pw_n, hash_n;
  char *hash; /* check: points into text after the password */
  char out[PLUME__BCRYPT_HASH_SIZE]; /* hash: the result */
  char text[];                       /* password NUL [hash NUL] */
} bcrypt_work_t;

static void bcrypt_run(uv_work_t *req) {
  bcrypt_work_t *w = plume__container_of(req, bcrypt_work_t, req);
  if (w->check)
    w->result = plume__bcrypt_check(w->text, w->pw_n, w->hash, w->hash_n);
  else
    w->result = plume__bcrypt_hash(w->text, w->pw_n, w->cost, w->out);
}

/* Pushes the outcome of a bcrypt call: check -> boolean; hash -> hash | nil,
** message. */
static int bcrypt_push(lua_State *L, int check, int result, const char *out) {
  if (check) {
    lua_pushboolean(L, result == 1);
    return 1;
  }
  if (result != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "bcrypt failed: %s", plume_strerror(result));
    return 2;
  }
  lua_pushstring(L, out);
  return 1;
}

static void bcrypt_done(uv_work_t *req, int status) {
  bcrypt_work_t *w = plume__container_of(req, bcrypt_work_t, req);
  size_t size = sizeof(*w) + w->pw_n + w->hash_n + 2;
  lua_State *co = plume__task_waiter(w->p, w->task);
  w->p->pending_closes--;
  if (status == 0 && co != NULL) {
    int nres = bcrypt_push(co, w->check, w->result, w->out);
    plume__task_resume(w->p, w->task, nres);
  }
  OPENSSL_cleanse(w, size);
  free(w);
}

/*
** bcrypt_hash and bcrypt_check: inside a Plume task the work goes to the thread
** pool and the task waits (the loop keeps serving); where no wait is possible
** (stock Lua, busted, the main thread) the call computes inline and blocks for
** its duration.
*/
static int bcrypt_call(lua_State *L, int check) {
  size_t pw_n, hash_n = 0;
  const char *pw = luaL_checklstring(L, 1, &pw_n);
  const char *hash = NULL;
  int cost = 0;
  plume_t *p = plume__lua_instance(L);
  bcrypt_work_t *w;
  if (check) {
    hash = luaL_checklstring(L, 2, &hash_n);
  } else {
    lua_Integer c = luaL_optinteger(L, 2, 10);
    luaL_argcheck(L, c >= PLUME__BCRYPT_MIN_COST && c <= PLUME__BCRYPT_MAX_COST,
                  2, "cost must be in [4, 31]");
    luaL_argcheck(L, memchr(pw, '\0', pw_n) == NULL, 1,
                  "password contains a NUL byte");
    cost = (int)c;
  }
  if (p == NULL || !lua_isyieldable(L)) {
    char out[PLUME__BCRYPT_HASH_SIZE];
    int r = check ? plume__bcrypt_check(pw, pw_n, hash, hash_n)
                  : plume__bcrypt_hash(pw, pw_n, cost, out);
    int nres = bcrypt_push(L, check, r, out);
    OPENSSL_cleanse(out, sizeof(out));
    return nres;
  }
  plume__task_check_wait(L);
  w = malloc(sizeof(*w) + pw_n + hash_n + 2);
  if (w == NULL)
    return luaL_error(L, "not enough memory");
  memset(w, 0, sizeof(*w));
  w->p = p;
  w->task = plume__task_current(L);
  w->check = check;
  w->cost = cost;
  w->pw_n = pw_n;
  w->hash_n = hash_n;
  memcpy(w->text, pw, pw_n);
  w->text[pw_n] = '\0';
  w->hash = w->text + pw_n + 1;
  if (hash != NULL)
    memcpy(w->hash, hash, hash_n);
  w->hash[hash_n] = '\0';
  if (uv_queue_work(p->loop, &w->req, bcrypt_run, bcrypt_done) != 0) {
    OPENSSL_cleanse(w, sizeof(*w) + pw_n + hash_n + 2);
    free(w);
    return luaL_error(L, "cannot queue the bcrypt work");
  }
  /* plume_close waits for pending_closes: the instance outlives the work. */
  p->pending_closes++;
  return plume__task_wait(L);
}

/* crypto.bcrypt_hash(password [, cost = 10]) -> "$2b$..." | nil, message. */
static int l_bcrypt_hash(lua_State *L) {
  return bcrypt_call(L, 0);
}

/* crypto.bcrypt_check(password, hash) -> true when password matches hash ($2a$,
** $2b$, $2y$ or $y$); false otherwise, including for hashes of other kinds. */
static int l_bcrypt_check(lua_State *L) {
  return bcrypt_call(L, 1);
}

void plume__crypto_open(lua_State *L) {
  static const luaL_Reg functions[] = {{"hmac_sha256", l_hmac_sha256},
                                       {"equal", l_equal},
                                       {"base64url_encode", l_base64url_encode},
                                       {"base64url_decode", l_base64url_decode},
                                       {"random", l_random},
                                       {"uuid", l_uuid},
                                       {"jws_decode", l_jws_decode},
                                       {"jws_sign", l_jws_sign},
                                       {"bcrypt_hash", l_bcrypt_hash},
                                       {"bcrypt_check", l_bcrypt_check},
                                       {NULL, NULL}};
  luaL_newlib(L, functions); /* crypto */
}

/* }====== */
