// The N-API glue: converts JS options into ps::ServerOptions, a ps::SysError into a JS Error with
// errno and syscall, counters into a stats object, and the fork master's exit (reported on a
// waiting thread) into a JS callback through a thread-safe function, as node-pty does.
// No POSIX logic lives here: see native/core/.
#include <napi.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include <vector>

#include "bench/addon.h"
#include "core/event_record.h"
#include "core/io_ring.h"
#ifdef PS_SANITIZER_CONTROLS
#include "core/sanitizer_controls.h"
#endif
#include "core/server.h"
#include "core/sock_diag.h"
#include "js_error.h"
#include "loadgen/addon.h"
#include "loadgen/loadgen.h"

namespace {

// Carries the master's wait status from the waiting thread to the JS thread.
struct MasterExitReporter {
  Napi::ThreadSafeFunction tsfn;
  // Set on the JS thread once the exit has been delivered: the thread-safe function may be
  // finalized from then on, so set_ref() must leave it alone.
  bool delivered = false;

  struct Exit {
    MasterExitReporter* reporter;
    int wait_status;
  };

  static void on_exit(void* context, int status) {
    auto* self = static_cast<MasterExitReporter*>(context);
    auto* exit = new Exit{self, status};
    napi_status rc = self->tsfn.NonBlockingCall(exit, [](Napi::Env env, Napi::Function callback, Exit* e) {
      int wait_status = e->wait_status;
      MasterExitReporter* reporter = e->reporter;
      delete e;
      if (env == nullptr) return;  // Node is tearing down: the reporter may be gone
      reporter->delivered = true;
      if (callback.IsEmpty()) return;
      Napi::Value code = WIFEXITED(wait_status) ? Napi::Number::New(env, WEXITSTATUS(wait_status)) : env.Null();
      Napi::Value signal = WIFSIGNALED(wait_status) ? Napi::Number::New(env, WTERMSIG(wait_status)) : env.Null();
      callback.Call({code, signal});
    });
    if (rc != napi_ok) delete exit;
    self->tsfn.Release();
  }

  // server.ref()/unref(): whether the pending report keeps Node's event loop alive. JS thread only.
  void set_ref(Napi::Env env, bool ref) {
    if (delivered) return;
    if (ref)
      tsfn.Ref(env);
    else
      tsfn.Unref(env);
  }
};

Napi::Object address_object(Napi::Env env, const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  int port = 0;
  const char* family = "IPv4";
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    port = ntohs(in6.sin6_port);
    family = "IPv6";
  } else {
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in4.sin_addr, text, sizeof text);
    port = ntohs(in4.sin_port);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", text);
  out.Set("family", family);
  out.Set("port", port);
  return out;
}

class NativeServer : public Napi::ObjectWrap<NativeServer> {
  // Records copied per takeEvents() call: JS calls again until null.
  static constexpr size_t kDrainBatch = 1024;

 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeServer",
                       {
                           InstanceAccessor<&NativeServer::Pid>("pid"),
                           InstanceMethod<&NativeServer::TakeEventFd>("takeEventFd"),
                           InstanceMethod<&NativeServer::TakeEvents>("takeEvents"),
                           InstanceMethod<&NativeServer::HearConnections>("hearConnections"),
                           InstanceMethod<&NativeServer::Address>("address"),
                           InstanceMethod<&NativeServer::Stats>("stats"),
                           InstanceMethod<&NativeServer::Stop>("stop"),
                           InstanceMethod<&NativeServer::AbortConnections>("abortConnections"),
                           InstanceMethod<&NativeServer::Kill>("kill"),
                           InstanceMethod<&NativeServer::Reconcile>("reconcile"),
                           InstanceMethod<&NativeServer::Finish>("finish"),
                           InstanceMethod<&NativeServer::Ref>("ref"),
                       });
  }

  explicit NativeServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeServer>(info) {}

  ~NativeServer() override {
    server_.reset();  // joins the waiting/server thread first: it may still use the reporter
    delete reporter_;
  }

  void Adopt(std::unique_ptr<ps::Server> server, MasterExitReporter* reporter) {
    server_ = std::move(server);
    reporter_ = reporter;
  }

 private:
  bool Running(Napi::Env env) {
    if (server_) return true;
    Napi::Error::New(env, "server already finished").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) {
    if (!Running(info.Env())) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), server_->pid());
  }

  Napi::Value TakeEventFd(const Napi::CallbackInfo& info) {
    if (!Running(info.Env())) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), server_->take_event_fd());
  }

  // takeEvents() → a Buffer of whole records, or null when none is waiting (the relay pipe's next
  // byte says when there are).
  Napi::Value TakeEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Running(env)) return env.Undefined();
    size_t n = server_->take_events(batch_.data(), batch_.size());
    if (n == 0) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(batch_.data()),
                                       n * sizeof(ps::EventRecord));
  }

  void HearConnections(const Napi::CallbackInfo& info) {
    if (!Running(info.Env())) return;
    server_->hear_connections(info[0].ToBoolean().Value());
  }

  Napi::Value Address(const Napi::CallbackInfo& info) {
    if (!Running(info.Env())) return info.Env().Undefined();
    return address_object(info.Env(), server_->address());
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Running(env)) return env.Undefined();
    const ps::Counters& c = server_->counters();
    Napi::Object out = Napi::Object::New(env);
    auto put = [&](const char* name, const ps::Counter& value) {
      out.Set(name, Napi::Number::New(env, static_cast<double>(value.load(std::memory_order_relaxed))));
    };
    put("accepted", c.accepted);
    put("active", c.active);
    put("rejected", c.rejected);
    put("closed", c.closed);
    put("reaped", c.reaped);
    put("eintrRetries", c.eintrRetries);
    put("bytesIn", c.bytesIn);
    put("bytesOut", c.bytesOut);
    put("eventsDropped", c.eventsDropped);
    put("eventWakeups", c.eventWakeups);
    put("refusedNoFd", c.refusedNoFd);
    put("acceptErrors", c.acceptErrors);
    put("reapedCpuUs", c.reapedCpuUs);
    Napi::Array per_worker = Napi::Array::New(env, static_cast<size_t>(server_->pool_size()));
    for (int i = 0; i < server_->pool_size(); ++i) {
      per_worker.Set(
          static_cast<uint32_t>(i),
          Napi::Number::New(env, static_cast<double>(server_->member_accepts(i).load(std::memory_order_relaxed))));
    }
    out.Set("perWorker", per_worker);
    return out;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (Running(info.Env())) server_->stop();
    return info.Env().Undefined();
  }

  Napi::Value AbortConnections(const Napi::CallbackInfo& info) {
    if (Running(info.Env())) server_->abort_connections();
    return info.Env().Undefined();
  }

  Napi::Value Kill(const Napi::CallbackInfo& info) {
    if (Running(info.Env())) server_->kill_now();
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (Running(info.Env()) && reporter_ != nullptr) reporter_->set_ref(info.Env(), info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }

  // [{ id, pid, bytesIn, bytesOut, worker }]: the connections that died with a process of the server.
  Napi::Value Reconcile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Running(env)) return env.Undefined();
    std::vector<ps::LostConnection> lost = server_->reconcile();
    Napi::Array out = Napi::Array::New(env, lost.size());
    for (size_t i = 0; i < lost.size(); ++i) {
      Napi::Object conn = Napi::Object::New(env);
      conn.Set("id", lost[i].id);
      conn.Set("pid", lost[i].pid);
      conn.Set("bytesIn", static_cast<double>(lost[i].bytesIn));
      conn.Set("bytesOut", static_cast<double>(lost[i].bytesOut));
      conn.Set("worker", lost[i].worker);
      out.Set(static_cast<uint32_t>(i), conn);
    }
    return out;
  }

  Napi::Value Finish(const Napi::CallbackInfo& info) {
    if (server_) {
      server_->finish();
      server_.reset();
      delete reporter_;
      reporter_ = nullptr;
    }
    return info.Env().Undefined();
  }

  std::unique_ptr<ps::Server> server_;
  MasterExitReporter* reporter_ = nullptr;
  // takeEvents()'s landing place, made once: a local array of 1,024 records would be
  // constructed (zeroed, 64 KiB) on every call, and Node calls at least twice per wake-up.
  std::vector<ps::EventRecord> batch_ = std::vector<ps::EventRecord>(kDrainBatch);
};

struct AddonData {
  Napi::FunctionReference server_class;
};

// A JS array of strings (anything else: false).
bool read_strings(const Napi::Value& value, std::vector<std::string>& out) {
  if (!value.IsArray()) return false;
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) return false;
    out.push_back(item.As<Napi::String>().Utf8Value());
    if (out.back().find('\0') != std::string::npos) return false;  // execve() strings end at NUL
  }
  return true;
}

// { path, argv, env, stderr }: the exec handler's program, resolved in TypeScript.
bool read_exec(const Napi::Value& value, ps::ExecSpec& out) {
  if (!value.IsObject()) return false;
  Napi::Object exec = value.As<Napi::Object>();
  Napi::Value path = exec.Get("path"), stderr_mode = exec.Get("stderr");
  if (!path.IsString() || !stderr_mode.IsString()) return false;
  out.path = path.As<Napi::String>().Utf8Value();
  if (out.path.empty() || out.path[0] != '/') return false;
  if (!read_strings(exec.Get("argv"), out.argv) || out.argv.empty()) return false;
  if (!read_strings(exec.Get("env"), out.env)) return false;
  return ps::parse_exec_stderr(stderr_mode.As<Napi::String>().Utf8Value().c_str(), out.stderr_mode);
}

// { maxPerSource, maxConnectionsPerSecond, allow: [cidr], deny: [cidr] }: the door's rules.
bool read_door(const Napi::Value& value, ps::DoorRules& out) {
  if (!value.IsObject()) return false;
  Napi::Object door = value.As<Napi::Object>();
  Napi::Value per_source = door.Get("maxPerSource"), rate = door.Get("maxConnectionsPerSecond");
  if (!per_source.IsNumber() || !rate.IsNumber()) return false;
  out.maxPerSource = per_source.As<Napi::Number>().Int32Value();
  out.maxConnectionsPerSecond = rate.As<Napi::Number>().Int32Value();
  if (out.maxPerSource < 0 || out.maxConnectionsPerSecond < 0) return false;
  std::vector<std::string> allow, deny;
  if (!read_strings(door.Get("allow"), allow) || !read_strings(door.Get("deny"), deny)) return false;
  if (allow.size() > ps::kMaxDoorRules || deny.size() > ps::kMaxDoorRules) return false;
  for (const std::string& rule : allow) {
    if (!ps::parse_cidr(rule.c_str(), out.allow[out.allowCount++])) return false;
  }
  for (const std::string& rule : deny) {
    if (!ps::parse_cidr(rule.c_str(), out.deny[out.denyCount++])) return false;
  }
  return true;
}

// Defensive checks only: lib/server/options.ts validates first and produces the user-facing messages.
bool read_options(const Napi::Object& opts, ps::ServerOptions& out) {
  Napi::Env env = opts.Env();
  auto fail = [&](const char* what) {
    Napi::TypeError::New(env, std::string("invalid native option: ") + what).ThrowAsJavaScriptException();
    return false;
  };
  std::string model = opts.Get("model").ToString().Utf8Value();
  if (model == "fork")
    out.model = ps::Model::Fork;
  else if (model == "thread")
    out.model = ps::Model::Thread;
  else if (model == "iterative")
    out.model = ps::Model::Iterative;
  else if (model == "prefork")
    out.model = ps::Model::Prefork;
  else if (model == "reuseport")
    out.model = ps::Model::Reuseport;
  else if (model == "prethread")
    out.model = ps::Model::Prethread;
  else if (model == "epoll")
    out.model = ps::Model::Epoll;
  else if (model == "uring")
    out.model = ps::Model::Uring;
  else
    return fail("model");
  out.listen.reuseport = out.model == ps::Model::Reuseport;
  static const std::pair<const char*, ps::Handler> kHandlers[] = {
      {"echo", ps::Handler::Echo},       {"upper", ps::Handler::Upper},     {"discard", ps::Handler::Discard},
      {"chargen", ps::Handler::Chargen}, {"daytime", ps::Handler::Daytime}, {"time", ps::Handler::Time},
      {"rpc", ps::Handler::Rpc},         {"exec", ps::Handler::Exec}};
  std::string handler = opts.Get("handler").ToString().Utf8Value();
  bool known_handler = false;
  for (const auto& [name, value] : kHandlers) {
    if (handler == name) {
      out.serve.handler = value;
      known_handler = true;
    }
  }
  if (!known_handler) return fail("handler");
  // Only a process that serves one client at a time can become its program (reuseport's members
  // serve many from an event loop, and a thread cannot become another program).
  if (out.serve.handler == ps::Handler::Exec &&
      ((out.model != ps::Model::Fork && out.model != ps::Model::Prefork) || !read_exec(opts.Get("exec"), out.exec))) {
    return fail("exec");
  }
  if (opts.Has("door") && !read_door(opts.Get("door"), out.door)) return fail("door");
  Napi::Value host = opts.Get("host");
  if (!host.IsString()) return fail("host");
  out.listen.host = host.As<Napi::String>().Utf8Value();
  Napi::Value port = opts.Get("port"), backlog = opts.Get("backlog"), max_clients = opts.Get("maxClients");
  if (!port.IsNumber() || !backlog.IsNumber() || !max_clients.IsNumber()) return fail("port/backlog/maxClients");
  out.listen.port = port.As<Napi::Number>().Int32Value();
  out.listen.backlog = backlog.As<Napi::Number>().Int32Value();
  out.maxClients = max_clients.As<Napi::Number>().Int32Value();
  Napi::Value trace = opts.Get("trace"), restart = opts.Get("restart"), hold = opts.Get("labHoldMs");
  out.trace = trace.IsBoolean() && trace.As<Napi::Boolean>().Value();
  out.restart = restart.IsBoolean() && restart.As<Napi::Boolean>().Value();
  out.labHoldMs = hold.IsNumber() ? hold.As<Napi::Number>().Int32Value() : 0;
  Napi::Value idle = opts.Get("idleTimeoutMs"), crash = opts.Get("labCrash");
  out.serve.idleTimeoutMs = idle.IsNumber() ? idle.As<Napi::Number>().Int32Value() : 0;
  out.serve.labCrash = crash.IsBoolean() && crash.As<Napi::Boolean>().Value();
  if (out.serve.idleTimeoutMs < 0) return fail("idleTimeoutMs");
  Napi::Value life = opts.Get("maxConnectionMs"), rate = opts.Get("minBytesPerSecond"),
              window = opts.Get("rateWindowMs");
  out.serve.maxConnectionMs = life.IsNumber() ? life.As<Napi::Number>().Int32Value() : 0;
  out.serve.minBytesPerSecond = rate.IsNumber() ? rate.As<Napi::Number>().Int32Value() : 0;
  out.serve.rateWindowMs = window.IsNumber() ? window.As<Napi::Number>().Int32Value() : 1000;
  if (out.serve.maxConnectionMs < 0) return fail("maxConnectionMs");
  if (out.serve.minBytesPerSecond < 0) return fail("minBytesPerSecond");
  if (out.serve.rateWindowMs < 1) return fail("rateWindowMs");
  Napi::Value rpc_max = opts.Get("rpcMaxBytes");
  if (rpc_max.IsNumber()) {
    const int64_t n = rpc_max.As<Napi::Number>().Int64Value();
    if (n < 1 || n > ps::kRpcMaxBytesLimit) return fail("rpcMaxBytes");
    out.serve.rpcMaxBytes = static_cast<uint32_t>(n);
  }
  std::string reap =
      opts.Has("reap") && opts.Get("reap").IsString() ? opts.Get("reap").As<Napi::String>().Utf8Value() : "sigchld";
  if (reap == "sigchld")
    out.reap = ps::ReapMode::Sigchld;
  else if (reap == "none")
    out.reap = ps::ReapMode::None;
  else
    return fail("reap");
  std::string arg = opts.Has("threadArg") && opts.Get("threadArg").IsString()
                        ? opts.Get("threadArg").As<Napi::String>().Utf8Value()
                        : "slot";
  if (arg == "slot")
    out.threadArg = ps::ThreadArg::Slot;
  else if (arg == "shared-cfd")
    out.threadArg = ps::ThreadArg::SharedCfd;
  else
    return fail("threadArg");
  Napi::Value receive = opts.Get("uringReceive");
  out.multishotReceive = !receive.IsString() || receive.As<Napi::String>().Utf8Value() != "single";
  Napi::Value workers = opts.Get("workers");
  out.workers = workers.IsNumber() ? workers.As<Napi::Number>().Int32Value() : 1;
  if (out.workers < 1 || out.workers > ps::kMaxWorkers) return fail("workers");
  std::string lock = opts.Has("acceptLock") && opts.Get("acceptLock").IsString()
                         ? opts.Get("acceptLock").As<Napi::String>().Utf8Value()
                     : out.model == ps::Model::Prethread ? "mutex"
                                                         : "none";
  if (out.model == ps::Model::Prethread) {
    if (lock == "mutex")
      out.prethreadLock = ps::PrethreadLock::Mutex;
    else if (lock == "main")
      out.prethreadLock = ps::PrethreadLock::Main;
    else
      return fail("acceptLock");
  } else if (lock == "none")
    out.acceptLock = ps::AcceptLock::None;
  else if (lock == "flock")
    out.acceptLock = ps::AcceptLock::Flock;
  else if (lock == "mutex")
    out.acceptLock = ps::AcceptLock::Mutex;
  else if (lock == "pass")
    out.acceptLock = ps::AcceptLock::Pass;
  else
    return fail("acceptLock");
  if (opts.Has("whenFull") && !ps::parse_when_full(opts.Get("whenFull").ToString().Utf8Value().c_str(), out.whenFull)) {
    return fail("whenFull");
  }
  if (out.labHoldMs < 0 || out.labHoldMs > 60000) return fail("labHoldMs");
  if (out.listen.port < 0 || out.listen.port > 65535) return fail("port");
  if (out.listen.backlog < 1) return fail("backlog");
  if (out.maxClients < 1 || out.maxClients > ps::kMaxClientsLimit) return fail("maxClients");
  Napi::Value backlog_limit = opts.Get("eventBacklog");
  if (!backlog_limit.IsUndefined()) {
    if (!backlog_limit.IsNumber() || backlog_limit.As<Napi::Number>().DoubleValue() < 0) return fail("eventBacklog");
    out.eventBacklog = static_cast<size_t>(backlog_limit.As<Napi::Number>().DoubleValue());
  }
  return true;
}

// start(options, onMasterExit) → NativeServer. onMasterExit(exitCode, signal) is called once
// for the process models (fork, prefork, reuseport) when the master has been reaped.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "start(options, onMasterExit) expects an object and a function")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ps::ServerOptions options;
  if (!read_options(info[0].As<Napi::Object>(), options)) return env.Undefined();

  MasterExitReporter* reporter = nullptr;
  if (ps::is_process_model(options.model)) {
    reporter = new MasterExitReporter();
    reporter->tsfn =
        Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "posix-servers:master-exit", 0, 1);
  }
  ps::SysError error;
  std::unique_ptr<ps::Server> server =
      ps::Server::start(options, reporter ? &MasterExitReporter::on_exit : nullptr, reporter, error);
  if (!server) {
    if (reporter) {
      reporter->tsfn.Release();
      delete reporter;
    }
    sys_error_to_js(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* data = env.GetInstanceData<AddonData>();
  Napi::Object wrapper = data->server_class.New({});
  NativeServer::Unwrap(wrapper)->Adopt(std::move(server), reporter);
  return wrapper;
}

// listenSocket({ host, port, backlog }) → { fd, address }: socket → bind → listen, for the cluster
// model's schedulingPolicy 'none', whose primary holds the listening socket for its workers but
// never accepts on it (Node has no public way to listen without accepting). The caller owns fd.
Napi::Value ListenSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "listenSocket(options) expects an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object opts = info[0].As<Napi::Object>();
  Napi::Value host = opts.Get("host"), port = opts.Get("port"), backlog = opts.Get("backlog");
  if (!host.IsString() || !port.IsNumber() || !backlog.IsNumber()) {
    Napi::TypeError::New(env, "invalid native option: host/port/backlog").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ps::ListenOptions listen;
  listen.host = host.As<Napi::String>().Utf8Value();
  listen.port = port.As<Napi::Number>().Int32Value();
  listen.backlog = backlog.As<Napi::Number>().Int32Value();
  ps::UniqueFd fd;
  sockaddr_storage bound{};
  ps::SysError error = ps::open_listen_socket(listen, fd, bound, ps::EventPipe{});
  if (error) {
    sys_error_to_js(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", address_object(env, bound));
  out.Set("fd", fd.release());
  return out;
}

// tcpListeners(port) → the TCP listeners of this network namespace on `port` (every port with 0),
// as the kernel's sock_diag reports them: [{ address, queued, backlog, inode }] (sock_diag.h).
Napi::Value TcpListeners(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "tcpListeners(port) expects a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<ps::TcpListener> listeners;
  ps::SysError error = ps::tcp_listeners(static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value()), listeners);
  if (error) {
    sys_error_to_js(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, listeners.size());
  for (size_t i = 0; i < listeners.size(); ++i) {
    Napi::Object l = Napi::Object::New(env);
    l.Set("address", address_object(env, listeners[i].address));
    l.Set("queued", listeners[i].queued);
    l.Set("backlog", listeners[i].backlog);
    l.Set("inode", static_cast<double>(listeners[i].inode));
    out.Set(i, l);
  }
  return out;
}

// The event record's layout and every numbering in it, from event_record.h's lists: JS decodes by
// these names (lib/server/events.ts), so the numbers are written in one place only.
Napi::Object WireFormat(Napi::Env env) {
  Napi::Object wire = Napi::Object::New(env);
  wire.Set("recordSize", ps::kEventRecordSize);
  Napi::Object fields = Napi::Object::New(env);
#define PS_FIELD(name, offset, width)                 \
  {                                                   \
    Napi::Object field = Napi::Object::New(env);      \
    field.Set("offset", static_cast<double>(offset)); \
    field.Set("width", static_cast<double>(width));   \
    fields.Set(name, field);                          \
  }
  PS_EVENT_FIELDS(PS_FIELD)
#undef PS_FIELD
  wire.Set("fields", fields);
  auto numbering = [&](const char* key) {
    Napi::Object table = Napi::Object::New(env);
    wire.Set(key, table);
    return table;
  };
#define PS_NUMBER(name, number, js) table.Set(js, static_cast<double>(number));
  {
    Napi::Object table = numbering("eventTypes");
    PS_EVENT_TYPES(PS_NUMBER)
  }
  {
    Napi::Object table = numbering("traceCalls");
    PS_TRACE_CALLS(PS_NUMBER)
  }
  {
    Napi::Object table = numbering("disconnectReasons");
    PS_DISCONNECT_REASONS(PS_NUMBER)
  }
  {
    Napi::Object table = numbering("rejectReasons");
    PS_REJECT_REASONS(PS_NUMBER)
  }
#undef PS_NUMBER
  return wire;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef PS_SANITIZER_CONTROLS
  ps::run_sanitizer_control_from_env("addon");  // a planted bug, when asked for (sanitizer builds only)
#endif
  auto* data = new AddonData();
  data->server_class = Napi::Persistent(NativeServer::Define(env));
  env.SetInstanceData(data);
  exports.Set("start", Napi::Function::New(env, Start, "start"));
  exports.Set("listenSocket", Napi::Function::New(env, ListenSocket, "listenSocket"));
  exports.Set("tcpListeners", Napi::Function::New(env, TcpListeners, "tcpListeners"));
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("MAX_CLIENTS_LIMIT", ps::kMaxClientsLimit);
  constants.Set("FORK_MAX_CLIENTS_LIMIT", ps::kForkMaxClientsLimit);
  constants.Set("MAX_DOOR_RULES", ps::kMaxDoorRules);
  constants.Set("MAX_WORKERS", ps::kMaxWorkers);
  // Whether the uring model was compiled in (<linux/io_uring.h> of Linux 6.1 or later, io_ring.h).
  constants.Set("URING_BUILT", ps::kIoRingBuilt);
  constants.Set("EVENT_RING_CAPACITY", static_cast<double>(ps::kRingCapacity));
  constants.Set("wire", WireFormat(env));
  Napi::Object thread_names = Napi::Object::New(env);
  thread_names.Set("server", ps::kServerThreadName);
  thread_names.Set("worker", ps::kWorkerThreadName);
  thread_names.Set("pool", ps::kPoolThreadName);
  thread_names.Set("loadgen", ps::kLoadThreadName);
  thread_names.Set("events", ps::kEventThreadName);
  constants.Set("threadNames", thread_names);
  exports.Set("constants", constants);
  RegisterLoadgen(env, exports);
  RegisterBench(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(posix_servers, Init)
