// Arbitrary bytes through the upload reader's scanner (sync/protocol/src/json_scan.h) under a
// handler that takes every event, and through nlohmann's SAX parser: what the scanner reads
// through, nlohmann reads to the same events (numbers as the scanner passes them:
// support/json_events.h); what nlohmann refuses, the scanner refuses. Never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "json_scan.h"
#include "support/json_events.h"

using Recorder = loyalty::testing::JsonEventRecorder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Recorder scanned;
  if (!loyalty::sync::internal::JsonScanner<Recorder>(text, &scanned).Run()) return 0;
  Recorder reference;
  bool valid = false;
  try {
    valid = nlohmann::json::sax_parse(text.begin(), text.end(), &reference);
  } catch (const std::exception&) {
    valid = false;
  }
  if (!valid || text.find('\0') != std::string::npos || scanned.events != reference.events)
    std::abort();
  return 0;
}
