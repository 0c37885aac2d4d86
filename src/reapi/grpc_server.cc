#include "reapi/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <vector>

#include "reapi/services.h"

namespace cinch::reapi {

// How long Stop lets calls in flight finish before cancelling them.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

namespace {

struct CallCounters {
  std::atomic<uint64_t> open{0}, calls{0}, not_found{0}, errors{0};
};

// Counts one call: gRPC makes one per call, before the handler runs, and destroys it once the
// call is over. The call is counted as its status goes out (the synchronous API sends the
// handler's status even to a client that has cancelled), so that a client that has the status
// finds it counted; one destroyed without a status would count as an error.
class CallCounter final : public grpc::experimental::Interceptor {
 public:
  explicit CallCounter(CallCounters* c) : c_(c) {
    c_->open.fetch_add(1, std::memory_order_relaxed);
  }
  ~CallCounter() override {
    if (!ended_) End(&c_->errors);
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (!ended_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      End(code == grpc::StatusCode::OK          ? nullptr
          : code == grpc::StatusCode::NOT_FOUND ? &c_->not_found
                                                : &c_->errors);
    }
    methods->Proceed();
  }

 private:
  void End(std::atomic<uint64_t>* outcome) {
    ended_ = true;
    if (outcome != nullptr) outcome->fetch_add(1, std::memory_order_relaxed);
    c_->calls.fetch_add(1, std::memory_order_relaxed);
    c_->open.fetch_sub(1, std::memory_order_relaxed);
  }

  CallCounters* c_;
  bool ended_ = false;
};

class CallCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(CallCounters* c) : c_(c) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new CallCounter(c_);
  }

 private:
  CallCounters* c_;
};

}  // namespace

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
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counters;
    counters.push_back(std::make_unique<CallCounterFactory>(&counters_));
    builder.experimental().SetInterceptorCreators(std::move(counters));
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

  GrpcStats GetStats() const {
    GrpcStats s;
    s.curr_calls = counters_.open.load(std::memory_order_relaxed);
    s.calls = counters_.calls.load(std::memory_order_relaxed);
    s.not_found = counters_.not_found.load(std::memory_order_relaxed);
    s.errors = counters_.errors.load(std::memory_order_relaxed);
    return s;
  }

  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server_->Wait();
    server_.reset();
  }

 private:
  buildcache::BuildCache* cache_;
  CallCounters counters_;  // before server_: the interceptors use it until the server is gone
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
GrpcStats GrpcServer::GetStats() const { return impl_->GetStats(); }
void GrpcServer::Stop() { impl_->Stop(); }

}  // namespace cinch::reapi
