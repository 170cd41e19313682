// The in-place header scanner must agree with libarchive on every entry of every tar dialect:
// archives are made by GNU tar in each of its formats and walked by both readers.
#include "io/tar-reader.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

struct Seen {
  uint64_t offset, size;
  std::string path, link;
  dsq::TarType type;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> walk(const std::string& tar, dsq::TarReader::Mode mode, std::string& error) {
  dsq::TarReader reader({reinterpret_cast<const std::byte*>(tar.data()), tar.size()}, "t.tar",
                        mode);
  std::vector<Seen> out;
  for (;;) {
    dsq::TarEntry e;
    bool done = false;
    dsq::Status st = reader.next(e, done);
    if (!st.ok()) {
      error = st.message();
      break;
    }
    if (done) {
      out.push_back({reader.end_offset(), 0, "<end>", "", dsq::TarType::kOther});
      break;
    }
    out.push_back({e.offset, e.size, std::string(e.path), std::string(e.link), e.type});
  }
  return out;
}

class TarDialects : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dsq-tar.XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::path root = dir_ / "root";
    fs::create_directories(root / "dir" / std::string(120, 'd'));
    std::ofstream(root / "dir" / "small") << "x";
    std::ofstream(root / "dir" / std::string(120, 'd') / (std::string(90, 'f') + ".txt"))
        << std::string(5000, 'y');
    std::ofstream(root / "caf\xc3\xa9 file") << "unicode";
    std::ofstream(root / "empty");
    fs::create_symlink(std::string(150, 't'), root / "long-symlink");
    fs::create_symlink("dir/small", root / "short-symlink");
    fs::create_hard_link(root / "dir" / "small", root / "hard");
    std::system(("mkfifo " + (root / "fifo").string()).c_str());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string make(const std::string& format, const std::string& extra = "") {
    std::string out = (dir_ / "t.tar").string();
    std::string cmd = "tar --format=" + format + " " + extra + " -C " + (dir_ / "root").string() +
                      " -cf " + out + " . 2>/dev/null";
    // ustar and v7 cannot hold every name; GNU tar then skips those (exit status 2).
    int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) <= 2) << cmd;
    std::ifstream in(out, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

TEST_P(TarDialects, ScannerAgreesWithLibarchive) {
  std::string tar = make(GetParam());
  std::string fast_error, slow_error;
  auto fast = walk(tar, dsq::TarReader::Mode::kFast, fast_error);
  auto slow = walk(tar, dsq::TarReader::Mode::kLibarchiveOnly, slow_error);
  EXPECT_EQ(fast_error, "");
  EXPECT_EQ(slow_error, "");
  ASSERT_GT(fast.size(), 6u);
  EXPECT_EQ(fast, slow);
}

INSTANTIATE_TEST_SUITE_P(GnuTar, TarDialects,
                         ::testing::Values("gnu", "oldgnu", "ustar", "posix", "v7"));

TEST_F(TarDialects, GlobalPaxHeaderIsReadAsLibarchiveReadsIt) {
  std::string tar = make("posix", "--pax-option=comment=global-note");
  ASSERT_NE(tar.find("global-note"), std::string::npos);
  std::string fast_error, slow_error;
  auto fast = walk(tar, dsq::TarReader::Mode::kFast, fast_error);
  auto slow = walk(tar, dsq::TarReader::Mode::kLibarchiveOnly, slow_error);
  EXPECT_EQ(fast_error, "");
  EXPECT_EQ(fast, slow);
}

TEST_F(TarDialects, DamagedHeaderIsReportedWithItsOffset) {
  std::string tar = make("gnu");
  size_t header = tar.find("./empty");  // a header's name field starts the header
  ASSERT_NE(header, std::string::npos);
  tar[header + 148] = 'Z';
  std::string error;
  walk(tar, dsq::TarReader::Mode::kFast, error);
  EXPECT_NE(error.find("t.tar:"), std::string::npos) << error;
  EXPECT_NE(error.find("@"), std::string::npos) << error;
}

TEST_F(TarDialects, TruncatedDataIsAnError) {
  std::string tar = make("gnu");
  size_t big = tar.find(std::string(90, 'f'));
  ASSERT_NE(big, std::string::npos);
  std::string error;
  walk(tar.substr(0, big + 2048), dsq::TarReader::Mode::kFast, error);  // inside that file's data
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
}

}  // namespace
