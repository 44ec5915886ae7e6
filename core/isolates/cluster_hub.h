// Messages between the isolates of one deployment (the gateway model's cluster, protocol.md §6):
// broadcast and whisper to WebSocket connections held by sibling isolates, and gossip (ask every
// sibling, gather their answers). docs/cluster.md describes what user code sees.
//
// Transport: nothing travels on the request sockets. An isolate sends on its stdout, each line
// prefixed with the per-process secret nonce (the registry recognises "<nonce> cluster <json>"
// and hands the JSON to report()); subgate answers and delivers on the isolate's stdin, one JSON
// object per line. A client cannot reach either pipe, so it cannot inject a cluster message.
//
// From an isolate (report()):
//   {"op":"join","uid":U} / {"op":"leave","uid":U}   a WebSocket of identifier U opened/closed
//   {"op":"send","id":N,"msg":S}                     broadcast to every sibling's connections
//   {"op":"send","id":N,"msg":S,"uid":U}             whisper to the siblings holding U
//   {"op":"gossip","id":N,"msg":J,"timeout_ms":T}    ask every sibling's ongossip(J)
//   {"op":"ack","id":D,"delivered":n}                 a delivery reached n local connections
//   {"op":"answer","id":D,"ok":true,"value":J}       a gossip answer (or "ok":false,"error":E)
// To an isolate (its stdin):
//   {"op":"deliver","id":D,"msg":S[,"uid":U]}        send S to the local connections (of U)
//   {"op":"gossip","id":D,"msg":J}                    run ongossip(J), then answer D
//   {"op":"sent","id":N,"delivered":n,"isolates":k,"failed":f,"timed_out":t}
//   {"op":"gossiped","id":N,"answers":[...],"asked":k,"failed":f,"timed_out":t,"partial":b}
//
// Members are ready isolates. Shared isolates of one deployment form its cluster; a dedicated
// (instance id) isolate is a cluster of its own, so it has no siblings. A sibling that does not
// acknowledge or answer within the call's timeout counts as timed out, one that dies or whose
// input pipe is full as failed; the caller always gets its result.
//
// Threading: every method except the status ones (clusterJson, totals, totalsJson, members)
// runs on the supervisor thread (the hub's events live on its loop). One mutex guards the
// state; the hub never calls out while holding it, so callers may hold their own locks around
// these calls.
#pragma once

#include <event2/event.h>
#include <jansson.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace subgate {

class ClusterHub {
 public:
  // Per-cluster counts (also summed over all clusters by totals()).
  struct Counters {
    uint64_t broadcasts = 0;  // send without uid
    uint64_t whispers = 0;    // send with uid
    uint64_t gossips = 0;     // gossip calls
    uint64_t deliveries = 0;  // connections reached on siblings (acknowledged)
    uint64_t answers = 0;     // gossip answers received
    uint64_t failed = 0;      // siblings that died, refused, answered an error or were full
    uint64_t timed_out = 0;   // siblings that did not answer in time
    uint64_t rejected = 0;    // malformed or oversized reports
  };

  // `timeout`: the longest a call may wait for its siblings (a call may ask for less).
  ClusterHub(event_base* base, std::chrono::milliseconds timeout);
  ~ClusterHub();
  ClusterHub(const ClusterHub&) = delete;
  ClusterHub& operator=(const ClusterHub&) = delete;

  void setTimeout(std::chrono::milliseconds timeout);

  // Isolate `member` is ready; `cluster` names its cluster (the deployment key for shared
  // isolates, empty for a dedicated one), `input_fd` is its stdin (non-blocking, owned by the
  // caller and kept open until leave()).
  void join(uint64_t member, std::string cluster, int input_fd);
  // `member` stops serving or died: calls waiting on it count it as failed, calls it made are
  // dropped, its queued input is discarded. Idempotent.
  void leave(uint64_t member);
  // One report line's JSON from `member` (after "<nonce> cluster ").
  void report(uint64_t member, std::string_view json);
  // Queues a line of the runtime's own (the supervisor's ping; it ends in '\n') on `member`'s
  // input behind what the cluster queued, so that lines never interleave. False when it is no
  // member or its input is over the bound.
  bool sendLine(uint64_t member, std::string_view line);

  // Any thread. clusterJson(): the counts of the live cluster named `cluster` (null if it has
  // none) with its "members" and "identifiers"; totals(): summed over every cluster ever seen.
  json_t* clusterJson(const std::string& cluster) const;
  Counters totals() const;
  json_t* totalsJson() const;
  size_t members() const;

 private:
  struct Member;
  struct Cluster;
  struct Call;

  static void onWritable(evutil_socket_t fd, short what, void* arg);
  static void onCallTimeout(evutil_socket_t fd, short what, void* arg);

  // The methods below run with mu_ held, except finish(), which takes it. Calls that completed
  // are collected in `done` and finished once the caller released mu_.
  Cluster& clusterOf(const Member& member);
  void handle(Member& from, json_t* message, std::vector<uint64_t>& done);
  std::vector<Member*> siblings(const Member& from, const std::string* uid);
  // Sends `line` (which names `delivery`) to `targets` and waits for their replies up to
  // `timeout`; with no target reachable the call is done at once.
  void startCall(Member& from, Call call, const std::vector<Member*>& targets,
                 const std::string& line, std::chrono::milliseconds timeout,
                 std::vector<uint64_t>& done);
  void handleReply(Member& from, uint64_t delivery, json_t* message, bool is_answer,
                   std::vector<uint64_t>& done);
  // Replies to the caller, counts, and forgets the call.
  void finish(uint64_t delivery);
  // Queues `line` (which ends in '\n') for `member`; false when its input is over the bound.
  bool enqueue(Member& member, std::string_view line);
  void flush(Member& member);

  mutable std::mutex mu_;
  event_base* base_;
  std::chrono::milliseconds timeout_;
  uint64_t next_delivery_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Member>> members_;
  std::map<std::string, std::unique_ptr<Cluster>> clusters_;
  std::unordered_map<uint64_t, std::unique_ptr<Call>> calls_;  // by delivery id
  Counters retired_;  // counts of clusters that no longer exist
};

}  // namespace subgate
