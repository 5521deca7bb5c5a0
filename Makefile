# opensmtpd-filters — the two commands that matter on a fresh Debian machine:
#   make test    install what is missing (Debian packages, npm ci), build, run every test
#   make demo    the same set-up, then the seed's configuration under a real smtpd
# Other targets: deps, build, check (tests only), bench, bench-spam, deb, install, clean.

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=

# Debian packages the tests use: the real smtpd and SMTP client, namespaces, a real
# redis-server, two independent DKIM verifiers, the Debian peer filters (differential
# tests and benchmarks), Dovecot for the training test, and the packaging tools.
DEBIAN_PACKAGES := opensmtpd swaks iproute2 util-linux procps time openssl \
	redis-server python3 python3-dkim python3-nacl libmail-dkim-perl \
	opensmtpd-filter-dkimsign opensmtpd-filter-senderscore \
	dovecot-imapd dovecot-sieve mandoc lintian dpkg-dev debhelper fakeroot

.PHONY: all deps debian-packages node-modules build test check bench bench-spam demo deb install clean

all: build

# Installs only what is missing. Service starts are refused while installing (the tests run
# their own smtpd and redis in private namespaces; nothing must listen on the host).
debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages (run as root to install): $$missing" >&2; exit 1; fi; \
		echo "installing: $$missing"; \
		policy=/usr/sbin/policy-rc.d; made=; \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy && made=1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		( apt-get update -q && apt-get install -y -q --no-install-recommends $$missing ); rc=$$?; \
		[ -n "$$made" ] && rm -f $$policy; \
		exit $$rc; \
	fi

node-modules: package-lock.json
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi

deps: debian-packages node-modules

build: node-modules
	npm run build

# The README's test command: set-up, build, then the whole suite.
test: deps build
	npm test

# The suite alone (after make build).
check:
	npm test

bench: build
	npm run bench

bench-spam: build
	npm run bench:spam

clean:
	rm -rf dist build *.deb
