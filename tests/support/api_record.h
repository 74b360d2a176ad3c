// The answers the suite receives from the POS API and from HQ, recorded for the check
// against the OpenAPI documents (docs/openapi; tests/openapi/validate_responses.py, ctest
// `openapi_responses`; docs/testing.md). Header-only; link nlohmann_json.
//
// When the environment variable LOYALTY_OPENAPI_RECORD names a folder (ctest sets it for
// the tests added with loyalty_add_test(... OPENAPI)), every RecordApiResponse() appends
// one JSON line to <folder>/<program>-<pid>.jsonl:
//
//   {"api": "pos"|"hq", "method", "target", "status", "content_type", "body", "test"}
//
// `target` is the request target as sent (path and query), `body` the response body as
// received (text), `test` the running gtest test. Without the variable nothing is written.
// A request that got no HTTP answer is not recorded, nor a HEAD answer. Each line is one write(2)
// to a file opened with O_APPEND, under a mutex: safe from any thread of the process.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "loyalty/base/status.h"
#include "loyalty/http/message.h"
#include "support/http_reply.h"

namespace loyalty::testing {

// Which server answered: the agent's POS API, or HQ (admin and terminal routes alike; the
// validator tells them apart by path).
enum class Api { kPos, kHq };

namespace api_record_internal {

struct Sink {
  std::mutex mu;
  int fd = -1;  // -1: not opened yet (or recording is off: `off`)
  bool off = false;
  pid_t pid = 0;  // the process that opened fd (a forked child opens its own file)
};

inline Sink& TheSink() {
  static Sink* sink = new Sink;  // never destroyed: answers may be recorded during exit
  return *sink;
}

// Opens the file on first use; false when recording is off. Called under the sink's mutex.
inline bool Open(Sink& s) {
  if (s.off) return false;
  if (s.fd >= 0 && s.pid == ::getpid()) return true;
  const char* dir = std::getenv("LOYALTY_OPENAPI_RECORD");
  if (dir == nullptr || *dir == '\0') {
    s.off = true;
    return false;
  }
  std::string program = "test";
  if (const char* name = ::program_invocation_short_name; name != nullptr && *name != '\0')
    program = name;
  s.pid = ::getpid();
  const std::string path =
      std::string(dir) + "/" + program + "-" + std::to_string(static_cast<long>(s.pid)) + ".jsonl";
  s.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (s.fd < 0) {
    // Recording was asked for: a test that cannot record must not pass unnoticed.
    ADD_FAILURE() << "LOYALTY_OPENAPI_RECORD: cannot open " << path << ": " << std::strerror(errno);
    s.off = true;
    return false;
  }
  return true;
}

inline std::string CurrentTest() {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  return t == nullptr ? std::string() : std::string(t->test_suite_name()) + "." + t->name();
}

}  // namespace api_record_internal

// Records one answer (see above). status < 100: no HTTP answer, nothing recorded; nor a
// HEAD answer (GET's without the body: nothing for the documents to check).
inline void RecordApiResponse(Api api, std::string_view method, std::string_view target, int status,
                              std::string_view content_type, std::string_view body) {
  if (status < 100 || method == "HEAD") return;
  auto& sink = api_record_internal::TheSink();
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    if (sink.off) return;
  }
  nlohmann::json line{{"api", api == Api::kPos ? "pos" : "hq"},
                      {"method", std::string(method)},
                      {"target", std::string(target)},
                      {"status", status},
                      {"content_type", std::string(content_type)},
                      {"body", std::string(body)},
                      {"test", api_record_internal::CurrentTest()}};
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::lock_guard<std::mutex> lock(sink.mu);
  if (!api_record_internal::Open(sink)) return;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(sink.fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ADD_FAILURE() << "LOYALTY_OPENAPI_RECORD: write failed: " << std::strerror(errno);
      return;
    }
    done += static_cast<size_t>(n);
  }
}

// The same for an answer as the HTTP client returns it (a failed request is not recorded).
inline void RecordApiResponse(Api api, std::string_view method, std::string_view target,
                              const Result<http::Response>& r) {
  if (r.ok()) RecordApiResponse(api, method, target, r->status, r->content_type, r->body);
}

inline void RecordApiResponse(Api api, std::string_view method, std::string_view target,
                              const http::Response& r) {
  RecordApiResponse(api, method, target, r.status, r.content_type, r.body);
}

// Records the client's answer and returns it as tests read it.
inline HttpReply RecordedReply(Api api, std::string_view method, std::string_view target,
                               const Result<http::Response>& r) {
  RecordApiResponse(api, method, target, r);
  return ToHttpReply(r);
}

}  // namespace loyalty::testing
