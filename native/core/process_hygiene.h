// What a new process must do before it may act as a server master (Node's copy before execve,
// then the master program), and what a master's child must do before serving. Everything here is
// async-signal-safe (signal-safety(7)): some of it runs between fork() and execve() in a copy of a
// multi-threaded process (Node), where another thread may have held the malloc lock at the moment
// of the fork, and in the master's children.
#pragma once

#include <sys/types.h>
#include <csignal>

namespace ps {

// Blocks every signal in the calling thread, returning the previous mask in `old`. Used around
// fork() (as libuv and node-pty do) so that no handler of the parent runs in the new process
// before it has installed its own.
void block_all_signals(sigset_t* old);
void restore_signal_mask(const sigset_t* old);
void unblock_all_signals();

// fork() without the pthread_atfork handlers: glibc's _Fork() (POSIX.1-2024), which is
// async-signal-safe where fork() is not. Node's copy has handlers registered by libuv (it
// re-creates its signal pipe), OpenSSL…: none of them belongs in the process about to exec the master.
// Falls back to fork() on a C library without _Fork. strace shows either as clone().
pid_t fork_without_atfork_handlers();

// Default dispositions for the classic signals 1–31. The real-time ones belong to glibc.
void reset_signal_dispositions();

// Closes every descriptor except those in keep[0..n): Node's epoll fd, its IPC channels, the
// sockets of other servers… A forked master must not hold them (it would keep them open).
void close_all_fds_except(const int* keep, int n);

// Points 0, 1, 2 at /dev/null, so the master never holds Node's stdout pipe open after Node exits.
void redirect_stdio_to_devnull();

// prctl(PR_SET_PDEATHSIG, sig), then the re-check: if the parent died before the prctl, the
// signal will never come, and getppid() no longer returns `parent`. Returns false in that case.
// SIGKILL for the master's children and pool members; the master itself asks for SIGHUP, which
// it handles: a process killed by SIGKILL cannot take its session with it (server_session.h).
bool die_with_parent(pid_t parent, int sig = SIGKILL);

}  // namespace ps
