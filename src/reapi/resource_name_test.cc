#include "reapi/resource_name.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cinch::reapi {
namespace {

const std::string kHash(64, 'a');

TEST(ResourceNameTest, ReadWithAndWithoutInstance) {
  for (const std::string& prefix : std::vector<std::string>{"", "main/", "a/b/c/"}) {
    const std::string name = prefix + "blobs/" + kHash + "/42";
    ResourceName r = ParseReadResourceName(name);
    EXPECT_EQ(r.kind, ResourceName::Kind::kBlob) << prefix;
    EXPECT_EQ(r.hash, kHash);
    EXPECT_EQ(r.size, 42);
  }
}

TEST(ResourceNameTest, ReadRejectsMalformed) {
  for (const std::string& name :
       std::vector<std::string>{"", "blobs", "blobs/" + kHash, "blobs/" + kHash + "/",
                                "blobs/" + kHash + "/-1", "blobs/" + kHash + "/1x", "blobs//5",
                                "blobs/" + kHash + "/5/extra", "uploads/u/blobs/" + kHash + "/5",
                                "x/" + kHash + "/5", "blobs/" + kHash + "/99999999999999999999"}) {
    EXPECT_EQ(ParseReadResourceName(name).kind, ResourceName::Kind::kInvalid) << name;
  }
}

TEST(ResourceNameTest, WriteWithMetadataAndInstance) {
  const std::string name = "inst/uploads/1234-uuid/blobs/" + kHash + "/7";
  ResourceName r = ParseWriteResourceName(name);
  EXPECT_EQ(r.kind, ResourceName::Kind::kBlob);
  EXPECT_EQ(r.hash, kHash);
  EXPECT_EQ(r.size, 7);
  const std::string with_metadata = "uploads/u/blobs/" + kHash + "/0/some/metadata";
  r = ParseWriteResourceName(with_metadata);
  EXPECT_EQ(r.kind, ResourceName::Kind::kBlob);
  EXPECT_EQ(r.size, 0);
}

TEST(ResourceNameTest, WriteRejectsMalformed) {
  for (const std::string& name : std::vector<std::string>{
           "blobs/" + kHash + "/7", "uploads/blobs/" + kHash + "/7",
           "uploads//blobs/" + kHash + "/7", "uploads/u/" + kHash + "/7",
           "uploads/u/blobs/" + kHash, "blobs/uploads/u/blobs/" + kHash + "/7"}) {
    EXPECT_EQ(ParseWriteResourceName(name).kind, ResourceName::Kind::kInvalid) << name;
  }
}

TEST(ResourceNameTest, CompressedIsRecognised) {
  ResourceName r = ParseWriteResourceName("uploads/u/compressed-blobs/zstd/" + kHash + "/9");
  EXPECT_EQ(r.kind, ResourceName::Kind::kCompressed);
  EXPECT_EQ(r.size, 9);
  EXPECT_EQ(ParseReadResourceName("compressed-blobs/zstd/" + kHash + "/9").kind,
            ResourceName::Kind::kCompressed);
}

}  // namespace
}  // namespace cinch::reapi
