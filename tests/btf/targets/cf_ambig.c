/* Synthetic target BTF with two flavors of cf_pair that disagree on where
 * 'a' and 'b' live: relocating core_flavors.bpf.o against it is ambiguous.
 */
struct cf_pair {
	int a;
	int b;
};

struct cf_pair___v2 {
	int x;
	int a;
	int b;
};

struct cf_pair g_pair;
struct cf_pair___v2 g_pair_v2;
