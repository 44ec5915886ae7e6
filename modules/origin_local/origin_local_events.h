// The events half of origin_local (docs/origin.md "Events"): `POST .../events` takes what subgate's
// event sender posts (gzip'd NDJSON, a bearer token of a configured subhoster without
// deployment_id), and `GET .../events?deployment_id=ID` shows the last events kept for ID.
//
// Threading: the store is shared by every worker serving the location; it locks.
#pragma once

#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ingress/ingress.h"

namespace subgate {

class Request;

// The last `per_deployment` events of each of the `max_deployments` deployments that sent
// some most recently.
class OriginEventStore {
 public:
  explicit OriginEventStore(size_t per_deployment = 100, size_t max_deployments = 1000)
      : per_deployment_(per_deployment), max_deployments_(max_deployments) {}

  // Adds the events of an NDJSON body (empty lines skipped). Every line must be a JSON object
  // with string deployment_id (non-empty), timestamp, event_type, execution_id and region and an
  // object `event`; otherwise nothing is added and `error` names the first bad line.
  bool add(std::string_view ndjson, size_t& added, std::string& error);
  // {"deployment_id":ID,"events":[...]}, oldest first (none: an empty list).
  std::string json(std::string_view deployment_id) const;

 private:
  struct Events {
    std::deque<std::string> lines;  // compact JSON objects
    std::list<std::string>::iterator recent;
  };
  size_t per_deployment_;
  size_t max_deployments_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Events> by_deployment_;
  std::list<std::string> recent_;  // deployment ids, most recently added to first
};

// Answers a request for `.../events`: POST stores, GET shows; 405 otherwise.
void serveOriginEvents(Request& req, const std::shared_ptr<const SubhosterTable>& subhosters,
                       const std::shared_ptr<OriginEventStore>& store);

// The raw value of query parameter `name` ("a=1&b=2"), or "" (not percent-decoded: the
// origin's ids are plain).
std::string_view queryParam(std::string_view query, std::string_view name);

}  // namespace subgate
