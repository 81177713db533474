/* Synthetic target BTF where each cf_pair flavor has only one of the fields.
 *
 * libbpf prunes a local type's candidates to those that matched earlier
 * relocations, so after 'a' matched only cf_pair, 'b' finds no candidate and
 * is poisoned: results depend on relocation order, which coreframe pins.
 */
struct cf_pair {
	int a;
};

struct cf_pair___v2 {
	int b;
};

struct cf_pair g_pair;
struct cf_pair___v2 g_pair_v2;
