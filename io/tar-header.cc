// Header encoding goes through libarchive (pax restricted: plain ustar when the entry fits,
// pax records when it does not), written unbuffered into a string so nothing is padded.
#include "io/tar-header.h"

#include <archive.h>
#include <archive_entry.h>

namespace dsq {

void EntryDeleter::operator()(archive_entry* e) const { archive_entry_free(e); }

namespace {

struct HeaderSink {
  std::string out;
  bool closed = false;  // after the header: swallow the padding libarchive writes on close
};

la_ssize_t append_header(archive*, void* client, const void* buf, size_t n) {
  auto* sink = static_cast<HeaderSink*>(client);
  if (!sink->closed) sink->out.append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

std::string encode_tar_header(archive_entry* entry) {
  HeaderSink sink;
  archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
  archive_write_set_options(w, "xattrheader=SCHILY");  // as Docker and GNU tar write xattrs
  archive_write_set_bytes_per_block(w, 0);
  archive_write_open(w, &sink, nullptr, append_header, nullptr);
  archive_write_header(w, entry);
  // The caller writes the data: what libarchive writes from here on (zeros standing for the
  // declared size, end-of-archive blocks) is swallowed.
  sink.closed = true;
  archive_write_free(w);
  return std::move(sink.out);
}

EntryPtr make_entry(std::string_view path, bool directory, uint64_t size, int64_t mtime,
                    uint32_t mode) {
  EntryPtr e(archive_entry_new());
  std::string p(path);
  if (directory && !p.empty() && p.back() != '/') p += '/';
  archive_entry_copy_pathname(e.get(), p.c_str());
  archive_entry_set_filetype(e.get(), directory ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e.get(), mode);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(directory ? 0 : size));
  archive_entry_set_mtime(e.get(), mtime, 0);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  return e;
}

Status read_entry_at(Bytes tar, uint64_t offset, const std::string& name, EntryPtr& out) {
  archive* r = archive_read_new();
  archive_read_support_format_tar(r);
  archive_read_open_memory(r, tar.data() + offset, tar.size() - offset);
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(r, &e);
  Status st;
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
    st = Status::error(name + "@" + std::to_string(offset) + ": cannot re-read tar header");
  else
    out.reset(archive_entry_clone(e));
  archive_read_free(r);
  return st;
}

}  // namespace dsq
