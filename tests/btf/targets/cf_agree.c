/* Synthetic target BTF with two flavors of cf_pair that agree on the fields
 * the object uses: multiple candidates, one unambiguous answer.
 */
struct cf_pair {
	int a;
	int b;
};

struct cf_pair___v2 {
	int a;
	int b;
	long extra;
};

struct cf_pair g_pair;
struct cf_pair___v2 g_pair_v2;
