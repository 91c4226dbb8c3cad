"""nodelay.py PID HOST:PORT: connects to HOST:PORT, finds the socket the
process PID accepted for that connection (pidfd_getfd: needs root or
ptrace rights over PID) and prints its TCP_NODELAY (0 or 1)."""
import ctypes
import os
import socket
import sys
import time

SYS_PIDFD_GETFD = 438  # x86_64 and every architecture of the unified table

pid = int(sys.argv[1])
host, port = sys.argv[2].rsplit(":", 1)
client = socket.create_connection((host, int(port)))
me = client.getsockname()
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(pid)
for _ in range(50):  # the accept runs on the broker's own thread
    found = None
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                continue
        except OSError:
            continue
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
        if fd < 0:
            sys.exit(f"pidfd_getfd on {pid}: "
                     f"{os.strerror(ctypes.get_errno())} (it needs root, or "
                     f"kernel.yama.ptrace_scope 0 and the same user)")
        s = socket.socket(fileno=fd)
        try:
            if s.type == socket.SOCK_STREAM and s.getpeername() == me:
                found = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        except OSError:
            pass  # a listening or unconnected socket
        finally:
            s.detach()
            os.close(fd)
    if found is not None:
        print(1 if found else 0)
        sys.exit(0)
    time.sleep(0.1)
sys.exit("no socket of PID is connected to this client")
