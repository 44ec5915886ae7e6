// Http1Connection's request body: starting and resuming delivery, and pumping the bytes (fixed
// length, chunked, or a tunnel's) from the buffers and the socket to the request's BodySink, or
// discarding them. The rest of the class is in http1_connection.cc.
#include <algorithm>
#include <cstdint>

#include "core/http1/http1_connection.h"
#include "core/http1/http1_connection_internal.h"
#include "core/log/log.h"

namespace subgate {

bool Http1Connection::bodyComplete() const { return body_done_; }

void Http1Connection::transportStartBody() {
  if (body_mode_ == BodyMode::kDeliver) return;
  body_mode_ = BodyMode::kDeliver;
  if (parser_.head().framing == http1::BodyFraming::kChunked) {
    uint64_t max = req_.location().core.max_body_bytes;
    chunked_ = http1::ChunkedDecoder(max ? max : UINT64_MAX);
  }
  if (body_done_) {
    BodySink* sink = req_.bodySink();
    body_mode_ = BodyMode::kNone;
    if (sink) sink->onBodyEnd({});
    return;
  }
  const http1::MessageHead& head = parser_.head();
  if (head.expect_continue && !continue_sent_ && in_.readable() == in_used_ &&
      spill_.readable() == 0) {
    continue_sent_ = true;
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    writeOut();
  }
  pumpBody();
}

void Http1Connection::transportResumeBody() {
  if (!body_paused_) return;
  body_paused_ = false;
  pumpBody();
}

// Moves request body bytes from the buffers (and the socket) to the sink until the body ends,
// the sink pushes back, or the socket is drained.
void Http1Connection::pumpBody() {
  const bool chunked = parser_.head().framing == http1::BodyFraming::kChunked;
  constexpr int kStepsPerTurn = 1024;
  int steps = 0;
  for (; steps < kStepsPerTurn && !body_done_ && !body_paused_ && !closed_; ++steps) {
    std::string_view source;
    bool from_in = in_.readable() > in_used_;
    if (from_in) {
      source = in_.view().substr(in_used_);
    } else if (spill_.readable() > 0) {
      source = spill_.view();
    } else {
      if (!readable_) break;
      if (!readInto(spill_, kReadChunk)) {
        if (tunnel_) {
          // The client's end of a tunnel: the upstream gets its last bytes, then the end.
          body_done_ = true;
          body_mode_ = BodyMode::kNone;
          if (req_.bodySink()) req_.bodySink()->onBodyEnd({});
          return;
        }
        LOG_DEBUG("client %s closed the connection while sending the body", remote_ip_.c_str());
        fatal();
        return;
      }
      continue;
    }
    size_t used = 0;
    std::string_view piece;
    bool end = false;
    if (!chunked) {
      used = static_cast<size_t>(std::min<uint64_t>(body_remaining_, source.size()));
      piece = source.substr(0, used);
      body_remaining_ -= used;
      end = body_remaining_ == 0;
    } else {
      http1::ChunkedDecoder::Step step = chunked_.next(source);
      used = step.consumed;
      piece = step.data;
      if (step.state == http1::ChunkedDecoder::State::kError) {
        keep_alive_ = false;
        body_done_ = true;
        body_mode_ = BodyMode::kNone;
        if (chunked_.bodyTooLarge()) {
          req_.fail(ErrorKind::kPayloadTooLarge,
                    "the request body is larger than client_max_body_size");
        } else {
          req_.fail(ErrorKind::kBadRequest, chunked_.errorMessage());
        }
        return;
      }
      end = step.state == http1::ChunkedDecoder::State::kDone;
      if (used == 0 && piece.empty() && !end) {
        // The decoder keeps partial state and consumes every byte it is given; a step that
        // takes nothing would loop forever, so treat it as a framing error.
        keep_alive_ = false;
        body_done_ = true;
        body_mode_ = BodyMode::kNone;
        req_.fail(ErrorKind::kBadRequest, "invalid chunked body");
        return;
      }
    }
    bool more = true;
    if (!piece.empty()) {
      if (body_mode_ == BodyMode::kDeliver && req_.bodySink()) {
        req_.addBodyBytesReceived(piece.size());
        more = req_.bodySink()->onBodyData(piece);
      } else {
        body_discarded_ += piece.size();
      }
    }
    if (from_in) {
      in_used_ += used;
    } else {
      spill_.consume(used);
    }
    if (end) {
      body_done_ = true;
      if (body_mode_ == BodyMode::kDeliver && req_.bodySink()) {
        req_.bodySink()->onBodyEnd(chunked ? chunked_.trailers() : std::string_view());
      }
      body_mode_ = BodyMode::kNone;
      scheduleDeferred();  // finishing may destroy the caller's task: not inside its call
      return;
    }
    if (body_mode_ == BodyMode::kDiscard && body_discarded_ > kMaxDiscard) {
      keep_alive_ = false;
      beginLingeringClose();
      return;
    }
    if (!more) body_paused_ = true;
  }
  if (steps == kStepsPerTurn && !body_done_ && !body_paused_ && !closed_) {
    // The turn's share is used, and bytes may still wait in the buffers or the socket. The
    // socket's edge was spent when this began: if the client already sent its last bytes, no
    // event comes again, and the rest would wait until the upstream gave up on it. Go on in the
    // next turn.
    pump_scheduled_ = true;
    event_active(&deferred_, EV_TIMEOUT, 1);
  }
  if (tunnel_) spill_.shrinkIfEmpty(0);  // idle tunnels hold no read buffer
  // Body delivery is often driven from the upstream's callbacks, not ours: re-arm here.
  refreshTimer();
}

}  // namespace subgate
