#include "server/tier_promoter.h"

#include <pthread.h>

#include <cstdio>

namespace cinch::server {

TierPromoter::TierPromoter(Store* store, int threads) : store_(store) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] {
      char name[16];
      std::snprintf(name, sizeof(name), "cinch-tier-io%d", i % 10);
      pthread_setname_np(pthread_self(), name);
      Run();
    });
  }
}

TierPromoter::~TierPromoter() { Stop(); }

void TierPromoter::Submit(Job* job) {
  job->next = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (tail_ == nullptr) {
      head_ = job;
    } else {
      tail_->next = job;
    }
    tail_ = job;
    ++queued_;
  }
  ready_.notify_one();
}

void TierPromoter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

uint64_t TierPromoter::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

uint64_t TierPromoter::promoted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return promoted_;
}

void TierPromoter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ready_.wait(lock, [this] { return head_ != nullptr || stop_; });
    if (head_ == nullptr) return;  // stopping, and nothing left to run
    Job* job = head_;
    head_ = job->next;
    if (head_ == nullptr) tail_ = nullptr;
    --queued_;
    lock.unlock();
    uint64_t promoted = 0;
    if (job->run != nullptr) {
      job->run(job->arg);
    } else {
      ForEachTierKey(job->keys, job->form, [&](std::string_view key) {
        if (!store_->InFileTier(job->keyspace, key)) return;
        store_->Promote(job->keyspace, key);
        ++promoted;
      });
    }
    // The job belongs to its session again from here on: the last touch of it.
    job->done->Resume();
    lock.lock();
    promoted_ += promoted;
  }
}

}  // namespace cinch::server
