/* Synthetic target BTF for core_flavors.bpf.o: same type names, other layouts.
 *
 * Tests compile it with `clang -g -target bpf -c cf_target.c -o X.o` and use
 * the .BTF section of X.o as the "kernel" BTF.
 */
typedef unsigned int __u32;
typedef unsigned long long __u64;

struct cf_pair {		/* fields swapped */
	int b;
	int a;
};

struct cf_sized {
	__u64 pad;
	__u32 narrow;		/* 2 -> 4 bytes, unsigned: load size rewritten */
	long sgn;		/* 4 -> 8 bytes, signed: load poisoned */
	__u64 wide;
	void *ptr;
	unsigned short tag[4];	/* element 1 -> 2 bytes */
};

struct cf_node {
	int count;
	struct cf_node *next;
	struct cf_pair pairs[2];	/* pairs[3] is out of range */
	/* no 'tail': field missing */
};

struct cf_bits {
	int pad;
	unsigned int lo: 3;
	unsigned int hi: 7;
	int neg: 4;
};

enum cf_color {			/* other values, no CF_BLUE */
	CF_GREEN = 20,
	CF_RED = 10,
};

enum cf_mode {
	CF_MODE_A = -2,
};

typedef int cf_handle_t;

struct cf_pair g_pair;
struct cf_sized g_sized;
struct cf_node g_node;
struct cf_bits g_bits;
enum cf_color g_color;
enum cf_mode g_mode;
cf_handle_t g_handle;
