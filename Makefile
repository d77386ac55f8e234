# cnnlab build. `make` builds the library (static and shared) and the cnnlab binary.
#   make test    installs missing packages, builds, runs the tests normally and under ASan+UBSan
#   make run     installs missing packages, builds, trains the study's Model_1 on Fashion-MNIST
#   make bench   cnnlab vs PyTorch vs Keras, side by side (see docs/benchmarks.md)
#   make san     the sanitizer build only (in build-san/)
#   make fuzz    the libFuzzer harnesses of fuzz/ (clang, ASan+UBSan, in build-fuzz/), each FUZZ_SECONDS long
#   make install PREFIX=/usr/local [DESTDIR=...]   the binary, both libraries, the header, cnnlab.pc, the man
#                page; `make uninstall` (same PREFIX and DESTDIR) removes exactly those files
CC      ?= cc
NPROC   := $(shell nproc 2>/dev/null || echo 2)
# OpenBLAS built on OpenMP shares cnnlab's thread pool: BLAS calls and OpenMP loops take turns on the same
# threads instead of two pools spinning against each other (3-5x slower epochs with the pthread build).
BLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD   ?= build
# One binary for every x86-64 machine: the library is compiled for the x86-64-v2 baseline (SSE4.2, POPCNT:
# every x86-64 CPU since about 2009) and carries kernel files for wider vectors, each compiled with its own
# flags (below) and chosen at run time from what the CPU has (src/kernels/isa.h). ARCH=-march=native makes
# the baseline code faster on the build machine only.
ARCH    ?= -march=x86-64-v2
OPT     ?= -O3
# -ffp-contract=off: the plain C loops in these files (kernels/loops.inc) must not become fused multiply-adds
# where the compiler sees fit (clang's default), so that they give the same bits on every path.
ISA_AVX2   := -mavx2 -mfma -ffp-contract=off
ISA_AVX512 := -mavx2 -mfma -mavx512f -mavx512bw -mavx512dq -mavx512vl -ffp-contract=off
SAN     ?=
# -fvisibility=hidden: the shared library exports only what include/cnnlab.h marks CNN_API (the test programs
# link the static library, which keeps every symbol; tests/check_exports.sh checks the export list).
CFLAGS  += -std=c11 -D_GNU_SOURCE -fno-math-errno -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -fPIC -fopenmp \
           -fvisibility=hidden \
           -Iinclude -Isrc -I$(BLAS_DIR:/usr/lib/%=/usr/include/%) $(ARCH) $(OPT) $(SAN)
LDFLAGS += -fopenmp $(SAN) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR)
# libhdf5 (Keras weight files): Debian's serial build, through pkg-config, else its usual paths.
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS   := $(shell pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
CFLAGS  += $(HDF5_CFLAGS)
LDLIBS  += -lopenblas $(HDF5_LIBS) -lz -lm
# The report layer: cairo draws the pictures, libzip writes the archives, protobuf-c encodes TensorBoard events.
REPORT_PKGS := cairo fontconfig libzip libprotobuf-c
CFLAGS  += $(shell pkg-config --cflags $(REPORT_PKGS))
LDLIBS  += $(shell pkg-config --libs $(REPORT_PKGS))

LIB_SRC  := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
SEED_SPECS := $(sort $(wildcard models/seed/*.spec))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
# Benchmark programs (bench/*.c): built with the library so that they cannot rot; run as their headers say.
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(sort $(wildcard bench/*.c)))
# Open MPI, when installed (libopenmpi-dev): `mpirun -np N cnnlab train|study` (src/cli/mpi*.c). Without it,
# or with MPI=0, those files are left out and cnnlab runs as one process. Only the CLI links MPI; the library
# has no transport of its own.
MPI     ?= 1
MPI_LIBS := $(if $(filter 1,$(MPI)),$(shell mpicc --showme:link 2>/dev/null))
ifeq ($(MPI_LIBS),)
CLI_SRC  := $(filter-out src/cli/mpi%,$(CLI_SRC))
else
MPI_CFLAGS := -DCNN_HAVE_MPI $(patsubst -I%,-isystem %,$(shell mpicc --showme:compile))
endif
PROTO    := src/report/tensorboard.proto
PROTO_C  := $(BUILD)/gen/report/tensorboard.pb-c.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(PROTO_C:.c=.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/seed_specs.o
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(BUILD)/tests/util.o $(BUILD)/tests/gradcheck.o $(BUILD)/tests/probe.o \
             $(BUILD)/tests/report_fixture.o

# The shared library's version is the API's (CNN_VERSION); its soname carries the major number, which
# changes when the ABI breaks.
VERSION := $(shell sed -n 's/^\#define CNN_VERSION "\(.*\)"/\1/p' include/cnnlab.h)
SONAME  := libcnnlab.so.$(firstword $(subst ., ,$(VERSION)))
SO_REAL := libcnnlab.so.$(VERSION)

.PHONY: all lib test test-build san run bench deps clean format fuzz fuzz-build fuzz-bins install uninstall
all: lib $(BUILD)/cnnlab $(BENCH_BIN)
lib: $(BUILD)/libcnnlab.a $(BUILD)/libcnnlab.so

# Objects depend on the Makefile too: a changed flag (visibility, sanitizers) rebuilds them.
$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The kernel files of each instruction-set path (also in the sanitizer build, whose OPT has no -march).
$(BUILD)/src/kernels/%_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/src/kernels/%_avx512.o: CFLAGS += $(ISA_AVX512)
# The BF16 kernels (--precision bf16) need AVX512_BF16 on top: run only where cpuid shows it.
$(BUILD)/src/kernels/%_bf16_avx512.o: CFLAGS += -mavx512bf16

# The study's spec files, compiled into the binary.
$(BUILD)/gen/seed_specs.c: $(SEED_SPECS) scripts/embed_specs.sh
	@mkdir -p $(dir $@)
	scripts/embed_specs.sh $(SEED_SPECS) > $@.tmp && mv $@.tmp $@

# TensorBoard's Event messages (the few cnnlab writes), generated from our own .proto at build time.
$(PROTO_C): $(PROTO)
	@mkdir -p $(dir $@)
	protoc-c --proto_path=src/report --c_out=$(dir $@) $<

$(PROTO_C:.c=.h): $(PROTO_C)

$(PROTO_C:.c=.o): $(PROTO_C)
	@$(CC) $(CFLAGS) -I$(BUILD)/gen/report -c $< -o $@

$(BUILD)/src/report/%.o: CFLAGS += -I$(BUILD)/gen/report
$(BUILD)/src/report/tensorboard.o $(BUILD)/src/report/tfrecord.o: $(PROTO_C:.c=.h)

$(BUILD)/gen/seed_specs.o: $(BUILD)/gen/seed_specs.c
	@$(CC) $(CFLAGS) -Isrc -c $< -o $@

$(BUILD)/libcnnlab.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/$(SO_REAL): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The run-time name (the soname) and the link-time name, as installed.
$(BUILD)/libcnnlab.so: $(BUILD)/$(SO_REAL)
	ln -sf $(SO_REAL) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/src/cli/%.o: CFLAGS += $(MPI_CFLAGS)

# The binary links the static library: one file that runs from the build tree, from its install prefix or
# copied to any folder or machine (the ISA check copies it), with no library path to set and no mismatch
# between a binary and an older libcnnlab.so; the shared library is for programs that use the API.
$(BUILD)/cnnlab: $(CLI_OBJ) $(BUILD)/libcnnlab.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UTIL) $(BUILD)/libcnnlab.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

.SECONDARY: $(BENCH_BIN:%=%.o)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libcnnlab.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The weight comparison of scripts/compare_weights.sh (the refactor check).
$(BUILD)/compare_weights: $(BUILD)/scripts/compare_weights.o $(BUILD)/libcnnlab.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test-build: all $(TEST_BIN)

# Installation, GNU layout: PREFIX is where the files will live (written into cnnlab.pc), DESTDIR a staging
# root prepended to every path (packaging).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PCDIR      ?= $(LIBDIR)/pkgconfig
# What a program linking libcnnlab.a needs besides it (cnnlab.pc's Libs.private and Requires.private):
# OpenBLAS is found by path (Debian's OpenMP build has no pkg-config file on the default path), the other
# libraries by their own pkg-config files.
PC_REQUIRES := hdf5 $(REPORT_PKGS)
PC_PRIVATE  := -fopenmp -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lz -lm

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR) \
	    $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/cnnlab $(DESTDIR)$(BINDIR)/cnnlab
	install -m 644 $(BUILD)/libcnnlab.a $(DESTDIR)$(LIBDIR)/libcnnlab.a
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcnnlab.so
	install -m 644 include/cnnlab.h $(DESTDIR)$(INCLUDEDIR)/cnnlab.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PC_REQUIRES)|' -e 's|@PRIVATE@|$(PC_PRIVATE)|' \
	    scripts/cnnlab.pc.in > $(DESTDIR)$(PCDIR)/cnnlab.pc
	chmod 644 $(DESTDIR)$(PCDIR)/cnnlab.pc
	install -m 644 docs/cnnlab.1 $(DESTDIR)$(MANDIR)/man1/cnnlab.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cnnlab $(DESTDIR)$(LIBDIR)/libcnnlab.a $(DESTDIR)$(LIBDIR)/$(SO_REAL) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libcnnlab.so $(DESTDIR)$(INCLUDEDIR)/cnnlab.h \
	    $(DESTDIR)$(PCDIR)/cnnlab.pc $(DESTDIR)$(MANDIR)/man1/cnnlab.1

deps:
	@scripts/deps.sh

# The suite runs twice: the optimised build, then the ASan+UBSan build.
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) test-build
	@$(MAKE) --no-print-directory -j$(NPROC) test-build BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
	@tests/run.sh build build-san

san:
	@$(MAKE) --no-print-directory test-build BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	$(BUILD)/cnnlab train --model Model_1

bench: all
	@scripts/deps.sh --bench
	bench/run.sh

# Fuzzing: the library built by clang with coverage and ASan+UBSan (build-fuzz/), one harness per reader of
# hostile input (fuzz/fuzz_*.c), run on its corpus (fuzz/corpus/NAME/) by scripts/fuzz_smoke.sh.
# (-Wno-pass-failed: at -O1 clang reports the omp simd loops it does not vectorize.)
FUZZ_SECONDS ?= 600
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(filter-out $(BUILD)/fuzz/fuzz_file,$(FUZZ_BIN))

$(BUILD)/fuzz/%: fuzz/%.c fuzz/fuzz_file.c fuzz/fuzz_file.h $(BUILD)/libcnnlab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< fuzz/fuzz_file.c $(BUILD)/libcnnlab.a $(LDFLAGS) $(LDLIBS)

fuzz-build:
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer -Wno-pass-failed" \
	    SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

fuzz: fuzz-build
	scripts/fuzz_smoke.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(find include src tests bench fuzz -name '*.[ch]')

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
