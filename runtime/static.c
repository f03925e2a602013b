/*
** static.c: GET and HEAD for files under the app's public/ folder, the route
** http.c takes for any path no Engine.IO server owns. Paths are percent-decoded
** and confined to the folder (no "..", no NUL, realpath prefix check); contents
** are read on the loop's thread pool and sent as one shared block; an ETag from
** size and mtime answers If-None-Match. Folders mounted under a URL prefix
** (plume__static_mount: the Feathers browser client at /feathers/) are looked
** at when public/ has no such file.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llhttp.h>

#include "internal.h"

/* A file being read for a waiting GET. The connection may close meanwhile,
** so it is looked up again by address and id before it is answered. */
typedef struct file_read_s {
  uv_fs_t req;
  plume_t *p;
  plume__conn_t *c;
  uint32_t conn_id;
  int fd;
  size_t done;
  plume__shared_t *body;
  const char *type;
  char extra[160];
} file_read_t;

static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
};

static const char *content_type(const char *path) {
  const char *dot = strrchr(path, '.');
  size_t i;
  if (dot == NULL || strchr(dot, '/') != NULL)
    return "application/octet-stream";
  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcasecmp(dot + 1, types[i].ext) == 0)
      return types[i].type;
  return "application/octet-stream";
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes the request path into out. Refuses a path not starting
** with '/', a bad escape, NUL, and any ".." segment (checked after decoding,
** so %2e%2e is caught). Returns 0 or -1. */
static int decode_path(plume_slice_t path, char *out, size_t cap) {
  size_t i, k = 0;
  const char *seg;
  if (path.n == 0 || path.p[0] != '/')
    return -1;
  for (i = 0; i < path.n; i++) {
    char ch = path.p[i];
    if (ch == '%') {
      if (i + 2 >= path.n || hex_value(path.p[i + 1]) < 0 ||
          hex_value(path.p[i + 2]) < 0)
        return -1;
      ch = (char)(hex_value(path.p[i + 1]) << 4 | hex_value(path.p[i + 2]));
      i += 2;
    }
    if (ch == '\0' || k + 1 >= cap)
      return -1;
    out[k++] = ch;
  }
  out[k] = '\0';
  for (seg = out; seg != NULL; seg = strchr(seg + 1, '/'))
    if (seg[1] == '.' && seg[2] == '.' && (seg[3] == '/' || seg[3] == '\0'))
      return -1;
  return 0;
}

/* A folder served under a URL prefix. */
struct plume__mount_s {
  plume__mount_t *next;
  char *prefix; /* starts and ends with '/' */
  size_t prefix_len;
  char *dir;
};

int plume__static_mount(plume_t *p, const char *prefix, const char *dir) {
  plume__mount_t *m;
  size_t n = strlen(prefix);
  if (n < 2 || prefix[0] != '/' || prefix[n - 1] != '/' || dir[0] == '\0' ||
      strlen(dir) >= PATH_MAX)
    return PLUME_EOPTION;
  for (m = p->mounts; m != NULL; m = m->next)
    if (strcmp(m->prefix, prefix) == 0)
      break;
  if (m == NULL) {
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->prefix = strdup(prefix)) == NULL) {
      free(m);
      return UV_ENOMEM;
    }
    m->prefix_len = n;
    m->next = p->mounts;
    p->mounts = m;
  }
  free(m->dir);
  m->dir = strdup(dir);
  return m->dir != NULL ? 0 : UV_ENOMEM;
}

void plume__static_free(plume_t *p) {
  while (p->mounts != NULL) {
    plume__mount_t *m = p->mounts;
    p->mounts = m->next;
    free(m->prefix);
    free(m->dir);
    free(m);
  }
}

/* Resolves rel under the folder dir into out (PATH_MAX) and checks that the
** result, symlinks followed, is still inside it. Returns 0 or -1. */
static int resolve(const char *dir, const char *rel, char *out) {
  char root[PATH_MAX], full[PATH_MAX];
  size_t n;
  if (dir == NULL || realpath(dir, root) == NULL)
    return -1;
  if (snprintf(full, sizeof(full), "%s%s", root, rel) >= (int)sizeof(full))
    return -1;
  if (realpath(full, out) == NULL)
    return -1;
  n = strlen(root);
  if (n > 0 && root[n - 1] == '/')
    return strncmp(out, root, n) == 0 ? 0 : -1;
  return strncmp(out, root, n) == 0 && (out[n] == '/' || out[n] == '\0') ? 0
                                                                         : -1;
}

static void answer_text(plume__conn_t *c, int status, const char *extra) {
  char body[64];
  int n = snprintf(body, sizeof(body), "%s\n", plume__http_reason(status));
  plume__http_respond(c, status, "text/plain; charset=utf-8", extra, body,
                      (size_t)n);
}

/* The connection behind a finished read, if it still waits for that answer. */
static plume__conn_t *live_conn(file_read_t *f) {
  plume__conn_t *c;
  for (c = f->p->conns; c != NULL; c = c->next)
    if (c == f->c)
      return c->id == f->conn_id && plume__http_current(c) != NULL ? c : NULL;
  return NULL;
}

static void finish_read(file_read_t *f, int ok) {
  plume__conn_t *c = live_conn(f);
  close(f->fd);
  if (c != NULL) {
    if (ok)
      plume__http_respond_shared(c, 200, f->type, f->extra, f->body);
    else
      answer_text(c, 500, NULL);
  }
  /* The read counted as a pending close so that shutdown waits for it. */
  f->p->pending_closes--;
  plume__shared_unref(f->body);
  free(f);
}

static void on_read(uv_fs_t *req);

static void read_more(file_read_t *f) {
  uv_buf_t b = uv_buf_init(f->body->data + f->done,
                           (unsigned int)(f->body->len - f->done));
  if (uv_fs_read(f->p->loop, &f->req, f->fd, &b, 1, (int64_t)f->done,
                 on_read) != 0)
    finish_read(f, 0);
}

static void on_read(uv_fs_t *req) {
  file_read_t *f = plume__container_of(req, file_read_t, req);
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (n <= 0) {
    /* A read error, or the file shrank under us. */
    finish_read(f, 0);
    return;
  }
  f->done += (size_t)n;
  if (f->done < f->body->len)
    read_more(f);
  else
    finish_read(f, 1);
}

/* Opens rel under dir for reading; a directory is replaced by its index.html
** (re-resolved, so a symlinked index cannot lead outside). Returns the fd or
** -1. */
static int open_file(const char *dir, const char *rel, char *path,
                     struct stat *st) {
  char index[PATH_MAX];
  int fd;
  if (resolve(dir, rel, path) != 0)
    return -1;
  if (stat(path, st) != 0)
    return -1;
  if (S_ISDIR(st->st_mode)) {
    if (snprintf(index, sizeof(index), "%s/index.html", rel) >=
            (int)sizeof(index) ||
        resolve(dir, index, path) != 0 || stat(path, st) != 0)
      return -1;
  }
  if (!S_ISREG(st->st_mode))
    return -1;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Opens rel from public/, else from the mount whose prefix starts it (the
** rest of the path, from its slash, is looked up in the mounted folder). */
static int open_served(plume_t *p, const char *rel, char *path,
                       struct stat *st) {
  plume__mount_t *m;
  int fd = -1;
  if (p->public_dir[0] != '\0')
    fd = open_file(p->public_dir, rel, path, st);
  for (m = p->mounts; fd < 0 && m != NULL; m = m->next)
    if (strncmp(rel, m->prefix, m->prefix_len) == 0)
      fd = open_file(m->dir, rel + m->prefix_len - 1, path, st);
  return fd;
}

static int etag_matches(plume__http_req_t *r, const char *etag) {
  plume_slice_t inm = plume__http_header(r, "if-none-match");
  size_t n = strlen(etag);
  if (inm.p == NULL)
    return 0;
  if (inm.n == 1 && inm.p[0] == '*')
    return 1;
  return inm.n >= n && memmem(inm.p, inm.n, etag, n) != NULL;
}

void plume__static_serve(plume_t *p, plume__conn_t *c, plume__http_req_t *r) {
  char rel[PATH_MAX], path[PATH_MAX], etag[64];
  struct stat st;
  file_read_t *f;
  size_t cap;
  int fd, fresh;
  if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
    answer_text(c, 405, "Allow: GET, HEAD\r\n");
    return;
  }
  if (p->public_dir[0] == '\0' && p->mounts == NULL) {
    answer_text(c, 404, NULL);
    return;
  }
  if (decode_path(r->path, rel, sizeof(rel)) != 0) {
    answer_text(c, 400, NULL);
    return;
  }
  fd = open_served(p, rel, path, &st);
  if (fd < 0) {
    answer_text(c, 404, NULL);
    return;
  }
  snprintf(etag, sizeof(etag), "\"%llx-%llx.%lx\"",
           (unsigned long long)st.st_size,
           (unsigned long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
  cap = p->opts.max_output_bytes > 0 ? (size_t)p->opts.max_output_bytes : 0;
  if ((cap > 0 && (size_t)st.st_size + 4096 > cap) ||
      (unsigned long long)st.st_size > UINT32_MAX / 2) {
    /* The whole file is queued at once; over the output cap it could never
    ** go out. */
    plume__log(p, PLUME__LOG_WARN, "http",
               "%s: %lld bytes, over max_output_bytes; not served", path,
               (long long)st.st_size);
    close(fd);
    answer_text(c, 500, NULL);
    return;
  }
  f = calloc(1, sizeof(*f));
  if (f == NULL) {
    close(fd);
    answer_text(c, 503, NULL);
    return;
  }
  f->p = p;
  f->c = c;
  f->conn_id = c->id;
  f->fd = fd;
  f->type = content_type(path);
  snprintf(f->extra, sizeof(f->extra),
           "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
  fresh = etag_matches(r, etag);
  if (fresh || r->method == HTTP_HEAD || st.st_size == 0) {
    /* No body to read: a HEAD answer states the length it leaves out. */
    if (fresh)
      plume__http_respond(c, 304, NULL, f->extra, NULL, 0);
    else
      plume__http_respond(c, 200, f->type, f->extra, NULL, (size_t)st.st_size);
    close(fd);
    free(f);
    return;
  }
  f->body = plume__shared_alloc((size_t)st.st_size);
  if (f->body == NULL) {
    close(fd);
    free(f);
    answer_text(c, 503, NULL);
    return;
  }
  p->pending_closes++;
  read_more(f);
}
