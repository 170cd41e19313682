// Docker's reference grammar, reduced to what a tag needs: lowercase path components, an
// optional registry host (it has a '.' or ':' or is "localhost"), a tag of up to 128 word
// characters; digests are not tags and are refused.
#include "engine/image-ref.h"

#include <cctype>

namespace dsq {

namespace {

bool valid_component(std::string_view c) {
  if (c.empty()) return false;
  if (!std::isalnum(static_cast<unsigned char>(c.front())) ||
      !std::isalnum(static_cast<unsigned char>(c.back())))
    return false;
  for (char ch : c)
    if (!(std::islower(static_cast<unsigned char>(ch)) ||
          std::isdigit(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'))
      return false;
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128 || t[0] == '.' || t[0] == '-') return false;
  for (char ch : t)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-'))
      return false;
  return true;
}

}  // namespace

Status parse_image_ref(const std::string& text, ImageRef& out) {
  auto bad = [&](const std::string& why) {
    return Status::error("invalid tag '" + text + "': " + why, 2);
  };
  if (text.find('@') != std::string::npos) return bad("a digest cannot be used as a tag");
  std::string name = text, tag = "latest";
  size_t colon = text.rfind(':');
  if (colon != std::string::npos && text.find('/', colon) == std::string::npos) {
    name = text.substr(0, colon);
    tag = text.substr(colon + 1);
  }
  if (!valid_tag(tag)) return bad("bad tag '" + tag + "'");
  std::string domain, path = name;
  size_t slash = name.find('/');
  if (slash != std::string::npos) {
    std::string first = name.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      domain = first;
      path = name.substr(slash + 1);
    }
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (!valid_component(std::string_view(path).substr(start, end - start)))
      return bad("repository names are lowercase letters, digits and separators");
    start = end + 1;
  }
  std::string full_path = path;
  if (domain.empty() && path.find('/') == std::string::npos) full_path = "library/" + path;
  std::string full_domain = domain.empty() ? "docker.io" : domain;
  out.repo = domain.empty() || domain == "docker.io" ? path : domain + "/" + path;
  if (domain == "docker.io" && path.starts_with("library/")) out.repo = path.substr(8);
  out.tag = tag;
  out.familiar = out.repo + ":" + tag;
  out.full = full_domain + "/" + full_path + ":" + tag;
  return {};
}

}  // namespace dsq
