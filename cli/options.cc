// The flags of docker-squash 1.2 (same names, same meanings) plus this tool's own.
#include "cli/options.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "engine/oci-layout.h"
#include "io/compress.h"

namespace dsq {

bool parse_bool(std::string text, bool& out) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (text == "yes" || text == "true" || text == "t" || text == "y" || text == "1")
    return out = true, true;
  if (text == "no" || text == "false" || text == "f" || text == "n" || text == "0")
    return out = false, true;
  return false;
}

int parse_options(int argc, char** argv, Options& opts) {
  CLI::App app{
      "Squash the layers of a Docker image into one.\n\n"
      "IMAGE is an image in the Docker daemon (name or ID), docker-archive:PATH (a `docker save`\n"
      "archive), oci:DIR[:REF] (an OCI image layout), oci-archive:PATH[:REF] (the same as a tar)\n"
      "or - (a `docker save` stream on standard input)."};
  app.name("docker-squash");
  std::string load_image;
  bool version = false;
  app.add_option("image", opts.image, "Image to squash")->required();
  app.add_option(
      "-f,--from-layer", opts.from_layer,
      "Number of history entries to squash from the top, or the ID of the layer or image "
      "to squash above (default: squash all)");
  app.add_option("-t,--tag", opts.tag, "Name and optionally a tag (name:tag) for the new image");
  app.add_option("-m,--message", opts.message, "Comment of the new history entry")->default_val("");
  app.add_option("--output-path", opts.output_path,
                 "Write the squashed image archive to this path (- for stdout)");
  app.add_option("--output-format", opts.output_format,
                 "docker-archive (both layouts Docker 25+ writes; default), oci-archive (an OCI "
                 "image layout as a tar) or oci (an OCI image layout directory)")
      ->check(CLI::IsMember({"docker-archive", "oci-archive", "oci"}));
  app.add_option("--load-image", load_image,
                 "Load the squashed image into the Docker daemon (yes/no; default: yes for "
                 "daemon images, no for archives)")
      ->expected(0, 1)
      ->default_str("true");
  app.add_option("--tmp-dir", opts.tmp_dir,
                 "Directory for temporary files (default: $TMPDIR or /tmp)");
  app.add_flag("-c,--cleanup", opts.cleanup,
               "Remove the source image from the daemon after squashing");
  app.add_option("-j,--jobs", opts.jobs, "Worker threads (default: all cores)")
      ->check(CLI::Range(1u, 1024u));
  std::string compression;
  app.add_option("--compression", compression,
                 "Compression of the new layer: none, gzip or zstd (default: gzip when loading "
                 "into a containerd image store, none otherwise)")
      ->check(CLI::IsMember({"none", "gzip", "zstd"}));
  app.add_option("--compression-level", opts.compression_level,
                 "Compression level (gzip 1-9, default 6; zstd 1-19, default 3)");
  app.add_option("--platform", opts.platform,
                 "In a multi-platform image: os/arch[/variant] to squash (default: this host's)");
  app.add_flag("--verify", opts.verify,
               "Check every uncompressed input layer against its diff_id (reads every byte; by "
               "default only compressed layers, which are read whole anyway, are checked)");
  app.add_flag("-v,--verbose", opts.verbose, "Print per-pass timings and a summary");
  app.add_flag("-q,--quiet", opts.quiet, "Print nothing but errors");
  app.add_flag("--version", version, "Print the version and exit");
  app.set_version_flag();
  // As a Docker CLI plugin (`docker squash ...`) the plugin's name comes first.
  if (argc >= 2 && std::string(argv[1]) == "squash") {
    argv[1] = argv[0];
    ++argv;
    --argc;
  }
  try {
    if (argc >= 2 && std::string(argv[1]) == "docker-cli-plugin-metadata") {
      std::cout << R"({"SchemaVersion":"0.1.0","Vendor":"docker-squash","Version":")" << DSQ_VERSION
                << R"(","ShortDescription":"Squash the layers of an image into one"})"
                << "\n";
      return 0;
    }
    if (argc >= 2 && std::string(argv[1]) == "--version") {
      std::cout << "docker-squash " << DSQ_VERSION << "\n";
      return 0;
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (app.count("--load-image")) {
    bool value = true;
    if (!load_image.empty() && !parse_bool(load_image, value)) {
      std::cerr << "docker-squash: --load-image: '" << load_image
                << "' is not a boolean (yes/no)\n";
      return 2;
    }
    opts.load_image = value;
  }
  if (opts.output_format == "oci" && opts.output_path == "-") {
    std::cerr << "docker-squash: --output-format oci writes a directory, not standard output "
                 "(use oci-archive)\n";
    return 2;
  }
  if (!opts.platform.empty()) {
    Platform p;
    if (Status st = parse_platform(opts.platform, p); !st.ok()) {
      std::cerr << "docker-squash: " << st.message() << "\n";
      return 2;
    }
  }
  if (!compression.empty())
    opts.compression = compression == "gzip"   ? Compression::kGzip
                       : compression == "zstd" ? Compression::kZstd
                                               : Compression::kNone;
  if (app.count("--compression-level")) {
    Compression c = opts.compression.value_or(Compression::kGzip);
    if (!opts.compression || c == Compression::kNone) {
      std::cerr << "docker-squash: --compression-level needs --compression gzip or zstd\n";
      return 2;
    }
    if (!valid_level(c, opts.compression_level)) {
      std::cerr << "docker-squash: --compression-level " << opts.compression_level
                << ": out of range for " << compression << " (gzip 1-9, zstd 1-19)\n";
      return 2;
    }
  }
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch && *epoch) {
    char* end = nullptr;
    long long v = std::strtoll(epoch, &end, 10);
    if (*end != '\0' || v < 0) {
      std::cerr << "docker-squash: SOURCE_DATE_EPOCH: '" << epoch
                << "' is not a number of seconds\n";
      return 2;
    }
    opts.source_date_epoch = v;
  }
  return -1;
}

}  // namespace dsq
