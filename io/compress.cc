#include "io/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace dsq {

int default_level(Compression c) { return c == Compression::kZstd ? 3 : 6; }

bool valid_level(Compression c, int level) {
  if (c == Compression::kGzip) return level >= 1 && level <= 9;
  if (c == Compression::kZstd) return level >= 1 && level <= 19;
  return true;
}

Status deflate_chunk(Bytes in, int level, bool last, std::vector<std::byte>& out, uint32_t& crc) {
  crc = static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(in.data()), in.size()));
  z_stream z{};
  // Raw deflate (negative window bits): the gzip header and trailer are written once, around
  // all chunks.
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Status::error("gzip: cannot initialise the compressor");
  out.resize(deflateBound(&z, in.size()) + 64);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
  const bool done = last ? rc == Z_STREAM_END : (rc == Z_OK && z.avail_in == 0 && z.avail_out > 0);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (!done) return Status::error("gzip: compressing a chunk failed (" + std::to_string(rc) + ")");
  return {};
}

std::string gzip_header() {
  // Magic, deflate, no flags, no mtime (reproducible), no extra flags, OS = Unix.
  return std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
}

std::string gzip_trailer(uint32_t crc, uint64_t size) {
  std::string t(8, '\0');
  for (int i = 0; i < 4; ++i) {
    t[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    t[4 + i] = static_cast<char>((size >> (8 * i)) & 0xff);  // ISIZE: size modulo 2^32
  }
  return t;
}

uint32_t crc32_join(uint32_t crc_a, uint32_t crc_b, uint64_t size_b) {
  return static_cast<uint32_t>(crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(size_b)));
}

struct ZstdWriter::State {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::vector<std::byte> out = std::vector<std::byte>(ZSTD_CStreamOutSize());
  ~State() { ZSTD_freeCCtx(cctx); }

  // Runs the compressor over `in` with `mode` until it has taken all input (and, when ending,
  // flushed everything), writing output as it comes.
  Status drive(Bytes in, ZSTD_EndDirective mode, Sink& sink) {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    for (;;) {
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      size_t left = ZSTD_compressStream2(cctx, &output, &input, mode);
      if (ZSTD_isError(left)) return Status::error(std::string("zstd: ") + ZSTD_getErrorName(left));
      if (output.pos > 0) DSQ_TRY(sink.write(out.data(), output.pos));
      bool done = mode == ZSTD_e_end ? left == 0 : input.pos == input.size;
      if (done) return {};
    }
  }
};

ZstdWriter::ZstdWriter() : state_(std::make_unique<State>()) {}
ZstdWriter::~ZstdWriter() = default;

Status ZstdWriter::init(int level, unsigned workers) {
  ZSTD_CCtx* c = state_->cctx;
  if (!c) return Status::error("zstd: cannot create a compressor");
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  // Workers: libzstd then compresses in the background while the caller feeds input. A build
  // without threads rejects the parameter and compresses on the calling thread.
  if (workers > 1) ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, static_cast<int>(workers));
  return {};
}

Status ZstdWriter::write(Bytes in, Sink& out) { return state_->drive(in, ZSTD_e_continue, out); }

Status ZstdWriter::finish(Sink& out) { return state_->drive({}, ZSTD_e_end, out); }

}  // namespace dsq
