#include "http/cache_path.h"

namespace cinch::http {

namespace {

// The path of an origin-form or absolute-form target, without query or fragment.
std::string_view PathOf(std::string_view target) {
  size_t end = target.find_first_of("?#");
  if (end != std::string_view::npos) target = target.substr(0, end);
  size_t scheme = target.find("://");
  if (scheme != std::string_view::npos &&
      target.substr(0, scheme).find('/') == std::string_view::npos) {
    size_t path = target.find('/', scheme + 3);
    return path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  return target;
}

}  // namespace

PathMatch ParseCachePath(std::string_view target, buildcache::Kind* kind,
                         buildcache::Digest* digest) {
  std::string_view path = PathOf(target);
  if (path.empty() || path[0] != '/') return PathMatch::kNotCache;
  size_t last = path.rfind('/');
  std::string_view hash = path.substr(last + 1);
  std::string_view front = path.substr(0, last);  // "" or "/..../<kind>"
  size_t kind_start = front.rfind('/');
  if (kind_start == std::string_view::npos) return PathMatch::kNotCache;
  std::string_view kind_name = front.substr(kind_start + 1);
  if (kind_name == "cas") {
    *kind = buildcache::Kind::kCas;
  } else if (kind_name == "ac") {
    *kind = buildcache::Kind::kAc;
  } else {
    return PathMatch::kNotCache;
  }
  *digest = buildcache::Digest();
  return buildcache::ParseHexDigest(hash, digest) ? PathMatch::kEntry : PathMatch::kBadDigest;
}

bool IsMetricsPath(std::string_view target) { return PathOf(target) == "/metrics"; }

}  // namespace cinch::http
