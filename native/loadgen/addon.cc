// The N-API glue of the load generator: converts options, starts ps::LoadThread, and settles a
// promise on the JS thread once the load thread is done. The load thread never touches JS: it
// reports through a thread-safe function, and the JS thread joins it before the promise
// resolves, so a caller that awaits runLoad() sees /proc/self/task back where it was.
#include "addon.h"

#include <cstring>
#include <string>

#include "../js_error.h"
#include "loadgen.h"

namespace {

struct LoadJob;
void on_load_done(Napi::Env env, Napi::Function, LoadJob* job, void*);
using LoadTsfn = Napi::TypedThreadSafeFunction<LoadJob, void, on_load_done>;

struct LoadJob {
  explicit LoadJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  LoadTsfn tsfn;
  ps::LoadThread thread;
  bool settled = false;
};

Napi::Object result_object(Napi::Env env, const ps::LoadResult& r) {
  auto num = [&](double v) { return Napi::Number::New(env, v); };
  auto count = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object out = Napi::Object::New(env);
  out.Set("durationMs", num(r.durationMs));
  out.Set("messages", count(r.messages));
  out.Set("bytes", count(r.bytes));
  out.Set("connects", count(r.connects));
  out.Set("errors", count(r.errors));
  out.Set("resets", count(r.resets));
  out.Set("verifyFailures", count(r.verifyFailures));
  Napi::Object latency = Napi::Object::New(env);
  latency.Set("p50", num(r.latencyUs.p50));
  latency.Set("p90", num(r.latencyUs.p90));
  latency.Set("p99", num(r.latencyUs.p99));
  latency.Set("max", num(r.latencyUs.max));
  latency.Set("mean", num(r.latencyUs.mean));
  out.Set("latencyUs", latency);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("userMs", num(r.cpuUserMs));
  cpu.Set("systemMs", num(r.cpuSystemMs));
  out.Set("cpu", cpu);
  return out;
}

// JS thread, called once: the load thread has stored its result and is on its way out.
void on_load_done(Napi::Env env, Napi::Function, LoadJob* job, void*) {
  // The thread has nothing left to do but return: this join takes microseconds.
  job->thread.join();
  if (env == nullptr || job->settled) return;  // Node is tearing down: nobody awaits the promise
  job->settled = true;
  const ps::LoadResult& r = job->thread.result();
  if (r.error) {
    job->deferred.Reject(sys_error_to_js(env, r.error).Value());
  } else {
    job->deferred.Resolve(result_object(env, r));
  }
}

// JS thread, after the load thread's Release(): normally on_load_done has run. When Node tears
// the environment down mid-run, it has not: stop the run (within a timer tick) and join it
// before the job, which the thread uses, is freed.
void on_tsfn_finalize(Napi::Env, void*, LoadJob* job) {
  job->thread.cancel();
  job->thread.join();
  delete job;
}

// Load thread.
void report_done(void* context) {
  auto* job = static_cast<LoadJob*>(context);
  // napi_closing during teardown: the finalizer cancels and joins instead.
  job->tsfn.BlockingCall();
  job->tsfn.Release();
}

// Defensive checks only: lib/loadgen.ts validates first and produces the user-facing messages.
bool read_load_options(const Napi::Object& opts, ps::LoadOptions& out) {
  Napi::Env env = opts.Env();
  auto fail = [&](const char* what) {
    Napi::TypeError::New(env, std::string("invalid native load option: ") + what).ThrowAsJavaScriptException();
    return false;
  };
  auto number = [&](const char* name, double min, double max, double& value) {
    Napi::Value v = opts.Get(name);
    if (!v.IsNumber()) return false;
    value = v.As<Napi::Number>().DoubleValue();
    return value >= min && value <= max && value == static_cast<double>(static_cast<int64_t>(value));
  };
  Napi::Value mode = opts.Get("mode"), expect = opts.Get("expect"), host = opts.Get("host");
  if (!mode.IsString() || !expect.IsString() || !host.IsString()) return fail("mode/expect/host");
  std::string m = mode.As<Napi::String>().Utf8Value();
  if (m == "pingpong")
    out.mode = ps::LoadMode::PingPong;
  else if (m == "churn")
    out.mode = ps::LoadMode::Churn;
  else if (m == "eof")
    out.mode = ps::LoadMode::Eof;
  else if (m == "rpc")
    out.mode = ps::LoadMode::Rpc;
  else
    return fail("mode");
  std::string e = expect.As<Napi::String>().Utf8Value();
  if (e == "echo")
    out.expect = ps::LoadExpect::Echo;
  else if (e == "upper")
    out.expect = ps::LoadExpect::Upper;
  else if (e == "any")
    out.expect = ps::LoadExpect::Any;
  else
    return fail("expect");
  out.host = host.As<Napi::String>().Utf8Value();
  double port = 0, connections = 0, size = 0, duration = 0;
  if (!number("port", 1, 65535, port)) return fail("port");
  if (!number("connections", 1, 10000, connections)) return fail("connections");
  // Every mode sends (rpc: asks for) at least one byte: UNP's web_child refuses a request for 0.
  if (!number("size", 1, 1024 * 1024, size)) return fail("size");
  if (!number("durationMs", 1, 600000, duration)) return fail("durationMs");
  out.port = static_cast<int>(port);
  out.connections = static_cast<int>(connections);
  out.size = static_cast<size_t>(size);
  out.durationMs = static_cast<int64_t>(duration);
  return true;
}

// runLoad(options) → Promise<NativeLoadResult>
Napi::Value RunLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "runLoad(options) expects an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ps::LoadOptions options;
  if (!read_load_options(info[0].As<Napi::Object>(), options)) return env.Undefined();

  auto* job = new LoadJob(env);
  Napi::Promise promise = job->deferred.Promise();
  // From here the finalizer owns the job; it runs once the load thread (or we) released it.
  job->tsfn = LoadTsfn::New(env, "posix-servers:loadgen", 0, 1, job, on_tsfn_finalize, static_cast<void*>(nullptr));
  ps::SysError err = job->thread.start(options, &report_done, job);
  if (err) {
    job->settled = true;
    job->deferred.Reject(sys_error_to_js(env, err).Value());
    job->tsfn.Release();
  }
  return promise;
}

}  // namespace

void RegisterLoadgen(Napi::Env env, Napi::Object exports) {
  exports.Set("runLoad", Napi::Function::New(env, RunLoad, "runLoad"));
}
