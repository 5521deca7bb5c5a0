# opensmtpd-filters — the two commands that matter on a fresh Debian machine:
#   make test    install what is missing (Debian packages, npm ci), build, run every test
#   make demo    the same set-up, then the seed's configuration under a real smtpd
# Other targets: deps, build, check (tests only), bench, bench-spam, deb, install, clean.

SHELL := /bin/bash

# make install: where things go (docs/install.md has the values for Debian, OpenBSD and
# FreeBSD). LIBEXECDIR is where smtpd looks for a proc-exec command without a leading /
# (its PATH_LIBEXEC); the filters' launchers go there, smtpd-filters goes to BINDIR.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib/opensmtpd-filters
LIBEXECDIR ?= $(PREFIX)/libexec/opensmtpd
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/opensmtpd-filters
# the node the launchers run (an absolute path: smtpd's environment may have no PATH)
NODE ?= $(shell command -v node || echo /usr/bin/node)
# V8 flags of the launchers (package.json config.nodeFlags): a 2 MB young generation instead
# of 16 MB keeps a filter with ten 5 MB messages in flight near 57 MB RSS instead of 87 MB,
# for ~5% more CPU (bench/null.ts measures both).
NODE_FLAGS ?= $(shell node -p 'require("./package.json").config.nodeFlags')
VERSION = $(shell node -p 'require("./package.json").version')

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

# The README's "run it" command: the usual configuration with our filters under the real
# smtpd in a private network namespace, a cast of senders, a table of what happened.
demo: deps build
	node dist/demo/run.js

bench: build
	npm run bench

bench-spam: build
	npm run bench:spam

# Production node_modules for install and the package: npm ci from the lockfile without the
# devDependencies (no tap, typescript, dns2, spam corpus) and without install scripts.
build/prod/node_modules/.package-lock.json: package.json package-lock.json
	rm -rf build/prod && mkdir -p build/prod
	cp package.json package-lock.json build/prod/
	cd build/prod && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline

# After make build (it does not rebuild: tests may be running the dist/ it would rewrite).
# LIBDIR gets package.json, dist/ without test/, bench/ and source maps, and the production
# node_modules without what only their authors use (dot files, tests, benchmarks, docs;
# licences stay); each package.json "bin" entry becomes a launcher (packaging/launcher.sh.in)
# running $(NODE) on it: those under dist/filters/ in LIBEXECDIR, the others in BINDIR.
# man/ goes to MANDIR, README.md, docs/*.md and examples/ to DOCDIR. POSIX sh, so that
# BSD make hosts can run it with `gmake install SHELL=/bin/sh` (docs/install.md).
install: build/prod/node_modules/.package-lock.json
	@set -eu; \
	node -e 'for (const [n, p] of Object.entries(require("./package.json").bin)) console.log(n, p)' > build/bin.list; \
	while read -r name main; do \
		[ -f "$$main" ] || { echo "make install: $$main ($$name) is missing: run make build first" >&2; exit 1; }; \
	done < build/bin.list; \
	lib='$(DESTDIR)$(LIBDIR)'; \
	rm -rf "$$lib/dist" "$$lib/node_modules"; \
	mkdir -p "$$lib/dist"; \
	for d in dist/*/; do \
		case $$d in dist/test/|dist/bench/) ;; *) cp -R "$$d" "$$lib/dist/";; esac; \
	done; \
	find "$$lib/dist" -name '*.map' -exec rm -f {} +; \
	cp -R build/prod/node_modules "$$lib/"; \
	node -e 'for (const k of Object.keys(require("./build/prod/node_modules/.package-lock.json").packages)) console.log(k)' | \
	while read -r m; do \
		for x in test tests benchmark benchmarks docs example examples; do rm -rf "$$lib/$$m/$$x"; done; \
		find "$$lib/$$m" -maxdepth 1 -type f \( -iname '*.md' ! -iname 'licen[cs]e*' -o -iname '*.html' \) -exec rm -f {} +; \
	done; \
	find "$$lib/node_modules" -name '.*' ! -path "$$lib/node_modules/.package-lock.json" -prune -exec rm -rf {} +; \
	cp package.json "$$lib/"; \
	chmod -R u+rwX,go+rX,go-w "$$lib"; \
	while read -r name main; do \
		case $$main in dist/filters/*) dir='$(LIBEXECDIR)';; *) dir='$(BINDIR)';; esac; \
		mkdir -p "$(DESTDIR)$$dir"; \
		sed -e "s|@NAME@|$$name|g" -e "s|@MAIN@|$$main|g" -e 's|@NODE@|$(NODE)|g' -e 's|@NODE_FLAGS@|$(NODE_FLAGS)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
			packaging/launcher.sh.in > "$(DESTDIR)$$dir/$$name"; \
		chmod 755 "$(DESTDIR)$$dir/$$name"; \
		echo "$$dir/$$name: $(NODE) $(LIBDIR)/$$main"; \
	done < build/bin.list; \
	for page in man/*.[1-9]; do \
		sec=$${page##*.}; \
		mkdir -p "$(DESTDIR)$(MANDIR)/man$$sec"; \
		cp "$$page" "$(DESTDIR)$(MANDIR)/man$$sec/"; \
		chmod 644 "$(DESTDIR)$(MANDIR)/man$$sec/$${page#man/}"; \
	done; \
	mkdir -p '$(DESTDIR)$(DOCDIR)'; \
	for doc in README.md docs/*.md; do \
		if [ -f "$$doc" ]; then cp "$$doc" '$(DESTDIR)$(DOCDIR)/'; fi; \
	done; \
	if [ -d examples ]; then \
		rm -rf '$(DESTDIR)$(DOCDIR)/examples'; \
		cp -R examples '$(DESTDIR)$(DOCDIR)/'; \
	fi; \
	chmod -R u+rwX,go+rX,go-w '$(DESTDIR)$(DOCDIR)'

# opensmtpd-filters_<version>_all.deb, built by dpkg-buildpackage (debian/) in a copy of the
# source tree (tracked and untracked files git does not ignore) under build/deb, so the
# checkout gets nothing but the .deb. The copy runs its own npm ci and build. When
# debian/changelog has no entry for package.json's version, the copy gets one.
deb:
	@set -eu; \
	v='$(VERSION)'; src="build/deb/opensmtpd-filters-$$v"; \
	rm -rf build/deb; mkdir -p "$$src"; \
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			while IFS= read -r -d '' f; do [ -e "$$f" ] && printf '%s\0' "$$f"; done | \
			tar --null --no-recursion -T - -cf - | tar -C "$$src" -xf -; \
	else \
		tar --exclude=./node_modules --exclude=./dist --exclude=./build --exclude=./.git \
			--exclude=./.tap --exclude='./*.deb' -cf - . | tar -C "$$src" -xf -; \
	fi; \
	if [ "$$(cd "$$src" && dpkg-parsechangelog -S Version)" != "$$v" ]; then \
		date=$$(git log -1 --format=%cD 2>/dev/null || date -R); \
		maint=$$(cd "$$src" && dpkg-parsechangelog -S Maintainer); \
		{ printf 'opensmtpd-filters (%s) unstable; urgency=medium\n\n' "$$v"; \
		  printf '  * Version %s of package.json (no debian/changelog entry yet).\n\n' "$$v"; \
		  printf ' -- %s  %s\n\n' "$$maint" "$$date"; \
		  cat "$$src/debian/changelog"; } > "$$src/debian/changelog.new"; \
		mv "$$src/debian/changelog.new" "$$src/debian/changelog"; \
	fi; \
	(cd "$$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage --build=binary --no-sign); \
	cp "build/deb/opensmtpd-filters_$${v}_all.deb" .; \
	rm -rf "$$src"; \
	echo "opensmtpd-filters_$${v}_all.deb"

clean:
	rm -rf dist build *.deb
