// N-API glue of the benchmark's measurements (native/bench/measure.h): exports processCpuNs(pid).
#include "addon.h"

#include "measure.h"

namespace {

// processCpuNs(pid) → the CPU time (ns) of that process so far, every thread of it, the exited
// ones included; -1 when there is no such process.
Napi::Value ProcessCpuNs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "processCpuNs(pid) expects a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t ns = ps::process_cpu_ns(static_cast<pid_t>(info[0].As<Napi::Number>().Int32Value()));
  // A double holds every nanosecond count below 2^53: 104 days of CPU.
  return Napi::Number::New(env, static_cast<double>(ns));
}

}  // namespace

void RegisterBench(Napi::Env env, Napi::Object exports) {
  exports.Set("processCpuNs", Napi::Function::New(env, ProcessCpuNs, "processCpuNs"));
}
