# Dovecot imapsieve (Pigeonhole): a message a user moves or copies out of Junk is learned as
# ham by filter-spamscore's statistics (learn-ham.sh, in sieve_pipe_bin_dir). A message
# thrown from Junk into the Trash is neither.
# Installed as /etc/dovecot/sieve/report-ham.sieve; compile it once with sievec.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.mailbox" "*" {
  set "mailbox" "${1}";
}

if string "${mailbox}" "Trash" {
  stop;
}

if environment :matches "imap.user" "*" {
  set "username" "${1}";
}

pipe :copy "learn-ham.sh" [ "${username}" ];
