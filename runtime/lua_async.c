/*
** lua_async.c: what Lua tasks may wait on without blocking the loop (DESIGN.md
** §4, style.md F.3): sleep, timers (after, every), spawn, file I/O on libuv's
** thread pool and an HTTP/1.1 client on libuv + llhttp. Every pending wait is
** on p->waits so that shutdown can cancel it. Above: lua/plume/init.lua
** (plume.sleep, plume.fs, plume.http).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <llhttp.h>

#include "internal.h"

#define TIMER_MT "plume.timer"
#define HTTP_MAX_HEADERS 100 /* response headers kept */
#define HTTP_MAX_HEAD 65536  /* bytes of response header names and values */
#define HTTP_DEFAULT_TIMEOUT 30000 /* ms for a whole request */
#define HTTP_DEFAULT_MAX_BODY (16 * 1024 * 1024)

/* ------------------------------------------------------------------------- */
/* {====== Pending waits */

/*
** One pending wait of a task. The task may end meanwhile (its time budget):
** only plume__task_waiter gives its coroutine. cancel closes what the wait
** holds; the task is then never resumed.
*/
typedef struct plume__wait_s {
  plume_t *p;
  plume__task_ref_t task;
  void (*cancel)(struct plume__wait_s *w);
  struct plume__wait_s *prev, *next;
} plume__wait_t;

static void wait_add(plume_t *p, plume__wait_t *w, plume__task_ref_t task,
                     void (*cancel)(plume__wait_t *)) {
  w->p = p;
  w->task = task;
  w->cancel = cancel;
  w->prev = NULL;
  w->next = p->waits;
  if (p->waits != NULL)
    p->waits->prev = w;
  p->waits = w;
}

static void wait_remove(plume__wait_t *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else if (w->p->waits == w)
    w->p->waits = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

void plume__async_cancel_all(plume_t *p) {
  plume__wait_t *w;
  while ((w = p->waits) != NULL) {
    wait_remove(w);
    w->cancel(w);
  }
}

/* Closes a handle whose memory is block, counted in p->pending_closes until
** freed. */
static void on_block_closed(uv_handle_t *h) {
  plume__wait_t *w = h->data;
  w->p->pending_closes--;
  free(w);
}

/* The instance of L, or an error: these functions need the runtime's loop. */
static plume_t *need_instance(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  if (p == NULL)
    luaL_error(L, "this function needs the Plume runtime (plume APP_DIR)");
  return p;
}

/* 1 when L is the main thread of a Plume state: set-up code, where waits run
** inline. */
static int on_main_thread(lua_State *L) {
  int main = lua_pushthread(L);
  lua_pop(L, 1);
  return main;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== sleep */

typedef struct sleep_s {
  plume__wait_t w; /* first member: the block is freed through it */
  uv_timer_t timer;
} sleep_t;

static void on_sleep(uv_timer_t *t) {
  sleep_t *s = plume__container_of(t, sleep_t, timer);
  plume_t *p = s->w.p;
  plume__task_ref_t task = s->w.task;
  wait_remove(&s->w);
  uv_close((uv_handle_t *)t, on_block_closed);
  plume__task_resume(p, task, 0);
}

static void cancel_sleep(plume__wait_t *w) {
  sleep_t *s = (sleep_t *)w;
  uv_close((uv_handle_t *)&s->timer, on_block_closed);
}

/* core.sleep(ms): suspends the calling task for ms milliseconds. */
static int async_sleep(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  plume_t *p = need_instance(L);
  sleep_t *s;
  luaL_argcheck(L, ms >= 0, 1, "must not be negative");
  plume__task_check_wait(L);
  s = malloc(sizeof(*s));
  if (s == NULL)
    return luaL_error(L, "not enough memory");
  wait_add(p, &s->w, plume__task_current(L), cancel_sleep);
  uv_timer_init(p->loop, &s->timer);
  s->timer.data = s;
  p->pending_closes++;
  uv_timer_start(&s->timer, on_sleep, (uint64_t)ms, 0);
  return plume__task_wait(L);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Timers: after, every */

typedef struct timer_box_s {
  struct plume__ptimer_s *t; /* NULL once the timer is done or cancelled */
} timer_box_t;

/* A plume.after / plume.every timer. Owned by p->timers until cancelled or
** (one-shot) fired; each tick runs fn in a task of its own. */
typedef struct plume__ptimer_s {
  uv_timer_t timer;
  plume_t *p;
  int fn_ref; /* the function, LUA_NOREF once released */
  int repeat;
  timer_box_t *box; /* the Lua handle, NULL once collected */
  struct plume__ptimer_s *prev, *next;
} ptimer_t;

static void on_ptimer_closed(uv_handle_t *h) {
  ptimer_t *t = h->data;
  t->p->pending_closes--;
  free(t);
}

/* Unlinks t, releases its function and closes its handle. */
static void ptimer_free(ptimer_t *t) {
  plume_t *p = t->p;
  if (t->prev != NULL)
    t->prev->next = t->next;
  else if (p->timers == t)
    p->timers = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  if (t->box != NULL)
    t->box->t = NULL;
  if (p->L != NULL)
    luaL_unref(p->L, LUA_REGISTRYINDEX, t->fn_ref);
  t->fn_ref = LUA_NOREF;
  uv_close((uv_handle_t *)&t->timer, on_ptimer_closed);
}

void plume__async_stop_timers(plume_t *p) {
  while (p->timers != NULL)
    ptimer_free(p->timers);
}

static void on_tick(uv_timer_t *h) {
  ptimer_t *t = h->data;
  plume_t *p = t->p;
  lua_rawgeti(p->L, LUA_REGISTRYINDEX, t->fn_ref); /* fn */
  if (!t->repeat)
    ptimer_free(t);
  /* t may be gone once the task ran (it may cancel its own timer). */
  plume__task_start(p, 0);
}

static int start_timer(lua_State *L, int repeat) {
  plume_t *p = need_instance(L);
  lua_Integer ms = luaL_checkinteger(L, 1);
  timer_box_t *box;
  ptimer_t *t;
  luaL_argcheck(L, ms >= (repeat ? 1 : 0), 1,
                repeat ? "must be at least 1" : "must not be negative");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (p->closing)
    return luaL_error(L, "the server is shutting down");
  box = lua_newuserdatauv(L, sizeof(*box), 0); /* ms fn box */
  box->t = NULL;
  luaL_setmetatable(L, TIMER_MT);
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return luaL_error(L, "not enough memory");
  t->p = p;
  t->repeat = repeat;
  t->box = box;
  lua_pushvalue(L, 2);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  box->t = t;
  t->next = p->timers;
  if (p->timers != NULL)
    p->timers->prev = t;
  p->timers = t;
  uv_timer_init(p->loop, &t->timer);
  t->timer.data = t;
  p->pending_closes++;
  uv_timer_start(&t->timer, on_tick, (uint64_t)ms, repeat ? (uint64_t)ms : 0);
  return 1;
}

/* core.after(ms, fn) -> timer: runs fn once, in a task of its own, after ms. */
static int async_after(lua_State *L) {
  return start_timer(L, 0);
}

/* core.every(ms, fn) -> timer: runs fn every ms (each run its own task). */
static int async_every(lua_State *L) {
  return start_timer(L, 1);
}

/* timer:cancel() -> true if it was still pending. */
static int timer_cancel(lua_State *L) {
  timer_box_t *box = luaL_checkudata(L, 1, TIMER_MT);
  int pending = box->t != NULL;
  if (pending)
    ptimer_free(box->t);
  lua_pushboolean(L, pending);
  return 1;
}

static int timer_active(lua_State *L) {
  timer_box_t *box = luaL_checkudata(L, 1, TIMER_MT);
  lua_pushboolean(L, box->t != NULL);
  return 1;
}

/* A collected handle does not stop its timer: it only drops the link. */
static int timer_gc(lua_State *L) {
  timer_box_t *box = luaL_checkudata(L, 1, TIMER_MT);
  if (box->t != NULL)
    box->t->box = NULL;
  box->t = NULL;
  return 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== spawn, exit, hrtime, mem */

/* core.spawn(fn, ...) -> true: runs fn(...) in a new task now; it goes on by
** itself after its first wait. Its errors are logged, never raised here. */
static int async_spawn(lua_State *L) {
  plume_t *p = need_instance(L);
  int n = lua_gettop(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (L == p->L) {
    int i;
    luaL_checkstack(L, n, NULL);
    for (i = 1; i <= n; i++)
      lua_pushvalue(L, i);
  } else {
    if (!lua_checkstack(p->L, n + 4))
      return luaL_error(L, "spawn: too many arguments");
    lua_xmove(L, p->L, n);
  }
  plume__task_start(p, n - 1);
  lua_pushboolean(L, 1);
  return 1;
}

static void on_exit_timer(uv_timer_t *t) {
  plume_t *p = ((plume__wait_t *)t->data)->p;
  uv_close((uv_handle_t *)t, on_block_closed);
  plume_close(p, NULL);
}

typedef struct exit_s {
  plume__wait_t w; /* only for on_block_closed: never on p->waits */
  uv_timer_t timer;
} exit_t;

/* core.exit([code]): shuts the server down gracefully on the next loop turn;
** the `plume` command then exits with code (default 0). */
static int async_exit(lua_State *L) {
  plume_t *p = need_instance(L);
  exit_t *e;
  p->exit_code = (int)luaL_optinteger(L, 1, 0);
  if (p->closing)
    return 0;
  e = malloc(sizeof(*e));
  if (e == NULL)
    return luaL_error(L, "not enough memory");
  e->w.p = p;
  uv_timer_init(p->loop, &e->timer);
  e->timer.data = e;
  p->pending_closes++;
  uv_timer_start(&e->timer, on_exit_timer, 0, 0);
  return 0;
}

/* core.hrtime() -> milliseconds (float) from an arbitrary origin, for
** durations. */
static int async_hrtime(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
  return 1;
}

/* core.mem() -> bytes held, peak, limit (0: none) of the Lua state. */
static int async_mem(lua_State *L) {
  plume_t *p = need_instance(L);
  lua_pushinteger(L, (lua_Integer)p->lua_mem);
  lua_pushinteger(L, (lua_Integer)p->lua_mem_peak);
  lua_pushinteger(L, (lua_Integer)p->lua_mem_limit);
  return 3;
}

/* core.log_wants(level, subsystem) -> whether such a line would be written. */
static int async_log_wants(lua_State *L) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  plume_t *p = plume__lua_instance(L);
  int level = luaL_checkoption(L, 1, NULL, levels);
  const char *subsystem = luaL_checkstring(L, 2);
  lua_pushboolean(L, p != NULL && plume__log_enabled(p, level, subsystem));
  return 1;
}

/* core.access_enabled() -> whether service calls get access-log lines. */
static int async_access_enabled(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  lua_pushboolean(L, p != NULL && p->opts.access_log &&
                         plume__log_enabled(p, PLUME__LOG_INFO, "access"));
  return 1;
}

/* core.access(kind, method, path, status, start_ms): one access-log line;
** start_ms is core.hrtime() when the call began. */
static int async_access(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  const char *kind = luaL_checkstring(L, 1);
  const char *method = luaL_checkstring(L, 2);
  plume_slice_t path;
  int status = (int)luaL_checkinteger(L, 4);
  lua_Number start = luaL_checknumber(L, 5);
  path.p = luaL_checklstring(L, 3, &path.n);
  if (p != NULL)
    plume__log_access(p, kind, method, path, status, 0,
                      start > 0 ? (uint64_t)(start * 1e6) : 0);
  return 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Files on the thread pool */

enum { FS_READ, FS_WRITE, FS_STAT, FS_MKDIR };

/* One file operation. The worker touches only this block (never Lua). */
typedef struct fs_work_s {
  plume__wait_t w; /* first member */
  uv_work_t req;
  int op;
  int cancelled; /* shutdown: free when the worker is done, resume nothing */
  int append;
  int err;    /* 0 or a negative errno (libuv's UV_E* on Unix) */
  size_t max; /* read: the largest file, the memory left (0: any) */
  char *data; /* write: the bytes (a copy); read: the bytes read */
  size_t len;
  struct stat st;
  char path[];
} fs_work_t;

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static int read_all(fs_work_t *f, int fd) {
  size_t cap;
  if (fstat(fd, &f->st) != 0)
    return -errno;
  if (S_ISDIR(f->st.st_mode))
    return UV_EISDIR;
  if (f->max != 0 && (size_t)f->st.st_size > f->max)
    return PLUME_ETOOBIG;
  cap = (size_t)f->st.st_size + 1;
  f->data = malloc(cap);
  if (f->data == NULL)
    return UV_ENOMEM;
  for (;;) {
    ssize_t k;
    if (f->len == cap) {
      char *np;
      if (f->max != 0 && cap > f->max)
        return PLUME_ETOOBIG;
      np = realloc(f->data, cap * 2);
      if (np == NULL)
        return UV_ENOMEM;
      f->data = np;
      cap *= 2;
    }
    k = read(fd, f->data + f->len, cap - f->len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    if (k == 0)
      return 0;
    f->len += (size_t)k;
  }
}

/* mkdir -p: every missing folder of path. */
static int make_dirs(char *path) {
  char *s;
  for (s = path + 1; *s != '\0'; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      int err = -errno;
      *s = '/';
      return err;
    }
    *s = '/';
  }
  if (mkdir(path, 0755) != 0) {
    struct stat st;
    if (errno != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      return errno == EEXIST ? UV_EEXIST : -errno;
  }
  return 0;
}

static void fs_run(uv_work_t *req) {
  fs_work_t *f = req->data;
  int fd;
  switch (f->op) {
  case FS_READ:
    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      f->err = -errno;
      return;
    }
    f->err = read_all(f, fd);
    close(fd);
    return;
  case FS_WRITE:
    fd = open(f->path,
              O_WRONLY | O_CREAT | O_CLOEXEC | (f->append ? O_APPEND : O_TRUNC),
              0644);
    if (fd < 0) {
      f->err = -errno;
      return;
    }
    f->err = write_all(fd, f->data, f->len);
    if (close(fd) != 0 && f->err == 0)
      f->err = -errno;
    return;
  case FS_STAT:
    f->err = stat(f->path, &f->st) != 0 ? -errno : 0;
    return;
  default:
    f->err = make_dirs(f->path);
    return;
  }
}

static const char *file_type(mode_t m) {
  if (S_ISREG(m))
    return "file";
  if (S_ISDIR(m))
    return "directory";
  if (S_ISLNK(m))
    return "link";
  return "other";
}

/* Pushes the results of a finished operation on L: value, or nil, "path:
** message", "ENAME". Returns the count. */
static int fs_results(lua_State *L, fs_work_t *f) {
  if (f->err != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", f->path, plume_strerror(f->err));
    lua_pushstring(L, plume_err_name(f->err));
    return 3;
  }
  switch (f->op) {
  case FS_READ:
    lua_pushlstring(L, f->data != NULL ? f->data : "", f->len);
    return 1;
  case FS_STAT:
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)f->st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)f->st.st_mtim.tv_sec +
                          (lua_Number)f->st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushstring(L, file_type(f->st.st_mode));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)(f->st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    return 1;
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

static void fs_free(fs_work_t *f) {
  free(f->data);
  free(f);
}

static void fs_done(uv_work_t *req, int status) {
  fs_work_t *f = req->data;
  plume_t *p;
  plume__task_ref_t task;
  lua_State *co;
  int n;
  if (f->cancelled) {
    fs_free(f);
    return;
  }
  p = f->w.p;
  task = f->w.task;
  wait_remove(&f->w);
  if ((co = plume__task_waiter(p, task)) == NULL) {
    fs_free(f); /* the task is gone */
    return;
  }
  if (status == UV_ECANCELED)
    f->err = UV_ECANCELED;
  n = fs_results(co, f);
  fs_free(f);
  plume__task_resume(p, task, n);
}

/* The worker may be running: it finishes, then fs_done frees the block. */
static void cancel_fs(plume__wait_t *w) {
  fs_work_t *f = (fs_work_t *)w;
  f->cancelled = 1;
  uv_cancel((uv_req_t *)&f->req);
}

static int fs_start(lua_State *L, int op) {
  plume_t *p = plume__lua_instance(L);
  size_t n, len = 0;
  const char *path = luaL_checklstring(L, 1, &n);
  const char *data = NULL;
  fs_work_t *f;
  luaL_argcheck(L, n > 0 && strlen(path) == n, 1, "not a file name");
  if (op == FS_WRITE)
    data = luaL_checklstring(L, 2, &len);
  if (p != NULL && !on_main_thread(L))
    plume__task_check_wait(L);
  f = calloc(1, sizeof(*f) + n + 1);
  if (f == NULL)
    return luaL_error(L, "not enough memory");
  memcpy(f->path, path, n + 1);
  f->op = op;
  f->req.data = f;
  if (op == FS_WRITE) {
    f->append = lua_toboolean(L, 3);
    f->data = malloc(len > 0 ? len : 1);
    if (f->data == NULL) {
      free(f);
      return luaL_error(L, "not enough memory");
    }
    memcpy(f->data, data, len);
    f->len = len;
  }
  if (op == FS_READ && p != NULL)
    f->max = p->lua_mem_limit;
  if (p == NULL || on_main_thread(L)) {
    /* Set-up code and stock Lua: nothing else runs yet, do it here. */
    int k;
    fs_run(&f->req);
    k = fs_results(L, f);
    fs_free(f);
    return k;
  }
  wait_add(p, &f->w, plume__task_current(L), cancel_fs);
  if (uv_queue_work(p->loop, &f->req, fs_run, fs_done) != 0) {
    wait_remove(&f->w);
    fs_free(f);
    return luaL_error(L, "cannot queue file work");
  }
  return plume__task_wait(L);
}

/* core.fs_read(path) -> bytes | nil, err, code */
static int async_fs_read(lua_State *L) {
  return fs_start(L, FS_READ);
}
/* core.fs_write(path, data [, append]) -> true | nil, err, code */
static int async_fs_write(lua_State *L) {
  return fs_start(L, FS_WRITE);
}
/* core.fs_stat(path) -> {size, mtime, type, mode} | nil, err, code */
static int async_fs_stat(lua_State *L) {
  return fs_start(L, FS_STAT);
}
/* core.fs_mkdir(path) -> true | nil, err, code (creates missing parents) */
static int async_fs_mkdir(lua_State *L) {
  return fs_start(L, FS_MKDIR);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== HTTP client */

/*
** One request, from name resolution to the parsed response. Its handles (tcp,
** timer) close when it ends; the block is freed once both have closed.
** Connection: close is always sent, so a response may end at EOF.
*/
typedef struct http_req_s {
  plume__wait_t w; /* first member */
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  uv_write_t write;
  uv_tcp_t tcp;
  uv_timer_t timer;
  llhttp_t parser;
  llhttp_settings_t settings;
  plume__buf_t out;  /* the request */
  plume__buf_t head; /* header names and values, each NUL-terminated, in turn */
  plume__buf_t body;
  int nheaders;
  int in_value;     /* the last header bytes were part of a value */
  int complete;     /* the response ended */
  int resolving;    /* uv_getaddrinfo pending */
  int tcp_open;     /* tcp initialised: must be closed */
  int open_handles; /* handles not yet closed */
  int finished;     /* results delivered or cancelled */
  int head_only;    /* a HEAD request: no body follows the headers */
  int too_big;      /* the body passed max_body */
  size_t max_body;
  char port[8];
  char host[];
} http_req_t;

static void http_free(http_req_t *r) {
  plume__buf_free(&r->out);
  plume__buf_free(&r->head);
  plume__buf_free(&r->body);
  free(r);
}

static void on_http_handle_closed(uv_handle_t *h) {
  http_req_t *r = h->data;
  r->w.p->pending_closes--;
  if (--r->open_handles == 0 && !r->resolving)
    http_free(r);
}

/* Closes what is open; the block goes when the last handle (and resolution) is
** done. */
static void http_release(http_req_t *r) {
  r->finished = 1;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_http_handle_closed);
  if (r->tcp_open) {
    r->tcp_open = 0;
    uv_close((uv_handle_t *)&r->tcp, on_http_handle_closed);
  }
}

/* Ends the request: resumes the task with status, headers, body or nil, err. */
static void http_finish(http_req_t *r, const char *err) {
  plume_t *p = r->w.p;
  plume__task_ref_t task = r->w.task;
  lua_State *co;
  int n;
  if (r->finished)
    return;
  wait_remove(&r->w);
  if ((co = plume__task_waiter(p, task)) == NULL) {
    http_release(r); /* the task is gone */
    return;
  }
  if (err != NULL) {
    luaL_pushfail(co);
    lua_pushfstring(co, "%s:%s: %s", r->host, r->port, err);
    n = 2;
  } else {
    const char *s = r->head.p, *end = r->head.p + r->head.len;
    lua_pushinteger(co, r->parser.status_code);
    lua_createtable(co, 0, r->nheaders);
    while (s != NULL && s < end) {
      const char *v = s + strlen(s) + 1;
      /* A repeated header keeps its values joined by ", " (Node's rule). */
      lua_pushstring(co, s);
      if (lua_rawget(co, -2) == LUA_TSTRING) {
        lua_pushfstring(co, "%s, %s", lua_tostring(co, -1), v);
        lua_remove(co, -2);
      } else {
        lua_pop(co, 1);
        lua_pushstring(co, v);
      }
      lua_setfield(co, -2, s);
      s = v + strlen(v) + 1;
    }
    lua_pushlstring(co, r->body.p != NULL ? r->body.p : "", r->body.len);
    n = 3;
  }
  http_release(r);
  plume__task_resume(p, task, n);
}

static void cancel_http(plume__wait_t *w) {
  http_req_t *r = (http_req_t *)w;
  if (r->resolving)
    uv_cancel((uv_req_t *)&r->gai);
  http_release(r);
}

static int on_header_field(llhttp_t *lp, const char *at, size_t n) {
  http_req_t *r = lp->data;
  size_t i;
  if (r->in_value || r->head.len == 0) {
    if (r->in_value && plume__buf_appendc(&r->head, '\0') != 0)
      return -1;
    r->in_value = 0;
    if (++r->nheaders > HTTP_MAX_HEADERS)
      return -1;
  }
  if (r->head.len + n > HTTP_MAX_HEAD || plume__buf_reserve(&r->head, n) != 0)
    return -1;
  for (i = 0; i < n; i++) {
    char ch = at[i];
    r->head.p[r->head.len++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
  }
  return 0;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t n) {
  http_req_t *r = lp->data;
  if (!r->in_value) {
    if (plume__buf_appendc(&r->head, '\0') != 0)
      return -1;
    r->in_value = 1;
  }
  if (r->head.len + n > HTTP_MAX_HEAD)
    return -1;
  return plume__buf_append(&r->head, at, n) == 0 ? 0 : -1;
}

static int on_headers_complete(llhttp_t *lp) {
  http_req_t *r = lp->data;
  if (r->in_value && plume__buf_appendc(&r->head, '\0') != 0)
    return -1;
  r->in_value = 0;
  return r->head_only ? 1 : 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t n) {
  http_req_t *r = lp->data;
  if (r->body.len + n > r->max_body) {
    r->too_big = 1;
    return -1;
  }
  return plume__buf_append(&r->body, at, n) == 0 ? 0 : -1;
}

static int on_message_complete(llhttp_t *lp) {
  http_req_t *r = lp->data;
  r->complete = 1;
  return HPE_PAUSED;
}

static void on_http_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  http_req_t *r = h->data;
  plume_t *p = r->w.p;
  (void)hint;
  /* The instance's read buffer: bytes are parsed before this returns. */
  buf->base = p->read_buf;
  buf->len = sizeof(p->read_buf);
}

static void on_http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  http_req_t *r = s->data;
  llhttp_errno_t err;
  if (r->finished)
    return;
  if (nread == UV_EOF) {
    err = llhttp_finish(&r->parser);
    if (r->complete || (err == HPE_OK && r->parser.status_code != 0 &&
                        llhttp_message_needs_eof(&r->parser)))
      http_finish(r, NULL);
    else
      http_finish(r, "connection closed before the response ended");
    return;
  }
  if (nread < 0) {
    http_finish(r, uv_strerror((int)nread));
    return;
  }
  if (nread == 0)
    return;
  err = llhttp_execute(&r->parser, buf->base, (size_t)nread);
  if (r->complete)
    http_finish(r, NULL);
  else if (err != HPE_OK)
    http_finish(r, r->too_big ? "response body too large"
                              : "invalid HTTP response");
}

static void on_http_written(uv_write_t *w, int status) {
  http_req_t *r = w->data;
  if (status < 0 && status != UV_ECANCELED && !r->finished)
    http_finish(r, uv_strerror(status));
}

static void on_http_connect(uv_connect_t *c, int status) {
  http_req_t *r = c->data;
  uv_buf_t b;
  if (r->finished)
    return;
  if (status < 0) {
    http_finish(r, uv_strerror(status));
    return;
  }
  b = uv_buf_init(r->out.p, (unsigned)r->out.len);
  r->write.data = r;
  if (uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_http_written) !=
          0 ||
      uv_read_start((uv_stream_t *)&r->tcp, on_http_alloc, on_http_read) != 0)
    http_finish(r, "cannot send the request");
}

static void on_http_resolved(uv_getaddrinfo_t *g, int status,
                             struct addrinfo *res) {
  http_req_t *r = g->data;
  plume_t *p = r->w.p;
  int err;
  r->resolving = 0;
  if (r->finished) {
    uv_freeaddrinfo(res);
    if (r->open_handles == 0)
      http_free(r);
    return;
  }
  if (status < 0 || res == NULL) {
    uv_freeaddrinfo(res);
    http_finish(r, status < 0 ? uv_strerror(status) : "no address");
    return;
  }
  uv_tcp_init(p->loop, &r->tcp);
  r->tcp.data = r;
  r->tcp_open = 1;
  r->open_handles++;
  p->pending_closes++;
  r->connect.data = r;
  err = uv_tcp_connect(&r->connect, &r->tcp, res->ai_addr, on_http_connect);
  uv_freeaddrinfo(res);
  if (err != 0)
    http_finish(r, uv_strerror(err));
}

static void on_http_timeout(uv_timer_t *t) {
  http_finish(t->data, "timeout");
}

/* 1 when s has no CR, LF or NUL (no header injection). */
static int header_safe(const char *s, size_t n) {
  return strcspn(s, "\r\n") == n;
}

/* Checks the headers table at idx (raises on a bad one, before anything is
** allocated) or, with out, appends them as "Name: value" lines. */
static void add_headers(lua_State *L, int idx, plume__buf_t *out, int *has) {
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { /* key value */
    size_t kn, vn;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "headers must map names to strings");
    k = lua_tolstring(L, -2, &kn);
    v = lua_tolstring(L, -1, &vn);
    if (kn == 0 || strcspn(k, "\r\n: \t") != kn || !header_safe(v, vn))
      luaL_error(L, "invalid header '%s'", k);
    if (strcasecmp(k, "host") == 0)
      has[0] = 1;
    else if (strcasecmp(k, "content-length") == 0)
      has[1] = 1;
    else if (strcasecmp(k, "user-agent") == 0)
      has[2] = 1;
    else if (strcasecmp(k, "connection") == 0)
      luaL_error(L, "the connection header is Plume's (always close)");
    if (out != NULL)
      plume__buf_appendf(out, "%s: %s\r\n", k, v);
    lua_pop(L, 1); /* key */
  }
}

/*
** core.http_request(method, host, port, target, headers, body, timeout_ms,
**                   max_body)
**   -> status, headers (lower-case names), body  |  nil, err
** host is a name or an address (IPv6 without brackets); target the path and
** query.
*/
static int async_http_request(lua_State *L) {
  plume_t *p = need_instance(L);
  size_t mn, hn, tn, bn = 0;
  const char *method = luaL_checklstring(L, 1, &mn);
  const char *host = luaL_checklstring(L, 2, &hn);
  lua_Integer port = luaL_checkinteger(L, 3);
  const char *target = luaL_checklstring(L, 4, &tn);
  const char *body = luaL_optlstring(L, 6, NULL, &bn);
  lua_Integer timeout = luaL_optinteger(L, 7, HTTP_DEFAULT_TIMEOUT);
  lua_Integer max_body = luaL_optinteger(L, 8, HTTP_DEFAULT_MAX_BODY);
  struct addrinfo hints;
  int has[3] = {0, 0, 0}, ipv6, err;
  http_req_t *r;
  luaL_argcheck(L, mn > 0 && strcspn(method, " \r\n\t") == mn, 1,
                "invalid method");
  luaL_argcheck(L, hn > 0 && hn < 256 && header_safe(host, hn), 2,
                "invalid host");
  luaL_argcheck(L, port > 0 && port < 65536, 3, "invalid port");
  luaL_argcheck(L,
                tn > 0 && target[0] == '/' && strcspn(target, " \r\n\t") == tn,
                4, "invalid path");
  luaL_argcheck(L, timeout > 0, 7, "must be positive");
  luaL_argcheck(L, max_body >= 0, 8, "must not be negative");
  if (!lua_isnoneornil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    add_headers(L, 5, NULL, has);
  }
  plume__task_check_wait(L);
  if (p->closing) {
    luaL_pushfail(L);
    lua_pushliteral(L, "the server is shutting down");
    return 2;
  }
  r = calloc(1, sizeof(*r) + hn + 1);
  if (r == NULL)
    return luaL_error(L, "not enough memory");
  memcpy(r->host, host, hn + 1);
  snprintf(r->port, sizeof(r->port), "%d", (int)port);
  r->max_body = (size_t)max_body;
  r->head_only = strcmp(method, "HEAD") == 0;
  ipv6 = strchr(host, ':') != NULL;
  plume__buf_appendf(&r->out, "%s %s HTTP/1.1\r\n", method, target);
  if (!lua_isnoneornil(L, 5))
    add_headers(L, 5, &r->out, has); /* checked above: raises nothing */
  if (!has[0])
    plume__buf_appendf(&r->out, "Host: %s%s%s%s%s\r\n", ipv6 ? "[" : "", host,
                       ipv6 ? "]" : "", port == 80 ? "" : ":",
                       port == 80 ? "" : r->port);
  if (!has[2])
    plume__buf_appendf(&r->out, "User-Agent: plume/%s\r\n", plume_version());
  if (!has[1] && (body != NULL || strcmp(method, "POST") == 0 ||
                  strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0))
    plume__buf_appendf(&r->out, "Content-Length: %zu\r\n", bn);
  plume__buf_append(&r->out, "Connection: close\r\n\r\n", 21);
  if (body != NULL)
    plume__buf_append(&r->out, body, bn);
  if (r->out.p == NULL) {
    free(r);
    return luaL_error(L, "not enough memory");
  }
  llhttp_settings_init(&r->settings);
  r->settings.on_header_field = on_header_field;
  r->settings.on_header_value = on_header_value;
  r->settings.on_headers_complete = on_headers_complete;
  r->settings.on_body = on_body;
  r->settings.on_message_complete = on_message_complete;
  llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
  r->parser.data = r;
  wait_add(p, &r->w, plume__task_current(L), cancel_http);
  uv_timer_init(p->loop, &r->timer);
  r->timer.data = r;
  r->open_handles = 1;
  p->pending_closes++;
  uv_timer_start(&r->timer, on_http_timeout, (uint64_t)timeout, 0);
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  r->gai.data = r;
  r->resolving = 1;
  err =
      uv_getaddrinfo(p->loop, &r->gai, on_http_resolved, host, r->port, &hints);
  if (err != 0) {
    r->resolving = 0;
    wait_remove(&r->w);
    http_release(r);
    luaL_pushfail(L);
    lua_pushfstring(L, "%s:%s: %s", host, r->port, uv_strerror(err));
    return 2;
  }
  return plume__task_wait(L);
}

/* }====== */

static const luaL_Reg timer_methods[] = {
    {"cancel", timer_cancel}, {"active", timer_active}, {NULL, NULL}};

static const luaL_Reg async_functions[] = {
    {"sleep", async_sleep},
    {"after", async_after},
    {"every", async_every},
    {"spawn", async_spawn},
    {"exit", async_exit},
    {"hrtime", async_hrtime},
    {"mem", async_mem},
    {"log_wants", async_log_wants},
    {"access_enabled", async_access_enabled},
    {"access", async_access},
    {"fs_read", async_fs_read},
    {"fs_write", async_fs_write},
    {"fs_stat", async_fs_stat},
    {"fs_mkdir", async_fs_mkdir},
    {"http_request", async_http_request},
    {NULL, NULL}};

void plume__async_open(lua_State *L) {
  if (luaL_newmetatable(L, TIMER_MT)) { /* core mt */
    luaL_newlib(L, timer_methods);      /* core mt methods */
    lua_setfield(L, -2, "__index");     /* mt.__index = methods */
    lua_pushcfunction(L, timer_gc);
    lua_setfield(L, -2, "__gc"); /* mt.__gc = timer_gc */
  }
  lua_pop(L, 1);                        /* core */
  luaL_setfuncs(L, async_functions, 0); /* core.sleep = ..., ... */
}
