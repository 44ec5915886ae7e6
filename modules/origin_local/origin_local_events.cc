#include "modules/origin_local/origin_local_events.h"

#include <jansson.h>

#include <ctime>
#include <vector>

#include "core/events/gzip.h"
#include "core/jwt/jwt.h"
#include "core/pipeline/request.h"

namespace subgate {

namespace {

constexpr size_t kMaxBody = 4u << 20;       // as posted
constexpr size_t kMaxInflated = 32u << 20;  // once decompressed
constexpr size_t kMaxDeploymentId = 256;

void answer(Request& req, int status, std::string body, std::string content_type = {}) {
  LocalReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.body += '\n';
  if (!content_type.empty()) reply.content_type = std::move(content_type);
  req.respond(std::move(reply));
}

// The bearer token of an events POST: a configured subhoster's, without deployment_id.
bool verifyEventsToken(Request& req, const SubhosterTable& subhosters, std::string& error) {
  std::string_view authorization = req.header("authorization");
  if (!authorization.starts_with("Bearer ")) {
    error = "missing bearer token";
    return false;
  }
  std::string_view token = authorization.substr(7);
  auto header = jwt::peekHeader(token, error);
  if (!header) return false;
  auto subhoster = subhosters.find(header->kid);
  if (subhoster == subhosters.end()) {
    error = "unknown kid";
    return false;
  }
  jwt::VerifyOptions options;
  options.now = static_cast<int64_t>(std::time(nullptr));
  jwt::Claims claims;
  return jwt::verifyHs256(token, subhoster->second->secret, options, jwt::VerifyMode::kEvents,
                          claims, error);
}

// Collects a POST's body, then stores its events and answers.
class EventsUpload final : public RequestTask, public BodySink {
 public:
  EventsUpload(Request& req, std::shared_ptr<OriginEventStore> store)
      : req_(req), store_(std::move(store)) {}

  bool onBodyData(std::string_view data) override {
    if (body_.size() + data.size() > kMaxBody) {
      too_large_ = true;  // read on to the end, keep nothing
      body_.clear();
    } else if (!too_large_) {
      body_.append(data);
    }
    return true;
  }

  void onBodyEnd(std::string_view) override { finish(req_, *store_, body_, too_large_); }

  static void finish(Request& req, OriginEventStore& store, const std::string& body,
                     bool too_large) {
    if (too_large)
      return answer(
          req, 413,
          std::string("the events body is larger than ").append(std::to_string(kMaxBody)));
    std::string text;
    std::string error;
    std::string_view encoding = req.header("content-encoding");
    if (encoding == "gzip") {
      if (!gzipDecompress(body, kMaxInflated, text, error))
        return answer(req, 400, "invalid gzip body: " + error);
    } else if (encoding.empty() || encoding == "identity") {
      text = body;
    } else {
      return answer(req, 415, "unsupported content-encoding");
    }
    size_t added = 0;
    if (!store.add(text, added, error)) return answer(req, 400, error);
    answer(req, 200, "OK");
  }

 private:
  Request& req_;
  std::shared_ptr<OriginEventStore> store_;
  std::string body_;
  bool too_large_ = false;
};

bool stringField(json_t* object, const char* name) {
  return json_is_string(json_object_get(object, name));
}

}  // namespace

bool OriginEventStore::add(std::string_view ndjson, size_t& added, std::string& error) {
  std::vector<std::pair<std::string, std::string>> parsed;  // deployment id, compact JSON
  size_t number = 0;
  while (!ndjson.empty()) {
    ++number;
    const size_t nl = ndjson.find('\n');
    std::string_view line = ndjson.substr(0, nl);
    ndjson = nl == std::string_view::npos ? std::string_view() : ndjson.substr(nl + 1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json_error_t json_error;
    json_t* event = json_loadb(line.data(), line.size(), 0, &json_error);
    json_t* id = json_object_get(event, "deployment_id");
    const bool ok = json_is_object(event) && json_is_string(id) && json_string_length(id) > 0 &&
                    json_string_length(id) <= kMaxDeploymentId && stringField(event, "timestamp") &&
                    stringField(event, "event_type") && stringField(event, "execution_id") &&
                    stringField(event, "region") && json_is_object(json_object_get(event, "event"));
    if (ok) {
      char* compact = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
      if (compact) parsed.emplace_back(json_string_value(id), compact);
      free(compact);
    }
    json_decref(event);
    if (!ok) {
      error.assign("line ").append(std::to_string(number)).append(" is not an event");
      return false;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, text] : parsed) {
    auto it = by_deployment_.find(id);
    if (it == by_deployment_.end()) {
      if (by_deployment_.size() >= max_deployments_) {
        by_deployment_.erase(recent_.back());
        recent_.pop_back();
      }
      recent_.push_front(id);
      it = by_deployment_.emplace(id, Events{{}, recent_.begin()}).first;
    } else {
      recent_.splice(recent_.begin(), recent_, it->second.recent);
    }
    it->second.lines.push_back(std::move(text));
    if (it->second.lines.size() > per_deployment_) it->second.lines.pop_front();
  }
  added = parsed.size();
  return true;
}

std::string OriginEventStore::json(std::string_view deployment_id) const {
  json_t* id = json_stringn(deployment_id.data(), deployment_id.size());
  char* id_text = json_dumps(id, JSON_ENCODE_ANY);
  json_decref(id);
  std::string out = "{\"deployment_id\":";
  out += id_text ? id_text : "\"\"";
  free(id_text);
  out += ",\"events\":[";
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_deployment_.find(std::string(deployment_id));
    if (it != by_deployment_.end()) {
      bool first = true;
      for (const std::string& line : it->second.lines) {
        if (!first) out += ',';
        first = false;
        out += line;
      }
    }
  }
  out += "]}";
  return out;
}

void serveOriginEvents(Request& req, const std::shared_ptr<const SubhosterTable>& subhosters,
                       const std::shared_ptr<OriginEventStore>& store) {
  if (req.method() == "GET" || req.method() == "HEAD") {
    std::string_view id = queryParam(req.query(), "deployment_id");
    if (id.empty() || id.size() > kMaxDeploymentId)
      return answer(req, 400, "missing or malformed deployment_id");
    return answer(req, 200, store->json(id), "application/json");
  }
  if (req.method() != "POST") return answer(req, 405, "method not allowed");
  std::string error;
  if (!verifyEventsToken(req, *subhosters, error))
    return answer(req, 401, "invalid token: " + error);
  if (!req.hasBody()) return EventsUpload::finish(req, *store, {}, false);
  auto upload = std::make_unique<EventsUpload>(req, store);
  EventsUpload* raw = upload.get();
  req.setTask(std::move(upload));
  req.readBody(raw);
}

std::string_view queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=')
      return pair.substr(name.size() + 1);
  }
  return {};
}

}  // namespace subgate
