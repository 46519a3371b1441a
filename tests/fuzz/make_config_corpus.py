#!/usr/bin/env python3
"""Writes the seed corpus of config_file_fuzz (tests/fuzz/corpus/config_file/).

Each seed is a disque.conf text, written from PROTOCOL.md 9.2 and 9.3: a full sample in
the layout of Disque's own disque.conf, one seed per kind of value, and one per error.
Run it from anywhere; it rewrites the directory. Files that fail to load start with
"bad_".
"""

from corpus_writer import write_corpus

# The layout and comments of Disque 1.0-rc1's disque.conf, shortened, with every
# directive at a value a deployment would use.
SAMPLE = """\
# Disque configuration file example
#
# Note on units: when memory size is needed, it is possible to specify
# it in the usual form of 1k 5GB 4M and so forth:
#
# 1k => 1000 bytes
# 1kb => 1024 bytes
# 1m => 1000000 bytes
# 1mb => 1024*1024 bytes
# 1g => 1000000000 bytes
# 1gb => 1024*1024*1024 bytes
#
# units are case insensitive so 1GB 1Gb 1gB are all the same.

################################## INCLUDES ###################################

# include /path/to/local.conf
# include /path/to/other.conf

################################ GENERAL  #####################################

# By default Disque does not run as a daemon. Use 'yes' if you need it.
daemonize no

# When running daemonized, Disque writes a pid file in /var/run/disque.pid by
# default. You can specify a custom pid file location here.
pidfile /var/run/disque.pid

# Accept connections on the specified port, default is 7711.
port 7711

# TCP listen() backlog.
tcp-backlog 511

# By default Disque listens for connections from all the network interfaces
# available on the server.
bind 127.0.0.1 ::1

# Specify the path for the Unix socket that will be used to listen for
# incoming connections.
unixsocket /tmp/disque.sock
unixsocketperm 700

# Close the connection after a client is idle for N seconds (0 to disable)
timeout 0

# TCP keepalive.
tcp-keepalive 60

# Specify the server verbosity level.
# This can be one of:
# debug (a lot of information, useful for development/testing)
# verbose (many rarely useful info, but not a mess like the debug level)
# notice (moderately verbose, what you want in production probably)
# warning (only very important / critical messages are logged)
loglevel notice

# Specify the log file name. Also the empty string can be used to force
# Disque to log on the standard output.
logfile ""

# To enable logging to the system logger, just set 'syslog-enabled' to yes,
# and optionally update the other syslog parameters to suit your needs.
syslog-enabled no
syslog-ident disque
syslog-facility local0

# The working directory. The Append Only File will be created inside this
# directory. Note that you must specify a directory here, not a file name.
dir ./

################################## SECURITY ###################################

# Require clients to issue AUTH <PASSWORD> before processing any other
# commands.
# requirepass foobared

# Command renaming.
rename-command DEBUG ""
rename-command CONFIG b840fc02d524045429941cc15f59e41cb7be6c52

################################### LIMITS ####################################

maxclients 10000
maxmemory 1gb
maxmemory-policy acks
maxmemory-samples 5

############################## APPEND ONLY MODE ###############################

appendonly no
appendfilename "disque.aof"

# appendfsync always
appendfsync everysec
# appendfsync no

no-appendfsync-on-rewrite no

auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb

aof-load-truncated yes
aof-enqueue-jobs-once no

################################ DISQUE CLUSTER ###############################

cluster-config-file nodes-7711.conf

################################## SLOW LOG ###################################

slowlog-log-slower-than 10000
slowlog-max-len 128

################################ LATENCY MONITOR ##############################

latency-monitor-threshold 0

############################### ADVANCED CONFIG ###############################

activerehashing yes
client-output-buffer-limit normal 0 0 0
hz 10
aof-rewrite-incremental-fsync yes
"""


def seeds():
    yield "disque.conf", SAMPLE
    yield "empty", ""
    yield "comments_and_blanks", "# only comments\n\n   \t\n  # indented comment\n"
    yield "crlf", "port 7712\r\ndaemonize NO\r\n\r\nloglevel Warning\r\n"
    yield "no_final_newline", "timeout 300"
    yield "last_wins", "port 1\nport 2\nbind 10.0.0.1 10.0.0.2\nbind 127.0.0.1\n"
    yield "memory_units", ("maxmemory 2GB\nauto-aof-rewrite-min-size 1k\n"
                           "client-output-buffer-limit NORMAL 1mb 512kb 60\n"
                           "maxmemory 5m\nauto-aof-rewrite-min-size -3g\n")
    yield "octal", "unixsocketperm 0777\nunixsocketperm 0\n"
    yield "enums", ("loglevel DEBUG\nsyslog-facility LOCAL7\nmaxmemory-policy NoEviction\n"
                    "appendfsync always\nappendfsync No\n")
    yield "quoted_strings", ('requirepass "p\\x41ss word\\n\\t\\"\\\\"\n'
                             "pidfile '/run/disque dir/disque.pid'\n"
                             'syslog-ident ""\nunixsocket ""\n')
    yield "hz_clamped", "hz 1000\nhz 0\nhz -5\n"
    yield "ours", ("threads 4\ncluster-announce-ip 10.1.2.3\ncluster-announce-port 7000\n"
                   "cluster-announce-bus-port 17000\ncluster-port 17711\n"
                   "cluster-announce-ip ::ffff:10.0.0.1\n")
    yield "bind_sixteen", "bind " + " ".join("10.0.0.%d" % i for i in range(16)) + "\n"
    yield "bind_quoted", 'bind "127.0.0.1 ::1" "" x\n'
    yield "rename_command", "rename-command addjob push\nRENAME-COMMAND getjob \"\"\n"
    yield "mixed_case_names", "DAEMONIZE no\nPort 7711\nTcp-Keepalive 0\n"
    yield "fs_directives_neutralized", ('dir /\nlogfile log.txt\ninclude /etc/passwd\ninclude -\n'
                                        'logfile ""\nport 7713\n')
    yield "bad_unknown_directive", "port 7711\nnot-a-directive yes\n"
    yield "bad_arity", "port\n"
    yield "bad_arity_many", "daemonize yes no\n"
    yield "bad_include_arity", "include a b\n"
    yield "bad_dir_arity", "dir\n"
    yield "bad_port_range", "port 70000\n"
    yield "bad_port_garbage", "port 77x\n"
    yield "bad_yes_no", "daemonize maybe\n"
    yield "bad_maxmemory_zero", "maxmemory 0\n"
    yield "bad_memory_unit", "maxmemory 1tb\n"
    yield "bad_octal", "unixsocketperm 999\n"
    yield "bad_enum", "loglevel loud\n"
    yield "bad_facility", "syslog-facility local8\n"
    yield "bad_unbalanced_quotes", "# fine\n\npidfile \"/var/run/disque.pid\n"
    yield "bad_quote_then_char", "pidfile 'a'b\n"
    yield "bad_too_many_binds", "bind " + " ".join("10.0.0.%d" % i for i in range(17)) + "\n"
    yield "bad_password_too_long", "requirepass " + "x" * 513 + "\n"
    yield "bad_appendfilename_path", "appendfilename dir/disque.aof\n"
    yield "bad_announce_ip", "cluster-announce-ip host.example\n"
    yield "bad_client_class", "client-output-buffer-limit replica 0 0 0\n"
    yield "bad_obuf_seconds", "client-output-buffer-limit normal 0 0 -1\n"
    yield "bad_threads", "threads 1025\n"
    yield "bad_watchdog_not_in_file", "watchdog-period 10\n"
    yield "bad_negative_timeout", "timeout -1\n"
    yield "bad_node_timeout", "cluster-node-timeout 0\n"
    yield "bad_at_line_7", "port 1\n\n# c\n\r\n\t\nhz 5\nport -1\nport 2\n"


if __name__ == "__main__":
    write_corpus("config_file", ((name, text.encode()) for name, text in seeds()))
