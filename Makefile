# stunkit - the front door. CMake does the building; this file names the jobs.
#
#   make            build everything into build/ (programs in build/bin/)
#   make check      build and run every test through CTest
#   make demo       build and show the main job
#   make fuzz       build the libFuzzer targets (clang) and run each a while
#   make bench      build and run the benchmarks
#   make install    install (PREFIX=/usr/local, DESTDIR honoured)
#   make asan       every test under AddressSanitizer + UBSan (build-asan/)

MAKEFLAGS  += --no-print-directory
BUILD      ?= build
PREFIX     ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
ifeq ($(STUNKIT_WERROR),1)
CMAKE_FLAGS += -DSTUNKIT_WERROR=ON
endif

.PHONY: all deps configure build check demo fuzz bench install asan tsan clean

all: build

deps:
	@sh scripts/deps.sh build

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

check: build
	@sh scripts/deps.sh test
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	@sh scripts/demo.sh $(BUILD)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTUNKIT_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j $(JOBS)

tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSTUNKIT_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@ctest --test-dir build-tsan --output-on-failure -j 1 -L tsan

fuzz: deps
	@sh scripts/deps.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTUNKIT_FUZZ=ON -DBUILD_TESTING=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@sh scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	@sh scripts/bench.sh $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
