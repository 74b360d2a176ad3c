// The checks that keep a program's event catalogue (loyalty/base/event_catalogue.h) true: its
// table in the docs lists exactly its events, and what the program logged names no other.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "loyalty/base/event_catalogue.h"

namespace loyalty::testing {

// Under `heading` of the doc (up to the next heading), a row "| `name` | level |" for every
// event of the catalogue and no row for any other.
inline void ExpectDocsListCatalogue(const std::string& doc_path, const std::string& heading,
                                    std::span<const EventInfo> catalogue,
                                    const std::string& code_file) {
  std::ifstream f(doc_path);
  ASSERT_TRUE(f) << doc_path << " not found";
  const std::string doc{std::istreambuf_iterator<char>(f), {}};
  size_t at = doc.find("\n" + heading + "\n");
  ASSERT_NE(at, std::string::npos) << doc_path << " has no heading \"" << heading << "\"";
  std::string section = doc.substr(at + 1 + heading.size());
  section = section.substr(0, section.find("\n#"));
  for (const auto& e : catalogue) {
    EXPECT_NE(section.find("\n| `" + std::string(e.name) + "` | " + std::string(e.level) + " |"),
              std::string::npos)
        << e.name << " (" << e.level << ") is not in the table under \"" << heading << "\" of "
        << doc_path;
  }
  size_t pos = 0, rows = 0;
  while ((pos = section.find("\n| `", pos)) != std::string::npos) {
    size_t end = section.find('`', pos + 4);
    std::string name = section.substr(pos + 4, end - pos - 4);
    EXPECT_NE(FindEvent(catalogue, name), nullptr)
        << name << " is documented under \"" << heading << "\" but not in " << code_file;
    ++rows;
    pos = end;
  }
  EXPECT_EQ(rows, catalogue.size());
}

// Every JSON line of a program's log ({"ts","level","event",...}) names an event of its
// catalogue (log_event_uncatalogued included: the program found one that is not); other lines
// are skipped.
inline void ExpectLogCatalogued(const std::string& log, std::span<const EventInfo> catalogue,
                                const std::string& code_file) {
  size_t at = 0;
  while (at < log.size()) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) continue;
    const std::string event = j["event"];
    EXPECT_NE(FindEvent(catalogue, event), nullptr)
        << event << " was logged but is not in " << code_file << ": " << line;
  }
}

}  // namespace loyalty::testing
