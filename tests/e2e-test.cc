// End to end: archives made by gen-image, squashed by the docker-squash binary, the output
// archive read back (both layouts), its layers applied by the reference applier and compared
// with the original layers applied the same way.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/sha256.h"
#include "tests/reference-applier.h"

namespace fs = std::filesystem;

namespace {

using Files = std::map<std::string, std::string>;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Files read_tar(const std::string& bytes) {
  Files out;
  archive* r = archive_read_new();
  archive_read_support_format_tar(r);
  archive_read_open_memory(r, bytes.data(), bytes.size());
  archive_entry* e;
  while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) archive_read_data(r, data.data(), data.size());
    out[archive_entry_pathname(e)] = data;
  }
  archive_read_free(r);
  return out;
}

struct Image {
  std::string config;
  std::vector<std::string> layers;  // uncompressed tars, base first
  std::vector<std::string> repo_tags;
};

std::string decompress(const std::string& blob) {
  archive* r = archive_read_new();
  archive_read_support_filter_all(r);
  archive_read_support_format_raw(r);
  archive_read_open_memory(r, blob.data(), blob.size());
  archive_entry* e;
  std::string out;
  if (archive_read_next_header(r, &e) == ARCHIVE_OK) {
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(r, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  archive_read_free(r);
  return out;
}

// Reads an image through manifest.json (the classic store's view).
Image load_docker(const Files& files) {
  Image img;
  simdjson::dom::parser p;
  simdjson::dom::element m = p.parse(files.at("manifest.json")).at(0);
  img.config = files.at(std::string(std::string_view(m["Config"])));
  for (auto l : m["Layers"].get_array()) {
    std::string blob = files.at(std::string(std::string_view(l)));
    auto magic = blob.empty() ? 0 : static_cast<unsigned char>(blob[0]);
    img.layers.push_back(magic == 0x1f || magic == 0x28 ? decompress(blob) : blob);
  }
  if (m["RepoTags"].is_array())
    for (auto t : m["RepoTags"].get_array()) img.repo_tags.emplace_back(std::string_view(t));
  return img;
}

std::vector<std::string> tree_of(const std::vector<std::string>& layers) {
  dsq::ref::Tree t;
  for (const auto& l : layers) {
    std::string err = t.apply(l);
    if (!err.empty()) return {"APPLY ERROR " + err};
  }
  return t.listing();
}

class E2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dsq-e2e.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path path(const std::string& name) const { return dir_ / name; }

  int run(const std::string& cmd) {
    std::string full = cmd + " 2>" + path("stderr").string();
    int rc = std::system(full.c_str());
    err_ = slurp(path("stderr"));
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  fs::path make(const std::string& spec, const std::string& name = "in.tar") {
    std::ofstream(path("spec.txt")) << spec;
    EXPECT_EQ(run(std::string(GEN_IMAGE) + " spec " + path("spec.txt").string() + " " +
                  path(name).string()),
              0)
        << err_;
    return path(name);
  }

  int squash(const std::string& args) {
    return run(std::string("SOURCE_DATE_EPOCH=1800000000 ") + DSQ_BINARY + " " + args);
  }

  // Files in the test directory other than the ones named.
  std::vector<std::string> leftovers(std::initializer_list<std::string> expected) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string n = e.path().filename();
      if (n != "stderr" && n != "spec.txt" &&
          std::find(expected.begin(), expected.end(), n) == expected.end())
        out.push_back(n);
    }
    return out;
  }

  fs::path dir_;
  std::string err_;
};

const char* kSpec = R"(
layer
dir etc
file etc/a one
file etc/b two
hardlink etc/b-link etc/b
dir opt
dir opt/app
file opt/app/x x
empty ENV%20A%3D1
layer
file etc/a one-again mode=0600
whiteout etc/b
layer
dir opt
dir opt/app
opaque opt/app
file opt/app/y y
symlink dangling /missing
empty CMD%20sh
)";

TEST_F(E2E, SquashAllGivesTheSameFilesystem) {
  auto in = make(kSpec);
  ASSERT_EQ(squash("--output-path " + path("out.tar").string() + " docker-archive:" + in.string()),
            0)
      << err_;
  Image before = load_docker(read_tar(slurp(in)));
  Image after = load_docker(read_tar(slurp(path("out.tar"))));
  ASSERT_EQ(after.layers.size(), 1u);
  EXPECT_EQ(tree_of(before.layers), tree_of(after.layers));
  EXPECT_EQ(after.layers[0].find(".wh."), std::string::npos);
}

TEST_F(E2E, V12LayoutInput) {
  auto in = make(std::string("layout v12\n") + kSpec);
  ASSERT_EQ(squash("--output-path " + path("out.tar").string() + " docker-archive:" + in.string()),
            0)
      << err_;
  EXPECT_EQ(tree_of(load_docker(read_tar(slurp(in))).layers),
            tree_of(load_docker(read_tar(slurp(path("out.tar")))).layers));
}

// docker save writes a layer shared with another saved image as a symlink to the other's
// layer.tar; manifest.json names the symlink.
TEST_F(E2E, LayerStoredAsASymlinkInTheArchive) {
  auto in = make(std::string("layout v12\n") + kSpec);
  fs::path x = path("x");
  fs::create_directories(x);
  ASSERT_EQ(run("tar -C " + x.string() + " -xf " + in.string()), 0);
  Image before = load_docker(read_tar(slurp(in)));
  std::string first(dsq::digest_hex(dsq::sha256_digest(before.layers[0])));
  fs::create_directories(x / "shared");
  fs::create_symlink("../" + first + "/layer.tar", x / "shared" / "layer.tar");
  std::string manifest = slurp(x / "manifest.json");
  manifest.replace(manifest.find(first + "/layer.tar"), first.size() + 10, "shared/layer.tar");
  std::ofstream(x / "manifest.json", std::ios::trunc) << manifest;
  ASSERT_EQ(run("tar -C " + x.string() + " -cf " + path("linked.tar").string() + " ."), 0);
  ASSERT_EQ(squash("--output-path " + path("out.tar").string() +
                   " docker-archive:" + path("linked.tar").string()),
            0)
      << err_;
  EXPECT_EQ(tree_of(before.layers), tree_of(load_docker(read_tar(slurp(path("out.tar")))).layers));
}

TEST_F(E2E, GzipAndZstdLayers) {
  auto in =
      make("layer gzip\nfile a x\nfile b y\nlayer zstd\nwhiteout a\nfile c z\nlayer\nfile d w\n");
  ASSERT_EQ(
      squash("-f 2 --output-path " + path("out.tar").string() + " docker-archive:" + in.string()),
      0)
      << err_;
  Files out = read_tar(slurp(path("out.tar")));
  Image before = load_docker(read_tar(slurp(in))), after = load_docker(out);
  ASSERT_EQ(after.layers.size(), 2u);
  EXPECT_EQ(tree_of(before.layers), tree_of(after.layers));
  // The kept gzip layer keeps its bytes and its media type.
  simdjson::dom::parser p;
  std::string_view md = p.parse(out.at("index.json"))["manifests"].at(0)["digest"];
  std::string manifest = out.at("blobs/sha256/" + std::string(md.substr(7)));
  EXPECT_NE(manifest.find("application/vnd.oci.image.layer.v1.tar+gzip"), std::string::npos)
      << manifest;
}

TEST_F(E2E, OutputHoldsBothLayoutsWithConsistentDigests) {
  auto in = make(kSpec);
  ASSERT_EQ(squash("-t app:sq --output-path " + path("out.tar").string() +
                   " docker-archive:" + in.string()),
            0)
      << err_;
  Files out = read_tar(slurp(path("out.tar")));
  for (const auto& [name, data] : out) {
    if (name.rfind("blobs/sha256/", 0) == 0) {
      EXPECT_EQ("blobs/" + dsq::sha256_digest(data).replace(6, 1, "/"), name);
    }
  }
  EXPECT_EQ(out.at("oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  simdjson::dom::parser p;
  auto index = p.parse(out.at("index.json"));
  std::string_view ref =
      index["manifests"].at(0)["annotations"]["org.opencontainers.image.ref.name"];
  std::string_view name = index["manifests"].at(0)["annotations"]["io.containerd.image.name"];
  EXPECT_EQ(ref, "sq");
  EXPECT_EQ(name, "docker.io/library/app:sq");
  Image img = load_docker(out);
  EXPECT_EQ(img.repo_tags, std::vector<std::string>{"app:sq"});
  std::string id(dsq::digest_hex(dsq::sha256_digest(img.config)));
  EXPECT_EQ(out.at("repositories"), "{\"app\":{\"sq\":\"" + id + "\"}}");
  simdjson::dom::parser p2;
  std::string_view diff = p2.parse(img.config)["rootfs"]["diff_ids"].at(0);
  EXPECT_EQ(diff, dsq::sha256_digest(img.layers[0]));
}

TEST_F(E2E, ConfigKeepsFieldsAndRecordsOneHistoryEntry) {
  auto in = make(kSpec);
  ASSERT_EQ(squash("-f 4 -m release --output-path " + path("out.tar").string() +
                   " docker-archive:" + in.string()),
            0)
      << err_;
  Image before = load_docker(read_tar(slurp(in))),
        after = load_docker(read_tar(slurp(path("out.tar"))));
  simdjson::dom::parser p1, p2;
  auto a = p1.parse(before.config), b = p2.parse(after.config);
  EXPECT_EQ(simdjson::to_string(a["architecture"]), simdjson::to_string(b["architecture"]));
  auto history = b["history"].get_array();
  ASSERT_EQ(history.size(), 2u);  // "layer 0" kept, 4 entries squashed into one
  EXPECT_EQ(std::string_view(history.at(0)["created_by"]), "layer 0");
  EXPECT_EQ(std::string_view(history.at(1)["comment"]), "release");
  EXPECT_EQ(std::string_view(history.at(1)["created"]), "2027-01-15T08:00:00Z");
  EXPECT_EQ(std::string_view(b["created"]), "2027-01-15T08:00:00Z");
  EXPECT_EQ(b["rootfs"]["diff_ids"].get_array().size(), 2u);
  EXPECT_EQ(std::string_view(a["rootfs"]["diff_ids"].at(0)),
            std::string_view(b["rootfs"]["diff_ids"].at(0)));
  EXPECT_EQ(tree_of(before.layers), tree_of(after.layers));
}

TEST_F(E2E, FromLayerByDiffId) {
  auto in = make(kSpec);
  Image before = load_docker(read_tar(slurp(in)));
  std::string base_diff(dsq::digest_hex(dsq::sha256_digest(before.layers[0])));
  ASSERT_EQ(squash("-f " + base_diff.substr(0, 12) + " --output-path " + path("out.tar").string() +
                   " docker-archive:" + in.string()),
            0)
      << err_;
  Image after = load_docker(read_tar(slurp(path("out.tar"))));
  ASSERT_EQ(after.layers.size(), 2u);
  EXPECT_EQ(after.layers[0], before.layers[0]);
  EXPECT_EQ(tree_of(before.layers), tree_of(after.layers));
}

TEST_F(E2E, OnlyEmptyEntriesSquashedGiveNoNewLayer) {
  auto in = make("layer\nfile a x\nempty ENV%20A\nempty CMD%20b\n");
  ASSERT_EQ(
      squash("-f 2 --output-path " + path("out.tar").string() + " docker-archive:" + in.string()),
      0)
      << err_;
  Image after = load_docker(read_tar(slurp(path("out.tar"))));
  EXPECT_EQ(after.layers.size(), 1u);
  EXPECT_NE(after.config.find("\"empty_layer\":true}]"), std::string::npos) << after.config;
}

TEST_F(E2E, CountErrorsAndExitCodes) {
  auto in = make(kSpec);
  std::string tail =
      " --output-path " + path("out.tar").string() + " docker-archive:" + in.string();
  EXPECT_EQ(squash("-f 0" + tail), 1);
  EXPECT_EQ(err_,
            "docker-squash: Number of layers to squash cannot be less or equal 0, provided: 0\n");
  EXPECT_EQ(squash("-f 9" + tail), 1);
  EXPECT_EQ(err_, "docker-squash: Cannot squash 9 layers, the docker-archive:" + in.string() +
                      " image contains only 5 layers\n");
  EXPECT_EQ(squash("-f 1" + tail), 2);
  EXPECT_EQ(err_, "docker-squash: Single layer marked to squash, no squashing is required\n");
  EXPECT_EQ(squash("-f deadbeefdeadbeef" + tail), 1);
  EXPECT_NE(err_.find("Could not find the layer or image 'deadbeefdeadbeef'"), std::string::npos)
      << err_;
  Image img = load_docker(read_tar(slurp(in)));
  std::string id(dsq::digest_hex(dsq::sha256_digest(img.config)));
  EXPECT_EQ(squash("-f " + id.substr(0, 12) + tail), 2);
  EXPECT_EQ(err_, "docker-squash: No layers to squash above " + id.substr(0, 12) +
                      " in docker-archive:" + in.string() + "\n");
  EXPECT_EQ(squash("-f sample:latest" + tail), 2);
  EXPECT_EQ(squash("--load-image maybe" + tail), 2);
  // A bare name is a daemon image: no daemon (or no such image) is a failure naming it.
  EXPECT_EQ(run("DOCKER_HOST=unix://" + path("no-daemon.sock").string() + " " + DSQ_BINARY +
                " some-image:latest --output-path x.tar"),
            1);
  EXPECT_NE(
      err_.find("cannot connect to the Docker daemon at unix://" + path("no-daemon.sock").string()),
      std::string::npos)
      << err_;
  EXPECT_EQ(squash("-c" + tail), 2);
  EXPECT_EQ(leftovers({"in.tar"}), std::vector<std::string>{});
}

TEST_F(E2E, JobsDoNotChangeTheOutput) {
  auto in = make(kSpec);
  ASSERT_EQ(
      squash("-j 1 --output-path " + path("a.tar").string() + " docker-archive:" + in.string()), 0)
      << err_;
  ASSERT_EQ(
      squash("-j 2 --output-path " + path("b.tar").string() + " docker-archive:" + in.string()), 0)
      << err_;
  EXPECT_EQ(slurp(path("a.tar")), slurp(path("b.tar")));
}

TEST_F(E2E, StdinToStdout) {
  auto in = make(kSpec);
  ASSERT_EQ(squash("--tmp-dir " + dir_.string() + " --output-path - - < " + in.string() + " > " +
                   path("piped.tar").string()),
            0)
      << err_;
  ASSERT_EQ(squash("--tmp-dir " + dir_.string() + " --output-path - - < " + in.string() +
                   " | cat > " + path("piped2.tar").string()),
            0)
      << err_;
  ASSERT_EQ(
      squash("--output-path " + path("direct.tar").string() + " docker-archive:" + in.string()), 0)
      << err_;
  EXPECT_EQ(slurp(path("piped.tar")), slurp(path("direct.tar")));
  EXPECT_EQ(slurp(path("piped2.tar")), slurp(path("direct.tar")));
  EXPECT_EQ(leftovers({"in.tar", "piped.tar", "piped2.tar", "direct.tar"}),
            std::vector<std::string>{});
}

TEST_F(E2E, PeakMemoryStaysWithinTheDocumentedBound) {
#ifdef DSQ_SANITIZED
  GTEST_SKIP() << "sanitizer shadow memory is not part of the bound";
#endif
  ASSERT_EQ(run(std::string(GEN_IMAGE) + " many " + path("many.tar").string() + " 3 40000 4 1500"),
            0)
      << err_;
  ASSERT_EQ(squash("-v --output-path " + path("out.tar").string() +
                   " docker-archive:" + path("many.tar").string()),
            0)
      << err_;
  unsigned long long peak = 0, bound = 0;
  size_t at = err_.find("memory: peak RSS ");
  ASSERT_NE(at, std::string::npos) << err_;
  ASSERT_EQ(std::sscanf(err_.c_str() + at, "memory: peak RSS %llu bytes, bound %llu bytes", &peak,
                        &bound),
            2);
  EXPECT_GT(peak, 0u);
  EXPECT_LE(peak, bound);
  // The bound is about the index, not the image: below the size of the layers.
  EXPECT_LT(bound, fs::file_size(path("many.tar")));
}

// --- Bad input: one line naming file, entry and offset; exit 1; nothing left ---------------

class BadInput : public E2E {
 protected:
  void expect_failure(const std::string& archive, const std::string& message_start) {
    std::ofstream(path("bad.tar"), std::ios::binary) << archive;
    EXPECT_EQ(squash("--output-path " + path("out.tar").string() +
                     " docker-archive:" + path("bad.tar").string()),
              1);
    EXPECT_EQ(err_.rfind("docker-squash: " + path("bad.tar").string() + message_start, 0), 0u)
        << err_;
    EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1) << err_;
    EXPECT_EQ(leftovers({"in.tar", "bad.tar"}), std::vector<std::string>{});
  }
  std::string good() { return slurp(make(kSpec)); }
};

TEST_F(BadInput, TruncatedArchive) {
  std::string a = good();
  expect_failure(a.substr(0, a.size() / 2 + 100), ":");
  EXPECT_NE(err_.find("truncated"), std::string::npos) << err_;
}

TEST_F(BadInput, MissingManifest) {
  std::ofstream(path("hello")) << "not an image";
  ASSERT_EQ(run("tar -C " + dir_.string() + " -cf " + path("plain.tar").string() + " hello"), 0);
  std::string plain = slurp(path("plain.tar"));
  fs::remove(path("plain.tar"));
  fs::remove(path("hello"));
  expect_failure(plain, ":manifest.json: missing (not a docker save archive?)");
}

TEST_F(BadInput, ManifestNamesMissingBlob) {
  std::string a = good();
  size_t at = a.find("[{\"Config\"");
  size_t layers = a.find("\"Layers\":[\"blobs/sha256/", at);
  a[layers + 24] = a[layers + 24] == '0' ? '1' : '0';
  expect_failure(a, ":blobs/sha256/");
  EXPECT_NE(err_.find(": missing from the archive"), std::string::npos) << err_;
}

TEST_F(BadInput, LayerDigestDiffersFromDiffId) {
  std::string a = good();
  size_t pos = a.find("one-again");
  ASSERT_NE(pos, std::string::npos);
  a[pos] = 'O';
  std::ofstream(path("bad.tar"), std::ios::binary) << a;
  EXPECT_EQ(squash("--verify --output-path " + path("out.tar").string() +
                   " docker-archive:" + path("bad.tar").string()),
            1);
  EXPECT_NE(err_.find(path("bad.tar").string() + ":blobs/sha256/"), std::string::npos) << err_;
  EXPECT_NE(err_.find("but the config's diff_id is sha256:"), std::string::npos) << err_;
  EXPECT_EQ(leftovers({"in.tar", "bad.tar"}), std::vector<std::string>{});
  // Without --verify only the bytes that survive are read: the squash succeeds and its output
  // is consistent with itself (digests are computed from what is written).
  EXPECT_EQ(squash("--output-path " + path("out.tar").string() +
                   " docker-archive:" + path("bad.tar").string()),
            0)
      << err_;
}

TEST_F(BadInput, CorruptLayerHeader) {
  std::string a = good();
  size_t pos = a.find("etc/a");  // the first layer's first file header: break its checksum
  ASSERT_NE(pos, std::string::npos);
  a[pos + 148] = 'Z';
  std::ofstream(path("bad.tar"), std::ios::binary) << a;
  EXPECT_EQ(squash("--output-path " + path("out.tar").string() +
                   " docker-archive:" + path("bad.tar").string()),
            1);
  EXPECT_NE(err_.find(path("bad.tar").string() + ":blobs/sha256/"), std::string::npos) << err_;
  EXPECT_NE(err_.find("@"), std::string::npos) << err_;
  EXPECT_EQ(leftovers({"in.tar", "bad.tar"}), std::vector<std::string>{});
}

TEST_F(BadInput, PathEscapingTheRoot) {
  std::string a = slurp(make("layer\nfile a/../../x y\nlayer\nfile b z\n"));
  expect_failure(a, ":blobs/sha256/");
  EXPECT_NE(err_.find(":a/../../x@0: path escapes the root"), std::string::npos) << err_;
}

TEST_F(BadInput, NotAnArchive) { expect_failure(std::string(3000, 'x'), ""); }

}  // namespace
