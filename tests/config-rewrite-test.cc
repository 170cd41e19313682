// Config rewriting, digests and tag parsing.
#include "engine/config-rewrite.h"

#include <gtest/gtest.h>

#include "engine/image-ref.h"
#include "io/sha256.h"

namespace dsq {
namespace {

const std::string kConfig =
    R"({"architecture":"amd64","config":{"Env":["A=1", "B=2"],"Cmd":["/bin/sh"],"Labels":{"x":"y"}},)"
    R"("container":"abc","created":"2020-01-01T00:00:00Z","future_field":{ "nested" : [1, 2.5e3, null] },)"
    R"("history":[{"created":"a","created_by":"base"},{"created":"b","created_by":"ENV X","empty_layer":true},)"
    R"({"created":"c","created_by":"RUN x"},{"created":"d","created_by":"RUN y"}],)"
    R"("os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" +
    std::string(64, '1') + R"(","sha256:)" + std::string(64, '2') + R"(","sha256:)" +
    std::string(64, '3') + R"("]}})";

TEST(ConfigRewrite, KeepsUnknownFieldsAndRewritesTheRest) {
  ConfigEdit edit;
  edit.created = "2026-01-01T00:00:00Z";
  edit.kept_history = 2;
  edit.kept_layers = 1;
  edit.new_diff_id = "sha256:" + std::string(64, 'f');
  edit.comment = "squashed \"release\"";
  std::string out;
  ASSERT_TRUE(rewrite_config(kConfig, edit, out).ok());
  EXPECT_EQ(
      out,
      R"({"architecture":"amd64","config":{"Env":["A=1", "B=2"],"Cmd":["/bin/sh"],"Labels":{"x":"y"}},)"
      R"("created":"2026-01-01T00:00:00Z","future_field":{ "nested" : [1, 2.5e3, null] },)"
      R"("history":[{"created":"a","created_by":"base"},{"created":"b","created_by":"ENV X","empty_layer":true},)"
      R"({"created":"2026-01-01T00:00:00Z","comment":"squashed \"release\""}],)"
      R"("os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" +
          std::string(64, '1') + R"(","sha256:)" + std::string(64, 'f') + R"("]}})");
}

TEST(ConfigRewrite, EmptySquashedEntriesGiveAnEmptyLayerEntry) {
  ConfigEdit edit;
  edit.created = "t";
  edit.kept_history = 3;
  edit.kept_layers = 3;
  std::string out;
  ASSERT_TRUE(rewrite_config(kConfig, edit, out).ok());
  EXPECT_NE(out.find(R"({"created":"t","comment":"","empty_layer":true}])"), std::string::npos)
      << out;
  EXPECT_NE(out.find("\"sha256:" + std::string(64, '3') + "\"]"), std::string::npos);
}

TEST(ConfigRewrite, InvalidJsonIsAnError) {
  std::string out;
  Status st = rewrite_config("{\"a\":", ConfigEdit{}, out);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("config: invalid JSON", 0), 0u) << st.message();
}

TEST(ConfigRewrite, SourceDateEpochTimestamp) {
  EXPECT_EQ(rfc3339_now(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339_now(1700000000), "2023-11-14T22:13:20Z");
  std::string now = rfc3339_now(std::nullopt);
  EXPECT_EQ(now.size(), std::string("2026-12-04T16:18:56.123456789Z").size()) << now;
}

TEST(Digests, ChainIdFollowsTheOciRule) {
  std::string a = "sha256:" + std::string(64, 'a'), b = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(chain_id({a}), a);
  EXPECT_EQ(chain_id({a, b}), sha256_digest(a + " " + b));
  EXPECT_EQ(sha256_digest(std::string_view("")),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Digests, DigestHexValidates) {
  EXPECT_EQ(digest_hex("sha256:" + std::string(64, 'a')), std::string(64, 'a'));
  EXPECT_EQ(digest_hex("sha256:" + std::string(63, 'a')), "");
  EXPECT_EQ(digest_hex("sha512:" + std::string(64, 'a')), "");
  EXPECT_EQ(digest_hex("sha256:" + std::string(64, 'A')), "");
}

TEST(ImageRefTest, Normalisation) {
  ImageRef r;
  ASSERT_TRUE(parse_image_ref("app", r).ok());
  EXPECT_EQ(r.familiar, "app:latest");
  EXPECT_EQ(r.full, "docker.io/library/app:latest");
  ASSERT_TRUE(parse_image_ref("team/app:1.0", r).ok());
  EXPECT_EQ(r.full, "docker.io/team/app:1.0");
  EXPECT_EQ(r.repo, "team/app");
  ASSERT_TRUE(parse_image_ref("registry.example:5000/app:sq", r).ok());
  EXPECT_EQ(r.full, "registry.example:5000/app:sq");
  EXPECT_EQ(r.familiar, "registry.example:5000/app:sq");
  EXPECT_EQ(r.tag, "sq");
  EXPECT_FALSE(parse_image_ref("App:1", r).ok());
  EXPECT_FALSE(parse_image_ref("app@sha256:abc", r).ok());
  EXPECT_FALSE(parse_image_ref("app:", r).ok());
}

}  // namespace
}  // namespace dsq
