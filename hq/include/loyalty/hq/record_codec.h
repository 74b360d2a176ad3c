// The form HQ stores an uploaded checkout in (the `body` of its `checkouts` row).
//
// A checkout is stored once per upload and read back only to check a refund or a
// claw-back against it and for a restored terminal's fetch, so the write is what counts: as
// JSON text it cost a tree and a dump per checkout (about a quarter of an upload's time in
// a profile of the busy hour). The compact form is a version byte (2), then every field of
// sync::Checkout in declaration order up to the lines, then cashier_id (version 1 bodies
// end after the lines and read with no cashier): integers as zigzag LEB128 varints, strings as a
// varint length and the bytes, the member id as a presence byte and a varint, each line's
// two flags as one byte. Bodies stored as JSON text by older versions (they start with
// '{') are still read.
//
// Reading either form applies the limits of the sync codec (sync/PROTOCOL.md, the table of
// value limits and the string bounds of a Checkout): a stored record is outside input as
// much as an upload is. Anything else — a truncated body, bytes left over, an unknown
// version, a value past a limit — is `internal` with a message that says what.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "loyalty/base/status.h"
#include "loyalty/sync/messages.h"

namespace loyalty::hq {

std::string EncodeCheckout(const sync::Checkout& c);
Result<sync::Checkout> DecodeCheckout(std::string_view body);

}  // namespace loyalty::hq
