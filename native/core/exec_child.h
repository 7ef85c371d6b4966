// The exec handler: any program on the port, as inetd, djb's tcpserver (ucspi-tcp) and
// `socat TCP-LISTEN,fork EXEC:` run one. The master forks a child per connection, as for every
// handler; the child makes the connection the program's standard input and output, and execve()s
// it. The program never knows it talks to a socket.
//
// Three stages, three places:
//   Node      the program, its arguments and environment (resolved and checked in TypeScript:
//             an absolute path to an executable file) are written into an "exec block": a memfd
//             holding NUL-terminated strings, handed to the master at kMasterExecFd. Why not the
//             master's command line, which carries every other option: the program's arguments
//             and environment are arbitrary (any byte but NUL, any length); as command-line words
//             they would need quoting, would count twice against the kernel's argument limits
//             (ARG_MAX, and MAX_ARG_STRLEN, 128 KiB per string) and would bury the master's short
//             key=value words that `ps` shows a learner. A descriptor carries any size, and the
//             master reads it once at start.
//   master    reads the block at start (it may allocate then: no child exists yet) and builds the
//             argv and envp arrays execve() takes, with five slots for ucspi-tcp's variables. For
//             each connection, before fork(), it formats those variables (set_tcp_vars).
//   child     exec_program(): async-signal-safe calls only, no allocation — dup2 the connection
//             to 0 and 1 (and 2 with stderr 'socket'), reset every signal's disposition and the
//             mask, close every other descriptor, execve. A failed execve is traced and the child
//             exits 127, as a shell does for a command it cannot run.
//
// The program's environment: `env` when given, else Node's environment at start (as
// child_process.spawn), then PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT
// (ucspi-tcp's names; an IPv4-mapped IPv6 address is written as IPv4) replacing any of the same name.
// TCPREMOTEHOST, TCPREMOTEINFO and TCPLOCALHOST are removed: the server looks up no name and asks
// no ident server, and tcpserver sets them only when it knows them.
#pragma once

#include <sys/socket.h>
#include <cstdint>
#include <string>
#include <vector>

#include "event_record.h"

namespace ps {

struct EventPipe;

enum class ExecStderr {
  Null,     // /dev/null (the default: the program's diagnostics go nowhere)
  Socket,   // the connection, like stdout (inetd's default)
  Inherit,  // Node's own standard error
};

// "null", "socket", "inherit": the mode's name in the exec block and on the master's command line.
const char* exec_stderr_name(ExecStderr mode);
// The mode of that name; false for any other string.
bool parse_exec_stderr(const char* name, ExecStderr& mode);

// What Node knows of the program (ServerOptions::exec).
struct ExecSpec {
  std::string path;               // absolute, checked executable in TypeScript
  std::vector<std::string> argv;  // argv[0] first (the program as the user named it)
  std::vector<std::string> env;   // "NAME=value" each
  ExecStderr stderr_mode = ExecStderr::Null;
};

// Node's side: a new memfd (close-on-exec) holding the block. Returns it, or -1 with errno.
int write_exec_block(const ExecSpec& spec);

constexpr int kTcpVars = 5;  // PROTO, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT

// The master's side: everything the child passes to execve(), built once at start.
struct ExecPlan {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;  // without the names of the ucspi-tcp variables
  std::vector<char*> argv;       // into args, then nullptr
  std::vector<char*> envp;       // the ucspi-tcp variables (tcp_vars), then into env, then nullptr
  char tcp_vars[kTcpVars][96] = {};
  ExecStderr stderr_mode = ExecStderr::Null;
  int stderr_fd = -1;  // Inherit: the master's copy of Node's standard error
};

// Reads the block from `fd` (not closed). False when it is malformed.
bool read_exec_block(int fd, ExecPlan& plan);

// The connection's ucspi-tcp variables into plan.tcp_vars: in the fork master before fork(), or
// in a prefork member about to become the program. Async-signal-safe (no snprintf, no inet_ntop).
void set_tcp_vars(ExecPlan& plan, const sockaddr_storage& local, const sockaddr_storage& remote);

// In the child, after the master's hygiene (its handlers reset, lfd closed, PR_SET_PDEATHSIG set).
// Async-signal-safe; traces dup2 and execve (connection `id`). Never returns.
[[noreturn]] void exec_program(const ExecPlan& plan, int cfd, const EventPipe& events, uint32_t id);

// The exit status of a child whose execve() failed.
constexpr int kExitExecFailed = 127;

// How the connection of a program that ended with wait status `status` ended: exit 0 is an end,
// any other exit an error, a signal a crash — or an abort when close() sent it (`killed`).
DisconnectReason exec_disconnect_reason(int status, bool killed);

}  // namespace ps
