#include "proto/errors.h"

namespace cinch::proto {

// A switch rather than a table so that -Wswitch flags an Error added without a line.
std::string_view ErrorLine(Error error) {
  switch (error) {
    case Error::kNone:
    case Error::kLineTooLong:  // memcached closes without a word
    case Error::kHttpRequest:
      return {};
    case Error::kUnknownCommand:
    case Error::kBinaryProtocol:  // what memcached -B ascii answers to a 0x80 byte
      return reply::kError;
    case Error::kBadFormat:
    case Error::kKeyTooLong:
    case Error::kBadDataLength:
      return reply::kBadFormat;
    case Error::kBadDataChunk:
      return reply::kBadDataChunk;
    case Error::kTooLarge:
      return reply::kTooLarge;
    case Error::kInvalidMetaFlag:
      return reply::kMetaInvalidFlag;
    case Error::kShutdownDisabled:
      return reply::kShutdownDisabled;
    case Error::kBadClass:
      return reply::kBadClass;
    case Error::kNoClassToCrawl:
      return reply::kNoClassToCrawl;
    case Error::kCachedumpUsage:
      return reply::kCachedumpUsage;
    case Error::kIllegalSlabId:
      return reply::kIllegalSlabId;
    case Error::kBadBase64Key:
      return reply::kMetaBadBase64Key;
    case Error::kBadExptime:
      return reply::kBadExptime;
    case Error::kBadDelta:
      return reply::kInvalidDelta;
    case Error::kDeleteUsage:
      return reply::kDeleteUsage;
    case Error::kDuplicateMetaFlag:
      return reply::kMetaDuplicateFlag;
    case Error::kBadMetaToken:
      return reply::kMetaBadToken;
    case Error::kBadMetaModeLength:
      return reply::kMetaModeLength;
    case Error::kBadMetaInitial:
      return reply::kMetaBadInitial;
    case Error::kBadMetaDelta:
      return reply::kMetaBadDelta;
    case Error::kBadMetaFlagMdMa:
      return reply::kMetaInvalidOrDuplicateFlag;
    case Error::kMetaOpaqueTooLong:
      return reply::kMetaOpaqueTooLong;
    case Error::kMetaTooManyFlagsMg:
      return reply::kMetaTooManyFlagsMg;
    case Error::kMetaTooManyFlags:
      return reply::kMetaTooManyFlags;
    case Error::kBadMsMode:
      return reply::kMetaBadMsMode;
    case Error::kBadMaMode:
      return reply::kMetaBadMaMode;
  }
  return reply::kError;
}

}  // namespace cinch::proto
