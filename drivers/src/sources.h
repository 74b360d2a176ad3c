// Private: one factory per kind; MakeSource() validates the common options first.
#pragma once

#include <memory>

#include "loyalty/drivers/source.h"

namespace loyalty::drivers::internal {

Result<std::unique_ptr<Source>> MakeFifoSource(const SourceOptions&, SourceEvents, const Clock&);
Result<std::unique_ptr<Source>> MakeSerialSource(const SourceOptions&, SourceEvents, const Clock&);
Result<std::unique_ptr<Source>> MakeImageSource(const SourceOptions&, SourceEvents, const Clock&);
Result<std::unique_ptr<Source>> MakeUsbSource(const SourceOptions&, SourceEvents, const Clock&);

}  // namespace loyalty::drivers::internal
