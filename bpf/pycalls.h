/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Map layouts shared by pycalls.bpf.c and plugins/pycalls.py (which decodes them with struct). */
#ifndef PYCALLS_H
#define PYCALLS_H

#define PY_FILE_LEN 128
#define PY_FUNC_LEN 64
#define PY_MAX_SLOTS 32
#define PY_STATS_MAX_ENTRIES 10240
#define PY_FRAMES_MAX_ENTRIES 65536

/* One Python function: its code object's file, name and first line. */
struct py_key {
	char file[PY_FILE_LEN];
	char func[PY_FUNC_LEN];
	__u32 line;
	__u32 pad;
};

/* Calls that returned while traced; latency in ns as bcc-style log2 slots. */
struct py_stat {
	__u64 count;
	__u64 total_ns;
	__u64 slots[PY_MAX_SLOTS];
};

/* A call in progress: per thread and depth. */
struct py_frame_key {
	__u32 tid;
	__u32 depth;
};

struct py_frame {
	__u64 ts;
	__u64 func;
	__u32 line;
	__u32 pad;
};

/* counters[] indexes (per CPU) */
#define PY_CNT_ENTRIES 0     /* function__entry hits */
#define PY_CNT_RETURNS 1     /* function__return hits */
#define PY_CNT_UNMATCHED 2   /* returns with no entry seen (entered before attach) */
#define PY_CNT_DROPPED 3     /* calls not counted: a table was full */
#define PY_CNT_GC_UNMATCHED 4
#define PY_CNT_MAX 5

#endif
