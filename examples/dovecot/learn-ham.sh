#!/bin/sh
# Run by report-ham.sieve when a user takes a message out of Junk (but not into the Trash):
# the message on standard input, the IMAP user as $1. It teaches filter-spamscore's
# statistics that the message is ham. Learning is idempotent (a message learned twice counts
# once) and a message learned as spam before is moved to ham, not counted twice.
#
# Set these as on filter-spamscore's smtpd.conf line: the same store (-store), and
# PER_USER=yes with -perUser (then IMAP users must be the recipients' addresses).
SMTPD_FILTERS=/usr/bin/smtpd-filters
STORE=/var/lib/opensmtpd-filters/spamscore.db
PER_USER=no

if [ "$PER_USER" = yes ] && [ -n "$1" ]; then
	exec "$SMTPD_FILTERS" learn ham --quiet --store "$STORE" --user "$1"
fi
exec "$SMTPD_FILTERS" learn ham --quiet --store "$STORE"
