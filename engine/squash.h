// Entry point of the engine: runs the passes of a squash in order.
#pragma once

#include "engine/context.h"
#include "io/status.h"

namespace dsq {

// Runs every pass; on failure nothing is left behind (temp files removed, no output).
Status squash(Context& ctx);

}  // namespace dsq
