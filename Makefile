# make demo: setup when needed, build, train a small model on Moby Dick and print a sample.
# make test: setup when needed, build, run the whole test suite through ctest.
# make build / make bench / make gpu-check (on a machine with CUDA GPUs) / make clean.
# make fuzz [FUZZ_SECONDS=60]: the libFuzzer targets of fuzz/ (clang, build-fuzz), each for FUZZ_SECONDS.
# make test-asan: the test suite built with AddressSanitizer + UBSan (build-asan) through ctest.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
# ctest -LE for test-asan: labels of tests too slow to run under the sanitizers (none by default).
ASAN_EXCLUDE ?=

.PHONY: setup build test demo bench gpu-check clean fuzz test-asan

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

fuzz: setup
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORMA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@bash fuzz/run.sh $(FUZZ_SECONDS)

test-asan: setup
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORMA_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ctest --output-on-failure -j $(JOBS) --timeout 1800 $(if $(ASAN_EXCLUDE),-LE '$(ASAN_EXCLUDE)')

demo: build
	@bash scripts/demo.sh

bench: build
	@bash bench/run.sh

gpu-check: build
	@bash bench/gpu_check.sh

clean:
	rm -rf $(BUILD) build-fuzz build-asan
