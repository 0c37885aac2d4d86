// With -Y, who may use the HTTP port (http/http_access.h): a user of the auth file who is not
// a tenant, i.e. one who sees the server's own "stats" on the memcached port. A tenant's
// credentials are refused (403): the build cache and /metrics (every tenant's figures) are
// the operator's. A reload (SIGHUP) applies from the next request.
//
// Thread safety: as UserTable, which outlives this.
#pragma once

#include <string_view>

#include "http/http_access.h"
#include "server/users.h"

namespace cinch::server {

class UserAccess final : public http::HttpAccess {
 public:
  explicit UserAccess(const UserTable* users) : users_(users) {}
  http::AccessResult Check(std::string_view user, std::string_view password) const override;

 private:
  const UserTable* const users_;
};

}  // namespace cinch::server
