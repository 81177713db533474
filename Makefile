# coreframe build helpers. Run from the repository root (make -C <root> works too).
#
# BPF objects are committed, so they must be byte-for-byte reproducible: sources
# are compiled with paths relative to the root and the root itself is mapped to
# "." in every path the compiler records (BTF line_info keeps file names).

CLANG ?= clang
LLVM_STRIP ?= llvm-strip
PYTHON ?= .venv/bin/python
RUFF ?= .venv/bin/ruff
BPFTOOL ?= bpftool
COREFRAME ?= .venv/bin/coreframe

# The BPF compile flags have one definition, coreframe/build.py (also behind
# `coreframe cflags` and the tests' inline compiles): target, arch, -mcpu, and the
# system include directories clang -target bpf does not search by itself (Debian's
# multiarch /usr/include/<triplet>, where asm/ lives). Asked once, when first used.
BPF_SYS_CFLAGS = $(eval BPF_SYS_CFLAGS := $(shell $(PYTHON) -m coreframe.build --clang $(CLANG)))$(BPF_SYS_CFLAGS)
BPF_CFLAGS = $(or $(BPF_SYS_CFLAGS),$(error cannot get the BPF flags from `$(PYTHON) -m coreframe.build`: run ./setup.sh --dev first)) \
	-fdebug-prefix-map=$(CURDIR)=. -ffile-prefix-map=$(CURDIR)=.

BPF_SRCS := $(sort $(wildcard bpf/*.bpf.c))
BPF_HDRS := $(wildcard bpf/*.h)
BPF_OBJS := $(patsubst bpf/%.bpf.c,plugins/objects/%.bpf.o,$(BPF_SRCS))
TEST_BPF_SRCS := $(sort $(wildcard tests/objects/*.bpf.c))
TEST_BPF_HDRS := $(wildcard tests/objects/*.h)
TEST_BPF_OBJS := $(TEST_BPF_SRCS:.bpf.c=.bpf.o)
# Every example package's BPF source sits beside its tool module (examples/PKG/MOD/X.bpf.c)
# and builds into MOD/objects/X.bpf.o, here against bpf/vmlinux.h. (An example's own
# Makefile generates its vmlinux.h at the package root, never beside the source, where
# the quoted #include would find it first.)
EXAMPLE_SRCS := $(sort $(wildcard examples/*/*/*.bpf.c))
example_obj = $(dir $(1))objects/$(notdir $(1:.bpf.c=.bpf.o))
EXAMPLE_OBJS := $(foreach s,$(EXAMPLE_SRCS),$(call example_obj,$(s)))
ALL_BPF_OBJS := $(BPF_OBJS) $(TEST_BPF_OBJS) $(EXAMPLE_OBJS)

# compile, strip DWARF (BTF stays), then move into place so a failed step never
# leaves a half-built object behind
define build_bpf
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -Ibpf -I$(<D) -c $< -o $@.tmp
	$(LLVM_STRIP) -g $@.tmp
	mv -f $@.tmp $@
endef

.PHONY: all objects check-objects test test-matrix lint bench vmlinux-h test-kernels mutants

all: objects

objects: $(ALL_BPF_OBJS)

plugins/objects/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | plugins/objects
	$(build_bpf)

tests/objects/%.bpf.o: tests/objects/%.bpf.c $(BPF_HDRS) $(TEST_BPF_HDRS)
	$(build_bpf)

define example_rule
$(call example_obj,$(1)): $(1) $$(BPF_HDRS)
	$$(build_bpf)
endef
$(foreach s,$(EXAMPLE_SRCS),$(eval $(call example_rule,$(s))))

plugins/objects:
	mkdir -p $@

# CI: the committed objects must be exactly what the committed sources build to.
check-objects:
	$(MAKE) --no-print-directory -B objects
	git diff --exit-code --stat -- $(ALL_BPF_OBJS)
	@untracked="$$(git ls-files --others --exclude-standard -- $(ALL_BPF_OBJS))"; \
	if [ -n "$$untracked" ]; then \
		echo "check-objects: not committed: $$untracked" >&2; exit 1; \
	fi
	@echo "check-objects: $(words $(ALL_BPF_OBJS)) objects match the committed bytes"

test:
	$(PYTHON) -m pytest -q

# The suite under each supported Python found here (noxfile.py: one venv each under .nox/,
# interpreters from pyenv or pythonX.Y on PATH; a missing one is skipped and named), then
# passed/skipped/failed per version. PY picks versions: make test-matrix PY="3.9 3.13";
# PYTEST_ARGS goes to pytest (a subset: PYTEST_ARGS="tests/cli").
NOX ?= .venv/bin/nox
PY ?= 3.9 3.10 3.11 3.12 3.13
test-matrix:
	rm -f .nox/matrix/*.json
	$(NOX) --no-color -s $(foreach v,$(PY),tests-$(v)) summary $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

lint:
	$(RUFF) check .

# every bench/*_bench.py, whoever added it; a failing bench does not stop the rest
bench:
	@failed=""; ran=0; \
	for b in $(sort $(wildcard bench/*_bench.py)); do \
		echo "=== $$b"; ran=$$((ran + 1)); \
		$(PYTHON) $$b || failed="$$failed $$b"; \
	done; \
	echo "=== bench summary: $$ran run, failed:$${failed:- none}"; \
	[ -z "$$failed" ]

# Mutation testing (pip install -e '.[mutation]'): a fixed sample of mutants per module
# (modules, their tests and score floors: mutation/mutants.py), each module against its
# own tests; fails when a score drops below its floor. MUTANTS_SAMPLE / MUTANTS_BUDGET
# (seconds per module) size the run; MUTANTS_ARGS passes more (e.g. --only ringbuf).
mutants:
	nice -n 10 $(PYTHON) mutation/mutants.py $(MUTANTS_ARGS)

# Regenerate the committed vmlinux.h from this machine's kernel (deliberate, rare:
# objects must not depend on the build machine's kernel).
vmlinux-h:
	$(COREFRAME) btf dump /sys/kernel/btf/vmlinux --format c > bpf/vmlinux.h.tmp
	mv -f bpf/vmlinux.h.tmp bpf/vmlinux.h
-include kernels/Makefile.inc
