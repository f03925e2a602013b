/*
** test_lua_bridge.c: tasks (one coroutine per call, reused from a pool), the
** waits' "cannot wait here" rule, and the runaway-Lua bounds: the per-call time
** budget and the per-state memory cap each fail only their own call
** (reliability.md §3.5, §4.6 #39-40).
*/
#include "instance.h"

/* Tasks finish, their coroutines go back to the pool, and the count drops to
** zero. */
static void test_tasks_finish_and_reuse(void) {
  plume_t *p = instance_new(NULL);
  lua_State *L;
  int i;
  CHECK(p != NULL);
  L = plume_lua(p);
  run_lua(p, "threads = {} count = 0");
  for (i = 0; i < 200; i++)
    run_lua(p, "threads[coroutine.running()] = true count = count + 1");
  CHECK_EQ(p->lua_tasks, 0);
  CHECK_EQ(lua_global_int(p, "count"), 200);
  run_lua(p, "n = 0 for _ in pairs(threads) do n = n + 1 end");
  /* one coroutine served them all: each finished before the next started */
  CHECK(lua_global_int(p, "n") <= 2);
  CHECK_EQ(lua_gettop(L), 0);
  instance_free(p);
}

/* A task that raised is logged and ended; the next task starts clean. */
static void test_task_error(void) {
  plume_t *p = instance_new(NULL);
  CHECK_EQ(run_lua(p, "error('boom')"), PLUME_ELUA);
  CHECK_EQ(run_lua(p, "error(setmetatable({}, {__tostring = function() "
                      "error('bad') end}))"),
           PLUME_ELUA);
  CHECK_EQ(run_lua(p, "error(nil)"), PLUME_ELUA);
  CHECK_EQ(run_lua(p, "coroutine.yield()"), PLUME_ELUA); /* bare yield */
  CHECK_EQ(p->lua_tasks, 0);
  CHECK_EQ(run_lua(p, "ok = 1"), 0);
  CHECK_EQ(lua_global_int(p, "ok"), 1);
  instance_free(p);
}

/* Waiting from a coroutine of the user's own is a clear error, not a hang. */
static void test_cannot_wait_here(void) {
  plume_t *p = instance_new(NULL);
  char msg[256];
  run_lua(p, "local co = coroutine.create(function() require('plume').sleep(1) "
             "end) local ok, err = coroutine.resume(co) msg = err "
             "wrapped = pcall(coroutine.wrap(function() "
             "require('plume').sleep(1) end))");
  lua_global_str(p, "msg", msg, sizeof(msg));
  CHECK(strstr(msg, "cannot wait here") != NULL);
  CHECK_EQ(lua_global_int(p, "wrapped"), 0);
  CHECK_EQ(p->lua_tasks, 0);
  /* the main thread (set-up code) cannot wait either */
  lua_State *L = plume_lua(p);
  CHECK(luaL_dostring(L, "require('plume').sleep(1)") != LUA_OK);
  CHECK(strstr(lua_tostring(L, -1), "cannot wait here") != NULL);
  lua_settop(L, 0);
  instance_free(p);
}

/* A slow call (sleep) never delays a fast one; waits resume in time order. */
static void test_slow_call_does_not_block(void) {
  plume_t *p = instance_new(NULL);
  uint64_t t0 = uv_hrtime();
  run_lua(p, "local plume = require 'plume' order = '' "
             "plume.spawn(function() plume.sleep(80) order = order .. 's' "
             "done = true end)");
  run_lua(p, "local plume = require 'plume' plume.sleep(5) "
             "order = order .. 'f' fast_at = plume.now()");
  CHECK_EQ(p->lua_tasks, 2);
  CHECK(spin_until(p, "done", 2000));
  {
    char order[8];
    CHECK_STR(lua_global_str(p, "order", order, sizeof(order)), "fs");
  }
  CHECK(uv_hrtime() - t0 >= 60 * 1000000u); /* loop time may lag */
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

/* An endless loop fails its own call with a GeneralError after the budget; the
** error path can still run; other tasks carry on. */
static void test_time_budget(void) {
  plume_options_t o;
  plume_t *p;
  char msg[256];
  uint64_t t0;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "100");
  p = instance_new(&o);
  t0 = uv_hrtime();
  run_lua(p, "local ok, err = pcall(function() while true do end end) "
             "name = err.name code = err.code msg = err.message");
  CHECK(uv_hrtime() - t0 < 1000 * 1000000u);
  lua_global_str(p, "name", msg, sizeof(msg));
  CHECK_STR(msg, "GeneralError");
  CHECK_EQ(lua_global_int(p, "code"), 500);
  lua_global_str(p, "msg", msg, sizeof(msg));
  CHECK(strstr(msg, "time budget of 100 ms") != NULL);
  CHECK(strstr(msg, "[string") != NULL); /* where the loop was */
  /* The budget is per run between waits: a task that waits gets a fresh one. */
  run_lua(p, "local plume = require 'plume' for i = 1, 3 do "
             "local t = plume.now() while plume.now() - t < 60 do end "
             "plume.sleep(1) end slices = true");
  CHECK(spin_until(p, "slices", 2000));
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

/* Code that swallows the budget error and keeps looping is stopped for good. */
static void test_time_budget_kill(void) {
  plume_options_t o;
  plume_t *p;
  uint64_t t0;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "50");
  p = instance_new(&o);
  t0 = uv_hrtime();
  CHECK_EQ(run_lua(p, "while true do pcall(function() while true do end end) "
                      "end"),
           PLUME_ELUA);
  CHECK(uv_hrtime() - t0 < 1000 * 1000000u);
  CHECK_EQ(p->lua_tasks, 0);
  /* and in a coroutine of its own inside the task */
  CHECK_EQ(run_lua(p, "local co = coroutine.wrap(function() while true do "
                      "pcall(function() while true do end end) end end) "
                      "while true do pcall(co) end"),
           PLUME_ELUA);
  CHECK_EQ(p->lua_tasks, 0);
  CHECK_EQ(run_lua(p, "after = 1"), 0);
  CHECK_EQ(lua_global_int(p, "after"), 1);
  instance_free(p);
}

/* Tasks run unhooked (any hook slows every instruction); the watchdog thread
** exists only with a budget, and a task's own coroutines keep the hook the
** watchdog cannot arm for them. */
static void test_watchdog(void) {
  plume_options_t o;
  plume_t *p;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "0");
  p = instance_new(&o);
  run_lua(p, "hooked = debug.gethook() and 1 or 0");
  CHECK_EQ(lua_global_int(p, "hooked"), 0);
  CHECK(p->watchdog == NULL);
  instance_free(p);
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "100");
  p = instance_new(&o);
  run_lua(p, "hooked = debug.gethook() and 1 or 0 "
             "inner = coroutine.wrap(function() "
             "return debug.gethook() and 1 or 0 end)() "
             "created = debug.gethook(coroutine.create(print)) and 1 or 0");
  CHECK(p->watchdog != NULL);
  CHECK_EQ(lua_global_int(p, "hooked"), 0);
  CHECK_EQ(lua_global_int(p, "inner"), 1);
  CHECK_EQ(lua_global_int(p, "created"), 1);
  /* an overrun arms the hook, and the next task runs unhooked again */
  run_lua(p, "pcall(function() while true do end end)");
  run_lua(p, "hooked = debug.gethook() and 1 or 0");
  CHECK_EQ(lua_global_int(p, "hooked"), 0);
  instance_free(p); /* joins the watchdog (ASan sees a leak otherwise) */
}

/* A function that sets the globals n and sum to the count and the sum of its
** arguments. */
static const char *const sum_args =
    "return function(...) n = select('#', ...) sum = 0 "
    "for i = 1, n do sum = sum + select(i, ...) end end";

/* A task gets every argument, however many: a fresh coroutine only has room
** for about 20, so the bridge must grow its stack before moving them in. */
static void test_many_arguments(void) {
  plume_t *p = instance_new(NULL);
  lua_State *L = plume_lua(p);
  int round, i;
  /* a fresh coroutine, then a pooled one */
  for (round = 0; round < 2; round++) {
    CHECK_EQ(luaL_dostring(L, sum_args), LUA_OK); /* fn */
    CHECK(lua_checkstack(L, 200));
    for (i = 1; i <= 200; i++)
      lua_pushinteger(L, i); /* fn 1 .. 200 */
    CHECK_EQ(plume__task_start(p, 200), 0);
    CHECK_EQ(lua_gettop(L), 0);
    CHECK_EQ(lua_global_int(p, "n"), 200);
    CHECK_EQ(lua_global_int(p, "sum"), 200 * 201 / 2);
  }
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

/* Lua for a task the time budget stops right after it armed a wait: a
** coroutine of its own swallows the budget error until the hook yields it for
** good, and the task then starts the wait that the bridge ends it in. */
#define KILLED_AFTER(wait)                                                     \
  "local plume = require 'plume' victim = coroutine.running() "                \
  "local spin = coroutine.wrap(function() while true do "                      \
  "pcall(function() while true do end end) end end) "                          \
  "spin() " wait " stale = 1"

/* A wait armed by a task the time budget stopped never resumes anything: not
** the next task its pooled coroutine serves, not the idle coroutine. */
static void test_killed_task_wait_is_stale(void) {
  plume_options_t o;
  plume_t *p;
  uint64_t t0;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "40");
  p = instance_new(&o);
  CHECK_EQ(run_lua(p, KILLED_AFTER("plume.sleep(30)")), PLUME_ELUA);
  CHECK_EQ(p->lua_tasks, 0);
  uv_update_time(plume_loop(p)); /* the kill took two budgets */
  t0 = uv_hrtime();
  CHECK_EQ(run_lua(p, "local plume = require 'plume' "
                      "reused = coroutine.running() == victim and 1 or 0 "
                      "plume.sleep(200) woke = 1"),
           0);
  CHECK_EQ(lua_global_int(p, "reused"), 1); /* the pool gave it the coroutine */
  CHECK_EQ(p->lua_tasks, 1);
  spin(p, 100); /* the stale sleep fires meanwhile */
  CHECK_EQ(lua_global_int(p, "woke"), 0);
  CHECK_EQ(p->lua_tasks, 1);
  CHECK(spin_until(p, "woke", 2000));
  CHECK(uv_hrtime() - t0 >= 150 * 1000000u);
  CHECK_EQ(lua_global_int(p, "stale"), 0);
  CHECK_EQ(p->lua_tasks, 0);
  /* Idle in the pool: the stale wait finds nothing to resume either. */
  CHECK_EQ(run_lua(p, KILLED_AFTER("plume.sleep(10)")), PLUME_ELUA);
  spin(p, 50);
  CHECK_EQ(p->lua_tasks, 0);
  CHECK_EQ(lua_global_int(p, "stale"), 0);
  CHECK_EQ(run_lua(p, "after = 1"), 0);
  CHECK_EQ(lua_global_int(p, "after"), 1);
  instance_free(p);
}

/* The same with a wait that pushes values onto the coroutine it resumes (bcrypt
** on the thread pool): nothing is pushed onto the task that reuses it. */
static void test_killed_task_pushing_wait_is_stale(void) {
  plume_options_t o;
  plume_t *p;
  uint64_t end;
  int base;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "40");
  p = instance_new(&o);
  base = p->pending_closes;
  CHECK_EQ(run_lua(p, KILLED_AFTER("require('plume.core').crypto."
                                   "bcrypt_hash('pw', 8)")),
           PLUME_ELUA);
  CHECK_EQ(run_lua(p, "local plume = require 'plume' "
                      "reused = coroutine.running() == victim and 1 or 0 "
                      "got = select('#', plume.sleep(600)) woke = 1"),
           0);
  CHECK_EQ(lua_global_int(p, "reused"), 1);
  CHECK_EQ(p->pending_closes, base + 2); /* the hash and the sleep */
  end = uv_hrtime() + 2000 * 1000000u;
  while (p->pending_closes > base + 1 && uv_hrtime() < end)
    spin(p, 5);
  CHECK_EQ(p->pending_closes, base + 1); /* the hash is done */
  CHECK_EQ(lua_global_int(p, "woke"), 0);
  CHECK(spin_until(p, "woke", 2000));
  CHECK_EQ(lua_global_int(p, "got"), 0); /* its own sleep's (no) values */
  CHECK_EQ(lua_global_int(p, "stale"), 0);
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

static int shutdown_closed;
static void on_shutdown_closed(plume_t *p) {
  shutdown_closed = 1;
}

/* Shutdown: a stale wait firing while calls drain resumes none of them; the
** drain runs to its deadline and the call still waiting is abandoned. */
static void test_shutdown_with_stale_wait(void) {
  plume_options_t o;
  plume_t *p;
  uint64_t t0;
  plume_options_init(&o);
  plume_options_set(&o, "lua_call_timeout", "40");
  plume_options_set(&o, "shutdown_timeout", "200");
  p = instance_new(&o);
  CHECK_EQ(run_lua(p, KILLED_AFTER("plume.sleep(30)")), PLUME_ELUA);
  CHECK_EQ(run_lua(p, "local plume = require 'plume' "
                      "reused = coroutine.running() == victim and 1 or 0 "
                      "plume.sleep(5000) woke = 1"),
           0);
  CHECK_EQ(lua_global_int(p, "reused"), 1);
  uv_update_time(plume_loop(p));
  t0 = uv_hrtime();
  shutdown_closed = 0;
  plume_close(p, on_shutdown_closed);
  plume_run(p);
  CHECK_EQ(shutdown_closed, 1);
  CHECK(uv_hrtime() - t0 >= 150 * 1000000u); /* it drained to the deadline */
  CHECK_EQ(lua_global_int(p, "woke"), 0);
  CHECK_EQ(lua_global_int(p, "stale"), 0);
  CHECK_EQ(p->lua_tasks, 1); /* the abandoned call */
  CHECK_EQ(p->pending_closes, 0);
  CHECK(p->waits == NULL);
  plume_destroy(p);
}

/* A huge allocation or an endless table fails that call with "not enough
** memory"; the state stays usable and memory goes back down. */
static void test_memory_cap(void) {
  plume_options_t o;
  plume_t *p;
  char msg[128];
  size_t base;
  plume_options_init(&o);
  plume_options_set(&o, "lua_memory_limit", "33554432"); /* 32 MiB */
  p = instance_new(&o);
  CHECK(p != NULL);
  lua_gc(plume_lua(p), LUA_GCCOLLECT);
  base = p->lua_mem;
  CHECK(base > 0 && base < 32u * 1024 * 1024);
  run_lua(p, "local ok, err = pcall(string.rep, 'x', 64 * 1024 * 1024) "
             "msg1 = tostring(err)");
  CHECK_STR(lua_global_str(p, "msg1", msg, sizeof(msg)), "not enough memory");
  run_lua(p, "local ok, err = pcall(function() local t = {} "
             "for i = 1, 1e9 do t[i] = {i} end end) msg2 = tostring(err)");
  CHECK_STR(lua_global_str(p, "msg2", msg, sizeof(msg)), "not enough memory");
  CHECK(p->lua_mem_peak <= 32u * 1024 * 1024);
  /* uncaught: the task ends, the next one works */
  CHECK_EQ(run_lua(p, "local s = string.rep('y', 40 * 1024 * 1024)"),
           PLUME_ELUA);
  CHECK_EQ(run_lua(p, "fine = #string.rep('z', 1024 * 1024)"), 0);
  CHECK_EQ(lua_global_int(p, "fine"), 1024 * 1024);
  lua_gc(plume_lua(p), LUA_GCCOLLECT);
  CHECK(p->lua_mem < base + 4u * 1024 * 1024);
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

/* spawn inside spawn inside ... is bounded, never a C stack overflow. */
static void test_nested_spawn_bounded(void) {
  plume_t *p = instance_new(NULL);
  run_lua(p, "local plume = require 'plume' depth = 0 "
             "local function f() depth = depth + 1 plume.spawn(f) end f()");
  CHECK(lua_global_int(p, "depth") >= 50);
  CHECK(lua_global_int(p, "depth") <= 200);
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
}

/* Lua warnings are logged, not fatal; the state survives. */
static void test_warn(void) {
  plume_t *p = instance_new(NULL);
  CHECK_EQ(run_lua(p, "warn('@on') warn('a ', 'b') warn('@off') warn('x') "
                      "w = 1"),
           0);
  CHECK_EQ(lua_global_int(p, "w"), 1);
  instance_free(p);
}

int main(void) {
  RUN(test_tasks_finish_and_reuse);
  RUN(test_task_error);
  RUN(test_cannot_wait_here);
  RUN(test_slow_call_does_not_block);
  RUN(test_time_budget);
  RUN(test_time_budget_kill);
  RUN(test_watchdog);
  RUN(test_many_arguments);
  RUN(test_killed_task_wait_is_stale);
  RUN(test_killed_task_pushing_wait_is_stale);
  RUN(test_shutdown_with_stale_wait);
  RUN(test_memory_cap);
  RUN(test_nested_spawn_bounded);
  RUN(test_warn);
  return check_done();
}
