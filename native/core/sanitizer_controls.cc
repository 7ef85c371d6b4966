// Planted bugs, compiled into sanitizer builds only (sanitizer_controls.h). Each is written so that
// the compiler cannot see it coming (the sizes and operands are volatile): the bug happens at run
// time, where only the sanitizer's instrumentation of this code can notice it.
#include "sanitizer_controls.h"

#include <pthread.h>
#include <unistd.h>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ps {

namespace {

// One byte written past the end of a heap block: ASan's heap-buffer-overflow.
void heap_overflow() {
  volatile size_t size = 16;
  volatile char* block = new char[size];  // volatile: the store below is not dead to the optimizer
  volatile size_t past_the_end = size;
  block[past_the_end] = 1;
  delete[] block;
}

// INT_MAX + 1: UBSan's signed integer overflow.
void signed_overflow() {
  volatile int big = INT_MAX;
  volatile int one = 1;
  volatile int sum = big + one;
  (void)sum;
}

// Two threads increment one plain int with nothing ordering them: TSan's data race. The threads
// need not overlap in time: TSan reports accesses not ordered by happens-before, not collisions.
int raced_counter = 0;

void* race_one_side(void*) {
  raced_counter = raced_counter + 1;
  return nullptr;
}

void race() {
  pthread_t a;
  pthread_t b;
  if (pthread_create(&a, nullptr, &race_one_side, nullptr) != 0 ||
      pthread_create(&b, nullptr, &race_one_side, nullptr) != 0) {
    perror("sanitizer control: pthread_create");
    _exit(2);
  }
  pthread_join(a, nullptr);
  pthread_join(b, nullptr);
}

}  // namespace

void run_sanitizer_control_from_env(const char* who) {
  const char* name = getenv(kSanitizerControlEnv);
  if (name == nullptr || *name == '\0') return;
  fprintf(stderr, "sanitizer control: %s runs %s\n", who, name);
  if (strcmp(name, "heap-overflow") == 0) {
    heap_overflow();
  } else if (strcmp(name, "signed-overflow") == 0) {
    signed_overflow();
  } else if (strcmp(name, "race") == 0) {
    race();
  } else {
    fprintf(stderr, "sanitizer control: unknown %s=%s (heap-overflow, signed-overflow, race)\n", kSanitizerControlEnv,
            name);
    _exit(2);
  }
  fprintf(stderr, "sanitizer control: %s ran %s, and went on\n", who, name);
}

}  // namespace ps
