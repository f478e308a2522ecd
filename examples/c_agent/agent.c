/* A tickwire agent in C, written from PROTOCOL.md alone: libzmq + msgpack-c.
 *
 * It plays the built-in grid world (walk towards the nearest resource) and follows the
 * protocol's rules: JOIN (resent every 0.5 s) and READY, act on the newest STATE only,
 * send the same ACTION again when its tick is published again, wait for its OBSERVATION
 * in a world with private views (and skip a tick where it is terminated or truncated),
 * ignore HEARTBEATs, rejoin a slot, CURVE keys, exit 0 on END.
 *
 * It learns where to connect as tickwire's own agents do, from the environment:
 *   TICKWIRE_CONNECT     base address (tcp://HOST:PORT or ipc:///path/prefix), required
 *   TICKWIRE_SLOT        ask for this player slot (a restarted agent taking its slot back)
 *   TICKWIRE_KEY         its secret key file (NAME.key_secret from `tickwire keys new`)
 *   TICKWIRE_SERVER_KEY  the server's public key file (with TICKWIRE_KEY: CURVE)
 *   TICKWIRE_NAME        player name (default "c-agent")
 *
 * Build: make (see the Makefile). Deliberately broken variants for `tickwire conformance`:
 *   -DBROKEN_RESEND   ignores a STATE for the tick it already answered
 *   -DBROKEN_BACKLOG  answers every queued STATE instead of the newest one
 */
#include <msgpack.h>
#include <zmq.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FRAMES 16
#define JOIN_RETRY_MS 500
#define JOIN_TIMEOUT_MS 60000
#define SERVER_TIMEOUT_MS 10000

enum { STAY, UP, DOWN, LEFT, RIGHT };

/* A received multipart message: its frames and frame 0 unpacked. */
typedef struct {
    zmq_msg_t frames[MAX_FRAMES];
    int n;
    msgpack_unpacked body;
    int unpacked;
} message;

/* The player's state: its WELCOME and what it holds between turns. */
typedef struct {
    char run[64], token[64];
    long long player;
    int private_views;
    long long seq;
    long long acted_tick; /* the last tick answered (or skipped: terminated), -1 for none */
    long long last_payload;
    int has_last;
} player_t;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what) {
    fprintf(stderr, "c-agent: %s\n", what);
    exit(1);
}

/* ------------------------------------------------------------------ messages in */
static message *recv_message(void *sock, int flags) {
    message *m = calloc(1, sizeof *m);
    if (!m) die("out of memory");
    int more = 1;
    while (more) {
        zmq_msg_t scratch, *f = m->n < MAX_FRAMES ? &m->frames[m->n] : &scratch;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, m->n == 0 ? flags : 0) < 0) {
            zmq_msg_close(f);
            for (int i = 0; i < m->n; i++) zmq_msg_close(&m->frames[i]);
            free(m);
            return NULL;
        }
        more = zmq_msg_more(f);
        if (f == &scratch) zmq_msg_close(f); /* more frames than any message of ours has */
        else m->n++;
    }
    msgpack_unpacked_init(&m->body);
    m->unpacked = 1;
    size_t off = 0;
    if (msgpack_unpack_next(&m->body, zmq_msg_data(&m->frames[0]), zmq_msg_size(&m->frames[0]), &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        m->body.data.type != MSGPACK_OBJECT_MAP)
        m->body.data.type = MSGPACK_OBJECT_NIL; /* not a message: ignored */
    return m;
}

static void free_message(message *m) {
    if (!m) return;
    if (m->unpacked) msgpack_unpacked_destroy(&m->body);
    for (int i = 0; i < m->n; i++) zmq_msg_close(&m->frames[i]);
    free(m);
}

static const msgpack_object *get(const msgpack_object *map, const char *key) {
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t len = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len && memcmp(k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int is_str(const msgpack_object *o, const char *s) {
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int get_int(const msgpack_object *o, long long *out) {
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *out = (long long)o->via.u64;
    else if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *out = o->via.i64;
    else return 0;
    return 1;
}

static int get_bool(const msgpack_object *o) { return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean; }

static void copy_str(const msgpack_object *o, char *dst, size_t cap) {
    size_t n = (o && o->type == MSGPACK_OBJECT_STR) ? o->via.str.size : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, o->via.str.ptr, n);
    dst[n] = 0;
}

/* True if a message of ``kind`` belongs to this player's run. */
static int ours(const msgpack_object *body, const player_t *p, const char *kind) {
    return is_str(get(body, "kind"), kind) && is_str(get(body, "run"), p->run);
}

/* A numpy array (extension 1 inline, 2 in a frame): dtype, up to 2 dims, its bytes.
 * The unpacked header lives in ``hold`` (free it with msgpack_unpacked_destroy). */
typedef struct {
    char dtype[8];
    long long shape[2];
    int ndim;
    const unsigned char *data;
    size_t size;
} array_t;

static int get_array(const msgpack_object *o, const message *m, msgpack_unpacked *hold, array_t *a) {
    if (!o || o->type != MSGPACK_OBJECT_EXT || (o->via.ext.type != 1 && o->via.ext.type != 2)) return 0;
    size_t off = 0;
    if (msgpack_unpack_next(hold, o->via.ext.ptr, o->via.ext.size, &off) != MSGPACK_UNPACK_SUCCESS) return 0;
    const msgpack_object *h = &hold->data;
    if (h->type != MSGPACK_OBJECT_ARRAY || h->via.array.size != 3) return 0;
    const msgpack_object *dt = &h->via.array.ptr[0], *shape = &h->via.array.ptr[1], *data = &h->via.array.ptr[2];
    copy_str(dt, a->dtype, sizeof a->dtype);
    if (shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > 2) return 0;
    a->ndim = (int)shape->via.array.size;
    a->shape[0] = a->shape[1] = 1;
    for (int i = 0; i < a->ndim; i++)
        if (!get_int(&shape->via.array.ptr[i], &a->shape[i])) return 0;
    if (o->via.ext.type == 1) {
        if (data->type != MSGPACK_OBJECT_BIN) return 0;
        a->data = (const unsigned char *)data->via.bin.ptr;
        a->size = data->via.bin.size;
    } else {
        long long index;
        if (!get_int(data, &index) || index < 1 || index >= m->n) return 0;
        a->data = zmq_msg_data((zmq_msg_t *)&m->frames[index]);
        a->size = zmq_msg_size((zmq_msg_t *)&m->frames[index]);
    }
    return 1;
}

/* ------------------------------------------------------------------ the policy */
/* The grid world's view: {"grid": |u1 [H, W], "positions": <i2 [players, 2], ...}.
 * Walk towards the nearest resource (the first in row-major order on a tie). */
static long long choose(const msgpack_object *view, const message *m, long long player) {
    msgpack_unpacked g, p;
    msgpack_unpacked_init(&g);
    msgpack_unpacked_init(&p);
    array_t grid, pos;
    long long move = STAY;
    if (get_array(get(view, "grid"), m, &g, &grid) && get_array(get(view, "positions"), m, &p, &pos) &&
        strcmp(grid.dtype, "|u1") == 0 && strcmp(pos.dtype, "<i2") == 0 && grid.ndim == 2 &&
        grid.size == (size_t)(grid.shape[0] * grid.shape[1]) && player >= 0 && player < pos.shape[0] &&
        pos.size >= (size_t)(pos.shape[0] * 4)) {
        const unsigned char *b = pos.data + player * 4;
        int row = (int16_t)(b[0] | b[1] << 8), col = (int16_t)(b[2] | b[3] << 8);
        long long best = -1, tr = row, tc = col;
        for (long long r = 0; r < grid.shape[0]; r++)
            for (long long c = 0; c < grid.shape[1]; c++)
                if (grid.data[r * grid.shape[1] + c]) {
                    long long d = llabs(r - row) + llabs(c - col);
                    if (best < 0 || d < best) best = d, tr = r, tc = c;
                }
        if (tr != row) move = tr > row ? DOWN : UP;
        else if (tc != col) move = tc > col ? RIGHT : LEFT;
    }
    msgpack_unpacked_destroy(&g);
    msgpack_unpacked_destroy(&p);
    return move;
}

/* ------------------------------------------------------------------ messages out */
static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void send_buffer(void *sock, msgpack_sbuffer *sb, const char *what) {
    /* Every message here is one small frame, far under the server's caps
     * (64 KiB on control, 256 KiB and a 96 KiB header on actions). */
    if (sb->size > 4096) die("refusing to send a message over 4 KiB");
    for (int tries = 0; zmq_send(sock, sb->data, sb->size, ZMQ_DONTWAIT) < 0; tries++) {
        if (errno != EAGAIN || tries > 200) {
            fprintf(stderr, "c-agent: could not send %s: %s\n", what, zmq_strerror(errno));
            return;
        }
        zmq_poll(NULL, 0, 10); /* no peer yet (IMMEDIATE): try again shortly */
    }
}

static void send_join(void *control, const char *name, const char *slot) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, slot ? 4 : 3);
    pack_str(&pk, "v"), msgpack_pack_int(&pk, 1);
    pack_str(&pk, "kind"), pack_str(&pk, "join");
    pack_str(&pk, "name"), pack_str(&pk, name);
    if (slot) pack_str(&pk, "slot"), msgpack_pack_int64(&pk, atoll(slot));
    zmq_send(control, sb.data, sb.size, ZMQ_DONTWAIT); /* resent until answered */
    msgpack_sbuffer_destroy(&sb);
}

static void send_ready(void *actions, const player_t *p) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "v"), msgpack_pack_int(&pk, 1);
    pack_str(&pk, "kind"), pack_str(&pk, "ready");
    pack_str(&pk, "run"), pack_str(&pk, p->run);
    pack_str(&pk, "player"), msgpack_pack_int64(&pk, p->player);
    pack_str(&pk, "token"), pack_str(&pk, p->token);
    send_buffer(actions, &sb, "READY");
    msgpack_sbuffer_destroy(&sb);
}

static void send_action(void *actions, player_t *p, long long tick, long long payload, int again) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!again) p->seq++; /* a resend is the same message */
    msgpack_pack_map(&pk, 8);
    pack_str(&pk, "v"), msgpack_pack_int(&pk, 1);
    pack_str(&pk, "kind"), pack_str(&pk, "action");
    pack_str(&pk, "run"), pack_str(&pk, p->run);
    pack_str(&pk, "tick"), msgpack_pack_int64(&pk, tick);
    pack_str(&pk, "player"), msgpack_pack_int64(&pk, p->player);
    pack_str(&pk, "seq"), msgpack_pack_int64(&pk, p->seq);
    pack_str(&pk, "token"), pack_str(&pk, p->token);
    pack_str(&pk, "payload"), msgpack_pack_int64(&pk, payload);
    send_buffer(actions, &sb, "ACTION");
    msgpack_sbuffer_destroy(&sb);
    p->acted_tick = tick;
    p->last_payload = payload;
    p->has_last = 1;
}

/* ------------------------------------------------------------------ sockets */
/* A ZeroMQ certificate's "public-key = "..."" or "secret-key = "..."" (z85, 40 chars). */
static int read_key(const char *path, const char *field, char out[41]) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *at = strstr(line, field), *q;
        if (at && (q = strchr(at, '"')) && strlen(q + 1) >= 41 && q[41] == '"') {
            memcpy(out, q + 1, 40);
            out[40] = 0;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void *open_socket(void *ctx, int type, const char *addr, const char curve[3][41]) {
    void *s = zmq_socket(ctx, type);
    int linger = 500, one = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (type != ZMQ_SUB) zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    if (type == ZMQ_DEALER) {
        unsigned char id[16];
        FILE *r = fopen("/dev/urandom", "rb");
        if (!r || fread(id, 1, sizeof id, r) != sizeof id) die("cannot read /dev/urandom");
        fclose(r);
        zmq_setsockopt(s, ZMQ_ROUTING_ID, id, sizeof id);
    }
    if (curve) {
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, curve[0], 41);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve[1], 41);
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, curve[2], 41);
    }
    if (type == ZMQ_SUB) zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(s, addr) != 0) {
        fprintf(stderr, "c-agent: cannot connect to %s: %s\n", addr, zmq_strerror(errno));
        exit(1);
    }
    return s;
}

/* tcp://HOST:P -> P, P+1, P+2; ipc://X -> X.state, X.actions, X.control */
static void endpoints(const char *base, char out[3][512]) {
    static const char *names[3] = {"state", "actions", "control"};
    const char *colon = strrchr(base, ':');
    if (strncmp(base, "tcp://", 6) == 0 && colon && colon > base + 5) {
        int port = atoi(colon + 1);
        for (int i = 0; i < 3; i++) snprintf(out[i], 512, "%.*s:%d", (int)(colon - base), base, port + i);
    } else {
        for (int i = 0; i < 3; i++) snprintf(out[i], 512, "%s.%s", base, names[i]);
    }
}

/* ------------------------------------------------------------------ main */
int main(void) {
    const char *base = getenv("TICKWIRE_CONNECT"), *slot = getenv("TICKWIRE_SLOT");
    const char *key = getenv("TICKWIRE_KEY"), *server_key = getenv("TICKWIRE_SERVER_KEY");
    const char *name = getenv("TICKWIRE_NAME") ? getenv("TICKWIRE_NAME") : "c-agent";
    if (!base || !*base) die("set TICKWIRE_CONNECT to the server's base address, e.g. tcp://127.0.0.1:5555");
    if (slot && !*slot) slot = NULL; /* set but empty: not set */
    if (key && !*key) key = NULL;
    if (server_key && !*server_key) server_key = NULL;
    char curve_keys[3][41], (*curve)[41] = NULL;
    if (key && server_key) {
        if (!read_key(key, "public-key", curve_keys[0]) || !read_key(key, "secret-key", curve_keys[1]) ||
            !read_key(server_key, "public-key", curve_keys[2]))
            die("cannot read the keys: TICKWIRE_KEY is NAME.key_secret, TICKWIRE_SERVER_KEY is server.key");
        curve = curve_keys;
    } else if (key || server_key) {
        die("TICKWIRE_KEY and TICKWIRE_SERVER_KEY go together");
    }

    char addr[3][512];
    endpoints(base, addr);
    void *ctx = zmq_ctx_new();
    void *state = open_socket(ctx, ZMQ_SUB, addr[0], (const char(*)[41])curve);
    void *actions = open_socket(ctx, ZMQ_PUSH, addr[1], (const char(*)[41])curve);
    void *control = open_socket(ctx, ZMQ_DEALER, addr[2], (const char(*)[41])curve);

    /* Join: JOIN every 0.5 s until WELCOME (or a refusal). */
    player_t p = {.acted_tick = -1};
    long long start = now_ms(), next_join = 0;
    for (int welcomed = 0; !welcomed;) {
        if (now_ms() - start > JOIN_TIMEOUT_MS) die("no answer to JOIN within 60 s: is the server there?");
        if (now_ms() >= next_join) send_join(control, name, slot), next_join = now_ms() + JOIN_RETRY_MS;
        zmq_pollitem_t item = {control, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, JOIN_RETRY_MS) <= 0) continue;
        message *m = recv_message(control, 0);
        if (!m) continue;
        const msgpack_object *body = &m->body.data;
        if (is_str(get(body, "kind"), "welcome")) {
            copy_str(get(body, "run"), p.run, sizeof p.run);
            copy_str(get(body, "token"), p.token, sizeof p.token);
            get_int(get(body, "player"), &p.player);
            p.private_views = get_bool(get(body, "private"));
            const msgpack_object *topic = get(body, "topic");
            if (topic && topic->type == MSGPACK_OBJECT_BIN)
                zmq_setsockopt(state, ZMQ_SUBSCRIBE, topic->via.bin.ptr, topic->via.bin.size);
            welcomed = 1;
        } else if (is_str(get(body, "kind"), "error")) {
            char text[512];
            long long retry_ms;
            copy_str(get(body, "text"), text, sizeof text);
            fprintf(stderr, "c-agent: refused: %s\n", text);
            if (!get_int(get(body, "retry_ms"), &retry_ms)) exit(1);
            next_join = now_ms() + (retry_ms < 100 ? 100 : retry_ms > 2000 ? 2000 : retry_ms);
        } /* a HEARTBEAT (or anything else) is ignored */
        free_message(m);
    }
    send_ready(actions, &p);
    fprintf(stderr, "c-agent: player %lld of run %s\n", p.player, p.run);

    /* Play: act on the newest STATE (with its OBSERVATION in a world with private views). */
    message *newest = NULL, *obs = NULL;
    long long newest_tick = -1, obs_tick = -1, last_heard = now_ms();
    for (;;) {
        zmq_pollitem_t items[2] = {{state, 0, ZMQ_POLLIN, 0}, {control, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 1000) < 0 && errno != EINTR) die("poll failed");
        if (now_ms() - last_heard > SERVER_TIMEOUT_MS) die("the server has been silent for 10 s: giving up");
        int fresh_state = 0;
        for (int which = 0; which < 2; which++) {
            void *sock = which == 0 ? state : control;
            message *m;
            while ((m = recv_message(sock, ZMQ_DONTWAIT)) != NULL) {
                const msgpack_object *body = &m->body.data;
                long long tick = -1, player = -1;
                get_int(get(body, "tick"), &tick);
                if (ours(body, &p, "end")) exit(0); /* the run is over: stop cleanly */
                if (is_str(get(body, "run"), p.run)) last_heard = now_ms();
                if (ours(body, &p, "state") && tick >= newest_tick) {
                    free_message(newest);
                    newest = m, newest_tick = tick, fresh_state = 1;
#ifdef BROKEN_BACKLOG
                    goto decide; /* wrong: act on every queued state, oldest first */
#endif
                    continue;
                }
                if (ours(body, &p, "observation") && get_int(get(body, "player"), &player) &&
                    player == p.player && tick > obs_tick) {
                    free_message(obs);
                    obs = m, obs_tick = tick;
                    continue;
                }
                if (ours(body, &p, "error")) {
                    char text[512];
                    copy_str(get(body, "text"), text, sizeof text);
                    fprintf(stderr, "c-agent: the server says: %s\n", text);
                }
                free_message(m); /* heartbeats, other runs, anything else */
            }
        }
#ifdef BROKEN_BACKLOG
    decide:
#endif
        (void)fresh_state;
        if (!newest) continue;
        if (newest_tick == p.acted_tick) {
#ifndef BROKEN_RESEND
            /* the same tick again: our action was lost; send it again */
            if (fresh_state && p.has_last) send_action(actions, &p, newest_tick, p.last_payload, 1);
#endif
            continue;
        }
        if (newest_tick < p.acted_tick) continue;
        if (!p.private_views) {
            send_action(actions, &p, newest_tick, choose(get(&newest->body.data, "payload"), newest, p.player), 0);
        } else if (obs && obs_tick == newest_tick) {
            const msgpack_object *o = &obs->body.data;
            if (get_bool(get(o, "terminated")) || get_bool(get(o, "truncated")))
                p.acted_tick = newest_tick, p.has_last = 0; /* out of this tick: do not act */
            else
                send_action(actions, &p, newest_tick, choose(get(o, "payload"), obs, p.player), 0);
        }
    }
}
