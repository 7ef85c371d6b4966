#include "master_argv.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ps {

namespace {

// The handlers by the names startServer() gives them.
struct HandlerName {
  Handler handler;
  const char* name;
};
constexpr HandlerName kHandlers[] = {{Handler::Echo, "echo"},       {Handler::Upper, "upper"},
                                     {Handler::Discard, "discard"}, {Handler::Chargen, "chargen"},
                                     {Handler::Daytime, "daytime"}, {Handler::Time, "time"},
                                     {Handler::Exec, "exec"}};

const char* handler_name(Handler h) {
  for (const HandlerName& n : kHandlers) {
    if (n.handler == h) return n.name;
  }
  return "echo";
}

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

}  // namespace

void MasterArgv::format(const ServerOptions& o, pid_t node_pid) {
  const char* handler = handler_name(o.serve.handler);
  const char* reap = o.reap == ReapMode::None ? "none" : "sigchld";
  snprintf(words[0], sizeof words[0], "posix-servers-fork-master");
  snprintf(words[1], sizeof words[1], "nodePid=%d", static_cast<int>(node_pid));
  snprintf(words[2], sizeof words[2], "maxClients=%d", o.maxClients);
  snprintf(words[3], sizeof words[3], "handler=%s", handler);
  snprintf(words[4], sizeof words[4], "idleTimeoutMs=%d", o.serve.idleTimeoutMs);
  snprintf(words[5], sizeof words[5], "labCrash=%d", o.serve.labCrash ? 1 : 0);
  snprintf(words[6], sizeof words[6], "reap=%s", reap);
  snprintf(words[7], sizeof words[7], "restart=%d", o.restart ? 1 : 0);
  snprintf(words[8], sizeof words[8], "trace=%d", o.trace ? 1 : 0);
  snprintf(words[9], sizeof words[9], "maxConnectionMs=%d", o.serve.maxConnectionMs);
  snprintf(words[10], sizeof words[10], "minBytesPerSecond=%d", o.serve.minBytesPerSecond);
  snprintf(words[11], sizeof words[11], "rateWindowMs=%d", o.serve.rateWindowMs);
  snprintf(words[12], sizeof words[12], "execStderr=%s", exec_stderr_name(o.exec.stderr_mode));
  for (int i = 0; i < kWords; ++i) argv[i] = words[i];
  argv[kWords] = nullptr;
}

namespace {

// The value of `key=` in argv[index], or nullptr.
const char* value_of(char** argv, int index, const char* key) {
  size_t n = strlen(key);
  if (strncmp(argv[index], key, n) != 0 || argv[index][n] != '=') return nullptr;
  return argv[index] + n + 1;
}

bool integer(const char* text, long min, long max, long& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  out = strtol(text, &end, 10);
  return *end == '\0' && out >= min && out <= max;
}

}  // namespace

bool parse_master_argv(int argc, char** argv, MasterState& m, bool& trace, ExecStderr& exec_stderr, const char*& bad) {
  static const char* const keys[] = {"nodePid",      "maxClients", "handler", "idleTimeoutMs",   "labCrash",
                                     "reap",         "restart",    "trace",   "maxConnectionMs", "minBytesPerSecond",
                                     "rateWindowMs", "execStderr"};
  constexpr int kKeys = sizeof keys / sizeof keys[0];
  static_assert(kKeys == MasterArgv::kWords - 1, "one key per word after the program's name");
  if (argc != MasterArgv::kWords) {
    bad = "the number of arguments";
    return false;
  }
  const char* v[kKeys];
  for (int i = 0; i < kKeys; ++i) {
    v[i] = value_of(argv, i + 1, keys[i]);
    if (v[i] == nullptr) {
      bad = keys[i];
      return false;
    }
  }
  auto fail = [&](int i) {
    bad = keys[i];
    return false;
  };
  long n = 0;
  if (!integer(v[0], 1, 0x7fffffff, n)) return fail(0);
  m.node_pid = static_cast<pid_t>(n);
  if (!integer(v[1], 1, kForkMaxClientsLimit, n)) return fail(1);
  m.max_clients = static_cast<int>(n);
  bool known = false;
  for (const HandlerName& h : kHandlers) {
    if (strcmp(v[2], h.name) == 0) {
      m.serve.handler = h.handler;
      known = true;
    }
  }
  if (!known) return fail(2);
  if (!integer(v[3], 0, 0x7fffffff, n)) return fail(3);
  m.serve.idleTimeoutMs = static_cast<int>(n);
  if (!integer(v[4], 0, 1, n)) return fail(4);
  m.serve.labCrash = n == 1;
  if (strcmp(v[5], "sigchld") == 0)
    m.reap = ReapMode::Sigchld;
  else if (strcmp(v[5], "none") == 0)
    m.reap = ReapMode::None;
  else
    return fail(5);
  if (!integer(v[6], 0, 1, n)) return fail(6);
  m.restart = n == 1;
  if (!integer(v[7], 0, 1, n)) return fail(7);
  trace = n == 1;
  if (!integer(v[8], 0, 0x7fffffff, n)) return fail(8);
  m.serve.maxConnectionMs = static_cast<int>(n);
  if (!integer(v[9], 0, 0x7fffffff, n)) return fail(9);
  m.serve.minBytesPerSecond = static_cast<int>(n);
  if (!integer(v[10], 1, 0x7fffffff, n)) return fail(10);
  m.serve.rateWindowMs = static_cast<int>(n);
  if (strcmp(v[11], "null") == 0)
    exec_stderr = ExecStderr::Null;
  else if (strcmp(v[11], "socket") == 0)
    exec_stderr = ExecStderr::Socket;
  else if (strcmp(v[11], "inherit") == 0)
    exec_stderr = ExecStderr::Inherit;
  else
    return fail(11);
  return true;
}

}  // namespace ps
