// JSON is parsed with simdjson's On-Demand API so that field values can be copied as their raw
// source text; only strings we produce ourselves are quoted here.
#include "io/json.h"

#include <cstdio>

namespace dsq {

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

Status json_error(std::string_view where, simdjson::error_code code) {
  return Status::error(std::string(where) + ": invalid JSON (" + simdjson::error_message(code) +
                       ")");
}

Status json_raw(simdjson::ondemand::value value, std::string_view& out) {
  simdjson::ondemand::json_type type;
  if (auto err = value.type().get(type)) return json_error("value", err);
  simdjson::error_code err = simdjson::SUCCESS;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object obj;
    err = value.get_object().get(obj);
    if (!err) err = obj.raw_json().get(out);
  } else if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array arr;
    err = value.get_array().get(arr);
    if (!err) err = arr.raw_json().get(out);
  } else {
    out = value.raw_json_token();
  }
  if (err) return json_error("value", err);
  while (!out.empty() &&
         (out.back() == ' ' || out.back() == '\n' || out.back() == '\r' || out.back() == '\t'))
    out.remove_suffix(1);
  return {};
}

}  // namespace dsq
