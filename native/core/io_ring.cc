#include "io_ring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cassert>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>

namespace ps {

#if PS_HAVE_IO_URING

namespace {

// The kernel reads the SQ tail and writes the CQ tail while this thread runs (with DEFER_TASKRUN
// only inside io_uring_enter, but the protocol is the same): indices are published with release
// and read with acquire, as <linux/io_uring.h>'s comment on memory ordering asks.
unsigned load_acquire(const unsigned* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(unsigned* p, unsigned v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

int sys_io_uring_setup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}

int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
                       size_t argsz) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz));
}

int sys_io_uring_register(int fd, unsigned opcode, const void* arg, unsigned nr_args) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, opcode, arg, nr_args));
}

// The provided-buffer ring is an array of io_uring_buf whose first entry's `resv` is the ring's
// tail (<linux/io_uring.h>'s io_uring_buf_ring overlays the two). That struct is not used here: in
// C++, the headers of some kernels (6.1's <linux/stddef.h>) declare its `bufs` after an empty
// struct, which is one byte in C++, so `bufs` lands 8 bytes late.
static_assert(sizeof(io_uring_buf) == 16 && offsetof(io_uring_buf, resv) == 14, "the kernel's layout");
io_uring_buf* buffer_entries(void* ring) { return static_cast<io_uring_buf*>(ring); }
uint16_t* buffer_tail(void* ring) { return &buffer_entries(ring)[0].resv; }

void* map(size_t len, int fd, off_t offset) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

SysError IoRing::open(unsigned sq_entries, unsigned cq_entries, bool deferred) {
  assert(!is_open());
  // SUBMIT_ALL (5.18): a request that fails at submission (a bad descriptor) does not stop the
  // ones after it; it gets its own CQE. CQSIZE: room for the completions of every connection.
  // The newest set first; a kernel that does not know a flag answers EINVAL, and gets the next. The
  // last (CQSIZE: 5.5) is taken by kernels too old for the uring model, so that it is
  // provide_buffers() that refuses them, with the EINVAL of the call they lack.
  const unsigned common = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  const unsigned tries[3] = {
      common | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
      common | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_CQSIZE,
  };
  int fd = -1;
  io_uring_params params{};
  for (int i = deferred ? 0 : 1; i < 3; ++i) {
    params = io_uring_params{};
    params.flags = tries[i];
    params.cq_entries = cq_entries;
    fd = sys_io_uring_setup(sq_entries, &params);
    if (fd >= 0) {
      mode_ = i == 0 ? RingMode::Deferred : RingMode::Cooperative;
      setup_flags_ = tries[i];
      break;
    }
    if (errno != EINVAL) break;  // EINVAL: flags this kernel does not know; try the older set
  }
  if (fd < 0) return {errno, "io_uring_setup"};
  fd_.reset(fd);
  // EXT_ARG (5.11): io_uring_enter takes a timeout; SINGLE_MMAP (5.4): one mapping for both rings.
  // Every kernel that took the flags above has both; check rather than assume.
  if ((params.features & IORING_FEAT_EXT_ARG) == 0 || (params.features & IORING_FEAT_SINGLE_MMAP) == 0) {
    close();
    return {EINVAL, "io_uring_setup"};
  }
  const size_t sq_len = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  const size_t cq_len = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  ring_len_ = sq_len > cq_len ? sq_len : cq_len;
  ring_ = map(ring_len_, fd, IORING_OFF_SQ_RING);
  if (ring_ == nullptr) {
    int err = errno;
    close();
    return {err, "mmap"};
  }
  sqes_len_ = params.sq_entries * sizeof(io_uring_sqe);
  sqes_map_ = map(sqes_len_, fd, IORING_OFF_SQES);
  if (sqes_map_ == nullptr) {
    int err = errno;
    close();
    return {err, "mmap"};
  }
  char* base = static_cast<char*>(ring_);
  sq_head_ = reinterpret_cast<unsigned*>(base + params.sq_off.head);
  sq_tail_ = reinterpret_cast<unsigned*>(base + params.sq_off.tail);
  sq_mask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
  sq_entries_ = params.sq_entries;
  sqes_ = static_cast<io_uring_sqe*>(sqes_map_);
  // The SQ holds indices into the SQE array; keep them the identity, as liburing does, so that the
  // i-th SQE handed out is the i-th submitted.
  unsigned* array = reinterpret_cast<unsigned*>(base + params.sq_off.array);
  for (unsigned i = 0; i < sq_entries_; ++i) array[i] = i;
  sq_local_tail_ = *sq_tail_;
  cq_head_ = reinterpret_cast<unsigned*>(base + params.cq_off.head);
  cq_tail_ = reinterpret_cast<unsigned*>(base + params.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
  cqes_ = reinterpret_cast<io_uring_cqe*>(base + params.cq_off.cqes);
  return {};
}

void IoRing::close() {
  if (buf_data_ != nullptr) munmap(buf_data_, buf_data_len_);
  if (buf_ring_ != nullptr) munmap(buf_ring_, buf_ring_len_);
  if (sqes_map_ != nullptr) munmap(sqes_map_, sqes_len_);
  if (ring_ != nullptr) munmap(ring_, ring_len_);
  buf_data_ = nullptr;
  buf_ring_ = nullptr;
  sqes_map_ = nullptr;
  ring_ = nullptr;
  unsubmitted_ = 0;
  fd_.reset();
}

SysError IoRing::enable() {
  if (mode_ != RingMode::Deferred) return {};
  if (sys_io_uring_register(fd_.get(), IORING_REGISTER_ENABLE_RINGS, nullptr, 0) != 0) {
    return {errno, "io_uring_register"};
  }
  return {};
}

SysError IoRing::provide_buffers(unsigned count, unsigned size, uint16_t group) {
  assert(count > 0 && (count & (count - 1)) == 0 && count <= 32768);
  assert(buf_ring_ == nullptr);
  // The ring of buffer descriptors must be page-aligned memory the kernel pins: an anonymous mmap.
  buf_ring_len_ = count * sizeof(io_uring_buf);
  void* ring = mmap(nullptr, buf_ring_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) return {errno, "mmap"};
  buf_ring_ = ring;
  // The buffers themselves: reserved now, backed by pages only as receives first touch them.
  buf_data_len_ = static_cast<size_t>(count) * size;
  void* data = mmap(nullptr, buf_data_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return {errno, "mmap"};
  buf_data_ = static_cast<char*>(data);
  buf_size_ = size;
  buf_mask_ = count - 1;
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (sys_io_uring_register(fd_.get(), IORING_REGISTER_PBUF_RING, &reg, 1) != 0) return {errno, "io_uring_register"};
  buf_tail_ = 0;
  for (unsigned bid = 0; bid < count; ++bid) recycle(static_cast<uint16_t>(bid));
  publish_buffers();
  return {};
}

void IoRing::recycle(uint16_t bid) {
  io_uring_buf& b = buffer_entries(buf_ring_)[buf_tail_ & buf_mask_];
  b.addr = reinterpret_cast<uint64_t>(buffer(bid));
  b.len = buf_size_;
  b.bid = bid;
  ++buf_tail_;
}

void IoRing::publish_buffers() { __atomic_store_n(buffer_tail(buf_ring_), buf_tail_, __ATOMIC_RELEASE); }

io_uring_sqe* IoRing::next_sqe() {
  // The kernel consumed everything up to sq_head_ (it copies SQEs at submission).
  if (sq_local_tail_ - load_acquire(sq_head_) >= sq_entries_) return nullptr;
  io_uring_sqe* sqe = &sqes_[sq_local_tail_ & sq_mask_];
  ++sq_local_tail_;
  ++unsubmitted_;
  memset(sqe, 0, sizeof *sqe);
  return sqe;
}

int IoRing::enter(unsigned min_complete, bool wait, int timeout_ms) {
  store_release(sq_tail_, sq_local_tail_);
  unsigned flags = 0;
  io_uring_getevents_arg arg{};
  __kernel_timespec ts{};
  const void* argp = nullptr;
  size_t argsz = 0;
  if (wait) {
    flags |= IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    arg.sigmask = 0;
    arg.sigmask_sz = _NSIG / 8;
    if (timeout_ms >= 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
    }
    argp = &arg;
    argsz = sizeof arg;
  }
  int rc = sys_io_uring_enter(fd_.get(), unsubmitted_, min_complete, flags, argp, argsz);
  if (rc > 0) {
    assert(static_cast<unsigned>(rc) <= unsubmitted_);
    unsubmitted_ -= static_cast<unsigned>(rc);
  }
  return rc;
}

unsigned IoRing::ready() const { return load_acquire(cq_tail_) - *cq_head_; }

const io_uring_cqe* IoRing::completion(unsigned i) const { return &cqes_[(*cq_head_ + i) & cq_mask_]; }

void IoRing::consume(unsigned n) { store_release(cq_head_, *cq_head_ + n); }

#else  // !PS_HAVE_IO_URING: built without the headers; the uring model refuses to start.

SysError IoRing::open(unsigned, unsigned, bool) { return {ENOSYS, "io_uring_setup"}; }
void IoRing::close() { fd_.reset(); }
SysError IoRing::enable() { return {ENOSYS, "io_uring_register"}; }
SysError IoRing::provide_buffers(unsigned, unsigned, uint16_t) { return {ENOSYS, "io_uring_register"}; }
void IoRing::recycle(uint16_t) {}
void IoRing::publish_buffers() {}
io_uring_sqe* IoRing::next_sqe() { return nullptr; }
int IoRing::enter(unsigned, bool, int) {
  errno = ENOSYS;
  return -1;
}
unsigned IoRing::ready() const { return 0; }
const io_uring_cqe* IoRing::completion(unsigned) const { return nullptr; }
void IoRing::consume(unsigned) {}

#endif

}  // namespace ps
