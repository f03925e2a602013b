/*
** test_reload.c: hot reload (reload.c, lua/plume/init.lua reload) and config
** files. A changed service file replaces the old version between calls, a
** broken one leaves the old version serving, calls in flight finish on their
** old code, memory-adapter data survives, new files add services and deleted
** ones remove them; the watcher debounces save storms; config files feed the
** option table (DESIGN.md §5, reliability.md §4.8).
*/
#include <sys/stat.h>

#include "instance.h"

static char dir[64];

static void make_app(void) {
  char path[128];
  snprintf(dir, sizeof(dir), "/tmp/plume-reload-XXXXXX");
  if (mkdtemp(dir) == NULL)
    dir[0] = '\0';
  snprintf(path, sizeof(path), "%s/services", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/config", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/app.lua", dir);
  write_file(path, "return function(app) app:set('socketio', false) end\n");
}

static void remove_app(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  CHECK_EQ(system(cmd), 0);
}

static void write_app_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  write_file(path, text);
}

static int reload(plume_t *p, const char *path) {
  const char *changes[1];
  changes[0] = path;
  return plume__lua_reload(p, changes, 1);
}

/* Calls app:service(path):find() in a task; the result (or error) lands in the
** global `got`. */
static void call_find(plume_t *p, const char *path) {
  char code[512];
  snprintf(code, sizeof(code),
           "got = nil local app = require('plume').app "
           "local s = app:service('%s') if not s then got = 'none' return end "
           "local ok, r = pcall(s.find, s, {}) "
           "got = ok and tostring(type(r) == 'table' and (r.total or #r) or r) "
           "or 'error: ' .. tostring(r.message or r)",
           path);
  run_lua(p, code);
}

static const char *got(plume_t *p, char *buf, size_t n) {
  spin_until(p, "got", 2000);
  return lua_global_str(p, "got", buf, n);
}

#define GREETER(v)                                                             \
  "local plume = require 'plume'\n"                                            \
  "return { find = function() return '" v "' end }\n"

/* Edit, break, fix, delete and add service files; data and connections stay. */
static void test_service_reload(void) {
  plume_t *p;
  char buf[256];
  make_app();
  write_app_file("services/greeter.lua", GREETER("v1"));
  write_app_file("services/notes.lua",
                 "local memory = require 'plume.adapters.memory'\n"
                 "return memory.new({ paginate = { default = 10 } })\n");
  p = instance_new(NULL);
  CHECK_EQ(plume_load_app(p, dir), 0);
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "v1");
  run_lua(p, "local notes = require('plume').app:service('notes') "
             "notes:create({ text = 'a' }) notes:create({ text = 'b' })");
  call_find(p, "notes");
  CHECK_STR(got(p, buf, sizeof(buf)), "2");

  /* an edit: the next call runs the new code */
  write_app_file("services/greeter.lua", GREETER("v2"));
  CHECK_EQ(reload(p, "services/greeter.lua"), 0);
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "v2");

  /* a syntax error, a runtime error at load, a bad shape: v2 keeps serving */
  write_app_file("services/greeter.lua", "return { find = function() end\n");
  reload(p, "services/greeter.lua");
  write_app_file("services/greeter.lua", "local x = nil\nreturn x.y\n");
  reload(p, "services/greeter.lua");
  write_app_file("services/greeter.lua", "return 42\n");
  reload(p, "services/greeter.lua");
  write_app_file("services/greeter.lua",
                 "return { find = function() end, setup = function() "
                 "error('setup failed') end }\n");
  reload(p, "services/greeter.lua");
  write_app_file("services/greeter.lua", "while true do end\n");
  reload(p, "services/greeter.lua"); /* bounded by the time budget */
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "v2");

  /* a memory service reloaded without data of its own keeps its records */
  write_app_file("services/notes.lua",
                 "local memory = require 'plume.adapters.memory'\n"
                 "return memory.new({ paginate = { default = 5 } })\n");
  reload(p, "services/notes.lua");
  call_find(p, "notes");
  CHECK_STR(got(p, buf, sizeof(buf)), "2");
  run_lua(p, "local r = require('plume').app:service('notes'):create({}) "
             "next_id = r.id");
  CHECK_EQ(lua_global_int(p, "next_id"), 2); /* the id counter went on */

  /* a deleted file removes its service, a new one adds a service */
  write_app_file("services/greeter.lua", "");
  snprintf(buf, sizeof(buf), "%s/services/greeter.lua", dir);
  unlink(buf);
  reload(p, "services/greeter.lua");
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "none");
  write_app_file("services/hello.lua", GREETER("hello"));
  reload(p, "services/hello.lua");
  call_find(p, "hello");
  CHECK_STR(got(p, buf, sizeof(buf)), "hello");

  /* everything (SIGHUP): picks up a file written without any notice */
  write_app_file("services/greeter.lua", GREETER("back"));
  plume__reload_all(p);
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "back");
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
  remove_app();
}

/* An unreadable file is a failed reload (logged, the old version stays), not a
** removal; hundreds of reloads leave memory and listener counts flat. */
static void test_unreadable_and_many_reloads(void) {
  plume_t *p;
  char buf[256];
  size_t after_warmup = 0;
  int i;
  make_app();
  write_app_file("services/greeter.lua", GREETER("v1"));
  p = instance_new(NULL);
  CHECK_EQ(plume_load_app(p, dir), 0);
  snprintf(buf, sizeof(buf), "%s/services/greeter.lua", dir);
  if (geteuid() != 0) { /* root reads anything */
    chmod(buf, 0);
    reload(p, "services/greeter.lua");
    call_find(p, "greeter");
    CHECK_STR(got(p, buf, sizeof(buf)), "v1");
    snprintf(buf, sizeof(buf), "%s/services/greeter.lua", dir);
    chmod(buf, 0644);
  }
  for (i = 0; i < 600; i++) {
    if (i == 100) {
      lua_gc(plume_lua(p), LUA_GCCOLLECT);
      after_warmup = p->lua_mem;
      run_lua(p, "listeners = require('plume').app:listener_count('publish')");
    }
    write_app_file("services/greeter.lua",
                   i % 2 ? GREETER("odd") : GREETER("even"));
    reload(p, "services/greeter.lua");
  }
  lua_gc(plume_lua(p), LUA_GCCOLLECT);
  CHECK(p->lua_mem < after_warmup + 64 * 1024);
  run_lua(p, "same = require('plume').app:listener_count('publish') == "
             "listeners");
  lua_getglobal(plume_lua(p), "same");
  CHECK(lua_toboolean(plume_lua(p), -1));
  lua_pop(plume_lua(p), 1);
  call_find(p, "greeter");
  CHECK_STR(got(p, buf, sizeof(buf)), "odd"); /* i == 599 */
  CHECK_EQ(p->lua_tasks, 0);
  instance_free(p);
  remove_app();
}

/* A call in flight finishes on the code it started with. */
static void test_in_flight_call(void) {
  plume_t *p;
  char buf[64];
  make_app();
  write_app_file("services/slow.lua",
                 "local plume = require 'plume'\n"
                 "return { find = function() plume.sleep(80) return 'old' end "
                 "}\n");
  p = instance_new(NULL);
  CHECK_EQ(plume_load_app(p, dir), 0);
  run_lua(p, "first = require('plume').app:service('slow'):find()");
  write_app_file("services/slow.lua",
                 "return { find = function() return 'new' end }\n");
  reload(p, "services/slow.lua");
  call_find(p, "slow");
  CHECK_STR(got(p, buf, sizeof(buf)), "new");
  CHECK(spin_until(p, "first", 2000));
  CHECK_STR(lua_global_str(p, "first", buf, sizeof(buf)), "old");
  instance_free(p);
  remove_app();
}

/* The watcher: a save storm gives one reload after the debounce; modules of the
** app folder are required afresh; config settings reload. */
static void test_watcher(void) {
  plume_t *p;
  plume_options_t o;
  char buf[64];
  int i;
  make_app();
  write_app_file("services/counted.lua",
                 "_G.loads = (_G.loads or 0) + 1\n"
                 "local lib = require 'lib'\n"
                 "return { find = function() return lib.word end }\n");
  write_app_file("lib.lua", "return { word = 'one' }\n");
  write_app_file("config/default.lua", "return { greeting = 'hi' }\n");
  plume_options_init(&o);
  p = instance_new(&o);
  CHECK_EQ(plume_load_app(p, dir), 0);
  CHECK_EQ(plume__reload_watch(p, dir), 0);
  CHECK_EQ(lua_global_int(p, "loads"), 1);
  spin(p, 50);
  for (i = 0; i < 20; i++) {
    char text[160];
    snprintf(text, sizeof(text),
             "_G.loads = (_G.loads or 0) + 1 -- save %d\n"
             "local lib = require 'lib'\n"
             "return { find = function() return lib.word end }\n",
             i);
    write_app_file("services/counted.lua", text);
    spin(p, 2);
  }
  spin(p, 400);
  /* start, then one reload (two if the machine stalled 100 ms mid-storm) */
  CHECK(lua_global_int(p, "loads") >= 2 && lua_global_int(p, "loads") <= 3);
  write_app_file("lib.lua", "return { word = 'two' }\n");
  write_app_file("config/default.lua", "return { greeting = 'hello' }\n");
  for (i = 0; i < 100; i++) {
    spin(p, 30);
    call_find(p, "counted");
    run_lua(p, "greeting = require('plume').app:get('greeting')");
    if (strcmp(got(p, buf, sizeof(buf)), "two") == 0 &&
        strcmp(lua_global_str(p, "greeting", buf, sizeof(buf)), "hello") == 0)
      break;
  }
  CHECK_STR(got(p, buf, sizeof(buf)), "two");
  CHECK_STR(lua_global_str(p, "greeting", buf, sizeof(buf)), "hello");
  instance_free(p);
  remove_app();
}

/* Config files: default then <env>, option keys through the option table. */
static void test_config(void) {
  plume_options_t o;
  char err[512];
  make_app();
  write_app_file("config/default.lua",
                 "return { port = 4000, ping_interval = 1e3, watch = false, "
                 "log_level = 'warn', paginate = { default = 10 } }\n");
  write_app_file("config/test.lua",
                 "return { port = tonumber(os.getenv('NO_SUCH_VAR') or 4001) "
                 "}\n");
  plume_options_init(&o);
  CHECK_EQ(plume__config_apply(dir, "test", &o, err, sizeof(err)), 0);
  CHECK_EQ(o.port, 4001);
  CHECK_EQ(o.ping_interval, 1000);
  CHECK_EQ(o.watch, 0);
  CHECK_STR(o.log_level, "warn");
  plume_options_init(&o);
  CHECK_EQ(plume__config_apply(dir, "development", &o, err, sizeof(err)), 0);
  CHECK_EQ(o.port, 4000);

  write_app_file("config/default.lua", "return { port = 'abc' }\n");
  CHECK_EQ(plume__config_apply(dir, "x", &o, err, sizeof(err)), PLUME_EOPTION);
  CHECK(strstr(err, "config/default.lua") != NULL && strstr(err, "port"));
  write_app_file("config/default.lua", "return { port = {} }\n");
  CHECK_EQ(plume__config_apply(dir, "x", &o, err, sizeof(err)), PLUME_EOPTION);
  write_app_file("config/default.lua", "return {\n port = \n");
  CHECK_EQ(plume__config_apply(dir, "x", &o, err, sizeof(err)), PLUME_ELUA);
  CHECK(strstr(err, "config/default.lua:") != NULL);
  write_app_file("config/default.lua", "return 1\n");
  CHECK_EQ(plume__config_apply(dir, "x", &o, err, sizeof(err)), PLUME_ELUA);
  CHECK(strstr(err, "must return a table") != NULL);
  CHECK_EQ(plume__config_apply(dir, "../x", &o, err, sizeof(err)),
           PLUME_EOPTION);
  remove_app();
}

int main(void) {
  RUN(test_service_reload);
  RUN(test_unreadable_and_many_reloads);
  RUN(test_in_flight_call);
  RUN(test_watcher);
  RUN(test_config);
  return check_done();
}
