/*
** main.c: the `plume` command (not part of libplume). Options come from the one option
** table (options.c): defaults < PLUME_* environment variables < command-line flags.
** Serves an application folder until SIGINT/SIGTERM, then shuts down gracefully.
*/
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plume.h"

static void usage(FILE *f) {
  const plume_option_info_t *o;
  fprintf(f, "usage: plume [APP_DIR] [--option value | --option=value | "
             "--no-option] ...\n"
             "       plume --help | --version\n\n"
             "Serves the application folder APP_DIR (default: the current "
             "folder).\nEvery option can also be set in the environment as "
             "PLUME_<NAME>.\n\noptions:\n");
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

static int parse_args(int argc, char **argv, plume_options_t *opts) {
  int i, have_dir = 0;
  for (i = 1; i < argc; i++) {
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
    if (strncmp(a, "--", 2) != 0) {
      if (have_dir++ || plume_options_set(opts, "app_dir", a) != 0) {
        fprintf(stderr, "plume: unexpected argument '%s'\n", a);
        return -1;
      }
      continue;
    }
    a += 2;
    eq = strchr(a, '=');
    snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)),
             a);
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

static plume_t *instance;
static uv_signal_t sigint, sigterm;

static void on_closed(plume_t *p) {
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  static int seen;
  if (seen++) {
    fprintf(stderr, "plume: second signal, exiting now\n");
    exit(1);
  }
  plume_close(instance, on_closed);
}

int main(int argc, char **argv) {
  plume_options_t opts;
  int err;
  plume_options_init(&opts);
  if (apply_env(&opts) != 0 || parse_args(argc, argv, &opts) != 0)
    return 2;
  find_lua_path(&opts);
  err = plume_new(&instance, NULL, &opts);
  if (err != 0) {
    fprintf(stderr, "plume: cannot start: %s\n", plume_strerror(err));
    return 1;
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
  uv_signal_init(plume_loop(instance), &sigint);
  uv_signal_init(plume_loop(instance), &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  plume_run(instance);
  plume_destroy(instance);
  return 0;
}
