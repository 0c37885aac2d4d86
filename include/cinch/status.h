// Status and cache outcomes of the cinch public API.
//
// Three tiers of errors:
//   - ordinary cache outcomes are values of `Outcome` (kStored, kNotFound, ...), like memcached's
//     store_item_type; they are not errors;
//   - configuration and I/O failures are a [[nodiscard]] `Status`;
//   - broken invariants crash through CINCH_CHECK (src/common/check.h).
//
// Thread safety: all types here are plain values.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace cinch {

// The result of one store operation. The set is memcached's, plus the two outcomes a bounded
// store needs: kTooLarge (the item can never fit) and kOutOfMemory (eviction is disabled and
// nothing more can be freed).
enum class Outcome {
  kStored,       // set/add/replace/append/prepend/cas/incr/decr succeeded
  kNotStored,    // add on a present key, replace/append/prepend on an absent one
  kExists,       // cas: the item was modified since the client read it
  kNotFound,     // the key is absent (or expired)
  kDeleted,      // delete succeeded
  kTouched,      // touch succeeded
  kNonNumeric,   // incr/decr on a value that is not an unsigned 64-bit decimal number
  kTooLarge,     // the item is larger than Options::max_item_size
  kOutOfMemory,  // eviction disabled and the store is full
};

// Short, stable name of an outcome ("STORED", "NOT_FOUND", ...), for logs and tests.
std::string_view OutcomeName(Outcome outcome);

// Failure of configuration or of the operating system. Cheap to return when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status IoError(std::string message) { return Status(Code::kIoError, std::move(message)); }

  bool ok() const { return code_ == Code::kOk; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  enum class Code { kOk, kInvalidArgument, kIoError };
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace cinch
