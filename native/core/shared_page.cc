#include "shared_page.h"

#include <new>
#include <sys/mman.h>

namespace ps {

SharedPage* map_shared_page() {
  void* mem = mmap(nullptr, sizeof(SharedPage), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  return new (mem) SharedPage();  // value-initialises every atomic to 0
}

void unmap_shared_page(SharedPage* page) {
  if (page == nullptr) return;
  page->~SharedPage();
  munmap(page, sizeof(SharedPage));
}

}  // namespace ps
