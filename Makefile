# stunkit - the front door. CMake does the building; this file names the jobs.
#
#   make            build everything into build/ (programs in build/bin/);
#                   never installs anything: missing packages are named
#   make deps       install the Debian packages the build and tests use (root)
#   make check      install what is missing (as root), build, run every test
#   make demo       build and show the main job
#   make fuzz       build the libFuzzer targets (clang) and run each a while
#   make bench      build and run the benchmarks
#   make install    install (PREFIX=/usr/local, DESTDIR honoured)
#   make asan       every test under AddressSanitizer + UBSan (build-asan/)
#   make tsan       the server tests under ThreadSanitizer (build-tsan/)
#   make clang      build with clang -Werror and run the unit tests (build-clang/)

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

.PHONY: all deps deps-check configure build check demo fuzz bench install asan tsan clang clean

all: build

deps:
	@sh scripts/deps.sh build
	@sh scripts/deps.sh test

deps-check:
	@sh scripts/deps.sh build --check

configure: deps-check
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

check:
	@sh scripts/deps.sh build
	@sh scripts/deps.sh test
	@$(MAKE) build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo:
	@sh scripts/deps.sh build
	@$(MAKE) build
	@sh scripts/demo.sh $(BUILD)

asan: deps-check
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTUNKIT_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j $(JOBS)

tsan: deps-check
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSTUNKIT_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@ctest --test-dir build-tsan --output-on-failure -j 1 -L tsan

clang: deps-check
	@CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTUNKIT_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-clang -j $(JOBS)
	@ctest --test-dir build-clang --output-on-failure -j $(JOBS) -L unit

fuzz: deps-check
	@sh scripts/deps.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTUNKIT_FUZZ=ON -DBUILD_TESTING=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@sh scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	@sh scripts/bench.sh $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-clang
