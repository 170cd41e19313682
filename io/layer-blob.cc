// Decompression calls zlib and libzstd directly (libarchive's raw-format filters add a copy and
// cannot hash the compressed side): one decoder per call, so layers decompress concurrently on
// separate tasks.
#include "io/layer-blob.h"

#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "io/sha256.h"
#include "io/temp-files.h"

namespace dsq {

Compression detect_compression(Bytes blob) {
  auto b = reinterpret_cast<const unsigned char*>(blob.data());
  if (blob.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Compression::kGzip;
  if (blob.size() >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return Compression::kZstd;
  return Compression::kNone;
}

const char* oci_layer_media_type(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::kNone:
      break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

namespace {

constexpr size_t kOut = 1u << 20;
constexpr size_t kIn = 4u << 20;  // compressed bytes handed to the decoder (and hashed) at a time

// Feeds the blob to a decoder in kIn steps, hashing each step and dropping its pages once the
// decoder is past them; the decoder writes into `buf` and calls `emit` for each output block.
class Decoder {
 public:
  Decoder(Bytes blob, const std::string& name) : blob_(blob), name_(name) {}
  virtual ~Decoder() = default;
  // Decodes everything; `emit(data, size)` receives the output.
  template <class Emit>
  Status run(Emit emit) {
    std::vector<std::byte> buf(kOut);
    uint64_t fed = 0;
    bool end = false;
    while (!end) {
      if (pending_input() == 0 && fed < blob_.size()) {
        size_t n = std::min<uint64_t>(kIn, blob_.size() - fed);
        Bytes piece = blob_.subspan(fed, n);
        blob_hash_.update(piece);
        if (fed > 0) release_pages(blob_.data() + released_, blob_.data() + fed);
        released_ = fed;
        set_input(piece);
        fed += n;
      }
      size_t produced = 0;
      DSQ_TRY(step(buf.data(), buf.size(), fed == blob_.size(), produced, end));
      if (produced) {
        diff_hash_.update(std::span<const std::byte>(buf.data(), produced));
        DSQ_TRY(emit(buf.data(), produced));
        out_ += produced;
      } else if (!end && pending_input() == 0 && fed == blob_.size()) {
        return Status::error(name_ + "@" + std::to_string(consumed()) +
                             ": truncated compressed layer (the stream ends early)");
      }
    }
    if (pending_input() != 0 || fed != blob_.size())
      return Status::error(name_ + "@" + std::to_string(consumed()) +
                           ": trailing bytes after the compressed stream");
    release_pages(blob_.data(), blob_.data() + blob_.size());
    return {};
  }
  std::string blob_digest() { return blob_hash_.finish_digest(); }
  std::string diff_id() { return diff_hash_.finish_digest(); }

 protected:
  virtual void set_input(Bytes in) = 0;
  virtual size_t pending_input() const = 0;
  // Decodes into out[0, cap); `end` when the stream (and the input) is finished.
  virtual Status step(std::byte* out, size_t cap, bool input_done, size_t& produced, bool& end) = 0;
  // Offset in the blob of the next unread compressed byte, for messages.
  uint64_t consumed() const { return base_ + (last_in_size_ - pending_input()); }
  Status corrupt(const std::string& why) const {
    return Status::error(name_ + "@" + std::to_string(consumed()) +
                         ": corrupt compressed layer: " + why);
  }
  void note_input(Bytes in) {
    base_ = static_cast<uint64_t>(in.data() - blob_.data());
    last_in_size_ = in.size();
  }

  Bytes blob_;
  std::string name_;

 private:
  Sha256 blob_hash_, diff_hash_;
  uint64_t released_ = 0;
  uint64_t out_ = 0;
  uint64_t base_ = 0;
  size_t last_in_size_ = 0;
};

// gzip, member after member (a concatenation of members is one valid gzip stream).
class GzipDecoder final : public Decoder {
 public:
  GzipDecoder(Bytes blob, const std::string& name) : Decoder(blob, name) {
    ok_ = inflateInit2(&z_, 15 + 16) == Z_OK;  // +16: gzip wrapper only
  }
  ~GzipDecoder() override { inflateEnd(&z_); }
  bool ok() const { return ok_; }

 protected:
  void set_input(Bytes in) override {
    note_input(in);
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
  }
  size_t pending_input() const override { return z_.avail_in; }
  Status step(std::byte* out, size_t cap, bool input_done, size_t& produced, bool& end) override {
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(cap);
    int rc = inflate(&z_, Z_NO_FLUSH);
    produced = cap - z_.avail_out;
    end = false;
    if (rc == Z_STREAM_END) {
      // Another member may follow.
      if (z_.avail_in == 0 && input_done) {
        end = true;
      } else {
        inflateReset(&z_);
      }
      return {};
    }
    if (rc == Z_OK || (rc == Z_BUF_ERROR && produced == 0 && z_.avail_in == 0)) return {};
    return corrupt(z_.msg ? z_.msg : "inflate error " + std::to_string(rc));
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder(Bytes blob, const std::string& name) : Decoder(blob, name) {}
  ~ZstdDecoder() override { ZSTD_freeDStream(d_); }
  bool ok() const { return d_ != nullptr; }

 protected:
  void set_input(Bytes in) override {
    note_input(in);
    in_ = {in.data(), in.size(), 0};
  }
  size_t pending_input() const override { return in_.size - in_.pos; }
  Status step(std::byte* out, size_t cap, bool input_done, size_t& produced, bool& end) override {
    ZSTD_outBuffer o{out, cap, 0};
    size_t rc = ZSTD_decompressStream(d_, &o, &in_);
    if (ZSTD_isError(rc)) return corrupt(ZSTD_getErrorName(rc));
    produced = o.pos;
    // rc == 0: a frame is complete and fully flushed; more frames may follow.
    end = rc == 0 && input_done && pending_input() == 0;
    return {};
  }

 private:
  ZSTD_DStream* d_ = ZSTD_createDStream();
  ZSTD_inBuffer in_{nullptr, 0, 0};
};

}  // namespace

Status decompress_to_spool(Bytes blob, Compression c, const std::string& name,
                           const std::string& dir, MappedFile& out, std::string& blob_digest,
                           std::string& diff_id) {
  std::unique_ptr<Decoder> decoder;
  if (c == Compression::kGzip) {
    auto g = std::make_unique<GzipDecoder>(blob, name);
    if (!g->ok()) return Status::error(name + ": cannot initialise the gzip decoder");
    decoder = std::move(g);
  } else if (c == Compression::kZstd) {
    auto z = std::make_unique<ZstdDecoder>(blob, name);
    if (!z->ok()) return Status::error(name + ": cannot initialise the zstd decoder");
    decoder = std::move(z);
  } else {
    return Status::error(name + ": not a compressed layer");
  }
  int fd = -1;
  DSQ_TRY(create_anonymous_file(dir, fd));
  const std::string where = dir + " (spool of " + name + ")";
  Status st = decoder->run(
      [&](const std::byte* data, size_t size) { return write_all(fd, data, size, where); });
  if (!st.ok()) {
    close(fd);
    return st;
  }
  blob_digest = decoder->blob_digest();
  diff_id = decoder->diff_id();
  return out.open_fd(fd, name);
}

}  // namespace dsq
