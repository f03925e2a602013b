/*
** lua_bridge.c: the instance's Lua state and its tasks. Every inbound call (an
** event handler, a service method, a middleware) runs in a coroutine of its
** own, taken from a small pool; waits yield the coroutine, never the loop
** (DESIGN.md §4, style.md F). Runaway Lua is bounded per call by a time budget
** that a watchdog thread arms a count hook for, and per state by a counting
** allocator
** (reliability.md §3.5). Reload and shutdown enter the framework from here.
** Below: lua_api.c and lua_async.c (plume.core).
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "internal.h"

/* lua_closethread arrived in 5.4.6; Debian 12 has 5.4.4 (lua_resetthread). */
#if LUA_VERSION_RELEASE_NUM < 50406
#define lua_closethread(co, from) lua_resetthread(co)
#endif

#define HOOK_COUNT 10000      /* instructions between two looks at the clock */
#define WATCH_TICK 100000000u /* ns, the watchdog's longest sleep */
#define POOL_MAX 64           /* finished coroutines kept for reuse */
#define MAX_DEPTH                                                              \
  100 /* task runs nested on the C stack (spawn inside spawn)                  \
       */

/* Registry keys are addresses (style.md F.6). */
static const char instance_key = 'p'; /* light userdata: plume_t * */
static const char tasks_key =
    't'; /* table: coroutine -> true, pins running tasks */
static const char pool_key =
    'o'; /* table: array of idle coroutines for reuse */
/* table: light userdata co -> number of its task's armed wait (0: none), while
** the task lives; keyed by address, so a stale co is looked up, never read */
static const char waits_key = 'w';
static const char limit_error_key = 'e'; /* function(message) -> error value */
static const char reported_key =
    'r'; /* table: an error already logged by Lua */

plume_t *plume__lua_instance(lua_State *L) {
  plume_t *p;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &instance_key); /* p */
  p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p;
}

/* ------------------------------------------------------------------------- */
/* {====== Limits: memory, time, warnings */

/*
** The state's allocator: counts the bytes Lua holds and, while task code runs,
** refuses to grow past lua_memory_limit. Lua then collects garbage and tries
** again, and if that fails raises "not enough memory" in the task, which
** lua_resume protects. The runtime's C glue (pushing results, pinning tasks)
** runs outside tasks, where an error would have nowhere to go, so it is never
** refused. Shrinking never fails.
*/
static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  plume_t *p = ud;
  size_t old = ptr != NULL ? osize : 0;
  void *np;
  if (nsize == 0) {
    free(ptr);
    p->lua_mem -= old;
    return NULL;
  }
  if (nsize > old && p->lua_capped && p->lua_mem_limit != 0 &&
      p->lua_mem - old + nsize > p->lua_mem_limit)
    return NULL;
  np = realloc(ptr, nsize);
  if (np == NULL)
    return NULL;
  p->lua_mem = p->lua_mem - old + nsize;
  if (p->lua_mem > p->lua_mem_peak)
    p->lua_mem_peak = p->lua_mem;
  return np;
}

/*
** The watchdog. A hook of any kind puts Lua 5.4 on its traced path for every
** instruction, so tasks run unhooked: run() records which coroutine runs and
** its deadline, and one thread per instance wakes at least every
** min(budget / 2, WATCH_TICK) and, once the deadline is past, arms the count
** hook on that coroutine; it fires within HOOK_COUNT instructions, as the
** always-on hook did, so a call busy in C (an allocation the memory cap ends)
** still gets its own error (lua_sethook may be called asynchronously, as
** lua.c does from its SIGINT handler). It touches nothing else of Lua, and
** only under the mutex the loop thread holds while it changes the running
** coroutine, so it never arms one that has yielded or ended.
*/
typedef struct plume__watchdog_s plume__watchdog_t;
struct plume__watchdog_s {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  lua_State *co;     /* the task running now; NULL between runs */
  uint64_t deadline; /* uv_hrtime() at which co is past its budget */
  uint64_t armed;    /* the deadline co's hook was armed for */
  uint64_t tick;
};

static void on_count(lua_State *L, lua_Debug *ar);

static void *watchdog_main(void *arg) {
  plume__watchdog_t *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    uint64_t now = uv_hrtime(), wait = w->tick;
    struct timespec ts;
    if (w->co != NULL && now >= w->deadline && w->armed != w->deadline) {
      w->armed = w->deadline;
      lua_sethook(w->co, on_count, LUA_MASKCOUNT, HOOK_COUNT);
    } else if (w->co != NULL && w->deadline > now && w->deadline - now < wait) {
      wait = w->deadline - now;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    wait += (uint64_t)ts.tv_nsec;
    ts.tv_sec += (time_t)(wait / 1000000000u);
    ts.tv_nsec = (long)(wait % 1000000000u);
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Starts the watchdog; NULL if it cannot run (tasks then keep the hook). */
static plume__watchdog_t *watch_start(plume_t *p) {
  plume__watchdog_t *w = calloc(1, sizeof(*w));
  pthread_condattr_t ca;
  if (w == NULL)
    return NULL;
  w->tick = p->task_budget / 2 < WATCH_TICK ? p->task_budget / 2 : WATCH_TICK;
  if (w->tick < 1000000u)
    w->tick = 1000000u;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (pthread_mutex_init(&w->mu, NULL) != 0) {
    free(w);
    return NULL;
  }
  if (pthread_cond_init(&w->cv, &ca) != 0) {
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  pthread_condattr_destroy(&ca);
  if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  return w;
}

static void watch_stop(plume_t *p) {
  plume__watchdog_t *w = p->watchdog;
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
  p->watchdog = NULL;
}

/* Makes co (NULL: none) the watched coroutine; unhook clears a hook the
** watchdog may have armed on the coroutine watched so far. */
static void watch_set(plume_t *p, lua_State *co, uint64_t deadline,
                      int unhook) {
  plume__watchdog_t *w = p->watchdog;
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->mu);
  if (unhook && w->co != NULL)
    lua_sethook(w->co, NULL, 0, 0);
  w->co = co;
  w->deadline = deadline;
  pthread_mutex_unlock(&w->mu);
}

/* Coroutines a task creates for itself run where the watchdog cannot see
** them: they keep a count hook that looks at the clock (coroutine.create and
** coroutine.wrap below). Only while a task runs, as lua_newthread copies the
** hook then: a thread of the host's own never finds a stale p. */
static int hooked_create(lua_State *L) {
  plume_t *p;
  lua_State *co;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1); /* co, or the function of wrap */
  co = lua_isthread(L, -1) ? lua_tothread(L, -1) : NULL;
  if (co == NULL && lua_getupvalue(L, -1, 1) != NULL) { /* f co */
    co = lua_tothread(L, -1);
    lua_pop(L, 1);
  }
  p = plume__lua_instance(L);
  if (co != NULL && p != NULL && p->task_co != NULL)
    lua_sethook(co, on_count, LUA_MASKCOUNT, HOOK_COUNT);
  return 1;
}

static void hook_coroutines(lua_State *L) {
  static const char *const names[] = {"create", "wrap"};
  int i;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* loaded */
  if (lua_getfield(L, -1, LUA_COLIBNAME) == LUA_TTABLE) {
    for (i = 0; i < 2; i++) {
      lua_getfield(L, -1, names[i]); /* loaded co fn */
      if (lua_tocfunction(L, -1) == hooked_create || !lua_isfunction(L, -1)) {
        lua_pop(L, 1); /* a borrowed state hooked by an earlier run */
        continue;
      }
      lua_pushcclosure(L, hooked_create, 1);
      lua_setfield(L, -2, names[i]);
    }
  }
  lua_pop(L, 2);
}

/*
** The count hook of every task coroutine (and of the coroutines they create).
** Once the running slice is past its deadline it raises a GeneralError in that
** call; the error path gets one more budget to answer. Code that swallows the
** error and keeps running is stopped for good: the hook yields it and the
** bridge closes it (see run).
*/
static void on_count(lua_State *L, lua_Debug *ar) {
  plume_t *p = *(plume_t **)lua_getextraspace(L);
  uint64_t now;
  if (p == NULL || p->task_deadline == 0)
    return;
  if (!p->task_killed) {
    if ((now = uv_hrtime()) < p->task_deadline)
      return;
    if (!p->task_expired) {
      p->task_expired = 1;
      p->task_deadline = now + p->task_budget;
      /* The error path runs unhooked; the watchdog arms again once it too is
      ** past its budget. */
      watch_set(p, p->task_co, p->task_deadline, 1);
      if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "call exceeded its time budget of %d ms at %s:%d",
                        p->opts.lua_call_timeout, ar->short_src,
                        ar->currentline);
      else
        lua_pushfstring(L, "call exceeded its time budget of %d ms",
                        p->opts.lua_call_timeout);
      if (lua_rawgetp(L, LUA_REGISTRYINDEX, &limit_error_key) ==
          LUA_TFUNCTION) {
        lua_insert(L, -2); /* fn msg */
        lua_call(L, 1, 1); /* err */
      } else {
        lua_pop(L, 1); /* msg */
      }
      lua_error(L);
    }
    p->task_killed = 1;
    /* The task yields too, at its next hook once back in (it may start a
    ** wait first, which then ends with it). */
    if (p->task_co != NULL && p->task_co != L)
      lua_sethook(p->task_co, on_count, LUA_MASKCOUNT, HOOK_COUNT);
  }
  /* In a coroutine of the task's own this yields to the task, whose next hook
  ** yields the task itself. */
  lua_yield(L, 0);
}

/* Lua warnings (warn("a", "b")) go to the log, whole; "@off" and "@on" switch
** them. */
static void on_warn(void *ud, const char *msg, int tocont) {
  plume_t *p = ud;
  if (p->lua_warn.len == 0 && !tocont && msg[0] == '@') {
    if (strcmp(msg, "@off") == 0)
      p->lua_warn_off = 1;
    else if (strcmp(msg, "@on") == 0)
      p->lua_warn_off = 0;
    return;
  }
  if (p->lua_warn.len < 4096)
    plume__buf_append(&p->lua_warn, msg, strlen(msg));
  if (tocont)
    return;
  if (!p->lua_warn_off)
    plume__log(p, PLUME__LOG_WARN, "lua", "%.*s", (int)p->lua_warn.len,
               p->lua_warn.p != NULL ? p->lua_warn.p : "");
  p->lua_warn.len = 0;
}

static int on_panic(lua_State *L) {
  plume_t *p = *(plume_t **)lua_getextraspace(L);
  plume__log(p, PLUME__LOG_ERROR, "lua", "unprotected error: %s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
  return 0; /* Lua aborts */
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Tasks */

/* Message handler for protected calls on the main thread: adds a traceback. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Error text of a task: (err, co) -> message with co's traceback. Run
** protected, since a __tostring metamethod may raise (CVE-2022-33099 class). */
static int describe_error(lua_State *L) {
  lua_State *co = lua_tothread(L, 2);
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL && lua_istable(L, 1)) {
    if (lua_getfield(L, 1, "stack") == LUA_TSTRING ||
        (lua_pop(L, 1), lua_getfield(L, 1, "message")) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
  }
  if (msg == NULL && luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
    msg = lua_tostring(L, -1);
  if (msg == NULL)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, co, msg, 0); /* ... traceback */
  return 1;
}

/* Logs the error at the top of co's stack with co's traceback. */
static void log_task_error(plume_t *p, lua_State *co) {
  lua_State *L = p->L;
  int top = lua_gettop(L), reported;
  lua_rawgetp(co, LUA_REGISTRYINDEX, &reported_key); /* err reported */
  reported = lua_rawequal(co, -1, -2);
  lua_pop(co, 1); /* err */
  if (reported)
    return; /* core.reported: the framework logged it already */
  luaL_checkstack(L, 4, NULL);
  lua_pushcfunction(L, describe_error); /* describe */
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1); /* describe err */
  lua_pushthread(co);
  lua_xmove(co, L, 1); /* describe err co */
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isstring(L, -1))
    plume__log(p, PLUME__LOG_ERROR, "lua", "%s", lua_tostring(L, -1));
  else
    plume__log(p, PLUME__LOG_ERROR, "lua",
               "a task raised an error that cannot be shown");
  lua_settop(L, top);
}

/* Unpins a finished task and keeps its coroutine for reuse when the pool has
** room. */
static void task_done(plume_t *p, lua_State *co, int reusable) {
  lua_State *L = p->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_tasks); /* tasks */
  lua_pushthread(co);
  lua_xmove(co, L, 1); /* tasks co */
  lua_pushnil(L);      /* tasks co nil */
  lua_rawset(L, -3);   /* tasks[co] = nil */
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_waits); /* waits */
  lua_pushnil(L);
  lua_rawsetp(L, -2, co); /* waits[co] = nil: its references are stale */
  lua_pop(L, 1);
  if (reusable) {
    lua_Integer n;
    lua_settop(co, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_pool); /* pool */
    n = (lua_Integer)lua_rawlen(L, -1);
    if (n < POOL_MAX) {
      lua_pushthread(co);
      lua_xmove(co, L, 1);       /* pool co */
      lua_rawseti(L, -2, n + 1); /* pool[n + 1] = co */
    }
    lua_pop(L, 1);
  }
  p->lua_tasks--;
  plume__drain_check(p);
}

/* Ends a task that failed: logs why, closes its to-be-closed variables. */
static int task_failed(plume_t *p, lua_State *co) {
  log_task_error(p, co);
  lua_closethread(co, p->L);
  task_done(p, co, 1);
  return PLUME_ELUA;
}

/* What became of a run: the task waits (0), or it ended (0 or PLUME_ELUA) and
** is unpinned. */
static int settle(plume_t *p, lua_State *co, int status, int waiting,
                  int killed) {
  if (status == LUA_YIELD) {
    if (waiting && !killed)
      return 0;
    lua_settop(co, 0);
    if (killed)
      lua_pushfstring(co,
                      "call stopped: it kept running after its time budget "
                      "error (%d ms)",
                      p->opts.lua_call_timeout);
    else /* a bare coroutine.yield() would leave the task suspended for ever */
      lua_pushliteral(co, "attempt to yield from a task outside a plume wait "
                          "(use coroutine.wrap for your own coroutines)");
    return task_failed(p, co);
  }
  if (status != LUA_OK)
    return task_failed(p, co);
  task_done(p, co, 1);
  return 0;
}

static int run(plume_t *p, lua_State *co, int nargs) {
  uint64_t saved_deadline = p->task_deadline;
  lua_State *saved_co = p->task_co;
  int saved_expired = p->task_expired, saved_capped = p->lua_capped;
  int nres, status, waiting, killed, rc;
  p->task_waiting = 0;
  p->task_killed = 0;
  p->task_expired = 0;
  p->task_deadline = p->task_budget != 0 ? uv_hrtime() + p->task_budget : 0;
  p->task_co = co;
  if (p->task_budget != 0 && p->watchdog == NULL && !p->watchdog_failed &&
      (p->watchdog = watch_start(p)) == NULL) {
    p->watchdog_failed = 1;
    plume__log(p, PLUME__LOG_WARN, "lua",
               "no watchdog thread: the time budget is checked by a count "
               "hook on every task");
  }
  if (p->watchdog == NULL && p->task_budget != 0)
    lua_sethook(co, on_count, LUA_MASKCOUNT, HOOK_COUNT);
  watch_set(p, co, p->task_deadline, 0);
  p->task_depth++;
  p->lua_capped = 1;
  status = lua_resume(co, p->L, nargs, &nres);
  /* The task is off the CPU: no hook of the watchdog's may stay armed. */
  watch_set(p, saved_co, saved_deadline, 1);
  p->task_co = saved_co;
  /* The bookkeeping below allocates on the main thread, unprotected: even
  ** inside an outer task it must never hit the cap. */
  p->lua_capped = 0;
  p->task_depth--;
  waiting = p->task_waiting;
  killed = p->task_killed;
  p->task_waiting = 0;
  p->task_killed = 0;
  p->task_deadline = saved_deadline;
  p->task_expired = saved_expired;
  rc = settle(p, co, status, waiting, killed);
  p->lua_capped = saved_capped;
  return rc;
}

/* Pushes an idle coroutine onto L: one from the pool, or a new one. */
static lua_State *task_thread(plume_t *p) {
  lua_State *L = p->L;
  lua_Integer n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_pool); /* pool */
  n = (lua_Integer)lua_rawlen(L, -1);
  if (n > 0) {
    lua_rawgeti(L, -1, n); /* pool co */
    lua_pushnil(L);
    lua_rawseti(L, -3, n); /* pool[n] = nil */
    lua_remove(L, -2);     /* co */
    return lua_tothread(L, -1);
  }
  lua_pop(L, 1);
  return lua_newthread(L); /* co */
}

int plume__task_start(plume_t *p, int nargs) {
  lua_State *L = p->L;
  lua_State *co;
  int saved_capped;
  if (p->task_depth >= MAX_DEPTH) {
    lua_pop(L, nargs + 1);
    plume__log(p, PLUME__LOG_ERROR, "lua",
               "task not started: %d task runs are nested already", MAX_DEPTH);
    return PLUME_ELUA;
  }
  saved_capped = p->lua_capped;
  p->lua_capped = 0; /* a spawn inside a task: pinning must not fail */
  if (!lua_checkstack(L, 4)) {
    lua_pop(L, nargs + 1);
    p->lua_capped = saved_capped;
    plume__log(p, PLUME__LOG_ERROR, "lua", "task not started: no stack");
    return PLUME_ELUA;
  }
  co = task_thread(p); /* fn args... co */
  /* A fresh coroutine has room for LUA_MINSTACK values, and lua_xmove does not
  ** check (liblua is not built with API checks): grow it first. */
  if (!lua_checkstack(co, nargs + 1)) {
    lua_pop(L, nargs + 2);
    p->lua_capped = saved_capped;
    plume__log(p, PLUME__LOG_ERROR, "lua",
               "task not started: no stack for %d arguments", nargs);
    return PLUME_ELUA;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_tasks); /* fn args... co tasks */
  lua_pushvalue(L, -2); /* fn args... co tasks co */
  lua_pushboolean(L, 1);
  lua_rawset(L, -3); /* tasks[co] = true */
  lua_pop(L, 1);     /* fn args... co */
  /* The entry exists from now on, so arming a wait never allocates. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_waits); /* fn args... co waits */
  lua_pushinteger(L, 0);
  lua_rawsetp(L, -2, co);      /* waits[co] = 0 */
  lua_pop(L, 2);               /* fn args... */
  lua_xmove(L, co, nargs + 1); /* co: fn args... */
  p->lua_tasks++;
  p->lua_capped = saved_capped;
  return run(p, co, nargs);
}

/* Grows p->L's stack for glue work; the memory cap never applies to it. */
static int glue_stack(plume_t *p, int n) {
  int saved_capped = p->lua_capped, ok;
  p->lua_capped = 0;
  ok = lua_checkstack(p->L, n);
  p->lua_capped = saved_capped;
  return ok;
}

plume__task_ref_t plume__task_current(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  plume__task_ref_t t = {L, 0};
  if (p == NULL || p->L == NULL || !glue_stack(p, 3))
    return t; /* a wait nothing can resume: the task waits for ever */
  lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->lua_ref_waits); /* waits */
  if (lua_rawgetp(p->L, -1, L) == LUA_TNUMBER) {          /* waits waits[L] */
    t.wait = ++p->task_last_wait;
    lua_pushinteger(p->L, t.wait);
    lua_rawsetp(p->L, -3, L); /* waits[L] = t.wait (the key exists) */
  }
  lua_pop(p->L, 2);
  return t;
}

lua_State *plume__task_waiter(plume_t *p, plume__task_ref_t t) {
  lua_State *L = p->L;
  lua_Integer armed;
  if (L == NULL || t.co == NULL || t.wait == 0 || !glue_stack(p, 2))
    return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_waits); /* waits */
  lua_rawgetp(L, -1, t.co);                            /* waits waits[co] */
  armed = lua_tointeger(L, -1);
  lua_pop(L, 2);
  /* A match means the task lives, so co may be read. Between arming and
  ** yielding the task runs: resuming it then would re-enter it. */
  if (armed != t.wait || lua_status(t.co) != LUA_YIELD)
    return NULL;
  return t.co;
}

int plume__task_resume(plume_t *p, plume__task_ref_t t, int nres) {
  lua_State *L = p->L;
  if (plume__task_waiter(p, t) == NULL)
    return PLUME_ESTATE;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->lua_ref_waits); /* waits */
  lua_pushinteger(L, 0);
  lua_rawsetp(L, -2, t.co); /* waits[co] = 0: this wait is over */
  lua_pop(L, 1);
  return run(p, t.co, nres);
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

/* core.set_limit_error(fn): fn(message) makes the error a time-budget overrun
** raises. */
static int set_limit_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &limit_error_key);
  return 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The state, the app, reload and shutdown */

/* Prepends dir/?.lua and dir/?/init.lua to package.path. */
static void add_lua_path(lua_State *L, const char *dir) {
  lua_getglobal(L, "package"); /* package */
  lua_getfield(L, -1, "path"); /* package path */
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir,
                  lua_tostring(L, -1)); /* package path newpath */
  lua_setfield(L, -3, "path");          /* package.path = newpath */
  lua_pop(L, 2);
}

/* The tables of the task bookkeeping, at address keys (cold paths) and at
** integer refs too, since lua_rawgeti is the registry's fast path. */
static void open_tables(lua_State *L, plume_t *p) {
  static const char *const keys[] = {&tasks_key, &pool_key, &waits_key};
  int *const refs[] = {&p->lua_ref_tasks, &p->lua_ref_pool, &p->lua_ref_waits};
  int i;
  for (i = 0; i < 3; i++) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, keys[i]);
    *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

static int open_framework(lua_State *L) {
  plume_t *p;
  luaL_requiref(L, "plume.core", luaopen_plume_core, 0); /* core */
  lua_pushcfunction(L, set_limit_error);
  lua_setfield(L, -2, "set_limit_error"); /* core.set_limit_error = fn */
  lua_newtable(L);                        /* core reported */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &reported_key);
  lua_setfield(L, -2, "reported"); /* core.reported = reported */
  lua_pop(L, 1);
  p = plume__lua_instance(L);
  if (p != NULL && p->task_budget != 0)
    hook_coroutines(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  lua_call(L, 1, 0); /* require "plume" */
  return 0;
}

/* Opens the standard libraries and the registry slots, under protection (may
** run out of memory when the cap is tiny). */
static int open_state(lua_State *L) {
  plume_t *p = lua_touserdata(L, 1);
  char dir[1024];
  luaL_openlibs(L);
  lua_pushlightuserdata(L, p);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &instance_key);
  open_tables(L, p);
  if (p->opts.lua_path[0] != '\0')
    add_lua_path(L, p->opts.lua_path);
  else if (plume__installed_lua_dir(dir, sizeof(dir)) == 0)
    add_lua_path(L, dir); /* the framework installed with the library */
  return 0;
}

int plume__lua_init(plume_t *p) {
  lua_State *L;
  p->lua_mem_limit =
      p->opts.lua_memory_limit > 0 ? (size_t)p->opts.lua_memory_limit : 0;
  p->task_budget = p->opts.lua_call_timeout > 0
                       ? (uint64_t)p->opts.lua_call_timeout * 1000000u
                       : 0;
  L = lua_newstate(lua_alloc, p);
  if (L == NULL)
    return UV_ENOMEM;
  /* Threads copy the main thread's extra space: the hook finds p there. */
  *(plume_t **)lua_getextraspace(L) = p;
  lua_atpanic(L, on_panic);
  lua_setwarnf(L, on_warn, p);
  p->L = L;
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, open_state);
  lua_pushlightuserdata(L, p);
  if (lua_pcall(L, 1, 0, 1) == LUA_OK) {
    lua_pushcfunction(L, open_framework);
    lua_pcall(L, 0, 0, 1);
  }
  if (lua_gettop(L) > 1) { /* traceback error */
    plume__log(p, PLUME__LOG_ERROR, "lua", "cannot load the framework: %s",
               lua_tostring(L, -1));
    lua_close(L);
    p->L = NULL;
    return PLUME_ELUA;
  }
  lua_settop(L, 0);
  return 0;
}

/*
** {====== A borrowed state (the rock: require("plume").run from stock Lua)
** The instance runs in the caller's state: no libraries are opened, no
** allocator, panic or warning function is replaced (so lua_memory_limit does
** not apply), and the main thread's extra space holds p only until the state is
** given back. Giving back does what lua_close does for a state of the
** instance's own: the objects registered with plume__lua_finalize_at_close get
** their __gc now, while the loop is still there, and the registry slots go.
*/

static const char finalize_key = 'z'; /* table: userdata -> true, weak keys */

void plume__lua_finalize_at_close(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &finalize_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return; /* a state of the instance's own: lua_close finalizes */
  }
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3); /* finalize[v] = true */
  lua_pop(L, 1);
}

/* Runs the __gc of every userdata of the finalize table (protected). */
static int run_finalizers(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &finalize_key) != LUA_TTABLE) /* t */
    return 0;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) { /* t v true */
    lua_pop(L, 1);               /* t v */
    if (luaL_getmetafield(L, -1, "__gc") != LUA_TNIL) {
      lua_pushvalue(L, -2); /* t v gc v */
      lua_call(L, 1, 0);
    }
  }
  return 0;
}

/* Unhooks the coroutines of a table (keys or values) and forgets p in them. */
static void release_threads(lua_State *L, int t) {
  lua_pushnil(L);
  while (lua_next(L, t) != 0) { /* k v */
    lua_State *co = lua_tothread(L, lua_isthread(L, -2) ? -2 : -1);
    if (co != NULL) {
      lua_sethook(co, NULL, 0, 0);
      *(plume_t **)lua_getextraspace(co) = NULL;
    }
    lua_pop(L, 1);
  }
}

static void give_back(plume_t *p) {
  lua_State *L = p->L;
  lua_State *main;
  int top = lua_gettop(L);
  static const char *const keys[] = {&instance_key,    &tasks_key,
                                     &pool_key,        &waits_key,
                                     &limit_error_key, &finalize_key};
  size_t i;
  lua_pushcfunction(L, run_finalizers);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK)
    plume__log(p, PLUME__LOG_ERROR, "lua", "closing: %s", lua_tostring(L, -1));
  lua_settop(L, top);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key) == LUA_TTABLE)
    release_threads(L, lua_gettop(L));
  lua_settop(L, top);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_key) == LUA_TTABLE)
    release_threads(L, lua_gettop(L));
  lua_settop(L, top);
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, keys[i]);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, p->lua_ref_tasks);
  luaL_unref(L, LUA_REGISTRYINDEX, p->lua_ref_pool);
  luaL_unref(L, LUA_REGISTRYINDEX, p->lua_ref_waits);
  p->lua_ref_tasks = p->lua_ref_pool = p->lua_ref_waits = LUA_NOREF;
  /* The framework stays loaded: a later run starts without this app. */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* loaded */
  if (lua_getfield(L, -1, "plume") == LUA_TTABLE) {     /* loaded plume */
    lua_pushliteral(L, "app");
    lua_pushnil(L);
    lua_rawset(L, -3); /* plume.app = nil */
  }
  lua_settop(L, top);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD); /* main */
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  *(void **)lua_getextraspace(main) = p->lua_host_extra;
}

/* Sets up the registry slots in a state the host opened (protected). */
static int open_borrowed(lua_State *L) {
  plume_t *p = lua_touserdata(L, 1);
  lua_pushlightuserdata(L, p);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &instance_key);
  open_tables(L, p);
  lua_createtable(L, 0, 1); /* finalize */
  lua_createtable(L, 0, 1); /* finalize mt */
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode"); /* mt.__mode = "k" */
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &finalize_key);
  if (p->opts.lua_path[0] != '\0')
    add_lua_path(L, p->opts.lua_path);
  return open_framework(L);
}

int plume__lua_borrow(plume_t *p, lua_State *L) {
  lua_State *main;
  int top = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &instance_key);
  if (!lua_isnil(L, -1)) {
    lua_settop(L, top);
    return PLUME_ESTATE; /* an instance runs in this state already */
  }
  lua_settop(L, top);
  p->task_budget = p->opts.lua_call_timeout > 0
                       ? (uint64_t)p->opts.lua_call_timeout * 1000000u
                       : 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD); /* main */
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  /* Threads copy the main thread's extra space: the hook finds p there. */
  p->lua_ref_tasks = p->lua_ref_pool = p->lua_ref_waits = LUA_NOREF;
  p->lua_host_extra = *(void **)lua_getextraspace(main);
  *(plume_t **)lua_getextraspace(main) = p;
  p->L = L;
  p->lua_borrowed = 1;
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, open_borrowed);
  lua_pushlightuserdata(L, p);
  if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
    plume__log(p, PLUME__LOG_ERROR, "lua", "cannot load the framework: %s",
               lua_tostring(L, -1));
    lua_settop(L, top);
    give_back(p);
    p->L = NULL;
    return PLUME_ELUA;
  }
  lua_settop(L, top);
  return 0;
}

/* }====== */

void plume__lua_close(plume_t *p) {
  watch_stop(p);
  if (p->L != NULL && p->lua_borrowed)
    give_back(p);
  else if (p->L != NULL)
    lua_close(p->L);
  p->L = NULL;
}

/* Pushes require("plume")[name] on the main thread; 0 with an error logged if
** it fails. */
static int push_framework_function(plume_t *p, const char *name) {
  lua_State *L = p->L;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* plume */
    plume__log(p, PLUME__LOG_ERROR, "app", "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  lua_getfield(L, -1, name); /* plume fn */
  lua_remove(L, -2);         /* fn */
  return 1;
}

/* Loads the app in a task, so that app.lua may wait (e.g. for a database). */
int plume__lua_load_app(plume_t *p, const char *dir) {
  lua_State *L = p->L;
  int top = lua_gettop(L), err;
  if (!push_framework_function(p, "load_app"))
    return PLUME_ELUA;
  lua_pushstring(L, dir); /* load_app dir */
  err = plume__task_start(p, 1);
  lua_settop(L, top);
  return err;
}

int plume__lua_reload(plume_t *p, const char *const *changes, int n) {
  lua_State *L = p->L;
  int top, i, err;
  if (L == NULL)
    return PLUME_ESTATE;
  top = lua_gettop(L);
  if (!push_framework_function(p, "reload"))
    return PLUME_ELUA;
  if (changes == NULL) {
    lua_pushnil(L); /* reload nil */
  } else {
    lua_createtable(L, n, 0); /* reload changes */
    for (i = 0; i < n; i++) {
      lua_pushstring(L, changes[i]);
      lua_rawseti(L, -2, i + 1); /* changes[i + 1] = path */
    }
  }
  err = plume__task_start(p, 1);
  lua_settop(L, top);
  return err;
}

void plume__lua_shutdown(plume_t *p) {
  lua_State *L = p->L;
  int top;
  if (L == NULL)
    return;
  top = lua_gettop(L);
  if (push_framework_function(p, "shutdown"))
    plume__task_start(p, 0);
  lua_settop(L, top);
}

/* }====== */
