#include "reapi/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "reapi/services.h"

namespace cinch::reapi {

// How long Stop lets calls in flight finish before cancelling them.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

class GrpcServer::Impl {
 public:
  explicit Impl(buildcache::BuildCache* cache) : cache_(cache), ac_(cache), byte_stream_(cache) {}
  ~Impl() { Stop(); }

  Status Start(const GrpcOptions& o) {
    if (o.addresses.empty()) return Status::InvalidArgument("gRPC: no listen address");
    const size_t batch = std::min(o.max_batch_total_bytes, kMaxBatchTotalBytes);
    capabilities_ = std::make_unique<CapabilitiesService>(batch);
    cas_ = std::make_unique<CasService>(cache_, batch);
    grpc::ServerBuilder builder;
    grpc::ResourceQuota quota("cinch-grpc");
    quota.Resize(o.memory);
    quota.SetMaxThreads(2 * o.max_concurrent_calls + 2);
    builder.SetResourceQuota(quota);
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(std::min<size_t>(o.max_receive_message, INT_MAX)));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, o.max_concurrent_calls);
    ports_.assign(o.addresses.size(), 0);
    for (size_t i = 0; i < o.addresses.size(); ++i) {
      builder.AddListeningPort(o.addresses[i], grpc::InsecureServerCredentials(), &ports_[i]);
    }
    builder.RegisterService(capabilities_.get());
    builder.RegisterService(cas_.get());
    builder.RegisterService(&ac_);
    builder.RegisterService(&byte_stream_);
    server_ = builder.BuildAndStart();
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (server_ == nullptr || ports_[i] == 0) {
        Stop();
        return Status::IoError("gRPC: cannot listen on " + o.addresses[i]);
      }
    }
    return Status::Ok();
  }

  int port() const { return ports_.empty() ? 0 : ports_[0]; }

  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server_->Wait();
    server_.reset();
  }

 private:
  buildcache::BuildCache* cache_;
  std::unique_ptr<CapabilitiesService> capabilities_;
  std::unique_ptr<CasService> cas_;
  ActionCacheService ac_;
  ByteStreamService byte_stream_;
  std::vector<int> ports_;
  std::unique_ptr<grpc::Server> server_;
};

GrpcServer::GrpcServer(buildcache::BuildCache* cache) : impl_(std::make_unique<Impl>(cache)) {}
GrpcServer::~GrpcServer() = default;
Status GrpcServer::Start(const GrpcOptions& options) { return impl_->Start(options); }
int GrpcServer::port() const { return impl_->port(); }
void GrpcServer::Stop() { impl_->Stop(); }

}  // namespace cinch::reapi
