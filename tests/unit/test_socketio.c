/*
** test_socketio.c: the Socket.IO packet codec of socketio.c. Every decoder
** input of reliability.md §1.2 and §4.4 #24-#30, the suite's packets
** (protocol.md §9.2, §4.4), ack id limits, namespaces, attachment reassembly,
** the encoder outputs of §3.3 and §7, and the Lua glue that turns payloads into
** Lua values and back, byte for byte.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

#include "check.h"
#include "internal.h"

#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

static lua_State *L;

enum { OK = 0, BAD = PLUME_EPROTO, BIG = PLUME_ETOOBIG };

/* Decoder rows. Strings are Socket.IO packets (the Engine.IO "4" already
** removed). */
static const struct {
  const char *in;
  int code;
  const char *err; /* expected message when code != OK */
  int type, attachments;
  const char *nsp;
  long long id;
  const char *data;
} decodes[] = {
    /* socket.io-parser test/parser.js: "invalid payload" */
    {"442[\"some\",\"data\"", BAD, "CONNECT_ERROR from a client", 0, 0, 0, 0,
     0},
    {"0/admin,\"invalid\"", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"0[]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"1/admin,{}", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2/admin,\"invalid", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2/admin,{}", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[{\"toString\":\"foo\"}]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[true,\"foo\"]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[null,\"bar\"]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[\"connect\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"disconnect\",\"123\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    /* "Illegal attachments", unknown type */
    {"5", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"51", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"5a-", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"51.23-", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"6-[]", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"999", BAD, "unknown packet type", 0, 0, 0, 0, 0},
    {"", BAD, "unknown packet type", 0, 0, 0, 0, 0},
    {"7", BAD, "unknown packet type", 0, 0, 0, 0, 0},
    {"abc", BAD, "unknown packet type", 0, 0, 0, 0, 0},
    /* the conformance suite (protocol.md §9.2, §4.4) */
    {"0", OK, 0, PLUME__SIO_CONNECT, 0, "/", -1, ""},
    {"0{\"token\":\"123\"}", OK, 0, PLUME__SIO_CONNECT, 0, "/", -1,
     "{\"token\":\"123\"}"},
    {"0/custom,", OK, 0, PLUME__SIO_CONNECT, 0, "/custom", -1, ""},
    {"0/custom,{\"token\":\"abc\"}", OK, 0, PLUME__SIO_CONNECT, 0, "/custom",
     -1, "{\"token\":\"abc\"}"},
    {"0/random", OK, 0, PLUME__SIO_CONNECT, 0, "/random", -1, ""},
    {"0/custom?token=abc,", OK, 0, PLUME__SIO_CONNECT, 0, "/custom?token=abc",
     -1, ""},
    {"1", OK, 0, PLUME__SIO_DISCONNECT, 0, "/", -1, ""},
    {"1/custom", OK, 0, PLUME__SIO_DISCONNECT, 0, "/custom", -1, ""},
    {"1/custom,", OK, 0, PLUME__SIO_DISCONNECT, 0, "/custom", -1, ""},
    {"2[\"message\",1,\"2\",{\"3\":[true]}]", OK, 0, PLUME__SIO_EVENT, 0, "/",
     -1, "[\"message\",1,\"2\",{\"3\":[true]}]"},
    {"2[\"message\",\"message to main namespace\"]", OK, 0, PLUME__SIO_EVENT, 0,
     "/", -1, "[\"message\",\"message to main namespace\"]"},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", OK, 0,
     PLUME__SIO_EVENT, 0, "/", 456,
     "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]"},
    {"52-[\"message\"," PH(0) "," PH(1) "]", OK, 0, PLUME__SIO_BINARY_EVENT, 2,
     "/", -1, "[\"message\"," PH(0) "," PH(1) "]"},
    {"52-789[\"message-with-ack\"," PH(0) "," PH(1) "]", OK, 0,
     PLUME__SIO_BINARY_EVENT, 2, "/", 789,
     "[\"message-with-ack\"," PH(0) "," PH(1) "]"},
    {"51-[\"message\"," PH(0) "]", OK, 0, PLUME__SIO_BINARY_EVENT, 1, "/", -1,
     "[\"message\"," PH(0) "]"},
    {"2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", BAD,
     "invalid payload", 0, 0, 0, 0, 0},
    {"2{}", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2/admin,", BAD, "invalid payload", 0, 0, 0, 0, 0},
    /* §4.4 #25: reserved and odd event names */
    {"2[\"error\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[\"error\"]"},
    {"2[\"connect_error\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"disconnecting\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"newListener\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"removeListener\",1]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"\\u0063onnect\"]", BAD, "reserved event name", 0, 0, 0, 0, 0},
    {"2[\"Connect\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[\"Connect\"]"},
    {"2[null]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[{}]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[[\"x\"]]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[123]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[123]"},
    {"2[-1.5,\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[-1.5,\"x\"]"},
    {"2[\"\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[\"\"]"},
    /* §4.4 #26: ack ids */
    {"21e9[\"x\"]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2-1[\"x\"]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"212345678901234567890[\"x\"]", BAD, "invalid ack id", 0, 0, 0, 0, 0},
    {"29007199254740991[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/",
     9007199254740991LL, "[\"x\"]"},
    {"29007199254740992[\"x\"]", BAD, "invalid ack id", 0, 0, 0, 0, 0},
    {"20000000000000000000000007[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", 7,
     "[\"x\"]"},
    {"2007[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", 7, "[\"x\"]"},
    {"20[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", 0, "[\"x\"]"},
    {"3999[]", OK, 0, PLUME__SIO_ACK, 0, "/", 999, "[]"},
    {"3/admin,13[\"bar\"]", OK, 0, PLUME__SIO_ACK, 0, "/admin", 13,
     "[\"bar\"]"},
    {"3[1]", OK, 0, PLUME__SIO_ACK, 0, "/", -1, "[1]"},
    {"3", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"312{}", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"312\"x\"", BAD, "invalid payload", 0, 0, 0, 0, 0},
    /* §4.4 #27: attachment attacks */
    {"511-[\"x\"]", BIG, "too many attachments", 0, 0, 0, 0, 0},
    {"51000000-[\"x\"]", BIG, "too many attachments", 0, 0, 0, 0, 0},
    {"599999999999999999999999-[\"x\"]", BIG, "too many attachments", 0, 0, 0,
     0, 0},
    {"510-[\"x\"]", OK, 0, PLUME__SIO_BINARY_EVENT, 10, "/", -1, "[\"x\"]"},
    {"51-[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]", BAD,
     "illegal attachments", 0, 0, 0, 0, 0},
    {"51-[\"x\",{\"_placeholder\":true,\"num\":-1}]", BAD,
     "illegal attachments", 0, 0, 0, 0, 0},
    {"51-[\"x\",{\"_placeholder\":true,\"num\":1}]", BAD, "illegal attachments",
     0, 0, 0, 0, 0},
    {"51-[\"x\",{\"_placeholder\":true,\"num\":{}}]", BAD,
     "illegal attachments", 0, 0, 0, 0, 0},
    {"51-[\"x\",{\"_placeholder\":true,\"num\":0.5}]", BAD,
     "illegal attachments", 0, 0, 0, 0, 0},
    {"51-[\"x\",{\"_placeholder\":true}]", BAD, "illegal attachments", 0, 0, 0,
     0, 0},
    {"2[\"x\",{\"_placeholder\":true,\"num\":5}]", OK, 0, PLUME__SIO_EVENT, 0,
     "/", -1, "[\"x\",{\"_placeholder\":true,\"num\":5}]"},
    {"2[\"x\",{\"__proto__\":{\"a\":1}}]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1,
     "[\"x\",{\"__proto__\":{\"a\":1}}]"},
    {"61-15[\"bar\"," PH(0) "]", OK, 0, PLUME__SIO_BINARY_ACK, 1, "/", 15,
     "[\"bar\"," PH(0) "]"},
    {"61-/admin,15[" PH(0) "]", OK, 0, PLUME__SIO_BINARY_ACK, 1, "/admin", 15,
     "[" PH(0) "]"},
    {"61-{}", BAD, "invalid payload", 0, 0, 0, 0, 0},
    /* §4.4 #28: the zero-attachment trap cannot be armed */
    {"50-[\"x\"]", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    {"500-[\"x\"]", BAD, "illegal attachments", 0, 0, 0, 0, 0},
    /* §4.4 #30: JSON bombs and odd numbers */
    {"2[\"x\",NaN]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[\"x\",Infinity]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[\"x\",0x10]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[\"x\",1e400]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2[\"x\",\"\\ud800\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1,
     "[\"x\",\"\\ud800\"]"},
    {"2[\"x\",12345678901234567890]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1,
     "[\"x\",12345678901234567890]"},
    {"2[\"x\",{\"a\":1,\"a\":2}]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1,
     "[\"x\",{\"a\":1,\"a\":2}]"},
    /* namespaces */
    {"2/admin,[\"bar\"]", OK, 0, PLUME__SIO_EVENT, 0, "/admin", -1,
     "[\"bar\"]"},
    {"2/admin,12[\"bar\"]", OK, 0, PLUME__SIO_EVENT, 0, "/admin", 12,
     "[\"bar\"]"},
    {"2/admin[\"bar\"]", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"2/,[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/", -1, "[\"x\"]"},
    {"2/a/b,[\"x\"]", OK, 0, PLUME__SIO_EVENT, 0, "/a/b", -1, "[\"x\"]"},
    {"0/dyn-12?x=1,", OK, 0, PLUME__SIO_CONNECT, 0, "/dyn-12?x=1", -1, ""},
    {"4{\"message\":\"x\"}", BAD, "CONNECT_ERROR from a client", 0, 0, 0, 0, 0},
    {"0\"x\"", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"0{} ", OK, 0, PLUME__SIO_CONNECT, 0, "/", -1, "{} "},
    {"0{},", BAD, "invalid payload", 0, 0, 0, 0, 0},
    {"1\"x\"", BAD, "invalid payload", 0, 0, 0, 0, 0},
};

static void test_decode_table(void) {
  size_t i;
  for (i = 0; i < sizeof(decodes) / sizeof(decodes[0]); i++) {
    plume__sio_packet_t pkt;
    const char *err = NULL;
    int r = plume__sio_decode(decodes[i].in, strlen(decodes[i].in), 10, 128,
                              &pkt, &err);
    int ok = r == decodes[i].code;
    if (ok && r != 0)
      ok = err != NULL && strcmp(err, decodes[i].err) == 0;
    if (ok && r == 0)
      ok = pkt.type == decodes[i].type &&
           pkt.attachments == decodes[i].attachments &&
           pkt.nsp.n == strlen(decodes[i].nsp) &&
           memcmp(pkt.nsp.p, decodes[i].nsp, pkt.nsp.n) == 0 &&
           pkt.id == decodes[i].id && pkt.data.n == strlen(decodes[i].data) &&
           memcmp(pkt.data.p, decodes[i].data, pkt.data.n) == 0;
    if (!ok) {
      printf("#   decode %s: got %d (%s) type %d att %d nsp %.*s id %lld "
             "data %.*s\n",
             decodes[i].in, r, err ? err : "", pkt.type, pkt.attachments,
             (int)pkt.nsp.n, pkt.nsp.p, (long long)pkt.id, (int)pkt.data.n,
             pkt.data.p);
      check_current_failed++;
    }
  }
}

static void test_decode_details(void) {
  plume__sio_packet_t pkt;
  const char *err;
  char *s;
  size_t n = 100001, i;
  const char *p = "2[\"ev\\\"x\",1]";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, &err), 0);
  CHECK_MEM(pkt.event.p, pkt.event.n, "\"ev\\\"x\"");
  CHECK(plume__json_string_eq(pkt.event, "ev\"x"));
  p = "2[42]";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, &err), 0);
  CHECK_MEM(pkt.event.p, pkt.event.n, "42");
  p = "0{}";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, NULL), 0);
  CHECK_EQ(pkt.event.n, 0);
  /* NULL err is allowed */
  CHECK_EQ(plume__sio_decode("9", 1, 10, 128, &pkt, NULL), PLUME_EPROTO);
  /* max_attachments from the options */
  p = "53-[\"x\"]";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 2, 128, &pkt, &err), PLUME_ETOOBIG);
  CHECK_EQ(plume__sio_decode(p, strlen(p), 3, 128, &pkt, &err), 0);
  /* 100k nested '[': refused by the depth cap, no recursion */
  s = malloc(n + 1);
  s[0] = '2';
  for (i = 1; i < n; i++)
    s[i] = '[';
  CHECK_EQ(plume__sio_decode(s, n, 10, 128, &pkt, &err), PLUME_ETOOBIG);
  CHECK_STR(err, "payload nested too deep");
  /* depth counts the payload array: 128 levels pass, 129 do not */
  memcpy(s + 1, "[\"x\",", 5);
  for (i = 6; i < 6 + 127; i++)
    s[i] = '[';
  for (; i < 6 + 127 + 128; i++)
    s[i] = ']';
  CHECK_EQ(plume__sio_decode(s, i, 10, 128, &pkt, &err), 0);
  CHECK_EQ(plume__sio_decode(s, i, 10, 127, &pkt, &err), PLUME_ETOOBIG);
  free(s);
}

/* ------------------------------------------------------------------------- */

static void test_feed_binary(void) {
  plume__sio_decoder_t d;
  const char *p = "52-[\"message\"," PH(0) "," PH(1) "]";
  plume__sio_decoder_init(&d, 10, 128);
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_MORE);
  CHECK_EQ(plume__sio_feed(&d, 1, "\x01\x02\x03", 3), PLUME__SIO_MORE);
  CHECK_EQ(plume__sio_feed(&d, 1, "\x04\x05\x06", 3), PLUME__SIO_PACKET);
  CHECK_EQ(d.pkt.type, PLUME__SIO_BINARY_EVENT);
  CHECK_EQ(d.pkt.attachments, 2);
  CHECK_MEM(d.att[0].p, d.att[0].n, "\x01\x02\x03");
  CHECK_MEM(d.att[1].p, d.att[1].n, "\x04\x05\x06");
  CHECK_MEM(d.pkt.data.p, d.pkt.data.n, "[\"message\"," PH(0) "," PH(1) "]");
  CHECK_EQ(d.expected, 0);
  /* idle again: a stray binary is an error */
  CHECK_EQ(plume__sio_feed(&d, 1, "\x07", 1), PLUME_EPROTO);
  CHECK_STR(d.error, "got binary data when not reconstructing a packet");
  /* and the decoder still works afterwards */
  p = "2[\"x\"]";
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_PACKET);
  CHECK_EQ(d.pkt.type, PLUME__SIO_EVENT);
  /* empty attachments are fine */
  p = "61-3[" PH(0) "]";
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_MORE);
  CHECK_EQ(plume__sio_feed(&d, 1, "", 0), PLUME__SIO_PACKET);
  CHECK_EQ(d.att[0].n, 0);
  CHECK(d.att[0].p != NULL);
  CHECK_EQ(d.pkt.id, 3);
  plume__sio_decoder_free(&d);
}

static void test_feed_errors(void) {
  plume__sio_decoder_t d;
  const char *p = "51-[\"x\"," PH(0) "]";
  int i, r, errors = 0;
  plume__sio_decoder_init(&d, 10, 128);
  /* binary with nothing pending */
  CHECK_EQ(plume__sio_feed(&d, 1, "\x01", 1), PLUME_EPROTO);
  CHECK_STR(d.error, "got binary data when not reconstructing a packet");
  /* text while reconstructing */
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_MORE);
  CHECK_EQ(plume__sio_feed(&d, 0, "2[\"x\"]", 6), PLUME_EPROTO);
  CHECK_STR(d.error, "got plaintext data when reconstructing a packet");
  CHECK_EQ(d.expected, 0);
  /* the zero-attachment trap (CVE-2026-69185): 50-["x"] then 100k binary
  ** frames: the header is refused and nothing is ever buffered */
  CHECK_EQ(plume__sio_feed(&d, 0, "50-[\"x\"]", 8), PLUME_EPROTO);
  CHECK_STR(d.error, "illegal attachments");
  for (i = 0; i < 100000; i++) {
    r = plume__sio_feed(&d, 1, "0123456789", 10);
    errors += r == PLUME_EPROTO;
  }
  CHECK_EQ(errors, 100000);
  CHECK_EQ(d.bin.len, 0);
  CHECK_EQ(d.expected, 0);
  /* too many attachments (CVE-2026-33151) */
  CHECK_EQ(plume__sio_feed(&d, 0, "511-[\"x\"]", 9), PLUME_ETOOBIG);
  CHECK_STR(d.error, "too many attachments");
  CHECK_EQ(plume__sio_feed(&d, 0, "4{}", 3), PLUME_EPROTO);
  CHECK_EQ(plume__sio_feed(&d, 0, "", 0), PLUME_EPROTO);
  CHECK_STR(d.error, "unknown packet type");
  /* after a header error mid-stream, text decodes fresh */
  CHECK_EQ(plume__sio_feed(&d, 0, "1", 1), PLUME__SIO_PACKET);
  CHECK_EQ(d.pkt.type, PLUME__SIO_DISCONNECT);
  plume__sio_decoder_free(&d);
  plume__sio_decoder_free(&d); /* twice is harmless */
}

static void test_feed_max(void) {
  plume__sio_decoder_t d;
  char big[70000];
  const char *p = "510-[\"x\"]";
  int i;
  plume__sio_decoder_init(&d, 0, 0); /* defaults: 10 attachments, depth 128 */
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_MORE);
  memset(big, 'z', sizeof(big));
  for (i = 0; i < 9; i++)
    CHECK_EQ(plume__sio_feed(&d, 1, big, sizeof(big)), PLUME__SIO_MORE);
  CHECK_EQ(plume__sio_feed(&d, 1, "end", 3), PLUME__SIO_PACKET);
  CHECK_EQ(d.att[9].n, 3);
  CHECK_MEM(d.att[9].p, 3, "end");
  CHECK_EQ(d.att[8].n, sizeof(big));
  CHECK(d.att[8].p == d.att[7].p + sizeof(big));
  /* the large buffer is let go when the next binary packet starts */
  p = "51-[\"x\"]";
  CHECK_EQ(plume__sio_feed(&d, 0, p, strlen(p)), PLUME__SIO_MORE);
  CHECK_EQ(d.bin.cap, 0);
  CHECK_EQ(plume__sio_feed(&d, 1, "a", 1), PLUME__SIO_PACKET);
  plume__sio_decoder_free(&d);
}

/* ------------------------------------------------------------------------- */

static plume_slice_t slice(const char *s) {
  plume_slice_t sl;
  sl.p = s;
  sl.n = strlen(s);
  return sl;
}

static plume__sio_packet_t packet(int type, int att, const char *nsp,
                                  long long id, const char *data) {
  plume__sio_packet_t pkt;
  memset(&pkt, 0, sizeof(pkt));
  pkt.type = type;
  pkt.attachments = att;
  pkt.nsp = slice(nsp);
  pkt.id = id;
  pkt.data = slice(data);
  return pkt;
}

static void test_encode(void) {
  static const struct {
    int type, att;
    const char *nsp;
    long long id;
    const char *data, *out;
  } rows[] = {
      {PLUME__SIO_CONNECT, 0, "/", -1, "{\"sid\":\"x\"}", "0{\"sid\":\"x\"}"},
      {PLUME__SIO_DISCONNECT, 0, "/", -1, "", "1"},
      {PLUME__SIO_DISCONNECT, 0, "/admin", -1, "", "1/admin,"},
      {PLUME__SIO_EVENT, 0, "/", -1, "[\"hey\",\"Jude\"]",
       "2[\"hey\",\"Jude\"]"},
      {PLUME__SIO_EVENT, 0, "/admin", -1, "[\"bar\"]", "2/admin,[\"bar\"]"},
      {PLUME__SIO_EVENT, 0, "", 12, "[\"foo\"]", "212[\"foo\"]"},
      {PLUME__SIO_EVENT, 0, "/admin", 12, "[\"bar\"]", "2/admin,12[\"bar\"]"},
      {PLUME__SIO_ACK, 0, "/admin", 13, "[\"bar\"]", "3/admin,13[\"bar\"]"},
      {PLUME__SIO_ACK, 0, "/", 456, "[1,\"2\",{\"3\":[false]}]",
       "3456[1,\"2\",{\"3\":[false]}]"},
      {PLUME__SIO_ACK, 0, "/", 0, "[]", "30[]"},
      {PLUME__SIO_CONNECT_ERROR, 0, "/random", -1,
       "{\"message\":\"Invalid namespace\"}",
       "4/random,{\"message\":\"Invalid namespace\"}"},
      {PLUME__SIO_BINARY_EVENT, 1, "/", -1, "[\"baz\"," PH(0) "]",
       "51-[\"baz\"," PH(0) "]"},
      {PLUME__SIO_BINARY_ACK, 1, "/", 15, "[\"bar\"," PH(0) "]",
       "61-15[\"bar\"," PH(0) "]"},
      {PLUME__SIO_BINARY_EVENT, 10, "/x", 9007199254740991LL, "[]",
       "510-/x,9007199254740991[]"},
  };
  plume__buf_t b = {0};
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    plume__sio_packet_t pkt = packet(rows[i].type, rows[i].att, rows[i].nsp,
                                     rows[i].id, rows[i].data);
    plume__shared_t *sh;
    b.len = 0;
    CHECK_EQ(plume__sio_encode(&b, &pkt), 0);
    CHECK_MEM(b.p, b.len, rows[i].out);
    sh = plume__sio_encode_shared(&pkt, 1);
    CHECK(sh != NULL && sh->data[0] == '4' && sh->refs == 1);
    if (sh != NULL) {
      CHECK_MEM(sh->data + 1, sh->len - 1, rows[i].out);
      plume__shared_unref(sh);
    }
    sh = plume__sio_encode_shared(&pkt, 0);
    if (sh != NULL) {
      CHECK_MEM(sh->data, sh->len, rows[i].out);
      plume__shared_unref(sh);
    }
  }
  /* appends after what is there (the caller's '4') */
  b.len = 0;
  plume__buf_appendc(&b, '4');
  {
    plume__sio_packet_t pkt = packet(PLUME__SIO_EVENT, 0, "/", -1, "[1]");
    CHECK_EQ(plume__sio_encode(&b, &pkt), 0);
  }
  CHECK_MEM(b.p, b.len, "42[1]");
  plume__buf_free(&b);
}

static void test_encode_replies(void) {
  plume__buf_t b = {0};
  plume_slice_t none = {NULL, 0};
  /* v4 */
  CHECK_EQ(plume__sio_encode_connect(&b, slice("/"), "x", 4), 0);
  CHECK_MEM(b.p, b.len, "0{\"sid\":\"x\"}");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect(&b, slice("/custom"), "x", 4), 0);
  CHECK_MEM(b.p, b.len, "0/custom,{\"sid\":\"x\"}");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect(&b, none, "a\"b", 4), 0);
  CHECK_MEM(b.p, b.len, "0{\"sid\":\"a\\\"b\"}");
  b.len = 0;
  plume__buf_appendc(&b, '4');
  CHECK_EQ(plume__sio_encode_connect_error(&b, slice("/random"),
                                           "Invalid namespace", none, 4),
           0);
  CHECK_MEM(b.p, b.len, "44/random,{\"message\":\"Invalid namespace\"}");
  b.len = 0;
  plume__buf_appendc(&b, '4');
  CHECK_EQ(plume__sio_encode_connect_error(&b, slice("/auth"), "not authorized",
                                           slice("{\"code\":42}"), 4),
           0);
  CHECK_MEM(b.p, b.len,
            "44/auth,{\"message\":\"not authorized\",\"data\":{\"code\":42}}");
  b.len = 0;
  CHECK_EQ(
      plume__sio_encode_connect_error(&b, slice("/"), "bad \"one\"", none, 4),
      0);
  CHECK_MEM(b.p, b.len, "4{\"message\":\"bad \\\"one\\\"\"}");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_disconnect(&b, slice("/")), 0);
  CHECK_MEM(b.p, b.len, "1");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_disconnect(&b, slice("/admin")), 0);
  CHECK_MEM(b.p, b.len, "1/admin,");
  /* v3 (protocol.md §7) */
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect(&b, slice("/"), "x", 3), 0);
  CHECK_MEM(b.p, b.len, "0");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect(&b, slice("/custom"), "x", 3), 0);
  CHECK_MEM(b.p, b.len, "0/custom,");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect_error(&b, slice("/random"),
                                           "Invalid namespace", none, 3),
           0);
  CHECK_MEM(b.p, b.len, "4/random,\"Invalid namespace\"");
  b.len = 0;
  CHECK_EQ(plume__sio_encode_connect_error(&b, slice("/auth"), "not authorized",
                                           slice("{\"code\":42}"), 3),
           0);
  CHECK_MEM(b.p, b.len, "4/auth,{\"code\":42}");
  plume__buf_free(&b);
}

/* ------------------------------------------------------------------------- */

/* Feeds text (and attachments) through a decoder, pushes the event's values,
** renames the event, and encodes the reply as the suite's server does: returns
** "4"-prefixed text. */
static const char *echo(const char *text, const char *const *bins, int nbins,
                        const char *rename, int as_ack) {
  static char out[4096];
  plume__sio_decoder_t d;
  plume__json_enc_t e;
  plume__sio_packet_t reply;
  plume__buf_t b = {0};
  const char *err = NULL;
  int i, r, n, first;
  plume__sio_decoder_init(&d, 10, 128);
  plume__json_enc_init(&e, 128);
  r = plume__sio_feed(&d, 0, text, strlen(text));
  for (i = 0; i < nbins && r == PLUME__SIO_MORE; i++)
    r = plume__sio_feed(&d, 1, bins[i], strlen(bins[i]));
  if (r != PLUME__SIO_PACKET) {
    snprintf(out, sizeof(out), "feed %d: %s", r, d.error);
    goto done;
  }
  lua_settop(L, 0);
  n = plume__sio_push_data(L, &d.pkt, d.att, 128, 1, &err);
  if (n < 1) {
    snprintf(out, sizeof(out), "push %d: %s", n, err ? err : "");
    goto done;
  }
  CHECK_EQ(lua_gettop(L), n);
  memset(&reply, 0, sizeof(reply));
  reply.nsp = d.pkt.nsp;
  first = 1;
  if (as_ack) {
    reply.type = PLUME__SIO_ACK;
    reply.id = d.pkt.id;
    first = 2; /* the args after the event name */
  } else {
    reply.type = PLUME__SIO_EVENT;
    reply.id = -1;
    lua_pushstring(L, rename);
    lua_replace(L, 1);
  }
  if (plume__sio_encode_args(L, first, n - first + 1, &reply, &e) != 0) {
    snprintf(out, sizeof(out), "encode: %s", e.error);
    goto done;
  }
  plume__buf_appendc(&b, '4');
  plume__sio_encode(&b, &reply);
  n = snprintf(out, sizeof(out), "%.*s", (int)b.len, b.p);
  for (i = 0; i < e.natt && (size_t)n < sizeof(out); i++)
    n += snprintf(out + n, sizeof(out) - (size_t)n, " +%.*s", (int)e.att[i].n,
                  e.att[i].p);
done:
  lua_settop(L, 0);
  plume__buf_free(&b);
  plume__json_enc_free(&e);
  plume__sio_decoder_free(&d);
  return out;
}

static void test_lua_suite(void) {
  static const char *const bins[] = {"\x01\x02\x03", "\x04\x05\x06"};
  /* protocol.md §9.2 #10-#13, byte for byte */
  CHECK_STR(
      echo("2[\"message\",1,\"2\",{\"3\":[true]}]", NULL, 0, "message-back", 0),
      "42[\"message-back\",1,\"2\",{\"3\":[true]}]");
  CHECK_STR(
      echo("52-[\"message\"," PH(0) "," PH(1) "]", bins, 2, "message-back", 0),
      "452-[\"message-back\"," PH(0) "," PH(1) "] +\x01\x02\x03 "
                                               "+\x04\x05\x06");
  CHECK_STR(echo("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", NULL, 0,
                 NULL, 1),
            "43456[1,\"2\",{\"3\":[false]}]");
  CHECK_STR(echo("52-789[\"message-with-ack\"," PH(0) "," PH(1) "]", bins, 2,
                 NULL, 1),
            "462-789[" PH(0) "," PH(1) "] +\x01\x02\x03 +\x04\x05\x06");
  /* §4.4 polling transcript */
  CHECK_STR(echo("51-[\"message\"," PH(0) "]", bins, 1, "message-back", 0),
            "451-[\"message-back\"," PH(0) "] +\x01\x02\x03");
  CHECK_STR(echo("212[\"message-with-ack\"]", NULL, 0, NULL, 1), "4312[]");
  CHECK_STR(echo("2/custom,[\"x\",{}]", NULL, 0, "y", 0),
            "42/custom,[\"y\",{}]");
  /* binaries nested in objects and arrays, in depth-first placeholder order */
  CHECK_STR(
      echo("52-[\"m\",{\"b\":" PH(0) ",\"a\":[" PH(1) "]}]", bins, 2, "n", 0),
      "452-[\"n\",{\"a\":[" PH(0) "],\"b\":" PH(1) "}] +\x04\x05\x06 "
                                                   "+\x01\x02\x03");
  /* one attachment referenced twice: sent twice */
  CHECK_STR(echo("51-[\"m\"," PH(0) "," PH(0) "]", bins, 1, "n", 0),
            "452-[\"n\"," PH(0) "," PH(1) "] +\x01\x02\x03 +\x01\x02\x03");
  /* in a plain EVENT a placeholder-shaped object is just an object */
  CHECK_STR(echo("2[\"m\"," PH(0) "]", NULL, 0, "n", 0), "42[\"n\"," PH(0) "]");
}

static void test_lua_glue(void) {
  plume__sio_packet_t pkt;
  plume__json_enc_t e;
  plume_slice_t att[2];
  const char *err = NULL, *p;
  size_t n;
  /* CONNECT auth: one value, not spread */
  p = "0/custom,{\"token\":\"abc\"}";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, &err), 0);
  lua_settop(L, 0);
  CHECK_EQ(plume__sio_push_data(L, &pkt, NULL, 128, 0, &err), 1);
  CHECK(lua_istable(L, 1));
  plume__json_enc_init(&e, 128);
  CHECK_EQ(plume__json_encode(L, 1, &e), 0);
  CHECK_MEM(e.out.p, e.out.len, "{\"token\":\"abc\"}");
  /* no payload: nothing pushed */
  lua_settop(L, 0);
  CHECK_EQ(plume__sio_decode("0", 1, 10, 128, &pkt, &err), 0);
  CHECK_EQ(plume__sio_push_data(L, &pkt, NULL, 128, 1, &err), 0);
  CHECK_EQ(lua_gettop(L), 0);
  /* an attachment used twice is one Lua value */
  p = "51-[\"m\"," PH(0) ",{\"k\":" PH(0) "}]";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, &err), 0);
  att[0].p = "xyz";
  att[0].n = 3;
  CHECK_EQ(plume__sio_push_data(L, &pkt, att, 128, 1, &err), 3);
  CHECK_EQ(lua_gettop(L), 3);
  lua_getfield(L, 3, "k");
  CHECK(lua_rawequal(L, 2, 4));
  CHECK((p = plume__binary_get(L, 2, &n)) != NULL && n == 3 &&
        memcmp(p, "xyz", 3) == 0);
  lua_settop(L, 0);
  /* spread of an empty ACK */
  CHECK_EQ(plume__sio_decode("3[]", 3, 10, 128, &pkt, &err), 0);
  CHECK_EQ(plume__sio_push_data(L, &pkt, NULL, 128, 1, &err), 0);
  CHECK_EQ(lua_gettop(L), 0);
  /* a packet that decodes but is deeper than the Lua side allows */
  p = "2[\"x\",[[1]]]";
  CHECK_EQ(plume__sio_decode(p, strlen(p), 10, 128, &pkt, &err), 0);
  CHECK(plume__sio_push_data(L, &pkt, NULL, 2, 1, &err) < 0);
  CHECK_STR(err, "nesting too deep");
  CHECK_EQ(lua_gettop(L), 0);
  /* encode errors name the argument */
  pkt.type = PLUME__SIO_EVENT;
  lua_pushliteral(L, "ev");
  lua_pushvalue(L, LUA_REGISTRYINDEX); /* a table ... */
  lua_pushcfunction(L, luaopen_base);  /* ... and a function */
  CHECK(plume__sio_encode_args(L, 1, 3, &pkt, &e) < 0);
  CHECK(strstr(e.error, "result is not serializable") == e.error);
  lua_settop(L, 1);
  lua_pushcfunction(L, luaopen_base);
  CHECK(plume__sio_encode_args(L, 1, 2, &pkt, &e) < 0);
  CHECK_STR(e.error, "result is not serializable: function at [2]");
  /* an ACK without binaries stays an ACK; with, becomes BINARY_ACK */
  lua_settop(L, 0);
  pkt.type = PLUME__SIO_BINARY_ACK;
  lua_pushinteger(L, 1);
  CHECK_EQ(plume__sio_encode_args(L, 1, 1, &pkt, &e), 0);
  CHECK_EQ(pkt.type, PLUME__SIO_ACK);
  CHECK_EQ(pkt.attachments, 0);
  CHECK_MEM(pkt.data.p, pkt.data.n, "[1]");
  plume__binary_push(L, "b", 1);
  CHECK_EQ(plume__sio_encode_args(L, 1, 2, &pkt, &e), 0);
  CHECK_EQ(pkt.type, PLUME__SIO_BINARY_ACK);
  CHECK_EQ(pkt.attachments, 1);
  /* the peer's attachment limit */
  e.max_attachments = 1;
  plume__binary_push(L, "c", 1);
  CHECK(plume__sio_encode_args(L, 1, 3, &pkt, &e) < 0);
  CHECK_STR(e.error, "result is not serializable: too many binary values at "
                     "[3]");
  lua_settop(L, 0);
  plume__json_enc_free(&e);
}

int main(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  RUN(test_decode_table);
  RUN(test_decode_details);
  RUN(test_feed_binary);
  RUN(test_feed_errors);
  RUN(test_feed_max);
  RUN(test_encode);
  RUN(test_encode_replies);
  RUN(test_lua_suite);
  RUN(test_lua_glue);
  lua_close(L);
  plume__shared_pool_drain();
  return check_done();
}
