/*
** lua_api.c: luaopen_plume_core, the C functions Lua may call (require
** "plume.core", used only inside lua/plume/). Waits follow the OpenResty
** recipe: check, arm, yield, resume from the loop (style.md F.3). Also the bare
** Engine.IO seam used by lua/plume/engineio.lua.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "internal.h"

#define EIO_SERVER_MT "plume.engineio.server"
#define EIO_SESSION_MT "plume.engineio.session"

/* ------------------------------------------------------------------------- */
/* {====== Logging, time, options */

static int core_log(lua_State *L) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  plume_t *p = plume__lua_instance(L);
  int level = luaL_checkoption(L, 1, NULL, levels);
  const char *subsystem = luaL_checkstring(L, 2);
  const char *msg = luaL_checkstring(L, 3);
  plume__log(p, level, subsystem, "%s", msg);
  return 0;
}

static int core_log_enabled(lua_State *L) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  plume_t *p = plume__lua_instance(L);
  lua_pushboolean(L, luaL_checkoption(L, 1, NULL, levels) <= p->log_level);
  return 1;
}

static int core_now(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  lua_pushinteger(L, (lua_Integer)uv_now(p->loop));
  return 1;
}

/* core.option(name) -> value as text, or nil for an unknown option. */
static int core_option(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  const char *name = luaL_checkstring(L, 1);
  char buf[1100];
  if (plume_options_get(&p->opts, name, buf, sizeof(buf)) != 0)
    return 0;
  lua_pushstring(L, buf);
  return 1;
}

/* core.list_dir(path) -> array of entry names ({} when the folder does not
** exist). Synchronous: used at start-up and on reload, never per request. */
static int core_list_dir(lua_State *L) {
  uv_fs_t req;
  uv_dirent_t ent;
  int i = 0;
  const char *path = luaL_checkstring(L, 1);
  lua_newtable(L); /* names */
  if (uv_fs_scandir(NULL, &req, path, 0, NULL) < 0) {
    uv_fs_req_cleanup(&req);
    return 1;
  }
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -2, ++i); /* names[i] = name */
  }
  uv_fs_req_cleanup(&req);
  return 1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The bare Engine.IO seam */

/* A Lua-side Engine.IO server: the handler table {open, message, close} and
** hooks. */
typedef struct lua_eio_s {
  plume_t *p;
  plume__eio_server_t *srv;
  int handlers_ref;           /* handler table, LUA_NOREF once detached */
  plume__eio_lua_refs_t refs; /* the hooks' functions */
} lua_eio_t;

/* A boxed session pointer; NULL once the session closed (style.md D.6). */
typedef struct eio_box_s {
  plume__eio_session_t *s;
  int ref; /* pins the box while the session lives */
} eio_box_t;

static plume__eio_session_t *check_session(lua_State *L) {
  eio_box_t *b = luaL_checkudata(L, 1, EIO_SESSION_MT);
  return b->s;
}

/* Pushes handler[name] for the server of lua_eio_t e; returns 0 if it is not a
** function. */
static int push_handler(lua_State *L, lua_eio_t *e, const char *name) {
  if (e->handlers_ref == LUA_NOREF)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->handlers_ref); /* handlers */
  lua_getfield(L, -1, name);                          /* handlers fn */
  lua_remove(L, -2);                                  /* fn */
  if (lua_isfunction(L, -1))
    return 1;
  lua_pop(L, 1);
  return 0;
}

static void eio_on_open(plume__eio_session_t *s) {
  lua_eio_t *e = plume__eio_server_ud(plume__eio_session_server(s));
  lua_State *L = e->p->L;
  eio_box_t *b = lua_newuserdatauv(L, sizeof(*b), 0); /* box */
  b->s = s;
  luaL_setmetatable(L, EIO_SESSION_MT);
  lua_pushvalue(L, -1);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* box */
  plume__eio_set_ud(s, b);
  if (push_handler(L, e, "open")) { /* box fn */
    lua_insert(L, -2);              /* fn box */
    plume__task_start(e->p, 1);
  } else {
    lua_pop(L, 1);
  }
}

static void eio_on_message(plume__eio_session_t *s, int binary, const char *p,
                           size_t n) {
  lua_eio_t *e = plume__eio_server_ud(plume__eio_session_server(s));
  eio_box_t *b = plume__eio_get_ud(s);
  lua_State *L = e->p->L;
  if (b == NULL || !push_handler(L, e, "message")) /* fn */
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref); /* fn box */
  if (binary)
    plume__binary_push(L, p, n); /* fn box data */
  else
    lua_pushlstring(L, p, n);
  plume__task_start(e->p, 2);
}

static void eio_on_close(plume__eio_session_t *s, const char *reason) {
  lua_eio_t *e = plume__eio_server_ud(plume__eio_session_server(s));
  eio_box_t *b = plume__eio_get_ud(s);
  lua_State *L = e->p->L;
  if (b == NULL)
    return;
  plume__eio_set_ud(s, NULL);
  b->s = NULL;
  if (L != NULL && push_handler(L, e, "close")) { /* fn */
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);    /* fn box */
    lua_pushstring(L, reason);                    /* fn box reason */
    plume__task_start(e->p, 2);
  }
  if (L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, b->ref);
  b->ref = LUA_NOREF;
}

static const plume__eio_handler_t eio_handler = {eio_on_open, eio_on_message,
                                                 eio_on_close};

/* Hooks call Lua synchronously on the main thread (they may not wait). */
static int eio_allow_origin(void *ud, const char *origin, size_t n) {
  lua_eio_t *e = ud;
  lua_State *L = e->p->L;
  int ok;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->refs.origin);
  lua_pushlstring(L, origin, n);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    plume__log(e->p, PLUME__LOG_ERROR, "engineio", "cors origin function: %s",
               lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok;
}

static const char *eio_allow_request(void *ud, plume__conn_t *c,
                                     const plume__http_req_t *r) {
  static char reason[256];
  lua_eio_t *e = ud;
  lua_State *L = e->p->L;
  uint32_t i;
  const char *result = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->refs.request); /* fn */
  lua_createtable(L, 0, 4);                           /* fn req */
  lua_pushlstring(L, r->url.p, r->url.n);
  lua_setfield(L, -2, "url");
  lua_createtable(L, 0, (int)r->nheaders); /* fn req headers */
  for (i = 0; i < r->nheaders; i++) {
    luaL_Buffer lb;
    size_t k;
    luaL_buffinit(L, &lb);
    for (k = 0; k < r->headers[i].name.n; k++) {
      char ch = r->headers[i].name.p[k];
      luaL_addchar(&lb, ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch);
    }
    luaL_pushresult(&lb);
    lua_pushlstring(L, r->headers[i].value.p, r->headers[i].value.n);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers"); /* fn req */
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    plume__log(e->p, PLUME__LOG_ERROR, "engineio", "allowRequest: %s",
               lua_tostring(L, -1));
    lua_pop(L, 1);
    return "Forbidden";
  }
  if (!lua_toboolean(L, -2)) { /* ok, message */
    snprintf(reason, sizeof(reason), "%s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "Forbidden");
    result = reason;
  }
  lua_pop(L, 2);
  return result;
}

static int eio_generate_id(void *ud, char *out, size_t len) {
  lua_eio_t *e = ud;
  lua_State *L = e->p->L;
  size_t n;
  const char *id;
  int err = -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->refs.id);
  if (lua_pcall(L, 0, 1, 0) == LUA_OK && (id = lua_tolstring(L, -1, &n)) &&
      n > 0 && n < len) {
    memcpy(out, id, n + 1);
    err = 0;
  } else {
    plume__log(e->p, PLUME__LOG_ERROR, "engineio",
               "generateId must return a non-empty string shorter than %zu",
               len);
  }
  lua_pop(L, 1);
  return err;
}

int plume__lua_opt_int(lua_State *L, int t, const char *name, int def) {
  int v = def;
  if (lua_getfield(L, t, name) != LUA_TNIL) {
    lua_Number d = luaL_checknumber(L, -1);
    if (d < 0 || d > 2147483647.0)
      luaL_error(L, "option %s out of range", name);
    v = (int)d;
  }
  lua_pop(L, 1);
  return v;
}

int plume__lua_opt_bool(lua_State *L, int t, const char *name, int def) {
  int v = def;
  if (lua_getfield(L, t, name) != LUA_TNIL)
    v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

int plume__lua_opt_ref(lua_State *L, int t, const char *name) {
  if (lua_getfield(L, t, name) == LUA_TFUNCTION)
    return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return LUA_NOREF;
}

/* Reads transports = {"polling", "websocket"} of the table at t into cfg. */
static void read_transports(lua_State *L, int t, plume__eio_config_t *cfg) {
  if (lua_getfield(L, t, "transports") == LUA_TTABLE) {
    lua_Integer i, n = luaL_len(L, -1);
    cfg->transports = 0;
    for (i = 1; i <= n; i++) {
      const char *name;
      lua_rawgeti(L, -1, i);
      name = luaL_checkstring(L, -1);
      if (strcmp(name, "polling") == 0)
        cfg->transports |= PLUME__EIO_POLLING;
      else if (strcmp(name, "websocket") == 0)
        cfg->transports |= PLUME__EIO_WEBSOCKET;
      else
        luaL_error(L, "unknown transport '%s'", name);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Reads cors = { origin = "*" | "x" | {list} | function, credentials = bool }
** of the table at t into cfg; a function origin goes to *origin_ref. */
static void read_cors(lua_State *L, int t, plume__eio_config_t *cfg,
                      int *origin_ref) {
  if (lua_getfield(L, t, "cors") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  cfg->cors = 1;
  cfg->cors_credentials = plume__lua_opt_bool(L, -1, "credentials", 0);
  lua_getfield(L, -1, "origin"); /* cors origin */
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, -1);
    *origin_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    cfg->cors_origins = calloc(2, sizeof(char *));
    if (cfg->cors_origins != NULL)
      cfg->cors_origins[0] = strdup(lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    lua_Integer i, n = luaL_len(L, -1);
    cfg->cors_origins = calloc((size_t)n + 1, sizeof(char *));
    for (i = 1; cfg->cors_origins != NULL && i <= n; i++) {
      lua_rawgeti(L, -1, i);
      cfg->cors_origins[i - 1] = strdup(luaL_checkstring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

void plume__eio_config_from_lua(lua_State *L, int idx, plume__eio_config_t *cfg,
                                plume__eio_lua_refs_t *refs) {
  idx = lua_absindex(L, idx);
  refs->origin = refs->request = refs->id = LUA_NOREF;
  if (lua_getfield(L, idx, "path") == LUA_TSTRING) {
    const char *path = lua_tostring(L, -1);
    size_t n = strlen(path);
    luaL_argcheck(L, n > 0 && path[0] == '/' && n + 2 < sizeof(cfg->path), idx,
                  "path must start with /");
    snprintf(cfg->path, sizeof(cfg->path), "%s%s", path,
             path[n - 1] == '/' ? "" : "/");
  }
  lua_pop(L, 1);
  cfg->ping_interval =
      plume__lua_opt_int(L, idx, "pingInterval", cfg->ping_interval);
  cfg->ping_timeout =
      plume__lua_opt_int(L, idx, "pingTimeout", cfg->ping_timeout);
  cfg->upgrade_timeout =
      plume__lua_opt_int(L, idx, "upgradeTimeout", cfg->upgrade_timeout);
  cfg->close_timeout =
      plume__lua_opt_int(L, idx, "closeTimeout", cfg->close_timeout);
  cfg->max_payload =
      plume__lua_opt_int(L, idx, "maxHttpBufferSize", cfg->max_payload);
  cfg->allow_upgrades =
      plume__lua_opt_bool(L, idx, "allowUpgrades", cfg->allow_upgrades);
  cfg->allow_eio3 = plume__lua_opt_bool(L, idx, "allowEIO3", cfg->allow_eio3);
  read_transports(L, idx, cfg);
  refs->request = plume__lua_opt_ref(L, idx, "allowRequest");
  refs->id = plume__lua_opt_ref(L, idx, "generateId");
  read_cors(L, idx, cfg, &refs->origin);
}

void plume__eio_config_clear(plume__eio_config_t *cfg) {
  char **o;
  for (o = cfg->cors_origins; o != NULL && *o != NULL; o++)
    free(*o);
  free(cfg->cors_origins);
  cfg->cors_origins = NULL;
}

/* core.eio_attach(opts, handlers) -> server. opts uses the Engine.IO names. */
static int core_eio_attach(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  plume__eio_config_t cfg;
  lua_eio_t *e;
  int err, max_payload;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  plume__eio_config_init(&cfg, &p->opts);
  e = lua_newuserdatauv(L, sizeof(*e), 0); /* opts handlers server */
  memset(e, 0, sizeof(*e));
  e->p = p;
  e->handlers_ref = LUA_NOREF;
  luaL_setmetatable(L, EIO_SERVER_MT);
  /* maxPayload (the handshake's name) wins over maxHttpBufferSize. */
  max_payload = plume__lua_opt_int(L, 1, "maxPayload", -1);
  plume__eio_config_from_lua(L, 1, &cfg, &e->refs);
  if (max_payload >= 0)
    cfg.max_payload = max_payload;
  if (e->refs.origin != LUA_NOREF)
    cfg.allow_origin = eio_allow_origin;
  if (e->refs.request != LUA_NOREF)
    cfg.allow_request = eio_allow_request;
  if (e->refs.id != LUA_NOREF)
    cfg.generate_id = eio_generate_id;
  cfg.hook_ud = e;
  lua_pushvalue(L, 2);
  e->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  err = plume__eio_server_new(p, &cfg, &eio_handler, e, &e->srv);
  plume__eio_config_clear(&cfg);
  if (err != 0)
    return luaL_error(L, "cannot attach Engine.IO at %s: %s", cfg.path,
                      plume_strerror(err));
  /* The server userdata stays alive for the instance's life. */
  lua_pushvalue(L, -1);
  luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int session_send(lua_State *L) {
  plume__eio_session_t *s = check_session(L);
  size_t n;
  const char *p;
  int binary = 0, err;
  if (s == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  p = plume__binary_get(L, 2, &n);
  if (p != NULL)
    binary = 1;
  else {
    p = luaL_checklstring(L, 2, &n);
    binary = lua_toboolean(L, 3);
  }
  err = plume__eio_send(s, binary, p, n);
  if (err != 0) {
    lua_pushnil(L);
    lua_pushstring(L, plume_strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int session_close(lua_State *L) {
  plume__eio_session_t *s = check_session(L);
  if (s != NULL)
    plume__eio_close(s, "forced close");
  return 0;
}

/* session:info() -> {id, protocol, transport, remote_address, url} or nil,
** "closed". */
static int session_info(lua_State *L) {
  plume__eio_session_t *s = check_session(L);
  const plume__http_req_t *r;
  if (s == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  lua_createtable(L, 0, 5);
  lua_pushstring(L, plume__eio_sid(s));
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, plume__eio_protocol(s));
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, plume__eio_transport(s) == PLUME__EIO_WEBSOCKET
                        ? "websocket"
                        : "polling");
  lua_setfield(L, -2, "transport");
  lua_pushstring(L, plume__eio_remote_address(s));
  lua_setfield(L, -2, "remote_address");
  r = plume__eio_handshake(s);
  if (r != NULL) {
    lua_pushlstring(L, r->url.p, r->url.n);
    lua_setfield(L, -2, "url");
  }
  return 1;
}

static int session_closed(lua_State *L) {
  lua_pushboolean(L, check_session(L) == NULL);
  return 1;
}

/* core.static_mount(prefix, dir) -> true, or nil, err: dir's files are served
** under the URL prefix ("/feathers/") when public/ has none of that path. */
static int core_static_mount(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  const char *prefix = luaL_checkstring(L, 1), *dir = luaL_checkstring(L, 2);
  int err = p != NULL ? plume__static_mount(p, prefix, dir) : PLUME_ESTATE;
  if (err != 0) {
    lua_pushnil(L);
    lua_pushstring(L, plume_strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* }====== */

static const luaL_Reg session_methods[] = {{"send", session_send},
                                           {"close", session_close},
                                           {"info", session_info},
                                           {"closed", session_closed},
                                           {NULL, NULL}};

static const luaL_Reg core_functions[] = {{"log", core_log},
                                          {"log_enabled", core_log_enabled},
                                          {"now", core_now},
                                          {"option", core_option},
                                          {"list_dir", core_list_dir},
                                          {"eio_attach", core_eio_attach},
                                          {"static_mount", core_static_mount},
                                          {NULL, NULL}};

/* The JSON depth cap comes from the instance's options; stock Lua (the rock)
** has none. */
static int json_depth(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  return p != NULL ? p->opts.max_json_depth : 0;
}

int luaopen_plume_core(lua_State *L) {
  luaL_newmetatable(L, EIO_SERVER_MT); /* mt */
  lua_pop(L, 1);
  luaL_newmetatable(L, EIO_SESSION_MT); /* mt */
  luaL_newlib(L, session_methods);      /* mt methods */
  lua_setfield(L, -2, "__index");       /* mt.__index = methods */
  lua_pop(L, 1);
  luaL_newlib(L, core_functions); /* core */
  plume__sio_open(L);             /* core.sio_* */
  plume__async_open(L); /* core.sleep, after, every, spawn, fs_*, ... */
  plume__embed_open(L); /* core.run, core.cservice_call */
  lua_pushstring(L, PLUME_VERSION_STRING);
  lua_setfield(L, -2, "version");
  plume__json_open(L, json_depth(L)); /* core json */
  lua_setfield(L, -2, "json");        /* core.json = json */
  plume__crypto_open(L);              /* core crypto */
  lua_setfield(L, -2, "crypto");      /* core.crypto = crypto */
  return 1;
}
