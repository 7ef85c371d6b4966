// The master program's command line: how Node's side tells the exec'd master its options. Plain
// key=value words, each key the name of the startServer() option it carries, so that
// `ps -o args` shows a learner what the master was told:
//
//   posix-servers-master model=prefork nodePid=4242 maxClients=100 handler=echo idleTimeoutMs=0
//                        labCrash=0 reap=sigchld restart=0 trace=0 maxConnectionMs=0
//                        minBytesPerSecond=0 rateWindowMs=1000 workers=4 acceptLock=mutex backlog=511
//                        execStderr=null whenFull=refuse rpcMaxBytes=16384
//
// Two kinds of options do not travel here: the door's rules (door.h) are written into the shared
// page, which the master maps; the exec handler's program, arguments and environment (arbitrary
// bytes, any length) come in the exec block at kMasterExecFd (exec_child.h says why).
#pragma once

#include <sys/types.h>

#include "designs/fork_master.h"
#include "server.h"

namespace ps {

// Fixed storage, filled before fork(): between fork() and execve() nothing may allocate.
struct MasterArgv {
  static constexpr int kWords = 19;
  char words[kWords][48];
  char* argv[kWords + 1];

  // Formats the options (and Node's pid, for the master's parent-death check).
  void format(const ServerOptions& options, pid_t node_pid);
};

// In the master: fills `m` from argv. Returns false, naming the bad word in `bad`, when a word is
// missing or malformed (the master then exits with status 2 before it listens).
bool parse_master_argv(int argc, char** argv, MasterState& m, bool& trace, ExecStderr& exec_stderr, const char*& bad);

}  // namespace ps
