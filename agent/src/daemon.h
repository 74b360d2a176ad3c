// loyaltyd's process: configuration, start-up in order, signals, shutdown in reverse.
#pragma once

namespace loyalty::agent {

// Runs loyaltyd with its command line; returns the process exit status.
int RunDaemon(int argc, char** argv);

}  // namespace loyalty::agent
