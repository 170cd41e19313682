// Runs the engine's index -> resolve -> plan -> emit passes in-process on layers described in
// gen-image's spec language, and applies both the original layers and the squashed result with
// the reference applier so a test can compare the two filesystems.
#pragma once

#include <string>
#include <vector>

#include "engine/plan-output.h"

namespace dsq::test {

struct Scenario {
  std::string error;                  // engine error, "" on success
  std::vector<std::string> expected;  // reference tree of all original layers
  std::vector<std::string> actual;    // reference tree of kept layers + the new layer
  std::vector<std::string> entries;   // the new layer's entries in order: "TYPE path[ -> target]"
  std::string layer;                  // the new layer's bytes
  std::vector<std::string> inputs;    // the original layer tars
  PlanStats stats;
};

// `spec` uses gen-image's directives; layers [0, first_squashed) are kept.
Scenario squash_spec(const std::string& spec, size_t first_squashed = 0);

}  // namespace dsq::test
