# MusQraTT. `make run` serves MQTT-SN on UDP port 1883; `make test` is the whole suite
# (what .ci/run and CI run). `make help` lists the targets.

SHELL := /bin/bash
GO    ?= go

# Fuzz budget per target: short in `make test`, long in `make fuzz`. make test counts
# executions, not seconds: with go1.26 a duration budget can end in a spurious
# "context deadline exceeded" failure when a loaded machine's worker misses the
# coordinator's deadline (golang/go#75804, fixed in go1.27); a count has no deadline.
FUZZTIME      ?= 100000x
LONG_FUZZTIME ?= 10m

# staticcheck, pinned. 2026.2.2 is module version v0.8.2 (2025.1.1, v0.6.1, also
# works, but the proxy serves it only by its module version).
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK         := $(shell $(GO) env GOPATH)/bin/staticcheck

# Debian packages the tests use (brokers and clients to interoperate with, QEMU for the
# images, independent MQTT-SN dissectors, a browser for the status page, netns tools,
# socat for the serial tests' pty pairs).
# Tests that need a missing one skip and say so.
DEB_PACKAGES := mosquitto mosquitto-clients qemu-system-arm qemu-system-x86 tshark \
	python3-scapy chromium chromium-driver nftables iproute2 socat

# Every Go file of the repository, for gofmt (testdata excluded: it may hold
# deliberately odd files).
GO_FILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: help run build test deps vet fmt-check staticcheck unit fuzz-smoke fuzz hosted-coverage clean

help:
	@echo "make run        serve MQTT-SN on UDP 1883 (go run ./cmd/musqratt)"
	@echo "make build      build bin/musqratt"
	@echo "make install    install bin/musqratt in PREFIX (default /usr/local), under DESTDIR"
	@echo "make test       the whole suite: deps, vet, gofmt, staticcheck, go test -race, fuzz smoke"
	@echo "make fuzz       run every fuzz target for LONG_FUZZTIME (default $(LONG_FUZZTIME)) each"
	@echo "make soak       the long reliability run: lossy link over many seeds, kill -9 many times"
	@echo "make deps       install the Debian packages the tests use (root only, only if missing)"

run:
	$(GO) run ./cmd/musqratt

# -buildvcs=auto: the git revision is stamped (musqratt version shows it) whenever the
# tree is a checkout, even under GOFLAGS=-buildvcs=false.
build:
	$(GO) build -buildvcs=auto -o bin/musqratt ./cmd/musqratt

test: deps vet fmt-check staticcheck hosted-coverage images unit fuzz-smoke
	@echo "make test: all checks passed"

deps:
	@if ! command -v dpkg-query >/dev/null; then \
		echo "deps: not a Debian system; install by hand: $(DEB_PACKAGES)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: Debian packages present"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "deps: NOT INSTALLED (not root):$$missing"; \
		echo "deps: tests that need them will be skipped; as root: apt-get install$$missing"; \
	else \
		echo "deps: installing$$missing"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null && \
		echo "deps: installed$$missing"; \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@files=$$(gofmt -l $(GO_FILES)); \
	if [ -n "$$files" ]; then echo "gofmt: these files need gofmt -w:"; echo "$$files"; exit 1; fi; \
	echo "gofmt: ok"

staticcheck:
	@if ! $(STATICCHECK) -version 2>/dev/null | grep -q "($(STATICCHECK_VERSION:v%=%))"; then \
		echo "installing staticcheck $(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi
	$(STATICCHECK) ./...

# Packages whose every file is build-constrained (e.g. GOOS=tamago boards) are not in
# ./... on this host: say which, so nothing is left out silently.
hosted-coverage:
	@listed=$$($(GO) list -f '{{.Dir}}' ./... | sort); \
	for d in $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -exec dirname {} \; | sort -u); do \
		abs=$$(cd $$d && pwd); \
		grep -qxF "$$abs" <<<"$$listed" || echo "not built on this host (build constraints): $$d"; \
	done; true

# With the TamaGo toolchain and QEMU present, the image tests in ./qemu are required
# (MUSQRATT_IMAGE_TESTS=require: one that cannot run fails instead of skipping).
unit:
	@T=$$($(GO) tool -n tamago 2>/dev/null); req=; \
	if [ -n "$$T" ] && $$T version >/dev/null 2>&1 && command -v qemu-system-arm >/dev/null && command -v qemu-system-x86_64 >/dev/null; then req=require; fi; \
	echo "MUSQRATT_IMAGE_TESTS=$$req $(GO) test -race -count=1 -timeout 10m ./..."; \
	MUSQRATT_IMAGE_TESTS=$$req $(GO) test -race -count=1 -timeout 10m ./...

# One short run of every fuzz target, found anew each time (func FuzzX in a _test.go).
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz-all FUZZ_EACH=$(FUZZTIME)

fuzz:
	@$(MAKE) --no-print-directory fuzz-all FUZZ_EACH=$(LONG_FUZZTIME)

# The long reliability run (docs/reliability.md): the lossy-link simulation over many
# seeds at three loss rates, the lossy UDP proxy with more messages, and kill -9 of the
# daemon SOAK_KILLS times. make test runs each of these briefly.
SOAK_SEEDS ?= 50
SOAK_KILLS ?= 1000
.PHONY: soak
soak:
	set -o pipefail; $(GO) test -count=1 -timeout 3h -run 'TestLossyLinkSimulation|TestLossySleepingSubscriber' -v ./broker/ \
		-sim.seeds=$(SOAK_SEEDS) -sim.loss=0.05,0.2,0.4 | grep -E 'lossy_sim|^(---|ok|FAIL)'
	set -o pipefail; $(GO) test -count=1 -timeout 3h -run 'TestLossyUDPProxy' -v ./kernel/ -lossy.messages=2000 | grep -E 'lossy_udp|^(---|ok|FAIL)'
	set -o pipefail; $(GO) test -count=1 -timeout 3h -run 'TestReliabilityKill9' -v ./cmd/musqratt/ -kill9.cycles=$(SOAK_KILLS) | grep -E 'reliability|^(---|ok|FAIL)'

.PHONY: fuzz-all
fuzz-all:
	@set -e; n=0; \
	for f in $$(grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git '^func Fuzz' . | sort); do \
		dir=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "==> fuzz $$dir $$t for $(FUZZ_EACH)"; \
			$(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZ_EACH) $$dir; \
			n=$$((n+1)); \
		done; \
	done; \
	echo "==> fuzz: $$n targets run"

clean:
	rm -rf bin

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary in $(DESTDIR)$(PREFIX)/bin, the
# example configuration and the licence in $(DESTDIR)$(PREFIX)/share/doc/musqratt.
PREFIX  ?= /usr/local
DESTDIR ?=
.PHONY: install
install: build
	install -D -m 0755 bin/musqratt $(DESTDIR)$(PREFIX)/bin/musqratt
	install -D -m 0644 musqratt.conf.example $(DESTDIR)$(PREFIX)/share/doc/musqratt/musqratt.conf.example
	install -D -m 0644 LICENSE $(DESTDIR)$(PREFIX)/share/doc/musqratt/LICENSE

# Benchmarks: the broker on a loopback port against the in-process UDP relay floor:
# latency at QoS 0, 1 and 2 at 1000 msg/s with 32-octet payloads, unpaced throughput
# at QoS 0 (windowed) and 1, fan-out to 10 and 100 subscribers, memory per idle
# client; then QoS 0, 1 and 2 latency again with busy_poll (docs/performance.md).
# Markdown tables on stdout; CDF plots in bin/bench-qos*.svg.
BENCH_ADDR   ?= 127.0.0.1:18830
BENCH_N      ?= 2000
BENCH_ROUNDS ?= 3
# QoS 0 throughput: messages outstanding (sent, not yet received) at most.
BENCH_WINDOW ?= 32
# The last set runs the broker with busy polling (docs/config.md, busy_poll).
BENCH_BUSY_POLL ?= 2ms

.PHONY: bench
bench: build
	@set -u; bin/musqratt serve --listen $(BENCH_ADDR) --broadcast none --log-level warn & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	sleep 0.5; rc=0; \
	echo "# make bench: $$(date -u '+%Y-%m-%d %H:%M UTC'), $$(uname -srm), $$(nproc) CPU, $$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), $$($(GO) version | cut -d' ' -f3)"; \
	for q in 0 1 2; do \
		echo; echo "## QoS $$q"; echo; \
		echo '```'; echo "bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 --rounds $(BENCH_ROUNDS) --plot bin/bench-qos$$q.svg"; echo '```'; echo; \
		bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 \
			--rounds $(BENCH_ROUNDS) --plot bin/bench-qos$$q.svg || rc=1; \
	done; \
	for q in 0 1; do \
		w=; [ $$q = 0 ] && w="-w $(BENCH_WINDOW)"; \
		echo; echo "## Throughput, QoS $$q (unpaced; QoS 0: window of $(BENCH_WINDOW), QoS 1: one message in flight)"; echo; \
		echo '```'; echo "bin/musqratt bench -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n 20000 -r 0 $$w --rounds $(BENCH_ROUNDS)"; echo '```'; echo; \
		bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n 20000 -r 0 $$w \
			--rounds $(BENCH_ROUNDS) || rc=1; \
	done; \
	for k in 10 100; do \
		echo; echo "## Fan-out to $$k subscribers, QoS 0, 1000 msg/s"; echo; \
		echo '```'; echo "bin/musqratt bench -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q 0 -k $$k -n 1000 -r 1000 --rounds $(BENCH_ROUNDS)"; echo '```'; echo; \
		bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q 0 -k $$k -n 1000 -r 1000 \
			--rounds $(BENCH_ROUNDS) || rc=1; \
	done; \
	for q in 0 1; do \
		echo; echo "## QoS $$q against a floor relay in its own process"; echo; \
		echo '```'; echo "bin/musqratt bench -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 --rounds $(BENCH_ROUNDS) --floor-process"; echo '```'; echo; \
		bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 \
			--rounds $(BENCH_ROUNDS) --floor-process || rc=1; \
	done; \
	echo; echo "## Memory per idle client"; echo; \
	echo '```'; echo "bin/musqratt bench -p $(word 2,$(subst :, ,$(BENCH_ADDR))) --idle 10000 --pid $$pid"; echo '```'; echo; \
	bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) --idle 10000 --pid $$pid || rc=1; \
	kill $$pid; wait $$pid 2>/dev/null; \
	bin/musqratt serve --listen $(BENCH_ADDR) --broadcast none --log-level warn --busy-poll $(BENCH_BUSY_POLL) & pid=$$!; \
	sleep 0.5; \
	for q in 0 1 2; do \
		echo; echo "## QoS $$q with busy_poll $(BENCH_BUSY_POLL)"; echo; \
		echo '```'; echo "bin/musqratt serve --busy-poll $(BENCH_BUSY_POLL) ...; bin/musqratt bench -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 --rounds $(BENCH_ROUNDS)"; echo '```'; echo; \
		bin/musqratt bench -h $(word 1,$(subst :, ,$(BENCH_ADDR))) -p $(word 2,$(subst :, ,$(BENCH_ADDR))) -q $$q -n $(BENCH_N) -r 1000 -s 32 \
			--rounds $(BENCH_ROUNDS) || rc=1; \
	done; \
	exit $$rc

# Bare-metal images (docs/bare-metal.md). BOARD: mx6ullevk (default), usbarmory,
# microvm. Needs the TamaGo toolchain (`go tool -n tamago` finds it; see
# docs/bare-metal.md); says so plainly when it is missing.
BOARD     ?= mx6ullevk
QEMU_PORT ?= 1883
IMAGE     := bin/musqratt-$(BOARD).elf

# Every image, whenever the TamaGo toolchain is present (make test runs this); one
# plain NOT RUN line naming what is missing when it is not.
IMAGE_BOARDS := mx6ullevk usbarmory microvm
.PHONY: images
images:
	@T=$$($(GO) tool -n tamago 2>/dev/null); \
	if [ -z "$$T" ] || ! $$T version >/dev/null 2>&1; then \
		echo "NOT RUN: images and QEMU image tests: the TamaGo toolchain tamago-go1.26.0 is not installed (docs/bare-metal.md builds it offline)"; exit 0; \
	fi; \
	for b in $(IMAGE_BOARDS); do $(MAKE) --no-print-directory image BOARD=$$b || exit 1; done; \
	echo "go vet (GOOS=tamago) of the board packages and the image main"; \
	GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARCH=arm GOARM=7 $$T vet -tags mx6ullevk \
		./board/mx6ullevk ./board/internal/imx6 ./board/internal/semihosting ./cmd/musqratt-image ./net/netstack ./kernel || exit 1; \
	GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARCH=arm GOARM=7 $$T vet -tags usbarmory ./board/usbarmory ./cmd/musqratt-image || exit 1; \
	GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARCH=amd64 $$T vet -tags microvm ./board/microvm ./cmd/musqratt-image || exit 1; \
	for q in qemu-system-arm qemu-system-x86_64; do \
		command -v $$q >/dev/null || echo "NOT RUN: QEMU image tests: $$q is not installed (make deps installs it, as root)"; \
	done

.PHONY: image qemu
image:
	@T=$$($(GO) tool -n tamago 2>/dev/null); \
	if [ -z "$$T" ] || ! $$T version >/dev/null 2>&1; then \
		echo "image: NOT BUILT: the TamaGo toolchain is not installed (docs/bare-metal.md says how)"; exit 1; \
	fi; \
	case "$(BOARD)" in \
		mx6ullevk|usbarmory) arch=arm; arm=7; text=0x80010000;; \
		microvm) arch=amd64; arm=; text=0x10010000;; \
		*) echo "image: unknown BOARD=$(BOARD) (mx6ullevk, usbarmory, microvm; pizero and pi2 have no NIC driver)"; exit 2;; \
	esac; \
	mkdir -p bin; \
	GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARCH=$$arch GOARM=$$arm \
		$$T build -tags $(BOARD) -trimpath -ldflags "-T $$text -R 0x1000" -o $(IMAGE) ./cmd/musqratt-image && \
	ls -l $(IMAGE)

# The image measured on its own terms: one guest serves the broker on 1883 and the floor
# relay (broker/relay on the same stack, NIC and loop) on 1884; musqratt bench runs
# against the broker with --floor at the relay, so every figure is a ratio under the
# same emulation. IMAGE_BENCH_N messages per run; markdown tables on stdout.
IMAGE_BENCH_N      ?= 1000
IMAGE_BENCH_ROUNDS ?= 3
IMAGE_BENCH_PORT   ?= 18871
.PHONY: image-bench
image-bench: build
	@T=$$($(GO) tool -n tamago 2>/dev/null); \
	if [ -z "$$T" ] || ! $$T version >/dev/null 2>&1; then echo "image-bench: NOT RUN: the TamaGo toolchain is not installed"; exit 1; fi; \
	case "$(BOARD)" in \
		mx6ullevk|usbarmory) arch=arm; arm=7; text=0x80010000;; \
		microvm) arch=amd64; arm=; text=0x10010000;; \
		*) echo "image-bench: unknown BOARD=$(BOARD)"; exit 2;; \
	esac; \
	img=bin/musqratt-$(BOARD)-bench.elf; bport=$(IMAGE_BENCH_PORT); fport=$$(( $(IMAGE_BENCH_PORT) + 1 )); \
	GOOS=tamago GOOSPKG=github.com/usbarmory/tamago GOARCH=$$arch GOARM=$$arm \
		$$T build -tags $(BOARD) -trimpath -ldflags "-T $$text -R 0x1000 -X main.RelayPort=1884 -X main.DumpEvery=0" -o $$img ./cmd/musqratt-image || exit 1; \
	fwd="hostfwd=udp:127.0.0.1:$$bport-10.0.0.1:1883,hostfwd=udp:127.0.0.1:$$fport-10.0.0.1:1884"; \
	net="-netdev user,id=net0,net=10.0.0.0/24,host=10.0.0.2,$$fwd"; \
	case "$(BOARD)" in \
		mx6ullevk) q="qemu-system-arm -machine mcimx6ul-evk -cpu cortex-a7 -m 512M -nographic -monitor none -semihosting -serial stdio -serial null -net nic,model=imx.enet,netdev=net0 $$net";; \
		usbarmory) q="qemu-system-arm -machine mcimx6ul-evk -cpu cortex-a7 -m 512M -nographic -monitor none -semihosting -serial null -serial stdio -net nic,model=imx.enet,netdev=net0 $$net";; \
		microvm) q="qemu-system-x86_64 -machine microvm,x-option-roms=on,pic=off,rtc=on -accel tcg -cpu max -m 1G -no-reboot -global virtio-mmio.force-legacy=false -nographic -monitor none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -device virtio-net-device,netdev=net0 $$net";; \
	esac; \
	log=bin/image-bench-$(BOARD).console; \
	$$q -kernel $$img </dev/null >$$log 2>&1 & qpid=$$!; trap "kill $$qpid 2>/dev/null" EXIT; \
	for i in $$(seq 100); do grep -q "musqratt: ready" $$log && break; sleep 0.1; done; \
	grep -q "musqratt: ready" $$log || { echo "image-bench: the image did not start:"; cat $$log; exit 1; }; \
	echo "# make image-bench BOARD=$(BOARD) ($$(date -u +%FT%TZ), $$(nproc) cores, TCG)"; echo; \
	rc=0; \
	for q in 0 1 2; do \
		echo "## QoS $$q latency, broker vs the image's floor"; echo; \
		echo '```'; echo "bin/musqratt bench -p $$bport --floor 127.0.0.1:$$fport -q $$q -n $(IMAGE_BENCH_N) -r 500 --rounds $(IMAGE_BENCH_ROUNDS) --timeout 3s"; echo '```'; echo; \
		bin/musqratt bench -p $$bport --floor 127.0.0.1:$$fport -q $$q -n $(IMAGE_BENCH_N) -r 500 --rounds $(IMAGE_BENCH_ROUNDS) --timeout 3s || rc=1; echo; \
	done; \
	echo "## Fan-out to 100, QoS 0"; echo; \
	echo '```'; echo "bin/musqratt bench -p $$bport --floor 127.0.0.1:$$fport -q 0 -k 100 -n 100 -r 10 --rounds $(IMAGE_BENCH_ROUNDS) --timeout 3s"; echo '```'; echo; \
	bin/musqratt bench -p $$bport --floor 127.0.0.1:$$fport -q 0 -k 100 -n 100 -r 10 --rounds $(IMAGE_BENCH_ROUNDS) --timeout 3s || rc=1; \
	exit $$rc

# Boots the image under QEMU with the guest's UDP 1883 forwarded to 127.0.0.1:$(QEMU_PORT);
# the serial console is this terminal (type stats, clients, reset, help). Ctrl-A X quits.
qemu: image
	@case "$(BOARD)" in \
		mx6ullevk) qemu-system-arm -machine mcimx6ul-evk -cpu cortex-a7 -m 512M -nographic -monitor none -semihosting \
			-serial stdio -serial null -net nic,model=imx.enet,netdev=net0 \
			-netdev user,id=net0,net=10.0.0.0/24,host=10.0.0.2,hostfwd=udp:127.0.0.1:$(QEMU_PORT)-10.0.0.1:1883 -kernel $(IMAGE);; \
		usbarmory) qemu-system-arm -machine mcimx6ul-evk -cpu cortex-a7 -m 512M -nographic -monitor none -semihosting \
			-serial null -serial stdio -net nic,model=imx.enet,netdev=net0 \
			-netdev user,id=net0,net=10.0.0.0/24,host=10.0.0.2,hostfwd=udp:127.0.0.1:$(QEMU_PORT)-10.0.0.1:1883 -kernel $(IMAGE);; \
		microvm) qemu-system-x86_64 -machine microvm,x-option-roms=on,pic=off,rtc=on -accel tcg -cpu max -m 1G -no-reboot \
			-global virtio-mmio.force-legacy=false -nographic -monitor none -serial stdio \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04 -device virtio-net-device,netdev=net0 \
			-netdev user,id=net0,net=10.0.0.0/24,host=10.0.0.2,hostfwd=udp:127.0.0.1:$(QEMU_PORT)-10.0.0.1:1883 -kernel $(IMAGE);; \
	esac
