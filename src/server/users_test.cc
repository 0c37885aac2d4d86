// UserTable: authentication, tenant keyspaces stable across reloads, revocation by generation.
#include "server/users.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cinch::server {
namespace {

std::vector<AuthEntry> Entries(std::string_view text) {
  std::vector<AuthEntry> e;
  EXPECT_TRUE(ParseAuthFile(text, &e).ok());
  return e;
}

TEST(ConstantTimeEquals, ComparesEveryByte) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("Secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", std::string_view("secret\0", 7)));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secre"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST(UserTable, Authenticates) {
  UserTable t;
  ASSERT_TRUE(t.Load(Entries("alice:secret\nbob:pw:16\ncarol:b:c\n")).ok());
  EXPECT_EQ(t.size(), 3u);
  auto alice = t.Authenticate("alice", "secret");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->keyspace, Keyspace{});
  EXPECT_EQ(alice->quota, 0u);
  EXPECT_NE(alice->generation, 0u);
  EXPECT_EQ(t.Authenticate("alice", "secreT"), nullptr);
  EXPECT_EQ(t.Authenticate("alice", "secret "), nullptr);
  EXPECT_EQ(t.Authenticate("alice", ""), nullptr);
  EXPECT_EQ(t.Authenticate("nobody", "secret"), nullptr);
  EXPECT_EQ(t.Authenticate("bob", "pw:16"), nullptr);
  auto bob = t.Authenticate("bob", "pw");
  ASSERT_NE(bob, nullptr);
  EXPECT_GE(bob->keyspace.id, kFirstTenantKeyspace);
  EXPECT_EQ(bob->quota, size_t{16} << 20);
  EXPECT_NE(t.Authenticate("carol", "b:c"), nullptr);
  EXPECT_EQ(t.Authenticate("carol", "b"), nullptr);
}

TEST(UserTable, TenantsGetDistinctKeyspacesStableAcrossReloads) {
  UserTable t;
  ASSERT_TRUE(t.Load(Entries("a:x:1\nb:x:2\nshared:x\n")).ok());
  const Keyspace a = t.Authenticate("a", "x")->keyspace;
  const Keyspace b = t.Authenticate("b", "x")->keyspace;
  EXPECT_GE(a.id, kFirstTenantKeyspace);
  EXPECT_GE(b.id, kFirstTenantKeyspace);
  EXPECT_NE(a, b);
  auto quotas = t.Quotas();
  ASSERT_EQ(quotas.size(), 2u);
  // Reordered, one removed, one added, a quota changed: the others keep their ids.
  ASSERT_TRUE(t.Load(Entries("c:x:3\nb:x:20\n")).ok());
  EXPECT_EQ(t.Authenticate("b", "x")->keyspace, b);
  EXPECT_EQ(t.Authenticate("b", "x")->quota, size_t{20} << 20);
  const Keyspace c = t.Authenticate("c", "x")->keyspace;
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_EQ(t.Authenticate("a", "x"), nullptr);
  ASSERT_TRUE(t.Load(Entries("a:x:1\n")).ok());  // back: the same keyspace as before
  EXPECT_EQ(t.Authenticate("a", "x")->keyspace, a);
}

TEST(UserTable, ReloadRevokesRemovedAndChangedUsersOnly) {
  UserTable t;
  ASSERT_TRUE(t.Load(Entries("keep:pw\nquota:pw:8\ngone:pw\nchanged:old\nmoved:pw\n")).ok());
  const uint64_t keep = t.Authenticate("keep", "pw")->generation;
  const uint64_t quota = t.Authenticate("quota", "pw")->generation;
  const uint64_t gone = t.Authenticate("gone", "pw")->generation;
  const uint64_t changed = t.Authenticate("changed", "old")->generation;
  const uint64_t moved = t.Authenticate("moved", "pw")->generation;
  for (uint64_t g : {keep, quota, gone, changed, moved}) EXPECT_TRUE(t.StillValid(g));
  ASSERT_TRUE(t.Load(Entries("keep:pw\nquota:pw:16\nchanged:new\nmoved:pw:4\n")).ok());
  EXPECT_TRUE(t.StillValid(keep));
  EXPECT_TRUE(t.StillValid(quota));     // only the quota changed
  EXPECT_FALSE(t.StillValid(gone));     // removed
  EXPECT_FALSE(t.StillValid(changed));  // new password
  EXPECT_FALSE(t.StillValid(moved));    // now a tenant: another keyspace
  EXPECT_EQ(t.Authenticate("changed", "old"), nullptr);
  EXPECT_NE(t.Authenticate("changed", "new"), nullptr);
}

TEST(UserTable, BadFileKeepsTheUsers) {
  UserTable t;
  ASSERT_TRUE(t.Load(Entries("alice:secret\n")).ok());
  EXPECT_FALSE(t.LoadFile("/nonexistent/auth").ok());
  EXPECT_NE(t.Authenticate("alice", "secret"), nullptr);
}

}  // namespace
}  // namespace cinch::server
