#include "exec_child.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "event_pipe.h"
#include "process_hygiene.h"

namespace ps {

const char* exec_stderr_name(ExecStderr mode) {
  switch (mode) {
    case ExecStderr::Socket:
      return "socket";
    case ExecStderr::Inherit:
      return "inherit";
    default:
      return "null";
  }
}

bool parse_exec_stderr(const char* name, ExecStderr& mode) {
  for (ExecStderr m : {ExecStderr::Null, ExecStderr::Socket, ExecStderr::Inherit}) {
    if (strcmp(name, exec_stderr_name(m)) == 0) {
      mode = m;
      return true;
    }
  }
  return false;
}

namespace {

// The block: NUL-terminated strings. A header line for people who look at it, the counts, the
// stderr mode, the path, then argv and env.
constexpr char kMagic[] = "posix-servers exec block 1";

const char* const kTcpVarNames[kTcpVars] = {"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT"};

// ucspi-tcp's variables the server never knows: the names DNS gives the two addresses and what the
// client's ident server says (tcpserver sets them only after its lookups; with -H, -R and no
// lookup they are removed, not left as they were). A stale value in Node's environment must not
// reach the program: a mail server trusts TCPREMOTEHOST.
const char* const kUnknownTcpVarNames[] = {"TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST"};

bool has_name(const std::string& entry, const char* name) {
  size_t n = strlen(name);
  return entry.size() > n && entry.compare(0, n, name) == 0 && entry[n] == '=';
}

// A variable of ucspi-tcp's: set per connection (kTcpVarNames), or never passed on.
bool is_tcp_var(const std::string& entry) {
  for (const char* name : kTcpVarNames) {
    if (has_name(entry, name)) return true;
  }
  for (const char* name : kUnknownTcpVarNames) {
    if (has_name(entry, name)) return true;
  }
  return false;
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A bounded appender, async-signal-safe (snprintf and inet_ntop are not on signal-safety(7)'s list).
struct Text {
  char* out;
  size_t cap;
  size_t len = 0;
  void put(char c) {
    if (len + 1 < cap) out[len++] = c;
    out[len] = '\0';
  }
  void put(const char* s) {
    while (*s != '\0') put(*s++);
  }
  void decimal(unsigned v) {
    char digits[12];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) put(digits[--n]);
  }
  void hex(unsigned v) {
    char digits[8];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % 16];
      v /= 16;
    } while (v != 0);
    while (n > 0) put(digits[--n]);
  }
};

void ipv4_text(Text& t, const uint8_t* a) {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) t.put('.');
    t.decimal(a[i]);
  }
}

// RFC 5952: lowercase hex, no leading zeros, the longest run of two or more zero groups as "::".
void ipv6_text(Text& t, const uint8_t* a) {
  unsigned groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = (static_cast<unsigned>(a[2 * i]) << 8) | a[2 * i + 1];
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j > i ? j : i + 1;
  }
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      t.put("::");
      i += best_len - 1;
      continue;
    }
    if (i > 0 && i != best + best_len) t.put(':');
    t.hex(groups[i]);
  }
}

// NAME=address (an IPv4-mapped IPv6 address as IPv4) into `out`, and its port into `port`.
void address_var(const char* name, const sockaddr_storage& a, char* out, size_t cap, unsigned& port) {
  Text t{out, cap};
  t.put(name);
  t.put('=');
  port = 0;
  if (a.ss_family == AF_INET) {
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(a);
    ipv4_text(t, reinterpret_cast<const uint8_t*>(&in4.sin_addr));
    port = ntohs(in4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      ipv4_text(t, in6.sin6_addr.s6_addr + 12);
    } else {
      ipv6_text(t, in6.sin6_addr.s6_addr);
    }
    port = ntohs(in6.sin6_port);
  }
}

void port_var(const char* name, unsigned port, char* out, size_t cap) {
  Text t{out, cap};
  t.put(name);
  t.put('=');
  t.decimal(port);
}

}  // namespace

int write_exec_block(const ExecSpec& spec) {
  int fd = memfd_create("posix-servers-exec", MFD_CLOEXEC);
  if (fd < 0) return -1;
  std::string block;
  auto add = [&](const std::string& s) {
    block += s;
    block += '\0';
  };
  add(kMagic);
  add(std::to_string(spec.argv.size()));
  add(std::to_string(spec.env.size()));
  add(exec_stderr_name(spec.stderr_mode));
  add(spec.path);
  for (const std::string& a : spec.argv) add(a);
  for (const std::string& e : spec.env) add(e);
  if (!write_all(fd, block.data(), block.size())) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool read_exec_block(int fd, ExecPlan& plan) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) return false;
  std::string block(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < block.size()) {
    ssize_t n = pread(fd, &block[got], block.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  if (block.back() != '\0') return false;
  std::vector<std::string> strings;
  for (size_t at = 0; at < block.size();) {
    size_t end = block.find('\0', at);
    strings.emplace_back(block, at, end - at);
    at = end + 1;
  }
  if (strings.size() < 5 || strings[0] != kMagic) return false;
  char* end = nullptr;
  unsigned long argc = strtoul(strings[1].c_str(), &end, 10);
  if (*end != '\0') return false;
  unsigned long envc = strtoul(strings[2].c_str(), &end, 10);
  if (*end != '\0' || argc < 1 || strings.size() != 5 + argc + envc) return false;
  if (!parse_exec_stderr(strings[3].c_str(), plan.stderr_mode)) return false;
  plan.path = strings[4];
  if (plan.path.empty() || plan.path[0] != '/') return false;
  plan.args.assign(strings.begin() + 5, strings.begin() + 5 + static_cast<long>(argc));
  plan.env.clear();
  for (size_t i = 5 + argc; i < strings.size(); ++i) {
    if (!is_tcp_var(strings[i])) plan.env.push_back(strings[i]);
  }
  plan.argv.clear();
  for (std::string& a : plan.args) plan.argv.push_back(&a[0]);
  plan.argv.push_back(nullptr);
  plan.envp.clear();
  for (auto& var : plan.tcp_vars) plan.envp.push_back(var);
  for (std::string& e : plan.env) plan.envp.push_back(&e[0]);
  plan.envp.push_back(nullptr);
  snprintf(plan.tcp_vars[0], sizeof plan.tcp_vars[0], "PROTO=TCP");
  return true;
}

void set_tcp_vars(ExecPlan& plan, const sockaddr_storage& local, const sockaddr_storage& remote) {
  unsigned port = 0;
  address_var("TCPREMOTEIP", remote, plan.tcp_vars[1], sizeof plan.tcp_vars[1], port);
  port_var("TCPREMOTEPORT", port, plan.tcp_vars[2], sizeof plan.tcp_vars[2]);
  address_var("TCPLOCALIP", local, plan.tcp_vars[3], sizeof plan.tcp_vars[3], port);
  port_var("TCPLOCALPORT", port, plan.tcp_vars[4], sizeof plan.tcp_vars[4]);
}

DisconnectReason exec_disconnect_reason(int status, bool killed) {
  if (WIFSIGNALED(status)) return killed ? DisconnectReason::Aborted : DisconnectReason::Crash;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? DisconnectReason::End : DisconnectReason::Error;
}

[[noreturn]] void exec_program(const ExecPlan& plan, int cfd, const EventPipe& events, uint32_t id) {
  // Every signal back to its default: the master ignores SIGPIPE, and an ignored disposition
  // survives execve() (a caught one does not). The mask is inherited too: unblocked below.
  reset_signal_dispositions();
  // inetd's trick: the connection becomes the program's standard input and output.
  const int targets[] = {0, 1, 2};
  const int count = plan.stderr_mode == ExecStderr::Socket ? 3 : 2;
  for (int i = 0; i < count; ++i) {
    int rc = dup2(cfd, targets[i]);
    events.trace(TraceCall::Dup2, cfd, rc < 0 ? -1 : targets[i], rc < 0 ? errno : 0, id);
    if (rc < 0) _exit(kExitExecFailed);
  }
  if (plan.stderr_mode == ExecStderr::Inherit && plan.stderr_fd >= 0) dup2(plan.stderr_fd, 2);
  // With 'null', 2 is the master's /dev/null already.
  // Nothing else of the server's goes to the program: not the connection's own descriptor, not
  // the listener, not Node's stderr copy. The event pipe's write end is kept until execve() closes
  // it (close-on-exec), so that a failed execve can still be reported.
  const int keep[] = {0, 1, 2, events.write_fd};
  close_all_fds_except(keep, 4);
  if (events.write_fd >= 0) fcntl(events.write_fd, F_SETFD, FD_CLOEXEC);
  unblock_all_signals();
  events.trace(TraceCall::Execve, -1, 0, 0, id);
  execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
  events.trace(TraceCall::Execve, -1, -1, errno, id);
  _exit(kExitExecFailed);
}

}  // namespace ps
