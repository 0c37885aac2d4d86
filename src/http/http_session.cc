#include "http/http_session.h"

#include <string>

#include "common/check.h"
#include "http/cache_path.h"
#include "proto/http_auth.h"

namespace cinch::http {

using buildcache::BlobOutcome;
using buildcache::Digest;
using proto::HttpEvent;
using proto::HttpMethod;
using proto::HttpStatus;
namespace http_reply = proto::http_reply;

namespace {

bool IsRead(HttpMethod m) { return m == HttpMethod::kGet || m == HttpMethod::kHead; }

}  // namespace

HttpSession::HttpSession(buildcache::BuildCache* cache, const HttpOptions& options,
                         HttpStats* stats, const MetricsSource* metrics, const HttpAccess* access)
    : cache_(cache), options_(options), stats_(stats), metrics_(metrics), access_(access) {
  for (Pin& p : pins_) p.owner = this;
}

// The connection releases every queued reference before it destroys its session.
HttpSession::~HttpSession() { CINCH_CHECK(pins_busy_ == 0); }

net::SessionResult HttpSession::OnInput(std::string_view input, net::Output* out,
                                        size_t output_limit) {
  net::SessionResult result;
  size_t pos = 0;
  while (pos < input.size() && out->pending() < output_limit) {
    const bool in_message = parser_.in_message();
    proto::HttpParseResult r = parser_.Parse(input.substr(pos));
    pos += r.consumed;
    if (r.event == HttpEvent::kNeedMore) {
      result.need_more = true;
      break;
    }
    if (r.event == HttpEvent::kError) {
      bool too_large = r.error == proto::HttpParseError::kHeadTooLarge;
      HttpStats::Add(&stats_->errors);
      close_after_ = true;
      // A broken body answers its request (no body for a HEAD); a broken head has no method.
      if (!in_message) {
        method_ = HttpMethod::kOther;
        metrics_request_ = false;
      }
      Send({too_large ? HttpStatus::kHeaderFieldsTooLarge : HttpStatus::kBadRequest,
            too_large ? http_reply::kHeadTooLarge : http_reply::kMalformed},
           out);
      result.close = true;
      break;
    }
    if (r.event == HttpEvent::kHead) {
      if (!OnHead(parser_.head(), out)) {
        result.close = true;
        break;
      }
    } else if (r.event == HttpEvent::kBody) {
      OnBody(r.body);
    } else {
      OnEnd(out);
      if (close_after_) {
        result.close = true;
        break;
      }
    }
  }
  result.consumed = result.close ? input.size() : pos;
  return result;
}

bool HttpSession::OnHead(const proto::HttpHead& head, net::Output* out) {
  HttpStats::Add(&stats_->requests);
  method_ = head.method;
  reply_ = Reply();
  uploading_ = false;
  close_after_ = !head.keep_alive;
  keep_alive_header_ = head.keep_alive && head.version_major == 1 && head.version_minor == 0;
  metrics_request_ = metrics_ != nullptr && IsMetricsPath(head.target);
  PathMatch match = ParseCachePath(head.target, &kind_, &digest_);
  if (!Authorized(head)) {
    // reply_ says why
  } else if (metrics_request_) {
    if (!IsRead(method_)) reply_ = {HttpStatus::kMethodNotAllowed, http_reply::kReadOnly};
  } else if (match == PathMatch::kNotCache) {
    reply_ = {HttpStatus::kNotFound, http_reply::kNotFound};
  } else if (match == PathMatch::kBadDigest) {
    reply_ = {HttpStatus::kBadRequest, http_reply::kBadDigest};
  } else if (method_ == HttpMethod::kPut) {
    uploading_ = StartPut(head);
  } else if (!IsRead(method_)) {
    reply_ = {HttpStatus::kMethodNotAllowed, http_reply::kMethodNotAllowed};
  }
  if (!head.expect_continue || head.version_minor == 0) return true;
  if (reply_.status != HttpStatus::kOk) {
    close_after_ = true;
    OnEnd(out);
    return false;
  }
  out->Append(http_reply::kContinue);
  return true;
}

bool HttpSession::Authorized(const proto::HttpHead& head) {
  if (access_ == nullptr) return true;
  char buffer[proto::BasicAuthBufferSize(proto::HttpRequestParser::kMaxHead)];
  proto::BasicCredentials credentials;
  AccessResult access = AccessResult::kUnauthenticated;
  if (proto::ParseBasicAuth(head.authorization, buffer, sizeof buffer, &credentials)) {
    access = access_->Check(credentials.user, credentials.password);
  }
  if (access == AccessResult::kAllowed) return true;
  reply_ = access == AccessResult::kForbidden
               ? Reply{HttpStatus::kForbidden, http_reply::kForbidden}
               : Reply{HttpStatus::kUnauthorized, http_reply::kUnauthorized};
  return false;
}

// Returns whether the body goes into upload_; otherwise reply_ says why not.
bool HttpSession::StartPut(const proto::HttpHead& head) {
  if (!head.chunked && head.content_length == proto::HttpHead::kNoLength) {
    reply_ = {HttpStatus::kLengthRequired, http_reply::kLengthRequired};
    return false;
  }
  int64_t size = head.chunked ? Digest::kUnknownSize : head.content_length;
  BlobOutcome o = cache_->BeginUpload(kind_, digest_, size, &upload_);
  if (o == BlobOutcome::kOk) return true;
  reply_ = {HttpStatus::kPayloadTooLarge, http_reply::kTooLarge};  // the only refusal here
  return false;
}

void HttpSession::OnBody(std::string_view bytes) {
  if (uploading_) upload_.Append(bytes);  // a refusal is reported by Commit
}

void HttpSession::OnEnd(net::Output* out) {
  if (metrics_request_ && reply_.status == HttpStatus::kOk) {
    SendMetrics(out);
  } else if (metrics_request_) {
    HttpStats::Add(&stats_->errors);
    Send(reply_, out);
  } else if (method_ == HttpMethod::kPut) {
    FinishPut(out);
  } else if (IsRead(method_) && reply_.status == HttpStatus::kOk) {
    Retrieve(out);
  } else {
    if (IsRead(method_) && reply_.status == HttpStatus::kNotFound) {
      HttpStats::Add(&stats_->get_misses);
    } else {
      HttpStats::Add(&stats_->errors);
    }
    Send(reply_, out);
  }
}

void HttpSession::Retrieve(net::Output* out) {
  ItemRef ref;
  if (!cache_->Get(kind_, digest_, &ref)) {
    HttpStats::Add(&stats_->get_misses);
    Send({HttpStatus::kNotFound, http_reply::kNotFound}, out);
    return;
  }
  HttpStats::Add(&stats_->get_hits);
  SendHead(HttpStatus::kOk, ref.value().size(), proto::HttpBody::kBinary, out);
  if (method_ == HttpMethod::kGet) AppendValue(&ref, out);
}

void HttpSession::SendMetrics(net::Output* out) {
  std::string text;
  metrics_->Render(&text);
  SendHead(HttpStatus::kOk, text.size(), proto::HttpBody::kMetrics, out);
  if (method_ == HttpMethod::kGet) out->Append(text);
}

void HttpSession::FinishPut(net::Output* out) {
  if (uploading_) {
    uploading_ = false;
    switch (upload_.Commit()) {
      case BlobOutcome::kOk:
        break;
      case BlobOutcome::kDigestMismatch:
        reply_ = {HttpStatus::kBadRequest, http_reply::kDigestMismatch};
        break;
      case BlobOutcome::kSizeMismatch:  // the parser frames the body: not expected
        reply_ = {HttpStatus::kBadRequest, http_reply::kSizeMismatch};
        break;
      case BlobOutcome::kTooLarge:
        reply_ = {HttpStatus::kPayloadTooLarge, http_reply::kTooLarge};
        break;
      case BlobOutcome::kOutOfMemory:
        reply_ = {HttpStatus::kInsufficientStorage, http_reply::kOutOfMemory};
        break;
    }
  }
  HttpStats::Add(reply_.status == HttpStatus::kOk ? &stats_->puts : &stats_->put_errors);
  Send(reply_, out);
}

void HttpSession::Send(const Reply& reply, net::Output* out) {
  SendHead(reply.status, reply.text.size(), proto::HttpBody::kText, out);
  if (method_ != HttpMethod::kHead) out->Append(reply.text);
}

void HttpSession::SendHead(HttpStatus status, uint64_t length, proto::HttpBody body,
                           net::Output* out) {
  proto::HttpResponseHead head;
  head.status = status;
  head.content_length = length;
  head.close = close_after_;
  head.keep_alive = keep_alive_header_;
  head.body = body;
  head.read_only = metrics_request_;
  char buffer[proto::kMaxHttpResponseHead];
  out->Append(std::string_view(buffer, proto::FormatHttpHead(head, buffer)));
}

void HttpSession::AppendValue(ItemRef* ref, net::Output* out) {
  std::string_view value = ref->value();
  if (value.size() >= options_.zero_copy_min && pins_busy_ < kMaxPins) {
    for (Pin& p : pins_) {
      if (p.busy) continue;
      p.busy = true;
      ++pins_busy_;
      p.ref = std::move(*ref);
      out->AppendReference(value, &HttpSession::ReleasePin, &p);
      return;
    }
  }
  out->Append(value);
  ref->Reset();
}

void HttpSession::ReleasePin(void* arg) {
  Pin* p = static_cast<Pin*>(arg);
  p->ref.Reset();
  p->busy = false;
  --p->owner->pins_busy_;
}

}  // namespace cinch::http
