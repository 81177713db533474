"""The syscall layer: ctypes ``bpf()``/``perf_event_open()``/``ioctl``, ``bpf_attr`` layouts,
owned fds and errno translation. Nothing here imports the rest of coreframe except
``coreframe.errors``.
"""
