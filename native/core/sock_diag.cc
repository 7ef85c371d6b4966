#include "sock_diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>

#include <cstring>

#include "eintr.h"
#include "unique_fd.h"

namespace ps {
namespace {

// The one request: a dump of the family's TCP sockets in state LISTEN.
struct DumpRequest {
  nlmsghdr header;
  inet_diag_req_v2 body;
};

SysError dump_family(int fd, uint8_t family, uint16_t port, std::vector<TcpListener>& out) {
  DumpRequest req{};
  req.header.nlmsg_len = sizeof(req);
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.body.sdiag_family = family;
  req.body.sdiag_protocol = IPPROTO_TCP;
  req.body.idiag_states = 1u << TCP_LISTEN;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (retry_eintr([&] {
        return ::sendto(fd, &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
      }) < 0) {
    return {errno, "sendto"};
  }
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = retry_eintr([&] { return ::recv(fd, buf, sizeof(buf), 0); });
    if (n < 0) return {errno, "recv"};
    if (n == 0) return {};
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return {e->error < 0 ? -e->error : EPROTO, "SOCK_DIAG_BY_FAMILY"};
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      auto* msg = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      uint16_t local_port = ntohs(msg->id.idiag_sport);
      if (port != 0 && local_port != port) continue;
      TcpListener l;
      if (msg->idiag_family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&l.address);
        sin->sin_family = AF_INET;
        sin->sin_port = msg->id.idiag_sport;
        std::memcpy(&sin->sin_addr, msg->id.idiag_src, sizeof(sin->sin_addr));
      } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&l.address);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = msg->id.idiag_sport;
        std::memcpy(&sin6->sin6_addr, msg->id.idiag_src, sizeof(sin6->sin6_addr));
        sin6->sin6_scope_id = msg->id.idiag_if;
      }
      // For a listener the kernel reports the accept queue's length and limit in the two queue
      // fields (inet_diag_get_info: sk_ack_backlog, sk_max_ack_backlog).
      l.queued = msg->idiag_rqueue;
      l.backlog = msg->idiag_wqueue;
      l.inode = msg->idiag_inode;
      out.push_back(l);
    }
  }
}

}  // namespace

SysError tcp_listeners(uint16_t port, std::vector<TcpListener>& out) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.valid()) return {errno, "socket"};
  for (uint8_t family : {AF_INET, AF_INET6}) {
    if (SysError e = dump_family(fd.get(), family, port, out)) return e;
  }
  return {};
}

}  // namespace ps
