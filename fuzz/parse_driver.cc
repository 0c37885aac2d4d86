#include "parse_driver.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "fuzz_check.h"
#include "proto/errors.h"

namespace cinch::fuzz {
namespace {

using proto::Command;
using proto::Error;
using proto::ParseResult;
using proto::ParseStatus;
using proto::Request;

constexpr size_t kMaxKeyLength = 250;

bool IsGetLine(Command c) {
  return c == Command::kGet || c == Command::kGets || c == Command::kGat || c == Command::kGats;
}

bool IsStorage(Command c) {
  return c == Command::kSet || c == Command::kAdd || c == Command::kReplace ||
         c == Command::kAppend || c == Command::kPrepend || c == Command::kCas;
}

bool IsMetaWithFlagChecks(Command c) {
  return c == Command::kMetaGet || c == Command::kMetaSet || c == Command::kMetaDelete ||
         c == Command::kMetaArithmetic;
}

bool HasSingleKey(Command c) {
  return IsStorage(c) || IsMetaWithFlagChecks(c) || c == Command::kDelete || c == Command::kIncr ||
         c == Command::kDecr || c == Command::kTouch || c == Command::kMetaDebug;
}

void CheckKey(std::string_view key) {
  FUZZ_CHECK(!key.empty() && key.size() <= kMaxKeyLength);
  FUZZ_CHECK(key.find_first_of(std::string_view(" \n\0", 3)) == std::string_view::npos);
}

// Everything a kOk request carries except the keys of a get line (see Connection::Record).
std::string Describe(const Request& q) {
  std::string s = "cmd " + std::to_string(static_cast<int>(q.command));
  auto field = [&s](const char* name, std::string_view value) {
    s.append(" ").append(name).append("=[").append(value).append("]");
  };
  auto number = [&s](const char* name, uint64_t value) {
    s.append(" ").append(name).append("=").append(std::to_string(value));
  };
  if (!IsGetLine(q.command)) {
    field("key", q.key);
    field("data", q.data);
  }
  number("flags", q.client_flags);
  number("exptime", static_cast<uint64_t>(q.exptime));
  number("cas", q.cas_unique);
  number("delta", q.delta);
  number("noreply", q.noreply);
  number("number", static_cast<uint64_t>(q.number));
  number("has_number", q.has_number);
  field("stats", q.stats_arg);
  number("length", q.data_length);
  for (size_t i = 0; i < q.num_meta_flags; ++i) {
    const proto::MetaFlag& f = q.meta_flags[i];
    s.append(" ").append(1, f.letter);
    field("", f.token);
    number("", f.number);
  }
  return s;
}

std::string DescribeError(const ParseResult& r) {
  return "error " + std::to_string(static_cast<int>(r.error)) + " swallow " +
         std::to_string(r.swallow) + " close " + std::to_string(r.close) + " noreply " +
         std::to_string(r.noreply);
}

// A connection's view of the stream: bytes received and not consumed, and parser state.
class Connection {
 public:
  Connection(const proto::ParserLimits& limits, RequestHook hook) : limits_(limits), hook_(hook) {}

  // Takes the next chunk; `last` when no more will follow.
  void Receive(std::string_view chunk, bool last) {
    if (closed_) return;
    pending_.append(chunk);
    while (!closed_ && Step(last)) {
    }
  }

  Transcript Finish() {
    if (!closed_) {
      if (in_partial_) {
        t_.events.push_back("unfinished get line");
      } else {
        t_.events.push_back("pending " + std::to_string(pending_.size()) + " swallow " +
                            std::to_string(swallow_));
      }
    }
    return std::move(t_);
  }

 private:
  // Parses one request from the pending bytes; false when more input is needed.
  bool Step(bool last) {
    const size_t drop = std::min(swallow_, pending_.size());
    pending_.erase(0, drop);
    swallow_ -= drop;
    if (pending_.empty()) return false;
    // An exact-size copy, so that AddressSanitizer catches a read past the input.
    const size_t n = pending_.size();
    std::unique_ptr<char[]> copy(new char[n]);
    std::memcpy(copy.get(), pending_.data(), n);
    const std::string_view in(copy.get(), n);

    const bool continuing = in_partial_;
    const ParseResult r = continuing ? proto::ParseGetContinuation(in, limits_, &request_)
                                     : proto::ParseRequest(in, limits_, &request_);
    CheckResult(in, r, continuing);
    if (!continuing) CheckFreshParseAgrees(in, r);
    if (!continuing) CheckConsumedBytesSuffice(in, r);
    if (r.status == ParseStatus::kNeedMore) return false;

    if (r.error == Error::kLineTooLong && !last && in.find('\n') == std::string_view::npos) {
      t_.cut_dependent_from = std::min(t_.cut_dependent_from, t_.events.size());
    }
    Record(r);
    pending_.erase(0, r.consumed);
    if (r.status == ParseStatus::kError) {
      in_partial_ = false;
      swallow_ = r.swallow;
      if (r.close) {
        closed_ = true;
        t_.events.push_back("closed");
      }
    } else {
      in_partial_ = request_.partial;
    }
    return true;
  }

  void Record(const ParseResult& r) {
    if (r.status == ParseStatus::kError) {
      get_keys_.clear();  // an error ends a get line delivered in parts; its keys do not count
      t_.events.push_back(DescribeError(r));
      return;
    }
    if (hook_ != nullptr) hook_(request_);
    if (!IsGetLine(request_.command)) {
      t_.events.push_back(Describe(request_));
      return;
    }
    std::string_view rest = request_.keys, key;
    while (proto::NextKey(&rest, &key)) get_keys_.append(" ").append(key);
    if (request_.partial) return;
    t_.events.push_back(Describe(request_) + " keys" + get_keys_);
    get_keys_.clear();
  }

  void CheckResult(std::string_view in, const ParseResult& r, bool continuing) {
    FUZZ_CHECK(r.consumed <= in.size());
    switch (r.status) {
      case ParseStatus::kNeedMore:
        FUZZ_CHECK(r.consumed == 0 && r.swallow == 0 && !r.close && !r.noreply);
        FUZZ_CHECK(r.error == Error::kNone);
        return;
      case ParseStatus::kOk:
        FUZZ_CHECK(r.consumed > 0 && r.swallow == 0 && !r.close && !r.noreply);
        FUZZ_CHECK(r.error == Error::kNone);
        CheckRequest(in.substr(0, r.consumed), continuing);
        return;
      case ParseStatus::kError:
        FUZZ_CHECK(r.error != Error::kNone);
        FUZZ_CHECK(r.consumed > 0 || r.close);
        FUZZ_CHECK(!proto::ErrorLine(r.error).empty() || r.close);
        FUZZ_CHECK(!(r.close && r.swallow > 0));
        if (r.error == Error::kTooLarge || r.swallow > 0) {
          FUZZ_CHECK(IsStorage(request_.command) || request_.command == Command::kMetaSet);
          FUZZ_CHECK(r.swallow == request_.data_length + 2);
        }
        return;
    }
    FUZZ_CHECK(false && "unknown ParseStatus");
  }

  // `used`: the bytes the request consumed.
  void CheckRequest(std::string_view used, bool continuing) {
    const Request& q = request_;
    auto inside = [used](std::string_view v) {
      return v.empty() || (v.data() >= used.data() && v.data() + v.size() <= used.end());
    };
    FUZZ_CHECK(inside(q.key) && inside(q.keys) && inside(q.data) && inside(q.stats_arg));
    if (continuing || q.partial) FUZZ_CHECK(IsGetLine(q.command));
    if (IsGetLine(q.command)) {
      std::string_view rest = q.keys, key;
      while (proto::NextKey(&rest, &key)) CheckKey(key);
    }
    if (HasSingleKey(q.command)) CheckKey(q.key);
    if (IsStorage(q.command) || q.command == Command::kMetaSet) {
      FUZZ_CHECK(q.data.size() == q.data_length && q.data_length <= limits_.max_item_size);
      FUZZ_CHECK(q.data.data() != nullptr && inside(q.data));
      const size_t end = static_cast<size_t>(q.data.data() - used.data()) + q.data.size();
      FUZZ_CHECK(end + 2 == used.size() && used.substr(end) == "\r\n");
    }
    FUZZ_CHECK(q.num_meta_flags <= proto::kMaxMetaFlags);
    uint64_t seen[2] = {0, 0};
    for (size_t i = 0; i < q.num_meta_flags; ++i) {
      const proto::MetaFlag& f = q.meta_flags[i];
      FUZZ_CHECK(inside(f.token) && f.token.data() != nullptr);
      FUZZ_CHECK(f.token.data() > used.data() && f.token.data()[-1] == f.letter);
      if (!IsMetaWithFlagChecks(q.command)) continue;
      const auto letter = static_cast<uint8_t>(f.letter);
      FUZZ_CHECK(letter < 127 && !(seen[letter / 64] >> (letter % 64) & 1));
      seen[letter / 64] |= uint64_t{1} << (letter % 64);
    }
  }

  // The session reuses one Request; a fresh one must parse the same.
  void CheckFreshParseAgrees(std::string_view in, const ParseResult& r) {
    Request fresh;
    const ParseResult f = proto::ParseRequest(in, limits_, &fresh);
    FUZZ_CHECK(f.status == r.status && f.error == r.error && f.consumed == r.consumed);
    FUZZ_CHECK(f.swallow == r.swallow && f.close == r.close && f.noreply == r.noreply);
    if (r.status != ParseStatus::kOk) return;
    FUZZ_CHECK(Describe(fresh) == Describe(request_));
    FUZZ_CHECK(fresh.keys == request_.keys && fresh.partial == request_.partial);
    FUZZ_CHECK(fresh.skip_rest == request_.skip_rest);
    FUZZ_CHECK(fresh.line_error == request_.line_error);
  }

  // A complete request (not one closed or delivered in parts, which depend on how much input
  // there is) parses the same from exactly the bytes it consumed.
  void CheckConsumedBytesSuffice(std::string_view in, const ParseResult& r) {
    if (r.status == ParseStatus::kNeedMore || r.close || request_.partial) return;
    if (r.consumed == in.size()) return;
    Request alone;
    const ParseResult a = proto::ParseRequest(in.substr(0, r.consumed), limits_, &alone);
    FUZZ_CHECK(a.status == r.status && a.error == r.error && a.consumed == r.consumed);
    FUZZ_CHECK(a.swallow == r.swallow && a.noreply == r.noreply && !a.close);
    if (r.status == ParseStatus::kOk) FUZZ_CHECK(Describe(alone) == Describe(request_));
  }

  const proto::ParserLimits limits_;
  const RequestHook hook_;
  std::string pending_;
  size_t swallow_ = 0;
  bool closed_ = false;
  bool in_partial_ = false;
  Request request_;
  std::string get_keys_;  // keys of a get line delivered so far, each after a space
  Transcript t_;
};

}  // namespace

Transcript Drive(std::string_view stream, const std::vector<size_t>& cuts,
                 const proto::ParserLimits& limits, RequestHook hook) {
  Connection c(limits, hook);
  size_t begin = 0;
  for (size_t cut : cuts) {
    if (cut <= begin || cut >= stream.size()) continue;
    c.Receive(stream.substr(begin, cut - begin), /*last=*/false);
    begin = cut;
  }
  c.Receive(stream.substr(begin), /*last=*/true);
  return c.Finish();
}

proto::ParserLimits PickLimits(uint8_t selector) {
  proto::ParserLimits limits;  // the server's (max_item_size is the store's default too)
  switch (selector % 4) {
    case 1:
      limits.max_line = 80;
      limits.max_item_size = 64;
      limits.max_get_line = 600;
      break;
    case 2:  // get lines go partial soon after they are too long for a line
      limits.max_line = 300;
      limits.max_item_size = 4096;
      limits.max_get_line = proto::ParserLimits::kMinGetLine;
      break;
    case 3:
      limits.max_get_line = 2100;
      break;
  }
  return limits;
}

namespace {

void CheckAgrees(const Transcript& whole, const Transcript& split) {
  if (split.cut_dependent_from == SIZE_MAX) {
    if (split.events != whole.events) {
      for (size_t i = 0; i < std::max(split.events.size(), whole.events.size()); ++i) {
        std::fprintf(stderr, "%zu whole: %s\n%zu split: %s\n", i,
                     i < whole.events.size() ? whole.events[i].c_str() : "-", i,
                     i < split.events.size() ? split.events[i].c_str() : "-");
      }
    }
    FUZZ_CHECK(split.events == whole.events);
    return;
  }
  const size_t n = split.cut_dependent_from;
  FUZZ_CHECK(n <= whole.events.size());
  FUZZ_CHECK(std::equal(split.events.begin(), split.events.begin() + n, whole.events.begin()));
}

}  // namespace

void CheckStream(std::string_view stream, size_t cut, size_t stride,
                 const proto::ParserLimits& limits, RequestHook hook) {
  const Transcript whole = Drive(stream, {}, limits, hook);
  FUZZ_CHECK(whole.cut_dependent_from == SIZE_MAX);
  if (cut > 0 && cut < stream.size()) CheckAgrees(whole, Drive(stream, {cut}, limits, hook));
  if (stride == 0 || stride >= stream.size()) return;
  std::vector<size_t> cuts;
  for (size_t at = stride; at < stream.size(); at += stride) cuts.push_back(at);
  CheckAgrees(whole, Drive(stream, cuts, limits, hook));
}

}  // namespace cinch::fuzz
