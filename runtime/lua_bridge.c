/*
** lua_bridge.c: the instance's Lua state and its tasks. Every inbound call (an event
** handler, a service method, a middleware) runs in a coroutine of its own; waits yield the
** coroutine, never the loop (DESIGN.md §4, style.md F). Below: lua_api.c (plume.core).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "internal.h"

/* lua_closethread arrived in 5.4.6; Debian 12 ships 5.4.4 with lua_resetthread. */
#if LUA_VERSION_RELEASE_NUM < 50406
#define lua_closethread(co, from) lua_resetthread(co)
#endif

/* Registry keys are addresses (style.md F.6). */
static const char instance_key = 'p'; /* light userdata: plume_t * */
static const char tasks_key = 't';    /* table: coroutine -> true, pins running tasks */

plume_t *plume__lua_instance(lua_State *L) {
  plume_t *p;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &instance_key); /* p */
  p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p;
}

/* Message handler for protected calls on the main thread: adds a traceback. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Logs the error at the top of co's stack with co's traceback. */
static void log_task_error(plume_t *p, lua_State *co) {
  lua_State *L = p->L;
  const char *msg = lua_tostring(co, -1);
  if (msg == NULL) {
    if (luaL_callmeta(co, -1, "__tostring") && lua_isstring(co, -1))
      msg = lua_tostring(co, -1);
    else
      msg = lua_pushfstring(co, "(error object is a %s value)",
                            luaL_typename(co, -1));
  }
  luaL_traceback(L, co, msg, 0); /* L: ... traceback */
  plume__log(p, PLUME__LOG_ERROR, "lua", "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Unpins a finished task. */
static void task_done(plume_t *p, lua_State *co) {
  lua_State *L = p->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key); /* tasks */
  lua_pushthread(co);
  lua_xmove(co, L, 1);   /* tasks co */
  lua_pushnil(L);        /* tasks co nil */
  lua_rawset(L, -3);     /* tasks[co] = nil */
  lua_pop(L, 1);
  p->lua_tasks--;
}

static int run(plume_t *p, lua_State *co, int nargs) {
  int nres, status;
  p->task_waiting = 0;
  status = lua_resume(co, p->L, nargs, &nres);
  if (status == LUA_YIELD) {
    if (p->task_waiting) {
      p->task_waiting = 0;
      return 0;
    }
    /* A bare coroutine.yield() in a task would leave it suspended for ever. */
    lua_settop(co, 0);
    lua_pushliteral(co, "attempt to yield from a task outside a plume wait "
                        "(use coroutine.wrap for your own coroutines)");
    log_task_error(p, co);
    lua_closethread(co, p->L);
    task_done(p, co);
    return PLUME_ELUA;
  }
  if (status != LUA_OK) {
    log_task_error(p, co);
    lua_closethread(co, p->L);
    task_done(p, co);
    return PLUME_ELUA;
  }
  lua_settop(co, 0);
  task_done(p, co);
  return 0;
}

int plume__task_start(plume_t *p, int nargs) {
  lua_State *L = p->L;
  lua_State *co;
  luaL_checkstack(L, 3, NULL);
  co = lua_newthread(L);                         /* fn args... co */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key); /* fn args... co tasks */
  lua_pushvalue(L, -2);                          /* fn args... co tasks co */
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);                             /* tasks[co] = true */
  lua_pop(L, 2);                                 /* fn args... */
  lua_xmove(L, co, nargs + 1);                   /* co: fn args... */
  p->lua_tasks++;
  return run(p, co, nargs);
}

int plume__task_resume(plume_t *p, lua_State *co, int nres) {
  return run(p, co, nres);
}

void plume__task_check_wait(lua_State *L) {
  int is_task;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key); /* tasks */
  lua_pushthread(L);                             /* tasks co */
  lua_rawget(L, -2);                             /* tasks tasks[co] */
  is_task = lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (!is_task || !lua_isyieldable(L))
    luaL_error(L, "cannot wait here: waiting is only possible in a Plume task "
                  "(a handler, a service method or a hook), not in a "
                  "coroutine of your own");
}

int plume__task_wait(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  p->task_waiting = 1;
  return lua_yield(L, 0);
}

/* Prepends dir/?.lua and dir/?/init.lua to package.path. */
static void add_lua_path(lua_State *L, const char *dir) {
  lua_getglobal(L, "package");                          /* package */
  lua_getfield(L, -1, "path");                          /* package path */
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir,
                  lua_tostring(L, -1));                 /* package path newpath */
  lua_setfield(L, -3, "path");                          /* package.path = newpath */
  lua_pop(L, 2);
}

static int open_framework(lua_State *L) {
  luaL_requiref(L, "plume.core", luaopen_plume_core, 0); /* core */
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  lua_call(L, 1, 0); /* require "plume" */
  return 0;
}

int plume__lua_init(plume_t *p) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return UV_ENOMEM;
  luaL_openlibs(L);
  lua_pushlightuserdata(L, p);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &instance_key);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tasks_key);
  if (p->opts.lua_path[0] != '\0')
    add_lua_path(L, p->opts.lua_path);
  p->L = L;
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, open_framework);
  if (lua_pcall(L, 0, 0, 1) != LUA_OK) {
    plume__log(p, PLUME__LOG_ERROR, "lua", "cannot load the framework: %s",
               lua_tostring(L, -1));
    lua_close(L);
    p->L = NULL;
    return PLUME_ELUA;
  }
  lua_settop(L, 0);
  return 0;
}

void plume__lua_close(plume_t *p) {
  if (p->L != NULL)
    lua_close(p->L);
  p->L = NULL;
}

/* Loads the app in a task, so that app.lua may wait (e.g. for a database). */
int plume__lua_load_app(plume_t *p, const char *dir) {
  lua_State *L = p->L;
  int err;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* plume */
    plume__log(p, PLUME__LOG_ERROR, "app", "%s", lua_tostring(L, -1));
    lua_settop(L, 0);
    return PLUME_ELUA;
  }
  lua_getfield(L, -1, "load_app"); /* plume load_app */
  lua_remove(L, -2);               /* load_app */
  lua_pushstring(L, dir);          /* load_app dir */
  err = plume__task_start(p, 1);
  lua_settop(L, 0);
  return err;
}
