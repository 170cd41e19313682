// The config is rewritten field by field from simdjson's raw value text, so fields this tool
// does not know (and their formatting inside) pass through unchanged; only the separators
// between top-level fields are normalised to Docker's compact form.
#include "engine/config-rewrite.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>

#include "io/json.h"
#include "io/sha256.h"

namespace dsq {

namespace {

using simdjson::ondemand::array;
using simdjson::ondemand::object;

Status rewrite_rootfs(simdjson::ondemand::value value, const ConfigEdit& edit, std::string& out) {
  object rootfs;
  if (auto err = value.get_object().get(rootfs)) return json_error("config: rootfs", err);
  out += '{';
  bool first = true;
  for (auto field : rootfs) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return json_error("config: rootfs", err);
    if (!first) out += ',';
    first = false;
    out += json_quote(key) + ':';
    if (key != "diff_ids") {
      std::string_view raw;
      DSQ_TRY(json_raw(field.value(), raw));
      out += raw;
      continue;
    }
    array ids;
    if (auto err = field.value().get_array().get(ids))
      return json_error("config: rootfs.diff_ids", err);
    out += '[';
    size_t i = 0;
    for (auto id : ids) {
      if (i == edit.kept_layers) break;
      std::string_view raw;
      DSQ_TRY(json_raw(id.value(), raw));
      out += (i++ ? "," : "");
      out += raw;
    }
    if (edit.new_diff_id) out += (i ? "," : "") + json_quote(*edit.new_diff_id);
    out += ']';
  }
  out += '}';
  return {};
}

Status rewrite_history(simdjson::ondemand::value value, const ConfigEdit& edit, std::string& out) {
  array list;
  if (auto err = value.get_array().get(list)) return json_error("config: history", err);
  out += '[';
  size_t i = 0;
  for (auto item : list) {
    if (i == edit.kept_history) break;
    std::string_view raw;
    DSQ_TRY(json_raw(item.value(), raw));
    out += (i++ ? "," : "");
    out += raw;
  }
  out += (i ? "," : "");
  out += "{\"created\":" + json_quote(edit.created) + ",\"comment\":" + json_quote(edit.comment);
  if (!edit.new_diff_id) out += ",\"empty_layer\":true";
  out += "}]";
  return {};
}

}  // namespace

Status rewrite_config(std::string_view config, const ConfigEdit& edit, std::string& out) {
  simdjson::padded_string json(config);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (auto err = parser.iterate(json).get(doc)) return json_error("config", err);
  object root;
  if (auto err = doc.get_object().get(root)) return json_error("config", err);
  out = "{";
  bool first = true;
  for (auto field : root) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return json_error("config", err);
    if (key == "container") continue;
    if (key == "history" && !edit.write_history) continue;
    if (!first) out += ',';
    first = false;
    out += json_quote(key) + ':';
    if (key == "created") {
      out += json_quote(edit.created);
    } else if (key == "rootfs") {
      DSQ_TRY(rewrite_rootfs(field.value(), edit, out));
    } else if (key == "history") {
      DSQ_TRY(rewrite_history(field.value(), edit, out));
    } else {
      std::string_view raw;
      DSQ_TRY(json_raw(field.value(), raw));
      out += raw;
    }
  }
  out += '}';
  return {};
}

std::string rfc3339_now(std::optional<int64_t> source_date_epoch) {
  using namespace std::chrono;
  int64_t secs = 0;
  long nanos = 0;
  if (source_date_epoch) {
    secs = *source_date_epoch;
  } else {
    auto now = duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
    secs = now / 1000000000;
    nanos = static_cast<long>(now % 1000000000);
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (nanos != 0) {
    std::snprintf(buf, sizeof buf, ".%09ld", nanos);
    out += buf;
  }
  return out + "Z";
}

std::string chain_id(const std::vector<std::string>& diff_ids) {
  if (diff_ids.empty()) return {};
  std::string chain = diff_ids[0];
  for (size_t i = 1; i < diff_ids.size(); ++i) chain = sha256_digest(chain + " " + diff_ids[i]);
  return chain;
}

}  // namespace dsq
