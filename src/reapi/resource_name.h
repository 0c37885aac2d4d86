// ByteStream resource names of the REAPI v2 CAS:
//   read:  {instance_name}/blobs/{hash}/{size}
//   write: {instance_name}/uploads/{uuid}/blobs/{hash}/{size}[/{optional_metadata}]
// and their compressed forms (.../compressed-blobs/{compressor}/{uncompressed_hash}/{size}),
// which this server recognises only to refuse them. The instance name (any number of segments,
// possibly none) is accepted and ignored: REAPI forbids the words "blobs", "uploads" and
// "compressed-blobs" as instance name segments, so the first of them found ends it.
//
// Pure functions on strings; no generated types.
#pragma once

#include <cstdint>
#include <string_view>

namespace cinch::reapi {

struct ResourceName {
  enum class Kind {
    kInvalid,     // malformed: INVALID_ARGUMENT
    kBlob,        // plain blob: hash and size are set
    kCompressed,  // compressed-blobs: UNIMPLEMENTED here
  };
  Kind kind = Kind::kInvalid;
  std::string_view hash;  // into the parsed name, as written (the caller checks the digits)
  int64_t size = -1;
};

// {instance}/blobs/{hash}/{size}: nothing may follow the size.
ResourceName ParseReadResourceName(std::string_view name);
// {instance}/uploads/{uuid}/blobs/{hash}/{size}[/{anything}]: the uuid is not checked beyond
// being one non-empty segment (clients use it only to make names unique).
ResourceName ParseWriteResourceName(std::string_view name);

}  // namespace cinch::reapi
