// ProtoActionResultChecker over a real Store and BuildCache: an action result is served only
// while every blob it references is in the CAS.
#include "reapi/action_result_checker.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cinch/options.h"
#include "reapi/digests.h"

namespace cinch::reapi {
namespace {

class ActionResultCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.memory_limit = size_t{64} << 20;
    o.background_cleaner = false;
    ASSERT_TRUE(Store::Open(o, &store_).ok());
    cache_ = std::make_unique<buildcache::BuildCache>(store_.get(), &checker_);
  }

  rev2::Digest Digest(const std::string& bytes) {
    rev2::Digest d;
    buildcache::Digest bd;
    bd.hash = buildcache::Sha256::Of(bytes);
    bd.size = static_cast<int64_t>(bytes.size());
    ToProto(bd, &d);
    return d;
  }
  void Upload(const std::string& bytes) {
    buildcache::Digest d;
    ASSERT_TRUE(FromProto(Digest(bytes), &d));
    ASSERT_EQ(cache_->Put(buildcache::Kind::kCas, d, bytes), buildcache::BlobOutcome::kOk);
  }
  bool Complete(const rev2::ActionResult& r) {
    return checker_.Complete(r.SerializeAsString(), *cache_);
  }
  static rev2::Directory WithFile(const rev2::Digest& file) {
    rev2::Directory dir;
    *dir.add_files()->mutable_digest() = file;
    return dir;
  }

  std::unique_ptr<Store> store_;
  ProtoActionResultChecker checker_;
  std::unique_ptr<buildcache::BuildCache> cache_;
};

TEST_F(ActionResultCheckerTest, NothingReferencedIsComplete) {
  rev2::ActionResult r;
  r.set_stdout_raw("inline");
  r.add_output_symlinks()->set_target("/absolute");
  EXPECT_TRUE(Complete(r));
}

TEST_F(ActionResultCheckerTest, BytesThatDoNotParseAreIncomplete) {
  EXPECT_FALSE(checker_.Complete("\xff\xff\xff not a protobuf", *cache_));
}

TEST_F(ActionResultCheckerTest, OutputFiles) {
  rev2::ActionResult r;
  *r.add_output_files()->mutable_digest() = Digest("out 1");
  *r.add_output_files()->mutable_digest() = Digest("out 2");
  *r.add_output_files()->mutable_digest() = Digest("");  // the empty blob: never uploaded
  Upload("out 1");
  EXPECT_FALSE(Complete(r));
  Upload("out 2");
  EXPECT_TRUE(Complete(r));
}

TEST_F(ActionResultCheckerTest, MalformedDigestIsIncomplete) {
  rev2::ActionResult r;
  r.add_output_files()->mutable_digest()->set_hash("not hex");
  EXPECT_FALSE(Complete(r));
}

TEST_F(ActionResultCheckerTest, StdoutAndStderrDigests) {
  rev2::ActionResult r;
  *r.mutable_stdout_digest() = Digest("stdout");
  *r.mutable_stderr_digest() = Digest("stderr");
  Upload("stdout");
  EXPECT_FALSE(Complete(r));
  Upload("stderr");
  EXPECT_TRUE(Complete(r));
}

TEST_F(ActionResultCheckerTest, OutputDirectoryNeedsItsTreeAndEveryFileInIt) {
  rev2::Tree tree;
  *tree.mutable_root() = WithFile(Digest("root file"));
  *tree.add_children() = WithFile(Digest("child file"));
  const std::string tree_bytes = tree.SerializeAsString();
  rev2::ActionResult r;
  *r.add_output_directories()->mutable_tree_digest() = Digest(tree_bytes);
  Upload("root file");
  Upload("child file");
  EXPECT_FALSE(Complete(r)) << "the Tree blob itself is missing";
  Upload(tree_bytes);
  EXPECT_TRUE(Complete(r));

  rev2::Tree partial = tree;
  *partial.add_children() = WithFile(Digest("grandchild file"));
  const std::string partial_bytes = partial.SerializeAsString();
  Upload(partial_bytes);
  *r.mutable_output_directories(0)->mutable_tree_digest() = Digest(partial_bytes);
  EXPECT_FALSE(Complete(r)) << "a file of a child Directory is missing";
  Upload("grandchild file");
  EXPECT_TRUE(Complete(r));
}

TEST_F(ActionResultCheckerTest, TreeThatDoesNotParseIsIncomplete) {
  const std::string junk = "\xff\xff\xff\xff junk";
  Upload(junk);
  rev2::ActionResult r;
  *r.add_output_directories()->mutable_tree_digest() = Digest(junk);
  EXPECT_FALSE(Complete(r));
}

TEST_F(ActionResultCheckerTest, BuildCacheGetAsksTheChecker) {
  rev2::ActionResult r;
  *r.add_output_files()->mutable_digest() = Digest("output");
  buildcache::Digest action;
  ASSERT_TRUE(FromProto(Digest("action"), &action));
  ASSERT_EQ(cache_->Put(buildcache::Kind::kAc, action, r.SerializeAsString()),
            buildcache::BlobOutcome::kOk);
  ItemRef ref;
  EXPECT_FALSE(cache_->Get(buildcache::Kind::kAc, action, &ref));
  Upload("output");
  EXPECT_TRUE(cache_->Get(buildcache::Kind::kAc, action, &ref));
}

}  // namespace
}  // namespace cinch::reapi
