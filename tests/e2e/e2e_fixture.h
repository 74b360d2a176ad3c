// The gtest fixture of the end-to-end tests (e2e.h's processes, e2e.cc implements it).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "e2e.h"

namespace loyalty::e2e {

// A test with a folder of its own (<tmp>/loyalty_e2e_<test>_<pid>, kept when the test failed), a
// throwaway PKI with a client certificate for each of the terminal ids given, and the HQ
// and terminal processes it started, stopped at its end.
class E2eFixture : public ::testing::Test {
 protected:
  explicit E2eFixture(std::vector<std::string> terminal_ids)
      : terminal_ids_(std::move(terminal_ids)) {}
  void SetUp() override;
  void TearDown() override;

  // Starts HQ (over TLS with the PKI's server certificate unless tls is false; with
  // `rules_toml` as its rules file when not empty) as hq_.
  HqProcess& StartHq(bool tls = true, const std::string& rules_toml = "");
  // A terminal reaching HQ at hq_port over mutual TLS with its own certificate, a lane of
  // store S001 (where Enrol enrols members by default).
  TerminalOptions Options(const std::string& terminal_id, uint16_t hq_port) const;
  // Starts a terminal in dir_/<terminal id>, kept in terminals_.
  TerminalProcess& AddTerminal(TerminalOptions options);
  static void ExpectOk(const json& run) { EXPECT_EQ(run.value("result", ""), "ok") << run.dump(); }

  std::vector<std::string> terminal_ids_;
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestPki> pki_;
  std::unique_ptr<HqProcess> hq_;
  std::vector<std::unique_ptr<TerminalProcess>> terminals_;
};

}  // namespace loyalty::e2e
