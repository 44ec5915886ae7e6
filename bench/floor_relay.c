// floor_relay: the least a proxy's process can do per keep-alive request, as a yardstick for
// `FLOOR=1 bench/curve_bench.py` (issue 20). Not part of subgate; not a proxy anyone should run.
//
//     floor_relay epoll|uring LISTEN_PORT:BACKEND_PORT...     (up to 4 pairs, all on 127.0.0.1)
//
// For each client connection it opens one connection to the listener's backend and copies bytes
// both ways (HTTP/1.1 to an HTTP/1.1 backend, h2c to an h2c one: a multiplexing proxy's floor),
// unchanged: no parsing, no headers added, no pool, no timeouts, no limits. With one request in
// flight a real proxy makes the same trips through the kernel and does all that work on top, so
// its CPU per request cannot be below this relay's with the same kernel interface. Under load it
// can: the relay does not batch or pause, and wakes for each segment. Two interfaces:
//   epoll  readiness, as nginx, HAProxy and subgate's libevent loop: level-triggered epoll_wait,
//          then one recv and one send per readable socket. At one connection: 6 system calls per
//          request (a wait, a recv and a send on each side).
//   uring  completion, the loop issue 20's notes estimate: every socket always has a receive
//          armed in an io_uring; a completed receive queues the send to the other side (its
//          success posts no completion) and the next receive, and one io_uring_enter submits them
//          and waits for the next completion. At one connection: 2 system calls per request.
// RELAY_PAUSE_US=N (epoll only; default 0) adds subgate's io_coalesce pause, to compare with
// bench/mux_relay.c on equal terms.
//
// Single-threaded; the caller pins it. Stops on SIGTERM/SIGINT (the default action). Each
// connection pair's memory is freed two seconds after it closed, when no operation can still
// point at it (closing shuts the sockets down, which fails any send still in the ring).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay_loop.h"

enum { kBufferSize = 16384 };

// One client connection and its backend connection. Side d reads fd[d] and writes fd[1 - d].
// uring mode alternates two buffers per side: a send may still be in flight while the next
// receive fills the other buffer.
struct pair {
  int fd[2];
  int current[2];
  int dead;
  time_t died;
  struct pair* next_dead;
  char buffer[2][2][kBufferSize];
};

static struct pair* graveyard;

// Listeners are named in epoll data and io_uring user data as (index << 2) | kListenerBit; a
// pair's pointer (malloc-aligned) never has that bit, and carries its side in bit 0.
enum { kMaxListeners = 4, kListenerBit = 2 };
static struct listener {
  int fd;
  uint16_t backend_port;
} listeners[kMaxListeners];
static int listener_count;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static int listen_on(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(fd, 1024) != 0) die("listen");
  return fd;
}

// A pair for an accepted client, with its backend connection made (loopback: at once), or NULL.
static struct pair* open_pair(int client, uint16_t backend_port) {
  int backend = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(backend_port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(backend, (struct sockaddr*)&addr, sizeof addr) != 0) {
    close(backend);
    close(client);
    return NULL;
  }
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(backend, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct pair* p = calloc(1, sizeof *p);
  if (!p) die("calloc");
  p->fd[0] = client;
  p->fd[1] = backend;
  return p;
}

// Closes both connections; the memory goes to the graveyard (an event or operation of the same
// turn may still name the pair).
static void close_pair(struct pair* p) {
  if (p->dead) return;
  p->dead = 1;
  for (int d = 0; d < 2; ++d) {
    shutdown(p->fd[d], SHUT_RDWR);  // fails any send still in the ring
    close(p->fd[d]);
  }
  p->died = time(NULL);
  p->next_dead = graveyard;
  graveyard = p;
}

static void bury_old_pairs(void) {
  time_t now = time(NULL);
  struct pair** link = &graveyard;
  while (*link) {
    struct pair* p = *link;
    if (now - p->died >= 2) {
      *link = p->next_dead;
      free(p);
    } else {
      link = &p->next_dead;
    }
  }
}

static void run_epoll(void) {
  // RELAY_PAUSE_US: to compare with bench/mux_relay.c on equal terms (bench/relay_loop.h).
  struct relay_pause pause = relay_pause_from_env();
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  for (int i = 0; i < listener_count; ++i) {
    ev.data.u64 = ((uint64_t)i << 2) | kListenerBit;
    epoll_ctl(ep, EPOLL_CTL_ADD, listeners[i].fd, &ev);
  }
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    relay_turn_begins(&pause);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 & kListenerBit) {
        const struct listener* l = &listeners[events[i].data.u64 >> 2];
        int client = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        struct pair* p = client >= 0 ? open_pair(client, l->backend_port) : NULL;
        for (int d = 0; p && d < 2; ++d) {
          ev.events = EPOLLIN;
          ev.data.ptr = (void*)((uintptr_t)p | (uintptr_t)d);
          epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[d], &ev);
        }
        continue;
      }
      struct pair* p = (struct pair*)((uintptr_t)events[i].data.ptr & ~(uintptr_t)1);
      int d = (int)((uintptr_t)events[i].data.ptr & 1);
      if (p->dead) continue;
      ssize_t got = recv(p->fd[d], p->buffer[d][0], kBufferSize, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0 || send_all(p->fd[1 - d], p->buffer[d][0], (size_t)got) != 0) close_pair(p);
    }
    if (graveyard) bury_old_pairs();
    relay_turn_ends(&pause, n);
  }
}

static struct io_uring_sqe* next_sqe(struct io_uring* ring) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

static void arm_receive(struct io_uring* ring, struct pair* p, int d) {
  struct io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_recv(sqe, p->fd[d], p->buffer[d][p->current[d]], kBufferSize, 0);
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)p | (uint64_t)d);
}

static void arm_accept(struct io_uring* ring, int index) {
  struct io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_multishot_accept(sqe, listeners[index].fd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, ((uint64_t)index << 2) | kListenerBit);
}

static void run_uring(void) {
  struct io_uring ring;
  struct io_uring_params params = {.flags =
                                       IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
  int rc = io_uring_queue_init_params(1024, &ring, &params);
  if (rc < 0) {
    fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-rc));
    exit(1);
  }
  for (int i = 0; i < listener_count; ++i) arm_accept(&ring, i);
  for (;;) {
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-rc));
      exit(1);
    }
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data & kListenerBit) {
        const int index = (int)(data >> 2);
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(&ring, index);
        struct pair* p = cqe->res >= 0 ? open_pair(cqe->res, listeners[index].backend_port) : NULL;
        for (int d = 0; p && d < 2; ++d) arm_receive(&ring, p, d);
        continue;
      }
      struct pair* p = (struct pair*)(uintptr_t)(data & ~(uint64_t)1);
      int d = (int)(data & 1);
      if (p->dead) continue;
      if (cqe->res <= 0) {  // the peer's end, or a failed send (only failures post)
        close_pair(p);
        continue;
      }
      // The send goes from the filled buffer, the next receive into the other one. MSG_WAITALL
      // makes a short send retry inside the ring, so success needs no completion.
      struct io_uring_sqe* sqe = next_sqe(&ring);
      io_uring_prep_send(sqe, p->fd[1 - d], p->buffer[d][p->current[d]], (size_t)cqe->res,
                         MSG_NOSIGNAL | MSG_WAITALL);
      io_uring_sqe_set_data64(sqe, data);
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      p->current[d] ^= 1;
      arm_receive(&ring, p, d);
    }
    io_uring_cq_advance(&ring, seen);
    if (graveyard) bury_old_pairs();
  }
}

int main(int argc, char** argv) {
  if (argc < 3 || argc - 2 > kMaxListeners ||
      (strcmp(argv[1], "epoll") != 0 && strcmp(argv[1], "uring") != 0)) {
    fprintf(stderr, "usage: floor_relay epoll|uring LISTEN_PORT:BACKEND_PORT...\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  for (int i = 2; i < argc; ++i) {
    unsigned listen_port, backend_port;
    if (sscanf(argv[i], "%u:%u", &listen_port, &backend_port) != 2) {
      fprintf(stderr, "floor_relay: %s is not LISTEN_PORT:BACKEND_PORT\n", argv[i]);
      return 2;
    }
    listeners[listener_count].fd = listen_on((uint16_t)listen_port);
    listeners[listener_count++].backend_port = (uint16_t)backend_port;
  }
  if (strcmp(argv[1], "epoll") == 0)
    run_epoll();
  else
    run_uring();
  return 0;
}
