// The users of an auth file (-Y, auth_file.h), for both the text protocol's authentication and
// binary SASL PLAIN: who may connect and which keyspace each one's commands use.
//
// A user whose line carries a quota is a tenant: it gets a keyspace of its own, an id from
// kFirstTenantKeyspace up that stays the same for the same name across reloads (ids of removed
// users are not reused while the process runs). A user without a quota gets Keyspace{}, the
// default keyspace that every such user shares.
//
// Passwords are kept as SHA-256(salt || password) with a salt drawn per table, and compared
// digest against digest in constant time (ConstantTimeEquals), so the time of a check does
// not depend on how much of a password was right nor on its length. An unknown user name is
// checked against a dummy digest, doing the same work; only the hash-map lookup of the name
// differs.
//
// Thread safety: every method may be called from any thread. Load swaps a whole new snapshot
// in (readers keep the one they took); Authenticate and StillValid read the current one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cinch/status.h"
#include "cinch/store.h"
#include "server/auth_file.h"

namespace cinch::server {

// Keyspaces 0..15 are cinch's own (0: memcached's keys; 1, 2: the build cache).
inline constexpr uint16_t kFirstTenantKeyspace = 16;

struct User {
  std::string name;
  Keyspace keyspace;  // Keyspace{} without a quota
  size_t quota = 0;   // bytes; 0: none
  // Names this user's credentials and keyspace: it changes when a reload changes the password
  // or moves the user into or out of a keyspace of its own (not when only the quota changes).
  // Never 0. A session keeps it and asks StillValid after each reload.
  uint64_t generation = 0;
};

// A tenant's quota, for Store::SetKeyspaceQuota.
struct KeyspaceQuota {
  Keyspace keyspace;
  size_t quota = 0;
};

// Tenant names and their keyspace ids (UserTable::GetTenantIds).
using TenantIds = std::vector<std::pair<std::string, uint16_t>>;

// The tenant ids as a file beside cinchd's memory file (-e): a first line "cinch-tenants 1",
// then "<id> <name>" a line. A name holds no newline (auth file lines end at one).
std::string FormatTenantIds(const TenantIds& ids);
// Fails on anything FormatTenantIds does not write.
Status ParseTenantIds(std::string_view text, TenantIds* ids);
// The same as a file: written whole to a temporary file, then renamed over `path`. Reading a
// path that does not exist gives no ids, and so does one that fails.
Status SaveTenantIdsFile(const std::string& path, const TenantIds& ids);
Status LoadTenantIdsFile(const std::string& path, TenantIds* ids);

// Compares a and b in time that depends on their lengths only, never on where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class UserTable {
 public:
  UserTable();
  UserTable(const UserTable&) = delete;
  UserTable& operator=(const UserTable&) = delete;

  // Replaces the users with `entries` (a parsed auth file). Fails, keeping the current users,
  // only when the tenants would need more keyspace ids than there are.
  Status Load(const std::vector<AuthEntry>& entries);
  // Reads and parses `path`, then Load. On any error the current users stay.
  Status LoadFile(const std::string& path);

  // The user with this name and password, or null. The User is a copy the caller may keep.
  std::shared_ptr<const User> Authenticate(std::string_view user, std::string_view password) const;
  // Whether a user authenticated as `generation` is still in the table with the same
  // credentials and keyspace (false once removed or changed by a reload).
  bool StillValid(uint64_t generation) const;
  // Every tenant's keyspace and quota, for the store.
  std::vector<KeyspaceQuota> Quotas() const;

  // Every name this table has given a keyspace id, removed tenants' too (their ids are not
  // reused), sorted by id: what a warm restart needs to give each tenant its own items back.
  TenantIds GetTenantIds() const;
  // Before the first Load: these names keep these ids, and new tenants get ids above them.
  // Fails, seeding nothing, on an id below kFirstTenantKeyspace or one given twice.
  Status SeedTenantIds(const TenantIds& ids);
  size_t size() const;

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    User user;
    Digest digest;
  };
  struct Snapshot {
    std::unordered_map<std::string, Entry> by_name;
    std::unordered_set<uint64_t> generations;
  };

  Digest DigestOf(std::string_view password) const;
  std::shared_ptr<const Snapshot> Current() const;

  std::string salt_;  // fixed at construction
  Digest dummy_{};    // what an unknown user's password is compared with
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;  // guarded by mu_
  // Load's own state, under load_mu_ (one load at a time).
  mutable std::mutex load_mu_;
  std::unordered_map<std::string, uint16_t> tenant_ids_;
  uint32_t next_tenant_id_ = kFirstTenantKeyspace;
  uint64_t next_generation_ = 1;
};

}  // namespace cinch::server
