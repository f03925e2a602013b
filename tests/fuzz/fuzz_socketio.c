/*
** fuzz_socketio.c: libFuzzer target for the Socket.IO codec of socketio.c
*(reliability.md
** §4.4 #24-#30, §6): the packet decoder, attachment reassembly, the Lua glue
*and the
** encoders. Input: byte 0 is a mask, the rest is split on 0x1E into Engine.IO
*messages, and
** message i is binary when bit i % 8 of the mask is set. Every complete packet
*must turn
** into Lua values, and its re-encoding must decode again. With
*-DPLUME_FUZZ_MAIN, main()
** replays the files given as arguments and prints "N passed, N failed".
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static plume__json_enc_t enc;
static int violations;

static void violated(const char *what) {
  fprintf(stderr, "invariant broken: %s\n", what);
  violations++;
#ifndef PLUME_FUZZ_MAIN
  abort();
#endif
}

static int is_binary_type(int type) {
  return type == PLUME__SIO_BINARY_EVENT || type == PLUME__SIO_BINARY_ACK;
}

/* The re-encoded packet (text in b, attachments in enc) decodes to the same
 * head. */
static void check_redecode(const plume__buf_t *b,
                           const plume__sio_packet_t *want) {
  plume__sio_decoder_t d;
  int r, i;
  plume__sio_decoder_init(&d, 10, 128);
  r = plume__sio_feed(&d, 0, b->p, b->len);
  for (i = 0; i < enc.natt && r == PLUME__SIO_MORE; i++)
    r = plume__sio_feed(&d, 1, enc.att[i].p, enc.att[i].n);
  if (r != PLUME__SIO_PACKET)
    violated("a re-encoded packet does not decode");
  else if (d.pkt.type != want->type || d.pkt.id != want->id ||
           d.pkt.nsp.n != want->nsp.n ||
           memcmp(d.pkt.nsp.p, want->nsp.p, want->nsp.n) != 0)
    violated("a re-encoded packet decodes differently");
  plume__sio_decoder_free(&d);
}

static void on_packet(const plume__sio_decoder_t *d) {
  const plume__sio_packet_t *pkt = &d->pkt;
  plume__sio_packet_t out;
  plume__buf_t b = {0};
  plume__shared_t *sh;
  const char *err = NULL;
  int n, spread;
  if (pkt->type < 0 || pkt->type > 6 || pkt->type == PLUME__SIO_CONNECT_ERROR ||
      (is_binary_type(pkt->type) != (pkt->attachments > 0)) ||
      pkt->attachments > 10 || pkt->id > PLUME__SIO_MAX_ID)
    violated("decoded packet out of range");
  spread = pkt->type != PLUME__SIO_CONNECT;
  lua_settop(L, 0);
  n = plume__sio_push_data(L, pkt, d->att, 128, spread, &err);
  if (n < 0 || lua_gettop(L) != n) {
    violated("a valid packet does not convert to Lua");
    return;
  }
  out = *pkt;
  if (pkt->type == PLUME__SIO_CONNECT) {
    plume__json_enc_reset(&enc);
    if (n == 1 && plume__json_encode(L, 1, &enc) != 0)
      violated("CONNECT auth does not encode");
    out.data.p = enc.out.p;
    out.data.n = n == 1 ? enc.out.len : 0;
    enc.natt = 0;
  } else if (pkt->type != PLUME__SIO_DISCONNECT) {
    if (plume__sio_encode_args(L, 1, n, &out, &enc) != 0) {
      violated("decoded arguments do not encode");
      return;
    }
  }
  if (plume__sio_encode(&b, &out) != 0)
    violated("encode");
  else
    check_redecode(&b, &out);
  sh = plume__sio_encode_shared(&out, 1);
  if (sh == NULL || sh->len != b.len + 1 || memcmp(sh->data + 1, b.p, b.len))
    violated("shared encoding differs");
  plume__shared_unref(sh);
  plume__buf_free(&b);
  lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  plume__sio_decoder_t d;
  plume__sio_packet_t pkt;
  const char *p, *end, *sep;
  unsigned mask;
  int i = 0, r;
  if (L == NULL) {
    L = luaL_newstate();
    plume__json_enc_init(&enc, 128);
  }
  if (size == 0)
    return 0;
  mask = data[0];
  p = (const char *)data + 1;
  end = (const char *)data + size;
  plume__sio_decoder_init(&d, 10, 128);
  for (;; i++) {
    int binary = (mask >> (i % 8)) & 1;
    sep = memchr(p, 0x1e, (size_t)(end - p));
    if (sep == NULL)
      sep = end;
    if (!binary) /* the stateless decoder agrees with the reassembling one */
      plume__sio_decode(p, (size_t)(sep - p), 10, 128, &pkt, NULL);
    r = plume__sio_feed(&d, binary, p, (size_t)(sep - p));
    if (r == PLUME__SIO_PACKET)
      on_packet(&d);
    else if (r < 0 && (d.expected != 0 || d.error == NULL))
      violated("a failed feed left the decoder armed");
    if (sep == end)
      break;
    p = sep + 1;
  }
  plume__sio_decoder_free(&d);
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
  }
  return 0;
}

#include "replay.h"
#endif
