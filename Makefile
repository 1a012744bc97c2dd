# make demo: setup when needed, build, train a small model on Moby Dick and print a sample.
# make test: setup when needed, build, run the whole test suite through ctest.
# make build / make bench / make gpu-check (on a machine with CUDA GPUs) / make clean.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: setup build test demo bench gpu-check clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@bash scripts/demo.sh

bench: build
	@bash bench/run.sh

gpu-check: build
	@bash bench/gpu_check.sh

clean:
	rm -rf $(BUILD)
