#include "reapi/plugin.h"

#include <memory>

#include "reapi/action_result_checker.h"

namespace cinch::reapi {
namespace {

class FrontEndImpl final : public FrontEnd {
 public:
  buildcache::ActionResultChecker* checker() override { return &checker_; }
  Status StartGrpc(buildcache::BuildCache* cache, const GrpcOptions& options) override {
    grpc_ = std::make_unique<GrpcServer>(cache);
    return grpc_->Start(options);
  }
  int grpc_port() const override { return grpc_ ? grpc_->port() : 0; }
  GrpcStats grpc_stats() const override { return grpc_ ? grpc_->GetStats() : GrpcStats{}; }
  void StopGrpc() override {
    if (grpc_) grpc_->Stop();
  }

 private:
  ProtoActionResultChecker checker_;
  std::unique_ptr<GrpcServer> grpc_;
};

}  // namespace
}  // namespace cinch::reapi

extern "C" __attribute__((visibility("default"))) cinch::reapi::FrontEnd* CINCH_REAPI_ENTRY() {
  return new cinch::reapi::FrontEndImpl();
}
