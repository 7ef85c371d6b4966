#include "master_argv.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ps {

namespace {

const char* model_name(Model model) {
  switch (model) {
    case Model::Prefork:
      return "prefork";
    case Model::Reuseport:
      return "reuseport";
    default:
      return "fork";
  }
}

// The handlers by the names startServer() gives them.
struct HandlerName {
  Handler handler;
  const char* name;
};
constexpr HandlerName kHandlers[] = {{Handler::Echo, "echo"},       {Handler::Upper, "upper"},
                                     {Handler::Discard, "discard"}, {Handler::Chargen, "chargen"},
                                     {Handler::Daytime, "daytime"}, {Handler::Time, "time"},
                                     {Handler::Rpc, "rpc"},         {Handler::Exec, "exec"}};

const char* handler_name(Handler h) {
  for (const HandlerName& n : kHandlers) {
    if (n.handler == h) return n.name;
  }
  return "echo";
}

const char* accept_lock_name(AcceptLock lock) {
  switch (lock) {
    case AcceptLock::Flock:
      return "flock";
    case AcceptLock::Mutex:
      return "mutex";
    case AcceptLock::Pass:
      return "pass";
    default:
      return "none";
  }
}

}  // namespace

void MasterArgv::format(const ServerOptions& o, pid_t node_pid) {
  const char* handler = handler_name(o.serve.handler);
  const char* reap = o.reap == ReapMode::None ? "none" : "sigchld";
  snprintf(words[0], sizeof words[0], "posix-servers-master");
  snprintf(words[1], sizeof words[1], "model=%s", model_name(o.model));
  snprintf(words[2], sizeof words[2], "nodePid=%d", static_cast<int>(node_pid));
  snprintf(words[3], sizeof words[3], "maxClients=%d", o.maxClients);
  snprintf(words[4], sizeof words[4], "handler=%s", handler);
  snprintf(words[5], sizeof words[5], "idleTimeoutMs=%d", o.serve.idleTimeoutMs);
  snprintf(words[6], sizeof words[6], "labCrash=%d", o.serve.labCrash ? 1 : 0);
  snprintf(words[7], sizeof words[7], "reap=%s", reap);
  snprintf(words[8], sizeof words[8], "restart=%d", o.restart ? 1 : 0);
  snprintf(words[9], sizeof words[9], "trace=%d", o.trace ? 1 : 0);
  snprintf(words[10], sizeof words[10], "workers=%d", o.workers);
  snprintf(words[11], sizeof words[11], "acceptLock=%s", accept_lock_name(o.acceptLock));
  snprintf(words[12], sizeof words[12], "backlog=%d", o.listen.backlog);
  snprintf(words[13], sizeof words[13], "maxConnectionMs=%d", o.serve.maxConnectionMs);
  snprintf(words[14], sizeof words[14], "minBytesPerSecond=%d", o.serve.minBytesPerSecond);
  snprintf(words[15], sizeof words[15], "rateWindowMs=%d", o.serve.rateWindowMs);
  snprintf(words[16], sizeof words[16], "execStderr=%s", exec_stderr_name(o.exec.stderr_mode));
  snprintf(words[17], sizeof words[17], "whenFull=%s", when_full_name(o.whenFull));
  snprintf(words[18], sizeof words[18], "rpcMaxBytes=%u", static_cast<unsigned>(o.serve.rpcMaxBytes));
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
  static const char* const keys[] = {
      "model",        "nodePid",    "maxClients", "handler",    "idleTimeoutMs", "labCrash",        "reap",
      "restart",      "trace",      "workers",    "acceptLock", "backlog",       "maxConnectionMs", "minBytesPerSecond",
      "rateWindowMs", "execStderr", "whenFull",   "rpcMaxBytes"};
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
  if (strcmp(v[0], "fork") == 0)
    m.model = Model::Fork;
  else if (strcmp(v[0], "prefork") == 0)
    m.model = Model::Prefork;
  else if (strcmp(v[0], "reuseport") == 0)
    m.model = Model::Reuseport;
  else
    return fail(0);
  if (!integer(v[1], 1, 0x7fffffff, n)) return fail(1);
  m.node_pid = static_cast<pid_t>(n);
  // A connection flood must not become a fork bomb: the fork model has its own, lower cap.
  if (!integer(v[2], 1, m.model == Model::Fork ? kForkMaxClientsLimit : kMaxClientsLimit, n)) return fail(2);
  m.max_clients = static_cast<int>(n);
  bool known = false;
  for (const HandlerName& h : kHandlers) {
    if (strcmp(v[3], h.name) == 0) {
      m.serve.handler = h.handler;
      known = true;
    }
  }
  if (!known) return fail(3);
  if (!integer(v[4], 0, 0x7fffffff, n)) return fail(4);
  m.serve.idleTimeoutMs = static_cast<int>(n);
  if (!integer(v[5], 0, 1, n)) return fail(5);
  m.serve.labCrash = n == 1;
  if (strcmp(v[6], "sigchld") == 0)
    m.reap = ReapMode::Sigchld;
  else if (strcmp(v[6], "none") == 0)
    m.reap = ReapMode::None;
  else
    return fail(6);
  if (!integer(v[7], 0, 1, n)) return fail(7);
  m.restart = n == 1;
  if (!integer(v[8], 0, 1, n)) return fail(8);
  trace = n == 1;
  if (!integer(v[9], 1, kMaxWorkers, n)) return fail(9);
  m.workers = static_cast<int>(n);
  if (strcmp(v[10], "none") == 0)
    m.accept_lock = AcceptLock::None;
  else if (strcmp(v[10], "flock") == 0)
    m.accept_lock = AcceptLock::Flock;
  else if (strcmp(v[10], "mutex") == 0)
    m.accept_lock = AcceptLock::Mutex;
  else if (strcmp(v[10], "pass") == 0)
    m.accept_lock = AcceptLock::Pass;
  else
    return fail(10);
  if (!integer(v[11], 1, 0x7fffffff, n)) return fail(11);
  m.backlog = static_cast<int>(n);
  if (!integer(v[12], 0, 0x7fffffff, n)) return fail(12);
  m.serve.maxConnectionMs = static_cast<int>(n);
  if (!integer(v[13], 0, 0x7fffffff, n)) return fail(13);
  m.serve.minBytesPerSecond = static_cast<int>(n);
  if (!integer(v[14], 1, 0x7fffffff, n)) return fail(14);
  m.serve.rateWindowMs = static_cast<int>(n);
  if (!parse_exec_stderr(v[15], exec_stderr)) return fail(15);
  if (!parse_when_full(v[16], m.when_full)) return fail(16);
  if (!integer(v[17], 1, kRpcMaxBytesLimit, n)) return fail(17);
  m.serve.rpcMaxBytes = static_cast<uint32_t>(n);
  return true;
}

}  // namespace ps
