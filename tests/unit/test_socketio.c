/*
** test_socketio.c: the Socket.IO packet codec (socketio_codec.c) and the
** sessions of socketio.c. Codec: every decoder input of reliability.md §1.2
** and §4.4 #24-#30, the suite's packets (protocol.md §9.2, §4.4), ack ids,
** namespaces, attachment reassembly, the encoder outputs of §3.3 and §7, the
** Lua glue byte for byte. Sessions: socketio.c over an in-memory Engine.IO
** (its calls renamed to the stubs below) under a real instance and the
** plume.socketio API (§4, §7; style.md D.7 registry check).
*/
#define plume__eio_server_new lb_eio_server_new
#define plume__eio_server_free lb_eio_server_free
#define plume__eio_server_ud lb_eio_server_ud
#define plume__eio_session_server lb_eio_session_server
#define plume__eio_get_ud lb_eio_get_ud
#define plume__eio_set_ud lb_eio_set_ud
#define plume__eio_send lb_eio_send
#define plume__eio_send_shared lb_eio_send_shared
#define plume__eio_close lb_eio_close
#define plume__eio_sid lb_eio_sid
#define plume__eio_protocol lb_eio_protocol
#define plume__eio_transport lb_eio_transport
#define plume__eio_handshake lb_eio_handshake
#define plume__eio_remote_address lb_eio_remote_address
#include "../../runtime/socketio.c"

#include <lualib.h>

#include "check.h"

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
  /* binaries nested in objects and arrays, renumbered in depth-first order
  ** (keys in an order both key orders of the encoder keep) */
  CHECK_STR(
      echo("52-[\"m\",{\"a\":[" PH(1) "],\"b\":" PH(0) "}]", bins, 2, "n", 0),
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

/* ------------------------------------------------------------------------- */
/* {====== Sessions: socketio.c over an in-memory Engine.IO */

/* A fake Engine.IO session: what the layer above sent, and its close. */
struct plume__eio_session_s {
  plume__eio_server_t *srv;
  void *ud;
  int proto, transport;
  int closed; /* lb_eio_close ran */
  char reason[32];
  char sid[24];
  plume__buf_t out;               /* "T:text\n" / "B:hex\n" per message */
  const plume__shared_t *last[4]; /* the last shared blocks sent */
  plume__http_req_t hs;
  plume__header_t hdrs[2];
};

struct plume__eio_server_s {
  plume__eio_handler_t h;
  void *ud;
};

static plume__eio_server_t *fake_srv;
static int nsids;

int plume__eio_server_new(plume_t *p, const plume__eio_config_t *cfg,
                          const plume__eio_handler_t *h, void *ud,
                          plume__eio_server_t **out) {
  fake_srv = calloc(1, sizeof(*fake_srv));
  fake_srv->h = *h;
  fake_srv->ud = ud;
  *out = fake_srv;
  return 0;
}

void plume__eio_server_free(plume__eio_server_t *srv) {
  CHECK(!"the Engine.IO server is plume_close's to free");
}

void *plume__eio_server_ud(plume__eio_server_t *srv) {
  return srv->ud;
}

plume__eio_server_t *plume__eio_session_server(const plume__eio_session_t *s) {
  return s->srv;
}

void *plume__eio_get_ud(const plume__eio_session_t *s) {
  return s->ud;
}

void plume__eio_set_ud(plume__eio_session_t *s, void *ud) {
  s->ud = ud;
}

static void record(plume__eio_session_t *s, int binary, const char *p,
                   size_t n) {
  size_t i;
  plume__buf_append(&s->out, binary ? "B:" : "T:", 2);
  for (i = 0; i < n; i++) {
    if (binary)
      plume__buf_appendf(&s->out, "%02x", (unsigned char)p[i]);
    else
      plume__buf_appendc(&s->out, p[i]);
  }
  plume__buf_appendc(&s->out, '\n');
  plume__buf_appendc(&s->out, '\0');
  s->out.len--;
}

int plume__eio_send(plume__eio_session_t *s, int binary, const void *p,
                    size_t n) {
  if (s->closed)
    return PLUME_ECLOSED;
  record(s, binary, p, n);
  return 0;
}

int plume__eio_send_shared(plume__eio_session_t *s, int binary,
                           plume__shared_t *sh) {
  if (s->closed)
    return PLUME_ECLOSED;
  memmove(s->last + 1, s->last, 3 * sizeof(s->last[0]));
  s->last[0] = sh;
  if (binary)
    record(s, 1, sh->data, sh->len);
  else
    record(s, 0, sh->data + 1, sh->len - 1); /* without the "4" */
  return 0;
}

void plume__eio_close(plume__eio_session_t *s, const char *reason) {
  if (!s->closed)
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
  s->closed = 1;
}

const char *plume__eio_sid(const plume__eio_session_t *s) {
  return s->sid;
}
int plume__eio_protocol(const plume__eio_session_t *s) {
  return s->proto;
}
int plume__eio_transport(const plume__eio_session_t *s) {
  return s->transport;
}
const plume__http_req_t *plume__eio_handshake(const plume__eio_session_t *s) {
  return &s->hs;
}
const char *plume__eio_remote_address(const plume__eio_session_t *s) {
  return "127.0.0.1";
}

static plume_t *P;
static lua_State *PL;

static plume__eio_session_t *open_session(int proto) {
  static const char url[] = "/socket.io/?EIO=4&transport=websocket&x=a%20b";
  plume__eio_session_t *s = calloc(1, sizeof(*s));
  s->srv = fake_srv;
  s->proto = proto;
  s->transport = PLUME__EIO_WEBSOCKET;
  snprintf(s->sid, sizeof(s->sid), "sid%08d", ++nsids);
  s->hs.method = HTTP_GET;
  s->hs.url.p = url;
  s->hs.url.n = sizeof(url) - 1;
  s->hs.query.p = url + 12;
  s->hs.query.n = sizeof(url) - 13;
  s->hdrs[0].name.p = "X-Test";
  s->hdrs[0].name.n = 6;
  s->hdrs[0].value.p = "yes";
  s->hdrs[0].value.n = 3;
  s->hs.headers = s->hdrs;
  s->hs.nheaders = 1;
  fake_srv->h.on_open(s);
  return s;
}

static void recv_text(plume__eio_session_t *s, const char *text) {
  fake_srv->h.on_message(s, 0, text, strlen(text));
}

static void recv_bin(plume__eio_session_t *s, const char *p, size_t n) {
  fake_srv->h.on_message(s, 1, p, n);
}

/* What the session got since the last call (consumed). */
static const char *taken(plume__eio_session_t *s) {
  static char out[4096];
  snprintf(out, sizeof(out), "%.*s", (int)s->out.len, s->out.p ? s->out.p : "");
  s->out.len = 0;
  return out;
}

/* The session ends as engineio.c ends it: on_close, then it is gone. */
static void end_session(plume__eio_session_t *s, const char *reason) {
  fake_srv->h.on_close(s, reason);
  plume__buf_free(&s->out);
  free(s);
}

/* Checks what s got since the last look (taken once: a macro argument may be
** evaluated more than once). */
#define LOG_IS(want)                                                           \
  do {                                                                         \
    const char *got_ = lua_run("return table.concat(log, ',')");               \
    CHECK_STR(got_, want);                                                     \
  } while (0)

#define EXPECT(s, want)                                                        \
  do {                                                                         \
    const char *got_ = taken(s);                                               \
    CHECK_STR(got_, want);                                                     \
  } while (0)

static void on_stop(uv_timer_t *t) {
  uv_stop(t->loop);
}

static void run_ms(int ms) {
  uv_timer_t t;
  uv_timer_init(plume_loop(P), &t);
  uv_timer_start(&t, on_stop, (uint64_t)ms, 0);
  uv_run(plume_loop(P), UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(plume_loop(P), UV_RUN_NOWAIT);
}

static const char *lua_run(const char *chunk) {
  static char out[1024];
  size_t n;
  const char *r;
  lua_settop(PL, 0);
  if (luaL_loadstring(PL, chunk) != LUA_OK ||
      lua_pcall(PL, 0, 1, 0) != LUA_OK) {
    snprintf(out, sizeof(out), "error: %s", lua_tostring(PL, -1));
  } else {
    r = luaL_tolstring(PL, -1, &n);
    snprintf(out, sizeof(out), "%.*s", (int)n, r);
  }
  lua_settop(PL, 0);
  return out;
}

/* The app every session test talks to. */
static const char app[] =
    "local socketio = require 'plume.socketio' "
    "local json = require 'plume.json' "
    "io = socketio.attach(nil, { connectTimeout = 40, "
    "  cleanupEmptyChildNamespaces = true }) "
    "log = {} "
    "io:use(function(socket, next) "
    "  if socket.handshake.auth.token == 'bad' then "
    "    next({ message = 'no', data = { code = 1 } }) "
    "  else next() end "
    "end) "
    "io:on('connection', function(socket) "
    "  socket:emit('hello', socket.id) "
    "  socket:on('echo', function(...) local t = table.pack(...) "
    "    return table.unpack(t, 1, t.n - 1) end) "
    "  socket:on('hs', function() local h = socket.handshake "
    "    return h.query.x, h.headers['x-test'], h.address end) "
    "  socket:on('join', function(room) socket:join(room) return true end) "
    "  socket:on('shout', function(room, msg) io:to(room):emit('news', msg) "
    "end) "
    "  socket:on('ask', function() "
    "    local err, a = socket:timeout(30):emitWithAck('q') "
    "    socket:emit('answer', err or json.null, a or json.null) end) "
    "  socket:on('ask-all', function(room) "
    "    io:to(room):timeout(30):emit('q', function(err, r) "
    "      socket:emit('answers', err or json.null, r) end) end) "
    "  socket:on('kick', function() socket:disconnect() end) "
    "  socket:on('bad-ask', function() "
    "    local a = pcall(socket.emit, socket, 'q', print, function() end) "
    "    local b = pcall(io.timeout(io, 9).emit, io:timeout(9), 'q', print, "
    "      function() end) "
    "    return a, b end) "
    "  socket:on('disconnecting', function(reason) "
    "    log[#log + 1] = 'disconnecting ' .. tostring(socket.rooms[socket.id]) "
    "end) "
    "  socket:on('disconnect', function(reason) log[#log + 1] = reason end) "
    "end) "
    "io:of('/admin'):on('connection', function(socket) "
    "  socket:emit('welcome', socket.nsp.name) end) "
    "io:of('^/dyn%-%d+$'):on('connection', function(socket) "
    "  socket:emit('welcome', socket.nsp.name) end) "
    "return 'ok'";

static void setup(void) {
  plume_options_t o;
  plume_options_init(&o);
  plume_options_set(&o, "lua_path", "lua");
  plume_options_set(&o, "log_level", "error");
  P = NULL;
  if (plume_new(&P, NULL, &o) != 0) {
    CHECK(!"plume_new (run from the repository root)");
    return;
  }
  PL = plume_lua(P);
  {
    const char *r = lua_run(app); /* a static buffer: read before reuse */
    if (strcmp(r, "ok") != 0)
      printf("# %s\n", r);
    CHECK_STR(r, "ok");
  }
}

static void on_closed(plume_t *p) {}

static void teardown(void) {
  plume_close(P, on_closed);
  uv_run(plume_loop(P), UV_RUN_DEFAULT);
  plume_destroy(P);
  free(fake_srv);
  fake_srv = NULL;
  P = NULL;
}

/* "40" and its reply, and returns the socket id (from the hello event). */
static const char *connect_main(plume__eio_session_t *s, char id[32]) {
  const char *got;
  recv_text(s, "0");
  got = taken(s);
  CHECK(strncmp(got, "T:0{\"sid\":\"", 11) == 0);
  snprintf(id, 32, "%.20s", got + 11);
  return got;
}

static void test_session_connect(void) {
  plume__eio_session_t *s;
  char id[32];
  setup();
  if (P == NULL)
    return;
  s = open_session(4);
  EXPECT(s, "");
  connect_main(s, id);
  CHECK_EQ(strlen(id), 20);
  CHECK(strcmp(id, s->sid) != 0);
  /* the CONNECT reply first, then what the connection handler sent */
  recv_text(s, "21[\"hs\"]");
  EXPECT(s, "T:31[\"a b\",\"yes\",\"127.0.0.1\"]\n");
  /* a client ack: the handler's return values, [] and {} kept */
  recv_text(s, "27[\"echo\",1,[],{},null,1.5]");
  EXPECT(s, "T:37[1,[],{},null,1.5]\n");
  /* many arguments (a fresh task has room for a few: they travel as a table) */
  {
    plume__buf_t in = {0}, want = {0};
    int i;
    plume__buf_append(&in, "28[\"echo\"", 9);
    plume__buf_append(&want, "T:38[", 5);
    for (i = 0; i < 300; i++) {
      plume__buf_appendf(&in, ",%d", i);
      plume__buf_appendf(&want, "%s%d", i ? "," : "", i);
    }
    plume__buf_append(&in, "]", 2);
    plume__buf_append(&want, "]\n", 3);
    recv_text(s, in.p);
    {
      const char *got = taken(s);
      CHECK(strcmp(got, want.p) == 0);
    }
    plume__buf_free(&in);
    plume__buf_free(&want);
  }
  /* the same namespace twice: the whole connection goes */
  recv_text(s, "0");
  CHECK(s->closed);
  CHECK_STR(s->reason, "forced close");
  end_session(s, "forced close");
  LOG_IS("disconnecting true,forced close");
  teardown();
}

static void test_session_namespaces(void) {
  plume__eio_session_t *s;
  char id[32];
  setup();
  if (P == NULL)
    return;
  s = open_session(4);
  recv_text(s, "0{\"token\":\"bad\"}");
  EXPECT(s, "T:4{\"message\":\"no\",\"data\":{\"code\":1}}\n");
  recv_text(s, "0/nope,");
  EXPECT(s, "T:4/nope,{\"message\":\"Invalid namespace\"}\n");
  recv_text(s, "0/dyn-x");
  EXPECT(s, "T:4/dyn-x,{\"message\":\"Invalid namespace\"}\n");
  recv_text(s, "0/admin");
  {
    const char *g = taken(s);
    CHECK(strncmp(g, "T:0/admin,{\"sid\":\"", 18) == 0);
  }
  recv_text(s, "0/dyn-12");
  {
    const char *g = taken(s);
    CHECK(strstr(g, "T:2/dyn-12,[\"welcome\",\"/dyn-12\"]\n") != NULL);
  }
  connect_main(s, id);
  /* events of a namespace not joined close the connection */
  CHECK(!s->closed);
  recv_text(s, "1/admin,");
  EXPECT(s, "");
  recv_text(s, "2/admin,[\"x\"]");
  CHECK(s->closed);
  end_session(s, "forced close");
  LOG_IS("disconnecting true,forced close");
  /* cleanupEmptyChildNamespaces: the empty child goes, static ones stay */
  {
    const char *g = lua_run("return tostring(io._nsps['/dyn-12']) .. ' ' .. "
                            "io._nsps['/admin'].name");
    CHECK_STR(g, "nil /admin");
  }
  s = open_session(4);
  recv_text(s, "0/dyn-12");
  {
    const char *g = taken(s);
    CHECK(strstr(g, "T:2/dyn-12,[\"welcome\",\"/dyn-12\"]\n") != NULL);
  }
  end_session(s, "transport close");
  teardown();
}

static void test_session_v3(void) {
  plume__eio_session_t *s;
  const char *got;
  char want[128];
  setup();
  if (P == NULL)
    return;
  s = open_session(3);
  got = taken(s);
  snprintf(want, sizeof(want), "T:0\nT:2[\"hello\",\"%s\"]\n", s->sid);
  CHECK_STR(got, want);
  recv_text(s, "0/admin?token=abc");
  EXPECT(s, "T:0/admin,\nT:2/admin,[\"welcome\",\"/admin\"]\n");
  recv_text(s, "0/nope?x=1");
  EXPECT(s, "T:4/nope,{\"message\":\"Invalid namespace\"}\n");
  end_session(s, "transport close");
  teardown();
}

static void test_session_broadcast(void) {
  plume__eio_session_t *a, *b, *c;
  char id[32];
  setup();
  if (P == NULL)
    return;
  a = open_session(4);
  b = open_session(4);
  c = open_session(4);
  connect_main(a, id);
  connect_main(b, id);
  connect_main(c, id);
  recv_text(a, "21[\"join\",\"r\"]");
  recv_text(b, "22[\"join\",\"r\"]");
  EXPECT(a, "T:31[true]\n");
  EXPECT(b, "T:32[true]\n");
  recv_text(c, "51-[\"shout\",\"r\"," PH(0) "]");
  recv_bin(c, "\x01\x02", 2);
  /* one encoding: the very same blocks for both */
  EXPECT(a, "T:51-[\"news\"," PH(0) "]\nB:0102\n");
  EXPECT(b, "T:51-[\"news\"," PH(0) "]\nB:0102\n");
  CHECK(a->last[0] == b->last[0] && a->last[1] == b->last[1]);
  EXPECT(c, "");
  end_session(a, "transport close");
  end_session(b, "transport close");
  end_session(c, "transport close");
  teardown();
}

static void test_session_acks(void) {
  plume__eio_session_t *a, *b;
  char id[32];
  setup();
  if (P == NULL)
    return;
  a = open_session(4);
  b = open_session(4);
  connect_main(a, id);
  connect_main(b, id);
  /* a value that cannot be sent: an error, and no ack left waiting */
  recv_text(a, "29[\"bad-ask\"]");
  EXPECT(a, "T:39[false,false]\n");
  CHECK(((sio_server_t *)fake_srv->ud)->acks == NULL);
  CHECK(((sio_server_t *)fake_srv->ud)->groups == NULL);
  /* answered: the waiting task resumes with nil, "a" */
  recv_text(a, "2[\"ask\"]");
  EXPECT(a, "T:20[\"q\"]\n");
  recv_text(a, "30[\"a\"]");
  EXPECT(a, "T:2[\"answer\",null,\"a\"]\n");
  recv_text(a, "30[\"late\"]"); /* answered already: ignored */
  EXPECT(a, "");
  /* not answered: "operation has timed out" after 30 ms */
  recv_text(a, "2[\"ask\"]");
  EXPECT(a, "T:21[\"q\"]\n");
  run_ms(60);
  EXPECT(a, "T:2[\"answer\",\"operation has timed out\",null]\n");
  /* a broadcast asking for acks: one id for all, one answer */
  recv_text(a, "21[\"join\",\"r\"]");
  recv_text(b, "21[\"join\",\"r\"]");
  taken(a);
  taken(b);
  recv_text(a, "2[\"ask-all\",\"r\"]");
  EXPECT(a, "T:22[\"q\"]\n");
  EXPECT(b, "T:22[\"q\"]\n");
  CHECK(a->last[0] == b->last[0]);
  recv_text(b, "32[\"from b\"]");
  recv_text(a, "32[]");
  EXPECT(a, "T:2[\"answers\",null,[\"from b\",null]]\n");
  /* a disconnect during a wait: "disconnected", on a clean stack */
  recv_text(b, "2[\"ask\"]");
  EXPECT(b, "T:23[\"q\"]\n");
  recv_text(b, "2[\"kick\"]");
  EXPECT(b, "T:1\n");
  run_ms(5);
  EXPECT(b, "");
  LOG_IS("disconnecting true,server namespace disconnect");
  end_session(a, "transport close");
  end_session(b, "transport close");
  teardown();
}

static void test_session_violations(void) {
  static const char *const bad[] = {"2[\"x\"", "2[\"disconnect\"]",    "4{}",
                                    "9",       "51-[\"x\"," PH(0) "]", NULL};
  plume__eio_session_t *s;
  char id[32];
  int i;
  setup();
  if (P == NULL)
    return;
  for (i = 0; bad[i] != NULL; i++) {
    s = open_session(4);
    connect_main(s, id);
    recv_text(s, bad[i]);
    if (i == 4) /* attachments owed: text is a violation */
      recv_text(s, "2[\"x\"]");
    CHECK(s->closed);
    CHECK_STR(s->reason, "forced close");
    end_session(s, "forced close");
  }
  /* the client's "error" event reaches no listener, the connection stays */
  s = open_session(4);
  connect_main(s, id);
  recv_text(s, "21[\"error\",{}]");
  CHECK(!s->closed);
  EXPECT(s, "");
  recv_text(s, "1");
  CHECK(!s->closed);
  end_session(s, "transport close");
  /* connectTimeout: nobody joined within 40 ms */
  s = open_session(4);
  run_ms(70);
  CHECK(s->closed);
  CHECK_STR(s->reason, "forced close");
  end_session(s, "forced close");
  teardown();
}

/* Counts the registry's live references (values other than free-list links). */
static int registry_refs(void) {
  int n = 0;
  lua_gc(PL, LUA_GCCOLLECT);
  lua_pushnil(PL);
  while (lua_next(PL, LUA_REGISTRYINDEX) != 0) {
    if (lua_type(PL, -1) != LUA_TNUMBER)
      n++;
    lua_pop(PL, 1);
  }
  return n;
}

/* style.md D.7: 1,000 connect/disconnect cycles leave the registry as it was,
** and nothing behind in C. */
static void test_session_registry(void) {
  plume__eio_session_t *s;
  sio_server_t *srv;
  char id[32];
  int before = 0, i;
  setup();
  if (P == NULL)
    return;
  srv = fake_srv->ud;
  for (i = 0; i < 1001; i++) {
    if (i == 1)
      before = registry_refs();
    s = open_session(4);
    connect_main(s, id);
    recv_text(s, "0/admin");
    recv_text(s, "21[\"join\",\"room\"]");
    recv_text(s, "2[\"ask\"]");
    if (i % 2)
      recv_text(s, "1");
    end_session(s, "transport close");
  }
  run_ms(5);
  CHECK_EQ(registry_refs(), before);
  CHECK_EQ(srv->nclients, 0);
  CHECK(srv->acks == NULL);
  CHECK(srv->whead == NULL);
  {
    const char *g = lua_run("local n = 0 for _ in pairs(io.sockets.sockets) "
                            "do n = n + 1 end return n .. ' ' .. "
                            "#io:fetchSockets()");
    CHECK_STR(g, "0 0");
  }
  teardown();
}

/* }====== */

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
  RUN(test_session_connect);
  RUN(test_session_namespaces);
  RUN(test_session_v3);
  RUN(test_session_broadcast);
  RUN(test_session_acks);
  RUN(test_session_violations);
  RUN(test_session_registry);
  lua_close(L);
  plume__shared_pool_drain();
  return check_done();
}
