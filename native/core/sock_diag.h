// The kernel's own view of a port's listening sockets, asked over netlink (NETLINK_SOCK_DIAG, the
// interface `ss` uses): for each listener its address, how many connections wait in its accept
// queue (handshake done, not yet accept()ed) and the backlog listen() gave it (after the kernel's
// somaxconn cap). /proc/net/tcp shows the queue but not the backlog, and after a benchmark it lists
// 100,000 TIME_WAIT sockets that a reader must wade through; the netlink dump is asked for
// listeners only. Used by the labs (backlog) and the tests, so neither needs iproute2.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "sys_error.h"

namespace ps {

struct TcpListener {
  sockaddr_storage address{};  // the local address and port
  uint32_t queued = 0;         // connections in the accept queue (ss: Recv-Q of a LISTEN socket)
  uint32_t backlog = 0;        // the accept queue's limit (ss: Send-Q of a LISTEN socket)
  uint64_t inode = 0;          // the socket's inode, as /proc/<pid>/fd shows it (socket:[inode])
};

// Every TCP listener (IPv4 and IPv6) of this network namespace on `port`, or all of them with
// port 0. Appends to `out`.
SysError tcp_listeners(uint16_t port, std::vector<TcpListener>& out);

}  // namespace ps
