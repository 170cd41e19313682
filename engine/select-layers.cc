// --from-layer, as docker-squash 1.2 reads it: an integer counts history entries from the top
// (entries without a layer, such as ENV or CMD, count too); anything else names the layer to
// squash above, by diff_id, layer directory or blob name (a unique prefix of 12+ hex digits is
// enough); the image's own ID or tag leaves nothing to squash. The squashed entries must cover
// at least two history entries.
#include <algorithm>
#include <cctype>

#include "engine/passes.h"
#include "io/sha256.h"

namespace dsq {

namespace {

bool parse_count(const std::string& text, long long& out) {
  if (text.empty()) return false;
  size_t i = text[0] == '-' || text[0] == '+' ? 1 : 0;
  if (i == text.size() || text.size() > 18) return false;
  for (size_t j = i; j < text.size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>(text[j]))) return false;
  out = std::stoll(text);
  return true;
}

// Names a layer may go by in an archive: its diff_id, and each component of its blob path
// (`<v1 id>/layer.tar`, `blobs/sha256/<digest>`).
bool layer_matches(const LayerSource& layer, std::string id) {
  if (id.starts_with("sha256:")) id = id.substr(7);
  if (id.size() < 12) return false;
  auto prefix_of = [&](std::string_view name) { return name.substr(0, id.size()) == id; };
  if (prefix_of(digest_hex(layer.diff_id))) return true;
  size_t start = 0;
  while (start < layer.path.size()) {
    size_t slash = layer.path.find('/', start);
    if (slash == std::string::npos) slash = layer.path.size();
    std::string_view part = std::string_view(layer.path).substr(start, slash - start);
    if (part.size() == 64 && prefix_of(part)) return true;
    start = slash + 1;
  }
  return false;
}

// The image's own ID (its config digest, or a 12+ digit prefix) or one of its tags.
bool names_the_image(const Context& ctx, const std::string& from) {
  for (const std::string& tag : ctx.image.repo_tags)
    if (tag == from || tag == from + ":latest") return true;
  std::string id = from.starts_with("sha256:") ? from.substr(7) : from;
  return id.size() >= 12 && digest_hex(sha256_digest(ctx.image.config)).substr(0, id.size()) == id;
}

}  // namespace

Status select_layers(Context& ctx) {
  const auto& history = ctx.image.history;
  const size_t total = history.size();
  size_t squashed_entries = total;
  const std::string& from = ctx.opts.from_layer;
  long long count = 0;
  if (from.empty()) {
    // No -f: every entry is squashed.
  } else if (parse_count(from, count)) {
    if (count <= 0)
      return Status::error("Number of layers to squash cannot be less or equal 0, provided: " +
                           from);
    if (static_cast<size_t>(count) > total)
      return Status::error("Cannot squash " + from + " layers, the " + ctx.opts.image +
                           " image contains only " + std::to_string(total) + " layers");
    squashed_entries = static_cast<size_t>(count);
  } else if (names_the_image(ctx, from)) {
    squashed_entries = 0;  // the image itself is the top: nothing above it
  } else if (!ctx.source.history_ids.empty()) {
    // A daemon image: -f names a history entry by its ID, as `docker history` shows it.
    std::string id = from.starts_with("sha256:") ? from.substr(7) : from;
    size_t found = total;
    for (size_t i = 0; i < ctx.source.history_ids.size() && i < total; ++i) {
      const std::string& hid = ctx.source.history_ids[i];
      std::string hex = hid.starts_with("sha256:") ? hid.substr(7) : hid;
      if (id.size() >= 12 && hex.substr(0, id.size()) == id) found = i;
    }
    if (found == total) {
      bool missing = std::all_of(ctx.source.history_ids.begin(), ctx.source.history_ids.end() - 1,
                                 [](const std::string& h) { return h == "<missing>"; });
      return Status::error("Could not find the layer or image '" + from + "' in " + ctx.opts.image +
                           (missing ? " (its history IDs are <missing>, as for BuildKit builds and "
                                      "pulled or loaded images: give a number of layers instead)"
                                    : ""));
    }
    squashed_entries = total - found - 1;
  } else {
    const size_t layers = ctx.layer_count();
    size_t found = layers;
    for (size_t i = 0; i < layers; ++i)
      if (layer_matches(ctx.image.layers[i], from)) found = i;
    if (found == layers)
      return Status::error("Could not find the layer or image '" + from + "' in " + ctx.opts.image);
    // Squash every history entry after the one that created layer `found`.
    size_t layers_seen = 0, entry = 0;
    for (; entry < total; ++entry)
      if (!history[entry].empty_layer && layers_seen++ == found) break;
    squashed_entries = total - entry - 1;
  }
  if (squashed_entries == 0)
    return Status::error(from.empty()
                             ? "No layers to squash in " + ctx.opts.image
                             : "No layers to squash above " + from + " in " + ctx.opts.image,
                         2);
  if (squashed_entries == 1)
    return Status::error("Single layer marked to squash, no squashing is required", 2);
  ctx.selection.first_history = total - squashed_entries;
  size_t kept_layers = 0;
  for (size_t i = 0; i < ctx.selection.first_history; ++i) kept_layers += !history[i].empty_layer;
  ctx.selection.first_layer = kept_layers;
  return {};
}

}  // namespace dsq
