#include "shared_page.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cerrno>
#include <new>

namespace ps {

SharedPage* map_shared_page(int& fd) {
  fd = memfd_create("posix-servers-page", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  if (ftruncate(fd, sizeof(SharedPage)) != 0) {
    int err = errno;
    close(fd);
    fd = -1;
    errno = err;
    return nullptr;
  }
  SharedPage* page = map_shared_page_fd(fd);
  if (page == nullptr) {
    int err = errno;
    close(fd);
    fd = -1;
    errno = err;
    return nullptr;
  }
  return new (page) SharedPage();  // value-initialises every atomic to 0
}

SharedPage* map_shared_page_fd(int fd) {
  void* mem = mmap(nullptr, sizeof(SharedPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return nullptr;
  return static_cast<SharedPage*>(mem);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older headers lack it
#endif

void prefault_shared_page(SharedPage* page) {
  if (page == nullptr) return;
  // The mapping starts page-aligned (mmap) and the length need not be a multiple of a page.
  (void)madvise(page, sizeof(SharedPage), MADV_POPULATE_WRITE);
}

void unmap_shared_page(SharedPage* page) {
  if (page == nullptr) return;
  page->~SharedPage();
  munmap(page, sizeof(SharedPage));
}

}  // namespace ps
