/*
** reload.c: hot reload and configuration files (DESIGN.md §5, §6). uv_fs_event
** watches the app folder, services/ and config/; a timer debounces editor save
** storms (~100 ms, reliability.md §4.8 c) and hands the changed paths to the
** framework through plume__lua_reload, which swaps services between calls.
** Config files are Lua returning a table; their option keys go through the one
** option table (options.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "internal.h"

#define DEBOUNCE_MS 100
#define MAX_CHANGES                                                            \
  64 /* more changed files than this in one burst: reload everything */

enum { W_ROOT, W_SERVICES, W_CONFIG, NWATCH };

static const char *const sub_dirs[NWATCH] = {"", "services", "config"};

/* The watcher of one app folder. Owned by p->reload; freed when its handles
** have closed. */
typedef struct plume__reload_s {
  plume_t *p;
  uv_fs_event_t ev[NWATCH];
  int armed[NWATCH]; /* ev[i] is initialised (must be closed) */
  uv_timer_t debounce;
  int open_handles; /* handles not yet closed, when stopping */
  int everything;   /* the burst asks for a full reload */
  int nchanges;
  char *changes[MAX_CHANGES]; /* paths relative to the folder, no duplicates */
  char dir[1024];
} reload_t;

static void on_reload_closed(uv_handle_t *h) {
  reload_t *r = h->data;
  r->p->pending_closes--;
  if (--r->open_handles == 0)
    free(r);
}

static void forget_changes(reload_t *r) {
  int i;
  for (i = 0; i < r->nchanges; i++)
    free(r->changes[i]);
  r->nchanges = 0;
  r->everything = 0;
}

static void on_debounced(uv_timer_t *t) {
  reload_t *r = t->data;
  plume_t *p = r->p;
  char *changes[MAX_CHANGES];
  int n = r->nchanges, everything = r->everything;
  memcpy(changes, r->changes, sizeof(changes));
  r->nchanges = 0;
  r->everything = 0;
  plume__lua_reload(p, everything ? NULL : (const char *const *)changes, n);
  while (n > 0)
    free(changes[--n]);
}

/* A file worth reloading for: *.lua, not hidden, not an editor's backup. */
static int lua_file(const char *name) {
  size_t n = strlen(name);
  return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".lua") == 0 &&
         strchr(name, '~') == NULL;
}

static void note(reload_t *r, const char *sub, const char *name) {
  char path[512];
  int i;
  snprintf(path, sizeof(path), "%s%s%s", sub, sub[0] ? "/" : "", name);
  for (i = 0; i < r->nchanges; i++)
    if (strcmp(r->changes[i], path) == 0)
      return;
  if (r->nchanges == MAX_CHANGES ||
      (r->changes[r->nchanges] = strdup(path)) == NULL)
    r->everything = 1;
  else
    r->nchanges++;
}

static void arm(reload_t *r, int i);

static void on_fs_event(uv_fs_event_t *h, const char *name, int events,
                        int status) {
  reload_t *r = h->data;
  int i = (int)(h - r->ev);
  (void)events;
  if (status < 0 || name == NULL) {
    r->everything = 1;
  } else if (i == W_ROOT &&
             (strcmp(name, "services") == 0 || strcmp(name, "config") == 0)) {
    /* The folder came, went or was replaced: watch the new one. */
    arm(r, strcmp(name, "services") == 0 ? W_SERVICES : W_CONFIG);
    r->everything = 1;
  } else if (lua_file(name)) {
    note(r, sub_dirs[i], name);
  } else {
    return;
  }
  plume__log(r->p, PLUME__LOG_DEBUG, "reload", "changed: %s%s%s", sub_dirs[i],
             sub_dirs[i][0] ? "/" : "", name ? name : "?");
  uv_timer_start(&r->debounce, on_debounced, DEBOUNCE_MS, 0);
}

/* (Re)starts watcher i; a folder that does not exist is simply not watched. */
static void arm(reload_t *r, int i) {
  char path[sizeof(r->dir) + 16];
  int err;
  snprintf(path, sizeof(path), "%s%s%s", r->dir, sub_dirs[i][0] ? "/" : "",
           sub_dirs[i]);
  if (!r->armed[i]) {
    uv_fs_event_init(r->p->loop, &r->ev[i]);
    r->ev[i].data = r;
    r->armed[i] = 1;
    r->open_handles++;
    r->p->pending_closes++;
  } else {
    uv_fs_event_stop(&r->ev[i]);
  }
  err = uv_fs_event_start(&r->ev[i], on_fs_event, path, 0);
  if (err != 0 && err != UV_ENOENT)
    plume__log(r->p, PLUME__LOG_WARN, "reload", "cannot watch %s: %s", path,
               uv_strerror(err));
}

int plume__reload_watch(plume_t *p, const char *dir) {
  reload_t *r;
  int i;
  if (p->reload != NULL || p->closing)
    return PLUME_ESTATE;
  if (strlen(dir) >= sizeof(r->dir))
    return UV_ENAMETOOLONG;
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return UV_ENOMEM;
  r->p = p;
  memcpy(r->dir, dir, strlen(dir) + 1);
  uv_timer_init(p->loop, &r->debounce);
  r->debounce.data = r;
  r->open_handles = 1;
  p->pending_closes++;
  p->reload = r;
  for (i = 0; i < NWATCH; i++)
    arm(r, i);
  if (!uv_is_active((uv_handle_t *)&r->ev[W_ROOT])) {
    plume__reload_stop(p);
    return UV_ENOENT;
  }
  plume__log(p, PLUME__LOG_DEBUG, "reload", "watching %s", dir);
  return 0;
}

void plume__reload_stop(plume_t *p) {
  reload_t *r = p->reload;
  int i;
  if (r == NULL)
    return;
  p->reload = NULL;
  forget_changes(r);
  uv_close((uv_handle_t *)&r->debounce, on_reload_closed);
  for (i = 0; i < NWATCH; i++)
    if (r->armed[i])
      uv_close((uv_handle_t *)&r->ev[i], on_reload_closed);
}

void plume__reload_all(plume_t *p) {
  if (p->closing)
    return;
  plume__log(p, PLUME__LOG_INFO, "reload", "reloading everything");
  if (p->reload != NULL) {
    uv_timer_stop(&p->reload->debounce);
    forget_changes(p->reload);
  }
  plume__lua_reload(p, NULL, 0);
}

/* ------------------------------------------------------------------------- */
/* {====== Config files */

/* Sets the option named by the key at -2 from the value at -1. Returns 0, 1
** when the key is no option (an app setting), or PLUME_EOPTION with err set. */
static int set_option(lua_State *L, plume_options_t *o, const char *file,
                      char *err, size_t errlen) {
  const plume_option_info_t *info;
  const char *name = lua_tostring(L, -2);
  char text[1100];
  for (info = plume_option_table(); info->name != NULL; info++)
    if (strcmp(info->name, name) == 0)
      break;
  if (info->name == NULL || strcmp(name, "app_dir") == 0 ||
      strcmp(name, "env") == 0)
    return 1;
  switch (lua_type(L, -1)) {
  case LUA_TBOOLEAN:
    snprintf(text, sizeof(text), "%s", lua_toboolean(L, -1) ? "true" : "false");
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1))
      snprintf(text, sizeof(text), "%lld", (long long)lua_tointeger(L, -1));
    else
      snprintf(text, sizeof(text), "%.17g", lua_tonumber(L, -1));
    break;
  case LUA_TSTRING:
    snprintf(text, sizeof(text), "%s", lua_tostring(L, -1));
    break;
  default:
    snprintf(err, errlen, "%s: option %s must be a %s, not a %s", file, name,
             info->type, luaL_typename(L, -1));
    return PLUME_EOPTION;
  }
  if (plume_options_set(o, name, text) != 0) {
    snprintf(err, errlen, "%s: invalid value for %s (%s expected): %s", file,
             name, info->type, text);
    return PLUME_EOPTION;
  }
  return 0;
}

/* Runs one config file; its table's option keys are set on o. */
static int apply_file(lua_State *L, const char *path, const char *file,
                      plume_options_t *o, char *err, size_t errlen) {
  int rc = 0;
  if (access(path, F_OK) != 0)
    return 0;
  lua_settop(L, 0);
  if (luaL_loadfilex(L, path, "t") != LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    return PLUME_ELUA;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: must return a table of settings", file);
    return PLUME_ELUA;
  }
  lua_pushnil(L);
  while (rc >= 0 && lua_next(L, 1) != 0) { /* t key value */
    if (lua_type(L, -2) == LUA_TSTRING)
      rc = set_option(L, o, file, err, errlen);
    lua_pop(L, 1); /* t key */
  }
  return rc < 0 ? rc : 0;
}

int plume__config_apply(const char *dir, const char *env, plume_options_t *o,
                        char *err, size_t errlen) {
  char path[2048], file[128];
  lua_State *L;
  int rc, i;
  if (env == NULL || env[0] == '\0' || strchr(env, '/') != NULL) {
    snprintf(err, errlen, "invalid environment name '%s'", env ? env : "");
    return PLUME_EOPTION;
  }
  L = luaL_newstate();
  if (L == NULL) {
    snprintf(err, errlen, "not enough memory");
    return UV_ENOMEM;
  }
  luaL_openlibs(L);
  for (i = 0, rc = 0; i < 2 && rc == 0; i++) {
    snprintf(file, sizeof(file), "config/%s.lua", i == 0 ? "default" : env);
    if (i == 1 && strcmp(env, "default") == 0)
      break;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    rc = apply_file(L, path, file, o, err, errlen);
  }
  lua_close(L);
  return rc;
}

/* }====== */
