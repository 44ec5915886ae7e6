#include "core/error/error_kind.h"

#include <gtest/gtest.h>

#include <set>

namespace subgate {
namespace {

TEST(ErrorKind, EveryKindHasAUniqueCodeAndAFailureStatus) {
  std::set<std::string_view> codes;
  for (size_t i = 0; i < static_cast<size_t>(ErrorKind::kCount); ++i) {
    const ErrorInfo& info = errorInfo(static_cast<ErrorKind>(i));
    EXPECT_GE(info.status, 400) << info.code;
    EXPECT_LT(info.status, 600) << info.code;
    EXPECT_FALSE(info.message.empty()) << info.code;
    EXPECT_TRUE(codes.insert(info.code).second) << "duplicate " << info.code;
    EXPECT_NE(reasonPhrase(info.status), "Unknown") << info.status;
  }
}

TEST(ErrorKind, ProtocolTableStatuses) {
  // protocol.md §2, row by row.
  struct Row {
    ErrorKind kind;
    int status;
    const char* code;
  } rows[] = {
      {ErrorKind::kMissingForwardedHost, 400, "MISSING_XFORWARDED_HOST"},
      {ErrorKind::kInvalidHostHeader, 400, "INVALID_HOST_HEADER"},
      {ErrorKind::kMissingSubhost, 401, "MISSING_XDENO_SUBHOST"},
      {ErrorKind::kInvalidSubhost, 401, "INVALID_XDENO_SUBHOST"},
      {ErrorKind::kInternalBootRpcError, 502, "INTERNAL_BOOT_RPC_ERROR"},
      {ErrorKind::kOriginBootRpcError, 502, "ORIGIN_BOOT_RPC_ERROR"},
      {ErrorKind::kDeploymentNotFound, 404, "DEPLOYMENT_NOT_FOUND"},
      {ErrorKind::kOriginMissingConfig, 502, "ORIGIN_MISSING_XDENO_CONFIG"},
      {ErrorKind::kOriginInvalidConfig, 502, "ORIGIN_INVALID_XDENO_CONFIG"},
      {ErrorKind::kDeploymentFailed, 502, "DEPLOYMENT_FAILED"},
      {ErrorKind::kMemoryLimit, 502, "MEMORY_LIMIT"},
      {ErrorKind::kTimeLimit, 502, "TIME_LIMIT"},
      {ErrorKind::kLoopDetected, 508, "LOOP_DETECTED"},
      {ErrorKind::kRequestTimedOut, 504, "REQUEST_TIMED_OUT"},
      {ErrorKind::kCapacityExceeded, 503, "CAPACITY_EXCEEDED"},
      {ErrorKind::kBadRequest, 400, "BAD_REQUEST"},
      {ErrorKind::kInternalServerError, 500, "INTERNAL_SERVER_ERROR"},
      {ErrorKind::kNotFound, 404, "NOT_FOUND"},
      {ErrorKind::kHeaderTooLarge, 431, "HEADER_TOO_LARGE"},
      {ErrorKind::kUriTooLong, 414, "URI_TOO_LONG"},
      {ErrorKind::kPayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"},
      {ErrorKind::kClientTimeout, 408, "CLIENT_TIMEOUT"},
      {ErrorKind::kUpstreamError, 502, "UPSTREAM_ERROR"},
      {ErrorKind::kUpstreamTimedOut, 504, "UPSTREAM_TIMED_OUT"},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(errorInfo(row.kind).status, row.status) << row.code;
    EXPECT_EQ(errorInfo(row.kind).code, row.code);
  }
}

TEST(ErrorKind, HeaderValueIsOneLineJson) {
  EXPECT_EQ(errorHeaderValue(ErrorKind::kBadRequest, "bad \"x\"\nnext\\"),
            "{\"code\":\"BAD_REQUEST\",\"message\":\"bad \\\"x\\\"\\nnext\\\\\"}");
  std::string control;
  appendJsonEscaped(control, std::string_view("\x01", 1));
  EXPECT_EQ(control, "\\u0001");
}

}  // namespace
}  // namespace subgate
