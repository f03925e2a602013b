/*
** engineio_codec.c: the Engine.IO wire codec, v4 and v3, pure (no loop, no
** sessions) so it is tested and fuzzed alone. Below: bodies from http.c and
** messages from websocket.c; above: the sessions of engineio.c. protocol.md
** §2.3 (packets, v4 payloads: \x1e, b<base64>) and §7 (v3: <len>: in UTF-16
** units, b<type><base64>, 0x00/0x01 binary payloads, binary frames).
*/
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------------- */
/* UTF-8 */

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is
** invalid (overlong forms, surrogates and code points above U+10FFFF are
** invalid). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
    if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
    if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

int plume__eio_utf8_valid(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i = 0, k;
  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    k = utf8_seq(u + i, n - i);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

long plume__eio_utf16_len(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i = 0, units = 0, k;
  while (i < n) {
    k = utf8_seq(u + i, n - i);
    if (k == 0)
      return -1;
    /* 4-byte sequences are surrogate pairs in UTF-16. */
    units += k == 4 ? 2 : 1;
    i += k;
  }
  return (long)units;
}

/* UTF-16 units of text assumed to be UTF-8, without validation: the encoder
** must not fail on what the layer above queued. Continuation bytes count
** nothing. */
static size_t utf16_units_lenient(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i, units = 0;
  for (i = 0; i < n; i++) {
    if ((u[i] & 0xC0) != 0x80)
      units++;
    if (u[i] >= 0xF0)
      units++;
  }
  return units;
}

/* Bytes of valid UTF-8 at p (at most n) that make exactly units UTF-16 units,
** or -1 when the text ends first, is invalid, or the count ends inside a
** surrogate pair. */
static long take_utf16(const char *p, size_t n, size_t units) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i = 0, got = 0, k;
  while (got < units) {
    if (i >= n)
      return -1;
    k = utf8_seq(u + i, n - i);
    if (k == 0)
      return -1;
    got += k == 4 ? 2 : 1;
    i += k;
  }
  return got == units ? (long)i : -1;
}

/* ------------------------------------------------------------------------- */
/* Single packets */

static int b64_value(char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+')
    return 62;
  return ch == '/' ? 63 : -1;
}

/* 1 when p is canonical padded base64, exactly what plume__base64_decode
** accepts: checked here so that a bad "b" packet is a parse error of the
** payload, not of its delivery. */
static int b64_valid(const char *p, size_t n) {
  size_t i, pad = 0;
  int last;
  if (n % 4 != 0)
    return 0;
  if (n == 0)
    return 1;
  if (p[n - 1] == '=')
    pad = p[n - 2] == '=' ? 2 : 1;
  for (i = 0; i < n - pad; i++)
    if (b64_value(p[i]) < 0)
      return 0;
  last = b64_value(p[n - pad - 1]);
  /* The bits past the last whole byte must be zero. */
  return pad == 0 || (last & (pad == 2 ? 15 : 3)) == 0;
}

int plume__eio_decode_packet(int proto, const char *p, size_t n,
                             plume__eio_packet_t *pkt) {
  memset(pkt, 0, sizeof(*pkt));
  if (n == 0)
    return PLUME_EPROTO;
  if (p[0] == 'b') {
    /* v4: "b" + base64 is always a message; v3 has the type after the "b". */
    pkt->binary = 1;
    pkt->b64 = 1;
    if (proto == 3) {
      if (n < 2 || p[1] < '0' || p[1] > '6')
        return PLUME_EPROTO;
      pkt->type = p[1] - '0';
      pkt->data = p + 2;
      pkt->n = n - 2;
    } else {
      pkt->type = PLUME__EIO_MESSAGE;
      pkt->data = p + 1;
      pkt->n = n - 1;
    }
    return b64_valid(pkt->data, pkt->n) ? 0 : PLUME_EPROTO;
  }
  if (p[0] < '0' || p[0] > '6')
    return PLUME_EPROTO;
  pkt->type = p[0] - '0';
  pkt->data = p + 1;
  pkt->n = n - 1;
  return 0;
}

int plume__eio_decode_binary_frame(int proto, const char *p, size_t n,
                                   plume__eio_packet_t *pkt) {
  memset(pkt, 0, sizeof(*pkt));
  pkt->binary = 1;
  if (proto != 3) {
    pkt->type = PLUME__EIO_MESSAGE;
    pkt->data = p;
    pkt->n = n;
    return 0;
  }
  /* v3: the first byte is the packet type as a number, not a digit. */
  if (n == 0 || (unsigned char)p[0] > PLUME__EIO_NOOP)
    return PLUME_EPROTO;
  pkt->type = (unsigned char)p[0];
  pkt->data = p + 1;
  pkt->n = n - 1;
  return 0;
}

long plume__eio_packet_bytes(const plume__eio_packet_t *pkt,
                             unsigned char *dst) {
  if (!pkt->b64) {
    if (pkt->n > 0)
      memcpy(dst, pkt->data, pkt->n);
    return (long)pkt->n;
  }
  return plume__base64_decode(dst, pkt->data, pkt->n);
}

/* ------------------------------------------------------------------------- */
/* Payload decoding */

void plume__eio_reader_init(plume__eio_reader_t *r, int proto, int binary,
                            const char *p, size_t n) {
  r->p = p;
  r->n = n;
  r->off = 0;
  r->proto = (uint8_t)(proto == 3 ? 3 : 4);
  r->binary = (uint8_t)(proto == 3 && binary);
  r->count = 0;
}

static int next_v4(plume__eio_reader_t *r, plume__eio_packet_t *pkt) {
  const char *start, *end;
  size_t len;
  if (r->off > r->n)
    return 0;
  start = r->p + r->off;
  end = r->n > r->off ? memchr(start, 0x1e, r->n - r->off) : NULL;
  len = end != NULL ? (size_t)(end - start) : r->n - r->off;
  /* Past the separator, or past the end after the last packet. */
  r->off += len + 1;
  if (!plume__eio_utf8_valid(start, len) ||
      plume__eio_decode_packet(4, start, len, pkt) != 0)
    return PLUME_EPROTO;
  r->count++;
  return 1;
}

static int next_v3_text(plume__eio_reader_t *r, plume__eio_packet_t *pkt) {
  for (;;) {
    size_t units = 0, digits = 0;
    long len;
    if (r->off >= r->n)
      return r->count > 0 || r->n > 0 ? 0 : PLUME_EPROTO;
    while (r->off < r->n && r->p[r->off] != ':') {
      char ch = r->p[r->off++];
      if (ch < '0' || ch > '9' || ++digits > 9)
        return PLUME_EPROTO;
      units = units * 10 + (size_t)(ch - '0');
    }
    if (r->off >= r->n || digits == 0)
      return PLUME_EPROTO;
    r->off++; /* ':' */
    len = take_utf16(r->p + r->off, r->n - r->off, units);
    if (len < 0)
      return PLUME_EPROTO;
    r->off += (size_t)len;
    if (len == 0)
      continue; /* "0:" is an empty payload, not a packet */
    if (plume__eio_decode_packet(3, r->p + r->off - (size_t)len, (size_t)len,
                                 pkt) != 0)
      return PLUME_EPROTO;
    r->count++;
    return 1;
  }
}

static int next_v3_binary(plume__eio_reader_t *r, plume__eio_packet_t *pkt) {
  const unsigned char *u = (const unsigned char *)r->p;
  size_t len = 0, digits = 0;
  int is_string;
  if (r->off >= r->n)
    return r->count > 0 ? 0 : PLUME_EPROTO;
  if (u[r->off] > 1)
    return PLUME_EPROTO;
  is_string = u[r->off++] == 0;
  /* The length is one byte per decimal digit, ended by 0xFF. */
  while (r->off < r->n && u[r->off] != 0xFF) {
    if (u[r->off] > 9 || ++digits > 9)
      return PLUME_EPROTO;
    len = len * 10 + u[r->off++];
  }
  if (r->off >= r->n || digits == 0 || len == 0 || len > r->n - r->off - 1)
    return PLUME_EPROTO;
  r->off++; /* 0xFF */
  r->off += len;
  if (is_string) {
    const char *s = r->p + r->off - len;
    if (!plume__eio_utf8_valid(s, len) ||
        plume__eio_decode_packet(3, s, len, pkt) != 0)
      return PLUME_EPROTO;
  } else if (plume__eio_decode_binary_frame(3, r->p + r->off - len, len, pkt) !=
             0) {
    return PLUME_EPROTO;
  }
  r->count++;
  return 1;
}

int plume__eio_reader_next(plume__eio_reader_t *r, plume__eio_packet_t *pkt) {
  if (r->proto == 4)
    return next_v4(r, pkt);
  return r->binary ? next_v3_binary(r, pkt) : next_v3_text(r, pkt);
}

/* ------------------------------------------------------------------------- */
/* Payload encoding */

static size_t count_digits(size_t v) {
  size_t d = 1;
  while (v >= 10) {
    v /= 10;
    d++;
  }
  return d;
}

/* Writes v in decimal: ASCII digits, or (raw) one byte per digit value. */
static size_t put_number(char *dst, size_t v, int raw) {
  size_t d = count_digits(v), i;
  for (i = d; i > 0; i--) {
    dst[i - 1] = (char)(raw ? v % 10 : '0' + v % 10);
    v /= 10;
  }
  return d;
}

size_t plume__eio_payload_size(int kind, const plume__eio_qent_t *q,
                               size_t nq) {
  size_t i, total = 0, len, units;
  if (kind == PLUME__EIO_PAYLOAD_V3_TEXT && nq == 0)
    return 2; /* "0:" */
  for (i = 0; i < nq; i++) {
    len = q[i].sh->len;
    switch (kind) {
    case PLUME__EIO_PAYLOAD_V4:
      total += (i > 0) + (q[i].binary ? 1 + plume__base64_len(len) : len);
      break;
    case PLUME__EIO_PAYLOAD_V3_TEXT:
      units = q[i].binary ? 2 + plume__base64_len(len)
                          : utf16_units_lenient(q[i].sh->data, len);
      total += count_digits(units) + 1 + (q[i].binary ? units : len);
      break;
    default:
      len += q[i].binary; /* the type byte */
      total += 1 + count_digits(len) + 1 + len;
      break;
    }
  }
  return total;
}

size_t plume__eio_payload_encode(int kind, const plume__eio_qent_t *q,
                                 size_t nq, char *dst) {
  size_t i, o = 0, len, units;
  if (kind == PLUME__EIO_PAYLOAD_V3_TEXT && nq == 0) {
    memcpy(dst, "0:", 2);
    return 2;
  }
  for (i = 0; i < nq; i++) {
    const char *data = q[i].sh->data;
    len = q[i].sh->len;
    switch (kind) {
    case PLUME__EIO_PAYLOAD_V4:
      if (i > 0)
        dst[o++] = 0x1e;
      if (q[i].binary) {
        dst[o++] = 'b';
        o += plume__base64_encode(dst + o, (const unsigned char *)data, len);
      } else {
        memcpy(dst + o, data, len);
        o += len;
      }
      break;
    case PLUME__EIO_PAYLOAD_V3_TEXT:
      if (q[i].binary) {
        units = 2 + plume__base64_len(len);
        o += put_number(dst + o, units, 0);
        memcpy(dst + o, ":b4", 3);
        o += 3;
        o += plume__base64_encode(dst + o, (const unsigned char *)data, len);
      } else {
        o += put_number(dst + o, utf16_units_lenient(data, len), 0);
        dst[o++] = ':';
        memcpy(dst + o, data, len);
        o += len;
      }
      break;
    default:
      dst[o++] = (char)(q[i].binary ? 1 : 0);
      o += put_number(dst + o, len + q[i].binary, 1);
      dst[o++] = (char)0xFF;
      if (q[i].binary)
        dst[o++] = PLUME__EIO_MESSAGE;
      if (len > 0)
        memcpy(dst + o, data, len);
      o += len;
      break;
    }
  }
  return o;
}
