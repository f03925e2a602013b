/*
** internal.h: structures and plume__* functions shared between the layers of
** libplume. Data flows one way: tcp -> http -> (polling | websocket) ->
** engineio -> socketio -> lua_bridge, and output flows back down through
** plume__conn_write/plume__conn_write_shared. Nothing here is installed;
** plume.h is the public API.
*/
#ifndef PLUME_INTERNAL_H
#define PLUME_INTERNAL_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "plume.h"

/* Left unformatted: clang-format takes (ptr) for a cast and glues the minus. */
/* clang-format off */
#define plume__container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))
/* clang-format on */

/* ------------------------------------------------------------------------- */
/* {====== Buffers and slices (buf.c) */

/* A non-owning view of bytes, valid only as long as its owner says (see each
** producer). */
typedef struct plume_slice_s {
  const char *p;
  size_t n;
} plume_slice_t;

/* A growable byte buffer owned by whoever embeds it. p is NULL until the first
** append. */
typedef struct plume__buf_s {
  char *p;
  size_t len;
  size_t cap;
} plume__buf_t;

/* Ensures room for n more bytes. Returns 0 or UV_ENOMEM. */
int plume__buf_reserve(plume__buf_t *b, size_t n);
int plume__buf_append(plume__buf_t *b, const void *p, size_t n);
int plume__buf_appendc(plume__buf_t *b, char c);
int plume__buf_appendf(plume__buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void plume__buf_free(plume__buf_t *b);

/*
** Reference-counted immutable bytes: one encoded packet shared by every
** recipient of a broadcast and by the write requests still sending it. Created
** with refs == 1. Small sizes are served from a free list, so a packet costs no
** malloc on the hot path.
*/
typedef struct plume__shared_s {
  uint32_t refs;
  uint32_t len;
  uint32_t cap; /* bytes available in data (size class) */
  char data[];
} plume__shared_t;

plume__shared_t *plume__shared_new(const void *p, size_t n); /* NULL on OOM */
/* len = n, data uninitialised */
plume__shared_t *plume__shared_alloc(size_t n);
static inline plume__shared_t *plume__shared_ref(plume__shared_t *s) {
  s->refs++;
  return s;
}
void plume__shared_unref(plume__shared_t *s);
/* frees cached blocks (tests, shutdown) */
void plume__shared_pool_drain(void);

/* Standard base64 (alphabet +/, = padding). Returns bytes written; dst needs
** plume__base64_len(n). decode returns -1 on invalid input (dst needs n*3/4 +
** 3). */
size_t plume__base64_len(size_t n);
size_t plume__base64_encode(char *dst, const unsigned char *src, size_t n);
long plume__base64_decode(unsigned char *dst, const char *src, size_t n);
/* Unpadded base64url (RFC 4648 §5): the encoded length of n bytes, the
** encoding, and the decoding into dst (n / 4 * 3 + 3 bytes) which returns the
** byte count or -1 for a character outside the alphabet or a length of 4k+1.
** Unused trailing bits are ignored. */
size_t plume__base64url_len(size_t n);
size_t plume__base64url_encode(char *dst, const unsigned char *src, size_t n);
long plume__base64url_decode(unsigned char *dst, const char *src, size_t n);
/* 1 when each of the n characters at src is in the base64url alphabet. */
int plume__base64url_valid(const char *src, size_t n);

/* Fills buf with n bytes from a CSPRNG (OpenSSL RAND_bytes). Returns 0 or
** PLUME_EPROTO. */
int plume__random(void *buf, size_t n);
/* Writes a 20-character [A-Za-z0-9_-] id (15 random bytes, base64url) and a
** NUL. */
int plume__random_id(char out[21]);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Logging (core.c) */

enum { PLUME__LOG_ERROR, PLUME__LOG_WARN, PLUME__LOG_INFO, PLUME__LOG_DEBUG };

/* Writes one log line to stderr (text or JSON lines per options) when level is
** enabled. subsystem is "http", "engineio", "socketio", "lua", ... */
void plume__log(plume_t *p, int level, const char *subsystem, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
/* 1 when a line of level from subsystem would be written: level is within
** log_level, or it is a debug line of a subsystem named in the debug option
** ("http,socketio", "all"). */
int plume__log_enabled(plume_t *p, int level, const char *subsystem);
/*
** One access-log line (info level, subsystem "access") when the access_log
** option is on: kind "http" for a request (method, path, status, bytes of
** body), "call" for a service call (method, path = service path, status 200 or
** the error's code, bytes 0). start_ns is the uv_hrtime() when the request or
** call began.
*/
void plume__log_access(plume_t *p, const char *kind, const char *method,
                       plume_slice_t path, int status, size_t bytes,
                       uint64_t start_ns);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Connections and the write path (tcp.c) */

typedef struct plume__conn_s plume__conn_t;
typedef struct plume__http_s plume__http_t;
typedef struct plume__ws_s plume__ws_t;
typedef struct plume__eio_server_s plume__eio_server_t;
typedef struct plume__eio_session_s plume__eio_session_t;

enum {
  /* plume__conn_close ran: no more reads or upcalls */
  PLUME__CONN_CLOSING = 1 << 0,
  /* on p->dirty: flush at the end of this loop turn */
  PLUME__CONN_DIRTY = 1 << 1,
  /* one uv_write in flight (at most one at a time) */
  PLUME__CONN_WRITING = 1 << 2,
  PLUME__CONN_DRAIN = 1 << 3, /* close once queued output is written */
  /* upgraded: bytes go to websocket.c, not http.c */
  PLUME__CONN_WS = 1 << 4,
  PLUME__CONN_READ_OFF = 1 << 5, /* reading stopped (input backpressure) */
};

/* One queued output segment: bytes of a shared block, or (sh == NULL) bytes at
** offset off of the connection's scratch buffer (offsets, because scratch may
** grow). */
typedef struct plume__seg_s {
  plume__shared_t *sh;
  uint32_t off;
  uint32_t len;
} plume__seg_t;

/*
** One TCP connection. Owned by tcp.c: created on accept, freed only in the
** uv_close callback. It owns its HTTP parser (http), its WebSocket state (ws)
** and its output queue. owner is the Engine.IO session bound to it (a parked
** GET, a POST whose body is being read, or the websocket transport); the
** session clears the link when it lets go, and the connection tells the session
** when it closes (see plume__eio_conn_closed).
*/
struct plume__conn_s {
  uv_tcp_t tcp; /* first member: (plume__conn_t *)handle */
  plume_t *p;
  uint32_t id;                /* for logs */
  uint16_t flags;             /* PLUME__CONN_* */
  plume__conn_t *next_dirty;  /* p->dirty list */
  plume__conn_t *prev, *next; /* p->conns list, for shutdown and counting */
  plume__seg_t *segs;         /* queued output, in order */
  uint32_t nsegs, segs_cap;
  /* small bytes (headers, frame heads) referenced by segs */
  plume__buf_t scratch;
  /* bytes queued + in flight, checked against the output cap */
  size_t queued_bytes;
  /* header, body and keep-alive deadlines (http.c) */
  uv_timer_t timer;
  /* parser and current request; NULL once upgraded */
  plume__http_t *http;
  plume__ws_t *ws; /* WebSocket state; NULL before an upgrade */
  plume__eio_session_t *owner;
  /* bytes read and dropped while lingering (tcp.c) */
  size_t lingered;
};

/* Queues a copy of n bytes for output; the flush happens once per loop turn.
** Returns 0, PLUME_ECLOSED, or PLUME_ETOOBIG when the output cap is exceeded
** (the connection is then closed). */
int plume__conn_write(plume__conn_t *c, const void *p, size_t n);
/* Queues bytes [off, off+n) of a shared block without copying (takes a
** reference). */
int plume__conn_write_shared(plume__conn_t *c, plume__shared_t *sh, size_t off,
                             size_t n);
/* Closes the connection: stops reading, optionally writes what is queued first
** (drain), then uv_close; memory is freed in the close callback, never on the
** caller's stack. Safe to call more than once and from inside any callback. A
** drained close lingers: once the output is written it sends FIN and reads and
** drops input until EOF, for at most 2 s and one maximal request's worth of
** bytes, so that input still in flight cannot make the kernel answer with RST
** and discard the last answer (a 413, a close frame). */
void plume__conn_close(plume__conn_t *c, int drain);
/* Stops or restarts reading (input backpressure). */
void plume__conn_read(plume__conn_t *c, int on);
/* The peer address as text ("127.0.0.1:5000"). */
void plume__conn_peer(plume__conn_t *c, char *buf, size_t len);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== HTTP/1.1 (http.c) */

#define PLUME__HTTP_MAX_HEADERS_HARD 256

/* One request header; both slices point into the request's own buffer. */
typedef struct plume__header_s {
  plume_slice_t name;  /* as received; compare case-insensitively */
  plume_slice_t value; /* trimmed */
} plume__header_t;

/*
** A request, complete (head and body) when handed to a route, but for two cases
** on Engine.IO paths: plume__eio_handle_head gets the head alone while the body
** is still being read, and a request whose body is over the limit goes up with
** over_limit set and an empty body. All slices point into the request's buffer
** and stay valid until the response is sent (plume__http_respond) or the
** connection closes. A parked request (plume__http_park) keeps them.
*/
typedef struct plume__http_req_s {
  int method;          /* llhttp_method_t: HTTP_GET, HTTP_POST, ... */
  plume_slice_t url;   /* path + query as received */
  plume_slice_t path;  /* up to '?' */
  plume_slice_t query; /* after '?', without it; n == 0 when absent */
  plume__header_t *headers;
  uint32_t nheaders;
  plume_slice_t body;
  uint8_t keep_alive; /* llhttp_should_keep_alive */
  uint8_t upgrade;    /* Connection: upgrade + Upgrade: websocket */
  uint8_t over_limit; /* the body passed the route's limit: it is not read, and
                         the connection closes after the answer */
} plume__http_req_t;

/* Finds a header by name (case-insensitive). Returns a slice with p == NULL if
** absent. */
plume_slice_t plume__http_header(const plume__http_req_t *r, const char *name);
/* Finds a query parameter and percent-decodes it into buf (NUL-terminated).
** Returns its length, or -1 when absent or longer than len-1. */
int plume__http_query(const plume__http_req_t *r, const char *name, char *buf,
                      size_t len);

/*
** Answers the connection's current request: status line, Content-Length (byte
** length of body), Content-Type when given, extra_headers (preformatted "Name:
** value\r\n" lines, may be NULL), Connection: keep-alive or close. Then the
** next pipelined request, if any, is parsed. A HEAD request gets the headers
** only. Returns 0 or PLUME_ECLOSED.
*/
int plume__http_respond(plume__conn_t *c, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t n);
/* Like plume__http_respond with a shared body (no copy). */
int plume__http_respond_shared(plume__conn_t *c, int status,
                               const char *content_type,
                               const char *extra_headers,
                               plume__shared_t *body);
/* Keeps the current request open for a later plume__http_respond (a
** long-polling GET). Reading goes on so that EOF is noticed; further pipelined
** requests wait. */
void plume__http_park(plume__conn_t *c);
/* The current request of c, or NULL. */
plume__http_req_t *plume__http_current(plume__conn_t *c);
/* Bytes that followed the head of an upgrade request on c (the first WebSocket
** frames), copied; p == NULL when there are none. Valid until
** plume__http_free(c), so read them before freeing the HTTP state. */
plume_slice_t plume__http_leftover(plume__conn_t *c);

/* Feeds bytes read from the socket (called by tcp.c for connections not
** upgraded). */
void plume__http_on_data(plume__conn_t *c, const char *p, size_t n);
/* The peer finished sending (EOF, called by tcp.c). A request still being
** answered, and not parked, gets its answer before the connection closes (a
** half-closing client); otherwise the connection closes now (an aborted
** long-poll reaches its session). */
void plume__http_on_eof(plume__conn_t *c);
/* Releases the HTTP state (called on close and after an upgrade). */
void plume__http_free(plume__conn_t *c);
/* Sets up the HTTP state of a new connection and arms the header deadline. */
int plume__http_init(plume__conn_t *c);

/* The reason phrase of a status code ("Bad Request"). */
const char *plume__http_reason(int status);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== WebSocket (websocket.c) */

/* What a WebSocket connection reports upward (to its Engine.IO session). */
typedef struct plume__ws_handler_s {
  /* A whole message. p is valid only during the call. */
  void (*on_message)(plume__conn_t *c, int binary, const char *p, size_t n);
  /* The WebSocket ended (close frame, error, or TCP close); called once. */
  void (*on_close)(plume__conn_t *c, int code);
} plume__ws_handler_t;

/*
** Validates the upgrade request on c (Sec-WebSocket-Key/Version, method GET),
** answers 101 with Sec-WebSocket-Accept (no extensions, no subprotocol) plus
** extra_headers, and switches c to WebSocket framing. On a bad handshake
** answers 400 and closes; returns PLUME_EPROTO. Bytes that followed the request
** head are fed to the WebSocket parser.
*/
int plume__ws_accept(plume__conn_t *c, const plume__ws_handler_t *h,
                     const char *extra_headers);
/* Sends one message: optional prefix bytes (copied, e.g. the v3 binary type
** byte) then n bytes of sh from off (shared, not copied). sh may be NULL when n
** == 0. */
int plume__ws_send(plume__conn_t *c, int binary, const void *prefix,
                   size_t prefix_n, plume__shared_t *sh, size_t off, size_t n);
/* Sends a close frame (code 0: no status code) and closes after it is
** written. */
void plume__ws_close(plume__conn_t *c, int code);
/* Feeds bytes read from the socket (called by tcp.c for upgraded
** connections). */
void plume__ws_on_data(plume__conn_t *c, const char *p, size_t n);
/* Releases the WebSocket state (called from the connection's close path). */
void plume__ws_free(plume__conn_t *c);
/* Frees the wslay context of every WebSocket that had no input for a whole
** loop turn (called once per turn, by the flusher). */
void plume__ws_sweep(plume_t *p);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Engine.IO (engineio.c) */

/* What an Engine.IO session reports upward (Socket.IO, or the Lua engineio
** seam). */
typedef struct plume__eio_handler_s {
  /* A new session is open; the open packet is already queued. */
  void (*on_open)(plume__eio_session_t *s);
  /* A message packet. p is valid only during the call. */
  void (*on_message)(plume__eio_session_t *s, int binary, const char *p,
                     size_t n);
  /* The session closed for reason ("transport close", "ping timeout", ...);
  ** called once. After it returns the session must not be used. */
  void (*on_close)(plume__eio_session_t *s, const char *reason);
} plume__eio_handler_t;

enum { PLUME__EIO_POLLING = 1, PLUME__EIO_WEBSOCKET = 2 };

/* Options of one Engine.IO server (one path). Defaults come from
** plume_options_t. */
typedef struct plume__eio_config_s {
  /* prefix with trailing slash, e.g. "/engine.io/" */
  char path[256];
  int ping_interval, ping_timeout, upgrade_timeout, close_timeout;
  int max_payload;
  int transports; /* PLUME__EIO_POLLING | PLUME__EIO_WEBSOCKET */
  int allow_upgrades;
  int allow_eio3;
  int cors; /* 0: no CORS headers */
  int cors_credentials;
  /* NULL-terminated; NULL or "*" entry: any origin */
  char **cors_origins;
  /* Optional hooks (may be NULL): origin check (returns 1 to allow), request
  ** check (returns 0 to allow, else an error message for 403), sid generator
  ** (writes a NUL-terminated id of at most 63 chars, returns 0). ud is passed
  ** back. */
  int (*allow_origin)(void *ud, const char *origin, size_t n);
  const char *(*allow_request)(void *ud, plume__conn_t *c,
                               const plume__http_req_t *r);
  int (*generate_id)(void *ud, char *out, size_t len);
  /* Optional: offered every request whose path is longer than the prefix,
  ** before any Engine.IO check (Socket.IO's client bundle at
  ** <path>socket.io.js); returns 1 when it answered the request, 0 to let
  ** Engine.IO handle it. */
  int (*serve)(void *ud, plume__conn_t *c, plume__http_req_t *r);
  void *hook_ud;
} plume__eio_config_t;

/* Fills cfg from the instance options (path "/engine.io/"). */
void plume__eio_config_init(plume__eio_config_t *cfg, const plume_options_t *o);

/* Attaches an Engine.IO server at cfg->path (copied; cors_origins are copied
** too). ud is for the handler. Returns 0 or a negative error; *out is set on
** success. */
int plume__eio_server_new(plume_t *p, const plume__eio_config_t *cfg,
                          const plume__eio_handler_t *h, void *ud,
                          plume__eio_server_t **out);
/* Closes every session (reason "server shutting down") and detaches the
** server. */
void plume__eio_server_free(plume__eio_server_t *srv);
void *plume__eio_server_ud(plume__eio_server_t *srv);
/* The server whose path prefixes the request path, or NULL (http.c routing). */
plume__eio_server_t *plume__eio_server_match(plume_t *p, plume_slice_t path);
/* The largest request body the server takes (its max_payload): http.c's limit
** there. */
size_t plume__eio_server_max_payload(const plume__eio_server_t *srv);
/*
** The head of a request with a body on srv's path is complete; r->body is empty
** and the body is still being read (http.c). A polling POST marks its session's
** POST as in progress (c->owner); a second POST meanwhile is answered 400 and
** the session closes (§2.6). An answer given here ends the connection once
** written, the body unread.
*/
void plume__eio_handle_head(plume__eio_server_t *srv, plume__conn_t *c,
                            plume__http_req_t *r);
/* Handles one complete request on its path: handshake, polling GET/POST,
** upgrade. */
void plume__eio_handle_request(plume__eio_server_t *srv, plume__conn_t *c,
                               plume__http_req_t *r);
/* Tells the session bound to c that the connection is gone (aborted GET or
** POST, TCP close). */
void plume__eio_conn_closed(plume__conn_t *c);

/* Queues one message packet: text (the packet data without the '4') or binary
** bytes. The bytes are copied. Returns 0 or PLUME_ECLOSED. */
int plume__eio_send(plume__eio_session_t *s, int binary, const void *p,
                    size_t n);
/* Queues a message packet whose encoded form is shared: for text, sh holds "4"
** + data; for binary, the raw bytes. Takes a reference. Used to encode a
** broadcast once. */
int plume__eio_send_shared(plume__eio_session_t *s, int binary,
                           plume__shared_t *sh);
/* Closes the session with reason (e.g. "forced close"); queued packets are
** flushed first where the transport allows. on_close runs once. */
void plume__eio_close(plume__eio_session_t *s, const char *reason);

const char *plume__eio_sid(const plume__eio_session_t *s);
int plume__eio_protocol(const plume__eio_session_t *s);  /* 3 or 4 */
int plume__eio_transport(const plume__eio_session_t *s); /* PLUME__EIO_* */
plume__eio_server_t *plume__eio_session_server(const plume__eio_session_t *s);
/* The request that opened the session (headers, url, peer) kept for the
** handshake data. Returns NULL once freed. The slices stay valid for the
** session's life. */
const plume__http_req_t *plume__eio_handshake(const plume__eio_session_t *s);
const char *plume__eio_remote_address(const plume__eio_session_t *s);
/* Per-session pointer for the layer above. */
void *plume__eio_get_ud(const plume__eio_session_t *s);
void plume__eio_set_ud(plume__eio_session_t *s, void *ud);

/* Timing (engineio.c): on_close never runs inside a call into this layer (but
** for plume__eio_server_free); it comes from the session's timer on a later
** loop turn. From the close on, plume__eio_send returns PLUME_ECLOSED and
** requests with the sid get 400 code 1, except that a server close on polling
** with no GET parked keeps the sid until the next GET collects "6\x1e1" (or
** close_timeout passes). */

/* The wire codec (engineio_codec.c): pure functions, no loop, fuzzed. */

enum {
  PLUME__EIO_OPEN,
  PLUME__EIO_CLOSE,
  PLUME__EIO_PING,
  PLUME__EIO_PONG,
  PLUME__EIO_MESSAGE,
  PLUME__EIO_UPGRADE,
  PLUME__EIO_NOOP
};

/* One decoded packet. data points into the decoder's input (valid as long as it
** is). A "b" packet keeps its base64 text (b64 == 1) until
** plume__eio_packet_bytes decodes it. */
typedef struct plume__eio_packet_s {
  int type;         /* PLUME__EIO_OPEN .. PLUME__EIO_NOOP */
  int binary;       /* the data is bytes, not text */
  int b64;          /* the data is base64 text of those bytes */
  const char *data; /* after the type */
  size_t n;
} plume__eio_packet_t;

/* Decodes one text packet (a WebSocket text frame or one payload item) of
** protocol 3 or 4. The data is not checked for UTF-8. Returns 0 or PLUME_EPROTO
** (empty, unknown type, a "b" packet whose base64 is not canonical and
** padded). */
int plume__eio_decode_packet(int proto, const char *p, size_t n,
                             plume__eio_packet_t *pkt);
/* Decodes a WebSocket binary frame: v4 a message of raw bytes; v3 the first
** byte is the type. Returns 0 or PLUME_EPROTO. */
int plume__eio_decode_binary_frame(int proto, const char *p, size_t n,
                                   plume__eio_packet_t *pkt);
/* Writes the packet's bytes (decoding base64 when b64) to dst, which needs
** pkt->n bytes. Returns the byte count or -1 for invalid base64. */
long plume__eio_packet_bytes(const plume__eio_packet_t *pkt,
                             unsigned char *dst);

/* Iterates over the packets of a polling payload without copying: v4 (\x1e
** separated), v3 text (<len>: prefixes in UTF-16 units) or v3 binary (binary !=
** 0: application/ octet-stream bodies). Text is checked for UTF-8. */
typedef struct plume__eio_reader_s {
  const char *p;
  size_t n, off;
  uint32_t count; /* packets returned so far */
  uint8_t proto, binary;
} plume__eio_reader_t;

void plume__eio_reader_init(plume__eio_reader_t *r, int proto, int binary,
                            const char *p, size_t n);
/* Returns 1 with *pkt set, 0 at the end, or PLUME_EPROTO (an empty payload is
** an error; packets before the bad one were already returned). */
int plume__eio_reader_next(plume__eio_reader_t *r, plume__eio_packet_t *pkt);

/* 1 when p holds valid UTF-8 (no overlongs, surrogates or code points past
** U+10FFFF). */
int plume__eio_utf8_valid(const char *p, size_t n);
/* The length of valid UTF-8 text in UTF-16 code units (v3 lengths), or -1 if
** invalid. */
long plume__eio_utf16_len(const char *p, size_t n);

/* One queued outgoing packet: for text, sh holds the whole encoded packet
** ("4hello", "2"); for binary, the raw bytes of a message. */
typedef struct plume__eio_qent_s {
  plume__shared_t *sh;
  uint8_t binary;
} plume__eio_qent_t;

enum {
  PLUME__EIO_PAYLOAD_V4,       /* "4a\x1e" "bAQI=" ... */
  PLUME__EIO_PAYLOAD_V3_TEXT,  /* "2:4a" "10:b4AQIDBA==" ... */
  PLUME__EIO_PAYLOAD_V3_BINARY /* 00 02 FF '4' 'a' 01 05 FF 04 ... */
};

/* The size of, and the encoding of, nq packets as one polling payload of the
** given kind. */
size_t plume__eio_payload_size(int kind, const plume__eio_qent_t *q, size_t nq);
size_t plume__eio_payload_encode(int kind, const plume__eio_qent_t *q,
                                 size_t nq, char *dst);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== JSON text, without Lua (json.c) */

/* Ceiling for max_json_depth: the scanner keeps a few bytes per level on the C
** stack. */
#define PLUME__JSON_DEPTH_MAX 1024

enum {
  PLUME__JSON_NONE,
  PLUME__JSON_NULL,
  PLUME__JSON_FALSE,
  PLUME__JSON_TRUE,
  PLUME__JSON_NUMBER,
  PLUME__JSON_STRING,
  PLUME__JSON_ARRAY,
  PLUME__JSON_OBJECT
};

/* What plume__json_scan learnt about a JSON text. */
typedef struct plume__json_info_s {
  int type; /* PLUME__JSON_* of the top-level value */
  /* arrays: type of the first element; NONE when empty */
  int first_type;
  /* arrays: the first element's text (strings keep quotes) */
  plume_slice_t first;
  uint32_t count;        /* arrays: number of elements */
  uint32_t placeholders; /* objects whose "_placeholder" member is true */
  const char *error;     /* on failure: what was wrong (static text) */
  size_t error_at;       /* on failure: byte offset in the text */
} plume__json_info_t;

/*
** Validates JSON text strictly (RFC 8259: no NaN/Infinity/hex, no leading
** zeros, no trailing commas, no raw control characters or invalid UTF-8 in
** strings, numbers that overflow a double refused; lone surrogate escapes such
** as "\ud800" are accepted, as JSON.parse does). Nesting deeper than max_depth
** (clamped to PLUME__JSON_DEPTH_MAX) is refused without recursion. With
** attachments >= 0 every object whose "_placeholder" is true must have a "num"
** that is an integer in [0, attachments) (Socket.IO binary packets). info may
** be NULL. Returns 0, PLUME_EPROTO (invalid text or placeholder) or
** PLUME_ETOOBIG (too deep).
*/
int plume__json_scan(const char *p, size_t n, int max_depth, int attachments,
                     plume__json_info_t *info);
/* 1 when tok, a JSON string token with its quotes as found by plume__json_scan,
** equals the C string s once unescaped ("\u0063onnect" equals "connect"). */
int plume__json_string_eq(plume_slice_t tok, const char *s);
/* Appends s as a JSON string literal, escaped as JSON.stringify does; invalid
** UTF-8 becomes U+FFFD. Returns 0 or UV_ENOMEM. */
int plume__json_write_string(plume__buf_t *b, const char *s, size_t n);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Socket.IO packets (socketio.c) */

enum {
  PLUME__SIO_CONNECT,
  PLUME__SIO_DISCONNECT,
  PLUME__SIO_EVENT,
  PLUME__SIO_ACK,
  PLUME__SIO_CONNECT_ERROR,
  PLUME__SIO_BINARY_EVENT,
  PLUME__SIO_BINARY_ACK
};

/* Largest ack id: ids must survive as JavaScript numbers (2^53 - 1). */
#define PLUME__SIO_MAX_ID 9007199254740991LL

/*
** One Socket.IO packet (protocol.md §3). Decoded: the slices point into the
** decoder (see plume__sio_feed) or into the text given to plume__sio_decode. To
** encode: fill type, nsp, id, data (and attachments for the binary types) and
** call plume__sio_encode.
*/
typedef struct plume__sio_packet_s {
  int type;        /* PLUME__SIO_* */
  int attachments; /* binary types: number of binary messages that follow */
  /* "/" when the packet names none; n == 0 also means "/" */
  plume_slice_t nsp;
  int64_t id;         /* ack id, -1 when absent */
  plume_slice_t data; /* the JSON payload, n == 0 when absent */
  /* event types: the event name's JSON text (quotes kept) */
  plume_slice_t event;
} plume__sio_packet_t;

/*
** Decodes one text packet strictly (§3.4): type 0-6 (CONNECT_ERROR is refused
** from a client); attachments 1..max_attachments followed by '-' for the binary
** types; namespace up to ','; ack id digits up to PLUME__SIO_MAX_ID; a payload
** checked with plume__json_scan and shaped by type (CONNECT: absent or an
** object; DISCONNECT: absent; EVENT: a non-empty array whose first element is a
** number or a string that is not a reserved event name; ACK: an array). In
** binary packets every placeholder's num must be below the attachment count.
** Returns 0, PLUME_EPROTO or PLUME_ETOOBIG (too many attachments, too deep);
** *err (may be NULL) gets a static message ("invalid payload", "illegal
** attachments", ...).
*/
int plume__sio_decode(const char *p, size_t n, int max_attachments,
                      int max_depth, plume__sio_packet_t *pkt,
                      const char **err);

enum {
  PLUME__SIO_MORE = 0,  /* a binary packet waits for its attachments */
  PLUME__SIO_PACKET = 1 /* a complete packet is ready */
};

/*
** Reassembles packets from Engine.IO messages (§3.4 step 7): after a binary
** packet's text exactly 'attachments' binary messages must follow. One per
** client connection; owns copies of the packet text and the attachments.
*/
typedef struct plume__sio_decoder_s {
  int max_attachments, max_depth;
  /* the packet, once plume__sio_feed returned PACKET */
  plume__sio_packet_t pkt;
  plume_slice_t *att; /* its attachments, pkt.attachments of them */
  plume__buf_t text;  /* the packet text the slices of pkt point into */
  plume__buf_t bin;   /* attachment bytes, back to back */
  int expected;       /* binary messages still owed; 0: idle */
  int received;
  const char *error; /* after a failure: why (static text) */
} plume__sio_decoder_t;

void plume__sio_decoder_init(plume__sio_decoder_t *d, int max_attachments,
                             int max_depth);
void plume__sio_decoder_free(plume__sio_decoder_t *d);
/*
** Feeds one Engine.IO message (binary or text). Returns PLUME__SIO_PACKET when
** d->pkt (and d->att for binary packets) is complete, PLUME__SIO_MORE while
** attachments are owed, or a negative error (d->error says why; the connection
** must close): a text message while attachments are owed, a binary one when
** none are, or any plume__sio_decode error. The decoder is idle again after
** PACKET or an error, so it never stays armed. The packet's slices stay valid
** until the next feed or free; p is copied.
*/
int plume__sio_feed(plume__sio_decoder_t *d, int binary, const char *p,
                    size_t n);

/*
** Appends a packet as the server writes it (§3.3): type, "<attachments>-" for
** the binary types, "<nsp>," unless the namespace is "/", the id when >= 0,
** then pkt->data verbatim. Append '4' first for an Engine.IO message. Returns 0
** or UV_ENOMEM.
*/
int plume__sio_encode(plume__buf_t *b, const plume__sio_packet_t *pkt);
/* The same as a shared block, "4"-prefixed when eio_prefix: one broadcast,
** encoded once for every recipient (plume__eio_send_shared). NULL on OOM. */
plume__shared_t *plume__sio_encode_shared(const plume__sio_packet_t *pkt,
                                          int eio_prefix);
/* CONNECT reply: v4 (eio 4) 0[nsp,]{"sid":"<sid>"}; v3 (eio 3) "0" on "/",
** "0/nsp," elsewhere. */
int plume__sio_encode_connect(plume__buf_t *b, plume_slice_t nsp,
                              const char *sid, int eio);
/* CONNECT_ERROR: v4 4[nsp,]{"message":<message>[,"data":<data>]}; v3 the data,
** or the message as a JSON string. data is JSON text, n == 0 when there is
** none. */
int plume__sio_encode_connect_error(plume__buf_t *b, plume_slice_t nsp,
                                    const char *message, plume_slice_t data,
                                    int eio);
/* DISCONNECT: "1" on "/", "1/nsp," elsewhere. */
int plume__sio_encode_disconnect(plume__buf_t *b, plume_slice_t nsp);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The instance (core.c) */

typedef struct plume__listener_s {
  uv_tcp_t tcp;
  plume_t *p;
  struct plume__listener_s *next;
} plume__listener_t;

struct plume_s {
  uv_loop_t *loop;
  uv_loop_t own_loop; /* used when the instance owns its loop */
  int owns_loop;
  plume_options_t opts;
  lua_State *L;
  uv_check_t flusher; /* flushes p->dirty after I/O callbacks */
  uv_prepare_t
      pre_flusher;      /* flushes p->dirty before the loop blocks, so output of
                           timer callbacks does not wait for the next wake-up */
  plume__conn_t *dirty; /* connections with queued output */
  /* WebSockets keeping their wslay context for a turn */
  plume__ws_t *ws_warm;
  plume__conn_t *conns; /* every open connection */
  uint32_t nconns;
  uint32_t next_conn_id;
  plume__listener_t *listeners;
  plume__eio_server_t *eio_servers;
  char read_buf[65536]; /* one read buffer for every connection: reads are
                           handled at once and anything kept is copied */
  int read_buf_busy;
  int closing;
  int pending_closes; /* handles whose close callback has not run yet */
  void (*close_cb)(plume_t *p);
  int log_level;
  int log_json;
  char public_dir[1024]; /* static files; empty: none */
  /* more static folders, by URL prefix (static.c) */
  struct plume__mount_s *mounts;
  /* set by a plume wait just before it yields a task */
  int task_waiting;
  /* number of the last wait armed (plume__task_current) */
  lua_Integer task_last_wait;
  /* tasks started and not finished (for shutdown) */
  int lua_tasks;
  /* The living runtime: limits, waits, reload, shutdown (lua_bridge.c,
  ** lua_async.c, reload.c). */
  /* bytes the Lua state holds now (counting allocator) */
  size_t lua_mem;
  size_t lua_mem_peak;  /* the most it ever held */
  size_t lua_mem_limit; /* allocations beyond this fail (0: no cap) */
  /* task code runs: the cap applies (C glue never fails) */
  int lua_capped;
  /* ns a task may run between waits (0: no limit) */
  uint64_t task_budget;
  /* uv_hrtime() at which the running slice is stopped */
  uint64_t task_deadline;
  /* the running slice got its time-budget error already */
  int task_expired;
  /* ... and went on running: the count hook yielded it */
  int task_killed;
  /* task runs nested on the C stack (a spawn in a task) */
  int task_depth;
  /* registry refs of the task tables (lua_bridge.c) */
  int lua_ref_tasks;
  int lua_ref_pool;
  int lua_ref_waits;
  /* the task running now (loop thread), NULL if none */
  lua_State *task_co;
  /* arms the time budget (lua_bridge.c); NULL until a task runs with one */
  struct plume__watchdog_s *watchdog;
  /* no thread could be started: tasks keep a count hook */
  int watchdog_failed;
  /* a Lua warning being assembled (warn("a", "b")) */
  plume__buf_t lua_warn;
  int lua_warn_off; /* warn("@off") */
  /* pending waits: sleeps, file and HTTP requests */
  struct plume__wait_s *waits;
  struct plume__ptimer_s *timers; /* plume.after / plume.every timers */
  /* the app folder watcher; NULL when not watching */
  struct plume__reload_s *reload;
  /* shutdown's timer: drain, final step, close poll */
  uv_timer_t *drain;
  /* uv_now() when the drain gives up; 0 once over */
  uint64_t drain_deadline;
  int exit_code; /* what the `plume` command exits with */
  /* Embedding (embed.c, lua_bridge.c). */
  /* L is the host's (the rock): given back, never closed */
  int lua_borrowed;
  /* the host's extra space of its main thread, given back */
  void *lua_host_extra;
  /* C service calls not yet resumed, for shutdown */
  struct plume_call_s *calls;
};

/* Marks c for a flush at the end of this loop turn (tcp.c). */
void plume__conn_mark_dirty(plume__conn_t *c);
/* Flushes every dirty connection with one vectored write each (the uv_check
** callback). */
void plume__flush_all(plume_t *p);
/* Starts listening (tcp.c). */
int plume__tcp_listen(plume_t *p, const char *host, int port);
/* Closes listeners and connections (tcp.c). */
void plume__tcp_close_all(plume_t *p);

/* Serves a static file from p->public_dir for GET/HEAD, or answers 404
** (static.c). */
void plume__static_serve(plume_t *p, plume__conn_t *c, plume__http_req_t *r);
/* Serves dir under the URL prefix ("/feathers/": starts and ends with '/') for
** the paths public/ has no file for; mounting a prefix again replaces its
** folder. Returns 0, PLUME_EOPTION or UV_ENOMEM. plume__static_free drops every
** mount (plume_destroy). */
typedef struct plume__mount_s plume__mount_t;
int plume__static_mount(plume_t *p, const char *prefix, const char *dir);
void plume__static_free(plume_t *p);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The living runtime: async Lua, reload, shutdown */

/*
** lua_async.c. Sets the waiting functions on the plume.core table at the top of
** L: sleep, after, every, spawn, hrtime, fs_read, fs_write, fs_stat, fs_mkdir,
** http_request, exit, mem. Waits follow style.md F.3; each pending one is on
** p->waits so that shutdown can cancel it (its task is then never resumed).
*/
void plume__async_open(lua_State *L);
/* Cancels every plume.after / plume.every timer (shutdown: no new ticks). */
void plume__async_stop_timers(plume_t *p);
/* Cancels every pending wait; handles are closed (p->pending_closes counts
** them). */
void plume__async_cancel_all(plume_t *p);

/*
** reload.c. Watches dir (its root, services/ and config/) and, ~100 ms after
** the last change, reloads what changed through plume__lua_reload. Returns 0 or
** a libuv error (nothing is watched then).
*/
int plume__reload_watch(plume_t *p, const char *dir);
/* Stops watching (handles close asynchronously, counted in
** p->pending_closes). */
void plume__reload_stop(plume_t *p);
/* Reloads the configuration and every service now (SIGHUP). */
void plume__reload_all(plume_t *p);

/*
** Config files (reload.c): runs dir/config/default.lua, then
** dir/config/<env>.lua, each a Lua file returning a table, in a small Lua state
** of its own, and sets the keys that name options on o (numbers, booleans and
** strings, as text). Other keys are application settings, left to the
** framework. A missing file is skipped. Returns 0, or PLUME_EOPTION /
** PLUME_ELUA with a message in err ("config/default.lua: invalid value for
** port").
*/
int plume__config_apply(const char *dir, const char *env, plume_options_t *o,
                        char *err, size_t errlen);

/* Runs require("plume").reload(changes) in a task: n paths relative to the app
** folder, or everything when changes is NULL. Returns like
** plume__task_start. */
int plume__lua_reload(plume_t *p, const char *const *changes, int n);
/* Runs require("plume").shutdown() in a task: clients are told, services torn
** down. */
void plume__lua_shutdown(plume_t *p);
/* Called by the bridge when a task ends: a draining shutdown may go on. */
void plume__drain_check(plume_t *p);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Lua (lua_bridge.c, lua_api.c) */

/*
** JSON between the wire and Lua (json.c), one codec for the whole project:
**  - arrays decode to tables with the metatable plume.json.array_mt, objects to
**    tables with
**    plume.json.object_mt, JSON null to plume.json.null (a light userdata);
**  - encoding: a table with array_mt is an array, with object_mt an object; an
**    unmarked table
**    is an array when its keys are exactly 1..n (n > 0), otherwise an object
**    (so an unmarked
**    empty table is {}); integers print as integers, floats as JavaScript
**    prints them
**    (shortest form that round-trips), NaN/Inf refused;
**  - key order: decoding records the keys of each object with two keys or more
**    in wire
**    order, in a weak-keyed side table (never a field, so pairs() sees members
**    only);
**    encoding lists keys as JavaScript does: array-index keys ("0", "17")
**    first, by value,
**    then the recorded keys the object still has, in wire order, then any
**    others by bytes;
**  - binary values (plume.binary userdata) encode as
**    {"_placeholder":true,"num":k} with the
**    bytes appended to an attachment list, and placeholders decode back to the
**    attachments.
*/

/* Pushes a new plume.binary userdata holding a copy of n bytes. */
void plume__binary_push(lua_State *L, const void *p, size_t n);
/* Returns the bytes of the plume.binary at idx (NULL if it is not one); *n gets
** the length. The bytes stay valid while the value is reachable from Lua. */
const char *plume__binary_get(lua_State *L, int idx, size_t *n);

/* Pushes array_mt (object == 0) or object_mt, creating them on first use. */
void plume__json_push_mt(lua_State *L, int object);

/*
** Pushes plume.core.json: {encode, encode_placeholders, decode, null, array_mt,
** object_mt, binary, is_binary, keys, object_with_order}. encode(v) returns the
** text or raises "result is not serializable: ..." / "number is not
** serializable: ..."; encode_placeholders(v) returns the text and an array of
** the binaries it replaced by placeholders; decode(text [, attachments])
** returns the value or nil, err; keys(t) lists the keys of t in the order
** encode writes them; object_with_order(t, keys) marks t as an object and
** records keys as its order. max_depth <= 0 means 128.
*/
void plume__json_open(lua_State *L, int max_depth);

/* How plume__json_decode runs, and what it reports. */
typedef struct plume__json_dec_s {
  int max_depth; /* nesting cap (clamped to PLUME__JSON_DEPTH_MAX) */
  int att_base;  /* stack index of the first attachment value */
  /* attachments there; < 0: placeholders stay plain objects */
  int natt;
  int spread;        /* a top-level array pushes its elements, not one table */
  int count;         /* out: values pushed */
  const char *error; /* out: on failure, static text */
  size_t error_at;   /* out: on failure, byte offset */
} plume__json_dec_t;

/*
** Pushes the Lua value of JSON text (plume.json rules above, key order
** recorded; integers written without fraction or exponent that fit in 64 bits
** become Lua integers, other numbers floats). With natt >= 0, an object whose
** "_placeholder" is true becomes the value at att_base + num (num an integer in
** [0, natt)). Returns 0 with d->count values pushed, or PLUME_EPROTO /
** PLUME_ETOOBIG with nothing pushed. Raises only on Lua memory errors.
*/
int plume__json_decode(lua_State *L, const char *p, size_t n,
                       plume__json_dec_t *d);

struct plume__json_key_s;

/*
** An encoder: one growing output buffer and scratch space reused from call to
** call, so encoding allocates nothing per value. Owned by whoever embeds it; a
** Lua error thrown through an encode leaks nothing as long as the owner frees
** the encoder later.
*/
typedef struct plume__json_enc_s {
  plume__buf_t out;   /* the JSON text; encoding appends */
  plume_slice_t *att; /* binaries met, in placeholder order; valid while the
                         encoded values stay reachable from Lua */
  int natt, att_cap;
  int max_depth; /* nesting cap */
  /* 1: binaries become placeholders; 0: an error */
  int binary;
  /* 0: no limit (the peer's decoder has one, often 10) */
  int max_attachments;
  int att_table; /* when != 0, stack index of a table that also gets each
                    binary value (att_table[k+1]) */
  struct plume__json_key_s *keys; /* object keys being sorted, all levels */
  size_t nkeys, keys_cap;
  int amt, omt, ord; /* stack slots of array_mt, object_mt and the key-order
                        table during a call */
  int path_at;       /* the error path is built backwards in path */
  char path[96];
  char error[192]; /* after a failure: the message */
} plume__json_enc_t;

void plume__json_enc_init(plume__json_enc_t *e, int max_depth);
/* Empties the output and the attachment list (keeps the memory). */
void plume__json_enc_reset(plume__json_enc_t *e);
void plume__json_enc_free(plume__json_enc_t *e);
/*
** Appends the value at idx as compact JSON. Object keys come out as JavaScript
** lists them: array-index keys first, by value, then the keys recorded for the
** table (a decoded object, object_with_order) in their order, then any others
** by bytes, so that the output is deterministic although Lua keeps no insertion
** order. Returns 0, or UV_ENOMEM / PLUME_EPROTO with e->error set ("result is
** not serializable: function at [2].data").
*/
int plume__json_encode(lua_State *L, int idx, plume__json_enc_t *e);
/* Appends the n values from stack index first as one JSON array (nil becomes
** null). */
int plume__json_encode_list(lua_State *L, int first, int n,
                            plume__json_enc_t *e);

/*
** Socket.IO glue (socketio.c). Pushes the payload of a complete packet: the
** elements of an array payload one by one when spread (an EVENT's name and
** arguments, an ACK's arguments), otherwise one value; nothing when the packet
** has no payload. Binary packets get their attachments as plume.binary values
** in place of the placeholders (one value per attachment, shared when
** referenced twice). Returns the count pushed, or a negative error with nothing
** pushed and *err set.
*/
int plume__sio_push_data(lua_State *L, const plume__sio_packet_t *pkt,
                         const plume_slice_t *att, int max_depth, int spread,
                         const char **err);
/*
** Encodes the n values from stack index first as pkt's payload array into e
** (reset first), binaries as placeholders: pkt->type becomes BINARY_EVENT /
** BINARY_ACK and pkt->attachments their count when any is met, and pkt->data
** points into e->out. The attachments are e->att[0..e->natt). Then
** plume__sio_encode(_shared) writes the packet. Returns 0 or a negative error
** with e->error set.
*/
int plume__sio_encode_args(lua_State *L, int first, int n,
                           plume__sio_packet_t *pkt, plume__json_enc_t *e);
/*
** The Socket.IO server (socketio.c): adds core.sio_* (attach, namespaces,
** sockets, emits, acks, rooms, broadcasts; see lua/plume/socketio.lua) to the
** table on top of L and registers the metatables of their handles.
*/
void plume__sio_open(lua_State *L);

/* Creates the Lua state of p, loads plume.core and the framework. Returns 0 or
** PLUME_ELUA. */
int plume__lua_init(plume_t *p);
void plume__lua_close(plume_t *p);
/* Loads an app folder through the framework (lua/plume/init.lua: load_app). */
int plume__lua_load_app(plume_t *p, const char *dir);

/*
** Tasks: every inbound call runs in its own coroutine. plume__task_start takes
** a function and nargs arguments from the top of p->L's stack, runs it in a
** coroutine pinned in the registry until it finishes, and returns 0 (finished
** or waiting) or PLUME_ELUA (it raised, or could not start: the error and its
** traceback are logged).
*/
int plume__task_start(plume_t *p, int nargs);
/*
** A wait of a task, as the code that ends the wait keeps it: the coroutine and
** the wait's number, never reused in the instance. The task may end while the
** wait is pending (an error, its time budget, shutdown) and its coroutine then
** serves another task or is collected, so co is only a key: touch it only once
** plume__task_waiter returned it.
*/
typedef struct plume__task_ref_s {
  lua_State *co;    /* NULL: no task waits */
  lua_Integer wait; /* the number plume__task_current gave */
} plume__task_ref_t;
/* For C functions that wait: raises "cannot wait here" unless L is a task that
** may yield. Call it first; then arm the wait with plume__task_current(L) and
** return plume__task_wait(L). */
void plume__task_check_wait(lua_State *L);
/* Arms a wait of the running task L and returns its reference. Raises nothing;
** a task's earlier references no longer resume it. */
plume__task_ref_t plume__task_current(lua_State *L);
int plume__task_wait(lua_State *L);
/* The coroutine of t while t is the wait its task is suspended in, else NULL:
** the task ended or waits on something else, and its waker only cleans up. Push
** the values the task gets on the coroutine returned, then call
** plume__task_resume. */
lua_State *plume__task_waiter(plume_t *p, plume__task_ref_t t);
/* Resumes the task suspended in t with nres values pushed on its coroutine; the
** wait is then over. Returns like plume__task_start, or PLUME_ESTATE (nothing
** done) when plume__task_waiter(p, t) is NULL. */
int plume__task_resume(plume_t *p, plume__task_ref_t t, int nres);
/* The instance that owns a Lua state (from the registry). */
plume_t *plume__lua_instance(lua_State *L);
/*
** Options of the table at t (lua_api.c): t[name] as an int in 0..2^31-1, def
** when nil (raises "option <name> out of range", or a number expected);
** t[name]'s truth, def when nil; a registry reference to t[name] when it is a
** function, else LUA_NOREF.
*/
int plume__lua_opt_int(lua_State *L, int t, const char *name, int def);
int plume__lua_opt_bool(lua_State *L, int t, const char *name, int def);
int plume__lua_opt_ref(lua_State *L, int t, const char *name);
/* The Lua functions behind an Engine.IO server's hooks: registry references,
** or LUA_NOREF. */
typedef struct plume__eio_lua_refs_s {
  int origin;  /* cors.origin when it is a function */
  int request; /* allowRequest(req) -> ok, message */
  int id;      /* generateId() -> id */
} plume__eio_lua_refs_t;
/*
** Reads the Engine.IO options of the table at idx into cfg, filled first by
** plume__eio_config_init (lua_api.c): path, pingInterval, pingTimeout,
** upgradeTimeout, closeTimeout, maxHttpBufferSize, allowUpgrades, allowEIO3,
** transports, allowRequest and generateId (into refs), and last cors (a
** function origin into refs). The caller sets cfg's hooks for the refs it
** got. Raises a Lua error on a bad option; cfg->cors_origins are allocated:
** plume__eio_config_clear frees them.
*/
void plume__eio_config_from_lua(lua_State *L, int idx, plume__eio_config_t *cfg,
                                plume__eio_lua_refs_t *refs);
/* Frees the cors_origins plume__eio_config_from_lua allocated. */
void plume__eio_config_clear(plume__eio_config_t *cfg);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Embedding: C services, emits from C, the rock (embed.c) */

/*
** plume_new with a Lua state to borrow (L != NULL): the instance runs in the
** host's state instead of one of its own (see plume__lua_borrow) (core.c).
*/
int plume__new(plume_t **out, uv_loop_t *loop, const plume_options_t *o,
               lua_State *L);
/*
** Sets p up in the host's state L (lua_bridge.c): registry slots, the main
** thread's extra space (saved, given back by plume__lua_close) and the
** framework (require "plume"). Opens no library and keeps the host's allocator,
** so lua_memory_limit does not apply. Returns 0, PLUME_ESTATE when an instance
** runs in L already, or PLUME_ELUA (logged).
*/
int plume__lua_borrow(plume_t *p, lua_State *L);
/*
** The userdata at idx holds loop resources that its __gc releases: in a
** borrowed state, plume__lua_close runs that __gc itself (lua_close does it in
** a state of the instance's own). The __gc must tolerate being called twice.
*/
void plume__lua_finalize_at_close(lua_State *L, int idx);
/* Adds core.run and core.cservice_call to the plume.core table on top of L. */
void plume__embed_open(lua_State *L);
/*
** The folder of the Lua framework installed next to this library (make
** install): <dir>/../share/lua/5.4 with plume/init.lua in it, where <dir> is
** the folder of libplume.so or, when libplume.a is linked in, of the
** executable. Returns 0 with the path in buf, or -1 when there is none (a build
** tree, another layout).
*/
int plume__installed_lua_dir(char *buf, size_t len);
/*
** Shutdown gives up on C service calls (core.c, finish_close): an answered call
** waiting to resume is dropped; one not answered yet is left to the host, whose
** answer then only frees it (PLUME_ECLOSED).
*/
void plume__embed_cancel_all(plume_t *p);

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Crypto (crypto.c) */

#define PLUME__HS256_LEN 32      /* bytes of an HMAC-SHA256 */
#define PLUME__BCRYPT_MIN_COST 4 /* bcrypt cost bounds ($2b$04$ .. $2b$31$) */
#define PLUME__BCRYPT_MAX_COST 31
#define PLUME__BCRYPT_HASH_SIZE                                                \
  128 /* room for a bcrypt or yescrypt hash and its NUL */

/* HMAC-SHA256 of msg under key. Returns 0, PLUME_ETOOBIG or PLUME_EPROTO
** (OpenSSL). */
int plume__hmac_sha256(const void *key, size_t keylen, const void *msg,
                       size_t n, unsigned char out[PLUME__HS256_LEN]);
/* 1 when the byte strings are equal. The time taken depends on the lengths
** only, never on where the bytes differ (CRYPTO_memcmp). */
int plume__crypto_equal(const void *a, size_t an, const void *b, size_t bn);
/* Writes a random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") and a NUL.
** Returns 0 or PLUME_EPROTO when no random bytes are available. */
int plume__uuid4(char out[37]);

/* The three parts of a compact JWS (RFC 7515 §7.1), base64url text pointing
** into the token given to plume__jws_split; valid as long as the token is. */
typedef struct plume__jws_s {
  plume_slice_t header;
  plume_slice_t payload;
  plume_slice_t signature; /* n == 0 for an unsigned token ("alg": "none") */
  plume_slice_t input;     /* header "." payload: what the signature covers */
  /* after a failure: jsonwebtoken's message (static) */
  const char *error;
} plume__jws_t;

/* Splits a token as jsonwebtoken does: not exactly three '.'-separated parts ->
** "jwt malformed"; an empty header or payload, or a character outside base64url
** in any part -> "invalid token". Returns 0 or PLUME_EPROTO with j->error set.
** Decoding the parts and parsing their JSON is the caller's. */
int plume__jws_split(const char *tok, size_t n, plume__jws_t *j);
/* 1 when j's signature is exactly base64url(HMAC-SHA256(key, input)), compared
** in constant time; 0 otherwise. Checks nothing else: the caller pins the
** algorithm. */
int plume__jws_hs256_verify(const plume__jws_t *j, const void *key,
                            size_t keylen);
/* Appends the token base64url(header) "." base64url(payload) "." signature,
** where header and payload are JSON texts. Returns 0, UV_ENOMEM or an HMAC
** error (out unchanged). */
int plume__jws_hs256_sign(plume__buf_t *out, const char *header, size_t hn,
                          const char *payload, size_t pn, const void *key,
                          size_t keylen);

/* Hashes the password pw (n bytes, NUL at pw[n], none before) with a fresh
** random salt: "$2b$<cost>$..." into out. Slow by design (cost 10: tens of
** milliseconds): never on the loop thread; plume.core.crypto runs it on the
** thread pool. Returns 0, UV_EINVAL (cost outside [4, 31], a NUL inside the
** password), UV_ENOMEM or PLUME_EPROTO. */
int plume__bcrypt_hash(const char *pw, size_t n, int cost,
                       char out[PLUME__BCRYPT_HASH_SIZE]);
/* 1 when pw (NUL at pw[n]) matches hash (NUL at hash[hn]), a bcrypt ($2a$,
** $2b$, $2y$) or yescrypt ($y$) hash; the comparison is constant-time. 0 for a
** mismatch, another kind of hash or a NUL inside either string; UV_ENOMEM. Slow
** like plume__bcrypt_hash. */
int plume__bcrypt_check(const char *pw, size_t n, const char *hash, size_t hn);

/*
** Pushes plume.core.crypto: {hmac_sha256, equal, base64url_encode,
** base64url_decode, random, uuid, jws_decode, jws_sign, bcrypt_hash,
** bcrypt_check}. The bcrypt functions wait on the thread pool inside a Plume
** task and compute inline elsewhere (stock Lua).
*/
void plume__crypto_open(lua_State *L);

/* }====== */

#endif /* PLUME_INTERNAL_H */
