#include <string>

#include "cinch/store.h"
#include "reapi/grpc_status.h"
#include "reapi/services.h"

namespace cinch::reapi {

namespace {
grpc::Status BadDigest() {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "malformed action digest: SHA-256 is 64 hex digits");
}
}  // namespace

grpc::Status ActionCacheService::GetActionResult(grpc::ServerContext* context,
                                                 const rev2::GetActionResultRequest* request,
                                                 rev2::ActionResult* response) {
  buildcache::Digest d;
  if (!FromProto(request->action_digest(), &d)) return BadDigest();
  ItemRef ref;
  // BuildCache asks the ActionResultChecker: an entry whose outputs are gone is a miss.
  if (!cache_->Get(buildcache::Kind::kAc, d, &ref)) return NotFound(d);
  if (!response->ParseFromArray(ref.value().data(), static_cast<int>(ref.value().size()))) {
    return NotFound(d);  // stored through HTTP as something else: not a result for us
  }
  return grpc::Status::OK;
}

grpc::Status ActionCacheService::UpdateActionResult(grpc::ServerContext* context,
                                                    const rev2::UpdateActionResultRequest* request,
                                                    rev2::ActionResult* response) {
  buildcache::Digest d;
  if (!FromProto(request->action_digest(), &d)) return BadDigest();
  std::string bytes;
  request->action_result().SerializeToString(&bytes);
  grpc::Status status = WriteStatus(cache_->Put(buildcache::Kind::kAc, d, bytes), d);
  if (status.ok()) *response = request->action_result();
  return status;
}

}  // namespace cinch::reapi
