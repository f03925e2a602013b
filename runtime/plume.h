/*
** plume.h: the one public header of libplume.
** Plume speaks Engine.IO/Socket.IO over HTTP/1.1 and WebSocket on a libuv loop
** and runs Feathers-style services written in Lua. Everything here is prefixed
** plume_/PLUME_. Not thread-safe: one plume_t belongs to the thread that runs
** its loop.
*/
#ifndef PLUME_H
#define PLUME_H

#include <lua.h>
#include <stddef.h>
#include <uv.h>

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
** Plume's own error codes sit below -4096, out of the way of libuv's UV_E*
** codes, which Plume functions pass through unchanged. plume_strerror and
** plume_err_name take both.
*/
#define PLUME_ERRNO_MAP(XX)                                                    \
  XX(EPROTO, -4101, "protocol error")                                          \
  XX(ETOOBIG, -4102, "size limit exceeded")                                    \
  XX(ECLOSED, -4103, "connection closed")                                      \
  XX(EOPTION, -4104, "unknown or invalid option")                              \
  XX(ELUA, -4105, "Lua error")                                                 \
  XX(ENOAPP, -4106, "application folder not usable")                           \
  XX(ESTATE, -4107, "operation not allowed in this state")                     \
  XX(ENOSERVICE, -4108, "no service at this path")

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
** Options: one typed table (see plume_option_table) feeds this struct, the
** command line, config/<name>.lua and PLUME_<NAME> environment variables. Fill
** with plume_options_init, then set by name. The struct is plain data owned by
** the caller; string values are copied into it.
*/
typedef struct plume_options_s {
  char host[64];            /* listen address */
  int port;                 /* listen port */
  char app_dir[1024];       /* application folder */
  char lua_path[1024];      /* searched first for Lua modules (plume/...) */
  char log_level[16];       /* error, warn, info, debug */
  char log_format[8];       /* text or json */
  int watch;                /* hot reload: watch the app folder */
  int ping_interval;        /* Engine.IO pingInterval, ms */
  int ping_timeout;         /* Engine.IO pingTimeout, ms */
  int upgrade_timeout;      /* Engine.IO upgradeTimeout, ms */
  int close_timeout;        /* polling: deferred close without a GET, ms */
  int max_http_buffer_size; /* Engine.IO maxPayload: POST body, WS message */
  int connect_timeout;      /* Socket.IO: time to join a namespace, ms */
  int allow_eio3;           /* accept Engine.IO v3 clients (EIO=3 exactly) */
  int max_header_bytes;     /* HTTP request line + headers, bytes */
  int max_headers;          /* HTTP header count */
  int max_body_bytes;       /* HTTP body outside Engine.IO, bytes */
  int header_timeout;       /* whole request head must arrive within, ms */
  int keepalive_timeout;    /* idle keep-alive connection closed after, ms */
  int max_connections;      /* open TCP connections */
  int max_output_bytes;     /* queued output per connection, then dropped */
  int ws_max_fragments;     /* WebSocket fragments per message */
  int max_attachments;      /* Socket.IO binary attachments per packet */
  int max_json_depth;       /* JSON nesting depth */
  int shutdown_timeout;     /* graceful shutdown deadline, ms */
  char env[32];             /* configuration environment: config/<env>.lua */
  char debug[128];          /* debug lines of: "http,socketio", "all" */
  int access_log;           /* an info line per HTTP request, service call */
  int lua_call_timeout;     /* ms a task may run between waits; 0: no limit */
  int lua_memory_limit;     /* bytes the Lua state may hold; 0: no cap */
} plume_options_t;

/* One entry of the option table: name (snake_case), type ("int", "bool",
** "string"), default value as text, and a one-line description. */
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
** Creates an instance in *out. With loop == NULL Plume creates and owns a loop
** (plume_run drives it, plume_destroy closes it); otherwise the caller's loop
** is borrowed: the caller runs it and it must outlive the instance. Any number
** of instances may share a process or a loop: each keeps its state in its
** plume_t and its own Lua state. The options (NULL: the defaults) are copied.
** Creates the instance's Lua state and loads the framework (require "plume")
** from the lua_path option, else from the Lua folder installed next to the
** library (PREFIX/share/lua/5.4 beside PREFIX/lib), else from package.path.
** Returns 0, UV_ENOMEM, a uv_loop_init error or PLUME_ELUA (logged); on error
** *out is NULL and nothing needs closing. Ignores SIGPIPE process-wide;
** installs no other signal handler.
*/
PLUME_EXTERN int plume_new(plume_t **out, uv_loop_t *loop,
                           const plume_options_t *o);
/* Starts listening on host:port: an IPv4 or IPv6 address, or a name resolved
** now (this blocks); port 0 lets the system choose. Call it as often as needed:
** every listener serves the same app, as one Socket.IO server attached to
** several HTTP servers does. Returns 0, a libuv error such as UV_EADDRINUSE or
** UV_EAI_NONAME (logged), or PLUME_ESTATE once plume_close was called. */
PLUME_EXTERN int plume_listen(plume_t *p, const char *host, int port);
/* Loads an application folder: config/, app.lua, services/, public/ (DESIGN.md
** §3), and watches it when the watch option is on. Call it once, before
** plume_use_service. Returns 0, PLUME_ENOAPP (not a folder) or PLUME_ELUA (an
** error in a file of the app), with the reason logged; PLUME_ESTATE once
** plume_close was called. */
PLUME_EXTERN int plume_load_app(plume_t *p, const char *dir);
/* Runs an owned loop until plume_close has finished and nothing else keeps it
** alive. Returns 0, or PLUME_ESTATE for a borrowed loop (run it with uv_run
** instead). */
PLUME_EXTERN int plume_run(plume_t *p);
/*
** Shuts down gracefully and asynchronously, like uv_close: listeners and the
** watcher stop at once; calls in flight get up to shutdown_timeout ms to
** answer; then clients are disconnected, services torn down, connections
** closed. cb (may be NULL) runs once, from the loop, when all of that is
** released; from then on p may only be passed to plume_destroy (plume_loop and
** plume_lua still answer). Calling it again does nothing. Safe from inside any
** Plume callback, a C method included.
*/
PLUME_EXTERN void plume_close(plume_t *p, void (*cb)(plume_t *p));
/*
** Frees a closed instance: its Lua state (each userdata's __gc runs) and, when
** owned, its loop, after running it until the handles closed here are gone.
** With a borrowed loop the __gc of Socket.IO servers closes a handle or two:
** run the loop once more (uv_run returns as soon as their close callbacks ran)
** before uv_loop_close. p == NULL is allowed.
*/
PLUME_EXTERN void plume_destroy(plume_t *p);
/* The instance's loop, owned or borrowed, for hosts that add handles of their
** own. Valid until plume_destroy. */
PLUME_EXTERN uv_loop_t *plume_loop(plume_t *p);
/*
** The instance's Lua state (its main thread), for hosts that add Lua modules of
** their own: a package.preload entry or luaL_requiref(plume_lua(p), "host",
** luaopen_host, 0), before plume_load_app so that the app's files can require
** them. The state belongs to the instance (plume_destroy closes it): use it on
** the loop thread only, leave its stack as you found it, and call Lua only
** protected (lua_pcall). Valid until plume_destroy.
*/
PLUME_EXTERN lua_State *plume_lua(plume_t *p);

/* ------------------------------------------------------------------------- */
/*
** Services written in C. A C service is a table of methods registered at a
** path; the framework wraps it like a Lua service, so app and service hooks run
** around its methods, its results become service events (created, patched, ...)
** that the app's channels publish, and clients call it over Socket.IO with the
** Feathers client. Arguments and results cross as JSON text. Every method call
** runs in its own task: a method answers now (before its callback returns) or
** later (from any loop callback: a timer, a reply from the thread pool, ...),
** and while it waits the loop goes on serving everyone else. Once plume_close
** was called, new calls fail (a GeneralError) without reaching C; calls already
** waiting get the shutdown_timeout drain to be answered.
*/

/* One call of a C method, valid from the method callback until it is answered.
** */
typedef struct plume_call_s plume_call_t;

/*
** A C method. Called on the loop thread with the call, which it must answer
** exactly once with plume_call_reply or plume_call_error, before returning or
** later. The answer given before returning reaches the caller at once; one
** given later resumes the caller on the next loop turn. The call must not be
** used after its answer.
*/
typedef void (*plume_method_cb)(plume_call_t *call);

/* One method of a C service. */
typedef struct plume_method_s {
  /* "find", "get", "create", "update", "patch", "remove" or a custom method
  ** (called with data and params); not a reserved name such as "hooks",
  ** "setup", "publish", "emit" or anything starting with "__". */
  const char *name;
  plume_method_cb fn; /* the callback, never NULL */
} plume_method_t;

/* A C service for plume_use_service. Plume copies the table and the names. */
typedef struct plume_service_s {
  /* The methods; the array ends with an entry whose name is NULL. */
  const plume_method_t *methods;
  /* Custom events the service emits (NULL-terminated), or NULL. */
  const char *const *events;
  /* The host's, given back by plume_call_service_data; must stay valid until
  ** plume_destroy. */
  void *data;
} plume_service_t;

/*
** Registers a C service at path in the loaded app (after plume_load_app),
** replacing any service there. Clients may call exactly the listed methods. If
** the app serves no Socket.IO yet (its only services are C ones), Socket.IO is
** attached as for a Lua service, unless the app set socketio = false. Returns
** 0, UV_EINVAL (no path, no method, a method without a name or callback),
** PLUME_ESTATE (no app loaded, or closing), or PLUME_ELUA when the framework
** refuses the service (a reserved method name; logged).
*/
PLUME_EXTERN int plume_use_service(plume_t *p, const char *path,
                                   const plume_service_t *service);

/* The method called ("get") and the service path ("sensors"). Valid until the
** answer. */
PLUME_EXTERN const char *plume_call_method(const plume_call_t *call);
PLUME_EXTERN const char *plume_call_path(const plume_call_t *call);
/* The id as JSON text ("7", "\"abc\"", "null"), or NULL for methods without an
** id (find, create, custom methods). Valid until the answer. */
PLUME_EXTERN const char *plume_call_id(const plume_call_t *call);
/* The data as JSON text, or NULL for methods without data (find, get, remove).
** Valid until the answer. */
PLUME_EXTERN const char *plume_call_data(const plume_call_t *call);
/* The JSON-serialisable part of params as a JSON object: query (always, {} when
** none), and route, provider ("socketio"; absent for calls from the server
** itself), user and authentication when present. Valid until the answer. */
PLUME_EXTERN const char *plume_call_params(const plume_call_t *call);
/* plume_service_t.data of the service called. */
PLUME_EXTERN void *plume_call_service_data(const plume_call_t *call);
/* The instance of the call, or NULL once the instance gave up on it (it closed
** while the call was unanswered). */
PLUME_EXTERN plume_t *plume_call_instance(const plume_call_t *call);
/*
** Answers call with a result: JSON text (copied; NULL means no result). Text
** that is not JSON fails the call with a GeneralError instead and returns
** PLUME_EPROTO. Returns 0, PLUME_ECLOSED when the instance gave up on the call
** (the call is freed all the same), PLUME_ESTATE when the call was answered
** already (only before the callback returned: afterwards the call is gone),
** UV_ENOMEM. In every case but PLUME_ESTATE the call is answered and must not
** be used again.
*/
PLUME_EXTERN int plume_call_reply(plume_call_t *call, const char *json);
/*
** Answers call with a Feathers error: code is the HTTP status of its class (400
** BadRequest, 401 NotAuthenticated, 403 Forbidden, 404 NotFound, 409 Conflict,
** 422 Unprocessable, 500 GeneralError, ...; a code Feathers has no class for
** gives a GeneralError), message its text (copied; NULL: empty), data optional
** JSON text for its data member (copied; NULL: none; not JSON: left out,
** PLUME_EPROTO). Returns like plume_call_reply.
*/
PLUME_EXTERN int plume_call_error(plume_call_t *call, int code,
                                  const char *message, const char *data);

/*
** Emits a service event from C, as if the service at path had emitted it after
** a call: event is "created", "updated", "patched", "removed" or a custom event
** the service declared; json (copied; NULL: null) is its data. Listeners
** (service:on) run and the app's publishers send it to their channels, in a
** task started now. Returns 0, UV_EINVAL (no event, or one the service does not
** publish), PLUME_EPROTO (not JSON), PLUME_ENOSERVICE (no service at path),
** PLUME_ESTATE (no app, or closing), PLUME_ELUA (a listener raised; logged).
** Works for Lua and C services alike.
*/
PLUME_EXTERN int plume_service_emit(plume_t *p, const char *path,
                                    const char *event, const char *json);
/*
** A raw Socket.IO emit from C: event with the elements of args (a JSON array,
** copied; NULL: no arguments) as its arguments, to every socket of namespace
** nsp (NULL: "/"), or only to those in room when room is not NULL:
** io.of(nsp).to(room).emit(event, ...args). The packet is encoded once for all
** recipients. Returns 0, UV_EINVAL (no event, a reserved event name such as
** "connect", a namespace not starting with "/"), PLUME_EPROTO (args is not a
** JSON array), PLUME_ESTATE (the app serves no Socket.IO, or closing),
** PLUME_ELUA (logged).
*/
PLUME_EXTERN int plume_io_emit(plume_t *p, const char *nsp, const char *room,
                               const char *event, const char *args);

/*
** The C module that lua/plume reaches as require "plume.core" (apps never use
** it). Loaded into a state of Plume's own by plume_new, or by stock Lua from
** the rock's plume/core.so, where require("plume").run(dir [, opts]) serves an
** app in the caller's state.
*/
PLUME_EXTERN int luaopen_plume_core(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* PLUME_H */
