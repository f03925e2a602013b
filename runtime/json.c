/*
** json.c: the one JSON codec of Plume. A strict scanner (pure C, fuzzable),
** JSON text -> Lua values, Lua values -> compact JSON, and the plume.binary
** userdata that travels as a Socket.IO attachment (protocol.md §3.3
** placeholders, §3.4 steps 5-7; reliability.md §4.4 #27 and #30, §4.6 #41).
** socketio.c and lua_api.c sit on top of it.
**
** Why not lua-cjson: Debian's lua-cjson 2.1.0 cannot mark arrays ([] and {}
** both become an empty table, and an empty table encodes as {}), accepts NaN,
** Infinity and hex numbers by default, prints numbers with 14 significant
** digits (integers above 2^47 lose digits), and cannot substitute Socket.IO
** binary placeholders. The Socket.IO conformance suite compares output byte for
** byte.
**
** Caveats (each a decision, tested in tests/unit/test_json.c):
**  - Lone surrogate escapes ("\ud800") are accepted, as JSON.parse does. They
**    decode to the 3-byte generalised UTF-8 form (ED A0 80) and encode back to
**    "\ud800", as JSON.stringify writes a lone surrogate; a high and a low one
**    in a row join up.
**  - Numbers that overflow a double (1e400) are refused; ones that underflow
**    become 0. "-0" is the integer 0. Integers beyond 2^53 that fit in 64 bits
**    stay exact.
**  - A placeholder's num must be written as an integer ("-0" included), not 1.0
**    or 1e0.
**  - Duplicate keys: the last value wins, in the first one's place, as in
**    JSON.parse.
**  - Lua tables keep no key order, so the decoder records it for objects of
**    two keys or more in a weak-keyed side table. The encoder writes keys as
**    JavaScript lists them: array-index keys ("0", "17") first, by value, then
**    the recorded ones in wire order, then any others sorted (see order_keys).
**    A recorded key removed in Lua and set again goes back to its recorded
**    place, where JavaScript would move it last.
**  - Invalid UTF-8 in a Lua string is written as U+FFFD, one per maximal
**    invalid subpart.
*/
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "internal.h"

/* ------------------------------------------------------------------------- */
/* {====== UTF-8 */

/*
** Length of the UTF-8 sequence at s (n > 0 bytes left, s[0] >= 0x80): positive
** when valid, otherwise minus the length of its maximal invalid subpart (at
** least 1). With wtf8, the surrogate range ED A0..BF xx counts as valid: the
** form \uD800-style escapes decode to.
*/
static int utf8_seq(const unsigned char *s, size_t n, int wtf8) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF;
  int need, i;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED && !wtf8)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return -1;
  for (i = 1; i <= need; i++) {
    if ((size_t)i >= n || s[i] < lo || s[i] > hi)
      return -i;
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

/* Writes code point cp (surrogates included, as 3 bytes) and returns the
** length. */
static int put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static int hex_value(unsigned c) {
  if (c >= '0' && c <= '9')
    return (int)(c - '0');
  c |= 0x20;
  if (c >= 'a' && c <= 'f')
    return (int)(c - 'a' + 10);
  return -1;
}

/* The value of 4 hex digits at s, or -1. */
static long hex4(const unsigned char *s) {
  long v = 0;
  int i, d;
  for (i = 0; i < 4; i++) {
    if ((d = hex_value(s[i])) < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/*
** Unescapes the body of a JSON string (without quotes) into dst, which needs n
** bytes: no escape grows. Tolerates malformed escapes (copied as is) so that it
** is safe on any input.
*/
static size_t unescape(const unsigned char *s, size_t n, char *dst) {
  const unsigned char *end = s + n;
  char *o = dst;
  long cp, lo;
  while (s < end) {
    if (*s != '\\' || end - s < 2) {
      *o++ = (char)*s++;
      continue;
    }
    switch (s[1]) {
    case 'b':
      *o++ = '\b';
      break;
    case 'f':
      *o++ = '\f';
      break;
    case 'n':
      *o++ = '\n';
      break;
    case 'r':
      *o++ = '\r';
      break;
    case 't':
      *o++ = '\t';
      break;
    case 'u':
      if (end - s < 6 || (cp = hex4(s + 2)) < 0) {
        *o++ = (char)*s++;
        continue;
      }
      s += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' &&
          s[1] == 'u' && (lo = hex4(s + 2)) >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        s += 6;
      }
      o += put_utf8(o, (unsigned)cp);
      continue;
    default:
      *o++ = (char)s[1];
      break;
    }
    s += 2;
  }
  return (size_t)(o - dst);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The lexer: one token at a time, nesting tracked without recursion */

enum {
  T_ERROR = -1,
  T_EOF,
  T_OBJ_BEGIN,
  T_OBJ_END,
  T_ARR_BEGIN,
  T_ARR_END,
  T_KEY,
  T_STRING,
  T_NUMBER,
  T_TRUE,
  T_FALSE,
  T_NULL
};

/* What the lexer expects next. */
enum { S_VALUE, S_FIRST_ELEM, S_FIRST_KEY, S_KEY, S_AFTER, S_DEAD };

#define F_ESCAPED 1u /* string token holds escapes */
#define F_FLOAT 2u   /* number token has a fraction or an exponent */
#define F_NEG 4u     /* number token starts with '-' */

typedef struct lexer_s {
  const unsigned char *start, *p, *end;
  int depth, max_depth, state;
  int too_deep;                /* the failure was the depth cap */
  const unsigned char *tstart; /* where the last token began */
  const unsigned char *tok;    /* its text (string bodies without quotes) */
  size_t tok_n;
  unsigned flags; /* F_* of the last token */
  const char *error;
  uint8_t
      objects[PLUME__JSON_DEPTH_MAX / 8 + 1]; /* bit per level: 1 = object */
} lexer_t;

/* 2^1024 - 2^970: the halfway point between DBL_MAX and 2^1024. A decimal at or
** above it rounds to infinity. */
static const char dbl_overflow[] =
    "17976931348623158079372897140530341507993413271003782693617377898044496829"
    "27647509466490179775872070963302864166928879109465555478519404026306574886"
    "71505820681908902000708383676273854845817711531764475730270069855571366959"
    "62284291481986083493647529271907416844436551070434271155969950809304288017"
    "7904174497792";

static void lexer_init(lexer_t *x, const char *p, size_t n, int max_depth) {
  x->start = x->p = (const unsigned char *)p;
  x->end = x->p + n;
  x->depth = 0;
  if (max_depth <= 0)
    max_depth = 128;
  x->max_depth =
      max_depth > PLUME__JSON_DEPTH_MAX ? PLUME__JSON_DEPTH_MAX : max_depth;
  x->state = S_VALUE;
  x->too_deep = 0;
  x->error = NULL;
  x->flags = 0;
  memset(x->objects, 0, sizeof(x->objects));
}

static int lex_fail(lexer_t *x, const char *msg) {
  x->error = msg;
  x->state = S_DEAD;
  return T_ERROR;
}

static int in_object(const lexer_t *x) {
  return x->objects[x->depth >> 3] >> (x->depth & 7) & 1;
}

static void skip_ws(lexer_t *x) {
  while (x->p < x->end &&
         (*x->p == ' ' || *x->p == '\n' || *x->p == '\r' || *x->p == '\t'))
    x->p++;
}

static int lex_open(lexer_t *x, int object) {
  if (x->depth >= x->max_depth) {
    x->too_deep = 1;
    return lex_fail(x, "nesting too deep");
  }
  x->p++;
  x->depth++;
  if (object)
    x->objects[x->depth >> 3] |= (uint8_t)(1u << (x->depth & 7));
  else
    x->objects[x->depth >> 3] &= (uint8_t) ~(1u << (x->depth & 7));
  x->state = object ? S_FIRST_KEY : S_FIRST_ELEM;
  return object ? T_OBJ_BEGIN : T_ARR_BEGIN;
}

static int lex_close(lexer_t *x) {
  int object = in_object(x);
  x->p++;
  x->depth--;
  x->state = S_AFTER;
  return object ? T_OBJ_END : T_ARR_END;
}

/* Scans the string starting at the quote under x->p. */
static int lex_string(lexer_t *x) {
  const unsigned char *p = x->p + 1, *end = x->end;
  unsigned flags = 0;
  int len;
  x->tok = p;
  for (;;) {
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      p++;
    if (p == end) {
      x->p = p;
      return lex_fail(x, "unterminated string");
    }
    if (*p == '"')
      break;
    if (*p == '\\') {
      flags |= F_ESCAPED;
      if (end - p < 2)
        p = end;
      else if (p[1] != '\0' && strchr("\"\\/bfnrt", p[1]) != NULL)
        p += 2;
      else if (p[1] == 'u' && end - p >= 6 && hex4(p + 2) >= 0)
        p += 6;
      else {
        x->p = p;
        return lex_fail(x, "invalid escape in string");
      }
      continue;
    }
    if (*p < 0x20) {
      x->p = p;
      return lex_fail(x, "control character in string");
    }
    if ((len = utf8_seq(p, (size_t)(end - p), 0)) < 0) {
      x->p = p;
      return lex_fail(x, "invalid UTF-8 in string");
    }
    p += len;
  }
  x->tok_n = (size_t)(p - x->tok);
  x->flags = flags;
  x->p = p + 1;
  return T_STRING;
}

static int is_digit(const unsigned char *p, const unsigned char *end) {
  return p < end && *p >= '0' && *p <= '9';
}

/*
** Whether the significant digits from sig (skipping '.', ending at the exponent
** or the end) reach dbl_overflow: only asked when the value is 0.ddd x 10^309.
*/
static int digits_overflow(const unsigned char *sig, const unsigned char *end) {
  const char *m = dbl_overflow;
  for (; sig < end && *m; sig++) {
    if (*sig == '.')
      continue;
    if (*sig < '0' || *sig > '9')
      break;
    if (*sig != (unsigned char)*m)
      return *sig > (unsigned char)*m;
    m++;
  }
  return *m == '\0'; /* equal so far: the longer (or equal) number overflows */
}

static int lex_number(lexer_t *x) {
  const unsigned char *p = x->p, *end = x->end, *sig = NULL, *frac = NULL;
  long intdigits = 0, exp = 0, e10;
  unsigned flags = 0;
  int eneg = 0;
  x->tok = p;
  if (*p == '-') {
    flags |= F_NEG;
    p++;
  }
  if (!is_digit(p, end)) {
    x->p = p;
    return lex_fail(x, "invalid number");
  }
  if (*p == '0') {
    p++;
    if (is_digit(p, end)) {
      x->p = p;
      return lex_fail(x, "leading zero in number");
    }
  } else {
    sig = p;
    while (is_digit(p, end))
      p++;
    intdigits = (long)(p - sig);
  }
  if (p < end && *p == '.') {
    flags |= F_FLOAT;
    frac = ++p;
    if (!is_digit(p, end)) {
      x->p = p;
      return lex_fail(x, "invalid number");
    }
    while (is_digit(p, end))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    flags |= F_FLOAT;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      eneg = *p++ == '-';
    if (!is_digit(p, end)) {
      x->p = p;
      return lex_fail(x, "invalid number");
    }
    while (is_digit(p, end)) {
      if (exp < 100000000) /* saturate: far beyond any double either way */
        exp = exp * 10 + (*p - '0');
      p++;
    }
  }
  x->tok_n = (size_t)(p - x->tok);
  x->flags = flags;
  x->p = p;
  x->state = S_AFTER;
  /* Overflow check: the value is 0.<significant digits> x 10^e10. */
  if (sig == NULL && frac != NULL) {
    const unsigned char *q = frac;
    while (q < end && *q == '0')
      q++;
    if (!is_digit(q, end))
      return T_NUMBER; /* zero */
    sig = q;
    intdigits = -(long)(q - frac);
  } else if (sig == NULL)
    return T_NUMBER; /* zero */
  e10 = intdigits + (eneg ? -exp : exp);
  if (e10 > 309 || (e10 == 309 && digits_overflow(sig, p))) {
    x->p = x->tok;
    return lex_fail(x, "number out of range");
  }
  return T_NUMBER;
}

static int lex_literal(lexer_t *x, const char *word, size_t n, int token) {
  if ((size_t)(x->end - x->p) < n || memcmp(x->p, word, n) != 0)
    return lex_fail(x, "unexpected character");
  x->tok = x->p;
  x->tok_n = n;
  x->p += n;
  x->state = S_AFTER;
  return token;
}

static int lex_value(lexer_t *x) {
  int t;
  x->tstart = x->p;
  if (x->p == x->end)
    return lex_fail(x, "unexpected end of text");
  switch (*x->p) {
  case '{':
    return lex_open(x, 1);
  case '[':
    return lex_open(x, 0);
  case '"':
    if ((t = lex_string(x)) == T_STRING)
      x->state = S_AFTER;
    return t;
  case 't':
    return lex_literal(x, "true", 4, T_TRUE);
  case 'f':
    return lex_literal(x, "false", 5, T_FALSE);
  case 'n':
    return lex_literal(x, "null", 4, T_NULL);
  default:
    if (*x->p == '-' || (*x->p >= '0' && *x->p <= '9'))
      return lex_number(x);
    return lex_fail(x, "unexpected character");
  }
}

static int lex_key(lexer_t *x) {
  x->tstart = x->p;
  if (x->p == x->end || *x->p != '"')
    return lex_fail(x, x->p == x->end ? "unexpected end of text"
                                      : "expected a string key");
  if (lex_string(x) != T_STRING)
    return T_ERROR;
  skip_ws(x);
  if (x->p == x->end || *x->p != ':')
    return lex_fail(x, "expected ':'");
  x->p++;
  x->state = S_VALUE;
  return T_KEY;
}

/* The next token. After T_ERROR or T_EOF it keeps returning the same. */
static int lex_next(lexer_t *x) {
  int object;
  if (x->state == S_DEAD)
    return T_ERROR;
  skip_ws(x);
  switch (x->state) {
  case S_AFTER:
    if (x->depth == 0) {
      if (x->p == x->end)
        return T_EOF;
      return lex_fail(x, "unexpected text after the value");
    }
    if (x->p == x->end)
      return lex_fail(x, "unexpected end of text");
    object = in_object(x);
    if (*x->p == ',') {
      x->p++;
      skip_ws(x);
      return object ? lex_key(x) : lex_value(x);
    }
    x->tstart = x->p;
    if (*x->p == (object ? '}' : ']'))
      return lex_close(x);
    return lex_fail(x, object ? "expected ',' or '}'" : "expected ',' or ']'");
  case S_FIRST_KEY:
    x->tstart = x->p;
    if (x->p < x->end && *x->p == '}')
      return lex_close(x);
    return lex_key(x);
  case S_FIRST_ELEM:
    x->tstart = x->p;
    if (x->p < x->end && *x->p == ']')
      return lex_close(x);
    return lex_value(x);
  default:
    return lex_value(x);
  }
}

/* 1 when the current string token, unescaped, equals s. An escape takes at most
** 6 bytes per byte it stands for, so a token longer than 6n cannot match. */
static int token_eq(const lexer_t *x, const char *s, size_t n) {
  char tmp[128];
  size_t m;
  if (!(x->flags & F_ESCAPED))
    return x->tok_n == n && memcmp(x->tok, s, n) == 0;
  if (x->tok_n > 6 * n || x->tok_n > sizeof(tmp) || x->tok_n < n)
    return 0;
  m = unescape(x->tok, x->tok_n, tmp);
  return m == n && memcmp(tmp, s, n) == 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The scanner */

/* Per object level: what its "_placeholder" and "num" members were (the last
** ones win). */
enum {
  PH_TRUE = 1,     /* "_placeholder": true */
  PH_OTHER = 2,    /* "_placeholder": anything else */
  NUM_VALID = 4,   /* "num": an integer in range */
  NUM_INVALID = 8, /* "num": anything else */
  PEND_PH = 16,    /* the value being read belongs to "_placeholder" */
  PEND_NUM = 32    /* ... to "num" */
};

static int token_type(int t) {
  switch (t) {
  case T_OBJ_BEGIN:
    return PLUME__JSON_OBJECT;
  case T_ARR_BEGIN:
    return PLUME__JSON_ARRAY;
  case T_STRING:
    return PLUME__JSON_STRING;
  case T_NUMBER:
    return PLUME__JSON_NUMBER;
  case T_TRUE:
    return PLUME__JSON_TRUE;
  case T_FALSE:
    return PLUME__JSON_FALSE;
  default:
    return PLUME__JSON_NULL;
  }
}

/* Whether the number token is a placeholder index below limit ("-0" counts as
** 0). */
static int num_in_range(const lexer_t *x, int limit) {
  const unsigned char *s = x->tok, *e = x->tok + x->tok_n;
  long v = 0;
  if (x->flags & F_FLOAT)
    return 0;
  if (*s == '-') {
    s++;
    if (e - s != 1 || *s != '0')
      return 0;
  }
  if (e - s > 9)
    return 0;
  for (; s < e; s++)
    v = v * 10 + (*s - '0');
  return v < limit;
}

static void note_member(uint8_t *ph, int t, const lexer_t *x, int attachments) {
  if (*ph & PEND_PH)
    *ph = (uint8_t)((*ph & ~(PH_TRUE | PH_OTHER)) |
                    (t == T_TRUE ? PH_TRUE : PH_OTHER));
  else if (*ph & PEND_NUM)
    *ph = (uint8_t)((*ph & ~(NUM_VALID | NUM_INVALID)) |
                    (t == T_NUMBER && num_in_range(x, attachments)
                         ? NUM_VALID
                         : NUM_INVALID));
  *ph &= (uint8_t) ~(PEND_PH | PEND_NUM);
}

int plume__json_scan(const char *p, size_t n, int max_depth, int attachments,
                     plume__json_info_t *info) {
  lexer_t x;
  plume__json_info_t local;
  uint8_t ph[PLUME__JSON_DEPTH_MAX + 1];
  int t, first_open = 0, parent;
  if (info == NULL)
    info = &local;
  memset(info, 0, sizeof(*info));
  lexer_init(&x, p, n, max_depth);
  while ((t = lex_next(&x)) > T_EOF) {
    switch (t) {
    case T_KEY:
      ph[x.depth] &= (uint8_t) ~(PEND_PH | PEND_NUM);
      if (token_eq(&x, "_placeholder", 12))
        ph[x.depth] |= PEND_PH;
      else if (token_eq(&x, "num", 3))
        ph[x.depth] |= PEND_NUM;
      continue;
    case T_OBJ_END:
    case T_ARR_END:
      if (t == T_OBJ_END && (ph[x.depth + 1] & PH_TRUE)) {
        info->placeholders++;
        if (attachments >= 0 && !(ph[x.depth + 1] & NUM_VALID)) {
          x.p = x.tstart;
          info->error = "illegal attachments";
          info->error_at = (size_t)(x.p - x.start);
          return PLUME_EPROTO;
        }
      }
      if (first_open && x.depth == 1) {
        info->first.n = (size_t)((const char *)x.p - info->first.p);
        first_open = 0;
      }
      continue;
    default:
      break;
    }
    /* A value starts (a scalar, or a container opening): its parent is one
    ** level up. */
    parent = t == T_OBJ_BEGIN || t == T_ARR_BEGIN ? x.depth - 1 : x.depth;
    if (parent == 0 && info->type == PLUME__JSON_NONE)
      info->type = token_type(t);
    if (parent > 0 && (x.objects[parent >> 3] >> (parent & 7) & 1))
      note_member(&ph[parent], t, &x, attachments);
    if (parent == 1 && info->type == PLUME__JSON_ARRAY && info->count++ == 0) {
      info->first_type = token_type(t);
      info->first.p = (const char *)x.tstart;
      info->first.n = (size_t)((const char *)x.p - info->first.p);
      first_open = t == T_OBJ_BEGIN || t == T_ARR_BEGIN;
    }
    if (t == T_OBJ_BEGIN)
      ph[x.depth] = 0;
  }
  if (t == T_ERROR) {
    info->error = x.error;
    info->error_at = (size_t)(x.p - x.start);
    return x.too_deep ? PLUME_ETOOBIG : PLUME_EPROTO;
  }
  return 0;
}

int plume__json_string_eq(plume_slice_t tok, const char *s) {
  char tmp[128];
  size_t n = strlen(s), m;
  if (tok.n < 2 || tok.p[0] != '"' || tok.p[tok.n - 1] != '"')
    return 0;
  tok.p++;
  tok.n -= 2;
  if (memchr(tok.p, '\\', tok.n) == NULL)
    return tok.n == n && memcmp(tok.p, s, n) == 0;
  if (tok.n > 6 * n || tok.n > sizeof(tmp) || tok.n < n)
    return 0;
  m = unescape((const unsigned char *)tok.p, tok.n, tmp);
  return m == n && memcmp(tmp, s, n) == 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Writing JSON text */

static const char hex_digits[] = "0123456789abcdef";

int plume__json_write_string(plume__buf_t *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run;
  char esc[8];
  int len;
  if (plume__buf_reserve(b, n + 2) != 0)
    return UV_ENOMEM;
  b->p[b->len++] = '"';
  while (p < end) {
    run = p;
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      p++;
    if (p > run && plume__buf_append(b, run, (size_t)(p - run)) != 0)
      return UV_ENOMEM;
    if (p == end)
      break;
    if (*p < 0x80) { /* '"', '\\' or a control character */
      esc[0] = '\\';
      len = 2;
      switch (*p) {
      case '"':
        esc[1] = '"';
        break;
      case '\\':
        esc[1] = '\\';
        break;
      case '\b':
        esc[1] = 'b';
        break;
      case '\f':
        esc[1] = 'f';
        break;
      case '\n':
        esc[1] = 'n';
        break;
      case '\r':
        esc[1] = 'r';
        break;
      case '\t':
        esc[1] = 't';
        break;
      default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex_digits[*p >> 4];
        esc[5] = hex_digits[*p & 15];
        len = 6;
      }
      p++;
    } else if ((len = utf8_seq(p, (size_t)(end - p), 1)) > 0) {
      unsigned cp = (unsigned)(p[0] & 0x0F) << 12 |
                    (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3Fu);
      if (p[0] != 0xED || p[1] < 0xA0) { /* ordinary UTF-8, U+2028/9 included */
        if (plume__buf_append(b, p, (size_t)len) != 0)
          return UV_ENOMEM;
        p += len;
        continue;
      }
      /* A surrogate from a \u escape: a high one followed by a low one is a
      ** pair. */
      if (cp < 0xDC00 && end - p >= 6 && p[3] == 0xED && p[4] >= 0xB0 &&
          p[4] <= 0xBF && (p[5] & 0xC0) == 0x80) {
        unsigned lo = 0xD000u | (unsigned)(p[4] & 0x3F) << 6 | (p[5] & 0x3Fu);
        len = put_utf8(esc, 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00));
        p += 6;
      } else {
        memcpy(esc, "\\u", 2);
        esc[2] = hex_digits[cp >> 12];
        esc[3] = hex_digits[(cp >> 8) & 15];
        esc[4] = hex_digits[(cp >> 4) & 15];
        esc[5] = hex_digits[cp & 15];
        len = 6;
        p += 3;
      }
    } else {
      memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for the invalid subpart */
      p += -len;
      len = 3;
    }
    if (plume__buf_append(b, esc, (size_t)len) != 0)
      return UV_ENOMEM;
  }
  return plume__buf_appendc(b, '"');
}

static int format_integer(char *buf, lua_Integer v) {
  char tmp[24];
  int n = 0, len = 0;
  lua_Unsigned u = (lua_Unsigned)v;
  if (v < 0) {
    buf[len++] = '-';
    u = 0u - u;
  }
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  while (n > 0)
    buf[len++] = tmp[--n];
  return len;
}

/*
** Writes a finite double as JavaScript's Number.prototype.toString does
** (ECMA-262 Number::toString): the shortest digits that read back as d, then
** plain notation for decimal exponents in [-6, 21), exponent notation ("1e+21",
** "1.5e-7") otherwise. buf needs 32 bytes. Integral values below 2^53 take the
** integer path, so 1.0 prints as 1.
*/
static int format_double(char *buf, double d) {
  char tmp[48], digits[24];
  int prec, k = 0, n, len = 0, i, e;
  const char *s;
  if (d == 0)
    return buf[0] = '0', 1; /* -0 too, as JavaScript prints it */
  if (fabs(d) < 9007199254740992.0 && d == (double)(lua_Integer)d)
    return format_integer(buf, (lua_Integer)d);
  /* A normal double's shortest form, when it has at most 15 digits, is the
  ** 15-digit rounding with its zeros stripped (DBL_DIG); subnormals carry fewer
  ** digits. */
  for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec < 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  if (prec == 17)
    snprintf(tmp, sizeof(tmp), "%.16e", d);
  /* tmp is [-]D.DDDDe[+-]XX in any locale's decimal point: keep the digits
  ** only. */
  s = tmp;
  if (*s == '-') {
    buf[len++] = '-';
    s++;
  }
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9')
      digits[k++] = *s;
  while (k > 1 && digits[k - 1] == '0')
    k--;
  n = atoi(s + 1) + 1; /* d = 0.DIGITS x 10^n */
  if (k <= n && n <= 21) {
    memcpy(buf + len, digits, (size_t)k);
    len += k;
    for (i = k; i < n; i++)
      buf[len++] = '0';
  } else if (0 < n && n <= 21) {
    memcpy(buf + len, digits, (size_t)n);
    len += n;
    buf[len++] = '.';
    memcpy(buf + len, digits + n, (size_t)(k - n));
    len += k - n;
  } else if (-6 < n && n <= 0) {
    buf[len++] = '0';
    buf[len++] = '.';
    for (i = n; i < 0; i++)
      buf[len++] = '0';
    memcpy(buf + len, digits, (size_t)k);
    len += k;
  } else {
    buf[len++] = digits[0];
    if (k > 1) {
      buf[len++] = '.';
      memcpy(buf + len, digits + 1, (size_t)(k - 1));
      len += k - 1;
    }
    e = n - 1;
    buf[len++] = 'e';
    buf[len++] = e < 0 ? '-' : '+';
    len += format_integer(buf + len, e < 0 ? -e : e);
  }
  return len;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Lua values: registry keys, null, plume.binary */

/* Registry slots keyed by these addresses (never strings: see style.md F.6). */
static const char array_mt_key = 'a', object_mt_key = 'o', binary_mt_key = 'b';
static const char enc_mt_key = 'e', order_key = 'k';

void plume__json_push_mt(lua_State *L, int object) {
  const void *key = object ? &object_mt_key : &array_mt_key;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1); /* mt */
  lua_pushstring(L, object ? "plume.json.object" : "plume.json.array");
  lua_setfield(L, -2, "__name");          /* mt.__name = ... */
  lua_pushvalue(L, -1);                   /* mt, mt */
  lua_rawsetp(L, LUA_REGISTRYINDEX, key); /* registry[key] = mt */
}

/*
** Pushes the key-order table, creating it on first use: order[obj] lists the
** keys of a decoded object (two keys or more) in wire order, since a Lua table
** keeps none. A side table rather than a field, so that pairs() over decoded
** objects sees their members only; weak keys, so an entry lives exactly as long
** as its object.
*/
static void push_order(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &order_key) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  lua_newtable(L);          /* order */
  lua_createtable(L, 0, 1); /* order, mt */
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode"); /* mt.__mode = "k" */
  lua_setmetatable(L, -2);       /* order */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &order_key); /* registry[key] = order */
}

/* Bytes of the binary at idx: a full userdata whose block is the bytes
** themselves. */
static const char *check_binary(lua_State *L, int idx, size_t *n) {
  const char *p = plume__binary_get(L, idx, n);
  if (p == NULL)
    luaL_typeerror(L, idx, "plume.binary");
  return p;
}

static int binary_len(lua_State *L) {
  size_t n;
  check_binary(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int binary_tostring(lua_State *L) {
  size_t n;
  const char *p = check_binary(L, 1, &n);
  lua_pushlstring(L, p, n);
  return 1;
}

static int binary_eq(lua_State *L) {
  size_t n1, n2;
  const char *a = plume__binary_get(L, 1, &n1);
  const char *b = plume__binary_get(L, 2, &n2);
  lua_pushboolean(L, a != NULL && b != NULL && n1 == n2 &&
                         (n1 == 0 || memcmp(a, b, n1) == 0));
  return 1;
}

/* b:sub(i [, j]) -> a new binary, with string.sub's index rules. */
static int binary_sub(lua_State *L) {
  size_t n;
  const char *p = check_binary(L, 1, &n);
  lua_Integer i = luaL_optinteger(L, 2, 1), j = luaL_optinteger(L, 3, -1);
  lua_Integer len = (lua_Integer)n;
  if (i < 0)
    i = i < -len ? 1 : len + i + 1;
  else if (i == 0)
    i = 1;
  if (j < 0)
    j = len + j + 1;
  else if (j > len)
    j = len;
  if (i > j)
    plume__binary_push(L, "", 0);
  else
    plume__binary_push(L, p + i - 1, (size_t)(j - i + 1));
  return 1;
}

static void push_binary_mt(lua_State *L) {
  static const luaL_Reg meta[] = {{"__len", binary_len},
                                  {"__tostring", binary_tostring},
                                  {"__eq", binary_eq},
                                  {NULL, NULL}};
  static const luaL_Reg methods[] = {{"tostring", binary_tostring},
                                     {"sub", binary_sub},
                                     {"len", binary_len},
                                     {NULL, NULL}};
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &binary_mt_key) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 5); /* mt */
  luaL_setfuncs(L, meta, 0);
  lua_pushliteral(L, "plume.binary");
  lua_setfield(L, -2, "__name");  /* mt.__name */
  luaL_newlib(L, methods);        /* mt, methods */
  lua_setfield(L, -2, "__index"); /* mt.__index = methods */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &binary_mt_key); /* registry[key] = mt */
}

void plume__binary_push(lua_State *L, const void *p, size_t n) {
  void *u = lua_newuserdatauv(L, n, 0); /* one block: the bytes inline */
  if (n > 0)
    memcpy(u, p, n);
  push_binary_mt(L);       /* u, mt */
  lua_setmetatable(L, -2); /* u */
}

const char *plume__binary_get(lua_State *L, int idx, size_t *n) {
  int same;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &binary_mt_key); /* mt, binary_mt */
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!same)
    return NULL;
  *n = lua_rawlen(L, idx);
  return lua_touserdata(L, idx);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== JSON text -> Lua */

static void push_string(lua_State *L, const lexer_t *x) {
  luaL_Buffer b;
  char *o;
  if (!(x->flags & F_ESCAPED)) {
    lua_pushlstring(L, (const char *)x->tok, x->tok_n);
    return;
  }
  o = luaL_buffinitsize(L, &b, x->tok_n);
  luaL_pushresultsize(&b, unescape(x->tok, x->tok_n, o));
}

/* Pushes a number token: an integer when it has no fraction or exponent and
** fits. */
static int push_number(lua_State *L, const lexer_t *x) {
  const char *s = (const char *)x->tok, *e = s + x->tok_n;
  char tmp[64];
  uint64_t v = 0;
  int neg = 0, ok;
  if (!(x->flags & F_FLOAT)) {
    if (*s == '-') {
      neg = 1;
      s++;
    }
    for (; s < e; s++) {
      unsigned d = (unsigned)(*s - '0');
      if (v > (UINT64_MAX - d) / 10)
        break;
      v = v * 10 + d;
    }
    if (s == e && !neg && v <= (uint64_t)LUA_MAXINTEGER) {
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    }
    if (s == e && neg && v <= (uint64_t)LUA_MAXINTEGER + 1) {
      lua_pushinteger(L, v > (uint64_t)LUA_MAXINTEGER ? LUA_MININTEGER
                                                      : -(lua_Integer)v);
      return 0;
    }
  }
  /* Lua's own conversion: locale-aware, and a float here (the integer did not
  ** fit). */
  if (x->tok_n < sizeof(tmp)) {
    memcpy(tmp, x->tok, x->tok_n);
    tmp[x->tok_n] = '\0';
    ok = lua_stringtonumber(L, tmp) != 0;
  } else {
    lua_pushlstring(L, (const char *)x->tok, x->tok_n);
    ok = lua_stringtonumber(L, lua_tostring(L, -1)) != 0;
    lua_remove(L, ok ? -2 : -1);
  }
  return ok ? 0 : -1;
}

/* Replaces the object on top with its attachment when it is a placeholder:
** returns 1 when it did, 0 when the object stays, -1 for a bad num. */
static int resolve_placeholder(lua_State *L, const plume__json_dec_t *d) {
  lua_Integer num;
  int is;
  lua_pushliteral(L, "_placeholder");
  lua_rawget(L, -2); /* obj, obj._placeholder */
  is = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!is)
    return 0;
  lua_pushliteral(L, "num");
  lua_rawget(L, -2); /* obj, obj.num */
  if (!lua_isinteger(L, -1) || (num = lua_tointeger(L, -1)) < 0 ||
      num >= d->natt) {
    lua_pop(L, 1);
    return -1;
  }
  lua_pop(L, 2);
  lua_pushvalue(L, d->att_base + (int)num); /* the attachment */
  return 1;
}

/*
** Notes the n-th key (n >= 2) of the object being read; the stack is
** [list,] obj, key. The second key creates the object's key list, with the
** first key taken back from the object (its only entry so far), and slides it
** under the object: list, obj, key. Duplicates are listed again rather than
** looked up: whoever reads the list keeps a key's first place only.
*/
static void note_key(lua_State *L, uint32_t n) {
  if (n > 2) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, -4, (lua_Integer)n); /* list[n] = key */
    return;
  }
  lua_createtable(L, 4, 0); /* obj, key, list */
  lua_pushnil(L);
  lua_next(L, -4);       /* obj, key, list, key1, value1 */
  lua_pop(L, 1);         /* obj, key, list, key1 */
  lua_rawseti(L, -2, 1); /* list[1] = key1 */
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2); /* list[2] = key */
  lua_insert(L, -3);     /* list, obj, key */
}

int plume__json_decode(lua_State *L, const char *p, size_t n,
                       plume__json_dec_t *d) {
  lexer_t x;
  /* Per level: an array's last index, or how many keys an object has read
  ** (duplicates included); from 2 on, the object has a key list under it. */
  uint32_t idx[PLUME__JSON_DEPTH_MAX + 1];
  int base = lua_gettop(L), t, spread = 0, count = 0, r;
  const char *err = NULL;
  if (d->natt > 0)
    d->att_base = lua_absindex(L, d->att_base);
  if (!lua_checkstack(L, 8)) {
    d->error = "too many values";
    d->error_at = 0;
    return PLUME_ETOOBIG;
  }
  plume__json_push_mt(L, 0); /* base+1: array_mt */
  plume__json_push_mt(L, 1); /* base+2: object_mt */
  push_order(L);             /* base+3: the key-order table */
  lexer_init(&x, p, n, d->max_depth);
  while ((t = lex_next(&x)) > T_EOF) {
    switch (t) {
    case T_OBJ_BEGIN:
    case T_ARR_BEGIN:
      if (!lua_checkstack(L, 6)) {
        err = "too many values";
        goto fail;
      }
      if (t == T_ARR_BEGIN && x.depth == 1 && d->spread) {
        spread = 1; /* the elements go on the stack */
        continue;
      }
      lua_createtable(L, 0, 0); /* t */
      lua_pushvalue(L, base + (t == T_OBJ_BEGIN ? 2 : 1));
      lua_setmetatable(L, -2); /* t */
      idx[x.depth] = 0;
      continue;
    case T_KEY:
      push_string(L, &x); /* key */
      if (++idx[x.depth] >= 2)
        note_key(L, idx[x.depth]);
      continue;
    case T_ARR_END:
      if (spread && x.depth == 0)
        continue;
      break;
    case T_OBJ_END:
      r = d->natt >= 0 ? resolve_placeholder(L, d) : 0;
      if (r < 0) {
        x.p = x.tstart;
        err = "illegal attachments";
        goto fail;
      }
      if (idx[x.depth + 1] >= 2) { /* list, obj */
        if (r == 0) {
          lua_pushvalue(L, -1);
          lua_pushvalue(L, -3);
          lua_rawset(L, base + 3); /* order[obj] = list */
        }
        lua_remove(L, -2); /* obj */
      }
      break;
    case T_STRING:
      push_string(L, &x);
      break;
    case T_NUMBER:
      if (push_number(L, &x) != 0) {
        err = "invalid number";
        goto fail;
      }
      break;
    case T_TRUE:
      lua_pushboolean(L, 1);
      break;
    case T_FALSE:
      lua_pushboolean(L, 0);
      break;
    default:
      lua_pushlightuserdata(L, NULL);
      break; /* null */
    }
    /* A value is complete on top of the stack: store it in its parent. */
    if (x.depth == 0)
      count = 1;
    else if (x.depth == 1 && spread) {
      count++;
      if (!lua_checkstack(L, 6)) {
        err = "too many values";
        goto fail;
      }
    } else if (in_object(&x))
      lua_rawset(L, -3); /* parent[key] = value */
    else
      lua_rawseti(L, -2, ++idx[x.depth]); /* parent[#parent+1] = value */
  }
  if (t == T_ERROR)
    goto fail;
  lua_rotate(L, base + 1, -3); /* the three helpers to the top ... */
  lua_pop(L, 3);               /* ... and away: base+1.. are the values */
  d->count = count;
  d->error = NULL;
  return 0;
fail:
  d->error = err != NULL ? err : x.error;
  d->error_at = (size_t)(x.p - x.start);
  lua_settop(L, base);
  return x.too_deep ? PLUME_ETOOBIG : PLUME_EPROTO;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Lua -> JSON text */

enum { KEY_STRING, KEY_INTEGER, KEY_FLOAT };

/* One object key waiting to be sorted. String keys point into the table's own
** key, which the table keeps alive while it is being encoded. */
struct plume__json_key_s {
  const char *s;
  size_t n;
  int64_t index; /* an array-index key ("0", "17"): its value; else -1 */
  int kind;      /* KEY_* */
  lua_Integer i;
  lua_Number f;
  size_t rank;  /* place in the output, while a recorded order is applied */
  size_t at;    /* json.keys: where the key value itself waits */
  char num[32]; /* number keys: their text */
};

typedef struct plume__json_key_s objkey_t;

/* The ancestors of the table being encoded, for telling a cycle from mere
** depth. */
typedef struct frame_s {
  int idx;
  const struct frame_s *up;
} frame_t;

void plume__json_enc_init(plume__json_enc_t *e, int max_depth) {
  memset(e, 0, sizeof(*e));
  if (max_depth <= 0)
    max_depth = 128;
  e->max_depth =
      max_depth > PLUME__JSON_DEPTH_MAX ? PLUME__JSON_DEPTH_MAX : max_depth;
  e->binary = 1;
}

void plume__json_enc_reset(plume__json_enc_t *e) {
  e->out.len = 0;
  e->natt = 0;
  e->nkeys = 0;
  e->error[0] = '\0';
}

void plume__json_enc_free(plume__json_enc_t *e) {
  plume__buf_free(&e->out);
  free(e->att);
  free(e->keys);
  e->att = NULL;
  e->keys = NULL;
  e->natt = e->att_cap = 0;
  e->nkeys = e->keys_cap = 0;
}

static const char *const not_serializable = "result is not serializable";

/* Starts an error message; the path is added while the recursion unwinds. */
static int enc_fail(plume__json_enc_t *e, const char *prefix,
                    const char *what) {
  snprintf(e->error, sizeof(e->error), "%s: %s", prefix, what);
  e->path_at = (int)sizeof(e->path);
  return PLUME_EPROTO;
}

static int enc_nomem(plume__json_enc_t *e) {
  snprintf(e->error, sizeof(e->error), "not enough memory");
  e->path_at = (int)sizeof(e->path);
  return UV_ENOMEM;
}

/* Prepends s to the error path. Room for "..." is always kept: once s no longer
** fits, the path starts with "..." and path_at turns negative (-at - 1) to say
** it is complete. */
static void path_prepend(plume__json_enc_t *e, const char *s, size_t n) {
  if (e->path_at < 0)
    return;
  if ((size_t)e->path_at < n + 3) {
    e->path_at -= 3;
    memcpy(e->path + e->path_at, "...", 3);
    e->path_at = -e->path_at - 1;
    return;
  }
  e->path_at -= (int)n;
  memcpy(e->path + e->path_at, s, n);
}

static void path_index(plume__json_enc_t *e, lua_Integer i) {
  char tmp[32];
  int n = 0;
  tmp[n++] = '[';
  n += format_integer(tmp + n, i);
  tmp[n++] = ']';
  path_prepend(e, tmp, (size_t)n);
}

static void path_key(plume__json_enc_t *e, const char *s, size_t n) {
  char tmp[40];
  size_t i, m = 0;
  int ident = n > 0 && n <= 32 && !(s[0] >= '0' && s[0] <= '9');
  for (i = 0; i < n && ident; i++)
    ident = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
            (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
  if (ident) {
    tmp[m++] = '.';
    memcpy(tmp + m, s, n);
    m += n;
  } else {
    memcpy(tmp, "[\"", 2);
    m = 2;
    for (i = 0; i < n && i < 24; i++)
      tmp[m++] = s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"' ? s[i] : '?';
    if (n > 24)
      tmp[m++] = '~';
    memcpy(tmp + m, "\"]", 2);
    m += 2;
  }
  path_prepend(e, tmp, m);
}

static int emit(plume__json_enc_t *e, const char *s, size_t n) {
  return plume__buf_append(&e->out, s, n) == 0 ? 0 : enc_nomem(e);
}

static int emit_number(lua_State *L, plume__json_enc_t *e, int idx) {
  char tmp[40];
  int n;
  if (lua_isinteger(L, idx))
    n = format_integer(tmp, lua_tointeger(L, idx));
  else {
    lua_Number d = lua_tonumber(L, idx);
    if (d != d)
      return enc_fail(e, "number is not serializable", "NaN");
    if (isinf(d))
      return enc_fail(e, "number is not serializable",
                      d > 0 ? "Infinity" : "-Infinity");
    n = format_double(tmp, (double)d);
  }
  return emit(e, tmp, (size_t)n);
}

static int emit_binary(lua_State *L, plume__json_enc_t *e, int idx,
                       const char *p, size_t n) {
  char tmp[64];
  int len;
  if (!e->binary)
    return enc_fail(e, not_serializable, "binary value outside a packet");
  if (e->max_attachments > 0 && e->natt >= e->max_attachments)
    return enc_fail(e, not_serializable, "too many binary values");
  if (e->natt == e->att_cap) {
    int cap = e->att_cap ? e->att_cap * 2 : 8;
    plume_slice_t *na = realloc(e->att, (size_t)cap * sizeof(*na));
    if (na == NULL)
      return enc_nomem(e);
    e->att = na;
    e->att_cap = cap;
  }
  e->att[e->natt].p = p;
  e->att[e->natt].n = n;
  if (e->att_table != 0) {
    lua_pushvalue(L, idx);
    lua_rawseti(L, e->att_table, e->natt + 1); /* att_table[k+1] = binary */
  }
  len = snprintf(tmp, sizeof(tmp), "{\"_placeholder\":true,\"num\":%d}",
                 e->natt++);
  return emit(e, tmp, (size_t)len);
}

/* The value of a canonical array-index key ("0", "42", no leading zeros), else
** -1. */
static int64_t key_index(const char *s, size_t n) {
  int64_t v = 0;
  size_t i;
  if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
    return -1;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v < 4294967295LL ? v : -1;
}

static const char *key_text(const objkey_t *k) {
  return k->kind == KEY_STRING ? k->s : k->num;
}

/* Array-index keys first, in numeric order (as JavaScript objects list them),
** then the others by bytes; a string key and a number key with the same text by
** kind. */
static int key_cmp(const void *a, const void *b) {
  const objkey_t *x = a, *y = b;
  size_t n;
  int c;
  if (x->index >= 0 || y->index >= 0) {
    if (x->index < 0)
      return 1;
    if (y->index < 0)
      return -1;
    if (x->index != y->index)
      return x->index < y->index ? -1 : 1;
    return x->kind - y->kind;
  }
  n = x->n < y->n ? x->n : y->n;
  if ((c = memcmp(key_text(x), key_text(y), n)) != 0)
    return c;
  if (x->n != y->n)
    return x->n < y->n ? -1 : 1;
  return x->kind - y->kind;
}

/* Fills k from the string or number at idx (a float with an integral value
** counts as that integer, as in a table key). Returns -1, k unusable, for a
** number JSON cannot write (an infinity, NaN). */
static int fill_key(lua_State *L, int idx, objkey_t *k) {
  int isint;
  k->s = NULL;
  if (lua_type(L, idx) == LUA_TSTRING) {
    k->kind = KEY_STRING;
    k->s = lua_tolstring(L, idx, &k->n);
    k->index = key_index(k->s, k->n);
    return 0;
  }
  k->i = lua_tointegerx(L, idx, &isint);
  if (isint) {
    k->kind = KEY_INTEGER;
    k->n = (size_t)format_integer(k->num, k->i);
    k->index = k->i >= 0 && k->i < 4294967295LL ? (int64_t)k->i : -1;
    return 0;
  }
  k->kind = KEY_FLOAT;
  k->f = lua_tonumber(L, idx);
  if (isinf(k->f) || k->f != k->f)
    return -1;
  k->n = (size_t)format_double(k->num, (double)k->f);
  k->index = -1;
  return 0;
}

/* Records the key on top of the stack (a string, or a number of an object_mt
** table). */
static int add_key(lua_State *L, plume__json_enc_t *e) {
  objkey_t *k;
  if (e->nkeys == e->keys_cap) {
    size_t cap = e->keys_cap ? e->keys_cap * 2 : 32;
    objkey_t *nk = realloc(e->keys, cap * sizeof(*nk));
    if (nk == NULL)
      return enc_nomem(e);
    e->keys = nk;
    e->keys_cap = cap;
  }
  k = &e->keys[e->nkeys];
  if (fill_key(L, -1, k) != 0) /* an infinity: NaN cannot be a key */
    return enc_fail(e, "number is not serializable",
                    k->f > 0 ? "Infinity key" : "-Infinity key");
  e->nkeys++;
  return 0;
}

/*
** Puts the count keys of the table at idx in output order, the order in which
** JavaScript lists an object's keys: array-index keys first, by value, then the
** others in creation order. Array-index keys and the others without an entry in
** the key-order table (at ord) are in key_cmp order. Otherwise the non-index
** keys the entry lists that the table still has come in its order (a key listed
** twice keeps its first place), and the others after them, in key_cmp order.
** Sorting first lets each listed key be found by binary search, and the ranks
** then form a permutation applied in place: O(n log n) for n keys.
*/
static void order_keys(lua_State *L, int ord, int idx, objkey_t *keys,
                       size_t count) {
  objkey_t probe, *k, tmp;
  size_t i, nidx = 0, rank;
  lua_Integer j, m;
  qsort(keys, count, sizeof(objkey_t), key_cmp);
  while (nidx < count && keys[nidx].index >= 0)
    nidx++;
  if (nidx == count)
    return; /* index keys only: no other order applies */
  lua_pushvalue(L, idx);
  if (lua_rawget(L, ord) != LUA_TTABLE) { /* order[t] */
    lua_pop(L, 1);
    return;
  }
  for (i = 0; i < count; i++)
    keys[i].rank = i < nidx ? i : SIZE_MAX;
  rank = nidx;
  m = (lua_Integer)lua_rawlen(L, -1);
  for (j = 1; j <= m && rank < count; j++) {
    int kt = lua_rawgeti(L, -1, j); /* list, list[j] */
    if ((kt == LUA_TSTRING || kt == LUA_TNUMBER) &&
        fill_key(L, -1, &probe) == 0 && probe.index < 0 &&
        (k = bsearch(&probe, keys + nidx, count - nidx, sizeof(objkey_t),
                     key_cmp)) != NULL &&
        k->rank == SIZE_MAX)
      k->rank = rank++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* list */
  if (rank == nidx)
    return; /* none of the listed keys is left */
  for (i = nidx; i < count; i++)
    if (keys[i].rank == SIZE_MAX)
      keys[i].rank = rank++;
  for (i = nidx; i < count; i++)
    while (keys[i].rank != i) { /* each swap puts one key in its place */
      tmp = keys[keys[i].rank];
      keys[keys[i].rank] = keys[i];
      keys[i] = tmp;
    }
}

static int encode_value(lua_State *L, plume__json_enc_t *e, int idx, int depth,
                        const frame_t *up);

static int encode_array(lua_State *L, plume__json_enc_t *e, int idx,
                        lua_Integer n, int depth, const frame_t *fr) {
  lua_Integer i;
  int r;
  if (emit(e, "[", 1) != 0)
    return UV_ENOMEM;
  for (i = 1; i <= n; i++) {
    if (i > 1 && emit(e, ",", 1) != 0)
      return UV_ENOMEM;
    lua_rawgeti(L, idx, i); /* t[i] */
    r = encode_value(L, e, lua_gettop(L), depth + 1, fr);
    lua_pop(L, 1);
    if (r != 0) {
      path_index(e, i);
      return r;
    }
  }
  return emit(e, "]", 1);
}

/* Writes the object whose keys are e->keys[base..e->nkeys), put in order
** first. */
static int encode_members(lua_State *L, plume__json_enc_t *e, int idx,
                          size_t base, int depth, const frame_t *fr) {
  size_t i, count = e->nkeys - base, n;
  const char *s;
  int r, kind;
  if (count > 1)
    order_keys(L, e->ord, idx, e->keys + base, count);
  if (emit(e, "{", 1) != 0)
    return UV_ENOMEM;
  for (i = 0; i < count; i++) {
    /* Read afresh each time: nested objects may have moved e->keys. */
    objkey_t *k = &e->keys[base + i];
    kind = k->kind;
    s = key_text(k);
    n = k->n;
    if ((i > 0 && emit(e, ",", 1) != 0) ||
        plume__json_write_string(&e->out, s, n) != 0 || emit(e, ":", 1) != 0)
      return enc_nomem(e);
    if (kind == KEY_STRING)
      lua_pushlstring(L, s, n); /* key */
    else if (kind == KEY_INTEGER)
      lua_pushinteger(L, k->i);
    else
      lua_pushnumber(L, k->f);
    lua_rawget(L, idx); /* t[key] */
    r = encode_value(L, e, lua_gettop(L), depth + 1, fr);
    lua_pop(L, 1);
    if (r != 0) {
      k = &e->keys[base + i];
      path_key(e, key_text(k), k->n);
      return r;
    }
  }
  return emit(e, "}", 1);
}

/*
** A table: array_mt -> an array of 1..#t (nil holes as null); object_mt -> an
** object with string or number keys; unmarked -> an array when the keys are
** exactly 1..n (n > 0), an object when they are all strings (so {} is {}), an
** error otherwise (sparse, mixed).
*/
static int encode_table(lua_State *L, plume__json_enc_t *e, int idx, int depth,
                        const frame_t *up) {
  frame_t fr;
  size_t base = e->nkeys;
  lua_Integer nint = 0, max = 0;
  int marked = 0, r, other = 0;
  if (depth >= e->max_depth) {
    for (; up != NULL; up = up->up)
      if (lua_rawequal(L, up->idx, idx))
        return enc_fail(e, not_serializable, "cycle");
    return enc_fail(e, not_serializable, "nesting too deep");
  }
  if (!lua_checkstack(L, 6))
    return enc_fail(e, not_serializable, "nesting too deep");
  fr.idx = idx;
  fr.up = up;
  if (lua_getmetatable(L, idx)) { /* mt */
    if (lua_rawequal(L, -1, e->amt))
      marked = 1;
    else if (lua_rawequal(L, -1, e->omt))
      marked = 2;
    lua_pop(L, 1);
  }
  if (marked == 1)
    return encode_array(L, e, idx, (lua_Integer)lua_rawlen(L, idx), depth, &fr);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { /* key, value */
    int kt = lua_type(L, -2);
    lua_pop(L, 1); /* key */
    if (kt == LUA_TSTRING || (kt == LUA_TNUMBER && marked == 2)) {
      if ((r = add_key(L, e)) != 0) {
        lua_pop(L, 1);
        e->nkeys = base;
        return r;
      }
    } else if (lua_isinteger(L, -1)) {
      lua_Integer i = lua_tointeger(L, -1);
      nint++;
      if (i < 1)
        max = LUA_MAXINTEGER; /* never 1..n */
      else if (i > max)
        max = i;
    } else
      other++;
  }
  if (other == 0 && nint == 0)
    r = encode_members(L, e, idx, base, depth, &fr);
  else if (other == 0 && e->nkeys == base && nint == max)
    r = encode_array(L, e, idx, max, depth, &fr);
  else
    r = enc_fail(e, not_serializable,
                 other > 0         ? "key that is not a string or an index"
                 : e->nkeys > base ? "mixed array and object keys"
                                   : "sparse array");
  e->nkeys = base;
  return r;
}

static int encode_value(lua_State *L, plume__json_enc_t *e, int idx, int depth,
                        const frame_t *up) {
  const char *p;
  size_t n;
  int r;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return emit(e, "null", 4);
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? emit(e, "true", 4) : emit(e, "false", 5);
  case LUA_TNUMBER:
    return emit_number(L, e, idx);
  case LUA_TSTRING:
    p = lua_tolstring(L, idx, &n);
    return plume__json_write_string(&e->out, p, n) == 0 ? 0 : enc_nomem(e);
  case LUA_TTABLE:
    return encode_table(L, e, idx, depth, up);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL)
      return emit(e, "null", 4);
    return enc_fail(e, not_serializable, "light userdata");
  case LUA_TUSERDATA:
    if ((p = plume__binary_get(L, idx, &n)) != NULL)
      return emit_binary(L, e, idx, p, n);
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) { /* "FILE*" */
      r = enc_fail(e, not_serializable, lua_tostring(L, -1));
      lua_pop(L, 1);
      return r;
    }
    return enc_fail(e, not_serializable, "userdata");
  default:
    return enc_fail(e, not_serializable, luaL_typename(L, idx));
  }
}

/* Completes e->error with the path, once the recursion is back at the top. */
static void enc_finish_error(plume__json_enc_t *e) {
  size_t len = strlen(e->error);
  int at = e->path_at < 0 ? -e->path_at - 1 : e->path_at;
  if (at >= (int)sizeof(e->path))
    return;
  snprintf(e->error + len, sizeof(e->error) - len, " at %.*s",
           (int)sizeof(e->path) - at, e->path + at);
}

static int encode_begin(lua_State *L, plume__json_enc_t *e) {
  if (!lua_checkstack(L, 8))
    return enc_fail(e, not_serializable, "nesting too deep");
  plume__json_push_mt(L, 0);
  e->amt = lua_gettop(L);
  plume__json_push_mt(L, 1);
  e->omt = lua_gettop(L);
  push_order(L);
  e->ord = lua_gettop(L);
  e->path_at = (int)sizeof(e->path);
  e->error[0] = '\0';
  return 0;
}

static int encode_end(lua_State *L, plume__json_enc_t *e, int r) {
  lua_pop(L, 3); /* the metatables and the key-order table */
  if (r != 0)
    enc_finish_error(e);
  return r;
}

int plume__json_encode(lua_State *L, int idx, plume__json_enc_t *e) {
  int r;
  idx = lua_absindex(L, idx);
  if ((r = encode_begin(L, e)) != 0)
    return r;
  return encode_end(L, e, encode_value(L, e, idx, 0, NULL));
}

int plume__json_encode_list(lua_State *L, int first, int n,
                            plume__json_enc_t *e) {
  int i, r = 0;
  first = lua_absindex(L, first);
  if ((r = encode_begin(L, e)) != 0)
    return r;
  if (emit(e, "[", 1) != 0)
    return encode_end(L, e, UV_ENOMEM);
  for (i = 0; i < n && r == 0; i++) {
    if (i > 0 && emit(e, ",", 1) != 0)
      return encode_end(L, e, UV_ENOMEM);
    if ((r = encode_value(L, e, first + i, 1, NULL)) != 0)
      path_index(e, i + 1);
  }
  if (r == 0)
    r = emit(e, "]", 1);
  return encode_end(L, e, r);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The Lua functions (plume.core.json) */

static plume__json_enc_t *get_encoder(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static int encoder_gc(lua_State *L) {
  plume__json_enc_free(lua_touserdata(L, 1));
  return 0;
}

/* Drops a large output buffer after use, so one huge result is not kept
** forever. */
static void encoder_trim(plume__json_enc_t *e) {
  if (e->out.cap > 1 << 20)
    plume__buf_free(&e->out);
}

/* encode(v) -> text; raises "result is not serializable: ..." */
static int l_encode(lua_State *L) {
  plume__json_enc_t *e = get_encoder(L);
  int r;
  luaL_checkany(L, 1);
  plume__json_enc_reset(e);
  e->binary = 0;
  e->att_table = 0;
  r = plume__json_encode(L, 1, e);
  if (r != 0) {
    lua_pushstring(L, e->error);
    encoder_trim(e);
    return lua_error(L);
  }
  lua_pushlstring(L, e->out.p, e->out.len); /* text */
  encoder_trim(e);
  return 1;
}

/* encode_placeholders(v) -> text, attachments (binaries as placeholders, in
** order) */
static int l_encode_placeholders(lua_State *L) {
  plume__json_enc_t *e = get_encoder(L);
  int r;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  lua_newtable(L); /* v, atts */
  plume__json_push_mt(L, 0);
  lua_setmetatable(L, 2); /* atts is an array */
  plume__json_enc_reset(e);
  e->binary = 1;
  e->att_table = 2;
  r = plume__json_encode(L, 1, e);
  e->att_table = 0;
  if (r != 0) {
    lua_pushstring(L, e->error);
    encoder_trim(e);
    return lua_error(L);
  }
  lua_pushlstring(L, e->out.p, e->out.len); /* v, atts, text */
  lua_insert(L, 2);                         /* v, text, atts */
  encoder_trim(e);
  return 2;
}

/* decode(text [, attachments]) -> value | nil, err. attachments: binaries or
** strings. */
static int l_decode(lua_State *L) {
  plume__json_enc_t *e = get_encoder(L);
  plume__json_dec_t d;
  size_t n, i, natt = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  memset(&d, 0, sizeof(d));
  d.max_depth = e->max_depth;
  d.natt = -1;
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    natt = lua_rawlen(L, 2);
    luaL_argcheck(L, natt <= 65536, 2, "too many attachments");
    luaL_checkstack(L, (int)natt + 8, "too many attachments");
    for (i = 1; i <= natt; i++) {
      size_t bn;
      const char *bp;
      lua_rawgeti(L, 2, (lua_Integer)i); /* ..., atts[i] */
      if (lua_type(L, -1) == LUA_TSTRING) {
        bp = lua_tolstring(L, -1, &bn);
        plume__binary_push(L, bp, bn);
        lua_remove(L, -2); /* ..., binary */
      } else if (plume__binary_get(L, -1, &bn) == NULL)
        return luaL_error(L, "attachment %d is not a string or binary", (int)i);
    }
    d.att_base = 3;
    d.natt = (int)natt;
  }
  if (plume__json_decode(L, s, n, &d) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "invalid JSON: %s at byte %d", d.error,
                    (int)d.error_at + 1);
    return 2;
  }
  return 1;
}

/* binary(s) -> a plume.binary holding a copy of the string s (or of another
** binary). */
static int l_binary(lua_State *L) {
  size_t n;
  const char *p = plume__binary_get(L, 1, &n);
  if (p == NULL)
    p = luaL_checklstring(L, 1, &n);
  plume__binary_push(L, p, n);
  return 1;
}

static int l_is_binary(lua_State *L) {
  size_t n;
  lua_pushboolean(L, plume__binary_get(L, 1, &n) != NULL);
  return 1;
}

/* Whether the key at idx is one key_cmp can place (a string, or a number JSON
** can write). */
static int is_json_key(lua_State *L, int idx) {
  lua_Number f;
  if (lua_type(L, idx) == LUA_TSTRING || lua_isinteger(L, idx))
    return 1;
  if (lua_type(L, idx) != LUA_TNUMBER)
    return 0;
  f = lua_tonumber(L, idx);
  return !isinf(f) && f == f;
}

/*
** keys(t) -> a list of the keys of t in the order encode writes them (see
** order_keys); keys JSON has no text for (booleans, tables, infinities) come
** last, as next() meets them. The scratch space is a userdata and the key
** values are anchored in a table, not borrowed from t or from the shared
** encoder: building the result allocates, and a finalizer run then may use the
** encoder or change t.
*/
static int l_keys(lua_State *L) {
  objkey_t *keys;
  size_t count = 0, other = 0, i = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) { /* t, key, value */
    lua_pop(L, 1);
    if (is_json_key(L, -1))
      count++;
    else
      other++;
  }
  luaL_argcheck(L, count + other < INT_MAX, 1, "too many keys");
  keys = lua_newuserdatauv(L, count * sizeof(*keys) + 1, 0); /* t, scratch */
  lua_createtable(L, (int)count, 0); /* t, scratch, anchor */
  lua_pushnil(L);
  while (lua_next(L, 1) != 0 && i < count) { /* ..., key, value */
    lua_pop(L, 1);
    if (!is_json_key(L, -1))
      continue;
    fill_key(L, -1, &keys[i]);
    keys[i].at = i + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, 3, (lua_Integer)++i); /* anchor[i] = key */
  }
  lua_settop(L, 3);
  count = i;
  push_order(L); /* t, scratch, anchor, order */
  if (count > 1)
    order_keys(L, 4, 1, keys, count);
  lua_createtable(L, (int)(count + other), 0); /* ..., list */
  for (i = 0; i < count; i++) {
    lua_rawgeti(L, 3, (lua_Integer)keys[i].at);
    lua_rawseti(L, -2, (lua_Integer)i + 1); /* list[i+1] = key */
  }
  if (other > 0) {
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) { /* ..., list, key, value */
      lua_pop(L, 1);
      if (is_json_key(L, -1))
        continue;
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, (lua_Integer)++count); /* list[#list+1] = key */
    }
  }
  return 1;
}

/*
** object_with_order(t, keys) -> t, marked as a JSON object whose members
** encode in the order of the list keys (strings or numbers), then the members
** it does not list, sorted. The list is copied.
*/
static int l_object_with_order(lua_State *L) {
  lua_Integer i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  n = (lua_Integer)lua_rawlen(L, 2);
  luaL_argcheck(L, n < INT_MAX, 2, "too many keys");
  push_order(L); /* t, keys, order */
  lua_pushvalue(L, 1);
  lua_createtable(L, (int)n, 0); /* t, keys, order, t, list */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i); /* ..., list, keys[i] */
    if (!is_json_key(L, -1))
      return luaL_argerror(L, 2, "keys must be strings or finite numbers");
    lua_rawseti(L, -2, i); /* list[i] = keys[i] */
  }
  lua_rawset(L, 3); /* order[t] = list */
  plume__json_push_mt(L, 1);
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

void plume__json_open(lua_State *L, int max_depth) {
  static const luaL_Reg with_encoder[] = {
      {"encode", l_encode},
      {"encode_placeholders", l_encode_placeholders},
      {"decode", l_decode},
      {NULL, NULL}};
  plume__json_enc_t *e;
  luaL_checkstack(L, 6, NULL);
  lua_createtable(L, 0, 8);                /* json */
  e = lua_newuserdatauv(L, sizeof(*e), 0); /* json, enc */
  plume__json_enc_init(e, max_depth);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &enc_mt_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2); /* json, enc, mt */
    lua_pushcfunction(L, encoder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "plume.json.encoder");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &enc_mt_key);
  }
  lua_setmetatable(L, -2);           /* json, enc */
  luaL_setfuncs(L, with_encoder, 1); /* json (enc shared) */
  lua_pushcfunction(L, l_binary);
  lua_setfield(L, -2, "binary");
  lua_pushcfunction(L, l_is_binary);
  lua_setfield(L, -2, "is_binary");
  lua_pushcfunction(L, l_keys);
  lua_setfield(L, -2, "keys");
  lua_pushcfunction(L, l_object_with_order);
  lua_setfield(L, -2, "object_with_order");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null"); /* json.null */
  plume__json_push_mt(L, 0);
  lua_setfield(L, -2, "array_mt");
  plume__json_push_mt(L, 1);
  lua_setfield(L, -2, "object_mt");
}

/* }====== */
