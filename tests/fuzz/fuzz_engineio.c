/*
** fuzz_engineio.c: libFuzzer target for the Engine.IO codec (engineio_codec.c).
** The first byte picks the decoder: v4 payload, v3 text payload, v3 binary
** payload, a single v4 or v3 packet, a v3 binary frame. A payload that decodes
** must encode again and decode to the same packets. With -DPLUME_FUZZ_MAIN,
** main() replays the files named on the command line.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_ITEMS 1024

/* One decoded packet; its bytes (base64 decoded) are at off in the scratch. */
typedef struct item_s {
  int type, binary;
  size_t off, n;
} item_t;

static int failed;

#ifdef PLUME_FUZZ_MAIN
#define FAIL() (failed = 1)
#else
#define FAIL() abort()
#endif

/* Decodes a whole payload into items. Returns their count, or -1 on a parse
** error (packets before it were still taken). */
static long decode(int proto, int binary, const char *p, size_t n,
                   item_t *items, plume__buf_t *bytes) {
  plume__eio_reader_t r;
  plume__eio_packet_t pkt;
  long count = 0, k;
  int rc;
  bytes->len = 0;
  plume__eio_reader_init(&r, proto, binary, p, n);
  while ((rc = plume__eio_reader_next(&r, &pkt)) == 1) {
    if (count == MAX_ITEMS)
      return count;
    if (plume__buf_reserve(bytes, pkt.n + 1) != 0)
      return -1;
    k = plume__eio_packet_bytes(&pkt, (unsigned char *)bytes->p + bytes->len);
    /* The reader promises that what it returns decodes. */
    if (k < 0 || (size_t)k > pkt.n) {
      FAIL();
      return -1;
    }
    if (!pkt.binary && !plume__eio_utf8_valid(pkt.data, pkt.n))
      FAIL();
    items[count].type = pkt.type;
    items[count].binary = pkt.binary;
    items[count].off = bytes->len;
    items[count].n = (size_t)k;
    bytes->len += (size_t)k;
    count++;
  }
  return rc < 0 ? -1 : count;
}

/* Encodes the items as a payload of kind and checks that it decodes back. */
static void round_trip(int kind, const item_t *items, long count,
                       const plume__buf_t *bytes) {
  static item_t again[MAX_ITEMS];
  plume__eio_qent_t *q = calloc((size_t)count + 1, sizeof(*q));
  plume__buf_t bytes2 = {NULL, 0, 0};
  size_t size, n;
  long i, count2;
  char *dst;
  for (i = 0; i < count; i++) {
    const char *b = bytes->p + items[i].off;
    if (items[i].binary && items[i].type != PLUME__EIO_MESSAGE)
      goto done; /* only messages are queued as binary */
    if (items[i].binary) {
      q[i].sh = plume__shared_new(b, items[i].n);
    } else {
      q[i].sh = plume__shared_alloc(items[i].n + 1);
      if (q[i].sh != NULL) {
        q[i].sh->data[0] = (char)('0' + items[i].type);
        memcpy(q[i].sh->data + 1, b, items[i].n);
      }
    }
    if (q[i].sh == NULL)
      goto done;
    q[i].binary = (uint8_t)items[i].binary;
  }
  size = plume__eio_payload_size(kind, q, (size_t)count);
  dst = malloc(size ? size : 1);
  n = plume__eio_payload_encode(kind, q, (size_t)count, dst);
  if (n != size)
    FAIL();
  count2 = decode(kind == PLUME__EIO_PAYLOAD_V4 ? 4 : 3,
                  kind == PLUME__EIO_PAYLOAD_V3_BINARY, dst, n, again, &bytes2);
  if (count2 != count)
    FAIL();
  for (i = 0; i < count && i < count2; i++) {
    if (again[i].type != items[i].type || again[i].binary != items[i].binary ||
        again[i].n != items[i].n ||
        (items[i].n > 0 && memcmp(bytes2.p + again[i].off,
                                  bytes->p + items[i].off, items[i].n) != 0))
      FAIL();
  }
  free(dst);
done:
  for (i = 0; i < count; i++)
    plume__shared_unref(q[i].sh);
  free(q);
  plume__buf_free(&bytes2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static item_t items[MAX_ITEMS];
  static const int kinds[3] = {PLUME__EIO_PAYLOAD_V4,
                               PLUME__EIO_PAYLOAD_V3_TEXT,
                               PLUME__EIO_PAYLOAD_V3_BINARY};
  plume__buf_t bytes = {NULL, 0, 0};
  plume__eio_packet_t pkt;
  const char *p = (const char *)data + 1;
  size_t n = size > 0 ? size - 1 : 0;
  unsigned char *out;
  long count;
  int mode, rc;
  if (size == 0)
    return 0;
  mode = data[0] % 6;
  switch (mode) {
  case 0:
  case 1:
  case 2:
    count = decode(mode == 0 ? 4 : 3, mode == 2, p, n, items, &bytes);
    if (count >= 0 && count < MAX_ITEMS)
      round_trip(kinds[mode], items, count, &bytes);
    break;
  case 3:
  case 4:
  case 5:
    if (mode == 5)
      rc = plume__eio_decode_binary_frame(3, p, n, &pkt);
    else
      rc = plume__eio_decode_packet(mode == 3 ? 4 : 3, p, n, &pkt);
    if (rc == 0) {
      out = malloc(pkt.n + 1);
      if (plume__eio_packet_bytes(&pkt, out) < 0)
        FAIL();
      free(out);
    }
    if (plume__eio_utf16_len(p, n) >= 0 && !plume__eio_utf8_valid(p, n))
      FAIL();
    break;
  }
  plume__buf_free(&bytes);
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
