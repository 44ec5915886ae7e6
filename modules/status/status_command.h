// `subgate status [--watch [--interval SECONDS] [--count N]] [URL]`: fetches the JSON of a
// `status;` location (default: the embedded config's, http://127.0.0.1:8081/status) and prints
// it indented: the isolate pool and the cluster counters (docs/cluster.md).
//
// With --watch, it fetches it every interval (default 2 s) and draws the compact table of
// status_table.h until interrupted (or N times with --count): on a terminal it clears the screen
// and redraws in place (plain ANSI, no curses); when stdout is not a terminal it prints one table
// per interval, separated by a blank line, without escape codes. A failed fetch prints its error
// in place of the table and the watch goes on.
#pragma once

namespace subgate {

struct ServerOptions;

// `args` are the arguments after "status". Returns the process exit code: 0 on a 200 with JSON
// (with --watch: after --count rounds, whatever they fetched), 1 when the server cannot be
// reached or answers otherwise, 2 on bad arguments.
int runStatusCommand(const ServerOptions& options, int argc, char** args);

}  // namespace subgate
