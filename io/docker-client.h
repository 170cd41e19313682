// A Docker Engine API client: HTTP/1.1 (Boost.Beast) over the daemon's Unix socket or TCP
// (Boost.Asio), with API version negotiation, a read timeout for stalled streams, chunked
// transfers both ways and keep-alive. Only the calls the squash needs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/sink.h"
#include "io/status.h"

namespace dsq {

class DockerClient {
 public:
  DockerClient();
  ~DockerClient();
  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;

  // Reads DOCKER_HOST (unix:// or tcp://, default unix:///var/run/docker.sock),
  // DOCKER_API_VERSION and DOCKER_TIMEOUT (seconds without data on a stream, default 600), then
  // pings the daemon and settles the API version.
  Status connect_from_environment();

  const std::string& api_version() const { return version_; }
  const std::string& host() const { return host_; }

  // GET `path` (under the API version prefix); the body of a 200 answer.
  Status get(const std::string& path, std::string& body);
  // GET /images/{name}/get, the `docker save` stream, written to `fd` (named `spool` in
  // errors) as it arrives.
  Status save(const std::string& image, int fd, const std::string& spool, uint64_t& bytes);
  // POST /images/load with `size` bytes read from `fd` as the body. From the first chunk that
  // reaches past `commit_at` (where the image metadata starts: a daemon given that much loads
  // the image even if the connection then drops), interrupts are deferred.
  Status load(int fd, uint64_t size, uint64_t commit_at, std::string& loaded);
  // POST /images/load with a chunked body written through `body` as the archive is made;
  // finish_load() ends the body and reads the answer. The daemon answers 200 even on failure:
  // its JSON message stream is read for errorDetail. `loaded` gets its last "Loaded image" line.
  Status begin_load(Sink*& body);
  Status finish_load(std::string& loaded);
  // Gives up a load after `why` (a local failure): the body is cut off unfinished, so the daemon
  // discards it. When the connection itself failed, the daemon's own answer is returned instead.
  Status abandon_load(Status why);
  // GET /info: whether the daemon keeps images in containerd (Docker 29's default store), whose
  // layers are stored as loaded (an uncompressed layer stays uncompressed).
  Status uses_containerd_store(bool& yes);
  // POST /images/{name}/tag?repo=&tag=
  Status tag(const std::string& image, const std::string& repo, const std::string& tag);
  // DELETE /images/{name}
  Status remove(const std::string& image);

  // Percent-encoding for a path segment or query value.
  static std::string escape(const std::string& text);

 private:
  struct Connection;
  class Upload;
  Status ensure_connected();
  Status simple(const char* method, const std::string& path, unsigned expected, std::string& body);

  std::string host_;
  std::string version_;         // the API version used, "" until negotiated
  std::string daemon_version_;  // the newest the daemon speaks (from /_ping)
  unsigned timeout_seconds_ = 600;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<Upload> upload_;
};

}  // namespace dsq
