// The positive controls of the sanitizer builds (scripts/test-sanitizers.sh: npm run test:asan,
// npm run test:tsan). A sanitizer run that reports nothing proves something only if it could have
// reported: so the suite first makes each instrumented binary commit one planted bug on purpose, in
// a child process, and requires the sanitizer to report it — a heap-buffer overflow and a signed
// integer overflow (ASan + UBSan), a data race between two threads (TSan).
//
// Compiled only when CMake's PS_SANITIZE is set (it defines PS_SANITIZER_CONTROLS and adds this
// file to the core): no release build, development build or prebuilt binary contains it, and
// test/sanitizer-controls.test.ts checks that the ordinary build has no trace of the switch.
#pragma once

namespace ps {

// The switch: the environment variable that names a control to run.
constexpr const char* kSanitizerControlEnv = "POSIX_SERVERS_SANITIZER_CONTROL";

// Runs the control named by $POSIX_SERVERS_SANITIZER_CONTROL, if it is set: `heap-overflow`,
// `signed-overflow` or `race`. `who` names the binary in the line it prints first ("addon",
// "master"). An unknown name is an error of the caller: printed, and the process exits with 2.
// Called first thing by the addon's Init and the master's main, in sanitizer builds only.
void run_sanitizer_control_from_env(const char* who);

}  // namespace ps
