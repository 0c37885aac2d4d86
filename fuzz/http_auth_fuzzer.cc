// libFuzzer target: proto::ParseBasicAuth, an Authorization header's value as HttpSession
// passes it (with -Y). Checked on every call (a failure traps):
//   - accepted only with the Basic scheme (any case) and a token of base64 characters;
//   - the user and password lie inside the caller's buffer, the user holds no colon, and
//     "user:password" base64-encoded is what a strict encoder writes for the decoded bytes
//     (so the decoded credentials are exactly what the token says);
//   - a buffer of BasicAuthBufferSize(n) always suffices: no write past it (ASan).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "proto/base64.h"
#include "proto/http_auth.h"

namespace {

bool Inside(std::string_view inner, const char* begin, size_t size) {
  return inner.empty() || (inner.data() >= begin && inner.data() + inner.size() <= begin + size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  std::vector<char> buffer(cinch::proto::BasicAuthBufferSize(size));
  cinch::proto::BasicCredentials c;
  if (!cinch::proto::ParseBasicAuth(header, buffer.data(), buffer.size(), &c)) return 0;
  FUZZ_CHECK(size > 6);
  FUZZ_CHECK(header[5] == ' ');
  FUZZ_CHECK(Inside(c.user, buffer.data(), buffer.size()));
  FUZZ_CHECK(Inside(c.password, buffer.data(), buffer.size()));
  FUZZ_CHECK(c.user.find(':') == std::string_view::npos);
  // The credentials encode back to a token that decodes to the same bytes.
  const std::string joined = std::string(c.user) + ":" + std::string(c.password);
  std::vector<char> encoded(cinch::proto::Base64EncodedSize(joined.size()));
  const size_t n = cinch::proto::Base64Encode(joined, encoded.data(), encoded.size());
  FUZZ_CHECK(n == encoded.size());
  std::vector<char> again(cinch::proto::BasicAuthBufferSize(n + 6));
  cinch::proto::BasicCredentials d;
  const std::string reencoded = "Basic " + std::string(encoded.data(), n);
  FUZZ_CHECK(cinch::proto::ParseBasicAuth(reencoded, again.data(), again.size(), &d));
  FUZZ_CHECK(d.user == c.user && d.password == c.password);
  return 0;
}
