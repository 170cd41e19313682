// The state of one squash run: validated options (immutable) and what the passes build.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/layer-index.h"
#include "engine/path-map.h"
#include "engine/plan-output.h"
#include "io/docker-client.h"
#include "io/layer-blob.h"
#include "io/mapped-file.h"

namespace dsq {

struct Options {
  std::string image;  // daemon name, docker-archive:PATH, oci:DIR[:REF], oci-archive:PATH[:REF], -
  std::string from_layer;  // "" squashes everything
  std::string tag;
  std::string message;
  std::string output_path;                       // "" none, "-" stdout
  std::string output_format = "docker-archive";  // or oci-archive, oci (a directory)
  std::optional<bool> load_image;
  std::string tmp_dir;
  bool cleanup = false;
  bool verbose = false;
  bool quiet = false;
  bool verify = false;  // also hash uncompressed layers (read in place) against diff_id
  unsigned jobs = 0;    // 0: all cores
  // The new layer's compression; unset: gzip when loading into a containerd image store (which
  // keeps layers as loaded), none otherwise. Level 0: the compressor's default.
  std::optional<Compression> compression;
  int compression_level = 0;
  std::string platform;  // os/arch[/variant] in an image index; "" for the host's
  std::optional<int64_t> source_date_epoch;

  // --load-image, defaulting to true for daemon images.
  bool load() const { return load_image.value_or(daemon_image()); }

  // A bare name (no docker-archive:, oci:, -) is an image in the Docker daemon.
  bool daemon_image() const {
    return image != "-" && !image.starts_with("docker-archive:") && !image.starts_with("oci:") &&
           !image.starts_with("oci-archive:");
  }
};

struct LayerSource {
  std::string path;  // inside the input archive
  std::string name;  // "archive:path", for messages
  Bytes blob;        // as stored
  Compression compression = Compression::kNone;
  std::string diff_id;      // from the config
  std::string blob_digest;  // digest of the stored blob (kept layers are re-emitted as is)
  MappedFile spool;         // decompressed copy of a compressed blob
  Bytes tar;                // the uncompressed tar: blob or spool
};

struct HistoryEntry {
  std::string_view raw;  // the entry's JSON, into Image::config
  bool empty_layer = false;
};

struct Image {
  std::string config;  // exact bytes of the config blob
  std::vector<std::string> repo_tags;
  std::vector<LayerSource> layers;
  std::vector<HistoryEntry> history;  // synthesised one per layer when the config has none
  bool has_history = false;
};

struct Selection {
  size_t first_layer = 0;    // layers [first_layer, n) are squashed
  size_t first_history = 0;  // history entries [first_history, n) are replaced by one
};

// What the daemon said about a source image.
struct DaemonImage {
  std::string id;                        // Id from /images/{name}/json
  uint64_t size = 0;                     // Size from /images/{name}/json: about the save stream
  std::vector<std::string> history_ids;  // /images/{name}/history, oldest first ("<missing>" too)
};

struct PassTime {
  std::string name;
  double seconds;
  uint64_t peak_rss;  // bytes, process high-water mark after the pass
  uint64_t amount;    // what the pass went through: bytes, or entries when `entries`
  bool entries;
};

struct SquashResult {
  std::string diff_id;       // of the new layer, "" when the squashed entries held no data
  std::string layer_digest;  // of the new layer's blob (the diff_id unless compressed)
  uint64_t layer_size = 0;   // uncompressed
  uint64_t blob_size = 0;    // as stored
  Compression layer_compression = Compression::kNone;
  std::string config;
  std::string image_id;
  std::string chain_id;      // of the whole layer stack: what the daemon keys the top layer by
  uint64_t input_bytes = 0;  // squashed layers' uncompressed size
  uint64_t archive_bytes = 0;
  uint64_t metadata_offset = 0;  // where the config and manifests start in the archive
  uint64_t memory_bound = 0;     // bytes, from the formula in emit-layer.h
};

struct Context {
  explicit Context(Options o) : opts(std::move(o)) {}
  const Options opts;

  MappedFile input;
  std::deque<MappedFile> input_files;  // oci:DIR: each blob mapped on its own
  std::string input_name;
  Image image;
  Selection selection;
  std::vector<LayerIndex> index;
  PathMap map;
  Plan plan;
  SquashResult result;
  std::vector<PassTime> timings;
  std::vector<std::string> warnings;             // printed by the CLI, one line each
  std::function<void(const PassTime&)> on_pass;  // progress: called as each pass ends

  DockerClient docker;  // connected only for daemon images or --load-image
  DaemonImage source;
  std::string daemon_version;     // from /version, once connected
  bool containerd_store = false;  // the daemon keeps images in containerd (known once connected)
  int archive_fd = -1;        // the written archive, kept open for loading; closed by the load pass
  bool streamed = false;      // the archive went to the daemon as it was written (no archive_fd)
  size_t omitted_layers = 0;  // kept layers left out of the stream: the daemon has them

  size_t layer_count() const { return image.layers.size(); }
};

}  // namespace dsq
