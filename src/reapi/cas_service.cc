#include <charconv>
#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

#include "cinch/store.h"
#include "reapi/grpc_server.h"
#include "reapi/grpc_status.h"
#include "reapi/services.h"

namespace cinch::reapi {

namespace {

// A GetTree page stays about this small however large page_size is.
constexpr size_t kTreePageBytes = size_t{1} << 20;

grpc::Status BadDigest(const rev2::Digest& d) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "malformed digest \"" + d.hash() + "/" + std::to_string(d.size_bytes()) +
                          "\": SHA-256 is 64 hex digits, and the size is not negative");
}

void SetRpcStatus(const grpc::Status& from, google::rpc::Status* to) {
  to->set_code(static_cast<int>(from.error_code()));
  to->set_message(from.error_message());
}

grpc::Status PutBlob(buildcache::BuildCache* cache, const rev2::Digest& digest,
                     const std::string& data) {
  buildcache::Digest d;
  if (!FromProto(digest, &d)) return BadDigest(digest);
  if (static_cast<uint64_t>(d.size) != data.size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the digest's size " + std::to_string(d.size) + " is not the data's " +
                            std::to_string(data.size()));
  }
  if (IsEmptyBlob(d)) return grpc::Status::OK;
  return WriteStatus(cache->Put(buildcache::Kind::kCas, d, data), d);
}

// The Directory `d` from the CAS, or false when it is absent or does not parse.
bool ReadDirectory(buildcache::BuildCache* cache, const rev2::Digest& digest,
                   rev2::Directory* dir) {
  buildcache::Digest d;
  if (!FromProto(digest, &d)) return false;
  if (IsEmptyBlob(d)) {
    dir->Clear();  // the empty Directory message encodes to zero bytes
    return true;
  }
  ItemRef ref;
  if (!CasGet(*cache, d, &ref)) return false;
  return dir->ParseFromArray(ref.value().data(), static_cast<int>(ref.value().size()));
}

}  // namespace

grpc::Status CasService::FindMissingBlobs(grpc::ServerContext* context,
                                          const rev2::FindMissingBlobsRequest* request,
                                          rev2::FindMissingBlobsResponse* response) {
  for (const rev2::Digest& digest : request->blob_digests()) {
    buildcache::Digest d;
    if (!FromProto(digest, &d)) return BadDigest(digest);
    // A read, not Contains: it checks the size too, and it counts as an access, so a blob a
    // client was just told not to upload is the last to be evicted before the action result
    // that needs it arrives (bazel-remote touches it for the same reason).
    ItemRef ref;
    if (!IsEmptyBlob(d) && !CasGet(*cache_, d, &ref)) {
      *response->add_missing_blob_digests() = digest;
    }
  }
  return grpc::Status::OK;
}

grpc::Status CasService::BatchUpdateBlobs(grpc::ServerContext* context,
                                          const rev2::BatchUpdateBlobsRequest* request,
                                          rev2::BatchUpdateBlobsResponse* response) {
  for (const rev2::BatchUpdateBlobsRequest::Request& blob : request->requests()) {
    rev2::BatchUpdateBlobsResponse::Response* out = response->add_responses();
    *out->mutable_digest() = blob.digest();
    SetRpcStatus(PutBlob(cache_, blob.digest(), blob.data()), out->mutable_status());
  }
  return grpc::Status::OK;
}

grpc::Status CasService::BatchReadBlobs(grpc::ServerContext* context,
                                        const rev2::BatchReadBlobsRequest* request,
                                        rev2::BatchReadBlobsResponse* response) {
  uint64_t total = 0;
  for (const rev2::Digest& digest : request->digests()) {
    if (digest.size_bytes() < 0) return BadDigest(digest);
    total += static_cast<uint64_t>(digest.size_bytes());
  }
  if (total > max_batch_bytes_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the blobs total " + std::to_string(total) +
                            " bytes, above max_batch_total_size_bytes " +
                            std::to_string(max_batch_bytes_) + ": read them with ByteStream");
  }
  for (const rev2::Digest& digest : request->digests()) {
    rev2::BatchReadBlobsResponse::Response* out = response->add_responses();
    *out->mutable_digest() = digest;
    buildcache::Digest d;
    grpc::Status status;
    ItemRef ref;
    if (!FromProto(digest, &d)) {
      status = BadDigest(digest);
    } else if (IsEmptyBlob(d)) {
    } else if (CasGet(*cache_, d, &ref)) {
      out->set_data(ref.value().data(), ref.value().size());
    } else {
      status = NotFound(d);
    }
    SetRpcStatus(status, out->mutable_status());
  }
  return grpc::Status::OK;
}

grpc::Status CasService::GetTree(grpc::ServerContext* context, const rev2::GetTreeRequest* request,
                                 grpc::ServerWriter<rev2::GetTreeResponse>* writer) {
  // The page token is the number of directories already sent: the walk is deterministic, so
  // a later call repeats it and skips that many.
  uint64_t skip = 0;
  const std::string& token = request->page_token();
  if (!token.empty()) {
    auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), skip);
    if (error != std::errc() || end != token.data() + token.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page_token \"" + token + "\"");
    }
  }
  const size_t page_size = request->page_size() > 0 ? request->page_size() : SIZE_MAX;
  buildcache::Digest root;
  if (!FromProto(request->root_digest(), &root)) return BadDigest(request->root_digest());

  std::deque<rev2::Digest> queue = {request->root_digest()};
  std::unordered_set<std::string> seen = {request->root_digest().hash()};
  uint64_t position = 0;  // directories walked so far
  rev2::GetTreeResponse page;
  size_t page_bytes = 0;
  bool root_found = false;
  while (!queue.empty()) {
    rev2::Directory dir;
    bool found = ReadDirectory(cache_, queue.front(), &dir);
    queue.pop_front();
    if (!found) continue;
    root_found = true;
    for (const rev2::DirectoryNode& child : dir.directories()) {
      if (seen.insert(child.digest().hash()).second) queue.push_back(child.digest());
    }
    if (position++ < skip) continue;
    if (page.directories_size() > 0 && (static_cast<size_t>(page.directories_size()) >= page_size ||
                                        page_bytes + dir.ByteSizeLong() > kTreePageBytes)) {
      page.set_next_page_token(std::to_string(position - 1));
      if (!writer->Write(page)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
      page.Clear();
      page_bytes = 0;
    }
    page_bytes += dir.ByteSizeLong();
    *page.add_directories() = std::move(dir);
  }
  if (!root_found) return NotFound(root);
  if (page.directories_size() > 0 && !writer->Write(page)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
  }
  return grpc::Status::OK;
}

}  // namespace cinch::reapi
