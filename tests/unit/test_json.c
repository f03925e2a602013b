/*
** test_json.c: json.c, the scanner (RFC 8259 strictness, depth cap,
** placeholders), JSON -> Lua -> JSON round trips byte for byte, the encoder's
** rules (reliability.md §4.4 #30, §4.6 #41; protocol.md §3.3 fidelity) and
** plume.binary. Cases are table rows; every valid input is also mutated
** (truncated, bytes replaced) to check scanner and decoder agree.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "internal.h"

static lua_State *L;

#define CHECK_PREFIX(a, b) CHECK(strncmp((a), (b), strlen(b)) == 0)
#define CHECK_HAS(a, b) CHECK(strstr((a), (b)) != NULL)

/* Runs a chunk returning one value; gives "error: <msg>" when it raises. The
** text stays valid until the next call. */
static const char *run(const char *chunk) {
  static char out[4096];
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

/* Decodes text with the C API and encodes it back; "error: <msg>" on failure.
 */
static const char *roundtrip(const char *text, size_t n) {
  static char out[8192];
  plume__json_dec_t d;
  plume__json_enc_t e;
  int r;
  memset(&d, 0, sizeof(d));
  d.max_depth = 128;
  d.natt = -1;
  lua_settop(L, 0);
  if ((r = plume__json_decode(L, text, n, &d)) != 0) {
    snprintf(out, sizeof(out), "error: %s", d.error);
    return out;
  }
  plume__json_enc_init(&e, 128);
  r = plume__json_encode(L, 1, &e);
  if (r != 0)
    snprintf(out, sizeof(out), "encode error: %s", e.error);
  else
    snprintf(out, sizeof(out), "%.*s", (int)e.out.len, e.out.p);
  plume__json_enc_free(&e);
  lua_settop(L, 0);
  return out;
}

/* ------------------------------------------------------------------------- */

static const struct {
  const char *in, *out; /* out NULL: same as in */
} roundtrips[] = {
    {"[\"message\",1,\"2\",{\"3\":[true]}]", NULL},
    {"[\"message\",1,\"2\",{\"3\":[false]}]", NULL},
    {"[\"auth\",{}]", NULL},
    {"[\"auth\",{\"token\":\"123\"}]", NULL},
    {"{}", NULL},
    {"[]", NULL},
    {"[{},[],{\"a\":[]},[[{}]]]", NULL},
    {"null", NULL},
    {"true", NULL},
    {"[null,true,false,null]", NULL},
    {"\"\"", NULL},
    /* numbers */
    {"1", NULL},
    {"0", NULL},
    {"-0", "0"},
    {"-1", NULL},
    {"1.5", NULL},
    {"-1.5", NULL},
    {"1.0", "1"},
    {"0.1", NULL},
    {"0.30000000000000004", NULL},
    {"3.141592653589793", NULL},
    {"9007199254740993", NULL},
    {"9223372036854775807", NULL},
    {"-9223372036854775808", NULL},
    {"9223372036854775808", "9223372036854776000"},
    {"12345678901234567890", "12345678901234567000"},
    {"1e21", "1e+21"},
    {"1E+21", "1e+21"},
    {"1e20", "100000000000000000000"},
    {"123e18", "123000000000000000000"},
    {"1.5e300", "1.5e+300"},
    {"1e-7", "1e-7"},
    {"1.5e-7", "1.5e-7"},
    {"0.000001", NULL},
    {"2.5e-5", "0.000025"},
    {"5e-324", NULL},
    {"2.2250738585072014e-308", NULL},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"1.7976931348623158e308", "1.7976931348623157e+308"},
    {"1e-400", "0"},
    {"123456789.125", NULL},
    {"100.0e-2", "1"},
    /* strings */
    {"\"a\\\"b\\\\c\\/d\"", "\"a\\\"b\\\\c/d\""},
    {"\"\\b\\f\\n\\r\\t\"", NULL},
    {"\"\\u0000\\u0001\\u001f\"", "\"\\u0000\\u0001\\u001f\""},
    {"\"\\u007f\x7f\"", "\"\x7f\x7f\""},
    {"\"\\u00e9\\u20AC\"", "\"\xc3\xa9\xe2\x82\xac\""},
    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"", NULL},
    {"\"\\ud834\\udd1e\"", "\"\xf0\x9d\x84\x9e\""},
    {"\"\\ud800\"", NULL},
    {"\"\\udc00\"", NULL},
    {"\"\\udc00\\ud800\"", NULL},
    {"\"x\\ud800y\"", NULL},
    {"\"\\u2028\\u2029\"", "\"\xe2\x80\xa8\xe2\x80\xa9\""},
    {"\"\xe2\x80\xa8\"", NULL},
    /* objects: keys in wire order, but array-index keys first, by value, as
    ** JavaScript lists them; a duplicate keeps its first place, its last value
    */
    {"{\"b\":1,\"a\":2}", NULL},
    {"{\"b\":1,\"a\":2,\"10\":3,\"9\":4}",
     "{\"9\":4,\"10\":3,\"b\":1,\"a\":2}"},
    {"{\"z\":1,\"01\":2,\"4294967295\":3,\"4294967294\":4,\"-1\":5}",
     "{\"4294967294\":4,\"z\":1,\"01\":2,\"4294967295\":3,\"-1\":5}"},
    {"{\"a\":1,\"a\":2}", "{\"a\":2}"},
    {"{\"a\":1,\"a\":null}", "{\"a\":null}"},
    {"{\"b\":1,\"a\":2,\"b\":3}", "{\"b\":3,\"a\":2}"},
    {"{\"b\":1,\"b\":2,\"a\":3,\"b\":4,\"a\":5}", "{\"b\":4,\"a\":5}"},
    {"{\"c\":{\"z\":[{\"y\":1,\"x\":2}],\"w\":{}},\"b\":[],\"a\":{\"v\":0}}",
     NULL},
    {"[{\"b\":1,\"a\":2},[{\"d\":{\"f\":1,\"e\":2},\"c\":[3]}],{\"b\":1}]",
     NULL},
    {"{\"b\":[{\"b\":1,\"a\":2}],\"a\":{\"b\":{\"b\":1,\"a\":2},\"a\":1}}",
     NULL},
    {"{\"y\":1,\"\\u0078\":2}", "{\"y\":1,\"x\":2}"},
    {"{\"\":0,\"\\u0000\":1}", "{\"\":0,\"\\u0000\":1}"},
    {"{\"__proto__\":{\"x\":1},\"constructor\":[]}", NULL},
    {" [ 1 , { \"a\" : 2 } ]\r\n\t", "[1,{\"a\":2}]"},
    /* without attachments a placeholder is a plain object */
    {"{\"_placeholder\":true,\"num\":0}", NULL},
    {"{\"num\":0,\"_placeholder\":true}", NULL},
};

static void test_roundtrips(void) {
  size_t i;
  for (i = 0; i < sizeof(roundtrips) / sizeof(roundtrips[0]); i++) {
    const char *want = roundtrips[i].out ? roundtrips[i].out : roundtrips[i].in;
    const char *got = roundtrip(roundtrips[i].in, strlen(roundtrips[i].in));
    if (strcmp(got, want) != 0) {
      printf("#   roundtrip %s: got %s, want %s\n", roundtrips[i].in, got,
             want);
      check_current_failed++;
    }
  }
}

/* ------------------------------------------------------------------------- */

static const struct {
  const char *in;
  size_t n; /* 0: strlen(in) */
  int code;
} scans[] = {
    {"", 0, PLUME_EPROTO},
    {" ", 0, PLUME_EPROTO},
    {"[", 0, PLUME_EPROTO},
    {"]", 0, PLUME_EPROTO},
    {"{", 0, PLUME_EPROTO},
    {"[1,]", 0, PLUME_EPROTO},
    {"[,1]", 0, PLUME_EPROTO},
    {"[1,,2]", 0, PLUME_EPROTO},
    {"{\"a\":1,}", 0, PLUME_EPROTO},
    {"{,}", 0, PLUME_EPROTO},
    {"{\"a\"}", 0, PLUME_EPROTO},
    {"{\"a\" 1}", 0, PLUME_EPROTO},
    {"{\"a\":}", 0, PLUME_EPROTO},
    {"{1:2}", 0, PLUME_EPROTO},
    {"{'a':1}", 0, PLUME_EPROTO},
    {"[1 2]", 0, PLUME_EPROTO},
    {"[1]]", 0, PLUME_EPROTO},
    {"[1]x", 0, PLUME_EPROTO},
    {"[1] [2]", 0, PLUME_EPROTO},
    {"NaN", 0, PLUME_EPROTO},
    {"[NaN]", 0, PLUME_EPROTO},
    {"Infinity", 0, PLUME_EPROTO},
    {"-Infinity", 0, PLUME_EPROTO},
    {"0x10", 0, PLUME_EPROTO},
    {"01", 0, PLUME_EPROTO},
    {"-01", 0, PLUME_EPROTO},
    {"00", 0, PLUME_EPROTO},
    {"1.", 0, PLUME_EPROTO},
    {".5", 0, PLUME_EPROTO},
    {"1e", 0, PLUME_EPROTO},
    {"1e+", 0, PLUME_EPROTO},
    {"+1", 0, PLUME_EPROTO},
    {"--1", 0, PLUME_EPROTO},
    {"-", 0, PLUME_EPROTO},
    {"1e400", 0, PLUME_EPROTO},
    {"-1e400", 0, PLUME_EPROTO},
    {"[1e309]", 0, PLUME_EPROTO},
    {"1.7976931348623159e308", 0, PLUME_EPROTO},
    {"0.00000000002e319", 0, PLUME_EPROTO},
    {"0.00000000001e319", 0, 0},
    {"tru", 0, PLUME_EPROTO},
    {"truex", 0, PLUME_EPROTO},
    {"nul", 0, PLUME_EPROTO},
    {"True", 0, PLUME_EPROTO},
    {"\"abc", 0, PLUME_EPROTO},
    {"\"\\x\"", 0, PLUME_EPROTO},
    {"\"\\u12\"", 0, PLUME_EPROTO},
    {"\"\\u12G4\"", 0, PLUME_EPROTO},
    {"\"\\", 0, PLUME_EPROTO},
    {"\"a\x01\"", 0, PLUME_EPROTO},
    {"\"a\nb\"", 0, PLUME_EPROTO},
    {"\"a\x00\"", 4, PLUME_EPROTO},
    {"[\"a\"\x00]", 6, PLUME_EPROTO},
    {"\"\xff\"", 0, PLUME_EPROTO},
    {"\"\xc0\x80\"", 0, PLUME_EPROTO},
    {"\"\xe0\x80\xaf\"", 0, PLUME_EPROTO},
    {"\"\xed\xa0\x80\"", 0, PLUME_EPROTO},
    {"\"\xf4\x90\x80\x80\"", 0, PLUME_EPROTO},
    {"\"\xe2\x82\"", 0, PLUME_EPROTO},
    {"\xef\xbb\xbf[]", 0, PLUME_EPROTO},
    {"'a'", 0, PLUME_EPROTO},
    {"[1]", 0, 0},
    {"-0", 0, 0},
    {"0e0", 0, 0},
    {"1E-2", 0, 0},
    {"\"\\ud800\"", 0, 0},
    {"\"\x7f\"", 0, 0},
    {"\"\xf4\x8f\xbf\xbf\"", 0, 0},
    {"1.7976931348623157e308", 0, 0},
    {"17976931348623157e292", 0, 0},
    {"0.0000000000000000000001e330", 0, 0},
    {"1e-99999999999999999999", 0, 0},
    {"{\"a\":[{\"b\":null}]}", 0, 0},
};

static void test_scan_table(void) {
  size_t i;
  for (i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
    size_t n = scans[i].n ? scans[i].n : strlen(scans[i].in);
    plume__json_info_t info;
    int r = plume__json_scan(scans[i].in, n, 128, -1, &info);
    if (r != scans[i].code) {
      printf("#   scan %s: got %d (%s), want %d\n", scans[i].in, r,
             info.error ? info.error : "", scans[i].code);
      check_current_failed++;
    }
  }
}

/* The scanner's overflow rule agrees with strtod around DBL_MAX. */
static void test_overflow_boundary(void) {
  static const char *const nums[] = {
      "1.7976931348623157e308",
      "1.79769313486231570e308",
      "1.7976931348623158e308",
      "1.797693134862315807e308",
      "1.7976931348623158079e308",
      "1.79769313486231580793728971e308",
      "1.7976931348623159e308",
      "179769313486231580793728971405303415079934132"
      "710037826936173778980444968292764750946649017"
      "977587207096330286416692887910946555547851940"
      "402630657488671505820681908902000708383676273"
      "854845817711531764475730270069855571366959622"
      "842914819860834936475292719074168444365510704"
      "342711559699508093042880177904174497791",
      "179769313486231580793728971405303415079934132710037826936173778980444968"
      "292764750946649017977587207096330286416692887910946555547851940402630657"
      "488671505820681908902000708383676273854845817711531764475730270069855571"
      "366959622842914819860834936475292719074168444365510704342711559699508093"
      "042880177904174497792",
      "2e308",
      "9e307",
      "-1.7976931348623158e308",
      "-1.8e308"};
  size_t i;
  for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
    int overflow = isinf(strtod(nums[i], NULL)) != 0;
    int r = plume__json_scan(nums[i], strlen(nums[i]), 128, -1, NULL);
    if ((r != 0) != overflow) {
      printf("#   %s: scan %d, strtod overflow %d\n", nums[i], r, overflow);
      check_current_failed++;
    }
  }
}

static char *nested(int depth, const char *open, const char *mid,
                    const char *close) {
  size_t lo = strlen(open), lc = strlen(close), lm = strlen(mid);
  char *s = malloc((size_t)depth * (lo + lc) + lm + 1), *o = s;
  int i;
  for (i = 0; i < depth; i++, o += lo)
    memcpy(o, open, lo);
  memcpy(o, mid, lm);
  o += lm;
  for (i = 0; i < depth; i++, o += lc)
    memcpy(o, close, lc);
  *o = '\0';
  return s;
}

static void test_depth(void) {
  char *s;
  plume__json_info_t info;
  s = nested(128, "[", "1", "]");
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, NULL), 0);
  CHECK(strncmp(roundtrip(s, strlen(s)), "[[[", 3) == 0);
  free(s);
  s = nested(129, "[", "", "]");
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), PLUME_ETOOBIG);
  CHECK_EQ(info.error_at, 128);
  CHECK_STR(roundtrip(s, strlen(s)), "error: nesting too deep");
  CHECK_EQ(plume__json_scan(s, strlen(s), 200, -1, NULL), 0);
  free(s);
  /* 100k '[' and ~1 MB of {"a": are refused at the cap, without recursion. */
  s = nested(100000, "[", "", "");
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, NULL), PLUME_ETOOBIG);
  CHECK_STR(roundtrip(s, strlen(s)), "error: nesting too deep");
  free(s);
  s = nested(200000, "{\"a\":", "1", "}");
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, NULL), PLUME_ETOOBIG);
  CHECK_EQ(plume__json_scan(s, strlen(s), 100000000, -1, NULL),
           PLUME_ETOOBIG); /* clamped to PLUME__JSON_DEPTH_MAX */
  free(s);
  s = nested(PLUME__JSON_DEPTH_MAX, "{\"a\":", "1", "}");
  CHECK_EQ(plume__json_scan(s, strlen(s), PLUME__JSON_DEPTH_MAX, -1, NULL), 0);
  free(s);
  /* The encoder has the same cap. */
  CHECK_STR(run("local t = {} for i = 1, 127 do t = {t} end "
                "return #json.encode(t)"),
            "256");
  CHECK_PREFIX(run("local t = {} for i = 1, 128 do t = {t} end "
                   "return json.encode(t)"),
               "error: result is not serializable: nesting too deep at "
               "...[1][1][1]");
}

static void test_info(void) {
  plume__json_info_t info;
  const char *s = "[\"message\",1,\"2\"]";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.type, PLUME__JSON_ARRAY);
  CHECK_EQ(info.first_type, PLUME__JSON_STRING);
  CHECK_MEM(info.first.p, info.first.n, "\"message\"");
  CHECK_EQ(info.count, 3);
  s = " [ [1, [2]] , 3 ]";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.first_type, PLUME__JSON_ARRAY);
  CHECK_MEM(info.first.p, info.first.n, "[1, [2]]");
  CHECK_EQ(info.count, 2);
  s = "[{\"a\":[1]},2]";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.first_type, PLUME__JSON_OBJECT);
  CHECK_MEM(info.first.p, info.first.n, "{\"a\":[1]}");
  s = "[-12.5e3]";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.first_type, PLUME__JSON_NUMBER);
  CHECK_MEM(info.first.p, info.first.n, "-12.5e3");
  s = "[]";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.first_type, PLUME__JSON_NONE);
  CHECK_EQ(info.count, 0);
  s = "{\"a\":[1,2]}";
  CHECK_EQ(plume__json_scan(s, strlen(s), 128, -1, &info), 0);
  CHECK_EQ(info.type, PLUME__JSON_OBJECT);
  CHECK_EQ(info.count, 0);
  CHECK_EQ(plume__json_scan("null", 4, 128, -1, &info), 0);
  CHECK_EQ(info.type, PLUME__JSON_NULL);
  CHECK_EQ(plume__json_scan("[1,]", 4, 128, -1, &info), PLUME_EPROTO);
  CHECK_EQ(info.error_at, 3);
  CHECK(info.error != NULL);
}

static const struct {
  const char *in;
  int attachments, code, placeholders;
} placeholders[] = {
    {"[\"x\",{\"_placeholder\":true,\"num\":0}]", 1, 0, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":0}]", -1, 0, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":0}]", 0, PLUME_EPROTO, 1},
    {"[\"x\",{\"num\":1,\"_placeholder\":true}]", 2, 0, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":1}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":-1}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":-0}]", 1, 0, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":0.5}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":1.0}]", 2, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":1e0}]", 2, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":{}}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":[0]}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":null}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true,\"num\":99999999999}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":true}]", 1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholder\":false,\"num\":7}]", 1, 0, 0},
    {"[\"x\",{\"_placeholder\":\"true\",\"num\":7}]", 1, 0, 0},
    {"[\"x\",{\"_placeholder\":1,\"num\":7}]", 1, 0, 0},
    {"[\"x\",{\"_placeholde\\u0072\":true,\"num\":0}]", 1, 0, 1},
    /* every character escaped: 72 bytes of key text */
    {"[{\"\\u005f\\u0070\\u006c\\u0061\\u0063\\u0065\\u0068\\u006f\\u006c"
     "\\u0064\\u0065\\u0072\":true,\"\\u006e\\u0075\\u006d\":1}]",
     1, PLUME_EPROTO, 1},
    {"[\"x\",{\"_placeholde\\u0072\":true,\"n\\u0075m\":3}]", 1, PLUME_EPROTO,
     1},
    /* the last duplicate wins, as in JSON.parse */
    {"[{\"_placeholder\":true,\"_placeholder\":false,\"num\":9}]", 1, 0, 0},
    {"[{\"_placeholder\":false,\"_placeholder\":true,\"num\":0}]", 1, 0, 1},
    {"[{\"_placeholder\":true,\"num\":0,\"num\":\"x\"}]", 1, PLUME_EPROTO, 1},
    {"[{\"_placeholder\":true,\"num\":\"x\",\"num\":0}]", 1, 0, 1},
    /* nested, and members nested inside a placeholder do not count for it */
    {"[{\"a\":[{\"_placeholder\":true,\"num\":1}]},{\"_placeholder\":true,"
     "\"num\":0}]",
     2, 0, 2},
    {"[{\"_placeholder\":true,\"x\":{\"num\":0},\"num\":5}]", 1, PLUME_EPROTO,
     1},
    {"[{\"_placeholder\":true,\"x\":{\"_placeholder\":false},\"num\":0}]", 1, 0,
     1},
};

static void test_placeholders(void) {
  size_t i;
  for (i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
    plume__json_info_t info;
    int r = plume__json_scan(placeholders[i].in, strlen(placeholders[i].in),
                             128, placeholders[i].attachments, &info);
    if (r != placeholders[i].code ||
        (r == 0 && (int)info.placeholders != placeholders[i].placeholders)) {
      printf("#   placeholder %s/%d: got %d (%u), want %d (%d)\n",
             placeholders[i].in, placeholders[i].attachments, r,
             info.placeholders, placeholders[i].code,
             placeholders[i].placeholders);
      check_current_failed++;
    }
    if (r != 0)
      CHECK_STR(info.error, "illegal attachments");
  }
}

static void test_string_eq(void) {
  plume_slice_t t;
  t.p = "\"connect\"";
  t.n = strlen(t.p);
  CHECK(plume__json_string_eq(t, "connect"));
  CHECK(!plume__json_string_eq(t, "connec"));
  CHECK(!plume__json_string_eq(t, "connects"));
  t.p = "\"\\u0063onnect\"";
  t.n = strlen(t.p);
  CHECK(plume__json_string_eq(t, "connect"));
  t.p = "\"a\\\"b\"";
  t.n = strlen(t.p);
  CHECK(plume__json_string_eq(t, "a\"b"));
  t.p = "12";
  t.n = 2;
  CHECK(!plume__json_string_eq(t, "12"));
  t.p = "\"";
  t.n = 1;
  CHECK(!plume__json_string_eq(t, ""));
  t.p = "\"\"";
  t.n = 2;
  CHECK(plume__json_string_eq(t, ""));
}

/* ------------------------------------------------------------------------- */

static const struct {
  const char *expr, *out;
} encodes[] = {
    {"{}", "{}"},
    {"json.array()", "[]"},
    {"json.object({})", "{}"},
    {"setmetatable({}, json.array_mt)", "[]"},
    {"{1, 2, 3}", "[1,2,3]"},
    {"{'a', {b = {true, false}}}", "[\"a\",{\"b\":[true,false]}]"},
    {"{b = 1, a = 2, c = 3}", "{\"a\":2,\"b\":1,\"c\":3}"},
    {"{[\"10\"] = 1, [\"9\"] = 2, [\"09\"] = 3, x = 4}",
     "{\"9\":2,\"10\":1,\"09\":3,\"x\":4}"},
    {"json.null", "null"},
    {"nil", "null"},
    {"{json.null, json.null}", "[null,null]"},
    {"setmetatable({1, nil, 3}, json.array_mt)", "[1,null,3]"},
    {"setmetatable({1, x = 2}, json.array_mt)", "[1]"},
    {"setmetatable({[1] = 'a', [2.5] = 'b', x = 'c'}, json.object_mt)",
     "{\"1\":\"a\",\"2.5\":\"b\",\"x\":\"c\"}"},
    {"json.object({[3] = 'x', ['3'] = 'y'})", "{\"3\":\"y\",\"3\":\"x\"}"},
    {"setmetatable({1, 2}, {__index = function() end})", "[1,2]"},
    /* numbers as JavaScript prints them */
    {"1", "1"},
    {"1.0", "1"},
    {"-0.0", "0"},
    {"0.0", "0"},
    {"-1.5", "-1.5"},
    {"2^53", "9007199254740992"},
    {"2^63", "9223372036854776000"},
    {"math.maxinteger", "9223372036854775807"},
    {"math.mininteger", "-9223372036854775808"},
    {"1e21", "1e+21"},
    {"1e20", "100000000000000000000"},
    {"1e-7", "1e-7"},
    {"123e-20", "1.23e-18"},
    {"0.1 + 0.2", "0.30000000000000004"},
    {"1/3", "0.3333333333333333"},
    {"math.pi", "3.141592653589793"},
    {"5e-324", "5e-324"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"-1e-300", "-1e-300"},
    {"0.000001", "0.000001"},
    {"0.0000001", "1e-7"},
    {"123456789012345680000.0", "123456789012345680000"},
    {"1234567890123456789012.0", "1.2345678901234568e+21"},
    /* strings as JSON.stringify writes them */
    {"'a\"b\\\\c/'", "\"a\\\"b\\\\c/\""},
    {"'\\b\\f\\n\\r\\t'", "\"\\b\\f\\n\\r\\t\""},
    {"'\\0\\1\\31\\127'", "\"\\u0000\\u0001\\u001f\x7f\""},
    {"'\\u{2028}\\u{2029}'", "\"\xe2\x80\xa8\xe2\x80\xa9\""},
    {"'\\u{1F600}'", "\"\xf0\x9f\x98\x80\""},
    {"'\\xff'", "\"\xef\xbf\xbd\""},
    {"'a\\xe2\\x82'", "\"a\xef\xbf\xbd\""},
    {"'\\xe2\\x28\\xa1'", "\"\xef\xbf\xbd(\xef\xbf\xbd\""},
    {"'\\xc0\\x80'", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {"'\\xed\\xa0\\x80'", "\"\\ud800\""},
    {"'\\xed\\xa0\\xbd\\xed\\xb8\\x80'", "\"\xf0\x9f\x98\x80\""},
    {"'\\xed\\xb8\\x80\\xed\\xa0\\xbd'", "\"\\ude00\\ud83d\""},
    {"'\\xf4\\x90\\x80\\x80'", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
                               "\xbd\""},
    /* errors, with a path to the culprit */
    {"{[1] = 1, [1000] = 2}",
     "error: result is not serializable: sparse array"},
    {"{[0] = 'a', [1] = 'b'}",
     "error: result is not serializable: sparse array"},
    {"{1, 2, x = 3}",
     "error: result is not serializable: mixed array and object keys"},
    {"{[true] = 1}", "error: result is not serializable: key that is not a "
                     "string or an index"},
    {"{[1.5] = 1}", "error: result is not serializable: key that is not a "
                    "string or an index"},
    {"json.object({[true] = 1})", "error: result is not serializable: key "
                                  "that is not a string or an index"},
    {"print", "error: result is not serializable: function"},
    {"{1, {x = {print}}}",
     "error: result is not serializable: function at [2].x[1]"},
    {"{['a b'] = {coroutine.create(print)}}",
     "error: result is not serializable: thread at [\"a b\"][1]"},
    {"{f = io.stdout}", "error: result is not serializable: FILE* at .f"},
    {"{0/0}", "error: number is not serializable: NaN at [1]"},
    {"{x = math.huge}", "error: number is not serializable: Infinity at .x"},
    {"-math.huge", "error: number is not serializable: -Infinity"},
    {"json.object({[math.huge] = 1})",
     "error: number is not serializable: Infinity key"},
    {"json.binary('x')",
     "error: result is not serializable: binary value outside a packet"},
};

static void test_encode_table(void) {
  size_t i;
  char chunk[512];
  for (i = 0; i < sizeof(encodes) / sizeof(encodes[0]); i++) {
    const char *got;
    snprintf(chunk, sizeof(chunk), "return json.encode(%s)", encodes[i].expr);
    got = run(chunk);
    if (strcmp(got, encodes[i].out) != 0) {
      printf("#   encode %s: got %s, want %s\n", encodes[i].expr, got,
             encodes[i].out);
      check_current_failed++;
    }
  }
}

static void test_encode_cycles(void) {
  CHECK_PREFIX(run("local t = {} t.a = t return json.encode(t)"),
               "error: result is not serializable: cycle at ....a.a.a.a");
  CHECK_STR(run("local t = {1} t[2] = {t} "
                "return select(2, pcall(json.encode, t)):sub(1, 40)"),
            "result is not serializable: cycle at ...");
  /* the same table twice is no cycle */
  CHECK_STR(run("local t = {1} return json.encode({t, t, {t}})"),
            "[[1],[1],[[1]]]");
  /* a failed encode leaves the encoder usable */
  CHECK_STR(run("pcall(json.encode, {print}) return json.encode({1})"), "[1]");
}

static void test_decode_lua(void) {
  CHECK_STR(run("return getmetatable(json.decode('[]')) == json.array_mt"),
            "true");
  CHECK_STR(run("return getmetatable(json.decode('{}')) == json.object_mt"),
            "true");
  CHECK_STR(run("return json.decode('null') == json.null"), "true");
  CHECK_STR(run("return json.decode('[null]')[1] == json.null"), "true");
  CHECK_STR(run("return #json.decode('[1,null,3]')"), "3");
  CHECK_STR(run("return math.type(json.decode('1'))"), "integer");
  CHECK_STR(run("return math.type(json.decode('-0'))"), "integer");
  CHECK_STR(run("return math.type(json.decode('1.0'))"), "float");
  CHECK_STR(run("return math.type(json.decode('1e2'))"), "float");
  CHECK_STR(run("return math.type(json.decode('9223372036854775808'))"),
            "float");
  CHECK_STR(run("return json.decode('9007199254740993')"), "9007199254740993");
  CHECK_STR(run("return json.decode('{\"3\":[true]}')['3'][1]"), "true");
  CHECK_STR(run("return json.decode('{\"3\":1}')[3]"), "nil");
  CHECK_STR(run("return json.decode('\"\\\\ud800\"') == '\\xed\\xa0\\x80'"),
            "true");
  CHECK_STR(run("return json.decode('\"\\\\u0000\"') == '\\0'"), "true");
  CHECK_STR(run("return select(2, json.decode('[1,]'))"),
            "invalid JSON: unexpected character at byte 4");
  CHECK_STR(run("return select(2, json.decode('NaN'))"),
            "invalid JSON: unexpected character at byte 1");
  CHECK_STR(run("return select(2, json.decode(''))"),
            "invalid JSON: unexpected end of text at byte 1");
  CHECK_STR(run("return select(2, json.decode('[1e400]'))"),
            "invalid JSON: number out of range at byte 2");
  CHECK_STR(run("return select(2, json.decode(string.rep('[', 129)))"),
            "invalid JSON: nesting too deep at byte 129");
  CHECK_HAS(run("return json.decode({})"),
            "bad argument #1 to 'decode' (string expected, got table)");
  CHECK_HAS(run("return json.decode('[1]', {print})"),
            ": attachment 1 is not a string or binary");
  CHECK_STR(run("return json.encode(json.decode('[1]', setmetatable({}, "
                "{__len = function() return 1e9 end})))"),
            "[1]");
  CHECK_HAS(run("local t = {} t[100000] = 'x' for i = 1, 100000 do t[i] = "
                "'x' end return json.decode('[1]', t)"),
            "bad argument #2 to 'decode' (too many attachments)");
  /* __proto__ and friends are plain data */
  CHECK_STR(run("local v = json.decode('{\"__proto__\":{\"a\":1},"
                "\"__index\":2}') return getmetatable(v).__index"),
            "nil");
}

/* Key order through Lua (protocol.md §3.3): recorded on decode, out of sight
** of pairs(), honoured and updated by encode, listed by json.keys. */
static void test_key_order(void) {
  static const char *const keys =
      "local function keys(t) return table.concat(json.keys(t), ',') end ";
  char chunk[1024];
#define KEYS(body, want)                                                       \
  do {                                                                         \
    snprintf(chunk, sizeof(chunk), "%s%s", keys, body);                        \
    CHECK_STR(run(chunk), want);                                               \
  } while (0)
  /* pairs() sees the members only: no order field in the object */
  CHECK_STR(run("local v = json.decode('{\"b\":1,\"a\":2,\"c\":3}') "
                "local n = 0 for k, x in pairs(v) do n = n + 1 "
                "assert(type(k) == 'string' and type(x) == 'number') end "
                "return n .. ' ' .. tostring(rawget(v, 1)) .. ' ' .. "
                "tostring(getmetatable(v) == json.object_mt)"),
            "3 nil true");
  KEYS("return keys(json.decode('{\"b\":1,\"a\":2,\"c\":3}'))", "b,a,c");
  KEYS("return keys(json.decode('{\"b\":1,\"a\":2,\"1\":3,\"0\":4}'))",
       "0,1,b,a");
  KEYS("return keys(json.decode('{\"b\":1,\"a\":2,\"b\":3}'))", "b,a");
  KEYS("return keys(json.decode('{\"z\":1}'))", "z");
  KEYS("return keys(json.decode('{}'))", "");
  KEYS("return keys(json.decode('[3,2,1]'))", "1,2,3");
  /* without a record: the encoder's order, whatever the keys */
  KEYS("return keys({b = 1, a = 1, [10] = 1, ['2'] = 1, [1] = 1, [2.5] = 1})",
       "1,2,10,2.5,a,b");
  CHECK_STR(run("local k = json.keys({x = 1, [true] = 2}) "
                "return #k .. tostring(k[1]) .. tostring(k[2])"),
            "2xtrue");
  CHECK_HAS(run("return json.keys('x')"),
            "bad argument #1 to 'keys' (table expected, got string)");
  /* mutations in Lua, then encode: a removed key goes, an added one comes
  ** after the recorded ones (sorted), a changed value keeps its place */
  CHECK_STR(run("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
                "v.b = nil return json.encode(v)"),
            "{\"c\":1,\"a\":3}");
  CHECK_STR(run("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
                "v.e = 4 v.d = json.null v['7'] = 0 return json.encode(v)"),
            "{\"7\":0,\"c\":1,\"b\":2,\"a\":3,\"d\":null,\"e\":4}");
  CHECK_STR(run("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
                "v.b = {x = {1}} v.c = 'C' return json.encode(v)"),
            "{\"c\":\"C\",\"b\":{\"x\":[1]},\"a\":3}");
  CHECK_STR(run("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
                "v.a, v.b, v.c = nil, nil, nil v.y = 1 v.x = 2 "
                "return json.encode(v)"),
            "{\"x\":2,\"y\":1}");
  /* a decision: a recorded key set again returns to its recorded place */
  CHECK_STR(run("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
                "v.c = nil v.c = 9 return json.encode(v)"),
            "{\"c\":9,\"b\":2,\"a\":3}");
  KEYS("local v = json.decode('{\"c\":1,\"b\":2,\"a\":3}') "
       "v.b = nil v.aa = 0 v[1] = 0 return keys(v)",
       "1,c,a,aa");
  /* nested objects and objects inside arrays keep their own orders */
  CHECK_STR(
      run("local v = json.decode('[{\"b\":{\"d\":1,\"c\":2},"
          "\"a\":[{\"f\":1,\"e\":2}]}]') v[1].a[1].g = 3 "
          "v[1].b.d = nil table.insert(v, json.decode('{\"i\":1,\"h\":2}')) "
          "return json.encode(v)"),
      "[{\"b\":{\"c\":2},\"a\":[{\"f\":1,\"e\":2,\"g\":3}]},"
      "{\"i\":1,\"h\":2}]");
  /* the order belongs to the table: a copy has none, the original keeps it
  ** after its text is gone */
  CHECK_STR(run("local v = json.decode('{\"b\":1,\"a\":2}') "
                "local c = {} for k, x in pairs(v) do c[k] = x end "
                "collectgarbage() return json.encode(c) .. json.encode(v)"),
            "{\"a\":2,\"b\":1}{\"b\":1,\"a\":2}");
  /* object_with_order: marks, records a copy of the list, any table */
  CHECK_STR(run("local l = {'total', 'limit', 'skip', 'data'} "
                "local t = json.object_with_order({data = json.array(), "
                "skip = 0, limit = 10, total = 0, x = 1}, l) l[1] = 'x' "
                "return json.encode(t) .. tostring(getmetatable(t) == "
                "json.object_mt)"),
            "{\"total\":0,\"limit\":10,\"skip\":0,\"data\":[],\"x\":1}true");
  CHECK_STR(run("return json.encode(json.object_with_order({}, {'a', 'b'}))"),
            "{}");
  CHECK_STR(run("return json.encode(json.object_with_order({[2.5] = 'f', "
                "[3] = 'i', ['3'] = 's', z = 'z'}, {'z', 2.5, 3, '3'}))"),
            "{\"3\":\"s\",\"3\":\"i\",\"z\":\"z\",\"2.5\":\"f\"}");
  CHECK_STR(run("local t = json.decode('{\"b\":1,\"a\":2}') "
                "json.object_with_order(t, {'a'}) return json.encode(t)"),
            "{\"a\":2,\"b\":1}");
  CHECK_HAS(run("return json.object_with_order({}, {'a', true})"),
            "bad argument #2 to 'object_with_order' (keys must be strings or "
            "finite numbers)");
  CHECK_HAS(run("return json.object_with_order({}, {0/0})"),
            "keys must be strings or finite numbers");
  CHECK_HAS(run("return json.object_with_order({})"),
            "bad argument #2 to 'object_with_order' (table expected, got no "
            "value)");
  /* placeholders resolved to attachments leave nothing recorded behind */
  CHECK_STR(run("local v = json.decode('[{\"b\":{\"_placeholder\":true,"
                "\"num\":0},\"a\":1}]', {'x'}) "
                "return json.is_binary(v[1].b) and json.keys(v[1])[1]"),
            "b");
#undef KEYS
}

/* Large objects: the recorded order costs O(n log n) to apply, and a key
** list holds every key. */
static void test_key_order_large(void) {
  enum { N = 60000 };
  plume__buf_t in = {0};
  plume__json_dec_t d;
  plume__json_enc_t e;
  const char *got;
  char tmp[32];
  int i, n;
  plume__buf_appendc(&in, '{');
  for (i = N; i > 0; i--) {
    n = snprintf(tmp, sizeof(tmp), "%s\"k%d\":%d", i < N ? "," : "", i, i);
    plume__buf_append(&in, tmp, (size_t)n);
  }
  plume__buf_appendc(&in, '}');
  memset(&d, 0, sizeof(d));
  d.max_depth = 128;
  d.natt = -1;
  lua_settop(L, 0);
  CHECK_EQ(plume__json_decode(L, in.p, in.len, &d), 0);
  plume__json_enc_init(&e, 128);
  CHECK_EQ(plume__json_encode(L, 1, &e), 0);
  CHECK(e.out.len == in.len && memcmp(e.out.p, in.p, in.len) == 0);
  /* half the keys gone, the other half still in wire order */
  lua_setglobal(L, "big");
  got = run("for i = 2, 60000, 2 do big['k' .. i] = nil end "
            "local k = json.keys(big) local ok = #k == 30000 "
            "for j = 1, #k do ok = ok and k[j] == 'k' .. (60001 - 2 * j) "
            "end big = nil return ok");
  CHECK_STR(got, "true");
  plume__json_enc_free(&e);
  plume__buf_free(&in);
  lua_settop(L, 0);
}

static void test_placeholders_lua(void) {
  CHECK_STR(run("local v = json.decode('[\"x\",{\"_placeholder\":true,"
                "\"num\":0}]', {'\\1\\2'}) "
                "return json.is_binary(v[2]) and tostring(v[2]) == '\\1\\2'"),
            "true");
  CHECK_STR(run("local b = json.binary('z') local v = json.decode("
                "'[{\"_placeholder\":true,\"num\":0},{\"k\":{\"_placeholder\":"
                "true,\"num\":0}}]', {b}) return rawequal(v[1], b) and "
                "rawequal(v[2].k, b)"),
            "true");
  CHECK_STR(run("return select(2, json.decode('[{\"_placeholder\":true,"
                "\"num\":1}]', {'a'}))"),
            "invalid JSON: illegal attachments at byte 30");
  CHECK_STR(run("return select(2, json.decode('[{\"_placeholder\":true,"
                "\"num\":0}]', {}))"),
            "invalid JSON: illegal attachments at byte 30");
  CHECK_STR(run("return json.encode(json.decode('[{\"_placeholder\":true,"
                "\"num\":0}]'))"),
            "[{\"_placeholder\":true,\"num\":0}]");
  CHECK_STR(run("local t, a = json.encode_placeholders({'x', json.binary('\\1"
                "'), {k = {json.binary('2')}, a = json.binary('3')}}) "
                "return t .. ' ' .. #a .. tostring(a[1]) .. tostring(a[2]) .. "
                "tostring(a[3]) .. tostring(getmetatable(a) == json.array_mt)"),
            "[\"x\",{\"_placeholder\":true,\"num\":0},{\"a\":{\"_placeholder\":"
            "true,\"num\":1},\"k\":[{\"_placeholder\":true,\"num\":2}]}] "
            "3\0013"
            "2true");
  CHECK_STR(run("local t, a = json.encode_placeholders({1}) return t .. #a"),
            "[1]0");
  CHECK_STR(run("local b = json.binary('ab') local t, a = "
                "json.encode_placeholders({b, b}) "
                "return t .. tostring(rawequal(a[1], a[2]))"),
            "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
            "\"num\":1}]true");
}

static void test_binary(void) {
  size_t n;
  const char *p;
  CHECK_STR(run("return #json.binary('abc')"), "3");
  CHECK_STR(run("return json.binary('abc'):len()"), "3");
  CHECK_STR(run("return tostring(json.binary('a\\0b')) == 'a\\0b'"), "true");
  CHECK_STR(run("return json.binary('a\\0b'):tostring() == 'a\\0b'"), "true");
  CHECK_STR(run("return json.binary('abc') == json.binary('abc')"), "true");
  CHECK_STR(run("return json.binary('abc') == json.binary('abd')"), "false");
  CHECK_STR(run("return json.binary('abc') ~= 'abc'"), "true");
  CHECK_STR(run("return tostring(json.binary('hello'):sub(2, -2))"), "ell");
  CHECK_STR(run("return tostring(json.binary('hello'):sub(-3))"), "llo");
  CHECK_STR(run("return #json.binary('hello'):sub(4, 2)"), "0");
  CHECK_STR(run("return json.is_binary(json.binary('hello'):sub(0, 100))"),
            "true");
  CHECK_STR(run("return #json.binary('')"), "0");
  CHECK_STR(run("return tostring(json.binary(json.binary('x')))"), "x");
  CHECK_STR(run("return json.is_binary('x')"), "false");
  CHECK_STR(run("return json.is_binary(io.stdout)"), "false");
  CHECK_STR(
      run("return select(2, pcall(function() "
          "return json.binary('x').len(io.stdout) end)):gsub('^.-: ', '')"),
      "bad argument #1 to 'len' (plume.binary expected, got FILE*)");
  CHECK(strncmp(run("return getmetatable(json.binary('x')).__name"),
                "plume.binary", 12) == 0);
  lua_settop(L, 0);
  plume__binary_push(L, "\x01\x02\x03", 3);
  p = plume__binary_get(L, 1, &n);
  CHECK(p != NULL && n == 3 && memcmp(p, "\x01\x02\x03", 3) == 0);
  lua_pushliteral(L, "str");
  CHECK(plume__binary_get(L, 2, &n) == NULL);
  lua_newuserdatauv(L, 3, 0);
  CHECK(plume__binary_get(L, 3, &n) == NULL);
  lua_settop(L, 0);
}

static void test_write_string(void) {
  plume__buf_t b = {0};
  CHECK_EQ(plume__json_write_string(&b, "a\"\n\x01\xff", 5), 0);
  CHECK_MEM(b.p, b.len, "\"a\\\"\\n\\u0001\xef\xbf\xbd\"");
  b.len = 0;
  CHECK_EQ(plume__json_write_string(&b, "", 0), 0);
  CHECK_MEM(b.p, b.len, "\"\"");
  plume__buf_free(&b);
}

/* C encoder API: encode_list, reset, attachment limit, att slices. */
static void test_encoder_api(void) {
  plume__json_enc_t e;
  plume__json_enc_init(&e, 128);
  lua_settop(L, 0);
  lua_pushliteral(L, "ev");
  lua_pushnil(L);
  lua_pushinteger(L, 3);
  plume__binary_push(L, "BIN", 3);
  CHECK_EQ(plume__json_encode_list(L, 1, 4, &e), 0);
  CHECK_MEM(e.out.p, e.out.len,
            "[\"ev\",null,3,{\"_placeholder\":true,\"num\":0}]");
  CHECK_EQ(e.natt, 1);
  CHECK_MEM(e.att[0].p, e.att[0].n, "BIN");
  CHECK_EQ(lua_gettop(L), 4);
  plume__json_enc_reset(&e);
  CHECK_EQ(plume__json_encode_list(L, 1, 0, &e), 0);
  CHECK_MEM(e.out.p, e.out.len, "[]");
  plume__json_enc_reset(&e);
  e.max_attachments = 1;
  lua_pushvalue(L, 4);
  CHECK_EQ(plume__json_encode_list(L, 4, 2, &e), PLUME_EPROTO);
  CHECK_STR(e.error, "result is not serializable: too many binary values at "
                     "[2]");
  plume__json_enc_reset(&e);
  e.binary = 0;
  CHECK_EQ(plume__json_encode(L, 4, &e), PLUME_EPROTO);
  CHECK_EQ(lua_gettop(L), 5);
  plume__json_enc_free(&e);
  lua_settop(L, 0);
}

/* ------------------------------------------------------------------------- */

/* Scanner and decoder agree on s; a decoded value encodes, and re-decoding the
** encoding gives the same encoding (decode -> encode -> decode is stable). */
static int consistent(const char *s, size_t n) {
  plume__json_dec_t d;
  plume__json_enc_t e;
  char *first = NULL;
  size_t first_n = 0;
  int scan, dec, ok = 1;
  scan = plume__json_scan(s, n, 16, -1, NULL);
  memset(&d, 0, sizeof(d));
  d.max_depth = 16;
  d.natt = -1;
  lua_settop(L, 0);
  dec = plume__json_decode(L, s, n, &d);
  if ((scan == 0) != (dec == 0) || (dec == 0 && d.count != 1))
    return 0;
  if (dec != 0)
    return lua_gettop(L) == 0;
  plume__json_enc_init(&e, 16);
  if (plume__json_encode(L, 1, &e) != 0 ||
      plume__json_scan(e.out.p, e.out.len, 16, -1, NULL) != 0)
    ok = 0;
  else {
    first = malloc(e.out.len);
    memcpy(first, e.out.p, e.out.len);
    first_n = e.out.len;
    lua_settop(L, 0);
    d.count = 0;
    plume__json_enc_reset(&e);
    ok = plume__json_decode(L, first, first_n, &d) == 0 &&
         plume__json_encode(L, 1, &e) == 0 && e.out.len == first_n &&
         memcmp(e.out.p, first, first_n) == 0;
  }
  free(first);
  plume__json_enc_free(&e);
  lua_settop(L, 0);
  return ok;
}

static void test_mutations(void) {
  static const char subst[] = "[]{}\",:0-.e \\xu\x80\xff";
  char buf[256];
  size_t i, j, k, n;
  int bad = 0, runs = 0;
  for (i = 0; i < sizeof(roundtrips) / sizeof(roundtrips[0]); i++) {
    const char *s = roundtrips[i].in;
    n = strlen(s);
    if (n >= sizeof(buf))
      continue;
    for (j = 0; j <= n; j++) { /* every prefix */
      runs++;
      if (!consistent(s, j)) {
        printf("#   inconsistent on prefix %zu of %s\n", j, s);
        bad++;
      }
    }
    for (j = 0; j < n; j++) { /* every byte replaced, or NUL */
      for (k = 0; k < sizeof(subst); k++) {
        memcpy(buf, s, n);
        buf[j] = subst[k];
        runs++;
        if (!consistent(buf, n)) {
          printf("#   inconsistent on %s with byte %zu = %02x\n", s, j,
                 (unsigned char)subst[k]);
          bad++;
        }
      }
    }
  }
  CHECK_EQ(bad, 0);
  CHECK(runs > 10000);
}

int main(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  plume__json_open(L, 128); /* the table plume.core.json will hold */
  lua_setglobal(L, "json");
  CHECK_STR(run("json.array = function(t) return setmetatable(t or {}, "
                "json.array_mt) end json.object = function(t) return "
                "setmetatable(t or {}, json.object_mt) end return 'ok'"),
            "ok");
  RUN(test_roundtrips);
  RUN(test_scan_table);
  RUN(test_overflow_boundary);
  RUN(test_depth);
  RUN(test_info);
  RUN(test_placeholders);
  RUN(test_string_eq);
  RUN(test_encode_table);
  RUN(test_encode_cycles);
  RUN(test_decode_lua);
  RUN(test_key_order);
  RUN(test_key_order_large);
  RUN(test_placeholders_lua);
  RUN(test_binary);
  RUN(test_write_string);
  RUN(test_encoder_api);
  RUN(test_mutations);
  lua_close(L);
  plume__shared_pool_drain();
  return check_done();
}
