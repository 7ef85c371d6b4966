#include "event_record.h"

#include <netinet/in.h>
#include <cstring>

namespace ps {

void set_peer(EventRecord& rec, const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(peer);
    rec.family = 4;
    rec.port = ntohs(in4.sin_port);
    memcpy(rec.addr, &in4.sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer);
    rec.family = 6;
    rec.port = ntohs(in6.sin6_port);
    memcpy(rec.addr, &in6.sin6_addr, 16);
  }
}

}  // namespace ps
