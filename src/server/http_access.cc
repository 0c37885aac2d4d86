#include "server/http_access.h"

namespace cinch::server {

http::AccessResult UserAccess::Check(std::string_view user, std::string_view password) const {
  std::shared_ptr<const User> u = users_->Authenticate(user, password);
  if (u == nullptr) return http::AccessResult::kUnauthenticated;
  if (u->keyspace.id >= kFirstTenantKeyspace) return http::AccessResult::kForbidden;
  return http::AccessResult::kAllowed;
}

}  // namespace cinch::server
