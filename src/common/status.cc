#include "cinch/status.h"

namespace cinch {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kStored:
      return "STORED";
    case Outcome::kNotStored:
      return "NOT_STORED";
    case Outcome::kExists:
      return "EXISTS";
    case Outcome::kNotFound:
      return "NOT_FOUND";
    case Outcome::kDeleted:
      return "DELETED";
    case Outcome::kTouched:
      return "TOUCHED";
    case Outcome::kNonNumeric:
      return "NON_NUMERIC";
    case Outcome::kTooLarge:
      return "TOO_LARGE";
    case Outcome::kOutOfMemory:
      return "OUT_OF_MEMORY";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "Invalid argument: " + message_;
    case Code::kIoError:
      return "IO error: " + message_;
  }
  return message_;
}

}  // namespace cinch
