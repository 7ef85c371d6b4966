// N-API glue of the benchmark's measurements (native/bench/measure.h).
#pragma once

#include <napi.h>

// Adds `processCpuNs` to the addon's exports. Called from Init in addon.cc.
void RegisterBench(Napi::Env env, Napi::Object exports);
