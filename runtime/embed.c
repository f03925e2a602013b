/*
** embed.c: the parts of the public C API (plume.h) that reach into the
** framework: services whose methods are C callbacks (plume_use_service, the
** plume_call_* answers, sync or async), events and Socket.IO emits from C
** (plume_service_emit, plume_io_emit), and require("plume").run, which serves
** an app from stock Lua in the caller's own state (the rock). Above: the host
** program or lua/plume/cservice.lua; below: lua_bridge.c (tasks and waits).
*/
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "internal.h"

#define CSERVICE_MT "plume.cservice"

/* ------------------------------------------------------------------------- */
/* {====== Calls of C service methods */

enum {
  CALL_RUNNING,  /* the method callback is on the stack */
  CALL_WAITING,  /* the callback returned unanswered: the task waits */
  CALL_ANSWERED, /* answered; after a wait, the task resumes from the timer */
};

/*
** One call of a C method. Created by core.cservice_call and owned by Plume
** until it is answered, then freed once the task has its answer. A call the
** instance gave up on (shutdown) before its answer has p == NULL and belongs
** to the host, whose answer frees it. The strings live in the same block.
*/
struct plume_call_s {
  plume_t *p;             /* NULL once the instance gave up on the call */
  plume__task_ref_t task; /* the waiting task, once the callback returned */
  struct plume_call_s *prev, *next; /* p->calls */
  uv_timer_t timer;    /* resumes the task after an answer given later */
  int state;           /* CALL_* */
  int code;            /* 0: answered with a result; else a Feathers code */
  plume__buf_t answer; /* the result's JSON, or the error's message */
  plume__buf_t data;   /* the error's data as JSON (len 0: none) */
  void *service_data;  /* plume_service_t.data */
  const char *method, *path, *id, *body, *params; /* NUL-terminated copies */
};

/* A registered C service: the host's table, copied (Lua userdata). */
typedef struct cservice_s {
  plume_t *p;
  void *data;
  int nmethods;
  plume_method_t *methods; /* names copied */
  char *path;
} cservice_t;

static void call_link(plume_t *p, plume_call_t *call) {
  call->prev = NULL;
  call->next = p->calls;
  if (p->calls != NULL)
    p->calls->prev = call;
  p->calls = call;
}

static void call_unlink(plume_t *p, plume_call_t *call) {
  if (call->prev != NULL)
    call->prev->next = call->next;
  else if (p->calls == call)
    p->calls = call->next;
  if (call->next != NULL)
    call->next->prev = call->prev;
  call->prev = call->next = NULL;
}

static void call_free(plume_call_t *call) {
  plume__buf_free(&call->answer);
  plume__buf_free(&call->data);
  free(call);
}

static void on_call_closed(uv_handle_t *h) {
  plume_call_t *call =
      plume__container_of((uv_timer_t *)h, plume_call_t, timer);
  if (call->p != NULL)
    call->p->pending_closes--;
  call_free(call);
}

/* Pushes the answer as cservice.lua reads it: true, json | false, code,
** message, data. Returns the count. */
static int push_answer(lua_State *L, plume_call_t *call) {
  luaL_checkstack(L, 4, NULL);
  if (call->code == 0) {
    lua_pushboolean(L, 1);
    if (call->answer.len > 0)
      lua_pushlstring(L, call->answer.p, call->answer.len);
    else
      lua_pushnil(L); /* plume_call_reply(call, NULL) */
    return 2;
  }
  lua_pushboolean(L, 0);
  lua_pushinteger(L, call->code);
  lua_pushlstring(L, call->answer.p != NULL ? call->answer.p : "",
                  call->answer.len);
  if (call->data.len > 0)
    lua_pushlstring(L, call->data.p, call->data.len);
  else
    lua_pushnil(L);
  return 4;
}

/* The loop turn after an answer given later: the task gets it. */
static void on_answer(uv_timer_t *t) {
  plume_call_t *call = plume__container_of(t, plume_call_t, timer);
  plume_t *p = call->p;
  plume__task_ref_t task = call->task;
  lua_State *co = plume__task_waiter(p, task);
  int n = 0;
  call_unlink(p, call);
  if (co != NULL) /* else the task is gone: the answer is dropped */
    n = push_answer(co, call);
  uv_close((uv_handle_t *)t, on_call_closed);
  if (co != NULL)
    plume__task_resume(p, task, n);
}

void plume__embed_cancel_all(plume_t *p) {
  plume_call_t *call;
  while ((call = p->calls) != NULL) {
    call_unlink(p, call);
    if (call->state == CALL_ANSWERED) {
      uv_timer_stop(&call->timer);
      uv_close((uv_handle_t *)&call->timer, on_call_closed);
    } else {
      call->p = NULL; /* the host's now: its answer frees it */
      call->task.co = NULL;
    }
  }
}

/* Records an answer (code 0: json is the result; else message and data). */
static int answer(plume_call_t *call, int code, const char *json,
                  const char *message, const char *data) {
  plume_t *p = call->p;
  int err = 0, depth = p != NULL ? p->opts.max_json_depth : 128;
  if (call->state == CALL_ANSWERED)
    return PLUME_ESTATE;
  if (p == NULL && call->state != CALL_RUNNING) {
    call_free(call);
    return PLUME_ECLOSED;
  }
  if (code == 0 && json != NULL &&
      plume__json_scan(json, strlen(json), depth, -1, NULL) != 0) {
    code = 500;
    message = "the C service answered invalid JSON";
    json = NULL;
    err = PLUME_EPROTO;
  }
  if (code != 0 && data != NULL &&
      plume__json_scan(data, strlen(data), depth, -1, NULL) != 0) {
    data = NULL;
    err = PLUME_EPROTO;
  }
  if (code == 0 && json != NULL)
    err = plume__buf_append(&call->answer, json, strlen(json)) != 0 ? UV_ENOMEM
                                                                    : err;
  if (code != 0) {
    if (message == NULL)
      message = "";
    if (plume__buf_append(&call->answer, message, strlen(message)) != 0 ||
        (data != NULL && plume__buf_append(&call->data, data, strlen(data))))
      err = UV_ENOMEM;
  }
  call->code = code;
  if (call->state == CALL_RUNNING) {
    call->state = CALL_ANSWERED; /* core.cservice_call returns it */
    return p == NULL ? PLUME_ECLOSED : err;
  }
  call->state = CALL_ANSWERED;
  uv_timer_init(p->loop, &call->timer);
  p->pending_closes++;
  uv_timer_start(&call->timer, on_answer, 0, 0);
  return err;
}

int plume_call_reply(plume_call_t *call, const char *json) {
  return answer(call, 0, json, NULL, NULL);
}

int plume_call_error(plume_call_t *call, int code, const char *message,
                     const char *data) {
  return answer(call, code > 0 ? code : 500, NULL, message, data);
}

const char *plume_call_method(const plume_call_t *call) {
  return call->method;
}
const char *plume_call_path(const plume_call_t *call) {
  return call->path;
}
const char *plume_call_id(const plume_call_t *call) {
  return call->id;
}
const char *plume_call_data(const plume_call_t *call) {
  return call->body;
}
const char *plume_call_params(const plume_call_t *call) {
  return call->params;
}
void *plume_call_service_data(const plume_call_t *call) {
  return call->service_data;
}
plume_t *plume_call_instance(const plume_call_t *call) {
  return call->p;
}

/* Copies s (n bytes) after the struct; returns the copy. */
static const char *put(char **at, const char *s, size_t n) {
  char *dst = *at;
  memcpy(dst, s, n);
  dst[n] = '\0';
  *at += n + 1;
  return dst;
}

/*
** core.cservice_call(handle, index, id_json, data_json, params_json) -> true,
** result_json | false, code, message, data_json. Runs the C method now; when
** its callback returns unanswered, the task waits for the answer.
*/
static int core_cservice_call(lua_State *L) {
  cservice_t *s = luaL_checkudata(L, 1, CSERVICE_MT);
  lua_Integer i = luaL_checkinteger(L, 2);
  size_t idn = 0, dn = 0, pn = 0, mn, sn;
  const char *id = luaL_optlstring(L, 3, NULL, &idn);
  const char *body = luaL_optlstring(L, 4, NULL, &dn);
  const char *params = luaL_optlstring(L, 5, "{}", &pn);
  const plume_method_t *m;
  plume_call_t *call;
  char *at;
  int n, capped;
  luaL_argcheck(L, i >= 1 && i <= s->nmethods, 2, "no such method");
  if (s->p == NULL || s->p->closing)
    return luaL_error(L, "the server is shutting down");
  plume__task_check_wait(L);
  m = &s->methods[i - 1];
  mn = strlen(m->name);
  sn = strlen(s->path);
  call = calloc(1, sizeof(*call) + mn + sn + idn + dn + pn + 5);
  if (call == NULL)
    return luaL_error(L, "not enough memory");
  at = (char *)(call + 1);
  call->method = put(&at, m->name, mn);
  call->path = put(&at, s->path, sn);
  call->id = id != NULL ? put(&at, id, idn) : NULL;
  call->body = body != NULL ? put(&at, body, dn) : NULL;
  call->params = put(&at, params, pn);
  call->p = s->p;
  call->service_data = s->data;
  call->state = CALL_RUNNING;
  call_link(s->p, call);
  m->fn(call);
  if (call->state == CALL_ANSWERED) {
    if (call->p != NULL)
      call_unlink(call->p, call);
    capped = s->p->lua_capped; /* glue: the memory cap must not leak the call */
    s->p->lua_capped = 0;
    n = push_answer(L, call);
    s->p->lua_capped = capped;
    call_free(call);
    return n;
  }
  call->state = CALL_WAITING;
  if (call->p == NULL) /* the instance closed meanwhile: the host has it */
    return luaL_error(L, "the server is shutting down");
  call->task = plume__task_current(L);
  return plume__task_wait(L);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Registering C services */

static void cservice_release(cservice_t *s) {
  int i;
  for (i = 0; i < s->nmethods; i++)
    free((char *)s->methods[i].name);
  free(s->methods);
  free(s->path);
  s->methods = NULL;
  s->path = NULL;
  s->nmethods = 0;
}

static int cservice_gc(lua_State *L) {
  cservice_release(luaL_checkudata(L, 1, CSERVICE_MT));
  return 0;
}

/* Pushes require("plume.cservice")[name] (may raise). */
static void push_cservice(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume.cservice");
  lua_call(L, 1, 1);         /* cservice */
  lua_getfield(L, -1, name); /* cservice fn */
  lua_remove(L, -2);         /* fn */
}

/* Protected: (p, path, service) -> "ok" | "state". */
static int use_service(lua_State *L) {
  plume_t *p = lua_touserdata(L, 1);
  const char *path = lua_tostring(L, 2);
  const plume_service_t *def = lua_touserdata(L, 3);
  cservice_t *s;
  int i, n = 0;
  while (def->methods[n].name != NULL)
    n++;
  s = lua_newuserdatauv(L, sizeof(*s), 0); /* ... box */
  memset(s, 0, sizeof(*s));
  luaL_setmetatable(L, CSERVICE_MT);
  s->p = p;
  s->data = def->data;
  s->methods = calloc((size_t)n, sizeof(*s->methods));
  s->path = strdup(path);
  if (s->methods == NULL || s->path == NULL)
    return luaL_error(L, "not enough memory");
  for (i = 0; i < n; i++) {
    s->methods[i].fn = def->methods[i].fn;
    s->methods[i].name = strdup(def->methods[i].name);
    s->nmethods = i + 1;
    if (s->methods[i].name == NULL)
      return luaL_error(L, "not enough memory");
  }
  push_cservice(L, "use");  /* ... box use */
  lua_pushvalue(L, 2);      /* ... box use path */
  lua_pushvalue(L, -3);     /* ... box use path box */
  lua_createtable(L, n, 0); /* ... box use path box names */
  for (i = 0; i < n; i++) {
    lua_pushstring(L, s->methods[i].name);
    lua_rawseti(L, -2, i + 1); /* names[i + 1] = name */
  }
  lua_newtable(L); /* ... box use path box names events */
  for (i = 0; def->events != NULL && def->events[i] != NULL; i++) {
    lua_pushstring(L, def->events[i]);
    lua_rawseti(L, -2, i + 1); /* events[i + 1] = name */
  }
  lua_call(L, 4, 2); /* ... box ok reason */
  lua_pushstring(L, lua_toboolean(L, -2) ? "ok" : "state");
  return 1;
}

/* Protected: (name) -> require("plume.cservice")[name]. */
static int get_cservice(lua_State *L) {
  push_cservice(L, lua_tostring(L, 1));
  return 1;
}

/* Runs fn(args...) protected on p's main thread; logs an error. Returns
** 0 with one result on the stack, or PLUME_ELUA with nothing pushed. */
static int call_protected(plume_t *p, lua_CFunction fn, int nargs,
                          const char *what) {
  lua_State *L = p->L;
  lua_pushcfunction(L, fn);
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
    plume__log(p, PLUME__LOG_ERROR, "app", "%s: %s", what,
               lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    lua_pop(L, 1);
    return PLUME_ELUA;
  }
  return 0;
}

int plume_use_service(plume_t *p, const char *path,
                      const plume_service_t *service) {
  lua_State *L;
  const char *r;
  int top, i, err;
  if (path == NULL || path[0] == '\0' || service == NULL ||
      service->methods == NULL || service->methods[0].name == NULL)
    return UV_EINVAL;
  for (i = 0; service->methods[i].name != NULL; i++)
    if (service->methods[i].fn == NULL || service->methods[i].name[0] == '\0')
      return UV_EINVAL;
  if (p->closing || p->L == NULL)
    return PLUME_ESTATE;
  L = p->L;
  top = lua_gettop(L);
  lua_pushlightuserdata(L, p);
  lua_pushstring(L, path);
  lua_pushlightuserdata(L, (void *)service);
  err = call_protected(p, use_service, 3, path);
  if (err == 0) {
    r = lua_tostring(L, -1);
    err = r != NULL && strcmp(r, "ok") == 0 ? 0 : PLUME_ESTATE;
  }
  lua_settop(L, top);
  return err;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Emits from C */

/* Protected: (check, args...) -> the check's answer (nil or a reason). */
static int run_check(lua_State *L) {
  const char *name = lua_tostring(L, 1);
  int n = lua_gettop(L) - 1;
  push_cservice(L, name); /* name args... fn */
  lua_insert(L, 2);       /* name fn args... */
  lua_call(L, n, 1);
  return 1;
}

/* Runs cservice[check](args...) with the nargs values on top of p->L; maps its
** reason to an error code. The values are popped. */
static int check(plume_t *p, const char *name, int nargs) {
  lua_State *L = p->L;
  const char *r;
  int err;
  lua_pushstring(L, name);
  lua_insert(L, -nargs - 1);
  err = call_protected(p, run_check, nargs + 1, name);
  if (err != 0)
    return err;
  r = lua_tostring(L, -1);
  if (r == NULL)
    err = 0;
  else if (strcmp(r, "service") == 0)
    err = PLUME_ENOSERVICE;
  else if (strcmp(r, "event") == 0)
    err = UV_EINVAL;
  else
    err = PLUME_ESTATE;
  lua_pop(L, 1);
  return err;
}

/* 0 when text is JSON (an array when array), else PLUME_EPROTO. */
static int check_json(plume_t *p, const char *text, int array) {
  plume__json_info_t info;
  if (plume__json_scan(text, strlen(text), p->opts.max_json_depth, -1, &info) !=
      0)
    return PLUME_EPROTO;
  return array && info.type != PLUME__JSON_ARRAY ? PLUME_EPROTO : 0;
}

int plume_service_emit(plume_t *p, const char *path, const char *event,
                       const char *json) {
  lua_State *L = p->L;
  int top, err;
  if (path == NULL || event == NULL || event[0] == '\0')
    return UV_EINVAL;
  if (json == NULL)
    json = "null";
  if (p->closing || L == NULL)
    return PLUME_ESTATE;
  if ((err = check_json(p, json, 0)) != 0)
    return err;
  top = lua_gettop(L);
  lua_pushstring(L, path);
  lua_pushstring(L, event);
  err = check(p, "check_emit", 2);
  if (err == 0) {
    lua_pushliteral(L, "emit");
    err = call_protected(p, get_cservice, 1, "emit");
  }
  if (err == 0) {
    lua_pushstring(L, path);
    lua_pushstring(L, event);
    lua_pushstring(L, json);
    err = plume__task_start(p, 3);
  }
  lua_settop(L, top);
  return err;
}

int plume_io_emit(plume_t *p, const char *nsp, const char *room,
                  const char *event, const char *args) {
  lua_State *L = p->L;
  int top, err;
  if (event == NULL || event[0] == '\0' || (nsp != NULL && nsp[0] != '/'))
    return UV_EINVAL;
  if (p->closing || L == NULL)
    return PLUME_ESTATE;
  if (args != NULL && (err = check_json(p, args, 1)) != 0)
    return err;
  top = lua_gettop(L);
  lua_pushstring(L, event);
  err = check(p, "check_io", 1);
  if (err == 0) {
    lua_pushliteral(L, "io_emit");
    err = call_protected(p, get_cservice, 1, "io_emit");
  }
  if (err == 0) {
    lua_pushstring(L, nsp != NULL ? nsp : "/");
    if (room != NULL)
      lua_pushstring(L, room);
    else
      lua_pushnil(L);
    lua_pushstring(L, event);
    if (args != NULL)
      lua_pushstring(L, args);
    else
      lua_pushnil(L);
    err = plume__task_start(p, 4);
  }
  lua_settop(L, top);
  return err;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The installed framework */

/* 0 when dir/../share/lua/5.x/plume/init.lua exists; the Lua folder in buf. */
static int probe_lua_dir(const char *file, char *buf, size_t len) {
  const char *slash = strrchr(file, '/');
  uv_fs_t req;
  char probe[1100];
  int err;
  if (file[0] != '/' || slash == NULL)
    return -1;
  if (snprintf(buf, len, "%.*s/../share/lua/%s.%s", (int)(slash - file), file,
               LUA_VERSION_MAJOR, LUA_VERSION_MINOR) >= (int)len ||
      snprintf(probe, sizeof(probe), "%s/plume/init.lua", buf) >=
          (int)sizeof(probe))
    return -1;
  err = uv_fs_stat(NULL, &req, probe, NULL);
  uv_fs_req_cleanup(&req);
  return err == 0 ? 0 : -1;
}

int plume__installed_lua_dir(char *buf, size_t len) {
  Dl_info info;
  char exe[1024];
  size_t n = sizeof(exe);
  if (dladdr((void *)plume_new, &info) != 0 && info.dli_fname != NULL &&
      probe_lua_dir(info.dli_fname, buf, len) == 0)
    return 0;
  if (uv_exepath(exe, &n) == 0 && probe_lua_dir(exe, buf, len) == 0)
    return 0;
  return -1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== require("plume").run: the rock */

/* Sets the options named by the string keys of the table at idx (values as
** text: numbers, booleans, strings). Raises on an unknown name or a bad value.
*/
static void set_from_table(lua_State *L, int idx, plume_options_t *o) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { /* k v */
    const char *k = lua_tostring(L, -2);
    const char *v;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "plume.run: option names are strings");
    if (strcmp(k, "signals") == 0) { /* run's own, not an option */
      lua_pop(L, 1);
      continue;
    }
    if (lua_isboolean(L, -1))
      v = lua_toboolean(L, -1) ? "true" : "false";
    else if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING)
      v = lua_tostring(L, -1); /* a copy on the stack: next key is intact */
    else
      v = NULL;
    if (v == NULL || plume_options_set(o, k, v) != 0)
      luaL_error(L, "plume.run: invalid option %s", k);
    lua_pop(L, 1);
  }
}

/* PLUME_<NAME> environment variables, as the `plume` command reads them. */
static int set_from_env(plume_options_t *o, char *bad, size_t len) {
  const plume_option_info_t *info;
  for (info = plume_option_table(); info->name != NULL; info++) {
    char var[80];
    const char *v;
    size_t i;
    snprintf(var, sizeof(var), "PLUME_%s", info->name);
    for (i = 6; var[i] != '\0'; i++)
      if (var[i] >= 'a' && var[i] <= 'z')
        var[i] = (char)(var[i] - 'a' + 'A');
    v = getenv(var);
    if (v != NULL && plume_options_set(o, info->name, v) != 0) {
      snprintf(bad, len, "invalid value for %s: %s", var, v);
      return PLUME_EOPTION;
    }
  }
  return 0;
}

typedef struct run_s {
  plume_t *p;
  uv_signal_t sigint, sigterm;
  int signals;
} run_t;

static void on_run_signal(uv_signal_t *h, int signum) {
  run_t *r = h->data;
  plume__log(r->p, PLUME__LOG_INFO, "core", "%s: shutting down",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
  plume_close(r->p, NULL);
}

static void watch_signal(run_t *r, uv_signal_t *h, int signum) {
  uv_signal_init(plume_loop(r->p), h);
  h->data = r;
  uv_signal_start(h, on_run_signal, signum);
  uv_unref((uv_handle_t *)h); /* the server's handles keep the loop alive */
}

/*
** core.run(dir [, opts]) -> exit code | nil, message. Options: defaults <
** dir/config/ < PLUME_* < opts (plus signals = false to leave SIGINT and
** SIGTERM alone). Serves dir in the caller's state on a loop of its own until
** the server has shut down (a signal, plume.exit).
*/
static int core_run(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  plume_options_t pre, o;
  run_t r;
  char msg[512];
  int err, has_opts = !lua_isnoneornil(L, 2), code;
  if (has_opts)
    luaL_checktype(L, 2, LUA_TTABLE);
  if (plume__lua_instance(L) != NULL)
    return luaL_error(L,
                      "plume.run: a Plume server runs in this state already");
  memset(&r, 0, sizeof(r));
  r.signals = 1;
  if (has_opts && lua_getfield(L, 2, "signals") != LUA_TNIL)
    r.signals = lua_toboolean(L, -1);
  lua_settop(L, 2);
  plume_options_init(&pre);
  plume_options_set(&pre, "app_dir", dir);
  if (set_from_env(&pre, msg, sizeof(msg)) != 0)
    goto refuse;
  if (has_opts)
    set_from_table(L, 2, &pre);
  plume_options_init(&o);
  plume_options_set(&o, "app_dir", dir);
  if (plume__config_apply(dir, pre.env, &o, msg, sizeof(msg)) != 0 ||
      set_from_env(&o, msg, sizeof(msg)) != 0)
    goto refuse;
  if (has_opts)
    set_from_table(L, 2, &o);
  err = plume__new(&r.p, NULL, &o, L);
  if (err != 0) {
    snprintf(msg, sizeof(msg), "cannot start: %s", plume_strerror(err));
    goto refuse;
  }
  err = plume_load_app(r.p, dir);
  if (err == 0)
    err = plume_listen(r.p, o.host, o.port);
  if (err != 0) {
    snprintf(msg, sizeof(msg), "%s: %s", dir, plume_strerror(err));
    plume_close(r.p, NULL);
    plume_run(r.p);
    plume_destroy(r.p);
    goto refuse;
  }
  if (r.signals) {
    watch_signal(&r, &r.sigint, SIGINT);
    watch_signal(&r, &r.sigterm, SIGTERM);
  }
  plume_run(r.p);
  code = r.p->exit_code;
  if (r.signals) {
    uv_close((uv_handle_t *)&r.sigint, NULL);
    uv_close((uv_handle_t *)&r.sigterm, NULL);
  }
  plume_destroy(r.p); /* runs the loop until the signal handles are closed */
  lua_pushinteger(L, code);
  return 1;
refuse:
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* }====== */

void plume__embed_open(lua_State *L) {
  if (luaL_newmetatable(L, CSERVICE_MT)) { /* core mt */
    lua_pushcfunction(L, cservice_gc);
    lua_setfield(L, -2, "__gc"); /* mt.__gc = cservice_gc */
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, core_cservice_call);
  lua_setfield(L, -2, "cservice_call");
  lua_pushcfunction(L, core_run);
  lua_setfield(L, -2, "run");
}
