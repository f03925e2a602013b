/*
** socketio.c: the Socket.IO v5 server under lua/plume/socketio.lua: clients
** (one per Engine.IO session), namespaces, sockets, rooms, broadcasts encoded
** once, acks both ways with timeouts, the connect timeout, Engine.IO v3
** clients auto-joined to "/", the client bundle at <path>socket.io.js. Below:
** engineio.c, socketio_codec.c. protocol.md §3-§7, reliability.md §1.3, §4.4.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <llhttp.h>

#include "internal.h"

#define SERVER_MT "plume.socketio.server"
#define CLIENT_MT "plume.socketio.client"
#define SOCKET_MT "plume.socketio.socket"
#define NSP_MT "plume.socketio.namespace"

#define MAX_SOCKETS 32     /* namespaces joined or joining, per client */
#define MAX_ACKS 1000      /* server-to-client acks pending, per socket */
#define MAX_NSP_NAME 1024  /* longer namespace names are simply invalid */
#define MAX_OUT_ATT 64     /* attachments per outgoing packet, hard ceiling */
#define KEEP_BYTES 65536   /* the shared encoder shrinks back above this */
#define MAX_FILE (8 << 20) /* largest client bundle file served */
#define SPREAD_MAX 16      /* more task arguments travel as one table */

enum { SOCK_PENDING, SOCK_CONNECTED };

typedef struct sio_server_s sio_server_t;
typedef struct sio_client_s sio_client_t;
typedef struct sio_socket_s sio_socket_t;
typedef struct sio_nsp_s sio_nsp_t;
typedef struct sio_room_s sio_room_t;
typedef struct sio_ack_s sio_ack_t;
typedef struct sio_group_s sio_group_t;

/* A Lua handle on a C object: ptr is NULL once the object is gone, and the
** methods then answer nil, "closed" (style.md D.6). */
typedef struct box_s {
  void *ptr;
} box_t;

/* One member of a room, and where the room sits in the member's own list. */
typedef struct member_s {
  sio_socket_t *sock;
  uint32_t slot; /* index in sock->rooms */
} member_t;

/* A room of a namespace: made by the first join, freed when left empty. */
struct sio_room_s {
  sio_room_t *next; /* hash chain */
  uint32_t hash;
  uint32_t n, cap;
  member_t *members;
  size_t len;
  char name[]; /* NUL-terminated */
};

/* One room a socket is in, and the socket's index in that room. */
typedef struct joined_s {
  sio_room_t *room;
  uint32_t idx;
} joined_t;

/*
** A namespace: its connected sockets and its rooms. Made from Lua when a
** namespace is defined or a dynamic one matches; owned by the server and kept
** for its life (as socket.io keeps them).
*/
struct sio_nsp_s {
  sio_server_t *srv;
  sio_nsp_t *next;    /* srv->nsps */
  sio_socket_t *head; /* connected sockets: broadcasts to all */
  uint32_t nsockets;
  uint32_t nbound;      /* sockets bound to it, pending or connected */
  sio_room_t **buckets; /* rooms by name, chained; nbuckets a power of two */
  uint32_t nbuckets, nrooms;
  box_t *box;      /* its Lua handle, pinned by the Lua namespace */
  int64_t next_id; /* ack ids: per namespace, so one id serves a broadcast */
  size_t len;
  char name[];
};

/*
** A socket: one client in one namespace. Owned by its client; pending while the
** namespace's middlewares run, connected once accepted. The Lua socket hangs
** off its box (uservalue 1), which C pins while the socket lives.
*/
struct sio_socket_s {
  sio_client_t *client;
  sio_nsp_t *nsp;            /* set by bind (pending sockets may join rooms) */
  sio_socket_t *prev, *next; /* nsp->head, once connected */
  joined_t *rooms;
  uint32_t nrooms, rooms_cap;
  sio_ack_t *acks; /* server-to-client acks awaiting the client */
  uint32_t nacks;
  uint32_t mark; /* broadcast epoch: already served or excluded */
  uint8_t state; /* SOCK_* */
  box_t *box;
  int box_ref; /* pins box while the socket lives */
  char *name;  /* namespace name (v3: without its query) */
  size_t name_len;
  size_t id_len;
  char id[]; /* the socket id, then the namespace name */
};

/*
** What Socket.IO keeps per Engine.IO session. Owned by the session (its ud):
** made in on_open, freed in on_close. It owns its sockets and its decoder.
*/
struct sio_client_s {
  sio_server_t *srv;
  plume__eio_session_t *s;
  plume__sio_decoder_t dec;
  sio_socket_t **socks; /* joined or joining, one per namespace */
  uint8_t nsocks, socks_cap;
  uint8_t proto;               /* Engine.IO 3 or 4 */
  uint8_t waiting;             /* on srv's connect-timeout list */
  sio_client_t *wprev, *wnext; /* srv->whead: no namespace joined yet */
  uint64_t deadline;           /* connect timeout, loop time */
  double issued;               /* wall clock at open, ms (handshake.issued) */
  box_t *box;
  int box_ref; /* pins box while the client lives */
};

/*
** A server-to-client ack awaited: a callback (fn_ref) or a waiting task (co).
** Its timer is set up only when needed (a timeout, or a failure reported on a
** clean stack at 0 ms); then the entry is freed in the timer's close callback.
*/
struct sio_ack_s {
  uv_timer_t timer; /* valid when has_timer */
  sio_server_t *srv;
  sio_socket_t *sock;       /* NULL once detached from its socket */
  sio_ack_t *next;          /* sock->acks */
  sio_ack_t *sprev, *snext; /* srv->acks: every entry, for the final close */
  int64_t id;
  int fn_ref;             /* the callback, LUA_NOREF when a task waits */
  plume__task_ref_t task; /* the task waiting in emitWithAck, co NULL if none */
  uint8_t err_first;      /* the callback takes (err, ...) */
  uint8_t has_timer;      /* timer initialised: freed through uv_close */
  const char *error;      /* the failure the timer reports */
  sio_group_t *group;     /* a broadcast's member: its answer goes there */
  uint32_t gidx;          /* index in group->members */
};

/*
** A broadcast that asked every recipient for an ack (socket.io's timeout().emit
** with a callback): one member entry per socket, one answer (err, responses)
** once all answered, or at the timeout. Freed in its timer's close callback.
*/
struct sio_group_s {
  uv_timer_t timer; /* the timeout, or 0 ms: answer on a clean stack */
  sio_server_t *srv;
  sio_group_t *prev, *next; /* srv->groups */
  int fn_ref;             /* fn(err, responses), LUA_NOREF when a task waits */
  plume__task_ref_t task; /* the task waiting in emitWithAck, co NULL if none */
  int list_ref;           /* the responses, a Lua array */
  sio_ack_t **members;    /* NULL once answered or gone */
  uint32_t n, pending, nresp;
  uint8_t done;      /* answered (or the answer is due) */
  const char *error; /* what the timer reports */
};

#define NFILES 6
static const char *const client_files[NFILES] = {
    "socket.io.js",     "socket.io.min.js",     "socket.io.esm.min.js",
    "socket.io.js.map", "socket.io.min.js.map", "socket.io.esm.min.js.map"};

/*
** One Socket.IO server (one path). Allocated by sio_attach and owned by the
** Lua state through its box: the box's __gc (lua_close) detaches everything and
** the memory goes in the timer's close callback.
*/
struct sio_server_s {
  plume_t *p;
  lua_State *L;                /* the main thread; NULL once Lua is closing */
  plume__eio_server_t *eio;    /* NULL once closed */
  uv_timer_t timer;            /* connect deadlines and the deferred close */
  sio_client_t *whead, *wtail; /* clients with no namespace yet, by deadline */
  sio_nsp_t *nsps;
  sio_ack_t *acks;       /* every ack entry alive */
  sio_group_t *groups;   /* every broadcast awaiting acks */
  plume__json_enc_t enc; /* reused for every packet sent */
  plume__buf_t buf;      /* reused for control packets */
  uint32_t epoch;        /* broadcast marks */
  uint32_t nclients;
  int connect_timeout; /* ms; 0: none */
  int max_depth, max_attachments;
  int connect_ref, event_ref, disconnect_ref; /* the Lua handlers */
  int apply_ref; /* apply(fn, t): fn(unpack(t, 1, t.n)) */
  int origins_ref, request_ref, id_ref; /* Engine.IO hooks, or LUA_NOREF */
  int close_requested;                  /* io:close(): done from the timer */
  int serve_client;
  size_t path_len;
  char *client_dir; /* socket.io-client's dist/, or NULL */
  char etag[72];
  plume__shared_t *files[NFILES]; /* loaded on first request */
};

static void on_server_timer(uv_timer_t *t);
static void on_ack_timer(uv_timer_t *t);
static void on_group_timer(uv_timer_t *t);

/* ------------------------------------------------------------------------- */
/* {====== Rooms */

static uint32_t hash_name(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

static sio_room_t *room_find(const sio_nsp_t *nsp, const char *name, size_t n) {
  uint32_t h;
  sio_room_t *r;
  if (nsp->nbuckets == 0)
    return NULL;
  h = hash_name(name, n);
  for (r = nsp->buckets[h & (nsp->nbuckets - 1)]; r != NULL; r = r->next)
    if (r->hash == h && r->len == n && memcmp(r->name, name, n) == 0)
      return r;
  return NULL;
}

/* Keeps the table at most one room per bucket on average. */
static int rooms_grow(sio_nsp_t *nsp) {
  uint32_t nb = nsp->nbuckets ? nsp->nbuckets * 2 : 16, i;
  sio_room_t **b = calloc(nb, sizeof(*b)), *r, *next;
  if (b == NULL)
    return UV_ENOMEM;
  for (i = 0; i < nsp->nbuckets; i++)
    for (r = nsp->buckets[i]; r != NULL; r = next) {
      next = r->next;
      r->next = b[r->hash & (nb - 1)];
      b[r->hash & (nb - 1)] = r;
    }
  free(nsp->buckets);
  nsp->buckets = b;
  nsp->nbuckets = nb;
  return 0;
}

static sio_room_t *room_get(sio_nsp_t *nsp, const char *name, size_t n) {
  sio_room_t *r = room_find(nsp, name, n);
  uint32_t h;
  if (r != NULL)
    return r;
  if (nsp->nrooms >= nsp->nbuckets && rooms_grow(nsp) != 0)
    return NULL;
  r = calloc(1, sizeof(*r) + n + 1);
  if (r == NULL)
    return NULL;
  h = hash_name(name, n);
  r->hash = h;
  r->len = n;
  memcpy(r->name, name, n);
  r->next = nsp->buckets[h & (nsp->nbuckets - 1)];
  nsp->buckets[h & (nsp->nbuckets - 1)] = r;
  nsp->nrooms++;
  return r;
}

static void room_drop(sio_nsp_t *nsp, sio_room_t *r) {
  sio_room_t **link = &nsp->buckets[r->hash & (nsp->nbuckets - 1)];
  while (*link != r)
    link = &(*link)->next;
  *link = r->next;
  nsp->nrooms--;
  free(r->members);
  free(r);
}

/* Adds sock to room name. Returns 1 when it joined, 0 when already in, or
** UV_ENOMEM. */
static int room_join(sio_socket_t *sock, const char *name, size_t n) {
  sio_room_t *r;
  uint32_t i;
  if (sock->nsp == NULL)
    return 0;
  r = room_find(sock->nsp, name, n);
  if (r != NULL)
    for (i = 0; i < sock->nrooms; i++)
      if (sock->rooms[i].room == r)
        return 0;
  if (sock->nrooms == sock->rooms_cap) {
    uint32_t cap = sock->rooms_cap ? sock->rooms_cap * 2 : 2;
    joined_t *j = realloc(sock->rooms, cap * sizeof(*j));
    if (j == NULL)
      return UV_ENOMEM;
    sock->rooms = j;
    sock->rooms_cap = cap;
  }
  if (r == NULL && (r = room_get(sock->nsp, name, n)) == NULL)
    return UV_ENOMEM;
  if (r->n == r->cap) {
    uint32_t cap = r->cap ? r->cap * 2 : 4;
    member_t *m = realloc(r->members, cap * sizeof(*m));
    if (m == NULL) {
      if (r->n == 0)
        room_drop(sock->nsp, r);
      return UV_ENOMEM;
    }
    r->members = m;
    r->cap = cap;
  }
  r->members[r->n].sock = sock;
  r->members[r->n].slot = sock->nrooms;
  sock->rooms[sock->nrooms].room = r;
  sock->rooms[sock->nrooms].idx = r->n;
  r->n++;
  sock->nrooms++;
  return 1;
}

/* Removes sock from the room at slot k of its list (swap-remove on both
** sides). */
static void room_leave_at(sio_socket_t *sock, uint32_t k) {
  sio_room_t *r = sock->rooms[k].room;
  uint32_t idx = sock->rooms[k].idx, last;
  last = --r->n;
  if (idx != last) {
    r->members[idx] = r->members[last];
    r->members[idx].sock->rooms[r->members[idx].slot].idx = idx;
  }
  last = --sock->nrooms;
  if (k != last) {
    sock->rooms[k] = sock->rooms[last];
    sock->rooms[k].room->members[sock->rooms[k].idx].slot = k;
  }
  if (r->n == 0)
    room_drop(sock->nsp, r);
}

static int room_leave(sio_socket_t *sock, const char *name, size_t n) {
  uint32_t k;
  for (k = 0; k < sock->nrooms; k++) {
    sio_room_t *r = sock->rooms[k].room;
    if (r->len == n && memcmp(r->name, name, n) == 0) {
      room_leave_at(sock, k);
      return 1;
    }
  }
  return 0;
}

static void room_leave_all(sio_socket_t *sock) {
  while (sock->nrooms > 0)
    room_leave_at(sock, sock->nrooms - 1);
}

/* A fresh broadcast epoch: every socket's mark differs from it. */
static uint32_t next_epoch(sio_server_t *srv) {
  if (++srv->epoch == 0)
    ++srv->epoch;
  return srv->epoch;
}

/* Marks the members of every room named in the array at index t (nil: none)
** with epoch. */
static void mark_rooms(lua_State *L, int t, sio_nsp_t *nsp, uint32_t epoch) {
  lua_Integer i, n;
  if (lua_isnoneornil(L, t))
    return;
  n = (lua_Integer)lua_rawlen(L, t);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *name;
    sio_room_t *r;
    uint32_t k;
    lua_rawgeti(L, t, i); /* name (the table keeps it alive) */
    name = lua_tolstring(L, -1, &len);
    r = name != NULL ? room_find(nsp, name, len) : NULL;
    lua_pop(L, 1);
    for (k = 0; r != NULL && k < r->n; k++)
      r->members[k].sock->mark = epoch;
  }
}

typedef void (*visit_fn)(sio_socket_t *sock, void *ud);

/*
** Visits every socket of nsp in one of the rooms named in the array at index
** rooms (every connected socket when it is nil or empty) and in none of the
** rooms named at index except, once each. fn must not change rooms.
*/
static void visit(lua_State *L, sio_nsp_t *nsp, int rooms, int except,
                  visit_fn fn, void *ud) {
  uint32_t epoch = next_epoch(nsp->srv), k;
  if (!lua_isnoneornil(L, rooms))
    luaL_checktype(L, rooms, LUA_TTABLE);
  if (!lua_isnoneornil(L, except))
    luaL_checktype(L, except, LUA_TTABLE);
  lua_Integer i, n = lua_isnoneornil(L, rooms) ? 0 : lua_rawlen(L, rooms);
  sio_socket_t *sock, *next;
  mark_rooms(L, except, nsp, epoch);
  if (n == 0) {
    for (sock = nsp->head; sock != NULL; sock = next) {
      next = sock->next;
      if (sock->mark != epoch)
        fn(sock, ud);
    }
    return;
  }
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *name;
    sio_room_t *r;
    lua_rawgeti(L, rooms, i); /* name (the table keeps it alive) */
    name = lua_tolstring(L, -1, &len);
    r = name != NULL ? room_find(nsp, name, len) : NULL;
    lua_pop(L, 1);
    for (k = 0; r != NULL && k < r->n; k++) {
      sock = r->members[k].sock;
      if (sock->mark != epoch) {
        sock->mark = epoch;
        fn(sock, ud);
      }
    }
  }
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Output: packets encoded once */

/* A packet being sent: encoded once, the same bytes for every recipient. */
typedef struct out_s {
  plume__shared_t *text; /* "4" + the Socket.IO packet */
  plume__shared_t *att[MAX_OUT_ATT];
  int natt;
} out_t;

static void out_free(out_t *o) {
  int i;
  if (o->text != NULL)
    plume__shared_unref(o->text);
  for (i = 0; i < o->natt; i++)
    plume__shared_unref(o->att[i]);
  o->text = NULL;
  o->natt = 0;
}

/* Lets the shared encoder go back to a small size after a large packet. */
static void enc_trim(sio_server_t *srv) {
  if (srv->enc.out.cap > KEEP_BYTES) {
    int depth = srv->enc.max_depth;
    plume__json_enc_free(&srv->enc);
    plume__json_enc_init(&srv->enc, depth);
  }
}

/*
** Encodes the n values from stack index first (an event's name and arguments,
** or an ack's arguments) as a packet of type on nsp with ack id (-1: none),
** binaries as attachments. Returns 0, or -1 with the reason pushed on L (a
** value that cannot be serialised, OOM) and o empty. Raises nothing.
*/
static int out_build(lua_State *L, sio_server_t *srv, int type,
                     plume_slice_t nsp, int64_t id, int first, int n,
                     out_t *o) {
  plume__sio_packet_t pkt;
  int i, r;
  memset(o, 0, sizeof(*o));
  memset(&pkt, 0, sizeof(pkt));
  pkt.type = type;
  pkt.nsp = nsp;
  pkt.id = id;
  srv->enc.max_attachments = srv->max_attachments;
  r = plume__sio_encode_args(L, first, n, &pkt, &srv->enc);
  if (r != 0) {
    lua_pushstring(L, r == UV_ENOMEM ? "not enough memory" : srv->enc.error);
    enc_trim(srv);
    return -1;
  }
  o->text = plume__sio_encode_shared(&pkt, 1);
  for (i = 0; o->text != NULL && i < srv->enc.natt; i++) {
    if ((o->att[i] = plume__shared_new(srv->enc.att[i].p, srv->enc.att[i].n)) ==
        NULL)
      break;
    o->natt++;
  }
  enc_trim(srv);
  if (o->text == NULL || o->natt != srv->enc.natt) {
    out_free(o);
    lua_pushliteral(L, "not enough memory");
    return -1;
  }
  return 0;
}

/* out_build, raising its error. */
static void out_encode(lua_State *L, sio_server_t *srv, int type,
                       plume_slice_t nsp, int64_t id, int first, int n,
                       out_t *o) {
  if (out_build(L, srv, type, nsp, id, first, n, o) != 0)
    lua_error(L);
}

/* Queues the packet and its attachments on a session. Returns 0 or an error
** (the session is closed or full). */
static int out_send(plume__eio_session_t *s, const out_t *o) {
  int i, err;
  if (s == NULL)
    return PLUME_ECLOSED;
  err = plume__eio_send_shared(s, 0, o->text);
  for (i = 0; err == 0 && i < o->natt; i++)
    err = plume__eio_send_shared(s, 1, o->att[i]);
  return err;
}

static plume_slice_t nsp_slice(const sio_socket_t *sock) {
  plume_slice_t n;
  n.p = sock->name;
  n.n = sock->name_len;
  return n;
}

/* Sends a control packet the server writes itself (CONNECT, CONNECT_ERROR,
** DISCONNECT) from srv->buf. */
static void send_buf(sio_client_t *cl) {
  if (cl->s != NULL)
    plume__eio_send(cl->s, 0, cl->srv->buf.p, cl->srv->buf.len);
  cl->srv->buf.len = 0;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Acks from server to client */

static void ack_closed(uv_handle_t *h) {
  free(h);
}

/* Unlinks a from its socket (if any). */
static void ack_detach(sio_ack_t *a) {
  sio_ack_t **link;
  if (a->sock == NULL)
    return;
  for (link = &a->sock->acks; *link != NULL; link = &(*link)->next)
    if (*link == a) {
      *link = a->next;
      a->sock->nacks--;
      break;
    }
  a->sock = NULL;
  a->next = NULL;
}

/* Forgets an ack entry: the callback's ref goes, the memory in the timer's
** close callback. */
static void ack_free(sio_ack_t *a, lua_State *L) {
  sio_server_t *srv = a->srv;
  ack_detach(a);
  if (a->group != NULL)
    a->group->members[a->gidx] = NULL;
  if (a->sprev != NULL)
    a->sprev->snext = a->snext;
  else
    srv->acks = a->snext;
  if (a->snext != NULL)
    a->snext->sprev = a->sprev;
  if (L != NULL && a->fn_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, a->fn_ref);
  a->fn_ref = LUA_NOREF;
  if (!a->has_timer) {
    free(a);
    return;
  }
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, ack_closed);
}

static void on_ack_timer(uv_timer_t *t);

/* Starts the entry's timer: ms from now, with the failure it will report. */
static void ack_arm(sio_ack_t *a, uint64_t ms, const char *error) {
  if (!a->has_timer) {
    uv_timer_init(a->srv->p->loop, &a->timer);
    a->has_timer = 1;
  }
  a->error = error;
  uv_timer_start(&a->timer, on_ack_timer, ms, 0);
}

static sio_ack_t *ack_new(sio_server_t *srv, sio_socket_t *sock, int64_t id) {
  sio_ack_t *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return NULL;
  a->srv = srv;
  a->id = id;
  a->fn_ref = LUA_NOREF;
  a->snext = srv->acks;
  if (srv->acks != NULL)
    srv->acks->sprev = a;
  srv->acks = a;
  if (sock != NULL) {
    a->sock = sock;
    a->next = sock->acks;
    sock->acks = a;
    sock->nacks++;
  }
  return a;
}

/* Reports a failure (a timeout, a disconnect) from a timer callback: the
** waiting task resumes with err, the callback is called with err. */
static void ack_report(sio_ack_t *a, const char *err) {
  sio_server_t *srv = a->srv;
  lua_State *L = srv->L, *co;
  plume__task_ref_t task = a->task;
  int fn = a->fn_ref;
  a->fn_ref = LUA_NOREF; /* the task takes the function */
  a->task.co = NULL;
  ack_free(a, NULL);
  if (L == NULL)
    return;
  if (task.co != NULL) {
    if ((co = plume__task_waiter(srv->p, task)) != NULL) {
      lua_pushstring(co, err);
      plume__task_resume(srv->p, task, 1);
    }
  } else if (fn != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn); /* fn */
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
    lua_pushstring(L, err); /* fn err */
    plume__task_start(srv->p, 1);
  }
}

static void on_ack_timer(uv_timer_t *t) {
  sio_ack_t *a = plume__container_of(t, sio_ack_t, timer);
  ack_report(a, a->error);
}

static void group_closed(uv_handle_t *h) {
  sio_group_t *g = plume__container_of((uv_timer_t *)h, sio_group_t, timer);
  free(g->members);
  free(g);
}

/* Forgets a group: its members, its refs; the memory in the close callback. */
static void group_free(sio_group_t *g, lua_State *L) {
  sio_server_t *srv = g->srv;
  uint32_t i;
  g->done = 1;
  for (i = 0; i < g->n; i++)
    if (g->members[i] != NULL)
      ack_free(g->members[i], L);
  if (g->prev != NULL)
    g->prev->next = g->next;
  else
    srv->groups = g->next;
  if (g->next != NULL)
    g->next->prev = g->prev;
  if (L != NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, g->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, g->list_ref);
  }
  g->fn_ref = g->list_ref = LUA_NOREF;
  uv_timer_stop(&g->timer);
  uv_close((uv_handle_t *)&g->timer, group_closed);
}

/* The one answer of a broadcast: (err, responses) to the callback or to the
** waiting task. Called from the loop (a timer, an ACK), never from Lua. */
static void group_report(sio_group_t *g, const char *err) {
  sio_server_t *srv = g->srv;
  lua_State *L = srv->L, *co;
  plume__task_ref_t task = g->task;
  int fn = g->fn_ref, list = g->list_ref;
  if (g->done)
    return;
  g->fn_ref = g->list_ref = LUA_NOREF; /* handed over below */
  g->task.co = NULL;
  group_free(g, L);
  if (L == NULL)
    return;
  if (fn != LUA_NOREF)
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn); /* fn */
  if (err != NULL)
    lua_pushstring(L, err); /* [fn] err */
  else
    lua_pushnil(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, list); /* [fn] err responses */
  luaL_unref(L, LUA_REGISTRYINDEX, list);
  if (fn != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
    plume__task_start(srv->p, 2);
  } else if ((co = plume__task_waiter(srv->p, task)) != NULL &&
             lua_checkstack(co, 2)) {
    lua_xmove(L, co, 2);
    plume__task_resume(srv->p, task, 2);
  } else {
    lua_pop(L, 2);
  }
}

static void on_group_timer(uv_timer_t *t) {
  sio_group_t *g = plume__container_of(t, sio_group_t, timer);
  group_report(g, g->error);
}

/* Fails every ack of a socket that is going away: tasks and (err, ...)
** callbacks hear "disconnected" on a later turn, plain callbacks are dropped
** (socket.io never calls them either). */
static void acks_fail(sio_socket_t *sock, lua_State *L) {
  while (sock->acks != NULL) {
    sio_ack_t *a = sock->acks;
    sio_group_t *g = a->group;
    ack_detach(a);
    if (g != NULL) { /* the broadcast answers without this one */
      ack_free(a, L);
      if (--g->pending == 0 && !g->done) {
        g->error = NULL;
        uv_timer_start(&g->timer, on_group_timer, 0, 0);
      }
    } else if (L != NULL && (a->task.co != NULL || a->err_first)) {
      ack_arm(a, 0, "disconnected");
    } else {
      ack_free(a, L);
    }
  }
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Sockets and clients */

/* Pushes the Lua socket of sock (its box's uservalue; nil before bind). */
static void push_socket(lua_State *L, const sio_socket_t *sock) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, sock->box_ref); /* box */
  lua_getiuservalue(L, -1, 1);                      /* box socket */
  lua_remove(L, -2);                                /* socket */
}

static sio_socket_t *find_socket(const sio_client_t *cl, const char *name,
                                 size_t n) {
  uint8_t i;
  for (i = 0; i < cl->nsocks; i++)
    if (cl->socks[i]->name_len == n && memcmp(cl->socks[i]->name, name, n) == 0)
      return cl->socks[i];
  return NULL;
}

/* Leaves the connect-timeout list. */
static void unwait(sio_client_t *cl) {
  sio_server_t *srv = cl->srv;
  if (!cl->waiting)
    return;
  if (cl->wprev != NULL)
    cl->wprev->wnext = cl->wnext;
  else
    srv->whead = cl->wnext;
  if (cl->wnext != NULL)
    cl->wnext->wprev = cl->wprev;
  else
    srv->wtail = cl->wprev;
  cl->wprev = cl->wnext = NULL;
  cl->waiting = 0;
}

/*
** Frees a socket: it leaves its rooms and namespace, its acks fail, its box
** goes dead and is unpinned. L (may be NULL once Lua is closing) is any thread
** of the state.
*/
static void socket_free(sio_socket_t *sock, lua_State *L) {
  sio_client_t *cl = sock->client;
  uint8_t i;
  room_leave_all(sock);
  if (sock->state == SOCK_CONNECTED && sock->nsp != NULL) {
    if (sock->prev != NULL)
      sock->prev->next = sock->next;
    else
      sock->nsp->head = sock->next;
    if (sock->next != NULL)
      sock->next->prev = sock->prev;
    sock->nsp->nsockets--;
  }
  acks_fail(sock, L);
  if (sock->nsp != NULL)
    sock->nsp->nbound--;
  for (i = 0; i < cl->nsocks; i++)
    if (cl->socks[i] == sock) {
      cl->socks[i] = cl->socks[--cl->nsocks];
      break;
    }
  sock->box->ptr = NULL;
  if (L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, sock->box_ref);
  free(sock->rooms);
  free(sock);
}

/* Makes the socket id: v4 a fresh random one; v3 the Engine.IO sid, "/nsp#sid"
** away from "/" (protocol.md §7). */
static sio_socket_t *socket_new(sio_client_t *cl, const char *name, size_t n) {
  const char *sid = plume__eio_sid(cl->s);
  char rid[21];
  size_t id_len;
  sio_socket_t *sock;
  int root = n == 1 && name[0] == '/';
  if (cl->nsocks == cl->socks_cap) {
    uint8_t cap = cl->socks_cap ? (uint8_t)(cl->socks_cap * 2) : 1;
    sio_socket_t **s = realloc(cl->socks, cap * sizeof(*s));
    if (s == NULL)
      return NULL;
    cl->socks = s;
    cl->socks_cap = cap;
  }
  if (cl->proto == 3)
    id_len = root ? strlen(sid) : n + 1 + strlen(sid);
  else if (plume__random_id(rid) == 0)
    id_len = 20;
  else
    return NULL;
  sock = calloc(1, sizeof(*sock) + id_len + 1 + n + 1);
  if (sock == NULL)
    return NULL;
  sock->client = cl;
  if (cl->proto == 3 && root)
    memcpy(sock->id, sid, id_len);
  else if (cl->proto == 3)
    snprintf(sock->id, id_len + 1, "%.*s#%s", (int)n, name, sid);
  else
    memcpy(sock->id, rid, 20);
  sock->id_len = id_len;
  sock->name = sock->id + id_len + 1;
  memcpy(sock->name, name, n);
  sock->name_len = n;
  cl->socks[cl->nsocks++] = sock;
  return sock;
}

/* Closes the whole connection after a protocol violation (§3.4): every socket
** hears "forced close" when the session reports the close. */
static void client_violation(sio_client_t *cl, const char *why) {
  plume__log(cl->srv->p, PLUME__LOG_DEBUG, "socketio",
             "session %s: %s, closing", plume__eio_sid(cl->s), why);
  plume__eio_close(cl->s, "forced close");
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Payloads pushed under protection */

/* What push_protected pushes: a packet's payload, or a v3 query as auth. */
typedef struct push_s {
  const plume__sio_packet_t *pkt;
  const plume_slice_t *att;
  const char *query; /* v3 CONNECT: "token=abc" (auth), or NULL */
  size_t query_n;
  int depth, spread;
  int object; /* push {} (an object) when the payload is empty */
  const char *err;
} push_t;

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Pushes p percent-decoded ('+' is a space), as URLSearchParams reads it. */
static void push_decoded(lua_State *L, const char *p, size_t n) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '+')
      ch = ' ';
    else if (ch == '%' && i + 2 < n && hex_value(p[i + 1]) >= 0 &&
             hex_value(p[i + 2]) >= 0) {
      ch = (char)(hex_value(p[i + 1]) * 16 + hex_value(p[i + 2]));
      i += 2;
    }
    luaL_addchar(&b, ch);
  }
  luaL_pushresult(&b);
}

/* Pushes a query string as an object of strings (the first value of a name
** wins). */
static void push_query(lua_State *L, const char *q, size_t n) {
  size_t i = 0;
  lua_newtable(L); /* t */
  plume__json_push_mt(L, 1);
  lua_setmetatable(L, -2);
  while (i < n) {
    size_t start = i, eq, end;
    while (i < n && q[i] != '&')
      i++;
    end = i++;
    if (end == start)
      continue;
    for (eq = start; eq < end && q[eq] != '=';)
      eq++;
    push_decoded(L, q + start, eq - start); /* t k */
    if (lua_rawget(L, -2) != LUA_TNIL) {    /* t t[k] */
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    push_decoded(L, q + start, eq - start); /* t k */
    push_decoded(L, q + (eq < end ? eq + 1 : end),
                 eq < end ? end - eq - 1 : 0); /* t k v */
    lua_rawset(L, -3);                         /* t[k] = v */
  }
}

static int push_k(lua_State *L) {
  push_t *x = lua_touserdata(L, 1);
  int n = 0;
  lua_pop(L, 1);
  if (x->query != NULL) {
    push_query(L, x->query, x->query_n);
    return 1;
  }
  if (x->pkt != NULL) {
    n = plume__sio_push_data(L, x->pkt, x->att, x->depth, x->spread, &x->err);
    if (n < 0)
      return 0;
  }
  if (n == 0 && x->object) {
    lua_newtable(L);
    plume__json_push_mt(L, 1);
    lua_setmetatable(L, -2);
    n = 1;
  }
  return n;
}

/* Pushes what x describes on L. Returns the count, or -1 (nothing pushed) when
** the payload cannot become Lua values or Lua ran out of memory. */
static int push_protected(lua_State *L, push_t *x) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4))
    return -1;
  lua_pushcfunction(L, push_k);
  lua_pushlightuserdata(L, x);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    x->err = "not enough memory";
    lua_settop(L, top);
    return -1;
  }
  if (x->err != NULL && lua_gettop(L) == top)
    return -1;
  return lua_gettop(L) - top;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Packets from a client */

/*
** Starts the function under the nargs values on top of L as a task. A client
** decides how many arguments an event or an ack has: more than SPREAD_MAX go as
** one table that apply unpacks inside the task, where growing the stack for
** them counts against the memory cap (the bridge's glue is never capped).
*/
static void start_task(sio_server_t *srv, int nargs) {
  lua_State *L = srv->L;
  int base = lua_gettop(L) - nargs, i;
  if (nargs > SPREAD_MAX) {
    lua_createtable(L, nargs, 1); /* fn args... t */
    lua_insert(L, base + 1);      /* fn t args... */
    for (i = nargs; i >= 1; i--)
      lua_rawseti(L, base + 1, i); /* t[i] = args[i] */
    lua_pushinteger(L, nargs);
    lua_setfield(L, base + 1, "n");                    /* fn t */
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->apply_ref); /* fn t apply */
    lua_rotate(L, base, 1);                            /* apply fn t */
    nargs = 2;
  }
  plume__task_start(srv->p, nargs);
}

/* CONNECT (§4.1): a pending socket, then the Lua connect handler in a task. */
static void handle_connect(sio_client_t *cl, const plume__sio_packet_t *pkt) {
  sio_server_t *srv = cl->srv;
  lua_State *L = srv->L;
  const char *name = pkt->nsp.p, *q;
  size_t n = pkt->nsp.n, qn = 0;
  sio_socket_t *sock;
  push_t x;
  int top = lua_gettop(L), nargs;
  if (n == 0) {
    name = "/";
    n = 1;
  }
  q = NULL;
  if (cl->proto == 3 && (q = memchr(name, '?', n)) != NULL) {
    qn = n - (size_t)(q - name) - 1;
    n = (size_t)(q - name);
    q++;
  }
  if (n > MAX_NSP_NAME) {
    plume_slice_t ns = {name, n}, none = {NULL, 0};
    srv->buf.len = 0;
    plume__sio_encode_connect_error(&srv->buf, ns, "Invalid namespace", none,
                                    4);
    send_buf(cl);
    return;
  }
  if (find_socket(cl, name, n) != NULL) {
    client_violation(cl, "second CONNECT to a namespace");
    return;
  }
  if (cl->nsocks >= MAX_SOCKETS) {
    client_violation(cl, "too many namespaces");
    return;
  }
  if ((sock = socket_new(cl, name, n)) == NULL) {
    client_violation(cl, "out of memory");
    return;
  }
  sock->box = lua_newuserdatauv(L, sizeof(box_t), 1); /* box */
  sock->box->ptr = sock;
  luaL_setmetatable(L, SOCKET_MT);
  lua_pushvalue(L, -1);
  sock->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->connect_ref); /* fn */
  lua_rawgeti(L, LUA_REGISTRYINDEX, cl->box_ref);      /* fn client */
  lua_rawgeti(L, LUA_REGISTRYINDEX, sock->box_ref);    /* fn client box */
  lua_pushlstring(L, name, n);                         /* fn client box nsp */
  lua_pushlstring(L, sock->id, sock->id_len);          /* ... id */
  memset(&x, 0, sizeof(x));
  x.depth = srv->max_depth;
  x.object = 1;
  if (cl->proto == 3) {
    x.query = q != NULL ? q : "";
    x.query_n = qn;
  } else {
    x.pkt = pkt;
  }
  if (push_protected(L, &x) != 1) { /* ... auth */
    lua_settop(L, top);
    socket_free(sock, L);
    client_violation(cl, x.err != NULL ? x.err : "invalid auth payload");
    return;
  }
  nargs = lua_gettop(L) - top - 1;
  plume__task_start(srv->p, nargs);
}

/* EVENT (§4.2): the Lua event handler in a task, with the ack id or nil. */
static void handle_event(sio_client_t *cl, sio_socket_t *sock,
                         const plume__sio_packet_t *pkt,
                         const plume_slice_t *att) {
  sio_server_t *srv = cl->srv;
  lua_State *L = srv->L;
  int top = lua_gettop(L), n;
  push_t x;
  /* A client may not reach the server's own "error" listeners
  ** (CVE-2024-38355). */
  if (pkt->event.n > 0 && pkt->event.p[0] == '"' &&
      plume__json_string_eq(pkt->event, "error"))
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->event_ref); /* fn */
  push_socket(L, sock);                              /* fn socket */
  if (pkt->id >= 0)
    lua_pushinteger(L, (lua_Integer)pkt->id); /* fn socket id */
  else
    lua_pushnil(L);
  memset(&x, 0, sizeof(x));
  x.pkt = pkt;
  x.att = att;
  x.depth = srv->max_depth;
  x.spread = 1;
  n = push_protected(L, &x); /* fn socket id event args... */
  if (n < 1) {
    lua_settop(L, top);
    client_violation(cl, x.err != NULL ? x.err : "invalid event");
    return;
  }
  start_task(srv, 2 + n);
}

/* A broadcast member's ACK: its first argument (null when none) joins the
** responses; the last one answers the broadcast. */
static void group_answer(sio_client_t *cl, sio_ack_t *a,
                         const plume__sio_packet_t *pkt,
                         const plume_slice_t *att) {
  sio_group_t *g = a->group;
  lua_State *L = cl->srv->L;
  int top = lua_gettop(L), n;
  push_t x;
  ack_free(a, L);
  g->pending--;
  memset(&x, 0, sizeof(x));
  x.pkt = pkt;
  x.att = att;
  x.depth = cl->srv->max_depth;
  x.spread = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->list_ref); /* list */
  n = push_protected(L, &x);                      /* list args... */
  if (n < 0) {
    lua_settop(L, top);
    client_violation(cl, x.err != NULL ? x.err : "invalid ack");
  } else {
    if (n == 0)
      lua_pushlightuserdata(L, NULL); /* list null (plume.json.null) */
    lua_settop(L, top + 2);           /* list first */
    lua_rawseti(L, top + 1, (lua_Integer)++g->nresp);
    lua_settop(L, top);
  }
  if (g->pending == 0)
    group_report(g, NULL);
}

/* ACK: the awaited callback or task gets (nil, args...); unknown ids are
** ignored. */
static void handle_ack(sio_client_t *cl, sio_socket_t *sock,
                       const plume__sio_packet_t *pkt,
                       const plume_slice_t *att) {
  sio_server_t *srv = cl->srv;
  lua_State *L = srv->L;
  sio_ack_t *a;
  push_t x;
  int top = lua_gettop(L), n, fn, err_first;
  plume__task_ref_t task;
  lua_State *co;
  for (a = sock->acks; a != NULL && a->id != pkt->id; a = a->next)
    ;
  if (a == NULL)
    return;
  if (a->group != NULL) {
    group_answer(cl, a, pkt, att);
    return;
  }
  task = a->task;
  fn = a->fn_ref;
  err_first = a->err_first;
  a->fn_ref = LUA_NOREF;
  a->task.co = NULL;
  ack_free(a, L);
  if (fn != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn); /* fn */
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
  }
  if (err_first || task.co != NULL)
    lua_pushnil(L); /* [fn] nil */
  memset(&x, 0, sizeof(x));
  x.pkt = pkt;
  x.att = att;
  x.depth = srv->max_depth;
  x.spread = 1;
  n = push_protected(L, &x); /* [fn] [nil] args... */
  if (n < 0) {
    lua_settop(L, top);
    /* the task must not wait for ever */
    if ((co = plume__task_waiter(srv->p, task)) != NULL) {
      lua_pushstring(co, "invalid acknowledgement");
      plume__task_resume(srv->p, task, 1);
    }
    client_violation(cl, x.err != NULL ? x.err : "invalid ack");
    return;
  }
  n = lua_gettop(L) - top;
  if (task.co != NULL) {
    if ((co = plume__task_waiter(srv->p, task)) == NULL) {
      lua_settop(L, top); /* the task is gone */
      return;
    }
    if (!lua_checkstack(co, n)) {
      lua_settop(L, top);
      lua_pushliteral(co, "too many values");
      plume__task_resume(srv->p, task, 1);
      return;
    }
    lua_xmove(L, co, n);
    plume__task_resume(srv->p, task, n);
  } else if (fn != LUA_NOREF) {
    start_task(srv, n - 1);
  } else {
    lua_settop(L, top);
  }
}

/* DISCONNECT from the client: the socket goes, no reply (§4.3). */
static void handle_disconnect(sio_client_t *cl, sio_socket_t *sock) {
  sio_server_t *srv = cl->srv;
  lua_State *L = srv->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->disconnect_ref); /* fn */
  push_socket(L, sock);                                   /* fn socket */
  lua_pushliteral(L, "client namespace disconnect");      /* fn socket why */
  socket_free(sock, L);
  plume__task_start(srv->p, 2);
}

static void handle_packet(sio_client_t *cl) {
  const plume__sio_packet_t *pkt = &cl->dec.pkt;
  const char *name = pkt->nsp.p, *q;
  size_t n = pkt->nsp.n;
  sio_socket_t *sock;
  if (pkt->type == PLUME__SIO_CONNECT) {
    handle_connect(cl, pkt);
    return;
  }
  if (n == 0) {
    name = "/";
    n = 1;
  }
  if (cl->proto == 3 && (q = memchr(name, '?', n)) != NULL)
    n = (size_t)(q - name);
  sock = find_socket(cl, name, n);
  if (sock == NULL || sock->state != SOCK_CONNECTED) {
    client_violation(cl, "packet for a namespace not joined");
    return;
  }
  switch (pkt->type) {
  case PLUME__SIO_DISCONNECT:
    handle_disconnect(cl, sock);
    break;
  case PLUME__SIO_EVENT:
  case PLUME__SIO_BINARY_EVENT:
    handle_event(cl, sock, pkt, cl->dec.att);
    break;
  default: /* ACK, BINARY_ACK */
    handle_ack(cl, sock, pkt, cl->dec.att);
    break;
  }
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The Engine.IO handler */

/* The Engine.IO server under srv while this layer may free it: NULL after
** io:close(), and once plume_close freed every Engine.IO server left (it does
** so in one go, so an empty list during a shutdown means ours went too). */
static plume__eio_server_t *own_eio(sio_server_t *srv) {
  if (srv->p->closing && srv->p->eio_servers == NULL)
    srv->eio = NULL;
  return srv->eio;
}

static sio_server_t *server_of(plume__eio_session_t *s) {
  return plume__eio_server_ud(plume__eio_session_server(s));
}

static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

static void arm_server_timer(sio_server_t *srv) {
  uint64_t now = uv_now(srv->p->loop), at = 0;
  if (srv->whead != NULL)
    at = srv->whead->deadline;
  if (srv->close_requested)
    uv_timer_start(&srv->timer, on_server_timer, 0, 0);
  else if (at != 0)
    uv_timer_start(&srv->timer, on_server_timer, at > now ? at - now : 0, 0);
  else
    uv_timer_stop(&srv->timer);
}

static void on_open(plume__eio_session_t *s) {
  sio_server_t *srv = server_of(s);
  lua_State *L = srv->L;
  sio_client_t *cl;
  plume__sio_packet_t root;
  if (L == NULL || (cl = calloc(1, sizeof(*cl))) == NULL) {
    plume__eio_close(s, "forced close");
    return;
  }
  cl->srv = srv;
  cl->s = s;
  cl->proto = (uint8_t)plume__eio_protocol(s);
  cl->issued = wall_ms();
  plume__sio_decoder_init(&cl->dec, srv->max_attachments, srv->max_depth);
  cl->box = lua_newuserdatauv(L, sizeof(box_t), 0); /* box */
  cl->box->ptr = cl;
  luaL_setmetatable(L, CLIENT_MT);
  cl->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  plume__eio_set_ud(s, cl);
  srv->nclients++;
  if (srv->connect_timeout > 0) {
    cl->deadline = uv_now(srv->p->loop) + (uint64_t)srv->connect_timeout;
    cl->waiting = 1;
    cl->wprev = srv->wtail;
    if (srv->wtail != NULL)
      srv->wtail->wnext = cl;
    else
      srv->whead = cl;
    srv->wtail = cl;
    if (srv->whead == cl)
      arm_server_timer(srv);
  }
  if (cl->proto == 3) { /* v3 clients are in "/" at once (protocol.md §7) */
    memset(&root, 0, sizeof(root));
    root.type = PLUME__SIO_CONNECT;
    root.nsp.p = "/";
    root.nsp.n = 1;
    root.id = -1;
    handle_connect(cl, &root);
  }
}

static void on_message(plume__eio_session_t *s, int binary, const char *p,
                       size_t n) {
  sio_client_t *cl = plume__eio_get_ud(s);
  int r;
  if (cl == NULL || cl->srv->L == NULL)
    return;
  r = plume__sio_feed(&cl->dec, binary, p, n);
  if (r == PLUME__SIO_MORE)
    return;
  if (r < 0) {
    client_violation(cl,
                     cl->dec.error != NULL ? cl->dec.error : "invalid packet");
    return;
  }
  handle_packet(cl);
}

static void on_close(plume__eio_session_t *s, const char *reason) {
  sio_client_t *cl = plume__eio_get_ud(s);
  sio_server_t *srv;
  lua_State *L;
  if (cl == NULL)
    return;
  srv = cl->srv;
  L = srv->L;
  plume__eio_set_ud(s, NULL);
  cl->s = NULL;
  unwait(cl);
  while (cl->nsocks > 0) {
    sio_socket_t *sock = cl->socks[cl->nsocks - 1];
    if (L != NULL && sock->state == SOCK_CONNECTED) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, srv->disconnect_ref); /* fn */
      push_socket(L, sock);                                   /* fn socket */
      lua_pushstring(L, reason); /* fn socket why */
      socket_free(sock, L);
      plume__task_start(srv->p, 2);
    } else {
      socket_free(sock, L);
    }
  }
  plume__sio_decoder_free(&cl->dec);
  cl->box->ptr = NULL;
  if (L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, cl->box_ref);
  srv->nclients--;
  free(cl->socks);
  free(cl);
}

static const plume__eio_handler_t eio_handler = {on_open, on_message, on_close};

static void on_server_timer(uv_timer_t *t) {
  sio_server_t *srv = plume__container_of(t, sio_server_t, timer);
  uint64_t now = uv_now(srv->p->loop);
  while (srv->whead != NULL && srv->whead->deadline <= now) {
    sio_client_t *cl = srv->whead;
    unwait(cl);
    plume__log(srv->p, PLUME__LOG_DEBUG, "socketio",
               "session %s: no namespace joined within connectTimeout",
               plume__eio_sid(cl->s));
    plume__eio_close(cl->s, "forced close");
  }
  if (srv->close_requested && own_eio(srv) != NULL) {
    plume__eio_server_t *eio = srv->eio;
    srv->eio = NULL;
    plume__eio_server_free(eio);
  }
  srv->close_requested = 0;
  arm_server_timer(srv);
  plume__flush_all(srv->p);
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== The client bundle (serveClient) */

/* Reads a whole file into a shared block (at most once per file: the bundle is
** a few hundred kilobytes, read on its first request and kept). */
static plume__shared_t *load_file(const char *dir, const char *name) {
  char path[2048];
  plume__shared_t *sh = NULL;
  FILE *f;
  long n;
  if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
    return NULL;
  if ((f = fopen(path, "rb")) == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= MAX_FILE &&
      fseek(f, 0, SEEK_SET) == 0 && (sh = plume__shared_alloc((size_t)n)) &&
      fread(sh->data, 1, (size_t)n, f) != (size_t)n) {
    plume__shared_unref(sh);
    sh = NULL;
  }
  fclose(f);
  return sh;
}

static void answer_404(plume__conn_t *c) {
  plume__http_respond(c, 404, "text/plain; charset=utf-8", NULL, "Not Found\n",
                      10);
}

/* The serve hook of the Engine.IO server: <path>socket.io.js and friends, with
** an ETag from the package version (as socket.io does). */
static int serve_client(void *ud, plume__conn_t *c, plume__http_req_t *r) {
  sio_server_t *srv = ud;
  const char *rest = r->path.p + srv->path_len;
  size_t n = r->path.n - srv->path_len;
  plume_slice_t inm;
  char extra[160];
  int i;
  if (!srv->serve_client || (r->method != HTTP_GET && r->method != HTTP_HEAD))
    return 0;
  for (i = 0; i < NFILES; i++)
    if (strlen(client_files[i]) == n && memcmp(client_files[i], rest, n) == 0)
      break;
  if (i == NFILES)
    return 0;
  if (srv->client_dir == NULL) {
    answer_404(c);
    return 1;
  }
  snprintf(extra, sizeof(extra),
           "ETag: %s\r\nCache-Control: public, max-age=0\r\n", srv->etag);
  inm = plume__http_header(r, "if-none-match");
  if (inm.p != NULL && srv->etag[0] != '\0' &&
      ((inm.n == strlen(srv->etag) && memcmp(inm.p, srv->etag, inm.n) == 0) ||
       (inm.n == strlen(srv->etag) + 2 && memcmp(inm.p, "W/", 2) == 0 &&
        memcmp(inm.p + 2, srv->etag, inm.n - 2) == 0))) {
    plume__http_respond(c, 304, NULL, extra, NULL, 0);
    return 1;
  }
  if (srv->files[i] == NULL &&
      (srv->files[i] = load_file(srv->client_dir, client_files[i])) == NULL) {
    answer_404(c);
    return 1;
  }
  plume__http_respond_shared(c, 200,
                             i >= 3 ? "application/json; charset=utf-8"
                                    : "application/javascript; charset=utf-8",
                             extra, srv->files[i]);
  return 1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== Engine.IO hooks that call Lua (synchronously, on the main thread) */

static int hook_origin(void *ud, const char *origin, size_t n) {
  sio_server_t *srv = ud;
  lua_State *L = srv->L;
  int ok;
  if (L == NULL || srv->origins_ref == LUA_NOREF)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->origins_ref); /* fn */
  lua_pushlstring(L, origin, n);                       /* fn origin */
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    plume__log(srv->p, PLUME__LOG_ERROR, "socketio", "cors origin: %s",
               lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* Pushes {method, url, headers (lower-case names), remoteAddress} for r. */
static void push_request(lua_State *L, const plume__http_req_t *r,
                         const char *address) {
  uint32_t i;
  lua_createtable(L, 0, 4); /* req */
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)r->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, r->url.p, r->url.n);
  lua_setfield(L, -2, "url");
  if (address != NULL) {
    lua_pushstring(L, address);
    lua_setfield(L, -2, "remoteAddress");
  }
  lua_createtable(L, 0, (int)r->nheaders); /* req headers */
  plume__json_push_mt(L, 1);
  lua_setmetatable(L, -2);
  for (i = 0; i < r->nheaders; i++) {
    luaL_Buffer b;
    size_t k;
    luaL_buffinit(L, &b);
    for (k = 0; k < r->headers[i].name.n; k++) {
      char ch = r->headers[i].name.p[k];
      luaL_addchar(&b, ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch);
    }
    luaL_pushresult(&b);                    /* req headers name */
    lua_pushvalue(L, -1);                   /* req headers name name */
    if (lua_rawget(L, -3) == LUA_TSTRING) { /* req headers name old */
      lua_pushliteral(L, ", ");             /* repeated: joined */
      lua_pushlstring(L, r->headers[i].value.p, r->headers[i].value.n);
      lua_concat(L, 3); /* req headers name joined */
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, r->headers[i].value.p, r->headers[i].value.n);
    }
    lua_rawset(L, -3); /* headers[name] = value */
  }
  lua_setfield(L, -2, "headers"); /* req */
}

static int request_k(lua_State *L) {
  const plume__http_req_t *r = lua_touserdata(L, 2);
  lua_settop(L, 1); /* fn */
  push_request(L, r, NULL);
  lua_call(L, 1, 2);
  return 2;
}

static const char *hook_request(void *ud, plume__conn_t *c,
                                const plume__http_req_t *r) {
  static char reason[256];
  sio_server_t *srv = ud;
  lua_State *L = srv->L;
  const char *result = NULL;
  if (L == NULL || srv->request_ref == LUA_NOREF)
    return NULL;
  lua_pushcfunction(L, request_k);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->request_ref);
  lua_pushlightuserdata(L, (void *)r);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    plume__log(srv->p, PLUME__LOG_ERROR, "socketio", "allowRequest: %s",
               lua_tostring(L, -1));
    lua_pop(L, 1);
    return "Forbidden";
  }
  if (!lua_toboolean(L, -2)) { /* ok message */
    snprintf(reason, sizeof(reason), "%s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "Forbidden");
    result = reason;
  }
  lua_pop(L, 2);
  return result;
}

/* engine.generateId when set from Lua, else a fresh random id. */
static int hook_id(void *ud, char *out, size_t len) {
  sio_server_t *srv = ud;
  lua_State *L = srv->L;
  const char *id;
  size_t n;
  int err = -1;
  if (L == NULL || srv->id_ref == LUA_NOREF)
    return len > 20 ? plume__random_id(out) : -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->id_ref);
  if (lua_pcall(L, 0, 1, 0) == LUA_OK && (id = lua_tolstring(L, -1, &n)) &&
      n > 0 && n < len) {
    memcpy(out, id, n + 1);
    err = 0;
  } else {
    plume__log(srv->p, PLUME__LOG_ERROR, "socketio",
               "generateId must return a non-empty string shorter than %zu",
               len);
  }
  lua_pop(L, 1);
  return err;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== plume.core functions: the server and namespaces */

static sio_server_t *check_server(lua_State *L, int idx) {
  box_t *b = luaL_checkudata(L, idx, SERVER_MT);
  if (b->ptr == NULL)
    luaL_argerror(L, idx, "the server is closed");
  return b->ptr;
}

static sio_nsp_t *check_nsp(lua_State *L, int idx) {
  box_t *b = luaL_checkudata(L, idx, NSP_MT);
  if (b->ptr == NULL)
    luaL_argerror(L, idx, "the namespace is gone");
  return b->ptr;
}

static sio_socket_t *check_socket(lua_State *L, int idx) {
  box_t *b = luaL_checkudata(L, idx, SOCKET_MT);
  return b->ptr;
}

static sio_client_t *check_client(lua_State *L, int idx) {
  box_t *b = luaL_checkudata(L, idx, CLIENT_MT);
  return b->ptr;
}

static int push_closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static void nsp_free(sio_nsp_t *nsp) {
  uint32_t i;
  for (i = 0; i < nsp->nbuckets; i++)
    while (nsp->buckets[i] != NULL) {
      sio_room_t *r = nsp->buckets[i];
      nsp->buckets[i] = r->next;
      free(r->members);
      free(r);
    }
  free(nsp->buckets);
  if (nsp->box != NULL)
    nsp->box->ptr = NULL;
  free(nsp);
}

static void server_closed_cb(uv_handle_t *h) {
  sio_server_t *srv = plume__container_of((uv_timer_t *)h, sio_server_t, timer);
  int i;
  for (i = 0; i < NFILES; i++)
    if (srv->files[i] != NULL)
      plume__shared_unref(srv->files[i]);
  free(srv->client_dir);
  free(srv);
}

/* The server's __gc (lua_close): sessions close without Lua, then everything
** is freed; the memory goes in the timer's close callback. */
static int server_gc(lua_State *L) {
  box_t *b = luaL_checkudata(L, 1, SERVER_MT);
  sio_server_t *srv = b->ptr;
  sio_nsp_t *nsp;
  if (srv == NULL)
    return 0;
  b->ptr = NULL;
  srv->L = NULL; /* from here on nothing calls Lua */
  if (own_eio(srv) != NULL) {
    plume__eio_server_t *eio = srv->eio;
    srv->eio = NULL;
    plume__eio_server_free(eio);
  }
  while (srv->groups != NULL)
    group_free(srv->groups, NULL);
  while (srv->acks != NULL)
    ack_free(srv->acks, NULL);
  while ((nsp = srv->nsps) != NULL) {
    srv->nsps = nsp->next;
    nsp_free(nsp);
  }
  plume__json_enc_free(&srv->enc);
  plume__buf_free(&srv->buf);
  uv_timer_stop(&srv->timer);
  uv_close((uv_handle_t *)&srv->timer, server_closed_cb);
  return 0;
}

/*
** core.sio_attach(opts, handlers) -> server. opts: path, pingInterval,
** pingTimeout, upgradeTimeout, maxHttpBufferSize, transports, allowUpgrades,
** allowEIO3, cors, allowRequest(req) -> ok, msg, generateId() -> id,
** connectTimeout, serveClient, clientDir, clientVersion. handlers: connect,
** event, disconnect, apply (see lua/plume/socketio.lua).
*/
static int core_sio_attach(lua_State *L) {
  plume_t *p = plume__lua_instance(L);
  plume__eio_config_t cfg;
  plume__eio_lua_refs_t refs;
  sio_server_t *srv;
  box_t *b;
  int err;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (p == NULL)
    return luaL_error(L, "Socket.IO needs the Plume runtime");
  plume__eio_config_init(&cfg, &p->opts);
  memcpy(cfg.path, "/socket.io/", sizeof("/socket.io/"));
  b = lua_newuserdatauv(L, sizeof(*b), 0); /* opts handlers box */
  b->ptr = NULL;
  luaL_setmetatable(L, SERVER_MT);
  srv = calloc(1, sizeof(*srv));
  if (srv == NULL)
    return luaL_error(L, "not enough memory");
  srv->p = p;
  srv->L = p->L;
  srv->connect_ref = srv->event_ref = srv->disconnect_ref = LUA_NOREF;
  srv->apply_ref = LUA_NOREF;
  srv->origins_ref = srv->request_ref = srv->id_ref = LUA_NOREF;
  uv_timer_init(p->loop, &srv->timer);
  uv_unref((uv_handle_t *)&srv->timer);
  b->ptr = srv;                        /* from here on __gc frees it */
  plume__lua_finalize_at_close(L, -1); /* ... also in a borrowed state */
  plume__json_enc_init(&srv->enc, p->opts.max_json_depth);
  srv->max_depth = p->opts.max_json_depth;
  srv->max_attachments =
      p->opts.max_attachments > 0 && p->opts.max_attachments < MAX_OUT_ATT
          ? p->opts.max_attachments
          : MAX_OUT_ATT;
  srv->connect_timeout =
      plume__lua_opt_int(L, 1, "connectTimeout", p->opts.connect_timeout);
  srv->serve_client = plume__lua_opt_bool(L, 1, "serveClient", 1);
  if (lua_getfield(L, 1, "clientDir") == LUA_TSTRING)
    srv->client_dir = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "clientVersion") == LUA_TSTRING)
    snprintf(srv->etag, sizeof(srv->etag), "\"%.64s\"", lua_tostring(L, -1));
  lua_pop(L, 1);
  srv->connect_ref = plume__lua_opt_ref(L, 2, "connect");
  srv->event_ref = plume__lua_opt_ref(L, 2, "event");
  srv->disconnect_ref = plume__lua_opt_ref(L, 2, "disconnect");
  srv->apply_ref = plume__lua_opt_ref(L, 2, "apply");
  if (srv->connect_ref == LUA_NOREF || srv->event_ref == LUA_NOREF ||
      srv->disconnect_ref == LUA_NOREF || srv->apply_ref == LUA_NOREF)
    return luaL_argerror(L, 2,
                         "connect, event, disconnect and apply are required");
  plume__eio_config_from_lua(L, 1, &cfg, &refs);
  srv->origins_ref = refs.origin;
  srv->request_ref = refs.request;
  srv->id_ref = refs.id;
  if (srv->origins_ref != LUA_NOREF)
    cfg.allow_origin = hook_origin;
  if (srv->request_ref != LUA_NOREF)
    cfg.allow_request = hook_request;
  cfg.generate_id = hook_id;
  cfg.serve = serve_client;
  cfg.hook_ud = srv;
  srv->path_len = strlen(cfg.path);
  err = plume__eio_server_new(p, &cfg, &eio_handler, srv, &srv->eio);
  plume__eio_config_clear(&cfg);
  if (err != 0)
    return luaL_error(L, "cannot attach Socket.IO at %s: %s", cfg.path,
                      plume_strerror(err));
  /* The server lives as long as the Lua state. */
  lua_pushvalue(L, -1);
  luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* core.sio_namespace(server, name) -> namespace handle (a new C namespace). */
static int core_sio_namespace(lua_State *L) {
  sio_server_t *srv = check_server(L, 1);
  size_t n;
  const char *name = luaL_checklstring(L, 2, &n);
  sio_nsp_t *nsp = calloc(1, sizeof(*nsp) + n + 1);
  if (nsp == NULL)
    return luaL_error(L, "not enough memory");
  nsp->srv = srv;
  nsp->len = n;
  memcpy(nsp->name, name, n);
  nsp->next = srv->nsps;
  srv->nsps = nsp;
  nsp->box = lua_newuserdatauv(L, sizeof(box_t), 0); /* box */
  nsp->box->ptr = nsp;
  luaL_setmetatable(L, NSP_MT);
  return 1;
}

/* core.sio_namespace_free(namespace) -> freed: drops a namespace no socket is
** bound to (socket.io's cleanupEmptyChildNamespaces); false while one is. */
static int core_sio_namespace_free(lua_State *L) {
  sio_nsp_t *nsp = check_nsp(L, 1), **link;
  if (nsp->nbound > 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  for (link = &nsp->srv->nsps; *link != NULL; link = &(*link)->next)
    if (*link == nsp) {
      *link = nsp->next;
      break;
    }
  nsp_free(nsp);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.sio_set(server, "generateId" | "origins", fn | nil): replaces a hook
** (origins only when cors.origin was a function at attach). */
static int core_sio_set(lua_State *L) {
  sio_server_t *srv = check_server(L, 1);
  const char *what = luaL_checkstring(L, 2);
  int *ref;
  if (strcmp(what, "generateId") == 0)
    ref = &srv->id_ref;
  else if (strcmp(what, "origins") == 0)
    ref = &srv->origins_ref;
  else
    return luaL_argerror(L, 2, "generateId or origins");
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TFUNCTION);
  if (*ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 3)) {
    lua_pushvalue(L, 3);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* core.sio_close(server): every client goes ("server shutting down") on the
** next loop turn, and the path is released. */
static int core_sio_close(lua_State *L) {
  sio_server_t *srv = check_server(L, 1);
  if (own_eio(srv) != NULL) {
    srv->close_requested = 1;
    arm_server_timer(srv);
  }
  return 0;
}

/* core.sio_count(server) -> number of Engine.IO clients. */
static int core_sio_count(lua_State *L) {
  sio_server_t *srv = check_server(L, 1);
  lua_pushinteger(L, srv->nclients);
  return 1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== plume.core functions: clients */

/* core.sio_client_info(client) -> id, protocol, transport, address; or nil,
** "closed". */
static int core_sio_client_info(lua_State *L) {
  sio_client_t *cl = check_client(L, 1);
  if (cl == NULL || cl->s == NULL)
    return push_closed(L);
  lua_pushstring(L, plume__eio_sid(cl->s));
  lua_pushinteger(L, cl->proto);
  lua_pushstring(L, plume__eio_transport(cl->s) == PLUME__EIO_WEBSOCKET
                        ? "websocket"
                        : "polling");
  lua_pushstring(L, plume__eio_remote_address(cl->s));
  return 4;
}

/* core.sio_client_close(client): closes the Engine.IO session ("forced
** close"). */
static int core_sio_client_close(lua_State *L) {
  sio_client_t *cl = check_client(L, 1);
  if (cl != NULL && cl->s != NULL)
    plume__eio_close(cl->s, "forced close");
  return 0;
}

/* Formats a wall-clock time as JavaScript's Date.prototype.toString does. */
static void js_date(double ms, char *out, size_t len) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  char zone[16];
  localtime_r(&t, &tm);
  strftime(zone, sizeof(zone), "%z", &tm);
  strftime(out, len, "%a %b %d %Y %H:%M:%S GMT", &tm);
  snprintf(out + strlen(out), len - strlen(out), "%s", zone);
}

/* core.sio_handshake(client) -> {headers, query, address, url, time, issued,
** secure, xdomain}, or nil, "closed". */
static int core_sio_handshake(lua_State *L) {
  sio_client_t *cl = check_client(L, 1);
  const plume__http_req_t *r;
  char date[64];
  if (cl == NULL || cl->s == NULL || (r = plume__eio_handshake(cl->s)) == NULL)
    return push_closed(L);
  push_request(L, r, plume__eio_remote_address(cl->s)); /* hs */
  lua_getfield(L, -1, "headers");                       /* hs headers */
  lua_getfield(L, -1, "origin");                        /* hs headers origin */
  lua_pushboolean(L, !lua_isnil(L, -1));
  lua_setfield(L, -4, "xdomain");
  lua_pop(L, 2);
  push_query(L, r->query.p, r->query.n);
  lua_setfield(L, -2, "query");
  lua_pushstring(L, plume__eio_remote_address(cl->s));
  lua_setfield(L, -2, "address");
  lua_pushinteger(L, (lua_Integer)cl->issued);
  lua_setfield(L, -2, "issued");
  js_date(cl->issued, date, sizeof(date));
  lua_pushstring(L, date);
  lua_setfield(L, -2, "time");
  lua_pushboolean(L, 0); /* Plume speaks plain HTTP; TLS ends in front */
  lua_setfield(L, -2, "secure");
  return 1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== plume.core functions: sockets */

/* core.sio_bind(socket, namespace, lua_socket) -> true | nil, "closed": the
** pending socket belongs to namespace (it may join rooms from now on). */
static int core_sio_bind(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  sio_nsp_t *nsp = check_nsp(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (sock == NULL || sock->client->s == NULL)
    return push_closed(L);
  if (sock->state != SOCK_PENDING)
    return luaL_error(L, "socket already connected");
  room_leave_all(sock);
  if (sock->nsp != NULL)
    sock->nsp->nbound--;
  sock->nsp = nsp;
  nsp->nbound++;
  lua_settop(L, 3);
  lua_setiuservalue(L, 1, 1); /* box.uservalue = lua socket */
  lua_pushboolean(L, 1);
  return 1;
}

/* core.sio_accept(socket) -> true | nil, "closed": the CONNECT reply goes out
** and the socket joins its namespace and its own room (§4.1). */
static int core_sio_accept(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  sio_client_t *cl;
  sio_server_t *srv;
  if (sock == NULL || sock->client->s == NULL)
    return push_closed(L);
  if (sock->state != SOCK_PENDING || sock->nsp == NULL)
    return luaL_error(L, "socket not pending or not bound");
  cl = sock->client;
  srv = cl->srv;
  if (room_join(sock, sock->id, sock->id_len) < 0)
    return luaL_error(L, "not enough memory");
  sock->state = SOCK_CONNECTED;
  sock->next = sock->nsp->head;
  if (sock->next != NULL)
    sock->next->prev = sock;
  sock->nsp->head = sock;
  sock->nsp->nsockets++;
  unwait(cl);
  srv->buf.len = 0;
  if (plume__sio_encode_connect(&srv->buf, nsp_slice(sock), sock->id,
                                cl->proto) == 0)
    send_buf(cl);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.sio_refuse(socket, message [, data [, plain]]): CONNECT_ERROR with
** message and data (v3 peers get the data, or the message; plain forces the v4
** shape, as socket.io does for "Invalid namespace"); the socket goes. */
static int core_sio_refuse(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  int plain = lua_toboolean(L, 4);
  plume_slice_t data = {NULL, 0};
  sio_server_t *srv;
  sio_client_t *cl;
  if (sock == NULL)
    return 0;
  cl = sock->client;
  srv = cl->srv;
  if (sock->state != SOCK_PENDING)
    return luaL_error(L, "socket already connected");
  if (!lua_isnoneornil(L, 3)) {
    plume__json_enc_reset(&srv->enc);
    srv->enc.binary = 0;
    if (plume__json_encode(L, 3, &srv->enc) != 0) {
      lua_pushstring(L, srv->enc.error);
      enc_trim(srv);
      return lua_error(L);
    }
    data.p = srv->enc.out.p;
    data.n = srv->enc.out.len;
  }
  srv->buf.len = 0;
  if (plume__sio_encode_connect_error(&srv->buf, nsp_slice(sock), msg, data,
                                      plain ? 4 : cl->proto) == 0)
    send_buf(cl);
  enc_trim(srv);
  socket_free(sock, L);
  return 0;
}

/* Sends the event and arguments from index first to sock, with ack id (-1:
** none). Returns 0 or an error (the session is gone). */
static int emit_to(lua_State *L, sio_socket_t *sock, int64_t id, int first) {
  sio_server_t *srv = sock->client->srv;
  out_t o;
  int err;
  out_encode(L, srv, PLUME__SIO_EVENT, nsp_slice(sock), id, first,
             lua_gettop(L) - first + 1, &o);
  err = out_send(sock->client->s, &o);
  out_free(&o);
  return err;
}

/* core.sio_emit(socket, event, ...) -> true | nil, "closed". Raises when an
** argument cannot be serialised. */
static int core_sio_emit(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  luaL_checkany(L, 2);
  if (sock == NULL || sock->client->s == NULL)
    return push_closed(L);
  if (emit_to(L, sock, -1, 2) != 0)
    return push_closed(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* A timeout argument: ms, or 0 for none (nil). Raises on a bad value. */
static uint64_t check_timeout(lua_State *L, int idx, int *has) {
  lua_Number ms;
  *has = !lua_isnoneornil(L, idx);
  if (!*has)
    return 0;
  ms = luaL_checknumber(L, idx);
  return ms > 0 ? (uint64_t)ms : 0;
}

/*
** Sends the event and arguments from index first to sock with the next ack id
** of its namespace, and registers the entry awaiting the answer. Raises, with
** nothing registered, when a value cannot be serialised, at the cap or on OOM.
** Returns NULL when the session is gone.
*/
static sio_ack_t *emit_with_ack(lua_State *L, sio_socket_t *sock, int first) {
  sio_server_t *srv = sock->client->srv;
  int64_t id;
  sio_ack_t *a;
  out_t o;
  int err;
  if (sock->nsp == NULL)
    luaL_error(L, "socket %s has no namespace yet", sock->id);
  if (sock->nacks >= MAX_ACKS)
    luaL_error(L, "too many acknowledgements pending on socket %s", sock->id);
  id = sock->nsp->next_id;
  out_encode(L, srv, PLUME__SIO_EVENT, nsp_slice(sock), id, first,
             lua_gettop(L) - first + 1, &o);
  if ((a = ack_new(srv, sock, id)) == NULL) {
    out_free(&o);
    luaL_error(L, "not enough memory");
  }
  sock->nsp->next_id = id < PLUME__SIO_MAX_ID ? id + 1 : 0;
  err = out_send(sock->client->s, &o);
  out_free(&o);
  if (err != 0) {
    ack_free(a, L);
    return NULL;
  }
  return a;
}

/*
** core.sio_emit_ack(socket, fn, timeout, err_first, event, ...) -> true |
** nil, "closed": fn gets the client's answer ((nil, ...) with err_first), or
** "operation has timed out" / "disconnected" (err_first only).
*/
static int core_sio_emit_ack(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  int err_first = lua_toboolean(L, 4), has;
  uint64_t ms = check_timeout(L, 3, &has);
  sio_ack_t *a;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checkany(L, 5);
  if (sock == NULL || sock->client->s == NULL)
    return push_closed(L);
  if ((a = emit_with_ack(L, sock, 5)) == NULL)
    return push_closed(L);
  lua_pushvalue(L, 2);
  a->fn_ref =
      luaL_ref(L, LUA_REGISTRYINDEX); /* OOM here: an ack nobody hears */
  a->err_first = (uint8_t)err_first;
  if (has)
    ack_arm(a, ms, "operation has timed out");
  lua_pushboolean(L, 1);
  return 1;
}

/*
** core.sio_emit_wait(socket, timeout, event, ...) -> nil, args... | err: waits
** in the calling task for the client's answer; err is "operation has timed
** out" or "disconnected".
*/
static int core_sio_emit_wait(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  int has;
  uint64_t ms = check_timeout(L, 2, &has);
  sio_ack_t *a;
  luaL_checkany(L, 3);
  plume__task_check_wait(L);
  if (sock == NULL || sock->client->s == NULL ||
      (a = emit_with_ack(L, sock, 3)) == NULL) {
    lua_pushliteral(L, "disconnected");
    return 1;
  }
  a->task = plume__task_current(L);
  if (has)
    ack_arm(a, ms, "operation has timed out");
  return plume__task_wait(L);
}

/* core.sio_later(server, fn, err): calls fn(err) in a task of its own on the
** next loop turn (an emit with a timeout on a socket already gone). */
static int core_sio_later(lua_State *L) {
  sio_server_t *srv = check_server(L, 1);
  sio_ack_t *a;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  a = ack_new(srv, NULL, -1);
  if (a == NULL)
    return luaL_error(L, "not enough memory");
  lua_pushvalue(L, 2);
  a->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  a->err_first = 1;
  ack_arm(a, 0,
          strcmp(luaL_optstring(L, 3, ""), "operation has timed out") == 0
              ? "operation has timed out"
              : "disconnected");
  return 0;
}

/* core.sio_ack(socket, id, ...) -> true | nil, "closed": answers a client's
** event. Raises when an argument cannot be serialised. */
static int core_sio_ack(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  sio_server_t *srv;
  out_t o;
  int err;
  if (sock == NULL || sock->client->s == NULL)
    return push_closed(L);
  srv = sock->client->srv;
  out_encode(L, srv, PLUME__SIO_ACK, nsp_slice(sock), (int64_t)id, 3,
             lua_gettop(L) - 2, &o);
  err = out_send(sock->client->s, &o);
  out_free(&o);
  if (err != 0)
    return push_closed(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.sio_join(socket, room) / core.sio_leave(socket, room) -> changed |
** nil, "closed". */
static int core_sio_join(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  size_t n;
  const char *room = luaL_checklstring(L, 2, &n);
  int r;
  if (sock == NULL)
    return push_closed(L);
  if ((r = room_join(sock, room, n)) < 0)
    return luaL_error(L, "not enough memory");
  lua_pushboolean(L, r);
  return 1;
}

static int core_sio_leave(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  size_t n;
  const char *room = luaL_checklstring(L, 2, &n);
  if (sock == NULL)
    return push_closed(L);
  lua_pushboolean(L, room_leave(sock, room, n));
  return 1;
}

/*
** core.sio_disconnect(socket, close) -> array of the Lua sockets that left:
** DISCONNECT goes out for each (§4.3); with close every socket of the client
** goes and the Engine.IO session closes once the packets are out.
*/
static int core_sio_disconnect(lua_State *L) {
  sio_socket_t *sock = check_socket(L, 1);
  int close = lua_toboolean(L, 2), k = 0;
  sio_client_t *cl;
  sio_server_t *srv;
  lua_newtable(L); /* list */
  if (sock == NULL)
    return 1;
  cl = sock->client;
  srv = cl->srv;
  while (sock != NULL) {
    if (sock->state == SOCK_CONNECTED) {
      srv->buf.len = 0;
      if (plume__sio_encode_disconnect(&srv->buf, nsp_slice(sock)) == 0)
        send_buf(cl);
      push_socket(L, sock);    /* list socket */
      lua_rawseti(L, -2, ++k); /* list[k] = socket */
    }
    socket_free(sock, L);
    sock = close && cl->nsocks > 0 ? cl->socks[cl->nsocks - 1] : NULL;
  }
  /* engineio.c closes once the DISCONNECT packets are out: on a WebSocket a
  ** close frame follows them, on polling they go alone and the close comes on
  ** the next poll, so that clients see "io server disconnect" first. */
  if (close)
    plume__eio_close(cl->s, "forced close");
  return 1;
}

/* }====== */

/* ------------------------------------------------------------------------- */
/* {====== plume.core functions: broadcasts */

typedef struct bcast_s {
  const out_t *o;
  int count;
} bcast_t;

static void send_one(sio_socket_t *sock, void *ud) {
  bcast_t *b = ud;
  if (sock->client->s != NULL && out_send(sock->client->s, b->o) == 0)
    b->count++;
}

/*
** core.sio_broadcast(namespace, rooms, except, event, ...) -> count: one
** encoding, the same bytes queued for every socket in rooms (all when nil)
** and in none of except, once each.
*/
static int core_sio_broadcast(lua_State *L) {
  sio_nsp_t *nsp = check_nsp(L, 1);
  plume_slice_t name;
  bcast_t b;
  out_t o;
  luaL_checkany(L, 4);
  name.p = nsp->name;
  name.n = nsp->len;
  out_encode(L, nsp->srv, PLUME__SIO_EVENT, name, -1, 4, lua_gettop(L) - 3, &o);
  b.o = &o;
  b.count = 0;
  visit(L, nsp, 2, 3, send_one, &b);
  out_free(&o);
  lua_pushinteger(L, b.count);
  return 1;
}

typedef struct gather_s {
  sio_group_t *g;
  const out_t *o;
  int64_t id;
  int oom;
} gather_t;

static void ask_one(sio_socket_t *sock, void *ud) {
  gather_t *x = ud;
  sio_group_t *g = x->g;
  sio_ack_t *a;
  if (sock->state != SOCK_CONNECTED || sock->client->s == NULL ||
      sock->nacks >= MAX_ACKS)
    return;
  if ((g->n & (g->n - 1)) == 0 && g->n >= 8) { /* grow at 8, 16, 32, ... */
    sio_ack_t **m = realloc(g->members, (size_t)g->n * 2 * sizeof(*m));
    if (m == NULL) {
      x->oom = 1;
      return;
    }
    g->members = m;
  }
  if ((a = ack_new(g->srv, sock, x->id)) == NULL) {
    x->oom = 1;
    return;
  }
  a->group = g;
  a->gidx = g->n;
  g->members[g->n++] = a;
  g->pending++;
  if (out_send(sock->client->s, x->o) != 0) {
    g->pending--;
    ack_free(a, NULL);
  }
}

/*
** core.sio_broadcast_ack(namespace, rooms, except, timeout, fn, event, ...):
** a broadcast asking each recipient for an ack, encoded once (one id for all,
** as the ids are per namespace). fn(err, responses) once every recipient
** answered, or with "operation has timed out" and the responses so far. With
** fn nil the calling task waits and gets err, responses.
*/
static int core_sio_broadcast_ack(lua_State *L) {
  sio_nsp_t *nsp = check_nsp(L, 1);
  sio_server_t *srv = nsp->srv;
  lua_Number ms = luaL_checknumber(L, 4);
  int wait = lua_isnil(L, 5);
  plume_slice_t name;
  sio_group_t *g;
  gather_t x;
  out_t o;
  int list_ref, fn_ref = LUA_NOREF, top = lua_gettop(L);
  luaL_checkany(L, 6);
  if (!lua_isnil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  if (!wait)
    luaL_checktype(L, 5, LUA_TFUNCTION);
  else
    plume__task_check_wait(L);
  /* What may raise comes first, then the C state that must not leak. */
  lua_newtable(L); /* ... responses */
  plume__json_push_mt(L, 0);
  lua_setmetatable(L, -2);
  list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!wait) {
    lua_pushvalue(L, 5);
    fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  name.p = nsp->name;
  name.n = nsp->len;
  x.id = nsp->next_id;
  g = NULL;
  if (out_build(L, srv, PLUME__SIO_EVENT, name, x.id, 6, top - 5, &o) != 0 ||
      (g = calloc(1, sizeof(*g))) == NULL ||
      (g->members = malloc(8 * sizeof(*g->members))) == NULL) {
    if (g != NULL) {
      free(g);
      out_free(&o);
      lua_pushliteral(L, "not enough memory");
    } else if (lua_gettop(L) == top) { /* out_build went through */
      out_free(&o);
      lua_pushliteral(L, "not enough memory");
    }
    luaL_unref(L, LUA_REGISTRYINDEX, list_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
    return lua_error(L);
  }
  nsp->next_id = x.id < PLUME__SIO_MAX_ID ? x.id + 1 : 0;
  g->srv = srv;
  g->list_ref = list_ref;
  g->fn_ref = fn_ref;
  uv_timer_init(srv->p->loop, &g->timer);
  g->next = srv->groups;
  if (g->next != NULL)
    g->next->prev = g;
  srv->groups = g;
  x.g = g;
  x.o = &o;
  x.oom = 0;
  visit(L, nsp, 2, 3, ask_one, &x);
  out_free(&o);
  if (x.oom) {
    group_free(g, L);
    return luaL_error(L, "not enough memory");
  }
  g->error = g->pending == 0 ? NULL : "operation has timed out";
  uv_timer_start(&g->timer, on_group_timer,
                 g->pending == 0 || ms <= 0 ? 0 : (uint64_t)ms, 0);
  if (!wait)
    return 0;
  g->task = plume__task_current(L);
  return plume__task_wait(L);
}

/*
** core.sio_send_many(sockets, event, ...) -> count: one event to a list of
** socket handles, encoded once per namespace met.
*/
static int core_sio_send_many(lua_State *L) {
  lua_Integer i, n;
  const sio_nsp_t *last = NULL;
  sio_server_t *srv = NULL;
  out_t o;
  int count = 0, first = 1, top = lua_gettop(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  memset(&o, 0, sizeof(o));
  n = (lua_Integer)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    box_t *b;
    sio_socket_t *sock;
    if (lua_rawgeti(L, 1, i) == LUA_TTABLE) /* box, or a Lua socket */
      lua_getfield(L, -1, "_box");          /* socket box */
    b = luaL_testudata(L, -1, SOCKET_MT);
    lua_settop(L, top);
    sock = b != NULL ? b->ptr : NULL;
    if (sock == NULL || sock->nsp == NULL || sock->client->s == NULL)
      continue;
    if (first || sock->nsp != last) {
      out_free(&o);
      srv = sock->client->srv;
      out_encode(L, srv, PLUME__SIO_EVENT, nsp_slice(sock), -1, 2,
                 lua_gettop(L) - 1, &o);
      last = sock->nsp;
      first = 0;
    }
    if (out_send(sock->client->s, &o) == 0)
      count++;
  }
  out_free(&o);
  lua_pushinteger(L, count);
  return 1;
}

typedef struct collect_s {
  lua_State *L;
  int k;
} collect_t;

static void collect_one(sio_socket_t *sock, void *ud) {
  collect_t *c = ud;
  if (sock->state != SOCK_CONNECTED)
    return;
  push_socket(c->L, sock);       /* ... list socket */
  lua_rawseti(c->L, -2, ++c->k); /* list[k] = socket */
}

/* core.sio_select(namespace, rooms, except) -> array of the Lua sockets
** (connected) a broadcast with these rooms would reach. */
static int core_sio_select(lua_State *L) {
  sio_nsp_t *nsp = check_nsp(L, 1);
  collect_t c;
  lua_settop(L, 3);
  lua_createtable(L, (int)nsp->nsockets, 0); /* nsp rooms except list */
  c.L = L;
  c.k = 0;
  luaL_checkstack(L, 8, NULL);
  visit(L, nsp, 2, 3, collect_one, &c);
  return 1;
}

/* }====== */

static const luaL_Reg sio_functions[] = {
    {"sio_attach", core_sio_attach},
    {"sio_namespace", core_sio_namespace},
    {"sio_namespace_free", core_sio_namespace_free},
    {"sio_set", core_sio_set},
    {"sio_close", core_sio_close},
    {"sio_count", core_sio_count},
    {"sio_client_info", core_sio_client_info},
    {"sio_client_close", core_sio_client_close},
    {"sio_handshake", core_sio_handshake},
    {"sio_bind", core_sio_bind},
    {"sio_accept", core_sio_accept},
    {"sio_refuse", core_sio_refuse},
    {"sio_emit", core_sio_emit},
    {"sio_emit_ack", core_sio_emit_ack},
    {"sio_emit_wait", core_sio_emit_wait},
    {"sio_ack", core_sio_ack},
    {"sio_later", core_sio_later},
    {"sio_join", core_sio_join},
    {"sio_leave", core_sio_leave},
    {"sio_disconnect", core_sio_disconnect},
    {"sio_broadcast", core_sio_broadcast},
    {"sio_broadcast_ack", core_sio_broadcast_ack},
    {"sio_send_many", core_sio_send_many},
    {"sio_select", core_sio_select},
    {NULL, NULL}};

/* Box handles compare by identity; their metatables carry only __name (and
** the server's __gc). */
void plume__sio_open(lua_State *L) {
  luaL_newmetatable(L, SERVER_MT); /* core mt */
  lua_pushcfunction(L, server_gc);
  lua_setfield(L, -2, "__gc"); /* mt.__gc = server_gc */
  lua_pop(L, 1);
  luaL_newmetatable(L, CLIENT_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, SOCKET_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, NSP_MT);
  lua_pop(L, 1);
  luaL_setfuncs(L, sio_functions, 0); /* core.sio_* = ... */
}
