/*
** plume-embed: a C program that embeds Plume (runtime/plume.h, built against an
** installed libplume through pkg-config). It owns its libuv loop and runs a
*timer
** of its own that reads three (simulated) sensors. The sensors are a Feathers
** service written in C: find and get answer at once, patch answers after a
** simulated device delay. Every reading reaches the browsers twice: as
** "sensors patched" service events (plume_service_emit), published to the app's
** channels, and as a raw Socket.IO "reading" event to the "dashboard" room
** (plume_io_emit). The app folder (app/) adds a Lua service, the hooks, the
** channels and the page; a Lua module of the host ("host") is preloaded for it.
**
**   make && ./plume-embed app            then open http://localhost:3030/
**   ./plume-embed app --port 8080 --interval 250 --log-level debug
**
** Flags other than --interval are Plume options, set by name (plume --help
*lists
** them); SIGINT or SIGTERM shut down gracefully.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <plume.h>

#define NSENSORS 3

typedef struct sensor_s {
  int id;
  const char *name;
  const char *unit;
  double value;  /* last reading, offset included */
  double offset; /* calibration, set with patch */
} sensor_t;

/* A patch waiting for its (simulated) device. */
typedef struct patch_s {
  uv_timer_t timer;
  plume_call_t *call;
  struct patch_s *next;
} patch_t;

/* Everything the host owns. */
typedef struct host_s {
  uv_loop_t loop;
  uv_timer_t ticker; /* reads the sensors every interval ms */
  uv_signal_t sigint, sigterm;
  plume_t *plume;
  sensor_t sensors[NSENSORS];
  patch_t *patches; /* answered later: closed on shutdown */
  unsigned long readings;
  unsigned seed;
  int interval;
} host_t;

static host_t host = {
    .sensors = {{1, "temperature", "C", 21.0, 0.0},
                {2, "humidity", "%", 45.0, 0.0},
                {3, "pressure", "hPa", 1013.0, 0.0}},
    .seed = 12345,
    .interval = 500,
};

/* ------------------------------------------------------------------------- */
/* The sensors */

static int sensor_json(const sensor_t *s, char *buf, size_t len) {
  return snprintf(buf, len,
                  "{\"id\":%d,\"name\":\"%s\",\"unit\":\"%s\",\"value\":%.2f,"
                  "\"offset\":%.2f}",
                  s->id, s->name, s->unit, s->value, s->offset);
}

static sensor_t *sensor_by_id(const char *id_json) {
  int i, id;
  if (id_json == NULL)
    return NULL;
  id = atoi(id_json[0] == '"' ? id_json + 1 : id_json); /* 2 or "2" */
  for (i = 0; i < NSENSORS; i++)
    if (host.sensors[i].id == id)
      return &host.sensors[i];
  return NULL;
}

/* A small random walk: each reading moves by at most 0.5. */
static void read_sensors(void) {
  int i;
  for (i = 0; i < NSENSORS; i++) {
    host.seed = host.seed * 1103515245u + 12345u;
    host.sensors[i].value += ((double)((host.seed >> 16) % 101) - 50.0) / 100.0;
  }
  host.readings++;
}

/* ------------------------------------------------------------------------- */
/* The "sensors" service, written in C */

/* find(params): every sensor, answered at once. */
static void sensors_find(plume_call_t *call) {
  char buf[1024], one[256];
  size_t n = 0;
  int i;
  buf[n++] = '[';
  for (i = 0; i < NSENSORS; i++) {
    sensor_json(&host.sensors[i], one, sizeof(one));
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", one);
  }
  snprintf(buf + n, sizeof(buf) - n, "]");
  plume_call_reply(call, buf);
}

/* get(id, params): one sensor, or a NotFound. */
static void sensors_get(plume_call_t *call) {
  sensor_t *s = sensor_by_id(plume_call_id(call));
  char buf[256];
  if (s == NULL) {
    plume_call_error(call, 404, "No sensor with this id", NULL);
    return;
  }
  sensor_json(s, buf, sizeof(buf));
  plume_call_reply(call, buf);
}

static void on_patch_closed(uv_handle_t *h) {
  free(h->data);
}

static void patch_done(patch_t *pt) {
  patch_t **at;
  for (at = &host.patches; *at != NULL; at = &(*at)->next)
    if (*at == pt) {
      *at = pt->next;
      break;
    }
  uv_close((uv_handle_t *)&pt->timer, on_patch_closed);
}

/* The device took the new calibration: answer the call now. */
static void on_patch_timer(uv_timer_t *t) {
  patch_t *pt = t->data;
  plume_call_t *call = pt->call;
  sensor_t *s = sensor_by_id(plume_call_id(call));
  const char *data = plume_call_data(call);
  const char *offset = data != NULL ? strstr(data, "\"offset\":") : NULL;
  char buf[256];
  if (s == NULL) {
    plume_call_error(call, 404, "No sensor with this id", NULL);
  } else if (offset == NULL) {
    plume_call_error(call, 400, "offset expected", "{\"field\":\"offset\"}");
  } else {
    double v = strtod(offset + 9, NULL);
    s->value += v - s->offset;
    s->offset = v;
    sensor_json(s, buf, sizeof(buf));
    plume_call_reply(call, buf); /* the framework emits "patched" */
  }
  patch_done(pt);
}

/* patch(id, data, params): the app's hooks checked data ({ offset = n }); the
** device answers 20 ms later, and the caller waits without blocking anyone. */
static void sensors_patch(plume_call_t *call) {
  patch_t *pt = malloc(sizeof(*pt));
  if (pt == NULL) {
    plume_call_error(call, 500, "out of memory", NULL);
    return;
  }
  pt->call = call;
  pt->next = host.patches;
  host.patches = pt;
  uv_timer_init(&host.loop, &pt->timer);
  pt->timer.data = pt;
  uv_timer_start(&pt->timer, on_patch_timer, 20, 0);
}

static const plume_method_t sensor_methods[] = {{"find", sensors_find},
                                                {"get", sensors_get},
                                                {"patch", sensors_patch},
                                                {NULL, NULL}};

static const plume_service_t sensors_service = {sensor_methods, NULL, &host};

/* ------------------------------------------------------------------------- */
/* The host's Lua module: what app/services/status.lua reads */

static int host_readings(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)host.readings);
  return 1;
}

static int host_interval(lua_State *L) {
  lua_pushinteger(L, host.interval);
  return 1;
}

static int luaopen_host(lua_State *L) {
  static const luaL_Reg functions[] = {
      {"readings", host_readings}, {"interval", host_interval}, {NULL, NULL}};
  luaL_newlib(L, functions);
  return 1;
}

/* ------------------------------------------------------------------------- */
/* The loop: the ticker, shutdown */

/* Every interval: read, then push each sensor to the browsers. */
static void on_tick(uv_timer_t *t) {
  char one[256], all[1024];
  size_t n = 0;
  int i, err;
  (void)t;
  read_sensors();
  n += (size_t)snprintf(all, sizeof(all), "[{\"reading\":%lu,\"sensors\":[",
                        host.readings);
  for (i = 0; i < NSENSORS; i++) {
    sensor_json(&host.sensors[i], one, sizeof(one));
    err = plume_service_emit(host.plume, "sensors", "patched", one);
    if (err != 0)
      fprintf(stderr, "plume-embed: emit: %s\n", plume_strerror(err));
    n += (size_t)snprintf(all + n, sizeof(all) - n, "%s%s", i ? "," : "", one);
  }
  snprintf(all + n, sizeof(all) - n, "]}]");
  err = plume_io_emit(host.plume, "/", "dashboard", "reading", all);
  if (err != 0)
    fprintf(stderr, "plume-embed: io emit: %s\n", plume_strerror(err));
}

/* Plume has shut down: the host closes what it owns, so that uv_run returns. */
static void on_plume_closed(plume_t *p) {
  (void)p;
  while (host.patches != NULL) {
    /* The instance gave up on these calls: the answer only frees them. */
    plume_call_error(host.patches->call, 503, "shutting down", NULL);
    patch_done(host.patches);
  }
  uv_close((uv_handle_t *)&host.ticker, NULL);
  uv_close((uv_handle_t *)&host.sigint, NULL);
  uv_close((uv_handle_t *)&host.sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  fprintf(stderr, "plume-embed: %s, shutting down\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
  uv_timer_stop(&host.ticker);
  uv_signal_stop(&host.sigint);
  uv_signal_stop(&host.sigterm);
  plume_close(host.plume, on_plume_closed);
}

/* ------------------------------------------------------------------------- */

/* Flags: APP_DIR, --interval MS, and Plume options by name (--port 8080,
** --log-level=debug, --no-watch). */
static int parse_args(int argc, char **argv, plume_options_t *o) {
  int i;
  for (i = 1; i < argc; i++) {
    char name[64];
    const char *a = argv[i], *value, *eq;
    if (strcmp(a, "--version") == 0) {
      printf("plume-embed on libplume %s\n", plume_version());
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0) {
      if (plume_options_set(o, "app_dir", a) != 0)
        return -1;
      continue;
    }
    a += 2;
    eq = strchr(a, '=');
    snprintf(name, sizeof(name), "%.*s",
             (int)(eq != NULL ? (size_t)(eq - a) : strlen(a)), a);
    if (eq == NULL && strncmp(name, "no-", 3) == 0) {
      if (plume_options_set(o, name + 3, "false") != 0)
        goto bad;
      continue;
    }
    value = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (value == NULL)
      goto bad;
    if (strcmp(name, "interval") == 0) {
      host.interval = atoi(value);
      if (host.interval <= 0)
        goto bad;
    } else if (plume_options_set(o, name, value) != 0) {
      goto bad;
    }
    continue;
  bad:
    fprintf(stderr, "plume-embed: bad option --%s (%s)\n", name,
            plume_strerror(PLUME_EOPTION));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  plume_options_t o;
  lua_State *L;
  int err;
  plume_options_init(&o);
#ifdef PLUME_LUA_DIR
  /* Linked statically: the Lua framework is where pkg-config said. (The shared
  ** libplume finds the one installed next to it by itself.) */
  plume_options_set(&o, "lua_path", PLUME_LUA_DIR);
#endif
  plume_options_set(&o, "app_dir", "app");
  if (parse_args(argc, argv, &o) != 0)
    return 2;

  /* The loop is the host's: Plume borrows it. */
  uv_loop_init(&host.loop);
  err = plume_new(&host.plume, &host.loop, &o);
  if (err != 0) {
    fprintf(stderr, "plume-embed: %s\n", plume_strerror(err));
    return 1;
  }

  /* A Lua module of the host, for app/services/status.lua. */
  L = plume_lua(host.plume);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_host);
  lua_setfield(L, -2, "host"); /* package.preload.host = luaopen_host */
  lua_pop(L, 1);

  err = plume_load_app(host.plume, o.app_dir);
  if (err == 0)
    err = plume_use_service(host.plume, "sensors", &sensors_service);
  if (err == 0)
    err = plume_listen(host.plume, o.host, o.port);
  if (err != 0) {
    fprintf(stderr, "plume-embed: %s\n", plume_strerror(err));
    plume_close(host.plume, NULL);
    uv_run(&host.loop, UV_RUN_DEFAULT);
    plume_destroy(host.plume);
    uv_run(&host.loop, UV_RUN_DEFAULT);
    uv_loop_close(&host.loop);
    return 1;
  }

  uv_timer_init(&host.loop, &host.ticker);
  uv_timer_start(&host.ticker, on_tick, (uint64_t)host.interval,
                 (uint64_t)host.interval);
  uv_signal_init(&host.loop, &host.sigint);
  uv_signal_start(&host.sigint, on_signal, SIGINT);
  uv_signal_init(&host.loop, &host.sigterm);
  uv_signal_start(&host.sigterm, on_signal, SIGTERM);

  uv_run(&host.loop, UV_RUN_DEFAULT); /* until on_plume_closed */
  plume_destroy(host.plume);
  uv_run(&host.loop, UV_RUN_DEFAULT); /* the handles plume_destroy closed */
  err = uv_loop_close(&host.loop);
  if (err != 0)
    fprintf(stderr, "plume-embed: loop: %s\n", plume_strerror(err));
  return err != 0;
}
