// loyaltyctl: see loyalty/ctl/ctl.h and docs/loyaltyctl.md.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "loyalty/ctl/ctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  loyalty::ctl::RunOptions opts;
  opts.out_is_tty = ::isatty(STDOUT_FILENO) == 1;
  return loyalty::ctl::Run(args, std::cout, std::cerr, opts);
}
