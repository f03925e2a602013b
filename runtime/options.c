/*
** options.c: the one option table. plume_options_set/get work by name on it;
** the command line (main.c), config/<name>.lua and PLUME_<NAME> environment
** variables all go through it.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { OPT_INT, OPT_BOOL, OPT_STRING };

typedef struct option_s {
  plume_option_info_t info;
  int kind;
  size_t offset;
  size_t size; /* string capacity */
} option_t;

#define INT(name, def, doc)                                                    \
  { {#name, "int", #def, doc}, OPT_INT, offsetof(plume_options_t, name), 0 }
#define BOOL(name, def, doc)                                                   \
  { {#name, "bool", def, doc}, OPT_BOOL, offsetof(plume_options_t, name), 0 }
#define STR(name, def, doc)                                                    \
  {                                                                            \
    {#name, "string", def, doc}, OPT_STRING, offsetof(plume_options_t, name),  \
        sizeof(((plume_options_t *)0)->name)                                   \
  }

static const option_t options[] = {
    STR(host, "0.0.0.0", "address to listen on"),
    INT(port, 3030, "port to listen on"),
    STR(app_dir, ".", "application folder"),
    STR(lua_path, "", "folder searched first for Lua modules"),
    STR(log_level, "info", "error, warn, info or debug"),
    STR(log_format, "text", "text or json (one JSON object per line)"),
    BOOL(watch, "true", "reload services when their files change"),
    INT(ping_interval, 25000, "Engine.IO pingInterval in ms"),
    INT(ping_timeout, 20000, "Engine.IO pingTimeout in ms"),
    INT(upgrade_timeout, 10000, "Engine.IO upgradeTimeout in ms"),
    INT(close_timeout, 30000, "polling: close without a GET after, in ms"),
    INT(max_http_buffer_size, 1000000,
        "Engine.IO maxPayload: POST body and WebSocket message, bytes"),
    INT(connect_timeout, 45000, "Socket.IO: time to join a namespace, ms"),
    BOOL(allow_eio3, "true", "accept Engine.IO v3 clients (EIO=3)"),
    INT(max_header_bytes, 16384, "HTTP request line and headers, bytes"),
    INT(max_headers, 100, "HTTP header count"),
    INT(max_body_bytes, 1000000, "HTTP request body outside Engine.IO, bytes"),
    INT(header_timeout, 15000, "request head must arrive within, ms"),
    INT(keepalive_timeout, 5000, "idle keep-alive connection closed after, ms"),
    INT(max_connections, 10000, "open TCP connections"),
    INT(max_output_bytes, 4194304,
        "queued output per connection before it is dropped, bytes"),
    INT(ws_max_fragments, 1024, "WebSocket fragments per message"),
    INT(max_attachments, 10, "Socket.IO binary attachments per packet"),
    INT(max_json_depth, 128, "JSON nesting depth"),
    INT(shutdown_timeout, 10000, "graceful shutdown deadline, ms"),
    STR(env, "development",
        "configuration environment: config/<env>.lua after config/default.lua"),
    STR(debug, "",
        "debug lines of these subsystems (http,engineio,socketio,feathers,...; "
        "all)"),
    BOOL(access_log, "true",
         "one info line per HTTP request and per service call"),
    INT(lua_call_timeout, 1000,
        "ms a Lua call may run without waiting before it fails (0: no limit)"),
    INT(lua_memory_limit, 268435456,
        "bytes the Lua state may hold; allocations beyond fail (0: no cap)"),
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static plume_option_info_t info_table[NOPTIONS + 1];

static const option_t *find_option(const char *name) {
  size_t i;
  char norm[64];
  size_t n = strlen(name);
  if (n >= sizeof(norm))
    return NULL;
  /* Accept "ping-interval" and "PING_INTERVAL" as well as "ping_interval". */
  for (i = 0; i <= n; i++) {
    char ch = name[i];
    if (ch == '-')
      ch = '_';
    else if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    norm[i] = ch;
  }
  for (i = 0; i < NOPTIONS; i++)
    if (strcmp(options[i].info.name, norm) == 0)
      return &options[i];
  return NULL;
}

static int set_value(plume_options_t *o, const option_t *opt,
                     const char *value) {
  char *base = (char *)o + opt->offset;
  switch (opt->kind) {
  case OPT_INT: {
    char *end;
    long v;
    errno = 0;
    v = strtol(value, &end, 10);
    /* 1e6-style values are accepted when they are whole numbers. */
    if (*end == 'e' || *end == 'E' || *end == '.') {
      double d = strtod(value, &end);
      if (*end != '\0' || d < -2147483648.0 || d > 2147483647.0 ||
          d != (double)(long)d)
        return PLUME_EOPTION;
      v = (long)d;
    } else if (errno != 0 || *end != '\0' || end == value || v < -2147483647L ||
               v > 2147483647L) {
      return PLUME_EOPTION;
    }
    *(int *)base = (int)v;
    return 0;
  }
  case OPT_BOOL:
    if (!strcmp(value, "true") || !strcmp(value, "1") ||
        !strcmp(value, "yes") || !strcmp(value, "on"))
      *(int *)base = 1;
    else if (!strcmp(value, "false") || !strcmp(value, "0") ||
             !strcmp(value, "no") || !strcmp(value, "off"))
      *(int *)base = 0;
    else
      return PLUME_EOPTION;
    return 0;
  default:
    if (strlen(value) >= opt->size)
      return PLUME_EOPTION;
    memcpy(base, value, strlen(value) + 1);
    return 0;
  }
}

void plume_options_init(plume_options_t *o) {
  size_t i;
  memset(o, 0, sizeof(*o));
  for (i = 0; i < NOPTIONS; i++)
    set_value(o, &options[i], options[i].info.default_value);
}

int plume_options_set(plume_options_t *o, const char *name, const char *value) {
  const option_t *opt = find_option(name);
  if (opt == NULL || value == NULL)
    return PLUME_EOPTION;
  return set_value(o, opt, value);
}

int plume_options_get(const plume_options_t *o, const char *name, char *buf,
                      size_t len) {
  const option_t *opt = find_option(name);
  const char *base;
  int n;
  if (opt == NULL)
    return PLUME_EOPTION;
  base = (const char *)o + opt->offset;
  if (opt->kind == OPT_INT)
    n = snprintf(buf, len, "%d", *(const int *)base);
  else if (opt->kind == OPT_BOOL)
    n = snprintf(buf, len, "%s", *(const int *)base ? "true" : "false");
  else
    n = snprintf(buf, len, "%s", base);
  return n < 0 || (size_t)n >= len ? PLUME_EOPTION : 0;
}

const plume_option_info_t *plume_option_table(void) {
  size_t i;
  if (info_table[0].name == NULL)
    for (i = 0; i < NOPTIONS; i++)
      info_table[i] = options[i].info;
  return info_table;
}
