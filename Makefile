# Plateau — make run (the demo) and make test (everything CI runs).
GO      ?= go
BIN     := bin/plateau
CONFIG  ?= configs/plateau.yaml
PKGS    := ./...
APT_PKGS := sip-tester baresip espeak-ng sox chromium sipvicious kamailio openssl linphone-cli curl sqlite3

.PHONY: all build deps run test unit e2e fuzz bench soak lint clean

all: build

# The first build downloads the modules ("go: downloading" lines) and then
# compiles them silently for a few minutes: say so.
build:
	@[ -x $(BIN) ] || echo "make: building $(BIN) — the first time, Go downloads and compiles every dependency: a few silent minutes"
	$(GO) build -o $(BIN) ./cmd/plateau
	@echo "make: $(BIN) is built"

# Installs the Debian tools the tests use; does nothing when they are there.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@echo "make deps: Go modules (go mod download), then the browser test's npm packages"
	@$(GO) mod download
	@cd e2e/browser && { [ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ] || npm ci --no-audit --no-fund --loglevel=error; }

# The demo: Plateau on the example config beside the simulated outside world.
run: build
	@scripts/demo.sh $(BIN) $(CONFIG)

test: deps
	@echo "make test: go vet, then every test under the race detector (the first run compiles for a few minutes)"
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 25m $(PKGS)
	$(MAKE) fuzz

# A short run of every fuzz target, on top of the committed corpora.
FUZZTIME ?= 10000x
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)
	@scripts/bench.sh $(BIN)

# Soak (not in make test): SIPp calls with RTP at a steady rate for
# SOAK_MINUTES (10); prints failures, missing recordings, RSS, goroutines, ports.
soak: deps build
	@scripts/soak.sh $(BIN)

lint:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

clean:
	rm -rf bin
