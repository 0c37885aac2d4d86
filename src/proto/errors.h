// Every fixed line the memcached text and meta protocols send, in one place: the parser's
// errors (ErrorLine) and the replies the server writes. Call sites use these constants, never
// literals, so the strings can be checked against memcached in one file. (The network layer's
// refusals of new connections, written before any session exists, are in net/refusals.h.)
//
// The strings are memcached 1.6.18's, byte for byte, including "\r\n".
#pragma once

#include <string_view>

#include "proto/request.h"

namespace cinch::proto {

// The line to write for `error`. Empty for errors memcached answers by closing the connection
// without a reply (kLineTooLong, kHttpRequest) and for kNone.
std::string_view ErrorLine(Error error);

namespace reply {

// Storage and retrieval outcomes (text protocol).
inline constexpr std::string_view kStored = "STORED\r\n";
inline constexpr std::string_view kNotStored = "NOT_STORED\r\n";
inline constexpr std::string_view kExists = "EXISTS\r\n";
inline constexpr std::string_view kNotFound = "NOT_FOUND\r\n";
inline constexpr std::string_view kDeleted = "DELETED\r\n";
inline constexpr std::string_view kTouched = "TOUCHED\r\n";
inline constexpr std::string_view kEnd = "END\r\n";
inline constexpr std::string_view kOk = "OK\r\n";
inline constexpr std::string_view kReset = "RESET\r\n";  // "stats reset"

// Pieces of multi-part replies.
inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kValuePrefix = "VALUE ";  // VALUE <key> <flags> <bytes> [<cas>]
inline constexpr std::string_view kStatPrefix = "STAT ";    // STAT <name> <value>
inline constexpr std::string_view kVersionPrefix = "VERSION ";  // VERSION <version>
inline constexpr std::string_view kMetaValuePrefix = "VA ";     // VA <size> <flags>*
inline constexpr std::string_view kMetaDebugPrefix = "ME ";     // ME <key> <k>=<v>*

// Meta status lines without flags (with flags: the two letters, the flags, then kCrlf).
inline constexpr std::string_view kMetaStored = "HD\r\n";  // also "deleted", "done"
inline constexpr std::string_view kMetaNotStored = "NS\r\n";
inline constexpr std::string_view kMetaExists = "EX\r\n";
inline constexpr std::string_view kMetaNotFound = "NF\r\n";
inline constexpr std::string_view kMetaMiss = "EN\r\n";
inline constexpr std::string_view kMetaNoop = "MN\r\n";
inline constexpr std::string_view kMetaStoredCode = "HD";
inline constexpr std::string_view kMetaNotStoredCode = "NS";
inline constexpr std::string_view kMetaExistsCode = "EX";
inline constexpr std::string_view kMetaNotFoundCode = "NF";
inline constexpr std::string_view kMetaMissCode = "EN";

// Errors.
inline constexpr std::string_view kError = "ERROR\r\n";
inline constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
inline constexpr std::string_view kBadDataChunk = "CLIENT_ERROR bad data chunk\r\n";
inline constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument\r\n";
inline constexpr std::string_view kInvalidDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
inline constexpr std::string_view kNonNumeric =
    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
inline constexpr std::string_view kDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
inline constexpr std::string_view kOutOfMemoryStoring =
    "SERVER_ERROR out of memory storing object\r\n";
inline constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory\r\n";  // incr/ma
inline constexpr std::string_view kOutOfMemoryGet =
    "SERVER_ERROR out of memory writing get response\r\n";
inline constexpr std::string_view kOutOfMemoryStats =
    "SERVER_ERROR out of memory writing stats\r\n";
inline constexpr std::string_view kOutOfMemoryVivify =
    "SERVER_ERROR Out of memory allocating new item\r\n";  // ma with N on a miss
inline constexpr std::string_view kShutdownDisabled = "ERROR: shutdown not enabled\r\n";
inline constexpr std::string_view kFlushDisabled = "CLIENT_ERROR flush_all not allowed\r\n";  // -F
// cache_memlimit <megabytes>: below 8, and above 10^9 (memcached's guard against bytes).
inline constexpr std::string_view kMemlimitTooSmall =
    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
inline constexpr std::string_view kMemlimitNotBytes =
    "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";
// Key dumps: "lru_crawler metadump <classes>" and "stats cachedump <class> <limit>".
inline constexpr std::string_view kCrawlerBusy = "BUSY currently processing crawler request\r\n";
inline constexpr std::string_view kBadClass = "BADCLASS invalid class id\r\n";
inline constexpr std::string_view kNoClassToCrawl = "NOTSTARTED no items to crawl\r\n";
inline constexpr std::string_view kMetadumpPipelined =
    "ERROR cannot pipeline other commands before metadump\r\n";
inline constexpr std::string_view kCachedumpUsage = "CLIENT_ERROR bad command line\r\n";
inline constexpr std::string_view kIllegalSlabId = "CLIENT_ERROR Illegal slab id\r\n";

// Authentication (-Y): memcached's replies before a connection has authenticated. A good
// `set` of "<user> <password>" is answered kStored.
inline constexpr std::string_view kUnauthenticated = "CLIENT_ERROR unauthenticated\r\n";
inline constexpr std::string_view kAuthFailure = "CLIENT_ERROR authentication failure\r\n";
inline constexpr std::string_view kAuthBadFormat =
    "CLIENT_ERROR bad authentication token format\r\n";
inline constexpr std::string_view kAuthBadTermination =
    "CLIENT_ERROR bad command line termination\r\n";

// Meta errors.
inline constexpr std::string_view kMetaInvalidFlag = "CLIENT_ERROR invalid flag\r\n";
inline constexpr std::string_view kMetaDuplicateFlag = "CLIENT_ERROR duplicate flag\r\n";
inline constexpr std::string_view kMetaInvalidOrDuplicateFlag =
    "CLIENT_ERROR invalid or duplicate flag\r\n";
inline constexpr std::string_view kMetaBadToken =
    "CLIENT_ERROR bad token in command line format\r\n";
inline constexpr std::string_view kMetaModeLength = "CLIENT_ERROR incorrect length for M token\r\n";
inline constexpr std::string_view kMetaBadInitial =
    "CLIENT_ERROR invalid numeric initial value\r\n";
inline constexpr std::string_view kMetaBadDelta = "CLIENT_ERROR invalid numeric delta value\r\n";
inline constexpr std::string_view kMetaOpaqueTooLong = "CLIENT_ERROR opaque token too long\r\n";
inline constexpr std::string_view kMetaTooManyFlagsMg =
    "CLIENT_ERROR options flags are too long\r\n";
inline constexpr std::string_view kMetaTooManyFlags = "CLIENT_ERROR options flags too long\r\n";
inline constexpr std::string_view kMetaBadMsMode = "CLIENT_ERROR invalid mode for ms M token\r\n";
inline constexpr std::string_view kMetaBadMaMode = "CLIENT_ERROR invalid mode for ma M token\r\n";
inline constexpr std::string_view kMetaBadBase64Key = "CLIENT_ERROR error decoding key\r\n";

}  // namespace reply
}  // namespace cinch::proto
