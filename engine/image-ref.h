// Image references as given to -t: "app", "app:1.0", "registry.example:5000/team/app:tag".
#pragma once

#include <string>

#include "io/status.h"

namespace dsq {

struct ImageRef {
  std::string familiar;  // as `docker images` shows it: "app:1.0"
  std::string full;      // "docker.io/library/app:1.0"
  std::string repo;      // familiar repository: "app"
  std::string tag;       // "1.0"
};

Status parse_image_ref(const std::string& text, ImageRef& out);

}  // namespace dsq
