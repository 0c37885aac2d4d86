#include <algorithm>
#include <string>

#include "cinch/store.h"
#include "reapi/grpc_server.h"
#include "reapi/grpc_status.h"
#include "reapi/resource_name.h"
#include "reapi/services.h"

namespace cinch::reapi {

namespace bs = google::bytestream;

namespace {

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// The blob a resource name names, or the status to answer.
grpc::Status BlobOf(const ResourceName& name, std::string_view text, buildcache::Digest* d) {
  if (name.kind == ResourceName::Kind::kCompressed) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "compressed-blobs: this server stores and serves blobs uncompressed "
                        "(it advertises no compressors)");
  }
  if (name.kind != ResourceName::Kind::kBlob || !buildcache::ParseHexDigest(name.hash, d)) {
    return Invalid("malformed resource name \"" + std::string(text) + "\"");
  }
  d->size = name.size;
  return grpc::Status::OK;
}

const grpc::Status kClientGone(grpc::StatusCode::CANCELLED, "the client went away");

}  // namespace

// Each chunk is looked up anew and copied out, so no item stays pinned while a slow client
// drains its stream. A blob evicted mid-stream ends the stream with NOT_FOUND.
grpc::Status ByteStreamService::Read(grpc::ServerContext* context, const bs::ReadRequest* request,
                                     grpc::ServerWriter<bs::ReadResponse>* writer) {
  buildcache::Digest d;
  grpc::Status s =
      BlobOf(ParseReadResourceName(request->resource_name()), request->resource_name(), &d);
  if (!s.ok()) return s;
  if (request->read_offset() < 0 || request->read_offset() > d.size) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        "read_offset " + std::to_string(request->read_offset()) +
                            " is outside the blob's " + std::to_string(d.size) + " bytes");
  }
  if (request->read_limit() < 0) return Invalid("negative read_limit");
  uint64_t offset = static_cast<uint64_t>(request->read_offset());
  uint64_t end = static_cast<uint64_t>(d.size);
  if (request->read_limit() > 0) {
    end = std::min(end, offset + static_cast<uint64_t>(request->read_limit()));
  }
  if (offset == end) return CasContains(*cache_, d) ? grpc::Status::OK : NotFound(d);
  bs::ReadResponse response;
  do {
    {
      ItemRef ref;
      if (!CasGet(*cache_, d, &ref)) return NotFound(d);
      const size_t n = std::min<uint64_t>(end - offset, kReadChunkBytes);
      response.set_data(ref.value().data() + offset, n);
      offset += n;
    }
    if (!writer->Write(response)) return kClientGone;
  } while (offset < end);
  return grpc::Status::OK;
}

// The upload streams into BuildCache as it arrives; BuildCache verifies the digest at Commit
// and drops an upload that is not committed. A blob already present completes at once:
// committed_size is its size and the rest of the stream is not read (REAPI allows it;
// clients then stop sending).
grpc::Status ByteStreamService::Write(grpc::ServerContext* context,
                                      grpc::ServerReader<bs::WriteRequest>* reader,
                                      bs::WriteResponse* response) {
  bs::WriteRequest request;
  if (!reader->Read(&request)) return Invalid("no WriteRequest");
  const std::string name = request.resource_name();
  buildcache::Digest d;
  grpc::Status s = BlobOf(ParseWriteResourceName(name), name, &d);
  if (!s.ok()) return s;
  if (CasContains(*cache_, d)) {
    response->set_committed_size(d.size);
    return grpc::Status::OK;
  }
  buildcache::BuildCache::Upload upload;
  s = WriteStatus(cache_->BeginUpload(buildcache::Kind::kCas, d, d.size, &upload), d);
  if (!s.ok()) return s;
  int64_t received = 0;
  while (true) {
    if (!request.resource_name().empty() && request.resource_name() != name) {
      return Invalid("resource_name changed within one Write");
    }
    if (request.write_offset() != received) {
      return Invalid("write_offset " + std::to_string(request.write_offset()) + " after " +
                     std::to_string(received) + " bytes");
    }
    if (static_cast<uint64_t>(received) + request.data().size() > static_cast<uint64_t>(d.size)) {
      return Invalid("more data than the blob's " + std::to_string(d.size) + " bytes");
    }
    if (!upload.Append(request.data())) return WriteStatus(upload.Commit(), d);
    received += static_cast<int64_t>(request.data().size());
    if (request.finish_write()) break;
    if (!reader->Read(&request)) return Invalid("the stream ended without finish_write");
  }
  if (received != d.size) {
    return Invalid("finish_write after " + std::to_string(received) + " of " +
                   std::to_string(d.size) + " bytes");
  }
  s = WriteStatus(upload.Commit(), d);
  if (s.ok()) response->set_committed_size(d.size);
  return s;
}

grpc::Status ByteStreamService::QueryWriteStatus(grpc::ServerContext* context,
                                                 const bs::QueryWriteStatusRequest* request,
                                                 bs::QueryWriteStatusResponse* response) {
  buildcache::Digest d;
  grpc::Status s =
      BlobOf(ParseWriteResourceName(request->resource_name()), request->resource_name(), &d);
  if (!s.ok()) return s;
  const bool present = CasContains(*cache_, d);
  response->set_committed_size(present ? d.size : 0);
  response->set_complete(present);
  return grpc::Status::OK;
}

}  // namespace cinch::reapi
