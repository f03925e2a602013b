/*
** test_crypto.c: crypto.c. base64url rows, HMAC-SHA256 against RFC 4231, JWS
** HS256 against RFC 7515 A.1 and the jwt.io example, tampered and unsigned
** tokens (reliability.md §4.5 #37), bcrypt against the Openwall crypt_blowfish
** vectors, and plume.core.crypto: the inline path in a bare state, the
** thread-pool path in a task while the loop runs.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

#include "check.h"
#include "internal.h"

#define CHECK_PREFIX(a, b) CHECK(strncmp((a), (b), strlen(b)) == 0)
#define CHECK_HAS(a, b) CHECK(strstr((a), (b)) != NULL)

/* Hex of n bytes into a static buffer. */
static const char *hex(const unsigned char *p, size_t n) {
  static char out[256];
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n && i * 2 + 2 < sizeof(out); i++) {
    out[i * 2] = digits[p[i] >> 4];
    out[i * 2 + 1] = digits[p[i] & 15];
  }
  out[i * 2] = '\0';
  return out;
}

/* Bytes of a hex string into a static buffer; *n gets the count. */
static const unsigned char *unhex(const char *s, size_t *n) {
  static unsigned char out[256];
  size_t i;
  for (i = 0; s[i * 2] && s[i * 2 + 1] && i < sizeof(out); i++) {
    char b[3] = {s[i * 2], s[i * 2 + 1], 0};
    out[i] = (unsigned char)strtoul(b, NULL, 16);
  }
  *n = i;
  return out;
}

/* ------------------------------------------------------------------------- */

static void test_base64url(void) {
  static const struct {
    const char *bytes, *text;
  } rows[] = {{"", ""},
              {"f", "Zg"},
              {"fo", "Zm8"},
              {"foo", "Zm9v"},
              {"foob", "Zm9vYg"},
              {"fooba", "Zm9vYmE"},
              {"foobar", "Zm9vYmFy"},
              {"\xfb\xff", "-_8"},
              {"\xff\xfe\xfd\xfc", "__79_A"}};
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char enc[64];
    unsigned char dec[64];
    size_t n = strlen(rows[i].bytes);
    size_t m =
        plume__base64url_encode(enc, (const unsigned char *)rows[i].bytes, n);
    long d;
    CHECK_EQ(m, plume__base64url_len(n));
    CHECK_MEM(enc, m, rows[i].text);
    d = plume__base64url_decode(dec, rows[i].text, strlen(rows[i].text));
    CHECK_EQ(d, (long)n);
    CHECK(d >= 0 && memcmp(dec, rows[i].bytes, n) == 0);
  }
}

static void test_base64url_invalid(void) {
  static const char *const bad[] = {"a",    "Zg=",   "Zm9v=", "Zm+v",
                                    "Zm/v", "Zm9vY", "Z g",   "Zm9\x80"};
  unsigned char dec[16];
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK_EQ(plume__base64url_decode(dec, bad[i], strlen(bad[i])), -1);
  /* Unused trailing bits are ignored, as Node's decoder does. */
  CHECK_EQ(plume__base64url_decode(dec, "Zh", 2), 1);
  CHECK_EQ(dec[0], 'f');
}

/* RFC 4231 §4.2-4.8 (4.6 is truncated output and left out). */
static void test_hmac_rfc4231(void) {
  static const struct {
    const char *key, *data, *mac;
  } rows[] = {
      {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
       "dddddddddddddddddddddddddddddddd",
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"0102030405060708090a0b0c0d0e0f10111213141516171819",
       "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
       "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {NULL, /* 131 bytes 0xaa */
       "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65"
       "204b6579202d2048617368204b6579204669727374",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"}};
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    unsigned char key[256], mac[PLUME__HS256_LEN];
    size_t kn, dn;
    const unsigned char *p;
    if (rows[i].key == NULL) {
      kn = 131;
      memset(key, 0xaa, kn);
    } else {
      p = unhex(rows[i].key, &kn);
      memcpy(key, p, kn);
    }
    p = unhex(rows[i].data, &dn);
    CHECK_EQ(plume__hmac_sha256(key, kn, p, dn, mac), 0);
    CHECK_STR(hex(mac, sizeof(mac)), rows[i].mac);
  }
  {
    unsigned char mac[PLUME__HS256_LEN];
    /* An empty key and message are valid inputs. */
    CHECK_EQ(plume__hmac_sha256("", 0, "", 0, mac), 0);
    CHECK_STR(
        hex(mac, sizeof(mac)),
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  }
}

static void test_equal(void) {
  CHECK(plume__crypto_equal("abc", 3, "abc", 3));
  CHECK(!plume__crypto_equal("abc", 3, "abd", 3));
  CHECK(!plume__crypto_equal("abc", 3, "abcd", 4));
  CHECK(plume__crypto_equal("", 0, "", 0));
  CHECK(!plume__crypto_equal("a\0b", 3, "a\0c", 3));
}

static void test_uuid(void) {
  char a[37], b[37];
  size_t i;
  CHECK_EQ(plume__uuid4(a), 0);
  CHECK_EQ(plume__uuid4(b), 0);
  CHECK_EQ(strlen(a), 36);
  CHECK(strcmp(a, b) != 0);
  CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
  CHECK(a[14] == '4');
  CHECK(strchr("89ab", a[19]) != NULL);
  for (i = 0; i < 36; i++)
    CHECK(a[i] == '-' || strchr("0123456789abcdef", a[i]) != NULL);
}

/* ------------------------------------------------------------------------- */

/* RFC 7515 Appendix A.1: HS256 with the JWK "k" below. */
static const char rfc_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS"
    "9pc"
    "19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char rfc_k[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
                            "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/* The example on jwt.io, key "your-256-bit-secret". */
static const char io_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char io_payload[] =
    "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}";
static const char io_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy"
    "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
static const char io_key[] = "your-256-bit-secret";

static void test_jws_vectors(void) {
  plume__jws_t j;
  unsigned char key[128];
  long kn = plume__base64url_decode(key, rfc_k, strlen(rfc_k));
  plume__buf_t out = {NULL, 0, 0};
  CHECK_EQ(kn, 64);
  CHECK_EQ(plume__jws_split(rfc_token, strlen(rfc_token), &j), 0);
  CHECK_EQ(plume__jws_hs256_verify(&j, key, (size_t)kn), 1);
  CHECK_EQ(plume__jws_hs256_verify(&j, io_key, strlen(io_key)), 0);
  CHECK_EQ(j.input.n, strlen(rfc_token) - 44);
  CHECK_EQ(j.signature.n, 43);

  CHECK_EQ(plume__jws_hs256_sign(&out, io_header, strlen(io_header), io_payload,
                                 strlen(io_payload), io_key, strlen(io_key)),
           0);
  CHECK_MEM(out.p, out.len, io_token);
  CHECK_EQ(plume__jws_split(out.p, out.len, &j), 0);
  CHECK_EQ(plume__jws_hs256_verify(&j, io_key, strlen(io_key)), 1);
  plume__buf_free(&out);
}

static void test_jws_split(void) {
  static const struct {
    const char *token, *error;
  } rows[] = {{"", "jwt malformed"},
              {"abc", "jwt malformed"},
              {"a.b", "jwt malformed"},
              {"a.b.c.d", "jwt malformed"},
              {"...", "jwt malformed"},
              {"..", "invalid token"},
              {".eyJ9.sig", "invalid token"},
              {"eyJ9..sig", "invalid token"},
              {"ey J9.eyJ9.sig", "invalid token"},
              {"eyJ9.eyJ9.si=g", "invalid token"},
              {"eyJ9.eyJ+.sig", "invalid token"},
              {"eyJ9.eyJ9.", NULL},
              {"eyJ9.eyJ9.sig", NULL}};
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    plume__jws_t j;
    int r = plume__jws_split(rows[i].token, strlen(rows[i].token), &j);
    if (rows[i].error == NULL) {
      CHECK_EQ(r, 0);
    } else {
      CHECK_EQ(r, PLUME_EPROTO);
      CHECK(j.error != NULL && strcmp(j.error, rows[i].error) == 0);
    }
  }
}

/* Every single-character change of a valid token fails verification: tampered
** header, payload or signature, including signatures that decode to the same
** bytes. */
static void test_jws_tampered(void) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char tok[sizeof(io_token)];
  size_t i, n = strlen(io_token), accepted = 0, tried = 0;
  for (i = 0; i < n; i++) {
    const char *c;
    if (io_token[i] == '.')
      continue;
    for (c = alphabet; c < alphabet + 64; c += 7) {
      plume__jws_t j;
      if (*c == io_token[i])
        continue;
      memcpy(tok, io_token, n + 1);
      tok[i] = *c;
      tried++;
      if (plume__jws_split(tok, n, &j) == 0 &&
          plume__jws_hs256_verify(&j, io_key, strlen(io_key)))
        accepted++;
    }
  }
  CHECK(tried > 1000);
  CHECK_EQ(accepted, 0);
  /* The last character of a 43-character signature carries 2 unused bits: "c",
  ** "d", "e" and "f" decode alike, yet only the canonical text verifies (as jwa
  ** compares). */
  memcpy(tok, io_token, n + 1);
  tok[n - 1] = 'd';
  {
    plume__jws_t j;
    CHECK_EQ(plume__jws_split(tok, n, &j), 0);
    CHECK_EQ(plume__jws_hs256_verify(&j, io_key, strlen(io_key)), 0);
  }
}

static void test_jws_unsigned_and_foreign(void) {
  plume__jws_t j;
  /* alg "none": no signature part, nothing to verify. */
  static const char none[] = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                             "eyJzdWIiOiIxIn0.";
  /* The jwt.io token with its signature computed under the empty key. */
  plume__buf_t out = {NULL, 0, 0};
  CHECK_EQ(plume__jws_split(none, strlen(none), &j), 0);
  CHECK_EQ(j.signature.n, 0);
  CHECK_EQ(plume__jws_hs256_verify(&j, io_key, strlen(io_key)), 0);
  CHECK_EQ(plume__jws_hs256_verify(&j, "", 0), 0);
  CHECK_EQ(plume__jws_hs256_sign(&out, io_header, strlen(io_header), io_payload,
                                 strlen(io_payload), "", 0),
           0);
  CHECK_EQ(plume__jws_split(out.p, out.len, &j), 0);
  CHECK_EQ(plume__jws_hs256_verify(&j, "", 0), 1);
  CHECK_EQ(plume__jws_hs256_verify(&j, io_key, strlen(io_key)), 0);
  plume__buf_free(&out);
}

/* ------------------------------------------------------------------------- */

/* Openwall crypt_blowfish test vectors (wrapper.c). */
static void test_bcrypt_vectors(void) {
  static const struct {
    const char *hash, *pw;
  } rows[] = {
      {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
      {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"},
      {"$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"},
      {"$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
       "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678"
       "9"
       "chars after 72 are ignored"},
      {"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
      {"$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
      {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", ""}};
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    const char *h = rows[i].hash;
    CHECK_EQ(plume__bcrypt_check(rows[i].pw, strlen(rows[i].pw), h, strlen(h)),
             1);
    CHECK_EQ(plume__bcrypt_check("U*V", 3, h, strlen(h)), 0);
  }
}

static void test_bcrypt_hash(void) {
  char a[PLUME__BCRYPT_HASH_SIZE], b[PLUME__BCRYPT_HASH_SIZE];
  static const char pw[] = "correct horse";
  CHECK_EQ(plume__bcrypt_hash(pw, strlen(pw), 4, a), 0);
  CHECK_EQ(plume__bcrypt_hash(pw, strlen(pw), 4, b), 0);
  CHECK_EQ(strlen(a), 60);
  CHECK(strncmp(a, "$2b$04$", 7) == 0);
  CHECK(strcmp(a, b) != 0); /* fresh salts */
  CHECK_EQ(plume__bcrypt_check(pw, strlen(pw), a, strlen(a)), 1);
  CHECK_EQ(plume__bcrypt_check(pw, strlen(pw), b, strlen(b)), 1);
  CHECK_EQ(plume__bcrypt_check("correct horsf", 13, a, strlen(a)), 0);
  /* A truncated or altered hash never matches. */
  CHECK_EQ(plume__bcrypt_check(pw, strlen(pw), a, 59), 0);
  b[40] = b[40] == 'A' ? 'B' : 'A';
  CHECK_EQ(plume__bcrypt_check(pw, strlen(pw), b, strlen(b)), 0);
  CHECK_EQ(plume__bcrypt_hash(pw, strlen(pw), 3, a), UV_EINVAL);
  CHECK_EQ(plume__bcrypt_hash(pw, strlen(pw), 32, a), UV_EINVAL);
  CHECK_EQ(plume__bcrypt_hash("a\0b", 3, 4, a), UV_EINVAL);
}

/* Only bcrypt and yescrypt hashes are accepted: never DES, MD5 or SHA-crypt
** rows, and never a password with a NUL in it (crypt would stop there). */
static void test_bcrypt_refused(void) {
  static const char *const hashes[] = {
      "abJnggxhB/yWI",                      /* DES crypt of "test" */
      "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", /* MD5-crypt */
      "$5$saltsalt$eAJwNpN2cQkn8kNcTRrxyF8E0bhUsXiMhxBaxZu1gq/",
      "",
      "$2",
      "*0",
      "$2a$05$short"};
  size_t i;
  for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
    CHECK_EQ(plume__bcrypt_check("test", 4, hashes[i], strlen(hashes[i])), 0);
  CHECK_EQ(plume__bcrypt_check(
               "U*U\0x", 5,
               "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
               60),
           0);
}

/* ------------------------------------------------------------------------- */

/* Runs a chunk returning one value in L; "error: <msg>" when it raises. */
static const char *run(lua_State *L, const char *chunk) {
  static char out[1024];
  size_t n;
  const char *s;
  lua_settop(L, 0);
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    snprintf(out, sizeof(out), "error: %s", lua_tostring(L, -1));
  } else {
    s = luaL_tolstring(L, -1, &n);
    snprintf(out, sizeof(out), "%.*s", (int)n, s);
  }
  lua_settop(L, 0);
  return out;
}

/* plume.core.crypto in a state of its own (no instance): bcrypt computes
** inline. */
static void test_lua_inline(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  plume__crypto_open(L);
  lua_setglobal(L, "crypto");
  CHECK_STR(run(L, "return crypto.base64url_encode('\\251\\255')"), "-_8");
  CHECK_STR(run(L, "return tostring(crypto.base64url_decode('a'))"), "nil");
  CHECK_STR(run(L, "return #crypto.hmac_sha256('k', 'm')"), "32");
  CHECK_STR(run(L, "return tostring(crypto.equal('a', 'a')) .. "
                   "tostring(crypto.equal('a', 'b'))"),
            "truefalse");
  CHECK_STR(run(L, "return #crypto.random(16) .. (crypto.uuid():match("
                   "'^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$') and ' ok' or ' bad')"),
            "16 ok");
  CHECK_STR(run(L, "local t = crypto.jws_sign('{\"alg\":\"HS256\",\"typ\":"
                   "\"JWT\"}', '{\"sub\":\"1234567890\",\"name\":\"John Doe\","
                   "\"iat\":1516239022}', 'your-256-bit-secret') "
                   "local h, p, s, v = crypto.jws_decode(t, "
                   "'your-256-bit-secret') "
                   "local _, _, _, w = crypto.jws_decode(t, 'other') "
                   "return t:sub(-43) .. ' ' .. h .. ' ' .. tostring(s) .. "
                   "tostring(v) .. tostring(w)"),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c "
            "{\"alg\":\"HS256\",\"typ\":\"JWT\"} truetruefalse");
  CHECK_STR(run(L, "return select(2, crypto.jws_decode('a.b', 'k'))"),
            "jwt malformed");
  CHECK_STR(run(L, "return select(2, crypto.jws_decode('a.b.c', 'k'))"),
            "invalid token");
  CHECK_STR(run(L, "local h, p, s, v = crypto.jws_decode('eyJ9.eyJ9.', 'k') "
                   "return h .. p .. tostring(s) .. tostring(v)"),
            "{\"}{\"}falsefalse");
  CHECK_STR(run(L,
                "local h = crypto.bcrypt_hash('pw', 4) "
                "return h:sub(1, 7) .. tostring(crypto.bcrypt_check('pw', h))"
                " .. tostring(crypto.bcrypt_check('pX', h))"),
            "$2b$04$truefalse");
  CHECK_PREFIX(run(L, "return crypto.bcrypt_hash('pw', 3)"), "error: ");
  CHECK_PREFIX(run(L, "return crypto.bcrypt_hash('p\\0w', 4)"), "error: ");
  CHECK_STR(run(L, "return tostring(crypto.bcrypt_check('p\\0w', 'x'))"),
            "false");
  lua_close(L);
}

static int ticks;
static void on_tick(uv_timer_t *t) {
  ticks++;
}
static void on_closed(plume_t *p) {}

/* Inside a task of a real instance the call waits on the thread pool: the task
** is still pending when plume__task_start returns, and a timer keeps firing
** meanwhile. / */
static void test_lua_thread_pool(void) {
  plume_options_t o;
  plume_t *p;
  uv_timer_t t;
  lua_State *L;
  int waited = 0;
  plume_options_init(&o);
  plume_options_set(&o, "lua_path", "lua");
  plume_options_set(&o, "log_level", "error");
  if (plume_new(&p, NULL, &o) != 0) {
    CHECK(!"plume_new (run from the repository root)");
    return;
  }
  L = plume_lua(p);
  CHECK_STR(run(L, "crypto = require('plume.core').crypto "
                   "task = function() "
                   "  local h = crypto.bcrypt_hash('secret', 8) "
                   "  result = h:sub(1, 7) .. tostring(crypto.bcrypt_check("
                   "'secret', h)) .. tostring(crypto.bcrypt_check('nope', h)) "
                   "  nested = select(2, pcall(coroutine.wrap(function() "
                   "    return crypto.bcrypt_hash('x', 4) end))) "
                   "end return 'ok'"),
            "ok");
  /* The main thread cannot wait: the inline path. */
  CHECK_STR(run(L, "return crypto.bcrypt_hash('x', 4):sub(1, 7)"), "$2b$04$");
  lua_getglobal(L, "task");
  CHECK_EQ(plume__task_start(p, 0), 0);
  CHECK_STR(run(L, "return tostring(result)"), "nil");
  uv_timer_init(plume_loop(p), &t);
  uv_timer_start(&t, on_tick, 1, 1);
  while (strcmp(run(L, "return tostring(result)"), "nil") == 0 &&
         waited < 5000) {
    uv_run(plume_loop(p), UV_RUN_ONCE);
    waited++;
  }
  CHECK_STR(run(L, "return tostring(result)"), "$2b$08$truefalse");
  CHECK(ticks > 0);
  CHECK_HAS(run(L, "return tostring(nested)"), "cannot wait here");
  uv_close((uv_handle_t *)&t, NULL);
  plume_close(p, on_closed);
  uv_run(plume_loop(p), UV_RUN_DEFAULT);
  plume_destroy(p);
}

static int closed;
static void on_closed_count(plume_t *p) {
  closed++;
}

/* Closing the instance while a bcrypt call is on the thread pool waits for
** it: the task still gets its result and nothing is touched after the
** instance is gone. */
static void test_lua_close_while_hashing(void) {
  plume_options_t o;
  plume_t *p;
  lua_State *L;
  plume_options_init(&o);
  plume_options_set(&o, "lua_path", "lua");
  plume_options_set(&o, "log_level", "error");
  if (plume_new(&p, NULL, &o) != 0) {
    CHECK(!"plume_new (run from the repository root)");
    return;
  }
  L = plume_lua(p);
  CHECK_STR(run(L, "crypto = require('plume.core').crypto "
                   "task = function() done = crypto.bcrypt_hash('x', 9) end "
                   "return 'ok'"),
            "ok");
  lua_getglobal(L, "task");
  CHECK_EQ(plume__task_start(p, 0), 0);
  CHECK_STR(run(L, "return tostring(done)"), "nil");
  plume_close(p, on_closed_count);
  uv_run(plume_loop(p), UV_RUN_DEFAULT);
  CHECK_EQ(closed, 1);
  CHECK_STR(run(L, "return done:sub(1, 7)"), "$2b$09$");
  plume_destroy(p);
}

int main(void) {
  RUN(test_base64url);
  RUN(test_base64url_invalid);
  RUN(test_hmac_rfc4231);
  RUN(test_equal);
  RUN(test_uuid);
  RUN(test_jws_vectors);
  RUN(test_jws_split);
  RUN(test_jws_tampered);
  RUN(test_jws_unsigned_and_foreign);
  RUN(test_bcrypt_vectors);
  RUN(test_bcrypt_hash);
  RUN(test_bcrypt_refused);
  RUN(test_lua_inline);
  RUN(test_lua_thread_pool);
  RUN(test_lua_close_while_hashing);
  return check_done();
}
