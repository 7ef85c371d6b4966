#include "listen_socket.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <cerrno>
#include <cstring>

namespace ps {

socklen_t make_sockaddr(const std::string& host, int port, sockaddr_storage& out) {
  out = sockaddr_storage{};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    return sizeof(sockaddr_in);
  }
  // A scoped IPv6 address, `fe80::1%eth0`: the zone is an interface name, turned into its index
  // as libuv's uv_ip6_addr() does for Node (an unknown name gives 0, no scope; bind() then
  // decides: EINVAL for a link-local address, which needs one).
  const size_t percent = host.find('%');
  const std::string address = host.substr(0, percent);
  if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (percent != std::string::npos) in6->sin6_scope_id = if_nametoindex(host.c_str() + percent + 1);
    return sizeof(sockaddr_in6);
  }
  return 0;
}

SysError open_listen_socket(const ListenOptions& options, UniqueFd& lfd, sockaddr_storage& bound,
                            const EventPipe& events) {
  sockaddr_storage addr{};
  socklen_t addr_len = make_sockaddr(options.host, options.port, addr);
  if (addr_len == 0) return {EINVAL, "inet_pton"};

  // SOCK_CLOEXEC: a process that Node spawns (child_process) must never inherit our listener.
  UniqueFd fd(socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  events.trace(TraceCall::Socket, -1, fd.get(), fd.valid() ? 0 : errno);
  if (!fd.valid()) return {errno, "socket"};

  // As Node's net.Server does: a restarted server may bind while old connections sit in
  // TIME_WAIT. A port that another socket is *listening* on still fails with EADDRINUSE.
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return {errno, "setsockopt"};
  if (options.reuseport && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return {errno, "setsockopt"};
  }

  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    int err = errno;
    events.trace(TraceCall::Bind, fd.get(), -1, err, 0, -1, &addr);
    return {err, "bind"};
  }
  if (listen(fd.get(), options.backlog) != 0) return {errno, "listen"};

  socklen_t bound_len = sizeof bound;
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) return {errno, "getsockname"};
  // Bind is recorded after getsockname, so a port 0 shows the port the kernel chose.
  events.trace(TraceCall::Bind, fd.get(), 0, 0, 0, -1, &bound);
  events.trace(TraceCall::Listen, fd.get(), options.backlog);

  lfd = std::move(fd);
  return {};
}

}  // namespace ps
