/*
** instance.h: helpers for unit tests that drive a whole plume_t on its own
** loop: make an instance with the framework from lua/, run Lua in a task, spin
** the loop for a while, read Lua globals, and shut down checking that nothing
** was left behind.
*/
#ifndef PLUME_TEST_INSTANCE_H
#define PLUME_TEST_INSTANCE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "check.h"
#include "internal.h"

/* A new instance owning its loop, the framework from ./lua, quiet logs. */
static inline plume_t *instance_new(plume_options_t *o) {
  plume_options_t defaults;
  plume_t *p = NULL;
  char cwd[512];
  if (o == NULL) {
    plume_options_init(&defaults);
    o = &defaults;
  }
  if (o->lua_path[0] == '\0' && getcwd(cwd, sizeof(cwd) - 8) != NULL) {
    strcat(cwd, "/lua");
    plume_options_set(o, "lua_path", cwd);
  }
  if (getenv("PLUME_TEST_LOG") == NULL)
    plume_options_set(o, "log_level", "error");
  plume_options_set(o, "watch", "false");
  if (plume_new(&p, NULL, o) != 0)
    return NULL;
  return p;
}

/* Runs code (a Lua chunk) as a task. Returns plume__task_start's result. */
static inline int run_lua(plume_t *p, const char *code) {
  lua_State *L = plume_lua(p);
  if (luaL_loadstring(L, code) != LUA_OK) {
    printf("#   load: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return plume__task_start(p, 0);
}

static void on_spin_timer(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Runs the loop for about ms milliseconds (or until it has nothing left to
** do). */
static inline void spin(plume_t *p, int ms) {
  uv_timer_t t;
  int done = 0;
  uv_timer_init(plume_loop(p), &t);
  t.data = &done;
  uv_timer_start(&t, on_spin_timer, (uint64_t)ms, 0);
  while (!done && uv_run(plume_loop(p), UV_RUN_ONCE) != 0)
    ;
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(plume_loop(p), UV_RUN_NOWAIT);
}

/* Spins until the Lua global name is truthy or ms have passed. Returns 1 if it
** is. */
static inline int spin_until(plume_t *p, const char *name, int ms) {
  lua_State *L = plume_lua(p);
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  for (;;) {
    int ok;
    lua_getglobal(L, name);
    ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok || uv_hrtime() > end)
      return ok;
    spin(p, 5);
  }
}

/* The Lua global name as an integer (0 when it is not a number). */
static inline long long lua_global_int(plume_t *p, const char *name) {
  lua_State *L = plume_lua(p);
  long long v;
  lua_getglobal(L, name);
  v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Copies the Lua global name (a string) into buf; "" when it is not one. */
static inline const char *lua_global_str(plume_t *p, const char *name,
                                         char *buf, size_t len) {
  lua_State *L = plume_lua(p);
  const char *s;
  lua_getglobal(L, name);
  s = lua_tostring(L, -1);
  snprintf(buf, len, "%s", s != NULL ? s : "");
  lua_pop(L, 1);
  return buf;
}

static int closed_count;
static void on_instance_closed(plume_t *p) {
  closed_count++;
}

/* Closes and frees p, checking that every task, wait, timer and handle went
** away. */
static inline void instance_free(plume_t *p) {
  int before = closed_count;
  plume_close(p, on_instance_closed);
  plume_run(p);
  CHECK_EQ(closed_count, before + 1);
  CHECK_EQ(p->pending_closes, 0);
  CHECK(p->waits == NULL);
  CHECK(p->timers == NULL);
  CHECK_EQ(uv_loop_alive(plume_loop(p)), 0);
  plume_destroy(p);
}

/* Writes text to path (a test fixture). */
static inline void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
}

#endif
