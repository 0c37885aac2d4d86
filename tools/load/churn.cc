#include "load/churn.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "load/connection_set.h"

namespace cinch::load {
namespace {

constexpr uint32_t kDead = 0xffffffffu;     // never written, or deleted
constexpr uint32_t kUnknown = 0xfffffffeu;  // a set was refused: the server may hold anything
constexpr int64_t kPollNs = 1000000;
constexpr int kMaxReportedWrong = 5;

class Churn {
 public:
  explicit Churn(const ChurnOptions& o)
      : o_(o), codec_(o.nonce, &o.before, &o.after), rng_(Mix64(o.seed)) {}
  ChurnResult Run();

 private:
  bool live(uint32_t key) const { return pos_[key] < kUnknown; }
  uint64_t ItemBytes(uint32_t key) const { return kKeyBytes + codec_.SizeOf(key, version_[key]); }
  uint32_t NewKey();
  void Set(uint32_t key, bool after);
  void Delete(uint32_t key);
  void Drop(uint32_t key, uint32_t new_state);
  uint32_t RandomLive() { return live_[rng_.Below(live_.size())]; }
  bool ok() const { return r_.error.empty(); }
  Connection* Room(uint32_t key, uint32_t value_size);
  void Pump();
  void DrainAll();
  bool OnReply(const Pending& p, const Reply& r);
  void OnVerify(const Pending& p, const Reply& r);
  void ReportWrong(uint32_t key, const char* why, size_t size);
  double Seconds(uint64_t* mark);

  const ChurnOptions& o_;
  ValueCodec codec_;
  Rng rng_;
  ConnectionSet conns_;
  std::vector<uint32_t> version_;  // per key: the latest version written (0: never)
  std::vector<uint32_t> pos_;      // per key: index in live_, or kDead / kUnknown
  std::vector<uint32_t> live_;     // the live keys
  uint64_t live_bytes_ = 0;
  bool verifying_ = false;
  uint32_t verify_from_ = 0;  // shift: the first key of phase C
  int reported_ = 0;
  ChurnResult r_;
};

uint32_t Churn::NewKey() {
  uint32_t key = static_cast<uint32_t>(version_.size());
  version_.push_back(0);
  pos_.push_back(kDead);
  return key;
}

void Churn::Drop(uint32_t key, uint32_t new_state) {
  if (live(key)) {
    live_bytes_ -= ItemBytes(key);
    uint32_t last = live_.back();
    live_[pos_[key]] = last;
    pos_[last] = pos_[key];
    live_.pop_back();
  }
  pos_[key] = new_state;
}

void Churn::Set(uint32_t key, bool after) {
  Drop(key, kDead);
  uint32_t v = ((version_[key] & ~ValueCodec::kAltSizes) + 1) | (after ? ValueCodec::kAltSizes : 0);
  version_[key] = v;
  pos_[key] = static_cast<uint32_t>(live_.size());
  live_.push_back(key);
  uint64_t bytes = ItemBytes(key);
  live_bytes_ += bytes;
  r_.bytes_written += bytes;
  ++r_.sets;
  if (Connection* c = Room(key, codec_.SizeOf(key, v))) c->QueueSet(key, v, NowNs(), codec_);
}

void Churn::Delete(uint32_t key) {
  Drop(key, kDead);
  ++r_.deletes;
  if (Connection* c = Room(key, 0)) c->QueueDelete(key, NowNs());
}

// The connection of `key`, once it can take a request with a value of value_size bytes;
// null after an error.
Connection* Churn::Room(uint32_t key, uint32_t value_size) {
  Connection& c = conns_[key % conns_.size()];
  while (ok() && (c.inflight() >= o_.pipeline || !c.CanQueue(value_size))) Pump();
  return ok() ? &c : nullptr;
}

void Churn::Pump() {
  std::string e = conns_.SendAll();
  if (e.empty()) {
    e = conns_.Poll(kPollNs, [this](const Pending& p, const Reply& r, uint64_t) {
      return OnReply(p, r);
    });
  }
  if (!e.empty() && ok()) r_.error = e;
}

void Churn::DrainAll() {
  while (ok() && conns_.Inflight() > 0) Pump();
}

bool Churn::OnReply(const Pending& p, const Reply& r) {
  if (p.op == Op::kGet && verifying_) {
    OnVerify(p, r);
  } else if (p.op == Op::kSet && r.outcome != Outcome::kStored) {
    ++r_.not_stored;
    // Only if no later request for the key was made: a later set or delete decides its state.
    if (version_[p.key] == p.version && live(p.key)) Drop(p.key, kUnknown);
  } else if (r.outcome == Outcome::kError) {
    ++r_.errors;
  }
  return true;
}

void Churn::OnVerify(const Pending& p, const Reply& r) {
  ++r_.gets;
  uint32_t state = pos_[p.key];
  if (r.outcome == Outcome::kError) {
    ++r_.errors;
    return;
  }
  if (state == kUnknown) return;
  bool hit = r.outcome == Outcome::kHit;
  if (state == kDead) {
    if (hit) {
      ++r_.wrong;
      ++r_.deleted_present;
      ReportWrong(p.key, "a deleted key is still readable", r.value.size());
    }
    return;
  }
  if (!hit) {
    ++r_.missing;
    return;
  }
  uint32_t version = 0;
  const char* why = nullptr;
  if (codec_.Check(p.key, r.value, &version, &why) && version != version_[p.key]) {
    why = "not the latest version";
  }
  if (why == nullptr) {
    ++r_.kept;
    r_.retained_bytes += ItemBytes(p.key);
  } else {
    ++r_.wrong;
    ReportWrong(p.key, why, r.value.size());
  }
}

void Churn::ReportWrong(uint32_t key, const char* why, size_t size) {
  if (reported_++ >= kMaxReportedWrong) return;
  char name[kKeyBytes];
  FormatKey(key, name);
  std::fprintf(stderr, "cinch_load: WRONG value for key %.*s: %s (%zu bytes, expected version %u)\n",
               static_cast<int>(kKeyBytes), name, why, size, version_[key]);
}

double Churn::Seconds(uint64_t* mark) {
  DrainAll();
  uint64_t now = NowNs();
  double s = static_cast<double>(now - *mark) / 1e9;
  *mark = now;
  return s;
}

ChurnResult Churn::Run() {
  uint32_t max_value = std::max(o_.before.max(), o_.after.max());
  r_.error = conns_.Open(o_.address, o_.protocol, o_.connections, o_.pipeline, max_value, o_.io);
  r_.io = conns_.io_mode();
  if (!r_.error.empty()) return r_;
  uint64_t budget = static_cast<uint64_t>(o_.write_factor * static_cast<double>(o_.limit_bytes));
  uint64_t target = static_cast<uint64_t>(o_.live_fraction * static_cast<double>(o_.limit_bytes));
  uint64_t min_item = kKeyBytes + std::min(o_.before.min(), o_.after.min());
  uint64_t max_keys = o_.fill_keys > 0 ? o_.fill_keys : (o_.shift ? 2 : 1) * budget / min_item + 1;
  version_.reserve(max_keys);
  pos_.reserve(max_keys);
  live_.reserve(max_keys);
  uint64_t mark = NowNs();
  if (o_.shift) {
    while (ok() && r_.bytes_written < budget) Set(NewKey(), false);
    r_.seconds_a = Seconds(&mark);
    verify_from_ = static_cast<uint32_t>(version_.size());
    while (ok() && r_.bytes_written < 2 * budget) Set(NewKey(), true);
    r_.seconds_c = Seconds(&mark);
  } else if (o_.fill_keys > 0) {
    for (uint64_t i = 0; ok() && i < o_.fill_keys; ++i) Set(NewKey(), false);
  } else {
    while (ok() && live_bytes_ < target) Set(NewKey(), false);
  }
  if (!o_.shift) r_.seconds_a = Seconds(&mark);
  if (o_.fill_keys == 0 && !o_.shift) {
    auto deletes = static_cast<uint64_t>(o_.delete_fraction * static_cast<double>(live_.size()));
    for (uint64_t i = 0; ok() && i < deletes && !live_.empty(); ++i) Delete(RandomLive());
    r_.seconds_b = Seconds(&mark);
    uint64_t slack = kKeyBytes + o_.after.max();
    while (ok() && r_.bytes_written < budget) {
      if (live_bytes_ + slack < target || live_.empty()) {
        Set(NewKey(), true);
        continue;
      }
      Set(rng_.Below(2) == 0 ? RandomLive() : NewKey(), true);
      while (ok() && live_bytes_ > target && !live_.empty()) Delete(RandomLive());
    }
    r_.seconds_c = Seconds(&mark);
  }
  verifying_ = true;
  for (uint32_t key = verify_from_; ok() && key < version_.size(); ++key) {
    if (Connection* c = Room(key, 0)) c->QueueGet(key, 0, NowNs());
  }
  r_.seconds_verify = Seconds(&mark);
  r_.keys_written = version_.size();
  r_.live_keys = live_.size();
  r_.live_bytes = live_bytes_;
  return r_;
}

}  // namespace

ChurnResult RunChurn(const ChurnOptions& options) { return Churn(options).Run(); }

}  // namespace cinch::load
