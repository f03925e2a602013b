/*
** main.c: the `plume` command (not part of libplume): serve an app folder,
** scaffold one (plume new), run its tests (plume test). Options come from the
** one option table (options.c), later wins: defaults < config/default.lua <
** config/<env>.lua < PLUME_* environment variables < command-line flags. SIGHUP
** reloads, SIGINT/SIGTERM drain.
*/
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "internal.h"

enum { CMD_SERVE, CMD_NEW, CMD_TEST };

static void usage(FILE *f) {
  const plume_option_info_t *o;
  fprintf(
      f, "usage: plume [APP_DIR] [--option value | --option=value | "
         "--no-option] ...\n"
         "       plume new NAME          scaffold an app folder (a service, a "
         "page, a test)\n"
         "       plume test [APP_DIR]    serve the app with PLUME_ENV=test and "
         "run test/*.lua\n"
         "       plume --help | --version\n\n"
         "Serves the application folder APP_DIR (default: the current "
         "folder).\n"
         "Every option can also be set in config/default.lua, "
         "config/<env>.lua and\n"
         "the environment as PLUME_<NAME>; later wins: config file < "
         "environment < flag.\n"
         "The environment is PLUME_ENV (or NODE_ENV), else development.\n"
         "SIGHUP reloads the services and config; SIGINT/SIGTERM shut down "
         "gracefully.\n\noptions:\n");
  for (o = plume_option_table(); o->name != NULL; o++) {
    char flag[64];
    size_t i;
    snprintf(flag, sizeof(flag), "--%s", o->name);
    for (i = 2; flag[i]; i++)
      if (flag[i] == '_')
        flag[i] = '-';
    fprintf(f, "  %-26s %-7s %s (default: %s)\n", flag, o->type, o->doc,
            o->default_value[0] ? o->default_value : "\"\"");
  }
}

/* Applies PLUME_<NAME> environment variables for every option. */
static int apply_env(plume_options_t *opts) {
  const plume_option_info_t *o;
  for (o = plume_option_table(); o->name != NULL; o++) {
    char var[80];
    const char *v;
    size_t i;
    snprintf(var, sizeof(var), "PLUME_%s", o->name);
    for (i = 6; var[i]; i++)
      if (var[i] >= 'a' && var[i] <= 'z')
        var[i] = (char)(var[i] - 32);
    v = getenv(var);
    if (v != NULL && plume_options_set(opts, o->name, v) != 0) {
      fprintf(stderr, "plume: invalid value for %s: %s\n", var, v);
      return -1;
    }
  }
  return 0;
}

static const char *option_type(const char *name) {
  const plume_option_info_t *o;
  char norm[64];
  size_t i;
  snprintf(norm, sizeof(norm), "%s", name);
  for (i = 0; norm[i]; i++)
    if (norm[i] == '-')
      norm[i] = '_';
  for (o = plume_option_table(); o->name != NULL; o++)
    if (strcmp(o->name, norm) == 0)
      return o->type;
  return NULL;
}

/* Applies the flags of argv[first..] to opts; the one positional argument is
** the app folder (or, for plume new, the name). Exits for --help and
** --version. */
static int parse_args(int argc, char **argv, int first, plume_options_t *opts) {
  int i, have_dir = 0;
  for (i = first; i < argc; i++) {
    const char *a = argv[i];
    char name[64];
    const char *value, *eq, *type;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("plume %s\n", plume_version());
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      if (have_dir++ || plume_options_set(opts, "app_dir", a) != 0) {
        fprintf(stderr, "plume: unexpected argument '%s'\n", a);
        return -1;
      }
      continue;
    }
    a += 2;
    eq = strchr(a, '=');
    snprintf(name, sizeof(name), "%.*s",
             (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    type = option_type(name);
    if (type == NULL && strncmp(name, "no-", 3) == 0 && eq == NULL &&
        (type = option_type(name + 3)) != NULL && strcmp(type, "bool") == 0) {
      plume_options_set(opts, name + 3, "false");
      continue;
    }
    if (type == NULL) {
      fprintf(stderr, "plume: unknown option --%s (see plume --help)\n", name);
      return -1;
    }
    if (eq != NULL)
      value = eq + 1;
    else if (strcmp(type, "bool") == 0 &&
             (i + 1 >= argc ||
              (strcmp(argv[i + 1], "true") && strcmp(argv[i + 1], "false"))))
      value = "true";
    else if (i + 1 < argc)
      value = argv[++i];
    else {
      fprintf(stderr, "plume: --%s needs a value\n", name);
      return -1;
    }
    if (plume_options_set(opts, name, value) != 0) {
      fprintf(stderr, "plume: invalid value for --%s: %s\n", name, value);
      return -1;
    }
  }
  return 0;
}

/* When run from a build tree, use the framework next to it (../lua). */
static void find_lua_path(plume_options_t *opts) {
  char exe[PATH_MAX], probe[PATH_MAX + 32];
  size_t n = sizeof(exe);
  char *slash;
  if (opts->lua_path[0] != '\0' || uv_exepath(exe, &n) != 0)
    return;
  slash = strrchr(exe, '/');
  if (slash == NULL)
    return;
  *slash = '\0';
  snprintf(probe, sizeof(probe), "%s/../lua/plume/init.lua", exe);
  if (access(probe, R_OK) == 0) {
    snprintf(probe, sizeof(probe), "%s/../lua", exe);
    plume_options_set(opts, "lua_path", probe);
  }
}

/* 1 when s is one of the space-separated words of list. */
static int one_of(const char *s, const char *list) {
  size_t n = strlen(s);
  while (*list != '\0') {
    size_t k = strcspn(list, " ");
    if (k == n && n > 0 && strncmp(list, s, n) == 0)
      return 1;
    list += k;
    list += strspn(list, " ");
  }
  return 0;
}

/*
** The options of a run: defaults, then the config files of the app folder and
** environment that the environment and flags name, then the environment and
** flags again so that they win over the files.
*/
static int build_options(int argc, char **argv, int first, int cmd,
                         plume_options_t *opts) {
  plume_options_t pre;
  char err[512];
  int rc;
  plume_options_init(&pre);
  if (cmd == CMD_TEST) {
    plume_options_set(&pre, "env", "test");
    plume_options_set(&pre, "watch", "false");
  }
  /* Feathers apps name their environment in NODE_ENV; PLUME_ENV wins. */
  if (getenv("NODE_ENV") != NULL && getenv("NODE_ENV")[0] != '\0' &&
      plume_options_set(&pre, "env", getenv("NODE_ENV")) != 0) {
    fprintf(stderr, "plume: invalid value for NODE_ENV\n");
    return 2;
  }
  *opts = pre;
  if (apply_env(&pre) != 0 || parse_args(argc, argv, first, &pre) != 0)
    return 2;
  if (cmd == CMD_NEW) {
    *opts = pre;
    find_lua_path(opts);
    return 0;
  }
  rc = plume__config_apply(pre.app_dir, pre.env, opts, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "plume: %s\n", err);
    return 2;
  }
  if (apply_env(opts) != 0 || parse_args(argc, argv, first, opts) != 0)
    return 2;
  if (!one_of(opts->log_level, "error warn info debug") ||
      !one_of(opts->log_format, "text json")) {
    fprintf(stderr, "plume: log_level is one of error, warn, info, debug and "
                    "log_format text or json\n");
    return 2;
  }
  find_lua_path(opts);
  return 0;
}

static plume_t *instance;
static uv_signal_t sigint, sigterm, sighup;

static void on_signal(uv_signal_t *h, int signum) {
  static int seen;
  if (signum == SIGHUP) {
    plume__reload_all(instance);
    return;
  }
  if (seen++) {
    fprintf(stderr, "plume: second signal, exiting now\n");
    exit(1);
  }
  plume__log(instance, PLUME__LOG_INFO, "core", "%s: shutting down",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
  plume_close(instance, NULL);
}

static void watch_signal(uv_signal_t *h, int signum) {
  uv_signal_init(plume_loop(instance), h);
  uv_signal_start(h, on_signal, signum);
  uv_unref((uv_handle_t *)h); /* the server's own handles keep the loop alive */
}

/* plume new NAME: copies the app template through the framework
** (plume.new_app). */
static int scaffold(const char *dir) {
  lua_State *L = plume_lua(instance);
  int ok;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  lua_call(L, 1, 1);              /* plume */
  lua_getfield(L, -1, "new_app"); /* plume new_app */
  lua_pushstring(L, dir);         /* plume new_app dir */
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    fprintf(stderr, "plume new: %s\n", lua_tostring(L, -1));
    return 1;
  }
  ok = lua_toboolean(L, -2);
  if (!ok) {
    fprintf(stderr, "plume new: %s\n", lua_tostring(L, -1));
    return 1;
  }
  printf(
      "created %s/ (app.lua, config/, services/messages.lua, public/, "
      "test/)\n\n"
      "  plume %s           serve it on http://localhost:3030/ (edits reload "
      "live)\n"
      "  plume test %s      run its tests\n",
      dir, dir, dir);
  return 0;
}

/* plume test: runs require("plume").run_tests(dir) in a task once the app
** listens. */
static void start_tests(const char *dir) {
  lua_State *L = plume_lua(instance);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "plume");
  lua_call(L, 1, 1);                /* plume */
  lua_getfield(L, -1, "run_tests"); /* plume run_tests */
  lua_remove(L, -2);                /* run_tests */
  lua_pushstring(L, dir);           /* run_tests dir */
  if (plume__task_start(instance, 1) != 0) {
    instance->exit_code = 1;
    plume_close(instance, NULL);
  }
}

int main(int argc, char **argv) {
  plume_options_t opts;
  int cmd = CMD_SERVE, first = 1, err, code;
  if (argc > 1 && strcmp(argv[1], "new") == 0)
    cmd = CMD_NEW, first = 2;
  else if (argc > 1 && strcmp(argv[1], "test") == 0)
    cmd = CMD_TEST, first = 2;
  if (cmd == CMD_NEW && (argc != 3 || argv[2][0] == '-')) {
    if (argc == 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
      usage(stdout);
      return 0;
    }
    fprintf(stderr, "usage: plume new NAME\n");
    return 2;
  }
  err = build_options(argc, argv, first, cmd, &opts);
  if (err != 0)
    return err;
  if (cmd == CMD_NEW)
    plume_options_set(&opts, "watch", "false");
  err = plume_new(&instance, NULL, &opts);
  if (err != 0) {
    fprintf(stderr, "plume: cannot start: %s\n", plume_strerror(err));
    return 1;
  }
  if (cmd == CMD_NEW) {
    code = scaffold(opts.app_dir);
    plume_close(instance, NULL);
    plume_run(instance);
    plume_destroy(instance);
    return code;
  }
  err = plume_load_app(instance, opts.app_dir);
  if (err == 0)
    err = plume_listen(instance, opts.host, opts.port);
  if (err != 0) {
    plume_close(instance, NULL);
    plume_run(instance);
    plume_destroy(instance);
    return 1;
  }
  watch_signal(&sigint, SIGINT);
  watch_signal(&sigterm, SIGTERM);
  watch_signal(&sighup, SIGHUP);
  if (cmd == CMD_TEST)
    start_tests(opts.app_dir);
  plume_run(instance);
  code = instance->exit_code;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sighup, NULL);
  plume_destroy(instance);
  return code;
}
