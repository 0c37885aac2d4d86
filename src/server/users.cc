#include "server/users.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "buildcache/sha256.h"

namespace cinch::server {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer one is read; the accumulator is volatile so that the compiler
  // cannot turn the loop into an early exit.
  volatile uint8_t diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const uint8_t x = i < a.size() ? static_cast<uint8_t>(a[i]) : 0;
    const uint8_t y = i < b.size() ? static_cast<uint8_t>(b[i]) : 0;
    diff = diff | static_cast<uint8_t>(x ^ y);
  }
  return diff == 0;
}

UserTable::UserTable() : current_(std::make_shared<Snapshot>()) {
  std::random_device random;
  for (int i = 0; i < 4; ++i) {
    const uint32_t r = random();
    salt_.append(reinterpret_cast<const char*>(&r), sizeof(r));
  }
  dummy_ = DigestOf("\x01 no user has this password \x01");
}

UserTable::Digest UserTable::DigestOf(std::string_view password) const {
  buildcache::Sha256 sha;
  sha.Update(salt_);
  sha.Update(password);
  return sha.Final();
}

std::shared_ptr<const UserTable::Snapshot> UserTable::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

Status UserTable::Load(const std::vector<AuthEntry>& entries) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::shared_ptr<const Snapshot> old = Current();
  auto next = std::make_shared<Snapshot>();
  // Ids handed out by this load, undone if it fails.
  std::vector<std::string> new_ids;
  for (const AuthEntry& e : entries) {
    Entry entry;
    entry.user.name = e.user;
    entry.user.quota = e.quota;
    entry.digest = DigestOf(e.password);
    if (e.quota != 0) {
      auto [it, added] = tenant_ids_.try_emplace(e.user, 0);
      if (added) {
        if (next_tenant_id_ > UINT16_MAX) {
          for (const std::string& n : new_ids) tenant_ids_.erase(n);
          tenant_ids_.erase(it);
          return Status::InvalidArgument("too many tenants: keyspace ids are used up");
        }
        it->second = static_cast<uint16_t>(next_tenant_id_++);
        new_ids.push_back(e.user);
      }
      entry.user.keyspace = Keyspace{it->second};
    }
    auto was = old->by_name.find(e.user);
    const bool same = was != old->by_name.end() && was->second.digest == entry.digest &&
                      was->second.user.keyspace == entry.user.keyspace;
    entry.user.generation = same ? was->second.user.generation : next_generation_++;
    next->generations.insert(entry.user.generation);
    next->by_name.emplace(e.user, std::move(entry));
  }
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(next);
  return Status::Ok();
}

Status UserTable::LoadFile(const std::string& path) {
  std::vector<AuthEntry> entries;
  Status s = LoadAuthFile(path, &entries);
  if (!s.ok()) return s;
  return Load(entries);
}

std::shared_ptr<const User> UserTable::Authenticate(std::string_view user,
                                                    std::string_view password) const {
  std::shared_ptr<const Snapshot> table = Current();
  auto it = table->by_name.find(std::string(user));
  const bool known = it != table->by_name.end();
  const Digest& expected = known ? it->second.digest : dummy_;
  const Digest given = DigestOf(password);
  const bool match = ConstantTimeEquals(
      std::string_view(reinterpret_cast<const char*>(given.data()), given.size()),
      std::string_view(reinterpret_cast<const char*>(expected.data()), expected.size()));
  if (!known || !match) return nullptr;
  return std::make_shared<const User>(it->second.user);
}

bool UserTable::StillValid(uint64_t generation) const {
  return Current()->generations.count(generation) != 0;
}

std::vector<KeyspaceQuota> UserTable::Quotas() const {
  std::shared_ptr<const Snapshot> table = Current();
  std::vector<KeyspaceQuota> quotas;
  for (const auto& [name, entry] : table->by_name) {
    if (entry.user.quota != 0) quotas.push_back({entry.user.keyspace, entry.user.quota});
  }
  return quotas;
}

TenantIds UserTable::GetTenantIds() const {
  std::lock_guard<std::mutex> lock(load_mu_);
  TenantIds ids(tenant_ids_.begin(), tenant_ids_.end());
  std::sort(ids.begin(), ids.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  return ids;
}

Status UserTable::SeedTenantIds(const TenantIds& ids) {
  std::lock_guard<std::mutex> lock(load_mu_);
  std::unordered_map<std::string, uint16_t> seeded;
  std::unordered_set<uint16_t> used;
  uint32_t next = kFirstTenantKeyspace;
  for (const auto& [name, id] : ids) {
    if (id < kFirstTenantKeyspace || !used.insert(id).second || !seeded.emplace(name, id).second) {
      return Status::InvalidArgument("tenant ids: " + name + " " + std::to_string(id) +
                                     " is a duplicate or below " +
                                     std::to_string(kFirstTenantKeyspace));
    }
    next = std::max<uint32_t>(next, id + 1u);
  }
  tenant_ids_ = std::move(seeded);
  next_tenant_id_ = next;
  return Status::Ok();
}

std::string FormatTenantIds(const TenantIds& ids) {
  std::string out = "cinch-tenants 1\n";
  for (const auto& [name, id] : ids) out += std::to_string(id) + " " + name + "\n";
  return out;
}

Status ParseTenantIds(std::string_view text, TenantIds* ids) {
  constexpr std::string_view kHeader = "cinch-tenants 1\n";
  if (text.substr(0, kHeader.size()) != kHeader) {
    return Status::InvalidArgument("tenant ids: not a cinch-tenants 1 file");
  }
  text.remove_prefix(kHeader.size());
  ids->clear();
  while (!text.empty()) {
    const size_t end = text.find('\n');
    if (end == std::string_view::npos) return Status::InvalidArgument("tenant ids: a torn line");
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    const size_t space = line.find(' ');
    uint32_t id = 0;
    bool digits = space != 0 && space != std::string_view::npos && space <= 5;
    for (size_t i = 0; digits && i < space; ++i) {
      digits = line[i] >= '0' && line[i] <= '9';
      id = id * 10 + static_cast<uint32_t>(line[i] - '0');
    }
    if (!digits || id > UINT16_MAX) {
      return Status::InvalidArgument("tenant ids: bad line '" + std::string(line) + "'");
    }
    ids->emplace_back(std::string(line.substr(space + 1)), static_cast<uint16_t>(id));
  }
  return Status::Ok();
}

Status SaveTenantIdsFile(const std::string& path, const TenantIds& ids) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << FormatTenantIds(ids);
    out.close();
    if (!out) return Status::IoError("could not write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("could not rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status LoadTenantIdsFile(const std::string& path, TenantIds* ids) {
  ids->clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::Ok();  // no ids
    return Status::IoError("could not open " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("could not read " + path);
  Status s = ParseTenantIds(text.str(), ids);
  if (!s.ok()) ids->clear();
  return s;
}

size_t UserTable::size() const { return Current()->by_name.size(); }

}  // namespace cinch::server
