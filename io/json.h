// JSON helpers around simdjson: parsing with errors translated to Status, the raw text of a
// value (so unknown fields survive byte-for-byte), and string quoting for the JSON we write.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

#include "io/status.h"

namespace dsq {

// `"text"` with JSON escapes.
std::string json_quote(std::string_view text);

// The exact source text of `value` (object, array or scalar), whitespace trimmed.
Status json_raw(simdjson::ondemand::value value, std::string_view& out);

// "where: invalid JSON (simdjson's reason)".
Status json_error(std::string_view where, simdjson::error_code code);

}  // namespace dsq
