# Vigil: the two commands are `make run` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= 2
VAR ?= var

# Debian 12 packages the build, the tests and `make run` need.
DEB_PACKAGES := cmake g++ make pkg-config libboost1.81-dev libssl-dev libre2-dev \
	libsqlite3-dev libgtest-dev libcli11-dev libhyperscan-dev libsystemd-dev libnghttp2-dev zlib1g-dev libbrotli-dev libtomlplusplus-dev nlohmann-json3-dev \
	curl openssl python3 ca-certificates brotli chromium libnss3-tools publicsuffix nodejs \
	iproute2 util-linux systemd logrotate prometheus dpkg-dev man-db groff-base libglib2.0-bin gsettings-desktop-schemas \
	libkrb5-dev libldap-dev krb5-kdc krb5-admin-server krb5-user slapd ldap-utils haproxy rsyslog libjs-chart.js nghttp2-client nghttp2-server python3-h2

.PHONY: install deb deps build run test test-asan test-asan-unit asan-configure fuzz bench bench-compare cache-conformance clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing $$missing"; \
		SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@if [ ! -f $(VAR)/ca/root.pem ]; then \
		$(BUILD)/bin/vigil-ca init --dir $(VAR)/ca --org "Vigil development CA"; fi
	@if [ ! -f $(VAR)/rules.db ]; then \
		$(BUILD)/bin/vigil-rules --db $(VAR)/rules.db init && \
		$(BUILD)/bin/vigil-rules --db $(VAR)/rules.db --actor make-run import rules/default/default.json; fi
	@echo ""
	@echo "Vigil is starting on 127.0.0.1:3128. In another terminal:"
	@echo "  curl -x http://127.0.0.1:3128 --cacert $(VAR)/ca/root.pem https://example.com/"
	@echo "Rules: $(VAR)/rules.db (build/bin/vigil-rules --db $(VAR)/rules.db list). Test: curl -x http://127.0.0.1:3128 http://www.eicar.org.test/"
	@echo "Audit: build/bin/vigil-audit --db $(VAR)/audit.db tail -f"
	@echo "The root CA to trust is $(CURDIR)/$(VAR)/ca/root.pem (vigil-ca show --dir $(VAR)/ca)."
	@echo ""
	exec $(BUILD)/bin/vigil --config config/vigil.example.toml --ca-dir $(VAR)/ca --rules $(VAR)/rules.db --audit $(VAR)/audit.db

# make install [PREFIX=/usr/local] [DESTDIR=/some/root]: binaries, unit, /etc/vigil/vigil.toml
# (never replacing an existing one), logrotate, man pages, docs (docs/deploy.md). PREFIX=/usr
# is the system layout (/etc, /var); any other prefix keeps everything below it.
PREFIX ?= /usr/local
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# make deb: build/packages/vigil_VERSION_ARCH.deb (CPack; Depends from dpkg-shlibdeps).
deb: build
	cpack -G DEB --config $(BUILD)/CPackConfig.cmake -B $(BUILD)/packages

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

# The public cache-tests suite through Vigil (docs/caching.md); `make test` runs it too, with
# the pass count it must keep.
cache-conformance: build
	VIGIL_BIN_DIR=$(CURDIR)/$(BUILD)/bin tests/cache-conformance/run.sh

# Unit and integration tests built with AddressSanitizer + UndefinedBehaviorSanitizer.
# CI runs test-asan-unit (the unit tests only, see README); test-asan is everything.
ASAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan-configure: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBUILD_TESTING=ON -DCMAKE_CXX_FLAGS="$(ASAN_FLAGS)" >/dev/null

test-asan: asan-configure
	cmake --build build-asan -j$(JOBS)
	cd build-asan && VIGIL_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS) --timeout 900

test-asan-unit: asan-configure
	cmake --build build-asan -j$(JOBS) --target unit_tests
	@for t in build-asan/bin/vigil_*_tests; do echo "$$t"; \
		ASAN_OPTIONS=detect_leaks=1 $$t --gtest_brief=1 || exit 1; done

# libFuzzer targets from the committed seed corpus, FUZZ_SECONDS each (default 60). Crashes are
# written to tests/fuzz/crashes/; keep each as a regression seed once fixed.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := request_head client_hello origin_cert rules_json import config audit_filter
fuzz: deps
	@for p in clang libclang-rt-14-dev; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; done
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DVIGIL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-fuzz -j$(JOBS)
	mkdir -p tests/fuzz/crashes
	for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t && \
		build-fuzz/bin/fuzz_$$t build-fuzz/corpus-$$t tests/fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=tests/fuzz/crashes/$$t- -print_final_stats=1 || exit 1; \
	done

# Scanning throughput and compile time (not part of `make test`); results go in docs/performance.md.
bench: build
	@dpkg-query -W -f='$${Status}' libbenchmark-dev 2>/dev/null | grep -q 'ok installed' || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbenchmark-dev
	@dpkg-query -W -f='$${Status}' nginx 2>/dev/null | grep -q 'ok installed' || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
	@for p in modsecurity-crs python3-doc; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; done
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
	cmake -S . -B $(BUILD) >/dev/null && cmake --build $(BUILD) -j$(JOBS) --target vigil_scan_bench vigil_scan_real_bench vigil_audit_bench vigil_loadgen
	$(BUILD)/bin/vigil_scan_bench
	python3 tests/bench/corpus.py $(BUILD)/bench-corpus
	$(BUILD)/bin/vigil_scan_real_bench $(BUILD)/bench-corpus
	$(BUILD)/bin/vigil_audit_bench
	tests/bench/audit_query_bench.sh $(BUILD)/bin
	tests/bench/audit_full_rate.sh $(BUILD)/bin

# Vigil side by side with Squid (SslBump) and mitmproxy and the origin direct, one table
# (docs/performance.md). Installs the peers from Debian without starting their services.
BENCH_PEERS := nginx squid-openssl mitmproxy libbenchmark-dev socat
bench-compare: build
	@missing=$$(for p in $(BENCH_PEERS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
		apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		rc=$$?; rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi
	cmake -S . -B $(BUILD) >/dev/null && cmake --build $(BUILD) -j$(JOBS) --target vigil_loadgen vigil_mint_bench vigil_audit_bench
	$(BUILD)/bin/vigil_mint_bench
	python3 tests/bench/compare.py --bin $(BUILD)/bin $(COMPARE_ARGS)

clean:
	rm -rf $(BUILD)
