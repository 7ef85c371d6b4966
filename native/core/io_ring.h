// io_uring without a library: the two rings a process shares with the kernel, set up with the raw
// syscalls io_uring_setup, io_uring_enter and io_uring_register and the kernel's own
// <linux/io_uring.h> (the uring model, uring_server.cc).
//
//   submission queue (SQ)   the process writes requests (SQEs: "accept on lfd", "send these bytes
//                           on cfd") and moves the tail; io_uring_enter(to_submit) hands them over
//   completion queue (CQ)   the kernel writes one completion (CQE: the request's result, its
//                           user_data) per request, several for a multishot one, and moves the
//                           tail; the process reads them and moves the head — no syscall
//   provided buffers        a third ring (IORING_REGISTER_PBUF_RING) of receive buffers the
//                           process lends the kernel: a receive takes one when data arrives and
//                           says which in its CQE; the process gives it back by moving the tail
//
// Why not liburing: the addon is prebuilt and cross-compiled (linux-arm64 with Debian's
// g++-aarch64-linux-gnu), and a syscall needs nothing of the target but its kernel headers, which
// every toolchain brings; liburing would be one more library to have for every target. The plumbing
// is this file: mmap the rings, fill SQEs, read CQEs, with acquire/release on the indices the
// kernel shares. Every call the kernel sees is one of the three syscalls, so `strace` and the trace
// show exactly what the ring costs.
//
// When <linux/io_uring.h> is older than Linux 6.1's (PS_HAVE_IO_URING is 0), the addon is built
// without it: IoRing::open() fails with ENOSYS, and the uring model refuses to start
// (lib/server/uring.ts says what to install).
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <cstdint>

#include "sys_error.h"
#include "unique_fd.h"

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#endif
#endif
// DEFER_TASKRUN (6.1) is the newest thing this file names: headers that have it have all the rest
// (multishot accept and receive, provided-buffer rings, cancel by descriptor).
#if defined(IORING_SETUP_DEFER_TASKRUN)
#define PS_HAVE_IO_URING 1
#else
#define PS_HAVE_IO_URING 0
struct io_uring_sqe;
struct io_uring_cqe;
#endif

namespace ps {

// Whether this build has io_uring at all (the headers were recent enough). constants.URING_BUILT.
constexpr bool kIoRingBuilt = PS_HAVE_IO_URING != 0;

// How the ring was set up, after io_uring_setup told which flags this kernel takes.
enum class RingMode {
  // SINGLE_ISSUER | DEFER_TASKRUN (6.1): completions are produced only inside this thread's
  // io_uring_enter(GETEVENTS), never by interrupting it; multishot receive is there (6.0).
  Deferred,
  // COOP_TASKRUN (5.19) or older: completions run when the thread enters the kernel anyway; no
  // multishot receive (it came in 6.0): receives are single-shot.
  Cooperative,
};

class IoRing {
 public:
  IoRing() = default;
  ~IoRing() { close(); }
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  // io_uring_setup with room for `sq_entries` requests and `cq_entries` completions (powers of two
  // are taken as they are, others rounded up by the kernel), then the mmaps. `deferred`: ask for
  // RingMode::Deferred first and fall back to Cooperative (or older) when the kernel answers EINVAL; a
  // Deferred ring is created disabled (R_DISABLED) and belongs to the thread that calls enable().
  // Fails with the syscall's errno: ENOSYS (no io_uring), EPERM (io_uring_disabled, a seccomp
  // filter), EINVAL (flags this kernel does not know), ENOMEM, EMFILE.
  SysError open(unsigned sq_entries, unsigned cq_entries, bool deferred);
  // Unmaps everything and closes the ring (the kernel cancels what is still in flight).
  void close();
  bool is_open() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  RingMode mode() const { return mode_; }
  // The IORING_SETUP_* flags the kernel took.
  unsigned setup_flags() const { return setup_flags_; }

  // Deferred rings: makes the calling thread the ring's one submitter (IORING_REGISTER_ENABLE_RINGS).
  SysError enable();

  // The provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19 — the release that brought
  // multishot accept: a kernel that answers EINVAL has neither): `count` buffers (a power of two)
  // of `size` bytes each, group `group`, every one of them lent to the kernel.
  SysError provide_buffers(unsigned count, unsigned size, uint16_t group);
  unsigned buffer_size() const { return buf_size_; }
  char* buffer(uint16_t bid) const { return buf_data_ + static_cast<size_t>(bid) * buf_size_; }
  // Gives buffer `bid` back to the kernel (visible to it after publish_buffers()).
  void recycle(uint16_t bid);
  void publish_buffers();

  // The next free SQE, zeroed, or nullptr when every one is written and not yet submitted
  // (submit them first). Counted in to_submit().
  io_uring_sqe* next_sqe();
  unsigned to_submit() const { return unsubmitted_; }

  // io_uring_enter: submits what next_sqe() handed out, and with `wait` collects completions
  // (GETEVENTS: on a Deferred ring also what the kernel has queued for this thread), waiting
  // until at least `min_complete` are there or `timeout_ms` has passed (-1: no limit). Returns
  // how many requests the kernel took, or -1 with errno (ETIME when the time passed with nothing
  // to take or report; EINTR is the caller's to retry, and submits nothing twice).
  int enter(unsigned min_complete, bool wait, int timeout_ms);

  // Completions: how many are ready, the i-th of them (0 = the oldest), and done with n of them.
  unsigned ready() const;
  const io_uring_cqe* completion(unsigned i) const;
  void consume(unsigned n);

 private:
  UniqueFd fd_;
  RingMode mode_ = RingMode::Cooperative;
  unsigned setup_flags_ = 0;
  // The mappings (ring_ holds the SQ and CQ indices and the CQEs: one mmap since 5.4).
  void* ring_ = nullptr;
  size_t ring_len_ = 0;
  void* sqes_map_ = nullptr;
  size_t sqes_len_ = 0;
  // SQ
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned sq_entries_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  unsigned sq_local_tail_ = 0;  // SQEs handed out; sq_tail_ is published at enter()
  unsigned unsubmitted_ = 0;
  // CQ
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  // Provided buffers: the ring of descriptors (shared with the kernel) and the memory they lend.
  void* buf_ring_ = nullptr;
  size_t buf_ring_len_ = 0;
  char* buf_data_ = nullptr;
  size_t buf_data_len_ = 0;
  unsigned buf_size_ = 0;
  unsigned buf_mask_ = 0;
  uint16_t buf_tail_ = 0;  // published by publish_buffers()
};

}  // namespace ps
