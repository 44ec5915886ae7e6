// What bench/floor_relay.c and bench/mux_relay.c share: a blocking send of a whole buffer and
// subgate's io_coalesce pause (core/net/turn_coalescer.h) for their epoll loops. Not part of
// subgate.
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

// Sends all of data (the socket blocks, or is loopback with little in flight); -1 on failure.
static inline int send_all(int fd, const void* data, size_t size) {
  const char* at = data;
  while (size > 0) {
    ssize_t n = send(fd, at, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    at += n;
    size -= (size_t)n;
  }
  return 0;
}

static inline long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// RELAY_PAUSE_US=N (default 0, off): a turn that began within N µs of the previous turn's end is
// followed by a pause of N µs, so that the next turn finds more events (subgate's rule).
struct relay_pause {
  long long window_ns;
  long long last_end;
  long long turn_start;
};

static inline struct relay_pause relay_pause_from_env(void) {
  const char* env = getenv("RELAY_PAUSE_US");
  struct relay_pause p = {(env ? atoll(env) : 0) * 1000, 0, 0};
  return p;
}

// Call when epoll_wait returned, and when the turn's work is done (`events`: how many it had).
static inline void relay_turn_begins(struct relay_pause* p) { p->turn_start = now_ns(); }
static inline void relay_turn_ends(struct relay_pause* p, int events) {
  if (p->window_ns > 0 && events > 0 && p->turn_start - p->last_end < p->window_ns) {
    const struct timespec pause = {0, p->window_ns};
    nanosleep(&pause, NULL);
  }
  p->last_end = now_ns();
}
