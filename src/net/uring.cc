#include "net/uring.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/check.h"

namespace cinch::net {

Uring::~Uring() {
  if (ready_) io_uring_queue_exit(&ring_);
}

Status Uring::Init(unsigned entries, unsigned completions) {
  io_uring_params params{};
  params.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_CQSIZE;
  params.cq_entries = completions;
  // EINVAL: a kernel older than 6.1. No fallback to other flags: before 5.19 an accept on a
  // non-blocking listener completes at once with EAGAIN instead of waiting, and re-arming it
  // would spin. The worker uses epoll instead.
  int r = io_uring_queue_init_params(entries, &ring_, &params);
  if (r < 0) return Status::IoError(std::string("io_uring_queue_init: ") + std::strerror(-r));
  if (!(params.features & IORING_FEAT_NODROP) || !(params.features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&ring_);
    return Status::IoError("io_uring: the kernel lacks NODROP or EXT_ARG");
  }
  ready_ = true;
  bytes_ = params.sq_entries * (sizeof(io_uring_sqe) + sizeof(uint32_t)) +
           params.cq_entries * sizeof(io_uring_cqe) + 2 * 4096;
  return Status::Ok();
}

Status Uring::Enable() {
  // Debian's liburing 2.3 declares io_uring_enable_rings() but does not export it.
  long r = syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  if (r < 0) return Status::IoError(std::string("io_uring enable rings: ") + std::strerror(errno));
  return Status::Ok();
}

io_uring_sqe* Uring::Get(uint64_t user_data) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    int r = io_uring_submit(&ring_);
    CINCH_CHECK(r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY);
    sqe = io_uring_get_sqe(&ring_);
  }
  io_uring_sqe_set_data64(sqe, user_data);
  ++in_flight_;
  return sqe;
}

void Uring::Submit() {
  int r = io_uring_submit(&ring_);
  CINCH_CHECK(r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY);
}

void Uring::SubmitAndWait(int timeout_ms) {
  io_uring_cqe* cqe = nullptr;
  __kernel_timespec ts{timeout_ms / 1000, static_cast<long long>(timeout_ms % 1000) * 1000000};
  int r;
  if (timeout_ms < 0) {
    r = io_uring_submit_and_wait(&ring_, 1);
  } else if (timeout_ms == 0) {
    r = io_uring_submit_and_get_events(&ring_);
  } else {
    r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  // ETIME: the timeout passed; EINTR: a signal; EAGAIN/EBUSY: completions are backed up,
  // and processing them is exactly what the caller does next.
  CINCH_CHECK(r >= 0 || r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY);
}

}  // namespace cinch::net
