// The passes of a squash, in the order engine/squash.cc runs them. Each takes the run's
// Context and reports failure as a Status.
#pragma once

#include "engine/context.h"
#include "io/status.h"

namespace dsq {

Status save_from_daemon(Context& ctx);  // docker save a daemon image into a spool
Status open_image(Context& ctx);        // map the input, read manifest.json and the config
Status select_layers(Context& ctx);     // apply --from-layer
Status index_layers(Context& ctx);      // decompress, verify and index layers, in parallel
Status resolve(Context& ctx);           // build the path map
Status plan(Context& ctx);              // order the survivors, synthesise markers and links
Status write_image(Context& ctx);       // emit the layer and the image metadata into the archive
Status load_into_daemon(Context& ctx);  // docker load the archive; -c removes the source

// Connects to the daemon (DOCKER_HOST) and learns which image store it uses.
Status connect_daemon(Context& ctx);
// Writes the archive as the body of a load request (write_image without --output-path; again
// from load_into_daemon when a daemon lacked a layer it was expected to have).
Status stream_to_daemon(Context& ctx, bool omit_known_layers);

}  // namespace dsq
