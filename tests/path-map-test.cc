// Path-map scenarios: each squashes a few tiny layers in-process and checks (1) that the
// squashed result, applied by the reference applier, gives the same filesystem as the original
// layers and (2) what the new layer contains. Layers use gen-image's spec language.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/layer-index.h"
#include "engine/plan-output.h"
#include "tests/scenario.h"

using dsq::test::Scenario;
using dsq::test::squash_spec;

namespace {

bool has(const Scenario& s, const std::string& entry) {
  return std::find(s.entries.begin(), s.entries.end(), entry) != s.entries.end();
}

bool has_prefix(const Scenario& s, const std::string& prefix) {
  return std::any_of(s.entries.begin(), s.entries.end(),
                     [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
}

bool any_marker(const Scenario& s) {
  return std::any_of(s.entries.begin(), s.entries.end(),
                     [](const std::string& e) { return e.find(".wh.") != std::string::npos; });
}

size_t position(const Scenario& s, const std::string& entry) {
  return std::find(s.entries.begin(), s.entries.end(), entry) - s.entries.begin();
}

std::vector<std::string> without_link_identity(std::vector<std::string> tree) {
  for (auto& line : tree) line = line.substr(0, line.find(" link="));
  return tree;
}

#define EXPECT_SAME_TREE(s)              \
  do {                                   \
    ASSERT_EQ((s).error, "");            \
    EXPECT_EQ((s).expected, (s).actual); \
  } while (0)

// --- Last writer wins -------------------------------------------------------------------

TEST(PathMap, NewestLayerWins) {
  auto s = squash_spec("layer\nfile a one\nlayer\nfile a two\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f a"});
  EXPECT_EQ(s.stats.copied, 1u);
}

TEST(PathMap, LaterDuplicateInOneLayerWins) {
  auto s = squash_spec("layer\nfile a one\nfile a two\nlayer\nfile b x\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"f a", "f b"}));
}

// Found by fuzz-squash: within one layer, a file written over a directory (tar order) removes
// what the layer put under it before, as an unpacker applying the tar in order does.
TEST(PathMap, FileOverDirectoryLaterInOneLayerHidesItsEarlierChildren) {
  auto s = squash_spec("layer\ndir e\nfile e/f/g x\nfile e y\nlayer\nfile b x\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"f b", "f e"}));
}

TEST(PathMap, NameSpellingsAreOnePath) {
  auto s = squash_spec("layer\ndir ./d/\nfile ./d/a one\nlayer\nfile d//a two\ndir d\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d//a"}));
}

TEST(PathMap, DotEntryIsTheRoot) {
  auto s = squash_spec("layer\ndir ./ mode=0700\nfile a x\nlayer\nfile b y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries.front(), "d ./");
}

// --- Whiteouts --------------------------------------------------------------------------

TEST(PathMap, WhiteoutDeletesLowerFile) {
  auto s = squash_spec("layer\nfile a x\nfile b y\nlayer\nwhiteout a\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f b"});
}

TEST(PathMap, WhiteoutDeletesLowerSubtree) {
  auto s = squash_spec("layer\ndir d\ndir d/e\nfile d/e/f x\nfile keep y\nlayer\nwhiteout d\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f keep"});
}

TEST(PathMap, WhiteoutAfterAnEntryOfItsOwnLayerRemovesIt) {
  auto s = squash_spec("layer\nfile a old\nlayer\nfile a new\nwhiteout a\nfile b x\n");
  // The OCI text says a whiteout only targets lower layers, but Docker and containerd apply a
  // layer entry by entry and delete the layer's own earlier `a` too: the squash gives the
  // filesystem they give (found by fuzz-squash against the reference applier).
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f b"});
}

TEST(PathMap, WhiteoutThenRecreatedDirectoryInOneLayer) {
  auto s = squash_spec("layer\ndir d\nfile d/old x\nlayer\nwhiteout d\ndir d\nfile d/new y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/new"}));
}

TEST(PathMap, WhiteoutPrefixInsideANameIsAnOrdinaryFile) {
  auto s = squash_spec("layer\nfile foo x\nfile foo.wh.bar y\nlayer\nfile z.wh. q\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f foo"));
  EXPECT_TRUE(has(s, "f foo.wh.bar"));
  EXPECT_TRUE(has(s, "f z.wh."));
}

TEST(PathMap, WhiteoutOfMissingPathIsDropped) {
  auto s = squash_spec("layer\nfile a x\nlayer\nwhiteout nothing-here\n");
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(any_marker(s));
}

TEST(PathMap, AufsMetadataIsSkipped) {
  auto s = squash_spec("layer\nfile a x\nfile .wh..wh.plnk y\nlayer\nfile b z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"f a", "f b"}));
}

TEST(PathMap, InvalidWhiteoutNameIsAnError) {
  auto s = squash_spec("layer\nfile a x\nlayer\nfile d/.wh.. y\n");
  EXPECT_NE(s.error.find("invalid whiteout name"), std::string::npos) << s.error;
}

// --- Opaque directories -------------------------------------------------------------------

TEST(PathMap, OpaqueHidesLowerChildrenKeepsOwn) {
  auto s = squash_spec(
      "layer\ndir d\nfile d/old x\ndir d/sub\nfile d/sub/deep y\nlayer\ndir d mode=0700\nopaque "
      "d\nfile d/new z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/new"}));
}

TEST(PathMap, OpaqueMarkerPositionDoesNotMatter) {
  auto s = squash_spec("layer\ndir d\nfile d/old x\nlayer\ndir d\nfile d/new z\nopaque d\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/new"}));
}

TEST(PathMap, OpaqueDoesNotHideSiblingsOfTheDirectory) {
  auto s = squash_spec("layer\ndir d\nfile d/x x\nfile dx y\nlayer\ndir d\nopaque d\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f dx"}));
}

// --- Type changes -------------------------------------------------------------------------

TEST(PathMap, FileReplacingDirectoryHidesSubtree) {
  auto s = squash_spec("layer\ndir d\nfile d/a x\nlayer\nfile d now-a-file\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f d"});
}

TEST(PathMap, SymlinkReplacingDirectoryHidesSubtree) {
  auto s = squash_spec("layer\ndir d\nfile d/a x\nlayer\nsymlink d /elsewhere\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"l d -> /elsewhere"});
}

TEST(PathMap, PathUnderANewerSymlinkIsNotFollowed) {
  auto s = squash_spec(
      "layer\ndir real\ndir d\nfile d/a x\nlayer\nsymlink d real\nlayer\nfile other y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(has_prefix(s, "f d/"));
  EXPECT_FALSE(has_prefix(s, "f real/"));
}

TEST(PathMap, DirectoryReplacingFile) {
  auto s = squash_spec("layer\nfile d x\nlayer\ndir d\nfile d/a y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/a"}));
}

TEST(PathMap, FileThenDirectoryAgainDropsTheOldSubtree) {
  auto s = squash_spec("layer\ndir d\nfile d/old x\nlayer\nfile d y\nlayer\ndir d\nfile d/new z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/new"}));
}

TEST(PathMap, DirectoryOverDirectoryMergesNewestHeaderWins) {
  auto s = squash_spec(
      "layer\ndir d mode=0755 uid=1\nfile d/a x\nlayer\ndir d mode=0700 uid=2\nfile d/b y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/a", "f d/b"}));
}

TEST(PathMap, ChmodOnlyLayerWins) {
  auto s = squash_spec("layer\nfile a same mode=0644\nlayer\nfile a same mode=0600 uid=7\n");
  EXPECT_SAME_TREE(s);
}

// --- Hard links ---------------------------------------------------------------------------

TEST(PathMap, LinkWhoseTargetSurvivesStaysALink) {
  auto s = squash_spec("layer\nfile a data\nhardlink b a\nlayer\nfile c z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f a"));
  EXPECT_TRUE(has(s, "h b -> a"));
  EXPECT_LT(position(s, "f a"), position(s, "h b -> a"));
}

TEST(PathMap, LinkWhoseTargetIsDeletedKeepsOldContent) {
  auto s = squash_spec("layer\nfile a old-content\nhardlink b a\nlayer\nwhiteout a\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f b"});
  EXPECT_EQ(s.stats.materialised, 1u);
}

TEST(PathMap, LinkWhoseTargetIsOverwrittenKeepsOldContent) {
  auto s = squash_spec("layer\nfile a old\nhardlink b a\nlayer\nfile a new\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f a"));
  EXPECT_TRUE(has(s, "f b"));
}

TEST(PathMap, LinkWhoseTargetBecomesASymlinkKeepsOldContent) {
  auto s = squash_spec("layer\nfile a old\nhardlink b a\nlayer\nsymlink a /x\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "l a -> /x"));
  EXPECT_TRUE(has(s, "f b"));
}

TEST(PathMap, LinkGroupFirstSurvivorCarriesTheData) {
  auto s = squash_spec(
      "layer\nfile t data\nhardlink l1 t\nhardlink l2 t\nhardlink l3 t\nlayer\nwhiteout t\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"f l1", "h l2 -> l1", "h l3 -> l1"}));
}

TEST(PathMap, LinkNamedBeforeItsTargetCarriesTheData) {
  auto s =
      squash_spec("layer\ndir z\nfile z/target data\nhardlink a-link z/target\nlayer\nfile q x\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f a-link"));
  EXPECT_TRUE(has(s, "h z/target -> a-link"));
}

TEST(PathMap, LinkToALinkSharesTheOriginalContent) {
  auto s = squash_spec(
      "layer\nfile a v1\nhardlink b a\nlayer\nhardlink c b\nlayer\nwhiteout a\nwhiteout b\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f c"});
}

TEST(PathMap, LinkInANewerLayerToALowerFile) {
  auto s = squash_spec("layer\nfile a v1\nlayer\nhardlink b a\nlayer\nfile a v2\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f b"));
}

TEST(PathMap, LinkToMissingTargetIsAnError) {
  auto s = squash_spec("layer\nhardlink b nowhere\nlayer\nfile a x\n");
  EXPECT_NE(s.error.find("hard link to 'nowhere'"), std::string::npos) << s.error;
}

// --- Symlinks -----------------------------------------------------------------------------

TEST(PathMap, DanglingSymlinkIsKept) {
  auto s = squash_spec("layer\nsymlink a /does/not/exist\nlayer\nfile b x\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "l a -> /does/not/exist"));
}

TEST(PathMap, SymlinkSurvivesDeletionOfItsTarget) {
  auto s =
      squash_spec("layer\ndir usr\nfile usr/man x\nsymlink alt usr/man\nlayer\nwhiteout usr\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"l alt -> usr/man"});
}

// --- Partial squash: markers for the kept base --------------------------------------------

TEST(PathMap, FullSquashEmitsNoMarkers) {
  auto s = squash_spec(
      "layer\ndir d\nfile d/a x\nfile b y\nlayer\nwhiteout d\nwhiteout b\nlayer\ndir e\nopaque "
      "e\n");
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(any_marker(s));
}

TEST(PathMap, PartialSquashWhitesOutBaseFile) {
  auto s = squash_spec("layer\nfile a x\nfile b y\nlayer\nwhiteout a\nlayer\nfile c z\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f .wh.a"));
}

TEST(PathMap, PartialSquashNoMarkerForPathsOnlyInSquashedLayers) {
  auto s = squash_spec("layer\nfile base x\nlayer\nfile tmp y\nlayer\nwhiteout tmp\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(any_marker(s));
}

TEST(PathMap, PartialSquashNoNestedMarkers) {
  auto s = squash_spec(
      "layer\ndir d\ndir d/e\nfile d/e/f x\nlayer\nwhiteout d/e/f\nlayer\nwhiteout d\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, std::vector<std::string>{"f .wh.d"});
}

TEST(PathMap, PartialSquashRecreatedDirectoryGetsOpaqueMarker) {
  auto s =
      squash_spec("layer\ndir d\nfile d/old x\nlayer\nwhiteout d\nlayer\ndir d\nfile d/new y\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d d/", "f d/.wh..wh..opq", "f d/new"}));
}

TEST(PathMap, PartialSquashOpaqueOnlyWhenTheBaseHasChildren) {
  auto s = squash_spec("layer\ndir d\nlayer\ndir d\nopaque d\nfile d/new y\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(any_marker(s));
}

TEST(PathMap, PartialSquashKeepsOpaqueOverBaseChildren) {
  auto s = squash_spec(
      "layer\ndir d\nfile d/old x\nlayer\ndir d\nopaque d\nfile d/new y\nlayer\nfile z q\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f d/.wh..wh..opq"));
  EXPECT_LT(position(s, "f d/.wh..wh..opq"), position(s, "f d/new"));
}

TEST(PathMap, PartialSquashFileReplacingBaseDirectoryNeedsNoMarker) {
  auto s = squash_spec("layer\ndir d\nfile d/a x\nlayer\nfile d now-file\nlayer\nfile e y\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_FALSE(any_marker(s));
}

// A layer cannot link to a file of a lower layer (overlay2 links inside the layer being
// applied), so the content is copied: same tree, but b no longer shares a's inode.
TEST(PathMap, PartialSquashLinkIntoKeptLayerIsMaterialised) {
  auto s = squash_spec("layer\nfile a content\nlayer\nhardlink b a\nlayer\nfile c z\n", 1);
  ASSERT_EQ(s.error, "");
  EXPECT_EQ(without_link_identity(s.expected), without_link_identity(s.actual));
  EXPECT_TRUE(has(s, "f b"));
  EXPECT_FALSE(has_prefix(s, "h "));
}

TEST(PathMap, PartialSquashWhiteoutsComeBeforeTheirSiblings) {
  auto s =
      squash_spec("layer\ndir d\nfile d/zz x\nfile d/-a y\nlayer\nwhiteout d/zz\nfile d/!b q\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"f d/.wh.zz", "f d/!b"}));
}

TEST(PathMap, PartialSquashImplicitBaseDirectoryIsWhitedOut) {
  auto s = squash_spec("layer\nfile d/a x\nlayer\nwhiteout d\nlayer\nfile z y\n", 1);
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f .wh.d"));
}

// --- Parents, order, names, bytes ------------------------------------------------------

TEST(PathMap, MissingParentDirectoriesAreSynthesised) {
  auto s = squash_spec("layer\nfile a/b/c x\nlayer\nfile a/b/d y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_EQ(s.entries, (std::vector<std::string>{"d a/", "d a/b/", "f a/b/c", "f a/b/d"}));
  EXPECT_EQ(s.stats.parents, 2u);
}

TEST(PathMap, ParentsComeBeforeChildren) {
  auto s = squash_spec("layer\nfile a-b x\ndir a\nfile a/c y\nlayer\ndir a\nfile a/0 z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_LT(position(s, "d a/"), position(s, "f a/0"));
  EXPECT_LT(position(s, "f a/c"), position(s, "f a-b"));
}

TEST(PathMap, LongUnicodeAndSpacedNames) {
  std::string longname(150, 'n');
  auto s = squash_spec("layer\ndir d\nfile d/" + longname +
                       " x\nfile d/caf%C3%A9%20menu y\nlayer\nfile d/" + longname + " z\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f d/" + longname));
  EXPECT_TRUE(has(s, "f d/caf\xC3\xA9 menu"));
}

TEST(PathMap, DotDotComponentIsRejected) {
  auto s = squash_spec("layer\nfile a/../../etc/passwd x\nlayer\nfile b y\n");
  EXPECT_NE(s.error.find("escapes the root"), std::string::npos) << s.error;
}

TEST(PathMap, SurvivorsAreCopiedByteForByte) {
  auto s = squash_spec(
      "layer\nfile a x xattr=security.capability:abc mode=4755\nlayer\nfile b y "
      "mtime=1234567890\n");
  EXPECT_SAME_TREE(s);
  // The new layer is exactly the concatenation of the two original entries (pax headers,
  // xattrs, padding) followed by the end-of-archive blocks.
  std::string a = s.inputs[0].substr(0, s.inputs[0].size() - 1024);
  std::string b = s.inputs[1].substr(0, s.inputs[1].size() - 1024);
  EXPECT_EQ(s.layer, a + b + std::string(1024, '\0'));
}

TEST(PathMap, DevicesAndFifosAreKept) {
  auto s = squash_spec("layer\nfifo run/pipe\nlayer\nfile x y\n");
  EXPECT_SAME_TREE(s);
  EXPECT_TRUE(has(s, "f run/pipe"));  // listed as "f": neither directory nor link
}

TEST(PathMap, OutputPathOrder) {
  EXPECT_TRUE(dsq::output_path_less("", "a"));
  EXPECT_TRUE(dsq::output_path_less("a", "a/b"));
  EXPECT_TRUE(dsq::output_path_less("a/b", "a-b"));
  EXPECT_TRUE(dsq::output_path_less("d/.wh..wh..opq", "d/.wh.a"));
  EXPECT_TRUE(dsq::output_path_less("d/.wh.z", "d/!"));
  EXPECT_TRUE(dsq::output_path_less("d/.wh.z", "d/.a"));
  EXPECT_FALSE(dsq::output_path_less("a/b", "a"));
  EXPECT_FALSE(dsq::output_path_less("x", "x"));
}

TEST(PathMap, NormalisePath) {
  std::string out;
  ASSERT_TRUE(dsq::normalise_path("./a//b/", out));
  EXPECT_EQ(out, "a/b");
  ASSERT_TRUE(dsq::normalise_path("/abs/./x", out));
  EXPECT_EQ(out, "abs/x");
  ASSERT_TRUE(dsq::normalise_path("./", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(dsq::normalise_path("a/../b", out));
}

}  // namespace
