// Synchronous Beast over one Asio socket (generic stream protocol, so the same code serves
// unix:// and tcp://). The read timeout is SO_RCVTIMEO on the socket: it bounds how long a
// stream may stall, not how long a transfer may take. A kept-alive connection that the daemon
// has closed in the meantime is reopened once.
#include "io/docker-client.h"

#include <simdjson.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "io/temp-files.h"

namespace dsq {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr const char* kMaxApiVersion = "1.45";
constexpr size_t kBlock = 1 << 20;

// "1.41" < "1.45", comparing numerically.
bool version_less(const std::string& a, const std::string& b) {
  unsigned amaj = 0, amin = 0, bmaj = 0, bmin = 0;
  std::sscanf(a.c_str(), "%u.%u", &amaj, &amin);
  std::sscanf(b.c_str(), "%u.%u", &bmaj, &bmin);
  return amaj != bmaj ? amaj < bmaj : amin < bmin;
}

// The daemon's {"message": "..."} error body, or the body itself.
std::string daemon_message(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view message;
  if (!parser.parse(body).get(doc) && !doc["message"].get(message)) return std::string(message);
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

struct DockerClient::Connection {
  asio::io_context io;
  asio::generic::stream_protocol::socket socket{io};
  boost::beast::flat_buffer buffer;
  bool used = false;  // has served a request: a failure may be a stale keep-alive
};

DockerClient::DockerClient() = default;
DockerClient::~DockerClient() = default;

std::string DockerClient::escape(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status DockerClient::ensure_connected() {
  if (conn_ && conn_->socket.is_open()) return {};
  conn_ = std::make_unique<Connection>();
  error_code ec;
  if (host_.rfind("unix://", 0) == 0) {
    asio::local::stream_protocol::endpoint ep(host_.substr(7));
    conn_->socket.connect(asio::generic::stream_protocol::endpoint(ep), ec);
  } else if (host_.rfind("tcp://", 0) == 0) {
    std::string rest = host_.substr(6);
    size_t colon = rest.rfind(':');
    std::string name = colon == std::string::npos ? rest : rest.substr(0, colon);
    std::string port = colon == std::string::npos ? "2375" : rest.substr(colon + 1);
    asio::ip::tcp::resolver resolver(conn_->io);
    auto results = resolver.resolve(name, port, ec);
    for (auto it = results.begin(); !ec && it != results.end(); ++it) {
      conn_->socket.close();
      conn_->socket.connect(asio::generic::stream_protocol::endpoint(it->endpoint()), ec);
      if (!ec) break;
    }
  } else {
    return Status::error("DOCKER_HOST=" + host_ + ": only unix:// and tcp:// are supported");
  }
  if (ec) {
    conn_.reset();
    return Status::error("cannot connect to the Docker daemon at " + host_ + ": " + ec.message() +
                         " (is dockerd running? DOCKER_HOST selects another daemon)");
  }
  timeval tv{static_cast<time_t>(timeout_seconds_), 0};
  setsockopt(conn_->socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return {};
}

Status DockerClient::connect_from_environment() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read on the main thread; nothing calls setenv.
  const char* host = std::getenv("DOCKER_HOST");
  host_ = host && *host ? host : "unix:///var/run/docker.sock";
  // NOLINTNEXTLINE(concurrency-mt-unsafe): as above.
  if (const char* t = std::getenv("DOCKER_TIMEOUT"); t && *t) {
    char* end = nullptr;
    long v = std::strtol(t, &end, 10);
    if (*end != '\0' || v <= 0)
      return Status::error(std::string("DOCKER_TIMEOUT=") + t + ": not a number of seconds");
    timeout_seconds_ = static_cast<unsigned>(v);
  }
  // Ping (no version prefix); its Api-Version header is the daemon's newest API.
  version_.clear();
  std::string body;
  DSQ_TRY(simple("GET", "/_ping", 200, body));
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read on the main thread; nothing calls setenv.
  if (const char* v = std::getenv("DOCKER_API_VERSION"); v && *v) {
    version_ = v;
  } else {
    version_ = version_less(daemon_version_, kMaxApiVersion) ? daemon_version_ : kMaxApiVersion;
  }
  return {};
}

Status DockerClient::simple(const char* method, const std::string& path, unsigned expected,
                            std::string& body) {
  for (int attempt = 0;; ++attempt) {
    DSQ_TRY(ensure_connected());
    bool reused = conn_->used;
    http::request<http::string_body> req{http::string_to_verb(method),
                                         version_.empty() ? path : "/v" + version_ + path, 11};
    req.set(http::field::host, "docker");
    req.set(http::field::user_agent, "docker-squash");
    req.prepare_payload();
    error_code ec;
    http::write(conn_->socket, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(conn_->socket, conn_->buffer, res, ec);
    if (ec) {
      conn_.reset();
      if (reused && attempt == 0) continue;  // the daemon closed an idle keep-alive connection
      return Status::error("docker daemon (" + host_ + "): " + method + " " + path + ": " +
                           ec.message());
    }
    conn_->used = true;
    if (!res.keep_alive()) conn_.reset();
    if (path == "/_ping") daemon_version_ = std::string(res["Api-Version"]);
    body = std::move(res.body());
    if (res.result_int() != expected)
      return Status::error("docker daemon: " + daemon_message(body) + " (" + method + " " + path +
                           ": HTTP " + std::to_string(res.result_int()) + ")");
    return {};
  }
}

Status DockerClient::get(const std::string& path, std::string& body) {
  return simple("GET", path, 200, body);
}

Status DockerClient::tag(const std::string& image, const std::string& repo,
                         const std::string& tag) {
  std::string body;
  return simple("POST", "/images/" + image + "/tag?repo=" + escape(repo) + "&tag=" + escape(tag),
                201, body);
}

Status DockerClient::remove(const std::string& image) {
  std::string body;
  return simple("DELETE", "/images/" + image, 200, body);
}

Status DockerClient::save(const std::string& image, int fd, const std::string& spool,
                          uint64_t& bytes) {
  DSQ_TRY(ensure_connected());
  std::string path = "/v" + version_ + "/images/" + image + "/get";
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "docker-squash");
  error_code ec;
  http::write(conn_->socket, req, ec);
  http::response_parser<http::buffer_body> parser;
  // Not boost::none: Boost 1.81 compares a Content-Length against an empty limit and fails.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) http::read_header(conn_->socket, conn_->buffer, parser, ec);
  if (ec) {
    conn_.reset();
    return Status::error("docker daemon: saving " + image + ": " + ec.message());
  }
  std::vector<char> buf(kBlock);
  std::string error_body;
  std::string tail;  // the stream's last bytes, where an error message would be
  constexpr size_t kTail = 64 << 10;
  const bool ok = parser.get().result_int() == 200;
  bytes = 0;
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    http::read(conn_->socket, conn_->buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      bytes += buf.size() - parser.get().body().size;  // what arrived before the break
      conn_.reset();
      std::string why =
          ec == asio::error::would_block || ec == asio::error::try_again
              ? "no data for " + std::to_string(timeout_seconds_) + " s (DOCKER_TIMEOUT)"
              : ec.message();
      return Status::error("docker daemon: saving " + image + ": stream broken after " +
                           std::to_string(bytes) + " bytes: " + why);
    }
    size_t n = buf.size() - parser.get().body().size;
    if (!ok) {
      error_body.append(buf.data(), n);
      continue;
    }
    if (Status written = write_all(fd, buf.data(), n, spool); !written.ok()) {
      conn_.reset();  // the rest of the stream is never read
      return written;
    }
    bytes += n;
    tail.append(buf.data() + (n > kTail ? n - kTail : 0), std::min(n, kTail));
    if (tail.size() > kTail) tail.erase(0, tail.size() - kTail);
  }
  if (!parser.keep_alive()) conn_.reset();
  if (!ok)
    return Status::error("docker daemon: " + daemon_message(error_body) + " (saving " + image +
                         ": HTTP " + std::to_string(parser.get().result_int()) + ")");
  // A failure after the answer has started arrives as a JSON message appended to the tar.
  if (size_t at = tail.rfind("{\"errorDetail\""); at != std::string::npos) {
    simdjson::dom::parser json;
    simdjson::dom::element doc;
    std::string_view message;
    if (!json.parse(tail.substr(at)).get(doc) && !doc["errorDetail"]["message"].get(message))
      return Status::error("docker daemon: " + std::string(message) + " (saving " + image +
                           ": the error ended the stream after " +
                           std::to_string(bytes - (tail.size() - at)) + " bytes)");
  }
  return {};
}

// The body of a load request in flight: each write() is one HTTP chunk.
class DockerClient::Upload final : public Sink {
 public:
  explicit Upload(Connection& conn, const std::string& version)
      : conn_(conn),
        request_{http::verb::post, "/v" + version + "/images/load?quiet=1", 11},
        serializer_{request_} {
    request_.set(http::field::host, "docker");
    request_.set(http::field::user_agent, "docker-squash");
    request_.set(http::field::content_type, "application/x-tar");
    request_.chunked(true);
    request_.body().data = nullptr;
    request_.body().more = true;
  }

  Status start() {
    error_code ec;
    do http::write_header(conn_.socket, serializer_, ec);
    while (ec == asio::error::interrupted);
    return check(ec);
  }

  Status write(const void* data, size_t size) override {
    if (size == 0) return {};
    request_.body().data = const_cast<void*>(data);
    request_.body().size = size;
    request_.body().more = true;
    error_code ec;
    // A deferred interrupt cuts a blocking call short (EINTR): carry on where it stopped.
    do http::write(conn_.socket, serializer_, ec);
    while (ec == asio::error::interrupted);
    if (ec == http::error::need_buffer) ec = {};
    sent_ += size;
    return check(ec);
  }

  Status finish() {
    request_.body().data = nullptr;
    request_.body().size = 0;
    request_.body().more = false;
    error_code ec;
    do http::write(conn_.socket, serializer_, ec);
    while (ec == asio::error::interrupted);
    return check(ec);
  }

  bool failed() const { return !failure_.ok(); }
  const Status& failure() const { return failure_; }

 private:
  Status check(const error_code& ec) {
    if (!ec) return {};
    if (failure_.ok())
      failure_ = Status::error("docker daemon: loading the squashed image: connection lost after " +
                               std::to_string(sent_) + " bytes: " + ec.message());
    return failure_;
  }

  Connection& conn_;
  http::request<http::buffer_body> request_;
  http::request_serializer<http::buffer_body> serializer_;
  uint64_t sent_ = 0;
  Status failure_;  // the first failed write
};

Status DockerClient::begin_load(Sink*& body) {
  // A fresh connection: a kept-alive one may have been closed by the daemon during the squash,
  // and a request body cannot be replayed.
  upload_.reset();
  conn_.reset();
  DSQ_TRY(ensure_connected());
  upload_ = std::make_unique<Upload>(*conn_, version_);
  body = upload_.get();
  Status st = upload_->start();
  if (!st.ok()) {
    upload_.reset();
    conn_.reset();
  }
  return st;
}

Status DockerClient::finish_load(std::string& loaded) {
  if (!upload_) return Status::error("internal: no load in progress");
  std::unique_ptr<Upload> upload = std::move(upload_);
  Status sent = upload->failed() ? upload->failure() : upload->finish();
  // Read the answer even when sending failed: a daemon that gave up early has said why.
  http::response_parser<http::string_body> answer;
  error_code ec;
  do http::read(conn_->socket, conn_->buffer, answer, ec);
  while (ec == asio::error::interrupted);
  conn_.reset();  // the load answer ends the exchange; a fresh connection is cheap
  const auto& res = answer.get();
  if (ec) {
    if (!sent.ok()) return sent;
    return Status::error("docker daemon: loading the squashed image: no answer (" + ec.message() +
                         ")");
  }
  if (res.result_int() != 200)
    return Status::error("docker daemon: " + daemon_message(res.body()) + " (loading: HTTP " +
                         std::to_string(res.result_int()) + ")");
  // A stream of JSON messages; failures arrive as errorDetail inside an HTTP 200.
  simdjson::dom::parser parser;
  simdjson::dom::document_stream docs;
  const simdjson::padded_string body(res.body());
  if (auto err = parser.parse_many(body).get(docs))
    return Status::error(std::string("docker daemon: unreadable load answer: ") +
                         simdjson::error_message(err));
  for (auto doc : docs) {
    simdjson::dom::element e;
    if (doc.get(e)) continue;
    std::string_view text;
    if (!e["errorDetail"]["message"].get(text) || !e["error"].get(text))
      return Status::error("docker daemon: loading the squashed image failed: " +
                           std::string(text));
    if (!e["stream"].get(text)) {
      std::string line(text);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      if (!line.empty()) loaded = line;
    }
  }
  if (!sent.ok()) return sent;
  return {};
}

Status DockerClient::abandon_load(Status why) {
  if (!upload_) return why;
  if (upload_->failed()) {
    std::string ignored;
    Status answer = finish_load(ignored);
    return answer.ok() ? why : answer;
  }
  upload_.reset();
  conn_.reset();
  return why;
}

Status DockerClient::load(int fd, uint64_t size, uint64_t commit_at, std::string& loaded) {
  Sink* body = nullptr;
  Status st = begin_load(body);
  std::vector<char> buf(kBlock);
  for (uint64_t sent = 0; st.ok() && sent < size;) {
    ssize_t n = pread(fd, buf.data(), std::min<uint64_t>(buf.size(), size - sent),
                      static_cast<off_t>(sent));
    if (n <= 0) {
      upload_.reset();
      conn_.reset();
      return Status::error(std::string("reading the archive to load: ") + errno_text(errno));
    }
    if (sent + static_cast<uint64_t>(n) > commit_at) defer_interrupts(true);
    st = body->write(buf.data(), static_cast<size_t>(n));
    sent += static_cast<uint64_t>(n);
  }
  defer_interrupts(true);
  if (!upload_) return st;  // never connected
  return finish_load(loaded);
}

Status DockerClient::uses_containerd_store(bool& yes) {
  std::string body;
  DSQ_TRY(get("/info", body));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc))
    return Status::error("docker daemon: unreadable answer to /info");
  // DriverStatus is a list of [name, value] pairs.
  yes = false;
  simdjson::dom::array status;
  if (doc["DriverStatus"].get(status)) return {};
  for (auto pair : status) {
    std::string_view name, value;
    if (!pair.at(0).get(name) && !pair.at(1).get(value) && name == "driver-type" &&
        value == "io.containerd.snapshotter.v1")
      yes = true;
  }
  return {};
}

}  // namespace dsq
