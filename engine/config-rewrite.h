// The new image config: the original's fields in their order with their exact bytes, except
// `created`, `rootfs.diff_ids`, `history` and `container` (removed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/status.h"

namespace dsq {

struct ConfigEdit {
  std::string created;                     // RFC 3339 timestamp
  size_t kept_history = 0;                 // history entries kept from the bottom
  size_t kept_layers = 0;                  // diff_ids kept from the bottom
  std::optional<std::string> new_diff_id;  // none when the squashed entries held no data
  std::string comment;
  bool write_history = true;  // false when the original config has none
};

Status rewrite_config(std::string_view config, const ConfigEdit& edit, std::string& out);

// "2026-12-04T16:18:56.123456789Z" for now, or "…Z" at whole seconds for SOURCE_DATE_EPOCH.
std::string rfc3339_now(std::optional<int64_t> source_date_epoch);

// ChainID of a stack of diff_ids (OCI image spec).
std::string chain_id(const std::vector<std::string>& diff_ids);

}  // namespace dsq
