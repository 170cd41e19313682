// The whole algorithm on one screen: each pass is a free function over the Context, timed,
// with an error checkpoint after it.
#include "engine/squash.h"

#include <tbb/global_control.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "engine/emit-layer.h"
#include "engine/passes.h"

namespace dsq {

namespace {

uint64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

uint64_t layer_bytes(const Context& ctx) {
  uint64_t n = 0;
  for (const LayerSource& l : ctx.image.layers) n += l.tar.size();
  return n;
}

uint64_t index_entries(const Context& ctx) {
  uint64_t n = 0;
  for (const LayerIndex& l : ctx.index) n += l.entries.size();
  return n;
}

// Runs one pass, records its time, peak memory and what it went through, and reports it.
template <class Pass, class Amount>
Status timed(Context& ctx, const char* name, Pass pass, Amount amount, bool entries = false) {
  auto start = std::chrono::steady_clock::now();
  Status st = pass(ctx);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ctx.timings.push_back({name, took.count(), peak_rss(), st.ok() ? amount(ctx) : 0, entries});
  if (st.ok() && ctx.on_pass) ctx.on_pass(ctx.timings.back());
  return st;
}

}  // namespace

Status resolve(Context& ctx) {
  return resolve_paths(ctx.index, ctx.selection.first_layer, ctx.map);
}

Status plan(Context& ctx) {
  std::vector<Bytes> tars;
  std::vector<std::string> names;
  for (const LayerSource& l : ctx.image.layers) {
    tars.push_back(l.tar);
    names.push_back(l.name);
  }
  return plan_output(ctx.index, tars, names, ctx.map, ctx.selection.first_layer, 0, ctx.plan);
}

Status squash(Context& ctx) {
  std::unique_ptr<tbb::global_control> jobs;
  if (ctx.opts.jobs > 0)
    jobs = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                 ctx.opts.jobs);

  auto input = [](const Context& c) { return static_cast<uint64_t>(c.input.bytes().size()); };
  auto archive = [](const Context& c) { return c.result.archive_bytes; };
  auto none = [](const Context&) { return uint64_t{0}; };
  if (ctx.opts.daemon_image()) DSQ_TRY(timed(ctx, "save", save_from_daemon, input));
  DSQ_TRY(timed(ctx, "open", open_image, input));
  DSQ_TRY(timed(ctx, "select", select_layers, none));
  DSQ_TRY(timed(ctx, "index", index_layers, layer_bytes));
  if (ctx.selection.first_layer < ctx.layer_count()) {
    DSQ_TRY(timed(ctx, "resolve", resolve, index_entries, true));
    DSQ_TRY(timed(
        ctx, "plan", plan, [](const Context& c) { return uint64_t{c.plan.items.size()}; }, true));
  }
  DSQ_TRY(timed(ctx, "write", write_image, archive));
  if (ctx.opts.load()) DSQ_TRY(timed(ctx, "load", load_into_daemon, archive));
  uint64_t entries = 0, path_bytes = 0;
  for (const LayerIndex& l : ctx.index) entries += l.entries.size(), path_bytes += l.arena.size();
  ctx.result.memory_bound = memory_bound(entries, path_bytes,
                                         static_cast<unsigned>(tbb::global_control::active_value(
                                             tbb::global_control::max_allowed_parallelism)),
                                         ctx.result.layer_compression != Compression::kNone);
  return {};
}

}  // namespace dsq
