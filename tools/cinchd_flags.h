// cinchd's command line: every flag and -o key of memcached 1.6.18 plus cinch's own -o keys,
// each declared once in a table (tools/cinchd_flags.cc) that drives both the parser and -h.
// A flag has one of three fates: honoured (mapped into ServerOptions or a process step),
// ignored with a one-line warning (memcached tuning that has no meaning for cinch, e.g. slab
// sizes), or refused (a feature whose absence would be unsafe to ignore: TLS, SASL, auth).
//
// Thread safety: plain functions on the caller's data.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "cinch/status.h"
#include "server/server_options.h"

namespace cinch::tools {

struct CommandLine {
  server::ServerOptions server;
  std::string user;            // -u: whom to become when started as root
  std::string pid_file;        // -P
  bool daemonize = false;      // -d
  bool core_dumps = false;     // -r
  bool print_help = false;     // -h: print Usage and exit 0
  bool print_version = false;  // -V
  bool print_license = false;  // -i
  // One line each (without "cinchd: "), for flags accepted but without effect.
  std::vector<std::string> warnings;
};

// Parses argv into *out. An error's message says which argument and why.
Status ParseCommandLine(int argc, char** argv, CommandLine* out);

void PrintUsage(std::FILE* f);

}  // namespace cinch::tools
