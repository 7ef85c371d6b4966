// N-API glue of the load generator (native/loadgen/loadgen.h): exports runLoad(options) → Promise.
#pragma once

#include <napi.h>

// Adds `runLoad` to the addon's exports. Called from Init in addon.cc.
void RegisterLoadgen(Napi::Env env, Napi::Object exports);
