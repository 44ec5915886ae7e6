// mux_relay: what HTTP/2 upstreams with per-turn batching would save a proxy under load, as a
// yardstick for `MUX=1 bench/curve_bench.py` (issue 20). Not part of subgate; not a proxy anyone
// should run.
//
//     mux_relay LISTEN_PORT:BACKEND_H2C_PORT
//
// HTTP/1.1 clients in front (bodiless keep-alive requests, as wrk sends them), h2c behind: each
// request becomes a stream on one of a few multiplexed connections to the backend (a new one only
// when every open one has kStreamsPerConnection streams). The frames of every request that came
// in during one event-loop turn go out with one send per backend connection at the turn's end,
// so under load (with RELAY_PAUSE_US, below) several requests share a TCP segment, where
// keep-alive HTTP/1.1 upstreams (what subgate, nginx and HAProxy use) need a segment per request
// each way. Set beside `floor_relay epoll`, which does the same minimal work with one HTTP/1.1
// backend connection per client, it shows what the segments cost: the question HAProxy's
// `proto h2` could not answer, because it sends each stream's frames on their own (bench
// PEER_H2=1: more segments per request with HTTP/2 upstreams than without).
//
// It parses only the request line and the Host field, copies no other header either way, and
// answers every response as `HTTP/1.1 STATUS OK` with its Content-Length: the least HTTP work
// there is, plus nghttp2's client side. A request with a body or a malformed head closes the
// client's connection; a failed backend connection stops the relay (the bench's backend keeps
// its connections for 10^9 requests, so that is a bug to see, not a case to handle).
//
// Single-threaded, level-triggered epoll; the caller pins it. Sends to the backend are blocking
// (loopback, small frames); everything else is non-blocking. Stops on SIGTERM/SIGINT.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay_loop.h"

enum { kClientBuffer = 16384, kStreamsPerConnection = 100, kMaxBackends = 32 };

struct backend;

// Both kinds of connection start with their kind, which the epoll data tells apart.
enum kind { kClient, kBackend };

// One HTTP/1.1 client connection, with at most one request in flight (no pipelining).
struct client {
  enum kind kind;
  int fd;
  int dead;  // closed in this turn; freed at its end (an event may still name it)
  struct client* next_dead;
  struct backend* backend;  // the connection carrying its request, or NULL
  int32_t stream_id;        // 0: none in flight
  int status;
  size_t in_len;
  char* body;  // the response body gathered so far
  size_t body_len, body_cap;
  char in[kClientBuffer];
};

// One multiplexed h2c connection to the backend.
struct backend {
  enum kind kind;
  int fd;
  int open_streams;
  int dirty;  // frames wait in the session: send at the turn's end
  nghttp2_session* session;
};

static struct backend* backends[kMaxBackends];
static int backend_count;
static uint16_t backend_port;
static int ep;
static struct client* dead_clients;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void close_client(struct client* c) {
  if (c->dead) return;
  c->dead = 1;
  if (c->stream_id && c->backend) {
    // The stream may still answer: it must not find the client.
    nghttp2_session_set_stream_user_data(c->backend->session, c->stream_id, NULL);
    nghttp2_submit_rst_stream(c->backend->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
    c->backend->dirty = 1;
  }
  close(c->fd);
  c->next_dead = dead_clients;
  dead_clients = c;
}

static int on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                     size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                     void* user_data) {
  (void)flags;
  (void)user_data;
  struct client* c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (c && namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
    c->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  return 0;
}

static int on_data(nghttp2_session* session, uint8_t flags, int32_t stream_id, const uint8_t* data,
                   size_t len, void* user_data) {
  (void)flags;
  (void)user_data;
  struct client* c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c) return 0;
  if (c->body_len + len > c->body_cap) {
    c->body_cap = (c->body_len + len) * 2;
    c->body = realloc(c->body, c->body_cap);
    if (!c->body) die("realloc");
  }
  memcpy(c->body + c->body_len, data, len);
  c->body_len += len;
  return 0;
}

static void submit_next(struct client* c);

static int on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
  struct backend* b = user_data;
  --b->open_streams;
  struct client* c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c || c->dead) return 0;
  c->stream_id = 0;
  c->backend = NULL;
  if (error_code != NGHTTP2_NO_ERROR || c->status == 0) {
    close_client(c);
    return 0;
  }
  char head[128];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d OK\r\nContent-Length: %zu\r\n\r\n", c->status,
                   c->body_len);
  // One send for head and body: the response is one segment, as a proxy's writev makes it.
  if (c->body_len + (size_t)n > c->body_cap) {
    c->body_cap = c->body_len + (size_t)n;
    c->body = realloc(c->body, c->body_cap);
    if (!c->body) die("realloc");
  }
  memmove(c->body + n, c->body, c->body_len);
  memcpy(c->body, head, (size_t)n);
  const size_t total = c->body_len + (size_t)n;
  ssize_t sent = send(c->fd, c->body, total, MSG_NOSIGNAL | MSG_DONTWAIT);
  c->body_len = 0;
  if (sent != (ssize_t)total) {  // a client that does not read its answers is not waited for
    close_client(c);
    return 0;
  }
  submit_next(c);  // a request that arrived behind this one
  return 0;
}

static struct backend* open_backend(void) {
  if (backend_count == kMaxBackends) return NULL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(backend_port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    close(fd);
    return NULL;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct backend* b = calloc(1, sizeof *b);
  if (!b) die("calloc");
  b->kind = kBackend;
  b->fd = fd;
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
  // No send callback: frames are taken with nghttp2_session_mem_send at the turn's end.
  nghttp2_session_client_new(&b->session, callbacks, b);
  nghttp2_session_callbacks_del(callbacks);
  // Large windows: no WINDOW_UPDATE frames (and segments) for the small bodies of the bench.
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 30},
                                             {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(b->session, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(b->session, NGHTTP2_FLAG_NONE, 0, 1 << 30);
  b->dirty = 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = b};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  backends[backend_count++] = b;
  return b;
}

// The connection for a new stream: the first open one with room, else a new one.
static struct backend* pick_backend(void) {
  for (int i = 0; i < backend_count; ++i)
    if (backends[i]->open_streams < kStreamsPerConnection &&
        nghttp2_session_check_request_allowed(backends[i]->session))
      return backends[i];
  return open_backend();
}

static void backend_failed(void) {
  fprintf(stderr, "mux_relay: the backend connection failed\n");
  exit(1);
}

static void flush_backend(struct backend* b) {
  static uint8_t out[1 << 20];
  size_t size = 0;
  b->dirty = 0;
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(b->session, &data);
    if (n < 0) backend_failed();
    if (n == 0) break;
    // mem_send hands out about a frame at a time: gathered here, the turn's frames go out in one
    // send.
    if (size + (size_t)n > sizeof out) {
      if (send_all(b->fd, out, size) != 0) backend_failed();
      size = 0;
    }
    if ((size_t)n > sizeof out) {
      if (send_all(b->fd, data, (size_t)n) != 0) backend_failed();
      continue;
    }
    memcpy(out + size, data, (size_t)n);
    size += (size_t)n;
  }
  if (size && send_all(b->fd, out, size) != 0) backend_failed();
}

// Starts the request at the front of c's buffer if its head is complete and none is in flight.
static void submit_next(struct client* c) {
  if (c->stream_id) return;
  char* end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) return;
  const size_t head_len = (size_t)(end - c->in) + 4;
  char* sp1 = memchr(c->in, ' ', head_len);
  char* sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - c->in)) : NULL;
  if (!sp2) {
    close_client(c);
    return;
  }
  const char* host = "localhost";
  size_t host_len = 9;
  for (char* line = memchr(c->in, '\n', head_len); line && line + 1 < end;
       line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
    if (strncasecmp(line + 1, "host:", 5) == 0) {
      host = line + 6;
      while (*host == ' ') ++host;
      host_len = (size_t)((char*)memchr(host, '\r', (size_t)(end + 2 - host)) - host);
    }
    if (strncasecmp(line + 1, "content-length:", 15) == 0 ||
        strncasecmp(line + 1, "transfer-encoding:", 18) == 0) {
      close_client(c);  // no bodies here
      return;
    }
  }
  const nghttp2_nv nva[] = {
      {(uint8_t*)":method", (uint8_t*)c->in, 7, (size_t)(sp1 - c->in), NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":path", (uint8_t*)sp1 + 1, 5, (size_t)(sp2 - sp1 - 1), NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":scheme", (uint8_t*)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":authority", (uint8_t*)host, 10, host_len, NGHTTP2_NV_FLAG_NONE},
  };
  struct backend* b = pick_backend();
  int32_t id = b ? nghttp2_submit_request(b->session, NULL, nva, 4, NULL, c) : -1;
  if (id <= 0) {
    close_client(c);
    return;
  }
  c->stream_id = id;
  c->backend = b;
  c->status = 0;
  ++b->open_streams;
  b->dirty = 1;
  // nghttp2 copied the header values: the head's bytes can go.
  memmove(c->in, c->in + head_len, c->in_len - head_len);
  c->in_len -= head_len;
}

static void on_client(struct client* c) {
  if (c->dead) return;
  if (c->in_len == kClientBuffer) {
    close_client(c);
    return;
  }
  ssize_t got = recv(c->fd, c->in + c->in_len, kClientBuffer - c->in_len, MSG_DONTWAIT);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) {
    close_client(c);
    return;
  }
  c->in_len += (size_t)got;
  submit_next(c);
}

static void on_backend(struct backend* b) {
  uint8_t buffer[65536];
  ssize_t got = recv(b->fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0 || nghttp2_session_mem_recv(b->session, buffer, (size_t)got) < 0) backend_failed();
  b->dirty = 1;  // SETTINGS acknowledgements, window updates
}

int main(int argc, char** argv) {
  unsigned listen_port, port;
  if (argc != 2 || sscanf(argv[1], "%u:%u", &listen_port, &port) != 2) {
    fprintf(stderr, "usage: mux_relay LISTEN_PORT:BACKEND_H2C_PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  backend_port = (uint16_t)port;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 1024) != 0)
    die("listen");
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  // RELAY_PAUSE_US (bench/relay_loop.h): with subgate's pause the next turn carries more
  // requests, and their frames share segments. Without it a turn carries about one request and
  // nothing is multiplexed into a segment.
  struct relay_pause pause = relay_pause_from_env();
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    relay_turn_begins(&pause);
    for (int i = 0; i < n; ++i) {
      void* ptr = events[i].data.ptr;
      if (!ptr) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct client* c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->kind = kClient;
        c->fd = fd;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        continue;
      }
      if (*(enum kind*)ptr == kBackend)
        on_backend(ptr);
      else
        on_client(ptr);
    }
    // The turn's end: each backend connection's frames go out together.
    for (int k = 0; k < backend_count; ++k)
      if (backends[k]->dirty) flush_backend(backends[k]);
    while (dead_clients) {
      struct client* c = dead_clients;
      dead_clients = c->next_dead;
      free(c->body);
      free(c);
    }
    relay_turn_ends(&pause, n);
  }
}
