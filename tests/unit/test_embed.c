/*
** test_embed.c: the C embedding API (plume.h, embed.c): options by name, two
** instances on one host loop with several listeners each, asynchronous close,
** services written in C (answers now and later, errors, hooks and events around
** them, calls given up at shutdown), events and Socket.IO emits from C, the Lua
** state for host modules, and require("plume").run in a state of the caller's
** (the rock).
*/
#include <arpa/inet.h>
#include <sys/stat.h>

#include <lualib.h>

#include "instance.h"

static char tmp[64];

/* Makes a temporary app folder whose app.lua is text. */
static void make_app(const char *text) {
  char path[128];
  snprintf(tmp, sizeof(tmp), "/tmp/plume-embed-XXXXXX");
  if (mkdtemp(tmp) == NULL) {
    tmp[0] = '\0';
    return;
  }
  snprintf(path, sizeof(path), "%s/app.lua", tmp);
  write_file(path, text);
}

static void remove_app(void) {
  char path[128];
  snprintf(path, sizeof(path), "%s/app.lua", tmp);
  unlink(path);
  rmdir(tmp);
}

static void lua_dir(char *buf, size_t len) {
  if (getcwd(buf, len - 8) != NULL)
    strcat(buf, "/lua");
}

/* Options for a test instance: the framework from ./lua, quiet, no watcher. */
static void test_options(plume_options_t *o) {
  char dir[512];
  plume_options_init(o);
  lua_dir(dir, sizeof(dir));
  plume_options_set(o, "lua_path", dir);
  if (getenv("PLUME_TEST_LOG") == NULL)
    plume_options_set(o, "log_level", "error");
  plume_options_set(o, "watch", "false");
}

/* The ports of p's listeners, most recent first. */
static int listener_ports(plume_t *p, int *ports, int max) {
  plume__listener_t *l;
  int n = 0;
  for (l = p->listeners; l != NULL && n < max; l = l->next) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
      ports[n++] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  return n;
}

/* ------------------------------------------------------------------------- */
/* A one-shot HTTP client on the host's loop: GET path, read until EOF. */

typedef struct get_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  char request[256];
  char response[4096];
  size_t len;
  int done;
} get_t;

static void on_get_closed(uv_handle_t *h) {
  ((get_t *)h->data)->done = 1;
}

static void on_get_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  get_t *g = h->data;
  b->base = g->response + g->len;
  b->len = sizeof(g->response) - 1 - g->len;
}

static void on_get_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  get_t *g = s->data;
  if (n > 0) {
    g->len += (size_t)n;
    g->response[g->len] = '\0';
  }
  if (n < 0 || g->len + 1 >= sizeof(g->response))
    uv_close((uv_handle_t *)s, on_get_closed);
}

static void on_get_connected(uv_connect_t *c, int status) {
  get_t *g = c->data;
  uv_buf_t buf = uv_buf_init(g->request, (unsigned)strlen(g->request));
  if (status != 0) {
    uv_close((uv_handle_t *)&g->tcp, on_get_closed);
    return;
  }
  uv_write(&g->write, (uv_stream_t *)&g->tcp, &buf, 1, NULL);
  uv_read_start((uv_stream_t *)&g->tcp, on_get_alloc, on_get_read);
}

/* GETs path from 127.0.0.1:port, running loop until the answer is complete.
** Returns the response (head and body) in a static buffer. */
static const char *http_get(uv_loop_t *loop, int port, const char *path) {
  static get_t g;
  struct sockaddr_in addr;
  memset(&g, 0, sizeof(g));
  snprintf(g.request, sizeof(g.request),
           "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
           path);
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_init(loop, &g.tcp);
  g.tcp.data = &g;
  g.connect.data = &g;
  uv_tcp_connect(&g.connect, &g.tcp, (struct sockaddr *)&addr,
                 on_get_connected);
  while (!g.done)
    uv_run(loop, UV_RUN_ONCE);
  return g.response;
}

#define HANDSHAKE "/socket.io/?EIO=4&transport=polling"

/* ------------------------------------------------------------------------- */

/* Options are set and read by name from the one table; bad names and values
** are refused with PLUME_EOPTION. */
static void test_options_by_name(void) {
  plume_options_t o;
  const plume_option_info_t *info;
  char buf[64];
  int found = 0;
  plume_options_init(&o);
  CHECK_EQ(o.port, 3030);
  CHECK_EQ(plume_options_set(&o, "ping_interval", "1234"), 0);
  CHECK_EQ(o.ping_interval, 1234);
  CHECK_EQ(plume_options_set(&o, "ping-timeout", "99"), 0);
  CHECK_EQ(o.ping_timeout, 99);
  CHECK_EQ(plume_options_set(&o, "watch", "false"), 0);
  CHECK_EQ(o.watch, 0);
  CHECK_EQ(plume_options_set(&o, "host", "127.0.0.1"), 0);
  CHECK_STR(o.host, "127.0.0.1");
  CHECK_EQ(plume_options_set(&o, "no_such_option", "1"), PLUME_EOPTION);
  CHECK_EQ(plume_options_set(&o, "port", "eighty"), PLUME_EOPTION);
  CHECK_EQ(plume_options_set(&o, "watch", "perhaps"), PLUME_EOPTION);
  CHECK_EQ(o.port, 3030);
  CHECK_EQ(plume_options_get(&o, "ping_interval", buf, sizeof(buf)), 0);
  CHECK_STR(buf, "1234");
  CHECK_EQ(plume_options_get(&o, "nope", buf, sizeof(buf)), PLUME_EOPTION);
  for (info = plume_option_table(); info->name != NULL; info++)
    if (strcmp(info->name, "max_http_buffer_size") == 0)
      found = strcmp(info->type, "int") == 0 && info->doc[0] != '\0';
  CHECK(found);
  CHECK_STR(plume_err_name(PLUME_ENOSERVICE), "ENOSERVICE");
  CHECK_STR(plume_strerror(PLUME_ENOSERVICE), "no service at this path");
  CHECK_STR(plume_err_name(UV_EADDRINUSE), "EADDRINUSE");
}

static int closes;
static void on_closed(plume_t *p) {
  closes++;
}

/* Two instances share the host's loop; one listens on two ports; each answers
** with its own options; both close asynchronously and leave nothing behind. */
static void test_two_instances_one_loop(void) {
  uv_loop_t loop;
  plume_options_t oa, ob;
  plume_t *a = NULL, *b = NULL;
  int ports[4], na, nb;
  const char *r;
  make_app("return function(app) app:set('socketio', {}) end\n");
  uv_loop_init(&loop);
  test_options(&oa);
  test_options(&ob);
  plume_options_set(&oa, "ping_interval", "1111");
  plume_options_set(&ob, "ping_interval", "2222");
  CHECK_EQ(plume_new(&a, &loop, &oa), 0);
  CHECK_EQ(plume_new(&b, &loop, &ob), 0);
  if (a == NULL || b == NULL)
    return;
  CHECK(plume_lua(a) != plume_lua(b));
  CHECK(plume_loop(a) == &loop && plume_loop(b) == &loop);
  CHECK_EQ(plume_run(a), PLUME_ESTATE); /* a borrowed loop is the host's */
  CHECK_EQ(plume_load_app(a, tmp), 0);
  CHECK_EQ(plume_load_app(b, tmp), 0);
  CHECK_EQ(plume_load_app(a, "/nonexistent/app"), PLUME_ENOAPP);
  CHECK_EQ(plume_listen(a, "127.0.0.1", 0), 0);
  CHECK_EQ(plume_listen(a, "127.0.0.1", 0), 0);
  CHECK_EQ(plume_listen(b, "127.0.0.1", 0), 0);
  na = listener_ports(a, ports, 2);
  nb = listener_ports(b, ports + 2, 1);
  CHECK_EQ(na, 2);
  CHECK_EQ(nb, 1);
  CHECK_EQ(plume_listen(b, "127.0.0.1", ports[0]), UV_EADDRINUSE);
  CHECK(plume_listen(b, "not an address", 0) < 0);
  r = http_get(&loop, ports[0], HANDSHAKE);
  CHECK(strstr(r, "HTTP/1.1 200") == r);
  CHECK(strstr(r, "\"pingInterval\":1111") != NULL);
  r = http_get(&loop, ports[1], HANDSHAKE);
  CHECK(strstr(r, "\"pingInterval\":1111") != NULL);
  r = http_get(&loop, ports[2], HANDSHAKE);
  CHECK(strstr(r, "\"pingInterval\":2222") != NULL);
  closes = 0;
  plume_close(a, on_closed);
  plume_close(a, on_closed); /* a second close does nothing */
  CHECK_EQ(plume_listen(a, "127.0.0.1", 0), PLUME_ESTATE);
  CHECK_EQ(plume_load_app(a, tmp), PLUME_ESTATE);
  /* b still serves while a closes. */
  r = http_get(&loop, ports[2], HANDSHAKE);
  CHECK(strstr(r, "HTTP/1.1 200") == r);
  plume_close(b, on_closed);
  CHECK_EQ(closes, 0); /* asynchronous: the callbacks come from the loop */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(closes, 2);
  CHECK_EQ(a->pending_closes, 0);
  CHECK_EQ(b->pending_closes, 0);
  plume_destroy(a);
  plume_destroy(b);
  plume_destroy(NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* what the Lua states' __gc closed */
  CHECK_EQ(uv_loop_close(&loop), 0);
  remove_app();
}

/* ------------------------------------------------------------------------- */
/* A C service: find and get answer now, patch answers from a timer, create
** answers JSON that is not JSON, "fail" answers an error with data. */

typedef struct sensor_s {
  int id;
  int value;
} sensor_t;

typedef struct sensors_s {
  sensor_t items[2];
  uv_timer_t timer; /* answers patch later */
  plume_call_t *pending;
  int calls;
  char last_params[256];
  char last_method[16];
  int held; /* "hold" keeps its call unanswered */
  plume_call_t *kept;
} sensors_t;

static void sensor_json(const sensor_t *s, char *buf, size_t len) {
  snprintf(buf, len, "{\"id\":%d,\"value\":%d}", s->id, s->value);
}

static sensor_t *find_sensor(sensors_t *st, const char *id) {
  int i, n = id != NULL ? atoi(id[0] == '"' ? id + 1 : id) : -1;
  for (i = 0; i < 2; i++)
    if (st->items[i].id == n)
      return &st->items[i];
  return NULL;
}

static void note(plume_call_t *call) {
  sensors_t *st = plume_call_service_data(call);
  st->calls++;
  snprintf(st->last_params, sizeof(st->last_params), "%s",
           plume_call_params(call));
  snprintf(st->last_method, sizeof(st->last_method), "%s",
           plume_call_method(call));
}

static void sensors_find(plume_call_t *call) {
  sensors_t *st = plume_call_service_data(call);
  char a[64], b[64], all[160];
  note(call);
  CHECK(plume_call_id(call) == NULL);
  CHECK(plume_call_data(call) == NULL);
  CHECK_STR(plume_call_path(call), "sensors");
  sensor_json(&st->items[0], a, sizeof(a));
  sensor_json(&st->items[1], b, sizeof(b));
  snprintf(all, sizeof(all), "[%s,%s]", a, b);
  CHECK_EQ(plume_call_reply(call, all), 0);
  CHECK_EQ(plume_call_reply(call, "[]"), PLUME_ESTATE); /* once only */
}

static void sensors_get(plume_call_t *call) {
  sensors_t *st = plume_call_service_data(call);
  sensor_t *s;
  char buf[64];
  note(call);
  s = find_sensor(st, plume_call_id(call));
  if (s == NULL) {
    plume_call_error(call, 404, "no such sensor", "{\"id\":\"unknown\"}");
    return;
  }
  sensor_json(s, buf, sizeof(buf));
  plume_call_reply(call, buf);
}

static void on_patch_timer(uv_timer_t *t) {
  sensors_t *st = t->data;
  plume_call_t *call = st->pending;
  sensor_t *s = find_sensor(st, plume_call_id(call));
  const char *v = strstr(plume_call_data(call), "\"value\":");
  char buf[64];
  st->pending = NULL;
  if (s == NULL || v == NULL) {
    plume_call_error(call, 400, "value expected", NULL);
    return;
  }
  s->value = atoi(v + 8);
  sensor_json(s, buf, sizeof(buf));
  CHECK_EQ(plume_call_reply(call, buf), 0);
}

static void sensors_patch(plume_call_t *call) {
  sensors_t *st = plume_call_service_data(call);
  note(call);
  st->pending = call;
  uv_timer_start(&st->timer, on_patch_timer, 20, 0);
}

static void sensors_create(plume_call_t *call) {
  note(call);
  CHECK_EQ(plume_call_reply(call, "{not json"), PLUME_EPROTO);
}

static void sensors_hold(plume_call_t *call) {
  sensors_t *st = plume_call_service_data(call);
  note(call);
  st->kept = call;
}

/* "stop" closes the instance from inside the method, then answers. */
static void sensors_stop(plume_call_t *call) {
  note(call);
  plume_close(plume_call_instance(call), on_closed);
  plume_call_reply(call, "\"stopping\"");
}

static const plume_method_t sensor_methods[] = {{"find", sensors_find},
                                                {"get", sensors_get},
                                                {"patch", sensors_patch},
                                                {"create", sensors_create},
                                                {"hold", sensors_hold},
                                                {"stop", sensors_stop},
                                                {NULL, NULL}};

static const char *const sensor_events[] = {"alarm", NULL};

static sensors_t sensors;

static const plume_service_t sensors_service = {sensor_methods, sensor_events,
                                                &sensors};

static void sensors_reset(uv_loop_t *loop) {
  memset(&sensors, 0, sizeof(sensors));
  sensors.items[0].id = 1;
  sensors.items[0].value = 20;
  sensors.items[1].id = 2;
  sensors.items[1].value = 30;
  uv_timer_init(loop, &sensors.timer);
  sensors.timer.data = &sensors;
}

/* An app whose hooks and listeners record what they see in globals. */
static const char *const sensors_app =
    "return function(app)\n"
    "  app:set('socketio', false)\n"
    "  _G.HOOKS = 0\n"
    "  app:hooks({ before = { all = { function(ctx)\n"
    "    _G.HOOKS = _G.HOOKS + 1\n"
    "    if ctx.method == 'patch' and ctx.data.value == -1 then\n"
    "      error(require('plume.errors').BadRequest('negative'))\n"
    "    end\n"
    "  end } }, after = { get = { function(ctx)\n"
    "    ctx.result.seen_by_hook = true\n"
    "  end } } })\n"
    "end\n";

static plume_t *sensors_instance(uv_loop_t *loop) {
  plume_options_t o;
  plume_t *p = NULL;
  make_app(sensors_app);
  test_options(&o);
  if (plume_new(&p, loop, &o) != 0)
    return NULL;
  sensors_reset(plume_loop(p));
  CHECK_EQ(plume_load_app(p, tmp), 0);
  CHECK_EQ(plume_use_service(p, "sensors", &sensors_service), 0);
  return p;
}

static void free_instance(plume_t *p) {
  uv_close((uv_handle_t *)&sensors.timer, NULL);
  instance_free(p);
  remove_app();
}

static void test_c_service(void) {
  plume_t *p = sensors_instance(NULL);
  char buf[256];
  if (p == NULL)
    return;
  CHECK_EQ(
      run_lua(
          p, "local s = require('plume').app:service('sensors')\n"
             "EVENTS = {}\n"
             "s:on('patched', function(d) EVENTS[#EVENTS + 1] = d.value end)\n"
             "local list = s:find({ query = { min = 5 }, provider = 'test' })\n"
             "FOUND = #list .. ':' .. list[2].value\n"
             "local one = s:get(1)\n"
             "GOT = one.value .. ':' .. tostring(one.seen_by_hook)\n"
             "local ok, err = pcall(s.get, s, 9)\n"
             "MISSING = err.name .. ':' .. err.code .. ':' .. err.message\n"
             "  .. ':' .. err.data.id\n"
             "local ok2, err2 = pcall(s.create, s, { a = 1 })\n"
             "BADJSON = err2.name .. ':' .. err2.code\n"
             "local ok3, err3 = pcall(s.patch, s, 1, { value = -1 })\n"
             "REFUSED = err3.name\n"
             "local patched = s:patch(2, { value = 42 })\n"
             "PATCHED = patched.value\n"
             "DONE = true\n"),
      0);
  /* patch waits for the C timer: the task is pending, the loop free. */
  CHECK_EQ(lua_global_int(p, "PATCHED"), 0);
  CHECK(sensors.pending != NULL);
  CHECK(spin_until(p, "DONE", 2000));
  CHECK_STR(lua_global_str(p, "FOUND", buf, sizeof(buf)), "2:30");
  CHECK_STR(lua_global_str(p, "GOT", buf, sizeof(buf)), "20:true");
  CHECK_STR(lua_global_str(p, "MISSING", buf, sizeof(buf)),
            "NotFound:404:no such sensor:unknown");
  CHECK_STR(lua_global_str(p, "BADJSON", buf, sizeof(buf)), "GeneralError:500");
  CHECK_STR(lua_global_str(p, "REFUSED", buf, sizeof(buf)), "BadRequest");
  CHECK_EQ(lua_global_int(p, "PATCHED"), 42);
  CHECK_EQ(sensors.items[1].value, 42);
  /* The app hook ran before each of the 6 calls; the refused patch never
  ** reached C. */
  CHECK_EQ(lua_global_int(p, "HOOKS"), 6);
  CHECK_EQ(sensors.calls, 5);
  CHECK_STR(sensors.last_method, "patch");
  CHECK(strstr(sensors.last_params, "\"query\":{}") != NULL);
  /* The patched event, as after a Lua service's patch. */
  CHECK_EQ(run_lua(p, "PATCH_EVENT = EVENTS[1]"), 0);
  CHECK_EQ(lua_global_int(p, "PATCH_EVENT"), 42);
  free_instance(p);
}

/* What the C method sees of params: query and provider, not the rest. */
static void test_c_service_params(void) {
  plume_t *p = sensors_instance(NULL);
  if (p == NULL)
    return;
  CHECK_EQ(run_lua(p, "require('plume').app:service('sensors'):find({\n"
                      "  query = { min = 5 }, provider = 'socketio',\n"
                      "  connection = { f = print } })\n"),
           0);
  CHECK(strstr(sensors.last_params, "\"query\":{\"min\":5}") != NULL);
  CHECK(strstr(sensors.last_params, "\"provider\":\"socketio\"") != NULL);
  CHECK(strstr(sensors.last_params, "connection") == NULL);
  free_instance(p);
}

/* Registration errors. */
static void test_c_service_errors(void) {
  static const plume_method_t reserved[] = {{"hooks", sensors_find},
                                            {NULL, NULL}};
  static const plume_method_t unnamed[] = {{"", sensors_find}, {NULL, NULL}};
  static const plume_method_t nofn[] = {{"find", NULL}, {NULL, NULL}};
  static const plume_method_t none[] = {{NULL, NULL}};
  plume_service_t bad = {reserved, NULL, NULL};
  plume_options_t o;
  plume_t *p = NULL;
  test_options(&o);
  CHECK_EQ(plume_new(&p, NULL, &o), 0);
  if (p == NULL)
    return;
  /* Before plume_load_app there is no app. */
  CHECK_EQ(plume_use_service(p, "sensors", &sensors_service), PLUME_ESTATE);
  CHECK_EQ(plume_service_emit(p, "sensors", "patched", "{}"), PLUME_ESTATE);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "news", NULL), PLUME_ESTATE);
  make_app("return function(app) end\n");
  CHECK_EQ(plume_load_app(p, tmp), 0);
  CHECK_EQ(plume_use_service(p, "x", &bad), PLUME_ELUA);
  bad.methods = unnamed;
  CHECK_EQ(plume_use_service(p, "x", &bad), UV_EINVAL);
  bad.methods = nofn;
  CHECK_EQ(plume_use_service(p, "x", &bad), UV_EINVAL);
  bad.methods = none;
  CHECK_EQ(plume_use_service(p, "x", &bad), UV_EINVAL);
  bad.methods = NULL;
  CHECK_EQ(plume_use_service(p, "x", &bad), UV_EINVAL);
  CHECK_EQ(plume_use_service(p, "", &sensors_service), UV_EINVAL);
  CHECK_EQ(plume_use_service(p, NULL, &sensors_service), UV_EINVAL);
  CHECK_EQ(plume_use_service(p, "x", NULL), UV_EINVAL);
  instance_free(p);
  remove_app();
}

/* plume_service_emit: listeners and publishers get the event; errors. */
static void test_service_emit(void) {
  plume_t *p = sensors_instance(NULL);
  char buf[128];
  if (p == NULL)
    return;
  CHECK_EQ(
      run_lua(p, "local s = require('plume').app:service('sensors')\n"
                 "s:on('patched', function(d) SEEN = d.id .. ':' .. d.v end)\n"
                 "s:on('alarm', function(d) ALARM = d end)\n"
                 "s:on('created', function(d) CREATED = tostring(d) end)\n"),
      0);
  CHECK_EQ(plume_service_emit(p, "sensors", "patched", "{\"id\":3,\"v\":7}"),
           0);
  CHECK(spin_until(p, "SEEN", 1000));
  CHECK_STR(lua_global_str(p, "SEEN", buf, sizeof(buf)), "3:7");
  CHECK_EQ(plume_service_emit(p, "/sensors/", "alarm", "\"hot\""), 0);
  CHECK(spin_until(p, "ALARM", 1000));
  CHECK_STR(lua_global_str(p, "ALARM", buf, sizeof(buf)), "hot");
  CHECK_EQ(plume_service_emit(p, "sensors", "created", NULL), 0);
  CHECK(spin_until(p, "CREATED", 1000));
  CHECK_EQ(plume_service_emit(p, "nope", "patched", "{}"), PLUME_ENOSERVICE);
  CHECK_EQ(plume_service_emit(p, "sensors", "exploded", "{}"), UV_EINVAL);
  CHECK_EQ(plume_service_emit(p, "sensors", "", "{}"), UV_EINVAL);
  CHECK_EQ(plume_service_emit(p, "sensors", "patched", "{bad"), PLUME_EPROTO);
  CHECK_EQ(plume_service_emit(p, "sensors", "patched", "[1] 2"), PLUME_EPROTO);
  /* Socket.IO is off in this app (socketio = false). */
  CHECK_EQ(plume_io_emit(p, NULL, "room", "news", "[1]"), PLUME_ESTATE);
  free_instance(p);
}

/* plume_io_emit against an app serving Socket.IO: argument checks (delivery
** is tested with real clients in tests/interop/embed-c). */
static void test_io_emit(void) {
  plume_options_t o;
  plume_t *p = NULL;
  make_app("return function(app) app:set('socketio', {}) end\n");
  test_options(&o);
  CHECK_EQ(plume_new(&p, NULL, &o), 0);
  if (p == NULL)
    return;
  CHECK_EQ(plume_load_app(p, tmp), 0);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "news", "[1,{\"a\":2}]"), 0);
  CHECK_EQ(plume_io_emit(p, "/admin", "room1", "news", NULL), 0);
  CHECK_EQ(plume_io_emit(p, "admin", NULL, "news", NULL), UV_EINVAL);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "connect", NULL), UV_EINVAL);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "", NULL), UV_EINVAL);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "news", "{\"a\":1}"), PLUME_EPROTO);
  CHECK_EQ(plume_io_emit(p, NULL, NULL, "news", "[1"), PLUME_EPROTO);
  instance_free(p);
  remove_app();
}

/* A call answered during the drain finishes before the close callback; one
** never answered is given up at the deadline and freed by its late answer. */
static void on_drain_answer(uv_timer_t *t) {
  sensors_t *st = t->data;
  CHECK_EQ(plume_call_reply(st->kept, "\"late but in time\""), 0);
  st->kept = NULL;
}

static void test_close_with_calls(void) {
  plume_t *p = sensors_instance(NULL);
  plume_call_t *kept;
  char buf[64];
  if (p == NULL)
    return;
  CHECK_EQ(run_lua(p, "ANSWER = require('plume').app:service('sensors')"
                      ":hold({})"),
           0);
  CHECK(sensors.kept != NULL);
  /* Drain: the answer comes 30 ms into the shutdown. */
  uv_timer_start(&sensors.timer, on_drain_answer, 30, 0);
  closes = 0;
  plume_close(p, on_closed);
  CHECK_EQ(plume_service_emit(p, "sensors", "patched", "{}"), PLUME_ESTATE);
  plume_run(p);
  CHECK_EQ(closes, 1);
  CHECK_STR(lua_global_str(p, "ANSWER", buf, sizeof(buf)), "late but in time");
  uv_close((uv_handle_t *)&sensors.timer, NULL);
  plume_destroy(p);
  remove_app();

  /* Given up: shutdown_timeout passes with the call unanswered. */
  p = sensors_instance(NULL);
  if (p == NULL)
    return;
  p->opts.shutdown_timeout = 30;
  CHECK_EQ(run_lua(p, "ANSWER = require('plume').app:service('sensors')"
                      ":hold({})"),
           0);
  kept = sensors.kept;
  CHECK(kept != NULL && plume_call_instance(kept) == p);
  plume_close(p, on_closed);
  plume_run(p);
  CHECK_EQ(closes, 2);
  CHECK(plume_call_instance(kept) == NULL);
  CHECK_STR(plume_call_method(kept), "hold");
  CHECK_EQ(p->lua_tasks, 1); /* abandoned, never resumed */
  uv_close((uv_handle_t *)&sensors.timer, NULL);
  plume_destroy(p);
  remove_app();
  CHECK_EQ(plume_call_reply(kept, "1"), PLUME_ECLOSED); /* frees it */
}

/* plume_close from inside a C method: with a drain (the call finishes and its
** caller gets the answer) and without one (shutdown_timeout 0: the framework's
** shutdown runs at once, the answer still reaches the caller). */
static void test_close_inside_method(void) {
  int timeouts[2] = {10000, 0}, i;
  char buf[64];
  for (i = 0; i < 2; i++) {
    plume_t *p = sensors_instance(NULL);
    if (p == NULL)
      return;
    p->opts.shutdown_timeout = timeouts[i];
    closes = 0;
    CHECK_EQ(run_lua(p, "STOPPED = require('plume').app:service('sensors')"
                        ":stop({})"),
             0);
    CHECK_STR(lua_global_str(p, "STOPPED", buf, sizeof(buf)), "stopping");
    CHECK_EQ(closes, 0);
    plume_run(p);
    CHECK_EQ(closes, 1);
    CHECK(p->calls == NULL);
    CHECK_EQ(p->pending_closes, 0);
    uv_close((uv_handle_t *)&sensors.timer, NULL);
    plume_destroy(p);
    remove_app();
  }
}

/* A host module in the instance's state, required by the app. */
static int host_answer(lua_State *L) {
  lua_pushinteger(L, 42);
  return 1;
}

static int luaopen_host(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, host_answer);
  lua_setfield(L, -2, "answer");
  return 1;
}

static void test_host_module(void) {
  plume_options_t o;
  plume_t *p = NULL;
  lua_State *L;
  int top;
  make_app("local host = require 'host'\n"
           "return function(app) app:set('answer', host.answer()) end\n");
  test_options(&o);
  CHECK_EQ(plume_new(&p, NULL, &o), 0);
  if (p == NULL)
    return;
  L = plume_lua(p);
  top = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE); /* preload */
  lua_pushcfunction(L, luaopen_host);
  lua_setfield(L, -2, "host"); /* preload.host = luaopen_host */
  lua_pop(L, 1);
  CHECK_EQ(lua_gettop(L), top);
  CHECK_EQ(plume_load_app(p, tmp), 0);
  CHECK_EQ(run_lua(p, "ANSWER = require('plume').app:get('answer')"), 0);
  CHECK_EQ(lua_global_int(p, "ANSWER"), 42);
  instance_free(p);
  remove_app();
}

/* ------------------------------------------------------------------------- */
/* require("plume").run in a state of the caller's (the rock). */

static lua_State *stock_lua(void) {
  lua_State *L = luaL_newstate();
  char dir[512], path[1200];
  luaL_openlibs(L);
  lua_dir(dir, sizeof(dir));
  snprintf(path, sizeof(path),
           "package.path = '%s/?.lua;%s/?/init.lua;' .. "
           "package.path",
           dir, dir);
  if (luaL_dostring(L, path) != LUA_OK)
    lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_plume_core);
  lua_setfield(L, -2, "plume.core"); /* as the rock's core.so */
  lua_pop(L, 1);
  return L;
}

static const char *const run_chunk =
    "local dir = ...\n"
    "SHARED = 'same state'\n"
    "local plume = require 'plume'\n"
    "local opts = { port = 0, host = '127.0.0.1', log_level = 'error',\n"
    "               signals = false }\n"
    "local code = coroutine.wrap(function() return plume.run(dir, opts) "
    "end)()\n"
    "local again = plume.run(dir, opts)\n"
    "local none, err = plume.run(dir .. '/missing', opts)\n"
    "local bad = pcall(plume.run, dir, { no_such_option = 1 })\n"
    "return code, again, SEEN, NESTED, none == nil and err ~= nil, bad,\n"
    "  opts.signals\n";

static void test_run_borrowed_state(void) {
  lua_State *L;
  int top;
  make_app("local plume = require 'plume'\n"
           "return function(app)\n"
           "  app:set('socketio', {})\n"
           "  rawset(_G, 'SEEN', SHARED)\n"
           "  local ok, err = pcall(plume.run, '.')\n"
           "  rawset(_G, 'NESTED', not ok and tostring(err):match('already')"
           " ~= nil)\n"
           "  plume.after(20, function() plume.exit(7) end)\n"
           "end\n");
  L = stock_lua();
  top = lua_gettop(L);
  if (luaL_loadstring(L, run_chunk) != LUA_OK) {
    printf("#   %s\n", lua_tostring(L, -1));
    CHECK(0);
    return;
  }
  lua_pushstring(L, tmp);
  if (lua_pcall(L, 1, 7, 0) != LUA_OK) {
    printf("#   %s\n", lua_tostring(L, -1));
    CHECK(0);
    lua_close(L);
    return;
  }
  CHECK_EQ(lua_tointeger(L, top + 1), 7);
  CHECK_EQ(lua_tointeger(L, top + 2), 7); /* a second run in the same state */
  CHECK_STR(lua_tostring(L, top + 3), "same state");
  CHECK(lua_toboolean(L, top + 4));
  CHECK(lua_toboolean(L, top + 5));
  CHECK(!lua_toboolean(L, top + 6));
  CHECK(lua_toboolean(L, top + 7) == 0 && !lua_isnil(L, top + 7));
  lua_settop(L, top);
  lua_close(L);
  remove_app();
}

int main(void) {
  RUN(test_options_by_name);
  RUN(test_two_instances_one_loop);
  RUN(test_c_service);
  RUN(test_c_service_params);
  RUN(test_c_service_errors);
  RUN(test_service_emit);
  RUN(test_io_emit);
  RUN(test_close_with_calls);
  RUN(test_close_inside_method);
  RUN(test_host_module);
  RUN(test_run_borrowed_state);
  plume__shared_pool_drain();
  return check_done();
}
