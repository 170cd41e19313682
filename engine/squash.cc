// The whole algorithm on one screen: each pass is a free function over the Context, timed,
// with an error checkpoint after it.
#include "engine/squash.h"

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

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

template <class Pass>
Status timed(Context& ctx, const char* name, Pass pass) {
  auto start = std::chrono::steady_clock::now();
  Status st = pass(ctx);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ctx.timings.push_back({name, took.count(), peak_rss()});
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

  if (ctx.opts.daemon_image()) DSQ_TRY(timed(ctx, "save", save_from_daemon));
  DSQ_TRY(timed(ctx, "open", open_image));
  DSQ_TRY(timed(ctx, "select", select_layers));
  DSQ_TRY(timed(ctx, "index", index_layers));
  if (ctx.selection.first_layer < ctx.layer_count()) {
    DSQ_TRY(timed(ctx, "resolve", resolve));
    DSQ_TRY(timed(ctx, "plan", plan));
  }
  DSQ_TRY(timed(ctx, "write", write_image));
  if (ctx.opts.load_image.value_or(ctx.opts.daemon_image()))
    DSQ_TRY(timed(ctx, "load", load_into_daemon));
  uint64_t entries = 0, path_bytes = 0;
  for (const LayerIndex& l : ctx.index) entries += l.entries.size(), path_bytes += l.arena.size();
  ctx.result.memory_bound =
      memory_bound(entries, path_bytes, tbb::this_task_arena::max_concurrency());
  return {};
}

}  // namespace dsq
