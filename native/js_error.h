// N-API glue shared by the addon's parts: a ps::SysError (errno + syscall name) becomes a JS Error
// with `errno` (positive, as in <errno.h>) and `syscall`; lib/util/errors.ts then shapes it like
// Node's own errors (code, negative errno, address, port).
#pragma once

#include <napi.h>

#include <cstring>
#include <string>

#include "core/sys_error.h"

inline Napi::Error sys_error_to_js(Napi::Env env, const ps::SysError& err) {
  Napi::Error error = Napi::Error::New(env, std::string(err.syscall) + " failed: " + strerror(err.err));
  error.Set("errno", Napi::Number::New(env, err.err));
  error.Set("syscall", Napi::String::New(env, err.syscall));
  return error;
}
