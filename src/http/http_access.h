// Who may use the HTTP port. Without an HttpAccess (no -Y) anyone may; with one, every request
// carries HTTP Basic credentials (RFC 7617) and is answered 401 (with WWW-Authenticate) without
// valid ones, 403 when the user is valid but not allowed. src/server implements it on the -Y
// users (server/http_access.h), so this module never sees the auth file.
//
// Thread safety: Check is called from any HTTP worker thread, concurrently.
#pragma once

#include <string_view>

namespace cinch::http {

enum class AccessResult { kAllowed, kUnauthenticated, kForbidden };

class HttpAccess {
 public:
  virtual ~HttpAccess() = default;
  virtual AccessResult Check(std::string_view user, std::string_view password) const = 0;
};

}  // namespace cinch::http
