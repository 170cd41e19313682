// Streaming the planned layer into a file descriptor while computing its diff_id.
#pragma once

#include <string>
#include <vector>

#include "engine/plan-output.h"
#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

// Writes exactly plan.layer_size bytes to `fd` (at its current position); `digest` receives
// "sha256:<hex>" of those bytes. `where` names the output in errors.
Status emit_layer(const Plan& plan, const std::vector<Bytes>& tars, int fd,
                  const std::string& where, std::string& digest);

}  // namespace dsq
