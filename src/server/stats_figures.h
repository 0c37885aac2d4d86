// The figures of "stats" as numbers, by their stats names, for renderings other than the
// memcached protocol's lines (GET /metrics, server/metrics.h). They come from the same code as
// the lines (stats_command.cc), so a figure is computed in one place however it is shown, and a
// change to one (e.g. limit_maxbytes following a runtime memory limit) shows in both.
// Text lines ("version", "stats settings") are left out: only numbers.
//
// Thread safety: as "stats": any thread, any time after the server started.
#pragma once

#include <string_view>
#include <utility>
#include <vector>

#include "cinch/store.h"
#include "server/server_context.h"

namespace cinch::server {

// (name, value) in the order "stats" prints them; names are string literals.
using StatFigures = std::vector<std::pair<std::string_view, double>>;

// The operator's "stats": with --http-port its http_* lines, with a file tier its tier_* and
// extstore_* lines.
StatFigures GeneralFigures(const ServerContext& ctx);
// "stats cinch": the memory breakdown, and process_resident_bytes.
StatFigures CinchFigures(const ServerContext& ctx);
// A tenant's keyspace lines of its "stats" (cmd_get, get_hits, get_misses, limit_maxbytes,
// bytes, curr_items, evictions), from `ks` as given (the caller applies tenant resets or not).
StatFigures KeyspaceFigures(const ServerContext& ctx, const KeyspaceStats& ks);

}  // namespace cinch::server
