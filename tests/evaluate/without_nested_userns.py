"""Run a command where no user namespace can be created (needs root), to test that the
sandbox fails closed when a layer is missing:

    python tests/evaluate/without_nested_userns.py [--as-user] -- COMMAND ...

The command runs in a new user namespace that maps every uid to itself (so it is still
root, or uid 65534 with --as-user) and whose ``user.max_user_namespaces`` is 0.
"""

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000


def main() -> int:
    split = sys.argv.index("--")
    as_user, command = "--as-user" in sys.argv[1:split], sys.argv[split + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if libc.unshare(CLONE_NEWUSER) != 0:
            os._exit(3)
        os.write(ready_w, b"1")
        os.read(go_r, 1)  # wait until the parent has written the id maps
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
        if as_user:  # setpriv, like the ordinary-user test, so the same interpreter starts
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + command
        os.execvp(command[0], command)
    os.read(ready_r, 1)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 0 4294967295")
    os.write(go_w, b"1")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
