#include "sources.h"

namespace loyalty::drivers::internal {

Result<std::unique_ptr<Source>> MakeUsbSource(const SourceOptions& o, SourceEvents e,
                                              const Clock& c) {
  return Status::Error("unimplemented", "usb sources are not built yet");
}

}  // namespace loyalty::drivers::internal
