#include "reapi/resource_name.h"

#include <charconv>
#include <vector>

namespace cinch::reapi {

namespace {

std::vector<std::string_view> Split(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    parts.push_back(name.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

bool ParseSize(std::string_view text, int64_t* size) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *size);
  return error == std::errc() && end == text.data() + text.size() && *size >= 0;
}

// parts[i] is "blobs" or "compressed-blobs": parses what follows it. `exact` means nothing may
// follow the size.
ResourceName ParseBlobPart(const std::vector<std::string_view>& parts, size_t i, bool exact) {
  ResourceName r;
  const bool compressed = parts[i] == "compressed-blobs";
  const size_t hash_at = i + (compressed ? 2 : 1);
  if (hash_at + 1 >= parts.size()) return r;
  if (exact && hash_at + 2 != parts.size()) return r;
  if (compressed && parts[i + 1].empty()) return r;
  if (parts[hash_at].empty() || !ParseSize(parts[hash_at + 1], &r.size)) return r;
  r.hash = parts[hash_at];
  r.kind = compressed ? ResourceName::Kind::kCompressed : ResourceName::Kind::kBlob;
  return r;
}

bool IsBlobWord(std::string_view part) { return part == "blobs" || part == "compressed-blobs"; }

}  // namespace

ResourceName ParseReadResourceName(std::string_view name) {
  std::vector<std::string_view> parts = Split(name);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (IsBlobWord(parts[i])) return ParseBlobPart(parts, i, /*exact=*/true);
    if (parts[i] == "uploads") break;
  }
  return ResourceName{};
}

ResourceName ParseWriteResourceName(std::string_view name) {
  std::vector<std::string_view> parts = Split(name);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "uploads") {
      if (i + 2 >= parts.size() || parts[i + 1].empty() || !IsBlobWord(parts[i + 2])) break;
      return ParseBlobPart(parts, i + 2, /*exact=*/false);
    }
    if (IsBlobWord(parts[i])) break;
  }
  return ResourceName{};
}

}  // namespace cinch::reapi
