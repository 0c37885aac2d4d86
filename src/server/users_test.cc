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

// A warm restart's ids: the same names get the same keyspaces whatever the order of the new
// file, a removed tenant's id is not handed out, new tenants get ids above the seeded ones.
TEST(UserTable, SeededTenantIdsSurviveARestart) {
  UserTable before;
  ASSERT_TRUE(before.Load(Entries("a:pw:8\nb b:pw:8\nc:pw:8\nplain:pw\n")).ok());
  const TenantIds saved = before.GetTenantIds();
  ASSERT_EQ(saved.size(), 3u);
  EXPECT_EQ(saved[0], (std::pair<std::string, uint16_t>("a", kFirstTenantKeyspace)));
  TenantIds parsed;
  ASSERT_TRUE(ParseTenantIds(FormatTenantIds(saved), &parsed).ok());
  EXPECT_EQ(parsed, saved);

  UserTable after;
  ASSERT_TRUE(after.SeedTenantIds(parsed).ok());
  ASSERT_TRUE(after.Load(Entries("new:pw:8\nc:pw:8\nb b:pw:8\n")).ok());
  EXPECT_EQ(after.Authenticate("c", "pw")->keyspace, before.Authenticate("c", "pw")->keyspace);
  EXPECT_EQ(after.Authenticate("b b", "pw")->keyspace, before.Authenticate("b b", "pw")->keyspace);
  EXPECT_EQ(after.Authenticate("new", "pw")->keyspace.id, kFirstTenantKeyspace + 3);
  EXPECT_EQ(after.GetTenantIds().size(), 4u);  // a's id stays taken
}

TEST(UserTable, BadTenantIdsAreRefused) {
  TenantIds ids;
  for (std::string_view bad :
       {"", "cinch-tenants 2\n", "cinch-tenants 1\n16 a", "cinch-tenants 1\nx a\n",
        "cinch-tenants 1\n65536 a\n", "cinch-tenants 1\n 16 a\n", "cinch-tenants 1\n16\n"}) {
    EXPECT_FALSE(ParseTenantIds(bad, &ids).ok()) << bad;
  }
  UserTable t;
  EXPECT_FALSE(t.SeedTenantIds({{"a", 15}}).ok());
  EXPECT_FALSE(t.SeedTenantIds({{"a", 16}, {"b", 16}}).ok());
  EXPECT_FALSE(t.SeedTenantIds({{"a", 16}, {"a", 17}}).ok());
  ASSERT_TRUE(ParseTenantIds("cinch-tenants 1\n", &ids).ok());
  EXPECT_TRUE(ids.empty());
}

}  // namespace
}  // namespace cinch::server
