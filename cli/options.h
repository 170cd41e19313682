// Command-line flags: one table (CLI11) that also generates --help.
#pragma once

#include <string>
#include <vector>

#include "engine/context.h"

namespace dsq {

// Parses argv into `opts`. Returns -1 to continue, or an exit code (0 after --help/--version,
// 2 after a usage error, with the message already printed).
int parse_options(int argc, char** argv, Options& opts);

// "yes/true/t/y/1" or "no/false/f/n/0" (any case), as docker-squash 1.2 accepts.
bool parse_bool(std::string text, bool& out);

}  // namespace dsq
