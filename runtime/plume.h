/*
** plume.h: the one public header of libplume.
** Plume speaks Engine.IO/Socket.IO over HTTP/1.1 and WebSocket on a libuv loop and runs
** Feathers-style services written in Lua. Everything here is prefixed plume_/PLUME_.
** Not thread-safe: one plume_t belongs to the thread that runs its loop.
*/
#ifndef PLUME_H
#define PLUME_H

#include <stddef.h>
#include <uv.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PLUME_EXTERN __attribute__((visibility("default")))
#else
#define PLUME_EXTERN
#endif

#define PLUME_VERSION_MAJOR 0
#define PLUME_VERSION_MINOR 1
#define PLUME_VERSION_PATCH 0

/*
** Plume's own error codes sit below -4096, out of the way of libuv's UV_E* codes, which
** Plume functions pass through unchanged. plume_strerror and plume_err_name take both.
*/
#define PLUME_ERRNO_MAP(XX)                                                    \
  XX(EPROTO, -4101, "protocol error")                                          \
  XX(ETOOBIG, -4102, "size limit exceeded")                                    \
  XX(ECLOSED, -4103, "connection closed")                                      \
  XX(EOPTION, -4104, "unknown or invalid option")                              \
  XX(ELUA, -4105, "Lua error")                                                 \
  XX(ENOAPP, -4106, "application folder not usable")                           \
  XX(ESTATE, -4107, "operation not allowed in this state")

typedef enum {
#define XX(name, code, text) PLUME_##name = code,
  PLUME_ERRNO_MAP(XX)
#undef XX
} plume_errno_t;

/* The text of an error code (Plume's or libuv's). Never NULL. */
PLUME_EXTERN const char *plume_strerror(int err);
/* The name of an error code, e.g. "ETOOBIG" or "ECONNRESET". Never NULL. */
PLUME_EXTERN const char *plume_err_name(int err);
/* The library version as "MAJOR.MINOR.PATCH". */
PLUME_EXTERN const char *plume_version(void);

/*
** Options: one typed table (see plume_option_info) feeds this struct, the command line,
** config/<name>.lua and PLUME_<NAME> environment variables. Fill with plume_options_init, then set by
** name. The struct is plain data owned by the caller; string values are copied into it.
*/
typedef struct plume_options_s {
  char host[64];              /* listen address */
  int port;                   /* listen port */
  char app_dir[1024];         /* application folder */
  char lua_path[1024];        /* folder searched first for Lua modules (plume/...) */
  char log_level[16];         /* error, warn, info, debug */
  char log_format[8];         /* text or json */
  int watch;                  /* hot reload: watch the app folder */
  int ping_interval;          /* Engine.IO pingInterval, ms */
  int ping_timeout;           /* Engine.IO pingTimeout, ms */
  int upgrade_timeout;        /* Engine.IO upgradeTimeout, ms */
  int close_timeout;          /* polling: deferred close without a GET, ms */
  int max_http_buffer_size;   /* Engine.IO maxPayload: POST body and WS message, bytes */
  int connect_timeout;        /* Socket.IO: time to join a namespace, ms */
  int allow_eio3;             /* accept Engine.IO v3 clients (EIO=3 exactly) */
  int max_header_bytes;       /* HTTP request line + headers, bytes */
  int max_headers;            /* HTTP header count */
  int max_body_bytes;         /* HTTP body outside Engine.IO, bytes */
  int header_timeout;         /* whole request head must arrive within, ms */
  int keepalive_timeout;      /* idle keep-alive connection closed after, ms */
  int max_connections;        /* open TCP connections */
  int max_output_bytes;       /* queued output per connection before it is dropped */
  int ws_max_fragments;       /* WebSocket fragments per message */
  int max_attachments;        /* Socket.IO binary attachments per packet */
  int max_json_depth;         /* JSON nesting depth */
  int shutdown_timeout;       /* graceful shutdown deadline, ms */
  char env[32];               /* configuration environment: config/<env>.lua */
  char debug[128];            /* subsystems with debug lines: "http,socketio", "all" */
  int access_log;             /* one info line per HTTP request and service call */
  int lua_call_timeout;       /* ms a task may run between waits; 0: no limit */
  int lua_memory_limit;       /* bytes the Lua state may hold; 0: no cap */
} plume_options_t;

/* One entry of the option table: name (snake_case), type ("int", "bool", "string"),
** default value as text, and a one-line description. */
typedef struct plume_option_info_s {
  const char *name;
  const char *type;
  const char *default_value;
  const char *doc;
} plume_option_info_t;

/* Sets every option to its default. */
PLUME_EXTERN void plume_options_init(plume_options_t *o);
/* Sets one option from text by name ("ping_interval", "25000"). Returns 0 or
** PLUME_EOPTION for an unknown name or a value of the wrong type. */
PLUME_EXTERN int plume_options_set(plume_options_t *o, const char *name,
                                   const char *value);
/* Reads one option as text into buf. Returns 0 or PLUME_EOPTION. */
PLUME_EXTERN int plume_options_get(const plume_options_t *o, const char *name,
                                   char *buf, size_t len);
/* The option table, terminated by an entry whose name is NULL. */
PLUME_EXTERN const plume_option_info_t *plume_option_table(void);

typedef struct plume_s plume_t;

/*
** Creates an instance. With loop == NULL Plume creates and owns a loop (plume_run drives
** it); otherwise the caller's loop is borrowed and must outlive the instance. The options
** are copied. Creates the instance's Lua state and loads the Plume framework. Returns 0 or
** a negative error; on error *out is NULL. Ignores SIGPIPE process-wide.
*/
PLUME_EXTERN int plume_new(plume_t **out, uv_loop_t *loop,
                           const plume_options_t *o);
/* Starts listening on host:port (several listeners are allowed). Returns 0 or a libuv
** error such as UV_EADDRINUSE. */
PLUME_EXTERN int plume_listen(plume_t *p, const char *host, int port);
/* Loads an application folder (app.lua, services/, public/). Returns 0, or PLUME_ENOAPP /
** PLUME_ELUA with the reason logged. */
PLUME_EXTERN int plume_load_app(plume_t *p, const char *dir);
/* Runs an owned loop until plume_close has finished. Returns 0 or PLUME_ESTATE for a
** borrowed loop. */
PLUME_EXTERN int plume_run(plume_t *p);
/* Closes listeners and connections asynchronously; cb (may be NULL) runs once everything is
** released, after which p must only be passed to plume_destroy. */
PLUME_EXTERN void plume_close(plume_t *p, void (*cb)(plume_t *p));
/* Frees a closed instance (and its loop when owned). */
PLUME_EXTERN void plume_destroy(plume_t *p);
/* The instance's loop and Lua state, for hosts that add their own handles or modules. */
PLUME_EXTERN uv_loop_t *plume_loop(plume_t *p);
PLUME_EXTERN lua_State *plume_lua(plume_t *p);

/* The C module that Lua code reaches as require "plume.core". */
PLUME_EXTERN int luaopen_plume_core(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* PLUME_H */
