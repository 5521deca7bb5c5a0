# Dovecot imapsieve (Pigeonhole): a message a user moves or copies into Junk is learned as
# spam by filter-spamscore's statistics (learn-spam.sh, in sieve_pipe_bin_dir).
# Installed as /etc/dovecot/sieve/report-spam.sieve; compile it once with sievec.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.user" "*" {
  set "username" "${1}";
}

pipe :copy "learn-spam.sh" [ "${username}" ];
