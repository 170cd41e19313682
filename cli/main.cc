// docker-squash: parse flags, run the engine, report. Messages go to stderr (stdout may carry
// the archive); the summary is printed on a terminal or with -v, never with -q.
#include <unistd.h>

#include <chrono>
#include <clocale>
#include <cstdio>
#include <iostream>

#include "cli/options.h"
#include "engine/image-ref.h"
#include "engine/squash.h"
#include "io/temp-files.h"

namespace {

std::string human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

// One line per pass: what it went through, how fast, how long (and peak memory with -v).
void print_pass(const dsq::PassTime& t, bool verbose) {
  if (t.amount == 0 && !verbose) return;
  std::string what, rate;
  if (t.amount == 0) {
    // nothing to count (select)
  } else if (t.entries) {
    what = std::to_string(t.amount) + " entries";
    if (t.seconds > 0)
      rate = std::to_string(static_cast<uint64_t>(t.amount / t.seconds)) + " entries/s";
  } else {
    what = human(static_cast<double>(t.amount));
    if (t.seconds > 0) rate = human(t.amount / t.seconds) + "/s";
  }
  std::fprintf(stderr, "%-8s %12s in %7.3f s  %16s", t.name.c_str(), what.c_str(), t.seconds,
               rate.c_str());
  if (verbose)
    std::fprintf(stderr, "  peak RSS %s", human(static_cast<double>(t.peak_rss)).c_str());
  std::fprintf(stderr, "\n");
}

void print_summary(const dsq::Context& ctx, double total_seconds) {
  const auto& s = ctx.plan.stats;
  size_t squashed_layers = ctx.layer_count() - ctx.selection.first_layer;
  size_t squashed_entries = ctx.image.history.size() - ctx.selection.first_history;
  std::fprintf(stderr, "Squashed %zu history entries (%zu layers) of %s into one layer\n",
               squashed_entries, squashed_layers, ctx.opts.image.c_str());
  std::fprintf(stderr, "  entries: %llu in, %llu out, %llu dropped",
               static_cast<unsigned long long>(s.entries_in),
               static_cast<unsigned long long>(s.entries_out),
               static_cast<unsigned long long>(s.entries_in - s.copied - s.materialised));
  if (s.materialised)
    std::fprintf(stderr, ", %llu hard links re-written",
                 static_cast<unsigned long long>(s.materialised));
  if (s.whiteouts || s.opaques)
    std::fprintf(stderr, ", %llu whiteouts and %llu opaque markers kept",
                 static_cast<unsigned long long>(s.whiteouts),
                 static_cast<unsigned long long>(s.opaques));
  std::fprintf(stderr, "\n  size: %s of layers -> %s (saved %s)\n",
               human(ctx.result.input_bytes).c_str(), human(ctx.result.layer_size).c_str(),
               human(ctx.result.input_bytes > ctx.result.layer_size
                         ? ctx.result.input_bytes - ctx.result.layer_size
                         : 0)
                   .c_str());
  if (ctx.result.layer_compression != dsq::Compression::kNone)
    std::fprintf(stderr, "  new layer stored %s-compressed: %s\n",
                 ctx.result.layer_compression == dsq::Compression::kGzip ? "gzip" : "zstd",
                 human(ctx.result.blob_size).c_str());
  std::fprintf(stderr, "  new image ID: %s\n", ctx.result.image_id.c_str());
  if (!ctx.result.chain_id.empty())
    std::fprintf(stderr, "  top layer chain ID: %s\n", ctx.result.chain_id.c_str());
  if (!ctx.opts.output_path.empty())
    std::fprintf(stderr, "  wrote %s (%s)\n",
                 ctx.opts.output_path == "-" ? "standard output" : ctx.opts.output_path.c_str(),
                 human(ctx.result.archive_bytes).c_str());
  if (ctx.opts.load()) {
    std::fprintf(stderr, "  loaded into Docker %s (%s image store) as %s",
                 ctx.daemon_version.c_str(), ctx.containerd_store ? "containerd" : "classic",
                 ctx.opts.tag.empty() ? "an untagged image" : ctx.opts.tag.c_str());
    if (ctx.streamed)
      std::fprintf(stderr, " (%s streamed", human(ctx.result.archive_bytes).c_str());
    if (ctx.omitted_layers)
      std::fprintf(stderr, ", %zu kept layers not sent: the daemon has them", ctx.omitted_layers);
    std::fprintf(stderr, "%s\n", ctx.streamed ? ")" : "");
  }
  // The squash proper, apart from the daemon's save and load.
  double own = 0, daemon = 0;
  for (const dsq::PassTime& t : ctx.timings)
    (t.name == "save" || t.name == "load" ? daemon : own) += t.seconds;
  std::fprintf(stderr, "  done in %.2f s: squash %.2f s", total_seconds, own);
  if (daemon > 0) std::fprintf(stderr, ", daemon save and load %.2f s", daemon);
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::setlocale(LC_ALL, "C.UTF-8");
  dsq::install_signal_handlers();
  dsq::Options opts;
  if (int rc = dsq::parse_options(argc, argv, opts); rc >= 0) return rc;

  const bool daemon = opts.daemon_image();
  const bool load = opts.load();
  if (opts.cleanup && !daemon) {
    std::cerr << "docker-squash: --cleanup applies to daemon images only\n";
    return 2;
  }
  if (opts.cleanup && opts.tag.empty()) {
    std::cerr
        << "docker-squash: --cleanup needs --tag: the squashed image would be left untagged\n";
    return 2;
  }
  if (opts.output_path.empty() && !load) {
    std::cerr << "docker-squash: nothing to do: give --output-path PATH (or - for stdout), or "
                 "--load-image\n";
    return 2;
  }
  if (opts.cleanup && load) {
    dsq::ImageRef source, tag;
    if (dsq::parse_image_ref(opts.image, source).ok() && dsq::parse_image_ref(opts.tag, tag).ok() &&
        source.full == tag.full)
      std::cerr << "docker-squash: Tag is the same as image; preventing cleanup\n";
  }
  dsq::Context ctx(opts);
  const bool show = !opts.quiet && (opts.verbose || isatty(2));
  if (show) ctx.on_pass = [&](const dsq::PassTime& t) { print_pass(t, opts.verbose); };
  auto start = std::chrono::steady_clock::now();
  dsq::Status st = dsq::squash(ctx);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  if (st.ok() && dsq::take_pending_interrupt() != 0)
    ctx.warnings.push_back("interrupted after the image was loaded: the squash is complete");
  for (const std::string& w : ctx.warnings) std::cerr << "docker-squash: warning: " << w << "\n";
  if (!st.ok()) {
    std::cerr << "docker-squash: " << st.message() << "\n";
    return st.exit_code();
  }
  if (opts.verbose && !opts.quiet && !ctx.timings.empty())
    std::fprintf(stderr, "  memory: peak RSS %llu bytes, bound %llu bytes\n",
                 static_cast<unsigned long long>(ctx.timings.back().peak_rss),
                 static_cast<unsigned long long>(ctx.result.memory_bound));
  if (show) print_summary(ctx, took.count());
  return 0;
}
