// modules/status: the table of `subgate status --watch`, rendered from one JSON snapshot.
#include "modules/status/status_table.h"

#include <gtest/gtest.h>
#include <jansson.h>

#include <string>

namespace subgate {
namespace {

std::string render(const char* json) {
  json_error_t error;
  json_t* status = json_loads(json, 0, &error);
  EXPECT_TRUE(status) << error.text;
  std::string out = renderStatusTable(status, "http://127.0.0.1:8081/status");
  json_decref(status);
  return out;
}

TEST(StatusTable, OneLinePerDeploymentWithTotalsAndRates) {
  // 2026-12-07 03:00:00 UTC; the history's last interval: 2 s with 6 more 2xx, 2 4xx, 1 5xx.
  const std::string table = render(R"({
    "time_ms": 1796612400000, "isolates": 3, "spares": 1, "queued": 2, "ready": 4,
    "boot_failures": 1, "isolate_boot_failures": 1,
    "requests": {"1xx": 0, "2xx": 40, "3xx": 0, "4xx": 5, "5xx": 2},
    "history": {"interval_ms": 2000, "samples": [
      {"time_ms": 1796612396000, "requests": [0, 30, 0, 3, 1]},
      {"time_ms": 1796612398000, "requests": [0, 34, 0, 3, 1]},
      {"time_ms": 1796612400000, "requests": [0, 40, 0, 5, 2]}]},
    "deployments": [
      {"deployment_id": "world", "isolate_limit": 50, "queued": 2, "sticky": 1,
       "isolates": [{"id": 3, "instance_id": "", "active": 50},
                    {"id": 5, "instance_id": "room-1", "active": 1}]},
      {"deployment_id": "hello", "isolate_limit": 10, "queued": 0, "sticky": 0,
       "isolates": [{"id": 1, "instance_id": "", "active": 2}]}]})");
  EXPECT_EQ(table,
            "subgate status  http://127.0.0.1:8081/status  2026-12-07 03:00:00 UTC\n"
            "requests 4.50/s (4xx 1.00/s, 5xx 0.50/s)  47 since start (4xx 5, 5xx 2)\n"
            "isolates 3  spares 1  queued 2  booted 4  boot failures 2\n"
            "\n"
            "DEPLOYMENT  ISOLATES  ACTIVE/LIMIT  QUEUED  STICKY\n"
            "hello              1          2/10       0       0\n"
            "world              2         51/50       2       1\n"
            "TOTAL              3         53/60       2       1\n");
}

TEST(StatusTable, AnEmptyPoolAndNoHistoryYet) {
  const std::string table = render(R"({"time_ms": 0, "deployments": [],
                                       "history": {"samples": [{"time_ms": 5}]}})");
  EXPECT_EQ(table,
            "subgate status  http://127.0.0.1:8081/status  -\n"
            "requests -/s  0 since start (4xx 0, 5xx 0)\n"
            "isolates 0  spares 0  queued 0  booted 0  boot failures 0\n"
            "\n"
            "DEPLOYMENT  ISOLATES  ACTIVE/LIMIT  QUEUED  STICKY\n"
            "(no deployment loaded)\n"
            "TOTAL              0           0/-       0       0\n");
}

TEST(StatusTable, TenantTextCannotDriveTheTerminal) {
  const std::string table = render(
      R"({"deployments": [{"deployment_id": "evil\u001b[2J\u0007\u009b31m", "isolates": []}]})");
  EXPECT_EQ(table.find('\x1b'), std::string::npos);
  EXPECT_EQ(table.find('\a'), std::string::npos);
  EXPECT_EQ(table.find("\xc2\x9b"), std::string::npos);
  EXPECT_NE(table.find("evil?[2J??31m"), std::string::npos) << table;
}

TEST(StatusTable, TerminalTextIsCutToItsWidth) {
  EXPECT_EQ(terminalText("hello", 5), "hello");
  EXPECT_EQ(terminalText("hello world", 8), "hello...");
  EXPECT_EQ(terminalText("caf\xc3\xa9-caf\xc3\xa9-caf\xc3\xa9", 8), "caf\xc3\xa9-...");
  EXPECT_EQ(terminalText("a\tb\nc\x7f", 10), "a?b?c?");
  EXPECT_EQ(terminalText("abcdef", 2), "..");
  // The deployment column stops at 40 columns.
  const std::string table = render(
      R"({"deployments": [{"deployment_id": "a-very-long-deployment-identifier-that-goes-on-and-on",
          "isolates": []}]})");
  EXPECT_NE(table.find("a-very-long-deployment-identifier-tha... "), std::string::npos) << table;
}

}  // namespace
}  // namespace subgate
