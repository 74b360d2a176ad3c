// Checks the encoder and both renderers share.
#pragma once

#include "loyalty/base/status.h"
#include "loyalty/qr/qr.h"

namespace loyalty::qr {

Status CheckErrorCorrection(ErrorCorrection level);
Status CheckModulePixels(int module_pixels);
// A symbol a renderer can draw: 21..177 modules a side in steps of 4, one cell per module.
Status CheckSymbol(const Symbol& symbol);

}  // namespace loyalty::qr
