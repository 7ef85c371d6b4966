// posix-servers-master: the master of every process model as a program of its own — fork
// (fork_master.h), prefork and reuseport (pool_master.h). Node's side (native/core/designs/fork_server.cc)
// execs it with its descriptors in place and its options on the command line (master_argv.h);
// with the exec handler, the program to run in the exec block (exec_child.h). Not meant to be
// run by hand.
//
// `posix-servers-master fork-cost N` measures instead what every connection of the fork model
// costs before it is served: N times fork(), _exit(0) in the child, waitpid() in the parent, from
// this very program (fork() copies the page tables of the process that calls it, so its size is
// part of the cost). It prints `fork-cost N <cpu ns> <wall ns>`, both per iteration. The
// benchmark runs it (lib/bench/fork-cost.ts).
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/measure.h"

#include "core/designs/fork_master.h"
#include "core/designs/pool_master.h"
#include "core/exec_child.h"
#include "core/master_argv.h"
#ifdef PS_SANITIZER_CONTROLS
#include "core/sanitizer_controls.h"
#endif

namespace {

int fork_cost(const char* count) {
  char* end = nullptr;
  const long n = strtol(count, &end, 10);
  if (*count == '\0' || *end != '\0' || n < 1 || n > 1000000) {
    fprintf(stderr, "posix-servers-master: fork-cost takes an iteration count from 1 to 1000000, got '%s'\n", count);
    return 2;
  }
  const ps::ForkCost cost = ps::measure_fork_cost(static_cast<int>(n));
  if (cost.iterations == 0) {
    perror("posix-servers-master: fork");
    return 1;
  }
  printf("fork-cost %d %lld %lld\n", cost.iterations, static_cast<long long>(cost.cpu_ns),
         static_cast<long long>(cost.wall_ns));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef PS_SANITIZER_CONTROLS
  ps::run_sanitizer_control_from_env("master");  // a planted bug, when asked for (sanitizer builds only)
#endif
  if (argc == 3 && strcmp(argv[1], "fork-cost") == 0) return fork_cost(argv[2]);
  ps::MasterState m;
  bool trace = false;
  ps::ExecStderr exec_stderr = ps::ExecStderr::Null;
  const char* bad = nullptr;
  if (!ps::parse_master_argv(argc, argv, m, trace, exec_stderr, bad)) {
    fprintf(stderr, "posix-servers-master: bad %s (this program is started by posix-servers)\n", bad);
    return 2;
  }
  m.page = ps::map_shared_page_fd(ps::kMasterPageFd);
  if (m.page == nullptr) {
    perror("posix-servers-master: mmap of the shared page");
    return 2;
  }
  close(ps::kMasterPageFd);  // the mapping stays: children inherit it across fork()
  // Built here, before any child exists: the children only read it (exec_child.h).
  ps::ExecPlan plan;
  if (m.serve.handler == ps::Handler::Exec) {
    if (!ps::read_exec_block(ps::kMasterExecFd, plan) || plan.stderr_mode != exec_stderr) {
      fprintf(stderr, "posix-servers-master: bad exec block (this program is started by posix-servers)\n");
      return 2;
    }
    close(ps::kMasterExecFd);
    if (plan.stderr_mode == ps::ExecStderr::Inherit) plan.stderr_fd = ps::kMasterStderrFd;
    m.exec = &plan;
  }
  m.lfd = ps::kMasterListenFd;
  m.reserve_fd = ps::kMasterReserveFd;
  m.events = ps::EventPipe{ps::kMasterEventFd, m.page, trace};
  m.door = ps::Door(&m.page->door);
  switch (m.model) {
    case ps::Model::Prefork:
      ps::run_prefork_master(m);
    case ps::Model::Reuseport:
      ps::run_reuseport_master(m);
    default:
      ps::run_master(m);
  }
}
