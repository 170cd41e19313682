// Micro benchmarks of the three engine stages on generated layers: indexing (bytes and entries
// per second), resolving the path map (entries per second) and emitting the planned layer
// (bytes per second). Each checks its result once before it is timed.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "engine/emit-layer.h"
#include "engine/layer-index.h"
#include "engine/path-map.h"
#include "engine/plan-output.h"
#include "tools/image-builder.h"

namespace {

using namespace dsq;

// Three layers: 20k files, then 30% overwritten and 5% deleted in each upper layer.
struct Fixture {
  std::vector<MappedFile> files;
  std::vector<Bytes> tars;
  std::vector<std::string> names;
  size_t entries = 0;
  uint64_t bytes = 0;

  Fixture() {
    uint64_t seed = 7;
    auto next = [&] {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      return seed >> 33;
    };
    const size_t kFiles = 20000;
    for (int l = 0; l < 3; ++l) {
      builder::Layer layer;
      for (size_t d = 0; d < 200; ++d) {
        builder::Entry dir;
        dir.kind = builder::Kind::kDir;
        dir.path = "d" + std::to_string(d);
        dir.mode = 0755;
        layer.entries.push_back(dir);
        for (size_t f = d; f < kFiles; f += 200) {
          uint64_t r = next() % 100;
          if (l > 0 && r >= 35) continue;
          builder::Entry e;
          e.path = "d" + std::to_string(d) + "/f" + std::to_string(f);
          if (l > 0 && r < 5)
            e.kind = builder::Kind::kWhiteout;
          else
            e.content.assign(next() % 4000, 'x');
          layer.entries.push_back(std::move(e));
        }
      }
      std::string tar = builder::layer_tar(layer);
      int fd = memfd_create("layer", 0);
      if (write(fd, tar.data(), tar.size()) != static_cast<ssize_t>(tar.size())) std::abort();
      files.emplace_back();
      if (!files.back().open_fd(fd, "layer").ok()) std::abort();
      names.push_back("layer" + std::to_string(l));
      entries += layer.entries.size();
      bytes += tar.size();
    }
    for (auto& f : files) tars.push_back(f.bytes());
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::vector<LayerIndex> index_all(const Fixture& f) {
  std::vector<LayerIndex> index(f.tars.size());
  for (size_t i = 0; i < f.tars.size(); ++i)
    if (!index_layer(f.tars[i], f.names[i], index[i]).ok()) std::abort();
  return index;
}

void BM_Index(benchmark::State& state) {
  const Fixture& f = fixture();
  auto check = index_all(f);
  size_t n = 0;
  for (auto& l : check) n += l.entries.size();
  if (n != f.entries) state.SkipWithError("index lost entries");
  for (auto _ : state) benchmark::DoNotOptimize(index_all(f));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.entries));
}
BENCHMARK(BM_Index)->Unit(benchmark::kMillisecond);

void BM_Resolve(benchmark::State& state) {
  const Fixture& f = fixture();
  auto index = index_all(f);
  PathMap map;
  if (!resolve_paths(index, 0, map).ok() || map.size() < 20000)
    state.SkipWithError("resolve failed");
  for (auto _ : state) {
    benchmark::DoNotOptimize(resolve_paths(index, 0, map));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.entries));
}
BENCHMARK(BM_Resolve)->Unit(benchmark::kMillisecond);

void BM_Emit(benchmark::State& state) {
  const Fixture& f = fixture();
  auto index = index_all(f);
  PathMap map;
  Plan plan;
  if (!resolve_paths(index, 0, map).ok() ||
      !plan_output(index, f.tars, f.names, map, 0, 0, plan).ok())
    state.SkipWithError("plan failed");
  int fd = memfd_create("out", 0);
  FdSink sink(fd, "out");
  EmittedLayer emitted;
  if (!emit_layer(plan, f.tars, {}, sink, emitted).ok() ||
      lseek(fd, 0, SEEK_END) != static_cast<off_t>(plan.layer_size))
    state.SkipWithError("emit wrote the wrong size");
  for (auto _ : state) {
    lseek(fd, 0, SEEK_SET);
    benchmark::DoNotOptimize(emit_layer(plan, f.tars, {}, sink, emitted));
  }
  close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * plan.layer_size));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * plan.items.size()));
}
BENCHMARK(BM_Emit)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
